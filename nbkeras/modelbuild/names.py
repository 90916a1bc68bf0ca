"""Name helpers shared by the builder and the compile settings (which
import each other no more): comparison without case or underscores,
did-you-mean, and a short one-line form of a Keras error."""

from __future__ import annotations

import re

from ..errors import did_you_mean


def norm(word: str) -> str:
    return word.lower().replace("_", "")


def closest(word: str, choices) -> str:
    """did-you-mean over names compared without case or underscores."""
    by_norm = {norm(c): c for c in choices}
    hint = did_you_mean(norm(word), list(by_norm))
    if not hint:
        return did_you_mean(word, choices)
    chosen = hint[hint.index("`") + 1:hint.rindex("`")]
    return f" (did you mean `{by_norm.get(chosen, chosen)}`?)"


def short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def snake_case(name: str) -> str:
    """A class name -> the automatic layer name Keras derives from it (`BatchNormalization`
    -> `batch_normalization`, `Conv2D` -> `conv2d`, `LSTM` -> `lstm`)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
