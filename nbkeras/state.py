"""What nbkeras remembers about each model it built, in this kernel.

`%%model` creates a `ModelInfo`; `%fit` reads and extends it (history,
last run, a loss still to be settled from the labels); `%evaluate` and
`%models` read it. Keyed weakly by the model object so a deleted model
frees its entry. Imports no Keras.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class ModelInfo:
    """Bookkeeping for one built model.

    Attributes:
        name: the notebook name the model is bound to.
        spec_text: the cell body it was built from ('' when loaded from a file).
        version_id: registry id of this model version, or None when not recorded.
        compile_kwargs: keyword arguments given to `model.compile` (Keras
            identifiers only), kept so `%fit` can recompile with a settled loss.
        deferred_losses: output layer name -> 'categorical' for softmax outputs
            whose sparse or one-hot cross-entropy `%fit` settles from the labels.
        history: metric -> list of values over every epoch trained so far.
        run_ids: registry ids of the runs of this model, oldest first.
        epochs_done: epochs trained so far (for `--resume`).
    """

    name: str
    spec_text: str = ""
    version_id: Optional[int] = None
    compile_kwargs: Dict[str, Any] = field(default_factory=dict)
    deferred_losses: Dict[str, str] = field(default_factory=dict)
    history: Dict[str, List[float]] = field(default_factory=dict)
    run_ids: List[int] = field(default_factory=list)
    epochs_done: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


_INFO: "weakref.WeakKeyDictionary[Any, ModelInfo]" = weakref.WeakKeyDictionary()


def set_info(model: Any, info: ModelInfo) -> ModelInfo:
    _INFO[model] = info
    return info


def get_info(model: Any, name: Optional[str] = None) -> ModelInfo:
    """The model's info, created on first use for models nbkeras did not build."""
    info = _INFO.get(model)
    if info is None:
        info = ModelInfo(name=name or getattr(model, "name", "model"))
        _INFO[model] = info
    return info
