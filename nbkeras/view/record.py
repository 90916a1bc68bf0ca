"""The panel's HTML, live and as the static record left in the notebook.

One function renders every part of the panel (header, epoch bar, batch
bar with rate and ETA, metric table) from one snapshot of the `RunState`,
so no two parts can disagree. The same HTML, with the run's final state,
is the static record: widgets need a kernel to render, a notebook reopened
later, converted with nbconvert or shown on GitHub has none. The chart of
the record is one PNG (`plots.record_png`), at 2x for HiDPI screens and
shown at the live chart's size, so nothing jumps when the record replaces
the panel. Imports no Keras.

A reader meets the record untrusted (a notebook from elsewhere, executed
headlessly, shown by nbconvert or GitHub), where sanitizers keep only
plain inline styles: JupyterLab's and Notebook 7's drop any declaration
that is not a literal value (so `var(--jp-...)` loses a bar's fill and the
status its colour), GitHub drops styles altogether. So the record's styles
are literal: text inherits the theme's colour and font, the status colours
are mid-tones that read on a light and a dark background alike (about 4:1
on both), lines and tracks are translucent grey; and each bar carries, at
font size 0, the same fraction as text (`█████░░░░░`), which shows where
no style survives.
"""

from __future__ import annotations

import html
from typing import Optional, Tuple

from .progress import RunState, fmt, fmt_duration

# Mid-tones: about 4:1 on white and on JupyterLab Dark's #111 alike.
_STATUS_COLOR = {"completed": "#2b8a3e", "running": "#1b7bd6", "stopped": "#dc4638",
                 "failed": "#dc4638"}
_GREY = "rgba(128,128,128,0.35)"   # lines and bar tracks, on either background
_FONT = "font-size:13px;line-height:1.5"   # family and colour: the theme's, inherited
_CELL = f"padding:2px 10px;text-align:right;border-bottom:1px solid {_GREY}"
BAR_WIDTH = 260


def metrics_table_html(state: RunState) -> str:
    """Value and best of every metric, train and val, for the weights the model holds."""
    has_val = any(k.startswith("val_") for k in state.history)
    at = ""
    if state.weights_epoch is not None:
        at = f" <small>(epoch {state.weights_epoch})</small>"
    head = [f"<th style='{_CELL};text-align:left'></th>", f"<th style='{_CELL}'>train{at}</th>",
            f"<th style='{_CELL}'>best (epoch)</th>"]
    if has_val:
        head += [f"<th style='{_CELL}'>val{at}</th>", f"<th style='{_CELL}'>best (epoch)</th>"]
    rows = []
    for fam in state.metrics():
        cells = [f"<td style='{_CELL};text-align:left'><b>{html.escape(fam)}</b></td>"]
        for key in [fam] + (["val_" + fam] if has_val else []):
            value, epoch = state.best(key)
            best = f"{fmt(value)} <small>({epoch})</small>" if epoch else ""
            cells.append(f"<td style='{_CELL}'>{fmt(state.held(key))}</td>"
                         f"<td style='{_CELL}'>{best}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='nbkeras-metrics' data-epochs-done='{state.epochs_recorded()}' "
            "style='border-collapse:collapse;margin-top:4px;font-variant-numeric:tabular-nums'>"
            f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


BAR_CELLS = 20   # characters of the text bar (where no style survives)


def bar_html(fraction: float, color: str, width: int = BAR_WIDTH) -> str:
    """A bar `fraction` full, of plain inline styles only (they survive
    JupyterLab's sanitizer); its text twin shows where styles do not."""
    fraction = min(max(fraction, 0.0), 1.0)
    full = round(fraction * BAR_CELLS)
    text = "█" * full + "░" * (BAR_CELLS - full)
    return (f"<span class='nbkeras-bar' style='display:inline-block;width:{width}px;height:9px;"
            f"background:{_GREY};border-radius:4px;vertical-align:middle;font-size:0'>"
            f"<span class='nbkeras-bar-fill' style='display:block;width:{fraction * 100:.1f}%;"
            f"height:9px;background:{color};border-radius:4px'></span>"
            f"<span class='nbkeras-bar-text'>{text}</span></span>")


def _rate(rate: Optional[float]) -> str:
    return f"{rate:.0f} batch/s" if rate >= 10 else f"{rate:.2f} batch/s"


def panel_html(state: RunState) -> str:
    """Header, epoch bar, batch bar and table, from one snapshot of `state`."""
    color = _STATUS_COLOR.get(state.status, _STATUS_COLOR["running"])
    running = state.status == "running"
    done = state.epochs_recorded()
    status = "compiling…" if state.compiling() else (
        "training" if running else state.status_line())
    header = (f"<div class='nbkeras-header'><b>{html.escape(state.name)}</b> · "
              f"<span class='nbkeras-status' style='color:{color}'>{html.escape(status)}</span> · "
              f"{html.escape(state.device)}"
              + (f" · {state.step_size} steps per call" if state.step_size > 1 else "")
              + (f" · <span class='nbkeras-telemetry'>{html.escape(state.telemetry)}</span>"
                 if state.telemetry else "")
              + f" · {fmt_duration(state.elapsed())}</div>")
    epoch_text = f"{done}/{state.epochs}"
    eta = state.run_eta() if running else None
    if eta is not None:
        epoch_text += f" · ETA {fmt_duration(eta)}"
    lines = [header, _row("epochs", state.epochs and done / state.epochs, color, epoch_text,
                          "nbkeras-epochs")]
    if running:
        step, steps = state.step, state.steps
        parts = [f"{step}/{steps}" if steps else f"{step}"]
        if state.compiling():
            parts.append("compiling…")
        else:
            rate = state.batch_rate()
            if rate:
                parts.append(_rate(rate))
            if state.epoch_eta() is not None and not (steps and step >= steps):
                parts.append(f"ETA {fmt_duration(state.epoch_eta())}")
        if state.batch_split:
            parts.append(state.batch_split)
        label = f"epoch {max(state.epoch, 1)}"
        lines.append(_row(label, (step / steps) if steps else 0.0, color, " · ".join(parts),
                          "nbkeras-batches"))
    elif state.steps:  # the record keeps the row, so nothing jumps, with the last rate
        parts = [f"{state.steps}/{state.steps} batches"]
        if state.epoch_times:
            mean = sum(state.epoch_times) / len(state.epoch_times)
            parts.append(f"{fmt_duration(mean)} per epoch")
        if state.batch_split:
            parts.append(state.batch_split)
        lines.append(_row(f"epoch {max(state.epoch, 1)}", 1.0, color, " · ".join(parts),
                          "nbkeras-batches"))
    if state.history:
        lines.append(metrics_table_html(state))
    return (f"<div class='nbkeras-panel' data-status='{state.status}' "
            f"data-epochs-done='{done}' style='{_FONT}'>" + "".join(lines) + "</div>")


def _row(label: str, fraction: float, color: str, text: str, cls: str) -> str:
    return (f"<div class='{cls}'><span style='display:inline-block;width:64px;"
            f"white-space:nowrap'>{label}</span> "
            f"{bar_html(fraction, color)} <span class='{cls}-text'>{html.escape(text)}</span></div>")


class StaticRecord:
    """The final panel as HTML, with a plain-text summary for text frontends."""

    def __init__(self, state: RunState):
        self.html = panel_html(state)
        self.text = state.summary()

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html, "text/plain": self.text}

    def __repr__(self) -> str:
        return self.text


class PlotImage:
    """The final chart as a 2x PNG, shown at its CSS size."""

    def __init__(self, png: bytes, name: str = "model", size: Optional[Tuple[int, int]] = None):
        self.png, self.name, self.size = png, name, size

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {"image/png": self.png, "text/plain": f"<history plot of {self.name}>"}
        if self.size is None:
            return data
        return data, {"image/png": {"width": self.size[0], "height": self.size[1]}}


def record_chart(state: RunState) -> Optional[PlotImage]:
    """The record's chart (None when no epoch was recorded)."""
    from .plots import record_png
    made = record_png(state)
    if made is None:
        return None
    png, width, height = made
    return PlotImage(png, state.name, (width, height))


def show_record(state: RunState, handle=None, chart_handle=None) -> None:
    """Leave the static record: the HTML in place of the live panel, the PNG
    in place of the live chart (or below it when there was none)."""
    from IPython.display import display

    record = StaticRecord(state)
    if handle is not None:
        handle.update(record)
    else:
        display(record)
    chart = record_chart(state)
    if chart_handle is not None:
        chart_handle.update(chart if chart is not None else _Empty())
    elif chart is not None:
        display(chart)


class _Empty:
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": ""}
