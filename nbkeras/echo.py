"""Keep a magic's return value out of its own cell's output.

`%fit` returns the Keras `History` so that `h = %fit ...` works, but when
`%fit` is the last line of a cell IPython would also echo
`<keras...History at 0x7f...>` under the panel that already shows the run.
`without_echo` marks the object so that this one echo shows nothing; the
mark is cleared when the cell ends, so displaying `h` later works as usual.
"""

from __future__ import annotations

from typing import Any, Dict

_QUIET: Dict[type, type] = {}
_FLAG = "_nbkeras_no_echo"


def _ipython_display_(self) -> None:
    if self.__dict__.get(_FLAG):
        return
    from IPython.display import display
    from IPython.lib.pretty import pretty
    display({"text/plain": pretty(_plain(self))}, raw=True)


class _Plain:
    def __init__(self, obj):
        self.obj = obj

    def __repr__(self):
        return object.__repr__(self.obj)


def _plain(obj):
    return _Plain(obj)


def without_echo(shell, obj: Any) -> Any:
    """Return `obj`, made silent for the automatic echo of the current cell."""
    if obj is None or shell is None:
        return obj
    cls = type(obj)
    quiet = _QUIET.get(cls)
    if quiet is None:
        quiet = type(cls.__name__, (cls,), {"_ipython_display_": _ipython_display_,
                                           "__module__": cls.__module__})
        _QUIET[cls] = quiet
    try:
        obj.__class__ = quiet
        obj.__dict__[_FLAG] = True
    except (TypeError, AttributeError):
        return obj

    def clear(*_args):
        obj.__dict__.pop(_FLAG, None)
        try:
            shell.events.unregister("post_run_cell", clear)
        except ValueError:
            pass

    shell.events.register("post_run_cell", clear)
    return obj
