"""`%tune NAME X [Y] --trials N`: the search loop.

Each trial asks Optuna for values (`space.suggest`), builds the spec at
those values (`modelbuild.build(..., values=...)`), and trains exactly as
`%fit` does: the same `build_plan` (data forms, checks, validation,
early stopping), the same `FitSession` (registry run, SIGINT, undo) and
the same callback, with a reporter that feeds each epoch's objective to
Optuna's pruner. A trial that fails (NaN, out of memory, a value Keras
rejects) is marked failed with its reason and the search goes on; an
interrupt ends the search after the trial in flight, recorded as stopped.
`NAME` is then bound to the best trial's trained model (its weights, not a
retrained copy) and `%tune` returns the trials as a pandas DataFrame.

`run_trial` is one trial from its values to Optuna's `tell`, the same code
in this kernel (`--workers` not given: one trial at a time) and in the
worker processes of `--workers N` (`nbkeras.tune.parallel` starts them,
`nbkeras.tune.worker` is their loop), which read the data from a
`DataNamespace` instead of the notebook.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..errors import SpecError, TrainingStopped, UsageError
from .view import SearchState, SearchView, TrialRow


def _fit_args(magics, args, x_expr: str, y_expr: Optional[str]):
    """The `%fit` arguments each trial trains with (parsed by `%fit`'s own parser)."""
    words = [args.name, x_expr] + ([y_expr] if y_expr else [])
    words += ["-e", str(args.epochs), "-b", str(args.batch_size), "--quiet"]
    if args.val:
        words += ["--val", *args.val]
    if args.val_split is not None:
        words += ["--val-split", str(args.val_split)]
    if args.class_weight:
        words += ["--class-weight", args.class_weight]
    if args.early_stop is not None:
        words += ["--early-stop", str(args.early_stop)]
    if args.objective:
        words += ["--monitor", args.objective]
    if args.cv is not None:
        words += ["--cv", str(args.cv)]
        if args.seed is not None:
            words += ["--cv-shuffle", "--seed", str(args.seed)]
    return magics.fit.parser.parse_args(words)


def _spec_of(shell, name: str):
    from ..modelbuild.catalog import parse_spec as parse
    from ..state import get_info
    from ..train.fit import find_model
    model = find_model(shell, name, doing="tune")
    info = get_info(model, name)
    if not info.spec_text:
        raise UsageError(f"`{name}` was not built from a spec: %tune searches the spaces of a "
                         "`%%model` cell, like `dense {64, 128} relu`")
    # the cell's lines, as the %%model cell counted them (its first line is `%%model`)
    spec = parse(info.spec_text, input_shape=info.extra.get("input_shape"), first_line=2)
    if not spec.spaces:
        raise UsageError(f"`{name}`'s spec has no search space: write one where a value goes, "
                         "like `dense {64, 128} relu`, `dropout 0.1..0.5` or "
                         "`optimizer adam lr=1e-4..1e-2:log`")
    return model, info, spec


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


def _check_workers(args, plan0) -> Optional[int]:
    """How many worker processes run the trials (None: this kernel runs them)."""
    if args.workers is None:
        return None
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: give at least 1")
    from ..train.checks import is_dataset
    if is_dataset(plan0.x) or is_dataset(plan0.fit_kwargs.get("validation_data")):
        raise UsageError("--workers writes the data once as NumPy files for the worker "
                         "processes: give arrays (or DataFrames), not a dataset")
    from .job import check_data
    check_data(plan0.x, f"`{args.x}`")
    check_data(plan0.y, f"`{args.y}`")
    check_data(plan0.fit_kwargs.get("validation_data"), "--val")
    if args.trials is not None and args.workers > args.trials:
        print(f"nbkeras: --workers {args.workers} is more than the {args.trials} trials: "
              f"{args.trials} workers")
        return args.trials
    return args.workers


def run_tune(shell, args, magics):
    """Search the spaces of `args.name`; return the trials as a DataFrame."""
    from .job import keep_only, study_folder
    from .study import open_study, require_optuna
    optuna = require_optuna()
    try:
        import pandas as pd
    except ImportError:
        raise UsageError("%tune returns a pandas DataFrame: `pip install pandas`") from None
    if args.cv is not None and (args.val or args.val_split is not None):
        raise UsageError("--cv holds out each fold in turn as the validation data: drop --val "
                         "and --val-split")
    if args.trials is None and args.timeout is None:
        raise UsageError("give --trials N (or --timeout SECONDS)")
    if args.timeout is not None and args.timeout <= 0:  # 0 would mean no deadline at all
        raise UsageError(f"--timeout {args.timeout:g}: give a number of seconds above 0")
    if args.trials is not None and args.trials < 1:
        raise UsageError(f"--trials {args.trials}: give at least 1")
    model0, info0, spec = _spec_of(shell, args.name)
    _hold_out(shell, args)
    fit_args = _fit_args(magics, args, args.x, args.y)
    from ..metricvocab import direction as metric_direction
    from ..train.plan import build_plan
    plan0 = build_plan(shell, fit_args, model0, info0)  # data checked once, before any trial
    objective = args.objective or ("val_loss" if args.cv else plan0.monitor)
    direction = args.direction or metric_direction(objective, model0)
    if direction not in ("min", "max"):
        raise UsageError(f"--direction {direction!r}: give min or max")
    fit_args.direction = direction  # decided once: each trial's early stopping, reduce-lr too
    workers = _check_workers(args, plan0)
    study, url = open_study(args.study or args.name, direction, args.storage, args.resume,
                            args.sampler, args.pruner, args.seed, spec.spaces)
    study_name = study.study_name
    if study_name != (args.study or args.name):
        print(f"nbkeras: a study named {args.study or args.name!r} exists already (--resume "
              f"continues it): this search is study {study_name!r}")
    earlier = _earlier_rows(study, spec)
    start = len(study.get_trials(deepcopy=False))
    limit = _trials_left(args, spec, study, study_name)
    if workers is not None and limit is not None:
        workers = max(1, min(workers, limit))
    state = SearchState(study=study_name, objective=objective, direction=direction,
                        spaces=[s.name for s in spec.spaces], planned=limit,
                        workers=workers or 1, start=start)
    state.rows += earlier
    from ..view.text import has_rich_frontend
    view = SearchView(state, quiet=args.quiet, text=not has_rich_frontend(shell))
    ctx = TrialContext(shell=shell, spec=spec, fit_args=fit_args, info0=info0,
                       objective=objective, direction=direction, study_name=study_name,
                       seed=args.seed)
    folder = study_folder(study_name, url)
    best, best_model, stopped = state.best(), None, False
    if limit == 0:  # a grid run in full: the study's trials as they are
        view.start()
        state.status = "completed"
    elif workers is not None:
        from .parallel import run_workers
        best, best_model, stopped = run_workers(ctx, args, plan0, model0, study, url, state,
                                                view, workers, limit)
    else:
        ctx.models = str(folder / "models")
        os.makedirs(ctx.models, exist_ok=True)
        best, best_model, stopped = _run_here(ctx, study, state, view, optuna, limit,
                                              args.timeout)
        if best_model is not None:
            keep_only(folder / "models", best.number)  # the best so far of this search
    if best_model is None and best is not None and best.state == "complete" \
            and best.number < start:
        best_model = _earlier_best(ctx, folder, best)  # --resume, after a restart too
    if best_model is not None:
        best_model.best_params = dict(best.values)
        shell.user_ns[args.name] = best_model
    view.finish()
    frame = _frame(pd, state)
    if stopped:
        from IPython.display import display
        display(frame)
        shell.user_ns["_tune"] = frame
        raise TrainingStopped(f"search {study_name!r} stopped after {len(state.new())} "
                              f"trials: the trials so far are in `_tune`; `%tune ... --resume` "
                              "continues it")
    return frame


def _hold_out(shell, args) -> None:
    """Without validation data the objective would be a training metric, in
    silence: each trial holds out the last 20% (`--val-split 0.2`), said in
    one line; a dataset, which Keras cannot split, is refused. An explicit
    `--objective` that is not a validation metric holds nothing out."""
    if args.val or args.val_split is not None or args.cv is not None:
        return
    if args.objective and not args.objective.startswith("val_"):
        return
    from ..train.checks import is_dataset
    try:
        x = shell.ev(args.x)
    except Exception:  # noqa: BLE001 - %fit's own checks say what is wrong with it
        x = None
    if is_dataset(x):
        raise UsageError("%tune optimizes a validation metric, and a dataset cannot be split: "
                         "give --val VAL_DATASET (or --objective loss to optimize the "
                         "training loss)")
    args.val_split = 0.2
    print("nbkeras: no --val given: each trial holds out the last 20% of the samples for "
          "validation (--val-split 0.2)")


def _trials_left(args, spec, study, study_name: str) -> Optional[int]:
    """How many trials this search runs at most (None: until --timeout):
    --trials, and with the grid sampler no more than the points not yet run."""
    if args.sampler.lower() != "grid":
        return args.trials
    from .study import grid_left
    left = grid_left(spec.spaces, study.get_trials(deepcopy=False))
    if left == 0:
        import math

        from .space import grid
        size = math.prod(len(values) for values in grid(spec.spaces).values())
        print(f"nbkeras: study {study_name!r} has run every point of its grid ({size}): "
              "no new trial")
    return left if args.trials is None else min(args.trials, left)


def _earlier_best(ctx: TrialContext, folder, best):
    """The saved model of the study's best trial, from an earlier search of it."""
    from .parallel import _load_best
    if not (folder / "models" / f"trial-{best.number}.keras").exists():
        print(f"nbkeras: the study's best trial ({best.number}) ran before nbkeras kept trial "
              f"models: `{ctx.fit_args.name}` is left as it was")
        return None
    print(f"nbkeras: the study's best trial is still {best.number}, from an earlier search: "
          f"`{ctx.fit_args.name}` holds its trained model")
    return _load_best(ctx, folder, best)


def _run_here(ctx: TrialContext, study, state: SearchState, view, optuna,
              limit: Optional[int], timeout: Optional[float]):
    """At most `limit` trials, one at a time in this kernel; returns the best
    trial's row and model (None when no trial of this run beat the study's
    best) and whether the user stopped the search."""
    view.start()
    best_model, stopped, grid_done = None, False, False
    best = state.best()
    deadline = time.perf_counter() + timeout if timeout else None
    ran = 0
    while (limit is None or ran < limit) and not stopped and not grid_done:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        trial = study.ask()
        ran += 1
        row = TrialRow(number=trial.number, values={})
        state.rows.append(row)
        model, stopped, grid_done = run_trial(ctx, study, trial, row, view, optuna)
        if model is not None and (best is None or (
                row.value < best.value if ctx.direction == "min" else row.value > best.value)):
            best, best_model = row, model
        state.current = ""
        view.draw()  # every trial end is drawn at once
    state.status = "stopped" if stopped else "completed"
    return best, best_model, stopped


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


def _earlier_rows(study, spec) -> List[TrialRow]:
    """The trials a resumed study already holds."""
    by_name = {s.name: s for s in spec.spaces}
    rows = [row_of(t, by_name) for t in study.get_trials(deepcopy=False)]
    return [r for r in rows if r is not None and r.state != "running"]


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


def _frame(pd, state: SearchState):
    """One row per trial, best first: trial, value, state, duration, one column per space."""
    records = []
    for r in state.rows:
        rec: Dict[str, Any] = {"trial": r.number, "value": r.value, "state": r.state,
                               "duration": round(r.duration, 3)}
        for name in state.spaces:
            rec[name] = r.values.get(name)
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=["trial", "value", "state", "duration",
                                                        *state.spaces])
    ascending = state.direction == "min"
    frame["_done"] = frame["state"] != "complete"
    frame = frame.sort_values(["_done", "value"], ascending=[True, ascending], na_position="last")
    return frame.drop(columns="_done").reset_index(drop=True)
