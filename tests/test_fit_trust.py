"""`%fit` you can trust: each defect a user met, now a behaviour they can rely on."""

import math
import pickle

import pytest

from nbkeras.errors import UsageError, DataError


@pytest.fixture
def regression(ip):
    ip.run_cell("""
import numpy as np, keras
from sklearn.datasets import load_diabetes
d = load_diabetes()
x = d.data.astype('float32'); y = ((d.target - d.target.mean()) / d.target.std()).astype('float32')
xv, yv = x[350:], y[350:]; x, y = x[:350], y[:350]
keras.utils.set_random_seed(1)
r = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation='relu'),
                      keras.layers.Dense(1)])
r.compile(keras.optimizers.Adam(0.01), 'mse', metrics=['mae'])
""").raise_error()
    return ip


@pytest.fixture
def digits(ip):
    ip.run_cell("""
import numpy as np, keras
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:300] / 16).astype('float32'); y = d.target[:300]
""").raise_error()
    ip.run_cell("%%model clf --seed 0\ninput 64\ndense 16 relu\ndense 10 softmax").raise_error()
    return ip


def test_checkpoint_on_val_mae_keeps_the_lowest_epoch(regression, tmp_path):
    path = tmp_path / "best.keras"
    h = regression.run_line_magic(
        "fit", f"r x y -e 8 -b 32 --val xv yv --monitor val_mae --checkpoint {path} --quiet")
    import keras
    best = keras.models.load_model(path)
    maes = h.history["val_mae"]
    saved = best.evaluate(regression.user_ns["xv"], regression.user_ns["yv"], verbose=0,
                          return_dict=True)["mae"]
    assert maes[-1] < maes[0]                      # it learned: the worst epoch is the first
    assert saved == pytest.approx(min(maes), rel=1e-4)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".nbkeras-")]


def test_early_stop_and_checkpoint_agree_on_the_direction(regression, tmp_path, monkeypatch):
    import keras
    seen = {}
    real_fit = keras.Model.fit

    def spy(self, *args, **kwargs):
        seen["callbacks"] = kwargs["callbacks"]
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    regression.run_line_magic("fit", f"r x y -e 2 --val xv yv --monitor val_mae --early-stop 3 "
                                     f"--checkpoint {tmp_path / 'b.keras'} --quiet")
    stop = next(c for c in seen["callbacks"] if isinstance(c, keras.callbacks.EarlyStopping))
    ckpt = next(c for c in seen["callbacks"] if isinstance(c, keras.callbacks.ModelCheckpoint))
    assert stop.mode == ckpt.mode == "min"


def test_mixed_precision_is_scoped_to_the_run(digits):
    import keras
    digits.run_line_magic("fit", "clf x y -e 1 --mixed-precision --quiet")
    assert keras.mixed_precision.global_policy().name == "float32"
    clf = digits.user_ns["clf"]
    assert clf.dtype_policy.name.startswith("mixed")          # the trained copy keeps working
    assert clf.predict(digits.user_ns["x"][:2], verbose=0).shape == (2, 10)
    digits.run_cell("%%model plain\ninput 64\ndense 10 softmax").raise_error()
    assert digits.user_ns["plain"].dtype_policy.name == "float32"
    h = digits.run_line_magic("fit", "plain x y -e 1 --quiet")
    assert "loss" in h.history


def test_a_refused_fit_changes_nothing(digits):
    import keras
    from nbkeras.registry import get_registry
    clf = digits.user_ns["clf"]
    before = clf.get_compile_config()
    runs_before = len(get_registry().runs())
    with pytest.raises(DataError):
        digits.run_line_magic("fit", "clf x y[:10] -e 1 --mixed-precision --quiet")
    with pytest.raises(UsageError):
        digits.run_line_magic("fit", "clf x y -e 1 --monitor val_acuracy --val-split 0.2 --quiet")
    assert keras.mixed_precision.global_policy().name == "float32"
    assert digits.user_ns["clf"] is clf and clf.get_compile_config() == before
    assert len(get_registry().runs()) == runs_before


def test_unknown_monitor_lists_the_logged_metrics(digits):
    with pytest.raises(UsageError) as err:
        digits.run_line_magic("fit", "clf x y -e 1 --monitor val_acuracy --val-split 0.2 --quiet")
    message = str(err.value)
    assert "val_acuracy" in message and "val_accuracy" in message and "did you mean" in message


def test_fit_returns_the_plain_keras_history(digits):
    import keras
    h = digits.run_line_magic("fit", "clf x y -e 2 --quiet")
    assert type(h) is keras.callbacks.History
    copy = pickle.loads(pickle.dumps(h))
    assert copy.history["loss"] == h.history["loss"]


def test_settling_the_loss_keeps_a_hand_compiled_optimizer_and_metrics(digits):
    import keras
    digits.run_cell("clf.compile(keras.optimizers.SGD(0.05, momentum=0.9), "
                    "'sparse_categorical_crossentropy', metrics=['mae', 'accuracy'])").raise_error()
    optimizer = digits.user_ns["clf"].optimizer
    h = digits.run_line_magic("fit", "clf x keras.utils.to_categorical(y, 10) -e 1 --quiet")
    clf = digits.user_ns["clf"]
    assert clf.optimizer is optimizer and float(clf.optimizer.momentum) == pytest.approx(0.9)
    assert {"mae", "accuracy"} <= set(h.history)
    assert clf.get_compile_config()["loss"] == "categorical_crossentropy"


def test_a_loss_the_user_chose_is_never_replaced(digits):
    digits.run_cell("clf.compile('adam', 'categorical_crossentropy')").raise_error()
    with pytest.raises(DataError, match="sparse_categorical_crossentropy"):
        digits.run_line_magic("fit", "clf x y -e 1 --quiet")  # class indices, their one-hot loss
    assert digits.user_ns["clf"].get_compile_config()["loss"] == "categorical_crossentropy"


def test_val_split_steps_match_keras(ip, monkeypatch):
    import keras
    ip.run_cell("""
import numpy as np, keras
from sklearn.datasets import load_breast_cancer
d = load_breast_cancer()
x = ((d.data - d.data.mean(0)) / d.data.std(0)).astype('float32'); y = d.target
b = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation='sigmoid')])
b.compile('adam', 'binary_crossentropy')
""").raise_error()
    seen = {}
    real_fit = keras.Model.fit

    def spy(self, *args, **kwargs):
        from nbkeras.train.callback import LiveCallback
        result = real_fit(self, *args, **kwargs)
        live = [cb for cb in kwargs["callbacks"] if isinstance(cb, LiveCallback)]
        if live:  # the run itself (not the step-time probe before it)
            seen["planned"], seen["keras"] = live[0].state.steps, live[0].params["steps"]
        return result

    monkeypatch.setattr(keras.Model, "fit", spy)
    ip.run_line_magic("fit", "b x y -e 1 -b 32 --val-split 0.1 --quiet")
    assert seen["keras"] == math.ceil(math.floor(569 * 0.9) / 32) == 16
    assert seen["planned"] == seen["keras"]


def test_tensorboard_without_tensorboard_is_refused_before_training(digits, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(UsageError, match="pip install tensorboard"):
        digits.run_line_magic("fit", "clf x y -e 1 --tensorboard logs --quiet")


def test_unloading_restores_the_previous_exception_handler(ip):
    import nbkeras
    from nbkeras.errors import NbkerasError
    nbkeras.unload_ipython_extension(ip)
    assert NbkerasError not in ip.custom_exceptions
    nbkeras.load_ipython_extension(ip)
    assert ip.custom_exceptions == (NbkerasError,)
