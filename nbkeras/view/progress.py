"""The state of one training run, as the views see it.

The Keras callback (`nbkeras.train.callback`) writes into a `RunState`;
the panel, the text view, the plot and the static record only read it.
Keeping it here, free of Keras and of widgets, lets the views be tested
with fake logs and lets every view agree on what "best" means.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..fmt import fmt, fmt_duration  # noqa: F401  (re-exported)
from ..metricvocab import direction, lower_is_better  # noqa: F401  (re-exported)

_NOT_METRICS = ("learning_rate", "lr")


def family(metric: str) -> str:
    """The metric without its `val_` prefix: train and val share a plot panel."""
    return metric[4:] if metric.startswith("val_") else metric


def is_plotted(metric: str) -> bool:
    return family(metric) not in _NOT_METRICS


@dataclass
class RunState:
    """What a view needs to draw a run.

    Attributes:
        name: the model's name.
        epochs: the last epoch number of this run (1-based, like Keras' `epochs`).
        initial_epoch: epochs already done before this run (0 for a fresh run).
        steps: batches per epoch (None when unknown, e.g. a generator).
        step_size: batches per callback call (`--steps-per-execution`).
        device: the device line ("CPU · mixed precision off").
        history: metric -> values, one per epoch, including the epochs of
            earlier runs this one continues (`--resume`).
        epoch: the epoch in progress, 1-based (0 before the first).
        step: batches done in the epoch in progress.
        status: 'running', 'completed', 'stopped' or 'failed'.
        message: one line said at the end ("stopped at epoch 3 of 10").
        before: epochs in `history` from earlier runs (`--resume`).
        directions: metric -> 'min' or 'max', from the compiled model's
            metrics (`nbkeras.metricvocab`); names decide the others.
        trace: (x, running batch loss) of the epoch in progress, x a
            fractional epoch (epoch e runs from x = e - 1 to x = e).
        first_step_at: when the run's first batch ended (compiling and
            tracing done); rates and ETAs count from there.
        compile_time: seconds from the first epoch's start to its first step.
        weights_epoch: the epoch whose weights the model holds when that is
            not the last one (early stopping restored the best weights).
        telemetry: the device's memory, read at the last epoch end
            ("memory 3.2 GB · peak 4.1 GB"; empty on a CPU).
        batch_split: how each batch splits over several devices
            ("batch 256 = 4 × 64"; empty on one device).
        phases: the epochs after which a new phase of the run starts
            (`--fine-tune`: the base unfrozen), marked on the curves.
    """

    name: str = "model"
    epochs: int = 1
    initial_epoch: int = 0
    steps: Optional[int] = None
    step_size: int = 1
    device: str = "CPU"
    history: Dict[str, List[float]] = field(default_factory=dict)
    epoch: int = 0
    step: int = 0
    status: str = "running"
    message: str = ""
    started: float = field(default_factory=time.perf_counter)
    epoch_started: float = field(default_factory=time.perf_counter)
    ended: Optional[float] = None
    epoch_times: List[float] = field(default_factory=list)
    before: int = 0
    directions: Dict[str, str] = field(default_factory=dict)
    trace: List[Tuple[float, float]] = field(default_factory=list)
    first_step_at: Optional[float] = None
    compile_time: float = 0.0
    weights_epoch: Optional[int] = None
    telemetry: str = ""
    batch_split: str = ""
    phases: List[int] = field(default_factory=list)  # --fine-tune: a phase starts after these
    _rate_origin: Optional[Tuple[float, int]] = None
    _last_rate: Optional[float] = None
    _last_batch_at: float = 0.0

    # -- writers (the callback) ---------------------------------------------
    def begin_epoch(self, epoch_index: int) -> None:
        """Keras' 0-based `epoch` index starts."""
        self.epoch = epoch_index + 1
        self.step = 0
        self.trace = []
        self.epoch_started = time.perf_counter()
        self._rate_origin = None  # set at this epoch's first batch end

    def end_batch(self, step: int, loss: Optional[float] = None) -> None:
        """A batch ended (`step` batches done in this epoch); `loss` is Keras'
        running mean of this epoch's batch losses."""
        if step > self.step:
            self.step = step
            self._last_batch_at = time.perf_counter()
        if self._rate_origin is None:
            # The rate counts from the epoch's first batch end: before it
            # come compiling (first epoch) and the epoch's data iterator.
            now = time.perf_counter()
            self._rate_origin = (now, step)
            if self.first_step_at is None:
                self.first_step_at = now
                self.compile_time = now - self.epoch_started

    def add_trace(self, loss: float) -> None:
        """Keep a point of the running batch loss for the chart (throttled by the caller)."""
        if self.steps and loss is not None and math.isfinite(loss):
            self.trace.append((self.epoch - 1 + min(self.step, self.steps) / self.steps, loss))

    def end_epoch(self, logs: Dict[str, float]) -> None:
        """Record one finished epoch's logs (a copy is kept)."""
        if self._rate_origin is not None:  # this epoch's steady rate, validation left out
            origin_time, origin_step = self._rate_origin
            if self.step - origin_step >= 2 and self._last_batch_at > origin_time:
                self._last_rate = (self.step - origin_step) / (self._last_batch_at - origin_time)
        took = time.perf_counter() - self.epoch_started
        if len(self.epoch_times) == 0:
            took -= self.compile_time  # the first epoch's compiling is not an epoch's cost
        self.epoch_times.append(max(took, 0.0))
        self.trace = []
        if self.steps:
            self.step = self.steps  # a finished epoch shows its batch bar full
        done = self.epochs_recorded()
        for key, value in logs.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            values = self.history.setdefault(key, [])
            values.extend([math.nan] * (done - len(values)))
            values.append(value)
        for values in self.history.values():  # metrics this epoch lacks
            values.extend([math.nan] * (done + 1 - len(values)))

    def finish(self, status: str, message: str = "") -> None:
        self.status = status
        self.message = message
        self.ended = time.perf_counter()

    # -- readers (the views) --------------------------------------------------
    def epochs_recorded(self) -> int:
        return max((len(v) for v in self.history.values()), default=0)

    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def metrics(self) -> List[str]:
        """Metric families in a stable order: loss first."""
        names = []
        for key in self.history:
            fam = family(key)
            if fam not in names:
                names.append(fam)
        return sorted(names, key=lambda n: (n != "loss", n in _NOT_METRICS, n))

    def current(self, metric: str) -> Optional[float]:
        """The last epoch's value (None when missing or NaN-padded)."""
        values = self.history.get(metric)
        if not values or values[-1] != values[-1]:
            return None
        return values[-1]

    def keys(self) -> List[str]:
        """History keys in display order: loss first, each train key before its val key."""
        out = []
        for fam in self.metrics():
            out += [k for k in (fam, "val_" + fam) if k in self.history]
        return out

    def best(self, metric: str):
        """(value, 1-based epoch) of the best finite value, or (None, None)."""
        values = self.history.get(metric) or []
        finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
        if not finite:
            return None, None
        mode = self.directions.get(metric) or direction(metric)
        pick = min if mode == "min" else max
        value, index = pick(finite, key=lambda p: p[0])
        return value, index + 1

    def compiling(self) -> bool:
        """Whether the run is still waiting for its first step (compiling, tracing)."""
        return self.status == "running" and self.first_step_at is None

    def batch_rate(self) -> Optional[float]:
        """Batches per second in the epoch in progress, leaving out the first
        step's compile time (None until a step has been timed)."""
        if self._rate_origin is None:
            return self._last_rate
        origin_time, origin_step = self._rate_origin
        dt = time.perf_counter() - origin_time
        done = self.step - origin_step
        if done >= 2 and dt > 0:
            return done / dt
        return self._last_rate  # too few steps yet: the last epoch's rate

    def epoch_eta(self) -> Optional[float]:
        """Seconds left in the epoch in progress."""
        rate = self.batch_rate()
        if rate is None or not self.steps:
            return None
        return max(0.0, (self.steps - self.step) / rate)

    def run_eta(self) -> Optional[float]:
        """Seconds left in the run, from the mean epoch time."""
        left = self.epochs - max(self.epoch, self.initial_epoch + len(self.epoch_times))
        if self.epoch_times:
            mean = sum(self.epoch_times) / len(self.epoch_times)
        else:  # during the first epoch: from the step rate
            rate = self.batch_rate()
            if rate is None or not self.steps:
                return None
            mean = self.steps / rate
        return max(0.0, left * mean + (self.epoch_eta() or 0.0))

    def held(self, metric: str) -> Optional[float]:
        """The value for the weights the model holds: the last epoch's, or the
        restored epoch's after early stopping (None when missing)."""
        if self.weights_epoch is None:
            return self.current(metric)
        values = self.history.get(metric) or []
        i = self.weights_epoch - 1
        if 0 <= i < len(values) and values[i] == values[i]:
            return values[i]
        return None

    def summary(self) -> str:
        """One line: status, epochs, elapsed, the main metrics."""
        parts = [f"{self.name}: {self.status_line()}", fmt_duration(self.elapsed())]
        for fam in self.metrics():
            for key in (fam, "val_" + fam):
                if key in self.history and is_plotted(key):
                    value, epoch = self.best(key)
                    parts.append(f"{key} {fmt(self.held(key))} (best {fmt(value)} @{epoch})")
        return " · ".join(parts)

    def status_line(self) -> str:
        if self.status == "running":
            return f"epoch {self.epoch} of {self.epochs}"
        if self.message:
            return self.message
        return f"{self.status}, epoch {self.epochs_recorded()} of {self.epochs}"
