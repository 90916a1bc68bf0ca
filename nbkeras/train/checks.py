"""Input checks that run before the first training step.

Keras reports a shape mismatch from deep inside a traced function, after
compilation, with a long traceback. These checks compare the data with the
model first (input and output shapes, sample counts, label range against
output units, NaN or infinite values, empty arrays) and raise a short
`DataError` that names the argument, the expected and the received value,
and the fix. They also settle a softmax output's cross-entropy that
`%%model` left open (sparse or one-hot labels), recompiling if needed.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import DataError, did_you_mean


# -- normalizing ----------------------------------------------------------------
def is_dataset(value: Any) -> bool:
    """A tf.data.Dataset, a Keras PyDataset, a generator or another batch iterable."""
    if hasattr(value, "element_spec"):
        return True
    cls = [c.__name__ for c in type(value).__mro__]
    if "PyDataset" in cls or "DataLoader" in cls or "Sequence" in cls:
        return True
    return hasattr(value, "__next__")


def to_arrays(value: Any, label: str):
    """pandas, lists and dicts of arrays -> NumPy arrays (same nesting)."""
    if value is None or is_dataset(value):
        return value
    module = type(value).__module__ or ""
    if module.startswith("pandas"):
        if hasattr(value, "columns"):
            bad = [str(c) for c, t in value.dtypes.items() if t.kind not in "biufc"]
            if bad:
                raise DataError(f"{label} has non-numeric columns {', '.join(bad[:5])}: "
                                "encode them (e.g. `pd.get_dummies`) or drop them")
        return value.to_numpy()
    if isinstance(value, dict):
        return {k: to_arrays(v, f"{label}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(hasattr(v, "shape") or isinstance(v, dict) for v in value):
            return [to_arrays(v, f"{label}[{i}]") for i, v in enumerate(value)]
        return _as_array(value, label)
    if hasattr(value, "shape") and not isinstance(value, np.ndarray):
        try:  # a backend tensor: keep it, Keras takes it as is
            return np.asarray(value)
        except Exception:
            return value
    return _as_array(value, label)


def _as_array(value: Any, label: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception:
        arr = None
    if arr is None or arr.dtype == object or arr.ndim == 0:
        raise DataError(f"{label} is a {type(value).__name__}, not an array: pass a NumPy "
                        "array, a list or dict of arrays, a DataFrame or a dataset")
    return arr


def _flat(value: Any, label: str) -> List[tuple]:
    """(label, array) pairs of a normalized value."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [(f"{label}[{k!r}]", v) for k, v in value.items()]
    if isinstance(value, list):
        return [(f"{label}[{i}]", v) for i, v in enumerate(value)]
    return [(label, value)]


def shape_str(shape: Sequence) -> str:
    dims = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


# -- model facts ---------------------------------------------------------------
def input_specs(model) -> Optional[List[tuple]]:
    """[(name, shape without batch)] or None when the model is not built yet."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    return [(getattr(t, "name", f"input_{i}"), tuple(t.shape[1:])) for i, t in enumerate(inputs)]


def output_specs(model) -> Optional[List[tuple]]:
    """[(output name, shape without batch)] or None when not built."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs:
        return None
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != len(outputs):
        names = [model.layers[-1].name] if len(outputs) == 1 else [
            getattr(t, "name", f"output_{i}") for i, t in enumerate(outputs)]
    return [(n, tuple(t.shape[1:])) for n, t in zip(names, outputs)]


def loss_name(loss: Any) -> str:
    """A loss identifier, object or function as a snake_case name ('' if unknown)."""
    if loss is None:
        return ""
    if isinstance(loss, str):
        return loss.lower()
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) \
        or type(loss).__name__
    out = []
    for i, ch in enumerate(str(name)):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def output_losses(model, names: List[str]) -> Dict[str, str]:
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict) or hasattr(loss, "keys"):
        return {n: loss_name(loss.get(n)) for n in names}
    if isinstance(loss, (list, tuple)) and len(loss) == len(names):
        return {n: loss_name(l) for n, l in zip(names, loss)}
    return {n: loss_name(loss) for n in names}


# -- the checks ----------------------------------------------------------------
def _match(expected: tuple, received: tuple) -> bool:
    if len(expected) != len(received):
        return expected == (1,) and received == ()
    return all(e is None or e == r for e, r in zip(expected, received))


def _shape_hint(label: str, expected: tuple, received: tuple) -> str:
    known = all(d is not None for d in expected)
    if known and received and math.prod(expected) == math.prod(received):
        if len(expected) == 1:
            return f"add `flatten` first in the model or reshape: `{label}.reshape(len({label}), -1)`"
        return f"reshape: `{label}.reshape(-1, *{expected})`"
    if len(received) + 1 == len(expected) and expected[-1] == 1:
        return f"add a channel axis: `{label}[..., None]`"
    return f"give the model the input shape {shape_str(received)} or reshape the data"


def _split(value, specs: List[tuple], label: str, what: str) -> Dict[str, Any]:
    """Map a normalized value onto model inputs/outputs by name."""
    names = [n for n, _ in specs]
    if isinstance(value, dict):
        extra = [k for k in value if k not in names]
        if extra:
            raise DataError(f"{label} has key {extra[0]!r} but the model's {what}s are "
                            f"{', '.join(map(repr, names))}{did_you_mean(str(extra[0]), names)}")
        missing = [n for n in names if n not in value]
        if missing:
            raise DataError(f"{label} has no key {missing[0]!r}: the model's {what}s are "
                            f"{', '.join(map(repr, names))}")
        return dict(value)
    if isinstance(value, list):
        if len(value) != len(names):
            raise DataError(f"{label} has {len(value)} arrays but the model has {len(names)} "
                            f"{what}s ({', '.join(map(repr, names))}): pass one per {what}")
        return dict(zip(names, value))
    if len(names) != 1:
        raise DataError(f"{label} is one array but the model has {len(names)} {what}s "
                        f"({', '.join(map(repr, names))}): pass a list or a dict keyed by name")
    return {names[0]: value}


def check_values(label: str, arr) -> None:
    """Empty arrays and NaN/inf values."""
    if not hasattr(arr, "shape"):
        return
    if arr.ndim == 0 or arr.shape[0] == 0 or arr.size == 0:
        raise DataError(f"{label} is empty (shape {tuple(arr.shape)}): check the slice or "
                        "the loading step")
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "fc":
        if not np.isfinite(np.sum(arr, dtype=np.complex128 if arr.dtype.kind == "c"
                                  else np.float64)):
            bad = ~np.isfinite(arr)
            count = int(bad.sum())
            if count:
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                kind = "NaN" if np.isnan(arr[where]) else "infinite"
                raise DataError(f"{label} holds {count} NaN or infinite values (first: {kind} at "
                                f"index {where}): fill or drop them, e.g. `np.nan_to_num({label})`")


def check_counts(pairs: List[tuple]) -> None:
    """The same number of samples in every array."""
    first = None
    for label, arr in pairs:
        if not hasattr(arr, "shape") or not arr.shape:
            continue
        if first is None:
            first = (label, arr.shape[0])
        elif arr.shape[0] != first[1]:
            raise DataError(f"{first[0]} has {first[1]} samples but {label} has {arr.shape[0]}: "
                            "pass the same samples to both")


def check_inputs(model, x, label: str) -> None:
    specs = input_specs(model)
    if specs is None or x is None or is_dataset(x):
        return
    by_name = _split(x, specs, label, "input")
    multi = len(specs) > 1
    for (name, expected) in specs:
        arr = by_name[name]
        sub = f"{label}[{name!r}]" if multi and isinstance(x, dict) else (
            f"{label}[{[n for n, _ in specs].index(name)}]" if multi else label)
        received = tuple(arr.shape[1:])
        if not _match(expected, received):
            which = f" {name!r}" if multi else ""
            raise DataError(f"{sub} has shape {tuple(arr.shape)} but the model's input{which} is "
                            f"{shape_str(expected)}: {_shape_hint(sub, expected, received)}")


def _looks_one_hot(arr: np.ndarray, units: int) -> bool:
    if arr.ndim < 2 or arr.shape[-1] != units or units < 2:
        return False
    head = arr[:1000]
    return bool(np.all((head == 0) | (head == 1)) and np.all(head.sum(axis=-1) == 1))


def check_targets(model, y, label: str, info=None,
                  settled: Optional[Dict[str, str]] = None) -> List[str]:
    """Output shapes and label ranges; decides deferred softmax losses.

    Changes nothing: the losses chosen from the labels are added to
    `settled` (output name -> loss), for `settle_losses` to apply once every
    check has passed.

    Returns:
        The losses chosen from the labels, as one-line notes.
    """
    specs = output_specs(model)
    if specs is None or y is None:
        return []
    by_name = _split(y, specs, label, "output")
    losses = output_losses(model, [n for n, _ in specs])
    deferred = dict(getattr(info, "deferred_losses", {}) or {})
    settled = {} if settled is None else settled
    notes: List[str] = []
    multi = len(specs) > 1
    for name, shape in specs:
        arr = by_name[name]
        sub = f"{label}[{name!r}]" if multi else label
        where = f"output {name!r}"
        units = shape[-1] if shape else 1
        loss = losses.get(name, "")
        if name in settled:
            loss = settled[name]
        elif name in deferred and units and units > 1 and loss == _nbkeras_loss(info, name):
            one_hot = _looks_one_hot(arr, units)
            loss = settled[name] = ("categorical_crossentropy" if one_hot
                                    else "sparse_categorical_crossentropy")
            kind = "one-hot" if one_hot else "class indices"
            notes.append(f"{label} holds {kind}: using {loss} for output {name!r}")
        if "sparse_categorical" in loss:
            _check_class_indices(sub, arr, shape, units, where, loss)
        elif "categorical_crossentropy" in loss or loss == "categorical_focal_crossentropy":
            if arr.ndim == len(shape) and units and units > 1:
                raise DataError(f"{sub} holds class indices (shape {tuple(arr.shape)}) but the loss "
                                f"is {loss}, which expects one-hot rows of {units}: use "
                                f"`sparse_categorical_crossentropy` or "
                                f"`keras.utils.to_categorical({sub}, {units})`")
            _check_shape(sub, arr, shape, where)
        elif "binary" in loss and arr.dtype.kind in "biuf":
            _check_shape(sub, arr, shape, where)
            lo, hi = float(np.min(arr)), float(np.max(arr))
            if lo < 0 or hi > 1:
                raise DataError(f"{sub} has values from {lo:g} to {hi:g} but {loss} expects "
                                "labels between 0 and 1: use a softmax output with "
                                "`sparse_categorical_crossentropy` for classes, or rescale")
        else:
            _check_shape(sub, arr, shape, where)
    return notes


def _check_shape(label: str, arr, shape: tuple, where: str) -> None:
    received = tuple(arr.shape[1:])
    if not _match(shape, received):
        raise DataError(f"{label} has shape {tuple(arr.shape)} but the model's {where} is "
                        f"{shape_str(shape)}: change the output layer's units or reshape the labels")


def _check_class_indices(label, arr, shape, units, where, loss) -> None:
    if arr.ndim == len(shape) + 1 and arr.shape[-1] == units and _looks_one_hot(arr, units):
        raise DataError(f"{label} is one-hot (shape {tuple(arr.shape)}) but the loss is {loss}: "
                        f"use `categorical_crossentropy` or pass `{label}.argmax(-1)`")
    received = tuple(arr.shape[1:])
    if received not in (tuple(shape[:-1]), tuple(shape[:-1]) + (1,)):
        raise DataError(f"{label} has shape {tuple(arr.shape)} but {loss} on the {where} "
                        f"{shape_str(shape)} expects one class index per sample: shape "
                        f"{shape_str(('n',) + tuple(shape[:-1]))}")
    if arr.dtype.kind not in "biuf" or units is None:
        return
    lo, hi = np.min(arr), np.max(arr)
    if arr.dtype.kind == "f" and not np.all(np.mod(arr[:10000], 1) == 0):
        raise DataError(f"{label} holds non-integer values but {loss} expects class indices "
                        f"0 to {units - 1}: pass integer labels")
    if lo < 0 or hi >= units:
        raise DataError(f"{label} has labels from {lo:g} to {hi:g} but the {where} has {units} "
                        f"units (labels 0 to {units - 1}): give it {int(hi) + 1} units or relabel")


def _nbkeras_loss(info, name: str) -> str:
    """The loss `%%model` compiled output `name` with (a hand-compiled model
    whose loss differs keeps the user's loss)."""
    loss = (getattr(info, "compile_kwargs", None) or {}).get("loss")
    return loss_name(loss.get(name) if isinstance(loss, dict) else loss)


def settle_losses(model, info, settled: Dict[str, str]) -> None:
    """Recompile with the losses chosen from the labels, from the model's own
    current compile configuration: the user's optimizer (the same object),
    metrics and loss weights stay, even when they compiled by hand."""
    if not settled or info is None:
        return
    import keras
    config = model.get_compile_config() or {}
    loss = config.get("loss")
    changed = False
    for name, chosen in settled.items():
        if isinstance(loss, dict):
            changed |= loss.get(name) != chosen
            loss = {**loss, name: chosen}
        else:
            changed |= loss != chosen
            loss = chosen
        info.deferred_losses.pop(name, None)
    if changed:
        config = {**config, "loss": loss}
        optimizer = model.optimizer
        kwargs = keras.saving.deserialize_keras_object(
            {k: v for k, v in config.items() if k != "optimizer"})
        model.compile(optimizer=optimizer, **kwargs)
        if info.compile_kwargs:
            info.compile_kwargs = {**info.compile_kwargs, "loss": loss}


def check_fit_data(model, x, y, x_label: str, y_label: Optional[str], info=None,
                   sample_weight=None, sw_label: str = "sample weight",
                   settled: Optional[Dict[str, str]] = None) -> List[str]:
    """Run every check on one (x, y) pair; return the notes on the losses
    chosen from the labels (added to `settled`, applied later)."""
    pairs = _flat(x, x_label) + _flat(y, y_label or "y") + _flat(sample_weight, sw_label)
    for label, arr in pairs:
        check_values(label, arr)
    check_counts(pairs)
    check_inputs(model, x, x_label)
    return check_targets(model, y, y_label or "y", info, settled)


def n_samples(x) -> Optional[int]:
    """The number of samples (rows) of an array, or of the first array in a list or dict."""
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
    elif isinstance(x, list):
        x = x[0] if x else None
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape else None


def check_split_classes(y, val_split: Optional[float], label: str) -> List[str]:
    """`--val-split` on arrays: Keras validates on the *last* fraction of the rows as
    given, before any shuffling, so labels sorted by class leave classes out of one
    part. A warning naming them (class indices, 1-D integer labels only)."""
    if not val_split or not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "iu":
        return []
    cut = int(math.floor(len(y) * (1.0 - val_split)))
    train, val = set(np.unique(y[:cut]).tolist()), set(np.unique(y[cut:]).tolist())
    if not train or not val or train == val or len(train | val) > 1000:
        return []
    missing = [f"training has no class {_listed(val - train)}"] if val - train else []
    missing += [f"validation has no class {_listed(train - val)}"] if train - val else []
    return [f"warning: --val-split {val_split:g} validates on the last {val_split:.0%} of "
            f"`{label}` as given (Keras splits before shuffling), and {'; '.join(missing)}: "
            "shuffle the arrays first (e.g. with sklearn's train_test_split), or pass --val"]


def _listed(classes) -> str:
    shown = sorted(classes)
    return ", ".join(str(c) for c in shown[:8]) + (", ..." if len(shown) > 8 else "")
