"""`--mixed-precision` says when it slowed a run down (issue 22): a small
model gains nothing from it, and on a CPU bfloat16 is emulated."""

from types import SimpleNamespace

from nbkeras.train.fit import speed_note


def _run(rate, mixed, batch=32, status="completed"):
    model = SimpleNamespace(dtype_policy=SimpleNamespace(name="mixed_bfloat16" if mixed
                                                         else "float32"))
    return (SimpleNamespace(batch_size=batch, step_size=1),
            SimpleNamespace(status=status, model=model, info=SHARED),
            SimpleNamespace(batch_rate=lambda: rate))


SHARED = SimpleNamespace(extra={})


def test_a_slower_mixed_run_than_the_float32_one_before_says_so():
    SHARED.extra.clear()
    assert speed_note(*_run(400.0, mixed=False)) == ""
    note = speed_note(*_run(300.0, mixed=True))
    assert note.startswith("mixed precision ran at 0.75x the speed of the previous float32 run")
    assert "drop --mixed-precision" in note


def test_no_note_when_it_was_faster_or_not_comparable():
    SHARED.extra.clear()
    speed_note(*_run(400.0, mixed=False))
    assert speed_note(*_run(500.0, mixed=True)) == ""          # faster
    speed_note(*_run(400.0, mixed=False))
    assert speed_note(*_run(100.0, mixed=True, batch=64)) == ""  # another batch size
    speed_note(*_run(400.0, mixed=False))
    assert speed_note(*_run(100.0, mixed=True, status="stopped")) == ""
    SHARED.extra.clear()
    assert speed_note(*_run(100.0, mixed=True)) == ""           # no float32 run before it


def test_in_a_real_run(ip, capsys, monkeypatch):
    """The note reaches the cell's record (the measured rates are replaced by
    fixed ones: this CPU's speeds vary too much to test a slow-down on)."""
    from nbkeras.view.progress import RunState
    ip.run_cell("""
import numpy as np
from sklearn.datasets import load_digits
d = load_digits(); x = (d.data[:256] / 16).astype('float32'); y = d.target[:256]
""").raise_error()
    ip.run_cell("%%model sp --seed 0\ninput 64\ndense 16 relu\ndense 10 softmax").raise_error()
    monkeypatch.setattr(RunState, "batch_rate", lambda self: 400.0)
    ip.run_line_magic("fit", "sp x y -e 1 -b 16 --text")
    capsys.readouterr()
    monkeypatch.setattr(RunState, "batch_rate", lambda self: 200.0)
    ip.run_line_magic("fit", "sp x y -e 1 -b 16 --mixed-precision --text")
    out = capsys.readouterr().out
    assert "mixed precision ran at 0.50x the speed of the previous float32 run" in out, out
