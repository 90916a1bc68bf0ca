"""Classification and regression figures in plain NumPy.

`%evaluate` reports per-class precision/recall/F1, a confusion matrix, ROC
AUC, RMSE, MAE and R² without making scikit-learn a dependency. Each
function follows scikit-learn's definitions (zero_division=0, ties in ROC
AUC counted half, R² averaged over outputs) and the tests check them
against scikit-learn on the same predictions.
"""

from __future__ import annotations

from typing import Dict

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat[: n_classes * n_classes].reshape(n_classes, n_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> Dict[str, np.ndarray]:
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}


def precision_recall_f1(cm: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix."""
    cm = np.asarray(cm)
    tp = np.diag(cm)
    return _prf(tp, cm.sum(axis=0) - tp, cm.sum(axis=1) - tp)


def multilabel_precision_recall_f1(y_true, y_pred) -> Dict[str, np.ndarray]:
    """Per-label figures for multi-label 0/1 indicator arrays of shape (n, k)."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    return _prf((t & p).sum(0), (~t & p).sum(0), (t & ~p).sum(0))


def averages(per_class: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Macro (plain mean over classes) and weighted (by support) averages."""
    support = per_class["support"].astype(float)
    out = {}
    for key in ("precision", "recall", "f1"):
        values = per_class[key]
        out[f"macro_{key}"] = float(values.mean()) if len(values) else 0.0
        out[f"weighted_{key}"] = (float((values * support).sum() / support.sum())
                                  if support.sum() > 0 else 0.0)
    return out


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    starts = np.r_[True, sorted_vals[1:] != sorted_vals[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(values)] - 1
    mean_rank = (first + last) / 2.0 + 1.0
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group]
    return ranks


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve of a binary problem (Mann-Whitney U).

    Returns NaN when only one class is present.
    """
    y = np.asarray(y_true).ravel().astype(bool)
    s = np.asarray(scores, dtype=float).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def regression_metrics(y_true, y_pred) -> Dict[str, float]:
    """RMSE, MAE and R², each averaged uniformly over outputs."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    t = t.reshape(len(t), -1)
    p = p.reshape(len(p), -1)
    if t.shape != p.shape:
        raise ValueError(f"targets of shape {t.shape} vs predictions of shape {p.shape}")
    err = t - p
    rmse = np.sqrt((err ** 2).mean(axis=0))
    mae = np.abs(err).mean(axis=0)
    ss_res = (err ** 2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    r2 = np.where(ss_tot > 0, 1.0 - _safe_div(ss_res, ss_tot), np.where(ss_res == 0, 1.0, 0.0))
    return {"rmse": float(rmse.mean()), "mae": float(mae.mean()), "r2": float(r2.mean())}
