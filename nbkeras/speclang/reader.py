"""Reading one logical line of a `%%model` cell: values, lists, choices,
keyword arguments and source lists (`Statement`), for `parse.py`.

Knows no statement kinds: which words may start a statement, and what each
statement takes, is `parse.py`'s and `statements.py`'s.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..errors import SpecError

from .lex import VALUE_FORMS, Token, is_range, scalar
from .nodes import Arg, Source
from .spaces import label_of, make_choice, read_range

MAX_NESTING = 16  # `[[...]]` deeper than this is a typo, not a layer argument


def norm(word: str) -> str:
    return word.lower().replace("_", "")


def space_error(tok: Token, what: str, example: str) -> SpecError:
    """A space written where a name or kind is expected."""
    return SpecError(f"a search space cannot stand for {what}: spaces replace values, like "
                     f"{example}", tok.line, tok.column, tok.text)


def is_space_token(tok: Optional[Token]) -> bool:
    return tok is not None and (tok.is_("{") or (tok.kind == "word" and is_range(tok.text)))


class Statement:
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
        if is_space_token(tok) and depth > 0:
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
            if is_space_token(tok):
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
                if is_space_token(tok):
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
