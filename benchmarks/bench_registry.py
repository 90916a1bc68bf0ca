"""Registry figures: `%models` with 10,000 runs recorded (target < 0.3 s) and
the registry's cost per epoch (target < 5 ms).

Fills a temporary registry through the public API (10,000 runs over 20
models, 3 epochs each), then times `%models` in an IPython shell including
the HTML and text rendering a notebook does, `%models NAME`, the sidebar's
reads (all summaries, `since=cursor`), and `log_epoch` alone and with a
second process writing at the same time.

Run: `.venv/bin/python benchmarks/bench_registry.py [--runs N]`; writes
`benchmarks/results/registry.json` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = pathlib.Path(__file__).resolve().parent
METRICS = {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75,
           "learning_rate": 0.001, "precision": 0.7, "recall": 0.7, "auc": 0.9}


def fill(reg, n_runs: int, epochs: int = 3, models: int = 20) -> None:
    versions = {m: reg.add_model_version(f"model{m}", f"input 784\ndense {m + 1} relu\n"
                                         "dense 10 softmax", 1000 + m) for m in range(models)}
    for i in range(n_runs):
        m = i % models
        rid = reg.start_run(model=f"model{m}", version_id=versions[m], options={"epochs": epochs},
                            device="cpu", backend="tensorflow", epochs_planned=epochs)
        for e in range(epochs):
            reg.log_epoch(rid, e + 1, {k: v + e * 0.01 + i * 1e-6 for k, v in METRICS.items()})
        reg.end_run(rid, "completed" if i % 7 else "stopped")


def timed(fn, repeat: int):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def stats_ms(times):
    times = sorted(times)
    return {"mean_ms": round(statistics.fmean(times) * 1e3, 3),
            "median_ms": round(statistics.median(times) * 1e3, 3),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3, 3),
            "max_ms": round(times[-1] * 1e3, 3), "n": len(times)}


CONCURRENT = textwrap.dedent("""
    import sys, time
    from nbkeras.registry import Registry
    reg = Registry(sys.argv[1])
    rid = reg.start_run(model="other", version_id=None, options={}, device="cpu",
                        backend="tensorflow", epochs_planned=0)
    end, e = time.time() + float(sys.argv[2]), 0
    while time.time() < end:
        reg.log_epoch(rid, e, {"loss": 1.0, "accuracy": 0.5}); e += 1
        time.sleep(0.002)
    reg.end_run(rid, "completed")
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1000, help="epochs timed for log_epoch")
    opts = parser.parse_args()

    home = tempfile.mkdtemp(prefix="nbkeras-bench-")
    os.environ["NBKERAS_HOME"] = home
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell
    from nbkeras.registry import get_registry

    reg = get_registry()
    t = time.perf_counter()
    fill(reg, opts.runs)
    fill_s = time.perf_counter() - t
    results = {"runs": opts.runs, "fill_seconds": round(fill_s, 2),
               "db_bytes": sum(p.stat().st_size for p in pathlib.Path(home).iterdir()),
               "python": platform.python_version(), "machine": platform.machine(),
               "cpus": os.cpu_count(), "load_average_before": os.getloadavg()}

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbkeras")

    def models_display(line=""):
        view = ip.run_line_magic("models", line)
        view._repr_html_()
        repr(view)

    models_display()  # warm imports
    results["%models"] = stats_ms(timed(models_display, 20))
    results["%models NAME"] = stats_ms(timed(lambda: models_display("model3"), 20))
    results["run_summaries() all"] = stats_ms(timed(reg.run_summaries, 10))
    cur = reg.cursor()
    results["cursor() + run_summaries(since)"] = stats_ms(
        timed(lambda: reg.run_summaries(since=reg.cursor() - 1 if cur else 0), 200))

    rid = reg.start_run(model="bench", version_id=None, options={}, device="cpu",
                        backend="tensorflow", epochs_planned=opts.epochs)
    epoch = iter(range(10 ** 9))
    log = lambda: reg.log_epoch(rid, next(epoch), METRICS)
    results["log_epoch"] = stats_ms(timed(log, opts.epochs))
    other = subprocess.Popen([sys.executable, "-c", CONCURRENT, home, "30"])
    time.sleep(1.0)
    results["log_epoch, second process writing"] = stats_ms(timed(log, opts.epochs))
    other.kill()
    other.wait()
    reg.end_run(rid, "completed")
    results["targets"] = {"%models_s": 0.3, "per_epoch_ms": 5}
    results["met"] = {"%models": results["%models"]["max_ms"] < 300,
                      "per_epoch": results["log_epoch"]["mean_ms"] < 5}

    out = HERE / "results" / "registry.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"registry with {opts.runs:,} runs ({results['db_bytes'] / 1e6:.1f} MB, "
          f"filled in {fill_s:.1f} s)")
    print(f"{'operation':40} {'mean ms':>10} {'median ms':>10} {'p99 ms':>10} {'max ms':>10} "
          f"{'n':>6}")
    for key, val in results.items():
        if isinstance(val, dict) and "median_ms" in val:
            print(f"{key:40} {val['mean_ms']:10.2f} {val['median_ms']:10.2f} {val['p99_ms']:10.2f} "
                  f"{val['max_ms']:10.2f} {val['n']:6d}")
    print(f"targets: %models < 300 ms (max): {results['met']['%models']}; "
          f"log_epoch < 5 ms (mean): {results['met']['per_epoch']}; load average before "
          f"{results['load_average_before'][0]:.1f} on {results['cpus']} CPUs  -> {out}")


if __name__ == "__main__":
    main()
