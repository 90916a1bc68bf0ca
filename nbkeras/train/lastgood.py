"""The last good state of a run's model: however a run ends, its model
comes out with readable, finite weights.

Why it is needed. Keras' JAX trainer takes the values off the model's
variables while an epoch trains (they travel through the compiled step,
which is handed, "donated", the only copy) and puts them back at the
epoch's end or when `fit` raises. When the step itself fails (out of
memory on a GPU, an op that raises), the state it was handed is gone, and
when the failure comes before the run's first step ends there is nothing
to put back: every variable is left empty, and reading a weight or the next
`%fit` fails with `TypeError: 'NoneType' object is not callable`. A loss
that became NaN leaves NaN weights on every backend.

`LastGood` is a callback that copies every variable a step changes
(weights, random seed states, optimizer) to the host when training starts
and again at each epoch end whose values are finite. `settle` runs after
a run that raised: when every variable reads back and is finite it keeps
them (the last step that completed, as Keras put it back); otherwise it
puts the copy back, so the model holds the last good epoch's state (or
the state it had before the run). The copy is made once per epoch, where
the weights are on the host's side of the step anyway; a model whose state
exceeds `MAX_EPOCH_COPY_BYTES` is copied at the start of the run only.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import keras
import numpy as np

MAX_EPOCH_COPY_BYTES = 2e9  # a larger state is copied when training starts only


def _variables(model) -> List[Any]:
    from .steps import _state  # weights, seed states, optimizer and metrics variables
    return _state(model)


def _read(variables) -> Optional[List[np.ndarray]]:
    """Host copies of `variables`, or None when one cannot be read (emptied
    by a failed JAX step, or its buffer donated to it)."""
    try:
        return [np.array(v.numpy()) for v in variables]  # (a SyncOnRead metric variable
        # of a MirroredStrategy reads only this way)
    except Exception:  # noqa: BLE001 - TypeError (no value), RuntimeError (deleted)
        return None


def _finite(values: List[np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in values
               if a.dtype.kind in "fc")


class LastGood(keras.callbacks.Callback):
    """Keeps a host copy of the model's state: at the start of training and
    at each epoch end whose state is finite. Put it after the callbacks
    that may reject an epoch (the live callback raises on a NaN loss), so
    that only epochs the run recorded are kept.

    Attributes:
        epoch: the epoch (1-based, as the registry numbers them) the copy
            was taken at the end of; None for the state before the run.
    """

    async_safe = True  # no batch hook

    def __init__(self):
        super().__init__()
        self._kept: Optional[List[Tuple[Any, np.ndarray]]] = None
        self.epoch: Optional[int] = None
        self._each_epoch = True

    def _copy(self) -> Optional[List[Tuple[Any, np.ndarray]]]:
        variables = _variables(self.model)  # again each time: TensorFlow builds the
        values = _read(variables)           # optimizer's slots in the first step
        if values is None or not _finite(values):
            return None
        return list(zip(variables, values))

    def on_train_begin(self, logs=None):
        from .steps import _nbytes
        self._each_epoch = _nbytes(_variables(self.model)) <= MAX_EPOCH_COPY_BYTES
        self._kept, self.epoch = self._copy(), None

    def on_epoch_end(self, epoch, logs=None):
        if not self._each_epoch:
            return
        kept = self._copy()
        if kept is not None:
            self._kept, self.epoch = kept, epoch + 1

    def settle(self) -> Optional[str]:
        """After a run that raised: keep the model's state when it reads back
        finite; else put the last good copy back (a variable created after
        the copy, such as an optimizer slot TensorFlow builds in the first
        step, goes back to zero, as a new optimizer's). Returns what the
        model holds when the copy was put back ('the weights of epoch 3',
        'the weights it had before this run'), None when it kept its own."""
        if self._kept is None or self.model is None:
            return None
        variables = _variables(self.model)
        current = _read(variables)
        if current is not None and _finite(current):
            return None
        kept = {id(v): value for v, value in self._kept}
        for v in variables:
            value = kept.get(id(v))
            v.assign(value if value is not None else np.zeros(v.shape, dtype=str(v.dtype)))
        if self.epoch is None:
            return "the weights it had before this run"
        return f"the weights of epoch {self.epoch}"
