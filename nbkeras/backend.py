"""Import Keras the first time a magic needs it, without TensorFlow's noise.

TensorFlow writes start-up lines straight to the process's stderr from C++
("Could not find cuda drivers on your machine", absl's "All log messages
before absl::InitializeLog()"), which `TF_CPP_MIN_LOG_LEVEL` no longer
silences. In a notebook they land in the user's first `%%model` cell. The
magics call `import_keras()` before any stage that imports Keras: it sends
file descriptor 2 to /dev/null for the duration of that first import only.
Python exceptions raised by the import are not affected.

It also asks TensorFlow to let GPU memory grow on demand
(`TF_FORCE_GPU_ALLOW_GROWTH`, unless the user set it), before the first
import starts the GPUs, so two notebooks can share one GPU.
"""

from __future__ import annotations

import os
import sys


def import_keras():
    """Import and return `keras`, quietly the first time."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        import keras
        return keras
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import keras
        if keras.backend.backend() == "tensorflow":
            # device discovery prints the CUDA probe lines: do it now, quietly
            import tensorflow as tf
            tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras
