"""`%fit --devices` and `%%model --devices`: data-parallel training through
Keras' own distribution support, tested without a GPU.

JAX gets four CPU devices from `XLA_FLAGS=--xla_force_host_platform_device_count=4`
and TensorFlow four logical CPUs from `tf.config.set_logical_device_configuration`;
both must be set before the backend starts, so each runs in a subprocess
with an IPython shell (as `tests/test_backends.py` does).

The tolerance. A data-parallel step computes the same thing as a one-device
step with the same global batch: each device takes a quarter of the batch,
and the gradients are summed over the devices and divided by the global
batch. Only the order of the float32 additions differs (four partial sums
and an all-reduce instead of one reduction), a relative rounding of about
1e-7 per operation. Over the 39 Adam steps of these runs the final losses
agree to 1e-4 relative on TensorFlow (measured: 5e-5) and exactly on JAX's
CPU. `rel=1e-3` leaves room for other CPUs and library versions while a
real mistake stays far outside it: training each device's quarter batch as
if it were the batch (batch 16 instead of 64) ends with a loss that differs
by several percent, which the JAX test checks as well.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nbkeras.errors import UsageError
from nbkeras.train import distribute

TOLERANCE = 1e-3  # relative; see the module docstring

SHELL = textwrap.dedent("""
    import contextlib, io, json, numpy as np
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.displaypub import DisplayPublisher
    html = []
    class Keep(DisplayPublisher):          # the outputs a notebook would show
        def publish(self, data, metadata=None, source=None, **kw):
            if "text/html" in data:
                html.append(data["text/html"])
    ip = InteractiveShell.instance()
    ip.display_pub = Keep(shell=ip)
    ip.run_line_magic("load_ext", "nbkeras")
    ip.run_line_magic("config", "NbkerasMagics.display_mode = 'html'")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1001, 8)).astype("float32")
    y = (x[:, :2].sum(1) > 0).astype("int32")
    ip.user_ns.update(x=x, y=y)
    SPEC = "input 8\\ndense 16 relu\\ndense 2 softmax"

    def error(cell):
        return str(ip.run_cell(cell).error_in_exec)

    def fit(line):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            h = ip.run_line_magic("fit", line)
        return h, out.getvalue()
""")

JAX_SCRIPT = SHELL + textwrap.dedent("""
    import keras, nbkeras
    ip.run_cell_magic("model", "one --seed 1", SPEC)
    ip.run_cell_magic("model", "four --seed 1", SPEC)
    ip.run_cell_magic("model", "built --seed 1 --devices all", SPEC)
    ip.run_cell_magic("model", "quarter --seed 1", SPEC)
    original_four = ip.user_ns["four"]
    built = ip.user_ns["built"]
    same_init = all(np.array_equal(a, b) for a, b in
                    zip(ip.user_ns["one"].get_weights(), built.get_weights()))
    common = "x[:1000] y[:1000] -e 3 --seed 2 --val-split 0.2"
    h1, _ = fit(f"one {common} -b 64")
    h4, said4 = fit(f"four {common} -b 64 --devices 4")
    record4 = html[-1]
    hb, saidb = fit(f"built {common} -b 64")
    hq, _ = fit(f"quarter {common} -b 16")
    _, said_trim = fit("built x y -b 64 -e 1 --quiet")
    four = ip.user_ns["four"]
    evaluated = ip.run_line_magic("evaluate", "four x[:200] y[:200] --no-plots")
    runs = nbkeras.runs()
    print(json.dumps({
        "same_init": same_init,
        "loss": {k: h.history["loss"] for k, h in
                 (("one", h1), ("four", h4), ("built", hb), ("quarter", hq))},
        "val_loss": {"one": h1.history["val_loss"], "four": h4.history["val_loss"]},
        "keys": [sorted(h1.history), sorted(h4.history)],
        "said4": said4, "saidb": saidb, "said_trim": said_trim,
        "rebound": four is not original_four,
        "sharded": len(four.trainable_variables[0].value.sharding.device_set),
        "built_sharded": len(built.trainable_variables[0].value.sharding.device_set),
        "distribution_after": str(keras.distribution.distribution()),
        "record": record4,
        "evaluate": float(evaluated["loss"]),
        "too_many": error("%fit four x y --devices 8"),
        "bad_list": error("%fit four x y --devices 0,7"),
        "uneven": error("%fit four x y -b 62 --devices 4"),
        "model_too_many": error("%%model five --devices 5\\n" + SPEC),
        "runs": [{"model": r["model"], "status": r["status"], "device": r["device"],
                  "epochs": len(r["epochs"]), "options": r["options"].get("devices")}
                 for r in runs],
    }))
""")

TF_SCRIPT = textwrap.dedent("""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 4)
""") + SHELL + textwrap.dedent("""
    import nbkeras
    ip.run_cell_magic("model", "one --seed 1", SPEC)
    ip.run_cell_magic("model", "four --seed 1", SPEC)
    h1, _ = fit("one x y -b 64 -e 3 --seed 2")
    h4, said4 = fit("four x y -b 64 -e 3 --seed 2 --devices all")
    four = ip.user_ns["four"]
    print(json.dumps({
        "loss": {"one": h1.history["loss"], "four": h4.history["loss"]},
        "said4": said4, "record": html[-1],
        "variable": type(four.trainable_variables[0].value).__name__,
        "predict": ip.run_line_magic("predict", "four x[:3]").shape[0],
        "too_many": error("%fit four x y --devices 5"),
        "runs": [{"model": r["model"], "status": r["status"], "device": r["device"],
                  "epochs": len(r["epochs"])} for r in nbkeras.runs()],
    }))
""")


def _run(script, tmp_path, **env):
    env = dict(os.environ, NBKERAS_HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3",
               MPLBACKEND="Agg", **env)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_four_jax_devices_reach_the_loss_of_one(tmp_path):
    out = _run(JAX_SCRIPT, tmp_path, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    one, four, built = (out["loss"][k] for k in ("one", "four", "built"))
    # the same global batch and seed: the same training (see TOLERANCE)
    assert four == pytest.approx(one, rel=TOLERANCE)
    assert built == pytest.approx(one, rel=TOLERANCE)
    assert out["val_loss"]["four"] == pytest.approx(out["val_loss"]["one"], rel=TOLERANCE)
    # a quarter batch on one device is a different training: far outside the tolerance
    assert abs(out["loss"]["quarter"][-1] - one[-1]) > 20 * TOLERANCE * one[-1]
    assert out["keys"][0] == out["keys"][1]            # a history like any other

    # %fit --devices rebuilds the model there and binds it to its name
    assert "nbkeras: rebuilt four for training on 4 devices (weights kept" in out["said4"]
    assert out["rebound"] and out["sharded"] == 4
    # %%model --devices builds there directly: the same initial weights, no rebuild,
    # and its later runs use those devices
    assert out["same_init"] and out["built_sharded"] == 4
    assert "rebuilt" not in out["saidb"]
    # the distribution is scoped to the run; the model evaluates afterwards
    assert out["distribution_after"] == "None"
    assert out["evaluate"] > 0

    # the panel's record: every device and the batch split
    assert "4 × CPU · data parallel" in out["record"]
    assert "batch 64 = 4 × 16" in out["record"]

    # JAX shards every batch evenly: 1001 samples lose one, and say so
    assert ("every batch splits evenly over the 4 devices: the last 1 of the 1001 training "
            "samples is left out") in out["said_trim"]

    # one-line messages listing what the kernel has
    kernel = "this kernel has 4 devices: cpu:0, cpu:1, cpu:2, cpu:3"
    assert out["too_many"] == f"--devices 8: {kernel}"
    assert out["bad_list"].startswith("--devices 0,7: no device '7'") and kernel in out["bad_list"]
    assert out["uneven"] == ("--batch-size 62 does not split evenly over 4 devices: give a "
                             "multiple of 4 (-b 60 or -b 64)")
    assert out["model_too_many"] == f"--devices 5: {kernel}"

    # the registry: every run recorded like any other, the devices in its device text
    by_model = {}
    for run in out["runs"]:
        by_model.setdefault(run["model"], []).append(run)
    assert by_model["one"][0]["device"] == "CPU · mixed precision off"
    assert by_model["four"][0] == {"model": "four", "status": "completed", "epochs": 3,
                                   "device": "4 × CPU · data parallel · mixed precision off",
                                   "options": "4"}
    assert all(r["device"].startswith("4 × CPU · data parallel") for r in by_model["built"])
    assert all(r["status"] == "completed" for r in out["runs"])


def test_four_tensorflow_logical_devices_reach_the_loss_of_one(tmp_path):
    out = _run(TF_SCRIPT, tmp_path, KERAS_BACKEND="tensorflow")
    assert out["loss"]["four"] == pytest.approx(out["loss"]["one"], rel=TOLERANCE)
    assert "nbkeras: rebuilt four for training on 4 devices" in out["said4"]
    assert out["variable"] == "MirroredVariable"       # tf.distribute.MirroredStrategy
    assert out["predict"] == 3
    assert "4 × CPU · data parallel" in out["record"] and "batch 64 = 4 × 16" in out["record"]
    assert out["too_many"] == "--devices 5: this kernel has 4 devices: cpu:0, cpu:1, cpu:2, cpu:3"
    four = [r for r in out["runs"] if r["model"] == "four"]
    assert four == [{"model": "four", "status": "completed", "epochs": 3,
                     "device": "4 × CPU · data parallel · mixed precision off"}]


# -- without a subprocess: the parsing and the messages -----------------------------------

CPUS = ["cpu:0", "cpu:1", "cpu:2", "cpu:3"]


@pytest.mark.parametrize("text, expected", [
    ("all", CPUS), ("ALL", CPUS), ("2", ["cpu:0", "cpu:1"]), ("4", CPUS),
    ("0,2", ["cpu:0", "cpu:2"]), ("cpu:3,cpu:1", ["cpu:3", "cpu:1"]), (" 1 , 0 ", ["cpu:1", "cpu:0"]),
])
def test_devices_are_all_a_count_or_a_list(text, expected):
    assert distribute.parse_devices(text, "jax", CPUS) == expected


@pytest.mark.parametrize("text, message", [
    ("5", "--devices 5: this kernel has 4 devices: cpu:0, cpu:1, cpu:2, cpu:3"),
    ("0", "--devices 0: give at least 1; this kernel has 4 devices"),
    ("gpu:0", "--devices gpu:0: no device 'gpu:0'"),
    ("cpu:9", "--devices cpu:9: no device 'cpu:9' (did you mean"),
    ("1,1", "--devices 1,1: cpu:1 is named twice"),
])
def test_devices_the_kernel_lacks_are_one_line(text, message):
    with pytest.raises(UsageError) as err:
        distribute.parse_devices(text, "jax", CPUS)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_torch_has_no_data_parallel_training_in_keras():
    with pytest.raises(UsageError) as err:
        distribute.parse_devices("all", "torch", ["cuda:0", "cuda:1"])
    assert str(err.value) == ("--devices: Keras has no data-parallel training on the torch "
                              "backend (it has on jax and tensorflow); this kernel has 2 "
                              "devices: cuda:0, cuda:1")


def test_asking_for_more_devices_than_the_kernel_has(run):
    # this kernel (TensorFlow, one CPU): nothing changes, one line
    run("import numpy as np, keras\n"
        "x = np.zeros((8, 4), 'float32'); y = np.zeros(8)\n"
        "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
        "m.compile('sgd', 'mse')")
    with pytest.raises(UsageError) as err:
        run("%fit m x y --devices 2")
    assert str(err.value) == "--devices 2: this kernel has 1 device: cpu:0"


def test_batch_split_text():
    assert distribute.batch_text(256, 4) == "batch 256 = 4 × 64"
    assert distribute.batch_text(256, 1) == "" and distribute.batch_text(None, 4) == ""


def _planned(n, k, split=None, val=None, weights=False):
    from types import SimpleNamespace
    x = np.arange(n, dtype="float32").reshape(n, 1)
    kw = {"y": np.arange(n), "batch_size": 4, "validation_split": split}
    if weights:
        kw["sample_weight"] = np.arange(n) / n
    if val is not None:
        kw["validation_data"] = (np.arange(val, dtype="float32").reshape(val, 1), np.arange(val))
    plan = SimpleNamespace(x=x, y=kw["y"], fit_kwargs=kw, notes=[], batch_size=4, steps=None)
    distribute._trim(plan, k)
    return plan


def test_jax_splits_as_keras_does_then_trims_each_part():
    # Keras trains on the first floor(1003 * 0.75) = 752 and validates on the other 251
    plan = _planned(1003, 2, split=0.25, weights=True)
    kw = plan.fit_kwargs
    assert "validation_split" not in kw
    assert plan.x[:, 0].tolist() == list(range(752)) and kw["y"].tolist() == list(range(752))
    vx, vy, vw = kw["validation_data"]
    assert vx[:, 0].tolist() == list(range(752, 1002)) == vy.tolist()   # one left out
    assert np.allclose(vw, np.arange(752, 1002) / 1003)
    assert plan.notes == ["on JAX every batch splits evenly over the 2 devices: the last 1 "
                          "of the 251 validation samples is left out"]
    assert plan.steps == 188
    # both parts cut: 1001 * 0.8 -> 800 training (kept), 201 validation -> 200 (k=4: 800, 200)
    plan = _planned(1001, 4, split=0.2)
    assert len(plan.x) == 800 and len(plan.fit_kwargs["validation_data"][0]) == 200
    plan = _planned(1003, 4, split=0.2)   # 802 training -> 800, 201 validation -> 200
    assert len(plan.x) == 800 and len(plan.fit_kwargs["validation_data"][0]) == 200
    assert plan.notes == [
        "on JAX every batch splits evenly over the 4 devices: the last 2 of the 802 training "
        "samples are left out",
        "on JAX every batch splits evenly over the 4 devices: the last 1 of the 201 validation "
        "samples is left out"]
    # no validation: the training samples only
    plan = _planned(1001, 4)
    assert len(plan.x) == 1000 and plan.notes[0].endswith("the last 1 of the 1001 training "
                                                          "samples is left out")
    with pytest.raises(UsageError, match="3 training samples cannot be split over 4 devices"):
        _planned(3, 4)


def test_the_device_line_names_every_device(monkeypatch):
    from nbkeras.train import device
    monkeypatch.setattr(device, "_device_names",
                        lambda devices, backend: ["NVIDIA H100"] * len(devices))
    assert device.devices_text(["gpu:0", "gpu:1", "gpu:2", "gpu:3"], "jax") == \
        "4 × NVIDIA H100 · data parallel"
    assert device.devices_text(["gpu:1"], "jax") == "NVIDIA H100 (gpu:1)"


def test_a_dataset_batch_that_does_not_split_is_one_line():
    from types import SimpleNamespace
    exc = type("IndivisibleError", (Exception,), {})(
        "Sharding ... implies that array axis 0 is partitioned 4 times, but the dimension "
        "size is 41 (... should evenly divide the shape)")
    message = distribute.explain(exc, SimpleNamespace(devices=CPUS))
    assert str(message) == ("a batch did not split evenly over the 4 devices: on JAX every "
                            "batch's size must be a multiple of 4 (batch the dataset with "
                            "drop_remainder=True, or give arrays)")
    assert distribute.explain(exc, SimpleNamespace(devices=None)) is None
    assert distribute.explain(ValueError("other"), SimpleNamespace(devices=CPUS)) is None


# -- the oracle: a multi-device run's losses are a one-device run's ---------------------

SIZES = textwrap.dedent("""
    xs = rng.normal(size=(1003, 8)).astype("float32")
    ys = (xs[:, :2].sum(1) > 0).astype("int32")
    ip.user_ns.update(xs=xs, ys=ys)
    for name in ("one", "two", "four", "again", "ref"):
        ip.run_cell_magic("model", f"{name} --seed 1", SPEC)
    # Keras splits 1003 at floor(1003 * 0.75) = 752: 752 train, 251 validate
    SPLIT = "xs ys -b 16 -e 2 --seed 3 --val-split 0.25 --quiet"
""")

JAX_SPLIT_SCRIPT = SHELL + SIZES + textwrap.dedent("""
    h1, _ = fit(f"one {SPLIT}")
    h2, said = fit(f"two {SPLIT} --devices 2")
    href, _ = fit("ref xs[:752] ys[:752] --val xs[752:1002] ys[752:1002] -b 16 -e 2 --seed 3 "
                  "--quiet")
    print(json.dumps({"one": h1.history, "two": h2.history, "ref": href.history,
                      "said": said}))
""")

TF_SIZES_SCRIPT = TF_SCRIPT.split("import nbkeras")[0] + SIZES + textwrap.dedent("""
    h1, _ = fit(f"one {SPLIT}")
    h2, _ = fit(f"two {SPLIT} --devices 2")
    h4, _ = fit(f"four {SPLIT} --devices 4")       # another number of devices
    hagain, _ = fit(f"again {SPLIT} --devices 2")  # and back
    moved, said_moved = fit(f"two {SPLIT} --devices 4")   # a model moved from 2 to 4
    print(json.dumps({
        "one": h1.history, "two": h2.history, "four": h4.history, "again": hagain.history,
        "moved": len(moved.history["loss"]), "said_moved": said_moved,
        "steps": error("%fit one xs ys --devices 2 --steps-per-execution 4"),
    }))
""")


def test_jax_devices_split_validation_as_keras_does(tmp_path):
    out = _run(JAX_SPLIT_SCRIPT, tmp_path, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    one, two, ref = out["one"], out["two"], out["ref"]
    # the same 752 training samples as one device (they used to be 750: the whole set was
    # trimmed before Keras split it, moving the boundary)
    assert two["loss"] == pytest.approx(one["loss"], rel=TOLERANCE)
    # the validation samples are one device's, the last of the 251 left out
    assert two["val_loss"] == pytest.approx(ref["val_loss"], rel=TOLERANCE)
    assert two["loss"] == pytest.approx(ref["loss"], rel=TOLERANCE)
    assert ("every batch splits evenly over the 2 devices: the last 1 of the 251 validation "
            "samples is left out") in out["said"]
    assert "training samples" not in out["said"]


def test_tensorflow_runs_over_different_numbers_of_devices_in_one_kernel(tmp_path):
    out = _run(TF_SIZES_SCRIPT, tmp_path, KERAS_BACKEND="tensorflow")
    one = out["one"]
    # 2, then 4, then 2 devices again: each run's losses are one device's (a second
    # number of devices used to fail with a collective-ops InternalError, and every
    # multi-device run after it)
    for name in ("two", "four", "again"):
        assert out[name]["loss"] == pytest.approx(one["loss"], rel=TOLERANCE), name
        assert out[name]["val_loss"] == pytest.approx(one["val_loss"], rel=TOLERANCE), name
    assert out["moved"] == 2 and "rebuilt two for training on 4 devices" in out["said_moved"]
    assert out["steps"] == ("--steps-per-execution 4 with --devices over 2 devices: on "
                            "TensorFlow Keras trains one step per call over several devices; "
                            "give --steps-per-execution 1 (or train on one device)")
