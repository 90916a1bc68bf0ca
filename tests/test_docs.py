"""The documentation site, as a reader sees it.

Builds the site with `bash scripts/docs.sh` (which installs the pinned
toolchain, so a missing Sphinx or MyST-NB is a failure here, never a skip)
and checks: every tutorial notebook is a page showing its stored outputs,
the options reference lists every option of every parser, a broken link or
an unknown directive fails the build, and the README is a short front page
whose links resolve.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "docs" / "_build" / "html"
sys.path.insert(0, str(ROOT / "docs" / "_ext"))


@pytest.fixture(scope="module")
def site():
    done = subprocess.run(["bash", "scripts/docs.sh"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"the docs build failed:\n{done.stdout}\n{done.stderr}"
    return HTML


def _notebooks():
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def _outputs(nb_path):
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            yield out


def test_every_notebook_is_a_page_with_its_stored_outputs(site):
    assert _notebooks(), "no tutorial notebooks"
    tutorials = (site / "docs" / "tutorials.html").read_text()
    for nb in _notebooks():
        page = site / "notebooks" / f"{nb.stem}.html"
        assert page.exists(), f"{nb.name} is not a page of the site"
        assert f"../notebooks/{nb.stem}.html" in tutorials, f"{nb.name} is not in the tutorials list"
        text = page.read_text()
        pngs = [o["data"]["image/png"] for o in _outputs(nb) if "image/png" in o.get("data", {})]
        for png in pngs:
            data = base64.b64decode("".join(png) if isinstance(png, list) else png)
            # MyST-NB names each image output by its content's hash
            name = hashlib.sha256(data).hexdigest() + ".png"
            assert f'src="../_images/{name}"' in text, f"{nb.name}: a PNG output is not on its page"
            assert (site / "_images" / name).read_bytes() == data
        htmls = ["".join(o["data"]["text/html"]) for o in _outputs(nb)
                 if "text/html" in o.get("data", {})]
        for out in htmls:
            # the stored HTML (the %fit record, tables) is inlined as it was saved
            assert out.strip()[:300] in text, f"{nb.name}: an HTML output is not on its page"


def test_the_fit_record_is_on_the_quickstart_page(site):
    text = (site / "notebooks" / "quickstart.html").read_text()
    assert "class='nbkeras-panel' data-status='completed'" in text
    assert re.search(r"the model holds the weights of epoch \d+", text)
    assert text.count("<img") >= 2


def _reference_rows(page):
    """{section anchor: set of option names listed} from a generated page."""
    text = page.read_text()
    found = {}
    for m in re.finditer(r'<section id="((?:magic|command)-[\w-]+)">(.*?)</section>', text, re.S):
        body = m.group(2)
        names = set()
        first_cells = r'<tr class="row-(?:odd|even)"><td><p><code class="docutils literal notranslate">(.*?)</code>'
        for cell in re.findall(first_cells, body, re.S):
            plain = html.unescape(re.sub(r"<[^>]+>", "", cell))
            names.update(n.strip() for n in plain.split(","))
        found[m.group(1)] = names
    return found


def _expected(parser):
    from nbkeras_reference import documented_actions

    names = set()
    for action in documented_actions(parser):
        names.update(action.option_strings or [action.dest])
    return names


def test_the_reference_lists_every_option_of_every_magic(site):
    from nbkeras.magics import NbkerasMagics

    rows = _reference_rows(site / "docs" / "reference" / "magics.html")
    parsers = {name: getattr(NbkerasMagics, name).parser for name in NbkerasMagics.magics["line"]
               if hasattr(getattr(NbkerasMagics, name), "parser")}
    assert {"fit", "model", "tune", "evaluate", "predict", "models", "export", "serve"} <= set(parsers)
    for name, parser in parsers.items():
        assert f"magic-{name}" in rows, f"%{name} has no section in the reference"
        assert rows[f"magic-{name}"] == _expected(parser), f"%{name}'s options differ from its parser"
    assert len(rows) == len(parsers)


def test_the_reference_lists_every_option_of_the_commands(site):
    from nbkeras.serve.command import build_parser as serve_parser
    from nbkeras.tune.worker import build_parser as worker_parser

    rows = _reference_rows(site / "docs" / "reference" / "commands.html")
    assert rows["command-serve"] == _expected(serve_parser())
    assert rows["command-tune-worker"] == _expected(worker_parser())
    assert "--parent" not in rows["command-tune-worker"]  # hidden from --help, hidden here


def test_the_reference_shows_defaults_and_help(site):
    text = (site / "docs" / "reference" / "magics.html").read_text()
    assert "Number of epochs (default 10)." in text
    assert "<span class=\"pre\">'median'</span>" in text  # %tune --pruner's default


def test_the_api_and_pages_are_there(site):
    api = (site / "docs" / "reference" / "api.html").read_text()
    for name in ("nbkeras.runs", "nbkeras.job", "nbkeras.serving", "SpecError", "DataError",
                 "UsageError", "TrainingStopped"):
        assert name in api
    for page in ("index", "tutorials", "figures", "contributing", "guide/live-panel",
                 "guide/registry-sidebar", "guide/tune", "guide/devices-code", "guide/serving",
                 "reference/spec-language", "reference/commands"):
        assert (site / "docs" / f"{page}.html").exists(), page
    assert "docs/index.html" in (site / "index.html").read_text()


def test_the_build_imports_no_keras():
    code = ("import sys; sys.path.insert(0, 'docs/_ext'); import nbkeras_reference as r; "
            "r.magic_parsers(); r.command_parsers(); import nbkeras.errors; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_a_broken_link_fails_the_build(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(
        "# T\n\n[gone](missing.md)\n\n![gone](nothere.png)\n\n```{nodirective}\n```\n")
    done = subprocess.run(["bash", "scripts/docs.sh"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "DOCS_SRC": str(tmp_path),
                                            "DOCS_OUT": str(tmp_path / "out" / "html")})
    assert done.returncode != 0
    for warning in ("myst.xref_missing", "image.not_readable", "myst.directive_unknown"):
        assert warning in done.stderr, done.stderr


def test_the_readme_is_a_short_front_page_whose_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert any(t.startswith("docs/") for t in local) and any(t.endswith(".png") for t in local)
    anchors = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    for target in local:
        path, _, anchor = target.partition("#")
        if path:
            assert (ROOT / path).exists(), f"the README links to {path}, which does not exist"
        elif anchor:
            assert anchor in anchors, f"the README links to #{anchor}, no such heading"
    for nb in _notebooks():
        assert f"(notebooks/{nb.name})" in readme, f"the README's tutorial list misses {nb.name}"
    for section in ("## Install", "## Set-up: two commands", "## Dependencies and why"):
        assert section in readme
    for dep in ("sphinx", "myst-nb", "furo"):
        assert dep in readme


def test_the_docs_dependencies_are_pinned():
    pins = [line.split("#")[0].strip() for line in
            (ROOT / "docs" / "requirements.txt").read_text().splitlines()]
    pins = [p for p in pins if p]
    names = {p.split("==")[0] for p in pins}
    assert {"sphinx", "myst-nb", "furo"} <= names
    assert all("==" in p for p in pins)


def test_the_readme_example_runs(tmp_path):
    """The README's first model, cell by cell, in a real IPython shell."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first model in ten lines", 1)[1].split("\n## ", 1)[0]
    cells = [c.strip("\n") for c in re.findall(r"```[a-z]*\n(.*?)```", section, re.S)]
    assert len(cells) == 3 and cells[1].startswith("%%model") and cells[2].startswith("%fit")
    assert sum(len(c.splitlines()) for c in cells) <= 13
    runner = (
        "import json, sys\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "for cell in json.load(open(sys.argv[1])):\n"
        "    ip.run_cell(cell, store_history=True).raise_error()\n"
        "h = ip.user_ns['mnist'].history.history\n"
        "assert len(h['loss']) >= 4 and h['val_accuracy'][-1] > 0.5, h\n")
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    env = {**os.environ, "NBKERAS_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", runner, str(tmp_path / "cells.json")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_the_figures_page_quotes_the_stored_results():
    """The serving, GPU and transfer tables say what benchmarks/results/*.json hold."""
    page = (ROOT / "docs" / "figures.md").read_text()
    results = ROOT / "benchmarks" / "results"
    serve = json.loads((results / "serve.json").read_text())
    for cell in serve["cells"]:
        assert f"{cell['rps']:,.1f}" in page, cell
    gpu = json.loads((results / "gpu_check.json").read_text())
    for way, rate in gpu["panel_rate"]["steps_per_s"].items():
        assert f"| {round(rate):,} |" in page, (way, rate)
    assert gpu["gpus"][0] in page
    transfer = json.loads((results / "transfer.json").read_text())
    readme = (ROOT / "README.md").read_text()
    for row in transfer["accuracy"]:  # the same table on the page and in the README
        line = f"| {row['per_class']} ({row['images']} images) | {row['transfer']:.3f} | " \
               f"{row['scratch']:.3f} |"
        assert line in page and line in readme, line
    assert f"{transfer['epoch_frozen_s']:.2f} s with the base frozen" in page
