"""Open the Optuna study of a search: storage, sampler, pruner, direction.

By default the study lives in a SQLite file in the registry's folder
(`studies.sqlite3`), so `--resume` continues it after a kernel restart;
`--storage URL` puts it wherever Optuna can reach (a database that workers
on other machines share).
"""

from __future__ import annotations

import os
from typing import Optional

from ..errors import UsageError, did_you_mean

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise UsageError("%tune needs Optuna: `pip install \"nbkeras[tune]\"` (or "
                         "`pip install optuna pandas`), then run the cell again") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the display says what happens
    return optuna


def default_storage() -> str:
    """The SQLite file beside the run registry."""
    from ..registry import default_home
    home = default_home()
    os.makedirs(home, exist_ok=True)
    return "sqlite:///" + os.path.join(os.path.abspath(home), "studies.sqlite3")


def sampler(optuna, kind: str, seed: Optional[int], spaces):
    kind = kind.lower()
    if kind not in SAMPLERS:
        raise UsageError(f"--sampler {kind!r} is not one of {', '.join(SAMPLERS)}"
                         f"{did_you_mean(kind, SAMPLERS)}")
    if kind == "grid":
        from .space import grid
        return optuna.samplers.GridSampler(grid(spaces), seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(optuna, kind: str):
    kind = kind.lower()
    if kind not in PRUNERS:
        raise UsageError(f"--pruner {kind!r} is not one of {', '.join(PRUNERS)}"
                         f"{did_you_mean(kind, PRUNERS)}")
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


def open_study(name: str, direction: str, storage: Optional[str], resume: bool,
               sampler_kind: str, pruner_kind: str, seed: Optional[int], spaces):
    """The Optuna study `name`, continued with `resume`; else a new study,
    named `name`, or `name-2`, `name-3`, ... when that name is taken (a
    notebook run again from the top starts a new study, the old one kept).
    `study.study_name` says which.

    A continued study's sampler is seeded with `stream_seed(seed, n)` (n:
    the trials it holds), so the same `seed` draws new values.

    Raises:
        UsageError: a storage that cannot be opened, `resume` of a study
            that is missing, a direction that differs from the existing
            study's.
    """
    optuna = require_optuna()
    url = storage or default_storage()
    smp, prn = sampler(optuna, sampler_kind, seed, spaces), pruner(optuna, pruner_kind)
    store, names = _open_storage(optuna, url)
    if resume and name not in names:
        raise UsageError(f"--resume: there is no study named {name!r} in {url}"
                         f"{did_you_mean(name, names)}")
    if not resume:
        name = free_name(name, names)
    study = optuna.create_study(storage=store, sampler=smp, pruner=prn, study_name=name,
                                direction="minimize" if direction == "min" else "maximize",
                                load_if_exists=resume)
    want = "MINIMIZE" if direction == "min" else "MAXIMIZE"
    if study.direction.name != want:
        raise UsageError(f"study {name!r} {study.direction.name.lower()}s its objective; "
                         f"--direction {direction} cannot change that")
    before = len(study.get_trials(deepcopy=False))
    if before and seed is not None:
        study.sampler = sampler(optuna, sampler_kind, stream_seed(seed, before), spaces)
    return study, url


def free_name(name: str, taken) -> str:
    """`name`, or the first of `name-2`, `name-3`, ... not in `taken`."""
    taken = set(taken)
    if name not in taken:
        return name
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"


def stream_seed(seed: Optional[int], before: int, worker: Optional[int] = None) -> Optional[int]:
    """The seed of a sampler that starts when the study holds `before` trials.

    A new search in the kernel uses `seed` itself (the values a plain Optuna
    sampler with that seed proposes); a resumed search and each worker
    process get a seed derived from (seed, before, worker), so none replays
    a stream another search of the study already drew.
    """
    if seed is None:
        return None
    if before == 0 and worker is None:
        return seed
    import numpy as np
    key = (before, 0 if worker is None else worker + 1)
    return int(np.random.SeedSequence(seed % 2**32, spawn_key=key).generate_state(1)[0])


def grid_left(spaces, trials) -> int:
    """How many points of the spaces' grid no trial has taken yet (Optuna's
    `GridSampler` marks each trial with its point's `grid_id`)."""
    import math

    from .space import grid
    size = math.prod(len(v) for v in grid(spaces).values())
    taken = {t.system_attrs["grid_id"] for t in trials if "grid_id" in t.system_attrs}
    return max(size - len(taken), 0)


def _open_storage(optuna, url: str):
    """The storage at `url` and the names of its studies; a one-line
    `UsageError` naming the URL when it cannot be opened. A SQLite file
    waits up to a minute for a lock (worker processes share it)."""
    try:
        if "://" in url:
            kwargs = ({"engine_kwargs": {"connect_args": {"timeout": 60}}}
                      if url.startswith("sqlite") else {})
            store = optuna.storages.RDBStorage(url, **kwargs)
        else:
            store = url
        names = [s.study_name for s in optuna.get_all_study_summaries(storage=store)]
    except Exception as exc:  # noqa: BLE001 - any failure to open is the user's URL
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise UsageError(f"the study storage {url!r} cannot be opened: "
                         f"{type(exc).__name__}: {text}") from None
    return store, names


def find_study(name: str, storage: Optional[str]):
    """The storage holding the existing study `name`, for a worker process.

    Returns:
        The storage (for `load_study`) and its URL.

    Raises:
        UsageError: a storage that cannot be opened, or no study of that name.
    """
    optuna = require_optuna()
    url = storage or default_storage()
    store, names = _open_storage(optuna, url)
    if name not in names:
        raise UsageError(f"there is no study named {name!r} in {url}{did_you_mean(name, names)}: "
                         "a worker joins a search that `%tune ... --workers N` started")
    return store, url


def load_study(store, name: str, sampler_kind: str, pruner_kind: str, seed: Optional[int],
               spaces):
    """The study `name` of `store` with the search's sampler and pruner."""
    optuna = require_optuna()
    return optuna.load_study(study_name=name, storage=store,
                             sampler=sampler(optuna, sampler_kind, seed, spaces),
                             pruner=pruner(optuna, pruner_kind))
