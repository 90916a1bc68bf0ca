"""What the results magics share: finding the model a user named, evaluating
their data expressions, telling a classifier from a regressor, and a small
table that shows as HTML in a notebook and as text elsewhere.

Keras is imported lazily (only when a model is looked at), so importing
this module stays cheap.
"""

from __future__ import annotations

import html
import math
import sys
from typing import Any, List, Optional, Sequence

from ..fmt import fmt, fmt_duration  # noqa: F401  (the one number format)
from ..errors import DataError, FitUsageError, did_you_mean


def is_keras_model(obj: Any) -> bool:
    """Whether `obj` is a `keras.Model` (never imports Keras to find out)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def get_model(shell, name: str):
    """The Keras model bound to `name` in the notebook.

    Raises:
        FitUsageError: no such name, or it is not a Keras model.
    """
    ns = shell.user_ns
    if name not in ns:
        models = [k for k, v in ns.items() if not k.startswith("_") and is_keras_model(v)]
        hint = did_you_mean(name, models)
        if not hint and models:
            hint = " (models in this notebook: " + ", ".join(f"`{m}`" for m in models) + ")"
        raise FitUsageError(f"no model named `{name}`{hint}; build one with `%%model {name}`")
    model = ns[name]
    if not is_keras_model(model):
        raise FitUsageError(f"`{name}` is a {type(model).__name__}, not a Keras model")
    return model


def evaluate_expr(shell, expr: str, what: str) -> Any:
    """Evaluate a data expression in the notebook namespace.

    Raises:
        FitUsageError: the expression fails, quoting it and the reason.
    """
    try:
        return shell.ev(expr)
    except Exception as e:  # noqa: BLE001 - any user error becomes one short line
        hint = ""
        if isinstance(e, NameError):
            names = [k for k in shell.user_ns if not k.startswith("_")]
            missing = getattr(e, "name", None) or expr
            hint = did_you_mean(missing, names)
        raise FitUsageError(f"cannot evaluate {what} `{expr}`: {type(e).__name__}: {e}{hint}")


def n_samples(data: Any) -> Optional[int]:
    """Number of samples of an array, a list/dict of arrays, or a DataFrame."""
    if isinstance(data, dict):
        sizes = {n_samples(v) for v in data.values()}
        return sizes.pop() if len(sizes) == 1 else None
    if isinstance(data, (list, tuple)) and data and hasattr(data[0], "shape"):
        sizes = {n_samples(v) for v in data}
        return sizes.pop() if len(sizes) == 1 else None
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape):
        return int(shape[0])
    try:
        return len(data)
    except TypeError:
        return None


def check_inputs(model, x, what: str = "X") -> None:
    """A short `DataError` when a single-input model gets arrays of the wrong shape."""
    if len(getattr(model, "inputs", None) or []) != 1 or not hasattr(x, "shape"):
        return
    expected = tuple(model.inputs[0].shape)[1:]
    got = tuple(x.shape)[1:]
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
        exp = "x".join("?" if e is None else str(e) for e in expected) or "scalars"
        fix = "give the model's input shape"
        if None not in expected and math.prod(expected) == math.prod(got):
            fix = f"reshape it: `{what}.reshape(-1, {', '.join(str(e) for e in expected)})`"
        raise DataError(f"`{what}` has samples of shape {'x'.join(map(str, got)) or 'scalar'} "
                        f"but the model takes samples of shape {exp}; {fix}")


def output_kind(model) -> str:
    """'softmax', 'sigmoid', 'logits' (a cross-entropy loss on a linear output)
    or 'regression', for a single-output model; 'multi' for several outputs."""
    if len(getattr(model, "outputs", None) or []) != 1:
        return "multi"
    layer = model.layers[-1] if model.layers else None
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "") or type(act).__name__
    name = name.lower()
    if "softmax" in name:
        return "softmax"
    if "sigmoid" in name:
        return "sigmoid"
    loss = getattr(model, "loss", None)
    loss_name = (loss if isinstance(loss, str) else
                 getattr(loss, "name", None) or getattr(loss, "__name__", "") or "")
    if "crossentropy" in str(loss_name).lower():
        return "logits"
    return "regression"


def class_indices(pred, kind: str):
    """Predicted class per sample: argmax, or a threshold for one unit."""
    import numpy as np
    pred = np.asarray(pred)
    if pred.ndim == 2 and pred.shape[1] == 1 or pred.ndim == 1:
        threshold = 0.0 if kind == "logits" else 0.5
        return (pred.reshape(len(pred)) > threshold).astype("int64")
    if kind == "sigmoid":  # several independent sigmoid units: multi-label
        return (pred > 0.5).astype("int64")
    return pred.argmax(axis=-1)


def label_indices(y):
    """True labels as class indices (one-hot rows become their argmax)."""
    import numpy as np
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=-1)
    return y.reshape(len(y)).astype("int64")


class Table:
    """Rows of cells that display as an HTML table in a notebook and as
    aligned text in a terminal.

    Args:
        columns: the header.
        rows: the cells (anything printable).
        title: a line above the table.
        note: a line below it.
        colors: per row, a CSS color for the whole row or None.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 title: str = "", note: str = "", colors: Optional[List[Optional[str]]] = None):
        self.columns = list(columns)
        self.rows = [["" if c is None else str(c) for c in row] for row in rows]
        self.title = title
        self.note = note
        self.colors = colors or [None] * len(self.rows)

    def __repr__(self) -> str:
        widths = [max([len(c)] + [len(r[i]) for r in self.rows])
                  for i, c in enumerate(self.columns)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        out = [self.title] if self.title else []
        out += [line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        if self.note:
            out.append(self.note)
        return "\n".join(out)

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f"<p><b>{esc(self.title)}</b></p>" if self.title else "",
                 "<table class='nbkeras-table'><thead><tr>",
                 "".join(f"<th>{esc(c)}</th>" for c in self.columns),
                 "</tr></thead><tbody>"]
        for row, color in zip(self.rows, self.colors):
            style = f" style='color:{color}'" if color else ""
            parts.append(f"<tr{style}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
        parts.append("</tbody></table>")
        if self.note:
            parts.append(f"<p><i>{esc(self.note)}</i></p>")
        return "".join(parts)
