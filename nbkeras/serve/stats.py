"""Counts of what a server answered, for `%serve`'s live line.

Requests served, errors, the rate over the last 10 seconds (over the time
since the first request while that is shorter, so a load that has just
begun shows its real rate, not a tenth of it) and the p50/p99
latency over the last 2,000 predict requests. Written from the server's
event loop, read from the notebook's thread: a lock keeps the two apart.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Deque, Dict, Optional


class ServeStats:
    """Running totals of one server."""

    def __init__(self, keep: int = 2000, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._latency: Deque[float] = collections.deque(maxlen=keep)
        self._times: Deque[float] = collections.deque(maxlen=100_000)
        self._first: Optional[float] = None
        self.served = 0
        self.errors = 0

    def record(self, seconds: float, ok: bool) -> None:
        """One predict request answered in `seconds` (`ok`: a 2xx status)."""
        with self._lock:
            self.served += 1
            self.errors += 0 if ok else 1
            self._latency.append(seconds)
            self._times.append(self._clock())
            if self._first is None:
                self._first = self._times[-1]

    def snapshot(self, window: float = 10.0) -> Dict[str, Optional[float]]:
        """{'served', 'errors', 'rate' (requests/s), 'p50', 'p99' (seconds or None)}."""
        with self._lock:
            now = self._clock()
            recent = sum(1 for t in self._times if now - t <= window)
            span = window if self._first is None else min(window, max(1.0, now - self._first))
            lat = sorted(self._latency)
            served, errors = self.served, self.errors
        def pct(q):
            return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None
        return {"served": served, "errors": errors, "rate": recent / span,
                "p50": pct(0.50), "p99": pct(0.99)}

    def line(self) -> str:
        """'1,204 requests · 48.2/s · p50 3.1 ms · p99 9.8 ms · 0 errors'."""
        s = self.snapshot()
        def ms(v):
            return "–" if v is None else f"{v * 1000:.1f} ms"
        return (f"{s['served']:,} requests · {s['rate']:.1f}/s · p50 {ms(s['p50'])} · "
                f"p99 {ms(s['p99'])} · {s['errors']:,} errors")
