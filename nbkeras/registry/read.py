"""The registry's readers: run summaries, one run, every run, model versions.

Split from `write.py` (which owns the connection and the writers) so each
file reads in one sitting. Readers never write: the sidebar polls them every
second, and a poll that wrote would contend with the kernels' epochs. A run
whose process died is *reported* as interrupted here (computed, as
`Registry.mark_interrupted` would record it) until a writer records it.

Summaries never touch the epoch rows: the `last`, `best`, `best_epoch` and
`directions` columns kept by `log_epoch` make a listing of 10,000 runs one
indexed query and one JSON parse. A run of a `%tune` study or of a `%fit --cv`
group also carries its `group` (study, trial, space values, objective; group
id, fold): only those runs' options are parsed, and only a grouped run whose
early stopping restored an earlier epoch costs one epoch-row lookup. Imports
no Keras (a version's search spaces are parsed with a stand-in for Keras'
tables).
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, List, Optional

from ..metricvocab import is_score
from .schema import dead_runs, iso_utc, loads, name_direction

_ISO_SQL = "strftime('%Y-%m-%dT%H:%M:%S', {}, 'unixepoch') || '+00:00'"
# The four JSON columns come back as one '[last,best,best_epoch,directions]' text per
# row and are decoded together in one json.loads call: 10,000 runs in one parse.
_SUMMARY_COLS = ("id, model, version_id, status, started, ended, device, backend, notebook, "
                 "epochs_done, epochs_planned, seq, heartbeat, starred, "
                 "CASE WHEN json_valid(options) THEN json_extract(options, '$.mixed_precision') "
                 "END, "
                 "CASE WHEN json_valid(options) THEN json_extract(options, '$.kept_epoch') END, "
                 # the options of grouped runs only (a %tune trial, a --cv fold)
                 "CASE WHEN instr(options, '\"study\"') OR instr(options, '\"cv_group\"') "
                 "THEN options END, "
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


def _group(model: str, options_text: Optional[str], status: str, epochs: int,
           planned: Optional[int], best_epoch: dict,
           kept_epoch: Optional[int] = None) -> Optional[dict]:
    """What the sidebar groups a run by, from its options; None for a plain run.

    A `%tune` trial has `study`, `trial`, `values` (space name -> value),
    `objective` and `direction` ('min' or 'max'; both None for trials
    recorded before they were kept); a `%fit --cv` fold has `cv_group`,
    `fold`, `folds` (K) and `fit_line` (the `%fit ... --cv K` line). A trial of `%tune --cv` has both. `restored_epoch`
    is the epoch whose weights `--early-stop` restored (`kept_epoch`, recorded
    by the session; for runs recorded before it was, a completed run that
    stopped before its planned epochs), else None.
    """
    try:
        options = json.loads(options_text) if options_text else None
    except ValueError:
        return None
    if not isinstance(options, dict):
        return None
    group: Dict[str, Any] = {}
    if options.get("study") is not None:
        values = options.get("values")
        group.update(study=str(options["study"]), trial=options.get("trial"),
                     objective=options.get("objective"),
                     direction=options.get("direction") if options.get("direction") in (
                         "min", "max") else None,
                     values=values if isinstance(values, dict) else {})
    if options.get("cv_group") is not None:
        from ..options.fitline import fit_line  # imports no Keras
        group.update(cv_group=str(options["cv_group"]), fold=options.get("fold"),
                     folds=options.get("cv"), fit_line=fit_line(model, options))
    if not group:
        return None
    group["restored_epoch"] = kept_epoch
    if (kept_epoch is None and "kept_epoch" not in options
            and options.get("early_stop") is not None and status == "completed" and planned
            and epochs < planned):
        # the monitor as `%fit` chose it: --monitor, else val_loss with validation data
        has_val = bool(options.get("val") or options.get("val_split"))
        monitor = options.get("watch") or options.get("monitor") or (
            "val_loss" if has_val else "loss")
        group["restored_epoch"] = best_epoch.get(monitor)
    return group


class _NoKeras:
    """A stand-in for the spec parser's Keras catalog: no layer names, no
    constructor parameters (spaces get provisional names, in the same order)."""

    def layer_name(self, kind: str) -> Optional[str]:
        return None

    def params(self, kind: str, args) -> tuple:
        return ()


def _add_kept(db, rows: List[dict]) -> None:
    """`kept`: the metrics of the epoch whose weights a run's model holds,
    where that is not its last epoch (early stopping restored an earlier
    one); elsewhere `last` is what the model holds and `kept` is left out.
    A grouped run carries the same dict as `group["held"]`."""
    for row in rows:
        group = row.get("group") or {}
        epoch = row.get("kept_epoch")
        if epoch is None:
            epoch = group.get("restored_epoch")
        if epoch is None:
            continue
        found = db.execute("SELECT metrics FROM epochs WHERE run_id = ? AND epoch = ?",
                           (row["id"], epoch)).fetchone()
        if not found:
            continue
        kept = json.loads(found[0])
        if kept == row["last"]:
            continue
        row["kept"] = kept
        row["kept_epoch"] = epoch
        if group:
            group["held"] = kept


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
             planned, seq, heartbeat, starred, mixed, kept_epoch, grouped, started_iso,
             ended_iso, _), \
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
                "kept_epoch": kept_epoch if isinstance(kept_epoch, int) else None,
            })
            if grouped is not None:
                group = _group(model, grouped, status, done, planned, best_epoch, out[-1]["kept_epoch"])
                if group is not None:
                    out[-1]["group"] = group
        _add_kept(db, out)
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

    def version_spaces(self, version_id: int) -> Optional[List[dict]]:
        """The search spaces of a model version's spec, in the spec's order,
        as `Space.to_config()` dicts (`name`, `kind`: choice/int/float,
        `choices`, `low`, `high`, `step`, `log`, `text`); [] when its spec has
        none or is not a spec; None for an unknown version.

        Parsed without Keras (the server must not load TensorFlow), which
        names a space by its layer's parameter only with Keras' tables; the
        names come from the version's newest `%tune` trial instead, whose
        `values` hold the same spaces in the same (source) order.
        """
        def fn(db):
            row = db.execute("SELECT spec_text FROM model_versions WHERE id = ?",
                             (int(version_id),)).fetchone()
            if row is None:
                return None
            trial = db.execute(
                "SELECT options FROM runs WHERE version_id = ? AND instr(options, '\"study\"') "
                "ORDER BY id DESC LIMIT 1", (int(version_id),)).fetchone()
            return row[0], trial[0] if trial else None
        found = self._read(fn, None)
        if found is None:
            return None
        spec_text, options = found
        if not spec_text:
            return []
        from ..speclang.parse import parse
        try:
            spaces = [s.to_config() for s in parse(spec_text, catalog=_NoKeras()).spaces]
        except Exception:  # noqa: BLE001 - a spec another version of nbkeras wrote
            return []
        try:
            values = (json.loads(options) or {}).get("values") if options else None
        except ValueError:
            values = None
        if isinstance(values, dict) and len(values) == len(spaces):
            for space, name in zip(spaces, values):
                space["name"] = name
        return spaces

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
