"""`%fit` returns the History without echoing it under its own panel."""

from nbkeras.echo import without_echo


class Result:
    def __init__(self):
        self.history = {"loss": [1.0]}


def test_echo_is_silent_in_the_cell_then_normal(ip):
    obj = without_echo(ip, Result())
    data, _ = ip.display_formatter.format(obj)
    assert data == {}  # the cell's own echo shows nothing
    assert isinstance(obj, Result) and obj.history == {"loss": [1.0]}
    ip.run_cell("pass")  # the cell ended: later displays show the object
    shown = []
    import IPython.display as d
    original = d.display
    d.display = lambda *a, **k: shown.append(a)
    try:
        ip.display_formatter.format(obj)
    finally:
        d.display = original
    assert shown and "Result object at" in shown[0][0]["text/plain"]


def test_none_stays_none(ip):
    assert without_echo(ip, None) is None
