"""`%fit`'s live panel in real JupyterLab (Playwright + Debian's chromium),
watched the way a user meets it: sampled while a 24-epoch run trains, then
reloaded from the saved file.

Checks that the chart changes at every epoch (it is drawn by the browser
from inline SVG, not rendered in the kernel), that the header, the epoch
bar and the table agree in every sample (one snapshot), and that the
record left in the file is an image that survives a reload with no kernel.
Screenshots (mid-run and final) go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import hashlib
import json
import time

from playwright.sync_api import expect

from test_browser import IMG, browser, lab, run_notebook  # noqa: F401

EPOCHS = 24
CELLS = [
    "%load_ext nbkeras",
    "import numpy as np\nfrom sklearn.datasets import load_digits\nd = load_digits()\n"
    "x = (d.data / 16).astype('float32'); y = d.target",
    "%%model live_nb --seed 0\ninput 64\ndense 32 relu\ndense 10 softmax",
    f"%fit live_nb x y -e {EPOCHS} -b 4 --val-split 0.2",
]


SAMPLE_JS = """(el) => {
  const panel = el.querySelector('.nbkeras-panel');
  const table = el.querySelector('table.nbkeras-metrics');
  const svgs = [...el.querySelectorAll('svg')].map(s => s.outerHTML).join('');
  const epochs = el.querySelector('.nbkeras-epochs-text');
  const best = [...el.querySelectorAll('svg circle.best')].map(c => +c.dataset.epoch);
  return {panel: panel ? +panel.dataset.epochsDone : null,
          status: panel ? panel.dataset.status : null,
          table: table ? +table.dataset.epochsDone : null,
          bar: epochs ? epochs.textContent : null, svg: svgs, best: best,
          img: el.querySelectorAll('img').length};
}"""


def test_live_panel_draws_every_epoch_and_agrees_with_itself(lab, browser):
    context, page, notebook = run_notebook(browser, lab, "live.ipynb", CELLS)
    try:
        output = notebook.locator(".jp-CodeCell").nth(3).locator(".jp-OutputArea")
        expect(output.locator(".nbkeras-panel")).to_be_visible(timeout=120_000)

        samples, shot = [], False
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            s = output.evaluate(SAMPLE_JS)
            if s["status"] != "running":
                break
            samples.append(s)
            if not shot and s["panel"] and s["panel"] >= EPOCHS // 2:
                IMG.mkdir(parents=True, exist_ok=True)
                output.screenshot(path=str(IMG / "fit-panel-live.png"))
                shot = True
            page.wait_for_timeout(40)
        assert samples, "the panel never showed a running state"
        for s in samples:  # one snapshot: header, epoch bar and table agree
            if s["table"] is not None:
                assert s["table"] == s["panel"], s
            assert s["bar"].startswith(f"{s['panel']}/{EPOCHS}"), s
            assert all(b <= s["panel"] for b in s["best"]), s
        seen = {s["panel"] for s in samples}
        assert len(seen & set(range(1, EPOCHS))) >= EPOCHS * 0.7, f"epochs seen: {sorted(seen)}"
        pictures = {}
        for s in samples:
            pictures.setdefault(s["panel"], set()).add(hashlib.md5(s["svg"].encode()).hexdigest())
        all_pictures = {h for hs in pictures.values() for h in hs}
        IMG.mkdir(parents=True, exist_ok=True)
        (IMG.parent / "liveness.json").write_text(json.dumps({
            "epochs": EPOCHS, "samples": len(samples), "epochs_seen_running": len(seen),
            "distinct_chart_pictures": len(all_pictures),
            "epochs_with_a_new_picture": sum(1 for hs in pictures.values() if hs)}, indent=1))
        # the chart changes at every epoch end (and between them, with the batch trace)
        assert len(all_pictures) >= len(seen), (len(all_pictures), sorted(seen))
        assert all(s["svg"] for s in samples if s["panel"]), "an epoch passed with no chart"

        expect(output.locator(".nbkeras-panel[data-status='completed']")).to_be_visible(
            timeout=120_000)
        expect(output.locator("img")).to_have_count(1)
        IMG.mkdir(parents=True, exist_ok=True)
        output.screenshot(path=str(IMG / "fit-record.png"))

        # The record is in the file: it survives a reload with no widget state.
        page.keyboard.press("Control+s")
        page.wait_for_timeout(1500)
        page.reload()
        notebook = page.locator(".jp-NotebookPanel")
        expect(notebook).to_be_visible(timeout=60_000)
        output = notebook.locator(".jp-CodeCell").nth(3).locator(".jp-OutputArea")
        expect(output.locator(".nbkeras-panel[data-status='completed']")).to_be_visible(
            timeout=60_000)
        image = output.locator("img")
        expect(image).to_have_count(1)
        assert image.evaluate("i => i.naturalWidth") > 0
    finally:
        context.close()
