"""`%fit` returns the History without echoing it under its own panel, and
without altering the object (its type, pickling)."""

import pickle

from nbkeras.notebook.echo import without_echo


class Result:
    def __init__(self):
        self.history = {"loss": [1.0]}


def test_echo_is_silent_in_the_cell_then_normal(ip):
    obj = without_echo(ip, Result())
    data, _ = ip.display_formatter.format(obj)
    assert data == {}  # the cell's own echo shows nothing
    assert type(obj) is Result and obj.history == {"loss": [1.0]}
    assert pickle.loads(pickle.dumps(obj)).history == {"loss": [1.0]}
    ip.run_cell("pass")  # the cell ended: later displays show the object
    data, _ = ip.display_formatter.format(obj)
    assert "Result at 0x" in data["text/plain"]


def test_another_object_of_the_type_still_shows_in_the_cell(ip):
    quiet = without_echo(ip, Result())
    other = Result()
    shown = []
    import IPython.display as d
    original = d.display
    d.display = lambda *a, **k: shown.append(a)
    try:
        ip.display_formatter.format(other)
    finally:
        d.display = original
    assert shown and "Result at 0x" in shown[0][0]["text/plain"]
    assert ip.display_formatter.format(quiet)[0] == {}
    ip.run_cell("pass")


def test_none_stays_none(ip):
    assert without_echo(ip, None) is None


def test_a_bare_evaluate_shows_its_tables_but_no_dict_echo(ip, capsys):
    ip.run_cell("""
import numpy as np, keras
x = np.random.default_rng(0).random((40, 4)).astype('float32'); y = (x[:, 0] > 0.5).astype('int64')
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation='softmax')])
m.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])
""").raise_error()
    capsys.readouterr()
    result = ip.run_cell("%evaluate m x y --no-plots")
    out = capsys.readouterr().out
    assert "precision" in out                            # the table is shown
    assert "{'accuracy'" not in out                     # the dict is not echoed
    assert "accuracy" in result.result                   # but returned: r = %evaluate ...
    data, _ = ip.display_formatter.format(result.result)
    assert "accuracy" in data["text/plain"]              # and shows later as usual
