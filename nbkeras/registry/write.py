"""The run registry's writers: the connection and the writes (`get_registry()`
is `access.py`'s).

Why a module of its own: training results must outlive the kernel (restarts,
crashes, SIGKILL) and be shared by every kernel on the machine and by the
Jupyter server that feeds the sidebar. One SQLite file in WAL mode does
that with no daemon: each epoch is committed when it ends, readers never
block writers, and a `seq` change counter lets a poller ask "what changed
since cursor N?" for the price of an indexed query.

Recording is a side effect that must never break training: `get_registry()`
never raises, and a registry whose file turns out to be corrupt, read-only
or on a full disk warns once and stops recording. Reads (`read.py`) never
write; the one write that is not a kernel's own, recording the runs of dead
processes as interrupted, is `Registry.mark_interrupted`, done by the first
`start_run` of a registry and by the Jupyter server on a timer. Imports no
Keras.

Example:
    >>> reg = get_registry()
    >>> run_id = reg.start_run(model="mnist", version_id=None, options={},
    ...                        device="cpu", backend="tensorflow", epochs_planned=3)
    >>> reg.log_epoch(run_id, 1, {"loss": 0.5, "val_loss": 0.6, "auc": 0.7},
    ...               directions={"loss": "min", "val_loss": "min", "auc": "max"})
    >>> reg.end_run(run_id, "completed")
"""

from __future__ import annotations

import os
import pathlib
import sqlite3
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Optional

from .read import RegistryReaders
from .schema import (HOST, MY_START, SCHEMA_VERSION, MIGRATIONS, clean_metrics, dead_runs,
                     dumps, jsonable, loads, merge_directions, update_best, warn_once)

DB_NAME = "registry.sqlite3"
STATUSES = ("running", "completed", "stopped", "failed", "interrupted")
_BUSY_TIMEOUT_MS = 15000


def default_home() -> pathlib.Path:
    """The registry folder: `$NBKERAS_HOME`, else `<jupyter data dir>/nbkeras`."""
    env = os.environ.get("NBKERAS_HOME")
    if env:
        return pathlib.Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir
    return pathlib.Path(jupyter_data_dir()) / "nbkeras"


class Registry(RegistryReaders):
    """The SQLite registry in `home` (default: `default_home()`): the
    connection and the writers here, the readers in
    `nbkeras.registry.read.RegistryReaders`.

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
        self._marked = False  # mark_interrupted done by this registry's first run
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

    @staticmethod
    def _transaction(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection, int], Any]):
        """`fn(db, seq)` in one immediate transaction, with the next change-counter value."""
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

    def _transaction_retrying(self, fn, attempts: int = 6):
        """`_transaction`, retried when SQLite reports a lock without waiting.

        Some lock conflicts (a WAL snapshot or recovery race between two
        processes opening the file at once) come back as "database is locked"
        at once, bypassing the busy timeout; seen in CI as a run that was
        never recorded. They clear within milliseconds.
        """
        for attempt in range(attempts):
            try:
                return self._transaction(self._conn(), fn)
            except sqlite3.OperationalError as e:
                if not _is_lock_error(e) or attempt == attempts - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))

    def _write(self, fn: Callable[[sqlite3.Connection, int], Any], default=None,
               last_try: bool = False):
        """Run `fn(db, seq)` as one transaction; on failure warn once and stop recording.

        A lock held too long by another process only skips this write.
        After a failure, `last_try` still attempts the write (silently) so
        that a run whose epochs could not be recorded can at least be closed.
        """
        with self._lock:
            if self.broken:
                if last_try and self._db is not None and self.broken != "closed":
                    try:
                        self._transaction(self._db, fn)
                    except (sqlite3.Error, OSError, ValueError):
                        pass
                return default
            try:
                return self._transaction_retrying(fn)
            except sqlite3.OperationalError as e:
                if _is_lock_error(e):
                    warn_once(f"a write was skipped: {e} ({self.path})", prefix="nbkeras: ")
                    return default
                self.broken = f"{e} ({self.path})"
            except (sqlite3.Error, OSError, ValueError) as e:
                self.broken = f"{e} ({self.path})"
            warn_once(self.broken)
            return default

    def _read(self, fn: Callable[[sqlite3.Connection], Any], default):
        with self._lock:
            try:
                return fn(self._conn())
            except (sqlite3.Error, OSError, ValueError) as e:
                warn_once(f"cannot read the registry: {e} ({self.path})")
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
            floor = db.execute("SELECT MAX(x) FROM (SELECT MAX(id) AS x FROM model_versions "
                               "UNION ALL SELECT value FROM meta WHERE key = 'version_floor')"
                               ).fetchone()[0]
            cur = db.execute("INSERT INTO model_versions (id, name, spec_text, params, source, "
                             "created, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (int(floor or 0) + 1, name, spec_text, params, source,
                              time.time(), seq))
            return cur.lastrowid
        return self._write(fn)

    def start_run(self, *, model: str, version_id: Optional[int], options: dict,
                  device: str, backend: str, epochs_planned: int,
                  notebook: Optional[str] = None) -> Optional[int]:
        """Record a new run as 'running' in this process; returns its id.

        The first run of a registry also records the runs of dead processes
        as interrupted (`mark_interrupted`): a kernel that writes cleans up.
        """
        if not self._marked:
            self._marked = True
            self.mark_interrupted()
        if notebook is None:
            notebook = os.environ.get("JPY_SESSION_NAME") or None
        now = time.time()

        def fn(db, seq):
            # Never reuse a deleted run's id: pollers were told it is gone.
            rid = db.execute("SELECT MAX(x) FROM (SELECT MAX(id) AS x FROM runs UNION ALL "
                             "SELECT MAX(run_id) FROM deletions)").fetchone()[0]
            cur = db.execute(
                "INSERT INTO runs (id, model, version_id, status, started, device, backend, "
                "notebook, options, epochs_planned, last, best, best_epoch, pid, pid_start, "
                "host, heartbeat, seq) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, '{}', '{}', "
                "'{}', ?, ?, ?, ?, ?)",
                ((rid or 0) + 1, model, version_id, now, device, backend, notebook,
                 dumps(options or {}), epochs_planned, os.getpid(), MY_START, HOST, now, seq))
            return cur.lastrowid
        return self._write(fn)

    def log_epoch(self, run_id: Optional[int], epoch: int, metrics: Dict[str, float],
                  directions: Optional[Dict[str, str]] = None) -> None:
        """Record one finished epoch (committed before returning).

        Args:
            run_id: from `start_run` (None: nothing is recorded).
            epoch: the epoch's number as the user sees it (`%fit` logs 1, 2, ...).
            metrics: Keras' logs; NaN and infinities are stored as null.
            directions: {key: 'min' | 'max'} as the compiled Keras metrics say
                (`nbkeras.metricvocab.directions(keys, model)`). Stored with
                the run and used for its best values; a key without one keeps
                the direction stored before, else goes by its name. Defaults
                to None.
        """
        if run_id is None:
            return
        metrics = clean_metrics(metrics)
        now = time.time()

        def fn(db, seq):
            row = db.execute("SELECT best, best_epoch, directions FROM runs WHERE id = ?",
                             (run_id,)).fetchone()
            if row is None:
                return
            best, best_epoch, stored = loads(row[0]), loads(row[1]), loads(row[2])
            dirs = merge_directions(stored, metrics, directions)
            update_best(best, best_epoch, epoch, metrics, dirs)
            db.execute("INSERT OR REPLACE INTO epochs (run_id, epoch, metrics, time) "
                       "VALUES (?, ?, ?, ?)", (run_id, epoch, dumps(metrics), now))
            # the directions change on the first epoch only: keep the UPDATE small after
            set_dirs, dirs_param = (("", ()) if dirs is stored else
                                    (", directions = ?", (dumps(dirs),)))
            db.execute(
                "UPDATE runs SET last = ?, best = ?, best_epoch = ?, heartbeat = ?, seq = ?, "
                "epochs_done = (SELECT COUNT(*) FROM epochs WHERE run_id = ?)"
                f"{set_dirs} WHERE id = ?",
                (dumps(metrics), dumps(best), dumps(best_epoch), now, seq, run_id,
                 *dirs_param, run_id))
        self._write(fn)

    def end_run(self, run_id: Optional[int], status: str, error: Optional[str] = None,
                options: Optional[dict] = None) -> None:
        """Close a run with `status` in completed, stopped, failed, interrupted.

        Args:
            options: keys added to the run's options, what only its end knows
                (`peak_memory`: the run's peak device memory in bytes).
        """
        if run_id is None:
            return
        if status not in STATUSES[1:]:  # a caller's bug must not break training either
            warnings.warn(f"nbkeras: unknown run status {status!r} recorded as 'failed'",
                          RuntimeWarning, stacklevel=2)
            error, status = error or f"ended with unknown status {status!r}", "failed"
        if options:
            self._write(lambda db, seq: db.execute(
                "UPDATE runs SET status = ?, error = ?, ended = ?, seq = ?, options = "
                "json_patch(CASE WHEN json_valid(options) THEN options ELSE '{}' END, ?) "
                "WHERE id = ?", (status, error, time.time(), seq, dumps(jsonable(options)),
                                 run_id)), last_try=True)
            return
        self._write(lambda db, seq: db.execute(
            "UPDATE runs SET status = ?, error = ?, ended = ?, seq = ? WHERE id = ?",
            (status, error, time.time(), seq, run_id)), last_try=True)

    def add_evaluation(self, run_id: Optional[int], model: str, metrics: dict) -> Optional[int]:
        """Record an evaluation of `model`, tied to run `run_id` when given."""
        def fn(db, seq):
            cur = db.execute("INSERT INTO evaluations (run_id, model, metrics, created, seq) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (run_id, model, dumps(jsonable(metrics)), time.time(), seq))
            if run_id is not None:
                db.execute("UPDATE runs SET seq = ? WHERE id = ?", (seq, run_id))
            return cur.lastrowid
        return self._write(fn)

    # -- managing runs ------------------------------------------------------
    def delete_runs(self, run_ids: List[int]) -> List[int]:
        """Delete runs: their rows, epochs and evaluations leave the file.

        Only each id and the change counter of its deletion stay (table
        `deletions`), so that pollers (`deleted_since`) drop the run and no
        later run reuses its id. Returns the ids that existed and are now gone.
        """
        ids = sorted({int(r) for r in run_ids})

        def fn(db, seq):
            return self._delete_runs(db, seq, ids)
        return self._write(fn, default=[]) or []

    @staticmethod
    def _delete_runs(db: sqlite3.Connection, seq: int, ids: List[int]) -> List[int]:
        found = []
        for rid in ids:
            if db.execute("DELETE FROM runs WHERE id = ?", (rid,)).rowcount:
                found.append(rid)
                db.execute("DELETE FROM epochs WHERE run_id = ?", (rid,))
                db.execute("DELETE FROM evaluations WHERE run_id = ?", (rid,))
                db.execute("INSERT OR REPLACE INTO deletions (run_id, seq) VALUES (?, ?)",
                           (rid, seq))
        return found

    def delete_model_version(self, version_id: int) -> Optional[Dict[str, Any]]:
        """Delete a model version and every run trained from it.

        Returns ``{"version_id", "name", "runs": [deleted run ids]}``, or None
        when there is no such version.
        """
        def fn(db, seq):
            row = db.execute("SELECT name FROM model_versions WHERE id = ?",
                             (int(version_id),)).fetchone()
            if row is None:
                return None
            ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE version_id = ? "
                                             "ORDER BY id", (int(version_id),))]
            runs = self._delete_runs(db, seq, ids)
            db.execute("DELETE FROM model_versions WHERE id = ?", (int(version_id),))
            # a later version must not take this id: remember the highest one deleted
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('version_floor', "
                       "MAX(?, COALESCE((SELECT value FROM meta WHERE key = 'version_floor'), 0)))",
                       (int(version_id),))
            return {"version_id": int(version_id), "name": row[0], "runs": runs}
        return self._write(fn)

    def set_starred(self, run_id: int, starred: bool = True) -> bool:
        """Star (pin) or unstar a run; False when there is no such run."""
        def fn(db, seq):
            return db.execute("UPDATE runs SET starred = ?, seq = ? WHERE id = ?",
                              (1 if starred else 0, seq, int(run_id))).rowcount > 0
        return bool(self._write(fn, default=False))

    # -- liveness -----------------------------------------------------------
    def mark_interrupted(self) -> List[int]:
        """Record the 'running' runs whose process on this host has died as
        interrupted (ended when last heard of); returns their ids.

        The one write of a run that is not its own kernel's: done by the
        first `start_run` of a registry and by the Jupyter server every
        `nbkeras.server.MARK_INTERRUPTED_EVERY_S` seconds. Reads only report
        such runs as interrupted. Never raises and never stops recording: a
        locked or read-only file just leaves the marking to the next call.
        """
        with self._lock:
            if self.broken:
                return []

            def mark(db, seq):
                dead = dead_runs(db)  # again, inside the write lock
                for rid, ended in dead.items():
                    db.execute("UPDATE runs SET status = 'interrupted', ended = ?, seq = ? "
                               "WHERE id = ? AND status = 'running'", (ended, seq, rid))
                return sorted(dead)
            try:
                if not dead_runs(self._conn()):  # the usual answer, without a write
                    return []
                return self._transaction_retrying(mark)
            except (sqlite3.Error, OSError, ValueError):
                return []

    # -- readers ------------------------------------------------------------
    def cursor(self) -> int:
        """The change counter: it grows with every write."""
        return self._read(lambda db: int(db.execute(
            "SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]), 0)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self.broken = self.broken or "closed"


def _is_lock_error(e: Exception) -> bool:
    return "locked" in str(e) or "busy" in str(e)
