"""`%tune` against its references: each trial's value is what Keras'
`model.evaluate` gives for the weights the trial keeps, the values Optuna
proposes are those of a plain Optuna study with the same sampler and seed,
and the held-out part is the one Keras' own `validation_split` takes."""

import pytest

optuna = pytest.importorskip("optuna")

DATA = """
import numpy as np, keras
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:300] / 16).astype('float32'); y = d.target[:300]
xv = (d.data[300:400] / 16).astype('float32'); yv = d.target[300:400]
"""
SPEC = """%%model tn
input 64
dense {8, 32}@width relu
dropout 0.0..0.5
dense 10 softmax
optimizer adam lr=1e-2..3e-1:log"""


@pytest.fixture
def tn(ip):
    ip.run_cell(DATA).raise_error()
    ip.run_cell(SPEC).raise_error()
    return ip


def _keep_trial_models(monkeypatch):
    """{trial number: the model the trial kept}, filled as the trials end."""
    import nbkeras.tune.trial as trials
    kept = {}
    train = trials._train_trial

    def recording(ctx, values, trial, view):
        out = train(ctx, values, trial, view)
        kept[trial.number] = out[0]
        return out

    monkeypatch.setattr(trials, "_train_trial", recording)
    return kept


def test_each_trial_value_is_the_evaluation_of_the_weights_it_keeps(tn, monkeypatch):
    """With --early-stop Keras puts the best epoch's weights back at the end
    of every run, stopped early or not: the trial's value, the ranking, the
    model bound to NAME and the registry all speak of those weights.
    (High learning rates make val_loss jump, so the last epoch is seldom the best.)"""
    kept = _keep_trial_models(monkeypatch)
    df = tn.run_line_magic("tune", "tn x y --trials 4 -e 6 --early-stop 3 --val xv yv --seed 2 "
                                   "--sampler random --pruner none --quiet")
    assert list(df["state"]) == ["complete"] * 4
    xv, yv = tn.user_ns["xv"], tn.user_ns["yv"]
    evaluated = {n: m.evaluate(xv, yv, verbose=0, return_dict=True)["loss"]
                 for n, m in kept.items()}
    for trial, value in zip(df["trial"], df["value"]):
        assert value == pytest.approx(evaluated[trial], rel=1e-4), trial
    assert df["trial"].iloc[0] == min(evaluated, key=evaluated.get)     # ranked best is best
    bound = tn.user_ns["tn"].evaluate(xv, yv, verbose=0, return_dict=True)["loss"]
    assert bound == pytest.approx(df["value"].iloc[0], rel=1e-4)
    import nbkeras
    runs = {r["trial"]: r for r in nbkeras.runs(model="tn") if r["study"] == "tn"}
    assert any(r.get("kept") for r in runs.values())  # some trial kept an earlier epoch
    for trial, value in zip(df["trial"], df["value"]):
        recorded = (runs[trial].get("kept") or runs[trial]["last"])["val_loss"]
        assert recorded == pytest.approx(value, rel=1e-6), trial


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_the_values_sampled_are_those_of_a_plain_optuna_study_with_that_seed(tn, kind):
    df = tn.run_line_magic("tune", f"tn x y --trials 3 -e 1 --val xv yv --seed 11 "
                                   f"--sampler {kind} --quiet")
    sampler = {"random": optuna.samplers.RandomSampler,
               "tpe": optuna.samplers.TPESampler}[kind](seed=11)
    plain = optuna.create_study(sampler=sampler, direction="minimize")
    for _, row in df.sort_values("trial").iterrows():
        t = plain.ask()
        params = {"width": t.suggest_categorical("width", [8, 32]),
                  "dropout.rate": t.suggest_float("dropout.rate", 0.0, 0.5),
                  "optimizer.learning_rate": t.suggest_float("optimizer.learning_rate",
                                                             1e-2, 3e-1, log=True)}
        assert {k: row[k] for k in params} == params
        plain.tell(t, row["value"])


def test_without_validation_data_each_trial_holds_out_the_last_fifth(tn, capsys):
    """The objective is a validation loss, never the training loss in
    silence: the held-out part is the last 20%, as Keras' `validation_split`."""
    df = tn.run_line_magic("tune", "tn x y --trials 2 -e 2 --seed 1 --quiet")
    out = capsys.readouterr().out
    assert ("nbkeras: no --val given: each trial holds out the last 20% of the samples for "
            "validation (--val-split 0.2)") in out
    x, y = tn.user_ns["x"], tn.user_ns["y"]
    held = tn.user_ns["tn"].evaluate(x[240:], y[240:], verbose=0, return_dict=True)["loss"]
    assert df["value"].iloc[0] == pytest.approx(held, rel=1e-4)
    import nbkeras
    runs = [r for r in nbkeras.runs(model="tn") if r["study"] == "tn"]
    assert {r["options"]["val_split"] for r in runs} == {0.2}
    assert all("val_loss" in r["last"] for r in runs)


def test_an_explicit_training_objective_holds_nothing_out(tn, capsys):
    df = tn.run_line_magic("tune", "tn x y --trials 1 -e 1 --objective loss --quiet")
    assert "holds out" not in capsys.readouterr().out
    assert df["state"].tolist() == ["complete"]
