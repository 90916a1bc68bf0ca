"""`%fit --background`: train on a thread, keep the kernel free.

`launch` takes a run that `run_fit` has planned, entered (`FitSession`)
and shown (its panel is on screen), and trains it on a daemon thread. The
cell returns at once with a `FitJob`: `job.wait()`, `job.stop()`,
`job.done`, `job.history`, `job.result()`.

Everything the run shows goes through display ids: the panel's updates,
its record and the Stop button's removal update the outputs the cell
showed, and a text view writes into an output of its own (never a print,
which would land in whichever cell runs). The thread runs in an empty
context, so ipykernel parents those messages to the cell executing at the
time, as it does any display update: JupyterLab routes them to the output
by its display id, and nbclient (a notebook executed headlessly) applies
them while a later cell, say `job.wait()`, runs, so the saved notebook
keeps the record.

A background run is stopped by its panel's Stop button, `job.stop()` or a
kernel restart, never by an interrupt (which belongs to the cell running
at the time). While it trains, every other magic refuses its model in one
line (`check_free`); other models are free.
"""

from __future__ import annotations

import contextvars
import threading
import time
import weakref
from typing import Dict, List, Optional

from ..errors import UsageError

_JOBS: "Dict[str, FitJob]" = {}
_LOCK = threading.Lock()


class FitJob:
    """A `%fit` run training in the background.

    Attributes:
        name: the model's name in the notebook.
        status: 'running', then 'completed', 'stopped' or 'failed'.

    Example:
        >>> job = %fit digits x y -e 50 --background
        >>> job.done, job.epoch
        (False, 3)
        >>> job.stop(); job.wait()
        >>> job.result()  # the Keras History (re-raises a failure)
    """

    def __init__(self, name: str, model, state, live):
        self.name = name
        self._model = weakref.ref(model)
        self._state = state
        self._live = live
        self._finished = threading.Event()
        self._history = None
        self._error: Optional[BaseException] = None
        self.status = "running"
        self.started = time.time()

    # -- what a user reads ---------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether training has ended (completed, stopped or failed)."""
        return self._finished.is_set()

    @property
    def epoch(self) -> int:
        """The epoch in progress (1-based), or the last one when done."""
        return self._state.epoch

    @property
    def epochs(self) -> int:
        return self._state.epochs

    @property
    def history(self) -> Dict[str, List[float]]:
        """This run's metrics so far, one value per finished epoch."""
        before = self._state.before
        return {k: list(v[before:]) for k, v in list(self._state.history.items())}

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until training ends (or `timeout` seconds); True when it has.
        An interrupt ends the wait, not the training."""
        return self._finished.wait(timeout)

    def stop(self) -> None:
        """End training after the current batch (the weights are kept)."""
        live = self._live
        if live is not None and not self.done:
            live.request_stop()

    def result(self, timeout: Optional[float] = None):
        """Wait for the end; the run's Keras `History`, or its failure raised."""
        if not self.wait(timeout):
            raise TimeoutError(f"{self.name!r} is still training (epoch {self.epoch} of "
                               f"{self.epochs})")
        if self._error is not None:
            raise self._error
        return self._history

    def __repr__(self) -> str:
        where = (f"epoch {self.epoch} of {self.epochs}" if not self.done
                 else self._state.message or f"{self.epoch} epochs")
        return f"<FitJob {self.name!r}: {self.status}, {where}>"

    # -- what the training thread sets -----------------------------------------------
    def _end(self, status: str, history=None, error: Optional[BaseException] = None) -> None:
        self.status, self._history, self._error = status, history, error
        self._live = None  # the callback holds the model: let a rebound name free it
        self._finished.set()

    def _owns(self, model) -> bool:
        return self._model() is model


def job(name: str) -> Optional[FitJob]:
    """The latest background job of the model `name` (running or ended), or None.

    Example:
        >>> job = nbkeras.job("digits")
        >>> job.wait()
    """
    with _LOCK:
        return _JOBS.get(name)


def running_job(name: str, model=None) -> Optional[FitJob]:
    """The background job training `name` (or the `model` object), if any."""
    with _LOCK:
        jobs = list(_JOBS.values())
    for job in jobs:
        if not job.done and (job.name == name or (model is not None and job._owns(model))):
            return job
    return None


def check_free(name: str, model=None, doing: str = "use") -> None:
    """Raise a one-line `UsageError` when `name` is training in the background."""
    job = running_job(name, model)
    if job is not None:
        raise UsageError(
            f"`{name}` is training in the background (epoch {job.epoch} of {job.epochs}): "
            f"cannot {doing} it until it ends; wait with `job.wait()` or stop it with its "
            "Stop button or `job.stop()`")


def launch(name: str, model, state, live, work) -> FitJob:
    """Start `work(job)` on a daemon thread, in an empty context."""
    job = FitJob(name, model, state, live)
    with _LOCK:
        _JOBS[name] = job
    context = contextvars.Context()

    def target():
        try:
            context.run(work, job)
        except BaseException as exc:  # noqa: BLE001 - a thread must hand every failure on
            if not job.done:
                job._end("failed", error=exc)

    threading.Thread(target=target, name=f"nbkeras-fit-{name}", daemon=True).start()
    return job
