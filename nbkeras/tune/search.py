"""`%tune NAME X [Y] --trials N`: the search.

The kernel's side of a search: the trials' `%fit` arguments (every option
of the options table that a trial takes), the study (new, or resumed), the
data checked once, then the trials, one at a time here (`run_trial`,
`nbkeras.tune.trial`) or in `--workers N` processes
(`nbkeras.tune.parallel`). An interrupt ends the search after the trial in
flight, recorded as stopped. `NAME` is then bound to the best trial's
trained model (its weights, not a retrained copy) and `%tune` returns the
trials as a pandas DataFrame.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional

from ..errors import TrainingStopped, UsageError
from .trial import TrialContext, row_of, run_trial
from .view import SearchState, SearchView, TrialRow


def _fit_args(magics, args, x_expr: str, y_expr: Optional[str]):
    """The `%fit` arguments each trial trains with: `%fit`'s own defaults, and
    every option of the table that a trial takes (`nbkeras.options`) as the
    `%tune` line gave it."""
    from ..options.training import trial_options
    fit = magics.fit.parser.parse_args([args.name, x_expr] + ([y_expr] if y_expr else []))
    for option in trial_options():
        setattr(fit, option.dest, getattr(args, option.dest))
    fit.quiet = True
    if args.objective:
        fit.monitor = args.objective
    if args.cv is not None and args.seed is not None:  # the folds drawn from the search's seed
        fit.cv_shuffle, fit.seed = True, args.seed
    return fit


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


def _earlier_rows(study, spec) -> List[TrialRow]:
    """The trials a resumed study already holds."""
    by_name = {s.name: s for s in spec.spaces}
    rows = [row_of(t, by_name) for t in study.get_trials(deepcopy=False)]
    return [r for r in rows if r is not None and r.state != "running"]


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
