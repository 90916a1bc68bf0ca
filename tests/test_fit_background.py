"""`%fit --background`: the cell returns at once with a job handle, the
kernel stays free, one job per model, Stop ends training like an interrupt,
and a failure reaches the panel and `job.result()`."""

import time

import numpy as np
import pytest

import nbkeras
from nbkeras.errors import UsageError

SPEC = """\
input 16
dense 8 relu
dense 3 softmax"""


@pytest.fixture
def data(ip):
    rng = np.random.default_rng(0)
    ip.user_ns["x"] = rng.normal(size=(256, 16)).astype("float32")
    ip.user_ns["y"] = rng.integers(0, 3, size=256)
    ip.run_cell_magic("model", "clf --seed 1", SPEC)
    ip.run_cell_magic("model", "other --seed 1", SPEC)
    return ip


def test_returns_a_job_at_once_and_trains_on(data, run):
    ip = data
    weights = [w.copy() for w in ip.user_ns["clf"].get_weights()]
    t0 = time.perf_counter()
    job = run("job = %fit clf x y -e 3 -b 64 --background --quiet\njob")
    assert time.perf_counter() - t0 < 2.0  # the figure (0.2 s) lives in benchmarks/
    assert job is nbkeras.job("clf")
    assert job.wait(60)
    history = job.result()
    assert job.done and job.status == "completed"
    assert len(history.history["loss"]) == 3 == len(job.history["loss"])
    assert any(not np.array_equal(a, b) for a, b in zip(weights, ip.user_ns["clf"].get_weights()))
    # the run is remembered like any other
    assert len(ip.user_ns["clf"].history.history["loss"]) == 3
    runs = nbkeras.runs("clf")
    assert runs[0]["status"] == "completed" and runs[0]["options"].get("background") is True


def test_one_job_per_model_other_models_free(data, run, monkeypatch):
    ip = data
    import nbkeras.train.callback as cb
    original = cb.LiveCallback.on_train_batch_end

    def slow(self, batch, logs=None):
        time.sleep(0.02)
        return original(self, batch, logs)

    monkeypatch.setattr(cb.LiveCallback, "on_train_batch_end", slow)
    job = run("%fit clf x y -e 50 -b 8 --steps-per-execution 1 --background --quiet")
    try:
        for line in ("%fit clf x y -e 1", "%evaluate clf x y", "%predict clf x",
                     "%export clf /tmp/never.keras"):
            with pytest.raises(UsageError, match="training in the background"):
                run(line)
        with pytest.raises(UsageError, match="cannot rebuild"):
            ip.run_cell_magic("model", "clf", SPEC)
        # another model trains meanwhile, in the foreground (slow batches too: the
        # background run must still be running after it)
        h = run("%fit other x y -e 1 -b 64 --quiet")
        assert len(h.history["loss"]) == 1
        assert not job.done
        deadline = time.monotonic() + 60
        while not job.history.get("loss") and time.monotonic() < deadline:
            time.sleep(0.05)  # one epoch recorded before the stop
    finally:
        job.stop()
        assert job.wait(60)
    assert job.status == "stopped"
    assert 0 < len(job.history["loss"]) < 50
    job.result()  # a stop is not a failure: no raise
    # free again once it has ended
    run("%evaluate clf x y --no-plots")
    assert nbkeras.runs("clf")[0]["status"] == "stopped"


@pytest.mark.parametrize("background", [False, True])
def test_a_stop_that_lands_after_an_epoch_ends_still_reads_stopped(data, run, monkeypatch,
                                                                   capsys, background):
    # the stop comes between the callback's last check and Keras' own: Keras ends `fit`
    # normally, and the run once read "completed ... the data ran out" (CI caught it)
    import nbkeras.train.callback as cb
    original = cb.LiveCallback.on_epoch_end

    def late_stop(self, epoch, logs=None):
        original(self, epoch, logs)
        self.request_stop()

    monkeypatch.setattr(cb.LiveCallback, "on_epoch_end", late_stop)
    if background:
        job = run("%fit clf x y -e 5 -b 64 --quiet --background")
        assert job.wait(60) and job.status == "stopped"
        assert "stopped at epoch 1 of 5" in job._state.message
    else:
        with pytest.raises(Exception, match="stopped at epoch 1 of 5"):  # as a Stop raises
            run("%fit clf x y -e 5 -b 64 --quiet")
        assert "clf: stopped at epoch 1 of 5" in capsys.readouterr().out
    assert nbkeras.runs("clf")[0]["status"] == "stopped"


def test_an_interrupt_does_not_stop_it_but_stop_does(data, run, monkeypatch):
    import signal
    import nbkeras.train.callback as cb
    original = cb.LiveCallback.on_train_batch_end

    def slow(self, batch, logs=None):
        time.sleep(0.01)
        return original(self, batch, logs)

    monkeypatch.setattr(cb.LiveCallback, "on_train_batch_end", slow)
    handler = signal.getsignal(signal.SIGINT)
    job = run("%fit clf x y -e 30 -b 8 --steps-per-execution 1 --background --quiet")
    # the SIGINT handler is left alone: Ctrl-C interrupts the cell running, not this job
    assert signal.getsignal(signal.SIGINT) is handler
    with pytest.raises(KeyboardInterrupt):  # the main thread's interrupt, as in a cell
        signal.raise_signal(signal.SIGINT)
        time.sleep(1)
    assert not job.done
    job.stop()
    assert job.wait(60) and job.status == "stopped"


def test_a_failure_shows_in_the_job_and_the_registry(data, run, monkeypatch):
    import nbkeras.train.callback as cb

    def boom(self, batch, logs=None):
        raise RuntimeError("the data loader broke")

    monkeypatch.setattr(cb.LiveCallback, "on_train_batch_end", boom)
    job = run("%fit clf x y -e 2 --background --quiet")
    assert job.wait(60)
    assert job.status == "failed"
    with pytest.raises(RuntimeError, match="data loader broke"):
        job.result()
    run_ = nbkeras.runs("clf")[0]
    assert run_["status"] == "failed" and "data loader broke" in (run_.get("error") or "")
    assert "data loader broke" in job._state.message


def test_bad_input_is_caught_before_returning(data, run):
    with pytest.raises(Exception, match="nope"):
        run("%fit clf nope y --background")
    with pytest.raises(UsageError, match="--background trains one run"):
        run("%fit clf x y --cv 3 --background")
    assert nbkeras.job("clf") is None or nbkeras.job("clf").done


def test_two_models_train_in_the_background_at_once_one_from_a_dataset(data, run):
    import tensorflow as tf
    ip = data
    ip.user_ns["ds"] = tf.data.Dataset.from_tensor_slices(
        (ip.user_ns["x"], ip.user_ns["y"])).batch(32)
    a = run("%fit clf ds -e 2 --background --quiet")
    b = run("%fit other x y -e 2 -b 32 --val-split 0.25 --background --quiet")
    assert a is not b and nbkeras.job("clf") is a and nbkeras.job("other") is b
    assert a.wait(120) and b.wait(120)
    assert (a.status, b.status) == ("completed", "completed")
    assert len(a.result().history["loss"]) == 2
    assert "val_loss" in b.result().history


# -- a seeded run gives the same numbers whatever else trains (issue 19, item 15) ----------

SEEDED = """
import json, threading, time, numpy as np
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "nbkeras")
rng = np.random.default_rng(0)
ip.user_ns.update(x=rng.normal(size=(256, 16)).astype("float32"), y=rng.integers(0, 3, size=256))
SPEC = "input 16\\ndense 8 relu\\ndense 3 softmax"
for name in ("fg_alone", "bg_alone", "fg", "bg"):
    ip.run_cell_magic("model", f"{name} --seed 1", SPEC)
FG = "x y -e 4 -b 16 --seed 5 --steps-per-execution 1 --quiet"
BG = "x y -e 12 -b 8 --seed 7 --steps-per-execution 1 --quiet"
alone = {"fg": ip.run_line_magic("fit", f"fg_alone {FG}").history["loss"],
         "bg": ip.run_line_magic("fit", f"bg_alone {BG}").history["loss"]}
import nbkeras.train.callback as cb
HOLD = [True]   # the background run's batches wait 20 ms while the foreground one trains
def on_train_batch_begin(self, batch, logs=None):
    if HOLD[0] and threading.current_thread().name.startswith("nbkeras-fit-"):
        time.sleep(0.02)
cb.LiveCallback.on_train_batch_begin = on_train_batch_begin
job = ip.run_line_magic("fit", f"bg {BG} --background")
while job.epoch < 2 and not job.done:   # the background run is shuffling epochs now
    time.sleep(0.01)
overlapped = not job.done
together = {"fg": ip.run_line_magic("fit", f"fg {FG}").history["loss"]}
overlapped = overlapped and not job.done
HOLD[0] = False
together["bg"] = job.result(240).history["loss"]
print("RESULT", json.dumps({"alone": alone, "together": together, "overlapped": overlapped}))
"""


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_a_seeded_run_repeats_while_another_trains_in_the_background(backend, tmp_path):
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               NBKERAS_HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", SEEDED], capture_output=True, text=True,
                          env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ")[-1])
    assert out["overlapped"]  # the foreground run trained while the background one did
    # both seeded runs draw the numbers they draw alone (they shared NumPy's one generator)
    assert out["together"]["fg"] == pytest.approx(out["alone"]["fg"], rel=1e-6)
    assert out["together"]["bg"] == pytest.approx(out["alone"]["bg"], rel=1e-6)
