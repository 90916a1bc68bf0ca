"""A run's options as the `%fit` line that produced them.

The registry stores a run's options as the argparse namespace of its `%fit`
line (plus `epochs_planned` and `initial_epoch`, which the plan adds). A user
reads `%fit digits x y -e 20 --val-split 0.2` at a glance where a dict of
thirty keys says little, so the sidebar and `%models --compare` show this
line. The flags and their defaults come from the options table that the
`%fit` magic is declared from (`nbkeras.options.training`), so a new flag
shows without a change here. Imports no Keras and no IPython.
"""

from __future__ import annotations

import shlex
from typing import Any, Dict, List, Optional, Tuple

def _fit_actions() -> list:
    from .training import fit_parser
    return list(fit_parser()._actions)


def _word(value: Any) -> str:
    text = value if isinstance(value, str) else (
        repr(value) if isinstance(value, float) else str(value))
    # expressions keep their brackets and spaces; quote only what would split
    return text if text and not any(c.isspace() for c in text) else shlex.quote(text)


def fit_flags(options: Dict[str, Any]) -> List[Tuple[str, str]]:
    """The non-default flags of a run as (flag, value) pairs, in the parser's
    order; value is '' for a switch.

    Example:
        >>> fit_flags({"epochs": 20, "batch_size": 32, "val_split": 0.2, "jit": False})
        [('-e', '20'), ('--val-split', '0.2')]
    """
    out: List[Tuple[str, str]] = []
    resume = bool(options.get("resume"))
    for action in _fit_actions():
        if not action.option_strings or action.dest not in options:
            continue
        value = options[action.dest]
        if value is None or value is False or value == action.default:
            continue
        # the plan fills initial_epoch (0 by default, computed for --resume)
        if action.dest == "initial_epoch" and (resume or value == 0):
            continue
        flag = action.option_strings[0]
        if action.nargs == 0:
            out.append((flag, ""))
        elif isinstance(value, list):
            out.append((flag, " ".join(_word(v) for v in value)))
        else:
            out.append((flag, _word(value)))
    return out


def fit_line(model: str, options: Optional[Dict[str, Any]]) -> str:
    """The `%fit` line of a run with these options (only non-default flags).

    Example:
        >>> fit_line("digits", {"name": "digits", "x": "x", "y": "y", "epochs": 20,
        ...                     "batch_size": 32, "val_split": 0.2, "no_shuffle": False,
        ...                     "epochs_planned": 20, "initial_epoch": 0})
        '%fit digits x y -e 20 --val-split 0.2'
    """
    options = options or {}
    words = ["%fit", str(options.get("name") or model)]
    for key in ("x", "y"):
        if options.get(key):
            words.append(str(options[key]))
    for flag, value in fit_flags(options):
        words.append(f"{flag} {value}" if value else flag)
    return " ".join(words)


def option_differences(runs: List[Dict[str, Any]]) -> List[Tuple[str, List[str]]]:
    """The `%fit` flags whose values differ between runs: [(flag, [value per
    run, '' where unset, 'on' for a switch])], in the parser's order; the
    data expressions `x` and `y` first when they differ."""
    per_run = [dict(fit_flags(r.get("options") or {})) for r in runs]
    flags: List[str] = []
    for flags_of in per_run:
        for flag in flags_of:
            if flag not in flags:
                flags.append(flag)
    actions = _fit_actions()
    order = {a.option_strings[0]: i for i, a in enumerate(actions) if a.option_strings}
    flags.sort(key=lambda f: order.get(f, len(order)))  # the parser's order (stable otherwise)
    out = []
    for flag in flags:
        values = [("on" if f[flag] == "" else f[flag]) if flag in f else "" for f in per_run]
        if len(set(values)) > 1:
            out.append((flag, values))
    for key in ("x", "y"):
        values = [str((r.get("options") or {}).get(key) or "") for r in runs]
        if len(set(values)) > 1:
            out.insert(0, (key, values))
    return out
