"""`%fit --background` in real JupyterLab (Playwright + Debian's chromium).

The user starts a background run, runs another cell while it trains, sees
the panel go on counting epochs in the first cell (not in the second), and
ends the run with the panel's Stop button. Screenshots (mid-run, stopped)
go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from test_browser import (IMG, browser, lab, open_lab, run_all,  # noqa: F401
                          wait_for_kernel, write_notebook)

CELLS = [
    "%load_ext nbkeras",
    "import numpy as np\nfrom sklearn.datasets import load_digits\nd = load_digits()\n"
    "x = (d.data / 16).astype('float32'); y = d.target",
    "%%model bg_nb --seed 0\ninput 64\ndense 32 relu\ndense 10 softmax",
    "job = %fit bg_nb x y -e 200 -b 4 --val-split 0.2 --background",
    "import time\nt0 = time.perf_counter()\nmean = float(x.mean())\n"
    "print(f'free in {time.perf_counter() - t0:.3f}s while epoch', job.epoch, 'trains;',"
    " 'done:', job.done)",
]

EPOCHS_JS = """(el) => { const p = el.querySelector('.nbkeras-panel');
  return p ? {done: +p.dataset.epochsDone, status: p.dataset.status} : null; }"""


def test_background_run_leaves_the_kernel_free_and_stops_from_its_button(lab, browser):
    write_notebook(lab.root / "background.ipynb", CELLS)
    context, page = open_lab(browser, lab, "tree/background.ipynb", height=1300)
    try:
        notebook = page.locator(".jp-NotebookPanel")
        expect(notebook).to_be_visible(timeout=60_000)
        wait_for_kernel(page)
        run_all(page)
        cells = notebook.locator(".jp-CodeCell")
        fit_out = cells.nth(3).locator(".jp-OutputArea")
        other_out = cells.nth(4).locator(".jp-OutputArea")
        # the next cell ran while the run trains: the kernel is free
        expect(other_out).to_contain_text("done: False", timeout=120_000)
        assert re.search(r"free in 0\.0\d\ds", other_out.inner_text()), other_out.inner_text()
        expect(fit_out.locator(".nbkeras-panel[data-status='running']")).to_be_visible()
        assert other_out.locator(".nbkeras-panel").count() == 0

        # the panel in the first cell goes on counting epochs after that cell returned
        first = fit_out.evaluate(EPOCHS_JS)
        page.wait_for_function(
            """([el, n]) => { const p = el.querySelector('.nbkeras-panel');
                return p && +p.dataset.epochsDone >= n + 2; }""",
            arg=[fit_out.element_handle(), first["done"]], timeout=120_000)
        stop = fit_out.get_by_role("button", name="Stop")
        expect(stop).to_be_visible()
        cells.nth(4).scroll_into_view_if_needed()
        IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMG / "fit-background-live.png"))
        stop.click()
        expect(fit_out.locator(".nbkeras-panel[data-status='stopped']")).to_be_visible(
            timeout=60_000)
        expect(fit_out.get_by_role("button", name="Stop")).to_have_count(0)
        expect(fit_out.locator("img")).to_have_count(1)  # the record's chart
        assert "stopped at epoch" in fit_out.inner_text()
        done = fit_out.evaluate(EPOCHS_JS)["done"]
        assert 2 <= done < 200
        page.screenshot(path=str(IMG / "fit-background-stopped.png"))
    finally:
        context.close()
