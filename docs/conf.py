"""Sphinx configuration of the nbkeras site (`bash scripts/docs.sh` builds it).

The source folder is the repository root (`sphinx-build -c docs . ...`) so
that the tutorials are pages straight from `notebooks/*.ipynb`: MyST-NB
renders their stored outputs (`nb_execution_mode = "off"`), nothing copies
them. `include_patterns` keeps the site to docs/ and those notebooks.
"""

import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))
# Importing nbkeras for autodoc and the options reference imports no Keras;
# keep TensorFlow quiet should anything ever do so.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

project = "nbkeras"
author = "the nbkeras authors"
copyright = "the nbkeras authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "nbkeras_reference",
]

root_doc = "docs/index"
include_patterns = ["docs/**", "notebooks/*.ipynb"]
# Folders pruned before the walk (include_patterns alone would still walk
# .venv and node_modules).
exclude_patterns = [
    ".git", ".venv", "venv", "node_modules", "labextension", "nbkeras", "tests",
    "benchmarks", "scripts", "jupyter-config", "test-artifacts", "build", "dist",
    "docs/_build", "docs/_ext", "docs/requirements.txt", "**/.ipynb_checkpoints",
    "nbkeras_code", "README.md",
]

# MyST-NB: render the notebooks' stored outputs, never run them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc + napoleon: the Python API from its Google-style docstrings.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = "nbkeras"
html_static_path = []

nitpicky = True  # every cross-reference must resolve (it does; keep it so)
html_copy_source = False  # the notebooks stay where they are; no _sources copy


def _front_door(app, exception):
    """docs/_build/html/index.html: the root document lives at docs/index.html."""
    if exception is None and app.builder.format == "html":
        import pathlib
        (pathlib.Path(app.outdir) / "index.html").write_text(
            '<!DOCTYPE html><meta charset="utf-8"><title>nbkeras</title>'
            '<meta http-equiv="refresh" content="0; url=docs/index.html">'
            '<a href="docs/index.html">nbkeras documentation</a>\n', encoding="utf-8")


def setup(app):
    app.connect("build-finished", _front_door)
smartquotes = False  # `--devices` in a title stays two hyphens (not an en dash) in the navigation
