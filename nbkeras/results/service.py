"""`%export NAME DIR --format service`: a folder that serves the model anywhere.

The folder holds everything `nbkeras serve` needs, and nothing of the
notebook:

- `model.keras`: the model as it is now (the weights it holds);
- `metadata.json`: its name, class names, spec, registry run and version,
  and the Keras backend it was exported from;
- `requirements.txt`: the packages the server imports, pinned to the
  versions this kernel runs (Keras, the backend, NumPy, FastAPI, uvicorn);
- `nbkeras/`: nbkeras' own Python source (no sidebar), so the folder runs
  before nbkeras is on PyPI: `python -m nbkeras serve` from the folder
  imports it from there;
- `Dockerfile`: installs the requirements and runs `python -m nbkeras
  serve model.keras ... --host 0.0.0.0 --port 8501`; the token comes from
  the container's `NBKERAS_TOKEN` (the server refuses to listen beyond
  the container without one);
- `kubernetes.yaml`: a minimal Deployment and Service to scale it out;
- `README.md`: the three ways to run it.

The folder is written beside its destination and moved into place, as a
SavedModel is: a crash half-way leaves the previous export whole. A
folder that exists and was not written by `--format service` is refused,
never overwritten.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import pathlib
import shutil
import sys
import tempfile
from typing import List, Optional

from ..errors import UsageError

MARK = "nbkeras-service"  # metadata.json's "format": what makes a folder ours to replace
PORT = 8501
# import name -> why the server needs it; the distributions come from the environment
_IMPORTS = ["keras", "numpy", "fastapi", "uvicorn"]
_OPTIONAL = ["httptools", "uvloop"]  # uvicorn's fast parser and loop, where installed
_BACKEND_IMPORTS = {"tensorflow": ["tensorflow"], "jax": ["jax", "jaxlib"], "torch": ["torch"],
                    "numpy": []}


def write_service(model, name: str, info, path: pathlib.Path) -> pathlib.Path:
    """Write the service folder for `model` at `path` (atomically); returns the path."""
    _check_destination(path)
    import keras
    backend = keras.backend.backend()
    metadata = {
        "format": MARK, "name": name,
        "class_names": info.extra.get("class_names") if info is not None else None,
        "spec": info.spec_text if info is not None else "",
        "run_id": info.run_ids[-1] if info is not None and info.run_ids else None,
        "version": info.version_id if info is not None else None,
        "keras_backend": backend,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.save(tmp / "model.keras")
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        (tmp / "requirements.txt").write_text(requirements(backend))
        (tmp / "Dockerfile").write_text(dockerfile(name, backend))
        (tmp / "kubernetes.yaml").write_text(kubernetes(name))
        (tmp / "README.md").write_text(readme(name))
        _copy_source(tmp / "nbkeras")
        _replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def serve_command(name: str) -> List[str]:
    """The command the Dockerfile runs, from the folder."""
    return ["python", "-m", "nbkeras", "serve", "model.keras", "--name", name,
            "--metadata", "metadata.json", "--host", "0.0.0.0", "--port", str(PORT)]


def requirements(backend: str) -> str:
    """requirements.txt: each package the server imports, pinned to this kernel's version."""
    lines = [f"# What `python -m nbkeras serve` imports, pinned to the versions it was "
             f"exported with (Keras backend: {backend})."]
    imports = _IMPORTS + _BACKEND_IMPORTS.get(backend, [backend])
    for module in imports + _OPTIONAL:
        pins = _pins(module)
        if not pins and module not in _OPTIONAL:
            raise UsageError(f"cannot pin `{module}`: no installed distribution provides it; "
                             "install it (`pip install 'nbkeras[serve]'`) and export again")
        lines += [p for p in pins if p not in lines]
    return "\n".join(lines) + "\n"


def _pins(module: str) -> List[str]:
    dists = importlib.metadata.packages_distributions().get(module, [])
    pins = []
    for dist in dict.fromkeys(dists):
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a stale record
            continue
    return pins


def dockerfile(name: str, backend: str) -> str:
    command = json.dumps(serve_command(name))
    return f"""\
# The `{name}` model behind TensorFlow Serving's REST API, exported by nbkeras.
#   docker build -t {name}-service .
#   docker run -p {PORT}:{PORT} -e NBKERAS_TOKEN=s3cret {name}-service
FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim
WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV KERAS_BACKEND={backend} TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
EXPOSE {PORT}
# Listens on every address of the container, so it needs the token:
# NBKERAS_TOKEN (clients send `Authorization: Bearer $NBKERAS_TOKEN`).
CMD {command}
"""


def kubernetes(name: str) -> str:
    app = name.lower().replace("_", "-")
    return f"""\
# kubectl create secret generic {app}-token --from-literal=token=s3cret
# kubectl apply -f kubernetes.yaml   (after pushing the image where the cluster pulls from)
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {app}}}
    spec:
      containers:
        - name: {app}
          image: {name}-service:latest
          ports: [{{containerPort: {PORT}}}]
          env:
            - name: NBKERAS_TOKEN
              valueFrom: {{secretKeyRef: {{name: {app}-token, key: token}}}}
          readinessProbe:
            httpGet: {{path: /healthz, port: {PORT}}}
          livenessProbe:
            httpGet: {{path: /healthz, port: {PORT}}}
---
apiVersion: v1
kind: Service
metadata:
  name: {app}
spec:
  selector: {{app: {app}}}
  ports: [{{port: 80, targetPort: {PORT}}}]
"""


def readme(name: str) -> str:
    return f"""\
# `{name}`, served

Exported by nbkeras' `%export {name} DIR --format service`. It answers
TensorFlow Serving's REST API: `POST /v1/models/{name}:predict` with
`{{"instances": [...]}}`, `GET /v1/models/{name}/metadata`, `GET /healthz`,
and documents itself at `/docs`.

On this machine, from this folder:

    python -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/python -m nbkeras serve model.keras --name {name} --metadata metadata.json

In a container (`NBKERAS_TOKEN` is required: it listens beyond the container):

    docker build -t {name}-service .
    docker run -p {PORT}:{PORT} -e NBKERAS_TOKEN=s3cret {name}-service
    curl -H 'Authorization: Bearer s3cret' http://localhost:{PORT}/v1/models/{name}/metadata

On Kubernetes: push the image, create the token's secret and apply
`kubernetes.yaml` (a Deployment of 2 replicas and a Service in front).
"""


def _check_destination(path: pathlib.Path) -> None:
    if path.suffix in (".keras", ".h5", ".tflite"):
        raise UsageError(f"`{path}`: a service is a folder; give a folder name such as "
                         f"`{path.with_suffix('')}_service`")
    if not path.parent.is_dir():
        raise UsageError(f"`{path}`: folder `{path.parent}` does not exist; create it first")
    if path.exists() and not _is_service(path):
        raise UsageError(f"`{path}` exists and is not a folder written by `%export ... "
                         "--format service`; give a new folder name (nothing was overwritten)")


def _is_service(path: pathlib.Path) -> bool:
    if path.is_dir() and not any(path.iterdir()):
        return True  # an empty folder: nothing to lose
    try:
        return json.loads((path / "metadata.json").read_text()).get("format") == MARK
    except (OSError, ValueError, AttributeError):
        return False


def _copy_source(dest: pathlib.Path) -> None:
    """nbkeras' Python files (not the built sidebar) into `dest`."""
    root = pathlib.Path(__file__).resolve().parents[1]
    for src in root.rglob("*.py"):
        rel = src.relative_to(root)
        if rel.parts[0] in ("labextension", "__pycache__"):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)


def _replace(tmp: pathlib.Path, path: pathlib.Path) -> None:
    """Move the written folder `tmp` to `path`, the previous export aside until it is in."""
    old: Optional[str] = None
    if path.exists():
        old = tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent)
        os.replace(path, os.path.join(old, "service"))
    try:
        os.replace(tmp, path)
    except BaseException:
        if old:
            os.replace(os.path.join(old, "service"), path)
        raise
    finally:
        if old:
            shutil.rmtree(old, ignore_errors=True)

