"""`%fit`'s live panel in Notebook 7 (not only JupyterLab): the panel is
plain HTML outputs updated in place, so it must draw every epoch there too,
and leave its record; a background run stops from its Stop button there too."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from test_browser import IMG, TOKEN, Lab, browser, run_all, write_notebook  # noqa: F401

EPOCHS = 12
CELLS = [
    "%load_ext nbkeras",
    "from sklearn.datasets import load_digits\nd = load_digits()\n"
    "x = (d.data / 16).astype('float32'); y = d.target",
    "%%model nb7 --seed 0\ninput 64\ndense 32 relu\ndense 10 softmax",
    f"%fit nb7 x y -e {EPOCHS} -b 4 --val-split 0.2",
]


class Notebook7(Lab):
    """The same server set-up as `Lab`, started as Notebook 7."""

    app = "notebook"


@pytest.fixture(scope="module")
def nb7(tmp_path_factory):
    pytest.importorskip("notebook")
    server = Notebook7(tmp_path_factory.mktemp("nb7"))
    yield server
    server.stop()


def run_in_notebook7(nb7, browser, name, cells, height=900):
    """Open `cells` as NAME.ipynb in Notebook 7 and Run All; (context, page)."""
    write_notebook(nb7.root / f"{name}.ipynb", cells)
    context = browser.new_context(viewport={"width": 1300, "height": height})
    page = context.new_page()
    page.goto(f"{nb7.url}/notebooks/{name}.ipynb?token={TOKEN}")
    idle = page.get_by_text(re.compile(r"Kernel status: Idle|Python 3 \(ipykernel\)"))
    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=90_000)
    expect(idle.first).to_be_visible(timeout=90_000)
    page.wait_for_timeout(1500)
    run_all(page)
    return context, page


def test_notebook7_draws_the_panel_every_epoch_and_keeps_the_record(nb7, browser):
    context, page = run_in_notebook7(nb7, browser, "nb7", CELLS)
    try:
        output = page.locator(".jp-CodeCell").nth(3).locator(".jp-OutputArea")
        expect(output.locator(".nbkeras-panel")).to_be_visible(timeout=120_000)
        seen, pictures = set(), set()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            panel = output.locator(".nbkeras-panel").first
            status = panel.get_attribute("data-status")
            if status != "running":
                break
            seen.add(int(panel.get_attribute("data-epochs-done")))
            svg = output.locator("svg")
            if svg.count():
                pictures.add(svg.first.inner_html())
            page.wait_for_timeout(50)
        assert len(seen & set(range(1, EPOCHS))) >= EPOCHS * 0.6, sorted(seen)
        assert len(pictures) >= len(seen) - 1, (len(pictures), sorted(seen))
        expect(output.locator(".nbkeras-panel[data-status='completed']")).to_be_visible(
            timeout=120_000)
        expect(output.locator("img")).to_have_count(1)
        IMG.mkdir(parents=True, exist_ok=True)
        output.screenshot(path=str(IMG / "fit-record-notebook7.png"))
    finally:
        context.close()


BACKGROUND = [
    "%load_ext nbkeras",
    "from sklearn.datasets import load_digits\nd = load_digits()\n"
    "x = (d.data / 16).astype('float32'); y = d.target",
    "%%model nb7bg --seed 0\ninput 64\ndense 32 relu\ndense 10 softmax",
    "job = %fit nb7bg x y -e 200 -b 4 --val-split 0.2 --background",
    "print('free while it trains:', not job.done)",
]


def test_notebook7_background_run_stops_from_its_button(nb7, browser):
    """`%fit --background` in Notebook 7: the next cell runs, the panel goes
    on, and its Stop button (an ipywidget) ends the run with a record."""
    context, page = run_in_notebook7(nb7, browser, "nb7bg", BACKGROUND, height=1200)
    try:
        cells = page.locator(".jp-CodeCell")
        output = cells.nth(3).locator(".jp-OutputArea")
        expect(cells.nth(4).locator(".jp-OutputArea")).to_contain_text(
            "free while it trains: True", timeout=120_000)
        page.wait_for_function(
            """(el) => { const p = el.querySelector('.nbkeras-panel');
                return p && +p.dataset.epochsDone >= 2; }""",
            arg=output.element_handle(), timeout=120_000)
        output.get_by_role("button", name="Stop").click()
        expect(output.locator(".nbkeras-panel[data-status='stopped']")).to_be_visible(
            timeout=60_000)
        expect(output.get_by_role("button", name="Stop")).to_have_count(0)
        expect(output.locator("img")).to_have_count(1)
    finally:
        context.close()
