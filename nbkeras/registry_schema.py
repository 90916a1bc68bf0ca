"""How the run registry is stored: the SQLite schema and its migrations,
the encoding of metrics, and how a run's process is known to be alive.

Kept apart from `nbkeras.registry` (the API) so each reads in one sitting.
Adding a schema version: append `_migrate_N` to `MIGRATIONS` and bump
`SCHEMA_VERSION`; never edit a released step, since files written by
every earlier version must still open. Imports no Keras.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import warnings
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional

SCHEMA_VERSION = 2


class RegistryWarning(UserWarning):
    """Runs are not being recorded (the registry file cannot be used)."""


# --------------------------------------------------------------------------
# Schema and migrations. MIGRATIONS[v] turns a version v-1 file into version v.
# Version 0 is an empty file. Never edit a released step; append a new one.

def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run several statements inside the caller's transaction (unlike
    `executescript`, which commits it first)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_1(db: sqlite3.Connection) -> None:
    _script(db, """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
        CREATE TABLE IF NOT EXISTS model_versions (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, spec_text TEXT NOT NULL,
            params INTEGER, source TEXT NOT NULL DEFAULT 'spec', created REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS runs (
            id INTEGER PRIMARY KEY, model TEXT NOT NULL, version_id INTEGER,
            status TEXT NOT NULL, started REAL NOT NULL, ended REAL,
            device TEXT, backend TEXT, notebook TEXT, options TEXT,
            epochs_planned INTEGER, error TEXT);
        CREATE TABLE IF NOT EXISTS epochs (
            run_id INTEGER NOT NULL, epoch INTEGER NOT NULL, metrics TEXT NOT NULL,
            PRIMARY KEY (run_id, epoch));
        CREATE TABLE IF NOT EXISTS evaluations (
            id INTEGER PRIMARY KEY, run_id INTEGER, model TEXT NOT NULL,
            metrics TEXT NOT NULL, created REAL NOT NULL);
    """)


def _migrate_2(db: sqlite3.Connection) -> None:
    """Cheap summaries (last/best columns), the change counter, process liveness."""
    for col in ("epochs_done INTEGER NOT NULL DEFAULT 0", "last TEXT", "best TEXT",
                "best_epoch TEXT", "pid INTEGER", "pid_start INTEGER", "host TEXT",
                "heartbeat REAL",
                "seq INTEGER NOT NULL DEFAULT 0"):
        db.execute(f"ALTER TABLE runs ADD COLUMN {col}")
    db.execute("ALTER TABLE epochs ADD COLUMN time REAL")
    db.execute("ALTER TABLE evaluations ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE model_versions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    _script(db, """
        CREATE INDEX IF NOT EXISTS runs_seq ON runs (seq);
        CREATE INDEX IF NOT EXISTS runs_model ON runs (model, id);
        CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
        CREATE INDEX IF NOT EXISTS evaluations_run ON evaluations (run_id);
        CREATE INDEX IF NOT EXISTS evaluations_model ON evaluations (model);
        CREATE INDEX IF NOT EXISTS versions_name ON model_versions (name, id);
    """)
    # Old runs carry no pid: a 'running' one can never finish any more.
    db.execute("UPDATE runs SET status = 'interrupted', ended = started "
               "WHERE status = 'running'")
    # Backfill the summary columns from the epoch rows.
    rows = db.execute("SELECT run_id, epoch, metrics FROM epochs ORDER BY run_id, epoch")
    per_run: Dict[int, List] = {}
    for run_id, epoch, metrics in rows.fetchall():
        per_run.setdefault(run_id, []).append((epoch, json.loads(metrics)))
    for run_id, epochs in per_run.items():
        last, best, best_epoch = {}, {}, {}
        for epoch, metrics in epochs:
            last = metrics
            update_best(best, best_epoch, epoch, metrics)
        db.execute("UPDATE runs SET epochs_done = ?, last = ?, best = ?, best_epoch = ? "
                   "WHERE id = ?", (len(epochs), dumps(last), dumps(best),
                                    dumps(best_epoch), run_id))
    n = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    db.execute("UPDATE runs SET seq = id")
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)",
               (db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0] if n else 0,))


MIGRATIONS: Dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1, 2: _migrate_2}
assert max(MIGRATIONS) == SCHEMA_VERSION


# --------------------------------------------------------------------------
# Small helpers.

_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "mape", "msle", "hinge",
                    "crossentropy", "divergence", "poisson", "logcosh")
_NOT_A_SCORE = ("lr", "learning_rate")


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of `metric` are better (losses, errors)."""
    name = metric.lower()
    return any(word in name for word in _LOWER_IS_BETTER)


def update_best(best: dict, best_epoch: dict, epoch: int, metrics: dict) -> None:
    """Fold one epoch's metrics into the running best values (in place)."""
    for key, value in metrics.items():
        if value is None or key in _NOT_A_SCORE or key == "epoch":
            continue
        old = best.get(key)
        if old is None or (value < old if lower_is_better(key) else value > old):
            best[key] = value
            best_epoch[key] = epoch


def clean_metrics(metrics: dict) -> dict:
    """Plain floats; NaN/inf become None so the JSON stays valid for browsers."""
    out = {}
    for key, value in (metrics or {}).items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value if math.isfinite(value) else None
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, allow_nan=False)


def loads(text: Optional[str], default=None):
    if not text:
        return {} if default is None else default
    return json.loads(text)


def iso_utc(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _proc_stat(pid: int) -> Optional[List[bytes]]:
    """Fields of /proc/PID/stat after the command name (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _proc_start(pid: int) -> Optional[int]:
    """When process `pid` started (clock ticks since boot), to tell a reused pid."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


MY_START = _proc_start(os.getpid())


def pid_alive(pid: Optional[int], start: Optional[int] = None) -> bool:
    """Whether the process that started a run still runs (on this host)."""
    if not pid:
        return False
    if pid == os.getpid():
        return start is None or start == MY_START
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's process, alive
        pass
    fields = _proc_stat(pid)
    if fields is None:
        return True
    if fields[0] == b"Z":  # killed, not yet reaped by its parent
        return False
    return start is None or len(fields) <= 19 or int(fields[19]) == start  # else pid reused


_warned: set = set()


def warn_once(reason: str, prefix: str = "nbkeras: runs are not being recorded: ") -> None:
    """Warn with `prefix + reason`, once per message per process."""
    msg = prefix + reason
    if msg in _warned:
        return
    _warned.add(msg)
    warnings.warn(msg, RegistryWarning, stacklevel=3)


def jsonable(obj: Any) -> Any:
    """Metrics as plain JSON (NumPy scalars and arrays become numbers and lists)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
