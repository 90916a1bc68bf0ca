"""What the results magics share: finding the model a user named, evaluating
their data expressions, telling a classifier from a regressor, and a small
table that shows as HTML in a notebook and as text elsewhere.

Keras is imported lazily (only when a model is looked at), so importing
this module stays cheap.
"""

from __future__ import annotations

import html
import re
import math
import sys
from typing import Any, List, Optional, Sequence

from ..fmt import fmt, fmt_duration  # noqa: F401  (the one number format)
from ..errors import DataError, UsageError, did_you_mean


def is_keras_model(obj: Any) -> bool:
    """Whether `obj` is a `keras.Model` (never imports Keras to find out)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def get_model(shell, name: str, doing: str = "use"):
    """The Keras model bound to `name` in the notebook.

    Raises:
        UsageError: no such name, it is not a Keras model, or it is training
            in the background (`doing` says what was asked: 'evaluate').
    """
    ns = shell.user_ns
    if name not in ns:
        models = [k for k, v in ns.items() if not k.startswith("_") and is_keras_model(v)]
        hint = did_you_mean(name, models)
        if not hint and models:
            hint = " (models in this notebook: " + ", ".join(f"`{m}`" for m in models) + ")"
        raise UsageError(f"no model named `{name}`{hint}; build one with `%%model {name}`")
    model = ns[name]
    if not is_keras_model(model):
        raise UsageError(f"`{name}` is a {type(model).__name__}, not a Keras model")
    from ..train.background import check_free
    check_free(name, model, doing)
    return model


class FigureView:
    """A matplotlib figure shown as a 2x PNG at its size in CSS pixels,
    whatever the kernel's matplotlib backend (inline, Agg, a widget one):
    IPython shows a figure as an image only under the inline backend, and
    as the text `<Figure size 520x442 with 2 Axes>` otherwise. Its
    background is transparent and its frame text mid-grey
    (`nbkeras.view.plots.neutral`), so it reads in a light and a dark theme.

    Attributes:
        figure: the figure (closed: it is only drawn here).
    """

    def __init__(self, figure):
        import io
        self.figure = figure
        from PIL import Image
        from ..view.plots import neutral, quantized_png
        neutral(figure)  # transparent, mid-tone text: reads in a light and a dark theme
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=2 * figure.dpi, bbox_inches="tight",
                       transparent=True)
        image = Image.open(io.BytesIO(buf.getvalue())).convert("RGBA")
        width, height = image.size
        self.size = (width // 2, height // 2)
        # a palette of 128 colours: sharp, and a third of true colour's bytes
        self.png = quantized_png(image.tobytes(), image.size, 128)
        import matplotlib.pyplot as plt
        plt.close(figure)

    def __repr__(self) -> str:
        return f"<figure {self.size[0]}x{self.size[1]}>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        import base64
        data = {"image/png": base64.b64encode(self.png).decode("ascii"),
                "text/plain": repr(self)}
        return data, {"image/png": {"width": self.size[0], "height": self.size[1]}}


def show_figure(figure):
    """Display `figure` (a `FigureView`) and return the figure."""
    from IPython.display import display
    display(FigureView(figure))
    return figure


def evaluate_expr(shell, expr: str, what: str) -> Any:
    """Evaluate a data expression in the notebook namespace.

    Raises:
        UsageError: the expression fails, quoting it and the reason.
    """
    try:
        return shell.ev(expr)
    except Exception as e:  # noqa: BLE001 - any user error becomes one short line
        hint = ""
        if isinstance(e, NameError):
            names = [k for k in shell.user_ns if not k.startswith("_")]
            missing = getattr(e, "name", None) or expr
            hint = did_you_mean(missing, names)
        raise UsageError(f"cannot evaluate {what} `{expr}`: {type(e).__name__}: {e}{hint}")


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
    or 'regression', for a single-output model; 'multi' for several outputs.
    The kind itself is `metricvocab.output_kind`'s (the one vocabulary)."""
    from ..metricvocab import output_kind as kind_of
    if len(getattr(model, "outputs", None) or []) != 1:
        return "multi"
    layer = model.layers[-1] if model.layers else None
    kind = kind_of(layer, getattr(model, "loss", None))
    return {"classifier": "softmax", "binary": "sigmoid", "multilabel": "sigmoid"}.get(kind, kind)


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


_NUMBER = re.compile(r"^[-+]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?( \(\d+\))?%?$|^$|^–$")
_CELL = ("padding:3px 12px;border-bottom:1px solid var(--jp-border-color2,#e0e0e0);"
         "white-space:nowrap;font-variant-numeric:tabular-nums")


class Table:
    """Rows of cells that display as an HTML table in a notebook and as
    aligned text in a terminal.

    Text columns are left-aligned, number columns right-aligned, no cell
    wraps; a headline (the numbers a reader looks for first) stands above
    the table in the notebook's body size, not in small print under it.
    Colours follow the notebook's theme.

    Args:
        columns: the header.
        rows: the cells (anything printable).
        title: a line above the table.
        note: a line below it.
        colors: per row, a CSS color for the whole row or None.
        headline: the key numbers, shown above the table.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 title: str = "", note: str = "", colors: Optional[List[Optional[str]]] = None,
                 headline: str = ""):
        self.columns = list(columns)
        self.rows = [["" if c is None else str(c) for c in row] for row in rows]
        self.title = title
        self.note = note
        self.headline = headline
        self.colors = colors or [None] * len(self.rows)

    def numeric(self, i: int) -> bool:
        """Whether column `i` holds numbers only (right-aligned)."""
        cells = [r[i] for r in self.rows if i < len(r)]
        return bool(cells) and any(cells) and all(_NUMBER.match(c) for c in cells)

    def __repr__(self) -> str:
        widths = [max([len(c)] + [len(r[i]) for r in self.rows])
                  for i, c in enumerate(self.columns)]
        right = [self.numeric(i) for i in range(len(self.columns))]
        line = lambda cells: "  ".join(c.rjust(w) if r else c.ljust(w)
                                       for c, w, r in zip(cells, widths, right)).rstrip()
        out = [self.title] if self.title else []
        if self.headline:
            out.append(self.headline)
        out += [line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        if self.note:
            out.append(self.note)
        return "\n".join(out)

    def _repr_html_(self) -> str:
        esc = html.escape
        align = ["right" if self.numeric(i) else "left" for i in range(len(self.columns))]
        parts = [f"<div class='nbkeras-table-wrap' style='font-family:var(--jp-ui-font-family,"
                 "sans-serif);color:var(--jp-ui-font-color1,#333)'>"]
        if self.title:
            parts.append(f"<div style='font-weight:600;margin:2px 0 4px'>{esc(self.title)}</div>")
        if self.headline:
            parts.append(f"<div class='nbkeras-headline' style='font-size:1.15em;margin:0 0 6px'>"
                         f"{esc(self.headline)}</div>")
        parts.append("<table class='nbkeras-table' style='border-collapse:collapse'><thead><tr>")
        parts.append("".join(f"<th style='{_CELL};text-align:{a}'>{esc(c)}</th>"
                             for c, a in zip(self.columns, align)))
        parts.append("</tr></thead><tbody>")
        for row, color in zip(self.rows, self.colors):
            style = f" style='color:{color}'" if color else ""
            parts.append(f"<tr{style}>" + "".join(
                f"<td style='{_CELL};text-align:{a}'>{esc(c)}</td>"
                for c, a in zip(row, align)) + "</tr>")
        parts.append("</tbody></table>")
        if self.note:
            parts.append(f"<div style='margin-top:4px;color:var(--jp-ui-font-color2,#666)'>"
                         f"{esc(self.note)}</div>")
        parts.append("</div>")
        return "".join(parts)
