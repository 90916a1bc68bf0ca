#!/usr/bin/env bash
# Build the documentation site into docs/_build/html (warnings are errors).
# The Sphinx source folder is the repository root so that the tutorials in
# notebooks/ are pages as they are, rendered from their stored outputs and
# never executed or copied; docs/conf.py picks docs/** and notebooks/*.ipynb.
# Extra arguments go to sphinx-build (e.g. -E for a clean rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then bash scripts/setup.sh; fi
# Install the pinned toolchain only when a pin is not met (fast when it is).
if ! "$PY" - docs/requirements.txt <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
then
  "$PY" -m pip install -q -r docs/requirements.txt
fi
# DOCS_SRC / DOCS_OUT build another source folder with this configuration (the tests do).
SRC=${DOCS_SRC:-.}
OUT=${DOCS_OUT:-docs/_build/html}
exec "$PY" -m sphinx -b html -W --keep-going -q -c docs -d "$OUT/../doctrees" "$SRC" "$OUT" "$@"
