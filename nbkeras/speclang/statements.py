"""The statements of a `%%model` cell other than layers, and a layer's
prefixes (`NAME =`, `repeat`, wrappers): each read from a `Statement` into
its node, every mistake a `SpecError` on its line. `parse.py` dispatches.
"""

from __future__ import annotations

from typing import List, Optional

from ..errors import SpecError

from .lex import Token, parse_shape, scalar
from .nodes import Arg, InputStmt, OutputsStmt, SettingStmt, Wrap
from .reader import Statement, is_space_token, norm, space_error
from .spaces import check_count

SETTINGS = {"optimizer": "optimizer", "loss": "loss", "loss_weights": "loss_weights",
            "lossweights": "loss_weights", "metrics": "metrics", "metric": "metrics"}
KEYWORDS = ("input", "outputs", "optimizer", "loss", "loss_weights", "metrics", "repeat")
#: Wrapper kinds (normalized): `keras.layers.Bidirectional` and the subclasses of
#: `keras.layers.Wrapper`; the builder checks each is one (and a test that none is missing).
WRAPPERS = {"bidirectional": "Bidirectional", "bi": "Bidirectional",
            "timedistributed": "TimeDistributed", "td": "TimeDistributed",
            "spectralnormalization": "SpectralNormalization"}


def read_target(st: Statement, line: int, column: int) -> Optional[str]:
    tokens = st.tokens
    if st.peek() is not None and st.peek().is_("{"):
        close = next((k for k in range(st.i, len(tokens)) if tokens[k].is_("}")), None)
        if close is not None and close + 1 < len(tokens) and tokens[close + 1].is_("="):
            raise space_error(st.peek(), "a bound name", "`x = dense {64, 128}`")
    if len(tokens) >= 2 + st.i and tokens[st.i + 1].is_("="):
        first = tokens[st.i]
        if is_space_token(first):
            raise space_error(first, "a bound name", "`x = dense {64, 128}`")
        if first.kind == "word":
            if not first.text.isidentifier():
                raise SpecError(f"`{first.text}` is not a name: bound names are identifiers "
                                "like `x` or `hidden_1`", first.line, first.column, first.text)
            st.i += 2
            return first.text
    return None


def check_head(head: Token) -> None:
    if is_space_token(head):
        raise space_error(head, "a layer kind", "`dense {64, 128} relu`; write one statement "
                                                "per kind")
    if head.kind != "word" or not head.text.isidentifier():
        raise SpecError(f"expected a layer kind, `input`, `outputs` or a setting, got "
                        f"`{head.text}`", head.line, head.column, head.text)


def read_repeat(st: Statement, head: Token, target, line, column, stmt_text):
    """`repeat COUNT [NAME =] STATEMENT` -> (count Arg, the kind token, the target)."""
    if st.peek() is None:
        raise SpecError("`repeat` needs a count and a layer statement, like `repeat 3 dense 64 "
                        "relu`", line, column, stmt_text)
    count = check_count(st.value(head))
    inner = read_target(st, line, column)
    if inner is not None and target is not None:
        raise SpecError(f"`{stmt_text}` binds two names: bind one, like `repeat 2 x = dense 8`",
                        line, column, stmt_text)
    kind = st.peek()
    if kind is None:
        raise SpecError(f"`repeat {count.text}` needs a layer statement to repeat, like "
                        f"`repeat {count.text} dense 64 relu`", line, column, stmt_text)
    check_head(kind)
    if kind.text.lower() in KEYWORDS:
        raise SpecError(f"`repeat` repeats one layer statement, not `{kind.text}`",
                        kind.line, kind.column, kind.text)
    st.take()
    return count, kind, target if inner is None else inner


def read_wrapper(st: Statement, head: Token, wrappers: List[Wrap]) -> Token:
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
    name = WRAPPERS[norm(head.text)]
    if kind is None or kind.is_("("):
        raise SpecError(f"`{head.text}` wraps a layer: write the layer after it (its own "
                        f"keywords first), like `{head.text} lstm 64` for `{name}(LSTM(64))`",
                        head.line, head.column, head.text)
    if is_space_token(kind):
        raise space_error(kind, "a layer kind", f"`{head.text} lstm {{32, 64}}`")
    if kind.kind != "word" or not kind.text.isidentifier() or kind.text.lower() in KEYWORDS:
        raise SpecError(f"`{kind.text}` cannot be the layer of `{name}`: write the wrapped "
                        f"layer's kind after the wrapper's keywords, like `{head.text} lstm 64`",
                        kind.line, kind.column, kind.text)
    return st.take()


def check_base(head: Token, args, line: int, column: int, stmt_text: str) -> None:
    """`base MODEL [key=value ...] [frozen | trainable]` (version 3): the model is
    named first, and a base holds no search space (the builder reads the rest)."""
    model = next((a for a in args if a.key is None), None)
    if model is None or model.kind not in ("word", "str"):
        raise SpecError(f"`{stmt_text}`: `base` needs a model first: a `keras.applications` name "
                        "(`base mobilenet_v3_small`) or a quoted saved model "
                        "(`base \"encoder.keras\"`)", line, column, stmt_text)
    for arg in args:
        if arg.kind == "space":
            raise SpecError(f"`{arg.text}`: a base holds no search space; tune the layers "
                            "after it", arg.line, arg.column, arg.text)
    flags = [a for a in args if a.key is None and a is not model]
    for arg in flags:
        if not (arg.kind == "word" and arg.value.lower() in ("frozen", "trainable")):
            raise SpecError(f"unexpected `{arg.text}` in `{stmt_text}`: after the model come "
                            "`key=value` options and `frozen` or `trainable`",
                            arg.line, arg.column, arg.text)
    if len(flags) > 1:
        raise SpecError(f"`{stmt_text}`: give `frozen` or `trainable`, once", flags[1].line,
                        flags[1].column, flags[1].text)


def read_outputs(st: Statement, outputs, bound, line, column, stmt_text) -> OutputsStmt:
    rest = st.tokens[st.i:]
    for tok in rest:
        if is_space_token(tok):
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


def output_colon(st: Statement) -> bool:
    """Whether a `loss` statement is the `loss OUT: LOSS ...` form."""
    first, second = st.peek(), st.peek(1)
    if first is None or first.kind != "word":
        return False
    return first.text.endswith(":") or (second is not None and second.kind == "word"
                                        and second.text == ":")


def read_output_loss(st: Statement, head: Token, line, column, stmt_text,
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


def check_losses(loss: Optional[SettingStmt], output_losses: List[SettingStmt]) -> None:
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


def read_input(st: Statement, head: Token, target, line, column, stmt_text, input_shape):
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


def check_setting(key: str, head: Token, args: List[Arg], line: int, column: int,
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
