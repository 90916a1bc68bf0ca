"""`%models`: what the registry remembers, as tables and overlaid curves.

`%models` lists the models and the newest runs; `%models NAME` one model's
versions and runs; `%models --compare 3 7` overlays the runs' curves, puts
their results (what each model holds) and best metrics side by side (the best of each row marked) and
diffs their `%fit` options and specs, so a layer change can be read next to
the metric change it caused: the sidebar's comparison in a static form, for
Colab and VS Code. `%models --delete 3 7` deletes runs from the registry.
Reads only the registry's cheap summaries (no epoch rows) except for the
runs being compared, so it stays fast with thousands of runs.
"""

from __future__ import annotations

import difflib
import html
from typing import Dict, List, Optional

from ..errors import UsageError, did_you_mean
from ..metricvocab import is_score, primary_metric
from ..registry import get_registry
from .common import Table, fmt, fmt_duration, is_keras_model
from ..options.fitline import fit_line, option_differences

OVERVIEW_RUNS = 20
MODEL_RUNS = 200
_STATUS_COLORS = {"failed": "#c62828", "interrupted": "#ef6c00", "running": "#1565c0",
                  "stopped": "#6d4c41"}


def _version_numbers(versions: List[dict]) -> Dict[int, str]:
    """Registry version id -> 'v1', 'v2', ... counted per model name."""
    per_model: Dict[str, List[int]] = {}
    for v in sorted(versions, key=lambda v: v["id"]):
        per_model.setdefault(v["name"], []).append(v["id"])
    return {vid: f"v{i + 1}" for ids in per_model.values() for i, vid in enumerate(ids)}


RUN_COLUMNS = ["run", "model", "version", "status", "epochs", "metric", "result",
               "best (epoch)", "duration", "device", "started"]


def kept(summary: dict) -> dict:
    """The metrics of the weights a run's model holds: its kept epoch's where
    early stopping restored one, else its last epoch's."""
    return summary.get("kept") or summary.get("last") or {}


def result_text(summary: dict, metric: Optional[str]) -> str:
    """A run's result for `metric`: the kept weights' value, and the last
    epoch's beside it only where they differ ("0.9722 (epoch 27; last 0.9653)")."""
    if not metric:
        return ""
    value = kept(summary).get(metric)
    if summary.get("kept") and summary.get("kept_epoch") is not None:
        last = (summary.get("last") or {}).get(metric)
        return f"{fmt(value)} (epoch {summary['kept_epoch']}; last {fmt(last)})"
    return fmt(value)


def _run_row(s: dict, vnames: Dict[int, str]) -> List[str]:
    metric = primary_metric(s["last"]) or primary_metric(s["best"])
    best = s["best"].get(metric) if metric else None
    best_txt = f"{fmt(best)} ({s['best_epoch'][metric]})" if best is not None else ""
    planned = s.get("epochs_planned")
    return [s["id"], s["model"], vnames.get(s["version_id"], ""), s["status"],
            f"{s['epochs']}/{planned}" if planned else s["epochs"], metric or "",
            result_text(s, metric), best_txt, fmt_duration(s["duration"]), s["device"] or "",
            (s["started"] or "").replace("T", " ")[:16]]


def _runs_table(summaries: List[dict], vnames: Dict[int, str], title: str, note: str = ""):
    return Table(RUN_COLUMNS, [_run_row(s, vnames) for s in summaries], title=title, note=note,
                 colors=[_STATUS_COLORS.get(s["status"]) for s in summaries])


class CompareTable:
    """Runs side by side, one column per run: each metric's result (the value
    of the weights the run's model holds), its last epoch's value where that
    differs for some run, and its best value, each in a row of its own, the
    best value of each row marked (bold in a notebook, `*` in text), by the
    metric's direction.

    Attributes:
        rows: [(metric, 'result' | 'last epoch' | 'best', [value or None per
            run], {index of the best value(s)})].
    """

    def __init__(self, runs: List[dict], labels: List[str]):
        self.labels = labels
        self.rows = compare_rows(runs)

    def cells(self) -> List[List[str]]:
        out = []
        for metric, kind, values, best in self.rows:
            out.append([metric, kind] + [fmt(v) + ("*" if i in best else "")
                                         for i, v in enumerate(values)])
        return out

    def __repr__(self) -> str:
        return repr(Table(["metric", ""] + self.labels, self.cells(),
                          title="Results and best metrics (* best of the row)"))

    def _repr_html_(self) -> str:
        esc = html.escape
        cell = ("padding:3px 12px;border-bottom:1px solid var(--jp-border-color2,#e0e0e0);"
                "white-space:nowrap")
        parts = ["<div style='font-family:var(--jp-ui-font-family,sans-serif);"
                 "color:var(--jp-ui-font-color1,#333)'>",
                 "<div style='font-weight:600;margin:8px 0 4px'>Final and best metrics "
                 "<span style='font-weight:normal;color:var(--jp-ui-font-color2,#666)'>"
                 "(best of each row in bold)</span></div>",
                 "<table class='nbkeras-table nbkeras-compare' style='border-collapse:collapse'>"
                 f"<thead><tr><th style='{cell};text-align:left'>metric</th>"
                 f"<th style='{cell}'></th>"]
        parts += [f"<th style='{cell};text-align:right'>{esc(label)}</th>"
                  for label in self.labels]
        parts.append("</tr></thead><tbody>")
        for metric, kind, values, best in self.rows:
            tds = [f"<td style='{cell};text-align:left;font-family:var(--jp-code-font-family,"
                   f"monospace)'>{esc(metric)}</td>",
                   f"<td style='{cell};color:var(--jp-ui-font-color2,#666)'>{kind}</td>"]
            for i, v in enumerate(values):
                weight = "font-weight:700" if i in best else ""
                tds.append(f"<td style='{cell};text-align:right;{weight}'>{esc(fmt(v))}</td>")
            parts.append("<tr>" + "".join(tds) + "</tr>")
        parts.append("</tbody></table></div>")
        return "".join(parts)


def compare_rows(runs: List[dict]):
    """[(metric, kind, values, best indices)] for the runs' metrics: the
    primary metric first, then validation metrics, then the rest; each
    metric's 'result' row (what each run's model holds), a 'last epoch' row
    where early stopping kept an earlier epoch in some run, then its 'best'
    row. Directions come from each run's `directions` (what the registry
    sends the sidebar)."""
    keys: List[str] = []
    for run in runs:
        for key in list(run.get("last") or {}) + list(run.get("best") or {}):
            if key not in keys and is_score(key):
                keys.append(key)
    first = primary_metric(keys)
    keys.sort(key=lambda k: (k != first, not k.startswith("val_"), k))
    rows = []
    for key in keys:
        direction = next((r["directions"][key] for r in runs
                          if key in (r.get("directions") or {})), None)
        kinds = [("result", kept)]
        if any(r.get("kept") for r in runs):
            kinds.append(("last epoch", lambda r: r.get("last") or {}))
        kinds.append(("best", lambda r: r.get("best") or {}))
        for kind, field in kinds:
            values = [field(r).get(key) for r in runs]
            present = [v for v in values if v is not None]
            best = set()
            if len(present) > 1 and direction in ("min", "max"):
                target = min(present) if direction == "min" else max(present)
                best = {i for i, v in enumerate(values) if v == target}
            rows.append((key, kind, values, best))
    return rows


class View:
    """Tables (and a spec diff) shown together; `.runs` holds the run summaries."""

    def __init__(self, tables: List[Table], runs: List[dict], diff: str = "",
                 figure=None, versions: Optional[List[dict]] = None):
        self.tables = tables
        self.runs = runs
        self.diff = diff
        self.figure = figure
        self.versions = versions or []

    def __repr__(self) -> str:
        parts = [repr(t) for t in self.tables]
        if self.diff:
            parts.append(self.diff)
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        parts = [t._repr_html_() for t in self.tables]
        if self.diff:
            lines = []
            for line in self.diff.splitlines():
                color = ("#2e7d32" if line.startswith("+") and not line.startswith("+++") else
                         "#c62828" if line.startswith("-") and not line.startswith("---") else
                         None)
                esc = html.escape(line)
                lines.append(f"<span style='color:{color}'>{esc}</span>" if color else esc)
            parts.append("<div style='font-weight:600;margin:8px 0 4px'>Spec differences</div>"
                         "<pre style='white-space:pre'>" + "\n".join(lines) + "</pre>")
        return "".join(parts)


def run_models(shell, args):
    """Body of `%models [NAME] [--compare RUN ...] [--delete RUN ...]`;
    returns a `View` (None after a deletion, which prints one line)."""
    reg = get_registry()
    delete_ids = getattr(args, "delete", None)
    if (args.compare or args.name or delete_ids) and not reg.recording:
        raise UsageError(f"nothing to show: {_not_recording_note(reg)}")
    if delete_ids:
        print(delete(reg, delete_ids))
        return None
    if args.compare:
        return compare(reg, args.compare)
    if args.name:
        return one_model(reg, args.name, shell)
    return overview(reg)


def _not_recording_note(reg) -> str:
    return "" if reg.recording else f"runs are not being recorded: {reg.broken}"


def overview(reg) -> View:
    stats = reg.model_stats()
    versions = reg.model_versions()
    vnames = _version_numbers(versions)
    runs = reg.run_summaries(limit=OVERVIEW_RUNS)
    latest = {s["name"]: s["last_run"] for s in stats}
    by_id = {r["id"]: r for r in runs}
    rows = []
    for s in stats:
        last = by_id.get(latest[s["name"]]) if latest[s["name"]] else None
        if last is None and latest[s["name"]]:
            found = reg.run_summaries(model=s["name"], limit=1)
            last = found[0] if found else None
        row = _run_row(last, vnames) if last else [""] * len(RUN_COLUMNS)
        rows.append([s["name"], s["versions"], s["runs"], row[0], row[3], row[5], row[6], row[7]])
    total = sum(s["runs"] for s in stats)
    models = Table(["model", "versions", "runs", "last run", "status", "metric", "result",
                    "best (epoch)"], rows, title="Models",
                   note=_not_recording_note(reg) or ("" if stats else "no models recorded yet"))
    note = (f"newest {len(runs)} of {total:,} runs; `%models NAME` for one model, "
            "`nbkeras.runs()` for every run" if total > len(runs) else "")
    return View([models, _runs_table(runs, vnames, "Runs", note)], runs, versions=versions)


def _unknown_model(reg, name: str, shell) -> UsageError:
    names = reg.model_names()
    if shell is not None:
        names += [k for k, v in shell.user_ns.items()
                  if not k.startswith("_") and is_keras_model(v)]
    hint = did_you_mean(name, sorted(set(names)))
    if not hint and names:
        hint = " (recorded: " + ", ".join(f"`{n}`" for n in sorted(set(names))[:10]) + ")"
    return UsageError(f"no model named `{name}` in the registry{hint}")


def one_model(reg, name: str, shell=None) -> View:
    versions = reg.model_versions(name)
    runs = reg.run_summaries(model=name, limit=MODEL_RUNS)
    if not versions and not runs:
        raise _unknown_model(reg, name, shell)
    vnames = _version_numbers(versions)
    counts: Dict[int, int] = {}
    for r in runs:
        counts[r["version_id"]] = counts.get(r["version_id"], 0) + 1
    vrows = [[vnames[v["id"]], v["id"], (v["created"] or "").replace("T", " ")[:16],
              f"{v['params']:,}" if v["params"] is not None else "", v["source"],
              counts.get(v["id"], 0), len([ln for ln in v["spec_text"].splitlines() if ln.strip()])]
             for v in versions]
    vt = Table(["version", "id", "created", "params", "source", "runs", "spec lines"], vrows,
               title=f"{name}: versions")
    note = f"newest {MODEL_RUNS} runs shown" if len(runs) == MODEL_RUNS else ""
    return View([vt, _runs_table(runs, vnames, f"{name}: runs", note)], runs, versions=versions)


def _unknown_run(reg, rid: int) -> UsageError:
    recent = [str(s["id"]) for s in reg.run_summaries(limit=5)]
    hint = (f" (newest runs: {', '.join(recent)}; `%models` lists them)" if recent
            else " (no runs recorded yet)")
    return UsageError(f"no run {rid} in the registry{hint}")


def compare(reg, run_ids: List[int]) -> View:
    runs = []
    for rid in run_ids:
        run = reg.run(rid)
        if run is None:
            raise _unknown_run(reg, rid)
        runs.append(run)
    versions = reg.model_versions()
    vnames = _version_numbers(versions)
    figure = _plot_curves(runs, vnames)
    labels = [_label(r, vnames) for r in runs]
    tables = [_runs_table(runs, vnames, "Compared runs"), CompareTable(runs, labels)]
    differing = option_differences(runs)
    if differing:
        tables.append(Table(["option"] + labels, [[flag] + values for flag, values in differing],
                            title="Options that differ"))
    else:
        tables.append(Table(["run", "%fit"], [[r["id"], fit_line(r["model"], r.get("options"))]
                                              for r in runs[:1]],
                            title="Options (the same in every run)"))
    return View(tables, runs, diff=_spec_diff(runs, vnames), figure=figure, versions=versions)


def delete(reg, run_ids: List[int]) -> str:
    """Delete these runs (all or none: an unknown id deletes nothing); one line."""
    summaries = {}
    for rid in dict.fromkeys(run_ids):
        run = reg.run(rid)
        if run is None:
            raise _unknown_run(reg, rid)
        summaries[rid] = run["model"]
    deleted = reg.delete_runs(list(summaries))
    if not deleted:
        raise UsageError(f"could not delete runs {', '.join(map(str, summaries))}: "
                         f"{reg.broken or 'the registry is busy; try again'}")
    models = sorted({summaries[r] for r in deleted})
    noun = "run" if len(deleted) == 1 else "runs"
    return (f"deleted {noun} {', '.join(map(str, deleted))} "
            f"({', '.join(models)}) from the registry")


def _label(run: dict, vnames: Dict[int, str]) -> str:
    v = vnames.get(run["version_id"])
    return f"run {run['id']} ({run['model']}{' ' + v if v else ''})"


def _spec_diff(runs: List[dict], vnames: Dict[int, str]) -> str:
    """Unified diffs of each run's spec against the first run's, when they differ."""
    first = runs[0]
    out = []
    for other in runs[1:]:
        if (other["version_id"], other["model"]) == (first["version_id"], first["model"]):
            continue
        a, b = first.get("spec") or "", other.get("spec") or ""
        if a == b:
            continue
        out.extend(difflib.unified_diff(a.splitlines(), b.splitlines(),
                                        fromfile=_label(first, vnames),
                                        tofile=_label(other, vnames), lineterm=""))
    return "\n".join(out)


def _plot_curves(runs: List[dict], vnames: Dict[int, str]):
    """One figure: a panel per metric, a color per run, validation dashed."""
    import matplotlib.pyplot as plt

    bases: List[str] = []
    for run in runs:
        for h in run["history"]:
            for key in h:
                base = key[4:] if key.startswith("val_") else key
                if key not in ("epoch", "learning_rate", "lr") and base not in bases:
                    bases.append(base)
    if not bases:
        return None
    bases = sorted(bases, key=lambda b: (b != "loss", bases.index(b)))[:4]
    fig, axes = plt.subplots(1, len(bases), figsize=(4.5 * len(bases), 3.4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        for ax, base in zip(axes[0], bases):
            for key, style, suffix in ((base, "-", ""), ("val_" + base, "--", " val")):
                pts = [(h["epoch"], h[key]) for h in run["history"]
                       if h.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), style, color=color, marker=".",
                            label=_label(run, vnames) + suffix)
    from matplotlib.ticker import MaxNLocator
    for ax, base in zip(axes[0], bases):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    from .common import show_figure
    return show_figure(fig)
