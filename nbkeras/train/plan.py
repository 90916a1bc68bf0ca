"""`%fit` arguments and the notebook's data -> a `FitPlan`.

Everything that can be decided before training is decided here: the
expressions are evaluated in the notebook's namespace, the data checked
(`nbkeras.train.checks`), and each option mapped to what Keras already
provides (callbacks, class weights, initial epoch, steps per execution).
A user's mistake raises `UsageError` or `DataError` before any step.
"""

from __future__ import annotations

import math
import os
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import DataError, UsageError, did_you_mean
from .checks import check_fit_data, check_split_classes, is_dataset, n_samples, to_arrays

SCHEDULES = ("cosine", "exponential", "step")


@dataclass
class FitPlan:
    """Everything one `%fit` run does, decided before anything changes.

    The whole contract between the magic and training: no later stage reads
    the argparse namespace. Building a plan evaluates and checks the data
    and maps every option onto Keras, but changes nothing (no compile, no
    global setting, no registry row): `FitSession` applies it.
    """

    name: str
    x: Any
    y: Any = None
    fit_kwargs: Dict[str, Any] = field(default_factory=dict)
    callbacks: List[Any] = field(default_factory=list)
    epochs: int = 10
    initial_epoch: int = 0
    steps: Optional[int] = None
    step_size: int = 1
    auto_steps: bool = False             # steps per execution chosen at train time (`steps.py`)
    batch_size: int = 32
    notes: List[str] = field(default_factory=list)
    options: Dict[str, Any] = field(default_factory=dict)
    settle: Dict[str, str] = field(default_factory=dict)
    model_settings: Dict[str, Any] = field(default_factory=dict)
    mixed_precision: bool = False
    seed: Optional[int] = None
    early_stop: Optional[int] = None
    monitor: str = "loss"
    mode: str = "min"
    resume: bool = False
    quiet: bool = False
    text: bool = False
    update_interval: Optional[float] = None
    background: bool = False
    class_names: Optional[List[str]] = None  # an image folder's subfolders (`images.py`)
    fine_tune: Any = None  # --fine-tune: the second phase (`finetune.FineTune`)
    devices: Optional[List[str]] = None  # `--devices`: Keras device names ("gpu:0"); None: one device
    batch_split: str = ""                # "batch 256 = 4 × 64" over several devices


def evaluate(shell, expr: str, what: str):
    """Evaluate `expr` in the notebook's namespace; a short error if it fails."""
    try:
        return shell.ev(expr)
    except NameError as exc:
        name = str(exc).split("'")[1] if "'" in str(exc) else expr
        names = [k for k in shell.user_ns if not k.startswith("_")]
        raise UsageError(f"{what} `{expr}`: name {name!r} is not defined"
                            f"{did_you_mean(name, names)}") from None
    except Exception as exc:
        raise DataError(f"{what} `{expr}` could not be evaluated: "
                        f"{type(exc).__name__}: {exc}") from None


def _dataset_steps(x) -> Optional[int]:
    try:
        n = len(x)
        return int(n) if n >= 0 else None
    except Exception:
        pass
    try:
        import tensorflow as tf
        n = int(tf.data.experimental.cardinality(x))
        return n if n >= 0 else None
    except Exception:
        return None


def balanced_class_weight(y, label: str) -> Dict[int, float]:
    """n_samples / (n_classes * count) per class, like scikit-learn's 'balanced'."""
    if isinstance(y, (dict, list)):
        raise UsageError("--class-weight works with a single output; for several outputs "
                            "use --sample-weight")
    y = np.asarray(y)
    labels = y.argmax(-1) if y.ndim >= 2 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
        raise DataError(f"--class-weight balanced needs class labels but {label} holds "
                        "non-integer values")
    classes, counts = np.unique(labels.astype(int), return_counts=True)
    n_classes = int(classes.max()) + 1 if len(classes) else 0
    weights = {c: 1.0 for c in range(n_classes)}
    for c, k in zip(classes, counts):
        weights[int(c)] = float(len(labels) / (len(classes) * k))
    return weights


def _base_lr(model, info) -> float:
    import keras
    if "base_lr" not in info.extra:
        try:
            info.extra["base_lr"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        except Exception as exc:
            raise UsageError(f"--lr-schedule needs an optimizer with a learning rate ({exc})")
    return info.extra["base_lr"]


def lr_schedule(kind: str, base: float, epochs: int, decay: Optional[float],
                step: Optional[int]):
    """A function epoch -> learning rate for `keras.callbacks.LearningRateScheduler`."""
    if kind == "cosine":
        return lambda e, lr=None: base * 0.5 * (1 + math.cos(math.pi * min(e, epochs) / max(epochs, 1)))
    if kind == "exponential":
        rate = 0.9 if decay is None else decay
        return lambda e, lr=None: base * rate ** e
    factor = 0.5 if decay is None else decay
    every = step or max(1, epochs // 3)
    return lambda e, lr=None: base * factor ** (e // every)


def atomic_checkpoint(path: str, monitor: str, mode: str):
    """Keras' own `ModelCheckpoint` (best only, the given monitor and mode),
    made atomic: Keras writes a hidden file beside `path`, which then
    replaces `path` with `os.replace`, so a crash never leaves a half file."""
    import keras

    weights_only = path.endswith(".weights.h5")
    suffix = ".weights.h5" if weights_only else ".keras"
    folder = os.path.dirname(os.path.abspath(path))

    class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
        def __init__(self):
            self.final_path = path
            self.tmp_path = os.path.join(folder, f".nbkeras-{os.getpid()}-{id(self):x}{suffix}")
            super().__init__(self.tmp_path, monitor=monitor, mode=mode, save_best_only=True,
                             save_weights_only=weights_only, verbose=0)

        def on_train_begin(self, logs=None):
            os.makedirs(folder, exist_ok=True)
            super().on_train_begin(logs)

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if os.path.exists(self.tmp_path):
                os.replace(self.tmp_path, self.final_path)

        def on_train_end(self, logs=None):
            super().on_train_end(logs)
            if os.path.exists(self.tmp_path):
                os.unlink(self.tmp_path)

    return AtomicModelCheckpoint()


def _require(package: str, option: str, pip_name: Optional[str] = None) -> None:
    """Refuse an option whose optional package is missing, before training."""
    if importlib.util.find_spec(package) is None:
        raise UsageError(f"{option} needs the `{package}` package: "
                            f"`pip install {pip_name or package}`, then run the cell again")


def _callbacks(args, plan: FitPlan, model, info, has_val: bool) -> None:
    import keras

    from ..metricvocab import direction
    plan.monitor = monitor = args.monitor or ("val_loss" if has_val else "loss")
    # `%tune` decides its objective's direction once (--direction too): every callback uses it
    plan.mode = mode = getattr(args, "direction", None) or direction(monitor, model)
    cbs = plan.callbacks
    if args.lr_schedule and args.reduce_lr is not None:
        raise UsageError("--lr-schedule and --reduce-lr both set the learning rate: use one")
    if args.tensorboard:
        _require("tensorboard", "--tensorboard")
    if args.early_stop is not None:
        from .finetune import early_stopping  # Keras' own, spanning both --fine-tune phases
        cbs.append(early_stopping(monitor=monitor, mode=mode, patience=args.early_stop,
                                  restore_best_weights=True))
    if args.reduce_lr is not None:
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode,
                                                     patience=args.reduce_lr,
                                                     factor=args.lr_decay or 0.1))
    if args.lr_schedule:
        kind = args.lr_schedule.lower()
        if kind not in SCHEDULES:
            raise UsageError(f"--lr-schedule {args.lr_schedule!r} is not one of "
                                f"{', '.join(SCHEDULES)}{did_you_mean(kind, SCHEDULES)}")
        fn = lr_schedule(kind, _base_lr(model, info), plan.epochs, args.lr_decay, args.lr_step)
        cbs.append(keras.callbacks.LearningRateScheduler(fn))
    if args.checkpoint:
        path = args.checkpoint
        if not (path.endswith(".keras") or path.endswith(".weights.h5")):
            raise UsageError(f"--checkpoint {path!r}: the file name must end in `.keras` "
                                "(whole model) or `.weights.h5` (weights only)")
        cbs.append(atomic_checkpoint(path, monitor, mode))
    if args.tensorboard:
        cbs.append(keras.callbacks.TensorBoard(log_dir=args.tensorboard))
    if args.csv:
        cbs.append(keras.callbacks.CSVLogger(args.csv, append=bool(args.resume)))


def _head(data, n: int = 2):
    """The first `n` samples of arrays, or of each array in a list or dict."""
    if isinstance(data, dict):
        return {k: _head(v, n) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_head(v, n) for v in data]
    return data[:n]


def check_monitor(args, model, x, y) -> None:
    """Refuse `--monitor` naming a metric the model does not log.

    The logged names are read from one evaluation on two samples (Keras
    names its metrics only once they are built); weights do not change.
    Datasets are not probed: Keras then warns at the first epoch end.
    """
    if not args.monitor or is_dataset(x) or y is None:
        return
    name = args.monitor[4:] if args.monitor.startswith("val_") else args.monitor
    if name == "loss":
        return
    try:
        logged = list(model.evaluate(_head(x), _head(y), verbose=0, return_dict=True))
    except Exception:
        return  # the data checks passed; Keras itself will say more at the first epoch
    if name in logged:
        return
    has_val = bool(args.val or args.val_split or getattr(args, "cv", None) is not None)
    names = logged + ([f"val_{k}" for k in logged] if has_val else [])
    hint = did_you_mean(args.monitor, names)
    raise UsageError(f"--monitor {args.monitor}: the model does not log `{name}`"
                        f"{hint}; it logs {', '.join(names)}")


def _epochs(args, info):
    if args.epochs is None or args.epochs < 1:
        raise UsageError(f"--epochs {args.epochs}: give at least 1")
    if args.resume:
        start = info.epochs_done
        return start, start + args.epochs
    start = args.initial_epoch or 0
    if args.epochs <= start:
        raise UsageError(f"--epochs {args.epochs} is not past --initial-epoch {start}: "
                            "--epochs is the last epoch's number, as in Keras "
                            f"(e.g. --epochs {start + args.epochs})")
    return start, args.epochs


def _step_size(args, model, steps: Optional[int]) -> int:
    """Steps per call known before training: a number given, or the model's
    own when compiled above 1; `auto` (the default) is 1 until the session
    measures the step (`nbkeras.train.steps`)."""
    spe = args.steps_per_execution
    if spe is None or str(spe).lower() == "auto":
        return int(getattr(model, "steps_per_execution", 1) or 1)
    try:
        n = int(spe)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"--steps-per-execution {spe!r}: give a positive number or `auto`")
    return n


def build_plan(shell, args, model, info, probe_monitor: bool = True) -> FitPlan:
    """Evaluate and check the data, and map every option onto Keras.

    Raises `UsageError` or `DataError` for a user's mistake; changes
    nothing (the model, its compile configuration, the dtype policy and the
    registry stay as they were). `probe_monitor=False` skips the one
    evaluation that checks `--monitor` (`%tune`'s trials: checked once, before
    the first).
    """
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: give at least 1")
    if args.val and args.val_split is not None:
        raise UsageError("give --val or --val-split, not both")
    if args.val_split is not None and not 0 < args.val_split < 1:
        raise UsageError(f"--val-split {args.val_split}: give a fraction between 0 and 1")
    x = evaluate(shell, args.x, "x")
    images = _image_folder(args, model, x)
    x = images.train if images is not None else to_arrays(x, args.x)
    y = to_arrays(evaluate(shell, args.y, "y"), args.y) if args.y else None
    dataset = is_dataset(x)
    if images is not None and y is not None:
        raise UsageError(f"`{args.x}` is a folder of images whose class subfolders are the "
                         f"labels: drop `{args.y}`")
    if dataset and y is not None:
        raise UsageError(f"`{args.x}` is a dataset, which carries its own targets: drop `{args.y}`")
    if not dataset and y is None:
        raise UsageError(f"give the targets: `%fit {args.name} {args.x} Y`")
    if dataset and args.val_split is not None and images is None:
        raise UsageError("--val-split needs arrays; with a dataset pass --val XVAL")
    sw = to_arrays(evaluate(shell, args.sample_weight, "--sample-weight"),
                   args.sample_weight) if args.sample_weight else None

    plan = FitPlan(name=args.name, x=x, y=y, batch_size=args.batch_size,
                   mixed_precision=bool(args.mixed_precision), seed=args.seed,
                   early_stop=args.early_stop, resume=bool(args.resume), quiet=bool(args.quiet),
                   text=bool(args.text), update_interval=args.update_interval,
                   background=bool(getattr(args, "background", False)))
    if images is not None:
        plan.class_names = images.class_names
        plan.notes += [images.note] + images.warnings
    plan.notes += check_fit_data(model, x, y, args.x, args.y, info, sw, args.sample_weight or "",
                                 settled=plan.settle)
    plan.notes += check_pixel_range(info, x, args.x) + check_split_classes(
        y, args.val_split if images is None else None, args.y or "y")
    val = images.val if images is not None else None
    if args.val and images is not None:
        raise UsageError("an image folder is split by --val-split (Keras' subset='both'): "
                         "drop --val, or put the validation images in the same folder")
    if args.val:
        if len(args.val) > 2:
            raise UsageError(f"--val takes XVAL [YVAL], got {len(args.val)} expressions")
        vx = to_arrays(evaluate(shell, args.val[0], "--val"), args.val[0])
        vy = to_arrays(evaluate(shell, args.val[1], "--val"), args.val[1]) if len(args.val) > 1 else None
        if not is_dataset(vx) and vy is None:
            raise UsageError(f"--val {args.val[0]}: give the validation targets too: --val XVAL YVAL")
        plan.notes += check_fit_data(model, vx, vy, args.val[0],
                                     args.val[1] if vy is not None else None, info,
                                     settled=plan.settle)
        val = vx if vy is None else (vx, vy)

    plan.initial_epoch, plan.epochs = _epochs(args, info)
    from .finetune import plan_fine_tune
    plan.fine_tune = plan_fine_tune(args, model, plan.initial_epoch)
    if plan.fine_tune is not None and args.lr_schedule:
        raise UsageError("--lr-schedule sets every epoch's learning rate; the fine-tuning phase "
                         "has its own (--fine-tune-lr): drop one")
    n = n_samples(x)
    if args.steps_per_epoch:
        plan.steps = args.steps_per_epoch
    elif dataset:
        plan.steps = _dataset_steps(x)
    elif n is not None:
        # Keras keeps floor(n * (1 - split)) samples for training
        n_train = int(math.floor(n * (1.0 - args.val_split))) if args.val_split else n
        plan.steps = math.ceil(n_train / args.batch_size)
    plan.step_size = _step_size(args, model, plan.steps)

    kw = plan.fit_kwargs
    kw.update(epochs=plan.epochs, initial_epoch=plan.initial_epoch, verbose=0)
    if plan.fine_tune is not None:  # `fit` trains the head to there; the run goes on after
        plan.epochs = plan.fine_tune.after + plan.fine_tune.epochs
    if dataset:  # a dataset batches and shuffles itself (Keras warns on shuffle=True)
        kw["shuffle"] = False
    else:
        kw.update(batch_size=args.batch_size, shuffle=not args.no_shuffle)
    if y is not None:
        kw["y"] = y
    if val is not None:
        kw["validation_data"] = val
    if args.val_split is not None and images is None:
        kw["validation_split"] = args.val_split
    if sw is not None:
        kw["sample_weight"] = sw
    if args.steps_per_epoch:
        kw["steps_per_epoch"] = args.steps_per_epoch
    if args.class_weight:
        if args.class_weight == "balanced":
            if y is None:
                raise UsageError("--class-weight balanced needs Y; with a dataset give a dict")
            kw["class_weight"] = balanced_class_weight(y, args.y)
        else:
            cw = evaluate(shell, args.class_weight, "--class-weight")
            if not isinstance(cw, dict):
                raise UsageError(f"--class-weight `{args.class_weight}` is a "
                                    f"{type(cw).__name__}: give `balanced` or a dict class -> weight")
            kw["class_weight"] = {int(k): float(v) for k, v in cw.items()}

    if probe_monitor:
        check_monitor(args, model, x, y)
    # --cv gives each fold its held-out part as validation data after this plan:
    # the callbacks watch val_loss there too, as they do with --val
    cv = getattr(args, "cv", None) is not None
    _callbacks(args, plan, model, info, has_val=bool(val is not None or args.val_split or cv))
    _model_settings(args, plan, model)
    from .distribute import plan_devices
    plan_devices(args, plan, info)  # --devices: checked, and on JAX batches that split evenly
    plan.options.update({k: v for k, v in vars(args).items()
                         if isinstance(v, (str, int, float, bool, list, type(None)))})
    # `watch` and `mode`: what every callback of the run watches, and which way is better
    plan.options.update(epochs_planned=plan.epochs, initial_epoch=plan.initial_epoch,
                        watch=plan.monitor, mode=plan.mode)
    if plan.class_names:
        plan.options["class_names"] = plan.class_names  # the registry keeps them with the run
    return plan


def check_pixel_range(info, x, label: str) -> list:
    """A pretrained application that preprocesses its own inputs expects raw 0-255
    pixels: inputs already scaled to 0-1 reach it nearly black (a classic mistake)."""
    import numpy as np
    bases = (info.extra.get("pixel_bases") if info is not None else None) or []
    if not bases or not isinstance(x, np.ndarray) or not x.size or x.dtype.kind not in "fiu":
        return []
    low, high = float(np.nanmin(x)), float(np.nanmax(x))
    if not (high <= 1.0 and low >= -1.0):
        return []
    line, text = bases[0]
    return [f"warning: `{label}` lies in {low:.3g}..{high:.3g}, but `{text}` (line {line}) "
            "applies its application's own preprocessing, which expects raw 0-255 pixels: feed "
            "the pixels unscaled, or write `preprocess=false` on line "
            f"{line} if they are already preprocessed"]


def _image_folder(args, model, value):
    """`%fit NAME "photos/"`: the folder read as datasets (`images.py`), or None."""
    from .images import as_path, read_image_folder
    path = as_path(value)
    if path is None:
        return None
    return read_image_folder(path, model, args.batch_size, args.val_split, args.seed,
                             shuffle=not args.no_shuffle, what=f"`{args.x}`")


def _model_settings(args, plan: FitPlan, model) -> None:
    """--jit, --steps-per-execution: what this run sets on the model (the
    session sets them and restores the old values afterwards). `auto` (the
    default) is decided by the session, unless the model was compiled with
    `steps_per_execution` above 1: that choice stands."""
    spe = args.steps_per_execution
    auto = spe is None or str(spe).lower() == "auto"
    plan.auto_steps = auto and plan.step_size == 1
    if not auto and plan.step_size != model.steps_per_execution:
        plan.model_settings["steps_per_execution"] = plan.step_size
    if args.jit and not model.jit_compile:
        plan.model_settings["jit_compile"] = True


def reset_functions(model) -> None:
    """Make Keras retrace the train/test functions after a setting changed."""
    for attr in ("train_function", "test_function", "predict_function"):
        if hasattr(model, attr):
            setattr(model, attr, None)
