"""`%fit ... --fine-tune N|all --fine-tune-epochs E [--fine-tune-lr F]`.

The Keras transfer-learning guide's two phases in one run: the head trains
with the base frozen for `-e` epochs; then the top N layers of each frozen
base are unfrozen (BatchNormalization layers stay frozen, and a base built
by nbkeras stays called with `training=False`, so their statistics are
kept), the model is compiled again with the same loss, metrics and
optimizer kind at a tenth of the learning rate (or `--fine-tune-lr`), and
`--fine-tune-epochs` more epochs train. One registry run, one panel (the
phase boundary marked on the curves); the callbacks (`--early-stop`,
`--checkpoint`, `--csv`) see both phases.

A "frozen base" is a model inside the model (a `base` statement of the
spec, or any nested `keras.Model`) whose `trainable` is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Union

from ..errors import UsageError


@dataclass
class FineTune:
    """The plan of the second phase."""

    layers: Union[int, str]  # how many of each base's top layers to unfreeze, or "all"
    epochs: int              # epochs of the second phase
    lr: Optional[float]      # its learning rate (None: a tenth of the first phase's)
    after: int               # the first phase ends after this epoch (1-based)


def early_stopping(**kwargs):
    """Keras' `EarlyStopping`, whose best value, epoch and weights span both phases of
    `--fine-tune`: the second `fit` of the run keeps them (its patience starts again),
    so the model ends with the best epoch of the whole run, also one of the head's."""
    import keras

    class SpanningEarlyStopping(keras.callbacks.EarlyStopping):
        spans_phases = False  # set by the session before the second phase

        def on_train_begin(self, logs=None):
            kept = (self.best, self.best_weights, self.best_epoch) if self.spans_phases else None
            super().on_train_begin(logs)
            if kept is not None and kept[0] is not None:
                self.best, self.best_weights, self.best_epoch = kept

    return SpanningEarlyStopping(**kwargs)


def frozen_bases(model) -> list:
    """The frozen models inside `model` (its frozen bases)."""
    import keras
    return [layer for layer in model.layers
            if isinstance(layer, keras.Model) and not layer.trainable]


def _is_bn(layer) -> bool:
    import keras
    return isinstance(layer, keras.layers.BatchNormalization)


def plan_fine_tune(args, model, initial_epoch: int) -> Optional[FineTune]:
    """The second phase `args` ask for, checked; None without `--fine-tune`."""
    given = getattr(args, "fine_tune", None)
    if given is None:
        if getattr(args, "fine_tune_epochs", None) is not None or getattr(
                args, "fine_tune_lr", None) is not None:
            raise UsageError("--fine-tune-epochs and --fine-tune-lr go with --fine-tune N|all, "
                             "e.g. `--fine-tune 20 --fine-tune-epochs 5`")
        return None
    text = str(given).strip().lower()
    if text == "all":
        layers: Union[int, str] = "all"
    elif text.isdigit() and int(text) > 0:
        layers = int(text)
    else:
        raise UsageError(f"--fine-tune {given}: give how many of the base's top layers to "
                         "unfreeze (e.g. `--fine-tune 20`) or `all`")
    if not frozen_bases(model):
        raise UsageError(f"`{args.name}` has no frozen base to fine-tune: --fine-tune unfreezes "
                         "the top layers of a `base` statement's model (frozen by default)")
    epochs = args.fine_tune_epochs if args.fine_tune_epochs is not None else args.epochs
    if epochs < 1:
        raise UsageError(f"--fine-tune-epochs {epochs}: give at least 1")
    if args.fine_tune_lr is not None and not args.fine_tune_lr > 0:
        raise UsageError(f"--fine-tune-lr {args.fine_tune_lr}: give a positive learning rate")
    if getattr(args, "cv", None) is not None:
        raise UsageError("--fine-tune trains one run in two phases: drop --cv")
    return FineTune(layers=layers, epochs=epochs, lr=args.fine_tune_lr,
                    after=initial_epoch + args.epochs)


def unfreeze(model, layers: Union[int, str]) -> List[str]:
    """Unfreeze the top `layers` non-BatchNormalization layers of each frozen
    base (all of them for "all"); returns the unfrozen layers' names."""
    unfrozen = []
    for base in frozen_bases(model):
        base.trainable = True
        candidates = [l for l in base.layers if not _is_bn(l) and l.__class__.__name__ != "InputLayer"]
        top = candidates if layers == "all" else candidates[-int(layers):]
        keep = {id(l) for l in top}
        for layer in base.layers:
            layer.trainable = id(layer) in keep
        unfrozen += [l.name for l in top]
    return unfrozen


def recompile(model, lr: Optional[float]) -> float:
    """Compile `model` again as it was (loss, metrics, per-run settings), with
    a new optimizer of the same kind at `lr` (default: a tenth of the current
    one); returns the learning rate."""
    import keras
    old = model.optimizer
    current = old.learning_rate
    if isinstance(current, keras.optimizers.schedules.LearningRateSchedule):
        current = current(old.iterations)
    new_lr = float(lr) if lr is not None else float(current) / 10.0
    config = model.get_compile_config()
    opt_config = old.get_config()
    opt_config["learning_rate"] = new_lr
    config["optimizer"] = keras.optimizers.serialize(type(old).from_config(opt_config))
    jit, spe = model.jit_compile, getattr(model, "steps_per_execution", 1)
    model.compile_from_config(config)
    model.jit_compile = jit
    if spe:
        model.steps_per_execution = spe
    return new_lr
