"""One `%fit` run, as a context manager that leaves nothing behind.

`FitSession` applies a checked `FitPlan` and owns everything the run
changes: the seed, a dtype policy scoped to this run (the model copied
under mixed precision keeps working after the global policy is restored),
the losses settled from the labels, the model's per-run settings (`--jit`,
`--steps-per-execution`), the SIGINT handler, and the registry run's start
and end. However the run ends (completed, stopped, failed) `__exit__`
undoes what was set, in reverse order. Nothing here runs before the plan
(arguments and data) has been checked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, List, Optional

from ..errors import DataError, TrainingStopped
from .checks import settle_losses
from .plan import FitPlan, reset_functions


class _EpochWriter:
    """Commits `log_epoch` on a background thread, so a slow disk never slows
    training; `end_run` first waits for the epochs still queued."""

    def __init__(self, registry):
        import queue
        self._registry = registry
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="nbkeras-registry", daemon=True)
        self._thread.start()

    def _work(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._registry.log_epoch(*item)

    def log_epoch(self, run_id, epoch, metrics, directions=None):
        if run_id is not None:
            self._queue.put((run_id, epoch, metrics, directions))

    def end_run(self, run_id, status, error=None, **extra):
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._registry.end_run(run_id, status, error=error, **extra)


def restored_epoch(callbacks) -> Optional[int]:
    """The epoch (1-based, as the registry numbers them) whose weights Keras'
    `EarlyStopping(restore_best_weights=True)` put back when `fit` returned.

    Keras restores them in `on_train_end` whenever it saw a best epoch, also
    after a run that went to its last epoch without stopping early; `fit`
    that raised (a stop, a failure) never reaches it.
    """
    import keras
    for cb in callbacks:
        if (isinstance(cb, keras.callbacks.EarlyStopping) and cb.restore_best_weights
                and cb.best_weights is not None):
            return int(cb.best_epoch) + 1
    return None


def is_oom(exc: BaseException) -> bool:
    """Whether `exc` says the device ran out of memory (any backend)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return ("resourceexhausted" in text or "out of memory" in text or " oom " in f" {text} "
            or "resource_exhausted" in text)


class FitSession:
    """Apply `plan` to `model` for one run; undo it on exit.

    Args:
        shell: the IPython shell (the model's name is rebound there when
            `--mixed-precision` makes a mixed copy).
        plan: the checked `FitPlan`.
        model: the compiled Keras model.
        info: the model's `ModelInfo`.

    Example:
        >>> with FitSession(shell, plan, model, info) as session:
        ...     session.train(view, live)
    """

    def __init__(self, shell, plan: FitPlan, model, info):
        self.shell, self.plan, self.model, self.info = shell, plan, model, info
        self.registry = None
        self.run_id: Optional[int] = None
        self.status = "completed"
        self.error: Optional[BaseException] = None
        self._undo: List[Any] = []
        self.device: Optional[str] = None  # the device line the run is recorded with
        self.state = None                  # the RunState the views read (telemetry goes there)
        self.watch = None                  # the DeviceWatch of this run (`nbkeras.train.telemetry`)
        self._fit_scope = contextlib.nullcontext  # --devices: Keras' distribution around fit
        self._oom = False
        # the epoch (Keras' number + 1) whose weights Keras' EarlyStopping put back
        # at the end of `fit`, or `LastGood` after a failure: None when the model
        # holds the last epoch's
        self.kept_epoch: Optional[int] = None
        self.last_good = None  # the `LastGood` callback of the run in flight
        self._rng = None       # a seeded run's own NumPy generator, used where it trains
        self.held: Optional[str] = None  # what the model holds when `LastGood` put it back

    # -- entering: each step registers how to undo itself ----------------------
    def __enter__(self) -> "FitSession":
        try:
            self._seed()
            self._mixed_precision()
            self._distribution()
            settle_losses(self.model, self.info, self.plan.settle)
            self._model_settings()
        except BaseException:
            self._run_undo()
            raise
        return self

    def _seed(self) -> None:
        if self.plan.seed is not None:
            import keras
            keras.utils.set_random_seed(self.plan.seed)
            # and NumPy's shuffles from a generator of this run's own (`rng.py`)
            from .rng import stream
            self._rng = stream(self.plan.seed)

    def _mixed_precision(self) -> None:
        from .device import is_mixed, mixed_policy_name, mixed_precision_copy
        if not self.plan.mixed_precision or is_mixed(self.model):
            return
        import keras
        previous = keras.mixed_precision.global_policy()
        self._undo.append(lambda: keras.mixed_precision.set_dtype_policy(previous))
        policy = mixed_policy_name()
        keras.mixed_precision.set_dtype_policy(policy)
        self.model = mixed_precision_copy(self.model, self.info, policy)
        if self.plan.background:  # Keras' policy is per thread: restore it on this one now
            self._undo.pop()()    # (the copy keeps its own per-layer policies)
        self.shell.user_ns[self.plan.name] = self.model
        print(f"nbkeras: rebuilt {self.plan.name} with the {policy} policy (weights kept)")

    def _distribution(self) -> None:
        """--devices: the model, rebuilt over the devices when it is not yet
        (bound to its name in its place), and the context `model.fit` runs in."""
        from .distribute import place
        self.model, self._fit_scope = place(self.shell, self.plan.name, self.model, self.info,
                                            self.plan.devices)

    def _model_settings(self) -> None:
        model, settings = self.model, self.plan.model_settings
        if not settings:
            return
        old = {key: getattr(model, key) for key in settings}

        def restore():
            for key, value in old.items():
                setattr(model, key, value)
            reset_functions(model)

        self._undo.append(restore)
        for key, value in settings.items():
            setattr(model, key, value)
        reset_functions(model)

    def start_run(self, device: str, backend: str) -> Optional[int]:
        """Open the registry run (this run's status is written on exit)."""
        from ..registry import get_registry
        registry = get_registry()  # never raises; degrades to a no-op with one warning
        plan = self.plan
        self.device = device
        self.run_id = registry.start_run(
            model=plan.name, version_id=self.info.version_id, options=plan.options,
            device=device, backend=backend, epochs_planned=plan.epochs,
            notebook=os.environ.get("JPY_SESSION_NAME"))
        self.registry = _EpochWriter(registry) if self.run_id is not None else registry
        return self.run_id

    def install_sigint(self, live) -> None:
        """First Ctrl-C/stop: end after the current batch; a second one: at once."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if live.stop_requested:
                raise KeyboardInterrupt
            live.request_stop()

        signal.signal(signal.SIGINT, handler)
        self._undo.append(lambda: signal.signal(signal.SIGINT, previous))

    # -- training ------------------------------------------------------------------
    def train(self, callbacks: list) -> None:
        """`model.fit` with the plan; sets `status` and `error` however it ends."""
        from .telemetry import DeviceWatch, TelemetryCallback
        plan = self.plan
        self.watch = DeviceWatch(devices=plan.devices)  # device memory, read at epoch ends
        watching = [TelemetryCallback(self.watch, self.state)] if self.watch.active else []
        from .lastgood import LastGood
        self.last_good = LastGood()  # last: it keeps only the epochs the run recorded
        from .rng import own_stream
        try:
            with self._fit_scope(), own_stream(self._rng):
                from .steps import auto_steps  # the default: steps per call from a probe
                note = auto_steps(self, callbacks)
                if note:
                    print(f"nbkeras: {note}")
                every = plan.callbacks + watching + callbacks + [self.last_good]
                history = self.model.fit(plan.x, callbacks=every, **plan.fit_kwargs)
                if plan.fine_tune is not None and not any(
                        getattr(c, "stopped", False) for c in callbacks):
                    self._fine_tune(history, every)
            self.kept_epoch = restored_epoch(plan.callbacks)
            if any(getattr(c, "stopped", False) for c in callbacks):
                self.status = "stopped"
        except Exception as exc:
            self._settle()
            self._failed(exc)
        except KeyboardInterrupt:  # a second interrupt, or one between two batches
            self._settle()
            self.status = "stopped"
        except BaseException:
            self._settle()
            raise
        finally:
            from ..keras_private import clear_eval_iterator
            clear_eval_iterator(self.model)

    def _fine_tune(self, history, callbacks) -> None:
        """The second phase of `--fine-tune`: unfreeze, compile again, train on."""
        from .finetune import recompile, unfreeze
        plan, tune = self.plan, self.plan.fine_tune
        done = plan.initial_epoch + len(history.epoch)  # early stopping may end the head sooner
        unfrozen = unfreeze(self.model, tune.layers)
        lr = recompile(self.model, tune.lr)
        if self.state is not None:
            self.state.phases.append(done)
        print(f"nbkeras: fine-tuning from epoch {done + 1}: {len(unfrozen)} layers of the base "
              f"unfrozen (BatchNormalization kept frozen), learning rate {lr:.3g}")
        for cb in callbacks:
            if hasattr(cb, "spans_phases"):  # early stopping keeps the head's best epoch
                cb.spans_phases = True
        kwargs = dict(plan.fit_kwargs, initial_epoch=done, epochs=done + tune.epochs)
        self.model.fit(plan.x, callbacks=callbacks, **kwargs)

    def _settle(self) -> None:
        """After `fit` raised: the model holds readable, finite weights (the
        last step's, or else the last good copy, `nbkeras.train.lastgood`)."""
        if self.last_good is None:
            return
        try:
            self.held = self.last_good.settle()
        except Exception:  # noqa: BLE001 - the run's own error is the one to show
            self.held = None
        if self.held is not None and self.last_good.epoch is not None:
            self.kept_epoch = self.last_good.epoch

    def _failed(self, exc: Exception) -> None:
        from .callback import NonFiniteLoss, StopRequested
        if isinstance(exc, StopRequested):
            self.status = "stopped"
            return
        self.status = "failed"
        if isinstance(exc, NonFiniteLoss):
            self.error = DataError(
                f"loss became {exc.value} in epoch {exc.epoch} (seen by batch {exc.batch}): training "
                "stopped. A lower learning rate or normalized inputs (e.g. x / 255) usually "
                f"help; the model holds {self.held or 'the weights of its last step'}, "
                "the last finite ones")
        elif is_oom(exc):
            from .telemetry import oom_error
            self._oom = True
            self.error = oom_error(self)
        else:
            from .distribute import explain
            self.error = explain(exc, self.plan) or exc

    def hold(self, state) -> None:
        """Point `state.weights_epoch` at the epoch whose weights the model holds
        when that is not the last recorded one (its values are the run's result)."""
        if self.kept_epoch is None:
            return
        position = self.kept_epoch - self.plan.initial_epoch + state.before
        if position != state.epochs_recorded():
            state.weights_epoch = position

    def stopped_error(self, epoch: int) -> TrainingStopped:
        name = self.plan.name
        return TrainingStopped(f"stopped at epoch {epoch} of {self.plan.epochs}: weights kept, "
                               f"history in `{name}.history`")

    # -- leaving -----------------------------------------------------------------------
    def __exit__(self, etype, value, tb) -> None:
        try:
            if self.registry is not None:
                status = self.status if etype is None else "failed"
                error = self.error if etype is None else value
                peak = self.watch.peak if self.watch is not None else None
                extra = {"peak_memory": peak} if peak else {}
                if self.kept_epoch is not None:
                    extra["kept_epoch"] = self.kept_epoch
                self.registry.end_run(self.run_id, status,
                                      error=str(error) if error is not None else None,
                                      **({"options": extra} if extra else {}))
        finally:
            self._run_undo()
            if self._oom:  # the failed step's buffers go back to the device
                from .telemetry import release_memory
                release_memory(self.model)

    def _run_undo(self) -> None:
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # undo the rest whatever happens
                pass
