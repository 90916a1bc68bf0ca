"""Shared fixtures: an IPython shell with nbkeras loaded, isolated state.

Layered like JupySQL's: `ip` is a shell with the extension loaded and an
empty namespace; `run` runs a cell and re-raises its error so a test sees
the real exception (a `SpecError`, say) that a user would see as a message.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402


@pytest.fixture(autouse=True)
def nbkeras_home(tmp_path, monkeypatch):
    """Every test gets its own registry directory."""
    home = tmp_path / "nbkeras-home"
    monkeypatch.setenv("NBKERAS_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def _shell():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbkeras")
    return shell


@pytest.fixture
def ip(_shell):
    """The shell, with a fresh user namespace."""
    _shell.user_ns.clear()
    _shell.init_user_ns()
    yield _shell
    _shell.user_ns.clear()
    _shell.init_user_ns()


@pytest.fixture
def run(ip):
    """Run a cell; re-raise its error; return its result."""

    def _run(cell):
        result = ip.run_cell(cell)
        result.raise_error()
        return result.result

    return _run
