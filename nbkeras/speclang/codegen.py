"""A spec -> the equivalent plain Keras Python code (`%%model --code`).

Tutorial authors show what a spec stands for: the code uses the Keras
functional API with every argument spelled out, and running it builds a
model with the same layers, shapes and parameter counts. The code is
rendered from the builder's resolution of the spec (`BuildResult.steps`),
so it cannot drift from what `%%model` built; this module itself imports
no Keras, and every value is written with `repr`, never pasted as text.
"""

from __future__ import annotations

import keyword
from typing import Any, Dict, List

from ..fmt import fmt
from .nodes import ModelSpec

_RESERVED = {"keras", "layers", "model", "inputs", "outputs"}


def _variables(spec: ModelSpec) -> Dict[int, str]:
    """A Python variable for each graph statement's output."""
    taken = {s.target for s in spec.graph if s.target} | _RESERVED
    names: Dict[int, str] = {}
    counter = 0
    for index, stmt in enumerate(spec.graph):
        var = stmt.target
        if var is None:
            counter += 1
            var = f"h{counter}"
            while var in taken:
                counter += 1
                var = f"h{counter}"
        elif keyword.iskeyword(var) or var in _RESERVED:
            var = var + "_"
        names[index] = var
    return names


def _args(kwargs: Dict[str, Any], positional: int = 0) -> str:
    """`64, activation='relu'`: the first `positional` values bare, as the spec gave them."""
    return ", ".join(repr(v) if i < positional else f"{k}={v!r}"
                     for i, (k, v) in enumerate(kwargs.items()))


def generate(spec: ModelSpec, name: str, result,
             compile: bool = True) -> str:
    """The Keras code for a spec.

    Args:
        spec: the parsed spec.
        name: the model's name (the notebook name).
        result: the `BuildResult` of `nbkeras.modelbuild.build.build(spec)`
            (codegen writes out its steps; it never imports Keras itself).
        compile: include the `model.compile(...)` call.

    Returns:
        Python source, imports included.
    """
    var = _variables(spec)
    lines: List[str] = ["import keras", "from keras import layers", ""]
    values = getattr(result, "values", None) or {}
    if values:
        # 4 significant digits, as the tables show them; the code keeps the exact values
        lines.insert(2, "# search spaces at: " + ", ".join(
            f"{k}={fmt(v) if isinstance(v, float) else repr(v)}" for k, v in values.items()))
    # a re-bound name is reassigned in order, as in the spec
    for step in result.steps:
        target = var[step.index]
        if step.kind == "input":
            lines.append(f"{target} = keras.Input({_args(step.kwargs)})")
        elif step.kind == "base":  # a pretrained model: the lines the builder wrote for it
            model = _identifier(step.kwargs["name"], set(var.values()))
            for line in step.code:
                lines.append(line.format(src=var[step.sources[0]], out=target, model=model))
        else:
            # sources resolve to the newest binding: what each variable holds now
            srcs = [var[s] for s in step.sources]
            if step.call == "single":
                call = srcs[0]
            elif step.call == "list":
                call = "[" + ", ".join(srcs) + "]"
            else:
                call = ", ".join(srcs)
            keyword = getattr(step, "call_kwargs", {}) or {}
            call = ", ".join([call] + [f"{k}={var[i]}" for k, i in keyword.items()])
            layer = f"layers.{step.kind}({_args(step.kwargs, getattr(step, 'positional', 0))})"
            for kind, kwargs in reversed(getattr(step, "wrappers", []) or []):
                layer = f"layers.{kind}({', '.join([layer] + ([_args(kwargs)] if kwargs else []))})"
            lines.append(f"{target} = {layer}({call})")
        pinned = _output_var(spec, var, step.index)
        ends = spec.output_indices() + spec.input_indices()
        if step.index in ends and pinned != target:
            lines.append(f"{pinned} = {target}  # `{target}` is re-bound below")
    ins = [_output_var(spec, var, i) for i in spec.input_indices()]
    outs = [_output_var(spec, var, i) for i in spec.output_indices()]
    inputs = ins[0] if len(ins) == 1 else "[" + ", ".join(ins) + "]"
    outputs = outs[0] if len(outs) == 1 else "[" + ", ".join(outs) + "]"
    lines += ["", f"model = keras.Model(inputs={inputs}, outputs={outputs}, name={name!r})"]
    if compile and result.compile_code:
        parts = ", ".join(f"{k}={v}" for k, v in result.compile_code.items())
        lines.append(f"model.compile({parts})")
    return "\n".join(lines) + "\n"


def _identifier(name: str, taken) -> str:
    """A Python variable for a base model named `name`, clear of the tensors' variables."""
    var = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    var = var if var.isidentifier() and not keyword.iskeyword(var) else f"base_{var}"
    while var in taken or var in _RESERVED:
        var += "_model" if not var.endswith("_model") else "_"
    return var


def _output_var(spec: ModelSpec, var: Dict[int, str], index: int) -> str:
    """The variable holding an input or output at the end (pinned if re-bound later)."""
    name = var[index]
    later = [i for i in range(index + 1, len(spec.graph)) if var[i] == name]
    if not later:
        return name
    pinned, taken = f"{name}_at{index}", set(var.values()) | _RESERVED
    while pinned in taken:  # a spec may itself bind `x_at0`
        pinned += "_"
    return pinned
