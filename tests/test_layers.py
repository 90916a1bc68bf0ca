"""The package's layers hold: no module imports one that imports it back
(directly or around a circle), no lower layer imports a higher one, and no
module grows past a size one can read in one sitting.

Every import counts, those inside functions too (nbkeras imports lazily so
that `%load_ext nbkeras` never imports Keras, and a lazy import still ties
two modules together), and so does a module named in `import_module`.
"""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "nbkeras"
TS_ROOT = ROOT.parent / "labextension" / "src"
# `import ... from './x'` and `export ... from './x'`, type-only ones too: a type import
# still ties two files together for the reader and the compiler
TS_IMPORT = re.compile(r"^\s*(?:import|export)\b[^;]*?\bfrom\s*'(\./[^']+)'", re.M | re.S)

# Lowest first. A module may import its own layer's and lower layers' modules.
LAYERS = [
    {"errors", "fmt", "options", "backend", "keras_private", "metricvocab", "state"},
    {"speclang"},      # the language: imports no Keras
    {"modelbuild"},    # spec -> keras.Model
    {"registry"},      # the SQLite run registry: imports no Keras
    {"view"},          # the live panel and the static record
    {"train"},         # %fit
    {"tune"},          # %tune, its workers
    {"results", "serve"},  # %evaluate, %predict, %models, %export; %serve
    {"notebook", "magics", "server", "cli", "__main__", "__init__"},  # the entry points
]
MAX_LINES = 480  # "about 450": split where a file holds two jobs


def _modules():
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(name, path, mods):
    """The nbkeras modules `name` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{up}.{node.module}" if node.module else up
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                       for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", "")) == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            targets = [node.args[0].value]
        out.update(t for t in targets if t in mods and t != name)
    return out


def _graph():
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module} is in no layer: add `{top}` to LAYERS in {__file__}")


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    circles = _cycles(graph)
    assert not circles, "\n".join(
        " <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in graph[a] if b in c)
        for c in circles)


def test_no_lower_layer_imports_a_higher_one():
    upward = [f"{a} (layer {_layer(a)}) -> {b} (layer {_layer(b)})"
              for a, targets in sorted(_graph().items()) for b in sorted(targets)
              if _layer(b) > _layer(a)]
    assert not upward, "\n".join(upward)


def test_the_language_imports_no_keras_and_no_builder():
    graph = _graph()
    for name, path in _modules().items():
        if not name.startswith("nbkeras.speclang"):
            continue
        assert all(t.startswith("nbkeras.speclang") or _layer(t) == 0 for t in graph[name]), \
            (name, graph[name])
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and not n.level}
        assert not imported & {"keras", "tensorflow", "jax", "torch"}, (name, imported)


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_too_long_to_read_in_one_sitting(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines (at most {MAX_LINES}): split it by job"


def _ts_graph():
    files = {p.stem: p for p in TS_ROOT.glob("*.ts*")}
    return {name: {m[2:] for m in TS_IMPORT.findall(path.read_text())} & set(files)
            for name, path in files.items()}


def test_no_sidebar_file_imports_one_that_imports_it_back():
    graph = _ts_graph()
    assert {"model", "groups", "runs"} <= set(graph)
    assert "runs" in graph["groups"] and "groups" in graph["model"]  # the parser reads them
    assert not _cycles(graph), _cycles(graph)


def test_the_checker_sees_a_circle_and_an_upward_import():
    # the oracle of the checks above: a known circle is found, a known upward edge is ranked
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("nbkeras.tune.search") > _layer("nbkeras.train.plan") > _layer("nbkeras.errors")
    graph = _graph()
    assert "nbkeras.train.plan" in graph["nbkeras.tune.trial"]  # a lazy import counts
