"""`%fit`: plan, train with the live callback, leave the record, remember.

Thin orchestration of the stages: `plan.build_plan` (arguments, data,
checks, Keras options), `callback.LiveCallback` (view and registry), the
views (`nbkeras.view`), the registry run, and the model's `ModelInfo`.
It also owns how a run ends: completed, stopped by the user (SIGINT ends
training after the current batch, keeping the weights), or failed (NaN
loss, out of memory, any other error), each with a short message.
"""

from __future__ import annotations

import math
import os
import signal
import threading

from ..errors import DataError, FitUsageError, did_you_mean
from ..state import get_info


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

    def log_epoch(self, run_id, epoch, metrics):
        if run_id is not None:
            self._queue.put((run_id, epoch, metrics))

    def end_run(self, run_id, status, error=None):
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._registry.end_run(run_id, status, error=error)


def find_model(shell, name: str):
    """The compiled Keras model bound to `name` in the notebook."""
    import keras
    ns = shell.user_ns
    models = [k for k, v in ns.items() if isinstance(v, keras.Model) and not k.startswith("_")]
    if name not in ns:
        hint = did_you_mean(name, models) or (
            f": the models here are {', '.join(models)}" if models else
            ": build one first with `%%model NAME`")
        raise FitUsageError(f"no model named {name!r}{hint}")
    model = ns[name]
    if not isinstance(model, keras.Model):
        raise FitUsageError(f"{name!r} is a {type(model).__name__}, not a Keras model"
                            f"{did_you_mean(name, models)}")
    if not getattr(model, "compiled", True) or getattr(model, "optimizer", None) is None:
        raise FitUsageError(f"model {name!r} is not compiled: call `{name}.compile(...)` "
                            "or build it with `%%model` without --no-compile")
    return model


def _install_sigint(live):
    """First Ctrl-C/stop: end after the current batch; a second one: at once."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if live.stop_requested:
            raise KeyboardInterrupt
        live.request_stop()

    signal.signal(signal.SIGINT, handler)
    return previous


def _is_oom(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return ("resourceexhausted" in text or "out of memory" in text or " oom " in f" {text} "
            or "resource_exhausted" in text)


def merge_history(old: dict, new: dict) -> dict:
    """Append `new` epochs to `old`, padding metrics either side lacks with NaN."""
    old_n = max((len(v) for v in old.values()), default=0)
    new_n = max((len(v) for v in new.values()), default=0)
    merged = {}
    for key in list(old) + [k for k in new if k not in old]:
        a = list(old.get(key, []))
        b = list(new.get(key, []))
        merged[key] = a + [math.nan] * (old_n - len(a)) + b + [math.nan] * (new_n - len(b))
    return merged


def run_fit(shell, args, magics):
    """Train the model named `args.name`; return its Keras `History`.

    Args:
        shell: the IPython shell.
        args: the parsed `%fit` arguments.
        magics: the `NbkerasMagics` configurable (update_interval,
            plot_budget, display_mode).
    """
    import keras

    from ..view.progress import RunState
    from ..view.text import choose_view
    from .callback import LiveCallback, NonFiniteLoss, StopRequested
    from .device import device_line, enable_memory_growth, use_mixed_precision
    from .plan import build_plan, restore_model

    enable_memory_growth()
    model = find_model(shell, args.name)
    info = get_info(model, args.name)
    if args.mixed_precision:
        model, note = use_mixed_precision(model, info)
        if note:
            shell.user_ns[args.name] = model
            print(f"nbkeras: {note}")
    plan = build_plan(shell, args, model, info)
    for note in plan.notes:
        print(f"nbkeras: {note}")

    interval = args.update_interval if args.update_interval is not None else magics.update_interval
    mixed = str(keras.mixed_precision.global_policy().name).startswith("mixed")
    state = RunState(name=args.name, epochs=plan.epochs, initial_epoch=plan.initial_epoch,
                     steps=plan.steps, step_size=plan.step_size, device=device_line(mixed),
                     history={k: list(v) for k, v in info.history.items()} if args.resume else {})
    before = state.epochs_recorded()
    view = choose_view(shell, magics.display_mode, text=args.text, quiet=args.quiet,
                       update_interval=interval, plot_budget=magics.plot_budget)
    from ..registry import get_registry
    registry = get_registry()  # never raises; degrades to a no-op with one warning
    run_id = registry.start_run(
        model=args.name, version_id=info.version_id, options=plan.options, device=state.device,
        backend=keras.backend.backend(), epochs_planned=plan.epochs,
        notebook=os.environ.get("JPY_SESSION_NAME"))
    if run_id is not None:
        registry = _EpochWriter(registry)
    live = LiveCallback(state, view, registry, run_id, update_interval=interval)

    status, message, error = "completed", "", None
    previous = _install_sigint(live)
    try:
        view.start(state)
        model.fit(plan.x, callbacks=plan.callbacks + [live], **plan.fit_kwargs)
    except (StopRequested, KeyboardInterrupt):
        status = "stopped"
        message = (f"stopped at epoch {max(state.epoch, plan.initial_epoch + 1)} of {plan.epochs}"
                   f" (weights kept; {state.epochs_recorded() - before} epochs recorded)")
    except NonFiniteLoss as exc:
        status = "failed"
        message = f"loss became {exc.value} at epoch {exc.epoch}, batch {exc.batch}"
        error = DataError(f"{message}: training stopped. A lower learning rate or normalized "
                          "inputs (e.g. x / 255) usually help; the weights may hold NaN now, "
                          "so rebuild the model")
    except Exception as exc:
        status = "failed"
        message = f"failed at epoch {max(state.epoch, plan.initial_epoch + 1)} of {plan.epochs}"
        if _is_oom(exc):
            bs = args.batch_size
            error = FitUsageError(f"out of memory with batch size {bs}: try a smaller "
                                  f"--batch-size, e.g. -b {max(1, bs // 2)}")
        else:
            error = exc
    finally:
        live.closed = True  # batch ends still queued on Keras' workers: ignore them
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if getattr(model, "_eval_epoch_iterator", None) is not None:
            model._eval_epoch_iterator = None  # Keras leaves it behind when fit raises
        restore_model(plan, model)

    done = state.epochs_recorded() - before
    if status == "completed" and plan.initial_epoch + done < plan.epochs:
        last = plan.initial_epoch + done
        message = (f"early stop at epoch {last} of {plan.epochs} (best weights restored)"
                   if args.early_stop is not None else
                   f"ended at epoch {last} of {plan.epochs}: the data ran out")
    state.finish(status, message)
    try:
        view.finish(state)
    finally:
        registry.end_run(run_id, status, error=str(error) if error else None)
        this_run = {k: v[before:] for k, v in state.history.items()}
        info.history = merge_history(info.history, this_run)
        info.epochs_done += done
        if run_id is not None:
            info.run_ids.append(run_id)
    history = keras.callbacks.History()
    history.set_model(model)
    history.history = this_run
    history.epoch = list(range(plan.initial_epoch, plan.initial_epoch + done))
    history.params = {"epochs": plan.epochs, "steps": plan.steps, "verbose": 0}
    model.history = history
    if error is not None:
        raise error
    return history
