"""The `%%model` cell: parse, lint, build, bind, record, show.

`nbkeras.magics` parses the magic line and calls `run_model_cell`; this
module strings the spec stages together and does the notebook side
(binding the name, the registry record, the summary and code displays).
Keras is imported only here and in `build`, when a cell runs.
"""

from __future__ import annotations

import keyword
import os
import sys

from ..errors import SpecError
from ..state import ModelInfo, set_info

# The body's first line in errors and warnings: the `%%model` line is line 1
# of the cell, as the editor counts (and as Python's own errors in a cell do).
CELL_LINE = 2


def _display(obj) -> None:
    from IPython.display import display
    display(obj)


def _record(name: str, spec_text: str, params: int, source: str = "spec"):
    try:
        from ..registry import get_registry
    except ImportError:  # the registry module is optional for building
        return None
    return get_registry().add_model_version(name, spec_text, params, source=source)


def _check_name(name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise SpecError(f"`{name}` is not a Python name: `%%model NAME` binds the model to "
                        "NAME, so use an identifier like `mnist` or `model_2`", None, None, name)


def _load(shell, args, cell: str):
    path = os.path.expanduser(args.from_path)
    if cell.strip() and any(line.split("#", 1)[0].strip() for line in cell.splitlines()):
        raise SpecError(f"`--from {args.from_path}` loads the whole model: leave the cell body "
                        "empty", None, None, args.from_path)
    if not os.path.isfile(path):
        raise SpecError(f"no such file: `{args.from_path}` (`--from` takes a saved `.keras` "
                        "file, as written by `%export` or `model.save`)", None, None,
                        args.from_path)
    import keras
    try:
        model = keras.saving.load_model(path)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file is the user's
        raise SpecError(f"cannot load `{args.from_path}`: {' '.join(str(exc).split())[:300]}",
                        None, None, args.from_path) from None
    return model


def _short(value) -> str:
    """A space's value for a message: floats in the one number format."""
    from ..fmt import fmt
    return fmt(value) if isinstance(value, float) else repr(value)


def _has_body(cell: str) -> bool:
    return any(line.split("#", 1)[0].strip() for line in cell.splitlines())


def _bound_info(shell, name: str, what: str):
    """The `ModelInfo` of the spec-built model bound to `name`, or a SpecError."""
    from ..state import get_info
    from ..results.common import is_keras_model
    model = shell.user_ns.get(name)
    info = get_info(model, name) if is_keras_model(model) else None
    if info is None or not info.spec_text:
        kind = "no model" if model is None else (
            "not built from a spec" if info is not None else f"a {type(model).__name__}")
        raise SpecError(f"`%model {name}` with no cell body {what} a model built by a "
                        f"`%%model {name}` cell, and `{name}` is {kind}: give the spec as the "
                        "cell body", None, None, name)
    return model, info


def _show_code(shell, name: str) -> None:
    """`%model NAME --code` with no body: the plain Keras code of the model
    bound to NAME, at the values its search spaces hold (after `%tune`: the
    best trial's)."""
    from ..modelbuild.build import build
    from ..speclang.codegen import generate
    from ..modelbuild.catalog import parse_spec as parse
    from .summary import CodeView
    model, info = _bound_info(shell, name, "shows the code of")
    spec = parse(info.spec_text, input_shape=info.extra.get("input_shape"), first_line=CELL_LINE)
    values = info.extra.get("space_values") or None
    compiled = bool(getattr(model, "optimizer", None))
    result = build(spec, name, compile=compiled, values=values)
    _display(CodeView(generate(spec, name, result, compile=compiled)))
    return None


def run_model_cell(shell, args, cell: str) -> None:
    """Build the model of a `%%model` cell and bind it in the notebook.

    Args:
        shell: the IPython shell.
        args: the parsed magic line (`name`, `seed`, `code`, `no_compile`,
            `input`, `from_path`).
        cell: the cell body.

    Raises:
        SpecError: for any mistake in the line or the spec (shown short).
    """
    _check_name(args.name)
    if args.code and not _has_body(cell) and not args.from_path:
        return _show_code(shell, args.name)
    from ..train.background import check_free
    check_free(args.name, shell.user_ns.get(args.name), doing="rebuild")
    values = None
    if not _has_body(cell) and not args.from_path:  # `%model NAME`: NAME again, fresh weights
        _, info = _bound_info(shell, args.name, "rebuilds")
        cell, values = info.spec_text, info.extra.get("space_values") or None
        args.input = args.input or info.extra.get("input_shape")
    from ..train.device import enable_memory_growth
    from ..train.distribute import building, mark_placed  # --devices: built over them
    enable_memory_growth()  # TensorFlow: before the first model starts the GPUs
    if args.from_path:
        with building(getattr(args, "devices", None)) as devices:
            model = _load(shell, args, cell)
        shell.user_ns[args.name] = model
        version = _record(args.name, f"# --from {args.from_path}\n", model.count_params(),
                          source="file")
        kwargs = {}
        info = set_info(model, ModelInfo(name=args.name, spec_text="", version_id=version,
                                         compile_kwargs=kwargs,
                                         extra={"source": os.path.abspath(args.from_path)}))
        from ..train.images import read_classes
        names = read_classes(os.path.expanduser(args.from_path))  # what %export kept beside it
        if names:
            info.extra["class_names"] = names
        if devices:
            mark_placed(model, devices, info)
        from .summary import ModelSummary
        _display(ModelSummary.of(model))
        return None

    from ..speclang.lint import lint
    from ..modelbuild.catalog import parse_spec as parse
    spec = parse(cell, input_shape=args.input, first_line=CELL_LINE)
    for warning in lint(spec):
        print(f"Warning: {warning}", file=sys.stderr)

    import keras
    from ..modelbuild.build import build
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    with building(getattr(args, "devices", None)) as devices:
        result = build(spec, args.name, compile=not args.no_compile, values=values)
    if result.message and not args.no_compile:
        print(f"nbkeras: {result.message}")
    if spec.spaces and values:
        print(f"nbkeras: rebuilt {args.name} with fresh weights at the values it held: "
              + ", ".join(f"{k}={_short(v)}" for k, v in result.values.items()))
    elif spec.spaces:
        n = len(spec.spaces)
        print(f"nbkeras: this spec holds {n} search space{'s' if n > 1 else ''}, built at "
              f"{'their defaults' if n > 1 else 'its default'} (first choice, lower bound); "
              f"`%tune {args.name} ...` explores {'them' if n > 1 else 'it'}.")
    model = result.model
    shell.user_ns[args.name] = model
    version = _record(args.name, cell, model.count_params())
    info = set_info(model, ModelInfo(
        name=args.name, spec_text=cell, version_id=version,
        compile_kwargs=result.compile_kwargs if not args.no_compile else {},
        deferred_losses=result.deferred_losses if not args.no_compile else {},
        extra={"compile_code": result.compile_code, "space_values": dict(result.values),
               "input_shape": args.input}))
    pixels = [(spec.graph[i].line, spec.graph[i].text) for i, b in result.bases.items() if b.pixels]
    if pixels:  # %fit warns when these are fed inputs scaled to 0-1
        info.extra["pixel_bases"] = pixels
    if devices:
        mark_placed(model, devices, info)
    from .summary import CodeView, ModelSummary
    _display(ModelSummary.of(model, spec.spaces, result.values))
    if args.code:
        from ..speclang.codegen import generate
        _display(CodeView(generate(spec, args.name, result, compile=not args.no_compile)))
    return None
