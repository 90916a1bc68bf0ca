"""Keep a magic's return value out of its own cell's output.

`%fit` returns the plain Keras `History` so that `h = %fit ...` works, but
when `%fit` is the last line of a cell IPython would also echo
`<keras...History at 0x7f...>` under the panel that already shows the run.
`without_echo` leaves the object untouched: for the rest of the cell it
registers a printer for the object's type with IPython's display
formatter that shows nothing for this very object (IPython then sends no
output at all), and removes the printer when the cell ends, so displaying
`h` later works as usual.
"""

from __future__ import annotations

from typing import Any


def without_echo(shell, obj: Any) -> Any:
    """Return `obj` unchanged, silent for the automatic echo of the current cell."""
    if obj is None or shell is None or getattr(shell, "display_formatter", None) is None:
        return obj
    formatter = shell.display_formatter.ipython_display_formatter
    cls = type(obj)
    try:
        previous = formatter.lookup_by_type(cls)
    except KeyError:
        previous = None

    def printer(value):
        if value is obj:
            return  # handled: nothing is shown
        if previous is not None:
            previous(value)
            return
        from IPython.display import display
        from IPython.lib.pretty import pretty
        display({"text/plain": pretty(value)}, raw=True)

    formatter.for_type(cls, printer)

    def clear(*_args):
        try:
            shell.events.unregister("post_run_cell", clear)
        except ValueError:
            pass
        if formatter.type_printers.get(cls) is printer:
            if previous is None:
                formatter.type_printers.pop(cls, None)
            else:
                formatter.for_type(cls, previous)

    shell.events.register("post_run_cell", clear)
    return obj
