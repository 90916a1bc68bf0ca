"""Text of a `%%model` cell -> `ModelSpec`, with line/column errors.

The parser knows the syntax of the spec language (see
`shared/design/spec-language.md`) and which names are bound where; it does
not know Keras (layer kinds, activations and keyword names are checked by
the builder), so it stays fast and importable without TensorFlow. Nothing
here evaluates text as Python: values are read by small regular
expressions, and every mistake becomes a `SpecError` pointing at the text.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from ..errors import SpecError, did_you_mean

from .lex import logical_lines, parse_shape, tokenize
from .nodes import InputStmt, LayerStmt, ModelSpec, OutputsStmt, SettingStmt, Wrap
from .reader import Statement, norm
from .spaces import name_spaces
from .statements import (KEYWORDS, SETTINGS, WRAPPERS, check_base, check_head, check_losses, check_setting,
                         output_colon, read_input, read_output_loss, read_outputs, read_repeat,
                         read_target, read_wrapper)

__all__ = ["parse", "KEYWORDS", "SETTINGS", "WRAPPERS"]


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
            Needed only when a layer's space needs it (a positional value or
            an unbound layer); `nbkeras.modelbuild.catalog.parse_spec` passes the
            builder's. The parser itself imports nothing that knows Keras.
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
        st = Statement(tokens)
        line, column = tokens[0].line, tokens[0].column
        stmt_text = "".join(c for c, _, _ in chars).strip()
        target = read_target(st, line, column)
        head = st.peek()
        if head is None:
            raise SpecError(f"expected a layer kind or `input` after `{target} =`",
                            line, column, stmt_text)
        check_head(head)
        st.take()
        word = head.text.lower()
        if word in SETTINGS or word in ("outputs", "output"):
            if target is not None:
                raise SpecError(f"`{head.text}` cannot be bound to a name: drop `{target} =`",
                                line, column, stmt_text)
            if word in ("outputs", "output"):
                outputs = read_outputs(st, outputs, bound, line, column, stmt_text)
                continue
            key = SETTINGS[word]
            if key == "loss" and output_colon(st):
                output_losses.append(read_output_loss(st, head, line, column, stmt_text,
                                                  output_losses))
                continue
            args, _, _ = st.args(False, f"`{head.text}`")
            if key in settings:
                hint = (" (one output's loss with its options is written `loss OUT: LOSS "
                        "key=value`, one statement per output)" if key == "loss" else "")
                raise SpecError(f"`{key}` is given twice (first on line {settings[key].line}): "
                                f"keep one{hint}", line, column, stmt_text)
            settings[key] = check_setting(key, head, args, line, column, stmt_text)
            continue
        if word == "input":
            graph.append(read_input(st, head, target, line, column, stmt_text, input_shape))
        else:
            repeat = None
            if word == "repeat":
                repeat, head, target = read_repeat(st, head, target, line, column, stmt_text)
            wrappers: List[Wrap] = []
            while norm(head.text) in WRAPPERS:
                head = read_wrapper(st, head, wrappers)
            args, srcs, _ = st.args(True, f"`{head.text}`")
            if word == "base":
                if repeat is not None or wrappers:
                    raise SpecError(f"`{stmt_text}`: a base is one model: it cannot be "
                                    "repeated or wrapped", line, column, stmt_text)
                check_base(head, args, line, column, stmt_text)
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
    check_losses(settings.get("loss"), output_losses)
    spec = ModelSpec(graph=tuple(graph), outputs=outputs, settings=settings, text=text,
                     output_losses=tuple(output_losses))
    if _has_spaces(spec):
        spec = name_spaces(spec, lambda: _needs(catalog))
    return spec


def _needs(catalog):
    if catalog is None:  # the language knows no Keras: the builder's catalog names spaces
        raise ValueError("naming this spec's search spaces needs Keras' layer catalog: parse "
                         "it with nbkeras.modelbuild.catalog.parse_spec (or pass catalog=)")
    return catalog


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
