"""A search's job for worker processes: `job.json` and the data as NumPy files.

With `%tune --workers N` the trials run in other processes, which have no
notebook: no spec cell, no expressions to evaluate, no arrays. The kernel
writes what every trial needs once, into the study's folder: `job.json`
(the spec text, the `%fit` arguments each trial trains with, the
objective and its direction, the sampler, pruner and seed, how many
trials the study should hold) and the data as `.npy` files, one per array
(a list or dict of inputs is one file per input). A worker memory-maps
them (`np.load(mmap_mode="r")`) and trains each trial through the same
trial code as the kernel, reading the arrays from a `DataNamespace`
instead of the notebook. Imports neither Keras nor Optuna.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pathlib
import re
from typing import Any, Dict, Optional

import numpy as np

from ..errors import UsageError

JOB = "job.json"
VERSION = 1


def study_folder(study: str, storage: str, home: Optional[os.PathLike] = None) -> pathlib.Path:
    """The study's folder in the registry's folder: `studies/NAME`, with a
    short hash of the storage URL when it is not the default SQLite file
    (two storages may each hold a study of the same name)."""
    from ..registry import default_home
    from .study import default_storage
    home = pathlib.Path(home) if home is not None else default_home()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", study).strip("._") or "study"
    if slug != study:
        slug += "-" + hashlib.sha1(study.encode()).hexdigest()[:6]
    if storage != default_storage():
        slug += "-" + hashlib.sha1(storage.encode()).hexdigest()[:8]
    return home / "studies" / slug


class DataNamespace:
    """What the trial code reads of a notebook (`user_ns`, `ev`), over the
    arrays a worker loaded: the names in it are the only expressions.

    Example:
        >>> ns = DataNamespace({"x": x, "y": y})
        >>> ns.ev("x") is x
        True
    """

    kernel = None  # no frontend: the trial code shows nothing

    def __init__(self, values: Dict[str, Any]):
        self.user_ns = dict(values)

    def ev(self, expr: str) -> Any:
        try:
            return self.user_ns[expr]
        except KeyError:
            raise NameError(f"name '{expr}' is not defined") from None


def check_data(data: Any, label: str) -> None:
    """Refuse data that cannot be written as plain `.npy` files (Python
    objects), before anything is written or created."""
    if data is None:
        return
    if isinstance(data, dict):
        for k, v in data.items():
            check_data(v, f"{label}[{k!r}]")
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            check_data(v, f"{label}[{i}]")
    elif np.asarray(data).dtype.kind == "O":
        raise UsageError(f"--workers writes the data once for the worker processes, but "
                         f"{label} holds Python objects: give arrays of numbers (or strings)")


def _save_array(folder: pathlib.Path, stem: str, value: Any, label: str) -> str:
    arr = np.asarray(value)
    check_data(arr, label)
    name = f"{stem}.npy"
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
    os.replace(tmp, folder / name)
    return name


def save_data(folder: pathlib.Path, stem: str, data: Any, label: str) -> Optional[dict]:
    """Write an array, or a list or dict of them, as `.npy` files; return
    the manifest entry that `load_data` reads back."""
    if data is None:
        return None
    if isinstance(data, dict):
        return {"dict": [[str(k), save_data(folder, f"{stem}.{i}", v, f"{label}[{k!r}]")]
                         for i, (k, v) in enumerate(data.items())]}
    if isinstance(data, (list, tuple)):
        return {"list": [save_data(folder, f"{stem}.{i}", v, f"{label}[{i}]")
                         for i, v in enumerate(data)]}
    return {"array": _save_array(folder, stem, data, label)}


def load_data(folder: pathlib.Path, entry: Optional[dict]) -> Any:
    """The data of a manifest entry, each array memory-mapped read-only."""
    if entry is None:
        return None
    if "dict" in entry:
        return {k: load_data(folder, v) for k, v in entry["dict"]}
    if "list" in entry:
        return [load_data(folder, v) for v in entry["list"]]
    path = folder / entry["array"]
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"the search's data file {path} is missing: the folder holds "
                         "an incomplete copy of the study folder") from None


def write_job(folder: pathlib.Path, job: Dict[str, Any], data: Dict[str, Any]) -> pathlib.Path:
    """Write the data files, then `job.json` (last, so that a worker that
    sees the job sees all of its data). Returns the job file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models").mkdir(exist_ok=True)
    manifest = {key: save_data(folder, key, value, label)
                for key, (value, label) in data.items() if value is not None}
    job = {**job, "version": VERSION, "data": manifest}
    tmp = folder / f".{JOB}.tmp"
    tmp.write_text(json.dumps(job, indent=1, default=_json_default))
    os.replace(tmp, folder / JOB)
    return folder / JOB


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def read_job(folder: pathlib.Path) -> Dict[str, Any]:
    path = pathlib.Path(folder) / JOB
    try:
        job = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no search job in {path.parent}: `%tune ... --workers N` (or "
                         "`--storage URL --workers N`) writes it there when the search starts; "
                         "give the folder it names with --data PATH") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read: {exc}") from None
    if job.get("version") != VERSION:
        raise UsageError(f"{path} was written by another version of nbkeras "
                         f"(job version {job.get('version')}, this one reads {VERSION})")
    return job


def worker_fit_args(job: Dict[str, Any]) -> argparse.Namespace:
    """The `%fit` arguments of each trial, their expressions naming the
    arrays of the worker's `DataNamespace`."""
    return argparse.Namespace(**job["fit"])


def worker_namespace(folder: pathlib.Path, job: Dict[str, Any]) -> DataNamespace:
    values = {k: load_data(folder, v) for k, v in job["data"].items()}
    if job.get("class_weight") is not None:
        values["class_weight"] = {int(k): float(v) for k, v in job["class_weight"]}
    return DataNamespace(values)


@contextlib.contextmanager
def claim_lock(folder: pathlib.Path):
    """An exclusive lock among the workers of this machine while one of them
    counts the study's trials and asks for the next (so the study gets
    exactly its number of trials). Where the folder cannot hold a lock file
    (read-only, no `fcntl`), nothing is locked."""
    try:
        import fcntl
        fh = open(pathlib.Path(folder) / "claim.lock", "a")
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fh, fcntl.LOCK_UN)
        finally:
            fh.close()


def keep_only(models: pathlib.Path, number: Optional[int]) -> None:
    """Remove the saved trial models (`trial-N.keras`) but the one of trial
    `number` (the study's best; None: keep none)."""
    for path in models.glob("trial-*.keras"):
        if path.name != f"trial-{number}.keras":
            try:
                path.unlink()
            except OSError:
                pass
