"""Re-run the tutorial notebooks and store their outputs, clean.

    .venv/bin/python scripts/make_notebooks.py              # every notebook
    .venv/bin/python scripts/make_notebooks.py cnn callbacks  # just these

The notebooks in notebooks/*.ipynb are the source of the tutorials: edit them
in JupyterLab (or any editor) like any notebook. This script only refreshes
their stored outputs, which are the rendered docs on GitHub: it runs each
notebook in place in a fresh kernel, with a fresh, empty NBKERAS_HOME (so
`%models` and the registry show only that notebook's runs),
TF_CPP_MIN_LOG_LEVEL=3 and PYTHONHASHSEED=0, from the notebooks folder, and
writes it back with

- no widget state (`metadata.widgets`): the live panel's models are dead once
  the kernel is gone, and a finished `%fit` leaves a static HTML record and
  a PNG anyway; the state would only add tens of KB, a PNG included twice;
- no per-cell execution timestamps (diff noise);
- no TensorFlow start-up lines on stderr.

Cell sources and ids are left exactly as they are. CI re-runs the notebooks
with `pytest --nbval-lax`, which compares only the cells tagged
`nbval-check-output` (a cell tag: View → Right Sidebar → Property
Inspector); tests/test_notebooks_meta.py checks the stored
outputs (no widget state, no errors or log noise, sizes bounded).
"""
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat as nbf

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# TensorFlow's C++ start-up lines, should one get past TF_CPP_MIN_LOG_LEVEL.
TF_STARTUP = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|cuda_blas"
    r"|cpu_feature_guard|port)\.cc:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$")


def drop_tf_startup_lines(book):
    """Remove TF_STARTUP lines from stderr outputs; drop outputs left empty."""
    dropped = 0
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                lines = out.text.splitlines(keepends=True)
                rest = [ln for ln in lines if not TF_STARTUP.match(ln.rstrip("\n"))]
                dropped += len(lines) - len(rest)
                if not rest:
                    continue
                out.text = "".join(rest)
            kept.append(out)
        cell.outputs = kept
    return dropped


def strip_widget_state(book):
    """Drop the notebook's widget state and per-cell execution timestamps."""
    book.metadata.pop("widgets", None)
    for cell in book.cells:
        cell.metadata.pop("execution", None)


def execute(book, folder):
    """Run `book` in a fresh kernel with a fresh registry; store the outputs."""
    from nbclient import NotebookClient
    home = tempfile.mkdtemp(prefix="nbkeras-home-")
    env = {"NBKERAS_HOME": home, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(book, timeout=600, kernel_name="python3", store_widget_state=False,
                       record_timing=False,
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    strip_widget_state(book)
    return drop_tf_startup_lines(book)


def main(argv):
    only = {a.removesuffix(".ipynb") for a in argv if not a.startswith("-")}
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    unknown = only - {p.stem for p in paths}
    if unknown:
        raise SystemExit(f"no such notebook in {NOTEBOOKS}: {', '.join(sorted(unknown))}")
    for path in paths:
        if only and path.stem not in only:
            continue
        book = nbf.read(path, as_version=4)
        start = time.perf_counter()
        dropped = execute(book, path.parent)
        nbf.write(book, path)
        print(f"{path.name}: executed in {time.perf_counter() - start:.0f}s"
              f"{f' (dropped {dropped} TensorFlow start-up lines from stderr)' if dropped else ''}")


if __name__ == "__main__":
    main(sys.argv[1:])
