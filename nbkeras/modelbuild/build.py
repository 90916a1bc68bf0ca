"""`ModelSpec` -> compiled `keras.Model`, with Keras' errors mapped to lines.

This is the spec stage that builds: each statement's class and kwargs come
from `layers.py` (a pretrained `base` from `base.py`), the graph is wired
here, and anything Keras raises while building is re-raised as a
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
from ..speclang.nodes import InputStmt, LayerStmt, ModelSpec
from ..speclang.spaces import fix, resolve_values
from .layers import (MERGING, _NOT_TENSORS, _fail, _keywords, closest, layer_kinds,  # noqa: F401
                     resolve_layer, resolve_wrapper)
from .names import norm, short  # noqa: F401  (re-exported)
from .settings import resolve_compile

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
    code: List[str] = field(default_factory=list)  # a `base`: its lines (see `base.Base.code`)


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
        bases: the `base.Base` of each `base` statement, by graph index.
    """

    model: Any
    steps: List[Step]
    compile_kwargs: Dict[str, Any] = field(default_factory=dict)
    compile_code: Dict[str, str] = field(default_factory=dict)
    deferred_losses: Dict[str, str] = field(default_factory=dict)
    message: Optional[str] = None
    values: Dict[str, Any] = field(default_factory=dict)
    bases: Dict[int, Any] = field(default_factory=dict)


def _input_kwargs(stmt: InputStmt) -> Dict[str, Any]:
    accepted = [p for p in inspect.signature(keras.Input).parameters]
    kwargs: Dict[str, Any] = {}
    if stmt.shape is not None:
        kwargs["shape"] = tuple(stmt.shape)
    return _keywords(stmt, stmt.options, accepted, "input", kwargs)


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


def _base_statement(stmt: LayerStmt, index: int, name: Optional[str], used, tensors, layers,
                    steps, bases) -> None:
    """A `base` statement: the pretrained model (`base.py`), called on its source."""
    from .base import base_name, build_base
    if stmt.repeat is not None or stmt.wrappers:
        raise SpecError(f"`{stmt.text}`: a base is one model: it cannot be repeated or wrapped",
                        stmt.line, stmt.column, stmt.text)
    if len(stmt.sources) > 1:
        raise SpecError(f"`{stmt.text}`: a base takes one input", stmt.line, stmt.column,
                        stmt.text)
    source = stmt.sources_at[0] if stmt.sources else stmt.previous
    x = tensors[source]
    made = build_base(stmt, name or base_name(stmt, None), tuple(x.shape[1:]))
    try:
        h = made.pre(x) if made.pre is not None else x
        out = made.model(h, training=False) if made.frozen else made.model(h)
    except Exception as exc:  # noqa: BLE001
        raise _fail(stmt, exc) from None
    if made.pre is not None:
        _claim_name(used, made.pre.name, stmt)
    _claim_name(used, made.model.name, stmt)
    tensors[index], layers[index], bases[index] = out, made.model, made
    steps.append(Step(index, "base", {"name": made.model.name}, (source,), code=made.code))


def build_graph(spec: ModelSpec, name: str = "model", bases: Optional[Dict[int, Any]] = None
                ) -> Tuple[Any, List[Step], Dict[int, Any]]:
    """Build the layers and the (uncompiled) model; returns (model, steps, layers by index).
    `bases` receives the `base.Base` of each `base` statement."""
    bases = {} if bases is None else bases
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
        if norm(stmt.kind) == "base":
            _base_statement(stmt, index, names[index], used, tensors, layers, steps, bases)
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
    bases: Dict[int, Any] = {}
    model, steps, layers = build_graph(spec, name, bases)
    outputs = [layers[i] for i in spec.output_indices()]
    result = BuildResult(model=model, steps=steps, values=used, bases=bases)
    resolve_compile(spec, model, outputs, result)
    if compile:
        try:
            model.compile(**result.compile_kwargs)
        except Exception as exc:  # noqa: BLE001
            where = (spec.settings.get("loss") or spec.settings.get("optimizer")
                     or spec.settings.get("metrics") or spec.graph[-1])
            raise _fail(where, exc) from None
    return result
