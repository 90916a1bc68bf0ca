"""Loading the extension: fast, no Keras import, magics registered."""

import subprocess
import sys
import textwrap

import pytest

from nbkeras.errors import UsageError
from nbkeras.notebook.lineargs import split_line


def test_load_ext_registers_magics(ip):
    magics = ip.magics_manager.magics
    for name in ["fit", "evaluate", "predict", "models", "export"]:
        assert name in magics["line"]
    assert "model" in magics["cell"]


def test_load_ext_does_not_import_keras_and_is_fast():
    code = textwrap.dedent("""
        import sys, time
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        t = time.perf_counter()
        ip.run_line_magic("load_ext", "nbkeras")
        dt = time.perf_counter() - t
        bad = [m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules]
        print(dt, bad)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, bad = out.stdout.strip().split(" ", 1)
    assert bad == "[]"
    assert float(dt) < 0.5


@pytest.mark.parametrize("line, expected", [
    ("m x y", ["m", "x", "y"]),
    ("m [x_img, x_meta] {'digit': y, 'size': s} -e 3",
     ["m", "[x_img, x_meta]", "{'digit': y, 'size': s}", "-e", "3"]),
    ("m x[: 100] y[: 100]", ["m", "x[: 100]", "y[: 100]"]),
    ("m df[['a', 'b']] 'a b'", ["m", "df[['a', 'b']]", "'a b'"]),
])
def test_split_line_keeps_expressions_whole(line, expected):
    assert split_line(line) == expected


@pytest.mark.parametrize("line", ["m x[1", "m x)", "m 'abc"])
def test_split_line_reports_unbalanced(line):
    with pytest.raises(UsageError):
        split_line(line)


def test_first_keras_import_prints_no_tensorflow_startup_noise():
    # TF 2.21 wrote CUDA-probe lines to stderr in every first %%model cell
    code = "from nbkeras.backend import import_keras; k = import_keras(); print(k.__name__)"
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "keras"
    assert "cuda" not in out.stderr.lower() and "absl" not in out.stderr


def test_the_spec_language_imports_neither_keras_nor_ipython():
    code = textwrap.dedent("""
        import sys
        import nbkeras.speclang.codegen, nbkeras.speclang.lint, nbkeras.speclang.parse
        bad = [m for m in ("keras", "tensorflow", "IPython", "ipywidgets") if m in sys.modules]
        print(bad)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unloading_restores_a_handler_installed_before(ip):
    import nbkeras

    def mine(shell, etype, evalue, tb, tb_offset=None):
        return ["mine"]

    nbkeras.unload_ipython_extension(ip)
    ip.set_custom_exc((ZeroDivisionError,), mine)
    nbkeras.load_ipython_extension(ip)
    nbkeras.unload_ipython_extension(ip)
    assert ip.custom_exceptions == (ZeroDivisionError,)
    ip.set_custom_exc((), None)
    nbkeras.load_ipython_extension(ip)
