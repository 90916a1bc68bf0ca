"""The only places nbkeras reads Keras internals, each where Keras has no
public API for it. `tests/test_keras_private.py` fails loudly when a Keras
release changes one of them.
"""

from __future__ import annotations

from typing import Any, Optional


def metric_direction(metric: Any) -> Optional[str]:
    """'up' or 'down' for a Keras metric object (as `EarlyStopping` reads it), or None."""
    direction = getattr(metric, "_direction", None)
    return direction if direction in ("up", "down") else None


def producing_layer(tensor: Any):
    """The layer whose call produced a symbolic Keras tensor."""
    return tensor._keras_history[0]


def clear_eval_iterator(model: Any) -> None:
    """Drop the validation iterator Keras leaves on the model when `fit` raises
    (a later `evaluate` would otherwise reuse the dead one)."""
    if getattr(model, "_eval_epoch_iterator", None) is not None:
        model._eval_epoch_iterator = None


def loss_and_metrics_built(model: Any) -> bool:
    """Whether `model`'s compiled loss and metrics are built (`fit` on JAX
    builds them otherwise from one batch of a shuffled pass, which draws a
    shuffle of its own)."""
    return all(getattr(getattr(model, part, None), "built", True)
               for part in ("_compile_loss", "_compile_metrics"))


def mirrored_strategy(devices, key_base: int):
    """A `tf.distribute.MirroredStrategy` over `devices` whose collective
    group keys start at `key_base + 1`.

    TensorFlow numbers the device groups of each strategy's all-reduce from
    1, in one table per process: a second strategy over a different number
    of devices joins group 1 with another size, the collective fails
    (`InternalError: ... joining a group with size4, but that group has
    size 2`) and is aborted for every later one. TensorFlow's own tests
    keep strategies apart with the class attribute `_collective_key_base`,
    read when a strategy is made; a subclass sets it per strategy.
    """
    import tensorflow as tf
    cls = type("MirroredStrategy", (tf.distribute.MirroredStrategy,),
               {"_collective_key_base": int(key_base)})
    return cls(list(devices))
