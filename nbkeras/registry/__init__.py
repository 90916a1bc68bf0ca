"""The run registry: every model version, run, epoch and evaluation, on disk.

Why a package of its own: training results must outlive the kernel
(restarts, crashes, SIGKILL) and be shared by every kernel on the machine
and by the Jupyter server that feeds the sidebar. One SQLite file in WAL
mode does that with no daemon (see `write.py`). The package splits it in
four: `schema.py` (the file's layout, migrations, metric directions,
process liveness), `write.py` (the connection and the writers),
`access.py` (`get_registry()`, the cache and the `NullRegistry`) and
`read.py` (the readers, which never write). Imports no Keras.

Example:
    >>> from nbkeras.registry import get_registry
    >>> reg = get_registry()
    >>> run_id = reg.start_run(model="mnist", version_id=None, options={},
    ...                        device="cpu", backend="tensorflow", epochs_planned=3)
    >>> reg.log_epoch(run_id, 1, {"loss": 0.5, "val_loss": 0.6})
    >>> reg.end_run(run_id, "completed")
"""

from .schema import MIGRATIONS, SCHEMA_VERSION, RegistryWarning
from .access import NullRegistry, get_registry, runs
from .write import DB_NAME, STATUSES, Registry, default_home

__all__ = ["SCHEMA_VERSION", "MIGRATIONS", "Registry", "NullRegistry", "RegistryWarning",
           "DB_NAME", "STATUSES", "default_home", "get_registry", "runs"]
