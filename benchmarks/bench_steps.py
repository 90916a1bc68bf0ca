"""Automatic steps per execution on the CPU's fast-step workload.

    python benchmarks/bench_steps.py                    # TensorFlow (the default backend)
    KERAS_BACKEND=jax python benchmarks/bench_steps.py

Digits (1,797 samples), batch 8 (225 steps an epoch), an MLP 64-32-10: a
step costs microseconds of arithmetic, so `model.fit` is bound by Keras'
per-step Python loop on a CPU as a small model is on a GPU. Rows (3
alternated rounds, the median; each run's rate from the second half of its
epochs): `model.fit(verbose=0)`, `fit` with the best fixed
`steps_per_execution`, `%fit` by default with its HTML panel live (the
display messages built and formatted as a kernel sends them), `%fit
--steps-per-execution 1` and `%fit --quiet`. Target: `%fit` default at
least 1.10x `model.fit(verbose=0)`. Writes benchmarks/results/steps.json.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gpu_check import _sessions, _shell, step_rates  # noqa: E402


def main() -> int:
    import tempfile

    import keras
    import numpy as np
    from sklearn.datasets import load_digits
    os.environ.setdefault("NBKERAS_HOME", tempfile.mkdtemp(prefix="nbkeras-bench-steps-"))
    shell, sink = _shell()
    sessions = _sessions()
    d = load_digits()
    x, y = (d.data / 16).astype("float32"), d.target

    def make(spe=1):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
                      steps_per_execution=spe)
        return model

    started = time.perf_counter()
    out = step_rates(shell, sessions, make, x, y, batch=8, epochs=6, rounds=3, fixed=(8, 32, 128))
    out.update(backend=keras.backend.backend(), workload="digits, batch 8, MLP 64-32-10",
               panel_messages=sink.messages, seconds=time.perf_counter() - started,
               target_default_at_least_1_10x=out["vs_fit_verbose0"]["fit_magic_default"] >= 1.10)
    for key, value in out["steps_per_s"].items():
        print(f"{key:28s} {value:8.0f} steps/s  {out['vs_fit_verbose0'][key]:.2f}x")
    print("steps per call chosen:", out["steps_per_call_chosen"])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                        f"steps{'' if out['backend'] == 'tensorflow' else '_' + out['backend']}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
