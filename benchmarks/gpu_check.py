"""One command to check nbkeras on a machine with a GPU (Keras on JAX).

    KERAS_BACKEND=jax python benchmarks/gpu_check.py            # about a minute on a GPU
    KERAS_BACKEND=jax python benchmarks/gpu_check.py --quick    # seconds; also on a CPU

TensorFlow is too large to carry to a GPU machine, so this runs on the JAX
backend (it sets `KERAS_BACKEND=jax` when unset; any backend works). It
drives the real magics in an IPython shell whose display publisher swallows
the panel's messages (as a kernel sends them to its socket: the panel's
HTML and SVG are built and formatted for every update), and prints:

- the device line the `%fit` panel shows;
- steps per second of a small MLP (1,000+ steps a second on a GPU) with
  `model.fit(verbose=0)`, with `%fit --quiet` (no panel) and with `%fit`
  and its live panel, each from the second half of its epochs (no
  compiling), and the panel's ratio to `model.fit`;
- the speed-up of `--mixed-precision` on a matmul-heavy MLP (GPU only);
- the run's peak memory as the panel and the registry show it, against
  JAX's own `peak_bytes_in_use` (GPU only);
- `%fit --devices all` over every GPU: its device line, batch split, steps
  per second and final loss against one device (GPU only: on a CPU the
  path still runs, over the CPU devices there are).

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


def check_panel_rate(shell, sessions, quick):
    """Steps per second with model.fit(verbose=0) and with %fit's live panel."""
    import keras
    import numpy as np
    batch, steps, epochs = (32, 60, 3) if quick else (32, 400, 8)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, 32)).astype("float32")
    y = rng.integers(0, 10, size=batch * steps)
    model = _mlp(keras, 64, 2)
    shell.user_ns.update(m=model, x=x, y=y)
    model.fit(x[:batch * 4], y[:batch * 4], batch_size=batch, epochs=1, verbose=0)  # compile
    timer = _epoch_timer()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
    base = _steady_rate(timer.times, steps)
    shell.run_line_magic("fit", f"m x y -e {epochs} -b {batch} --quiet")
    quiet = _steady_rate(sessions[-1].state.epoch_times, steps)
    shell.run_line_magic("fit", f"m x y -e {epochs} -b {batch}")
    state = sessions[-1].state
    panel = _steady_rate(state.epoch_times, steps)
    return {"device_line": state.device, "steps_per_epoch": steps, "batch_size": batch,
            "steps_per_s_fit_verbose0": base, "steps_per_s_fit_magic_quiet": quiet,
            "steps_per_s_fit_magic_panel": panel,
            "panel_over_baseline": panel / base if base and panel else None,
            "over_1000_steps_per_s": bool(base and base >= 1000)}


def check_mixed_precision(shell, sessions, quick):
    """%fit with and without --mixed-precision on a matmul-heavy MLP (GPU)."""
    if not _gpus():
        return NO_GPU
    import keras
    import numpy as np
    batch, steps, epochs = (256, 20, 3) if quick else (512, 50, 6)
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
              ("--devices all", check_devices_all)]
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
