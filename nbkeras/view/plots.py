"""The history chart as a PNG, for the static record a finished run leaves.

The live panel draws its chart as inline SVG (`nbkeras.view.chart`); a
saved notebook, nbconvert and GitHub show the PNG that `record_png` renders
once when the run ends, with the same grid, panel size, axes, ticks and
colours, so the output does not jump when the one replaces the other.

Older machinery, kept while the panel still imports it:

A matplotlib redraw costs tens of milliseconds on a small CPU, which is
more than a short epoch. So `HistoryPlot` keeps one figure (no pyplot, no
inline backend: a bare Agg canvas), updates its lines in place, and
`PlotBudget` allows a redraw only while the time spent drawing stays under
a share (`plot_budget`, 1%) of the time spent training. The final state is
always drawn. Imports no Keras.
"""

from __future__ import annotations

import io
import math
import time
from typing import Dict, List, Optional, Tuple

from . import chart
from .progress import RunState, is_plotted, lower_is_better

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"


MAX_COLUMNS = 4
MAX_PANELS = 8   # the first 8 metric families (loss first): the PNG stays small
_WARM = []
_SHARED: list = []


def _nice(value: float, up: bool) -> float:
    """`value` rounded up or down to two significant digits."""
    if value == 0 or not math.isfinite(value):
        return 0.0 if not math.isfinite(value) else value
    step = 10 ** (math.floor(math.log10(abs(value))) - 1)
    return (math.ceil if up else math.floor)(value / step) * step


def warm_up() -> None:
    """Import matplotlib and load its fonts on a background thread, once per
    process, so the first redraw does not charge a second of imports to the
    plot's budget (started when the panel appears, done before the first
    epoch ends on all but the shortest runs)."""
    if _WARM:
        return
    import threading

    def work():
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
            from PIL import Image  # noqa: F401
            fig = Figure(figsize=(1, 1), dpi=20)
            FigureCanvasAgg(fig)
            fig.add_subplot().set_title("x", fontsize=9)
            fig.canvas.draw()
        except Exception:
            pass

    thread = threading.Thread(target=work, name="nbkeras-plot-warm-up", daemon=True)
    _WARM.append(thread)
    thread.start()


class PlotBudget:
    """Decide whether a redraw is affordable.

    Args:
        share: the largest fraction of the elapsed training time that drawing
            may take. Defaults to `0.01`.
        first_cost: guessed cost of a draw before one has been measured.
    """

    def __init__(self, share: float = 0.01, first_cost: float = 0.05):
        self.share = share
        self.spent = 0.0
        self.last_cost = first_cost
        self.draws = 0

    def allows(self, elapsed: float) -> bool:
        """Whether drawing now keeps the drawing time within the budget."""
        return self.spent + self.last_cost <= self.share * elapsed

    def record(self, cost: float) -> None:
        self.spent += cost
        self.last_cost = cost
        self.draws += 1


class HistoryPlot:
    """Training and validation curves, one panel per metric family.

    The figure is made once per set of metric families. The axes (frame,
    ticks, labels: the costly part) are drawn only when their limits must
    change; otherwise the saved background is restored and only the curves
    are drawn on it (blitting), then the pixels are encoded as a PNG.

    Args:
        width: inches per panel.
        height: inches.
        dpi: resolution of the PNG (kept low: the PNG lives in the notebook).
    """

    def __init__(self, width: float = 3.4, height: float = 2.3, dpi: int = 72):
        self.width, self.height, self.dpi = width, height, dpi
        self._fig = None
        self._families: List[str] = []
        self._has_val = False
        self._artists: Dict[str, dict] = {}
        self._background = None
        self._cache: Dict[tuple, object] = {}
        self.full_draws = 0

    @classmethod
    def shared(cls) -> "HistoryPlot":
        """The process-wide plot: its figure, ticks and drawn backgrounds are
        reused by the next `%fit` (runs are sequential in a kernel)."""
        if not _SHARED:
            _SHARED.append(cls())
        return _SHARED[0]

    def _build(self, families: List[str], has_val: bool) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator

        cols = min(len(families), MAX_COLUMNS)
        rows = math.ceil(len(families) / cols)
        fig = Figure(figsize=(self.width * cols, self.height * rows), dpi=self.dpi)
        FigureCanvasAgg(fig)
        self._artists = {}
        for i, fam in enumerate(families):
            ax = fig.add_subplot(rows, cols, i + 1)
            ax.set_title(fam, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.grid(True, alpha=0.3)
            ax.set_xlabel("epoch", fontsize=7)
            lines = {}
            for key, style in (("train", dict(color=TRAIN_COLOR, lw=1.4)),
                               ("val", dict(color=VAL_COLOR, lw=1.4)),
                               ("best", dict(color="#d62728", marker="o", ms=5, ls=""))):
                line = Line2D([], [], animated=True, **style)
                ax.add_line(line)
                lines[key] = line
            self._artists[fam] = {"ax": ax, **lines}
        if has_val:
            first = self._artists[families[0]]["ax"]
            first.legend([Line2D([], [], color=TRAIN_COLOR), Line2D([], [], color=VAL_COLOR),
                          Line2D([], [], color="#d62728", marker="o", ls="")],
                         ["train", "val", "best"], fontsize=7, frameon=False, loc="upper right")
        # fixed margins: tight_layout would lay out every text twice per build
        fig.subplots_adjust(left=0.45 / (self.width * cols), right=0.985,
                            bottom=0.2 / rows, top=1 - 0.12 / rows,
                            wspace=0.45 / self.width + 0.12, hspace=0.55)
        self._fig = fig
        self._families = families
        self._has_val = has_val
        self._background = None
        self._cache = {}

    @staticmethod
    def _limits(fam: str, lo: float, hi: float):
        """Round y limits with headroom, so later epochs rarely force a new
        layout and a re-run finds its drawn axes in the cache: losses from 0,
        bounded metrics (accuracy) up to 1."""
        span = (hi - lo) or abs(hi) or 1.0
        if lower_is_better(fam) and lo >= 0:
            return 0.0, _nice(hi * 1.12, up=True) or 1.0
        if 0 <= lo and hi <= 1:
            return max(0.0, _nice(lo - 0.15 * span, up=False)), 1.02
        return _nice(lo - 0.1 * span, up=False), _nice(hi + 0.1 * span, up=True)

    def render(self, state: RunState) -> Optional[bytes]:
        """Update the curves from `state` and return the PNG bytes (None: nothing to plot)."""
        families = [f for f in state.metrics() if is_plotted(f)][:MAX_PANELS]
        if not families or state.epochs_recorded() == 0:
            return None
        has_val = any(k.startswith("val_") for k in state.history)
        if self._fig is None or (families, has_val) != (self._families, self._has_val):
            self._build(families, has_val)
        n = state.epochs_recorded()
        xlim = (0.5, max(state.epochs, n, 2) + 0.5)
        relayout = self._background is None
        for fam in families:
            art = self._artists[fam]
            lows, highs = [], []
            fam_val = False
            for key, line in ((fam, art["train"]), ("val_" + fam, art["val"])):
                values = state.history.get(key) or []
                line.set_data(range(1, len(values) + 1), values)
                finite = [v for v in values if v == v and abs(v) != float("inf")]
                if finite:
                    lows.append(min(finite))
                    highs.append(max(finite))
                    fam_val = fam_val or key.startswith("val_")
            value, epoch = state.best("val_" + fam if fam_val else fam)
            art["best"].set_data([epoch] if epoch else [], [value] if epoch else [])
            art["range"] = (min(lows), max(highs)) if lows else None
            y0, y1 = art["ax"].get_ylim()
            if art["range"] and (art["range"][0] < y0 or art["range"][1] > y1):
                relayout = True
            if tuple(art["ax"].get_xlim()) != xlim:
                relayout = True
        canvas = self._fig.canvas
        if relayout:
            limits = []
            for fam in families:
                art = self._artists[fam]
                art["ax"].set_xlim(*xlim)
                if art["range"]:
                    art["ax"].set_ylim(*self._limits(fam, *art["range"]))
                limits.append(tuple(art["ax"].get_ylim()))
            key = (xlim, tuple(limits))
            self._background = self._cache.get(key)
            if self._background is None:  # draw the axes without the curves, keep the pixels
                canvas.draw()
                self.full_draws += 1
                if len(self._cache) >= 8:
                    self._cache.pop(next(iter(self._cache)))
                self._background = self._cache[key] = canvas.copy_from_bbox(self._fig.bbox)
        canvas.restore_region(self._background)
        for fam in families:
            art = self._artists[fam]
            for key in ("train", "val", "best"):
                art["ax"].draw_artist(art[key])
        return _png(canvas)

    def timed_render(self, state: RunState, budget: Optional[PlotBudget] = None):
        """`render`, recording its cost in `budget`. Returns the PNG bytes or None."""
        t = time.perf_counter()
        png = self.render(state)
        if budget is not None and png is not None:
            budget.record(time.perf_counter() - t)
        return png


def _png(canvas) -> bytes:
    """Encode the canvas pixels (fast zlib level: the plot is mostly flat colour)."""
    from PIL import Image

    width, height = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="png", compress_level=3)
    return buf.getvalue()


_TEXT_COLOR = "#333"
_GRID_COLOR = "#ddd"
_AXIS_COLOR = "#999"
DPI = 144   # 2 pixels per CSS pixel (HiDPI); 1 point = 1 CSS pixel


def record_png(state: RunState) -> Optional[Tuple[bytes, int, int]]:
    """The final chart as a PNG, drawn once by matplotlib.

    Same grid (`chart.layout`), panel size (`chart.PANEL_WIDTH` x
    `chart.PANEL_HEIGHT`), plot area, axes, ticks and labels as the live
    `chart.chart_svg`, so replacing the live chart by this PNG does not make
    the output jump: train and val curves, the best epoch's dot, the legend
    in the first panel, log scale by the same rule. Rendered at 2x for HiDPI
    screens: show it at its CSS size.

    Args:
        state: the run.

    Returns:
        `(png_bytes, css_width, css_height)`: the PNG is `2 * css_width`
        pixels wide. `None` when there is nothing to draw (no epoch).

    Example:

    >>> png, width, height = record_png(RunState(epochs=3, history={"loss": [1.0, 0.6, 0.5]}))
    >>> width, height
    (300, 200)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fams = chart.families(state)
    recorded = state.epochs_recorded()
    if not fams or recorded == 0:
        return None
    columns, rows = chart.layout(len(fams))
    pw, ph = chart.PANEL_WIDTH, chart.PANEL_HEIGHT
    width, height = columns * pw, rows * ph
    ml, mt = chart.MARGIN_LEFT, chart.MARGIN_TOP
    plot_w = pw - ml - chart.MARGIN_RIGHT
    plot_h = ph - mt - chart.MARGIN_BOTTOM
    fig = Figure(figsize=(width / 72, height / 72), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)

    def at(x, y):  # CSS pixels from the figure's top left -> figure fraction
        return x / width, 1 - y / height

    xaxis = chart.x_axis(max(state.epochs, recorded, 1))
    has_val = any(k.startswith("val_") and is_plotted(k) for k in state.history)
    line = dict(lw=1.6, solid_joinstyle="round", solid_capstyle="round", clip_on=False)
    for i, fam in enumerate(fams):
        row, col = divmod(i, columns)
        left, top = col * pw, row * ph
        x0, y0 = at(left + ml, top + mt + plot_h)
        ax = fig.add_axes((x0, y0, plot_w / width, plot_h / height))
        train = state.history.get(fam) or []
        val = state.history.get("val_" + fam) or []
        xs = range(1, max(len(train), len(val)) + 1)
        curves = [(chart.curve_runs(xs, train), chart.TRAIN_COLOR),
                  (chart.curve_runs(xs, val), chart.VAL_COLOR)]
        yaxis = chart.y_axis([y for runs, _ in curves for run in runs for _, y in run], fam,
                             chart.lower_is_better_in(state, fam))
        if yaxis.scale == "log":
            ax.set_yscale("log")
        ax.set_xlim(xaxis.lo, xaxis.hi)
        ax.set_ylim(yaxis.lo, yaxis.hi)
        ax.set_xticks(xaxis.ticks, xaxis.labels)
        ax.set_yticks(yaxis.ticks, yaxis.labels)
        ax.minorticks_off()
        ax.tick_params(length=0, pad=5, labelsize=11, labelcolor=_TEXT_COLOR)
        ax.grid(True, color=_GRID_COLOR, lw=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color(_AXIS_COLOR)
            ax.spines[side].set_linewidth(0.8)
        for runs, color in curves:
            for run in runs:
                rx, ry = zip(*run)
                if len(run) == 1:
                    ax.plot(rx, ry, ls="", marker="o", ms=5, color=color, clip_on=False)
                else:
                    ax.plot(rx, ry, color=color, **line)
        _, value, epoch = chart.best_point(state, fam, bool(curves[1][0]))
        if epoch is not None:
            ax.plot([epoch], [value], ls="", marker="o", ms=8, mew=0,
                    color=chart.BEST_COLOR, clip_on=False, zorder=5)
        room = pw - 8 - chart.MARGIN_RIGHT - (chart.legend_width(has_val) + 10 if i == 0 else 0)
        fig.text(*at(left + 8, top + 16), chart.short_title(fam, room), fontsize=12.5,
                 fontweight="bold", color=_TEXT_COLOR, va="baseline")
        fig.text(*at(left + ml + plot_w / 2, top + ph - 5), "epoch", fontsize=11.5,
                 color=_TEXT_COLOR, ha="center", va="baseline")
    x = pw - chart.MARGIN_RIGHT - chart.legend_width(has_val)   # the legend, as in the SVG
    for label, color, text_width in chart.legend_items(has_val):
        if label == "best":
            fig.add_artist(Line2D(*zip(at(x + 7, 12)), ls="", marker="o", ms=8, mew=0,
                                  color=color, transform=fig.transFigure))
        else:
            fig.add_artist(Line2D(*zip(at(x, 12), at(x + 14, 12)), lw=2, color=color,
                                  transform=fig.transFigure))
        fig.text(*at(x + 18, 16), label, fontsize=11.5, color=_TEXT_COLOR, va="baseline")
        x += 18 + text_width + 10
    return _encode(fig), width, height


def _encode(fig) -> bytes:
    """The figure as PNG bytes, in a palette of a few colours: the chart is
    flat colour with antialiased edges, and 64 colours keep it sharp at a
    third of the size of true colour."""
    from PIL import Image

    fig.canvas.draw()
    canvas = fig.canvas
    w, h = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (w, h), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    image = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT,
                                          dither=Image.Dither.NONE)
    buf = io.BytesIO()
    image.save(buf, format="png", optimize=True)
    return buf.getvalue()


def history_figure_png(history: Dict[str, List[float]], name: str = "model") -> Optional[bytes]:
    """A PNG of a finished history at 2x resolution (for `%models --compare`
    and records): `record_png`'s bytes, or None when there is nothing to draw."""
    state = RunState(name=name, history={k: list(v) for k, v in history.items()})
    out = record_png(state)
    return out[0] if out else None
