"""One command to check nbkeras on a machine with a GPU (Keras on JAX).

    KERAS_BACKEND=jax python benchmarks/gpu_check.py            # about a minute on a GPU
    KERAS_BACKEND=jax python benchmarks/gpu_check.py --quick    # seconds; also on a CPU

TensorFlow is too large to carry to a GPU machine, so this runs on the JAX
backend (it sets `KERAS_BACKEND=jax` when unset; any backend works). It
drives the real magics in an IPython shell whose display publisher swallows
the panel's messages (as a kernel sends them to its socket: the panel's
HTML and SVG are built and formatted for every update), and prints:

- the device line the `%fit` panel shows;
- steps per second of the MLP 784-256-256-10 at batch 32 (3 alternated
  rounds, each run's rate from the second half of its epochs): plain
  `model.fit(verbose=0)`, `fit` with the best of a few fixed
  `steps_per_execution`, `%fit` by default (automatic steps per call,
  panel live), `%fit --steps-per-execution 1` and `%fit --quiet`, each
  against plain `fit`;
- the speed-up of `--mixed-precision` on a matmul-bound MLP (4096 wide,
  batch 1,024; GPU only);
- the run's peak memory as the panel and the registry show it, against
  JAX's own `peak_bytes_in_use` (GPU only);
- `%fit --devices all` over every GPU: its device line, batch split, steps
  per second and final loss against one device (GPU only: on a CPU the
  path still runs, over the CPU devices there are);
- out of memory on JAX: a `%fit` too large for the GPU ends with nbkeras'
  message, then the model's weights are readable and its next `%fit`
  trains (GPU only).

Without a GPU every GPU-only figure says "no GPU"; the exit status is 0
unless a check raised. `--json PATH` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

NO_GPU = "no GPU"


def _shell():
    """An IPython shell with nbkeras loaded, the HTML panel forced, and a
    display publisher that takes every message and drops it."""
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Sink(DisplayPublisher):
        messages = 0
        bytes = 0

        def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                    **kwargs):
            Sink.messages += 1
            Sink.bytes += sum(len(str(v)) for v in data.values())

    shell = InteractiveShell.instance()
    shell.display_pub = Sink(shell=shell)
    shell.run_line_magic("load_ext", "nbkeras")
    shell.run_line_magic("config", "NbkerasMagics.display_mode = 'html'")
    return shell, Sink


def _sessions():
    """Wrap `FitSession.train` to keep each run's session (its `RunState`)."""
    from nbkeras.train import session as session_mod
    kept = []
    train = session_mod.FitSession.train

    def spy(self, callbacks):
        kept.append(self)
        return train(self, callbacks)

    session_mod.FitSession.train = spy
    return kept


def _steady_rate(epoch_times, steps):
    """Steps per second: the median epoch of the run's second half (the
    first epoch compiles, and JAX may retrace once in the second)."""
    times = epoch_times[-max(1, len(epoch_times) // 2):]
    return steps / statistics.median(times) if times else None


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t)

    return EpochTimer()


def _gpus():
    import jax
    try:
        return [d for d in jax.devices() if d.platform != "cpu"]
    except Exception:  # noqa: BLE001
        return []


def _mlp(keras, width, depth, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((32,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers += [keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _mlp784(keras, spe=1, seed=0):
    """The issue's MLP: 784-256-256-10."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=spe)
    return model


def step_rates(shell, sessions, make, x, y, batch, epochs, rounds=3, fixed=(8, 32, 128)):
    """Steps per second of one workload, each way of training it, in `rounds`
    alternated rounds (median of the rounds; each run's rate from the second
    half of its epochs, so compiling and the probe are left out).

    Rows: `model.fit(verbose=0)`; `model.fit(verbose=0, steps_per_execution=K)`
    for each K of `fixed` (the best is reported); `%fit` (the default,
    automatic steps per call, panel live); `%fit --steps-per-execution 1`
    (panel live); `%fit --quiet`. Returns the figures and each row's ratio
    to `model.fit(verbose=0)`.
    """
    steps = -(-len(x) // batch)
    runs = {"fit_verbose0": [], "fit_magic_default": [], "fit_magic_spe1": [],
            "fit_magic_quiet": []}
    runs.update({f"fit_spe{k}": [] for k in fixed})
    chosen = []
    shell.user_ns.update(x=x, y=y)

    def plain(spe):
        model = make(spe)
        timer = _epoch_timer()
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
        return _steady_rate(timer.times, steps)

    def magic(flags):
        shell.user_ns["m"] = make()
        shell.run_line_magic("fit", f"m x y -e {epochs} -b {batch} {flags}")
        state = sessions[-1].state
        return _steady_rate(state.epoch_times, steps), state

    for _ in range(rounds):
        runs["fit_verbose0"].append(plain(1))
        for k in fixed:
            runs[f"fit_spe{k}"].append(plain(k))
        rate, state = magic("")
        runs["fit_magic_default"].append(rate)
        chosen.append(state.step_size)
        runs["fit_magic_spe1"].append(magic("--steps-per-execution 1")[0])
        runs["fit_magic_quiet"].append(magic("--quiet")[0])
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    best = max(fixed, key=lambda k: med[f"fit_spe{k}"])
    base = med["fit_verbose0"]
    out = {"batch_size": batch, "steps_per_epoch": steps, "epochs": epochs, "rounds": rounds,
           "device_line": state.device, "steps_per_call_chosen": chosen,
           "steps_per_s": {"fit_verbose0": base, f"fit_spe{best}_best_fixed": med[f"fit_spe{best}"],
                           "fit_magic_default": med["fit_magic_default"],
                           "fit_magic_spe1": med["fit_magic_spe1"],
                           "fit_magic_quiet": med["fit_magic_quiet"]},
           "fixed_tried": {k: med[f"fit_spe{k}"] for k in fixed},
           "all_rounds": runs}
    out["vs_fit_verbose0"] = {k: (v / base if base and v else None)
                              for k, v in out["steps_per_s"].items()}
    return out


def check_panel_rate(shell, sessions, quick):
    """Steps per second of the MLP 784-256-256-10 at batch 32: plain `fit`,
    `fit` at the best fixed steps per execution, `%fit` (default, automatic
    steps per call), `%fit --steps-per-execution 1` and `%fit --quiet`."""
    import keras
    import numpy as np
    batch, steps, epochs, rounds = (32, 60, 3, 1) if quick else (32, 400, 4, 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, 784)).astype("float32")
    y = rng.integers(0, 10, size=batch * steps)
    out = step_rates(shell, sessions, lambda spe=1: _mlp784(keras, spe), x, y, batch, epochs, rounds,
                     fixed=(32,) if quick else (8, 32, 128))
    out["targets"] = {"default_at_least_1.5x": (out["vs_fit_verbose0"]["fit_magic_default"] or 0)
                      >= 1.5,
                      "spe1_at_least_0.98x": (out["vs_fit_verbose0"]["fit_magic_spe1"] or 0)
                      >= 0.98}
    return out


def check_mixed_precision(shell, sessions, quick):
    """%fit with and without --mixed-precision on a matmul-bound MLP (GPU):
    4096-wide layers at batch 1,024, where the bfloat16 units matter."""
    if not _gpus():
        return NO_GPU
    import keras
    import numpy as np
    batch, steps, epochs = (256, 20, 3) if quick else (1024, 30, 4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, 32)).astype("float32")
    y = rng.integers(0, 10, size=batch * steps)
    rates = {}
    for label, flag in (("float32", ""), ("mixed", "--mixed-precision")):
        shell.user_ns.update(big=_mlp(keras, 4096, 4), x=x, y=y)
        shell.run_line_magic("fit", f"big x y -e {epochs} -b {batch} --quiet {flag}")
        rates[label] = _steady_rate(sessions[-1].state.epoch_times, steps)
    return {"steps_per_s_float32": rates["float32"], "steps_per_s_mixed": rates["mixed"],
            "speed_up": (rates["mixed"] / rates["float32"]
                         if rates["mixed"] and rates["float32"] else None),
            "device_line": sessions[-1].state.device}


def check_peak_memory(shell, sessions, quick):
    """The peak the panel and the registry show, against JAX's own figure."""
    gpus = _gpus()
    if not gpus:
        return NO_GPU
    import keras
    import numpy as np

    import nbkeras
    batch, steps = (256, 10) if quick else (1024, 20)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch * steps, 32)).astype("float32")
    y = rng.integers(0, 10, size=batch * steps)
    shell.user_ns.update(mem=_mlp(keras, 2048, 3), x=x, y=y)
    shell.run_line_magic("fit", f"mem x y -e 2 -b {batch}")
    state = sessions[-1].state
    run = nbkeras.runs(model="mem")[0]
    own = gpus[0].memory_stats() or {}
    return {"panel": state.telemetry, "registry_peak_memory": run["options"].get("peak_memory"),
            "jax_peak_bytes_in_use": own.get("peak_bytes_in_use"),
            "jax_bytes_limit": own.get("bytes_limit")}


def check_oom_recovery(shell, sessions, quick):
    """A %fit that runs out of GPU memory (a 32768-wide layer at a batch of
    1.2 million: ~160 GB of activations) ends with nbkeras' message; then the
    model's weights are readable and its next %fit trains."""
    if not _gpus():
        return NO_GPU
    import keras
    import numpy as np
    n = 1_200_000
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32768, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 784)).astype("float32")
    y = rng.integers(0, 10, size=n)
    shell.user_ns.update(oom=model, xo=x, yo=y)
    out = {}
    try:
        shell.run_line_magic("fit", f"oom xo yo -e 1 -b {n} --quiet")
        out["message"] = "no error: it did not run out of memory"
    except Exception as exc:  # noqa: BLE001 - the message is the figure
        out["message"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    out["nbkeras_message"] = out["message"].startswith("UsageError: out of memory")
    model = shell.user_ns["oom"]
    try:
        weights = [np.asarray(v) for v in model.get_weights()]
        out["weights_readable"] = all(np.isfinite(w).all() for w in weights)
    except Exception as exc:  # noqa: BLE001
        out["weights_readable"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    try:
        h = shell.run_line_magic("fit", "oom xo[:8192] yo[:8192] -e 1 -b 256 --quiet")
        out["next_fit_loss"] = h.history["loss"][-1]
    except Exception as exc:  # noqa: BLE001
        out["next_fit_loss"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    del shell.user_ns["xo"], shell.user_ns["yo"]
    return out


def check_devices_all(shell, sessions, quick):
    """--devices all against one device: device line, batch split, rate, loss."""
    import keras
    import numpy as np
    gpus = _gpus()
    n = len(keras.distribution.list_devices())
    batch = 64 * n
    steps, epochs = (10, 3) if quick else (100, 6)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(batch * steps, 32)).astype("float32")
    y = rng.integers(0, 10, size=batch * steps)
    out = {}
    for label, flag in (("one", ""), ("all", "--devices all")):
        shell.user_ns.update(**{f"d_{label}": _mlp(keras, 256, 2, seed=3)}, x=x, y=y)
        shell.run_line_magic("fit", f"d_{label} x y -e {epochs} -b {batch} --seed 4 --quiet "
                                    f"{flag}")
        state = sessions[-1].state
        out[label] = {"device_line": state.device, "batch_split": state.batch_split,
                      "steps_per_s": _steady_rate(state.epoch_times, steps),
                      "final_loss": state.history["loss"][-1]}
    out["devices"] = n
    if not gpus:
        out["note"] = f"{NO_GPU}: ran over the {n} CPU device(s) to check the path"
    return out


def _fmt(value):
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.0f}"
    return str(value)


def _print(name, result):
    print(f"\n{name}")
    if not isinstance(result, dict):
        print(f"  {result}")
        return
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"  {key}: " + " · ".join(f"{k} {_fmt(v)}" for k, v in value.items()))
        else:
            print(f"  {key}: {_fmt(value)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: tiny runs")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("NBKERAS_HOME", tempfile.mkdtemp(prefix="nbkeras-gpu-check-"))

    started = time.perf_counter()
    shell, sink = _shell()
    import keras
    print(f"(start-up {time.perf_counter() - started:.1f}s)")
    sessions = _sessions()
    gpus = _gpus() if keras.backend.backend() == "jax" else []
    results = {"backend": keras.backend.backend(),
               "gpus": [str(g.device_kind) for g in gpus] or NO_GPU,
               "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")}
    checks = [("panel: steps per second", check_panel_rate),
              ("mixed precision", check_mixed_precision),
              ("peak memory", check_peak_memory),
              ("--devices all", check_devices_all),
              ("OOM recovery on JAX", check_oom_recovery)]
    print(f"nbkeras GPU check · backend {results['backend']} · GPUs: {results['gpus']}")
    failed = False
    for title, check in checks:
        t = time.perf_counter()
        try:
            result = check(shell, sessions, args.quick)
        except Exception as exc:  # noqa: BLE001 - report it, run the other checks
            failed = True
            result = f"error: {type(exc).__name__}: {exc}"
        results[check.__name__[6:]] = result
        _print(f"{title} ({time.perf_counter() - t:.1f}s)", result)
    results["panel_messages"] = sink.messages
    results["seconds"] = time.perf_counter() - started
    print(f"\n{sink.messages} panel messages · {results['seconds']:.1f}s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
