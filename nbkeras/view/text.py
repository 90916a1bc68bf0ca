"""Progress as plain text, and the choice between text and the HTML panel.

Terminal IPython and plain scripts show no HTML, and a log
should not grow with the number of batches (Keras' `verbose=1` does). The
text view prints at most one line per epoch (fewer for long runs: at most
`MAX_LINES`) and one summary at the end, never a line per batch. The view
is chosen once per run. Imports no Keras.
"""

from __future__ import annotations

import math
import sys

from .progress import RunState, fmt, fmt_duration

MAX_LINES = 50


class TextView:
    """One line per epoch (at most `MAX_LINES`) and a final summary.

    Args:
        stream: where to write. Defaults to `sys.stdout` at write time.
    """

    kind = "text"

    def __init__(self, stream=None):
        self.stream = stream
        self.every = 1

    def _print(self, line: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()

    def start(self, state: RunState) -> None:
        self.every = max(1, math.ceil((state.epochs - state.initial_epoch) / MAX_LINES))
        extra = f" in steps of {state.step_size}" if state.step_size > 1 else ""
        if state.batch_split:  # several devices: "batch 64 = 4 × 16"
            extra += f" ({state.batch_split})"
        self._print(f"{state.name}: training epochs {state.initial_epoch + 1}-{state.epochs}"
                    f" on {state.device}{extra}")

    def batch(self, state: RunState) -> None:
        pass

    def epoch(self, state: RunState) -> None:
        n = state.epoch - state.initial_epoch
        if n % self.every and state.epoch != state.epochs:
            return
        parts = [f"epoch {state.epoch}/{state.epochs}",
                 fmt_duration(state.epoch_times[-1] if state.epoch_times else 0.0)]
        for key in state.keys():
            if state.current(key) is not None:
                parts.append(f"{key} {fmt(state.current(key))}")
        self._print(" · ".join(parts))

    def finish(self, state: RunState) -> None:
        self._print(state.summary())


class DisplayStream:
    """A text stream shown as one output of the cell, updated in place.

    A background run's text view writes here: a print from its thread would
    land in whichever cell runs at the time. The output is made when the
    stream is (in the cell that starts the run), empty until written to.
    """

    def __init__(self):
        from IPython.display import display
        self.text = ""
        self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        self.text += text
        self._handle.update({"text/plain": self.text.rstrip("\n")}, raw=True)

    def flush(self) -> None:
        pass


class QuietView(TextView):
    """`--quiet`: nothing while training, one summary line at the end."""

    kind = "quiet"

    def start(self, state: RunState) -> None:
        pass

    def epoch(self, state: RunState) -> None:
        pass


def has_rich_frontend(shell) -> bool:
    """Whether `shell` is a kernel, whose frontends (JupyterLab, Notebook 7,
    VS Code, Colab) show HTML outputs and update them in place (the only test
    that can be made from the kernel side)."""
    return shell is not None and getattr(shell, "kernel", None) is not None


def choose_view(shell, mode: str = "auto", text: bool = False, quiet: bool = False,
                update_interval: float = 0.2, background: bool = False):
    """The view for one run: `QuietView`, `TextView` or the HTML `Panel`.

    Args:
        shell: the IPython shell.
        mode: 'auto', 'html' ('widget', its old name) or 'text'
            (`NbkerasMagics.display_mode`).
        text: `--text` was given.
        quiet: `--quiet` was given.
        background: the run trains on a thread (`--background`): a text view
            writes into a `DisplayStream`, not to stdout.
    """
    stream = DisplayStream if background else (lambda: None)
    if quiet:
        return QuietView(stream=stream())
    if text or mode == "text":
        return TextView(stream=stream())
    if mode in ("html", "widget") or has_rich_frontend(shell):
        from .panel import Panel
        return Panel(update_interval=update_interval)
    return TextView(stream=stream())
