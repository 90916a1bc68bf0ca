"""Getting a registry: `get_registry()` (one per folder, cached, never
raises), the `NullRegistry` that stands in for one that cannot be used,
and `runs()`, the public read. The writers are `write.py`'s."""

from __future__ import annotations

import pathlib
import sqlite3
import threading
import time
from typing import Any, Dict, List, Optional

from .schema import warn_once
from .write import DB_NAME, Registry, _is_lock_error, default_home


class NullRegistry:
    """A registry that records nothing: what `get_registry()` gives when the
    file cannot be used. Same methods as `Registry`; ids are None."""

    recording = False

    def __init__(self, home=None, reason: str = ""):
        self.home = pathlib.Path(home) if home is not None else None
        self.path = self.home / DB_NAME if self.home is not None else None
        self.broken = reason or "not recording"

    def add_model_version(self, *a, **k): return None
    def start_run(self, *a, **k): return None
    def log_epoch(self, *a, **k): return None
    def end_run(self, *a, **k): return None
    def mark_interrupted(self): return []
    def add_evaluation(self, *a, **k): return None
    def delete_runs(self, *a, **k): return []
    def delete_model_version(self, *a, **k): return None
    def set_starred(self, *a, **k): return False
    def deleted_since(self, *a, **k): return []
    def cursor(self): return 0
    def run_summaries(self, *a, **k): return []
    def run(self, *a, **k): return None
    def runs(self, *a, **k): return []
    def model_versions(self, *a, **k): return []
    def version_spaces(self, *a, **k): return None
    def evaluations(self, *a, **k): return []
    def model_names(self): return []
    def model_stats(self): return []
    def schema_version(self): return 0
    def close(self): return None


_CACHE: Dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


def _open_retrying(home, attempts: int = 6) -> "Registry":
    """`Registry(home)`, retried when another process opening the same new
    file at the same moment holds a lock that SQLite reports without waiting."""
    for attempt in range(attempts):
        try:
            return Registry(home)
        except sqlite3.OperationalError as e:
            if not _is_lock_error(e) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def get_registry(home=None) -> "Registry | NullRegistry":
    """The registry of `home` (default `default_home()`), cached per folder.

    Never raises: when the file cannot be opened or written it warns once,
    "nbkeras: runs are not being recorded: <reason>", and returns a
    `NullRegistry`.
    """
    try:
        home = pathlib.Path(home) if home is not None else default_home()
        key = str(home.expanduser().resolve())
    except Exception as e:  # noqa: BLE001 - never break the caller
        warn_once(f"no registry folder ({e})")
        return NullRegistry(reason=str(e))
    with _CACHE_LOCK:
        reg = _CACHE.get(key)
        if reg is not None and not (isinstance(reg, Registry) and reg.broken == "closed"):
            return reg
        try:
            reg = _open_retrying(home)
        except Exception as e:  # noqa: BLE001
            reason = f"{e} ({pathlib.Path(home) / DB_NAME})"
            warn_once(reason)
            reg = NullRegistry(home, reason)
        _CACHE[key] = reg
        return reg


def runs(model: Optional[str] = None) -> List[dict]:
    """The recorded runs, newest first (see `Registry.runs`)."""
    return get_registry().runs(model=model)
