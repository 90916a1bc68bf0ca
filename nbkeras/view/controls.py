"""The Stop button of a background run.

A foreground run is stopped with the kernel's interrupt; a background run
cannot be (the interrupt belongs to whichever cell runs at the time), and
the kernel is free to receive a click, so its cell shows a Stop button
(an ipywidgets `Button`) under the panel. The click ends training after
the current batch, like an interrupt. When the run ends the button is
closed and its output emptied, so the saved notebook keeps only the
record. Where no widget frontend runs (nbclient, a terminal) the output
is a line of text saying how to stop the run. Imports no Keras.
"""

from __future__ import annotations

from typing import Callable


class StopButton:
    """A Stop button shown under a background run's panel.

    Args:
        on_stop: called once, on the first click.
        name: the model's name (for the text fallback).
    """

    def __init__(self, on_stop: Callable[[], None], name: str):
        self.on_stop, self.name = on_stop, name
        self._handle = None
        self.button = self.box = None

    def show(self) -> None:
        from IPython.display import display
        try:
            import ipywidgets
        except ImportError:  # the text line still says how to stop it
            self._handle = display(self._text(), display_id=True)
            return
        self.button = ipywidgets.Button(
            description="Stop", icon="stop", button_style="warning",
            tooltip=f"End {self.name}'s training after the current batch (weights kept)",
            layout=ipywidgets.Layout(width="auto"))
        self.button.add_class("nbkeras-stop")
        self.button.on_click(self._clicked)
        note = ipywidgets.HTML(
            f"<span style='color: var(--jp-ui-font-color2, #616161)'>in the background: the "
            f"kernel is free · handle: <code>nbkeras.job({self.name!r})</code></span>")
        self.box = ipywidgets.HBox([self.button, note])
        bundle = self.box._repr_mimebundle_() or {}
        bundle["text/plain"] = self._text()["text/plain"]
        self._handle = display(bundle, raw=True, display_id=True)

    def _text(self) -> dict:
        return {"text/plain": f"{self.name} trains in the background: stop it with "
                              f"`nbkeras.job({self.name!r}).stop()`"}

    def _clicked(self, button) -> None:
        button.disabled = True
        button.description = "Stopping…"
        self.on_stop()

    def close(self) -> None:
        """Remove the button (its output becomes empty)."""
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
        if self.box is not None:
            for widget in (*self.box.children, self.box):
                widget.close()
