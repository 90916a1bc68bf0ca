"""The history plot: one reused matplotlib figure, redrawn within a budget.

A matplotlib redraw costs tens of milliseconds on a small CPU, which is
more than a short epoch. So `HistoryPlot` keeps one figure (no pyplot, no
inline backend: a bare Agg canvas), updates its lines in place, and
`PlotBudget` allows a redraw only while the time spent drawing stays under
a share (`plot_budget`, 2%) of the time spent training. The final state is
always drawn. Imports no Keras.
"""

from __future__ import annotations

import io
import time
from typing import Dict, List, Optional

from .progress import RunState, family, is_plotted

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"


class PlotBudget:
    """Decide whether a redraw is affordable.

    Args:
        share: the largest fraction of the elapsed training time that drawing
            may take. Defaults to `0.02`.
        first_cost: guessed cost of a draw before one has been measured.
    """

    def __init__(self, share: float = 0.02, first_cost: float = 0.05):
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

    The figure and its lines are made once per set of metric families; each
    `render` only changes line data and axis limits, then encodes a PNG.

    Args:
        width: inches per panel.
        height: inches.
        dpi: resolution of the PNG (kept low: the PNG lives in the notebook).
    """

    def __init__(self, width: float = 3.4, height: float = 2.4, dpi: int = 72):
        self.width, self.height, self.dpi = width, height, dpi
        self._fig = None
        self._families: List[str] = []
        self._artists: Dict[str, dict] = {}

    def _build(self, families: List[str]) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(self.width * len(families), self.height), dpi=self.dpi)
        FigureCanvasAgg(fig)
        self._artists = {}
        for i, fam in enumerate(families):
            ax = fig.add_subplot(1, len(families), i + 1)
            ax.set_title(fam, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
            (train,) = ax.plot([], [], color=TRAIN_COLOR, lw=1.4, label="train")
            (val,) = ax.plot([], [], color=VAL_COLOR, lw=1.4, label="val")
            (best,) = ax.plot([], [], "o", color="#d62728", ms=5, label="best")
            ax.set_xlabel("epoch", fontsize=7)
            self._artists[fam] = {"ax": ax, "train": train, "val": val, "best": best,
                                  "legend": False}
        fig.tight_layout(pad=0.6)
        self._fig = fig
        self._families = families

    def render(self, state: RunState) -> Optional[bytes]:
        """Update the curves from `state` and return the PNG bytes (None: nothing to plot)."""
        families = [f for f in state.metrics() if is_plotted(f)]
        if not families or state.epochs_recorded() == 0:
            return None
        if self._fig is None or families != self._families:
            self._build(families)
        for fam in families:
            art = self._artists[fam]
            ax = art["ax"]
            lows, highs = [], []
            has_val = False
            for key, line in ((fam, art["train"]), ("val_" + fam, art["val"])):
                values = state.history.get(key) or []
                xs = list(range(1, len(values) + 1))
                line.set_data(xs, values)
                finite = [v for v in values if v == v and abs(v) != float("inf")]
                if finite:
                    lows.append(min(finite))
                    highs.append(max(finite))
                has_val = has_val or (key.startswith("val_") and bool(values))
            value, epoch = state.best("val_" + fam if has_val else fam)
            art["best"].set_data([epoch] if epoch else [], [value] if epoch else [])
            n = max(state.epochs_recorded(), 2)
            ax.set_xlim(0.8, n + 0.2)
            if lows:
                lo, hi = min(lows), max(highs)
                pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 0.05
                ax.set_ylim(lo - pad, hi + pad)
            if has_val and not art["legend"]:
                ax.legend(fontsize=7, loc="best", frameon=False)
                art["legend"] = True
        buf = io.BytesIO()
        self._fig.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()

    def timed_render(self, state: RunState, budget: Optional[PlotBudget] = None):
        """`render`, recording its cost in `budget`. Returns the PNG bytes or None."""
        t = time.perf_counter()
        png = self.render(state)
        if budget is not None and png is not None:
            budget.record(time.perf_counter() - t)
        return png


def history_figure_png(history: Dict[str, List[float]], name: str = "model") -> Optional[bytes]:
    """A PNG of a finished history (for `%models --compare` and records)."""
    state = RunState(name=name, history={k: list(v) for k, v in history.items()})
    return HistoryPlot().render(state)
