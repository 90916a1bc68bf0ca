"""A small real `%fit` end to end in the test shell (no widget frontend: text view)."""

import csv
import math
import os

import pytest


@pytest.fixture
def digits(ip):
    ip.run_cell("""
import numpy as np, keras
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:400] / 16).astype('float32'); y = d.target[:400]
xv = (d.data[400:500] / 16).astype('float32'); yv = d.target[400:500]
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation='relu'),
                      keras.layers.Dense(10, activation='softmax')])
m.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])
""").raise_error()
    return ip


def test_fit_returns_history_and_prints_one_line_per_epoch(digits, capsys):
    r = digits.run_cell("h = %fit m x y -e 3 -b 64")
    r.raise_error()
    h = digits.user_ns["h"]
    assert type(h).__name__ == "History"
    assert h.epoch == [0, 1, 2]
    assert set(h.history) == {"loss", "accuracy"} and len(h.history["loss"]) == 3
    assert digits.user_ns["m"].history is h
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "m: training epochs 1-3 on CPU · mixed precision off"
    assert [ln.split(" · ")[0] for ln in lines[1:4]] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert lines[-1].startswith("m: completed, epoch 3 of 3")
    assert len(lines) == 5      # never a line per batch (7 batches per epoch here)


def test_validation_data_and_split(digits):
    h = digits.run_line_magic("fit", "m x y -e 2 --val xv yv --quiet")
    assert len(h.history["val_loss"]) == 2
    h = digits.run_line_magic("fit", "m x y -e 1 --val-split 0.25 --quiet")
    assert "val_accuracy" in h.history


def test_early_stop_checkpoint_csv_and_balanced_class_weight(digits, tmp_path, monkeypatch):
    import keras
    seen = {}
    real_fit = keras.Model.fit

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    ckpt, log = tmp_path / "best.keras", tmp_path / "log.csv"
    h = digits.run_line_magic(
        "fit", f"m x y -e 4 --val xv yv --early-stop 1 --monitor val_accuracy "
               f"--checkpoint {ckpt} --csv {log} --class-weight balanced --quiet")
    stop = next(c for c in seen["callbacks"] if isinstance(c, keras.callbacks.EarlyStopping))
    assert stop.monitor == "val_accuracy" and stop.restore_best_weights  # Keras' own
    cw = seen["class_weight"]
    assert sorted(cw) == list(range(10)) and all(0.5 < w < 2 for w in cw.values())
    assert ckpt.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".nbkeras-")]
    loaded = keras.models.load_model(ckpt)
    assert loaded.predict(digits.user_ns["xv"][:2], verbose=0).shape == (2, 10)
    rows = list(csv.DictReader(open(log)))
    assert len(rows) == len(h.epoch) and "val_accuracy" in rows[0]


def test_resume_extends_history(digits):
    from nbkeras.state import get_info
    digits.run_line_magic("fit", "m x y -e 2 --quiet")
    h = digits.run_line_magic("fit", "m x y -e 2 --resume --quiet")
    assert h.epoch == [2, 3]
    info = get_info(digits.user_ns["m"])
    assert info.epochs_done == 4
    assert len(info.history["loss"]) == 4
    assert info.history["loss"][2:] == h.history["loss"]


def test_runs_are_recorded(digits):
    from nbkeras.state import get_info
    registry = pytest.importorskip("nbkeras.registry")
    digits.run_line_magic("fit", "m x y -e 2 --quiet")
    info = get_info(digits.user_ns["m"])
    assert len(info.run_ids) == 1
    run = registry.get_registry().run(info.run_ids[0])
    assert run["status"] == "completed" and run["epochs"] == 2
    assert run["device"].startswith("CPU")


def test_lr_schedule_and_reduce_lr(digits):
    import keras
    m = digits.user_ns["m"]
    h = digits.run_line_magic("fit", "m x y -e 3 --lr-schedule step --lr-step 1 --lr-decay 0.5 --quiet")
    lr = float(keras.ops.convert_to_numpy(m.optimizer.learning_rate))
    assert lr == pytest.approx(0.001 * 0.25)
    assert h.history["learning_rate"] == pytest.approx([0.001, 0.0005, 0.00025])
    h = digits.run_line_magic("fit", "m x y -e 1 --reduce-lr 1 --quiet")
    assert "learning_rate" in h.history


def test_nan_loss_stops_saying_where(ip):
    from nbkeras.errors import DataError
    ip.run_cell("""
import numpy as np, keras
x = np.full((64, 2), 1e30, dtype='float32'); y = np.ones(64, dtype='float32')
m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
m.compile(keras.optimizers.SGD(1e10), 'mse')
""").raise_error()
    with pytest.raises(DataError) as err:
        ip.run_line_magic("fit", "m x y -e 3 -b 8 --quiet")
    # the loss is read off the device only when drawn and at epoch ends (issue 22):
    # the message names the epoch and the batch by which it was seen
    assert "in epoch 1 (seen by batch " in str(err.value)
    assert "lower learning rate" in str(err.value)
    from nbkeras.state import get_info
    assert get_info(ip.user_ns["m"]).epochs_done == 0


def test_steps_per_execution_seed_and_mixed_precision_smoke(digits, capsys):
    import keras
    m = digits.user_ns["m"]
    h = digits.run_line_magic("fit", "m x y -e 1 --steps-per-execution 4 --seed 3 --text")
    assert "in steps of 4" in capsys.readouterr().out
    assert m.steps_per_execution == 1            # restored after the run
    try:
        h = digits.run_line_magic("fit", "m x[:64] y[:64] -e 1 --mixed-precision --quiet")
        assert "rebuilt m with the mixed_bfloat16 policy" in capsys.readouterr().out
        assert digits.user_ns["m"].dtype_policy.name == "mixed_bfloat16"
        assert math.isfinite(h.history["loss"][0])
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_tf_data_dataset_needs_no_y(digits):
    digits.run_cell("import tensorflow as tf\n"
                    "ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)\n"
                    "vds = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(64)").raise_error()
    h = digits.run_line_magic("fit", "m ds -e 1 --val vds --quiet")
    assert "val_loss" in h.history and h.params["steps"] == 7


def test_out_of_memory_says_use_a_smaller_batch(digits, monkeypatch):
    import keras
    from nbkeras.errors import UsageError

    def oom(self, *args, **kwargs):
        raise RuntimeError("ResourceExhaustedError: OOM when allocating tensor with shape [256, 4096]")

    monkeypatch.setattr(keras.Model, "fit", oom)
    with pytest.raises(UsageError) as err:
        digits.run_line_magic("fit", "m x y -e 1 -b 256 --quiet")
    assert "out of memory with batch size 256" in str(err.value)
    assert "-b 128" in str(err.value)


def test_jit_smoke(digits):
    m = digits.user_ns["m"]
    h = digits.run_line_magic("fit", "m x[:64] y[:64] -e 1 -b 32 --jit --quiet")
    assert math.isfinite(h.history["loss"][0])
    assert not m.jit_compile     # restored after the run


def test_a_model_built_without_input_still_trains(digits):
    digits.run_cell("u = keras.Sequential([keras.layers.Dense(8, activation='relu'),"
                    " keras.layers.Dense(10, activation='softmax')])\n"
                    "u.compile('adam', 'sparse_categorical_crossentropy')").raise_error()
    h = digits.run_line_magic("fit", "u x y -e 1 --quiet")
    assert len(h.history["loss"]) == 1


def test_early_stop_is_said_in_the_summary(digits, capsys):
    # the step schedule sets the learning rate to 0 after epoch 1: val_loss stops improving
    h = digits.run_line_magic("fit", "m x y -e 30 --val xv yv --early-stop 0 --lr-schedule step "
                                     "--lr-step 1 --lr-decay 0 --quiet")
    out = capsys.readouterr().out
    assert len(h.epoch) == 2
    assert "early stop at epoch 2 of 30: the model holds the weights of epoch 1" in out
