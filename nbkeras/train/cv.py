"""`%fit NAME X Y --cv K`: K-fold cross-validation, each fold trained like `%fit`.

The folds are scikit-learn's (`StratifiedKFold` for a classifier's labels,
`KFold` otherwise; `--cv-shuffle` with `--seed` shuffles). Each fold trains
a copy of the model from the same initial weights, with a fresh optimizer
from the model's own compile configuration, through `%fit`'s plan and
session (registry run, SIGINT, undo), on the fold's training part with the
held-out part as validation. `NAME` keeps its initial weights: a
cross-validation estimates how well the model generalises, it does not
pick one. The result is a DataFrame, one row per fold plus `mean` and
`std`; the display shows one row per fold, live, and `mean ± std`.
"""

from __future__ import annotations

import html
import math
import statistics
import time
import uuid
from typing import Any, Dict, List

from ..errors import UsageError
from ..fmt import fmt, fmt_duration
from ..view.panel import Html
from ..view.record import _CELL, _FONT


def _take(data, idx):
    """Rows `idx` of an array, or of each array in a list or dict."""
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: _take(v, idx) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_take(v, idx) for v in data]
    return data[idx]


def _first(data):
    if isinstance(data, dict):
        return next(iter(data.values()))
    if isinstance(data, (list, tuple)):
        return data[0]
    return data


def folds(model, x, y, k: int, shuffle: bool, seed):
    """The (train indices, held-out indices) of each fold."""
    import numpy as np
    try:
        from sklearn.model_selection import KFold, StratifiedKFold
    except ImportError:
        raise UsageError("--cv needs scikit-learn for its folds: `pip install scikit-learn` "
                         "(or `pip install \"nbkeras[cv]\"`)") from None
    from ..metricvocab import output_kind
    n = len(_first(x))
    if k < 2 or k > n:
        raise UsageError(f"--cv {k}: give between 2 and the number of samples ({n})")
    labels = None
    if len(getattr(model, "outputs", []) or []) == 1 and output_kind(
            model.layers[-1], getattr(model, "loss", None)) in ("classifier", "binary", "logits"):
        yy = np.asarray(_first(y))
        labels = yy.argmax(-1) if yy.ndim == 2 and yy.shape[1] > 1 else yy.reshape(len(yy))
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() < k:
            labels = None  # a class too rare to stratify: plain folds
    state = seed if shuffle else None
    if labels is not None:
        return list(StratifiedKFold(k, shuffle=shuffle, random_state=state).split(labels, labels))
    return list(KFold(k, shuffle=shuffle, random_state=state).split(np.zeros(n)))


class CVView:
    """One live row per fold, the fold in flight, and `mean ± std`."""

    def __init__(self, name: str, k: int, quiet: bool, text: bool):
        self.name, self.k, self.quiet, self.text = name, k, quiet, text
        self.rows: List[Dict[str, Any]] = []
        self.current = ""
        self.started = time.perf_counter()
        self._handle = self._out = None
        self._last = 0.0

    def start(self) -> None:
        if self.quiet or self.text:
            return
        from IPython.display import display

        from ..view.publish import OutputUpdater
        self._handle = display(Html(self.html(), self.summary()), display_id=True)
        self._out = OutputUpdater(self._handle)

    def progress(self, text: str) -> None:
        self.current = text
        if time.perf_counter() - self._last >= 0.3:
            self.draw()

    def fold_done(self, row: Dict[str, Any]) -> None:
        self.rows.append(row)
        self.current = ""
        if self.text and not self.quiet:
            print(f"fold {row['fold']}/{self.k}: " + " · ".join(
                f"{k} {fmt(v)}" for k, v in row.items() if isinstance(v, float) and k != "seconds"))
        self.draw()

    def draw(self) -> None:
        self._last = time.perf_counter()
        if self._out is not None:
            self._out.update({"text/html": self.html(), "text/plain": self.summary()})

    def finish(self) -> None:
        if self._handle is not None:
            self._handle.update(Html(self.html(), self.summary()))
        elif not self.quiet:
            print(self.summary())

    def metrics(self) -> List[str]:
        keys: List[str] = []
        for row in self.rows:
            keys += [k for k, v in row.items()
                     if isinstance(v, float) and k not in keys and k != "seconds"]
        return sorted(keys, key=lambda k: (not k.startswith("val_"), k != "val_loss", k))

    def html(self) -> str:
        keys = self.metrics()
        head = "".join(f"<th style='{_CELL}'>{html.escape(h)}</th>"
                       for h in ["fold", "epochs", *keys, "time"])
        body = []
        for row in self.rows:
            cells = [str(row["fold"]), str(row["epochs"])] + [fmt(row.get(k)) for k in keys]
            cells.append(fmt_duration(row["seconds"]))
            body.append("<tr>" + "".join(f"<td style='{_CELL}'>{html.escape(c)}</td>"
                                         for c in cells) + "</tr>")
        if len(self.rows) > 1:
            stats = mean_std(self.rows, keys)
            cells = ["mean ± std", ""] + [f"{fmt(stats[k][0])} ± {fmt(stats[k][1])}"
                                          for k in keys] + [""]
            body.append("<tr style='font-weight:600'>" + "".join(
                f"<td style='{_CELL}'>{html.escape(c)}</td>" for c in cells) + "</tr>")
        status = (f"fold {len(self.rows) + 1} of {self.k}: {self.current}" if self.current
                  else f"{len(self.rows)} of {self.k} folds")
        return (f"<div class='nbkeras-cv' data-folds-done='{len(self.rows)}' style='{_FONT}'>"
                f"<div><b>{html.escape(self.name)}</b> · {self.k}-fold cross-validation · "
                f"{html.escape(status)} · {fmt_duration(time.perf_counter() - self.started)}"
                f"</div><table style='border-collapse:collapse;margin-top:4px;"
                f"font-variant-numeric:tabular-nums'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table></div>")

    def summary(self) -> str:
        keys = [k for k in self.metrics() if k.startswith("val_")][:3]
        stats = mean_std(self.rows, keys) if len(self.rows) > 1 else {}
        parts = [f"{self.name}: {len(self.rows)} of {self.k} folds"]
        parts += [f"{k} {fmt(m)} ± {fmt(s)}" for k, (m, s) in stats.items()]
        return " · ".join(parts)


def mean_std(rows, keys) -> Dict[str, tuple]:
    out = {}
    for k in keys:
        values = [r[k] for r in rows if isinstance(r.get(k), float) and math.isfinite(r[k])]
        if values:
            out[k] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def run_cv(shell, args, plan, model, info):
    """Train one copy of `model` per fold; return the DataFrame of the folds."""
    import keras

    from ..view.progress import RunState
    from ..view.text import has_rich_frontend
    from .callback import LiveCallback
    from .device import device_line, is_mixed
    from .session import FitSession
    try:
        import pandas as pd
    except ImportError:
        raise UsageError("--cv returns a pandas DataFrame: `pip install pandas`") from None
    from .checks import is_dataset
    if is_dataset(plan.x):
        raise UsageError("--cv splits arrays into folds: give arrays (or a DataFrame), not a "
                         "dataset")
    if plan.fit_kwargs.get("validation_data") is not None or "validation_split" in plan.fit_kwargs:
        raise UsageError("--cv holds out each fold in turn as the validation data: drop --val "
                         "and --val-split")
    if args.checkpoint or args.resume:
        raise UsageError("--cv trains copies of the model: --checkpoint and --resume do not apply")
    splits = folds(model, plan.x, plan.y, args.cv, args.cv_shuffle, args.seed)
    view = CVView(args.name, args.cv, plan.quiet, not has_rich_frontend(shell))
    view.start()
    w0 = model.get_weights()
    config = model.get_compile_config()
    # unique per cross-validation (two started in the same second stay two groups)
    group = f"cv-{args.name}-{int(time.time())}-{uuid.uuid4().hex[:6]}"
    sw = plan.fit_kwargs.get("sample_weight")
    stopped = None
    for k, (train, held) in enumerate(splits, start=1):
        copy = keras.models.clone_model(model)
        copy.set_weights(w0)
        copy.compile_from_config(config)
        kw = dict(plan.fit_kwargs)
        kw["y"] = _take(plan.y, train)
        kw["validation_data"] = (_take(plan.x, held), _take(plan.y, held))
        if sw is not None:
            kw["sample_weight"] = _take(sw, train)
        fold_plan = type(plan)(**{**plan.__dict__, "x": _take(plan.x, train), "y": kw["y"],
                                  "fit_kwargs": kw,
                                  "options": {**plan.options, "cv_group": group, "fold": k},
                                  "steps": math.ceil(len(train) / plan.batch_size),
                                  "settle": {}, "mixed_precision": False})
        fold_plan.callbacks = [c for c in plan.callbacks]
        started = time.perf_counter()
        with FitSession(shell, fold_plan, copy, info) as session:
            state = RunState(name=args.name, epochs=plan.epochs, steps=fold_plan.steps,
                             device=device_line(is_mixed(copy)))
            session.start_run(state.device, keras.backend.backend())
            live = LiveCallback(state, _FoldView(view, plan.epochs), session.registry,
                                session.run_id)
            session.install_sigint(live)
            session.train([live])
            session.hold(state)  # a fold's scores are those of the weights it keeps
        row = {"fold": k, "n_train": len(train), "n_val": len(held),
               "epochs": state.epochs_recorded(), "seconds": time.perf_counter() - started}
        row.update({key: state.held(key) for key in state.history
                    if state.held(key) is not None})
        view.fold_done(row)
        if session.status == "stopped":
            stopped = session.stopped_error(max(state.epoch, 1))
            break
        if session.error is not None:
            raise session.error
    view.finish()
    frame = pd.DataFrame(view.rows).set_index("fold")
    keys = view.metrics()
    if len(view.rows) > 1:
        stats = mean_std(view.rows, keys)
        frame.loc["mean"] = {k: stats[k][0] for k in stats}
        frame.loc["std"] = {k: stats[k][1] for k in stats}
    if stopped is not None:
        shell.user_ns["_cv"] = frame
        raise stopped
    return frame


class _FoldView:
    """Feeds the fold in flight's epoch progress to the CV view."""

    kind = "cv"

    def __init__(self, view: CVView, epochs: int):
        self.view, self.epochs = view, epochs

    def start(self, state):
        pass

    def batch(self, state):
        pass

    def epoch(self, state):
        keys = [k for k in ("val_loss", "loss") if state.current(k) is not None][:1]
        text = f"epoch {state.epochs_recorded()}/{self.epochs}"
        text += "".join(f" · {k} {fmt(state.current(k))}" for k in keys)
        self.view.progress(text)

    def finish(self, state):
        pass
