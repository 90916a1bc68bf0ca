"""A compact model summary: one row per layer, HTML in notebooks, text elsewhere.

Keras' own `model.summary()` prints a wide box-drawn table to stdout; in a
notebook cell output a small HTML table reads better and survives in the
saved notebook. `ModelSummary` is a display object with both an HTML and a
plain-text form, so IPython picks whichever the frontend shows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import List, Tuple


def _shape(layer) -> str:
    try:
        out = layer.output
    except Exception:  # noqa: BLE001 - shared layers have several outputs
        return "multiple"
    if isinstance(out, (list, tuple)):
        return ", ".join(str(tuple(o.shape)) for o in out)
    return str(tuple(out.shape))


def _weights_count(weights) -> int:
    total = 0
    for w in weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total


@dataclass
class ModelSummary:
    """Rows (name, kind, output shape, params) and totals of a model."""

    name: str
    rows: List[Tuple[str, str, str, int]]
    total: int
    trainable: int

    @classmethod
    def of(cls, model) -> "ModelSummary":
        rows = [(layer.name, type(layer).__name__, _shape(layer), layer.count_params())
                for layer in model.layers]
        trainable = _weights_count(model.trainable_weights)
        return cls(model.name, rows, model.count_params(), trainable)

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable

    def totals(self) -> str:
        return (f"Total params: {self.total:,} (trainable {self.trainable:,}, "
                f"non-trainable {self.non_trainable:,})")

    def __repr__(self) -> str:
        header = ("layer", "kind", "output shape", "params")
        rows = [header] + [(n, k, s, f"{p:,}") for n, k, s, p in self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"Model: {self.name}"]
        for r in rows:
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        lines.append(self.totals())
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))

    def _repr_html_(self) -> str:
        e = html.escape
        body = "".join(
            f"<tr><td>{e(n)}</td><td>{e(k)}</td><td><code>{e(s)}</code></td>"
            f"<td style='text-align:right'>{p:,}</td></tr>" for n, k, s, p in self.rows)
        return (f"<div class='nbkeras-summary'><b>Model: {e(self.name)}</b>"
                "<table><thead><tr><th>layer</th><th>kind</th><th>output shape</th>"
                f"<th>params</th></tr></thead><tbody>{body}</tbody></table>"
                f"<div>{e(self.totals())}</div></div>")


class CodeView:
    """Python code shown highlighted-as-preformatted in notebooks, plain elsewhere."""

    def __init__(self, code: str):
        self.code = code

    def __repr__(self) -> str:
        return self.code

    def _repr_pretty_(self, p, cycle):
        p.text(self.code)

    def _repr_html_(self) -> str:
        return f"<pre class='nbkeras-code'><code>{html.escape(self.code)}</code></pre>"

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code}```"
