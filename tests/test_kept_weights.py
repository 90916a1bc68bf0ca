"""A run's result is what its model holds (issue 19, items 1-4).

Keras' `EarlyStopping(restore_best_weights=True)` puts the best epoch's
weights back at the end of `fit` whenever it saw a best epoch, also when the
run went to its last epoch without stopping early. Every number nbkeras
shows as a run's result (the record, the registry, `%models`, a fold's row,
a trial's value) must then be that epoch's, and equal what plain Keras'
`model.evaluate` says of the weights the model holds.
"""

import numpy as np
import pytest

import nbkeras

SETUP = """
import numpy as np
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data / 16).astype('float32'); y = d.target
xt, yt, xv, yv = x[:120], y[:120], x[1000:1200], y[1000:1200]
"""
# a wide model on 120 samples overfits: val_loss is best well before epoch 12
SPEC = "%%model km --seed 0\ninput 64\ndense 128 relu\ndense 10 softmax\noptimizer adam lr=0.02"


@pytest.fixture
def km(ip):
    ip.run_cell(SETUP).raise_error()
    ip.run_cell(SPEC).raise_error()
    return ip


def test_a_full_run_with_early_stop_reports_the_restored_epoch(km, run, capsys):
    h = run("%fit km xt yt --val xv yv -e 12 --early-stop 20 -b 16 --seed 0 --text")
    out = capsys.readouterr().out
    losses = h.history["val_loss"]
    assert len(losses) == 12                      # never stopped early
    best = int(np.argmin(losses)) + 1
    assert best < 12, "the test needs a run whose best epoch is not its last"
    model = km.user_ns["km"]
    held = model.evaluate(km.user_ns["xv"], km.user_ns["yv"], verbose=0, return_dict=True)
    # Keras restored epoch `best`: the model's weights score that epoch's val_loss
    assert held["loss"] == pytest.approx(losses[best - 1], rel=1e-5)
    assert f"completed 12 epochs: the model holds the weights of epoch {best}" in out
    (recorded,) = nbkeras.runs("km")
    assert recorded["kept_epoch"] == best
    assert recorded["kept"]["val_loss"] == pytest.approx(held["loss"], rel=1e-5)
    assert recorded["kept"]["val_accuracy"] == pytest.approx(held["accuracy"], rel=1e-5)
    assert recorded["last"]["val_loss"] == pytest.approx(losses[-1], rel=1e-6)


def test_models_and_compare_show_what_the_model_holds(km, run):
    h = run("%fit km xt yt --val xv yv -e 12 --early-stop 20 -b 16 --seed 0 --quiet")
    accuracy = h.history["val_accuracy"]
    best = int(np.argmin(h.history["val_loss"])) + 1
    run("%fit km xt yt --val xv yv -e 2 -b 16 --seed 0 --quiet")  # a plain second run
    view = run("%models km")
    runs = view.tables[1]
    first = dict(zip(runs.columns, runs.rows[1]))  # newest first: the early-stop run is 2nd
    assert first["metric"] == "val_accuracy"
    assert first["result"].startswith(nbkeras.fmt.fmt(accuracy[best - 1]))
    assert f"(epoch {best}; last {nbkeras.fmt.fmt(accuracy[-1])})" in first["result"]
    plain = dict(zip(runs.columns, runs.rows[0]))
    assert "last" not in plain["result"]           # the last epoch is named only where it differs
    ids = [r["id"] for r in nbkeras.runs("km")][::-1]
    table = run(f"%models --compare {ids[0]} {ids[1]}").tables[1]
    rows = {(m, kind): values for m, kind, values, _ in table.rows}
    assert rows["val_accuracy", "result"][0] == pytest.approx(accuracy[best - 1])
    assert rows["val_accuracy", "last epoch"][0] == pytest.approx(accuracy[-1])


def test_cv_folds_score_the_weights_each_fold_keeps(km, run):
    """Fold rows, mean/std and the registry's group agree, watch val_loss, and
    equal a plain Keras fit of the same fold (scikit-learn's folds)."""
    import keras
    from sklearn.model_selection import StratifiedKFold

    ns = km.user_ns
    w0 = ns["km"].get_weights()
    frame = run("%fit km xt yt --cv 3 -e 8 --early-stop 20 -b 16 --seed 0 --quiet")
    folds = frame.drop(index=["mean", "std"])
    recorded = sorted(nbkeras.runs("km"), key=lambda r: r["options"]["fold"])
    assert [r["options"]["watch"] for r in recorded] == ["val_loss"] * 3  # not `loss`
    for (k, row), rec in zip(folds.iterrows(), recorded):
        held = rec.get("kept") or rec["last"]
        assert row["val_loss"] == pytest.approx(held["val_loss"], rel=1e-6)
        history = [e["val_loss"] for e in rec["epochs"]]
        assert row["val_loss"] == pytest.approx(min(history), rel=1e-6)
    assert frame.loc["mean", "val_loss"] == pytest.approx(folds["val_loss"].mean())
    assert frame.loc["std", "val_loss"] == pytest.approx(folds["val_loss"].std(ddof=1))

    # oracle: fold 1 in plain Keras, from the same weights, folds and seed
    train, held = next(iter(StratifiedKFold(3).split(ns["yt"], ns["yt"])))
    model = keras.models.clone_model(ns["km"])
    model.set_weights(w0)
    model.compile_from_config(ns["km"].get_compile_config())
    keras.utils.set_random_seed(0)
    model.fit(ns["xt"][train], ns["yt"][train], validation_data=(ns["xt"][held], ns["yt"][held]),
              epochs=8, batch_size=16, verbose=0,
              callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=20,
                                                       restore_best_weights=True)])
    ref = model.evaluate(ns["xt"][held], ns["yt"][held], verbose=0, return_dict=True)
    assert folds.loc[1, "val_loss"] == pytest.approx(ref["loss"], rel=1e-4)
    assert folds.loc[1, "val_accuracy"] == pytest.approx(ref["accuracy"], rel=1e-4)


def test_cv_reduce_lr_watches_the_folds_validation_loss(km, run):
    run("%fit km xt yt --cv 2 -e 2 --reduce-lr 1 -b 32 --quiet")
    assert {r["options"]["watch"] for r in nbkeras.runs("km")} == {"val_loss"}


def test_an_early_stop_records_the_kept_epoch(km, run):
    h = run("%fit km xt yt --val xv yv -e 40 --early-stop 2 -b 16 --seed 0 --quiet")
    losses = h.history["val_loss"]
    assert len(losses) < 40
    best = int(np.argmin(losses)) + 1
    (recorded,) = nbkeras.runs("km")
    assert recorded["kept_epoch"] == best
    held = km.user_ns["km"].evaluate(km.user_ns["xv"], km.user_ns["yv"], verbose=0,
                                     return_dict=True)
    assert recorded["kept"]["val_loss"] == pytest.approx(held["loss"], rel=1e-5)
