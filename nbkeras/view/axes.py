"""The axes of the history chart: the panel grid, the metric families, and
each axis' range, ticks and labels (linear or log, "nice" steps).

Shared by the live SVG chart (`chart.py`) and the PNG record
(`plots.py`), so that replacing the live chart by the record does not make
the output jump, and by the `%tune` view. Imports no Keras and no
matplotlib.
"""

from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

from ..metricvocab import lower_is_better
from .progress import RunState, is_plotted

MAX_COLUMNS = 3      # 900 CSS px: fits a notebook's output area
MAX_PANELS = 8       # the first 8 metric families, loss first


class Axis(NamedTuple):
    """One axis of a panel: its scale ('linear' or 'log'), its limits (data
    units) and its ticks with their labels."""

    scale: str
    lo: float
    hi: float
    ticks: List[float]
    labels: List[str]


def layout(n_families: int) -> Tuple[int, int]:
    """(columns, rows) of the grid of `n_families` panels.

    At most `MAX_COLUMNS` columns; four panels make a 2 x 2 square rather
    than 3 + 1. The live chart wraps its panels in the same grid (it also
    wraps earlier in a narrower output area), and the PNG record uses it
    too.

    Example:

    >>> layout(1), layout(3), layout(4), layout(8)
    ((1, 1), (3, 1), (2, 2), (3, 3))
    """
    n = min(max(int(n_families), 0), MAX_PANELS)
    if n == 0:
        return 0, 0
    columns = 2 if n == 4 else min(n, MAX_COLUMNS)
    return columns, -(-n // columns)


def families(state: RunState) -> List[str]:
    """The metric families drawn, one panel each: loss first, no learning rate."""
    return [f for f in state.metrics() if is_plotted(f)][:MAX_PANELS]


# -- axes ---------------------------------------------------------------------------

def _decimals(step: float) -> int:
    """Decimals that show every multiple of `step` exactly (0.25 -> 2)."""
    for d in range(0, 12):
        if abs(round(step, d) - step) <= 1e-9 * step:
            return d
    return 12


def _short(value: float, digits: int = 1) -> str:
    """A compact label for a very large or very small value: '2e6', '1.5e-5'."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _linear_labels(ticks: List[float], step: float) -> List[str]:
    top = max(abs(t) for t in ticks)
    if top >= 1e5 or top < 1e-3:
        for digits in range(7):
            labels = ["0" if t == 0 else _short(t, digits) for t in ticks]
            if len(set(labels)) == len(labels):
                return labels
        return labels
    d = _decimals(step)
    return [f"{t:.{d}f}" for t in ticks]


def _log_label(value: float) -> str:
    if 1e-3 <= value < 1e5:
        return f"{value:g}"
    return _short(value)


def y_axis(values: Sequence[float], family: str, lower: Optional[bool] = None) -> Axis:
    """The y axis of a panel that shows `values` (finite numbers) of `family`.

    Log scale for a metric whose smaller values are better (a loss, an
    error) when its values are all positive and span more than a decade;
    linear otherwise, from 0 for such a metric. 3 to 5 round ticks.

    Args:
        values: the finite values drawn in the panel, train and val.
        family: the metric family (`loss`, `accuracy`), for its direction.
        lower: whether smaller values are better, when known. Defaults to
            `None`: `metricvocab.lower_is_better(family)`.

    Returns:
        An `Axis`.
    """
    if lower is None:
        lower = lower_is_better(family)
    if values:
        lo, hi = min(values), max(values)
    else:
        lo, hi = 0.0, 1.0
    if lower and lo > 0 and hi / lo > 10:
        return _log_axis(lo, hi)
    if lower and lo >= 0:
        lo = 0.0
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = (lo, hi + pad) if lo == 0 and lower else (lo - pad, hi + pad)
    span = hi - lo
    exponent = math.floor(math.log10(span / 4)) - 1
    while True:
        for mantissa in (1, 2, 2.5, 5):
            step = mantissa * 10.0 ** exponent
            k0 = math.floor(lo / step + 1e-9)
            k1 = math.ceil(hi / step - 1e-9)
            if k1 - k0 <= 4:
                ticks = [k * step for k in range(k0, k1 + 1)]
                ticks = [round(t, _decimals(step)) for t in ticks]
                return Axis("linear", ticks[0], ticks[-1], ticks, _linear_labels(ticks, step))
        exponent += 1


def _log_axis(lo: float, hi: float) -> Axis:
    l0, l1 = math.log10(lo), math.log10(hi)
    pad = 0.04 * (l1 - l0)
    l0, l1 = l0 - pad, l1 + pad
    decades = list(range(math.ceil(l0), math.floor(l1) + 1))
    if len(decades) >= 3:
        every = -(-len(decades) // 5)
        ticks = [10.0 ** k for k in decades[::every]]
    else:
        ticks = []
        for mantissas in ((1, 2, 5), (1, 3), (1, 2, 5)):
            ticks = [m * 10.0 ** k for k in range(math.floor(l0), math.ceil(l1) + 1)
                     for m in mantissas]
            ticks = [t for t in ticks if l0 <= math.log10(t) <= l1]
            if 3 <= len(ticks) <= 5:
                break
    ticks = [float(f"{t:.6g}") for t in ticks]
    return Axis("log", 10.0 ** l0, 10.0 ** l1, ticks, [_log_label(t) for t in ticks])


def x_axis(last: float, first: float = 1) -> Axis:
    """The epoch axis from `first` to `last`, with a few whole-epoch ticks.

    A single epoch gets half an epoch each side, so its dot sits mid-panel.
    """
    if last <= first:
        first, last = first - 0.5, first + 0.5
    most = 6 if last < 1000 else 5
    exponent = 0
    while True:
        for mantissa in (1, 2, 2.5, 5):
            step = mantissa * 10 ** exponent
            if step != int(step):
                continue
            step = int(step)
            ticks = list(range(math.ceil(first / step) * step, int(last) + 1, step))
            if len(ticks) <= most:
                return Axis("linear", first, last, [float(t) for t in ticks],
                            [str(t) for t in ticks])
        exponent += 1
