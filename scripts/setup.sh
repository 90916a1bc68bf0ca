#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with nbkeras installed
# (editable, with its test extras). The JupyterLab extension is built by
# `pip install` itself (hatch-jupyter-builder) and needs node + npm.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
# Rebuild the extension from source every time so a source change never ships a stale build.
rm -rf nbkeras/labextension
.venv/bin/python -m pip install -q -e ".[test,bench]"
