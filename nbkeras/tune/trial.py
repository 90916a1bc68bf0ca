"""One `%tune` trial, from Optuna's values to its `tell`, wherever it runs.

Each trial asks Optuna for values (`space.suggest`), builds the spec at
those values (`modelbuild.build(..., values=...)`), and trains exactly as
`%fit` does: the same `build_plan` (data forms, checks, validation,
early stopping), the same `FitSession` (registry run, SIGINT, undo) and
the same callback, with a reporter that feeds each epoch's objective to
Optuna's pruner. A trial that fails (NaN, out of memory, a value Keras
rejects) is marked failed with its reason. `run_trial` is the same code in
the kernel (`nbkeras.tune.search`, one trial at a time) and in the worker
processes of `--workers N` (`nbkeras.tune.worker`), which read the data
from a `DataNamespace` instead of the notebook; `row_of` reads a trial
back from the study for the display (`nbkeras.tune.parallel`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from ..errors import SpecError, UsageError
from .view import TrialRow


class _Reporter:
    """Keras callback: each epoch's objective to Optuna; stops a pruned trial."""

    def __new__(cls, *a, **k):
        import keras

        class Reporter(keras.callbacks.Callback):
            def __init__(self, trial, objective, view, epochs):
                super().__init__()
                self.trial, self.objective, self.view, self.epochs = trial, objective, view, epochs
                self.pruned_at = None

            def on_epoch_end(self, epoch, logs=None):
                value = (logs or {}).get(self.objective)
                text = f"epoch {epoch + 1}/{self.epochs}"
                if value is not None:
                    text += f" · {self.objective} {float(value):.4g}"
                self.view.progress(text, (epoch + 1) / self.epochs)
                if value is None or not math.isfinite(float(value)):
                    return
                self.trial.report(float(value), epoch)
                if self.trial.should_prune():
                    self.pruned_at = epoch + 1
                    self.model.stop_training = True

        return Reporter(*a, **k)


def _train_trial(ctx: "TrialContext", values, trial, view):
    """Build and train one trial; returns (model, session, value, pruned, state)."""
    import keras

    from ..train.callback import LiveCallback
    from ..train.device import device_line, is_mixed
    from ..train.session import FitSession
    from ..view.progress import RunState
    from ..view.text import QuietView

    objective = ctx.objective
    model, info, plan = _build_trial(ctx, values, trial)
    reporter = _Reporter(trial, objective, view, plan.epochs)
    plan.callbacks.append(reporter)
    with FitSession(ctx.shell, plan, model, info) as session:
        state = RunState(name=plan.name, epochs=plan.epochs, steps=plan.steps,
                         device=device_line(is_mixed(model)))
        session.start_run(state.device, keras.backend.backend())
        live = LiveCallback(state, QuietView(stream=_Null()), session.registry, session.run_id)
        session.install_sigint(live)
        session.train([live])
        if reporter.pruned_at is not None and session.status == "completed":
            session.status = "stopped"  # the registry's word for a run ended early
            session.error = None
            pruned = f"pruned by Optuna at epoch {reporter.pruned_at}"
        else:
            pruned = ""
        session.hold(state)  # the trial's value is its kept weights' value
        value = state.held(objective)
        if objective not in state.history and session.status == "completed":
            session.status, session.error = "failed", UsageError(
                f"the model does not log `{objective}`; it logs {', '.join(state.history)}")
    return model, session, value, pruned, state


def _build_trial(ctx: "TrialContext", values, trial):
    """The model at the trial's values, its `ModelInfo` and its `FitPlan`
    (the data were checked before the first trial: no --monitor probe)."""
    from ..modelbuild.build import build
    from ..state import ModelInfo, set_info
    from ..train.plan import build_plan

    fit_args, info0, study_name = ctx.fit_args, ctx.info0, ctx.study_name
    result = build(ctx.spec, fit_args.name, values=values)
    model = result.model
    info = set_info(model, ModelInfo(
        name=fit_args.name, spec_text=info0.spec_text, version_id=info0.version_id,
        compile_kwargs=result.compile_kwargs, deferred_losses=dict(result.deferred_losses),
        extra={"space_values": dict(values), "study": study_name, "trial": trial.number,
               "input_shape": info0.extra.get("input_shape")}))
    plan = build_plan(ctx.shell, fit_args, model, info, probe_monitor=False)
    plan.options.update(ctx.options)  # a worker's: the notebook's expressions
    plan.options.update(study=study_name, trial=trial.number, objective=ctx.objective,
                        direction=ctx.direction,
                        values={k: _jsonable(v) for k, v in values.items()})
    return model, info, plan


class _CVOutcome:
    """What the search loop reads of a cross-validated trial (a session's fields)."""

    def __init__(self, status="completed", error=None):
        self.status, self.error, self.run_id = status, error, None


def _cv_trial(ctx: "TrialContext", values, trial, view):
    """One trial scored by K-fold cross-validation: the mean of `objective`
    over the folds (no pruning: a fold is not an epoch). Returns the model at
    its initial weights, as `%fit --cv` leaves it."""
    from ..errors import TrainingStopped
    from ..train.checks import settle_losses
    from ..train.cv import run_cv

    objective, fit_args = ctx.objective, ctx.fit_args
    model, info, plan = _build_trial(ctx, values, trial)
    settle_losses(model, info, plan.settle)
    view.progress(f"{fit_args.cv}-fold cross-validation…", 0.0)
    try:
        frame = run_cv(ctx.shell, fit_args, plan, model, info)
    except TrainingStopped:
        return model, _CVOutcome("stopped"), None, ""
    except Exception as exc:  # noqa: BLE001 - a fold's failure fails this trial only
        return model, _CVOutcome("failed", exc), None, ""
    if objective not in frame.columns or "mean" not in frame.index:
        return model, _CVOutcome("failed", UsageError(
            f"the folds do not log `{objective}`; they log "
            f"{', '.join(c for c in frame.columns if c not in ('n_train', 'n_val', 'epochs', 'seconds'))}")), None, ""
    return model, _CVOutcome(), float(frame.loc["mean", objective]), ""


class _Null:
    def write(self, text):
        pass

    def flush(self):
        pass


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass
class TrialContext:
    """What every trial of one search needs, in the kernel or in a worker.

    Attributes:
        shell: what the trial code reads the data from: the IPython shell in
            the kernel, a `DataNamespace` of memory-mapped arrays in a worker
            (anything with `user_ns` and `ev(expr)`).
        spec: the parsed spec, whose spaces the trials sample.
        fit_args: the `%fit` arguments each trial trains with.
        info0: the searched model's `ModelInfo` (spec text, registry version).
        objective: the metric the study optimizes; `direction` 'min' or 'max'.
        study_name: the Optuna study (and the registry runs' `study`).
        seed: each trial's initial weights use `seed + trial number`.
        options: added to each registry run's options (a worker's: the
            notebook's expressions for X, Y and --val).
        worker: a worker's label; set, the trial's outcome (state, message,
            registry run) is written on the Optuna trial for the kernel.
        models: a trial that is the best so far is saved here, as
            `trial-N.keras` (by a worker, for the kernel to load the best one
            at the end; in the kernel, for a `--resume` after a restart).
    """

    shell: Any
    spec: Any
    fit_args: Any
    info0: Any
    objective: str
    direction: str
    study_name: str
    seed: Optional[int] = None
    options: Dict[str, Any] = field(default_factory=dict)
    worker: Optional[str] = None
    models: Optional[str] = None


def run_trial(ctx: TrialContext, study, trial, row: TrialRow, view, optuna):
    """Run one asked trial: its values, build, train (or cross-validate), tell.

    Fills `row` (values, state, value, message, run). Returns the trained
    model of a complete trial (else None), whether the user stopped it, and
    whether a grid sampler has now run its whole grid.
    """
    FAIL = optuna.trial.TrialState.FAIL
    started = time.perf_counter()
    model, stopped, tell = None, False, {"state": FAIL}
    try:
        if ctx.worker:
            trial.set_user_attr("nbkeras_worker", ctx.worker)
        values = {s.name: _suggest(trial, s) for s in ctx.spec.spaces}
        row.values = values
        view.progress("building…", 0.0)
        if ctx.seed is not None:
            import keras
            keras.utils.set_random_seed(ctx.seed + trial.number)
        if ctx.fit_args.cv is not None:
            model, session, value, pruned = _cv_trial(ctx, values, trial, view)
        else:
            model, session, value, pruned, _ = _train_trial(ctx, values, trial, view)
            row.run_id = session.run_id
    except KeyboardInterrupt:
        row.state, row.message, stopped = "stopped", "interrupted before training", True
    except (SpecError, ValueError, TypeError) as exc:  # a value Keras rejects: this trial only
        row.state, row.message = "failed", _short(exc)
    else:
        if session.status == "stopped" and not pruned:
            row.state, row.message, stopped = "stopped", "stopped by the user", True
        elif session.status == "failed":
            row.state, row.message = "failed", _short(session.error)
        elif pruned:
            row.state, row.message, row.value = "pruned", pruned, value
            tell = {"state": optuna.trial.TrialState.PRUNED}
        elif value is None or not math.isfinite(value):
            row.state, row.message = "failed", f"no finite {ctx.objective}"
        else:
            row.state, row.value = "complete", value
            tell = {"values": value}
    row.duration = time.perf_counter() - started
    if row.state != "complete":
        model = None
    if model is not None and ctx.models:
        try:
            _save_if_best(ctx, study, trial.number, value, model)
        except Exception as exc:  # noqa: BLE001 - the trial's value stands
            row.message = f"its model could not be saved: {_short(exc)}"
    if ctx.worker:
        trial.set_user_attr("nbkeras", {"state": row.state, "message": row.message,
                                        "run_id": row.run_id,
                                        "duration": round(row.duration, 3)})
    return model, stopped, _tell(study, trial, **tell)


def _save_if_best(ctx: TrialContext, study, number: int, value: float, model) -> None:
    """Keep the model of a trial at least as good as every trial completed
    so far, as `trial-N.keras` (written beside, then renamed)."""
    import os
    done = [t.value for t in study.get_trials(deepcopy=False)
            if t.state.name == "COMPLETE" and t.value is not None]
    pick = min if ctx.direction == "min" else max
    if done and pick(done + [value]) != value:
        return
    path = os.path.join(ctx.models, f"trial-{number}.keras")
    tmp = os.path.join(ctx.models, f".trial-{number}-{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _tell(study, trial, *args, **kwargs) -> bool:
    """`study.tell`; True when the grid sampler says every grid point is done.

    Optuna's GridSampler stops the study after the last point with
    `Study.stop()`, which is meant for `study.optimize`: with ask and tell it
    raises once the trial is recorded (the state is stored in a `finally`).
    """
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise
        return True
    return False


def _suggest(trial, space):
    from .space import suggest
    return suggest(trial, space)


def _short(exc) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def row_of(t, by_name) -> Optional[TrialRow]:
    """The display's row of an Optuna trial (None for a trial still waiting),
    with the outcome a worker wrote on it (`stopped`, the reason of a failure,
    the registry run)."""
    from .space import value_of
    state = _STATES.get(t.state.name)
    if state is None:
        return None
    values = {k: value_of(by_name[k], v) for k, v in t.params.items() if k in by_name}
    outcome = t.user_attrs.get("nbkeras") or {}
    if state == "failed" and outcome.get("state") == "stopped":
        state = "stopped"
    value = t.value
    if state == "pruned" and value is None and t.intermediate_values:
        value = t.intermediate_values[max(t.intermediate_values)]
    if outcome.get("duration") is not None:
        duration = float(outcome["duration"])
    elif t.duration is not None:
        duration = t.duration.total_seconds()
    elif state == "running" and t.datetime_start is not None:
        import datetime
        duration = (datetime.datetime.now() - t.datetime_start).total_seconds()
    else:
        duration = 0.0
    return TrialRow(number=t.number, values=values, state=state, value=value,
                    duration=duration, message=outcome.get("message") or "",
                    run_id=outcome.get("run_id"))
