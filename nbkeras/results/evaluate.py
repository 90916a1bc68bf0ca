"""`%evaluate NAME X Y`: held-out figures a user would otherwise code by hand.

The compiled loss and metrics come from `model.evaluate`; on top of them a
classifier gets per-class precision/recall/F1, a confusion matrix and (for
two classes) ROC AUC, and a regressor RMSE, MAE and R², computed by
`nbkeras.results.metrics`. The result is returned as a dict and recorded
in the registry against the model's latest run.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..errors import DataError, UsageError
from ..registry import get_registry
from ..state import get_info
from . import metrics as M
from .common import Table, check_inputs, evaluate_expr, fmt, get_model, n_samples, output_kind


class Evaluation(dict):
    """The flat metrics dict (`r["accuracy"]`), plus the details shown.

    Attributes:
        per_class: rows of {"class", "precision", "recall", "f1", "support"}
            for classifiers, else None.
        confusion: the confusion matrix (true rows, predicted columns) or None.
        figure: the confusion-matrix figure, or None.
        kind: 'softmax', 'sigmoid', 'logits', 'regression' or 'multi'.
    """

    per_class: Optional[List[Dict[str, Any]]] = None
    confusion: Any = None
    figure: Any = None
    kind: str = ""
    class_names: Optional[List[str]] = None
    outputs: Optional[Dict[str, "Evaluation"]] = None
    output: str = ""


def short_keras_error(e: Exception) -> str:
    """The first meaningful line of a (long) Keras/TensorFlow error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    for ln in lines:
        if "incompatible" in ln.lower() or "expected" in ln.lower():
            text = ln
            break
    return text[:300]


def run_evaluate(shell, args) -> Evaluation:
    """Body of `%evaluate NAME X Y [--batch-size N] [--no-plots]`."""
    model = get_model(shell, args.name, doing="evaluate")
    x = evaluate_expr(shell, args.x, "X")
    x, y, names = _images_or(shell, model, x, args)
    nx, ny = n_samples(x), n_samples(y)
    if nx is not None and ny is not None and nx != ny:
        raise DataError(f"`{args.x}` has {nx} samples but `{args.y}` has {ny}; "
                        "they must be the same length")
    check_inputs(model, x, args.x)
    if not getattr(model, "compiled", True) or getattr(model, "optimizer", None) is None:
        raise UsageError(f"`{args.name}` is not compiled; build it without `--no-compile` "
                            f"or call `{args.name}.compile(...)` first")
    kind = output_kind(model)
    y = _match_label_format(model, y, args.y)
    units = _units(model)
    y_true = None
    if kind in ("softmax", "logits") or (kind == "sigmoid" and units == 1):
        import numpy as np
        y_true = _true_classes(np.asarray(y), max(units, 2), units, args.y)  # before Keras sees them
    try:
        scores = model.evaluate(x, y, batch_size=args.batch_size, verbose=0, return_dict=True)
    except (ValueError, TypeError) as e:
        raise DataError(f"`{args.x}`, `{args.y}` do not fit `{args.name}`: "
                        f"{short_keras_error(e)}") from None
    result = Evaluation({k: float(v) for k, v in scores.items()})
    result.kind = kind
    if kind != "multi":
        import numpy as np
        pred = np.asarray(model.predict(x, batch_size=args.batch_size, verbose=0))
        if kind == "regression":
            try:
                result.update(M.regression_metrics(np.asarray(y), pred))
            except ValueError as e:
                raise DataError(f"`{args.y}` does not match the model's outputs: {e}") from None
        elif y_true is None:
            _multilabel(result, np.asarray(y), pred, args)
        else:
            _classification(result, y_true, pred, names)
    else:
        result.outputs = _per_output(model, x, y, args)
        for sub in result.outputs.values():
            result.update({f"{sub.output}_{k}": v for k, v in sub.items()
                           if f"{sub.output}_{k}" not in result})
    _show(result, args)
    for sub in (result.outputs or {}).values():
        _show(sub, args)
    info = get_info(model, args.name)
    run_id = info.run_ids[-1] if info.run_ids else None
    get_registry().add_evaluation(run_id=run_id, model=info.name or args.name,
                                  metrics=dict(result))
    return result


def _output_kind(layer, loss) -> str:
    """Like `output_kind`, for one output of a multi-output model."""
    act = getattr(getattr(layer, "activation", None), "__name__", "") or ""
    if "softmax" in act.lower():
        return "softmax"
    if "sigmoid" in act.lower():
        return "sigmoid"
    if "crossentropy" in str(loss).lower():
        return "logits"
    return "regression"


def _per_output(model, x, y, args) -> Dict[str, Evaluation]:
    """Per-class or regression figures for each output of a multi-output model."""
    import numpy as np
    names = list(model.output_names)
    preds = model.predict(x, batch_size=args.batch_size, verbose=0)
    if isinstance(preds, dict):
        preds = [preds[n] for n in names]
    losses = model.loss if isinstance(model.loss, (dict, list, tuple)) else [model.loss] * len(names)
    out: Dict[str, Evaluation] = {}
    for i, name in enumerate(names):
        target = y.get(name) if isinstance(y, dict) else (y[i] if isinstance(y, (list, tuple)) else None)
        if target is None:
            continue
        loss = losses.get(name, "") if isinstance(losses, dict) else losses[i]
        sub = Evaluation()
        sub.kind = _output_kind(model.get_layer(name), getattr(loss, "name", loss))
        sub.output = name
        pred = np.asarray(preds[i])
        target = np.asarray(target)
        units = pred.shape[-1] if pred.ndim > 1 else 1
        expr = f"{args.y}[{name!r}]"
        if sub.kind == "regression":
            sub.update(M.regression_metrics(target, pred))
        elif sub.kind == "sigmoid" and units > 1:
            _multilabel(sub, target, pred, args)
        else:
            _classification(sub, _true_classes(target, max(units, 2), units, expr), pred)
        out[name] = sub
    return out


def _loss_name(model) -> str:
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return loss
    return str(getattr(loss, "name", None) or getattr(loss, "__name__", "") or "")


def _match_label_format(model, y, expr: str):
    """One-hot labels for a sparse loss (or the reverse) are converted, saying so."""
    import numpy as np
    if output_kind(model) not in ("softmax", "logits") or not hasattr(y, "shape"):
        return y
    units = model.outputs[0].shape[-1]
    loss = _loss_name(model).lower()
    if not units or units < 2 or "categorical_crossentropy" not in loss:
        return y
    y_arr = np.asarray(y)
    if "sparse" in loss and y_arr.ndim == 2 and y_arr.shape[1] == units:
        print(f"`{expr}` is one-hot; evaluating with its class indices (the loss is sparse)")
        return y_arr.argmax(axis=-1)
    if "sparse" not in loss and (y_arr.ndim == 1 or y_arr.shape[1:] == (1,)) \
            and y_arr.dtype.kind in "iu" and (y_arr.min() >= 0) and (y_arr.max() < units):
        print(f"`{expr}` holds class indices; evaluating with one-hot rows (the loss is "
              "categorical)")
        return np.eye(units, dtype="float32")[y_arr.reshape(len(y_arr))]
    return y


def _units(model) -> int:
    shape = tuple(model.outputs[0].shape) if len(model.outputs) == 1 else ()
    return int(shape[-1]) if len(shape) > 1 and shape[-1] else 1


def _multilabel(result: Evaluation, y, pred, args) -> None:
    """Several independent sigmoid units: one yes/no per unit."""
    if y.shape != pred.shape:
        raise DataError(f"`{args.y}` has shape {y.shape} but the {pred.shape[-1]} sigmoid "
                        f"outputs need 0/1 labels of shape {pred.shape}")
    per = M.multilabel_precision_recall_f1(y > 0.5, pred > 0.5)
    result.update(M.averages(per))
    result.per_class = _rows(per)


def _images_or(shell, model, x, args):
    """(x, y, class names): `%evaluate NAME "test/"` reads a folder of class
    subfolders as the model's images and their classes; else Y is evaluated."""
    from ..state import get_info
    from ..train.images import as_path, load_images, truth_indices
    names = get_info(model, args.name).extra.get("class_names")
    path = as_path(x)
    if path is None:
        if args.y is None:
            raise UsageError(f"give the targets: `%evaluate {args.name} {args.x} Y`")
        return x, evaluate_expr(shell, args.y, "Y"), names
    if args.y is not None:
        raise UsageError(f"`{args.x}` is a folder of images whose class subfolders are the "
                         f"labels: drop `{args.y}`")
    images, _, truth = load_images(path, model, f"`{args.x}`")
    if truth is None:
        raise UsageError(f"`{args.x}` holds images but no class subfolders: %evaluate needs "
                         "the true classes (test/cats/, test/dogs/, ...); %predict names them")
    y, names = truth_indices(truth, names, path)
    return images, y, names


def _classification(result: Evaluation, y_true, pred, names=None) -> None:
    import numpy as np
    units = pred.shape[-1] if pred.ndim > 1 else 1
    if units == 1:
        n_classes = 2
        scores = pred.reshape(len(pred))
        y_pred = (scores > (0.0 if result.kind == "logits" else 0.5)).astype(np.int64)
    else:
        n_classes = units
        scores = pred[:, 1] if units == 2 else None
        y_pred = pred.argmax(axis=-1)
    cm = M.confusion_matrix(y_true, y_pred, n_classes)
    per = M.precision_recall_f1(cm)
    result.update(M.averages(per))
    if n_classes == 2 and scores is not None:
        result["roc_auc"] = M.roc_auc(y_true, scores)
    result.per_class = _rows(per, names)
    result.confusion = cm
    result.class_names = list(names) if names and len(names) == n_classes else None


def _true_classes(y, n_classes: int, units: int, expr: str):
    """Class indices from sparse labels or one-hot rows; a short DataError otherwise."""
    import numpy as np
    if y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != n_classes:
            raise DataError(f"`{expr}` has one-hot rows of {y.shape[1]} columns but the model "
                            f"has {units} output units")
        return y.argmax(axis=-1)
    if y.size != len(y):
        raise DataError(f"`{expr}` has shape {y.shape}: expected one class label per sample")
    flat = y.reshape(len(y))
    if flat.dtype.kind not in "iub" and not np.all(np.mod(flat, 1) == 0):
        raise DataError(f"`{expr}` holds non-integer labels (e.g. {flat[np.mod(flat, 1) != 0][0]}) "
                        "for a classifier")
    flat = flat.astype(np.int64)
    bad = (flat < 0) | (flat >= n_classes)
    if bad.any():
        raise DataError(f"`{expr}` holds label {flat[bad][0]}, outside 0..{n_classes - 1} for a "
                        f"model with {units} output unit{'s' * (units > 1)}")
    return flat


def _rows(per, names=None) -> List[Dict[str, Any]]:
    names = names if names and len(names) == len(per["f1"]) else None
    return [{"class": names[i] if names else i, "precision": float(per["precision"][i]),
             "recall": float(per["recall"][i]), "f1": float(per["f1"][i]),
             "support": int(per["support"][i])} for i in range(len(per["f1"]))]


def _compiled_line(result: Evaluation) -> str:
    """'loss 0.12 · accuracy 0.96': the compiled metrics, for a table's note."""
    skip = ("macro_", "weighted_", "roc_auc")
    return " · ".join(f"{k} {fmt(v)}" for k, v in result.items() if not k.startswith(skip))


def _show(result: Evaluation, args) -> None:
    from IPython.display import display
    title = f"{args.name} on {args.x}" + (f": output {result.output}" if result.output else "")
    if result.per_class is None:
        rows = [[k, fmt(v)] for k, v in result.items() if not result.outputs
                or not any(k.startswith(f"{o}_") and k[len(o) + 1:] in sub
                           for o, sub in result.outputs.items())]
        display(Table(["metric", "value"], rows, title=title))
        return
    if result.per_class is not None:
        rows = [[r["class"], fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]),
                 r["support"]] for r in result.per_class]
        total = sum(r["support"] for r in result.per_class)
        for avg in ("macro", "weighted"):
            rows.append([f"{avg} avg"] + [fmt(result[f"{avg}_{k}"])
                                          for k in ("precision", "recall", "f1")] + [total])
        headline = _compiled_line(result)
        if "roc_auc" in result:
            headline += f" · ROC AUC {fmt(result['roc_auc'])}"
        display(Table(["class", "precision", "recall", "f1", "support"], rows,
                      title=title, headline=headline))
        if result.confusion is not None and not args.no_plots:
            result.figure = _plot_confusion(
                result.confusion, f"{args.name}.{result.output}" if result.output else args.name,
                result.class_names)


def _plot_confusion(cm, name: str, labels=None):
    import matplotlib.pyplot as plt

    k = len(cm)
    size = min(2.2 + 0.3 * k, 5.5)  # about as wide as the table beside it, not more
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=100)
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if k <= 20:
        ticks = range(k)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        if labels:  # the model's class names (an image folder's subfolders)
            ax.set_xticklabels(labels, rotation=45, ha="right")
            ax.set_yticklabels(labels)
        high = cm.max() / 2 if cm.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize="small",
                        color="white" if cm[i, j] > high else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{name}: confusion matrix")
    fig.tight_layout()
    from .common import show_figure
    return show_figure(fig)
