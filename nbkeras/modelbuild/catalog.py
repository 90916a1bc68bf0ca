"""What the spec parser needs to know of Keras' layers to name search spaces.

A space is named `NAME.ARG`: NAME is the statement's layer name (for an
unbound layer, the automatic name Keras derives from the class:
`dense`, `batch_normalization`) and ARG the constructor parameter the value
fills (`dense 64` fills `units`). The parser imports no Keras, so it asks
this catalog, through the same resolution the builder uses; `parse_spec`
is the parse that callers above the language use.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..errors import SpecError
from ..speclang.nodes import Arg, LayerStmt, ModelSpec
from ..speclang.parse import WRAPPERS, parse
from .layers import layer_kinds, resolve_layer
from .names import norm, snake_case


class KerasCatalog:
    """Layer names and parameter slots, read from `keras.layers`."""

    def layer_name(self, kind: str) -> Optional[str]:
        """The automatic Keras layer name for a kind (`conv` -> `conv2d`), or None."""
        name = WRAPPERS.get(norm(kind)) or layer_kinds().get(norm(kind))
        return None if name is None else snake_case(name)

    def params(self, kind: str, args: Tuple[Arg, ...]) -> Tuple[Optional[str], ...]:
        """The constructor parameter each argument fills (None where unresolved)."""
        filled: List[str] = []
        stmt = LayerStmt(0, 0, kind, kind=kind, args=tuple(args))
        try:
            resolve_layer(stmt, filled)
        except SpecError:  # reported with its position when the model is built
            pass
        return tuple(filled) + (None,) * (len(args) - len(filled))


CATALOG = KerasCatalog()


def parse_spec(text: str, input_shape: Optional[str] = None, first_line: int = 1) -> ModelSpec:
    """`nbkeras.speclang.parse` with this catalog naming the search spaces.

    Example:
        >>> [s.name for s in parse_spec("input 4\\ndense {8, 16}").spaces]
        ['dense.units']
    """
    return parse(text, input_shape=input_shape, catalog=CATALOG, first_line=first_line)
