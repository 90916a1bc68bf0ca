"""The one vocabulary of metrics: which direction is better, which metric
judges a run, and what kind of output a layer is.

Used by `%fit` (checkpoint, early stopping, the live view), the registry
(best values), `%evaluate`, `%models` and the server (which sends each
metric's direction with a run, so the sidebar keeps no list of its own).

Direction: the compiled model's own Keras metric objects are asked first,
as Keras' `EarlyStopping` does; names decide otherwise. Imports no Keras
at module level: the registry and the server use the name rules alone.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, Optional

# Names (after `val_` and any output prefix) whose smaller values are better:
# losses, errors, and the counts of mistakes (`false_negatives`, which Keras
# gives no direction of its own).
_LOWER = re.compile(
    r"(^|_)(loss|mae|mse|rmse|mape|msle|logcosh|log_cosh|hinge|squared_hinge|"
    r"categorical_hinge|kl_divergence|kld|kullback_leibler_divergence|poisson|"
    r"crossentropy|error|false_negatives|false_positives)$"
    r"|error|_loss$|crossentropy")
NOT_SCORES = ("learning_rate", "lr", "epoch")


def base_name(metric: str) -> str:
    """`metric` without its `val_` prefix (train and val share a family)."""
    return metric[4:] if metric.startswith("val_") else metric


def _keras_direction(model: Any, name: str) -> Optional[str]:
    """'min' or 'max' from the model's compiled Keras metric objects, or None.

    Keras has no public API for a metric's direction: its metrics carry a
    private `_direction` ('up' or 'down'), which `EarlyStopping` reads too,
    read through `nbkeras.keras_private.metric_direction`.
    """
    if model is None:
        return None
    for metric in keras_metric_objects(model):
        if getattr(metric, "name", None) != name:
            continue
        from .keras_private import metric_direction
        direction = metric_direction(metric)
        if direction == "up":
            return "max"
        if direction == "down":
            return "min"
    return None


def keras_metric_objects(model: Any) -> list:
    """The model's metric objects, those inside Keras' compile containers too."""
    out = []
    for metric in getattr(model, "metrics", None) or []:
        inner = getattr(metric, "metrics", None)
        if isinstance(inner, (list, tuple)) and inner:
            out.extend(inner)
        else:
            out.append(metric)
    return out


def direction(metric: str, model: Any = None) -> str:
    """'min' when smaller values of `metric` are better, else 'max'.

    Args:
        metric: a history key (`loss`, `val_mae`, `digit_accuracy`).
        model: the compiled Keras model, asked first when given.
    """
    name = base_name(metric)
    if name == "loss" or name.endswith("_loss"):
        return "min"
    found = _keras_direction(model, name)
    if found is None and model is not None and "_" in name:
        # several outputs: Keras logs `digit_accuracy` for the metric `accuracy`
        for metric_obj in keras_metric_objects(model):
            short = getattr(metric_obj, "name", "")
            if short and name.endswith("_" + short):
                found = _keras_direction(model, short)
                if found:
                    break
    if found is not None:
        return found
    return "min" if _LOWER.search(name.lower()) else "max"


def lower_is_better(metric: str, model: Any = None) -> bool:
    """Whether smaller values of `metric` are better."""
    return direction(metric, model) == "min"


def directions(keys: Iterable[str], model: Any = None) -> Dict[str, str]:
    """{key: 'min' | 'max'} for every score among `keys`."""
    return {k: direction(k, model) for k in keys if is_score(k)}


def is_score(metric: str) -> bool:
    """Whether `metric` is a score (not the learning rate or the epoch)."""
    return base_name(metric) not in NOT_SCORES


def is_better(value: float, old: Optional[float], metric: str,
              dirs: Optional[Dict[str, str]] = None) -> bool:
    """Whether `value` beats `old` for `metric` (known `dirs` first)."""
    if old is None:
        return True
    mode = (dirs or {}).get(metric) or direction(metric)
    return value < old if mode == "min" else value > old


def primary_metric(keys: Iterable[str]) -> Optional[str]:
    """The metric a run is judged by: a validation accuracy-like metric, else
    the validation loss, else any validation metric, else the accuracy, else
    the loss."""
    keys = [k for k in keys if is_score(k)]
    for test in (lambda k: k.startswith("val_") and "acc" in k,
                 lambda k: k == "val_loss",
                 lambda k: k.startswith("val_"),
                 lambda k: "acc" in k,
                 lambda k: k == "loss"):
        found = [k for k in keys if test(k)]
        if found:
            return found[0]
    return keys[0] if keys else None


def output_kind(layer: Any, loss: Any = None) -> str:
    """What a model's output layer is: 'classifier' (softmax), 'binary' (one
    sigmoid unit), 'multilabel' (several sigmoid units), 'logits' (a linear
    output under a cross-entropy loss) or 'regression'."""
    act = getattr(layer, "activation", None)
    name = (getattr(act, "__name__", "") or type(act).__name__).lower()
    units = getattr(layer, "units", None)
    if units is None:
        shape = getattr(getattr(layer, "output", None), "shape", None)
        units = shape[-1] if shape else None
    if "softmax" in name:
        return "classifier"
    if "sigmoid" in name:
        return "binary" if units in (1, None) else "multilabel"
    loss_name = (loss if isinstance(loss, str) else
                 getattr(loss, "name", None) or getattr(loss, "__name__", "") or "")
    if "crossentropy" in str(loss_name).lower():
        return "logits"
    return "regression"
