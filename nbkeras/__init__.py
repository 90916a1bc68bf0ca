"""nbkeras: Keras training as a first-class citizen of Jupyter.

`%load_ext nbkeras` registers the magics. Nothing here imports Keras:
loading the extension stays fast and the first `%%model` pays for it.
"""

from __future__ import annotations

from .errors import (DataError, FitUsageError, NbkerasError, SpecError, TrainingStopped,
                     UsageError)

__all__ = ["SpecError", "DataError", "UsageError", "FitUsageError", "NbkerasError",
           "TrainingStopped", "runs", "job", "serving",
           "load_ipython_extension"]
__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """Register the magics and the short display of user errors."""
    import os

    from .errors import show_short_error
    from .magics import NbkerasMagics

    # TensorFlow's C++ start-up logs (CUDA probing on a CPU machine, CPU
    # feature notes) are noise in a notebook; the user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    magics = NbkerasMagics(shell=ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
    if not hasattr(ipython, "_nbkeras_previous_exc"):
        ipython._nbkeras_previous_exc = (ipython.custom_exceptions,
                                         getattr(ipython, "CustomTB", None))
    ipython.set_custom_exc((NbkerasError,), show_short_error)


def unload_ipython_extension(ipython):
    """Restore the custom exception handler that was there before."""
    previous = getattr(ipython, "_nbkeras_previous_exc", None)
    if previous is None:
        return
    del ipython._nbkeras_previous_exc
    exceptions, handler = previous
    if exceptions:
        ipython.custom_exceptions = exceptions
        ipython.CustomTB = handler
    else:
        ipython.set_custom_exc((), None)


def job(name):
    """The latest `%fit --background` job of the model `name`, or None.

    Example:
        >>> job = nbkeras.job("digits")
        >>> job.stop(); job.wait()
    """
    from .train.background import job as _job
    return _job(name)


def serving(name):
    """What `%serve NAME` serves from this kernel, or None: its `.url` (the
    model's TensorFlow Serving address, `http://HOST:PORT/v1/models/NAME`),
    `.server.port` and `.stats` (requests, latency, errors).

    Example:
        >>> url = nbkeras.serving("digits").url
        >>> requests.post(url + ":predict", json={"instances": rows}).json()
    """
    from .serve.magic import servers
    return servers().get(name)


def runs(model=None):
    """The recorded runs, newest first, as a list of dicts.

    A run that is a `%tune` trial also has `study` and `trial` (None for
    the others).

    Args:
        model: only the runs of the model with this name.
    """
    from .registry import runs as _runs
    out = _runs(model=model)
    for run in out:
        options = run.get("options") or {}
        run.setdefault("study", options.get("study"))
        run.setdefault("trial", options.get("trial"))
    return out


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "nbkeras"}]


def _jupyter_server_extension_points():
    return [{"module": "nbkeras.server"}]
