"""What a reader of a saved notebook meets: a notebook executed headlessly
(nbclient, as `scripts/make_notebooks.py` stores the tutorials), opened
untrusted in JupyterLab in the light and the dark theme and in Notebook 7,
and converted to
HTML by nbconvert in both themes, and with every style stripped (as GitHub
shows an output).

Untrusted, JupyterLab's sanitizer keeps only plain inline styles: the
`%fit` record's bars must keep their fill and its status line its colour
there, and its PNG and `%evaluate`'s and `%predict --show`'s figures must
read on a dark background. Screenshots go to
test-artifacts/screenshots/reader/ for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from test_browser import (IMG, TOKEN, browser, lab, open_lab,  # noqa: F401 - fixtures
                          write_notebook)
from test_browser_notebook7 import nb7  # noqa: F401 - fixture
from test_browser_sidebar import CONTRAST, _use_theme

SHOTS = IMG / "reader"
EPOCHS = 3
CELLS = [
    "%load_ext nbkeras\n"
    "from sklearn.datasets import load_digits\n"
    "d = load_digits()\n"
    "x = (d.data / 16).astype('float32'); y = d.target; images = d.images",
    "%%model reader --seed 0\ninput 64\ndense 16 relu\ndense 10 softmax",
    f"%fit reader x y -e {EPOCHS} -b 64 --val-split 0.2",
    "%evaluate reader x[:300] y[:300]",
    "%predict reader x[:8] --show 8 --images images[:8] --labels y[:8]",
]
FIT, EVALUATE, PREDICT = 2, 3, 4
GREEN = "rgb(43, 138, 62)"  # the record's "completed"

# Each bar of the record: its track, its fill (fraction of the track) and
# whether the text twin shows; the status line's colour.
READ_RECORD = """(panel) => {
    const bars = [...panel.querySelectorAll('.nbkeras-bar')].map(bar => {
        const fill = bar.querySelector('.nbkeras-bar-fill');
        const text = bar.querySelector('.nbkeras-bar-text');
        const track = bar.getBoundingClientRect();
        return {track: track.width, height: track.height,
                fill: fill.getBoundingClientRect().width / (track.width || 1),
                fillColour: getComputedStyle(fill).backgroundColor,
                trackColour: getComputedStyle(bar).backgroundColor,
                text: text.textContent,
                textWidth: text.getBoundingClientRect().width};
    });
    const status = panel.querySelector('.nbkeras-status');
    let box = panel, background = 'rgba(0, 0, 0, 0)';
    while (box) {  // the first opaque background under the record
        const c = getComputedStyle(box).backgroundColor;
        if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') { background = c; break; }
        box = box.parentElement;
    }
    return {bars, status: getComputedStyle(status).color, background,
            dataStatus: panel.getAttribute('data-status')};
}"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook, executed headlessly with a registry of its own."""
    from nbclient import NotebookClient
    folder = tmp_path_factory.mktemp("reader")
    path = folder / "reader.ipynb"
    write_notebook(path, CELLS)
    book = nbformat.read(path, as_version=4)
    env = {"NBKERAS_HOME": str(folder / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(book, timeout=600, kernel_name="python3", store_widget_state=False,
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    nbformat.write(book, path)
    return path


def _pngs(cell):
    return [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]


def test_the_figures_have_transparent_backgrounds(executed):
    """The record's PNG and %evaluate's and %predict --show's figures sit on
    the notebook's own background, light or dark (checked in the browser
    below, and looked at in the screenshots)."""
    import base64
    import io

    from PIL import Image
    book = nbformat.read(executed, as_version=4)
    for index in (FIT, EVALUATE, PREDICT):
        pngs = _pngs(book.cells[index])
        assert pngs, f"cell {index} shows no figure"
        image = Image.open(io.BytesIO(base64.b64decode(pngs[0]))).convert("RGBA")
        w, h = image.size
        corners = [image.getpixel(p) for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]
        assert all(c[3] == 0 for c in corners), (index, corners)


def _check_record(page, panel, shot: Path, dark: bool):
    """The record's bars full and coloured, its status green and readable."""
    expect(panel).to_be_visible(timeout=60_000)
    seen = panel.evaluate(READ_RECORD)
    assert len(seen["bars"]) == 2, seen  # epochs and the last epoch's batches
    for bar in seen["bars"]:
        assert bar["track"] > 200 and bar["height"] >= 8, bar
        assert bar["fill"] == pytest.approx(1.0, abs=0.02), bar   # 3/3 epochs, all batches
        assert bar["fillColour"] == GREEN, bar
        assert bar["trackColour"] not in ("rgba(0, 0, 0, 0)", "transparent"), bar
        assert bar["textWidth"] == 0 and bar["text"] == "█" * 20, bar  # the twin stays hidden
    assert seen["status"] == GREEN, seen
    contrast = page.evaluate(CONTRAST, [seen["status"], seen["background"]])
    assert contrast >= 3.5, (contrast, seen)
    luminance = page.evaluate(f"({CONTRAST})(['rgb(0,0,0)', '{seen['background']}'])")
    assert (luminance < 2) == dark, seen["background"]  # the theme is what we think it is
    SHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(shot))
    return seen


def test_untrusted_in_jupyterlab_light_and_dark(executed, lab, browser):
    (lab.root / executed.name).write_bytes(executed.read_bytes())
    context, page = open_lab(browser, lab, f"tree/{executed.name}", height=1600)
    try:
        cells = page.locator(".jp-CodeCell")
        expect(cells).to_have_count(len(CELLS), timeout=60_000)
        fit = cells.nth(FIT).locator(".jp-OutputArea")
        record = fit.locator(".nbkeras-panel")
        for theme, dark in (("JupyterLab Light", False), ("JupyterLab Dark", True)):
            _use_theme(page, theme)
            seen = _check_record(page, record, SHOTS / f"fit-record-{'dark' if dark else 'light'}"
                                 ".png", dark)
            # The output was sanitized (untrusted): data attributes are gone.
            assert seen["dataStatus"] is None
            expect(fit.locator("img")).to_have_count(1)
            fit.screenshot(path=str(SHOTS / f"fit-output-{'dark' if dark else 'light'}.png"))
            for index, name in ((EVALUATE, "evaluate"), (PREDICT, "predict")):
                out = cells.nth(index).locator(".jp-OutputArea")
                out.scroll_into_view_if_needed()
                out.screenshot(path=str(SHOTS / f"{name}-{'dark' if dark else 'light'}.png"))
    finally:
        try:
            _use_theme(page, "JupyterLab Light")  # the setting outlives the page
        finally:
            context.close()


def test_untrusted_in_notebook7(executed, nb7, browser):
    (nb7.root / executed.name).write_bytes(executed.read_bytes())
    context = browser.new_context(viewport={"width": 1300, "height": 1600})
    page = context.new_page()
    try:
        page.goto(f"{nb7.url}/notebooks/{executed.name}?token={TOKEN}")
        cells = page.locator(".jp-CodeCell")
        expect(cells).to_have_count(len(CELLS), timeout=90_000)
        record = cells.nth(FIT).locator(".nbkeras-panel")
        seen = _check_record(page, record, SHOTS / "fit-record-notebook7.png", False)
        assert seen["dataStatus"] is None  # sanitized: it was opened untrusted
    finally:
        context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_nbconvert_html(executed, browser, theme):
    out = executed.with_name(f"reader-{theme}.html")
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                    f"--HTMLExporter.theme={theme}", "--output", out.name, str(executed)],
                   check=True, capture_output=True)
    page = browser.new_page(viewport={"width": 1200, "height": 1600})
    try:
        page.goto(out.as_uri())
        _check_record(page, page.locator(".nbkeras-panel"), SHOTS / f"nbconvert-{theme}.png",
                      theme == "dark")
    finally:
        page.close()


def test_with_every_style_stripped_the_bars_are_text(executed, browser):
    """Where no style survives (GitHub's renderer), each bar shows as text."""
    book = nbformat.read(executed, as_version=4)
    html = next(o["data"]["text/html"] for o in book.cells[FIT].outputs
                if "nbkeras-panel" in o.get("data", {}).get("text/html", ""))
    bare = re.sub(r"\sstyle='[^']*'", "", html)
    assert "style=" not in bare
    page = browser.new_page(viewport={"width": 900, "height": 400})
    try:
        page.set_content(f"<html><body>{bare}</body></html>")
        bars = page.locator(".nbkeras-bar-text")
        expect(bars).to_have_count(2)
        for i in range(2):
            expect(bars.nth(i)).to_have_text("█" * 20)
            assert bars.nth(i).bounding_box()["width"] > 50
        expect(page.locator(".nbkeras-epochs")).to_contain_text(f"{EPOCHS}/{EPOCHS}")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".nbkeras-panel").screenshot(path=str(SHOTS / "fit-record-no-style.png"))
    finally:
        page.close()
