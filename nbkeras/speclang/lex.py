"""Characters of a `%%model` cell -> tokens and values, with positions.

Comments, `\\` continuations and quoted strings are handled here, so the
parser sees one list of tokens per statement, each knowing its line and
column in the cell body. Values are recognised by small regular
expressions and never evaluated as Python.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from ..errors import SpecError
from .nodes import Arg

_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_WORD = re.compile(r"[^\W\d][\w.\-]*\Z")  # letters of any script, like Python names
_NUMBERISH = re.compile(r"[+-]?\.?\d")
_DIM = re.compile(r"[+-]?\d+\Z")
_PUNCT = "=(),[]{}"
VALUE_FORMS = ("a number (`128`, `-1`, `0.2`, `1e-3`), `true`/`false`/`none`, "
                "a quoted string, a word, a tuple like `3x3` or a list like `[1, 2]`")
SPACE_FORMS = ("`{A, B}`, `LOW..HIGH`, `LOW..HIGH:log` or `LOW..HIGH:STEP`")


def is_range(text: str) -> bool:
    """Whether a word is written as a range (`0.1..0.5`, `32..256:32`)."""
    return ".." in text and bool(_NUMBERISH.match(text))

Char = Tuple[str, int, int]  # character, line, column


class Token:
    __slots__ = ("kind", "text", "line", "column")

    def __init__(self, kind: str, text: str, line: int, column: int):
        self.kind, self.text, self.line, self.column = kind, text, line, column

    def is_(self, punct: str) -> bool:
        return self.kind == "punct" and self.text == punct


def logical_lines(text: str, first_line: int = 1) -> List[List[Char]]:
    """Strip comments, join `\\` continuations; characters keep their positions
    (the first line of `text` is line `first_line`)."""
    lines: List[List[Char]] = []
    pending: Optional[List[Char]] = None
    for number, raw in enumerate(text.split("\n"), start=first_line):
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


def scalar(tok: Token) -> Arg:
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
    if text.startswith("@"):
        raise SpecError(f"unexpected `{text}`: a label names a search space and is written right "
                        "after it, like `{64, 128}@width` or `0.1..0.5@rate`", *pos, text)
    if "@" in text and (_INT.match(text.split("@")[0]) or _FLOAT.match(text.split("@")[0])):
        raise SpecError(f"`{text}`: a label names a search space, and `{text.split('@')[0]}` is "
                        "a fixed value: write a space like `{64, 128}@width`", *pos, text)
    if _NUMBERISH.match(text):
        raise SpecError(f"malformed value `{text}`: expected {VALUE_FORMS}", *pos, text)
    if not _WORD.match(text):
        bad = next((c for c in text if not (c.isalnum() or c in "_.-")), text[0])
        raise SpecError(f"unexpected `{bad}` in `{text}`: expected {VALUE_FORMS} "
                        "(spec values are never run as Python)", *pos, text)
    return Arg(text, "word", text, *pos)
