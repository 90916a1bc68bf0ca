"""The live training panel: two HTML outputs updated in place.

The panel is plain HTML in two outputs of the cell, each updated in place
with Jupyter's standard `update_display_data` message (IPython's display
handles): the first holds the header, the epoch bar, the batch bar and the
metric table (`record.panel_html`), the second the history chart as inline
SVG (`chart.chart_svg`), built in Python from the numbers in well under a
millisecond and drawn by the browser. Every frontend that shows a kernel's
HTML output renders it: JupyterLab, Notebook 7, VS Code, Colab, with no
widget library and no custom frontend code. And nothing is left behind: no
widget model lives on in the kernel, and a notebook executed headlessly
(nbclient) or saved keeps only the final record, no widget state.

Each update renders both outputs from one snapshot of the `RunState` and
sends them back to back, so no two parts of the panel ever disagree by
more than the batch in flight. When the run ends, the same two outputs
become the static record (the HTML, and the chart as one 2x PNG of the
same size), so nothing jumps. Imports no Keras.
"""

from __future__ import annotations

from typing import Optional

from .chart import chart_svg
from .plots import warm_up
from .progress import RunState
from .publish import OutputUpdater
from .record import panel_html, show_record


class Html:
    """An HTML output with a plain-text fallback."""

    def __init__(self, html: str, text: str = ""):
        self.html, self.text = html, text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html, "text/plain": self.text}


class Panel:
    """Header, one epoch bar, the batch bar, the metric table and the live chart.

    Args:
        update_interval: least seconds between two batch redraws (the
            callback throttles). Defaults to `0.2`.
    """

    kind = "html"
    coalesce = True  # epoch ends closer than a tenth of a second: drawn together

    def __init__(self, update_interval: float = 0.2):
        self.update_interval = update_interval
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
        self._handle = display(Html(panel_html(state), state.summary()), display_id=True)
        self._chart_value = chart_svg(state, trace=state.trace or None)
        self._chart_handle = display(Html(self._chart_value), display_id=True)
        self._main_out = OutputUpdater(self._handle)
        self._chart_out = OutputUpdater(self._chart_handle)

    def batch(self, state: RunState) -> None:
        self.draw(state)

    def epoch(self, state: RunState) -> None:
        self.draw(state)

    def finish(self, state: RunState) -> None:
        """Leave the static record in place of the live outputs."""
        show_record(state, self._handle, self._chart_handle)

    # -- drawing ------------------------------------------------------------------------
    def draw(self, state: RunState) -> None:
        """Render every part from one snapshot and send what changed."""
        main = panel_html(state)
        chart = chart_svg(state, trace=state.trace or None)
        self._main_out.update({"text/html": main, "text/plain": state.summary()})
        if chart != self._chart_value:
            self._chart_value = chart
            self._chart_out.update({"text/html": chart, "text/plain": ""})
