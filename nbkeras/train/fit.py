"""`%fit`: find the model, plan, train in a session, remember the run.

`run_fit` is a short sequence of named steps: `find_model`, `build_plan`
(arguments, data, checks, Keras options; changes nothing), then a
`FitSession` (`nbkeras.train.session`) that applies the plan, trains with
the live callback and undoes what it set however the run ends, and
finally `remember` (history on the model and in its `ModelInfo`). A run
stopped by the user (interrupt or stop button) keeps its weights and
partial history, and ends the cell as interrupted (`TrainingStopped`), so
Jupyter skips the cells queued after it.
"""

from __future__ import annotations

import math

from ..errors import UsageError, did_you_mean
from ..state import get_info
from .checks import settle_losses


def find_model(shell, name: str, doing: str = "train"):
    """The compiled Keras model bound to `name` in the notebook, not training
    in the background."""
    import keras

    from .background import check_free
    ns = shell.user_ns
    models = [k for k, v in ns.items() if isinstance(v, keras.Model) and not k.startswith("_")]
    if name not in ns:
        hint = did_you_mean(name, models) or (
            f": the models here are {', '.join(models)}" if models else
            ": build one first with `%%model NAME`")
        raise UsageError(f"no model named {name!r}{hint}")
    model = ns[name]
    if not isinstance(model, keras.Model):
        raise UsageError(f"{name!r} is a {type(model).__name__}, not a Keras model"
                            f"{did_you_mean(name, models)}")
    if not getattr(model, "compiled", True) or getattr(model, "optimizer", None) is None:
        raise UsageError(f"model {name!r} is not compiled: call `{name}.compile(...)` "
                            "or build it with `%%model` without --no-compile")
    check_free(name, model, doing)
    return model


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
        args: the parsed `%fit` arguments (read only by `build_plan`).
        magics: the `NbkerasMagics` configurable (update_interval,
            display_mode).
    """
    from .device import enable_memory_growth
    from .plan import build_plan
    from .session import FitSession

    model = find_model(shell, args.name, doing="train")
    info = get_info(model, args.name)
    plan = build_plan(shell, args, model, info)
    for note in plan.notes:
        print(f"nbkeras: {note}")
    if plan.class_names and not getattr(args, "code", False):
        info.extra["class_names"] = plan.class_names  # %predict, %evaluate, %serve name them
    if getattr(args, "code", False):  # --code: write and show the script, train nothing
        from .script import show_fit_script
        return show_fit_script(shell, plan, model, info)
    enable_memory_growth()
    if args.cv is not None and plan.background:
        raise UsageError("--background trains one run: drop --cv, or run the folds in the foreground")
    if args.cv is not None:
        from .cv import run_cv
        settle_losses(model, info, plan.settle)  # the copies share the settled loss
        return run_cv(shell, args, plan, model, info)
    if plan.background:
        return start_background(shell, plan, model, info, magics)
    with FitSession(shell, plan, model, info) as session:
        state, view = start_view(shell, plan, session, magics)
        live = start_live(plan, session, state, view, magics)
        session.train([live])
        finish(plan, session, state, view)
    history = remember(plan, session, state)
    if session.status == "stopped":
        raise session.stopped_error(max(state.epoch, plan.initial_epoch + 1))
    if session.error is not None:
        raise session.error
    return history


def start_background(shell, plan, model, info, magics):
    """Enter the run and show its panel here, train on a thread; the `FitJob`.

    Everything a user can get wrong, and every print, happens before the
    cell returns; the thread only trains, finishes the record and
    remembers the run (`nbkeras.train.background`).
    """
    import sys
    from contextlib import ExitStack

    from ..view.controls import StopButton
    from .background import launch
    from .callback import LiveCallback
    from .session import FitSession

    stack = ExitStack()
    session = stack.enter_context(FitSession(shell, plan, model, info))
    try:
        state, view = start_view(shell, plan, session, magics)
        interval = plan.update_interval if plan.update_interval is not None else magics.update_interval
        # no SIGINT handler: an interrupt belongs to the cell running at the time
        live = LiveCallback(state, view, session.registry, session.run_id, update_interval=interval)
        button = StopButton(live.request_stop, plan.name)
        button.show()
    except BaseException:
        if not stack.__exit__(*sys.exc_info()):
            raise
        return None

    def work(job):
        try:
            with stack:
                session.train([live])
                finish(plan, session, state, view)
        finally:
            button.close()
        job._end(session.status, remember(plan, session, state), session.error)

    return launch(plan.name, session.model, state, live, work)


def start_view(shell, plan, session, magics):
    """The run's `RunState` and its view (panel, text or quiet), shown."""
    import keras

    from ..view.progress import RunState
    from ..view.text import choose_view
    from .device import device_line, is_mixed

    info = session.info
    interval = plan.update_interval if plan.update_interval is not None else magics.update_interval
    state = RunState(name=plan.name, epochs=plan.epochs, initial_epoch=plan.initial_epoch,
                     steps=plan.steps, step_size=plan.step_size,
                     device=device_line(is_mixed(session.model), plan.devices),
                     batch_split=plan.batch_split,
                     history={k: list(v) for k, v in info.history.items()} if plan.resume else {})
    state.before = state.epochs_recorded()
    session.state = state  # the device's memory is shown in it
    view = choose_view(shell, magics.display_mode, text=plan.text, quiet=plan.quiet,
                       update_interval=interval, background=plan.background)
    session.start_run(state.device, keras.backend.backend())
    view.start(state)
    return state, view


def start_live(plan, session, state, view, magics):
    """The Keras callback feeding the view and the registry, and its stop handler."""
    from .callback import LiveCallback
    interval = plan.update_interval if plan.update_interval is not None else magics.update_interval
    live = LiveCallback(state, view, session.registry, session.run_id, update_interval=interval)
    session.install_sigint(live)
    return live


def finish(plan, session, state, view) -> None:
    """Say how the run ended and leave the static record."""
    done = state.epochs_recorded() - state.before
    message = ""
    if session.status == "stopped":
        message = (f"stopped at epoch {max(state.epoch, plan.initial_epoch + 1)} of "
                   f"{plan.epochs} (weights kept; {done} epochs recorded)")
    elif session.status == "failed":
        message = f"failed at epoch {max(state.epoch, plan.initial_epoch + 1)} of {plan.epochs}"
        if session.error is not None and "loss became" in str(session.error):
            message = str(session.error).split(":")[0]
        elif session.error is not None and plan.background:  # no cell shows the error
            message += f": {type(session.error).__name__}: {session.error}"
    else:
        last = plan.initial_epoch + done
        session.hold(state)
        held = (f"the model holds the weights of epoch {state.weights_epoch} "
                f"(best {plan.monitor})" if state.weights_epoch is not None else "")
        if last < plan.epochs and plan.early_stop is not None:
            message = f"early stop at epoch {last} of {plan.epochs}" + (f": {held}" if held else "")
        elif last < plan.epochs:
            message = f"ended at epoch {last} of {plan.epochs}: the data ran out"
        elif held:  # Keras restores the best weights at the end of a full run too
            message = f"completed {plan.epochs} epochs: {held}"
    note = speed_note(plan, session, state)
    if note:
        message = f"{message} · {note}" if message else note
    state.finish(session.status, message)
    view.finish(state)


def speed_note(plan, session, state) -> str:
    """'mixed precision ran at 0.72x ...' when this run, in mixed precision,
    trained slower than the model's previous float32 run at the same batch
    size (small models gain nothing from it, and the casts cost); ''
    otherwise. Each completed run leaves its steady steps/s for the next."""
    from .device import is_mixed
    rate = state.batch_rate()
    if session.status != "completed" or not rate:
        return ""
    mixed = is_mixed(session.model)
    extra = session.info.extra
    before = extra.get("speed")
    extra["speed"] = {"mixed": mixed, "rate": rate, "batch": plan.batch_size,
                      "steps_per_call": plan.step_size}
    if (not mixed or not before or before["mixed"] or before["batch"] != plan.batch_size
            or rate >= 0.95 * before["rate"]):
        return ""
    return (f"mixed precision ran at {rate / before['rate']:.2f}x the speed of the previous "
            "float32 run: it pays off on large matrix products on GPUs with float16 or "
            "bfloat16 units; drop --mixed-precision for this model")


def remember(plan, session, state):
    """Keep this run's history on the model and in its `ModelInfo`; return the
    plain Keras `History` of this run (also `model.history`)."""
    import keras

    info, model = session.info, session.model
    this_run = {k: v[state.before:] for k, v in state.history.items()}
    done = state.epochs_recorded() - state.before
    info.history = merge_history(info.history, this_run)
    info.epochs_done += done
    if session.run_id is not None:
        info.run_ids.append(session.run_id)
    history = keras.callbacks.History()
    history.set_model(model)
    history.history = this_run
    history.epoch = list(range(plan.initial_epoch, plan.initial_epoch + done))
    history.params = {"epochs": plan.epochs, "steps": plan.steps, "verbose": 0}
    model.history = history
    return history
