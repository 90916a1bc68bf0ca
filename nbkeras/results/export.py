"""`%export NAME PATH [--format keras|savedmodel|tflite|service]`: write a
model so that a crash half-way never leaves a broken file where a good one was.

Each format is written to a temporary path in the destination folder and
then moved into place with `os.replace`, which is atomic on one file
system. A SavedModel is a folder: an existing one is moved aside first and
removed once the new one is in place. `--format service` writes a folder
that serves the model anywhere (`nbkeras.results.service`). `%%model NAME
--from PATH` loads a `.keras` file back.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import tempfile

from ..errors import UsageError
from .common import get_model

_SUFFIXES = {"keras": (".keras",), "tflite": (".tflite",)}


def run_export(shell, args) -> None:
    """Body of `%export`: writes the file and prints one line saying where."""
    model = get_model(shell, args.name, doing="export")
    path = pathlib.Path(os.path.expanduser(args.path))
    fmt = args.format
    if fmt in _SUFFIXES and path.suffix not in _SUFFIXES[fmt]:
        raise UsageError(f"`{args.path}`: the {fmt} format needs a path ending in "
                            f"`{_SUFFIXES[fmt][0]}` (e.g. `{path.with_suffix(_SUFFIXES[fmt][0])}`)")
    if fmt in ("savedmodel", "tflite"):
        _require_tensorflow(fmt)
    if fmt == "service":
        return _export_service(shell, args, model, path)
    folder = path.parent if str(path.parent) else pathlib.Path(".")
    if not folder.is_dir():
        raise UsageError(f"`{args.path}`: folder `{folder}` does not exist; create it first")
    writer = {"keras": _write_keras, "savedmodel": _write_savedmodel,
              "tflite": _write_tflite}[fmt]
    quiet = logging.getLogger("tensorflow")  # "Assets written to <temp path>" is noise
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        if fmt == "savedmodel":
            writer(model, path)
        else:
            _atomic_file(path, lambda tmp: writer(model, tmp))
    finally:
        quiet.setLevel(level)
    from ..state import get_info
    names = get_info(model, args.name).extra.get("class_names")
    beside = ""
    if names and fmt == "keras":
        from ..train.images import write_classes
        beside = f"; its {len(names)} class names in {write_classes(path, names).name} beside it"
    print(f"Saved `{args.name}` to {path} ({fmt} format, {_human(_size(path))}){beside}")


def _export_service(shell, args, model, path: pathlib.Path) -> None:
    from ..state import get_info
    from .service import serve_command, write_service
    write_service(model, args.name, get_info(model, args.name), path)
    command = " ".join(serve_command(args.name)[:-4])  # on this machine: loopback, port 8501
    print(f"Saved `{args.name}` as a service in {path} ({_human(_size(path))}): the model, "
          f"metadata.json, a pinned requirements.txt, a Dockerfile and kubernetes.yaml.\n"
          f"Serve it here with `cd {path} && {command}`, or in a container with "
          f"`docker build -t {args.name}-service {path}` (its README says more).")


def _require_tensorflow(fmt: str) -> None:
    import keras
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise UsageError(f"`--format {fmt}` needs the TensorFlow backend but this kernel "
                            f"uses `{backend}`; export with `--format keras` or restart with "
                            "KERAS_BACKEND=tensorflow")


def _atomic_file(path: pathlib.Path, write) -> None:
    """Call `write(tmp)` on a temporary sibling of `path`, then move it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # Keras refuses to overwrite without asking; let it create the file
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_keras(model, tmp: str) -> None:
    model.save(tmp)


def _write_tflite(model, tmp: str) -> None:
    import tensorflow as tf
    with tempfile.TemporaryDirectory(dir=os.path.dirname(tmp)) as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        data = converter.convert()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_savedmodel(model, path: pathlib.Path) -> None:
    tmp = tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)
    old = None
    try:
        model.export(tmp, format="tf_saved_model", verbose=False)
        if path.exists():
            old = tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent)
            os.replace(path, os.path.join(old, "model"))
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old and not path.exists():  # put the previous export back
            os.replace(os.path.join(old, "model"), path)
        raise
    finally:
        if old:
            shutil.rmtree(old, ignore_errors=True)


def _human(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1000 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def _size(path: pathlib.Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
