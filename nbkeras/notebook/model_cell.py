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
    from ..train.background import check_free
    check_free(args.name, shell.user_ns.get(args.name), doing="rebuild")
    if args.from_path:
        model = _load(shell, args, cell)
        shell.user_ns[args.name] = model
        version = _record(args.name, f"# --from {args.from_path}\n", model.count_params(),
                          source="file")
        kwargs = {}
        set_info(model, ModelInfo(name=args.name, spec_text="", version_id=version,
                                  compile_kwargs=kwargs,
                                  extra={"source": os.path.abspath(args.from_path)}))
        from .summary import ModelSummary
        _display(ModelSummary.of(model))
        return None

    from ..speclang.lint import lint
    from ..speclang.parse import parse
    spec = parse(cell, input_shape=args.input)
    for warning in lint(spec):
        print(f"Warning: {warning}", file=sys.stderr)

    import keras
    from ..modelbuild.build import build
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    result = build(spec, args.name, compile=not args.no_compile)
    if result.message and not args.no_compile:
        print(f"nbkeras: {result.message}")
    if spec.spaces:
        n = len(spec.spaces)
        print(f"nbkeras: this spec holds {n} search space{'s' if n > 1 else ''}, built at "
              f"{'their defaults' if n > 1 else 'its default'} (first choice, lower bound); "
              f"`%tune {args.name} ...` explores them.")
    model = result.model
    shell.user_ns[args.name] = model
    version = _record(args.name, cell, model.count_params())
    set_info(model, ModelInfo(
        name=args.name, spec_text=cell, version_id=version,
        compile_kwargs=result.compile_kwargs if not args.no_compile else {},
        deferred_losses=result.deferred_losses if not args.no_compile else {},
        extra={"compile_code": result.compile_code, "space_values": dict(result.values)}))
    from .summary import CodeView, ModelSummary
    _display(ModelSummary.of(model, spec.spaces, result.values))
    if args.code:
        from ..speclang.codegen import generate
        _display(CodeView(generate(spec, args.name, result, compile=not args.no_compile)))
    return None
