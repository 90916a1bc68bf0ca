"""The registry's readers: run summaries, one run, every run, model versions.

Split from `write.py` (which owns the connection and the writers) so each
file reads in one sitting. Readers never write: the sidebar polls them every
second, and a poll that wrote would contend with the kernels' epochs. A run
whose process died is *reported* as interrupted here (computed, as
`Registry.mark_interrupted` would record it) until a writer records it.

Summaries never touch the epoch rows: the `last`, `best`, `best_epoch` and
`directions` columns kept by `log_epoch` make a listing of 10,000 runs one
indexed query and one JSON parse. Imports no Keras.
"""

from __future__ import annotations

import json
import time
from typing import Dict, Iterable, List, Optional

from ..metricvocab import is_score
from .schema import dead_runs, iso_utc, loads, name_direction

_ISO_SQL = "strftime('%Y-%m-%dT%H:%M:%S', {}, 'unixepoch') || '+00:00'"
# The four JSON columns come back as one '[last,best,best_epoch,directions]' text per
# row and are decoded together in one json.loads call: 10,000 runs in one parse.
_SUMMARY_COLS = ("id, model, version_id, status, started, ended, device, backend, notebook, "
                 "epochs_done, epochs_planned, seq, heartbeat, starred, "
                 "CASE WHEN json_valid(options) THEN json_extract(options, '$.mixed_precision') "
                 "END, "
                 f"{_ISO_SQL.format('started')}, {_ISO_SQL.format('ended')}, "
                 "'[' || COALESCE(last, '{}') || ',' || COALESCE(best, '{}') || ',' || "
                 "COALESCE(best_epoch, '{}') || ',' || COALESCE(directions, '{}') || ']'")


def _directions(stored: Dict[str, str], last: dict, best: dict) -> Dict[str, str]:
    """{key: 'min' | 'max'} for every score key of `last` and `best`: the
    stored directions first, the metric's name for the rest."""
    out = stored
    for metrics in (best, last):
        for key in metrics:
            if key not in out and is_score(key):
                if out is stored:
                    out = dict(stored)
                out[key] = name_direction(key)
    return out


class RegistryReaders:
    """Read methods of `Registry`; they rely on its `_read`. None writes."""

    def _summaries(self, db, where: str = "", params: Iterable = (),
                   limit: Optional[int] = None, index: str = "",
                   dead: Optional[Dict[int, float]] = None) -> List[dict]:
        if dead is None:
            dead = dead_runs(db)
        sql = f"SELECT {_SUMMARY_COLS} FROM runs {index} {where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = db.execute(sql, tuple(params)).fetchall()
        blobs = json.loads("[" + ",".join(r[-1] for r in rows) + "]")
        now = time.time()
        out = []
        for (rid, model, vid, status, started, ended, device, backend, notebook, done,
             planned, seq, heartbeat, starred, mixed, started_iso, ended_iso, _), \
                (last, best, best_epoch, directions) in zip(rows, blobs):
            if status == "running" and rid in dead:
                status, ended = "interrupted", dead[rid]
                ended_iso = iso_utc(ended)
            out.append({
                "id": rid, "model": model, "version_id": vid, "status": status,
                "started": started_iso, "ended": ended_iso,
                "duration": (ended if ended is not None else now) - started,
                "device": device, "backend": backend, "notebook": notebook,
                "epochs": done, "epochs_planned": planned,
                "last": last, "best": best, "best_epoch": best_epoch,
                "directions": _directions(directions, last, best), "seq": seq,
                "starred": bool(starred),
                "precision": "mixed" if mixed else "float32",
            })
        return out

    def run_summaries(self, model: Optional[str] = None, since: Optional[int] = None,
                      limit: Optional[int] = None) -> List[dict]:
        """Runs newest first without their epoch rows (cheap for thousands).

        Args:
            model: only the runs of this model.
            since: only the runs changed after this `cursor()` value, and the
                runs whose process has died since (reported as interrupted
                until `mark_interrupted` records it and changes their `seq`).
            limit: at most this many runs.
        """
        clauses, params = [], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if since is not None:
            clauses.append("seq > ?")
            params.append(int(since))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        # a poll for changes touches a few rows: find them by seq, not by scanning
        index = "INDEXED BY runs_seq" if since is not None else ""

        def fn(db):
            dead = dead_runs(db)
            rows = self._summaries(db, where, params, limit, index, dead)
            if since is None or not dead:
                return rows
            seen = {r["id"] for r in rows}
            missing = [rid for rid in dead if rid not in seen]
            if not missing:
                return rows
            marks = ",".join("?" * len(missing))
            extra_where = f"WHERE id IN ({marks})" + (" AND model = ?" if model is not None
                                                      else "")
            extra = self._summaries(db, extra_where,
                                    missing + ([model] if model is not None else []),
                                    dead=dead)
            rows = sorted(rows + extra, key=lambda r: r["id"], reverse=True)
            return rows[:limit] if limit is not None else rows
        return self._read(fn, [])

    def deleted_since(self, since: int) -> List[int]:
        """Ids of the runs deleted after change-counter value `since`."""
        return self._read(lambda db: [r[0] for r in db.execute(
            "SELECT run_id FROM deletions WHERE seq > ? ORDER BY run_id", (int(since),))], [])

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
                                 "metrics": json.loads(metrics), "created": iso_utc(created)})
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
            summary.update(options=loads(options), error=error, spec=spec,
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
                r["options"], r["error"] = loads(opts), err
            return rows
        return self._read(fn, [])

    def model_versions(self, name: Optional[str] = None) -> List[dict]:
        """Model versions (of `name`), newest first."""
        def fn(db):
            sql = "SELECT id, name, spec_text, params, created, source FROM model_versions "
            rows = db.execute(sql + ("WHERE name = ? ORDER BY id DESC" if name is not None
                                     else "ORDER BY id DESC"),
                              (name,) if name is not None else ())
            return [{"id": i, "name": n, "spec_text": s, "params": p, "created": iso_utc(c),
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
                     "created": iso_utc(c)} for i, r, m, js, c in rows]
        return self._read(fn, [])

    def model_stats(self) -> List[dict]:
        """Per model name: versions, runs, newest run id and activity time,
        most recently active first (one grouped query, cheap for many runs)."""
        def fn(db):
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
                s["active"] = iso_utc(s["active"])
            return out
        return self._read(fn, [])

    def model_names(self) -> List[str]:
        """Every model name with a version or a run."""
        return self._read(lambda db: sorted({r[0] for r in db.execute(
            "SELECT name FROM model_versions UNION SELECT model FROM runs")}), [])
