"""Device memory and utilisation during a run, and help when memory runs out.

The panel shows the accelerator's memory in use and this run's peak
("memory 3.2 GB · peak 4.1 GB of 80 GB · GPU 87%"), read at epoch ends
only, where it costs nothing that matters, from each backend's own
counters: TensorFlow's `tf.config.experimental.get_memory_info`, JAX's
`device.memory_stats()`, torch's `torch.cuda.max_memory_allocated`; the
utilisation comes from the NVIDIA management library when it is
importable (`pip install "nbkeras[gpu]"`, i.e. `nvidia-ml-py`). On a CPU
there is nothing to show (the backends count no CPU memory), so nothing is.
The run's peak goes to the registry with the run's end.

JAX counts its peak since the process started and cannot reset it: a run
whose peak stays below an earlier run's reports the highest memory in use
seen at its epoch ends instead (a lower bound).

Out of memory ends a run as failed with one message naming the batch size
and the peak, and the batch size to try: the largest one that completed
on this model and device before, or half the current one.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import keras

_ACCELERATORS = ("gpu", "cuda", "rocm", "tpu")


def fmt_bytes(n: Optional[float]) -> str:
    """'3.2 GB', '512 MB', '1.0 KB'."""
    if n is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


@dataclass
class Reading:
    """One epoch end's figures, over the watched devices (the fullest one).

    Attributes:
        in_use: bytes in use now.
        peak: this run's peak bytes.
        total: bytes the device has (None when the backend does not say).
        utilisation: percent of time the GPU was busy (NVML), or None.
        devices: how many devices were read.
    """

    in_use: int
    peak: int
    total: Optional[int] = None
    utilisation: Optional[float] = None
    devices: int = 1

    def line(self) -> str:
        """'memory 3.2 GB · peak 4.1 GB of 80 GB · GPU 87%'."""
        of = f" of {fmt_bytes(self.total)}" if self.total else ""
        each = " per device" if self.devices > 1 else ""
        text = f"memory {fmt_bytes(self.in_use)} · peak {fmt_bytes(self.peak)}{of}{each}"
        if self.utilisation is not None:
            text += f" · GPU {self.utilisation:.0f}%"
        return text


# -- the backends' counters -----------------------------------------------------------

def _index(device: str) -> int:
    try:
        return int(device.rsplit(":", 1)[-1])
    except ValueError:
        return 0


def default_accelerators(backend: str) -> List[str]:
    """The device a run uses without `--devices`, when it is an accelerator."""
    try:
        if backend == "jax":
            import jax
            devices = [d for d in jax.devices() if d.platform != "cpu"]
            return [f"{devices[0].platform}:{devices[0].id}"] if devices else []
        if backend == "tensorflow":
            import tensorflow as tf
            return ["gpu:0"] if tf.config.list_logical_devices("GPU") else []
        if backend == "torch":
            import torch
            return [f"cuda:{torch.cuda.current_device()}"] if torch.cuda.is_available() else []
    except Exception:  # noqa: BLE001 - no telemetry rather than a failed run
        pass
    return []


def _raw(backend: str, device: str):
    """(in use, peak, total) bytes of one device, or None."""
    i = _index(device)
    if backend == "jax":
        import jax
        for d in jax.devices():
            if f"{d.platform}:{d.id}" == device:
                stats = d.memory_stats()
                if not stats:
                    return None
                return (int(stats.get("bytes_in_use", 0)), int(stats.get("peak_bytes_in_use", 0)),
                        stats.get("bytes_limit"))
        return None
    if backend == "tensorflow":
        import tensorflow as tf
        info = tf.config.experimental.get_memory_info(f"GPU:{i}")
        return int(info["current"]), int(info["peak"]), None
    if backend == "torch":
        import torch
        return (int(torch.cuda.memory_allocated(i)), int(torch.cuda.max_memory_allocated(i)),
                int(torch.cuda.get_device_properties(i).total_memory))
    return None


def _reset(backend: str, device: str) -> None:
    i = _index(device)
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.reset_memory_stats(f"GPU:{i}")
    elif backend == "torch":
        import torch
        torch.cuda.reset_peak_memory_stats(i)


_NVML: Dict[str, object] = {}


def _nvml():
    """The `pynvml` module, initialised once, or None (not installed, no driver)."""
    if "module" not in _NVML:
        try:
            import pynvml
            pynvml.nvmlInit()
            _NVML["module"] = pynvml
        except Exception:  # noqa: BLE001 - optional
            _NVML["module"] = None
    return _NVML["module"]


def _nvml_handle(nvml, index: int):
    """The NVML handle of the process's GPU `index` (after CUDA_VISIBLE_DEVICES)."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if v.strip()]
    if index < len(visible):
        v = visible[index]
        if v.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(v))
        return nvml.nvmlDeviceGetHandleByUUID(v)
    return nvml.nvmlDeviceGetHandleByIndex(index)


def _nvml_figures(devices: Sequence[str]):
    """(utilisation %, total bytes) of the fullest GPU by NVML, or (None, None)."""
    nvml = _nvml()
    if nvml is None:
        return None, None
    utils, totals = [], []
    for dev in devices:
        try:
            handle = _nvml_handle(nvml, _index(dev))
            utils.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            totals.append(int(nvml.nvmlDeviceGetMemoryInfo(handle).total))
        except Exception:  # noqa: BLE001
            continue
    return (max(utils) if utils else None), (max(totals) if totals else None)


# -- watching one run -------------------------------------------------------------------

class DeviceWatch:
    """This run's memory on its accelerators.

    Args:
        backend: the Keras backend. Defaults to the current one.
        devices: the run's devices (`--devices`); defaults to the device
            the backend trains on. CPUs are not watched.

    Example:
        >>> watch = DeviceWatch()
        >>> watch.start()
        >>> reading = watch.read()   # None on a CPU
    """

    def __init__(self, backend: Optional[str] = None, devices: Optional[Sequence[str]] = None):
        self.backend = backend or keras.backend.backend()
        chosen = list(devices) if devices else default_accelerators(self.backend)
        self.devices = [d for d in chosen if d.split(":")[0] in _ACCELERATORS]
        self.peak: Optional[int] = None
        self.last: Optional[Reading] = None
        self._base: Dict[str, int] = {}
        self._seen: Dict[str, int] = {}

    @property
    def active(self) -> bool:
        return bool(self.devices)

    def start(self) -> None:
        """Reset the peak counters (TensorFlow, torch); note JAX's so far."""
        self.peak, self.last, self._seen = None, None, {}
        for dev in self.devices:
            try:
                _reset(self.backend, dev)
                if self.backend == "jax":  # no reset there: remember the peak so far
                    raw = _raw(self.backend, dev)
                    self._base[dev] = raw[1] if raw else 0
            except Exception:  # noqa: BLE001
                self._base[dev] = 0

    def read(self) -> Optional[Reading]:
        """The figures now (None when no device says anything)."""
        per: List[tuple] = []
        for dev in self.devices:
            try:
                raw = _raw(self.backend, dev)
            except Exception:  # noqa: BLE001
                raw = None
            if raw is None:
                continue
            in_use, peak, total = raw
            self._seen[dev] = max(self._seen.get(dev, 0), in_use)
            if self.backend == "jax" and peak <= self._base.get(dev, 0):
                peak = self._seen[dev]  # the process's peak predates this run
            per.append((in_use, peak, total))
        if not per:
            return None
        util, nvml_total = _nvml_figures(self.devices)
        total = max((t for _, _, t in per if t), default=None) or nvml_total
        reading = Reading(in_use=max(p[0] for p in per), peak=max(p[1] for p in per),
                          total=total, utilisation=util, devices=len(per))
        self.peak = max(self.peak or 0, reading.peak)
        reading.peak = self.peak
        self.last = reading
        return reading


class TelemetryCallback(keras.callbacks.Callback):
    """Reads the `DeviceWatch` at each epoch end into `state.telemetry`
    (before the live callback draws the epoch). Never raises."""

    def __init__(self, watch: DeviceWatch, state=None):
        super().__init__()
        self.watch, self.state = watch, state

    def on_train_begin(self, logs=None):
        self.watch.start()

    def on_epoch_end(self, epoch, logs=None):
        try:
            reading = self.watch.read()
        except Exception:  # noqa: BLE001
            return
        if reading is not None and self.state is not None:
            self.state.telemetry = reading.line()

    def on_train_end(self, logs=None):
        self.on_epoch_end(-1)


# -- out of memory ----------------------------------------------------------------------

def oom_message(batch_size: Optional[int], peak: Optional[int], total: Optional[int] = None,
                fitted: Optional[int] = None, n_devices: int = 1) -> str:
    """The one line a run that ran out of memory ends with.

    Args:
        batch_size: the run's (global) batch size.
        peak: this run's peak bytes (None when not measured).
        total: the device's bytes.
        fitted: the largest smaller batch size that completed before.
        n_devices: devices the batch is split over (the suggestion splits too).

    Example:
        >>> oom_message(512, 15_200_000_000, 16_000_000_000)
        'out of memory with batch size 512 (peak 15.2 GB of 16.0 GB): try half, `-b 256`'
    """
    where = (f"peak {fmt_bytes(peak)}" + (f" of {fmt_bytes(total)}" if total else "")
             if peak else "peak memory not measured on this device")
    if not batch_size:
        return f"out of memory ({where}): try a smaller batch"
    head = f"out of memory with batch size {batch_size} ({where})"
    if fitted:
        return f"{head}: batch size {fitted} completed before, try `-b {fitted}`"
    half = batch_size // 2
    if n_devices > 1:
        half = (half // n_devices) * n_devices
    if half < max(1, n_devices):
        return (f"{head}: even the smallest batch does not fit; try --mixed-precision "
                "or a smaller model")
    return f"{head}: try half, `-b {half}`"


def largest_batch_that_fit(model: str, version_id: Optional[int], device: Optional[str],
                           below: int) -> Optional[int]:
    """The largest batch size under `below` of a completed run of this model
    version on this device line, from the registry (read only on out of memory)."""
    try:
        from ..registry import get_registry
        sizes = [int(r["options"].get("batch_size") or 0)
                 for r in get_registry().runs(model=model)
                 if r.get("status") == "completed" and r.get("version_id") == version_id
                 and (device is None or r.get("device") == device)]
    except Exception:  # noqa: BLE001 - the suggestion falls back to half
        return None
    sizes = [s for s in sizes if 0 < s < below]
    return max(sizes) if sizes else None


def oom_error(session):
    """The `UsageError` a `FitSession` that ran out of memory ends with."""
    from ..errors import UsageError
    plan, watch = session.plan, session.watch
    reading = None
    if watch is not None and watch.active:
        try:
            reading = watch.read() or watch.last  # the peak up to the failed allocation
        except Exception:  # noqa: BLE001
            reading = watch.last
    bs = plan.fit_kwargs.get("batch_size")  # None for a dataset, which batches itself
    fitted = largest_batch_that_fit(plan.name, session.info.version_id, session.device,
                                    bs) if bs else None
    n = len(plan.devices) if plan.devices else 1
    if fitted and n > 1 and fitted % n:
        fitted = None
    message = oom_message(bs, watch.peak if watch is not None else None,
                          reading.total if reading is not None else None, fitted, n)
    held = getattr(session, "held", None)  # the failed step had the model's state
    return UsageError(f"{message} (the model holds {held})" if held else message)


def release_memory(model=None) -> None:
    """After out of memory: drop the compiled functions and collect, so the
    buffers of the failed step go back to the device (torch: its cache too)."""
    if model is not None:
        for attr in ("train_function", "test_function", "predict_function"):
            if hasattr(model, attr):
                setattr(model, attr, None)
    gc.collect()
    if keras.backend.backend() == "torch":
        try:
            import torch
            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass


# -- JAX's preallocation --------------------------------------------------------------

_SAID: set = set()


def preallocation_note(backend: Optional[str] = None, devices=None) -> Optional[str]:
    """Once per kernel, when JAX has a GPU and preallocates 75% of its memory
    (the default), what to set so two notebooks can share it; else None."""
    backend = backend or keras.backend.backend()
    env = os.environ
    if (backend != "jax" or "prealloc" in _SAID
            or env.get("XLA_PYTHON_CLIENT_PREALLOCATE", "").lower() in ("false", "0")
            or env.get("XLA_PYTHON_CLIENT_ALLOCATOR", "").lower() == "platform"
            or env.get("XLA_PYTHON_CLIENT_MEM_FRACTION")):
        return None
    if devices is None:
        try:
            import jax
            devices = jax.devices()
        except Exception:  # noqa: BLE001
            return None
    if not any(getattr(d, "platform", "cpu") in _ACCELERATORS[:3] for d in devices):
        return None
    _SAID.add("prealloc")
    return ("JAX reserved 75% of the GPU's memory when it started (its default), so another "
            "notebook on this GPU may run out of memory; to share it, start the kernel with "
            "XLA_PYTHON_CLIENT_PREALLOCATE=false")
