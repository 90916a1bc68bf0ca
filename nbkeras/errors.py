"""Errors a user can cause, and how IPython shows them.

Every mistake a user can make in a magic raises a subclass of
`NbkerasError`. The Python API raises them like any exception; inside a
notebook `load_ipython_extension` installs `show_short_error` so that the
user sees one short message instead of a traceback, while the exception
object stays what it is (tests can still catch a `SpecError`).
"""

from __future__ import annotations

import difflib
from typing import Iterable, Optional


class NbkerasError(Exception):
    """Base class of the errors a user can cause."""


class SpecError(NbkerasError, ValueError):
    """A mistake in a `%%model` spec.

    Args:
        message: what is wrong, quoting the offending text, with a hint.
        line: 1-based line in the cell body (``None`` when it concerns the
            whole cell).
        column: 1-based column of the offending text.
        text: the offending text itself.
    """

    def __init__(self, message: str, line: Optional[int] = None,
                 column: Optional[int] = None, text: Optional[str] = None):
        self.message = message
        self.line = line
        self.column = column
        self.text = text
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        where = f"line {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message}"

    def __reduce__(self):
        return (type(self), (self.message, self.line, self.column, self.text))


class DataError(NbkerasError, ValueError):
    """The data given to `%fit`, `%evaluate` or `%predict` does not fit the model."""


class UsageError(NbkerasError):
    """A magic was called with arguments that cannot work (unknown model, bad
    flag value, a missing optional package), in any magic."""


FitUsageError = UsageError  # the name before 0.2, when only %fit raised it


class TrainingStopped(NbkerasError):
    """The user stopped `%fit` (interrupt or stop button): the weights and the
    partial history are kept, and the cell ends as interrupted so that
    Jupyter skips the cells queued after it."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str:
    """Return ' (did you mean `x`?)' for the closest choice, or ''."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"`{lowered[c]}`" for c in close) + "?)"


def show_short_error(shell, etype, evalue, tb, tb_offset=None):
    """IPython custom exception handler: one line, no traceback."""
    stb = [f"{etype.__name__}: {evalue}"]
    shell._showtraceback(etype, evalue, stb)
    return stb
