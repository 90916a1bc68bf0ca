"""The pieces `%fit --code` writes its script from (`nbkeras.train.script`):
the model's source (its spec's code, or the saved model), its compile
settings as `%fit` settles them, the device set-up, and the Python
literals and names the script uses.
"""

from __future__ import annotations

import ast
import contextlib
import random
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import UsageError

def spec_source(plan, model, info) -> Optional[Tuple[List[str], List[str]]]:
    """(the model code, the compile call) from the model's spec, or None when
    the model was not built from a spec or the spec no longer builds it (the
    same layers and parameter count)."""
    if not info.spec_text:
        return None
    from ..errors import SpecError
    from ..modelbuild.build import build
    from ..speclang.codegen import generate
    from ..modelbuild.catalog import parse_spec as parse
    try:
        try:
            spec = parse(info.spec_text)
        except SpecError:  # a spec written for `%%model NAME --input SHAPE`
            spec = parse(info.spec_text, input_shape=_input_option(model))
        result = build(spec, plan.name, compile=False,
                       values=info.extra.get("space_values") or None)
    except Exception:  # noqa: BLE001 - a spec that no longer builds: the saved model
        return None
    rebuilt = result.model
    if (_layer_kinds(rebuilt) != _layer_kinds(model)
            or rebuilt.count_params() != model.count_params()):
        return None
    code = generate(spec, plan.name, result, compile=False).splitlines()
    body = [l for l in code if l not in ("import keras", "from keras import layers")]
    while body and not body[0]:
        body.pop(0)
    try:
        rebuilt.compile(**result.compile_kwargs)
        same = _same_compile(model, rebuilt, result.deferred_losses)
    except Exception:  # noqa: BLE001
        same = False
    if not same:
        compile_line = ["# compiled by hand in the notebook: its compile settings, as Keras "
                        "serializes them"] + compile_from_config_lines(model, plan)
        return body, compile_line
    parts = dict(result.compile_code)
    if result.deferred_losses:
        loss = _settled((model.get_compile_config() or {}).get("loss"), plan.settle)
        parts["loss"] = repr(loss)
    parts.update(_run_settings(plan))
    lines = _call("model.compile", [f"{k}={v}" for k, v in parts.items()])
    moved = _moved_lr(model, rebuilt)
    if moved is not None:
        lines += [f"model.optimizer.learning_rate = {moved!r}  # where training in the "
                  "notebook left it"]
    return body, lines


def _moved_lr(model, rebuilt) -> Optional[float]:
    """The notebook optimizer's learning rate when training moved it away from
    the spec's (`--reduce-lr`, `--lr-schedule`), else None."""
    def lr(m):
        value = ((m.get_compile_config() or {}).get("optimizer") or {})
        value = ((value.get("config") or {}).get("learning_rate")
                 if isinstance(value, dict) else None)
        return value if isinstance(value, float) else None
    now, spec = lr(model), lr(rebuilt)
    if now is None or spec is None or np.isclose(now, spec, rtol=1e-6, atol=0):
        return None
    return float(str(np.float32(now)))


def _call(function: str, args: List[str], width: int = 84) -> List[str]:
    """`function(args)` on one line, or one argument a line when too long."""
    line = f"{function}({', '.join(args)})"
    if len(line) <= width:
        return [line]
    return [f"{function}("] + [f"    {a}," for a in args] + [")"]


def _input_option(model) -> Optional[str]:
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or not shape or isinstance(shape[0], (tuple, list)):
        return None
    return "x".join("?" if d is None else str(d) for d in shape[1:]) or None


def _layer_kinds(model) -> List[str]:
    return [type(layer).__name__ for layer in model.layers]


def _same_compile(model, rebuilt, deferred: Dict[str, str]) -> bool:
    """Whether `model` is compiled as its spec says (a deferred loss aside, and
    a learning rate that training moved: see `_moved_lr`)."""
    def norm(config):
        config = config or {}
        out = {k: config.get(k) for k in ("optimizer", "loss", "loss_weights", "metrics",
                                           "weighted_metrics")}
        opt = out["optimizer"]
        if isinstance(opt, dict):
            inner = {k: v for k, v in (opt.get("config") or {}).items()
                     if k != "name" and not (k == "learning_rate" and isinstance(v, float))}
            out["optimizer"] = {**opt, "config": inner}
        if deferred:
            loss = out["loss"]
            out["loss"] = ({k: v for k, v in loss.items() if k not in deferred}
                           if isinstance(loss, dict) else None)
        return out
    return norm(model.get_compile_config()) == norm(rebuilt.get_compile_config())


def _settled(loss, settle: Dict[str, str]):
    for name, chosen in (settle or {}).items():
        loss = {**loss, name: chosen} if isinstance(loss, dict) else chosen
    return loss


def _run_settings(plan) -> Dict[str, str]:
    out = {}
    if plan.options.get("jit"):
        out["jit_compile"] = "True"
    if plan.step_size > 1:
        out["steps_per_execution"] = str(plan.step_size)
    return out


def compile_from_config_lines(model, plan) -> List[str]:
    """`model.compile_from_config(...)` with the notebook model's own compile
    configuration (the settled loss and this run's settings applied)."""
    config = dict(model.get_compile_config() or {})
    config["loss"] = _settled(config.get("loss"), plan.settle)
    if plan.options.get("jit"):
        config["jit_compile"] = True
    if plan.step_size > 1:
        config["steps_per_execution"] = plan.step_size
    text = _pretty(config)
    if not _literal_text(text):
        raise UsageError("--code cannot write this model's compile settings as Python "
                         "(a value with no literal form): compile it with plain Keras "
                         "identifiers and run the cell again")
    return ("compile_config = " + text).splitlines() + ["model.compile_from_config(compile_config)"]


def _pretty(value, indent: int = 0, width: int = 84) -> str:
    """A Python literal, one item a line where the one-line form is too long."""
    flat = repr(value)
    if len(flat) + indent <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{k!r}: {_pretty(v, indent + 4, width)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{_pretty(v, indent + 4, width)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + " " * indent + "]"


# -- small helpers ------------------------------------------------------------------


def policy_of(model) -> str:
    return str(getattr(getattr(model, "dtype_policy", None), "name", "mixed_float16"))


def device_choice(devices) -> Tuple[str, List[str], str]:
    """(the JAX device list, the TensorFlow strategy lines, the option as said)
    for a `--devices` value: 'all', a count, or a list of indices or names.
    Indices and counts pick among the accelerators (the CPU without one), as
    `keras.distribution.list_devices()` does."""
    jax_all = "keras.distribution.list_devices()"
    tf_names = ['names = [d.name for d in tf.config.list_logical_devices("GPU")]',
                'names = names or [d.name for d in tf.config.list_logical_devices("CPU")]']
    if isinstance(devices, str):
        text = devices.strip()
        if text.lower() == "all":
            devices = True
        elif text.isdigit():
            devices = int(text)
        else:
            devices = [int(p) if p.strip().isdigit() else p.strip()
                       for p in text.split(",") if p.strip()]
    if devices is True:
        return jax_all, ["strategy = tf.distribute.MirroredStrategy()"], "all"
    if isinstance(devices, int) and not isinstance(devices, bool):
        return (f"{jax_all}[:{devices}]",
                tf_names + [f"strategy = tf.distribute.MirroredStrategy(names[:{devices}])"],
                str(devices))
    if isinstance(devices, (list, tuple)) and devices:
        items = list(devices)
        said = ",".join(str(d) for d in items)
        if all(isinstance(d, int) for d in items):
            picks = repr(tuple(items))
            return (f"[{jax_all}[i] for i in {picks}]",
                    tf_names + ["strategy = tf.distribute.MirroredStrategy("
                                f"[names[i] for i in {picks}])"],
                    said)
        names = [str(d) for d in items]
        slashed = [n if n.startswith("/") else "/" + n for n in names]
        return repr(names), [f"strategy = tf.distribute.MirroredStrategy({slashed!r})"], said
    return jax_all, ["strategy = tf.distribute.MirroredStrategy()"], str(devices)


def data_stem(stem: str, taken) -> str:
    """A file stem made of safe characters, not yet written."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "data"
    candidate, n = safe, 2
    while f"{candidate}.npy" in taken:
        candidate, n = f"{safe}_{n}", n + 1
    return candidate


def is_literal(value) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError):
        return False


def _literal_text(text: str) -> bool:
    try:
        ast.literal_eval(text)
        return True
    except (ValueError, SyntaxError, TypeError):
        return False


# -- the state the run starts from --------------------------------------------------


@contextlib.contextmanager
def python_random_kept():
    """Python's `random` state as it was, whatever the block draws (Keras
    draws its default seeds there when it builds a layer)."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def session_copies(plan, model) -> List[str]:
    """The copies `FitSession` makes of `model` before `fit` ("mixed" for
    `--mixed-precision`, "devices" for a model not yet built over
    `--devices`); each starts a fresh optimizer and draws new layer seeds."""
    from .device import is_mixed
    from .distribute import placed_on
    copies = []
    if plan.mixed_precision and not is_mixed(model):
        copies.append("mixed")
    devices = getattr(plan, "devices", None)
    wanted = tuple(devices) if isinstance(devices, (list, tuple)) else devices
    if devices and ("mixed" in copies or placed_on(model) != wanted):
        copies.append("devices")
    return copies


def carries_optimizer(plan, model) -> bool:
    """Whether `fit` goes on with the optimizer `model` holds (its step count
    and slots): it has built one, and the run makes no copy."""
    optimizer = getattr(model, "optimizer", None)
    return bool(getattr(optimizer, "built", False)) and not session_copies(plan, model)


def mixed_copy(model, info):
    """The `--mixed-precision` copy `FitSession` trains (fresh optimizer)."""
    import keras

    from .device import mixed_policy_name, mixed_precision_copy
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_dtype_policy(mixed_policy_name())
    try:
        return mixed_precision_copy(model, info, mixed_policy_name())
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def fresh_copy(model, compiled: bool = True):
    """`model`'s layers and weights, compiled from its own configuration (a
    fresh optimizer, built) or not compiled at all (`compiled=False`)."""
    import keras
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    config = model.get_compile_config() if compiled else None
    if config:
        clone.compile_from_config(config)
    return clone


def seed_states(model) -> List[np.ndarray]:
    """The state of each random stream in `model` (a dropout layer's
    `SeedGenerator`), in `model.variables` order. Keras saves none of them."""
    import keras
    return [keras.ops.convert_to_numpy(v.value) for v in model.variables
            if v.name == "seed_generator_state"]


def fit_seed_states(plan, model, info) -> List[np.ndarray]:
    """The random streams' states when `%fit` calls `fit`: the model's own,
    or, when the session copies the model after `--seed`, the ones its
    copies draw from Python's `random` seeded so (replayed here on throwaway
    copies; the notebook's random state is kept)."""
    states = seed_states(model)
    copies = session_copies(plan, model)
    if not states or not copies or plan.seed is None:
        return states
    import keras
    with python_random_kept():
        random.seed(plan.seed)
        copy = mixed_copy(model, info) if "mixed" in copies else model
        if "devices" in copies:
            copy = keras.models.clone_model(copy)
        return seed_states(copy)


def built_at_fit(plan, model) -> bool:
    """Whether `%fit` calls `fit` with the model's loss and metrics built:
    they are now, and the run neither recompiles (a loss settled from the
    labels) nor copies the model. (The step-time probe of
    `nbkeras.train.steps` builds them too, and then draws the shuffle that
    Keras would have drawn to build them: it changes nothing here.)"""
    from ..keras_private import loss_and_metrics_built
    loss = (model.get_compile_config() or {}).get("loss")
    return (loss_and_metrics_built(model) and _settled(loss, plan.settle) == loss
            and not session_copies(plan, model))
