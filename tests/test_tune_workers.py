"""`%tune --workers N` and `nbkeras tune-worker`: trials in worker processes
sharing one Optuna storage, as a user runs them."""

import _thread
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time

import pytest

from nbkeras.errors import TrainingStopped

optuna = pytest.importorskip("optuna")

DATA = """
import numpy as np, keras
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:200] / 16).astype('float32'); y = d.target[:200]
xv = (d.data[200:300] / 16).astype('float32'); yv = d.target[200:300]
"""
SPEC = """input 64
dense {8, 32}@width relu
dropout 0.0..0.5
dense 10 softmax
optimizer adam lr=1e-3..1e-2:log"""


def _env():
    """This test's environment (its registry folder: NBKERAS_HOME), read now."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture
def tn(ip):
    ip.run_cell(DATA).raise_error()
    ip.run_cell("%%model tn\n" + SPEC).raise_error()
    return ip


def _holding_lock_file(pid: int, lock: pathlib.Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock):
                return True
        except OSError:
            pass
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="reads /proc to start both workers at once")
def test_two_worker_processes_complete_a_study_without_losing_or_repeating_a_trial(
        tmp_path, nbkeras_home):
    """Two `python -m nbkeras.tune.worker` processes on one SQLite storage and
    one study folder, both asking for trials at once: 6 trials, numbered 0..5,
    each a registry run of the model in the study."""
    import numpy as np
    from sklearn.datasets import load_digits

    from nbkeras.magics import NbkerasMagics
    from nbkeras.tune.job import claim_lock, write_job

    url = f"sqlite:///{tmp_path / 'studies.sqlite3'}"
    optuna.create_study(study_name="w", storage=url, direction="minimize")
    d = load_digits()
    x, y = (d.data[:200] / 16).astype("float32"), d.target[:200]
    fit = NbkerasMagics.fit.parser.parse_args(
        ["m", "x", "y", "-e", "1", "--val", "val_x", "val_y", "--quiet"])
    folder = tmp_path / "w"
    write_job(folder, {
        "study": "w", "model": "m", "spec_text": SPEC, "version_id": None, "params": 0,
        "registry": str(nbkeras_home), "fit": vars(fit), "class_weight": None,
        "expressions": {"x": "x", "y": "y", "val": ["xv", "yv"]},
        "objective": "val_loss", "direction": "min", "seed": 0, "sampler": "random",
        "pruner": "none", "until": 6, "timeout": None,
    }, {"x": (x[:150], "x"), "y": (y[:150], "y"), "val_x": (x[150:], "xv"),
        "val_y": (y[150:], "yv")})
    lock = folder / "claim.lock"
    with claim_lock(folder):  # both wait at the first ask: they start together
        procs = [subprocess.Popen([sys.executable, "-m", "nbkeras.tune.worker", "--storage", url,
                                   "--study", "w", "--data", str(folder), "--index", str(i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=_env()) for i in range(2)]
        end = time.time() + 120
        while not all(_holding_lock_file(p.pid, lock) for p in procs):
            assert time.time() < end and all(p.poll() is None for p in procs), \
                [p.communicate() for p in procs]
            time.sleep(0.1)
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]

    trials = optuna.load_study(study_name="w", storage=url).trials
    assert sorted(t.number for t in trials) == list(range(6))
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6  # no trial ran twice
    by_worker = {t.user_attrs["nbkeras_worker"] for t in trials}
    assert len(by_worker) == 2                                     # both took trials
    printed = sorted(line.split(":")[0] for o in outs for line in o[0].splitlines()
                     if line.startswith("trial "))
    assert printed == [f"trial {n}" for n in range(6)]            # one line per trial it ran

    import nbkeras
    runs = nbkeras.runs(model="m")
    assert sorted((r["study"], r["trial"]) for r in runs) == [("w", n) for n in range(6)]
    assert all(r["status"] == "completed" for r in runs)
    assert {r["options"]["val"][0] for r in runs} == {"xv"}        # the notebook's expressions
    by_run = {t.user_attrs["nbkeras"]["run_id"]: t.number for t in trials}
    assert {r["id"]: r["trial"] for r in runs} == by_run
    best = min(trials, key=lambda t: t.value)
    assert (folder / "models" / f"trial-{best.number}.keras").exists()
    assert np.isclose(min(r["last"]["val_loss"] for r in runs), best.value)


def test_a_search_with_two_workers_returns_every_trial_and_binds_the_best_model(
        tn, monkeypatch):
    """As in a notebook: the live display, redrawn from the storage, shows the
    workers' trials as they end; NAME holds the best trial's trained model."""
    import re

    import nbkeras.view.text
    monkeypatch.setattr(nbkeras.view.text, "has_rich_frontend", lambda shell: True)
    shown = []
    monkeypatch.setattr(tn.display_pub, "publish",
                        lambda data, *a, **k: shown.append(data.get("text/html", "")))
    df = tn.run_line_magic("tune", "tn x y --trials 4 --workers 2 -e 2 --val xv yv --seed 3 "
                                   "--pruner none")
    assert list(df.columns) == ["trial", "value", "state", "duration", "width", "dropout.rate",
                                "optimizer.learning_rate"]
    assert sorted(df["trial"]) == [0, 1, 2, 3] and list(df["state"]) == ["complete"] * 4
    assert list(df["value"]) == sorted(df["value"])
    best = df.iloc[0]
    model = tn.user_ns["tn"]
    assert model.best_params["width"] == best["width"]
    # NAME holds the best trial's trained weights, loaded from its worker's file
    held = model.evaluate(tn.user_ns["xv"], tn.user_ns["yv"], verbose=0, return_dict=True)
    assert held["loss"] == pytest.approx(best["value"], rel=1e-4)

    tables = [h for h in shown if "nbkeras-tune" in h]
    done = [int(re.search(r"data-trials-done='(\d+)'", h).group(1)) for h in tables]
    assert done == sorted(done) and done[-1] == 4 and len(set(done)) >= 3  # drawn as they end
    # while the workers import Keras the display says why nothing moves yet
    assert any("starting 2 worker processes" in h for h in tables[:3])
    final = tables[-1]
    assert "completed" in final and final.count("<td>completed</td>") == 4  # the registry's word
    assert any("<svg" in h for h in shown)                         # the objective chart
    import nbkeras
    runs = [r for r in nbkeras.runs(model="tn") if r["study"] == "tn"]
    assert sorted(r["trial"] for r in runs) == [0, 1, 2, 3]
    assert all(r["status"] == "completed" and r["options"]["x"] == "x" for r in runs)


def test_more_workers_than_trials_are_reduced_and_an_interrupt_stops_the_trials(
        tn, capsys, nbkeras_home):
    """An interrupt while both workers train: each trial ends after its
    batch, recorded as stopped; the trials so far are in `_tune`."""
    storage = f"sqlite:///{nbkeras_home / 'studies.sqlite3'}"
    folder = nbkeras_home / "studies" / "tn"

    def interrupt_when_training():
        end = time.time() + 180
        while time.time() < end:
            trials = []
            if (folder / "job.json").exists():  # written once the study exists
                trials = optuna.load_study(study_name="tn", storage=storage).trials
            if len([t for t in trials if t.intermediate_values]) == 2:
                break
            time.sleep(0.2)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_training, daemon=True).start()
    with pytest.raises(TrainingStopped, match="stopped after 2 trials"):
        tn.run_line_magic("tune", "tn x y --trials 2 --workers 9 -e 500 -b 4 --val-split 0.2 "
                                  "--pruner none --seed 1")
    out = capsys.readouterr().out
    assert "nbkeras: --workers 9 is more than the 2 trials: 2 workers" in out
    assert sorted(p.name for p in folder.glob("worker-*.log")) == ["worker-0.log", "worker-1.log"]
    frame = tn.user_ns["_tune"]
    assert sorted(frame["trial"]) == [0, 1] and list(frame["state"]) == ["stopped"] * 2
    trials = optuna.load_study(study_name="tn", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
    import nbkeras
    assert sorted(r["status"] for r in nbkeras.runs(model="tn")) == ["stopped", "stopped"]


def test_the_console_script_says_in_one_line_which_storage_cannot_be_opened():
    script = shutil.which("nbkeras", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "nbkeras.cli"]
    out = subprocess.run(command + ["tune-worker", "--storage", "nosuch://db", "--study", "s"],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "nbkeras tune-worker: the study storage 'nosuch://db' cannot be opened: "
        "NoSuchModuleError: Can't load plugin: sqlalchemy.dialects:nosuch"]


def test_a_worker_whose_storage_cannot_be_opened_never_imports_keras():
    # TensorFlow's start-up lines reach stderr whatever TF_CPP_MIN_LOG_LEVEL says: a
    # worker that fails on its storage must not have imported it (CI caught those lines)
    probe = ("import sys\nfrom nbkeras.tune import worker\n"
             "rc = worker.main(['--storage', 'nosuch://db', '--study', 's'])\n"
             "print(rc, 'keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=_env(), timeout=120)
    assert out.stdout.split() == ["2", "False", "False"], out.stderr


def test_workers_need_arrays_not_a_dataset(tn):
    from nbkeras.errors import UsageError
    tn.run_cell("import tensorflow as tf\nds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)"
                ).raise_error()
    with pytest.raises(UsageError, match="give arrays"):
        tn.run_line_magic("tune", "tn ds --trials 2 --workers 2 -e 1 --val ds --quiet")


def test_on_a_machine_with_several_gpus_each_worker_gets_one(tmp_path, monkeypatch, capsys):
    from nbkeras.tune import parallel
    started = []

    class Popen:  # records what a worker would be started with
        def __init__(self, command, **kwargs):
            started.append((command, kwargs["env"]))
            self.pid = 1000 + len(started)

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setattr(parallel.subprocess, "Popen", Popen)
    parallel._start(tmp_path, "sqlite:///s.db", "s", 3)
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["2", "3", "2"]
    assert "3 workers share 2 GPUs" in capsys.readouterr().out
    assert all(c[1:3] == ["-m", "nbkeras.tune.worker"] and c[c.index("--index") + 1] == str(i)
               for i, (c, _) in enumerate(started))


def test_workers_search_a_model_built_with_an_input_option_and_resume_binds_the_best(ip):
    """`%%model NAME --input SHAPE` (no input statement): the workers build
    it at the recorded shape. After a restart (NAME at its defaults) a
    resumed search whose new trials do not run still binds NAME to the
    study's best trained model."""
    ip.run_cell(DATA).raise_error()
    cell = "%%model ti --input 64\n" + SPEC.split("\n", 1)[1]
    ip.run_cell(cell).raise_error()
    ip.run_cell("w = np.where(y < 5, 1.0, 0.5).astype('float32')").raise_error()
    first = ip.run_line_magic("tune", "ti x y --trials 2 --workers 1 -e 2 --val xv yv --seed 3 "
                                      "--pruner none --sample-weight w --lr-schedule cosine "
                                      "--quiet")
    assert list(first["state"]) == ["complete"] * 2
    import nbkeras  # a worker's trials train with the line's options, the weights as data
    for run in [r for r in nbkeras.runs(model="ti") if r.get("study")]:
        assert (run["options"]["sample_weight"], run["options"]["lr_schedule"]) == ("w", "cosine")
    ip.run_cell(cell).raise_error()                 # as after a restart: NAME at its defaults
    df = ip.run_line_magic("tune", "ti x y --trials 1 --workers 1 -e 2 --val xv yv --resume "
                                   "--timeout 1e-9 --quiet")            # no new trial starts
    assert sorted(df["trial"]) == [0, 1]
    best = first.iloc[0]
    model = ip.user_ns["ti"]
    held = model.evaluate(ip.user_ns["xv"], ip.user_ns["yv"], verbose=0, return_dict=True)
    assert held["loss"] == pytest.approx(best["value"], rel=1e-4)
    assert model.best_params["width"] == best["width"]
