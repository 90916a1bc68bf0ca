"""A compact model summary: one row per layer, HTML in notebooks, text elsewhere.

Keras' own `model.summary()` prints a wide box-drawn table to stdout; in a
notebook cell output a small HTML table reads better and survives in the
saved notebook. `ModelSummary` is a display object with both an HTML and a
plain-text form, so IPython picks whichever the frontend shows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, List, Tuple


def _shape(layer) -> str:
    try:
        out = layer.output
    except Exception:  # noqa: BLE001 - shared layers have several outputs
        return "multiple"
    if isinstance(out, (list, tuple)):
        return ", ".join(str(tuple(o.shape)) for o in out)
    return str(tuple(out.shape))


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


def _weights_count(weights) -> int:
    total = 0
    for w in weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total


def _is_model(layer) -> bool:
    import keras
    return isinstance(layer, keras.Model)


def _kind(layer) -> str:
    """The layer's class; a model inside the model (a `base`) says whether it trains."""
    if not _is_model(layer):
        return type(layer).__name__
    if layer.trainable and all(sub.trainable for sub in layer.layers):
        return "base, trainable"
    trains = _weights_count(layer.trainable_weights)
    return "base, frozen" if not trains else f"base, {trains:,} params trainable"


@dataclass
class ModelSummary:
    """Rows (name, kind, output shape, params) and totals of a model; for a spec
    with search spaces, one row per space (name, domain, value built at)."""

    name: str
    rows: List[Tuple[str, str, str, int]]
    total: int
    trainable: int
    spaces: List[Tuple[str, str, str]] = field(default_factory=list)
    frozen_label: bool = False  # a model with a base says "frozen" for what does not train

    @classmethod
    def of(cls, model, spaces=(), values=None) -> "ModelSummary":
        """The summary of `model`; `spaces` are the spec's `Space`s and `values`
        the value each was built at (default: its default)."""
        rows = [(layer.name, _kind(layer), _shape(layer), layer.count_params())
                for layer in model.layers]
        trainable = _weights_count(model.trainable_weights)
        values = values or {}
        space_rows = [(s.name, s.domain, _value(values.get(s.name, s.default))) for s in spaces]
        summary = cls(model.name, rows, model.count_params(), trainable, space_rows)
        summary.frozen_label = any(_is_model(layer) for layer in model.layers)
        return summary

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable

    def totals(self) -> str:
        word = "frozen" if self.frozen_label else "non-trainable"
        return (f"Total params: {self.total:,} (trainable {self.trainable:,}, "
                f"{word} {self.non_trainable:,})")

    def __repr__(self) -> str:
        header = ("layer", "kind", "output shape", "params")
        rows = [header] + [(n, k, s, f"{p:,}") for n, k, s, p in self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"Model: {self.name}"]
        for r in rows:
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        lines.append(self.totals())
        if self.spaces:
            lines.append(f"Search spaces ({len(self.spaces)}, built at the value shown):")
            width = max(len(n) for n, _, _ in self.spaces)
            dwidth = max(len(d) for _, d, _ in self.spaces)
            for n, domain, value in self.spaces:
                lines.append(f"  {n.ljust(width)}  {domain.ljust(dwidth)}  = {value}")
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
                f"<div>{e(self.totals())}</div>{self._spaces_html()}</div>")

    def _spaces_html(self) -> str:
        if not self.spaces:
            return ""
        e = html.escape
        body = "".join(f"<tr><td>{e(n)}</td><td><code>{e(d)}</code></td><td>{e(v)}</td></tr>"
                       for n, d, v in self.spaces)
        return (f"<b>Search spaces ({len(self.spaces)})</b><table><thead><tr><th>space</th>"
                f"<th>domain</th><th>built at</th></tr></thead><tbody>{body}</tbody></table>")


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
