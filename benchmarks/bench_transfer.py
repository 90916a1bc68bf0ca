"""Transfer learning, measured: accuracy of a transferred model against the same
model trained from scratch on as few labelled images, and what freezing the
base saves per epoch.

Run: `python benchmarks/bench_transfer.py [--seeds N]`. Writes
`benchmarks/results/transfer.json` and prints two tables.

1. Accuracy (the tutorial `notebooks/transfer_learning.ipynb`'s data and
   models, through the magics): a network trained on the digits 0-4 is
   exported and becomes the frozen `base` of a model for 5-9; it trains on
   K images per class (20 epochs of head, then `--fine-tune all
   --fine-tune-epochs 10`), against the same layers from scratch for the
   same 30 epochs on the same images; both are tested on every other 5-9.
   Mean over seeds (the seed picks the K images and the initial weights).
2. Epoch time: `base mobilenet_v3_small weights=none` on 64x64x3 images
   (512 of them, batch 32), frozen against `trainable`, per epoch of `%fit`
   (the difference of a 3-epoch and a 1-epoch fit, so compiling and the
   first trace cancel out), median of 3.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SOURCE = """input 8x8x1
rescaling 0.00392157
conv 32 3x3 relu same
bn
maxpool
conv 64 3x3 relu same
feat = gap
dense 5 softmax"""
TRANSFER = """input 8x8x1
random_rotation 0.05
random_zoom 0.1
base "{encoder}" output=feat
dense 32 relu
dense 5 softmax
optimizer adam learning_rate=0.01"""
SCRATCH = """input 8x8x1
random_rotation 0.05
random_zoom 0.1
rescaling 0.00392157
conv 32 3x3 relu same
bn
maxpool
conv 64 3x3 relu same
gap
dense 32 relu
dense 5 softmax
optimizer adam learning_rate=0.01"""


def shell():
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbkeras")
    return ip


def accuracy(ip, seeds, per_class, folder: pathlib.Path):
    from sklearn.datasets import load_digits
    digits = load_digits()
    pixels = np.round(digits.images * 255 / 16).astype("float32")[..., None]
    first = digits.target < 5
    ip.user_ns.update(xs=pixels[first], ys=digits.target[first])
    ip.run_cell_magic("model", "source --seed 0", SOURCE)
    ip.run_line_magic("fit", "source xs ys --val-split 0.2 --seed 0 -e 30 --quiet")
    encoder = folder / "encoder.keras"
    ip.run_line_magic("export", f"source {encoder}")
    rows = []
    for k in per_class:
        got = {"transfer": [], "scratch": []}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            second = rng.permutation(np.flatnonzero(digits.target >= 5))
            few = rng.permutation(np.concatenate(
                [second[digits.target[second] == c][:k] for c in range(5, 10)]))  # Keras'
            # --val-split takes the last part: shuffled, as the folder reader does
            test = np.setdiff1d(second, few)
            ip.user_ns.update(xf=pixels[few], yf=digits.target[few] - 5, xt=pixels[test],
                              yt=digits.target[test] - 5)
            for kind, spec, extra in (("transfer", TRANSFER.format(encoder=encoder),
                                       "-e 20 --fine-tune all --fine-tune-epochs 10"),
                                      ("scratch", SCRATCH, "-e 30")):
                ip.run_cell_magic("model", f"m --seed {seed}", spec)
                ip.run_line_magic("fit", f"m xf yf --val-split 0.2 --seed {seed} {extra} --quiet")
                result = ip.run_line_magic("evaluate", "m xt yt --no-plots")
                got[kind].append(float(result["accuracy"]))
        rows.append({"per_class": k, "images": 5 * k,
                     "transfer": statistics.mean(got["transfer"]),
                     "scratch": statistics.mean(got["scratch"]),
                     "transfer_runs": got["transfer"], "scratch_runs": got["scratch"]})
        print(f"{k:>3} per class: transferred {rows[-1]['transfer']:.3f}, "
              f"from scratch {rows[-1]['scratch']:.3f}")
    return rows


def epoch_time(ip, flag: str, rounds: int = 3) -> float:
    rng = np.random.default_rng(0)
    ip.user_ns.update(xi=rng.uniform(0, 255, (512, 64, 64, 3)).astype("float32"),
                      yi=rng.integers(0, 2, 512))
    ip.run_cell_magic("model", "t --seed 0", "input 64x64x3\nbase mobilenet_v3_small "
                      f"weights=none {flag}\ngap\ndense 2 softmax\n"
                      "optimizer adam learning_rate=1e-5")
    ip.run_line_magic("fit", "t xi yi -e 1 -b 32 --quiet")  # compile and trace
    per_epoch = []
    for _ in range(rounds):
        t = time.perf_counter()
        ip.run_line_magic("fit", "t xi yi -e 1 -b 32 --quiet")
        one = time.perf_counter() - t
        t = time.perf_counter()
        ip.run_line_magic("fit", "t xi yi -e 3 -b 32 --quiet")
        three = time.perf_counter() - t
        per_epoch.append((three - one) / 2)
    return statistics.median(per_epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 20, 40])
    args = parser.parse_args()
    ip = shell()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("NBKERAS_HOME", tmp)
        rows = accuracy(ip, args.seeds, args.per_class, pathlib.Path(tmp))
        frozen = epoch_time(ip, "frozen")
        trainable = epoch_time(ip, "trainable")
    print(f"epoch of mobilenet_v3_small, 512 images 64x64x3: frozen {frozen:.2f} s, "
          f"trainable {trainable:.2f} s ({trainable / frozen:.2f}x)")
    import keras
    figures = {"accuracy": rows, "seeds": args.seeds,
               "epoch_frozen_s": frozen, "epoch_trainable_s": trainable,
               "keras": keras.__version__, "backend": keras.backend.backend(),
               "python": platform.python_version(),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    out = pathlib.Path(__file__).parent / "results" / "transfer.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
