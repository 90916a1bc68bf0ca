"""The parsed form of a `%%model` spec: frozen dataclasses, no Keras.

The parser produces these and every later stage (lint, build, codegen)
reads them, so the stages only share plain data. Each node keeps the line
and column it came from, so that a stage far from the text can still point
the user at the right place. `ModelSpec.to_config()` gives plain JSON and
`ModelSpec.from_config()` reads it back into an equal spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Tuple

#: Kinds of argument value: how the value was written in the spec.
VALUE_KINDS = ("int", "float", "bool", "none", "str", "word", "tuple", "list", "space")

#: Kinds of search space.
SPACE_KINDS = ("choice", "int", "float")


@dataclass(frozen=True)
class Space:
    """A search space written in place of a value (version 2 of the language).

    Attributes:
        name: the space's name: `NAME.ARG` (`dense_2.units`,
            `optimizer.learning_rate`, `repeat.count`) or its `@LABEL`.
        kind: `'choice'` (`{A, B}`), `'int'` or `'float'` (`LOW..HIGH`).
        choices: the values of a choice (Python values, as layers get them),
            `()` for a range.
        low: the lower bound of a range, None for a choice.
        high: the upper bound of a range, None for a choice.
        step: the grid step of `LOW..HIGH:STEP`, or None.
        log: True for `LOW..HIGH:log` (log-uniform).
        line: 1-based line of the space.
        column: 1-based column of the space (of its `{` or its first bound).
        text: the space as written.

    Example:
        >>> Space("dense.units", "int", low=32, high=256, step=32).default
        32
    """

    name: str
    kind: str
    choices: Tuple[Any, ...] = ()
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    line: int = 0
    column: int = 0
    text: str = ""

    @property
    def default(self) -> Any:
        """The value a cell without `%tune` builds: the first choice, or the lower bound."""
        return self.choices[0] if self.kind == "choice" else self.low

    @property
    def domain(self) -> str:
        """The domain in the spec's own notation: `{64, 128}`, `1e-4..1e-2:log`, `32..256:32`."""
        if self.kind == "choice":
            return "{" + ", ".join(_show(c) for c in self.choices) + "}"
        text = f"{_show(self.low)}..{_show(self.high)}"
        if self.log:
            text += ":log"
        if self.step is not None:
            text += f":{_show(self.step)}"
        return text

    def contains(self, value: Any) -> bool:
        """Whether `value` lies in the domain (a listed choice; in range, on the grid)."""
        if self.kind == "choice":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        span = self.high - self.low
        tol = 1e-9 * max(1.0, abs(span))
        if not (self.low - tol <= value <= self.high + tol):
            return False
        if self.step is not None:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-6
        return True

    def to_config(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "choices": [_plain(c) for c in self.choices],
                "low": self.low, "high": self.high, "step": self.step, "log": self.log,
                "line": self.line, "column": self.column, "text": self.text}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Space":
        kwargs = dict(config)
        kwargs["choices"] = tuple(_frozen(c) for c in config.get("choices", ()))
        return cls(**kwargs)


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value) if not isinstance(value, str) else value


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps `True` apart from `1` and `1` apart from `'1'`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Arg:
    """One argument of a statement: positional (`key is None`) or `key=value`.

    Attributes:
        value: the Python value (int, float, bool, None, str, or a tuple for
            both `AxB` tuples and `[a, b]` lists; `kind` tells them apart).
        kind: one of `VALUE_KINDS`; `word` is a bare word, `str` a quoted string.
        text: the value as written.
        line: 1-based line of the value.
        column: 1-based column of the value (of the key when there is one).
        key: the keyword as written, or None for a positional value (layer
            and optimizer keywords are case-insensitive; output names in
            per-output settings are not).
        items: for lists, the element `Arg`s (nested lists keep their kinds);
            for a choice space, the choices as `Arg`s.
        space: for kind `space`, the `Space` (then `value` is its default).
    """

    value: Any
    kind: str
    text: str
    line: int
    column: int
    key: Optional[str] = None
    items: Tuple["Arg", ...] = ()
    space: Optional[Space] = None

    def python(self) -> Any:
        """The value as Keras should receive it (lists become Python lists)."""
        if self.kind == "list":
            return [item.python() for item in self.items]
        return self.value

    def to_config(self) -> Dict[str, Any]:
        config = {"kind": self.kind, "text": self.text, "line": self.line,
                  "column": self.column, "key": self.key}
        if self.kind == "space":
            config["space"] = self.space.to_config()
            config["items"] = [item.to_config() for item in self.items]
            config["value"] = _plain(self.value)
        elif self.kind == "list":
            config["items"] = [item.to_config() for item in self.items]
        elif self.kind == "tuple":
            config["value"] = list(self.value)
        else:
            config["value"] = self.value
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Arg":
        kind = config["kind"]
        items = tuple(cls.from_config(c) for c in config.get("items", ()))
        if kind == "space":
            space = Space.from_config(config["space"])
            return cls(value=_frozen(config["value"]), kind=kind, text=config["text"],
                       line=config["line"], column=config["column"], key=config.get("key"),
                       items=items, space=space)
        if kind == "list":
            value: Any = tuple(item.value for item in items)
        elif kind == "tuple":
            value = tuple(config["value"])
        else:
            value = config["value"]
        return cls(value=value, kind=kind, text=config["text"], line=config["line"],
                   column=config["column"], key=config.get("key"), items=items)


@dataclass(frozen=True)
class Source:
    """A name in a statement's source list `(a, b)`; `key` for `(x, mask=m)`."""

    name: str
    line: int
    column: int
    key: Optional[str] = None


@dataclass(frozen=True)
class Wrap:
    """A wrapper prefixing a layer statement (`bidirectional merge_mode=sum`).

    Attributes:
        kind: the wrapper kind as written (`bidirectional`, `bi`, `td`).
        column: column of the kind.
        args: the wrapper's own `key=value` arguments.
    """

    kind: str
    column: int
    args: Tuple[Arg, ...] = ()

    def to_config(self) -> Dict[str, Any]:
        return {"kind": self.kind, "column": self.column,
                "args": [a.to_config() for a in self.args]}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Wrap":
        return cls(config["kind"], config["column"],
                   tuple(Arg.from_config(a) for a in config["args"]))


@dataclass(frozen=True)
class Statement:
    """Base of the statements; `line` is the statement's first line."""

    line: int
    column: int
    text: str

    type_name = "statement"

    def to_config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {"type": self.type_name}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("args", "options"):
                value = [a.to_config() for a in value]
            elif f.name == "sources":
                value = [{"name": s.name, "line": s.line, "column": s.column, "key": s.key}
                         for s in value]
            elif f.name == "wrappers":
                value = [w.to_config() for w in value]
            elif f.name == "repeat":
                value = None if value is None else value.to_config()
            elif f.name == "names":
                value = [list(n) for n in value]
            elif isinstance(value, tuple):  # shape, sources_at
                value = list(value)
            config[f.name] = value
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Statement":
        kind = _STATEMENT_TYPES[config["type"]]
        kwargs = {}
        for f in fields(kind):
            value = config.get(f.name)
            if f.name in ("args", "options"):
                value = tuple(Arg.from_config(a) for a in value)
            elif f.name == "sources":
                value = tuple(Source(**s) for s in value)
            elif f.name == "wrappers":
                value = tuple(Wrap.from_config(w) for w in value or ())
            elif f.name == "repeat":
                value = None if value is None else Arg.from_config(value)
            elif f.name == "names":
                value = tuple((n[0], n[1], n[2]) for n in value)
            elif isinstance(value, list):  # shape, sources_at
                value = tuple(value)
            kwargs[f.name] = value
        return kind(**kwargs)


@dataclass(frozen=True)
class InputStmt(Statement):
    """`[NAME =] input SHAPE [key=value ...]`.

    Attributes:
        target: the bound name, or None.
        shape: the shape without the batch dimension (None for `?`), or None
            when the shape is given as `shape=` / `batch_shape=` in `options`.
        options: the keyword arguments for `keras.Input`.
        implicit: True for the input the cell's `--input` option supplied.
    """

    target: Optional[str] = None
    shape: Optional[Tuple[Optional[int], ...]] = None
    options: Tuple[Arg, ...] = ()
    implicit: bool = False

    type_name = "input"


@dataclass(frozen=True)
class LayerStmt(Statement):
    """`[NAME =] KIND [ARG ...] [(SRC, ...)]`.

    Attributes:
        target: the bound name, or None.
        kind: the layer kind as written (resolved against Keras by the builder).
        kind_column: column of the kind.
        args: positional and keyword arguments, in order.
        sources: the source list; empty means "the statement before".
        previous: index in `ModelSpec.graph` of the statement whose output
            this layer takes when it has no source list.
        sources_at: for each source, the index in `ModelSpec.graph` of the
            statement that bound it at this point of the cell.
        wrappers: the wrappers around the layer, outermost first
            (`bidirectional lstm 64`: kind `lstm`, one `Wrap`).
        repeat: the count of `repeat COUNT STATEMENT` (an int or int-space
            `Arg`), or None for a statement written once.
    """

    target: Optional[str] = None
    kind: str = ""
    kind_column: int = 1
    args: Tuple[Arg, ...] = ()
    sources: Tuple[Source, ...] = ()
    previous: Optional[int] = None
    sources_at: Tuple[int, ...] = ()
    wrappers: Tuple[Wrap, ...] = ()
    repeat: Optional[Arg] = None

    type_name = "layer"

    def name_args(self) -> Tuple[Arg, ...]:
        """The arguments of the statement's outermost layer (where `name=` names it)."""
        return self.wrappers[0].args if self.wrappers else self.args


@dataclass(frozen=True)
class OutputsStmt(Statement):
    """`outputs NAME[, NAME ...]`; `names` holds (name, column, graph index)."""

    names: Tuple[Tuple[str, int, int], ...] = ()

    type_name = "outputs"


@dataclass(frozen=True)
class SettingStmt(Statement):
    """`optimizer`, `loss`, `loss_weights` or `metrics` with its arguments.

    Attributes:
        setting: the setting's keyword, lower-case (`loss_weights` with its
            underscore).
        args: positional values and `key=value` pairs in order.
        output: for `loss OUT: LOSS [key=value ...]`, the output's name
            (then `args` are the loss and its options).
        output_column: column of that output name.
    """

    setting: str = ""
    args: Tuple[Arg, ...] = ()
    output: Optional[str] = None
    output_column: int = 0

    type_name = "setting"


_STATEMENT_TYPES = {c.type_name: c for c in (InputStmt, LayerStmt, OutputsStmt, SettingStmt)}


@dataclass(frozen=True)
class ModelSpec:
    """A whole cell: the graph statements in order, outputs and settings.

    Attributes:
        graph: the input and layer statements, in order.
        outputs: the `outputs` statement, or None (the last layer is the output).
        settings: setting keyword -> its statement (each at most once; a
            `loss` here is the `loss LOSS` or `loss OUT=LOSS ...` form).
        text: the cell body the spec was parsed from.
        output_losses: the `loss OUT: LOSS [key=value ...]` statements, in order.
        spaces: the search spaces, in source order, names unique (empty for a
            version-1 cell).
    """

    graph: Tuple[Statement, ...] = ()
    outputs: Optional[OutputsStmt] = None
    settings: Dict[str, SettingStmt] = field(default_factory=dict)
    text: str = ""
    output_losses: Tuple[SettingStmt, ...] = ()
    spaces: Tuple[Space, ...] = ()

    def __hash__(self):  # settings is a dict; hash what identifies the spec
        return hash((self.graph, self.outputs, self.text, self.output_losses))

    def space(self, name: str) -> Space:
        """The space called `name` (KeyError if none)."""
        for space in self.spaces:
            if space.name == name:
                return space
        raise KeyError(name)

    def output_indices(self) -> Tuple[int, ...]:
        """Indices in `graph` of the model's outputs, in order."""
        if self.outputs is not None:
            return tuple(index for _, _, index in self.outputs.names)
        layers = [i for i, s in enumerate(self.graph) if isinstance(s, LayerStmt)]
        return (layers[-1],) if layers else ()

    def input_indices(self) -> Tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.graph) if isinstance(s, InputStmt))

    def layer_names(self) -> Dict[int, Optional[str]]:
        """The Keras name each statement's layer gets (None: Keras's automatic name).

        `name=` when given; otherwise the n-th statement bound to NAME is
        named NAME (n = 1) or NAME_n.
        """
        counts: Dict[str, int] = {}
        names: Dict[int, Optional[str]] = {}
        for index, stmt in enumerate(self.graph):
            options = stmt.options if isinstance(stmt, InputStmt) else stmt.name_args()
            given = next((a for a in options if (a.key or "").lower() == "name"), None)
            target = stmt.target
            if target is not None:
                counts[target] = counts.get(target, 0) + 1
            if given is not None and isinstance(given.value, str):
                names[index] = given.value
            elif target is not None:
                n = counts[target]
                names[index] = target if n == 1 else f"{target}_{n}"
            else:
                names[index] = None
        return names

    def to_config(self) -> Dict[str, Any]:
        return {
            "graph": [s.to_config() for s in self.graph],
            "outputs": None if self.outputs is None else self.outputs.to_config(),
            "settings": {k: v.to_config() for k, v in self.settings.items()},
            "text": self.text,
            "output_losses": [s.to_config() for s in self.output_losses],
            "spaces": [s.to_config() for s in self.spaces],
        }

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "ModelSpec":
        outputs = config.get("outputs")
        return cls(
            graph=tuple(Statement.from_config(s) for s in config["graph"]),
            outputs=None if outputs is None else Statement.from_config(outputs),
            settings={k: Statement.from_config(v) for k, v in config["settings"].items()},
            text=config.get("text", ""),
            output_losses=tuple(Statement.from_config(s)
                                for s in config.get("output_losses", ())),
            spaces=tuple(Space.from_config(s) for s in config.get("spaces", ())),
        )
