"""What `%fit --background` costs and gives back, measured in a real kernel.

Starts an ipykernel (as JupyterLab does) and, on the same model and data
(digits, an MLP, batch 16, 12 epochs, with the live panel as a user sees
it), measures:

- how long `job = %fit ... --background` takes to return (the kernel's own
  clock around the line);
- how long a trivial cell takes while the run trains, from the client's
  execute_request to its execute_reply (what a user waits for), against
  the median time of one training step;
- the training speed (steps a second, from the first step to the last
  epoch end, compile excluded) of the same run in the foreground and in
  the background, side by side in alternating order, several rounds.

Usage:
    python benchmarks/bench_background.py           # 5 rounds (a few minutes)
    python benchmarks/bench_background.py --quick   # a smoke run
Writes `benchmarks/results/background.json` and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

HERE = Path(__file__).resolve().parent

SETUP = """\
import os, time, json, numpy as np, keras
%load_ext nbkeras
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data / 16).astype('float32'); y = d.target
def speed(state):
    steps = (state.epochs_recorded() - state.before) * state.steps
    return steps / (state.ended - state.first_step_at) if state.first_step_at else None
"""

MODEL = "%%model bench --seed 0\ninput 64\ndense 128 relu\ndense 64 relu\ndense 10 softmax"

FOREGROUND = """\
import nbkeras.view.progress as _p
_states = []
_orig = _p.RunState.finish
def _keep(self, *a, **k):
    _states.append(self); return _orig(self, *a, **k)
_p.RunState.finish = _keep
h = %fit bench x y -e {epochs} -b 16 --seed 0
_p.RunState.finish = _orig
print(json.dumps({{"speed": speed(_states[-1])}}))
"""

BACKGROUND_START = """\
t0 = time.perf_counter()
job = %fit bench x y -e {epochs} -b 16 --seed 0 --background
returned = time.perf_counter() - t0
"""

BACKGROUND_END = """\
job.wait()
state = job._state
step = (state.ended - state.first_step_at) / ((state.epochs_recorded() - state.before) * state.steps)
print(json.dumps({"returned": returned, "speed": speed(state), "step": step,
                  "status": job.status}))
"""


def execute(kc, code: str, timeout: float = 600):
    """Run `code`; return (seconds from request to reply, stdout text)."""
    t0 = time.perf_counter()
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    elapsed = time.perf_counter() - t0
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {code[:80]}")
    return elapsed, "".join(out)


def last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds, epochs = (1, 3) if args.quick else (args.rounds, 12)

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        execute(kc, SETUP)
        execute(kc, MODEL)
        execute(kc, FOREGROUND.format(epochs=2))  # warm-up: compile, imports
        fg, bg, returned, trivial, steps = [], [], [], [], []
        for r in range(rounds):
            order = ("fg", "bg") if r % 2 == 0 else ("bg", "fg")
            for kind in order:
                if kind == "fg":
                    _, out = execute(kc, FOREGROUND.format(epochs=epochs))
                    fg.append(last_json(out)["speed"])
                    continue
                execute(kc, BACKGROUND_START.format(epochs=epochs))
                time.sleep(1.0)  # past compiling: the run is taking steps
                for _ in range(10):  # a trivial cell, as a user runs one meanwhile
                    elapsed, _ = execute(kc, "1 + 1")
                    trivial.append(elapsed)
                    time.sleep(0.05)
                _, out = execute(kc, BACKGROUND_END)
                result = last_json(out)
                assert result["status"] == "completed", result
                returned.append(result["returned"])
                steps.append(result["step"])
        # the speed comparison: background rounds without the trivial cells
        bg_quiet = []
        for r in range(rounds):
            execute(kc, BACKGROUND_START.format(epochs=epochs))
            _, out = execute(kc, BACKGROUND_END)
            bg_quiet.append(last_json(out)["speed"])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    med = statistics.median
    figures = {
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "workload": f"digits MLP 64-128-64-10, batch 16, {epochs} epochs, {rounds} rounds",
        "return_s_median": med(returned), "return_s_max": max(returned),
        "trivial_cell_s_median": med(trivial), "trivial_cell_s_p90": sorted(trivial)[int(0.9 * (len(trivial) - 1))],
        "training_step_s_median": med(steps),
        "speed_foreground_steps_per_s": med(fg), "speed_background_steps_per_s": med(bg_quiet),
        "speed_ratio_background_over_foreground": med(bg_quiet) / med(fg),
    }
    print(json.dumps(figures, indent=1))
    if not args.quick:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "background.json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
