"""`%tune ... --workers N`: the trials in N worker processes, shown live here.

The kernel writes the search's job and data once into the study's folder
(`nbkeras.tune.job`), starts N `python -m nbkeras.tune.worker` processes
(on a machine with several GPUs, one GPU each through
`CUDA_VISIBLE_DEVICES`), and then only reads: it polls the Optuna storage
at most twice a second and redraws the search's display from it, so the
trials of workers on other machines joining the same storage show too.
An interrupt is passed on to the workers (each ends its trial in flight
after the current batch, recorded as stopped); a second one kills them. A
worker that dies says why in one line (the last line of its stderr); its
trial in flight is marked failed. At the end `NAME` is bound to the best
trial's model, which the worker that trained it saved in the study folder
(`models/trial-N.keras`, its trained weights and optimizer state).
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ..errors import UsageError
from .job import keep_only
from .trial import TrialContext, row_of
from .view import SearchState, SearchView

POLL_INTERVAL = 0.5  # least seconds between two reads of the storage
STOP_GRACE = 60.0    # seconds the workers get to record their stopped trials


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    err: pathlib.Path

    @property
    def label(self) -> str:
        return f"{socket.gethostname()}:{self.proc.pid}"


def run_workers(ctx: TrialContext, args, plan0, model0, study, url: str, state: SearchState,
                view: SearchView, workers: int, limit: Optional[int]):
    """Run at most `limit` trials (None: until --timeout) in `workers`
    processes; returns the best trial's row and model (None when no trial of
    this search beat the study's best, or when its model is on another
    machine) and whether the user stopped it."""
    from .job import study_folder, write_job
    from .study import default_storage

    folder = study_folder(ctx.study_name, url)
    start = len(study.get_trials(deepcopy=False))
    until = start + limit if limit is not None else None
    job, data = _job(ctx, args, plan0, model0, until, start)
    write_job(folder, job, data)
    if url != default_storage():
        import shlex
        print(f"nbkeras: workers on other machines join this search with `nbkeras tune-worker "
              f"--storage {shlex.quote(_shown(url))} --study {shlex.quote(ctx.study_name)} "
              f"--data {shlex.quote(str(folder))}` (that folder copied there, or on a shared "
              "disk)")
    view.start()
    procs = _start(folder, url, ctx.study_name, workers)
    stopped = False
    try:
        stopped = _watch(ctx, study, start, procs, state, view)
    finally:
        for w in procs:  # whatever happened here, no worker outlives the search
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
    state.status = "stopped" if stopped else "completed"
    state.current = state.current_label = ""
    view.draw()
    crashed = [_crash(w) for w in procs if _crashed(w, stopped)]
    if crashed and len(crashed) == len(procs) and not any(
            r.number >= start and r.state != "running" for r in state.rows):
        state.status = "failed"  # no trial ran: the first worker's reason is the cell's error
        view.finish()
        raise UsageError(crashed[0])
    for message in crashed:
        print(f"nbkeras: {message}")
    best = state.best()
    if best is None or best.number < start:
        return best, None, stopped
    return best, _load_best(ctx, folder, best), stopped


def _job(ctx: TrialContext, args, plan0, model0, until, start: int):
    """`job.json`'s fields and the data to write beside it."""
    from ..registry import default_home
    fit = dict(vars(ctx.fit_args))
    fit.update(x="x", y="y" if plan0.y is not None else None)
    data: Dict[str, Any] = {"x": (plan0.x, f"`{args.x}`"), "y": (plan0.y, f"`{args.y}`")}
    val = plan0.fit_kwargs.get("validation_data")
    if val is not None:
        fit["val"] = ["val_x", "val_y"]
        data["val_x"] = (val[0], f"--val `{args.val[0]}`")
        data["val_y"] = (val[1], f"--val `{args.val[1]}`")
    weights = plan0.fit_kwargs.get("sample_weight")
    if weights is not None:
        fit["sample_weight"] = "sample_weight"
        data["sample_weight"] = (weights, f"--sample-weight `{args.sample_weight}`")
    class_weight = None
    if args.class_weight and args.class_weight != "balanced":
        fit["class_weight"] = "class_weight"
        class_weight = sorted(plan0.fit_kwargs["class_weight"].items())
    job = {
        "study": ctx.study_name, "model": ctx.fit_args.name, "spec_text": ctx.info0.spec_text,
        "input_shape": ctx.info0.extra.get("input_shape"),  # %%model NAME --input SHAPE
        "version_id": ctx.info0.version_id, "params": int(model0.count_params()),
        "registry": str(pathlib.Path(default_home()).resolve()),
        "fit": fit, "class_weight": class_weight,
        "expressions": {"x": args.x, "y": args.y, "val": args.val,
                        "class_weight": args.class_weight, "sample_weight": args.sample_weight},
        "objective": ctx.objective, "direction": ctx.direction, "seed": ctx.seed,
        "sampler": args.sampler, "pruner": args.pruner, "until": until, "start": start,
        "timeout": args.timeout,
    }
    return job, data


def _shown(url: str) -> str:
    """The URL with its password hidden."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a database URL: shown as given
        return url


def gpus() -> List[str]:
    """The GPUs this kernel may use: `CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L`."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
    return [str(i) for i in range(len(lines))] if out.returncode == 0 else []


def _start(folder: pathlib.Path, url: str, study: str, n: int) -> List[_Worker]:
    """N worker processes, each in its own session (an interrupt reaches them
    through this kernel only), one GPU each when there are several."""
    from ..registry import default_home
    devices = gpus()
    env = dict(os.environ, NBKERAS_HOME=str(default_home()), PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = str(pathlib.Path(__file__).resolve().parents[2])  # the folder holding nbkeras/
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    out = []
    for i in range(n):
        wenv = dict(env)
        if len(devices) > 1:
            wenv["CUDA_VISIBLE_DEVICES"] = devices[i % len(devices)]
        log, err = folder / f"worker-{i}.log", folder / f"worker-{i}.err"
        with open(log, "w") as o, open(err, "w") as e:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nbkeras.tune.worker", "--storage", url, "--study", study,
                 "--data", str(folder), "--index", str(i), "--parent", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=wenv, start_new_session=True)
        out.append(_Worker(i, proc, err))
    if len(devices) > 1 and n > len(devices):
        print(f"nbkeras: {n} workers share {len(devices)} GPUs")
    return out


def _watch(ctx: TrialContext, study, start: int, procs: List[_Worker], state: SearchState,
           view: SearchView) -> bool:
    """Redraw from the storage until the workers are done; True when the
    user interrupted."""
    by_name = {s.name: s for s in ctx.spec.spaces}
    earlier = [r for r in state.rows if r.number < start]
    ours = {w.label for w in procs}
    seen, failed = [None], set()
    try:
        while True:
            alive = [w for w in procs if w.proc.poll() is None]
            trials = _poll(study, start, ctx, by_name, earlier, state, view, seen)
            if not alive:
                if _fail_stale(study, trials, ours, failed):
                    continue  # read them again, failed
                if not any(t.state.name == "RUNNING" for t in trials):
                    return False
                state.current_label = "other workers"  # trials of workers elsewhere
            _sleep_until_next_poll(alive)
    except KeyboardInterrupt:
        _stop(procs, state, view)
        trials = _poll(study, start, ctx, by_name, earlier, state, view, seen)
        if _fail_stale(study, trials, ours, failed):
            _poll(study, start, ctx, by_name, earlier, state, view, seen)
        return True


def _sleep_until_next_poll(alive: List[_Worker]) -> None:
    end = time.perf_counter() + POLL_INTERVAL
    while time.perf_counter() < end:
        if alive and all(w.proc.poll() is not None for w in alive):
            return  # the last worker ended: read the storage once more now
        time.sleep(0.05)


def _poll(study, start: int, ctx: TrialContext, by_name, earlier, state: SearchState,
          view: SearchView, seen: list):
    """Read this search's trials from the storage into the display: every
    trial end drawn at once, the trials in flight (their epoch) throttled."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.number >= start]
    rows = [r for r in (row_of(t, by_name) for t in trials) if r is not None]
    state.rows = earlier + rows
    running = [t for t in trials if t.state.name == "RUNNING"]
    epochs = ctx.fit_args.epochs
    parts, fractions = [], []
    for t in running:
        if ctx.fit_args.cv is not None:
            parts.append(f"trial {t.number}: {ctx.fit_args.cv}-fold cross-validation")
            continue
        done = len(t.intermediate_values)
        parts.append(f"trial {t.number}: epoch {done}/{epochs}")
        fractions.append(done / max(epochs, 1))
    state.current = " · ".join(parts)
    state.current_fraction = sum(fractions) / len(fractions) if fractions else 0.0
    if running and state.current_label != "other workers":
        state.current_label = f"{len(running)} running"
    if not trials:  # no worker has asked for a trial yet: say why nothing moves
        state.current_label = "workers"
        state.current = (f"starting {state.workers} worker processes (each imports Keras "
                         "once, a few seconds)")
    signature = [(r.number, r.state, r.value) for r in rows if r.state != "running"]
    if signature != seen[0]:
        seen[0] = signature
        view.draw()
    else:
        view.progress(state.current, state.current_fraction)
    return trials


def _fail_stale(study, trials, ours, failed: set) -> bool:
    """Mark failed the trials left running by this kernel's workers, which have
    all ended (a worker killed, or stopped between asking and running); True
    when there were any (each is tried once)."""
    import optuna
    stale = [t for t in trials if t.state.name == "RUNNING" and t.number not in failed
             and t.user_attrs.get("nbkeras_worker", None) in ours | {None}]
    for t in stale:
        failed.add(t.number)
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        except Exception:  # noqa: BLE001 - recorded meanwhile, or the grid's Study.stop
            pass
    return bool(stale)


def _stop(procs: List[_Worker], state: SearchState, view: SearchView) -> None:
    """Pass the interrupt on; wait for the workers to record their trials
    (a second interrupt, or `STOP_GRACE` seconds, kills them)."""
    state.current_label, state.current = "stopping", "after the current batch of each trial"
    view.draw()
    for w in procs:
        if w.proc.poll() is None:
            try:
                w.proc.send_signal(signal.SIGINT)
            except (OSError, ValueError):  # gone meanwhile; no SIGINT (Windows): killed below
                pass
    end = time.perf_counter() + STOP_GRACE
    try:
        while time.perf_counter() < end and any(w.proc.poll() is None for w in procs):
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    for w in procs:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def _crashed(w: _Worker, stopped: bool) -> bool:
    rc = w.proc.returncode
    if rc in (0, 130):
        return False
    return not (stopped and rc in (-signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL))


def _crash(w: _Worker) -> str:
    """One line: which worker died, how, and the last line of its stderr."""
    try:
        lines = [line.strip() for line in w.err.read_text(errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        lines = []
    last = lines[-1] if lines else "no output"
    if len(last) > 300:
        last = last[:297] + "..."
    return (f"worker {w.index + 1} (pid {w.proc.pid}) exited with code {w.proc.returncode}: "
            f"{last} (its stderr: {w.err})")


def _load_best(ctx: TrialContext, folder: pathlib.Path, best) -> Optional[Any]:
    """The best trial's model as its worker saved it; the other trials'
    files are removed (the best one's stays in the study folder)."""
    models = folder / "models"
    path = models / f"trial-{best.number}.keras"
    if not path.exists():
        print(f"nbkeras: the best trial ({best.number}) was not trained by this machine's "
              f"workers: its model is {path.name} in the study folder of the machine that ran "
              f"it; `{ctx.fit_args.name}` is left as it was")
        return None
    import warnings

    import keras

    from ..state import ModelInfo, set_info
    with warnings.catch_warnings():  # a --cv trial's model: its optimizer was never built
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model = keras.saving.load_model(path)
    set_info(model, ModelInfo(
        name=ctx.fit_args.name, spec_text=ctx.info0.spec_text,
        version_id=ctx.info0.version_id,
        extra={"space_values": dict(best.values), "study": ctx.study_name,
               "trial": best.number, "input_shape": ctx.info0.extra.get("input_shape")}))
    keep_only(models, best.number)
    return model
