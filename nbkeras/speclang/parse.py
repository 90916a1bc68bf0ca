"""Text of a `%%model` cell -> `ModelSpec`, with line/column errors.

The parser knows the syntax of the spec language (see
`shared/design/spec-language.md`) and which names are bound where; it does
not know Keras (layer kinds, activations and keyword names are checked by
the builder), so it stays fast and importable without TensorFlow. Nothing
here evaluates text as Python: values are read by small regular
expressions, and every mistake becomes a `SpecError` pointing at the text.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ..errors import SpecError, did_you_mean

from .lex import VALUE_FORMS, Token, is_range, logical_lines, parse_shape, scalar, tokenize
from .nodes import (Arg, InputStmt, LayerStmt, ModelSpec, OutputsStmt, SettingStmt, Source,
                    Wrap)
from .spaces import check_count, label_of, make_choice, name_spaces, read_range

SETTINGS = {"optimizer": "optimizer", "loss": "loss", "loss_weights": "loss_weights",
            "lossweights": "loss_weights", "metrics": "metrics", "metric": "metrics"}
MAX_NESTING = 16  # `[[...]]` deeper than this is a typo, not a layer argument
KEYWORDS = ("input", "outputs", "optimizer", "loss", "loss_weights", "metrics", "repeat")
#: Wrapper kinds (normalized): `keras.layers.Bidirectional` and the subclasses of
#: `keras.layers.Wrapper`; the builder checks each is one (and a test that none is missing).
WRAPPERS = {"bidirectional": "Bidirectional", "bi": "Bidirectional",
            "timedistributed": "TimeDistributed", "td": "TimeDistributed",
            "spectralnormalization": "SpectralNormalization"}


def _norm(word: str) -> str:
    return word.lower().replace("_", "")


def space_error(tok: Token, what: str, example: str) -> SpecError:
    """A space written where a name or kind is expected."""
    return SpecError(f"a search space cannot stand for {what}: spaces replace values, like "
                     f"{example}", tok.line, tok.column, tok.text)


def _is_space_token(tok: Optional[Token]) -> bool:
    return tok is not None and (tok.is_("{") or (tok.kind == "word" and is_range(tok.text)))


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

    def value(self, after: Token, depth: int = 0) -> Arg:
        tok = self.peek()
        if tok is None or (tok.kind == "punct" and tok.text not in "[{"):
            where = tok or after
            shown = tok.text if tok else after.text
            raise SpecError(f"expected a value after `{after.text}`, got "
                            f"{'`' + shown + '`' if tok else 'the end of the line'}: "
                            f"expected {VALUE_FORMS}", where.line, where.column, shown)
        if _is_space_token(tok) and depth > 0:
            raise SpecError(f"a search space cannot be inside a list or a choice (`{tok.text}`):"
                            " make the whole value a choice, like `{[1, 2], [3, 4]}`",
                            tok.line, tok.column, tok.text)
        self.take()
        if tok.is_("["):
            return self.list_(tok, depth)
        if tok.is_("{"):
            return self.choice(tok)
        if tok.kind == "word" and is_range(tok.text):
            return read_range(tok)
        return scalar(tok)

    def choice(self, open_tok: Token) -> Arg:
        """`{A, B, ...}[@LABEL]` after its `{`."""
        items: List[Arg] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise SpecError("unclosed `{`: expected `}` to end the choice, like `{64, 128}`",
                                open_tok.line, open_tok.column, "{")
            if tok.is_("}"):
                close = self.take()
                break
            items.append(self.value(open_tok if not items else self.tokens[self.i - 1], 1))
            sep = self.peek()
            if sep is not None and sep.is_(","):
                self.take()
            elif sep is None:
                raise SpecError("unclosed `{`: expected `}` to end the choice, like `{64, 128}`",
                                open_tok.line, open_tok.column, "{")
            elif not sep.is_("}"):
                raise SpecError(f"expected `,` or `}}` in the choice, got `{sep.text}`: write "
                                "choices like `{64, 128}`", sep.line, sep.column, sep.text)
        text = "{" + ", ".join(a.text for a in items) + "}"
        if not items:
            raise SpecError("empty choice `{}`: list at least one value, like `{64, 128}`",
                            open_tok.line, open_tok.column, "{}")
        label = None
        after = self.peek()
        if (after is not None and after.kind == "word" and after.text.startswith("@")
                and after.line == close.line and after.column == close.column + 1):
            self.take()
            _, label = label_of("x" + after.text, Token("word", after.text, after.line,
                                                       after.column - 1))
            text += after.text
        return make_choice(items, open_tok, text, label)

    def list_(self, open_tok: Token, depth: int = 0) -> Arg:
        if depth >= MAX_NESTING:
            raise SpecError(f"lists nested more than {MAX_NESTING} deep: write lists like "
                            "`[1, 2]` or `[[1, 1], [2, 2]]`", open_tok.line, open_tok.column, "[")
        items: List[Arg] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise SpecError("unclosed `[`: expected `]` to end the list, like `[1, 2]`",
                                open_tok.line, open_tok.column, "[")
            if tok.is_("]"):
                self.take()
                break
            items.append(self.value(open_tok if not items else self.tokens[self.i - 1], depth + 1))
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
                                key=tok.text, items=arg.items, space=arg.space))
            elif tok.is_("(") and allow_sources:
                if paren is not None:
                    raise SpecError("a statement takes one source list `(a, b)`; found a second",
                                    tok.line, tok.column, "(")
                paren = tok
                sources = self.sources(tok)
            elif tok.is_("["):
                args.append(self.list_(tok))
            elif tok.is_("{"):
                args.append(self.choice(tok))
            elif tok.kind == "word" and is_range(tok.text):
                args.append(read_range(tok))
            elif tok.kind == "punct":
                hint = ("sources go in one list `(a, b)` after the arguments" if tok.text in "()"
                        else "write `key=value` with a keyword before `=`" if tok.text == "="
                        else f"expected {VALUE_FORMS}")
                raise SpecError(f"unexpected `{tok.text}` in {what}: {hint}",
                                tok.line, tok.column, tok.text)
            else:
                args.append(scalar(tok))
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
            if _is_space_token(tok):
                raise space_error(tok, "a source", "`dense {64, 128} (x)`")
            key = None
            nxt = self.peek()
            if tok.kind == "word" and nxt is not None and nxt.is_("="):
                if not tok.text.isidentifier():
                    raise SpecError(f"`{tok.text}=` is not a keyword: keyword sources are "
                                    "written `(x, mask=m)`", tok.line, tok.column, tok.text)
                self.take()
                key, key_tok = tok.text, tok
                tok = self.peek()
                if tok is None or tok.is_(")") or tok.is_(","):
                    raise SpecError(f"expected a bound name after `{key}=`, like `(x, {key}=m)`",
                                    key_tok.line, key_tok.column, key)
                self.take()
                if _is_space_token(tok):
                    raise space_error(tok, "a source", "`dense {64, 128} (x)`")
            if tok.kind != "word" or not tok.text.isidentifier():
                raise SpecError(f"`{tok.text}` is not a name: a source list names bound outputs, "
                                "like `(x, y)`", tok.line, tok.column, tok.text)
            if key is not None:
                if any(n.key == key for n in names):
                    raise SpecError(f"`{key}=` is given twice in the source list: keep one",
                                    key_tok.line, key_tok.column, key)
                names.append(Source(tok.text, key_tok.line, key_tok.column, key=key))
            elif any(n.key for n in names):
                raise SpecError(f"`{tok.text}` comes after a keyword source: write positional "
                                "sources first, like `(x, mask=m)`", tok.line, tok.column,
                                tok.text)
            else:
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


def parse(text: str, input_shape: Optional[str] = None, catalog=None,
          first_line: int = 1) -> ModelSpec:
    """Parse a `%%model` cell body.

    Args:
        text: the cell body.
        input_shape: the cell's `--input SHAPE` option, when given.
        catalog: what knows Keras' layers, for naming search spaces (which
            parameter a positional value fills, a kind's automatic layer
            name): an object with `layer_name(kind)` and `params(kind, args)`.
            Defaults to `nbkeras.modelbuild.catalog.CATALOG`, imported only
            when a layer statement holds a space that needs it.
        first_line: the number of the text's first line in errors and
            warnings. Defaults to 1; a `%%model` cell's body starts at 2,
            the `%%model` line being line 1, as the editor counts.

    Returns:
        The `ModelSpec`.

    Raises:
        SpecError: for any mistake, with the 1-based line and column.
    """
    graph: list = []
    bound: Dict[str, int] = {}
    settings: Dict[str, SettingStmt] = {}
    output_losses: List[SettingStmt] = []
    outputs: Optional[OutputsStmt] = None
    if input_shape is not None:
        shape = parse_shape(input_shape.strip())
        graph.append(InputStmt(0, 0, f"--input {input_shape}", shape=shape, implicit=True))
    lines = [line for line in logical_lines(text, first_line) if line]
    for chars in lines:
        tokens = tokenize(chars)
        if not tokens:
            continue
        st = _Statement(tokens)
        line, column = tokens[0].line, tokens[0].column
        stmt_text = "".join(c for c, _, _ in chars).strip()
        target = _target(st, line, column)
        head = st.peek()
        if head is None:
            raise SpecError(f"expected a layer kind or `input` after `{target} =`",
                            line, column, stmt_text)
        _check_head(head)
        st.take()
        word = head.text.lower()
        if word in SETTINGS or word in ("outputs", "output"):
            if target is not None:
                raise SpecError(f"`{head.text}` cannot be bound to a name: drop `{target} =`",
                                line, column, stmt_text)
            if word in ("outputs", "output"):
                outputs = _outputs(st, outputs, bound, line, column, stmt_text)
                continue
            key = SETTINGS[word]
            if key == "loss" and _output_colon(st):
                output_losses.append(_output_loss(st, head, line, column, stmt_text,
                                                  output_losses))
                continue
            args, _, _ = st.args(False, f"`{head.text}`")
            if key in settings:
                hint = (" (one output's loss with its options is written `loss OUT: LOSS "
                        "key=value`, one statement per output)" if key == "loss" else "")
                raise SpecError(f"`{key}` is given twice (first on line {settings[key].line}): "
                                f"keep one{hint}", line, column, stmt_text)
            settings[key] = _check_setting(key, head, args, line, column, stmt_text)
            continue
        if word == "input":
            graph.append(_input(st, head, target, line, column, stmt_text, input_shape))
        else:
            repeat = None
            if word == "repeat":
                repeat, head, target = _repeat(st, head, target, line, column, stmt_text)
            wrappers: List[Wrap] = []
            while _norm(head.text) in WRAPPERS:
                head = _wrapper(st, head, wrappers)
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
                                   sources_at=tuple(bound[s.name] for s in srcs),
                                   wrappers=tuple(wrappers), repeat=repeat))
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
    _check_losses(settings.get("loss"), output_losses)
    spec = ModelSpec(graph=tuple(graph), outputs=outputs, settings=settings, text=text,
                     output_losses=tuple(output_losses))
    if _has_spaces(spec):
        spec = name_spaces(spec, lambda: _default_catalog() if catalog is None else catalog)
    return spec


def _default_catalog():
    from importlib import import_module  # Keras' tables, only when a space needs them
    return import_module("nbkeras.modelbuild.catalog").CATALOG


def _has_spaces(spec: ModelSpec) -> bool:
    args = [a for s in spec.settings.values() for a in s.args]
    args += [a for s in spec.output_losses for a in s.args]
    for stmt in spec.graph:
        if isinstance(stmt, InputStmt):
            args += stmt.options
        else:
            args += list(stmt.args) + [a for w in stmt.wrappers for a in w.args]
            args += [stmt.repeat] if stmt.repeat is not None else []
    return any(a.kind == "space" for a in args)


def _target(st: _Statement, line: int, column: int) -> Optional[str]:
    tokens = st.tokens
    if st.peek() is not None and st.peek().is_("{"):
        close = next((k for k in range(st.i, len(tokens)) if tokens[k].is_("}")), None)
        if close is not None and close + 1 < len(tokens) and tokens[close + 1].is_("="):
            raise space_error(st.peek(), "a bound name", "`x = dense {64, 128}`")
    if len(tokens) >= 2 + st.i and tokens[st.i + 1].is_("="):
        first = tokens[st.i]
        if _is_space_token(first):
            raise space_error(first, "a bound name", "`x = dense {64, 128}`")
        if first.kind == "word":
            if not first.text.isidentifier():
                raise SpecError(f"`{first.text}` is not a name: bound names are identifiers "
                                "like `x` or `hidden_1`", first.line, first.column, first.text)
            st.i += 2
            return first.text
    return None


def _check_head(head: Token) -> None:
    if _is_space_token(head):
        raise space_error(head, "a layer kind", "`dense {64, 128} relu`; write one statement "
                                                "per kind")
    if head.kind != "word" or not head.text.isidentifier():
        raise SpecError(f"expected a layer kind, `input`, `outputs` or a setting, got "
                        f"`{head.text}`", head.line, head.column, head.text)


def _repeat(st: _Statement, head: Token, target, line, column, stmt_text):
    """`repeat COUNT [NAME =] STATEMENT` -> (count Arg, the kind token, the target)."""
    if st.peek() is None:
        raise SpecError("`repeat` needs a count and a layer statement, like `repeat 3 dense 64 "
                        "relu`", line, column, stmt_text)
    count = check_count(st.value(head))
    inner = _target(st, line, column)
    if inner is not None and target is not None:
        raise SpecError(f"`{stmt_text}` binds two names: bind one, like `repeat 2 x = dense 8`",
                        line, column, stmt_text)
    kind = st.peek()
    if kind is None:
        raise SpecError(f"`repeat {count.text}` needs a layer statement to repeat, like "
                        f"`repeat {count.text} dense 64 relu`", line, column, stmt_text)
    _check_head(kind)
    if kind.text.lower() in KEYWORDS:
        raise SpecError(f"`repeat` repeats one layer statement, not `{kind.text}`",
                        kind.line, kind.column, kind.text)
    st.take()
    return count, kind, target if inner is None else inner


def _wrapper(st: _Statement, head: Token, wrappers: List[Wrap]) -> Token:
    """A wrapper's `key=value` arguments; returns the wrapped statement's kind token."""
    args: List[Arg] = []
    while st.peek() is not None and st.peek(1) is not None and st.peek(1).is_("="):
        key = st.take()
        if key.kind != "word" or not key.text.isidentifier():
            raise SpecError(f"`{key.text}=` is not a keyword: keywords are names like "
                            "`merge_mode=sum`", key.line, key.column, key.text)
        if key.text.lower() in ("layer", "backward_layer"):
            raise SpecError(f"`{key.text}=`: `{head.text}` wraps a layer written after it, like "
                            f"`{head.text} dense 10`; it takes no `{key.text}=`", key.line,
                            key.column, key.text)
        eq = st.take()
        arg = st.value(eq)
        args.append(Arg(arg.value, arg.kind, arg.text, key.line, key.column, key=key.text,
                        items=arg.items, space=arg.space))
    wrappers.append(Wrap(head.text, head.column, tuple(args)))
    kind = st.peek()
    name = WRAPPERS[_norm(head.text)]
    if kind is None or kind.is_("("):
        raise SpecError(f"`{head.text}` wraps a layer: write the layer after it (its own "
                        f"keywords first), like `{head.text} lstm 64` for `{name}(LSTM(64))`",
                        head.line, head.column, head.text)
    if _is_space_token(kind):
        raise space_error(kind, "a layer kind", f"`{head.text} lstm {{32, 64}}`")
    if kind.kind != "word" or not kind.text.isidentifier() or kind.text.lower() in KEYWORDS:
        raise SpecError(f"`{kind.text}` cannot be the layer of `{name}`: write the wrapped "
                        f"layer's kind after the wrapper's keywords, like `{head.text} lstm 64`",
                        kind.line, kind.column, kind.text)
    return st.take()


def _outputs(st: _Statement, outputs, bound, line, column, stmt_text) -> OutputsStmt:
    rest = st.tokens[st.i:]
    for tok in rest:
        if _is_space_token(tok):
            raise space_error(tok, "an output name", "`dense {64, 128}`")
    args = [scalar(t) for t in rest if not (t.kind == "punct" and t.text in ",()")]
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
    return OutputsStmt(line, column, stmt_text, names=tuple(
        (a.text, a.column, bound.get(a.text, -1)) for a in args))


def _output_colon(st: _Statement) -> bool:
    """Whether a `loss` statement is the `loss OUT: LOSS ...` form."""
    first, second = st.peek(), st.peek(1)
    if first is None or first.kind != "word":
        return False
    return first.text.endswith(":") or (second is not None and second.kind == "word"
                                        and second.text == ":")


def _output_loss(st: _Statement, head: Token, line, column, stmt_text,
                 earlier: List[SettingStmt]) -> SettingStmt:
    tok = st.take()
    name = tok.text[:-1] if tok.text.endswith(":") else tok.text
    if not tok.text.endswith(":"):
        st.take()
    if not name.isidentifier():
        raise SpecError(f"`{name}` is not an output name: write `loss OUT: LOSS`, like "
                        "`loss priority: binary_crossentropy from_logits=true`",
                        tok.line, tok.column, name)
    for other in earlier:
        if other.output == name:
            raise SpecError(f"two losses for output `{name}` (first on line {other.line}): "
                            "keep one", tok.line, tok.column, name)
    args, _, _ = st.args(False, f"`{head.text} {name}:`")
    example = f"`loss {name}: binary_crossentropy from_logits=true`"
    if not args:
        raise SpecError(f"`loss {name}:` needs a loss, like {example}", line, column, stmt_text)
    if args[0].key is not None or args[0].kind not in ("word", "str"):
        if args[0].kind == "space":
            raise space_error(Token("word", args[0].text, args[0].line, args[0].column),
                              "a loss name", "`loss out: huber delta=0.5..2`")
        raise SpecError(f"`{args[0].text}` is not a loss name: write {example}",
                        args[0].line, args[0].column, args[0].text)
    for arg in args[1:]:
        if arg.key is None:
            raise SpecError(f"unexpected `{arg.text}`: options of the loss are written "
                            f"`key=value`, like {example}", arg.line, arg.column, arg.text)
    return SettingStmt(line, column, stmt_text, setting="loss", args=tuple(args),
                       output=name, output_column=tok.column)


def _check_losses(loss: Optional[SettingStmt], output_losses: List[SettingStmt]) -> None:
    """`loss OUT: ...` statements mix only with the `loss OUT=LOSS ...` form."""
    if loss is None or not output_losses:
        return
    first = output_losses[0]
    if loss.args[0].key is None:
        raise SpecError(f"`{loss.text}` sets the loss of every output, but line {first.line} "
                        f"sets output `{first.output}`'s: with `loss OUT: LOSS` statements, give "
                        "the other outputs' losses as `loss OUT=LOSS ...`", loss.line,
                        loss.column, loss.text)
    for stmt in output_losses:
        for arg in loss.args:
            if arg.key == stmt.output and arg.kind in ("word", "str"):
                raise SpecError(f"two losses for output `{stmt.output}`: line {loss.line} and "
                                f"line {stmt.line}; keep one", stmt.line, stmt.output_column,
                                stmt.output)


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
        name_slot = (key == "metrics" or (key == "optimizer" and n == 0)
                     or (key == "loss" and ((n == 0 and not per_output) or (
                         per_output and arg.key is not None and n == 0))))
        if arg.kind == "space" and name_slot:
            what = {"metrics": "a metric", "optimizer": "an optimizer", "loss": "a loss"}[key]
            raise space_error(Token("word", arg.text, arg.line, arg.column), what + " name",
                              "`optimizer adam lr=1e-4..1e-2:log`")
        if arg.kind == "space" and (arg.key is not None or key == "loss_weights"):
            continue
        names_ok = arg.kind in ("word", "str") or (arg.kind == "list" and key == "metrics")
        if key == "optimizer" or (key == "loss" and not per_output):
            if n == 0 and (arg.key is not None or arg.kind not in ("word", "str")):
                article = "an" if key == "optimizer" else "a"
                raise SpecError(f"`{arg.text}` is not {article} {key} name: write {examples[key]}",
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
