"""The wall time of a `%tune` search: in the kernel, and with `--workers 1` and `--workers 2`.

Run:
    python benchmarks/bench_tune.py            # 12 trials, 30 epochs, 3 rounds (some minutes)
    python benchmarks/bench_tune.py --quick    # 4 trials, 2 epochs, 1 round: a smoke run

Each search runs in a fresh process (an IPython shell with nbkeras loaded,
its own registry folder), on scikit-learn's digits (1797x64, 20% held out),
a spec with three spaces, `--sampler random --pruner none --seed 0`, so
every trial trains the same number of epochs and the three settings run
the same kind of trials. The time is the `%tune` call's wall time, start
of the worker processes (each imports Keras) included; the settings are
alternated within each round, and the medians reported. Writes
`benchmarks/results/tune.json` (`--out`) and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent

SEARCH = r"""
import json, os, sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "nbkeras")
ip.run_cell('''
import numpy as np
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data / 16).astype("float32"); y = d.target
''').raise_error()
ip.run_cell('''%%model bench
input 64
dense {32, 64, 128}@width relu
dropout 0.0..0.3
dense 10 softmax
optimizer adam lr=1e-3..1e-2:log''').raise_error()
line = sys.argv[1]
t = time.perf_counter()
df = ip.run_line_magic("tune", line)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "trials": len(df),
                  "complete": int((df["state"] == "complete").sum()),
                  "trial_s": float(df["duration"].median())}))
"""


def run_search(trials: int, epochs: int, workers) -> dict:
    line = (f"bench x y --trials {trials} -e {epochs} --val-split 0.2 --sampler random "
            f"--pruner none --seed 0 --quiet")
    if workers is not None:
        line += f" --workers {workers}"
    with tempfile.TemporaryDirectory(prefix="nbkeras-bench-tune-") as home:
        env = dict(os.environ, NBKERAS_HOME=home, TF_CPP_MIN_LOG_LEVEL="3")
        out = subprocess.run([sys.executable, "-c", SEARCH, line], capture_output=True,
                             text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"%tune {line} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["complete"] != trials:
        raise SystemExit(f"%tune {line}: {result['complete']} of {trials} trials complete")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials, 2 epochs, 1 round")
    parser.add_argument("--trials", type=int, help="trials per search (default 12, --quick 4)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default 30, --quick 2)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    parser.add_argument("--out", default=str(HERE / "results" / "tune.json"))
    args = parser.parse_args()
    trials = args.trials or (4 if args.quick else 12)
    epochs = args.epochs or (2 if args.quick else 30)
    rounds = args.rounds or (1 if args.quick else 3)

    settings = {"kernel": None, "workers_1": 1, "workers_2": 2}
    walls = {k: [] for k in settings}
    trial_s = {k: [] for k in settings}
    for r in range(rounds):
        order = list(settings) if r % 2 == 0 else list(reversed(list(settings)))
        for name in order:
            res = run_search(trials, epochs, settings[name])
            walls[name].append(res["wall_s"])
            trial_s[name].append(res["trial_s"])
            print(f"round {r + 1}/{rounds} {name}: {res['wall_s']:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    report = {
        "what": f"%tune wall time, {trials} trials x {epochs} epochs, digits 1797x64 "
                "(20% validation), MLP with 3 spaces, random sampler, no pruning",
        "quick": args.quick, "trials": trials, "epochs": epochs, "rounds": rounds,
        "wall_s": med, "wall_s_all": walls,
        "trial_s_median": {k: statistics.median(v) for k, v in trial_s.items()},
        "ratio_workers1_over_workers2": med["workers_1"] / med["workers_2"],
        "ratio_kernel_over_workers2": med["kernel"] / med["workers_2"],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{'setting':<11} {'wall (median)':>14} {'trial (median)':>15}")
    for k in settings:
        print(f"{k:<11} {med[k]:>12.1f} s {report['trial_s_median'][k]:>13.2f} s")
    print(f"--workers 1 / --workers 2: {report['ratio_workers1_over_workers2']:.2f}x; "
          f"in the kernel / --workers 2: {report['ratio_kernel_over_workers2']:.2f}x")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
