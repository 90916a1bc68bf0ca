"""Automatic steps per execution (`nbkeras.train.steps`): the choice with a fake
clock, and the same losses as one step per call on TensorFlow and on JAX."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nbkeras.train import steps


@pytest.mark.parametrize("step_time, per_epoch, interval, expected", [
    (0.0005, 225, 0.2, 113),      # 400 would fit in 0.2 s: capped at 128, 2 even calls
    (0.0005, 1000, 0.2, 125),     # 8 calls of 125
    (0.005, 225, 0.2, 38),        # 40 × 5 ms fill 0.2 s; 6 even calls of 38 or 37
    (0.001, 30, 0.2, 30),         # never more than an epoch
    (0.001, None, 0.2, 128),      # a dataset of unknown length: the cap
    (0.001, 225, 0.0, 1),         # update_interval 0: every batch drawn
    (0.15, 225, 0.2, 1),          # not dispatch-bound
    (None, 225, 0.2, 1),          # not measured
])
def test_choice(step_time, per_epoch, interval, expected):
    n = steps.choose_steps(step_time, per_epoch, interval)
    assert n == expected
    if n > 1:
        assert n * step_time <= interval + 1e-12
    if n > 1 and per_epoch:        # equal calls: no short last one
        calls = -(-per_epoch // n)
        assert per_epoch - (calls - 1) * n >= n - calls


def test_the_timer_times_finished_steps_leaving_out_the_first_and_stops_the_probe():
    clock = [0.0]

    class Model:
        stop_training = False

    timer = steps.StepTimer(seconds=0.01, clock=lambda: clock[0])
    timer.set_model(Model())
    clock[0] = 2.0                  # the first step compiled for 2 s
    timer.on_train_batch_end(0)
    for b in range(1, 6):
        clock[0] += 0.001
        timer.on_train_batch_end(b)
    assert timer.step_time() == pytest.approx(0.001)
    assert not timer.model.stop_training
    for b in range(6, 12):
        clock[0] += 0.001
        timer.on_train_batch_end(b)
    assert timer.model.stop_training      # 10 ms of steps after the first: enough
    assert steps.StepTimer.async_safe


def test_only_foreign_callbacks_with_batch_hooks_keep_one_step_per_call():
    import keras

    from nbkeras.train.callback import LiveCallback
    from nbkeras.view.progress import RunState

    class EveryBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    class Safe(EveryBatch):
        async_safe = True

    class EpochOnly(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    cbs = [EveryBatch(), Safe(), EpochOnly(), keras.callbacks.TensorBoard("/tmp/nbk-tb"),
           keras.callbacks.EarlyStopping(), LiveCallback(RunState(), None)]
    assert steps.batch_callbacks(cbs) == ["EveryBatch"]


@pytest.fixture
def digits(ip):
    ip.run_cell(textwrap.dedent("""
        import numpy as np, keras
        from sklearn.datasets import load_digits
        d = load_digits()
        x = (d.data[:640] / 16).astype('float32'); y = d.target[:640]
        xv = (d.data[640:800] / 16).astype('float32'); yv = d.target[640:800]
        def make():
            keras.utils.set_random_seed(0)
            m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation='relu'),
                                  keras.layers.Dropout(0.2),
                                  keras.layers.Dense(10, activation='softmax')])
            m.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])
            return m
    """)).raise_error()
    return ip


def test_auto_trains_the_same_losses_as_one_step_per_call(digits, monkeypatch):
    """Seeded, shuffled, with dropout and validation: the probe leaves no trace
    and N steps per call make the same updates in the same order."""
    import numpy as np
    chosen = []
    real = steps.choose_steps
    monkeypatch.setattr(steps, "DISPATCH_BOUND", 60.0)  # whatever this machine's load
    monkeypatch.setattr(steps, "choose_steps", lambda *a: chosen.append(real(*a)) or chosen[-1])
    digits.run_cell("m = make()").raise_error()
    auto = digits.run_line_magic("fit", "m x y -e 3 -b 8 --seed 5 --val xv yv --quiet")
    m = digits.user_ns["m"]
    assert chosen and chosen[0] > 1 and m.steps_per_execution == 1  # restored after
    digits.run_cell("m = make()").raise_error()
    one = digits.run_line_magic("fit", "m x y -e 3 -b 8 --seed 5 --val xv yv --quiet "
                                       "--steps-per-execution 1")
    assert len(chosen) == 1          # a number given: no probe
    for key in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose(auto.history[key], one.history[key], rtol=1e-5)


def test_the_panel_says_how_many_steps_per_call(digits, monkeypatch):
    from nbkeras.view.progress import RunState
    from nbkeras.view.record import panel_html
    state = RunState(name="m", epochs=2, steps=80, device="CPU · mixed precision off")
    state.step_size = 32
    assert "CPU · mixed precision off · 32 steps per call" in panel_html(state)
    seen = []
    monkeypatch.setattr(steps, "measure_step", lambda *a, **k: seen.append(1) or 0.001)
    digits.run_cell("m = make()").raise_error()
    digits.run_line_magic("fit", "m x y -e 1 -b 8 --quiet")
    assert seen == [1]
    digits.run_cell("m = make(); m.compile('adam', 'sparse_categorical_crossentropy', "
                    "steps_per_execution=4)").raise_error()
    digits.run_line_magic("fit", "m x y -e 1 -b 8 --quiet")
    assert seen == [1]               # the model's own steps_per_execution stands
    assert digits.user_ns["m"].steps_per_execution == 4


def test_cross_validation_folds_choose_too(digits, monkeypatch):
    seen = []
    monkeypatch.setattr(steps, "measure_step", lambda *a, **k: seen.append(1) or 0.001)
    digits.run_cell("m = make()").raise_error()
    digits.run_line_magic("fit", "m x y -e 1 -b 16 --cv 2 --quiet")
    assert seen == [1, 1]


JAX_SCRIPT = textwrap.dedent("""
    import json, numpy as np, keras
    from IPython.core.interactiveshell import InteractiveShell
    from sklearn.datasets import load_digits
    import nbkeras.train.steps as steps
    steps.DISPATCH_BOUND = 60.0          # choose N whatever this machine's load
    chosen = []
    real = steps.choose_steps
    steps.choose_steps = lambda *a: chosen.append(real(*a)) or chosen[-1]
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbkeras")
    d = load_digits()
    ip.user_ns.update(x=(d.data[:640] / 16).astype("float32"), y=d.target[:640])
    def make():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        ip.user_ns["m"] = m
    make()
    auto = ip.run_line_magic("fit", "m x y -e 3 -b 8 --seed 5 --quiet")
    make()
    one = ip.run_line_magic("fit", "m x y -e 3 -b 8 --seed 5 --quiet --steps-per-execution 1")
    print(json.dumps({"backend": keras.backend.backend(), "chosen": chosen,
                      "auto": auto.history["loss"], "one": one.history["loss"]}))
""")


def test_auto_trains_the_same_losses_on_jax(tmp_path):
    import numpy as np
    env = dict(os.environ, KERAS_BACKEND="jax", NBKERAS_HOME=str(tmp_path), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax" and out["chosen"][0] > 1
    np.testing.assert_allclose(out["auto"], out["one"], rtol=1e-5)


ONE_DEVICE = textwrap.dedent("""
    import contextlib, io, json, numpy as np, keras
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbkeras")
    rng = np.random.default_rng(0)
    ip.user_ns.update(x=rng.normal(size=(256, 8)).astype("float32"), y=rng.integers(0, 2, 256))
    def make():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        ip.user_ns["m"] = m
        return m
    make()
    one = ip.run_line_magic("fit", "m x y -e 2 --seed 1 --quiet")
    original = make()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        dev = ip.run_line_magic("fit", "m x y -e 2 --seed 1 --quiet --devices 1")
    import nbkeras
    print(json.dumps({"said": out.getvalue(), "same_model": ip.user_ns["m"] is original,
                      "devices": [r["device"] for r in nbkeras.runs()],
                      "loss": [one.history["loss"], dev.history["loss"]]}))
""")


def test_devices_over_one_device_is_a_plain_run(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", NBKERAS_HOME=str(tmp_path), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", ONE_DEVICE], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "rebuilt" not in out["said"] and out["same_model"]   # no distributed copy
    assert out["devices"][0] == out["devices"][1]
    assert out["loss"][0] == out["loss"][1]
