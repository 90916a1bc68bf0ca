"""`%predict NAME X`: predictions, class indices, or the picture grid every
MNIST tutorial draws by hand (inputs with predicted and true labels, the
wrong ones in red)."""

from __future__ import annotations

import math

from ..errors import DataError, UsageError
from .common import (check_inputs, class_indices, evaluate_expr, get_model, label_indices,
                     n_samples, output_kind)

GRID_COLUMNS = 8


def run_predict(shell, args):
    """Body of `%predict NAME X [--classes] [--show N --images EXPR --labels EXPR]`.

    Returns:
        The predictions (as `model.predict` gives them), or class indices
        with `--classes`; None with `--show`, whose picture is the output
        (a returned array would be echoed under it).
    """
    from ..state import get_info
    from ..train.images import as_path, load_images
    model = get_model(shell, args.name, doing="predict")
    names = get_info(model, args.name).extra.get("class_names")
    x = evaluate_expr(shell, args.x, "X")
    path, files = as_path(x), None
    if path is not None:  # an image file, or a folder of them: read at the model's input size
        x, files, _ = load_images(path, model, f"`{args.x}`")
    check_inputs(model, x, args.x)
    if args.show is not None and args.show < 1:
        raise UsageError(f"`--show {args.show}`: give the number of inputs to show, e.g. "
                            "`--show 16`")
    if (args.images or args.labels) and args.show is None:
        raise UsageError("`--images` and `--labels` go with `--show N`, e.g. "
                            f"`%predict {args.name} {args.x} --show 16 --labels y_test`")
    try:
        pred = model.predict(x, batch_size=args.batch_size, verbose=0)
    except (ValueError, TypeError) as e:
        from .evaluate import short_keras_error
        raise DataError(f"`{args.x}` does not fit `{args.name}`: {short_keras_error(e)}") from None
    kind = output_kind(model)
    if args.classes or args.show:
        if kind in ("regression", "multi"):
            raise UsageError(f"`{args.name}` is not a single-output classifier (its output "
                                "is not softmax or sigmoid), so it has no classes to show; "
                                "drop `--classes`/`--show`")
        classes = class_indices(pred, kind)
    if args.show:
        images = evaluate_expr(shell, args.images, "--images") if args.images else x
        labels = evaluate_expr(shell, args.labels, "--labels") if args.labels else None
        show_grid(images, classes, labels, args.show, args, confidence(pred, kind), names)
        return None
    if files is not None and kind not in ("regression", "multi") and not args.classes:
        return _named(files, path, class_indices(pred, kind), confidence(pred, kind), names)
    return classes if args.classes else pred


def _named(files, path, classes, conf, names):
    """One row per image file: its predicted class (by name) and the model's confidence."""
    import pandas as pd
    base = path if path.is_dir() else path.parent
    return pd.DataFrame({
        "file": [str(f.relative_to(base)) for f in files],
        "class": [_txt(c, names) for c in classes],
        "probability": [round(float(c), 4) for c in conf] if conf is not None else None})


def as_images(images, n: int, expr: str):
    """The first `n` samples as arrays imshow can draw: (H, W) or (H, W, 3).

    Accepts 2D samples, flat vectors whose length is a perfect square
    (64 -> 8x8) and HxWx1 / HxWx3 samples.
    """
    import numpy as np
    if isinstance(images, (list, tuple, dict)):
        raise DataError(f"`{expr}` is a {type(images).__name__}; `--show` needs one array of "
                        "images (pass it with `--images EXPR`)")
    arr = np.asarray(images)[:n]
    shape = arr.shape[1:]
    if len(shape) == 1 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        arr = arr.reshape(len(arr), side, side)
    elif len(shape) == 3 and shape[-1] == 1:
        arr = arr[..., 0]
    elif not (len(shape) == 2 or (len(shape) == 3 and shape[-1] == 3)):
        raise DataError(f"cannot draw samples of shape {shape} from `{expr}` as images: "
                        "give 2D images, HxWx1 or HxWx3 images, or flat vectors of a square "
                        "length (64 -> 8x8) with `--images EXPR`")
    arr = arr.astype("float32")
    if arr.ndim == 4:  # colour: imshow wants 0..1 floats
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo and (lo < 0 or hi > 1) else arr
    return arr


def confidence(pred, kind: str):
    """Per sample, the predicted class's probability (softmax: the largest
    one; one sigmoid unit: that of the class chosen), or None."""
    import numpy as np
    pred = np.asarray(pred)
    if kind == "softmax":
        return pred.max(axis=-1)
    if kind == "sigmoid" and pred.ndim == 2 and pred.shape[1] == 1:
        p = pred[:, 0]
        return np.where(p >= 0.5, p, 1 - p)
    return None


def show_grid(images, classes, labels, n: int, args, conf=None, names=None):
    """Draw `n` images with their predicted (and true) labels and the
    model's confidence; wrong ones red, with room between the rows."""
    import matplotlib.pyplot as plt
    import numpy as np
    from ..view.plots import NEUTRAL_TEXT, WRONG_COLOR

    total = n_samples(images)
    n = min(n, len(classes), total if total is not None else n)
    if total is not None and total != len(classes):
        raise DataError(f"`{args.images}` has {total} samples but `{args.x}` has "
                        f"{len(classes)}; they must be the same samples")
    imgs = as_images(images, n, args.images or args.x)
    truth = None
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != len(classes):
            raise DataError(f"`{args.labels}` has {len(labels)} labels but `{args.x}` has "
                            f"{len(classes)} samples")
        truth = label_indices(labels)[:n]
    cols = min(GRID_COLUMNS, n)
    rows = math.ceil(n / cols)
    # constrained layout gives each row's titles their own room (tight_layout
    # let a second row's two-line titles overlap the first row's images)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 2.0 * rows), squeeze=False,
                             layout="constrained")
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(imgs[i], cmap=None if imgs[i].ndim == 3 else "gray_r")
        pred = classes[i]
        sure = f" · {conf[i]:.0%}" if conf is not None else ""
        if truth is None:
            ax.set_title(f"{_txt(pred, names)}{sure}", fontsize=11)
        else:
            wrong = np.any(np.asarray(pred) != np.asarray(truth[i]))
            ax.set_title(f"{_txt(pred, names)}{sure}\ntrue {_txt(truth[i], names)}", fontsize=10.5,
                         color=WRONG_COLOR if wrong else NEUTRAL_TEXT, linespacing=1.3)
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.04)
    from .common import show_figure
    return show_figure(fig)


def _txt(label, names=None) -> str:
    """A class as shown: its name when the model has class names, else its index."""
    import numpy as np
    label = np.asarray(label)
    if label.ndim:  # multi-label: the indices that are on
        return ",".join(str(i) for i in np.flatnonzero(label)) or "-"
    i = int(label)
    return str(names[i]) if names and 0 <= i < len(names) else str(i)
