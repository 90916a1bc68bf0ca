"""`--devices`: data-parallel training through Keras' own distribution support.

Nothing here splits batches or averages gradients: on JAX a run trains
under `keras.distribution.DataParallel` (each batch sharded over the
devices, the variables replicated), on TensorFlow under
`tf.distribute.MirroredStrategy`. Both want the model's variables created
in the distribution, so a model built for one device is rebuilt from its
own config there, with its weights and compile settings (the optimizer
starts afresh, as after `--mixed-precision`), and bound to the same name.
`%%model NAME --devices ...` builds there directly. Keras offers no
data-parallel training on the torch backend: `--devices` is refused there.

`--batch-size` stays the global batch: each step splits it into equal
per-device batches ("batch 256 = 4 × 64"). JAX shards every batch evenly,
the last one too, so on JAX a few trailing samples (fewer than the number
of devices, of the training and of the validation samples each; with
`--val-split` after splitting exactly as Keras does) may be left out, which
a note says.

Devices are named as Keras names them (`keras.distribution.list_devices`):
"gpu:0", "cpu:3". A model remembers the devices it was built over (its
`ModelInfo.extra["devices"]`), and later `%fit` runs of it use them unless
`--devices` says otherwise.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import UsageError, did_you_mean
from .checks import n_samples
from .device import enable_memory_growth

SUPPORTED = ("jax", "tensorflow")

# model -> the devices its variables were created over (by nbkeras)
_PLACED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# (backend, devices) -> the Keras distribution or tf.distribute strategy (made once)
_LAYOUTS: Dict[Tuple[str, Tuple[str, ...]], "Layout"] = {}
# collective group keys apart per TensorFlow strategy (a strategy uses one per device set)
_KEY_SPACING = 10_000


def _backend() -> str:
    import keras
    return keras.backend.backend()


def available_devices(backend: Optional[str] = None) -> List[str]:
    """The devices a run may use, as Keras names them: the accelerators when
    there are any, else the CPUs ("gpu:0", "gpu:1" or "cpu:0", ...)."""
    backend = backend or _backend()
    if backend == "jax":
        import keras
        return list(keras.distribution.list_devices())
    if backend == "tensorflow":
        import tensorflow as tf

        enable_memory_growth()  # listing logical devices starts TensorFlow's GPUs
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return [f"{d.device_type.lower()}:{d.name.rsplit(':', 1)[-1]}" for d in devices]
    if backend == "torch":
        try:
            import torch
            if torch.cuda.is_available():
                return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        except Exception:  # noqa: BLE001 - only for the message
            pass
        return ["cpu"]
    return ["cpu:0"]


def _listing(devices: Sequence[str]) -> str:
    n = len(devices)
    return f"this kernel has {n} device{'s' if n != 1 else ''}: {', '.join(devices)}"


def parse_devices(text: str, backend: Optional[str] = None,
                  devices: Optional[Sequence[str]] = None) -> List[str]:
    """The devices `--devices TEXT` asks for: `all`, a count `N` (the first
    N), or a comma-separated list of indices (`0,2`) or names (`gpu:0,gpu:2`).

    Args:
        text: the option's value.
        backend: the Keras backend. Defaults to the current one.
        devices: what the kernel has. Defaults to `available_devices()`.

    Raises:
        UsageError: the backend has no data-parallel training, the value
            cannot be read, or it asks for devices the kernel does not have;
            the message lists what the kernel has.

    Example:
        >>> parse_devices("2", "jax", ["cpu:0", "cpu:1", "cpu:2", "cpu:3"])
        ['cpu:0', 'cpu:1']
    """
    backend = backend or _backend()
    have = list(devices) if devices is not None else available_devices(backend)
    if backend not in SUPPORTED:
        raise UsageError(f"--devices: Keras has no data-parallel training on the {backend} "
                         f"backend (it has on jax and tensorflow); {_listing(have)}")
    word = str(text).strip().lower()
    if word == "all":
        return have
    if word.isdigit():
        n = int(word)
        if n < 1:
            raise UsageError(f"--devices {text}: give at least 1; {_listing(have)}")
        if n > len(have):
            raise UsageError(f"--devices {text}: {_listing(have)}")
        return have[:n]
    chosen = []
    for item in (p.strip() for p in word.split(",")):
        if item.isdigit() and int(item) < len(have):
            name = have[int(item)]
        elif item in have:
            name = item
        else:
            raise UsageError(f"--devices {text}: no device {item!r}"
                             f"{did_you_mean(item, have)}; {_listing(have)}")
        if name in chosen:
            raise UsageError(f"--devices {text}: {name} is named twice")
        chosen.append(name)
    if not chosen:
        raise UsageError(f"--devices {text!r}: give `all`, a count or a list; {_listing(have)}")
    return chosen


def batch_text(batch_size: Optional[int], n_devices: int) -> str:
    """'batch 256 = 4 × 64' (empty for one device or an unknown batch)."""
    if not batch_size or n_devices < 2:
        return ""
    return f"batch {batch_size} = {n_devices} × {batch_size // n_devices}"


# -- layouts: the Keras objects ---------------------------------------------------------

class Layout:
    """The distribution of one set of devices on one backend.

    Args:
        backend: 'jax' or 'tensorflow'.
        devices: device names as Keras gives them ("cpu:0").

    `build()` is the context to create a model's variables in; `fit()` the
    one to train in (on JAX the distribution is a thread-local setting,
    so it is entered in the thread that calls `model.fit`; on TensorFlow a
    model built in a strategy's scope keeps its strategy).
    """

    def __init__(self, backend: str, devices: Sequence[str]):
        self.backend, self.devices = backend, tuple(devices)
        if backend == "jax":
            import keras
            self.distribution = keras.distribution.DataParallel(devices=list(self.devices))
            self.strategy = None
        else:
            from ..keras_private import mirrored_strategy
            names = [f"/device:{d.partition(':')[0].upper()}:{d.partition(':')[2]}"
                     for d in self.devices]
            # each strategy its own collective group keys (two strategies over
            # different devices would share group 1 and break every later run)
            self.strategy = mirrored_strategy(names, _KEY_SPACING * (1 + len(_LAYOUTS)))
            self.distribution = None

    def build(self):
        """The context in which variables are created over the devices."""
        if self.distribution is not None:
            return self.distribution.scope()  # Keras' own: restores the previous one
        return self.strategy.scope()

    def fit(self):
        """The context `model.fit` runs in."""
        if self.distribution is not None:
            return self.distribution.scope()
        return contextlib.nullcontext()


def layout(devices: Sequence[str], backend: Optional[str] = None) -> Layout:
    """The `Layout` of `devices` (made once per kernel: a strategy is not free)."""
    backend = backend or _backend()
    key = (backend, tuple(devices))
    if key not in _LAYOUTS:
        _LAYOUTS[key] = Layout(backend, devices)
    return _LAYOUTS[key]


def placed_on(model) -> Optional[Tuple[str, ...]]:
    """The devices `model`'s variables were created over by nbkeras, or None."""
    try:
        return _PLACED.get(model)
    except TypeError:
        return None


def mark_placed(model, devices: Sequence[str], info=None) -> None:
    """Remember that `model` was built over `devices` (and, in its info, that
    later runs of it use them)."""
    _PLACED[model] = tuple(devices)
    if info is not None:
        info.extra["devices"] = list(devices)


@contextlib.contextmanager
def _uncompiled(model):
    """`model` seen as not compiled: `clone_model` then does not read its
    compile config (and its optimizer's values) in the new scope, which a
    model of another tf.distribute strategy refuses; the copy is compiled
    from the config read before."""
    compiled = model.compiled
    model.compiled = False
    try:
        yield
    finally:
        model.compiled = compiled


def distributed_copy(model, info, devices: Sequence[str]):
    """A copy of `model` whose variables live over `devices`, with the same
    weights and compile configuration (Keras' `clone_model`, in the
    distribution's scope). The optimizer starts afresh."""
    import keras

    from ..state import set_info
    lay = layout(devices)
    previous = keras.mixed_precision.global_policy()
    try:
        # read outside the new scope: a model of another tf.distribute strategy
        # cannot be read inside this one ("Mixing different tf.distribute.Strategy")
        weights, config = model.get_weights(), model.get_compile_config()
        # the copy's own policy is the model's (a mixed precision copy stays one)
        keras.mixed_precision.set_dtype_policy(model.dtype_policy)
        with lay.build(), _uncompiled(model):
            clone = keras.models.clone_model(model)
            clone.set_weights(weights)
            if config:
                clone.compile_from_config(config)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a subclassed model Keras cannot clone
        raise UsageError(f"--devices rebuilds the model over the devices and Keras cannot "
                         f"rebuild {info.name!r} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}); build it with `%%model NAME "
                         f"--devices ...`") from None
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    set_info(clone, info)
    mark_placed(clone, devices, info)
    return clone


def place(shell, name: str, model, info, devices: Optional[Sequence[str]]
          ) -> Tuple[object, Callable[[], contextlib.AbstractContextManager]]:
    """Make `model` train over `devices`: (the model to train, the context
    for `model.fit`). A model built over other devices (or one) is rebuilt
    there and bound to `name` in the notebook in its place."""
    if not devices:
        return model, contextlib.nullcontext
    if placed_on(model) != tuple(devices):
        original = model
        model = distributed_copy(model, info, devices)
        if shell is not None and shell.user_ns.get(name) is original:
            shell.user_ns[name] = model
        n = len(devices)
        where = f"{n} devices" if n > 1 else devices[0]
        print(f"nbkeras: rebuilt {name} for training on {where} (weights kept; "
              "the optimizer starts afresh)")
    return model, layout(devices).fit


# -- the plan ------------------------------------------------------------------------------

def plan_devices(args, plan, info) -> None:
    """Decide `plan.devices` from `--devices` (or the devices the model was
    built over), check the batch splits evenly, and on JAX leave out the
    few trailing samples that would not; notes say so. Changes no model."""
    text = getattr(args, "devices", None)
    cv = getattr(args, "cv", None)
    if text is None:
        devices = None if cv is not None else info.extra.get("devices")
    else:
        if cv is not None:
            raise UsageError("--devices with --cv is not supported yet: the folds train one "
                             "copy at a time on one device")
        devices = parse_devices(text)
    plan.devices = list(devices) if devices else None
    if plan.devices and plan.devices == available_devices()[:1]:
        plan.devices = None  # the one default device: a plain run (a distribution cost 1/3)
    if not plan.devices:
        return
    k = len(plan.devices)
    if _backend() == "tensorflow" and k > 1:
        _one_step_per_call(plan, k)
    from .checks import is_dataset
    dataset = is_dataset(plan.x)
    if not dataset and plan.batch_size % k:
        lower, upper = (plan.batch_size // k) * k, (plan.batch_size // k + 1) * k
        hint = f"-b {lower} or -b {upper}" if lower else f"-b {upper}"
        raise UsageError(f"--batch-size {plan.batch_size} does not split evenly over {k} "
                         f"devices: give a multiple of {k} ({hint})")
    if not dataset:
        plan.batch_split = batch_text(plan.batch_size, k)
    if _backend() == "jax" and k > 1 and not dataset:
        _trim(plan, k)


def _one_step_per_call(plan, k: int) -> None:
    """TensorFlow over several devices trains one step per call: Keras' loop
    of several steps per call fails under a `MirroredStrategy` ("You must
    feed a value for placeholder tensor ... multi_step_on_iterator")."""
    plan.auto_steps = False
    if plan.step_size > 1:
        raise UsageError(f"--steps-per-execution {plan.step_size} with --devices over {k} "
                         "devices: on TensorFlow Keras trains one step per call over several "
                         "devices; give --steps-per-execution 1 (or train on one device)")


def _rows(data, start: int, stop: int):
    if data is None:
        return None
    if isinstance(data, dict):
        return {key: _rows(v, start, stop) for key, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_rows(v, start, stop) for v in data)
    return data[start:stop]


def _left_out(n: int, of: int, what: str) -> str:
    return f"the last {n} of the {of} {what} samples {'is' if n == 1 else 'are'} left out"


def _split_first(plan, n: int, split: float) -> None:
    """`--val-split` as Keras splits arrays (the first floor(n * (1 - split))
    samples train, the rest validate, before any shuffle), made explicit so
    that each part can be trimmed on its own."""
    kw = plan.fit_kwargs
    t = int(math.floor(n * (1.0 - split)))
    if t == 0 or t == n:
        return  # Keras' own message says what is wrong
    val = tuple(_rows(part, t, n) for part in (plan.x, kw.get("y"), kw.get("sample_weight")))
    kw["validation_data"] = val if val[2] is not None else val[:2]
    del kw["validation_split"]
    plan.x = _rows(plan.x, 0, t)
    for key in ("y", "sample_weight"):
        if kw.get(key) is not None:
            kw[key] = _rows(kw[key], 0, t)
    if plan.y is not None:
        plan.y = kw.get("y", plan.y)


def _trim(plan, k: int) -> None:
    """On JAX every batch splits evenly over the k devices: the training
    samples and the validation samples are each cut to a multiple of k
    (with `--val-split`, after splitting as Keras does)."""
    kw = plan.fit_kwargs
    n = n_samples(plan.x)
    if n is None:
        return
    split = kw.get("validation_split")
    if split and kw.get("validation_data") is None:
        _split_first(plan, n, split)
        n = n_samples(plan.x)
    m = n - n % k
    if m == 0:
        raise UsageError(f"--devices: {n} training samples cannot be split over {k} devices: "
                         f"give at least {k}")
    if m < n:
        plan.x = _rows(plan.x, 0, m)
        for key in ("y", "sample_weight"):
            if kw.get(key) is not None:
                kw[key] = _rows(kw[key], 0, m)
        if plan.y is not None:
            plan.y = kw.get("y", plan.y)
        plan.notes.append(f"on JAX every batch splits evenly over the {k} devices: "
                          f"{_left_out(n - m, n, 'training')}")
    if not kw.get("steps_per_epoch"):
        plan.steps = math.ceil(m / plan.batch_size)
    val = kw.get("validation_data")
    from .checks import is_dataset
    if isinstance(val, tuple) and not is_dataset(val[0]):
        nv = n_samples(val[0])
        if nv is not None and nv % k:
            mv = nv - nv % k
            if mv == 0:
                raise UsageError(f"--devices: {nv} validation samples cannot be split over "
                                 f"{k} devices: give at least {k}")
            kw["validation_data"] = tuple(_rows(v, 0, mv) for v in val)
            plan.notes.append(f"on JAX every batch splits evenly over the {k} devices: "
                              f"{_left_out(nv - mv, nv, 'validation')}")


def explain(exc: BaseException, plan) -> Optional[UsageError]:
    """A one-line message for a run over devices that failed because a batch
    did not split evenly (a dataset's last batch on JAX), or None."""
    devices = getattr(plan, "devices", None)
    text = f"{type(exc).__name__} {exc}"
    if not devices or not ("IndivisibleError" in text or "should evenly divide" in text):
        return None
    k = len(devices)
    return UsageError(f"a batch did not split evenly over the {k} devices: on JAX every "
                      f"batch's size must be a multiple of {k} (batch the dataset with "
                      "drop_remainder=True, or give arrays)")


@contextlib.contextmanager
def building(text: Optional[str]):
    """`%%model NAME --devices TEXT`: yields the devices (None without the
    option), with the model's variables created over them inside."""
    if not text:
        yield None
        return
    devices = parse_devices(text)
    with layout(devices).build():
        yield devices
