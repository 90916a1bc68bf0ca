"""Automatic steps per execution: `%fit`'s default, `--steps-per-execution auto`.

A small notebook model takes well under a millisecond a step on a GPU (and
at small batches on a CPU too), so `model.fit` is bound by dispatching one
step at a time from Python: Keras' per-step loop (data, callbacks, logs)
costs more than the step. Keras' cure is `steps_per_execution` (N steps per
call of the train function), and nbkeras can choose N because it can
measure the step time and draws its panel at most every `update_interval`.

The choice, made once per run before `model.fit` (`auto_steps`):

1. A probe: `model.fit` itself on the run's first `PROBE_STEPS` batches at
   one step per call, timed by an `async_safe` callback (on JAX and torch
   its batch ends run once a step's logs are on the host, so the times are
   those of finished steps, in a loop as pipelined as the real one). It
   stops after `PROBE_SECONDS` of steps. Every variable of the model, its
   optimizer and its metrics (random seeds included) is copied to the
   host before and put back after, so the run that follows starts from
   exactly the same state: same updates in the same order, same losses.
   The first (compiling) step is not timed, and when N stays 1 the real
   run reuses the train function the probe compiled.
2. `choose_steps`: a step under `DISPATCH_BOUND` seconds is dispatch-bound;
   N is then the largest number of steps that still ends a call (and so
   moves the panel's batch bar) at least every `update_interval`, at most
   `MAX_STEPS` and no more than an epoch, evened out so that an epoch's
   calls are of equal size (225 steps at a cap of 128: two calls of 113).

It is not done (N stays 1, with a note when it matters) when the user gave
`--steps-per-execution`, when the model was compiled with
`steps_per_execution` above 1 (that choice stands), for data other than
arrays or a `tf.data.Dataset` (a generator cannot be read twice), for a
model whose variables exceed `MAX_PROBE_BYTES`, and when a callback that is
neither Keras' nor nbkeras' has a batch hook and is not `async_safe`: it
must see every batch.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

import keras
import numpy as np

from ..keras_private import loss_and_metrics_built
from .checks import n_samples

DISPATCH_BOUND = 0.050   # seconds: Keras' per-step loop (0.3-1.3 ms, more on a busy CPU) is worth saving below it
MAX_STEPS = 128          # steps per call at most (the gain is flat long before)
PROBE_STEPS = 24         # batches the probe trains at most (the first compiles)
PROBE_SECONDS = 0.25     # timed seconds the probe runs at most after its first step
MAX_PROBE_BYTES = 512e6  # a model whose state is larger is not probed (host copies)
_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")


def choose_steps(step_time: Optional[float], steps_per_epoch: Optional[int],
                 update_interval: float) -> int:
    """Steps per call for a run whose step takes `step_time` seconds.

    Args:
        step_time: seconds per step at one step per call (None: unknown).
        steps_per_epoch: the epoch's steps (None: unknown, e.g. a dataset).
        update_interval: the panel's least seconds between two batch redraws.

    Returns:
        1 when the step is not dispatch-bound (or unknown), else the largest
        N with N * step_time <= update_interval, capped by `MAX_STEPS` and
        the epoch, evened out over the epoch's calls.

    Example:
        >>> choose_steps(0.0005, 225, 0.2)   # 400 fit in 0.2 s: capped, 2 even calls
        113
        >>> choose_steps(0.005, 225, 0.2)    # not dispatch-bound
        1
    """
    if step_time is None or not step_time > 0 or step_time >= DISPATCH_BOUND:
        return 1
    n = min(MAX_STEPS, int(max(update_interval, 0.0) / step_time + 1e-9))
    if steps_per_epoch:
        n = min(n, steps_per_epoch)
        if n >= 2:
            calls = math.ceil(steps_per_epoch / n)
            n = math.ceil(steps_per_epoch / calls)
    return n if n >= 2 else 1


def batch_callbacks(callbacks) -> List[str]:
    """Names of the callbacks that must see every batch: a batch hook of
    their own, not `async_safe`, and neither Keras' nor nbkeras'."""
    from keras.src import utils  # `is_default`, as Keras' CallbackList reads hooks
    out = []
    for cb in callbacks:
        module = type(cb).__module__ or ""
        if module.split(".")[0] in ("keras", "nbkeras") or getattr(cb, "async_safe", False):
            continue
        if any(not utils.is_default(getattr(cb, hook)) for hook in _BATCH_HOOKS
               if hasattr(cb, hook)):
            out.append(type(cb).__name__)
    return out


class StepTimer(keras.callbacks.Callback):
    """Times finished steps (`async_safe`: on JAX and torch a batch end runs
    once that step's logs are on the host); stops the probe once `seconds`
    have passed after the first step, which compiles."""

    async_safe = True

    def __init__(self, seconds: float = PROBE_SECONDS, clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.seconds, self.clock = seconds, clock
        self.ends: List[Tuple[int, float]] = []
        self._lock = threading.Lock()

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        with self._lock:
            self.ends.append((batch, now))
            first = min(t for _, t in self.ends)
        if now - first >= self.seconds and self.model is not None:
            self.model.stop_training = True

    def step_time(self) -> Optional[float]:
        """Seconds per step over the steps after the first, or None (too few).
        Batch ends may arrive out of order (Keras' worker threads): the rate
        is the steps counted over the span of their times."""
        times = sorted(t for b, t in self.ends if b > 0)
        if len(times) < 3 or times[-1] <= times[0]:
            return None
        return (times[-1] - times[0]) / (len(times) - 1)


def _rows(data, n: int):
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: _rows(v, n) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_rows(v, n) for v in data)
    return data[:n]


def _probe_fit_args(plan, steps: int) -> Optional[dict]:
    """`model.fit` arguments training the run's first `steps` batches, or None."""
    from .checks import is_dataset
    kw = plan.fit_kwargs
    if is_dataset(plan.x):
        try:
            import tensorflow as tf
        except ImportError:
            return None
        if not isinstance(plan.x, tf.data.Dataset):
            return None  # a generator or PyDataset: reading it would use it up
        return {"x": plan.x.take(steps)}
    n = steps * plan.batch_size
    args = {"x": _rows(plan.x, n), "y": _rows(plan.y, n), "batch_size": plan.batch_size}
    if kw.get("sample_weight") is not None:
        args["sample_weight"] = _rows(kw["sample_weight"], n)
    return args


def _state(model) -> List[Any]:
    """Every variable a training step changes: weights, seeds, optimizer, metrics."""
    seen, out = set(), []
    optimizer = getattr(model, "optimizer", None)
    for v in (list(model.variables) + list(getattr(optimizer, "variables", []) or [])
              + list(getattr(model, "metrics_variables", []) or [])):
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _nbytes(variables) -> float:
    total = 0.0
    for v in variables:
        try:
            total += float(np.prod(v.shape)) * np.dtype(str(v.dtype)).itemsize
        except TypeError:
            total += float(np.prod(v.shape)) * 4
    return total


def measure_step(model, plan, scope=contextlib.nullcontext,
                 clock: Callable[[], float] = time.perf_counter) -> Optional[float]:
    """Seconds per step of `model.fit` on the plan's data at one step per call
    (None when it cannot be probed). The model's state is put back exactly."""
    if not getattr(model, "built", False) or getattr(model, "optimizer", None) is None:
        return None
    args = _probe_fit_args(plan, PROBE_STEPS)
    if args is None:
        return None
    if not model.optimizer.built:  # built now, as `fit` would, so that it is saved too
        model.optimizer.build(model.trainable_variables)
    variables = _state(model)
    if _nbytes(variables) > MAX_PROBE_BYTES:
        return None
    saved = [np.array(v.numpy()) for v in variables]  # (a SyncOnRead metric reads only so)
    history = getattr(model, "history", None)
    rng = np.random.get_state(), random.getstate()
    first_fit = not loss_and_metrics_built(model)
    timer = StepTimer(clock=clock)
    try:
        with scope():
            model.fit(**args, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)
        model.history = history
        model.stop_training = False
        np.random.set_state(rng[0])
        random.setstate(rng[1])
    if first_fit:
        _draw_first_fit_shuffle(plan)
    return timer.step_time()


def _draw_first_fit_shuffle(plan) -> None:
    """Draw the shuffle that the run's `fit` would have drawn had the probe not
    built the compiled loss and metrics first.

    Keras builds them, on a model's first `fit`, from one batch of a pass
    over the data that it then throws away; for arrays on JAX (and the
    numpy backend) that pass draws `np.random.permutation(n)` from the
    global generator. The probe's `fit` builds them instead (unshuffled), so
    without this draw a seeded run would shuffle differently from one at one
    step per call. TensorFlow shuffles in `tf.data` and draws nothing here."""
    from .checks import is_dataset
    if (keras.backend.backend() not in ("jax", "numpy") or is_dataset(plan.x)
            or not plan.fit_kwargs.get("shuffle", False)):
        return
    n = n_samples(plan.x)
    split = plan.fit_kwargs.get("validation_split")
    if n is None:
        return
    if split:  # Keras keeps the first floor(n * (1 - split)) samples for training
        n = int(math.floor(n * (1.0 - split)))
    np.random.permutation(n)


def auto_steps(session, callbacks=()) -> Optional[str]:
    """Decide the run's steps per execution when the plan leaves it to nbkeras
    (`plan.auto_steps`), set it on the model (undone when the session ends)
    and on `plan.step_size` and the view's state. Returns a note for the user,
    or None."""
    plan, model = session.plan, session.model
    if not getattr(plan, "auto_steps", False) or int(model.steps_per_execution or 1) > 1:
        return None
    if plan.steps is not None and plan.steps < 4:
        return None  # too few steps an epoch to gain anything
    watchers = batch_callbacks(list(plan.callbacks) + list(callbacks))
    if watchers:
        return (f"one step per call: {', '.join(watchers)} has a batch hook that must see "
                "every batch (give --steps-per-execution N to choose)")
    interval = min((getattr(cb, "update_interval", None) for cb in callbacks
                    if getattr(cb, "update_interval", None) is not None), default=0.2)
    step_time = measure_step(model, plan, getattr(session, "_fit_scope", contextlib.nullcontext))
    n = choose_steps(step_time, plan.steps, interval)
    if n <= 1:
        return None
    from .plan import reset_functions
    old = model.steps_per_execution

    def restore():
        model.steps_per_execution = old
        reset_functions(model)

    session._undo.append(restore)
    model.steps_per_execution = n
    reset_functions(model)
    plan.step_size = n
    if getattr(session, "state", None) is not None:
        session.state.step_size = n
    return None
