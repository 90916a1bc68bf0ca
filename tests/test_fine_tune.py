"""`%fit ... --fine-tune N|all --fine-tune-epochs E [--fine-tune-lr F]`: the
head with the base frozen, then the base's top layers unfrozen, in one run
(issue 20). The oracle is plain Keras doing the guide's two phases from the
same initial weights."""

import numpy as np
import pytest

import nbkeras
from nbkeras.errors import UsageError

ARGS = "x y -e 2 -b 16 --no-shuffle --steps-per-execution 1 --quiet"


def _model(keras, weights=None):
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.BatchNormalization(),
                             keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(8, activation="relu")], name="base")
    base.trainable = False
    inputs = keras.Input((6,))
    out = keras.layers.Dense(3, activation="softmax")(base(inputs, training=False))
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights)
    return model


@pytest.fixture
def tuned(ip):
    import keras
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    ip.user_ns.update(x=x, y=(x[:, 0] > 0).astype("int64") + (x[:, 1] > 0))
    ip.user_ns["m"] = _model(keras)
    return ip


def _bn_stats(model):
    base = model.get_layer("base")
    bn = [l for l in base.layers if "batch_normalization" in l.name][0]
    return [np.array(v) for v in (bn.moving_mean, bn.moving_variance)]


def test_the_head_trains_with_the_base_frozen_then_the_top_layers_fine_tune(tuned, capsys):
    import keras
    model = tuned.user_ns["m"]
    start = [w.copy() for w in model.get_weights()]
    base_before = [np.array(w) for w in model.get_layer("base").weights]
    stats = _bn_stats(model)
    tuned.run_line_magic("fit", f"m {ARGS} --fine-tune 2 --fine-tune-epochs 2")
    out = capsys.readouterr().out
    # the unfrozen layers are the top 2 non-BatchNormalization layers of the base
    base = model.get_layer("base")
    assert [l.name for l in base.layers if l.trainable] == [base.layers[2].name,
                                                            base.layers[3].name]
    assert not base.layers[1].trainable and not base.layers[0].trainable
    assert "fine-tuning from epoch 3: 2 layers of the base unfrozen" in out
    # BatchNormalization's statistics never moved (frozen and called with training=False)
    for a, b in zip(stats, _bn_stats(model)):
        np.testing.assert_array_equal(a, b)
    # the learning rate of phase 2 is a tenth of the head's
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
    # one run of four epochs
    run = nbkeras.runs("m")[0]
    assert run["status"] == "completed" and len(run["epochs"]) == 4
    # the oracle: plain Keras, the guide's two phases from the same weights
    plain = _model(keras, start)
    x, y = tuned.user_ns["x"], tuned.user_ns["y"]
    plain.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_array_equal(  # the frozen base, bit-identical after the head
        np.concatenate([np.ravel(w) for w in base_before]),
        np.concatenate([np.ravel(np.array(w)) for w in plain.get_layer("base").weights]))
    pbase = plain.get_layer("base")
    pbase.trainable = True
    for layer in pbase.layers[:2]:
        layer.trainable = False
    plain.compile(keras.optimizers.Adam(0.001), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    h = plain.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, shuffle=False, verbose=0)
    assert run["epochs"][-1]["loss"] == pytest.approx(h.history["loss"][-1], rel=1e-5)
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_head_phase_leaves_the_base_bit_identical(tuned):
    model = tuned.user_ns["m"]
    before = [np.array(w) for w in model.get_layer("base").weights]
    tuned.run_line_magic("fit", f"m {ARGS}")  # no --fine-tune: only the head trains
    for a, b in zip(before, model.get_layer("base").weights):
        np.testing.assert_array_equal(a, np.array(b))


def test_fine_tune_all_and_its_own_learning_rate(tuned):
    tuned.run_line_magic("fit", f"m {ARGS} --fine-tune all --fine-tune-epochs 1 "
                                "--fine-tune-lr 3e-4")
    model = tuned.user_ns["m"]
    base = model.get_layer("base")
    assert [type(l).__name__ for l in base.layers if not l.trainable] == ["BatchNormalization"]
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-4)
    assert len(nbkeras.runs("m")[0]["epochs"]) == 3


def test_the_phase_boundary_is_marked_on_the_curves():
    from nbkeras.view.chart import chart_svg
    from nbkeras.view.progress import RunState
    state = RunState(name="m", epochs=4, history={"loss": [1.0, 0.8, 0.7, 0.5]}, epoch=4)
    state.phases.append(2)
    svg = chart_svg(state)
    assert svg.count('class="phase"') == 1 and "fine-tuning from epoch 3" in svg


def test_bad_fine_tune_lines_say_what_to_give(tuned, ip):
    with pytest.raises(UsageError, match="give how many of the base's top layers"):
        tuned.run_line_magic("fit", f"m {ARGS} --fine-tune some")
    with pytest.raises(UsageError, match="go with --fine-tune N"):
        tuned.run_line_magic("fit", f"m {ARGS} --fine-tune-epochs 2")
    with pytest.raises(UsageError, match="its own \\(--fine-tune-lr\\)"):
        tuned.run_line_magic("fit", f"m {ARGS} --fine-tune 1 --lr-schedule cosine")
    ip.run_cell_magic("model", "flat", "input 6\ndense 3 softmax")
    with pytest.raises(UsageError, match="has no frozen base to fine-tune"):
        ip.run_line_magic("fit", f"flat {ARGS} --fine-tune 2")
    with pytest.raises(UsageError, match="drop --fine-tune"):
        tuned.run_line_magic("fit", f"m {ARGS} --fine-tune 2 --code")


def test_early_stopping_spans_both_phases(tuned):
    """A fine-tuning phase that only makes things worse (a huge learning rate) ends
    with the head's best epoch restored, as one EarlyStopping over the whole run
    would; Keras' own, reset by the second `fit`, would keep a worse phase-2 epoch."""
    model = tuned.user_ns["m"]
    history = tuned.run_line_magic("fit", f"m {ARGS} -e 4 --val-split 0.25 --early-stop 2 "
                                          "--fine-tune all --fine-tune-epochs 3 "
                                          "--fine-tune-lr 5.0")
    losses = history.history["val_loss"]
    best = int(np.argmin(losses))
    assert best < 4, losses  # the head's phase held the best epoch
    x, y = tuned.user_ns["x"], tuned.user_ns["y"]
    held = model.evaluate(x[48:], y[48:], verbose=0, return_dict=True)["loss"]
    assert abs(held - losses[best]) < 1e-4, (held, losses)
