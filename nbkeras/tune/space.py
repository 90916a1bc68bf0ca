"""A spec's search spaces as Optuna suggestions, and as a grid.

Optuna's categorical suggestions take only None, bool, int, float and str,
so a choice among other values (a `3x3` kernel size is a tuple) is
suggested by its index and mapped back. Imports neither Keras nor Optuna.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from ..errors import UsageError

_PLAIN = (type(None), bool, int, float, str)


def _plain(choices: Sequence[Any]) -> bool:
    return all(isinstance(c, _PLAIN) for c in choices)


def suggest(trial, space) -> Any:
    """The value Optuna's `trial` picks for one `Space`."""
    if space.kind == "choice":
        if _plain(space.choices):
            return trial.suggest_categorical(space.name, list(space.choices))
        index = trial.suggest_categorical(space.name, list(range(len(space.choices))))
        return space.choices[index]
    if space.kind == "int":
        return trial.suggest_int(space.name, int(space.low), int(space.high),
                                 step=int(space.step or 1), log=space.log)
    return trial.suggest_float(space.name, float(space.low), float(space.high),
                               step=space.step, log=space.log)


def value_of(space, param: Any) -> Any:
    """The spec's value for an Optuna parameter (the choice an index stands for)."""
    if space.kind == "choice" and not _plain(space.choices):
        return space.choices[int(param)]
    return param


def grid(spaces) -> Dict[str, List[Any]]:
    """The search space of Optuna's `GridSampler`: every space must be a choice
    or a stepped range (`32..256:32`); otherwise a one-line refusal."""
    out: Dict[str, List[Any]] = {}
    for space in spaces:
        if space.kind == "choice":
            out[space.name] = (list(space.choices) if _plain(space.choices)
                               else list(range(len(space.choices))))
        elif space.step is not None and not space.log:
            values, v = [], space.low
            while v <= space.high + 1e-12 * abs(space.high or 1):
                values.append(int(v) if space.kind == "int" else round(v, 12))
                v += space.step
            out[space.name] = values
        else:
            raise UsageError(f"--sampler grid needs every space to be a choice or a stepped "
                             f"range, but `{space.name}` is {space.domain} (line {space.line}): "
                             f"give it a step, like `{space.low}..{space.high}:STEP`, or use "
                             "--sampler tpe")
    return out
