"""Text of a `%%model` cell -> `ModelSpec`, with line/column errors.

The parser knows the syntax of the spec language (see
`shared/design/spec-language.md`) and which names are bound where; it does
not know Keras (layer kinds, activations and keyword names are checked by
the builder), so it stays fast and importable without TensorFlow. Nothing
here evaluates text as Python: values are read by small regular
expressions, and every mistake becomes a `SpecError` pointing at the text.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from ..errors import SpecError, did_you_mean
from .nodes import Arg, InputStmt, LayerStmt, ModelSpec, OutputsStmt, SettingStmt, Source

SETTINGS = {"optimizer": "optimizer", "loss": "loss", "loss_weights": "loss_weights",
            "lossweights": "loss_weights", "metrics": "metrics", "metric": "metrics"}
KEYWORDS = ("input", "outputs", "optimizer", "loss", "loss_weights", "metrics")

_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_NUMBERISH = re.compile(r"[+-]?\.?\d")
_DIM = re.compile(r"[+-]?\d+\Z")
_PUNCT = "=(),[]"
_VALUE_FORMS = ("a number (`128`, `-1`, `0.2`, `1e-3`), `true`/`false`/`none`, "
                "a quoted string, a word, a tuple like `3x3` or a list like `[1, 2]`")

Char = Tuple[str, int, int]  # character, line, column


class Token:
    __slots__ = ("kind", "text", "line", "column")

    def __init__(self, kind: str, text: str, line: int, column: int):
        self.kind, self.text, self.line, self.column = kind, text, line, column

    def is_(self, punct: str) -> bool:
        return self.kind == "punct" and self.text == punct


def logical_lines(text: str) -> List[List[Char]]:
    """Strip comments, join `\\` continuations; characters keep their positions."""
    lines: List[List[Char]] = []
    pending: Optional[List[Char]] = None
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.rstrip("\r")
        chars: List[Char] = []
        quote, quote_col, escape = "", 0, False
        for col, ch in enumerate(raw, start=1):
            if quote:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote, quote_col = ch, col
            elif ch == "#":
                break
            chars.append((ch, number, col))
        if quote:
            raise SpecError(f"unclosed quote {quote} in `{raw[quote_col - 1:].strip()}`: "
                            f"end the string with {quote} on the same line",
                            number, quote_col, raw[quote_col - 1:].strip())
        while chars and chars[-1][0].isspace():
            chars.pop()
        continued = bool(chars) and chars[-1][0] == "\\"
        if continued:
            chars.pop()
        if pending is not None:
            chars = pending + [(" ", number, 0)] + chars
        if continued:
            pending = chars
        else:
            pending = None
            lines.append(chars)
    if pending is not None:
        lines.append(pending)
    return lines


def tokenize(chars: List[Char]) -> List[Token]:
    tokens: List[Token] = []
    i = 0
    while i < len(chars):
        ch, line, col = chars[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token("punct", ch, line, col))
            i += 1
        elif ch in "'\"":
            value, j = [], i + 1
            while chars[j][0] != ch:
                if chars[j][0] == "\\":
                    j += 1
                value.append(chars[j][0])
                j += 1
            tokens.append(Token("str", "".join(value), line, col))
            i = j + 1
        else:
            j = i
            while j < len(chars) and not chars[j][0].isspace() and chars[j][0] not in _PUNCT + "'\"":
                j += 1
            tokens.append(Token("word", "".join(c for c, _, _ in chars[i:j]), line, col))
            i = j
    return tokens


def parse_shape(text: str, line: Optional[int] = None, column: Optional[int] = None
                ) -> Tuple[Optional[int], ...]:
    """`28x28` -> (28, 28); `784` -> (784,); `?x8` / `nonex8` -> (None, 8)."""
    dims: List[Optional[int]] = []
    for part in re.split(r"[xX]", text):
        if part == "?" or part.lower() == "none":
            dims.append(None)
        elif _DIM.match(part) and int(part) > 0:
            dims.append(int(part))
        else:
            raise SpecError(f"malformed shape `{text}`: expected positive dimensions joined "
                            "by `x`, like `28x28`, `784` or `?x8` (`?` for an unknown size)",
                            line, column, text)
    return tuple(dims)


def _scalar(tok: Token) -> Arg:
    """A value token (word or quoted string) -> Arg."""
    text, pos = tok.text, (tok.line, tok.column)
    if tok.kind == "str":
        return Arg(text, "str", repr(text), *pos)
    low = text.lower()
    if low in ("true", "false"):
        return Arg(low == "true", "bool", text, *pos)
    if low == "none":
        return Arg(None, "none", text, *pos)
    if _INT.match(text):
        return Arg(int(text), "int", text, *pos)
    if _FLOAT.match(text):
        return Arg(float(text), "float", text, *pos)
    parts = re.split(r"[xX]", text)
    if len(parts) > 1 and all(_DIM.match(p) or p == "?" or p.lower() == "none" for p in parts):
        value = tuple(None if (p == "?" or p.lower() == "none") else int(p) for p in parts)
        return Arg(value, "tuple", text, *pos)
    if _NUMBERISH.match(text):
        raise SpecError(f"malformed value `{text}`: expected {_VALUE_FORMS}", *pos, text)
    if not _WORD.match(text):
        bad = next((c for c in text if not (c.isalnum() or c in "_.-")), text[0])
        raise SpecError(f"unexpected `{bad}` in `{text}`: expected {_VALUE_FORMS} "
                        "(spec values are never run as Python)", *pos, text)
    return Arg(text, "word", text, *pos)


class _Statement:
    """Reads the tokens of one logical line."""

    def __init__(self, tokens: List[Token]):
        self.tokens, self.i = tokens, 0

    def peek(self, k: int = 0) -> Optional[Token]:
        return self.tokens[self.i + k] if self.i + k < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def value(self, after: Token) -> Arg:
        tok = self.peek()
        if tok is None or (tok.kind == "punct" and tok.text != "["):
            where = tok or after
            shown = tok.text if tok else after.text
            raise SpecError(f"expected a value after `{after.text}`, got "
                            f"{'`' + shown + '`' if tok else 'the end of the line'}: "
                            f"expected {_VALUE_FORMS}", where.line, where.column, shown)
        self.take()
        if tok.is_("["):
            return self.list_(tok)
        return _scalar(tok)

    def list_(self, open_tok: Token) -> Arg:
        items: List[Arg] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise SpecError("unclosed `[`: expected `]` to end the list, like `[1, 2]`",
                                open_tok.line, open_tok.column, "[")
            if tok.is_("]"):
                self.take()
                break
            items.append(self.value(open_tok if not items else self.tokens[self.i - 1]))
            sep = self.peek()
            if sep is not None and sep.is_(","):
                self.take()
            elif sep is None:
                raise SpecError("unclosed `[`: expected `]` to end the list, like `[1, 2]`",
                                open_tok.line, open_tok.column, "[")
            elif not sep.is_("]"):
                raise SpecError(f"expected `,` or `]` in the list, got `{sep.text}`: write "
                                "lists like `[1, 2]`", sep.line, sep.column, sep.text)
        text = "[" + ", ".join(a.text for a in items) + "]"
        return Arg(tuple(a.value for a in items), "list", text, open_tok.line,
                   open_tok.column, items=tuple(items))

    def args(self, allow_sources: bool, what: str
             ) -> Tuple[List[Arg], List[Source], Optional[Token]]:
        args: List[Arg] = []
        sources: List[Source] = []
        paren: Optional[Token] = None
        while self.peek() is not None:
            tok = self.take()
            nxt = self.peek()
            if tok.kind == "word" and nxt is not None and nxt.is_("="):
                if not tok.text.isidentifier():
                    raise SpecError(f"`{tok.text}=` is not a keyword: keywords are names like "
                                    "`units=128`", tok.line, tok.column, tok.text)
                self.take()
                arg = self.value(nxt)
                args.append(Arg(arg.value, arg.kind, arg.text, tok.line, tok.column,
                                key=tok.text, items=arg.items))
            elif tok.is_("(") and allow_sources:
                if paren is not None:
                    raise SpecError("a statement takes one source list `(a, b)`; found a second",
                                    tok.line, tok.column, "(")
                paren = tok
                sources = self.sources(tok)
            elif tok.is_("["):
                args.append(self.list_(tok))
            elif tok.kind == "punct":
                hint = ("sources go in one list `(a, b)` after the arguments" if tok.text in "()"
                        else "write `key=value` with a keyword before `=`" if tok.text == "="
                        else f"expected {_VALUE_FORMS}")
                raise SpecError(f"unexpected `{tok.text}` in {what}: {hint}",
                                tok.line, tok.column, tok.text)
            else:
                args.append(_scalar(tok))
        return args, sources, paren

    def sources(self, open_tok: Token) -> List[Source]:
        names: List[Source] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise SpecError("unclosed `(`: expected `)` to end the source list, like `(x, y)`",
                                open_tok.line, open_tok.column, "(")
            self.take()
            if tok.is_(")"):
                break
            if tok.is_(","):
                continue
            if tok.kind != "word" or not tok.text.isidentifier():
                raise SpecError(f"`{tok.text}` is not a name: a source list names bound outputs, "
                                "like `(x, y)`", tok.line, tok.column, tok.text)
            names.append(Source(tok.text, tok.line, tok.column))
        if not names:
            raise SpecError("empty source list `()`: name the inputs, like `(x)` or `(x, y)`",
                            open_tok.line, open_tok.column, "()")
        return names


def _unknown_name(name: str, line: int, column: int, bound: Dict[str, int]) -> SpecError:
    hint = did_you_mean(name, bound) or (
        " (bind it first with `" + name + " = ...`" +
        (f"; bound so far: {', '.join(sorted(bound))})" if bound else ")"))
    return SpecError(f"unknown name `{name}`{hint}", line, column, name)


def parse(text: str, input_shape: Optional[str] = None) -> ModelSpec:
    """Parse a `%%model` cell body.

    Args:
        text: the cell body.
        input_shape: the cell's `--input SHAPE` option, when given.

    Returns:
        The `ModelSpec`.

    Raises:
        SpecError: for any mistake, with the 1-based line and column.
    """
    graph: list = []
    bound: Dict[str, int] = {}
    settings: Dict[str, SettingStmt] = {}
    outputs: Optional[OutputsStmt] = None
    pending_outputs: List[Tuple[str, int, int]] = []
    if input_shape is not None:
        shape = parse_shape(input_shape.strip())
        graph.append(InputStmt(0, 0, f"--input {input_shape}", shape=shape, implicit=True))
    lines = [line for line in logical_lines(text) if line]
    for chars in lines:
        tokens = tokenize(chars)
        if not tokens:
            continue
        st = _Statement(tokens)
        line, column = tokens[0].line, tokens[0].column
        stmt_text = "".join(c for c, _, _ in chars).strip()
        target = None
        if len(tokens) >= 2 and tokens[1].is_("=") and tokens[0].kind == "word":
            target = tokens[0].text
            if not target.isidentifier():
                raise SpecError(f"`{target}` is not a name: bound names are identifiers like "
                                "`x` or `hidden_1`", line, column, target)
            st.i = 2
        head = st.peek()
        if head is None:
            raise SpecError(f"expected a layer kind or `input` after `{target} =`",
                            line, column, stmt_text)
        if head.kind != "word" or not head.text.isidentifier():
            raise SpecError(f"expected a layer kind, `input`, `outputs` or a setting, got "
                            f"`{head.text}`", head.line, head.column, head.text)
        st.take()
        word = head.text.lower()
        if word in SETTINGS or word in ("outputs", "output"):
            if target is not None:
                raise SpecError(f"`{head.text}` cannot be bound to a name: drop `{target} =`",
                                line, column, stmt_text)
            if word in ("outputs", "output"):
                args = [_scalar(t) for t in st.tokens[st.i:] if not t.is_(",")]
                if outputs is not None:
                    raise SpecError(f"`outputs` is given twice (first on line {outputs.line}): "
                                    "list every output in one statement", line, column, stmt_text)
                if not args:
                    raise SpecError("`outputs` needs at least one name, like `outputs a, b`",
                                    line, column, stmt_text)
                for arg in args:
                    if arg.key is not None or arg.kind != "word" or not arg.text.isidentifier():
                        raise SpecError(f"`{arg.text}` is not a bound name: write "
                                        "`outputs a, b`", arg.line, arg.column, arg.text)
                    pending_outputs.append((arg.text, arg.line, arg.column))
                outputs = OutputsStmt(line, column, stmt_text, names=tuple(
                    (n, c, bound.get(n, -1)) for n, _, c in pending_outputs))
                continue
            args, _, _ = st.args(False, f"`{head.text}`")
            key = SETTINGS[word]
            if key in settings:
                raise SpecError(f"`{key}` is given twice (first on line {settings[key].line}): "
                                "keep one", line, column, stmt_text)
            settings[key] = _check_setting(key, head, args, line, column, stmt_text)
            continue
        if word == "input":
            graph.append(_input(st, head, target, line, column, stmt_text, input_shape))
        else:
            args, srcs, _ = st.args(True, f"`{head.text}`")
            for src in srcs:
                if src.name not in bound:
                    raise _unknown_name(src.name, src.line, src.column, bound)
            previous = len(graph) - 1 if graph else None
            if not srcs and previous is None:
                raise SpecError(f"`{head.text}` has no input: the first statement must be an "
                                "input, like `input 28x28` (or give `--input SHAPE` on the "
                                "`%%model` line)", line, column, stmt_text)
            graph.append(LayerStmt(line, column, stmt_text, target=target, kind=head.text,
                                   kind_column=head.column, args=tuple(args),
                                   sources=tuple(srcs), previous=previous,
                                   sources_at=tuple(bound[s.name] for s in srcs)))
        if target is not None:
            bound[target] = len(graph) - 1
    if outputs is not None:  # names bound after `outputs` resolve to their newest binding
        resolved = []
        for name, col, index in outputs.names:
            if index < 0:
                if name not in bound:
                    raise _unknown_name(name, outputs.line, col, bound)
                index = bound[name]
            resolved.append((name, col, index))
        outputs = OutputsStmt(outputs.line, outputs.column, outputs.text, names=tuple(resolved))
    if not graph or all(isinstance(s, InputStmt) for s in graph):
        last = graph[-1] if graph and graph[-1].line else None
        raise SpecError("the spec has no layers: write an `input SHAPE` line and at least one "
                        "layer, like `dense 10 softmax`", last.line if last else 1,
                        last.column if last else 1, last.text if last else text.strip())
    return ModelSpec(graph=tuple(graph), outputs=outputs, settings=settings, text=text)


def _input(st: _Statement, head: Token, target, line, column, stmt_text, input_shape):
    if input_shape is not None:
        raise SpecError("the spec has its own `input` statement: drop `--input` from the "
                        "`%%model` line or this line", line, column, stmt_text)
    shape = None
    first = st.peek()
    if first is not None and first.kind == "word" and not (st.peek(1) and st.peek(1).is_("=")):
        st.take()
        shape = parse_shape(first.text, first.line, first.column)
    args, _, _ = st.args(False, "`input`")
    options = []
    for arg in args:
        if arg.key is None or arg.key.lower() == "shape":
            if shape is not None:
                raise SpecError(f"`input` takes one shape; unexpected `{arg.text}` (keyword "
                                "arguments are written `key=value`)", arg.line, arg.column,
                                arg.text)
            if arg.kind == "list":
                if not all(i.kind in ("int", "none") for i in arg.items):
                    raise SpecError(f"malformed shape `{arg.text}`: expected dimensions like "
                                    "`28x28`, `784` or `[28, 28]`", arg.line, arg.column, arg.text)
                shape = parse_shape("x".join("?" if i.value is None else str(i.value)
                                             for i in arg.items), arg.line, arg.column)
            elif arg.kind == "str":
                shape = parse_shape(arg.value, arg.line, arg.column)
            else:
                shape = parse_shape(arg.text, arg.line, arg.column)
        else:
            options.append(arg)
    if shape is None and not any(a.key.lower() == "batch_shape" for a in options):
        raise SpecError("`input` needs a shape, like `input 28x28`, `input 784` or `input ?x8`",
                        head.line, head.column, stmt_text)
    return InputStmt(line, column, stmt_text, target=target, shape=shape, options=tuple(options))


def _check_setting(key: str, head: Token, args: List[Arg], line: int, column: int,
                   text: str) -> SettingStmt:
    """Check the form of a training setting (names are checked by the builder)."""
    examples = {"optimizer": "`optimizer adam lr=1e-3`",
                "loss": "`loss mse` or `loss digit=sparse_categorical_crossentropy value=mse`",
                "loss_weights": "`loss_weights digit=1.0 value=0.5`",
                "metrics": "`metrics accuracy` or `metrics digit=accuracy value=mae`"}
    if not args:
        raise SpecError(f"`{head.text}` needs a value, like {examples[key]}", line, column, text)
    per_output = args[0].key is not None
    for n, arg in enumerate(args):
        names_ok = arg.kind in ("word", "str") or (arg.kind == "list" and key == "metrics")
        if key == "optimizer" or (key == "loss" and not per_output):
            if n == 0 and (arg.key is not None or arg.kind not in ("word", "str")):
                raise SpecError(f"`{arg.text}` is not a {key} name: write {examples[key]}",
                                arg.line, arg.column, arg.text)
            if n > 0 and arg.key is None:
                raise SpecError(f"unexpected `{arg.text}`: options of the {key} are written "
                                f"`key=value`, like {examples[key]}", arg.line, arg.column,
                                arg.text)
        elif key == "loss_weights":
            if arg.kind not in ("int", "float") or (arg.key is None) != (not per_output):
                raise SpecError(f"malformed loss weight `{arg.text}`: expected numbers per "
                                f"output, like {examples[key]}", arg.line, arg.column, arg.text)
        elif key == "loss":
            if arg.key is None:
                raise SpecError(f"unexpected `{arg.text}`: per-output losses are written "
                                f"`OUT=LOSS`, like {examples[key]}", arg.line, arg.column,
                                arg.text)
        elif not names_ok:
            raise SpecError(f"`{arg.text}` is not a metric name: write {examples[key]}",
                            arg.line, arg.column, arg.text)
    return SettingStmt(line, column, text, setting=key, args=tuple(args))
