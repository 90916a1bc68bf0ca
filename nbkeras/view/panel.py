"""The live training panel: one HTML output updated in place.

The panel is plain HTML in one output of the cell, updated in place with
Jupyter's standard `update_display_data` message: the header, the epoch
bar, the batch bar and the metric table (`record.panel_html`) and the
history chart as inline SVG (`chart.chart_svg`), built in Python from the
numbers in well under a millisecond and drawn by the browser. One message
an update (not one per part): on a fast step every message the kernel's
IOPub thread handles takes the GIL from the training loop. Every frontend that shows a kernel's
HTML output renders it: JupyterLab, Notebook 7, VS Code, Colab, with no
widget library and no custom frontend code. And nothing is left behind: no
widget model lives on in the kernel, and a notebook executed headlessly
(nbclient) or saved keeps only the final record, no widget state.

Each update renders every part from one snapshot of the `RunState` in one
message, so no two parts of the panel ever disagree. A second, empty output
below it receives the record's chart: when the run ends the panel's output
becomes the static record's HTML and the chart moves, as one 2x PNG of the
same size, into that output, at the same place, so nothing jumps. Imports
no Keras.
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
        self.state: Optional[RunState] = None

    def __repr__(self) -> str:
        return self.state.summary() if self.state is not None else "<nbkeras panel>"

    # -- the view interface ---------------------------------------------------------
    def start(self, state: RunState) -> None:
        from IPython.display import display

        self.state = state
        warm_up()  # imports matplotlib for the record while training runs (once per kernel)
        self._handle = display(Html(self._html(state), state.summary()), display_id=True)
        self._chart_handle = display(Html(""), display_id=True)  # the record's chart, later
        self._out = OutputUpdater(self._handle)

    def batch(self, state: RunState) -> None:
        self.draw(state)

    def epoch(self, state: RunState) -> None:
        self.draw(state)

    def finish(self, state: RunState) -> None:
        """Leave the static record in place of the live outputs."""
        show_record(state, self._handle, self._chart_handle)

    # -- drawing ------------------------------------------------------------------------
    def draw(self, state: RunState) -> None:
        """Render every part from one snapshot and send it as one message."""
        self._out.update({"text/html": self._html(state), "text/plain": state.summary()})

    @staticmethod
    def _html(state: RunState) -> str:
        return panel_html(state) + chart_svg(state, trace=state.trace or None)
