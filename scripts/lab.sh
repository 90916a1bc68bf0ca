#!/usr/bin/env bash
# Set up (first time only takes a few minutes) and open JupyterLab on the
# quickstart notebook, with the nbkeras sidebar active.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
exec .venv/bin/jupyter lab notebooks/quickstart.ipynb "${extra[@]}" "$@"
