"""Invariants of `%tune` over random combinations of its options (issue 19).

Hypothesis draws the sampler, the validation form (`--val`, `--val-split`,
none: the last 20% held out, `--cv`), early stopping, the objective and its
direction, a seed and a `--resume` on tiny data, and checks what must always
hold: the trial ranked best has the best value by the one direction; each
trial's value is its registry run's kept value; the model bound to NAME
scores the best value under plain Keras' `evaluate`; a resumed search runs
only its new trials and does not replay earlier values; the weights are
finite. Runs on TensorFlow and, from `scripts/test.sh`, on JAX.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import nbkeras

optuna = pytest.importorskip("optuna")

DATA = """
import numpy as np
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:150] / 16).astype('float32'); y = d.target[:150]
xv = (d.data[300:360] / 16).astype('float32'); yv = d.target[300:360]
"""
SPEC = """%%model ti --seed 1
input 64
dense {8, 24}@width relu
dense 10 softmax
optimizer adam lr=3e-3..3e-1:log"""

options = st.fixed_dictionaries({
    "sampler": st.sampled_from(["random", "tpe"]),
    "val": st.sampled_from(["val", "split", "none", "cv"]),
    "early_stop": st.sampled_from([None, 1]),
    "objective": st.sampled_from([None, "val_accuracy"]),
    "direction": st.booleans(),   # say the objective's direction explicitly
    "seed": st.sampled_from([0, 5]),
    "resume": st.booleans(),
})
BASE = dict(sampler="random", val="val", early_stop=None, objective=None, direction=False,
            seed=0, resume=False)


def _line(o, trials: int, resume: bool = False) -> str:
    words = [f"%tune ti x y --trials {trials} -e 3 -b 32 --quiet --pruner none",
             f"--sampler {o['sampler']} --seed {o['seed']}"]
    words.append({"val": "--val xv yv", "split": "--val-split 0.3", "none": "",
                  "cv": "--cv 2"}[o["val"]])
    if o["early_stop"] is not None:
        words.append(f"--early-stop {o['early_stop']}")
    if o["objective"]:
        words.append(f"--objective {o['objective']}")
    if o["direction"]:
        words.append("--direction " + ("max" if o["objective"] == "val_accuracy" else "min"))
    if resume:
        words.append("--resume")
    return " ".join(w for w in words if w)


@settings(max_examples=5, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(o=options)
@example(o={**BASE, "early_stop": 1, "resume": True})
@example(o={**BASE, "val": "none", "objective": "val_accuracy", "sampler": "tpe"})
@example(o={**BASE, "val": "cv", "early_stop": 1, "direction": True})
def test_tune_invariants_over_option_combinations(ip, o, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NBKERAS_HOME", str(tmp_path_factory.mktemp("registry")))
    ip.user_ns.clear()
    ip.init_user_ns()
    ip.run_cell(DATA).raise_error()
    ip.run_cell(SPEC).raise_error()
    ns = ip.user_ns
    line = _line(o, 2)
    df = ip.run_line_magic("tune", line[len("%tune "):])
    if o["resume"]:
        first = df.copy()
        df = ip.run_line_magic("tune", _line(o, 2, resume=True)[len("%tune "):])
        assert len(df) == 4, line                        # 2 earlier + 2 new trials
        old = {round(v, 12) for v in first["optimizer.learning_rate"]}
        new = df[~df["trial"].isin(first["trial"])]
        assert not old & {round(v, 12) for v in new["optimizer.learning_rate"]}, line

    objective = o["objective"] or "val_loss"
    maximize = objective == "val_accuracy"
    done = df[df["state"] == "complete"]
    assert len(done) == len(df), line
    values = list(done["value"])
    best = max(values) if maximize else min(values)
    assert df["value"].iloc[0] == best, line              # the trial ranked best is the best

    runs = [r for r in nbkeras.runs(model="ti") if r["study"]]
    if o["val"] != "cv":
        by_trial = {r["trial"]: r for r in runs}
        for trial, value in zip(done["trial"], done["value"]):
            held = (by_trial[trial].get("kept") or by_trial[trial]["last"])[objective]
            assert held == pytest.approx(value, rel=1e-6), (line, trial)
            assert by_trial[trial]["options"]["watch"] == objective, line
            assert by_trial[trial]["options"]["mode"] == ("max" if maximize else "min"), line
        # NAME holds the best trial's kept weights: plain Keras scores them the same
        if o["val"] == "val":
            vx, vy = ns["xv"], ns["yv"]
        else:
            n_train = int(math.floor(len(ns["x"]) * (1 - (0.3 if o["val"] == "split" else 0.2))))
            vx, vy = ns["x"][n_train:], ns["y"][n_train:]
        ref = ns["ti"].evaluate(vx, vy, verbose=0, return_dict=True)
        key = "accuracy" if maximize else "loss"
        assert ref[key] == pytest.approx(best, rel=1e-4, abs=1e-6), line
    else:  # each trial's value is the mean of its folds' kept values
        folds = {}
        for r in runs:
            folds.setdefault(r["trial"], []).append((r.get("kept") or r["last"])[objective])
        for trial, value in zip(done["trial"], done["value"]):
            assert len(folds[trial]) == 2, line
            assert value == pytest.approx(np.mean(folds[trial]), rel=1e-6), (line, trial)
            assert {r["options"]["watch"] for r in runs} == {objective}, line
    assert all(np.all(np.isfinite(w)) for w in ns["ti"].get_weights()), line
