#!/usr/bin/env bash
# Refresh the README's pictures (docs/img/sidebar.png, sidebar-compare.png,
# sidebar-study.png, sidebar-dark.png, fit-panel-live.png, fit-record.png,
# fit-background-live.png).
#
# The browser tests that train a model in JupyterLab take them; it writes
# them to test-artifacts/screenshots/ (ignored by git), so running the test
# suite never changes a tracked file. This script runs those tests and
# copies its screenshots into docs/img/, for a person to look at and commit.
# Needs Debian's chromium (apt-get install -y chromium) and a set-up .venv
# (bash scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
shots=test-artifacts/screenshots
images=(sidebar.png sidebar-compare.png sidebar-study.png sidebar-dark.png fit-panel-live.png
        fit-record.png fit-background-live.png)
for name in "${images[@]}"; do rm -f "$shots/$name"; done
NBKERAS_HOME="$(mktemp -d)" TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0 \
  .venv/bin/python -m pytest -q -p no:cacheprovider \
  "tests/test_browser.py::test_notebook_training_shows_live_in_the_sidebar" \
  "tests/test_browser_panel.py::test_live_panel_draws_every_epoch_and_agrees_with_itself" \
  "tests/test_browser_background.py::test_background_run_leaves_the_kernel_free_and_stops_from_its_button" \
  "tests/test_browser_sidebar.py::test_compare_two_runs_and_delete_one_at_the_default_width" \
  "tests/test_browser_sidebar.py::test_studies_and_folds_are_rows_that_open_and_read_in_the_dark_theme" \
  "$@"
mkdir -p docs/img
for name in "${images[@]}"; do
  if [ ! -s "$shots/$name" ]; then
    echo "error: the test passed but left no $shots/$name" >&2
    exit 1
  fi
  cp "$shots/$name" "docs/img/$name"
  echo "docs/img/$name updated"
done
