"""Transfer learning as a user meets it in real JupyterLab (Playwright + Debian's
chromium): a model on a frozen `base` trained with `--fine-tune`, watched
while it runs. The panel must show the phase boundary on the live curves as
soon as the second phase begins (not only in the final record), keep counting
epochs across both phases, and say what the second phase unfroze. Screenshot
(mid-run, in the second phase) to test-artifacts/screenshots/.
"""

from __future__ import annotations

import time

from playwright.sync_api import expect

from test_browser import IMG, browser, lab, run_notebook  # noqa: F401

HEAD, TUNE = 6, 6
CELLS = [
    "%load_ext nbkeras",
    "import numpy as np\nfrom sklearn.datasets import load_digits\nd = load_digits()\n"
    "x = (d.images / 16).astype('float32')[..., None]; y = d.target",
    "%%model enc --seed 0\ninput 8x8x1\nconv 8 3x3 relu same\nbn\nfeat = gap\ndense 10 softmax",
    "%fit enc x y -e 3 --quiet",
    "%export enc enc.keras",
    '%%model ft --seed 0\ninput 8x8x1\nbase "enc.keras" output=feat\ndense 16 relu\n'
    "dense 10 softmax",
    f"%fit ft x y -e {HEAD} -b 4 --val-split 0.2 --fine-tune all --fine-tune-epochs {TUNE}",
]

SAMPLE_JS = """(el) => {
  const panel = el.querySelector('.nbkeras-panel');
  return {epoch: panel ? +panel.dataset.epochsDone : null,
          status: panel ? panel.dataset.status : null,
          phases: el.querySelectorAll('svg .phase').length,
          text: el.innerText};
}"""


def test_fine_tuning_shows_its_phase_boundary_live(lab, browser):
    context, page, notebook = run_notebook(browser, lab, "finetune.ipynb", CELLS)
    try:
        output = notebook.locator(".jp-CodeCell").nth(6).locator(".jp-OutputArea")
        expect(output.locator(".nbkeras-panel")).to_be_visible(timeout=180_000)
        samples, shot = [], False
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            s = output.evaluate(SAMPLE_JS)
            if s["status"] not in (None, "running"):
                break
            if s["status"] == "running":
                samples.append(s)
                if not shot and s["epoch"] and s["epoch"] >= HEAD + 2 and s["phases"]:
                    IMG.mkdir(parents=True, exist_ok=True)
                    output.screenshot(path=str(IMG / "fit-fine-tune-live.png"))
                    shot = True
            page.wait_for_timeout(50)
        running = [s for s in samples if s["epoch"]]
        assert running, "the panel never showed a running state"
        head = [s for s in running if s["epoch"] < HEAD]
        tune = [s for s in running if s["epoch"] > HEAD + 1]
        assert head and tune, sorted({s["epoch"] for s in running})
        assert not any(s["phases"] for s in head), "a boundary drawn before the second phase"
        assert all(s["phases"] for s in tune), "the second phase ran without its boundary"
        assert shot
        expect(output.locator(".nbkeras-panel[data-status='completed']")).to_be_visible(
            timeout=120_000)
        text = output.inner_text()
        assert f"epoch {HEAD + TUNE} of {HEAD + TUNE}" in text
        assert f"fine-tuning from epoch {HEAD + 1}" in text
    finally:
        context.close()
