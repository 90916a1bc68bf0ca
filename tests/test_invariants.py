"""Invariants that hold in every combination of `%fit` options (issue 19).

Hypothesis draws small combinations (validation form, early stopping,
cross-validation, monitor, class weights, seed, background, a failure
injected mid-epoch, a command that must be refused) on tiny data and checks
what must always be true:

- the returned History, the registry and the model agree;
- the kept values are the kept weights' values (plain Keras `evaluate`);
- the model's weights are readable and finite after any outcome;
- a refused command changes nothing (weights, registry);
- the same seed gives the same numbers.

This file also runs on the JAX backend (`scripts/test.sh` runs it a second
time with KERAS_BACKEND=jax).
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import nbkeras
from nbkeras.errors import NbkerasError, UsageError

SETUP = """
import math
import numpy as np
import keras
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:160] / 16).astype('float32'); y = d.target[:160]
xv, yv = (d.data[1000:1060] / 16).astype('float32'), d.target[1000:1060]

class Failing(keras.utils.PyDataset):
    '''The same batches as the arrays, raising at batch 2 of training epoch 2.'''
    def __init__(self, x, y, batch):
        super().__init__()
        self.x, self.y, self.batch, self.epoch = x, y, batch, 0
    def __len__(self):
        return math.ceil(len(self.x) / self.batch)
    def __getitem__(self, i):
        if self.epoch == 2 and i == 1:  # Keras ends a pass over it before training starts
            raise RuntimeError("the data source failed")
        s = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[s], self.y[s]
    def on_epoch_end(self):
        self.epoch += 1
"""

SPEC = "%%model inv --seed 3\ninput 64\ndense 24 relu\ndense 10 softmax\noptimizer adam lr=0.01"

options = st.fixed_dictionaries({
    "val": st.sampled_from(["none", "val", "split"]),
    "early_stop": st.sampled_from([None, 1, 3]),
    "cv": st.sampled_from([None, None, 2]),
    "monitor": st.sampled_from([None, "val_accuracy"]),
    "class_weight": st.booleans(),
    "seed": st.sampled_from([None, 0, 7]),
    "background": st.booleans(),
    "failure": st.sampled_from([None, None, "data", "nan"]),
    "refused": st.sampled_from([False] * 5 + [True]),
})
BASE = dict(val="none", early_stop=None, cv=None, monitor=None, class_weight=False, seed=None,
            background=False, failure=None, refused=False)


def _line(o) -> str:
    words = ["%fit inv", "xf" if o["failure"] == "data" else "x",
             "" if o["failure"] == "data" else "yy", "-e 4 -b 32 --quiet"]
    if o["val"] == "val":
        words.append("--val xv yv")
    elif o["val"] == "split":
        words.append("--val-split 0.25")
    if o["early_stop"] is not None:
        words.append(f"--early-stop {o['early_stop']}")
    if o["cv"]:
        words.append(f"--cv {o['cv']}")
    if o["monitor"]:
        words.append(f"--monitor {o['monitor']}")
    if o["class_weight"]:
        words.append("--class-weight balanced")
    if o["seed"] is not None:
        words.append(f"--seed {o['seed']}")
    if o["background"]:
        words.append("--background")
    if o["refused"]:
        words.append("--epochs 0")  # refused before anything changes
    return " ".join(w for w in words if w)


def _normalize(o):
    """Options the magic would refuse for a reason that is not under test."""
    o = dict(o)
    if o["cv"]:
        o.update(val="none", background=False)
        if o["failure"] == "data":
            o["failure"] = None
    if o["failure"] == "data":
        o["class_weight"] = False  # balanced needs Y
        if o["val"] == "split":
            o["val"] = "val"
    if o["val"] == "none" and not o["cv"]:
        o["monitor"] = None
    return o


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _finite(weights) -> bool:
    return all(np.all(np.isfinite(w)) for w in weights)


def _train(ip, line, background):
    result = ip.run_cell(line)
    if background and result.error_in_exec is None:
        job = result.result
        job.wait(240)
        return job, None
    return result.result, result.error_in_exec


@settings(max_examples=10, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(o=options)
@example(o={**BASE, "failure": "nan", "val": "split", "seed": 0})
@example(o={**BASE, "failure": "data", "val": "val", "early_stop": 1, "background": True})
@example(o={**BASE, "val": "val", "early_stop": 3, "seed": 0, "class_weight": True})
@example(o={**BASE, "cv": 2, "early_stop": 1, "seed": 7})
def test_fit_invariants_over_option_combinations(ip, o, tmp_path_factory, monkeypatch):
    o = _normalize(o)
    # each example gets a registry of its own
    monkeypatch.setenv("NBKERAS_HOME", str(tmp_path_factory.mktemp("registry")))
    ip.user_ns.clear()
    ip.init_user_ns()
    ip.run_cell(SETUP).raise_error()
    ip.run_cell(SPEC).raise_error()
    ns = ip.user_ns
    yy = ns["y"].copy()
    x = ns["x"].copy()
    if o["failure"] == "nan":
        x[40] = 3e38  # finite, but the loss overflows to NaN in the first epoch
    ns.update(x=x, yy=yy, xf=ns["Failing"](ns["x"], yy, 32))
    model = ns["inv"]
    before = _weights(model)
    runs_before = len(nbkeras.runs("inv"))
    line = _line(o)

    out, error = _train(ip, line, o["background"])
    model = ns["inv"]
    after = _weights(model)                      # readable whatever happened
    assert _finite(after), f"{line}: weights not finite"

    if o["refused"]:
        assert isinstance(error, UsageError), line
        assert all(np.array_equal(a, b) for a, b in zip(before, after)), line
        assert len(nbkeras.runs("inv")) == runs_before, line
        return
    runs = nbkeras.runs("inv")
    if o["cv"]:
        assert error is None, f"{line}: {error!r}"
        folds = out.drop(index=["mean", "std"])
        recorded = sorted(runs, key=lambda r: r["options"]["fold"])
        assert len(recorded) == o["cv"] == len(folds)
        for (_, row), rec in zip(folds.iterrows(), recorded):
            held = rec.get("kept") or rec["last"]
            assert row["val_loss"] == pytest.approx(held["val_loss"], rel=1e-6), line
            assert rec["options"]["watch"] == (o["monitor"] or "val_loss"), line
        # NAME keeps its initial weights
        assert all(np.array_equal(a, b) for a, b in zip(before, after)), line
        return

    (rec,) = runs
    if o["failure"] is not None:
        assert rec["status"] == "failed", line
        failure = error if not o["background"] else out._error
        # a data source's own error reaches the user (TensorFlow wraps it in its own type)
        assert isinstance(failure, Exception), f"{line}: {failure!r}"
        if o["failure"] == "nan":
            assert isinstance(failure, NbkerasError) and "loss became" in str(failure), line
        return
    assert error is None, f"{line}: {error!r}"
    history = (out.result(0) if o["background"] else out).history
    assert rec["status"] == "completed", line
    # the History and the registry hold the same epochs
    assert len(rec["epochs"]) == len(history["loss"])
    for i, epoch in enumerate(rec["epochs"]):
        for key, values in history.items():
            assert epoch[key] == pytest.approx(values[i], rel=1e-6), (line, key, i)
    watch = rec["options"]["watch"]
    expected = o["monitor"] or ("loss" if o["val"] == "none" else "val_loss")
    assert watch == expected, line
    # the kept values are the kept weights' values
    if o["val"] != "none":
        if o["val"] == "val":
            vx, vy = ns["xv"], ns["yv"]
        else:  # Keras' split: the last 25%, not shuffled
            n_train = int(math.floor(len(x) * 0.75))
            vx, vy = x[n_train:], yy[n_train:]
        held = rec.get("kept") or rec["last"]
        ref = model.evaluate(vx, vy, verbose=0, return_dict=True)
        if not o["class_weight"]:  # class weights weigh the training loss only
            assert held["val_loss"] == pytest.approx(ref["loss"], rel=1e-4), line
        assert held["val_accuracy"] == pytest.approx(ref["accuracy"], abs=1e-6), line
        if o["early_stop"] is not None:
            values = history[watch]
            best = (np.argmax if watch.endswith("accuracy") else np.argmin)(values)
            assert (rec.get("kept_epoch") or len(values)) == best + 1, line
    # the same seed gives the same numbers
    if o["seed"] is not None and not o["background"]:
        model.set_weights(before)
        model.compile_from_config(model.get_compile_config())
        again, error = _train(ip, line, False)
        assert error is None
        for key, values in history.items():
            assert again.history[key] == pytest.approx(values, rel=1e-5), (line, key)
