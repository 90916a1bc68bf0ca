"""The one way nbkeras writes numbers: the live panel, the record, `%evaluate`,
`%models` (and the sidebar, in TypeScript, by the same rule).

Four significant digits with trailing zeros kept, so a column never shows
"1" beside "0.897" (it shows 1.000 and 0.8970); scientific notation
outside 0.001 to 100,000. Imports nothing heavy.
"""

from __future__ import annotations

import math
from typing import Any, Optional


def fmt(value: Any, digits: int = 4) -> str:
    """A metric value in `digits` significant digits ('' when missing).

    Example:
        >>> fmt(1.0), fmt(0.897), fmt(12.3456), fmt(0.00001234), fmt(3)
        ('1.000', '0.8970', '12.35', '1.234e-05', '3')
    """
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (int,)) and not isinstance(value, float):
        return str(value)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0." + "0" * (digits - 1) if digits > 1 else "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -3 or magnitude >= 5:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:.{decimals}f}"
    if len(text.lstrip("-").replace(".", "").lstrip("0")) > digits and decimals > 0:
        text = f"{value:.{decimals - 1}f}"  # rounding carried into a new digit (9.9996 -> 10.00)
    return text


def fmt_duration(seconds: Optional[float]) -> str:
    """'4.2s', '12s', '3m05s', '1h02m' ('' when missing)."""
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
