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
from .lex import VALUE_FORMS, Token, logical_lines, parse_shape, scalar, tokenize
from .nodes import Arg, InputStmt, LayerStmt, ModelSpec, OutputsStmt, SettingStmt, Source

SETTINGS = {"optimizer": "optimizer", "loss": "loss", "loss_weights": "loss_weights",
            "lossweights": "loss_weights", "metrics": "metrics", "metric": "metrics"}
MAX_NESTING = 16  # `[[...]]` deeper than this is a typo, not a layer argument
KEYWORDS = ("input", "outputs", "optimizer", "loss", "loss_weights", "metrics")


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
        if tok is None or (tok.kind == "punct" and tok.text != "["):
            where = tok or after
            shown = tok.text if tok else after.text
            raise SpecError(f"expected a value after `{after.text}`, got "
                            f"{'`' + shown + '`' if tok else 'the end of the line'}: "
                            f"expected {VALUE_FORMS}", where.line, where.column, shown)
        self.take()
        if tok.is_("["):
            return self.list_(tok, depth)
        return scalar(tok)

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
                args = [scalar(t) for t in st.tokens[st.i:]
                        if not (t.kind == "punct" and t.text in ",()")]
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
                outputs = OutputsStmt(line, column, stmt_text, names=tuple(
                    (a.text, a.column, bound.get(a.text, -1)) for a in args))
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
