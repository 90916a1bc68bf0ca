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
from typing import Dict, List, Optional

_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "mape", "msle", "crossentropy",
                    "hinge", "divergence", "poisson", "cosh")
_NOT_METRICS = ("learning_rate", "lr")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of `metric` is better (losses and errors)."""
    name = metric[4:] if metric.startswith("val_") else metric
    return any(part in name for part in _LOWER_IS_BETTER)


def family(metric: str) -> str:
    """The metric without its `val_` prefix: train and val share a plot panel."""
    return metric[4:] if metric.startswith("val_") else metric


def is_plotted(metric: str) -> bool:
    return family(metric) not in _NOT_METRICS


def fmt(value: Optional[float]) -> str:
    """A metric value in a few significant digits ('' when missing)."""
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}"


def fmt_duration(seconds: float) -> str:
    """'12s', '3m05s', '1h02m'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


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

    # -- writers (the callback) ---------------------------------------------
    def begin_epoch(self, epoch_index: int) -> None:
        """Keras' 0-based `epoch` index starts."""
        self.epoch = epoch_index + 1
        self.step = 0
        self.epoch_started = time.perf_counter()

    def end_epoch(self, logs: Dict[str, float]) -> None:
        """Record one finished epoch's logs (a copy is kept)."""
        self.epoch_times.append(time.perf_counter() - self.epoch_started)
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
        pick = min if lower_is_better(metric) else max
        value, index = pick(finite, key=lambda p: p[0])
        return value, index + 1

    def batch_rate(self) -> Optional[float]:
        """Batches per second in the epoch in progress."""
        dt = time.perf_counter() - self.epoch_started
        return self.step / dt if self.step and dt > 0 else None

    def epoch_eta(self) -> Optional[float]:
        """Seconds left in the epoch in progress."""
        rate = self.batch_rate()
        if rate is None or not self.steps:
            return None
        return max(0.0, (self.steps - self.step) / rate)

    def run_eta(self) -> Optional[float]:
        """Seconds left in the run, from the mean epoch time."""
        if not self.epoch_times:
            return None
        left = self.epochs - max(self.epoch, self.initial_epoch + len(self.epoch_times))
        mean = sum(self.epoch_times) / len(self.epoch_times)
        return max(0.0, left * mean + (self.epoch_eta() or 0.0))

    def summary(self) -> str:
        """One line: status, epochs, elapsed, the main metrics."""
        parts = [f"{self.name}: {self.status_line()}", fmt_duration(self.elapsed())]
        for fam in self.metrics():
            for key in (fam, "val_" + fam):
                if key in self.history and is_plotted(key):
                    value, epoch = self.best(key)
                    parts.append(f"{key} {fmt(self.current(key))} (best {fmt(value)} @{epoch})")
        return " · ".join(parts)

    def status_line(self) -> str:
        if self.status == "running":
            return f"epoch {self.epoch} of {self.epochs}"
        if self.message:
            return self.message
        return f"{self.status}, epoch {self.epochs_recorded()} of {self.epochs}"
