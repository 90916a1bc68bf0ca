"""Static checks of the tutorial notebooks, without running a kernel.

The notebooks in `notebooks/` are both the rendered documentation (their
stored outputs are what a reader sees on GitHub) and tests (CI runs them
under `pytest --nbval-lax`, comparing the cells tagged
`nbval-check-output`: a cell tag, which a reader does not see, where a
`# NBVAL_CHECK_OUTPUT` comment would show in the code). These checks keep them fit for both: each one
introduces itself, downloads nothing, has something for nbval to compare,
and stores clean, small outputs.

The .ipynb files are the tutorials' only source: edit them in JupyterLab;
`scripts/make_notebooks.py` re-runs them in place to refresh their outputs
(without widget state).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
EXPECTED = {"quickstart", "cnn", "functional", "regression", "binary_metrics", "callbacks",
            "tf_data", "serving", "transfer_learning"}
CHECK_TAG = "nbval-check-output"   # nbval's tag form of `# NBVAL_CHECK_OUTPUT`
MAX_CELL_OUTPUT = 100_000
# The whole file: prose, code and outputs (a few PNGs). The largest tutorial
# is about 120 KB; one that grows past this stores something it should not
# (widget state, a PNG per epoch, a long log).
MAX_NOTEBOOK_BYTES = 160_000
# Widget state saved with the notebook (JupyterLab's "Save Widget State
# Automatically", nbclient's default when executing headlessly), and the
# output that points at a widget model. Neither renders once the kernel is
# gone: a finished `%fit` leaves a static HTML record and a PNG instead.
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Code that would fetch data or talk to the network (Keras' `load_data` and
# `get_file`, scikit-learn's `fetch_*`, urllib, requests, any URL).
NETWORK = re.compile(r"load_data|get_file|\bfetch_|urlopen|urlretrieve|\brequests\b|https?:|\bhttp\b|wget|curl")
# A notebook that serves a model (`%serve`) may call that server with
# `requests`, at the address `nbkeras.serving(NAME).url` gives (127.0.0.1):
# only `requests` is allowed there, still no URL written out or download.
LOOPBACK_CLIENT = re.compile(r"\brequests\b")
# What TensorFlow/absl logging and Python warnings look like in an output.
NOISE = re.compile(r"Traceback \(most recent call last\)|\bWarning\b|WARNING|"
                   r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code_cells(book):
    return [c for c in book.cells if c.cell_type == "code"]


def _output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return str(output.get("data", {}).get("text/plain", ""))


def test_the_issue_notebooks_are_all_there():
    assert {p.stem for p in PATHS} >= EXPECTED


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_opens_with_a_markdown_introduction(path):
    book = _read(path)
    first = book.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell should introduce the notebook"
    assert first.source.lstrip().startswith("# "), f"{path.name}: the introduction needs a title"
    assert len(first.source.split()) >= 30, f"{path.name}: the introduction is too short to explain anything"
    prose = [c for c in book.cells if c.cell_type == "markdown"]
    assert len(prose) >= 3, f"{path.name}: the steps need explaining in prose"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_downloads_nothing(path):
    cells = _code_cells(_read(path))
    serves = any(c.source.lstrip().startswith("%serve ") for c in cells)
    for i, cell in enumerate(cells):
        source = LOOPBACK_CLIENT.sub("", cell.source) if serves else cell.source
        found = NETWORK.search(source)
        assert not found, f"{path.name} code cell {i}: {found.group(0)!r} (notebooks must not download)"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_has_cells_that_nbval_checks(path):
    checked = [c for c in _code_cells(_read(path)) if CHECK_TAG in c.metadata.get("tags", [])]
    assert checked, f"{path.name}: no cell tagged `{CHECK_TAG}`, so CI would compare nothing"
    for cell in checked:
        assert cell.outputs, (f"{path.name}: checked cell {cell.source.splitlines()[:1]} has no "
                              "stored output to compare with")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_a_reader_sees_no_test_markers(path):
    """nbval's markers are cell tags, not comments shown in the code."""
    for i, cell in enumerate(_code_cells(_read(path))):
        assert "NBVAL_" not in cell.source, f"{path.name} code cell {i} shows an nbval comment"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_outputs_are_executed_and_clean(path):
    for i, cell in enumerate(_code_cells(_read(path))):
        assert cell.execution_count is not None, (
            f"{path.name} code cell {i} was never run: store the outputs "
            f"(`.venv/bin/python scripts/make_notebooks.py {path.stem}`)")
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name} code cell {i} stored an error"
            assert not (output.output_type == "stream" and output.name == "stderr"), (
                f"{path.name} code cell {i} stored stderr output: {output.text[:200]!r}")
            found = NOISE.search(_output_text(output))
            assert not found, f"{path.name} code cell {i} stored log noise: {found.group(0)!r}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_each_cell_output_is_small(path):
    for i, cell in enumerate(_code_cells(_read(path))):
        size = len(json.dumps(cell.outputs))
        assert size < MAX_CELL_OUTPUT, f"{path.name} code cell {i} stores {size:,} bytes of output"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stores_no_widget_state(path):
    book = _read(path)
    fix = f"(`.venv/bin/python scripts/make_notebooks.py {path.stem}` re-runs it without)"
    stored = "widgets" in book.metadata
    size = len(json.dumps(book.metadata.get("widgets")))
    assert not stored, f"{path.name} stores widget state in metadata.widgets ({size:,} bytes) {fix}"
    for i, cell in enumerate(_code_cells(book)):
        kinds = {kind for output in cell.outputs for kind in output.get("data", {})}
        dead = sorted(kinds & {WIDGET_VIEW, WIDGET_STATE})
        assert not dead, (f"{path.name} code cell {i} stores {dead[0]}: its widget model is dead "
                          f"once the kernel is gone {fix}")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_file_is_small(path):
    size = path.stat().st_size
    assert size < MAX_NOTEBOOK_BYTES, (
        f"{path.name} is {size:,} bytes (limit {MAX_NOTEBOOK_BYTES:,}): what does it store twice?")
