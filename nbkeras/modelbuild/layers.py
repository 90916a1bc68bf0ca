"""A layer statement -> its `keras.layers` class and constructor kwargs.

Names are looked up in Keras' own tables (`keras.layers`, `keras.activations`)
with case and underscores ignored, plus the aliases of the spec language;
keyword names come from the constructor signatures; anything a spec cannot
give (a Python object, code) is a `SpecError` on its column. `build.py`
builds the graph from what this resolves, and `catalog.py` names search
spaces from it.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple

import keras

from ..errors import SpecError
from ..speclang.nodes import Arg, LayerStmt, Wrap
from ..speclang.parse import WRAPPERS
from .names import closest, norm, short

ALIASES = {"conv": "Conv2D", "maxpool": "MaxPooling2D", "pool": "MaxPooling2D",
           "avgpool": "AveragePooling2D", "gap": "GlobalAveragePooling2D",
           "gmp": "GlobalMaxPooling2D", "bn": "BatchNormalization",
           "batchnorm": "BatchNormalization", "ln": "LayerNormalization",
           "layernorm": "LayerNormalization", "concat": "Concatenate", "embed": "Embedding",
           "attention": "MultiHeadAttention", "mha": "MultiHeadAttention"}
MERGING = {"Add", "Concatenate", "Multiply", "Average", "Maximum", "Minimum", "Subtract", "Dot"}
PADDINGS = ("same", "valid", "causal")
_NOT_LAYERS = {"Layer", "InputLayer", "Input", "InputSpec"}
_CODE_LAYERS = {"Lambda"}  # built around a Python callable: nothing a spec can give
_NOT_TENSORS = {"mask", "training", "kwargs"}  # call parameters that take no second tensor
_OBJECT_PARAMS = {"layer", "layers", "cell", "cells", "module", "call_fn", "function"}
_BASE_KWARGS = ("name", "dtype", "trainable", "autocast", "activity_regularizer",
                "input_shape", "input_dim", "batch_size", "batch_input_shape", "weights")


_LAYERS: Dict[str, str] = {}


def layer_kinds() -> Dict[str, str]:
    """Normalized kind -> `keras.layers` class name, aliases included."""
    if not _LAYERS:
        for name in dir(keras.layers):
            obj = getattr(keras.layers, name)
            if (inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)
                    and name not in _NOT_LAYERS and not name.startswith("_")):
                _LAYERS[norm(name)] = name
        _LAYERS.update(ALIASES)
    return _LAYERS


def activation_names() -> List[str]:
    return [n for n in dir(keras.activations)
            if not n.startswith("_") and n not in ("get", "serialize", "deserialize")]


def is_activation(word: str) -> bool:
    return word.lower() in activation_names()


def constructor_params(cls) -> Tuple[List[str], set]:
    """(positional parameter names in order, every accepted keyword)."""
    params = [p for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self"]
    order = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)]
    accepted = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if any(p.kind == p.VAR_KEYWORD for p in params):
        for base in cls.__mro__[1:]:
            if base is object or not hasattr(base, "__init__"):
                continue
            try:
                base_params = inspect.signature(base.__init__).parameters.values()
            except (TypeError, ValueError):
                continue
            accepted |= {p.name for p in base_params
                         if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
            if base is keras.layers.Layer:
                break
        accepted |= set(_BASE_KWARGS)
    return order, accepted


def _fail(stmt, exc: BaseException) -> SpecError:
    return SpecError(f"`{stmt.text}` failed in Keras: {short(exc)}", stmt.line or None,
                     stmt.column or None, stmt.text)


def resolve_kind(stmt: LayerStmt):
    table = layer_kinds()
    name = table.get(norm(stmt.kind))
    if name is None:
        keywords = ["input", "outputs", "optimizer", "loss", "loss_weights", "metrics", "base"]
        hint = closest(stmt.kind, sorted(set(table.values())) + sorted(ALIASES) + keywords)
        raise SpecError(f"unknown layer kind `{stmt.kind}`{hint or ''}; kinds are the classes "
                        "of `keras.layers` (any case, underscores optional) and the aliases",
                        stmt.line, stmt.kind_column, stmt.kind)
    return getattr(keras.layers, name)


def _check_activation(value: Any, arg: Arg) -> Any:
    if isinstance(value, str):
        if not is_activation(value):
            raise SpecError(f"unknown activation `{arg.text}`{closest(value, activation_names())}",
                            arg.line, arg.column, arg.text)
        return value.lower()
    return value


def _convert(key: str, arg: Arg) -> Any:
    value = arg.python()
    if key.endswith("activation") and arg.kind in ("word", "str"):
        return _check_activation(value, arg)
    if key == "padding" and isinstance(value, str) and value.lower() in PADDINGS:
        return value.lower()
    if key.endswith("shape") and isinstance(value, int):
        return (value,)
    if isinstance(value, tuple) and arg.kind == "tuple":
        return tuple(value)
    return value


def resolve_layer(stmt: LayerStmt, filled: Optional[List[str]] = None,
                  lead: Optional[List[int]] = None) -> Tuple[Any, Dict[str, Any]]:
    """Class and constructor kwargs of a layer statement (of the wrapped layer, for a
    wrapped statement); `filled` receives the parameter each argument fills, in order;
    `lead` receives how many of the constructor's first parameters were given by
    position (those come first in the kwargs)."""
    filled = [] if filled is None else filled
    by_position: List[str] = []
    cls = resolve_kind(stmt)
    if cls.__name__ in _CODE_LAYERS:
        raise SpecError(f"`{stmt.kind}` wraps Python code, and a spec cannot run code: use "
                        "layers of `keras.layers` with values, or build this part in Python",
                        stmt.line, stmt.kind_column, stmt.kind)
    try:
        order, accepted = constructor_params(cls)
        defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    except (TypeError, ValueError) as exc:  # a class without a readable signature
        raise _fail(stmt, exc) from None
    kwargs: Dict[str, Any] = {}
    positional = [p for p in order]
    for arg in stmt.args:
        if arg.key is not None:
            key = arg.key.lower()
            if key not in accepted:
                raise SpecError(f"`{cls.__name__}` has no keyword `{arg.key}`"
                                f"{closest(key, sorted(accepted))}", arg.line, arg.column,
                                arg.key)
            if key in kwargs:
                raise SpecError(f"`{arg.key}` is given twice in `{stmt.text}`", arg.line,
                                arg.column, arg.key)
            if key in _OBJECT_PARAMS:
                raise SpecError(f"`{arg.key}={arg.text}`: `{cls.__name__}` needs a Python object "
                                f"as `{key}`, which a spec cannot give: build this part in Python",
                                arg.line, arg.column, arg.key)
            kwargs[key] = _convert(key, arg)
            filled.append(key)
            continue
        if arg.kind == "word":
            low = arg.value.lower()
            if "activation" in accepted and "activation" not in kwargs and is_activation(low):
                kwargs["activation"] = low
                filled.append("activation")
                continue
            if "padding" in accepted and "padding" not in kwargs and low in PADDINGS:
                kwargs["padding"] = low
                filled.append("padding")
                continue
            for key, taken in (("activation", is_activation(low)), ("padding", low in PADDINGS)):
                if taken and key in accepted and key in kwargs:
                    raise SpecError(f"`{arg.text}`: the {key} is already set to "
                                    f"`{kwargs[key]}` in `{stmt.text}`; give one",
                                    arg.line, arg.column, arg.text)
        slot = next((p for p in positional if p not in kwargs), None)
        if arg.kind == "word" and not isinstance(defaults.get(slot), str):
            _check_misplaced_word(cls, arg, accepted)
        if slot is None:
            takes = ", ".join(order[:6]) or "no positional values"
            raise SpecError(f"unexpected value `{arg.text}`: `{cls.__name__}` takes {takes} in "
                            "that order; write other arguments as `key=value`",
                            arg.line, arg.column, arg.text)
        if (arg.kind == "word" and "activation" in accepted and slot != "activation"
                and closest(arg.value, activation_names())):
            raise SpecError(f"unknown activation `{arg.text}`"
                            f"{closest(arg.value, activation_names())}",
                            arg.line, arg.column, arg.text)
        if slot in _OBJECT_PARAMS:
            raise SpecError(f"`{arg.text}` cannot be the `{slot}` of `{cls.__name__}`: it needs a "
                            "Python object, which a spec cannot give: build this part in Python",
                            arg.line, arg.column, arg.text)
        positional.remove(slot)
        kwargs[slot] = _convert(slot, arg)
        filled.append(slot)
        by_position.append(slot)
    missing = [n for n in order if defaults.get(n) is inspect.Parameter.empty and n not in kwargs]
    objects = [n for n in missing if n in _OBJECT_PARAMS]
    if objects:
        raise SpecError(f"`{stmt.text}`: `{cls.__name__}` needs a Python object (`{objects[0]}`), "
                        "which a spec cannot give: build this part in Python",
                        stmt.line, stmt.column, stmt.text)
    if missing:
        needs = " and ".join(f"`{n}`" for n in missing)
        raise SpecError(f"`{stmt.text}`: `{cls.__name__}` needs {needs}; positional values fill "
                        f"{', '.join(order[:4])} in that order, or "
                        f"write `{missing[0]}=...`", stmt.line, stmt.column, stmt.text)
    if lead is not None:
        first = []
        for param in order:
            if param not in by_position:
                break
            first.append(param)
        kwargs = {**{k: kwargs[k] for k in first}, **kwargs}
        lead.append(len(first))
    return cls, kwargs


def _check_misplaced_word(cls, arg: Arg, accepted) -> None:
    """A bare activation or padding word on a layer that has no such argument."""
    low = arg.value.lower()
    if is_activation(low) and "activation" not in accepted:
        raise SpecError(f"`{arg.text}` names an activation, but `{cls.__name__}` takes no "
                        f"`activation`: add a line `activation {low}` after this one",
                        arg.line, arg.column, arg.text)
    if low in PADDINGS and "padding" not in accepted:
        raise SpecError(f"`{arg.text}` sets the padding, but `{cls.__name__}` has no `padding`",
                        arg.line, arg.column, arg.text)


def _keywords(stmt, args, accepted, owner: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """`key=value` arguments into `kwargs`: an unknown or repeated key is a
    SpecError on its column (`owner` names what takes them)."""
    for arg in args:
        key = arg.key.lower()
        if key not in accepted:
            raise SpecError(f"`{owner}` has no keyword `{arg.key}`{closest(key, sorted(accepted))}",
                            arg.line, arg.column, arg.key)
        if key in kwargs:
            raise SpecError(f"`{arg.key}` is given twice in `{stmt.text}`", arg.line,
                            arg.column, arg.key)
        kwargs[key] = _convert(key, arg)
    return kwargs


def resolve_wrapper(stmt: LayerStmt, wrap: Wrap) -> Tuple[Any, Dict[str, Any]]:
    """Class and keyword arguments of one wrapper of a statement."""
    cls = getattr(keras.layers, WRAPPERS[norm(wrap.kind)])
    if not (cls is keras.layers.Bidirectional or issubclass(cls, keras.layers.Wrapper)):
        raise SpecError(f"`{wrap.kind}` is not a wrapper layer", stmt.line, wrap.column, wrap.kind)
    _, accepted = constructor_params(cls)
    return cls, _keywords(stmt, wrap.args, set(accepted) - _OBJECT_PARAMS, cls.__name__, {})


