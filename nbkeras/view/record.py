"""The static record a `%fit` cell leaves in the saved notebook.

Widgets need a kernel to render; a notebook reopened later, converted with
nbconvert or shown on GitHub has none. So when a run ends, however it ends,
the live panel is replaced by plain HTML (the final metrics table and the
status) and one PNG of the history plot. Both are small, and their size
does not grow with the number of batches or epochs, which keeps one
`%fit` cell's outputs far under 100 KB. Imports no Keras.
"""

from __future__ import annotations

import html
from typing import Optional

from .progress import RunState, fmt, fmt_duration

_STATUS_COLOR = {"completed": "#2ca02c", "running": "#1f77b4",
                 "stopped": "#d62728", "failed": "#d62728"}


def metrics_table_html(state: RunState) -> str:
    """The table of current and best value of every metric, train and val."""
    rows = []
    has_val = any(k.startswith("val_") for k in state.history)
    for fam in state.metrics():
        cells = [f"<td style='text-align:left'><b>{html.escape(fam)}</b></td>"]
        keys = [fam] + (["val_" + fam] if has_val else [])
        for key in keys:
            cur = state.current(key)
            value, epoch = state.best(key)
            best = f"{fmt(value)} <small>(ep {epoch})</small>" if epoch else ""
            cells.append(f"<td>{fmt(cur)}</td><td>{best}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "<th></th><th>train</th><th>best</th>"
    if has_val:
        head += "<th>val</th><th>best</th>"
    return ("<table class='nbkeras-metrics' style='border-collapse:collapse;font-size:12px'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def bar_html(fraction: float, color: str, width: int = 240) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    return (f"<div style='display:inline-block;width:{width}px;height:8px;background:#e0e0e0;"
            f"border-radius:3px;vertical-align:middle'><div style='width:{fraction * 100:.1f}%;"
            f"height:8px;background:{color};border-radius:3px'></div></div>")


def header_html(state: RunState) -> str:
    color = _STATUS_COLOR.get(state.status, "#1f77b4")
    done = state.epoch if state.status == "running" else state.epochs_recorded()
    fraction = done / state.epochs if state.epochs else 1.0
    return (f"<div style='font-size:12px'><b>{html.escape(state.name)}</b> "
            f"<span style='color:{color}'>{html.escape(state.status_line())}</span> "
            f"{bar_html(fraction, color)} · {html.escape(state.device)} · "
            f"{fmt_duration(state.elapsed())}</div>")


class StaticRecord:
    """The final table as HTML, with a plain-text summary for text frontends."""

    def __init__(self, state: RunState):
        self.html = header_html(state) + metrics_table_html(state)
        self.text = state.summary()

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html, "text/plain": self.text}

    def __repr__(self) -> str:
        return self.text


class PlotImage:
    """The final history plot as a PNG output."""

    def __init__(self, png: bytes, name: str = "model"):
        self.png = png
        self.name = name

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"image/png": self.png, "text/plain": f"<history plot of {self.name}>"}


def show_record(state: RunState, png: Optional[bytes], handle=None) -> None:
    """Leave the static record: replace `handle`'s output (the live panel), then the plot."""
    from IPython.display import display

    record = StaticRecord(state)
    if handle is not None:
        handle.update(record)
    else:
        display(record)
    if png:
        display(PlotImage(png, state.name))
