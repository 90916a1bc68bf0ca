"""How the run registry is stored: the SQLite schema and its migrations,
the encoding of metrics and their directions, and how a run's process is
known to be alive.

Kept apart from the writers (`write.py`) and the readers (`read.py`) so
each reads in one sitting. Adding a schema version: append `_migrate_N` to
`MIGRATIONS` and bump `SCHEMA_VERSION`; never edit a released step, since
files written by every earlier version must still open. Which way a metric
improves is `nbkeras.metricvocab`'s to say, never this module's. Imports no
Keras.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import warnings
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional

from ..metricvocab import direction, is_better, is_score

SCHEMA_VERSION = 4


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


def _migrate_3(db: sqlite3.Connection) -> None:
    """Each run's metric directions ({key: 'min' | 'max'}, JSON), as training
    knew them. Older runs keep NULL: readers fall back to the metric names."""
    db.execute("ALTER TABLE runs ADD COLUMN directions TEXT")


def _migrate_4(db: sqlite3.Connection) -> None:
    """Stars (a pinned run lists first) and deletions. A deleted run's rows
    are removed; `deletions` keeps only its id and the change counter of the
    deletion, so a poller asking "what changed since N?" learns to drop it."""
    db.execute("ALTER TABLE runs ADD COLUMN starred INTEGER NOT NULL DEFAULT 0")
    _script(db, """
        CREATE TABLE IF NOT EXISTS deletions (
            run_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS deletions_seq ON deletions (seq);
    """)


MIGRATIONS: Dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_1, 2: _migrate_2, 3: _migrate_3, 4: _migrate_4}
assert max(MIGRATIONS) == SCHEMA_VERSION


# --------------------------------------------------------------------------
# Small helpers.

DIRECTIONS = ("min", "max")


@lru_cache(maxsize=4096)
def name_direction(metric: str) -> str:
    """`metricvocab.direction(metric)` from the name alone, cached: readers
    ask it for every key of thousands of runs."""
    return direction(metric)


def merge_directions(stored: Dict[str, str], metrics: dict,
                     given: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The run's directions once an epoch with `metrics` is logged.

    Each score key of `metrics` gets its direction from `given` (what the
    training callback learnt from the compiled Keras metrics), else the one
    already stored, else its name. Returns `stored` itself when nothing changes.

    Args:
        stored: the run's directions so far.
        metrics: the epoch's metrics.
        given: {key: 'min' | 'max'} from the caller; other values are ignored.
    """
    out = stored
    for key in metrics:
        if not is_score(key):
            continue
        mode = given.get(key) if given else None
        if mode not in DIRECTIONS:
            if key in stored:
                continue
            mode = name_direction(key)
        if out.get(key) != mode:
            if out is stored:
                out = dict(stored)
            out[key] = mode
    return out


def update_best(best: dict, best_epoch: dict, epoch: int, metrics: dict,
                directions: Optional[Dict[str, str]] = None) -> None:
    """Fold one epoch's metrics into the running best values (in place).

    Args:
        directions: {key: 'min' | 'max'}; a key without one goes by its name
            (`nbkeras.metricvocab.direction`).
    """
    for key, value in metrics.items():
        if value is None or not is_score(key):
            continue
        if is_better(value, best.get(key), key, directions):
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
HOST = socket.gethostname()


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


def dead_runs(db: sqlite3.Connection) -> Dict[int, float]:
    """Runs the file says are 'running' whose process on this host is gone:
    {run id: when it was last heard of}. Reads only; `Registry.mark_interrupted`
    writes the verdict. Runs of other hosts are never judged."""
    return {rid: heartbeat if heartbeat is not None else started
            for rid, pid, start, host, heartbeat, started in db.execute(
                "SELECT id, pid, pid_start, host, heartbeat, started FROM runs "
                "WHERE status = 'running'")
            if host == HOST and not pid_alive(pid, start)}


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
