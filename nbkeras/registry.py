"""The run registry: every model version, run, epoch and evaluation, on disk.

Why a module of its own: training results must outlive the kernel (restarts,
crashes, SIGKILL) and be shared by every kernel on the machine and by the
Jupyter server that feeds the sidebar. One SQLite file in WAL mode does
that with no daemon: each epoch is committed when it ends, readers never
block writers, and a `seq` change counter lets a poller ask "what changed
since cursor N?" for the price of an indexed query.

Recording is a side effect that must never break training: `get_registry()`
never raises, and a registry whose file turns out to be corrupt, read-only
or on a full disk warns once and stops recording. Imports no Keras.

Example:
    >>> reg = get_registry()
    >>> run_id = reg.start_run(model="mnist", version_id=None, options={},
    ...                        device="cpu", backend="tensorflow", epochs_planned=3)
    >>> reg.log_epoch(run_id, 0, {"loss": 0.5, "val_loss": 0.6})
    >>> reg.end_run(run_id, "completed")
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import socket
import sqlite3
import threading
import time
import warnings
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional

SCHEMA_VERSION = 2
DB_NAME = "registry.sqlite3"
STATUSES = ("running", "completed", "stopped", "failed", "interrupted")
_BUSY_TIMEOUT_MS = 15000

_HOST = socket.gethostname()


class RegistryWarning(UserWarning):
    """Runs are not being recorded (the registry file cannot be used)."""


def default_home() -> pathlib.Path:
    """The registry folder: `$NBKERAS_HOME`, else `<jupyter data dir>/nbkeras`."""
    env = os.environ.get("NBKERAS_HOME")
    if env:
        return pathlib.Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir
    return pathlib.Path(jupyter_data_dir()) / "nbkeras"


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
                "best_epoch TEXT", "pid INTEGER", "host TEXT", "heartbeat REAL",
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
            _update_best(best, best_epoch, epoch, metrics)
        db.execute("UPDATE runs SET epochs_done = ?, last = ?, best = ?, best_epoch = ? "
                   "WHERE id = ?", (len(epochs), _dumps(last), _dumps(best),
                                    _dumps(best_epoch), run_id))
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


def _update_best(best: dict, best_epoch: dict, epoch: int, metrics: dict) -> None:
    for key, value in metrics.items():
        if value is None or key in _NOT_A_SCORE or key == "epoch":
            continue
        old = best.get(key)
        if old is None or (value < old if lower_is_better(key) else value > old):
            best[key] = value
            best_epoch[key] = epoch


def _clean_metrics(metrics: dict) -> dict:
    """Plain floats; NaN/inf become None so the JSON stays valid for browsers."""
    out = {}
    for key, value in (metrics or {}).items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value if math.isfinite(value) else None
    return out


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, allow_nan=False)


def _loads(text: Optional[str], default=None):
    if not text:
        return {} if default is None else default
    return json.loads(text)


def _iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _pid_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    try:  # a killed child nobody reaped yet is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


_warned: set = set()


def _warn(reason: str) -> None:
    msg = f"nbkeras: runs are not being recorded: {reason}"
    if msg in _warned:
        return
    _warned.add(msg)
    warnings.warn(msg, RegistryWarning, stacklevel=3)


# --------------------------------------------------------------------------

_SUMMARY_COLS = ("id, model, version_id, status, started, ended, device, backend, notebook, "
                 "epochs_done, epochs_planned, last, best, best_epoch, seq, pid, host, heartbeat")


class Registry:
    """The SQLite registry in `home` (default: `default_home()`).

    Opening creates the folder and file if needed and migrates an older
    file to `SCHEMA_VERSION`. Raises `sqlite3.Error` or `OSError` when the
    file cannot be used; `get_registry()` turns that into a `NullRegistry`.
    After opening, no method raises: a failing write warns once and the
    registry stops recording; a failing read returns an empty answer.
    """

    recording = True

    def __init__(self, home=None):
        self.home = pathlib.Path(home) if home is not None else default_home()
        self.path = self.home / DB_NAME
        self._lock = threading.RLock()
        self._db: Optional[sqlite3.Connection] = None
        self._pid = None
        self.broken: Optional[str] = None
        self._open()

    # -- connection ---------------------------------------------------------
    def _open(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path), timeout=_BUSY_TIMEOUT_MS / 1000,
                             isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode!r})")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL survives a process crash
            db.execute("PRAGMA foreign_keys = OFF")
            self._db, self._pid = db, os.getpid()
            self._migrate()
        except BaseException:
            db.close()
            self._db = None
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: never share a connection across processes
            self._open()
        return self._db

    def _migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # also proves the file is writable
        try:
            version = self._schema_version(db)
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{self.path} was written by a newer nbkeras (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}); upgrade nbkeras")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[v](db)
                db.execute("INSERT OR REPLACE INTO meta (key, value) "
                           "VALUES ('schema_version', ?)", (v,))
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0)")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _schema_version(db: sqlite3.Connection) -> int:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            return 1 if "runs" in tables else 0
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else (1 if "runs" in tables else 0)

    def schema_version(self) -> int:
        with self._lock:
            return self._schema_version(self._conn())

    def _write(self, fn: Callable[[sqlite3.Connection, int], Any], default=None):
        """Run `fn(db, seq)` in one immediate transaction with a fresh seq value."""
        if self.broken:
            return default
        with self._lock:
            try:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    seq = db.execute("UPDATE meta SET value = value + 1 WHERE key = 'seq' "
                                     "RETURNING value").fetchone()[0]
                    result = fn(db, seq)
                    db.execute("COMMIT")
                    return result
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError, ValueError) as e:
                self.broken = f"{e} ({self.path})"
                _warn(self.broken)
                return default

    def _read(self, fn: Callable[[sqlite3.Connection], Any], default):
        with self._lock:
            try:
                return fn(self._conn())
            except (sqlite3.Error, OSError, ValueError) as e:
                _warn(f"cannot read the registry: {e} ({self.path})")
                return default

    # -- writers ------------------------------------------------------------
    def add_model_version(self, name: str, spec_text: str, params: int,
                          source: str = "spec") -> Optional[int]:
        """Record a model version; the same name, text and source as the
        newest version of that name give back its id."""
        def fn(db, seq):
            row = db.execute("SELECT id, spec_text, params, source FROM model_versions "
                             "WHERE name = ? ORDER BY id DESC LIMIT 1", (name,)).fetchone()
            if row and row[1] == spec_text and row[2] == params and row[3] == source:
                return row[0]
            cur = db.execute("INSERT INTO model_versions (name, spec_text, params, source, "
                             "created, seq) VALUES (?, ?, ?, ?, ?, ?)",
                             (name, spec_text, params, source, time.time(), seq))
            return cur.lastrowid
        return self._write(fn)

    def start_run(self, *, model: str, version_id: Optional[int], options: dict,
                  device: str, backend: str, epochs_planned: int,
                  notebook: Optional[str] = None) -> Optional[int]:
        """Record a new run as 'running' in this process; returns its id."""
        if notebook is None:
            notebook = os.environ.get("JPY_SESSION_NAME") or None
        now = time.time()

        def fn(db, seq):
            cur = db.execute(
                "INSERT INTO runs (model, version_id, status, started, device, backend, "
                "notebook, options, epochs_planned, last, best, best_epoch, pid, host, "
                "heartbeat, seq) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, '{}', '{}', '{}', "
                "?, ?, ?, ?)",
                (model, version_id, now, device, backend, notebook, _dumps(options or {}),
                 epochs_planned, os.getpid(), _HOST, now, seq))
            return cur.lastrowid
        return self._write(fn)

    def log_epoch(self, run_id: Optional[int], epoch: int, metrics: Dict[str, float]) -> None:
        """Record one finished epoch (committed before returning)."""
        if run_id is None:
            return
        metrics = _clean_metrics(metrics)
        now = time.time()

        def fn(db, seq):
            row = db.execute("SELECT best, best_epoch FROM runs WHERE id = ?",
                             (run_id,)).fetchone()
            if row is None:
                return
            best, best_epoch = _loads(row[0]), _loads(row[1])
            _update_best(best, best_epoch, epoch, metrics)
            db.execute("INSERT OR REPLACE INTO epochs (run_id, epoch, metrics, time) "
                       "VALUES (?, ?, ?, ?)", (run_id, epoch, _dumps(metrics), now))
            db.execute(
                "UPDATE runs SET last = ?, best = ?, best_epoch = ?, heartbeat = ?, seq = ?, "
                "epochs_done = (SELECT COUNT(*) FROM epochs WHERE run_id = ?) WHERE id = ?",
                (_dumps(metrics), _dumps(best), _dumps(best_epoch), now, seq, run_id, run_id))
        self._write(fn)

    def end_run(self, run_id: Optional[int], status: str, error: Optional[str] = None) -> None:
        """Close a run with `status` in completed, stopped, failed, interrupted."""
        if run_id is None:
            return
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {STATUSES[1:]}, got {status!r}")
        self._write(lambda db, seq: db.execute(
            "UPDATE runs SET status = ?, error = ?, ended = ?, seq = ? WHERE id = ?",
            (status, error, time.time(), seq, run_id)))

    def add_evaluation(self, run_id: Optional[int], model: str, metrics: dict) -> Optional[int]:
        """Record an evaluation of `model`, tied to run `run_id` when given."""
        def fn(db, seq):
            cur = db.execute("INSERT INTO evaluations (run_id, model, metrics, created, seq) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (run_id, model, _dumps(_jsonable(metrics)), time.time(), seq))
            if run_id is not None:
                db.execute("UPDATE runs SET seq = ? WHERE id = ?", (seq, run_id))
            return cur.lastrowid
        return self._write(fn)

    # -- liveness -----------------------------------------------------------
    def _reap(self, db: sqlite3.Connection) -> set:
        """Mark 'running' runs of dead processes on this host as interrupted."""
        dead = [(rid, hb) for rid, pid, host, hb in db.execute(
            "SELECT id, pid, host, heartbeat FROM runs WHERE status = 'running'")
            if host == _HOST and not _pid_alive(pid)]
        if not dead:
            return set()
        if not self.broken:
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for rid, hb in dead:
                        seq = db.execute("UPDATE meta SET value = value + 1 WHERE key = 'seq' "
                                         "RETURNING value").fetchone()[0]
                        db.execute("UPDATE runs SET status = 'interrupted', ended = "
                                   "COALESCE(heartbeat, started), seq = ? "
                                   "WHERE id = ? AND status = 'running'", (seq, rid))
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                return set()
            except sqlite3.Error:
                pass  # read-only: still show them as interrupted
        return {rid for rid, _ in dead}

    # -- readers ------------------------------------------------------------
    def cursor(self) -> int:
        """The change counter: it grows with every write."""
        def fn(db):
            self._reap(db)
            return int(db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
        return self._read(fn, 0)

    def _summaries(self, db, where: str = "", params: Iterable = (),
                   limit: Optional[int] = None) -> List[dict]:
        dead = self._reap(db)
        sql = f"SELECT {_SUMMARY_COLS} FROM runs {where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        now = time.time()
        out = []
        for (rid, model, vid, status, started, ended, device, backend, notebook, done,
             planned, last, best, best_epoch, seq, _pid, _host, heartbeat) in db.execute(sql, tuple(params)):
            if status == "running" and rid in dead:
                status, ended = "interrupted", heartbeat or started
            out.append({
                "id": rid, "model": model, "version_id": vid, "status": status,
                "started": _iso(started), "ended": _iso(ended),
                "duration": (ended if ended is not None else now) - started,
                "device": device, "backend": backend, "notebook": notebook,
                "epochs": done, "epochs_planned": planned,
                "last": _loads(last), "best": _loads(best), "best_epoch": _loads(best_epoch),
                "seq": seq,
            })
        return out

    def run_summaries(self, model: Optional[str] = None, since: Optional[int] = None,
                      limit: Optional[int] = None) -> List[dict]:
        """Runs newest first without their epoch rows (cheap for thousands)."""
        clauses, params = [], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if since is not None:
            clauses.append("seq > ?")
            params.append(int(since))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._read(lambda db: self._summaries(db, where, params, limit), [])

    def _history(self, db, run_ids: List[int]) -> Dict[int, List[dict]]:
        out: Dict[int, List[dict]] = {rid: [] for rid in run_ids}
        if not run_ids:
            return out
        q = ",".join("?" * len(run_ids)) if len(run_ids) < 500 else None
        sql = "SELECT run_id, epoch, metrics FROM epochs "
        sql += f"WHERE run_id IN ({q}) " if q else ""
        sql += "ORDER BY run_id, epoch"
        for rid, epoch, metrics in db.execute(sql, tuple(run_ids) if q else ()):
            if rid in out:
                out[rid].append({"epoch": epoch, **json.loads(metrics)})
        return out

    def _evaluations(self, db, run_ids: List[int]) -> Dict[int, List[dict]]:
        out: Dict[int, List[dict]] = {rid: [] for rid in run_ids}
        if not run_ids:
            return out
        q = ",".join("?" * len(run_ids)) if len(run_ids) < 500 else None
        sql = "SELECT id, run_id, model, metrics, created FROM evaluations WHERE run_id "
        sql += f"IN ({q}) " if q else "IS NOT NULL "
        for eid, rid, model, metrics, created in db.execute(sql + "ORDER BY id",
                                                            tuple(run_ids) if q else ()):
            if rid in out:
                out[rid].append({"id": eid, "run_id": rid, "model": model,
                                 "metrics": json.loads(metrics), "created": _iso(created)})
        return out

    def run(self, run_id: int) -> Optional[dict]:
        """One run: its summary plus options, history, evaluations, spec, error."""
        def fn(db):
            rows = self._summaries(db, "WHERE id = ?", (int(run_id),))
            if not rows:
                return None
            summary = rows[0]
            options, error, spec = db.execute(
                "SELECT r.options, r.error, v.spec_text FROM runs r LEFT JOIN model_versions v "
                "ON v.id = r.version_id WHERE r.id = ?", (int(run_id),)).fetchone()
            summary.update(options=_loads(options), error=error, spec=spec,
                           history=self._history(db, [run_id])[run_id],
                           evaluations=self._evaluations(db, [run_id])[run_id])
            return summary
        return self._read(fn, None)

    def runs(self, model: Optional[str] = None) -> List[dict]:
        """Every run (of `model`), newest first, with `epochs` as the list of
        per-epoch metric dicts and its `evaluations`."""
        def fn(db):
            where, params = ("WHERE model = ?", (model,)) if model is not None else ("", ())
            rows = self._summaries(db, where, params)
            ids = [r["id"] for r in rows]
            hist, evals = self._history(db, ids), self._evaluations(db, ids)
            extra = {rid: (opts, err) for rid, opts, err in db.execute(
                f"SELECT id, options, error FROM runs {where}", params)}
            for r in rows:
                r["epochs_done"] = r["epochs"]
                r["epochs"] = hist[r["id"]]
                r["evaluations"] = evals[r["id"]]
                opts, err = extra.get(r["id"], (None, None))
                r["options"], r["error"] = _loads(opts), err
            return rows
        return self._read(fn, [])

    def model_versions(self, name: Optional[str] = None) -> List[dict]:
        """Model versions (of `name`), newest first."""
        def fn(db):
            sql = "SELECT id, name, spec_text, params, created, source FROM model_versions "
            rows = db.execute(sql + ("WHERE name = ? ORDER BY id DESC" if name is not None
                                     else "ORDER BY id DESC"),
                              (name,) if name is not None else ())
            return [{"id": i, "name": n, "spec_text": s, "params": p, "created": _iso(c),
                     "source": src} for i, n, s, p, c, src in rows]
        return self._read(fn, [])

    def evaluations(self, model: Optional[str] = None) -> List[dict]:
        """Evaluations (of `model`), newest first."""
        def fn(db):
            sql = "SELECT id, run_id, model, metrics, created FROM evaluations "
            rows = db.execute(sql + ("WHERE model = ? ORDER BY id DESC" if model is not None
                                     else "ORDER BY id DESC"),
                              (model,) if model is not None else ())
            return [{"id": i, "run_id": r, "model": m, "metrics": json.loads(js),
                     "created": _iso(c)} for i, r, m, js, c in rows]
        return self._read(fn, [])

    def model_stats(self) -> List[dict]:
        """Per model name: versions, runs, newest run id and activity time,
        most recently active first (one grouped query, cheap for many runs)."""
        def fn(db):
            self._reap(db)
            stats: Dict[str, dict] = {}
            for name, n, last, t in db.execute(
                    "SELECT name, COUNT(*), MAX(id), MAX(created) FROM model_versions "
                    "GROUP BY name"):
                stats[name] = {"name": name, "versions": n, "runs": 0, "last_run": None,
                               "active": t}
            for name, n, last, t in db.execute(
                    "SELECT model, COUNT(*), MAX(id), MAX(started) FROM runs GROUP BY model"):
                s = stats.setdefault(name, {"name": name, "versions": 0, "active": t})
                s.update(runs=n, last_run=last, active=max(t, s["active"] or t))
            out = sorted(stats.values(), key=lambda s: s["active"] or 0, reverse=True)
            for s in out:
                s["active"] = _iso(s["active"])
            return out
        return self._read(fn, [])

    def model_names(self) -> List[str]:
        """Every model name with a version or a run."""
        return self._read(lambda db: sorted({r[0] for r in db.execute(
            "SELECT name FROM model_versions UNION SELECT model FROM runs")}), [])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self.broken = self.broken or "closed"


def _jsonable(obj: Any) -> Any:
    """Metrics as plain JSON (NumPy scalars and arrays become numbers and lists)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


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
    def add_evaluation(self, *a, **k): return None
    def cursor(self): return 0
    def run_summaries(self, *a, **k): return []
    def run(self, *a, **k): return None
    def runs(self, *a, **k): return []
    def model_versions(self, *a, **k): return []
    def evaluations(self, *a, **k): return []
    def model_names(self): return []
    def model_stats(self): return []
    def schema_version(self): return 0
    def close(self): return None


_CACHE: Dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


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
        _warn(f"no registry folder ({e})")
        return NullRegistry(reason=str(e))
    with _CACHE_LOCK:
        reg = _CACHE.get(key)
        if reg is not None and not (isinstance(reg, Registry) and reg.broken == "closed"):
            return reg
        try:
            reg = Registry(home)
        except Exception as e:  # noqa: BLE001
            reason = f"{e} ({pathlib.Path(home) / DB_NAME})"
            _warn(reason)
            reg = NullRegistry(home, reason)
        _CACHE[key] = reg
        return reg


def runs(model: Optional[str] = None) -> List[dict]:
    """The recorded runs, newest first (see `Registry.runs`)."""
    return get_registry().runs(model=model)
