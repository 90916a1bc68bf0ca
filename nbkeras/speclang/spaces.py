"""Search spaces (version 2 of the language): reading, naming, fixing values.

A value may be written as a space (`{64, 128}`, `0.1..0.5`,
`1e-4..1e-2:log`, `32..256:32`) for `%tune` to explore. This module reads
the range forms (the parser reads `{...}` itself, since choices hold
ordinary values), gives every space its name (`dense_2.units`,
`optimizer.learning_rate`, or its `@LABEL`), and `fix` turns a spec with
spaces into the plain spec of one model (each space at a given value or
its default), so the builder and the code generator only ever see
version-1 statements. No Keras here: the one thing naming needs from Keras
(which parameter a positional value fills, a kind's automatic layer name)
comes through a `catalog`.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..errors import SpecError, did_you_mean
from .lex import SPACE_FORMS, Token, scalar
from .nodes import Arg, InputStmt, LayerStmt, ModelSpec, SettingStmt, Space, _same

_LABEL = re.compile(r"[A-Za-z_][\w.]*\Z")


def label_of(text: str, tok: Token) -> Tuple[str, Optional[str]]:
    """`16..64@w` -> ('16..64', 'w'); checks the label's form."""
    if "@" not in text:
        return text, None
    body, label = text.split("@", 1)
    if not _LABEL.match(label):
        column = tok.column + len(body)
        raise SpecError(f"malformed label `@{label}`: a label is a name like `@width` or "
                        "`@conv.filters`", tok.line, column, "@" + label)
    return body, label


def read_range(tok: Token) -> Arg:
    """A word written `LOW..HIGH[:log|:STEP][@LABEL]` -> an Arg of kind `space`."""
    text, label = label_of(tok.text, tok)
    pos = (tok.line, tok.column)
    low_text, _, rest = text.partition("..")
    high_text, _, option = rest.partition(":")
    form = f"malformed range `{text}`: expected {SPACE_FORMS}, like `0.1..0.5` or `32..256:32`"
    bounds = []
    for part in (low_text, high_text):
        arg = _number(part)
        if arg is None:
            raise SpecError(form, *pos, text)
        bounds.append(arg)
    low, high = bounds
    log, step = False, None
    if option:
        if option.lower() == "log":
            log = True
        else:
            step = _number(option)
            if step is None:
                raise SpecError(f"malformed range `{text}`: after `:` write `log` or a step, "
                                "like `1e-4..1e-2:log` or `32..256:32`", *pos, text)
    kind = "int" if all(isinstance(v, int) for v in (low, high) + ((step,) if step is not None
                                                                    else ())) else "float"
    if low > high:
        raise SpecError(f"empty range `{text}`: LOW {low_text} is above HIGH {high_text}; write "
                        f"`{high_text}..{low_text}`", *pos, text)
    if log and low <= 0:
        raise SpecError(f"log range `{text}` needs both bounds above 0 (a log-uniform range "
                        "cannot reach 0 or below), like `1e-4..1e-2:log`", *pos, text)
    if step is not None and (step <= 0 or step > high - low):
        raise SpecError(f"step {option} of `{text}` must be above 0 and at most the range's "
                        f"width {_show(high - low)}, like `32..256:32`", *pos, text)
    if kind == "float":
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    space = Space(label or "", kind, low=low, high=high, step=step, log=log, line=tok.line,
                  column=tok.column, text=tok.text)
    return Arg(low, "space", tok.text, tok.line, tok.column, space=space)


def _number(text: str):
    try:
        arg = scalar(Token("word", text, 0, 0))
    except SpecError:
        return None
    return arg.value if arg.kind in ("int", "float") and math.isfinite(arg.value) else None


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def make_choice(items: List[Arg], open_tok: Token, text: str, label: Optional[str]) -> Arg:
    """The Arg of a choice `{A, B, ...}` whose values are `items`."""
    space = Space(label or "", "choice", choices=tuple(i.value for i in items),
                  line=open_tok.line, column=open_tok.column, text=text)
    return Arg(items[0].value, "space", text, open_tok.line, open_tok.column,
               items=tuple(items), space=space)


def check_count(arg: Arg) -> Arg:
    """The count of `repeat COUNT STATEMENT`: an integer >= 1, or an integer space."""
    bad = None
    if arg.kind == "space":
        space = arg.space
        values = space.choices if space.kind == "choice" else (space.low,)
        if space.kind == "float" or any(isinstance(v, bool) or not isinstance(v, int)
                                        for v in values):
            bad = "an integer space"
        elif min(values) < 1:
            bad = "at least 1"
    elif arg.kind != "int" or arg.key is not None:
        bad = "an integer"
    elif arg.value < 1:
        bad = "at least 1"
    if bad:
        raise SpecError(f"the count of `repeat` must be {bad}, got `{arg.text}`: write `repeat 3 "
                        "dense 64` or `repeat {1, 2, 3} dense 64` or `repeat 1..4 dense 64`",
                        arg.line, arg.column, arg.text)
    return arg


# --- Naming -----------------------------------------------------------------------------

def _space_args(args) -> List[Tuple[int, Arg]]:
    return [(n, a) for n, a in enumerate(args) if a.kind == "space"]


def _defaults(args) -> Tuple[Arg, ...]:
    return tuple(_concrete(a, a.space.default) if a.kind == "space" else a for a in args)


def name_spaces(spec: ModelSpec, catalog: Callable[[], Any]) -> ModelSpec:
    """Give every space of `spec` its name; returns the spec with `spaces` filled.

    Args:
        spec: a parsed spec whose spaces have no names yet (labels aside).
        catalog: returns the object that knows Keras' layers (`layer_name(kind)`,
            `params(kind, args)`); called only when a layer's space needs it.
    """
    found: List[Tuple[Space, str]] = []  # (space, automatic name)
    names = spec.layer_names()
    reserved = {n for n in names.values() if n}
    counts: Dict[str, int] = {}
    repeats = 0
    cache: List[Any] = []

    def cat():
        if not cache:
            cache.append(catalog())
        return cache[0]

    def auto(base: str) -> str:
        n = counts.get(base, 0)
        while True:
            n += 1
            candidate = base if n == 1 else f"{base}_{n}"
            if candidate not in reserved:
                counts[base] = n
                return candidate

    for index, stmt in enumerate(spec.graph):
        spaced = (_space_args(stmt.options) if isinstance(stmt, InputStmt)
                  else _space_args(stmt.args) + [x for w in stmt.wrappers
                                                 for x in _space_args(w.args)])
        repeat = isinstance(stmt, LayerStmt) and stmt.repeat is not None
        if repeat:
            repeats += 1
            if stmt.repeat.kind == "space":
                found.append((stmt.repeat.space,
                              "repeat.count" if repeats == 1 else f"repeat_{repeats}.count"))
        layer = names[index]  # unbound statements count whether or not they hold spaces
        if layer is None and isinstance(stmt, InputStmt):
            layer = auto("input")
        elif layer is None:
            outer = stmt.wrappers[0].kind if stmt.wrappers else stmt.kind
            layer = auto(cat().layer_name(outer) or outer.lower())
        if not spaced:
            continue
        if isinstance(stmt, InputStmt):
            for _, arg in spaced:
                found.append((arg.space, f"{layer}.{arg.key.lower()}"))
            continue
        for wrap in stmt.wrappers:
            for _, arg in _space_args(wrap.args):
                found.append((arg.space, f"{layer}.{arg.key.lower()}"))
        inner = _space_args(stmt.args)
        params: Tuple[Optional[str], ...] = ()
        if any(a.key is None for _, a in inner):
            params = cat().params(stmt.kind, _defaults(stmt.args))
        for n, arg in inner:
            param = (arg.key.lower() if arg.key is not None
                     else (params[n] if n < len(params) and params[n] else f"arg{n + 1}"))
            found.append((arg.space, f"{layer}.{param}"))
    for stmt in _settings(spec):
        last = None
        for n, arg in enumerate(stmt.args):
            if arg.key is not None and arg.kind in ("word", "str"):
                last = arg.key
            if arg.kind != "space":
                continue
            key = (arg.key or str(n + 1)).lower()
            if stmt.setting == "optimizer":
                name = "optimizer." + ("learning_rate" if key == "lr" else key)
            elif stmt.setting == "loss_weights":
                name = f"loss_weights.{arg.key or n + 1}"
            elif stmt.output is not None:
                name = f"loss.{stmt.output}.{key}"
            elif last is not None:
                name = f"loss.{last}.{key}"
            else:
                name = f"loss.{key}"
            found.append((arg.space, name))
    return _assign(spec, found)


def _settings(spec: ModelSpec) -> List[SettingStmt]:
    return list(spec.settings.values()) + list(spec.output_losses)


def _assign(spec: ModelSpec, found: List[Tuple[Space, str]]) -> ModelSpec:
    """Unique names (labels first; an automatic name that clashes gets `_2`), in source order."""
    labels: Dict[str, Space] = {}
    for space, _ in sorted(found, key=lambda f: (f[0].line, f[0].column)):
        if space.name:
            if space.name in labels:
                first = labels[space.name]
                raise SpecError(f"the label `@{space.name}` is given twice (first on line "
                                f"{first.line}, column {first.column}): labels name spaces, so "
                                "each must be unique", space.line, space.column, space.text)
            labels[space.name] = space
    taken = set(labels)
    named: Dict[Tuple[int, int], Space] = {}
    for space, automatic in found:
        name = space.name
        if not name:
            name, n = automatic, 1
            while name in taken:
                n += 1
                name = f"{automatic}_{n}"
            taken.add(name)
        named[(space.line, space.column)] = replace(space, name=name)
    spaces = tuple(sorted(named.values(), key=lambda s: (s.line, s.column)))
    return _map_spaces(replace(spec, spaces=spaces),
                       lambda arg: replace(arg, space=named[(arg.space.line, arg.space.column)]))


def _map_spaces(spec: ModelSpec, fn: Callable[[Arg], Arg]) -> ModelSpec:
    """The spec with `fn` applied to every Arg of kind `space`."""

    def args(seq):
        return tuple(fn(a) if a.kind == "space" else a for a in seq)

    graph = []
    for stmt in spec.graph:
        if isinstance(stmt, InputStmt):
            graph.append(replace(stmt, options=args(stmt.options)))
        else:
            graph.append(replace(
                stmt, args=args(stmt.args),
                wrappers=tuple(replace(w, args=args(w.args)) for w in stmt.wrappers),
                repeat=None if stmt.repeat is None else args((stmt.repeat,))[0]))
    settings = {k: replace(v, args=args(v.args)) for k, v in spec.settings.items()}
    output_losses = tuple(replace(s, args=args(s.args)) for s in spec.output_losses)
    return replace(spec, graph=tuple(graph), settings=settings, output_losses=output_losses)


# --- Fixing values -----------------------------------------------------------------------

def _concrete(arg: Arg, value: Any) -> Arg:
    """The plain Arg a space becomes at `value` (keeping its key and position)."""
    space = arg.space
    if space.kind == "choice":
        item = next(i for i in arg.items if _same(value, i.value))
        return Arg(item.value, item.kind, item.text, arg.line,
                   arg.column if arg.key is not None else item.column, key=arg.key,
                   items=item.items)
    value = int(round(value)) if space.kind == "int" else float(value)
    return Arg(value, space.kind, repr(value), arg.line, arg.column, key=arg.key)


def resolve_values(spec: ModelSpec, values: Optional[Mapping[str, Any]] = None
                   ) -> Dict[str, Any]:
    """Every space's value: `values` where given, the default otherwise.

    Raises:
        SpecError: a name that is no space of the spec, or a value outside its domain.
    """
    values = dict(values or {})
    known = [s.name for s in spec.spaces]
    for name in values:
        if name not in known:
            hint = did_you_mean(name, known) or (
                f"; its spaces are {', '.join(known)}" if known else "; the spec has no spaces")
            raise SpecError(f"unknown search space `{name}`{hint}", None, None, name)
    used: Dict[str, Any] = {}
    for space in spec.spaces:
        value = values.get(space.name, space.default)
        if space.name in values and not space.contains(value):
            raise SpecError(f"{value!r} is outside the domain of `{space.name}`: "
                            f"{space.domain} (line {space.line})", space.line, space.column,
                            space.text)
        used[space.name] = value
    return used


def fix(spec: ModelSpec, values: Optional[Mapping[str, Any]] = None) -> ModelSpec:
    """The version-1 spec of one model: each space at `values[name]` or its default.

    Example:
        >>> from nbkeras.speclang.parse import parse
        >>> spec = parse("input 4\\ndense 8 {relu, tanh}@act\\ndropout 0.1..0.5")
        >>> fix(spec, {"act": "tanh"}).graph[1].args[1].value
        'tanh'
    """
    if not spec.spaces:
        return spec
    used = resolve_values(spec, values)
    plain = _map_spaces(spec, lambda arg: _concrete(arg, used[arg.space.name]))
    return replace(plain, spaces=())
