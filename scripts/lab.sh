#!/usr/bin/env bash
# Set up (the first time only) and open JupyterLab on the project folder,
# with notebooks/quickstart.ipynb open and the nbkeras sidebar active.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/jupyter ]; then
  echo "First run: installing nbkeras, Keras, TensorFlow, JupyterLab and the test tools" \
       "into .venv (and building the sidebar). This takes a few minutes; later runs start at once."
fi
bash scripts/setup.sh
echo "Opening JupyterLab on $(pwd), with notebooks/quickstart.ipynb (Ctrl+C stops it)."
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
exec .venv/bin/jupyter lab --ServerApp.root_dir="$(pwd)" notebooks/quickstart.ipynb \
  "${extra[@]}" "$@"
