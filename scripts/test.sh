#!/usr/bin/env bash
# The whole test suite, set-up included: Python tests, the tutorial
# notebooks under nbval, the TypeScript unit tests and the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will fail" >&2
  else
    echo "warning: chromium is not installed (apt-get install -y chromium); browser tests will fail" >&2
  fi
fi
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
NBKERAS_HOME="$(mktemp -d)"; export NBKERAS_HOME
if [ -f labextension/package.json ] && grep -q '"test"' labextension/package.json; then
  (cd labextension && (test -d node_modules || npm install --no-audit --no-fund -q) && npm test)
fi
# The training paths' oracle and invariant tests run a second time on Keras'
# JAX backend (the rest of the suite runs on TensorFlow, and runs JAX in
# subprocesses where it matters).
JAX_TESTS=(tests/test_kept_weights.py tests/test_invariants.py tests/test_tune_invariants.py
           tests/test_base.py tests/test_fine_tune.py)
set +e
# The documentation site (Sphinx + MyST-NB, warnings are errors; a few
# seconds): installs its pinned toolchain; tests/test_docs.py checks the pages.
bash scripts/docs.sh
rc_docs=$?
.venv/bin/python -m pytest tests --nbval-lax notebooks --nbval-sanitize-with notebooks/sanitize.cfg "$@"
rc=$?
KERAS_BACKEND=jax JAX_PLATFORMS=cpu .venv/bin/python -m pytest "${JAX_TESTS[@]}" "$@"
rc_jax=$?
# "Restart Kernel and Run All" once more, against the registry the tutorials
# just wrote (a re-run must work: a %tune study name taken gets -2, ...)
if [ "$#" = 0 ] && [ "$rc" = 0 ]; then
  rerun="$(mktemp -d)"
  .venv/bin/jupyter nbconvert --to notebook --execute --output-dir "$rerun" \
    --ExecutePreprocessor.timeout=900 notebooks/*.ipynb >/dev/null \
    || { echo "error: a tutorial failed when run a second time against the same registry" >&2; rc=1; }
fi
set -e
if [ "$rc" = 5 ] || [ "$rc_jax" = 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
if [ "$rc" != 0 ]; then exit "$rc"; fi
if [ "$rc_docs" != 0 ]; then
  echo "error: the documentation site did not build (bash scripts/docs.sh)" >&2
  exit "$rc_docs"
fi
exit "$rc_jax"
