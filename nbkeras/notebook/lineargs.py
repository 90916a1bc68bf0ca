"""Split a magic's line into arguments, keeping Python expressions whole.

`%fit m [x_img, x_meta] {'digit': y, 'size': s}` must give three
arguments, so whitespace splits only outside brackets and quotes.
"""

from __future__ import annotations

from typing import List

from ..errors import UsageError

_OPEN = {"(": ")", "[": "]", "{": "}"}


def split_line(line: str) -> List[str]:
    """Split on whitespace outside (), [], {} and quotes.

    Example:
        >>> split_line("m [a, b] y[: 10] --epochs 3")
        ['m', '[a, b]', 'y[: 10]', '--epochs', '3']
    """
    tokens: List[str] = []
    cur: List[str] = []
    stack: List[str] = []
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(line):
                cur.append(line[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch in _OPEN:
            stack.append(_OPEN[ch])
            cur.append(ch)
        elif ch in ")]}":
            if not stack or stack[-1] != ch:
                raise UsageError(f"unbalanced `{ch}` in `{line.strip()}`")
            stack.pop()
            cur.append(ch)
        elif ch.isspace() and not stack:
            if cur:
                tokens.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if quote:
        raise UsageError(f"unclosed quote {quote} in `{line.strip()}`")
    if stack:
        raise UsageError(f"unclosed bracket (expected `{stack[-1]}`) in `{line.strip()}`")
    if cur:
        tokens.append("".join(cur))
    return tokens
