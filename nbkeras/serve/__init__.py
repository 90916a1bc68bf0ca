"""Serving a trained model over HTTP, in TensorFlow Serving's REST API.

`%serve NAME` (`nbkeras.serve.magic`) serves a snapshot of a notebook's
model on a thread of the kernel; `nbkeras serve PATH.keras`
(`nbkeras.serve.command`) serves a saved model as a process of its own.
Both build the same app: `ServedModel` (JSON in, arrays, JSON out),
`Batcher` (requests arriving together share one predict) and
`create_app` (FastAPI routes, errors as JSON, the token). This package
imports no IPython; FastAPI and uvicorn come with the `serve` extra.
"""

from .app import create_app
from .batcher import Batcher
from .model import BadInput, ServedModel
from .stats import ServeStats

__all__ = ["create_app", "Batcher", "BadInput", "ServedModel", "ServeStats"]
