"""`%tune`: search a spec's spaces with Optuna, training each trial like `%fit`.

`space` maps the spec's search spaces onto Optuna's suggestions,
`study` opens the Optuna study (storage, sampler, pruner, direction),
`search` runs the trials through `%fit`'s own plan and session, and
`view` shows the search live and leaves its static record. With
`--workers N`, `job` writes the search and its data for other processes,
`parallel` starts N of them and shows their trials from the storage, and
`worker` is their loop (`nbkeras tune-worker`). Optuna is the engine:
nbkeras writes no sampler, pruner or storage of its own.
"""
