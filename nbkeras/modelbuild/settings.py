"""The training settings of a spec -> `model.compile` keyword arguments.

Optimizer, loss and metric names are Keras' own string identifiers,
looked up case-insensitively in `keras.optimizers`, `keras.losses` and
`keras.metrics` (plus the few short names the spec language documents and
Keras lacks, `rmse` and `f1`). With no `loss`, a default is chosen from
each output layer and said in one line. Every value kept in
`compile_kwargs` is what `model.compile` was given: Keras string
identifiers, or an optimizer / loss object when the spec gave it options.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple

import keras

from ..errors import SpecError
from ..speclang.nodes import Arg, ModelSpec, SettingStmt
from .names import closest, short

METRIC_ALIASES = {"acc": "accuracy", "rmse": "root_mean_squared_error", "f1": "f1_score"}
_NOT_OPTIMIZERS = {"optimizer", "lossscaleoptimizer", "multioptimizer", "optimizermap"}
_NOT_FUNCS = {"get", "serialize", "deserialize", "legacy", "schedules"}
_SHORTHANDS = {"cce": "categorical_crossentropy", "scce": "sparse_categorical_crossentropy",
               "crossentropy": "sparse_categorical_crossentropy", "l2": "mse", "l1": "mae",
               "sparse_accuracy": "sparse_categorical_accuracy"}  # hints only, not names
_SUGGEST = {"loss": ["mse", "mae", "mape", "msle", "kld"],
            "metric": ["accuracy", "auc", "precision", "recall", "mse", "mae", "rmse", "f1"]}


def _norm(word: str) -> str:
    return word.lower().replace("_", "")


def _public(module) -> List[str]:
    return [n for n in dir(module) if not n.startswith("_") and n not in _NOT_FUNCS]


def _closest(word, choices):
    return closest(word, choices)


def _lookup(kind: str, module, arg: Arg, aliases: Dict[str, str]) -> str:
    """A case-insensitive name -> the identifier `module.get` accepts."""
    if arg.kind not in ("word", "str"):
        raise SpecError(f"`{arg.text}` is not a {kind} name", arg.line, arg.column, arg.text)
    low = str(arg.value).lower()
    low = aliases.get(low, low)
    names = _public(module)
    by_norm: Dict[str, str] = {}
    for n in names:  # functions (snake_case) win over classes of the same name
        if not (inspect.isclass(getattr(module, n)) and _norm(n) in by_norm):
            by_norm[_norm(n)] = n
    try:
        module.get(low)
        return low
    except Exception:  # noqa: BLE001 - not an identifier as written; try the table
        pass
    found = by_norm.get(_norm(low))
    if found is not None:
        return found
    choices = [n for n in names if not inspect.isclass(getattr(module, n))]
    choices += [n.lower() for n in names if inspect.isclass(getattr(module, n))
                and not choices] + _SUGGEST.get(kind, [])
    hint = (f" (did you mean `{_SHORTHANDS[low]}`?)" if low in _SHORTHANDS
            else _closest(low, choices + sorted(aliases)))
    raise SpecError(f"unknown {kind} `{arg.text}`{hint}; {kind} names are Keras "
                    "identifiers like " + {"optimizer": "`adam`, `sgd`, `rmsprop`",
                                           "loss": "`mse`, `sparse_categorical_crossentropy`",
                                           "metric": "`accuracy`, `mae`, `auc`"}[kind],
                    arg.line, arg.column, arg.text)


def _class_for(module, base, identifier: str):
    target = _norm(getattr(module.get(identifier), "__name__", identifier))
    for n in _public(module):
        obj = getattr(module, n)
        if inspect.isclass(obj) and issubclass(obj, base) and _norm(n) in (target, _norm(identifier)):
            return obj
    return type(module.get(identifier))


def _options(cls, args: List[Arg], stmt: SettingStmt, renames=None) -> Dict[str, Any]:
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    options: Dict[str, Any] = {}
    for arg in args:
        key = arg.key.lower()
        key = (renames or {}).get(key, key)
        if key not in params:
            hint = _closest(key, params + list(renames or ()))
            raise SpecError(f"`{cls.__name__}` has no option `{arg.key}`{hint}",
                            arg.line, arg.column, arg.key)
        if key in options:
            raise SpecError(f"`{arg.key}` is given twice in `{stmt.text}`: keep one",
                            arg.line, arg.column, arg.key)
        options[key] = arg.python()
    return options


def _code(value: Any) -> str:
    return repr(value)


def _optimizer(spec: ModelSpec) -> Tuple[Any, str]:
    stmt = spec.settings.get("optimizer")
    if stmt is None:
        return "adam", "'adam'"
    name = _lookup("optimizer", keras.optimizers, stmt.args[0], {})
    if _norm(name) in _NOT_OPTIMIZERS:
        raise SpecError(f"`{stmt.args[0].text}` cannot be given by name; use e.g. `adam`",
                        stmt.line, stmt.args[0].column, stmt.args[0].text)
    known = getattr(keras.optimizers, name, None)
    try:
        cls = type(keras.optimizers.get(name))
    except Exception:  # noqa: BLE001 - a class `get` does not list (Keras' `Lamb`)
        if not inspect.isclass(known):
            raise SpecError(f"`{stmt.args[0].text}` cannot be given by name; use e.g. `adam`",
                            stmt.line, stmt.args[0].column, stmt.args[0].text) from None
        cls = known
    else:
        if len(stmt.args) == 1:
            return name, _code(name)
    options = _options(cls, list(stmt.args[1:]), stmt, {"lr": "learning_rate"})
    return _construct(cls, options, stmt, "keras.optimizers")


def _construct(cls, kwargs: Dict[str, Any], stmt: SettingStmt, module: str) -> Tuple[Any, str]:
    """`cls(**kwargs)` and its code; Keras' complaint becomes a SpecError on `stmt`."""
    try:
        obj = cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - any Keras complaint is the user's
        raise SpecError(f"`{stmt.text}` failed in Keras: {short(exc)}", stmt.line, stmt.column,
                        stmt.text) from None
    args = ", ".join(f"{k}={_code(v)}" for k, v in kwargs.items())
    return obj, f"{module}.{cls.__name__}({args})"


def _loss(arg: Arg, options: List[Arg], stmt: SettingStmt) -> Tuple[Any, str]:
    name = _lookup("loss", keras.losses, arg, {})
    if not options:
        return name, _code(name)
    cls = _class_for(keras.losses, keras.losses.Loss, name)
    return _construct(cls, _options(cls, options, stmt), stmt, "keras.losses")


def _is_option(loss: Arg, key: str) -> bool:
    """Whether `key` is an option of the loss named by `loss` (e.g. `reduction`)."""
    try:
        cls = _class_for(keras.losses, keras.losses.Loss, _lookup("loss", keras.losses, loss, {}))
        return key.lower() in inspect.signature(cls.__init__).parameters
    except Exception:  # noqa: BLE001 - an unknown loss is reported where it is resolved
        return False


def _output_key(arg: Arg, names: List[str], what: str) -> str:
    if arg.key not in names:
        raise SpecError(f"`{arg.key}` is not an output{_closest(arg.key, names)}: per-output "
                        f"{what} name outputs by their layer names ({', '.join(names)})",
                        arg.line, arg.column, arg.key)
    return arg.key


def _metric_names(arg: Arg) -> List[str]:
    items = arg.items if arg.kind == "list" else (arg,)
    return [_lookup("metric", keras.metrics, item, METRIC_ALIASES) for item in items]


def _default(layer, model_output) -> Tuple[str, str, bool]:
    """(loss, metric, is_softmax) for an output when the spec gave no loss."""
    act = getattr(layer, "activation", None)
    act_name = getattr(act, "__name__", str(act or "")).lower()
    if type(layer).__name__ == "Softmax" or act_name == "softmax":
        return "sparse_categorical_crossentropy", "accuracy", True
    units = model_output.shape[-1] if len(model_output.shape) else None
    if act_name == "sigmoid" and units == 1:
        return "binary_crossentropy", "accuracy", False
    return "mse", "mae", False


def resolve_compile(spec: ModelSpec, model, output_layers: list, result) -> None:
    """Fill `result.compile_kwargs`, `compile_code`, `deferred_losses`, `message`."""
    names = list(model.output_names)
    multi = len(names) > 1
    kwargs: Dict[str, Any] = {}
    code: Dict[str, str] = {}
    kwargs["optimizer"], code["optimizer"] = _optimizer(spec)
    loss_stmt = spec.settings.get("loss")
    output_losses = list(getattr(spec, "output_losses", ()))
    chosen: Optional[List[Tuple[str, str, bool]]] = None
    if loss_stmt is None and output_losses:
        loss_stmt = output_losses[0]
    if loss_stmt is not None and loss_stmt.args[0].key is None and not output_losses:
        kwargs["loss"], code["loss"] = _loss(loss_stmt.args[0], list(loss_stmt.args[1:]),
                                             loss_stmt)
    elif loss_stmt is not None:
        per: Dict[str, Tuple[Arg, List[Arg]]] = {}
        where: Dict[str, SettingStmt] = {}
        last = None
        for stmt in output_losses:
            out = _output_key(Arg(stmt.output, "word", stmt.output, stmt.line,
                                  stmt.output_column, key=stmt.output), names, "losses")
            per[out], where[out] = (stmt.args[0], list(stmt.args[1:])), stmt
        plain = spec.settings.get("loss")
        for arg in (plain.args if plain is not None else ()):
            if arg.key not in names and last is not None and (
                    arg.kind not in ("word", "str") or _is_option(per[last][0], arg.key)):
                per[last][1].append(arg)  # an option of the loss before it
                continue
            last = _output_key(arg, names, "losses")
            if last in per:
                raise SpecError(f"two losses for output `{last}` in `{loss_stmt.text}`: keep one",
                                arg.line, arg.column, arg.key)
            per[last] = (arg, [])
        missing = [n for n in names if n not in per]
        if missing:
            add = (f"add `{missing[0]}=LOSS` to `{plain.text}`" if plain is not None
                   else f"add a line `loss {missing[0]}: LOSS`")
            raise SpecError(f"no loss for output `{missing[0]}`: {add}", loss_stmt.line,
                            loss_stmt.column, loss_stmt.text)
        built = {n: _loss(a, opts, where.get(n, loss_stmt)) for n, (a, opts) in per.items()}
        kwargs["loss"] = {n: built[n][0] for n in names}
        code["loss"] = "{" + ", ".join(f"{n!r}: {built[n][1]}" for n in names) + "}"
    else:
        chosen = [_default(layer, out) for layer, out in zip(output_layers, model.outputs)]
        losses = [c[0] for c in chosen]
        kwargs["loss"] = {n: l for n, l in zip(names, losses)} if multi else losses[0]
        code["loss"] = _code(kwargs["loss"])
        result.deferred_losses = {n: "categorical" for n, c in zip(names, chosen) if c[2]}
    weights = spec.settings.get("loss_weights")
    if weights is not None:
        if weights.args[0].key is None:
            if len(weights.args) != len(names):
                raise SpecError(f"`{weights.text}` gives {len(weights.args)} weights for "
                                f"{len(names)} outputs: give one per output, like "
                                f"`loss_weights {' '.join(f'{n}=1.0' for n in names)}`",
                                weights.line, weights.column, weights.text)
            kwargs["loss_weights"] = [a.value for a in weights.args]
        else:
            kwargs["loss_weights"] = {}
            for a in weights.args:
                out = _output_key(a, names, "loss weights")
                if out in kwargs["loss_weights"]:
                    raise SpecError(f"two loss weights for output `{out}` in `{weights.text}`: "
                                    "keep one", a.line, a.column, a.key)
                kwargs["loss_weights"][out] = a.value
        code["loss_weights"] = _code(kwargs["loss_weights"])
    metrics_stmt = spec.settings.get("metrics")
    if metrics_stmt is not None:
        common: List[str] = []
        per_metrics: Dict[str, List[str]] = {}
        for arg in metrics_stmt.args:
            if arg.key is None:
                common += _metric_names(arg)
            else:
                per_metrics.setdefault(_output_key(arg, names, "metrics"), []).extend(
                    _metric_names(arg))
        if multi or per_metrics:
            kwargs["metrics"] = {n: common + per_metrics.get(n, []) for n in names
                                 if common or per_metrics.get(n)}
        else:
            kwargs["metrics"] = common
        code["metrics"] = _code(kwargs["metrics"])
    elif chosen is not None:
        metrics = [c[1] for c in chosen]
        kwargs["metrics"] = {n: [m] for n, m in zip(names, metrics)} if multi else [metrics[0]]
        code["metrics"] = _code(kwargs["metrics"])
    result.compile_kwargs, result.compile_code = kwargs, code
    if chosen is not None:
        parts = []
        for n, (loss, _, soft) in zip(names, chosen):
            shown = "categorical cross-entropy (sparse or one-hot, settled by %fit from the labels)" if soft else loss
            parts.append(f"{n}: {shown}" if multi else shown)
        metric = kwargs["metrics"]
        metric_text = (", ".join(f"{k}: {', '.join(v)}" for k, v in metric.items())
                       if isinstance(metric, dict) else ", ".join(metric))
        opt = kwargs["optimizer"]
        opt_text = opt if isinstance(opt, str) else type(opt).__name__.lower()
        result.message = (f"No loss given: compiled with loss {'; '.join(parts)}, "
                          f"optimizer {opt_text}, metrics {metric_text}.")
