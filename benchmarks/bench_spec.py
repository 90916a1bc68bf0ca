"""How fast `%load_ext nbkeras` is, and how fast a big spec parses and builds.

Run: `python benchmarks/bench_spec.py [--runs N]`. Prints a small table and
writes `benchmarks/results/spec.json`. `%load_ext` is timed in fresh
subprocesses (it must not import Keras); the 200-statement spec is timed
after Keras is imported, so the figures are the cost of the spec stages
themselves (the first `%%model` of a session also pays the Keras import,
reported on its own line).
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
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t = time.perf_counter()
ip.run_line_magic("load_ext", "nbkeras")
print(time.perf_counter() - t)
"""
IMPORT_KERAS = "import time; t = time.perf_counter(); import keras; print(time.perf_counter() - t)"


def big_spec(statements: int = 200) -> str:
    """An input and `statements - 1` layer/setting lines of a plain MLP with skips."""
    lines = ["x = input 32"]
    cycle = ["h = dense 32 relu", "h = layernorm", "h = dropout 0.1", "x = add (x, h)"]
    while len(lines) < statements - 3:
        lines.append(cycle[(len(lines) - 1) % len(cycle)])
    lines += ["out = dense 10 softmax (x)", "optimizer adam lr=1e-3",
              "loss sparse_categorical_crossentropy"]
    return "\n".join(lines[:statements]) + "\n"


def in_subprocess(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    load_ext = [in_subprocess(LOAD_EXT) for _ in range(args.runs)]
    keras_import = in_subprocess(IMPORT_KERAS)

    import keras  # noqa: F401 - timed above in a fresh process
    from nbkeras.modelbuild.build import build
    from nbkeras.speclang.parse import parse

    text = big_spec()
    statements = len(text.splitlines())
    build(parse(text), "warmup")  # first build fills Keras' and our lookup tables
    parse_times, build_times = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        spec = parse(text)
        t1 = time.perf_counter()
        result = build(spec, "bench")
        t2 = time.perf_counter()
        parse_times.append(t1 - t)
        build_times.append(t2 - t1)
    figures = {
        "load_ext_s": statistics.median(load_ext),
        "keras_import_s": keras_import,
        "spec_statements": statements,
        "spec_layers": len(result.model.layers),
        "parse_s": statistics.median(parse_times),
        "build_s": statistics.median(build_times),
        "parse_build_s": statistics.median(p + b for p, b in zip(parse_times, build_times)),
        "runs": args.runs,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    rows = [("%load_ext nbkeras (fresh process)", figures["load_ext_s"]),
            ("import keras (first %%model pays it)", figures["keras_import_s"]),
            (f"parse, {statements}-statement spec", figures["parse_s"]),
            (f"build + compile, {figures['spec_layers']} layers", figures["build_s"]),
            ("parse + build + compile", figures["parse_build_s"])]
    width = max(len(r[0]) for r in rows)
    print(f"{'what'.ljust(width)}  median (s)")
    for what, secs in rows:
        print(f"{what.ljust(width)}  {secs:10.4f}")
    out = pathlib.Path(__file__).parent / "results" / "spec.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
