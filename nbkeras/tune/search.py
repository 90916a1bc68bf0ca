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
"""

from __future__ import annotations

import math
import time
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
    from ..speclang.parse import parse
    from ..state import get_info
    from ..train.fit import find_model
    model = find_model(shell, name, doing="tune")
    info = get_info(model, name)
    if not info.spec_text:
        raise UsageError(f"`{name}` was not built from a spec: %tune searches the spaces of a "
                         "`%%model` cell, like `dense {64, 128} relu`")
    spec = parse(info.spec_text)
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


def _train_trial(shell, spec, fit_args, info0, values, trial, objective, view, study_name):
    """Build and train one trial; returns (model, row fields)."""
    import keras

    from ..train.callback import LiveCallback
    from ..train.device import device_line, is_mixed
    from ..train.fit import restored_epoch
    from ..train.session import FitSession
    from ..view.progress import RunState
    from ..view.text import QuietView

    model, info, plan = _build_trial(shell, spec, fit_args, info0, values, trial, study_name)
    reporter = _Reporter(trial, objective, view, plan.epochs)
    plan.callbacks.append(reporter)
    with FitSession(shell, plan, model, info) as session:
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
        restored = restored_epoch(plan, state)
        if restored is not None:
            state.weights_epoch = restored
        value = state.held(objective)
        if objective not in state.history and session.status == "completed":
            session.status, session.error = "failed", UsageError(
                f"the model does not log `{objective}`; it logs {', '.join(state.history)}")
    return model, session, value, pruned, state


def _build_trial(shell, spec, fit_args, info0, values, trial, study_name):
    """The model at the trial's values, its `ModelInfo` and its `FitPlan`
    (the data were checked before the first trial: no --monitor probe)."""
    from ..modelbuild.build import build
    from ..state import ModelInfo, set_info
    from ..train.plan import build_plan

    result = build(spec, fit_args.name, values=values)
    model = result.model
    info = set_info(model, ModelInfo(
        name=fit_args.name, spec_text=info0.spec_text, version_id=info0.version_id,
        compile_kwargs=result.compile_kwargs, deferred_losses=dict(result.deferred_losses),
        extra={"space_values": dict(values), "study": study_name, "trial": trial.number}))
    plan = build_plan(shell, fit_args, model, info, probe_monitor=False)
    plan.options.update(study=study_name, trial=trial.number,
                        values={k: _jsonable(v) for k, v in values.items()})
    return model, info, plan


class _CVOutcome:
    """What the search loop reads of a cross-validated trial (a session's fields)."""

    def __init__(self, status="completed", error=None):
        self.status, self.error, self.run_id = status, error, None


def _cv_trial(shell, spec, fit_args, info0, values, trial, objective, view, study_name):
    """One trial scored by K-fold cross-validation: the mean of `objective`
    over the folds (no pruning: a fold is not an epoch). Returns the model at
    its initial weights, as `%fit --cv` leaves it."""
    from ..errors import TrainingStopped
    from ..train.checks import settle_losses
    from ..train.cv import run_cv

    model, info, plan = _build_trial(shell, spec, fit_args, info0, values, trial, study_name)
    settle_losses(model, info, plan.settle)
    view.progress(f"{fit_args.cv}-fold cross-validation…", 0.0)
    try:
        frame = run_cv(shell, fit_args, plan, model, info)
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


def run_tune(shell, args, magics):
    """Search the spaces of `args.name`; return the trials as a DataFrame."""
    from .study import open_study, require_optuna
    optuna = require_optuna()
    try:
        import pandas as pd
    except ImportError:
        raise UsageError("%tune returns a pandas DataFrame: `pip install pandas`") from None
    if args.workers is not None:
        raise UsageError("--workers is not available yet in this version of %tune: run the "
                         "search without it (trials run one at a time in this kernel)")
    if args.cv is not None and (args.val or args.val_split is not None):
        raise UsageError("--cv holds out each fold in turn as the validation data: drop --val "
                         "and --val-split")
    if args.trials is None and args.timeout is None:
        raise UsageError("give --trials N (or --timeout SECONDS)")
    if args.trials is not None and args.trials < 1:
        raise UsageError(f"--trials {args.trials}: give at least 1")
    model0, info0, spec = _spec_of(shell, args.name)
    fit_args = _fit_args(magics, args, args.x, args.y)
    from ..metricvocab import direction as metric_direction
    from ..train.plan import build_plan
    plan0 = build_plan(shell, fit_args, model0, info0)  # data checked once, before any trial
    objective = args.objective or ("val_loss" if args.cv else plan0.monitor)
    direction = args.direction or metric_direction(objective, model0)
    if direction not in ("min", "max"):
        raise UsageError(f"--direction {direction!r}: give min or max")
    study_name = args.study or args.name
    study, url = open_study(study_name, direction, args.storage, args.resume, args.sampler,
                            args.pruner, args.seed, spec.spaces)
    state = SearchState(study=study_name, objective=objective, direction=direction,
                        spaces=[s.name for s in spec.spaces], planned=args.trials)
    state.rows += _earlier_rows(study, spec)
    from ..view.text import has_rich_frontend
    view = SearchView(state, quiet=args.quiet, text=not has_rich_frontend(shell))
    view.start()
    best_model, stopped, grid_done = None, False, False
    best = state.best()
    deadline = time.perf_counter() + args.timeout if args.timeout else None
    ran = 0
    while (args.trials is None or ran < args.trials) and not stopped and not grid_done:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        trial = study.ask()
        ran += 1
        row = TrialRow(number=trial.number, values={})
        state.rows.append(row)
        started = time.perf_counter()
        try:
            values = {s.name: _suggest(trial, s) for s in spec.spaces}
            row.values = values
            view.progress("building…", 0.0)
            if args.seed is not None:
                import keras
                keras.utils.set_random_seed(args.seed + trial.number)
            if args.cv is not None:
                model, session, value, pruned = _cv_trial(
                    shell, spec, fit_args, info0, values, trial, objective, view, study_name)
            else:
                model, session, value, pruned, _ = _train_trial(
                    shell, spec, fit_args, info0, values, trial, objective, view, study_name)
                row.run_id = session.run_id
        except KeyboardInterrupt:
            row.state, row.message, stopped = "stopped", "interrupted before training", True
            grid_done |= _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        except (SpecError, ValueError, TypeError) as exc:  # a value Keras rejects: this trial only
            row.state, row.message = "failed", _short(exc)
            grid_done |= _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        else:
            if session.status == "stopped" and not pruned:
                row.state, row.message, stopped = "stopped", "stopped by the user", True
                grid_done |= _tell(study, trial, state=optuna.trial.TrialState.FAIL)
            elif session.status == "failed":
                row.state, row.message = "failed", _short(session.error)
                grid_done |= _tell(study, trial, state=optuna.trial.TrialState.FAIL)
            elif pruned:
                row.state, row.message, row.value = "pruned", pruned, value
                grid_done |= _tell(study, trial, state=optuna.trial.TrialState.PRUNED)
            elif value is None or not math.isfinite(value):
                row.state, row.message = "failed", f"no finite {objective}"
                grid_done |= _tell(study, trial, state=optuna.trial.TrialState.FAIL)
            else:
                row.state, row.value = "complete", value
                grid_done |= _tell(study, trial, value)
                if best is None or (value < best.value if direction == "min" else value > best.value):
                    best, best_model = row, model
        row.duration = time.perf_counter() - started
        state.current = ""
        view.draw()  # every trial end is drawn at once
    state.status = "stopped" if stopped else "completed"
    if best_model is not None:
        best_model.best_params = dict(best.values)
        shell.user_ns[args.name] = best_model
    view.finish()
    frame = _frame(pd, state)
    if stopped:
        from IPython.display import display
        display(frame)
        shell.user_ns["_tune"] = frame
        raise TrainingStopped(f"search {study_name!r} stopped after {len(state.finished())} "
                              f"trials: the trials so far are in `_tune`; `%tune ... --resume` "
                              "continues it")
    return frame


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
    from .space import value_of
    by_name = {s.name: s for s in spec.spaces}
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(t.state.name)
        if state is None:
            continue
        values = {k: value_of(by_name[k], v) for k, v in t.params.items() if k in by_name}
        duration = (t.duration.total_seconds() if t.duration is not None else 0.0)
        rows.append(TrialRow(number=t.number, values=values, state=state, value=t.value,
                             duration=duration))
    return rows


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
