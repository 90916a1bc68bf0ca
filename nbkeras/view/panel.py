"""The live training panel, built from ipywidgets' own widgets only.

Only standard widgets (IntProgress, HTML, Image, HBox, VBox), which exist
with the same traits in ipywidgets 7.7 and 8, so the panel renders in
JupyterLab, Notebook 7, VS Code and Colab without a custom frontend.
The widget tree is built once; afterwards only `.value` changes, and at
most once per `update_interval` seconds, so the panel never slows
training (each `.value` change is one comm message, sent from the training
thread: on TensorFlow Keras runs batch ends there). The header, whose only
per-batch change is the elapsed time, is redrawn at most once a second.
The plot redraws under `PlotBudget`, on the training thread at an epoch
end: a render on a second thread looked free but cost training more than
its own time (the two threads take turns holding the GIL; measured on 2
cores, +6% wall time on 50 short epochs against +1% for the same renders
done in line). When the run ends the panel
is replaced by the static record (`nbkeras.view.record`) and its widgets
are closed, so the saved notebook keeps HTML and one PNG, not widget state.
Imports no Keras.
"""

from __future__ import annotations

import time
from typing import Optional

from .plots import HistoryPlot, PlotBudget, warm_up
from .progress import RunState, fmt_duration
from .record import header_html, metrics_table_html, show_record

HEADER_INTERVAL = 1.0  # least seconds between two header redraws during an epoch


class Panel:
    """Epoch bar, batch bar, metrics table, device, elapsed time and plot.

    Args:
        update_interval: least seconds between two redraws. Defaults to `0.2`.
        plot_budget: largest share of training time spent on the plot.
            Defaults to `0.01`.
    """

    kind = "widget"

    def __init__(self, update_interval: float = 0.2, plot_budget: float = 0.01):
        import ipywidgets as w

        self.update_interval = update_interval
        self.plot = HistoryPlot.shared()
        self.budget = PlotBudget(plot_budget)
        self._png: Optional[bytes] = None
        self._png_epochs = -1
        self._last = 0.0
        self._header_at = 0.0
        self._handle = None
        self.state: Optional[RunState] = None

        row = {"align_items": "center"}
        self.header = w.HTML(value="")
        self.epoch_bar = w.IntProgress(value=0, min=0, max=1, bar_style="info",
                                       layout=w.Layout(width="260px"))
        self.epoch_text = w.HTML(value="")
        self.batch_bar = w.IntProgress(value=0, min=0, max=1, bar_style="info",
                                       layout=w.Layout(width="260px"))
        self.batch_text = w.HTML(value="")
        self.table = w.HTML(value="")
        self.image = w.Image(value=b"", format="png", layout=w.Layout(display="none"))
        self.box = w.VBox([
            self.header,
            w.HBox([w.HTML(value="<b>epoch</b>", layout=w.Layout(width="48px")),
                    self.epoch_bar, self.epoch_text], layout=w.Layout(**row)),
            w.HBox([w.HTML(value="<b>batch</b>", layout=w.Layout(width="48px")),
                    self.batch_bar, self.batch_text], layout=w.Layout(**row)),
            self.table,
            self.image,
        ])

    # -- display ------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {}
        if hasattr(self.box, "_repr_mimebundle_"):  # ipywidgets 8
            bundle = dict(self.box._repr_mimebundle_(include=include, exclude=exclude) or {})
        else:  # ipywidgets 7: the view spec written by hand
            bundle = {"application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.box.model_id}}
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return self.state.summary() if self.state is not None else "<nbkeras panel>"

    # -- the view interface ---------------------------------------------------------
    def start(self, state: RunState) -> None:
        from IPython.display import display

        self.state = state
        warm_up()
        self.epoch_bar.max = max(state.epochs, 1)
        self.epoch_bar.value = state.initial_epoch
        if state.steps:
            self.batch_bar.max = state.steps
        self._draw(state)
        self._last = time.perf_counter()
        if state.epochs_recorded():  # --resume: the curves so far
            self._draw_plot(state)
        self._handle = display(self, display_id=True)

    def batch(self, state: RunState) -> None:
        now = time.perf_counter()
        if now - self._last < self.update_interval:
            return
        self._last = now
        self._draw_batch(state)
        if now - self._header_at >= HEADER_INTERVAL:  # elapsed time: whole seconds suffice
            self._header_at = now
            self.header.value = header_html(state)

    def epoch(self, state: RunState) -> None:
        now = time.perf_counter()
        if now - self._last >= self.update_interval:
            self._last = now
            self._draw(state)
        if self.budget.allows(state.elapsed() - self.budget.spent):
            self._draw_plot(state)

    def finish(self, state: RunState) -> None:
        """Draw the final state, then leave the static record in place of the widgets."""
        self._draw(state)
        if self._png_epochs != state.epochs_recorded() or self._png is None:
            self._draw_plot(state, budget=False)
        show_record(state, self._png, self._handle)
        self.close()

    def close(self) -> None:
        for child in [self.box, *self.box.children]:
            for sub in getattr(child, "children", ()):
                sub.close()
            child.close()

    # -- drawing ----------------------------------------------------------------------
    def _draw_batch(self, state: RunState) -> None:
        step = state.step
        if state.steps:
            self.batch_bar.value = min(step, state.steps)
        rate = state.batch_rate()
        eta = state.epoch_eta()
        parts = [f"{step}/{state.steps}" if state.steps else f"{step}"]
        if rate:
            parts.append(f"{rate:.0f} batch/s" if rate >= 10 else f"{rate:.2f} batch/s")
        if eta is not None:
            parts.append(f"ETA {fmt_duration(eta)}")
        if state.step_size > 1:
            parts.append(f"in steps of {state.step_size} (--steps-per-execution)")
        self.batch_text.value = " · ".join(parts)

    def _draw(self, state: RunState) -> None:
        done = state.epochs_recorded()
        self.epoch_bar.value = min(done, self.epoch_bar.max)
        eta = state.run_eta()
        text = f"{done}/{state.epochs}"
        if state.status == "running" and eta is not None:
            text += f" · ETA {fmt_duration(eta)}"
        self.epoch_text.value = text
        if state.status in ("stopped", "failed"):
            self.epoch_bar.bar_style = self.batch_bar.bar_style = "danger"
        elif state.status == "completed":
            self.epoch_bar.bar_style = self.batch_bar.bar_style = "success"
        self._draw_batch(state)
        self.header.value = header_html(state)
        if state.history:
            self.table.value = metrics_table_html(state)

    def _draw_plot(self, state: RunState, budget: bool = True) -> None:
        png = self.plot.timed_render(state, self.budget if budget else None)
        if png is not None:
            self._show_png(png, state.epochs_recorded())

    def _show_png(self, png: bytes, epochs: int) -> None:
        self._png = png
        self._png_epochs = epochs
        self.image.value = png
        if self.image.layout.display == "none":
            self.image.layout.display = None
