"""Which device trains, said in one line, on any Keras backend.

The panel shows where training runs ("GPU: NVIDIA H100 80GB HBM3 ·
mixed precision on", "CPU · mixed precision off", or over several devices
"4 × NVIDIA H100 80GB HBM3 · data parallel · mixed precision off"). On
TensorFlow, GPU memory growth is enabled first so two notebooks can share
one GPU; on JAX, which reserves 75% of a GPU when it starts, nbkeras says
once how to stop that.
"""

from __future__ import annotations

import functools
from typing import Dict, List, Optional, Sequence


def enable_memory_growth() -> None:
    """On the TensorFlow backend, let each GPU's memory grow on demand; on
    JAX with a GPU, say once how to stop it reserving 75% of the memory."""
    import keras
    if keras.backend.backend() == "jax":
        from .telemetry import preallocation_note
        note = preallocation_note("jax")
        if note:
            print(f"nbkeras: {note}")
        return
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):  # already initialized: keep what is set
            pass


@functools.lru_cache(maxsize=None)
def _accelerator(backend: str) -> str:
    try:
        if backend == "tensorflow":
            import tensorflow as tf
            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                name = details.get("device_name", gpus[0].name)
                return f"GPU: {name}" + (f" (×{len(gpus)})" if len(gpus) > 1 else "")
        elif backend == "jax":
            import jax
            devices = [d for d in jax.devices() if d.platform != "cpu"]
            if devices:
                return (f"{devices[0].platform.upper()}: {devices[0].device_kind}"
                        + (f" (×{len(devices)})" if len(devices) > 1 else ""))
        elif backend == "torch":
            import torch
            if torch.cuda.is_available():
                n = torch.cuda.device_count()
                return f"GPU: {torch.cuda.get_device_name(0)}" + (f" (×{n})" if n > 1 else "")
    except Exception:  # a broken driver must not stop training
        pass
    return "CPU"


def device_line(mixed_precision: bool = False, devices=None) -> str:
    """'GPU: <name> · mixed precision on', 'CPU · mixed precision off', or
    with `devices` (`--devices`) '4 × <name> · data parallel · mixed precision off'."""
    import keras
    if devices:
        where = devices_text(devices, keras.backend.backend())
    else:
        where = _accelerator(keras.backend.backend())
    return f"{where} · mixed precision {'on' if mixed_precision else 'off'}"


def mixed_policy_name() -> str:
    """mixed_float16 on a GPU, mixed_bfloat16 on a CPU."""
    import keras
    return "mixed_float16" if _accelerator(keras.backend.backend()) != "CPU" else "mixed_bfloat16"


def is_mixed(model) -> bool:
    """Whether `model` computes in mixed precision (its own policy, not the global one)."""
    return str(getattr(getattr(model, "dtype_policy", None), "name", "")).startswith("mixed")


def mixed_precision_copy(model, info, policy: str):
    """A copy of `model` whose layers compute under the mixed `policy`, with
    the same weights and the same compile configuration (public Keras API).

    Called with the global dtype policy already set to `policy` (the copy's
    optimizer then scales the loss for float16); the copy keeps its own
    per-layer policies after the global one is restored.
    """
    import keras

    def clone_layer(layer):
        config = layer.get_config()
        if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    config = model.get_compile_config()
    if config:
        clone.compile_from_config(config)
    from ..state import set_info
    set_info(clone, info)
    return clone


def _device_names(devices: Sequence[str], backend: str) -> List[str]:
    """A readable name per device ("NVIDIA H100 80GB HBM3", "CPU")."""
    names = []
    try:
        if backend == "jax":
            import jax
            by_id = {f"{d.platform}:{d.id}": d for d in jax.devices()}
            for dev in devices:
                d = by_id.get(dev)
                names.append("CPU" if d is None or d.platform == "cpu" else str(d.device_kind))
            return names
        if backend == "tensorflow":
            import tensorflow as tf
            gpus = tf.config.list_physical_devices("GPU")
            for dev in devices:
                kind, _, index = dev.partition(":")
                if kind == "gpu" and gpus:
                    gpu = gpus[min(int(index or 0), len(gpus) - 1)]
                    names.append(tf.config.experimental.get_device_details(gpu).get(
                        "device_name", "GPU"))
                else:
                    names.append(kind.upper())
            return names
    except Exception:  # noqa: BLE001 - a name is never worth a failed run
        pass
    return [d.partition(":")[0].upper() for d in devices]


def devices_text(devices: Sequence[str], backend: Optional[str] = None) -> str:
    """'4 × NVIDIA H100 · data parallel', '2 × CPU + 1 × ...', or 'CPU (cpu:1)'."""
    if backend is None:
        import keras
        backend = keras.backend.backend()
    names = _device_names(devices, backend)
    if len(devices) == 1:
        return f"{names[0]} ({devices[0]})"
    counts: Dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return " + ".join(f"{n} × {name}" for name, n in counts.items()) + " · data parallel"
