"""Device telemetry and out-of-memory help, without a GPU.

The backends' memory counters are replaced by a fake GPU (the functions
`nbkeras.train.telemetry` reads them with), NVML by a fake `pynvml`
module, and out of memory by a layer that raises what XLA raises
(`RESOURCE_EXHAUSTED: Out of memory ...`) while the train step is traced.
Training itself is real (TensorFlow, on the CPU).
"""

import os
import subprocess
import sys
import types

import pytest

from nbkeras.errors import UsageError
from nbkeras.train import telemetry
from nbkeras.view.progress import RunState
from nbkeras.view.record import panel_html

GB = 1_000_000_000


def test_bytes_and_the_line():
    assert telemetry.fmt_bytes(3.2 * GB) == "3.2 GB"
    assert telemetry.fmt_bytes(512e6) == "512 MB"
    assert telemetry.fmt_bytes(141 * GB) == "141 GB"
    assert telemetry.fmt_bytes(12) == "12 B"
    reading = telemetry.Reading(in_use=int(3.2 * GB), peak=int(4.1 * GB), total=80 * GB,
                                utilisation=87.0)
    assert reading.line() == "memory 3.2 GB · peak 4.1 GB of 80.0 GB · GPU 87%"
    assert telemetry.Reading(GB, 2 * GB, devices=4).line() == \
        "memory 1.0 GB · peak 2.0 GB per device"


@pytest.mark.parametrize("args, message", [
    ((512, 15.2 * GB, 16 * GB), "out of memory with batch size 512 (peak 15.2 GB of 16.0 GB): "
                                "try half, `-b 256`"),
    ((512, 15.2 * GB, None, 128), "out of memory with batch size 512 (peak 15.2 GB): batch size "
                                  "128 completed before, try `-b 128`"),
    ((256, None), "out of memory with batch size 256 (peak memory not measured on this device): "
                  "try half, `-b 128`"),
    ((24, 9 * GB, None, None, 8), "out of memory with batch size 24 (peak 9.0 GB): try half, "
                                  "`-b 8`"),          # half rounded down to the devices
    ((1, 9 * GB), "out of memory with batch size 1 (peak 9.0 GB): even the smallest batch does "
                  "not fit; try --mixed-precision or a smaller model"),
    ((None, 9 * GB), "out of memory (peak 9.0 GB): try a smaller batch"),
])
def test_the_out_of_memory_message(args, message):
    assert telemetry.oom_message(*args) == message


def test_the_panel_shows_memory_and_the_batch_split():
    state = RunState(name="m", epochs=2, steps=4, device="4 × NVIDIA H100 · data parallel",
                     telemetry="memory 3.2 GB · peak 4.1 GB", batch_split="batch 256 = 4 × 64")
    html = panel_html(state)
    assert "4 × NVIDIA H100 · data parallel · <span class='nbkeras-telemetry'>memory 3.2 GB · " \
           "peak 4.1 GB</span>" in html
    assert "batch 256 = 4 × 64" in html
    state.finish("completed")
    assert "batch 256 = 4 × 64" in panel_html(state)  # the record keeps it
    assert "nbkeras-telemetry" not in panel_html(RunState())  # a CPU shows none


class FakeGPU:
    """One GPU whose memory in use grows by 1 GB per read from the run's start
    (when the peak is reset); its peak is 1 GB above."""

    def __init__(self):
        self.reads, self.resets = 0, 0

    def raw(self, backend, device):
        assert device == "gpu:0"
        self.reads += 1
        return self.reads * GB, (self.reads + 1) * GB, None

    def reset(self, backend, device):
        self.resets += 1
        self.reads = 0


@pytest.fixture
def gpu(monkeypatch):
    fake = FakeGPU()
    monkeypatch.setattr(telemetry, "default_accelerators", lambda backend: ["gpu:0"])
    monkeypatch.setattr(telemetry, "_raw", fake.raw)
    monkeypatch.setattr(telemetry, "_reset", fake.reset)
    nvml = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: ("handle", i),
        nvmlDeviceGetHandleByUUID=lambda u: ("handle", u),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=87),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=16 * GB))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(telemetry, "_NVML", {})
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


@pytest.fixture
def seen(monkeypatch):
    """The telemetry each epoch draw of the view saw, and the run's last state."""
    from nbkeras.view import text
    kept = {"epochs": [], "state": None}
    draw = text.TextView.epoch

    def epoch(self, state):
        kept["epochs"].append(state.telemetry)
        kept["state"] = state
        return draw(self, state)

    monkeypatch.setattr(text.TextView, "epoch", epoch)
    return kept


@pytest.fixture
def model(run):
    run("""
import numpy as np, keras
BOOM = []
class Boom(keras.layers.Layer):
    '''Raises what XLA raises when a step does not fit, while BOOM holds something.'''
    def call(self, x):
        if BOOM:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
                               "4.00GiB")
        return x
x = np.random.default_rng(0).normal(size=(96, 4)).astype('float32'); y = x.sum(1)
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), Boom(), keras.layers.Dense(1)])
m.compile('adam', 'mse')
""")
    return run


def test_memory_is_shown_at_epoch_ends_and_its_peak_recorded(model, gpu, seen):
    import nbkeras
    model("%fit m x y -e 2 -b 32")
    # read at each epoch end, before the view draws the epoch
    assert seen["epochs"] == ["memory 1.0 GB · peak 2.0 GB of 16.0 GB · GPU 87%",
                              "memory 2.0 GB · peak 3.0 GB of 16.0 GB · GPU 87%"]
    assert gpu.resets == 1                                # the peak counts from this run
    header = panel_html(seen["state"])
    assert "peak" in header and "GPU 87%" in header
    run = nbkeras.runs(model="m")[0]
    assert run["status"] == "completed"
    assert run["options"]["peak_memory"] == 4 * GB        # the last read, at the run's end
    assert run["options"]["batch_size"] == 32             # the other options kept


def test_a_cpu_shows_no_memory_and_records_no_peak(model, seen):
    import nbkeras
    model("%fit m x y -e 1 -b 32")
    assert seen["epochs"] == [""]
    assert "peak_memory" not in nbkeras.runs(model="m")[0]["options"]


def test_out_of_memory_fails_the_run_with_one_message_and_the_kernel_goes_on(
        model, gpu, ip, monkeypatch):
    import nbkeras
    released = []
    real_release = telemetry.release_memory
    monkeypatch.setattr(telemetry, "release_memory",
                        lambda m=None: (released.append(m), real_release(m)))
    model("%fit m x y -e 1 -b 16 --quiet")                # this batch size fits
    model("BOOM.append(1)")
    with pytest.raises(UsageError) as err:
        model("%fit m x y -e 1 -b 64 --quiet")
    message = str(err.value)
    assert message == ("out of memory with batch size 64 (peak 2.0 GB of 16.0 GB): batch size 16 "
                       "completed before, try `-b 16`")
    run = nbkeras.runs(model="m")[0]
    assert run["status"] == "failed" and run["error"] == message
    assert released == [ip.user_ns["m"]]                   # the failed step's memory let go

    with pytest.raises(UsageError) as err:                 # no smaller batch fit: half
        model("%fit m x y -e 1 -b 8 --quiet")
    assert str(err.value).endswith("try half, `-b 4`")

    assert model("1 + 1") == 2                             # the kernel goes on
    model("BOOM.clear()")
    h = model("%fit m x y -e 1 -b 32 --quiet")             # and so does training
    assert len(h.history["loss"]) == 1
    assert nbkeras.runs(model="m")[0]["status"] == "completed"


def test_out_of_memory_is_recognised_on_every_backend():
    from nbkeras.train.session import is_oom
    assert is_oom(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
    assert is_oom(type("ResourceExhaustedError", (Exception,), {})("OOM when allocating"))
    assert is_oom(type("OutOfMemoryError", (Exception,), {})("CUDA out of memory. Tried ..."))
    assert not is_oom(ValueError("shapes (3,) and (4,) are incompatible"))


def test_jax_preallocation_is_said_once_when_a_gpu_would_be_taken(monkeypatch):
    gpu = types.SimpleNamespace(platform="gpu")
    for name in ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_ALLOCATOR",
                 "XLA_PYTHON_CLIENT_MEM_FRACTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(telemetry, "_SAID", set())
    cpu = types.SimpleNamespace(platform="cpu")
    assert telemetry.preallocation_note("jax", [cpu]) is None          # no GPU: no matter
    assert telemetry.preallocation_note("tensorflow", [gpu]) is None   # memory growth there
    note = telemetry.preallocation_note("jax", [gpu])
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in note and "75%" in note
    assert telemetry.preallocation_note("jax", [gpu]) is None          # once
    monkeypatch.setattr(telemetry, "_SAID", set())
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    assert telemetry.preallocation_note("jax", [gpu]) is None          # already set


def test_jax_counts_its_peak_since_start_so_an_older_peak_is_not_this_runs(monkeypatch):
    values = iter([(1 * GB, 9 * GB, 16 * GB),     # start: an earlier run peaked at 9 GB
                   (2 * GB, 9 * GB, 16 * GB),     # this run stays below it
                   (3 * GB, 12 * GB, 16 * GB)])   # and then goes above
    monkeypatch.setattr(telemetry, "_raw", lambda backend, device: next(values))
    watch = telemetry.DeviceWatch("jax", ["gpu:0"])
    watch.start()
    assert watch.read().peak == 2 * GB            # the most in use seen: a lower bound
    assert watch.read().peak == 12 * GB


def test_the_gpu_check_runs_without_a_gpu(tmp_path):
    """`benchmarks/gpu_check.py --quick` passes on a CPU, saying "no GPU"."""
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_check.py")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", NBKERAS_HOME=str(tmp_path),
               TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, script, "--quick", "--json", str(tmp_path / "g.json")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    import json
    out = json.loads((tmp_path / "g.json").read_text())
    assert out["backend"] == "jax" and out["gpus"] == "no GPU"
    assert out["panel_rate"]["device_line"] == "CPU · mixed precision off"
    assert all(v > 0 for v in out["panel_rate"]["steps_per_s"].values())
    assert out["mixed_precision"] == "no GPU" and out["peak_memory"] == "no GPU"
    assert out["devices_all"]["all"]["final_loss"] == pytest.approx(
        out["devices_all"]["one"]["final_loss"], rel=1e-3)
