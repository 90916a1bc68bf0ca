"""The live training panel, built from ipywidgets' standard `HTML` widget only.

Two `HTML` widgets, which exist with the same traits in ipywidgets 7.7 and
8, so the panel renders in JupyterLab, Notebook 7, VS Code and Colab with
no custom frontend: one holds the header, the epoch bar, the batch bar and
the metric table (`record.panel_html`), the other the history chart as
inline SVG (`chart.chart_svg`), built in Python from the numbers in well
under a millisecond. Each update renders both from one snapshot of the
`RunState` and sends them back to back, so no two parts of the panel ever
disagree by more than the batch in flight.

Every epoch end is drawn at once (throttling would drop it); batch updates
are thinned by the callback to one per `update_interval`, each adding a
point to the faint running-loss trace of the epoch in progress. When the
run ends the widgets are replaced by the static record (HTML and one PNG
of the same size) and closed, with their `Layout` and `Style` models, so
neither the kernel nor the saved notebook keeps widget state of a
finished panel. Imports no Keras.
"""

from __future__ import annotations

from typing import Optional

from .chart import chart_svg
from .plots import warm_up
from .progress import RunState
from .record import panel_html, show_record


class _Shown:
    """Displays one widget with a plain-text fallback (ipywidgets 7 and 8)."""

    def __init__(self, widget, text: str):
        self.widget, self.text = widget, text

    def _repr_mimebundle_(self, include=None, exclude=None):
        widget = self.widget
        bundle = {}
        if hasattr(widget, "_repr_mimebundle_"):  # ipywidgets 8
            bundle = dict(widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        else:  # ipywidgets 7: the view spec written by hand
            bundle = {"application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": widget.model_id}}
        bundle["text/plain"] = self.text
        return bundle


class Panel:
    """Header, one epoch bar, the batch bar, the metric table and the live chart.

    Args:
        update_interval: least seconds between two batch redraws (the
            callback throttles). Defaults to `0.2`.
    """

    kind = "widget"

    def __init__(self, update_interval: float = 0.2):
        import ipywidgets as w

        self.update_interval = update_interval
        self.main = w.HTML(value="")
        self.chart = w.HTML(value="")
        self._handle = self._chart_handle = None
        self._chart_value = ""
        self.state: Optional[RunState] = None

    def __repr__(self) -> str:
        return self.state.summary() if self.state is not None else "<nbkeras panel>"

    # -- the view interface ---------------------------------------------------------
    def start(self, state: RunState) -> None:
        from IPython.display import display

        self.state = state
        warm_up()  # imports matplotlib for the record while training runs (once per kernel)
        self.draw(state)
        self._handle = display(_Shown(self.main, state.name), display_id=True)
        self._chart_handle = display(_Shown(self.chart, f"<chart of {state.name}>"),
                                     display_id=True)

    def batch(self, state: RunState) -> None:
        self.draw(state)

    def epoch(self, state: RunState) -> None:
        self.draw(state)

    def finish(self, state: RunState) -> None:
        """Leave the static record in place of the widgets, then close them."""
        show_record(state, self._handle, self._chart_handle)
        self.close()

    def close(self) -> None:
        """Close the widgets and every model they created (Layout, Style)."""
        for widget in (self.main, self.chart):
            for part in ("layout", "style"):
                sub = getattr(widget, part, None)
                if sub is not None and hasattr(sub, "close"):
                    sub.close()
            widget.close()

    # -- drawing ------------------------------------------------------------------------
    def draw(self, state: RunState) -> None:
        """Render every part from one snapshot and send what changed."""
        main = panel_html(state)
        chart = chart_svg(state, trace=state.trace or None)
        self.main.value = main
        if chart != self._chart_value:
            self._chart_value = chart
            self.chart.value = chart
