"""nbkeras uses Keras-level code only, so a kernel on the JAX backend gets
the same magics: a spec-built model trains (in the foreground and with
`--background`), evaluates, predicts and is recorded (the GPU machine, when one is lent, runs Keras on JAX too)."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, numpy as np
    from IPython.core.interactiveshell import InteractiveShell
    from sklearn.datasets import load_digits
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbkeras")
    d = load_digits()
    ip.user_ns.update(x=(d.data / 16).astype("float32").reshape(-1, 8, 8, 1), y=d.target)
    ip.run_cell_magic("model", "cnn --seed 1",
                      "input 8x8x1\\nconv2d 8 3 relu same\\nmaxpool 2\\nflatten\\ndense 10 softmax")
    h = ip.run_line_magic("fit", "cnn x[:1000] y[:1000] --val x[1000:1400] y[1000:1400] -e 2 --quiet")
    r = ip.run_line_magic("evaluate", "cnn x[1400:] y[1400:] --no-plots")
    classes = ip.run_line_magic("predict", "cnn x[:4] --classes")
    job = ip.run_line_magic("fit", "cnn x[:1000] y[:1000] -e 2 --quiet --background")
    bg = job.result(timeout=240)
    import keras, nbkeras
    run = nbkeras.runs()[0]
    print(json.dumps({"backend": keras.backend.backend(), "epochs": len(h.history["loss"]),
                      "accuracy": r["accuracy"], "classes": [int(c) for c in classes],
                      "status": run["status"], "recorded": len(run["epochs"]),
                      "background": [job.status, len(bg.history["loss"])]}))
""")


def test_the_magics_run_on_the_jax_backend(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", NBKERAS_HOME=str(tmp_path), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax"
    assert out["epochs"] == 2 and out["recorded"] == 2 and out["status"] == "completed"
    assert out["accuracy"] > 0.3          # two epochs of a small CNN on digits learn something
    assert len(out["classes"]) == 4 and all(0 <= c <= 9 for c in out["classes"])
    assert out["background"] == ["completed", 2]  # %fit --background on JAX too
