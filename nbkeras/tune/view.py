"""`%tune`'s live display and the record it leaves.

Like `%fit`'s panel, two HTML outputs updated in place (no widgets): the
search (progress, ETA from the trials so far, the trial in flight with
its epoch bar, one row per trial with the best highlighted) and a chart
of the objective by trial with the best-so-far line, drawn by the browser
as inline SVG. Every trial end is drawn at once; the trial in flight at
most every `update_interval`. When the search ends the chart becomes one
PNG (matplotlib, rendered once), so the saved cell stays small whatever
the number of trials. Imports no Keras.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..fmt import fmt, fmt_duration
from ..view.chart import x_axis, y_axis
from ..view.panel import Html
from ..view.record import _FONT, _STATUS_COLOR, bar_html

# No style per cell (HTML's own cellpadding/rules): a 50-trial table stays small.

WIDTH, HEIGHT = 600, 220
LEFT, TOP, RIGHT, BOTTOM = 56, 16, 16, 38
_STATE_COLOR = {"complete": "#1f77b4", "pruned": "#9e9e9e", "failed": "#d62728",
                "stopped": "#d62728", "running": "#ff7f0e"}
# A trial's state in the words the sidebar and the registry use for its run
# (Optuna's "pruned" is a run stopped early; the row's tooltip says why).
STATE_WORD = {"complete": "completed", "pruned": "stopped", "failed": "failed",
              "stopped": "stopped", "running": "running"}
PAD = 0.5   # trials of room either side of the chart's first and last point


def better(direction: str) -> str:
    return "lower is better" if direction == "min" else "higher is better"


@dataclass
class TrialRow:
    """One trial as the display shows it."""

    number: int
    values: Dict[str, Any]
    state: str = "running"
    value: Optional[float] = None
    duration: float = 0.0
    message: str = ""
    run_id: Optional[int] = None


@dataclass
class SearchState:
    """What the display reads: the study, its trials, the trial in flight."""

    study: str
    objective: str
    direction: str
    spaces: List[str]
    planned: Optional[int]
    rows: List[TrialRow] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    status: str = "running"
    current: str = ""          # "epoch 4/10 · val_loss 0.31"
    current_fraction: float = 0.0
    current_label: str = ""    # the in-flight bar's label (default: "trial N")
    workers: int = 1           # trials run at once (the ETA divides by it)
    start: int = 0             # trials numbered from here on are this search's (--resume)

    def best(self) -> Optional[TrialRow]:
        done = [r for r in self.rows if r.state == "complete" and r.value is not None]
        if not done:
            return None
        pick = min if self.direction == "min" else max
        return pick(done, key=lambda r: r.value)

    def finished(self) -> List[TrialRow]:
        return [r for r in self.rows if r.state != "running"]

    def new(self) -> List[TrialRow]:
        """This search's ended trials (a resumed study's earlier ones left out):
        what `planned` counts."""
        return [r for r in self.finished() if r.number >= self.start]

    def eta(self) -> Optional[float]:
        ended = self.finished()
        if not ended or not self.planned:
            return None
        mean = sum(r.duration for r in ended) / len(ended)
        left = max(0, self.planned - len(self.new()))
        return -(-left // max(self.workers, 1)) * mean  # rounds of `workers` trials


def search_html(s: SearchState) -> str:
    """Progress, the trial in flight and the trials table, from one snapshot."""
    done = len(s.new())
    earlier = len([r for r in s.rows if r.number < s.start])
    head = (f"<div><b>{html.escape(s.study)}</b> · {html.escape(s.status)} · "
            f"{html.escape(s.objective)} ({better(s.direction)}) · "
            f"{fmt_duration(time.perf_counter() - s.started)}</div>")
    planned = s.planned or max(done, 1)
    text = f"{done}/{s.planned}" if s.planned else f"{done}"
    if earlier:
        text += f" (and {earlier} earlier)"
    eta = s.eta() if s.status == "running" else None
    if eta is not None:
        text += f" · ETA {fmt_duration(eta)}"
    rows = [head, f"<div><span style='display:inline-block;width:64px'>trials</span>"
            f"{bar_html(done / planned, _STATUS_COLOR['running'])} {text}</div>"]
    if s.status == "running" and s.current:
        running = [r.number for r in s.rows if r.state == "running"]
        label = s.current_label or (f"trial {running[-1]}" if running else "trial")
        rows.append(f"<div><span style='display:inline-block;width:64px'>"
                    f"{html.escape(label)}</span>{bar_html(s.current_fraction, '#ff7f0e')} "
                    f"{html.escape(s.current)}</div>")
    rows.append(trials_table(s))
    return f"<div class='nbkeras-tune' data-trials-done='{done}' style='{_FONT}'>{''.join(rows)}</div>"


def trials_table(s: SearchState) -> str:
    best = s.best()
    head = ["trial"] + s.spaces + [s.objective, "state", "time"]
    out = ["<table class='nbkeras-trials' cellpadding='3' rules='rows' frame='hsides' "
           "style='border-collapse:collapse;margin-top:4px;text-align:right;border-color:#8885;"
           "font-variant-numeric:tabular-nums'><thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in s.rows:
        mark = (" style='font-weight:600;background:var(--jp-brand-color3,#e3f2fd)'"
                if r is best else "")
        title = f" title='{html.escape(r.message, quote=True)}'" if r.message else ""
        cells = [str(r.number)] + [_value(r.values.get(n)) for n in s.spaces]
        cells += [fmt(r.value), STATE_WORD.get(r.state, r.state),
                  fmt_duration(r.duration) if r.duration else ""]
        out.append(f"<tr{mark}{title}>" + "".join(
            f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _value(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v)
    if isinstance(v, tuple):
        return "x".join(str(i) for i in v)
    return "" if v is None else str(v)


def objective_svg(s: SearchState) -> str:
    """Each ended trial's objective (dots by state) and the best-so-far line."""
    points = [(r.number, r.value, r.state) for r in s.rows
              if r.value is not None and r.state in ("complete", "pruned")]
    if not points:
        return ""
    xa = x_axis(max(p[0] for p in points), 0 if len(points) > 1 else points[0][0])
    ya = y_axis([p[1] for p in points], s.objective, lower=s.direction == "min")
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    import math
    log = ya.scale == "log"
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    lo, hi = f(ya.lo), f(ya.hi)
    x_lo, x_hi = xa.lo - PAD, xa.hi + PAD   # the last point inside, not on the edge
    px = lambda x: LEFT + (x - x_lo) * w / ((x_hi - x_lo) or 1)
    py = lambda y: TOP + (hi - f(y)) * h / ((hi - lo) or 1)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
           f"data-scale='{ya.scale}' style='font:12px var(--jp-ui-font-family,sans-serif)'>"]
    for t, label in zip(ya.ticks, ya.labels):
        y = py(t)
        out.append(f"<line x1='{LEFT}' x2='{LEFT + w}' y1='{y:.1f}' y2='{y:.1f}' "
                   "stroke='var(--jp-border-color2,#ddd)'/>"
                   f"<text x='{LEFT - 6}' y='{y + 4:.1f}' text-anchor='end' "
                   f"fill='var(--jp-ui-font-color1,#333)'>{label}</text>")
    for t, label in zip(xa.ticks, xa.labels):
        out.append(f"<text x='{px(t):.1f}' y='{TOP + h + 16}' text-anchor='middle' "
                   f"fill='var(--jp-ui-font-color1,#333)'>{label}</text>")
    out.append(f"<text x='{LEFT + w / 2}' y='{HEIGHT - 4}' text-anchor='middle' "
               "fill='var(--jp-ui-font-color1,#333)'>trial</text>")
    best, line = None, []
    for n, v, state in sorted(points):
        if state == "complete" and (best is None or (v < best if s.direction == "min" else v > best)):
            best = v
        if best is not None:
            line.append(f"{px(n):.1f},{py(best):.1f}")
    if line:
        out.append(f"<polyline points='{' '.join(line)}' fill='none' stroke='#d62728' "
                   "stroke-width='1.5'><title>best so far</title></polyline>")
    for n, v, state in points:
        out.append(f"<circle cx='{px(n):.1f}' cy='{py(v):.1f}' r='3.5' "
                   f"fill='{_STATE_COLOR[state]}'><title>trial {n}: {fmt(v)} ({STATE_WORD[state]})"
                   "</title></circle>")
    out.append("</svg>")
    return "".join(out)


def objective_png(s: SearchState) -> Optional[bytes]:
    """The record's chart, at 2x: the objective by trial with the best so far,
    and below it (with two trials or more) a parallel-coordinates view of
    every space against the objective, the best trial in red."""
    points = [(r.number, r.value, r.state) for r in s.rows
              if r.value is not None and r.state in ("complete", "pruned")]
    if not points:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    done = [r for r in s.rows if r.state == "complete" and r.value is not None]
    panels = 2 if len(done) >= 2 and s.spaces else 1
    from ..view.plots import neutral
    # transparent, its text mid-grey (`neutral`): it reads in a light and a dark theme
    fig = Figure(figsize=(WIDTH / 72, panels * HEIGHT / 72), dpi=144, facecolor="none")
    FigureCanvasAgg(fig)
    h = 1 / panels
    ax = fig.add_axes((LEFT / WIDTH, 1 - h + h * BOTTOM / HEIGHT, 1 - (LEFT + RIGHT) / WIDTH,
                       h * (1 - (TOP + BOTTOM) / HEIGHT)), facecolor="none")
    for state in ("complete", "pruned"):
        xs = [p[0] for p in points if p[2] == state]
        if xs:
            ax.scatter(xs, [p[1] for p in points if p[2] == state], s=18,
                       color=_STATE_COLOR[state], label=STATE_WORD[state], zorder=3)
    best, bx, by = None, [], []
    for n, v, state in sorted(points):
        if state == "complete" and (best is None or (v < best if s.direction == "min" else v > best)):
            best = v
        if best is not None:
            bx.append(n)
            by.append(best)
    ax.step(bx, by, where="post", color="#d62728", lw=1.5, label="best so far")
    first, last = min(p[0] for p in points), max(p[0] for p in points)
    ax.set_xlim(min(first, 0) - PAD, last + PAD)
    ax.set_xlabel("trial", fontsize=12)
    ax.set_ylabel(f"{s.objective} ({better(s.direction)})", fontsize=11)
    ax.tick_params(labelsize=11)
    ax.grid(True, color=(0.5, 0.5, 0.5, 0.25))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=10, ncol=3, loc="lower right", bbox_to_anchor=(1, 1.0), frameon=False,
              borderaxespad=0.1, borderpad=0, handletextpad=0.3)
    if panels == 2:
        pax = fig.add_axes((LEFT / WIDTH, h * BOTTOM / HEIGHT, 1 - (LEFT + RIGHT) / WIDTH,
                            h * (1 - (TOP + BOTTOM) / HEIGHT)), facecolor="none")
        _parallel(pax, s, done)
    neutral(fig)
    from ..view.plots import encode_png
    return encode_png(fig, colors=32)


def _parallel(ax, s: SearchState, done: List[TrialRow]) -> None:
    """Each complete trial as a line across one axis per space and the
    objective (each scaled to its own range; choices by their order), the
    objective's best value at the top, as the sidebar draws it."""
    import math
    from ..view.plots import NEUTRAL_TEXT
    names = list(s.spaces) + [s.objective]

    def column(name):
        raw = [r.value if name == s.objective else r.values.get(name) for r in done]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            vals = [float(v) for v in raw]
            if min(vals) > 0 and max(vals) / min(vals) > 20:
                vals = [math.log10(v) for v in vals]
            lo, hi = min(vals), max(vals)
            return [(v - lo) / (hi - lo) if hi > lo else 0.5 for v in vals], \
                (_value(min(raw)), _value(max(raw)))
        order = []
        for v in raw:
            if repr(v) not in order:
                order.append(repr(v))
        n = max(len(order) - 1, 1)
        return [order.index(repr(v)) / n for v in raw], (_value(raw[0]), "")

    cols = [column(n) for n in names]
    if s.direction == "min":  # best (lowest) at the top
        ys, (lo, hi) = cols[-1]
        cols[-1] = ([1 - y for y in ys], (hi, lo))
    best = s.best()
    xs = list(range(len(names)))
    for i, r in enumerate(done):
        ys = [c[0][i] for c in cols]
        is_best = r is best
        ax.plot(xs, ys, color="#d62728" if is_best else "#1f77b4",
                lw=2.2 if is_best else 1.0, alpha=1.0 if is_best else 0.45,
                zorder=3 if is_best else 2)
    for x, (_, (lo, hi)) in zip(xs, cols):
        ax.axvline(x, color=(0.5, 0.5, 0.5, 0.6), lw=0.8)
        ax.text(x, -0.08, lo, ha="center", va="top", fontsize=9, color=NEUTRAL_TEXT)
        if hi:
            ax.text(x, 1.04, hi, ha="center", va="bottom", fontsize=9, color=NEUTRAL_TEXT)
    ax.set_xticks(xs)
    ax.set_xticklabels(names[:-1] + [f"{s.objective}\n(best at the top)"], fontsize=10)
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.12)
    ax.set_xlim(-0.3, len(names) - 0.7)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)


class SearchView:
    """The two live outputs of a search (or nothing, with `--quiet`)."""

    def __init__(self, state: SearchState, quiet: bool = False, update_interval: float = 0.5,
                 text: bool = False):
        self.s, self.quiet, self.interval, self.text = state, quiet, update_interval, text
        self._printed = set()  # trial numbers (workers end trials out of order)
        self._main = self._chart = None
        self._last = 0.0
        self._chart_html = ""

    def start(self) -> None:
        if self.quiet or self.text:
            return
        from IPython.display import display
        self._main = display(Html(search_html(self.s), self.summary()), display_id=True)
        self._chart = display(Html(""), display_id=True)

    def progress(self, text: str, fraction: float) -> None:
        """The trial in flight moved (an epoch ended); throttled."""
        self.s.current, self.s.current_fraction = text, fraction
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self.draw()

    def draw(self) -> None:
        if self.text and not self.quiet:  # no HTML frontend: one line per ended trial
            for r in self.s.finished():
                if r.number in self._printed:
                    continue
                self._printed.add(r.number)
                print(f"trial {r.number}: {r.state} · {self.s.objective} {fmt(r.value)} · "
                      + ", ".join(f"{k} {_value(v)}" for k, v in r.values.items())
                      + (f" · {r.message}" if r.message else ""))
            return
        if self.quiet or self._main is None:
            return
        self._last = time.perf_counter()
        self._main.update(Html(search_html(self.s), self.summary()))
        chart = objective_svg(self.s)
        if chart != self._chart_html:
            self._chart_html = chart
            self._chart.update(Html(chart))

    def finish(self) -> None:
        """The record: the final table, and the chart as one PNG."""
        if self.quiet or self.text:
            self.draw()
            print(self.summary())
            return
        self._main.update(Html(search_html(self.s), self.summary()))
        png = objective_png(self.s)
        if png is not None:
            from ..view.record import PlotImage
            panels = 2 if len([r for r in self.s.rows if r.state == "complete"]) >= 2 \
                and self.s.spaces else 1
            self._chart.update(PlotImage(png, self.s.study, (WIDTH, panels * HEIGHT)))

    def summary(self) -> str:
        best = self.s.best()
        new, ended = len(self.s.new()), len(self.s.finished())
        text = (f"{self.s.study}: {new} trials, {self.s.status}" if new == ended else
                f"{self.s.study}: {new} new trials ({ended} in the study), {self.s.status}")
        if best is not None:
            text += f", best trial {best.number}: {self.s.objective} {fmt(best.value)}"
        return text
