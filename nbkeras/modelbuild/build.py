"""`ModelSpec` -> compiled `keras.Model`, with Keras' errors mapped to lines.

This is the one spec stage that imports Keras. Names are looked up in
Keras' own tables (`keras.layers`, `keras.activations`, `keras.optimizers`,
`keras.losses`, `keras.metrics`) with case and underscores ignored, plus
the aliases of the spec language; keyword names come from the constructor
signatures. Anything Keras raises while building is re-raised as a
`SpecError` on the line of the statement that caused it. The same
resolution feeds `codegen`, so the code it shows is the model built here.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import keras

from ..errors import SpecError
from ..keras_private import producing_layer
from ..speclang.nodes import Arg, InputStmt, LayerStmt, ModelSpec, Wrap
from ..speclang.parse import WRAPPERS
from ..speclang.spaces import fix, resolve_values
from .names import closest, norm, short  # noqa: F401  (re-exported)
from .settings import resolve_compile

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


@dataclass
class Step:
    """One resolved graph statement (what `codegen` renders)."""

    index: int
    kind: str                 # "input" or a keras.layers class name
    kwargs: Dict[str, Any]
    sources: Tuple[int, ...]  # graph indices whose outputs it is called on
    call: str = "single"      # "single", "list" (merging) or "args"
    wrappers: List[Tuple[str, Dict[str, Any]]] = field(default_factory=list)  # outermost first
    call_kwargs: Dict[str, int] = field(default_factory=dict)  # keyword sources -> graph index
    positional: int = 0       # leading `kwargs` the spec gave by position (`--code` writes them so)


@dataclass
class BuildResult:
    """What `build` made.

    Attributes:
        model: the Keras model (compiled unless asked not to).
        steps: the resolved statements, in order.
        compile_kwargs: the kwargs given (or to give) to `model.compile`.
        compile_code: the same kwargs as Python source, for `codegen`.
        deferred_losses: output name -> 'categorical' for defaulted softmax outputs.
        message: the one line saying which default compile was chosen, or None.
        values: the value each search space was built at (empty without spaces).
    """

    model: Any
    steps: List[Step]
    compile_kwargs: Dict[str, Any] = field(default_factory=dict)
    compile_code: Dict[str, str] = field(default_factory=dict)
    deferred_losses: Dict[str, str] = field(default_factory=dict)
    message: Optional[str] = None
    values: Dict[str, Any] = field(default_factory=dict)


def _fail(stmt, exc: BaseException) -> SpecError:
    return SpecError(f"`{stmt.text}` failed in Keras: {short(exc)}", stmt.line or None,
                     stmt.column or None, stmt.text)


def resolve_kind(stmt: LayerStmt):
    table = layer_kinds()
    name = table.get(norm(stmt.kind))
    if name is None:
        keywords = ["input", "outputs", "optimizer", "loss", "loss_weights", "metrics"]
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


def _input_kwargs(stmt: InputStmt) -> Dict[str, Any]:
    accepted = [p for p in inspect.signature(keras.Input).parameters]
    kwargs: Dict[str, Any] = {}
    if stmt.shape is not None:
        kwargs["shape"] = tuple(stmt.shape)
    return _keywords(stmt, stmt.options, accepted, "input", kwargs)


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


def _takes_a_list(cls) -> bool:
    """Whether `call` takes all its tensors as one `inputs` list (AdditiveAttention, ...).

    Such layers would read a second positional tensor as a mask, so they get
    the list that merging layers get; layers with separate tensor parameters
    (`MultiHeadAttention(query, value)`, `CategoryEncoding(inputs,
    count_weights)`) keep positional arguments.
    """
    try:
        params = [p for p in inspect.signature(cls.call).parameters if p != "self"]
    except (TypeError, ValueError):
        return False
    return params[:1] == ["inputs"] and (len(params) == 1 or params[1] in _NOT_TENSORS)


def _claim_name(used: Dict[str, Any], name: str, stmt) -> None:
    """Keras layer names must be unique: point at the statement that repeats one."""
    first = used.setdefault(name, stmt)
    if first is not stmt:
        where = f"line {first.line} (`{first.text}`)" if first.line else "the `--input` layer"
        raise SpecError(f"`{stmt.text}`: the layer name `{name}` is already used by {where}; "
                        "Keras layer names must be unique: bind another name or give `name=`",
                        stmt.line or None, stmt.column or None, stmt.text)


def resolve_wrapper(stmt: LayerStmt, wrap: Wrap) -> Tuple[Any, Dict[str, Any]]:
    """Class and keyword arguments of one wrapper of a statement."""
    cls = getattr(keras.layers, WRAPPERS[norm(wrap.kind)])
    if not (cls is keras.layers.Bidirectional or issubclass(cls, keras.layers.Wrapper)):
        raise SpecError(f"`{wrap.kind}` is not a wrapper layer", stmt.line, wrap.column, wrap.kind)
    _, accepted = constructor_params(cls)
    return cls, _keywords(stmt, wrap.args, set(accepted) - _OBJECT_PARAMS, cls.__name__, {})


def _call_params(cls) -> List[str]:
    try:
        params = inspect.signature(cls.call).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _check_call_keys(stmt: LayerStmt, cls) -> None:
    """Keyword sources (`(x, mask=m)`) must name parameters of the layer's `call`."""
    params = _call_params(cls)
    for src in stmt.sources:
        if src.key is not None and src.key not in params:
            raise SpecError(f"`{src.key}={src.name}`: `{cls.__name__}` takes no `{src.key}` when "
                            f"called{closest(src.key, params)}; its call parameters are "
                            f"{', '.join(params)}", src.line, src.column, src.key)


def _layer_statement(stmt: LayerStmt, index: int, name: Optional[str], reserved, used,
                     tensors, layers, steps) -> None:
    """Build one layer statement (each repetition of a `repeat`) and record its steps."""
    lead: List[int] = []
    cls, kwargs = resolve_layer(stmt, lead=lead)
    wraps = [resolve_wrapper(stmt, w) for w in stmt.wrappers]
    outer_cls = wraps[0][0] if wraps else cls
    _check_call_keys(stmt, outer_cls)
    chain = [(cls, kwargs)] + list(reversed(wraps))  # innermost first
    if name and "name" not in chain[-1][1]:
        chain[-1] = (chain[-1][0], {**chain[-1][1], "name": name})
    positional = [i for s, i in zip(stmt.sources, stmt.sources_at) if s.key is None]
    keyword = {s.key: i for s, i in zip(stmt.sources, stmt.sources_at) if s.key is not None}
    count = stmt.repeat.value if stmt.repeat is not None else 1
    for rep in range(1, count + 1):
        sources = tuple(positional) if positional and rep == 1 else (
            (stmt.previous,) if rep == 1 else (index,))
        call = "single" if len(sources) == 1 else (
            "list" if outer_cls.__name__ in MERGING or _takes_a_list(outer_cls) else "args")
        made = [(c, {**kw, "name": f"{kw['name']}_rep{rep}"} if rep < count and "name" in kw
                 else dict(kw)) for c, kw in chain]
        try:
            layer = made[0][0](**made[0][1])
            for wcls, wkw in made[1:]:
                layer = wcls(layer, **wkw)
            outer_kwargs = made[-1][1]
            if "name" not in outer_kwargs and layer.name in reserved:
                base, n = layer.name, 2
                while f"{base}_{n}" in reserved:
                    n += 1
                layer.name = f"{base}_{n}"
                made[-1] = (made[-1][0], {**outer_kwargs, "name": layer.name})  # shown in code
            source = index if rep > 1 else None
            xs = [tensors[i] if source is None else tensors[source] for i in sources]
            call_kw = {k: tensors[i] for k, i in keyword.items()}
            out = (layer(xs[0], **call_kw) if call == "single"
                   else layer(xs, **call_kw) if call == "list" else layer(*xs, **call_kw))
        except SpecError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(stmt, exc) from None
        _claim_name(used, layer.name, stmt)
        tensors[index], layers[index] = out, layer
        steps.append(Step(index, made[0][0].__name__, made[0][1], sources, call,
                          wrappers=[(c.__name__, kw) for c, kw in reversed(made[1:])],
                          call_kwargs=dict(keyword), positional=lead[0]))


def build_graph(spec: ModelSpec, name: str = "model") -> Tuple[Any, List[Step], Dict[int, Any]]:
    """Build the layers and the (uncompiled) model; returns (model, steps, layers by index)."""
    names = spec.layer_names()
    reserved = {n for n in names.values() if n}
    used: Dict[str, Any] = {}
    tensors: Dict[int, Any] = {}
    layers: Dict[int, Any] = {}
    steps: List[Step] = []
    for index, stmt in enumerate(spec.graph):
        if isinstance(stmt, InputStmt):
            kwargs = _input_kwargs(stmt)
            if names[index] and "name" not in kwargs:
                kwargs["name"] = names[index]
            try:
                tensors[index] = keras.Input(**kwargs)
            except Exception as exc:  # noqa: BLE001 - any Keras complaint is the user's
                raise _fail(stmt, exc) from None
            layers[index] = producing_layer(tensors[index])
            _claim_name(used, layers[index].name, stmt)
            steps.append(Step(index, "input", kwargs, ()))
            continue
        _layer_statement(stmt, index, names[index], reserved, used, tensors, layers, steps)
    ins = [tensors[i] for i in spec.input_indices()]
    outs = [tensors[i] for i in spec.output_indices()]
    where = spec.outputs or spec.graph[-1]
    try:
        model = keras.Model(inputs=ins[0] if len(ins) == 1 else ins,
                            outputs=outs[0] if len(outs) == 1 else outs, name=name)
    except Exception as exc:  # noqa: BLE001
        raise _fail(where, exc) from None
    return model, steps, layers


def build(spec: ModelSpec, name: str = "model", compile: bool = True,
          values: Optional[Dict[str, Any]] = None) -> BuildResult:
    """Build (and compile) the model a spec describes.

    Args:
        spec: the parsed spec.
        name: the Keras model name (the notebook name).
        compile: False to build only (settings are still checked).
        values: for a spec with search spaces, space name -> the value to
            build with (`{"dense_2.units": 128}`); spaces not given take their
            default (first choice, lower bound).

    Returns:
        A `BuildResult` (its `values` holds every space's value used).

    Raises:
        SpecError: unknown names, bad arguments, anything Keras rejects; a
            `values` name that is no space of the spec, or a value outside
            its space's domain.

    Example:
        >>> from nbkeras.modelbuild.catalog import parse_spec
        >>> spec = parse_spec("input 4\\ndense {8, 16}\\ndense 1")
        >>> build(spec, "m", values={"dense.units": 16}).model.count_params()
        97
    """
    used = resolve_values(spec, values)
    spec = fix(spec, used)
    model, steps, layers = build_graph(spec, name)
    outputs = [layers[i] for i in spec.output_indices()]
    result = BuildResult(model=model, steps=steps, values=used)
    resolve_compile(spec, model, outputs, result)
    if compile:
        try:
            model.compile(**result.compile_kwargs)
        except Exception as exc:  # noqa: BLE001
            where = (spec.settings.get("loss") or spec.settings.get("optimizer")
                     or spec.settings.get("metrics") or spec.graph[-1])
            raise _fail(where, exc) from None
    return result
