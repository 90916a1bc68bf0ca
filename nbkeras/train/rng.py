"""Each seeded run draws its shuffles from a NumPy generator of its own.

Keras shuffles arrays on JAX (and the numpy backend) with
`np.random.permutation`, NumPy's one global generator, at the start of each
epoch. Two runs training at once (one with `--background`) then take turns
on that generator, and `--seed` (which seeds it) gives numbers that depend
on what else trains: the foreground run's seeding even moves the
background run's shuffles.

`own_stream(state)` gives the calling thread a `np.random.RandomState` of
its own for the duration of a run: while it is active, NumPy's module-level
functions (`np.random.permutation`, `get_state`, `seed`, ...) called from
that thread use it, and every other thread keeps the global generator. A
run seeded with `--seed S` gets `RandomState(S)`, which is exactly what the
global generator is right after `keras.utils.set_random_seed(S)`: a run
alone draws the same numbers as before, as plain Keras does. The module
functions are wrapped once, on the first seeded run; a thread without a
stream of its own pays one thread-local lookup per call.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Iterator, Optional

import numpy as np

_LOCAL = threading.local()
_INSTALLED = threading.Lock()
_WRAPPED: dict = {}


def _global():
    return np.random.mtrand._rand


def _dispatch(name: str, original):
    @functools.wraps(original)
    def call(*args, **kwargs):
        state = getattr(_LOCAL, "state", None)
        if state is None:
            return original(*args, **kwargs)
        return getattr(state, name)(*args, **kwargs)
    return call


def _install() -> None:
    """Wrap NumPy's module-level random functions (the global generator's
    bound methods) so that a thread with a stream of its own uses it."""
    with _INSTALLED:
        if _WRAPPED:
            return
        rand = _global()
        for name in dir(np.random):
            original = getattr(np.random, name, None)
            if getattr(original, "__self__", None) is rand and hasattr(np.random.RandomState,
                                                                      name):
                _WRAPPED[name] = original
                setattr(np.random, name, _dispatch(name, original))


def stream(seed: Optional[int]) -> Optional[np.random.RandomState]:
    """The generator of a run seeded with `seed` (None: the run uses the
    global one, as Keras does)."""
    if seed is None:
        return None
    return np.random.RandomState(seed)


@contextlib.contextmanager
def own_stream(state: Optional[np.random.RandomState]) -> Iterator[None]:
    """While active, NumPy's global random functions called from this thread
    draw from `state` (nothing changes when it is None)."""
    if state is None:
        yield
        return
    _install()
    previous = getattr(_LOCAL, "state", None)
    _LOCAL.state = state
    try:
        yield
    finally:
        _LOCAL.state = previous
