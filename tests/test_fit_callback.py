"""The training callback and the views, driven by fake logs (no training)."""

import io
import math

import pytest

from nbkeras.view.progress import RunState
from nbkeras.view.record import StaticRecord, metrics_table_html, panel_html
from nbkeras.view.text import MAX_LINES, QuietView, TextView, choose_view


class RecordingView:
    """Stands in for a view and records what it was sent."""

    def __init__(self):
        self.calls = []

    def start(self, state):
        self.calls.append(("start", state.epoch))

    def batch(self, state):
        self.calls.append(("batch", state.epoch, state.step))

    def epoch(self, state):
        self.calls.append(("epoch", state.epoch, dict((k, v[-1]) for k, v in state.history.items())))

    def finish(self, state):
        self.calls.append(("finish", state.status))

    def kinds(self, kind):
        return [c for c in self.calls if c[0] == kind]


class RecordingRegistry:
    def __init__(self):
        self.epochs = []

    def log_epoch(self, run_id, epoch, metrics, directions=None):
        self.epochs.append((run_id, epoch, metrics))


@pytest.fixture
def live():
    from nbkeras.train.callback import LiveCallback
    state = RunState(name="m", epochs=3, steps=5)
    view, registry = RecordingView(), RecordingRegistry()
    cb = LiveCallback(state, view, registry, run_id=7, update_interval=0.0)
    return cb, state, view, registry


def _epoch(cb, epoch, logs, steps=5):
    cb.on_epoch_begin(epoch)
    for b in range(steps):
        cb.on_train_batch_end(b, {"loss": logs["loss"]})
    cb.on_epoch_end(epoch, logs)


def test_epochs_reach_state_registry_and_view(live):
    cb, state, view, registry = live
    cb.on_train_begin()
    for e, loss in enumerate([1.0, 0.5, 0.7]):
        _epoch(cb, e, {"loss": loss, "accuracy": 0.5 + e / 10, "val_loss": loss + 0.1})
    assert state.history["loss"] == [1.0, 0.5, 0.7]
    assert [e for _, e, _ in registry.epochs] == [1, 2, 3]  # 1-based, like the panel
    assert registry.epochs[0] == (7, 1, {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.1})
    cb.on_train_end()
    assert view.kinds("epoch")[-1][2]["loss"] == 0.7   # the last epoch is on screen
    assert state.best("loss") == (0.5, 2)          # lower is better
    assert state.best("accuracy") == (0.7, 3)      # higher is better
    assert state.best("val_loss") == (pytest.approx(0.6), 2)


def test_logs_are_copied(live):
    cb, state, _, _ = live
    logs = {"loss": 1.0}
    cb.on_epoch_begin(0)
    cb.on_epoch_end(0, logs)
    logs["loss"] = 99.0
    assert state.history["loss"] == [1.0]


def test_batch_redraws_are_throttled_by_time(live):
    cb, state, view, _ = live
    cb.update_interval = 3600
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    for b in range(500):
        cb.on_train_batch_end(b, {"loss": 1.0})
    assert len(view.kinds("batch")) == 1       # the first, then nothing within the interval
    assert state.step == 500


def test_unthrottled_batches_all_draw(live):
    cb, _, view, _ = live
    cb.on_epoch_begin(0)
    for b in range(5):
        cb.on_train_batch_end(b, {"loss": 1.0})
    assert [c[2] for c in view.kinds("batch")] == [1, 2, 3, 4, 5]


def test_nan_loss_stops_at_once_saying_where(live):
    from nbkeras.train.callback import NonFiniteLoss
    cb, _, _, _ = live
    cb.on_epoch_begin(1)
    cb.on_train_batch_end(0, {"loss": 0.3})
    with pytest.raises(NonFiniteLoss) as err:
        cb.on_train_batch_end(1, {"loss": math.nan})
    assert (err.value.epoch, err.value.batch) == (2, 2)


def test_stop_request_ends_after_the_current_batch_and_drops_the_partial_epoch(live):
    from nbkeras.train.callback import StopRequested
    cb, state, _, registry = live
    cb.on_train_begin()
    _epoch(cb, 0, {"loss": 1.0})
    cb.on_epoch_begin(1)
    cb.on_train_batch_end(0, {"loss": 0.9})
    cb.request_stop()
    with pytest.raises(StopRequested):
        cb.on_train_batch_end(1, {"loss": 0.9})
    with pytest.raises(StopRequested):
        cb.on_epoch_end(1, {"loss": 0.9})
    assert state.history["loss"] == [1.0]
    assert len(registry.epochs) == 1
    cb.on_train_end()  # a reused callback starts clean
    assert not cb.stop_requested


def test_a_stop_requested_before_training_begins_still_stops(live):
    """A background run's Stop clicked while Keras is still starting up."""
    from nbkeras.train.callback import StopRequested
    cb, _, _, _ = live
    cb.request_stop()
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    with pytest.raises(StopRequested):
        cb.on_train_batch_end(0, {"loss": 0.9})


def test_missing_metrics_are_padded_so_epochs_stay_aligned():
    state = RunState(epochs=3)
    state.end_epoch({"loss": 1.0})
    state.end_epoch({"loss": 0.8, "val_loss": 0.9})
    state.end_epoch({"loss": 0.7})
    assert math.isnan(state.history["val_loss"][0]) and math.isnan(state.history["val_loss"][2])
    assert state.current("val_loss") is None
    assert state.best("val_loss") == (0.9, 2)


def test_text_view_prints_one_line_per_epoch_and_never_per_batch():
    out = io.StringIO()
    view, state = TextView(stream=out), RunState(name="m", epochs=3, steps=100)
    view.start(state)
    for e in range(3):
        state.begin_epoch(e)
        for b in range(100):
            state.step = b + 1
            view.batch(state)
        state.end_epoch({"loss": 1.0 / (e + 1), "val_loss": 2.0})
        view.epoch(state)
    state.finish("completed")
    view.finish(state)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 3 + 1
    assert lines[1].startswith("epoch 1/3") and "loss 1.000" in lines[1]
    assert "completed" in lines[-1]


def test_text_view_says_how_a_batch_splits_over_several_devices():
    out = io.StringIO()
    state = RunState(name="m", epochs=2, device="4 × CPU · data parallel",
                     batch_split="batch 64 = 4 × 16")
    TextView(stream=out).start(state)
    assert out.getvalue().startswith("m: training epochs 1-2 on 4 × CPU · data parallel "
                                     "(batch 64 = 4 × 16)")


def test_text_view_caps_lines_for_long_runs():
    out = io.StringIO()
    view, state = TextView(stream=out), RunState(name="m", epochs=1000)
    view.start(state)
    for e in range(1000):
        state.begin_epoch(e)
        state.end_epoch({"loss": 1.0})
        view.epoch(state)
    assert len(out.getvalue().splitlines()) <= MAX_LINES + 2
    assert "epoch 1000/1000" in out.getvalue()


def test_quiet_view_says_one_line():
    out = io.StringIO()
    view, state = QuietView(stream=out), RunState(name="m", epochs=2)
    view.start(state)
    state.begin_epoch(0)
    state.end_epoch({"loss": 1.0})
    view.epoch(state)
    state.finish("completed")
    view.finish(state)
    assert len(out.getvalue().splitlines()) == 1


def test_choose_view():
    class Kernelish:
        kernel = object()
    assert isinstance(choose_view(None), TextView)
    assert isinstance(choose_view(Kernelish(), quiet=True), QuietView)
    assert type(choose_view(Kernelish(), text=True)) is TextView
    assert type(choose_view(Kernelish(), mode="text")) is TextView
    assert choose_view(Kernelish()).kind == "html"


def test_record_table_has_current_and_best_of_every_metric():
    state = RunState(name="m", epochs=2)
    state.end_epoch({"loss": 1.0, "val_loss": 0.5, "accuracy": 0.4, "val_accuracy": 0.6})
    state.end_epoch({"loss": 0.8, "val_loss": 0.7, "accuracy": 0.5, "val_accuracy": 0.55})
    html = metrics_table_html(state)
    assert "<table" in html and "val" in html
    assert "0.7000" in html and "0.5000" in html and "<small>(1)</small>" in html
    state.finish("stopped", "stopped at epoch 3 of 10")
    record = StaticRecord(state)
    assert "stopped at epoch 3 of 10" in record.html
    assert "stopped at epoch 3 of 10" in repr(record)


def _panel(monkeypatch, **kwargs):
    """A panel whose two outputs are recorded: shown[handle] = the latest object."""
    from nbkeras.view import panel as panel_mod
    shown, log = {}, []

    class Handle:
        def __init__(self, n):
            self.n, self.display_id = n, f"id{n}"

        def update(self, obj, raw=False):
            if raw:  # the live updates send mime bundles
                obj = panel_mod.Html(obj["text/html"], obj.get("text/plain", ""))
            shown[self.n] = obj
            log.append(("update", self.n))

    def display(obj, display_id=None):
        n = len([k for k, _ in log if k == "display"])
        shown[n] = obj
        log.append(("display", n))
        return Handle(n)

    monkeypatch.setattr("IPython.display.display", display)
    return panel_mod.Panel(**kwargs), shown, log


def _done(html):
    import re
    return [int(n) for n in re.findall(r"data-epochs-done='(\d+)'", html)]


def test_panel_shows_every_part_from_one_snapshot_and_leaves_the_record(monkeypatch):
    p, shown, log = _panel(monkeypatch, update_interval=0.0)
    state = RunState(name="m", epochs=10, steps=20)
    state.begin_epoch(0)
    p.start(state)
    assert log == [("display", 0), ("display", 1)]   # the panel, then a place for the record's chart
    assert "compiling…" in shown[0].html and shown[1].html == ""
    state.end_batch(1)
    state.end_batch(10)
    state.add_trace(1.5)
    p.batch(state)
    assert "10/20" in shown[0].html and "<svg" in shown[0].html   # the trace alone draws
    for e in range(3):
        if e:
            state.begin_epoch(e)
        state.end_epoch({"loss": 1.0 / (e + 1), "val_loss": 1.1 / (e + 1)})
        p.epoch(state)
        # one message: header/bar/table agree, and the chart is redrawn with the new epoch
        assert log[-1] == ("update", 0)
        assert set(_done(shown[0].html)) == {e + 1}
        assert f"{e + 1}/10" in shown[0].html and "20/20" in shown[0].html  # batch bar full
        assert shown[0].html.count("<svg") == 1
        assert shown[0]._repr_mimebundle_()["text/plain"].startswith("m: epoch")
    state.finish("stopped", "stopped at epoch 4 of 10")
    p.finish(state)
    assert log[-2:] == [("update", 0), ("update", 1)]      # the record in place, then the chart
    assert "stopped at epoch 4 of 10" in shown[0].html and "<svg" not in shown[0].html
    data, meta = shown[1]._repr_mimebundle_()
    assert data["image/png"].startswith(b"\x89PNG")
    assert meta["image/png"]["width"] > 0                          # shown at its CSS size


def test_the_panel_creates_no_widget(monkeypatch):
    import ipywidgets
    from ipywidgets.widgets.widget import _instances
    before = set(_instances)
    p, _, _ = _panel(monkeypatch)
    state = RunState(name="m", epochs=1, steps=2)
    p.start(state)
    state.begin_epoch(0)
    state.end_epoch({"loss": 1.0})
    p.epoch(state)
    state.finish("completed")
    p.finish(state)
    assert set(_instances) == before and ipywidgets


def test_every_epoch_end_is_shown_within_a_tenth_of_a_second_whatever_the_throttle():
    from nbkeras.train.callback import EPOCH_DRAW_INTERVAL, LiveCallback
    clock = [0.0]
    drawn = []   # (time, epochs shown)

    class View(RecordingView):
        coalesce = True

        def batch(self, state):
            drawn.append((clock[0], state.epochs_recorded(), "batch"))

        def epoch(self, state):
            drawn.append((clock[0], state.epochs_recorded(), "epoch"))

    state = RunState(name="m", epochs=40, steps=20)
    cb = LiveCallback(state, View(), update_interval=3600, clock=lambda: clock[0])
    cb.on_train_begin()
    ends = []
    for e in range(40):          # epochs of 20 ms: 1 ms a batch
        cb.on_epoch_begin(e)
        for b in range(20):
            clock[0] += 0.001
            cb.on_train_batch_end(b, {"loss": 1.0})
        cb.on_epoch_end(e, {"loss": 1.0 / (e + 1)})
        ends.append(clock[0])
    cb.on_train_end()
    for e, t in enumerate(ends, start=1):
        shown = [when for when, n, _ in drawn if n >= e]
        assert shown and shown[0] - t <= EPOCH_DRAW_INTERVAL + 0.002, (e, t, shown[:1])
    assert drawn[-1][1] == 40
    assert len(drawn) <= 0.8 / EPOCH_DRAW_INTERVAL + 2  # 0.8 s of training: ~9 draws, not 40


def test_slow_epochs_are_each_drawn_at_once(live):
    cb, state, view, _ = live
    cb.update_interval = 3600
    cb.on_train_begin()
    for e in range(3):
        cb.on_epoch_begin(e)
        cb.on_train_batch_end(0, {"loss": 1.0})
        cb._last_draw = -1e9      # an epoch longer than the interval
        cb.on_epoch_end(e, {"loss": 1.0 / (e + 1)})
    assert len(view.kinds("epoch")) == 3

def test_batch_ends_out_of_order_never_move_the_bar_back(live):
    cb, state, _, _ = live
    cb.on_epoch_begin(0)
    for b in (0, 4, 2, 3):   # Keras' worker threads may finish in any order
        cb.on_train_batch_end(b, {"loss": 1.0})
    assert state.step == 5
    cb.closed = True          # after the run ended: late batch ends are ignored
    cb.on_train_batch_end(9, {"loss": math.nan})
    assert state.step == 5


def test_rates_leave_out_compiling_and_each_epochs_start(monkeypatch):
    from nbkeras.view import progress
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    state = RunState(name="m", epochs=3, steps=100)
    state.begin_epoch(0)
    assert state.compiling() and "compiling…" in panel_html(state)
    now[0] += 5.0                       # the first step: tracing and compiling
    state.end_batch(1)
    assert not state.compiling()
    for step in range(2, 101):          # then 100 steps a second
        now[0] += 0.01
        state.end_batch(step)
    assert state.batch_rate() == pytest.approx(100, rel=0.01)
    now[0] += 0.5                       # validation
    state.end_epoch({"loss": 1.0})
    assert state.epoch_times[0] == pytest.approx(1.49, abs=0.02)   # 5 s of compiling left out
    state.begin_epoch(1)
    now[0] += 0.3                       # the epoch's data iterator
    state.end_batch(1)
    assert state.batch_rate() == pytest.approx(100, rel=0.01)     # not 1 batch in 0.3 s
    assert state.epoch_eta() == pytest.approx(0.99, abs=0.02)
    assert "ETA 1.0s" in panel_html(state) or "ETA 0.9" in panel_html(state)


class _DeviceScalar:
    """Stands in for a backend tensor: counts the reads to the host (`float`)."""

    reads = 0

    def __init__(self, value):
        self.value = value

    def __float__(self):
        type(self).reads += 1
        return float(self.value)


def test_batch_ends_read_the_loss_off_the_device_only_when_drawing():
    """1,000 batches of 1 ms with a 0.2 s redraw interval: ~5 reads, not 1,000."""
    from nbkeras.train.callback import LiveCallback
    clock = [0.0]
    state = RunState(name="m", epochs=1, steps=1000)
    cb = LiveCallback(state, RecordingView(), update_interval=0.2, clock=lambda: clock[0])
    _DeviceScalar.reads = 0
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    for b in range(1000):
        clock[0] += 0.001
        cb.on_train_batch_end(b, {"loss": _DeviceScalar(0.5)})
    draws = len(cb.view.kinds("batch"))
    assert 4 <= draws <= 6
    assert _DeviceScalar.reads == draws        # one read per redraw, none otherwise
    cb.on_epoch_end(0, {"loss": _DeviceScalar(0.5)})
    assert _DeviceScalar.reads == draws + 1    # the epoch end reads it once (NaN check)
    assert state.history["loss"] == [0.5]


def test_nan_between_redraws_is_caught_at_the_next_redraw_or_the_epoch_end():
    from nbkeras.train.callback import LiveCallback, NonFiniteLoss
    clock = [0.0]
    state = RunState(name="m", epochs=2, steps=100)
    cb = LiveCallback(state, RecordingView(), update_interval=0.2, clock=lambda: clock[0])
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_train_batch_end(0, {"loss": 1.0})          # drawn at t=0
    for b in range(1, 50):                          # NaN from batch 2, not drawn yet
        clock[0] += 0.001
        cb.on_train_batch_end(b, {"loss": math.nan})
    with pytest.raises(NonFiniteLoss) as err:       # the epoch end sees it
        cb.on_epoch_end(0, {"loss": math.nan})
    assert (err.value.epoch, err.value.batch) == (1, 50)
    cb2 = LiveCallback(RunState(name="m", epochs=1, steps=400), RecordingView(),
                       update_interval=0.2, clock=lambda: clock[0])
    cb2.on_epoch_begin(0)
    with pytest.raises(NonFiniteLoss) as err:       # a redraw due sees it first
        for b in range(400):
            clock[0] += 0.001
            cb2.on_train_batch_end(b, {"loss": math.nan if b > 100 else 1.0})
    assert err.value.batch <= 102 + 200


def test_nbkeras_batch_hooks_are_async_safe_or_absent():
    """Keras runs batch ends on its worker threads only when every callback allows it."""
    import keras

    from keras.src import utils
    from nbkeras.train.callback import LiveCallback
    from nbkeras.train.telemetry import TelemetryCallback
    for cls in (LiveCallback, TelemetryCallback):
        hooks = [getattr(cls, h) for h in ("on_batch_end", "on_train_batch_end",
                                           "on_test_batch_end", "on_predict_batch_end",
                                           "on_train_batch_begin", "on_batch_begin")]
        assert getattr(cls, "async_safe", False) or all(utils.is_default(h) for h in hooks), cls
    assert keras.callbacks.Callback  # the Keras API the check relies on
