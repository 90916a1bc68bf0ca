"""`nbkeras tune-worker`: a process that runs trials of a `%tune` search.

`%tune ... --workers N` starts N of them on this machine; on other
machines, `nbkeras tune-worker --storage URL --study NAME --data PATH`
joins a search whose study lives in a database they all reach (Optuna's
own way of distributing a study: every process asks the shared storage
for its next trial). A worker reads the search's `job.json` and
memory-maps its data (`nbkeras.tune.job`), then runs trials through the
same `run_trial` as the kernel until the study holds the number of trials
the search asked for: it counts the study's trials and asks for the next
one under a lock shared by the workers of a machine, so none is repeated
or lost. Each trial is a registry run of the model grouped under its
study; the outcome (stopped, the reason of a failure, the run) is written
on the Optuna trial, and a trial at least as good as every one before it
is saved as `models/trial-N.keras` in the study folder, for the kernel to
bind the best one to `NAME` at the end.

SIGINT or SIGTERM ends the worker after the current batch, the trial in
flight recorded as stopped (failed in Optuna), as an interrupt does in the
kernel; a worker that the kernel started also stops when the kernel dies.

Example:
    $ nbkeras tune-worker --storage postgresql://user:pw@db/optuna \\
          --study digits --data /shared/studies/digits
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import socket
import sys
import threading
import time
from typing import List, Optional

from ..errors import NbkerasError, UsageError


def build_parser(prog: str = "nbkeras tune-worker") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run trials of a %tune search until its study holds the "
                               "number of trials the search asked for.")
    parser.add_argument("--storage", metavar="URL",
                        help="the study's Optuna storage (default: the SQLite file beside "
                             "this machine's run registry)")
    parser.add_argument("--study", metavar="NAME", required=True, help="the study's name")
    parser.add_argument("--data", metavar="PATH",
                        help="the study folder holding job.json and the data (default: the "
                             "study's folder in this machine's registry folder)")
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)   # set by %tune
    parser.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # the kernel's pid
    return parser


def main(argv: Optional[List[str]] = None, prog: str = "nbkeras tune-worker") -> int:
    """Run the worker; returns the exit status (2: a one-line usage error)."""
    args = build_parser(prog).parse_args(argv)
    try:
        return run_worker(args)
    except NbkerasError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_worker(args) -> int:
    from ..backend import import_keras
    from .job import read_job, study_folder
    from .study import find_study, load_study, require_optuna, stream_seed

    optuna = require_optuna()
    store, url = find_study(args.study, args.storage)
    folder = pathlib.Path(args.data) if args.data else study_folder(args.study, url)
    job = read_job(folder)
    if job["study"] != args.study:
        raise UsageError(f"{folder} holds the job of study {job['study']!r}, not "
                         f"{args.study!r}: give that study's folder with --data PATH")
    import_keras()  # quietly, before the catalog that names the spec's spaces imports it
    from ..modelbuild.catalog import parse_spec as parse
    spec = parse(job["spec_text"], input_shape=job.get("input_shape"))
    # each worker its own sampler stream, none the kernel's nor an earlier search's
    sampler_seed = (stream_seed(job.get("seed"), int(job.get("start") or 0), args.index)
                    if args.index is not None else None)
    study = load_study(store, args.study, job["sampler"], job["pruner"], sampler_seed,
                       spec.spaces)
    until = job.get("until")
    if until is not None and len(study.get_trials(deepcopy=False)) >= until:
        print(f"study {args.study!r} holds its {until} trials already")
        return 0
    _stop_on_signals(args.parent)
    ctx = _context(job, folder, spec, args.study)
    timeout = job.get("timeout")  # counted from this worker's start, as from the kernel's
    deadline = time.time() + timeout if timeout else None
    return _loop(ctx, study, folder, until, deadline, optuna)


def _context(job, folder: pathlib.Path, spec, study_name: str):
    from ..backend import import_keras
    from ..state import ModelInfo
    from ..train.device import enable_memory_growth
    from .job import worker_fit_args, worker_namespace
    from .trial import TrialContext

    import_keras()
    enable_memory_growth()
    models = folder / "models"
    try:
        models.mkdir(exist_ok=True)
    except OSError:  # a read-only copy of the folder: trials are not saved
        models = None
    return TrialContext(
        shell=worker_namespace(folder, job), spec=spec, fit_args=worker_fit_args(job),
        info0=ModelInfo(name=job["model"], spec_text=job["spec_text"],
                        version_id=_version_id(job),
                        extra={"input_shape": job.get("input_shape")}),
        objective=job["objective"], direction=job["direction"], study_name=study_name,
        seed=job.get("seed"), options=dict(job.get("expressions") or {}),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        models=str(models) if models is not None else None)


def _version_id(job) -> Optional[int]:
    """The model version in this worker's registry: the kernel's, when both
    use the same registry folder; else recorded here from the spec text."""
    from ..registry import default_home, get_registry
    try:
        same = pathlib.Path(default_home()).resolve() == pathlib.Path(job["registry"]).resolve()
    except (OSError, KeyError, TypeError):
        same = False
    if same:
        return job.get("version_id")
    return get_registry().add_model_version(job["model"], job["spec_text"],
                                            int(job.get("params") or 0))


def _next_trial(study, folder: pathlib.Path, until: Optional[int],
                deadline: Optional[float]):
    """The next trial, or None when the study holds its trials (or the
    search's time is up). Counting and asking happen under the lock."""
    from .job import claim_lock
    if deadline is not None and time.time() >= deadline:
        return None
    with claim_lock(folder):
        if until is not None and len(study.get_trials(deepcopy=False)) >= until:
            return None
        return study.ask()


def _loop(ctx, study, folder: pathlib.Path, until, deadline, optuna) -> int:
    from .trial import run_trial
    from .view import SearchState, SearchView, TrialRow

    state = SearchState(study=ctx.study_name, objective=ctx.objective,
                        direction=ctx.direction, spaces=[s.name for s in ctx.spec.spaces],
                        planned=None)
    view = SearchView(state, text=True)  # one line per trial this worker ran
    while True:
        try:
            trial = _next_trial(study, folder, until, deadline)
        except KeyboardInterrupt:
            return 130
        if trial is None:
            return 0
        row = TrialRow(number=trial.number, values={})
        state.rows.append(row)
        _, stopped, grid_done = run_trial(ctx, study, trial, row, view, optuna)
        view.draw()
        sys.stdout.flush()
        if stopped:
            return 130
        if grid_done:
            return 0


def _stop_on_signals(parent: Optional[int]) -> None:
    """SIGTERM as SIGINT (the trial in flight ends after its batch, recorded
    as stopped); with `parent`, the same when that process is gone."""
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    if not parent:
        return

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="nbkeras-parent-watch", daemon=True).start()


if __name__ == "__main__":  # what `%tune --workers N` starts: `python -m nbkeras.tune.worker`
    sys.exit(main())
