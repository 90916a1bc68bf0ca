"""One vocabulary of metrics, and the Keras internals it reads."""

import pytest

from nbkeras import keras_private
from nbkeras.metricvocab import direction, is_better, output_kind, primary_metric


@pytest.mark.parametrize("name", ["loss", "val_loss", "mae", "val_mae", "mse", "rmse",
                                  "logcosh", "hinge", "kl_divergence", "poisson",
                                  "digit_loss", "val_value_mae", "mean_absolute_error",
                                  "sparse_categorical_crossentropy", "squared_hinge"])
def test_lower_is_better_names(name):
    assert direction(name) == "min"


@pytest.mark.parametrize("name", ["accuracy", "val_accuracy", "auc", "precision", "recall",
                                  "digit_accuracy", "r2_score", "mean_iou"])
def test_higher_is_better_names(name):
    assert direction(name) == "max"


def test_the_models_metric_objects_decide_first():
    import keras
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    m.compile("adam", "mse", metrics=[keras.metrics.RootMeanSquaredError(name="fit_quality"),
                                      keras.metrics.R2Score(name="score_error")])
    import numpy as np
    m.evaluate(np.ones((2, 3), "float32"), np.ones((2, 1), "float32"), verbose=0)  # builds metrics
    assert direction("val_fit_quality", m) == "min"      # the name alone says nothing
    assert direction("val_score_error", m) == "max"      # the object beats the name


def test_keras_still_exposes_what_nbkeras_reads():
    """Fails loudly when a Keras release renames an internal nbkeras relies on."""
    import keras
    assert keras_private.metric_direction(keras.metrics.MeanAbsoluteError()) == "down"
    assert keras_private.metric_direction(keras.metrics.Accuracy()) == "up"
    x = keras.Input((2,))
    layer = keras.layers.Dense(1)
    assert keras_private.producing_layer(layer(x)) is layer
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert hasattr(m, "_eval_epoch_iterator") or "_eval_epoch_iterator" not in dir(m)
    keras_private.clear_eval_iterator(m)


def test_better_and_primary():
    assert is_better(0.1, 0.2, "val_mae") and not is_better(0.1, 0.2, "val_accuracy")
    assert is_better(0.3, 0.2, "x", {"x": "max"})
    assert primary_metric(["loss", "val_loss", "val_accuracy", "learning_rate"]) == "val_accuracy"
    assert primary_metric(["loss", "learning_rate"]) == "loss"


def test_output_kinds():
    import keras
    assert output_kind(keras.layers.Dense(10, activation="softmax")) == "classifier"
    assert output_kind(keras.layers.Dense(1, activation="sigmoid")) == "binary"
    assert output_kind(keras.layers.Dense(5, activation="sigmoid")) == "multilabel"
    assert output_kind(keras.layers.Dense(10), "sparse_categorical_crossentropy") == "logits"
    assert output_kind(keras.layers.Dense(1)) == "regression"
