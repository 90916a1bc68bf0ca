"""`%fit NAME X Y ... --code`: a standalone Keras script of the same training.

The script is run as a user would run it, in a fresh process from the
notebook's folder, and must train the same model (layer kinds, parameter
count) for the same number of epochs; the cell itself trains nothing.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from nbkeras.errors import UsageError

SPEC = "input 6\ndense 8 relu\ndropout 0.1\ndense 3 softmax"
FUNCTIONAL = """a = input 4
b = input 2
h = concat (a, b)
out1 = dense 1 sigmoid
p = dense 3 softmax (h)
outputs out1, p
optimizer sgd lr=0.0
"""


@pytest.fixture
def nb(ip, tmp_path, monkeypatch):
    """A notebook in `tmp_path` (its folder is the working directory) with tiny data."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    ip.user_ns.update(
        x=rng.normal(size=(40, 6)).astype("float32"), y=rng.integers(0, 3, 40),
        xa=rng.normal(size=(32, 4)).astype("float32"),
        xb=rng.normal(size=(32, 2)).astype("float32"),
        y1=rng.integers(0, 2, 32).astype("float32"), y2=rng.integers(0, 3, 32),
        sw=np.linspace(0.5, 1.5, 32))
    return ip


def run_script(folder, name, backend="tensorflow", env=None):
    """Run `nbkeras_code/NAME/train.py` from the notebook's folder; (epochs, model, stdout)."""
    import keras
    full = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
                JAX_PLATFORMS="cpu", **(env or {}))
    proc = subprocess.run([sys.executable, os.path.join("nbkeras_code", name, "train.py")],
                          cwd=folder, capture_output=True, text=True, env=full, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    epochs = int(re.search(r"(\d+) epochs trained", proc.stdout).group(1))
    saved = keras.saving.load_model(folder / "nbkeras_code" / name / f"{name}.keras")
    return epochs, saved, proc.stdout


def kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_sequential_spec_script_trains_the_same_model_and_the_cell_trains_nothing(
        nb, run, tmp_path, capsys):
    import nbkeras
    run(f"%%model m\n{SPEC}")
    model = nb.user_ns["m"]
    before = [w.copy() for w in model.get_weights()]
    capsys.readouterr()
    run("%fit m x y -e 3 -b 8 --val-split 0.25 --class-weight balanced --seed 0 "
        "--lr-schedule cosine --early-stop 5 --csv log.csv --checkpoint best.keras "
        "--steps-per-execution 2 --jit --code")
    out = capsys.readouterr().out
    assert "def build_model():" in out and "nothing was trained" in out
    assert "python nbkeras_code/m/train.py" in out
    # nothing trained, nothing recorded
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert nbkeras.runs(model="m") == []
    assert not (tmp_path / "log.csv").exists()

    folder = tmp_path / "nbkeras_code" / "m"
    # the data, and the state %fit starts from: initial weights, dropout's seed stream
    assert sorted(p.name for p in folder.iterdir()) == [
        "m.start.seeds.npy", "m.start.weights.h5", "train.py", "x.npy", "y.npy"]
    np.testing.assert_array_equal(np.load(folder / "x.npy"), nb.user_ns["x"])
    code = (folder / "train.py").read_text()
    # the loss %fit settles from the labels, the options as the Keras objects nbkeras makes
    assert "loss='sparse_categorical_crossentropy'" in code
    for piece in ("keras.utils.set_random_seed(0)", "validation_split=0.25",
                  "class_weight={0: ", "jit_compile=True", "steps_per_execution=2",
                  "LearningRateScheduler(lr_schedule)", "math.cos(", "restore_best_weights=True",
                  "CSVLogger('log.csv')", "ModelCheckpoint('best.keras', monitor='val_loss'",
                  "keras.distribution.initialize()", "MultiWorkerMirroredStrategy", "TF_CONFIG"):
        assert piece in code, piece
    from nbkeras.train.script import ScriptView
    assert "<span style=" in ScriptView(code, "train.py")._repr_html_()  # highlighted

    epochs, trained, _ = run_script(tmp_path, "m")
    assert epochs == 3
    assert kinds(trained) == kinds(model) and trained.count_params() == model.count_params()
    assert len((tmp_path / "log.csv").read_text().strip().splitlines()) == 1 + 3
    assert (tmp_path / "best.keras").exists()


def test_functional_spec_with_dict_inputs_stops_early_like_the_notebook(nb, run, tmp_path):
    run(f"%%model f\n{FUNCTIONAL}")
    model = nb.user_ns["f"]
    line = ("f {'a': xa, 'b': xb} [y1, y2] --val {'a': xa[:8], 'b': xb[:8]} [y1[:8], y2[:8]] "
            "--sample-weight sw -e 5 -b 8 --no-shuffle --early-stop 1 --reduce-lr 2 "
            "--mixed-precision")
    run(f"%fit {line} --code")
    folder = tmp_path / "nbkeras_code" / "f"
    names = {p.name for p in folder.iterdir()}
    assert {"x_a.npy", "x_b.npy", "y_0.npy", "y_1.npy", "x_val_a.npy", "x_val_b.npy",
            "y_val_0.npy", "y_val_1.npy", "sample_weight.npy"} <= names
    code = (folder / "train.py").read_text()
    assert "'p': 'sparse_categorical_crossentropy'" in code
    assert "set_dtype_policy('mixed_bfloat16')" in code and "shuffle=False" in code

    # learning rate 0: the loss never improves, so --early-stop 1 stops at epoch 2 of 5
    history = nb.run_line_magic("fit", f"{line} --quiet")
    assert len(history.history["loss"]) == 2
    epochs, trained, _ = run_script(tmp_path, "f", backend="jax")
    assert epochs == 2
    assert kinds(trained) == kinds(model) and trained.count_params() == model.count_params()


def test_devices_give_data_parallel_training(nb, run, tmp_path, monkeypatch):
    import nbkeras.train.plan as plan_module
    build_plan = plan_module.build_plan

    def with_devices(*args, **kwargs):  # `%fit --devices 2`, whether or not the option exists
        plan = build_plan(*args, **kwargs)
        plan.devices = 2
        return plan

    monkeypatch.setattr(plan_module, "build_plan", with_devices)
    run(f"%%model m\n{SPEC}")
    run("%fit m x[:32] y[:32] -e 2 -b 8 --code")
    code = (tmp_path / "nbkeras_code" / "m" / "train.py").read_text()
    assert "keras.distribution.DataParallel(devices=devices)" in code
    assert "tf.distribute.MirroredStrategy(" in code and "with scope:" in code
    epochs, trained, out = run_script(
        tmp_path, "m", backend="jax", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert "data parallel over 2 devices" in out
    assert epochs == 2 and trained.count_params() == nb.user_ns["m"].count_params()


def test_a_model_built_in_python_is_saved_beside_the_script(nb, run, tmp_path):
    run("import keras\n"
        "k = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation='relu'),\n"
        "                      keras.layers.Dense(3, activation='softmax')])\n"
        "k.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])")
    run("%fit k x y -e 2 -b 8 --code")
    folder = tmp_path / "nbkeras_code" / "k"
    assert (folder / "k.start.keras").exists()
    code = (folder / "train.py").read_text()
    assert "was not built by a %%model spec" in code
    assert 'keras.saving.load_model(HERE / "k.start.keras")' in code
    epochs, trained, _ = run_script(tmp_path, "k", backend="jax")
    assert epochs == 2
    assert kinds(trained) == kinds(nb.user_ns["k"])
    assert trained.count_params() == nb.user_ns["k"].count_params()


def test_a_trained_or_hand_compiled_model_carries_its_weights_and_settings(nb, run, tmp_path):
    run(f"%%model m\n{SPEC}")
    nb.run_line_magic("fit", "m x y -e 1 --quiet")
    run("import keras\nm.compile(optimizer=keras.optimizers.RMSprop(0.01), "
        "loss='sparse_categorical_crossentropy', metrics=['accuracy'])")
    run("%fit m x y -e 2 --resume --code")
    folder = tmp_path / "nbkeras_code" / "m"
    code = (folder / "train.py").read_text()
    assert "'class_name': 'RMSprop'" in code and "compile_from_config" in code
    assert 'model.load_weights(HERE / "m.start.weights.h5")' in code
    assert "initial_epoch=1" in code and "epochs=3" in code
    compile(code, "train.py", "exec")


@pytest.mark.parametrize("line, message", [
    ("m ds --code", "`ds` is a dataset"),
    ("m x y --val ds --code", "`ds` is a dataset"),
    ("m x y --cv 2 --code", "drop --cv"),
])
def test_what_code_cannot_write_is_one_line(nb, run, tmp_path, line, message):
    run(f"%%model m\n{SPEC}")
    run("import tensorflow as tf\nds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)")
    with pytest.raises(UsageError, match=re.escape(message)):
        run(f"%fit {line}")
    assert not (tmp_path / "nbkeras_code").exists()


# -- the oracle: the script's losses are %fit's ---------------------------------------

PLAIN = "input 6\ndense 8 relu\ndense 3 softmax"
DROPOUT = "input 6\ndense 8 relu\ndropout 0.5\ndense 3 softmax"
# name: (spec, the %fit before (None: an untrained model), the options of the %fit written)
ORACLE = {
    "fresh": (PLAIN, None, "-e 2 -b 8 --seed 3"),
    "trained": (PLAIN, "-e 1 -b 8", "-e 2 -b 8 --seed 3"),
    "early": (DROPOUT, None, "-e 2 -b 8 --val-split 0.25 --early-stop 1 --seed 3"),
    "dropout": (DROPOUT, "-e 1 -b 8 --reduce-lr 1 --val x[:8] y[:8]",
                "-e 2 -b 8 --val x[:8] y[:8] --class-weight balanced --reduce-lr 1 --seed 3"),
    "schedule": (DROPOUT, "-e 1 -b 8", "-e 2 -b 8 --lr-schedule cosine "
                 "--steps-per-execution 2 --devices 1 --seed 3"),
}


def notebook_side(shell, cases=ORACLE):
    """In the shell (working directory: the notebook's folder): each case's
    `%fit ... --code`, then the same `%fit`; {case: the run's history}, and
    the weights each model holds after it in `nbkeras_code/CASE/notebook.npz`."""
    out = {}
    for name, (spec, before, options) in cases.items():
        shell.run_cell_magic("model", name, spec)
        if before:
            shell.run_line_magic("fit", f"{name} x y {before} --quiet")
        line = f"{name} x y {options}"
        shell.run_line_magic("fit", f"{line} --code")
        history = shell.run_line_magic("fit", f"{line} --quiet")
        out[name] = {k: [float(v) for v in values] for k, values in history.history.items()}
        np.savez(os.path.join("nbkeras_code", name, "notebook.npz"),
                 *shell.user_ns[name].get_weights())
    return out


def compare_with_scripts(folder, histories, backend):
    """Run each case's script as a user would; its losses and kept weights are %fit's."""
    import json

    import keras
    for name, expected in histories.items():
        run_script(folder, name, backend=backend)
        got = json.loads((folder / "nbkeras_code" / name / "history.json").read_text())
        assert sorted(got) == sorted(expected), name
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-7,
                                       err_msg=f"{name}: {key}")
        kept = np.load(folder / "nbkeras_code" / name / "notebook.npz")
        trained = keras.saving.load_model(folder / "nbkeras_code" / name / f"{name}.keras")
        for i, w in enumerate(trained.get_weights()):
            np.testing.assert_allclose(w, kept[f"arr_{i}"], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name}: weight {i}")


def test_the_script_gives_the_losses_of_the_fit_it_was_written_from(nb, tmp_path, capsys):
    histories = notebook_side(nb)
    assert "will not give this %fit's numbers" not in capsys.readouterr().out
    code = (tmp_path / "nbkeras_code" / "trained" / "train.py").read_text()
    assert "model.optimizer.build(model.trainable_variables)" in code  # Adam's slots, step 5
    assert code.index("model = build_model()") < code.index("keras.utils.set_random_seed(3)")
    assert "seed_generator_state" in (tmp_path / "nbkeras_code" / "dropout" / "train.py").read_text()
    assert len(histories["early"]["val_loss"]) == 2
    compare_with_scripts(tmp_path, histories, "tensorflow")


JAX_NOTEBOOK = """
import json, os, sys
import numpy as np
sys.path.insert(0, {tests!r})
from IPython.core.interactiveshell import InteractiveShell
from test_fit_code import notebook_side
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "nbkeras")
rng = np.random.default_rng(0)
ip.user_ns.update(x=rng.normal(size=(40, 6)).astype("float32"), y=rng.integers(0, 3, 40))
print(json.dumps(notebook_side(ip)))
"""


def test_on_jax_too(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               NBKERAS_HOME=str(tmp_path / "home"))
    code = JAX_NOTEBOOK.format(tests=os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=900)  # five models, ten %fit lines
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    histories = json.loads(proc.stdout.strip().splitlines()[-1])
    compare_with_scripts(tmp_path, histories, "jax")
