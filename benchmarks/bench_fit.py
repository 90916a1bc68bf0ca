"""What `%fit`'s live panel and plot cost, measured in a real kernel.

Executes notebooks with nbclient (a real ipykernel, as in JupyterLab) and
times each training cell from the kernel's own execute_input to its
execute_reply (so everything the cell does counts: the panel, the plot,
the registry, the static record). On each workload the same model is
trained by:

- `model.fit(verbose=0)` (the baseline),
- `%fit` with the live panel and history plot,
- `model.fit(verbose=1)` (Keras' progress bar),
- livelossplot's `PlotLossesKeras`,
- tqdm's `TqdmCallback`,

in a rotating order, repeated, after one warm-up round; the weights are
reset before every cell, and the compiled train function is shared, so
the ratios compare the progress displays only. Ratios are medians of the
per-round ratios against the baseline of the same round (side by side).
Also reported: the bytes each cell leaves in the saved notebook, and
nbkeras' own time in each `%fit` cell: the cell's time outside `model.fit`
(checks, registry, panel, final record) plus the time spent inside
`model.fit` in nbkeras' callback (the plot renders in line there). On this
2-core VM two identical `model.fit` calls differ by up to 15-20%, so a 3%
effect does not show in wall-time ratios of a few rounds; the own time does
not drown in that noise.

Usage:
    python benchmarks/bench_fit.py            # full: 5 rounds (several minutes)
    python benchmarks/bench_fit.py --quick    # a fast smoke run
Writes `benchmarks/results/fit.json` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
METHODS = ["baseline", "nbkeras", "keras_verbose1", "livelossplot", "tqdm"]

SETUP = """\
import os, time, numpy as np, keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from livelossplot import PlotLossesKeras
from tqdm.keras import TqdmCallback
%load_ext nbkeras
{data}
keras.utils.set_random_seed(0)
m = {model}
m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
m.fit(x[:{batch} * 4], y[:{batch} * 4], batch_size={batch}, epochs=1, verbose=0)  # trace once
w0 = m.get_weights()
_CPU = []
_OWN = []
import functools as _ft
import nbkeras.train.callback as _nbcb
_T = {{"fit": 0.0, "inside": 0.0}}
def _timed(owner, attr, slot):
    f = getattr(owner, attr)
    @_ft.wraps(f)
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            _T[slot] += time.perf_counter() - t
    setattr(owner, attr, g)
for _a in ("on_train_begin", "on_epoch_begin", "on_train_batch_end", "on_test_begin", "on_epoch_end"):
    _timed(_nbcb.LiveCallback, _a, "inside")
_timed(keras.Model, "fit", "fit")
import nbkeras.view.panel as _nbpanel
_UPD = []
_draw = _nbpanel.Panel.draw
def _draw_timed(self, state):
    t = time.perf_counter()
    try:
        return _draw(self, state)
    finally:
        _UPD.append(time.perf_counter() - t)
_nbpanel.Panel.draw = _draw_timed
"""

DATA = {
    "mlp": ("rng = np.random.default_rng(0)\n"
            "x = rng.random(({n}, 784), dtype=np.float32)\n"
            "y = rng.integers(0, 10, {n})"),
    "digits": ("from sklearn.datasets import load_digits\n"
               "d = load_digits()\nx = (d.data / 16).astype('float32')\ny = d.target"),
}
DATA["fast"] = DATA["digits"]
MODEL = {
    "mlp": ("keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation='relu'), "
            "keras.layers.Dense(10, activation='softmax')])"),
    "digits": ("keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation='relu'), "
               "keras.layers.Dense(10, activation='softmax')])"),
    # a fast step (over 1,000 steps a second here), standing for a GPU's step rate
    "fast": ("keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation='relu'), "
             "keras.layers.Dense(10, activation='softmax')])"),
}
FIT = {
    "baseline": "m.fit(x, y, epochs={epochs}, batch_size={batch}, verbose=0)",
    "nbkeras": "%fit m x y -e {epochs} -b {batch}",
    "keras_verbose1": "m.fit(x, y, epochs={epochs}, batch_size={batch}, verbose=1)",
    "livelossplot": ("m.fit(x, y, epochs={epochs}, batch_size={batch}, verbose=0, "
                     "callbacks=[PlotLossesKeras()])"),
    "tqdm": ("m.fit(x, y, epochs={epochs}, batch_size={batch}, verbose=0, "
             "callbacks=[TqdmCallback(verbose=1)])"),
}
# the cell's value must not be displayed (a History repr): end with `;` / assign
WRAP = {"nbkeras": "_h = {fit}"}


def _seconds(cell) -> float:
    meta = cell.metadata["execution"]
    start = dt.datetime.fromisoformat(meta["iopub.execute_input"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(meta["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def run_workload(name: str, n: int, epochs: int, batch: int, rounds: int) -> dict:
    """Execute one notebook with a warm-up round and `rounds` timed rounds."""
    nb = nbformat.v4.new_notebook()
    cells = [SETUP.format(data=DATA[name].format(n=n), model=MODEL[name], batch=batch)]
    plan = []
    for r in range(rounds + 1):
        order = METHODS[r % len(METHODS):] + METHODS[:r % len(METHODS)]
        for method in order:
            cells.append("m.set_weights(w0)")
            fit = FIT[method].format(epochs=epochs, batch=batch)
            fit = WRAP.get(method, "{fit};").format(fit=fit)
            cells.append(f"_T.update(fit=0.0, inside=0.0); _w0 = time.perf_counter()\n"
                         f"_c0 = time.process_time()\n{fit}\n_CPU.append(time.process_time() - _c0)\n"
                         "_OWN.append(time.perf_counter() - _w0 - _T['fit'] + _T['inside'])")
            plan.append((r, method, len(cells) - 1))
    cells.append("import json; print(json.dumps([_CPU, _OWN, _UPD]))")
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    with tempfile.TemporaryDirectory() as home:
        env_home = os.environ.get("NBKERAS_HOME")
        os.environ["NBKERAS_HOME"] = home      # the benchmark's runs stay out of the user's registry
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            NotebookClient(nb, timeout=3600, kernel_name="python3", record_timing=True).execute()
        finally:
            if env_home is None:
                os.environ.pop("NBKERAS_HOME", None)
            else:
                os.environ["NBKERAS_HOME"] = env_home
    cpu_all, own_all, updates = json.loads(nb.cells[-1].outputs[0]["text"])
    cpu = {m: [] for m in METHODS}
    times = {m: [] for m in METHODS}
    sizes = {m: [] for m in METHODS}
    ratios = {m: [] for m in METHODS}
    cpu_ratios = {m: [] for m in METHODS}
    own_share = []
    for (r, method, index), cpu_seconds, own in zip(plan, cpu_all, own_all):
        cell = nb.cells[index]
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            raise RuntimeError(f"{name}/{method} failed: {errors[0].get('evalue')}")
        if r == 0:
            continue  # warm-up round
        times[method].append(_seconds(cell))
        cpu[method].append(cpu_seconds)
        if method == "nbkeras":
            own_share.append(own / times[method][-1])
        sizes[method].append(len(json.dumps(cell.outputs).encode()))
    for i in range(rounds):
        base = times["baseline"][i]
        for m in METHODS:
            ratios[m].append(times[m][i] / base)
            cpu_ratios[m].append(cpu[m][i] / cpu["baseline"][i])
    return {
        "workload": name, "samples": n, "epochs": epochs, "batch_size": batch, "rounds": rounds,
        "median_seconds": {m: statistics.median(times[m]) for m in METHODS},
        "median_ratio": {m: statistics.median(ratios[m]) for m in METHODS},
        "median_cpu_ratio": {m: statistics.median(cpu_ratios[m]) for m in METHODS},
        "ratios": ratios, "seconds": times, "cpu_seconds": cpu, "cpu_ratios": cpu_ratios,
        "output_bytes": {m: max(sizes[m]) for m in METHODS},
        "nbkeras_own_share": {"median": statistics.median(own_share), "max": max(own_share),
                              "per_round": own_share},
        "panel_update_ms": {"median": 1000 * statistics.median(updates),
                            "p99": 1000 * sorted(updates)[int(0.99 * (len(updates) - 1))],
                            "count": len(updates)},
    }


def table(results: list) -> str:
    lines = []
    for res in results:
        lines.append(f"\n{res['workload']}: {res['samples']} samples, {res['epochs']} epochs, "
                     f"batch {res['batch_size']}, {res['rounds']} rounds (medians)")
        lines.append(f"  {'method':<16}{'seconds':>9}{'ratio':>8}{'cpu ratio':>11}"
                     f"{'output bytes':>14}")
        for m in METHODS:
            lines.append(f"  {m:<16}{res['median_seconds'][m]:>9.2f}"
                         f"{res['median_ratio'][m]:>8.3f}{res['median_cpu_ratio'][m]:>11.3f}"
                         f"{res['output_bytes'][m]:>14,}")
        own = res["nbkeras_own_share"]
        lines.append(f"  nbkeras' own time: {own['median']:.1%} of the %fit cell "
                     f"(max {own['max']:.1%} over the rounds)")
        upd = res["panel_update_ms"]
        lines.append(f"  panel update (HTML + SVG chart, kernel side): median {upd['median']:.2f} ms,"
                     f" p99 {upd['p99']:.2f} ms over {upd['count']} updates")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, 1 round: a smoke run")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 5, --quick 1)")
    parser.add_argument("--only", choices=["mlp", "digits", "fast"], help="one workload")
    parser.add_argument("--out", default=str(HERE / "results" / "fit.json"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    workloads = [("mlp", 6000 if args.quick else 60000, 3, 32),
                 ("digits", 1797, 10 if args.quick else 50, 32),
                 ("fast", 1797, 5 if args.quick else 20, 8)]
    results = []
    started = time.time()
    for name, n, epochs, batch in workloads:
        if args.only and name != args.only:
            continue
        print(f"running {name} ({rounds} rounds + warm-up) ...", flush=True)
        results.append(run_workload(name, n, epochs, batch, rounds))
    report = {
        "benchmark": "fit overhead: %fit live panel+plot vs model.fit(verbose=0)",
        "quick": args.quick, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": sys.version.split()[0],
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "wall_seconds": round(time.time() - started, 1),
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(results))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
