"""The one Keras callback that feeds the view and the registry.

Per batch it does almost nothing (a counter, a clock read) and hands the
view a redraw at most once per `update_interval`. It never reads a value
off the device per batch: the batch loss is converted to a float (and
tested for NaN) only when a redraw is due, and again at every epoch end,
so on a GPU the panel adds no device-to-host copy per step. (Keras' own
`CallbackList` converts the batch logs at every callback call, for
`model.fit(verbose=0)` too; with automatic steps per execution
(`nbkeras.train.steps`) that is one call per N steps.)
It is marked `async_safe`, which matters on JAX and torch only: there Keras
runs batch ends on its worker threads (an exception raised there reaches
the training thread at the next batch; `model.stop_training` is set as
well). On TensorFlow (`IS_THREAD_SAFE = False`) Keras calls every batch end
on the training thread.
Per epoch it copies the logs into the `RunState`, commits them to the
registry and lets the view update: at once, or, when epochs last only a
few milliseconds, at the first batch end at least `EPOCH_DRAW_INTERVAL`
after the last draw, so every epoch end is on screen within a tenth of a
second without a redraw per epoch. It also turns the two ways a run can
end early into clean exits: an interrupt request (set by `run_fit`'s
SIGINT handler) and a NaN or infinite loss (seen at the next redraw or
epoch end, whichever comes first).
"""

from __future__ import annotations

import math
import threading
import time

import keras

from ..metricvocab import directions
from ..view.progress import RunState


EPOCH_DRAW_INTERVAL = 0.1  # least seconds between two epoch-end draws (each is shown within it)


class StopRequested(Exception):
    """The user interrupted the kernel: training ends after the current batch."""


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite at (epoch, batch)."""

    def __init__(self, epoch: int, batch: int, value: float):
        self.epoch, self.batch, self.value = epoch, batch, value
        super().__init__(f"loss became {value} in epoch {epoch} (seen by batch {batch})")


class LiveCallback(keras.callbacks.Callback):
    """Feed `view` and `registry` from Keras' training loop.

    Args:
        state: the `RunState` the views read.
        view: an object with `start`, `batch`, `epoch`, `finish`.
        registry: the run registry (`log_epoch(run_id, epoch, metrics)`).
        run_id: this run's registry id (None when not recorded).
        update_interval: least seconds between two batch redraws.

    Example:
        >>> cb = LiveCallback(RunState(epochs=3), view, registry, run_id)
        >>> cb.on_epoch_end(0, {"loss": 0.5})
    """

    async_safe = True  # batch ends may run on Keras' worker threads: see on_train_batch_end

    def __init__(self, state: RunState, view, registry=None, run_id=None,
                 update_interval: float = 0.2, clock=time.perf_counter):
        super().__init__()
        self.clock = clock
        self.closed = False
        self._draw_lock = threading.Lock()
        self.state = state
        self.view = view
        self.registry = registry
        self.run_id = run_id
        self.update_interval = update_interval
        self.stop_requested = False
        self.stopped = False  # the last run ended on a stop request
        self._next_draw = 0.0
        self._last_draw = -1e9
        self._epoch_pending = False
        self._batch = 0

    def request_stop(self) -> None:
        """Ask training to end after the current batch (safe from a signal handler)."""
        self.stop_requested = True
        if self.model is not None:
            self.model.stop_training = True

    def on_train_begin(self, logs=None):
        # `stop_requested` is kept: a Stop clicked before the first batch still stops
        # (Keras resets `model.stop_training` when `fit` starts); it is cleared at the end
        self.closed = False
        self.stopped = False
        self._next_draw = 0.0
        self._last_draw = -1e9
        self._epoch_pending = False
        self._batch = 0

    def on_train_end(self, logs=None):
        # A stop that lands after the last check of an epoch end reaches Keras only as
        # `model.stop_training`, and `fit` returns normally: the run was still stopped
        self.stopped = self.stop_requested
        self.stop_requested = False  # a reused callback starts clean
        if self._epoch_pending:  # the last epochs' ends, not yet drawn
            self._draw(self.view.epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.state.begin_epoch(epoch)
        self._batch = 0

    def on_train_batch_end(self, batch, logs=None):
        # Thread-safe: several of Keras' workers may run this at once, in any order.
        # No value is read off the device here unless a redraw is due.
        if self.closed:
            return
        step = batch + 1
        self.state.end_batch(step)
        if step > self._batch:
            self._batch = step
        if self.stop_requested:
            raise StopRequested()
        now = self.clock()
        if now < self._next_draw and not (
                self._epoch_pending and now - self._last_draw >= EPOCH_DRAW_INTERVAL):
            return
        if not self._draw_lock.acquire(blocking=False):
            return
        try:
            loss = _loss(logs)  # the one device read, once per redraw
            if loss is not None and not math.isfinite(loss):
                if self.model is not None:
                    self.model.stop_training = True
                raise NonFiniteLoss(self.state.epoch, step, loss)
            if loss is not None and now >= self._next_draw:
                self.state.add_trace(loss)
            self._draw(self.view.epoch if self._epoch_pending else self.view.batch, now)
        finally:
            self._draw_lock.release()

    def _draw(self, draw, now=None) -> None:
        now = self.clock() if now is None else now
        self._epoch_pending = False
        self._last_draw = now
        self._next_draw = now + self.update_interval
        draw(self.state)

    def on_test_begin(self, logs=None):
        if self.stop_requested:  # validation after an interrupted epoch: skip it
            raise StopRequested()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: _as_float(v) for k, v in (logs or {}).items()}  # each read once
        if self.stop_requested and self.state.steps and self.state.step < self.state.steps:
            raise StopRequested()  # a partial epoch is not recorded
        loss = _loss(logs)
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLoss(epoch + 1, self._batch, loss)
        state = self.state
        new = [k for k in logs if k not in state.directions]
        if new:  # the model's own metric objects decide, names the rest
            state.directions.update(directions(new, self.model))
        state.end_epoch(logs)
        if self.registry is not None:
            self.registry.log_epoch(self.run_id, epoch + 1, _floats(logs), dict(state.directions))
        # Every epoch end is drawn: at once, or, when the last draw was less
        # than EPOCH_DRAW_INTERVAL ago (epochs of a few ms), at the first batch
        # end after it (the `update_interval` throttle only thins batches).
        if (not getattr(self.view, "coalesce", False)
                or self.clock() - self._last_draw >= EPOCH_DRAW_INTERVAL):
            with self._draw_lock:
                self._draw(self.view.epoch)
        else:
            self._epoch_pending = True
        if self.stop_requested:
            raise StopRequested()


def _loss(logs) -> "float | None":
    """The logs' loss as a float (a device read when Keras left a tensor), or None."""
    value = logs.get("loss") if logs else None
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _floats(logs: dict) -> dict:
    out = {}
    for key, value in logs.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            pass
    return out
