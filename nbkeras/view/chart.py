"""The live history chart: inline SVG built from the run's numbers.

A matplotlib render costs about 100 ms, more than a short epoch, so the
live panel could redraw its PNG only now and then and short runs never
saw their curves move. This module writes the same chart as an SVG string
in plain Python (well under a millisecond for a typical run), which the
panel shows as an HTML output updated in place: it renders in
JupyterLab, Notebook 7, VS Code and Colab without a custom frontend.

The output stays small however long the run: each curve is cut down to at
most `MAX_POINTS` points (the lowest and highest value of each stretch of
epochs, so no spike is lost), coordinates are rounded to a tenth of a pixel
and written relative to the previous point. Text uses JupyterLab's CSS
variables, with fallbacks, so it is readable in a dark theme too.

`nbkeras.view.plots.record_png` draws the final PNG record with the same
layout, axes and ticks (`layout`, `x_axis`, `y_axis`), so replacing the
live chart by the record does not make the output jump.

Imports no Keras, no matplotlib and no ipywidgets.
"""

from __future__ import annotations

import html
import math
from typing import Dict, List, Optional, Sequence, Tuple

from ..metricvocab import lower_is_better
from .axes import MAX_PANELS, Axis, families, layout, x_axis, y_axis
from .progress import RunState, is_plotted

PANEL_WIDTH = 300    # CSS pixels of one panel
PANEL_HEIGHT = 200
MAX_POINTS = 200     # points per curve, however many epochs

# The plot area inside a panel: CSS pixels from the panel's left, top, right, bottom.
MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT, MARGIN_BOTTOM = 50, 26, 16, 38

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
BEST_COLOR = "#d62728"
FONT_SIZE = 12       # CSS px: tick labels, legend, "epoch"
TITLE_SIZE = 13

_FONT = "var(--jp-ui-font-family,sans-serif)"
_TEXT = "var(--jp-ui-font-color1,#333)"
_GRID = "var(--jp-border-color2,#ddd)"
_AXIS = "var(--jp-border-color1,#999)"


# -- curves ---------------------------------------------------------------------------

def curve_runs(xs: Sequence[float], ys: Sequence[float]) -> List[List[Tuple[float, float]]]:
    """The finite stretches of a curve, at most `MAX_POINTS` points in all.

    A longer curve is cut into `MAX_POINTS // 2` stretches of x, each kept
    as its lowest and highest point (in x order): no spike is lost. A stretch
    with no finite value is a gap; shorter gaps vanish when downsampled.
    """
    isfinite = math.isfinite
    n = len(ys)
    runs: List[List[Tuple[float, float]]] = []
    if n <= MAX_POINTS:
        run: List[Tuple[float, float]] = []
        for x, y in zip(xs, ys):
            if isfinite(y):
                run.append((x, y))
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
        return runs
    buckets = MAX_POINTS // 2
    run = []
    for b in range(buckets):
        i0, i1 = n * b // buckets, n * (b + 1) // buckets
        chunk = ys[i0:i1]
        if isfinite(sum(chunk)):   # the common case, at C speed
            low, high = i0 + chunk.index(min(chunk)), i0 + chunk.index(max(chunk))
        else:
            finite = [i for i in range(i0, i1) if isfinite(ys[i])]
            if not finite:
                if run:
                    runs.append(run)
                    run = []
                continue
            low = min(finite, key=ys.__getitem__)
            high = max(finite, key=ys.__getitem__)
        for i in ((low, high) if low < high else (high, low) if high < low else (low,)):
            run.append((xs[i], ys[i]))
    if run:
        runs.append(run)
    return runs


_TENTHS: Dict[int, str] = {}


def _t(tenths: int) -> str:
    """An integer number of tenths of a pixel, written short: 12 -> '1.2', -5 -> '-.5'."""
    text = _TENTHS.get(tenths)
    if text is None:
        q, r = divmod(abs(tenths), 10)
        text = ("-" if tenths < 0 else "") + (str(q) if q or not r else "") + (f".{r}" if r else "")
        if len(_TENTHS) < 20000:
            _TENTHS[tenths] = text
    return text


class _Frame:
    """Maps data to CSS pixels inside one panel's plot area."""

    def __init__(self, xaxis: Axis, yaxis: Axis):
        self.x0 = MARGIN_LEFT
        self.y0 = MARGIN_TOP
        self.w = PANEL_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
        self.h = PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
        self.xlo = xaxis.lo
        self.sx = self.w / (xaxis.hi - xaxis.lo)
        self.log = yaxis.scale == "log"
        if self.log:
            self.yhi = math.log10(yaxis.hi)
            self.sy = self.h / (self.yhi - math.log10(yaxis.lo))
        else:
            self.yhi = yaxis.hi
            self.sy = self.h / (yaxis.hi - yaxis.lo)

    def px(self, x: float) -> float:
        return self.x0 + (x - self.xlo) * self.sx

    def py(self, y: float) -> float:
        if self.log:
            y = math.log10(y)
        return self.y0 + (self.yhi - y) * self.sy

    def tenths(self, run: List[Tuple[float, float]]) -> List[Tuple[int, int]]:
        """The run's points in tenths of a pixel (rounded half up: coordinates are positive)."""
        x0, y0, xlo, sx, yhi, sy = self.x0, self.y0, self.xlo, self.sx, self.yhi, self.sy
        log10 = math.log10
        if self.log:
            return [(int((x0 + (x - xlo) * sx) * 10 + 0.5),
                     int((y0 + (yhi - log10(y)) * sy) * 10 + 0.5)) for x, y in run]
        return [(int((x0 + (x - xlo) * sx) * 10 + 0.5),
                 int((y0 + (yhi - y) * sy) * 10 + 0.5)) for x, y in run]


def _curve(frame: _Frame, runs, color: str, extra: str = "", title: str = "") -> str:
    """A path through the runs (one subpath each), and a dot for a run of one point."""
    parts, dots = [], []
    for run in runs:
        points = frame.tenths(run)
        if len(points) == 1:
            x, y = points[0]
            dots.append(f'<circle cx="{_t(x)}" cy="{_t(y)}" r="2.5" fill="{color}"/>')
            continue
        x, y = points[0]
        seg = [f"M{_t(x)},{_t(y)}l"]
        for nx, ny in points[1:]:
            dy = _t(ny - y)
            seg.append(_t(nx - x) + ("" if dy[0] == "-" else ",") + dy + " ")
            x, y = nx, ny
        parts.append("".join(seg).rstrip())
    out = ""
    if parts:
        end = f"><title>{title}</title></path>" if title else "/>"
        out = f'<path d="{"".join(parts)}" stroke="{color}"{extra}{end}'
    return out + "".join(dots)


# -- the chart ---------------------------------------------------------------------------

def lower_is_better_in(state: RunState, metric: str) -> bool:
    """Whether smaller values of `metric` are better in this run: the
    direction the run knows from the compiled model's metrics, if any
    (`RunState.directions`), else `metricvocab`'s name rules."""
    mode = (getattr(state, "directions", None) or {}).get(metric)
    return mode == "min" if mode else lower_is_better(metric)


def best_point(state: RunState, family: str, has_val: bool):
    """(key, value, epoch) of the best epoch marked in `family`'s panel: on the
    val curve when `has_val` (it has a finite value), else on the train curve.
    Values per `RunState.best`, at C speed when a long history is all finite.
    (None, None, None) when there is no finite value."""
    key = "val_" + family if has_val else family
    values = state.history.get(key) or []
    if len(values) > MAX_POINTS and math.isfinite(sum(values)):
        value = (min if lower_is_better_in(state, key) else max)(values)
        return key, value, values.index(value) + 1
    value, epoch = state.best(key)
    return key, value, epoch


def legend_items(has_val: bool):
    """(label, colour, text width in CSS px) of the legend's entries."""
    return ([("train", TRAIN_COLOR, 28)] + ([("val", VAL_COLOR, 18)] if has_val else [])
            + [("best", BEST_COLOR, 24)])


def legend_width(has_val: bool) -> int:
    """CSS pixels the legend takes at the right of the first panel's title row."""
    return sum(18 + w + 10 for _, _, w in legend_items(has_val)) - 10


def _legend(has_val: bool) -> str:
    """train / val / best, right-aligned in the first panel's title row."""
    x = PANEL_WIDTH - MARGIN_RIGHT - legend_width(has_val)
    out = []
    for label, color, width in legend_items(has_val):
        if label == "best":
            out.append(f'<circle cx="{x + 7}" cy="12" r="4" fill="{color}"/>')
        else:
            out.append(f'<path d="M{x},12h14" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{x + 18}" y="16">{label}</text>')
        x += 18 + width + 10
    return "".join(out)


def short_title(name: str, room: float) -> str:
    """`name` cut with an ellipsis to about `room` CSS pixels of bold 13 px text."""
    most = max(4, int(room / 7.8))
    return name if len(name) <= most else name[:most - 1] + "\u2026"


def _panel(state: RunState, fam: str, xaxis: Axis, trace_runs, trace_values,
           legend: Optional[bool]) -> str:
    train = state.history.get(fam) or []
    val = state.history.get("val_" + fam) or []
    xs = range(1, max(len(train), len(val)) + 1)
    train_runs, val_runs = curve_runs(xs, train), curve_runs(xs, val)
    # the runs keep each stretch's lowest and highest value: the true range
    values = [y for run in train_runs + val_runs for _, y in run] + trace_values
    yaxis = y_axis(values, fam, lower_is_better_in(state, fam))
    frame = _Frame(xaxis, yaxis)
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = left + frame.w, top + frame.h

    grid = []
    ylabels = []
    for tick, label in zip(yaxis.ticks, yaxis.labels):
        y = _t(int(frame.py(tick) * 10 + 0.5))
        grid.append(f"M{left},{y}H{right}")
        ylabels.append(f'<text x="{left - 6}" y="{y}" dy="4">{label}</text>')
    xlabels = []
    for tick, label in zip(xaxis.ticks, xaxis.labels):
        x = int(frame.px(tick) * 10 + 0.5)
        grid.append(f"M{_t(x)},{top}V{bottom}")
        # a long last label ('10000') is nudged left to stay inside the panel
        x = min(x, (PANEL_WIDTH - 2) * 10 - len(label) * 35)
        xlabels.append(f'<text x="{_t(x)}" y="{bottom + 16}">{label}</text>')

    marks = []
    for e in state.phases:  # --fine-tune: where the base was unfrozen
        if xaxis.lo <= e + 0.5 <= xaxis.hi:
            x = _t(int(frame.px(e + 0.5) * 10 + 0.5))
            marks.append(f'<path class="phase" data-epoch="{e + 1}" d="M{x},{top}V{bottom}" '
                         f'stroke-dasharray="4 3" style="stroke:{_AXIS}">'
                         f"<title>fine-tuning from epoch {e + 1}</title></path>")
            label_x = _t(int(frame.px(e + 0.5) * 10 + 0.5) + 30)
            marks.append(f'<text class="phase-label" x="{label_x}" y="{top + 11}" '
                         f'font-size="10" style="fill:{_TEXT}" opacity=".7">fine-tune</text>')

    curves = []
    if trace_runs:
        curves.append(_curve(frame, trace_runs, TRAIN_COLOR,
                             ' stroke-width="1.4" stroke-opacity=".55"',
                             title="mean batch loss of the epoch in progress"))
    curves.append(_curve(frame, train_runs, TRAIN_COLOR))
    if val_runs:
        curves.append(_curve(frame, val_runs, VAL_COLOR))

    best_key, value, epoch = best_point(state, fam, bool(val_runs))
    best = ""
    if epoch is not None:
        cx, cy = frame.px(epoch), frame.py(value)
        best = (f'<circle class="best" data-epoch="{epoch}" cx="{_t(int(cx * 10 + 0.5))}" '
                f'cy="{_t(int(cy * 10 + 0.5))}" r="4" fill="{BEST_COLOR}">'
                f"<title>best {html.escape(best_key)} {value:.4g} at epoch {epoch}</title>"
                "</circle>")

    room = PANEL_WIDTH - 8 - MARGIN_RIGHT - (legend_width(legend) + 10 if legend is not None else 0)
    title = html.escape(short_title(fam, room))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" '
        f'viewBox="0 0 {PANEL_WIDTH} {PANEL_HEIGHT}" data-family="{html.escape(fam)}" '
        f'data-scale="{yaxis.scale}" style="flex:none;max-width:100%;height:auto;'
        f'font:{FONT_SIZE}px {_FONT};fill:{_TEXT}">'
        f'<path d="{"".join(grid)}" fill="none" style="stroke:{_GRID}"/>'
        f'<path d="M{left},{top}V{bottom}H{right}" fill="none" style="stroke:{_AXIS}"/>'
        f'{"".join(marks)}'
        f'<g text-anchor="end">{"".join(ylabels)}</g>'
        f'<g text-anchor="middle">{"".join(xlabels)}'
        f'<text x="{(left + right) // 2}" y="{PANEL_HEIGHT - 5}">epoch</text></g>'
        f'<g fill="none" stroke-width="1.6" stroke-linejoin="round">{"".join(curves)}</g>'
        f"{best}"
        f'<text x="8" y="16" font-size="{TITLE_SIZE}" font-weight="bold">{title}</text>'
        f'{_legend(legend) if legend is not None else ""}'
        "</svg>"
    )


def x_last(state) -> int:
    """The x axis' last epoch: the planned last epoch while the run trains
    (the axis never rescales mid-run), the last one recorded once it ended
    (a run stopped at 3 of 200 is not squeezed into the left edge)."""
    recorded = state.epochs_recorded()
    if state.status != "running" and recorded:
        return recorded
    return max(state.epochs, recorded, 1)


def chart_svg(state: RunState, trace: Optional[Sequence[Tuple[float, float]]] = None,
              width: Optional[int] = None) -> str:
    """HTML for the live chart: one `<svg>` panel per metric family.

    Panels (loss first, then accuracy, ...; at most `MAX_PANELS`; no
    learning rate) sit in a flex-wrap `<div>` as wide as `layout` says, so
    they form the same grid as the PNG record and wrap in a narrower output
    area. Each panel shows the train curve and the validation curve
    (`val_` + family) in two colours and the best epoch as a red dot (on
    the val curve when there is one, per `RunState.best`); the legend is
    drawn once, in the first panel. NaN and inf are gaps; a lone value is a
    dot.

    Epochs are numbered 1..N at their ends: the value logged at the end of
    epoch `e` is drawn at x = `e`. The x axis spans 1 to
    `max(state.epochs, epochs recorded)` while the run trains, and to the
    last epoch recorded once it has ended (`x_last`).

    Args:
        state: the run.
        trace: optional `(x, loss)` pairs, the running mean batch loss of the
            epoch in progress, drawn as a faint line on the loss panel so a
            long epoch shows movement. Same convention: epoch `e` (1-based)
            runs from x = `e - 1` to x = `e`, so a quarter into epoch 4 is
            x = 3.25, and the trace ends where the epoch's own point will be
            drawn (Keras' batch loss is the running mean, equal to the
            epoch's loss at its end). While epoch 1 is traced the x axis
            starts at 0.
        width: the CSS pixels available, when known: fewer columns if the
            grid would be wider. Defaults to `None` (the `layout` grid; the
            browser still wraps the panels in a narrower output area).

    Returns:
        The HTML, or `''` when there is nothing to draw (no epoch recorded
        and no trace).

    Example:

    >>> state = RunState(epochs=10, history={"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    >>> chart_svg(state).count("<svg")
    1
    """
    trace_runs, trace_values, trace_lo, trace_hi = [], [], None, None
    if trace:
        xs = [float(x) for x, _ in trace]
        ys = [float(y) for _, y in trace]
        trace_runs = curve_runs(xs, ys)
        trace_values = [y for run in trace_runs for _, y in run]
        if trace_values:
            trace_lo = min(x for run in trace_runs for x, _ in run)
            trace_hi = max(x for run in trace_runs for x, _ in run)
        else:
            trace_runs = []
    recorded = state.epochs_recorded()
    fams = families(state)
    if trace_runs and "loss" not in fams:
        fams = ["loss"] + fams[:MAX_PANELS - 1]
    if not fams or (recorded == 0 and not trace_runs):
        return ""
    last = x_last(state)
    first = 1
    if trace_runs:
        last = max(last, math.ceil(trace_hi))
        if trace_lo < 1:
            first = 0
    xaxis = x_axis(last, first)
    has_val = any(k.startswith("val_") and is_plotted(k) for k in state.history)
    panels = []
    for i, fam in enumerate(fams):
        on_loss = fam == "loss"
        panels.append(_panel(state, fam, xaxis, trace_runs if on_loss else None,
                             trace_values if on_loss else [], has_val if i == 0 else None))
    columns, _ = layout(len(fams))
    if width:
        columns = max(1, min(columns, int(width) // PANEL_WIDTH))
    return (f'<div class="nbkeras-chart" style="display:flex;flex-wrap:wrap;'
            f'max-width:{columns * PANEL_WIDTH}px">{"".join(panels)}</div>')
