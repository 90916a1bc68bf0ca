"""Beginner pitfalls in a spec, caught before any training (no Keras).

The Keras guides list loss/activation mismatches that make training
silently fail or plateau: a loss told `from_logits=true` on an output that
already applies softmax or sigmoid, cross-entropies that do not match the
output's activation or width, regression losses on a softmax. `lint` reads
the parsed spec only and returns warnings naming the line and the fix; it
never stops the build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .nodes import InputStmt, LayerStmt, ModelSpec
from .spaces import fix

_CATEGORICAL = {"categoricalcrossentropy", "sparsecategoricalcrossentropy"}
_BINARY = {"binarycrossentropy", "binaryfocalcrossentropy", "bce"}
_REGRESSION = {"mse", "meansquarederror", "mae", "meanabsoluteerror"}
_CROSS_ENTROPY = _CATEGORICAL | _BINARY | {"categoricalfocalcrossentropy"}
#: kinds whose activation defaults to linear (a `dense 10` output gives logits)
_LINEAR_BY_DEFAULT = {"dense", "einsumdense", "conv", "conv1d", "conv2d", "conv3d",
                      "conv1dtranspose", "conv2dtranspose", "conv3dtranspose"}
_PASS_THROUGH = {"dropout", "batchnormalization", "bn", "batchnorm", "flatten", "reshape"}


@dataclass(frozen=True)
class LintWarning:
    """One pitfall: the line to fix and what to do."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _norm(word) -> str:
    return str(word).lower().replace("_", "")


def _activation(stmt) -> Optional[str]:
    if not isinstance(stmt, LayerStmt):
        return None
    kind = _norm(stmt.kind)
    if kind == "softmax":
        return "softmax"
    for arg in stmt.args:
        if arg.kind not in ("word", "str"):
            continue
        word = str(arg.value).lower()
        if (arg.key is None or arg.key.lower() == "activation") and word in ("softmax", "sigmoid"):
            return word
    return None


def _linear(spec: ModelSpec, index: int, depth: int = 0) -> bool:
    """Whether an output gives linear logits: a dense/conv layer with no activation."""
    stmt = spec.graph[index]
    if not isinstance(stmt, LayerStmt) or depth > 50:
        return False
    kind = _norm(stmt.kind)
    if kind in _PASS_THROUGH:
        source = stmt.sources_at[0] if stmt.sources_at else stmt.previous
        return source is not None and _linear(spec, source, depth + 1)
    if kind == "activation":
        first = stmt.args[0] if stmt.args else None
        return first is not None and str(first.value).lower() == "linear"
    if kind not in _LINEAR_BY_DEFAULT:
        return False
    for arg in stmt.args:
        key = (arg.key or "").lower()
        if key == "activation":
            return arg.value is None or str(arg.value).lower() == "linear"
        if arg.key is None and arg.kind in ("word", "str"):
            return str(arg.value).lower() in ("linear", "none")
    return True


def _units(spec: ModelSpec, index: int, depth: int = 0) -> Optional[int]:
    """Width of a statement's output where the spec makes it plain."""
    stmt = spec.graph[index]
    if depth > 50:
        return None
    if isinstance(stmt, InputStmt):
        return stmt.shape[-1] if stmt.shape else None
    kind = _norm(stmt.kind)
    if kind == "dense":
        for arg in stmt.args:
            if arg.kind == "int" and (arg.key is None or arg.key.lower() == "units"):
                return arg.value
        return None
    if kind in ("activation", "softmax", "dropout", "batchnormalization", "bn", "batchnorm"):
        source = stmt.sources_at[0] if stmt.sources_at else stmt.previous
        return None if source is None else _units(spec, source, depth + 1)
    return None


def _losses(spec: ModelSpec, out_names: List[str]) -> Dict[str, Tuple[str, bool, int, str]]:
    """Output name -> (normalized loss, from_logits, line, loss as written)."""
    stmt = spec.settings.get("loss")
    found: Dict[str, Tuple[str, bool, int, str]] = {}
    for one in spec.output_losses:
        logits = any(a.key and a.key.lower() == "from_logits" and a.value is True
                     for a in one.args[1:])
        found[one.output] = (_norm(one.args[0].value), logits, one.line, one.args[0].text)
    if stmt is None:
        return found
    if stmt.args[0].key is None:
        logits = any(a.key and a.key.lower() == "from_logits" and a.value is True
                     for a in stmt.args[1:])
        first = stmt.args[0]
        return {n: (_norm(first.value), logits, stmt.line, first.text) for n in out_names}
    last = None
    for arg in stmt.args:
        if arg.key and arg.key.lower() == "from_logits" and last is not None:
            found[last] = (found[last][0], arg.value is True, stmt.line, found[last][3])
        elif arg.key is not None and arg.kind in ("word", "str"):
            last = arg.key
            found[last] = (_norm(arg.value), False, stmt.line, arg.text)
    return found


def lint(spec: ModelSpec) -> List[LintWarning]:
    """The pitfalls of a spec (empty when none).

    Example:
        >>> from nbkeras.speclang.parse import parse
        >>> len(lint(parse("input 4\\ndense 3 softmax\\nloss mse")))
        1
    """
    spec = fix(spec)  # a spec with search spaces: its default model
    names = spec.layer_names()
    indices = spec.output_indices()
    out_names = [names.get(i) or f"output {n + 1}" for n, i in enumerate(indices)]
    losses = _losses(spec, out_names)
    warnings: List[LintWarning] = []
    for index, name in zip(indices, out_names):
        if name not in losses:
            continue
        loss, logits, line, written = losses[name]
        stmt = spec.graph[index]
        act, units = _activation(stmt), _units(spec, index)
        where = (f"output `{name}` (line {stmt.line})" if names.get(index)
                 else f"the output `{stmt.text}` (line {stmt.line})")
        if act and logits:
            warnings.append(LintWarning(line, (
                f"{where} already applies {act}, but its loss has `from_logits=true`: drop "
                f"`from_logits=true`, or drop `{act}` from line {stmt.line} to output logits")))
        if act == "sigmoid" and units == 1 and loss in _CATEGORICAL:
            warnings.append(LintWarning(line, (
                f"a categorical cross-entropy on {where}, a single sigmoid unit, cannot learn: "
                "use `binary_crossentropy`")))
        if act == "softmax" and loss in _BINARY and (units is None or units > 1):
            warnings.append(LintWarning(line, (
                f"binary cross-entropy on {where}, a softmax over several units: use "
                "`sparse_categorical_crossentropy` (integer labels) or "
                "`categorical_crossentropy` (one-hot), or a `sigmoid` output for multi-label")))
        if act == "softmax" and loss in _REGRESSION:
            warnings.append(LintWarning(line, (
                f"`{written}` on {where}, a softmax, trains poorly: use "
                "`sparse_categorical_crossentropy` (integer labels) or "
                "`categorical_crossentropy` (one-hot)")))
        if loss in _CROSS_ENTROPY and not logits and not act and _linear(spec, index):
            warnings.append(LintWarning(line, (
                f"`{written}` on {where}, which has no activation (its outputs are logits), "
                f"without `from_logits=true`: add `from_logits=true` to the loss on line "
                f"{line}, or give line {stmt.line} an activation (`softmax` or `sigmoid`)")))
        if loss == "sparsecategoricalcrossentropy" and units == 1:
            warnings.append(LintWarning(line, (
                f"`sparse_categorical_crossentropy` on {where}, which has one unit: use "
                "`dense 1 sigmoid` with `binary_crossentropy` for two classes, or "
                "`dense N softmax` for N classes")))
    warnings += _unused_inputs(spec, indices)
    warnings += _trainable_bases(spec)
    return warnings


def _trainable_bases(spec: ModelSpec) -> List[LintWarning]:
    """A pretrained base trained from the start at adam's default learning rate: the
    large updates of the new head's first epochs wreck the pretrained weights."""
    opt = spec.settings.get("optimizer")
    kind = _norm(opt.args[0].value) if opt is not None and opt.args else "adam"
    rate = next((a.value for a in (opt.args[1:] if opt is not None else ())
                 if (a.key or "").lower() in ("learning_rate", "lr")), None)
    if kind not in ("adam", "adamw", "nadam", "adamax") or (
            isinstance(rate, (int, float)) and rate < 1e-3):
        return []
    return [LintWarning(stmt.line, (
        f"`{stmt.text}` trains the pretrained weights from the first step at {kind}'s default "
        "learning rate (0.001), which wrecks them: keep the base frozen (drop `trainable`) and "
        "fine-tune later with `%fit ... --fine-tune N` (a tenth of the rate), or set a small "
        "rate: `optimizer adam learning_rate=1e-5`"))
        for stmt in spec.graph if isinstance(stmt, LayerStmt) and _norm(stmt.kind) == "base"
        and any(a.key is None and a.kind == "word" and str(a.value).lower() == "trainable"
                for a in stmt.args)]


def _unused_inputs(spec: ModelSpec, outputs) -> List[LintWarning]:
    """Inputs no output depends on: the model would still ask for their data."""
    seen, todo = set(), list(outputs)
    while todo:
        index = todo.pop()
        if index in seen or index is None or index < 0:
            continue
        seen.add(index)
        stmt = spec.graph[index]
        if isinstance(stmt, LayerStmt):
            todo += list(stmt.sources_at) if stmt.sources else [stmt.previous]
    return [LintWarning(stmt.line, f"input `{stmt.target or stmt.text}` is not used by any "
                                   "output, yet the model would expect data for it: use it as "
                                   "a source, like `(name)`, or remove it")
            for index, stmt in enumerate(spec.graph)
            if isinstance(stmt, InputStmt) and index not in seen and not stmt.implicit]
