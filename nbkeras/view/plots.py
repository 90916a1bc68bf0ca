"""The history plot: one reused matplotlib figure, redrawn within a budget.

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
from typing import Dict, List, Optional

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


def history_figure_png(history: Dict[str, List[float]], name: str = "model") -> Optional[bytes]:
    """A PNG of a finished history (for `%models --compare` and records)."""
    state = RunState(name=name, history={k: list(v) for k, v in history.items()})
    return HistoryPlot().render(state)
