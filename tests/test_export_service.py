"""`%export NAME DIR --format service`: a folder that serves the model anywhere.

The folder's own command (the Dockerfile's CMD) runs from the folder in a
Python that sees only what `requirements.txt` installs: no site-packages,
just the pinned distributions and what they require, linked into a fresh
folder; nbkeras itself comes from the folder's copy. Its answers equal
`model.predict`. A second test asks PyPI (the one network CI has) whether
the pins resolve, as `pip install -r requirements.txt` in a fresh venv would.
"""

import importlib.metadata
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys

import httpx
import numpy as np
import pytest
from packaging.requirements import Requirement

from nbkeras.errors import UsageError

SPEC = "input 64\ndense 16 relu\ndense 10 softmax"


@pytest.fixture
def exported(ip, run, tmp_path):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    ip.user_ns["x"], ip.user_ns["y"] = (X / 16.0).astype("float32"), y
    ip.run_cell_magic("model", "digits --seed 1", SPEC)
    run("%fit digits x y -e 1 -b 64 --quiet")
    folder = tmp_path / "digits_service"
    run(f"%export digits {folder} --format service")
    return ip, folder


def _cmd(folder):
    text = (folder / "Dockerfile").read_text()
    match = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert match, text
    env = dict(re.findall(r"(\w+)=(\S+)", re.search(r"^ENV (.*)$", text, re.M).group(1)))
    return json.loads(match.group(1)), env


def _closure(folder):
    """The distributions `pip install -r requirements.txt` brings: the pins and what they need."""
    pins = [Requirement(line) for line in (folder / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    seen, todo = {}, [r.name for r in pins]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = importlib.metadata.distribution(name)
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return pins, seen


def _site_of(dists, where):
    """A folder holding links to exactly these distributions' files."""
    where.mkdir()
    for dist in dists.values():
        for part in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            src = dist.locate_file(part)
            if part.endswith(".pth") or not os.path.exists(src) or (where / part).exists():
                continue
            (where / part).symlink_to(src)
    return where


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_folders_command_serves_with_only_its_requirements(exported, tmp_path):
    ip, folder = exported
    model = ip.user_ns["digits"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["Dockerfile", "README.md", "kubernetes.yaml", "metadata.json",
                     "model.keras", "nbkeras", "requirements.txt"]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["name"] == "digits" and meta["spec"] == SPEC and meta["run_id"] is not None
    command, env = _cmd(folder)
    assert command[:5] == ["python", "-m", "nbkeras", "serve", "model.keras"]
    assert env["KERAS_BACKEND"] == "tensorflow" == meta["keras_backend"]

    pins, dists = _closure(folder)
    pinned = {r.name for r in pins}
    assert {"keras", "numpy", "fastapi", "uvicorn", "tensorflow"} <= pinned
    for r in pins:  # pinned to what this kernel runs
        assert r.specifier.contains(importlib.metadata.version(r.name)), r
    assert "ipython" not in dists and "nbkeras" not in dists
    site = _site_of(dists, tmp_path / "site")

    port = _free_port()
    command = [sys.executable, "-S", *command[1:]]  # -S: no site-packages at all
    command[command.index("--port") + 1] = str(port)
    proc = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(site),
                                            "NBKERAS_TOKEN": "tok", **env})
    try:
        line = proc.stdout.readline()
        assert f":{port}/v1/models/digits:predict" in line, line + (
            proc.stderr.read() if proc.poll() is not None else "")
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": "Bearer tok"}
        X = ip.user_ns["x"][:25]
        r = httpx.post(f"{base}/v1/models/digits:predict", json={"instances": X.tolist()},
                       headers=auth, timeout=60)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"], model.predict(X, verbose=0),
                                   atol=1e-6)
        assert httpx.post(f"{base}/v1/models/digits:predict", json={"instances": X[:1].tolist()},
                          timeout=60).status_code == 401
        served = httpx.get(f"{base}/v1/models/digits/metadata", headers=auth, timeout=60).json()
        assert served["spec"] == SPEC and served["run_id"] == meta["run_id"]
        where = subprocess.run([sys.executable, "-S", "-c", "import nbkeras; print(nbkeras.__file__)"],
                               cwd=folder, env={"PYTHONPATH": str(site)}, capture_output=True,
                               text=True).stdout
        assert where.startswith(str(folder / "nbkeras")), where
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def test_the_pins_resolve_on_pypi(exported):
    """What `pip install -r requirements.txt` does in a fresh venv, short of installing."""
    _, folder = exported
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                          "--ignore-installed", "--report", "-", "-r", "requirements.txt"],
                         cwd=folder, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"]
              for i in json.loads(out.stdout)["install"]}
    assert chosen["keras"] == importlib.metadata.version("keras")


def test_a_second_export_replaces_the_first_and_nothing_else_is_overwritten(exported, run,
                                                                            tmp_path):
    ip, folder = exported
    before = (folder / "model.keras").stat().st_mtime_ns
    run("%fit digits x y -e 1 -b 64 --quiet")
    run(f"%export digits {folder} --format service")
    assert (folder / "model.keras").stat().st_mtime_ns != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits_service")]

    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="is not a folder written by `%export"):
        run(f"%export digits {mine} --format service")
    assert (mine / "keep.txt").read_text() == "mine"
    with pytest.raises(UsageError, match="a service is a folder"):
        run(f"%export digits {tmp_path / 'd.keras'} --format service")
    with pytest.raises(UsageError, match="does not exist; create it first"):
        run(f"%export digits {tmp_path / 'no' / 'svc'} --format service")


def test_docs_show_the_manifest_the_export_writes():
    # the serving page of the documentation site (it was the README's section)
    page = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide" / "serving.md").read_text()
    from nbkeras.results.service import kubernetes
    assert kubernetes("digits") in page
