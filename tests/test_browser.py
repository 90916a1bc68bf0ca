"""The JupyterLab sidebar in a real browser: Playwright drives Debian's
Chromium (no browser download) against a fresh JupyterLab server.

The server gets its own root, workspace and settings folders and its own
`NBKERAS_HOME`. One test runs a notebook that trains a tiny model with
`%%model` and `%fit` and watches the sidebar list the run, count its epochs
while it trains and show its final metrics; it saves the screenshots the
README shows, into test-artifacts/screenshots/ (ignored by git;
`scripts/refresh_readme_images.sh` copies them to docs/img). Others write
runs into the server's registry from the test process, the way a training
kernel does, to time the updates and check that names stay text, that the
hidden panel asks nothing of the server, that 10,000 runs scroll, and that
a missing server extension is explained. Elements are found by role and
accessible name.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from playwright.sync_api import expect, sync_playwright

from nbkeras.fmt import fmt
from nbkeras.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
# Screenshots go to an ignored folder, so running the tests leaves the tree
# clean; scripts/refresh_readme_images.sh copies them into docs/img.
IMG = ROOT / "test-artifacts" / "screenshots"
TOKEN = "nbkeras-browser-test"
XSS = "<img src=x onerror=alert(1)>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server in a subprocess, with everything in `base`."""

    app = "jupyterlab"  # the module `python -m` starts (Notebook 7: "notebook")

    def __init__(self, base: Path, extra_args=()):
        self.base = base
        self.home = base / "nbkeras-home"
        self.root = base / "root"
        settings = base / "app-settings"
        for d in (self.home, self.root, settings, base / "user-settings", base / "ws",
                  base / "runtime"):
            d.mkdir(parents=True, exist_ok=True)
        (settings / "overrides.json").write_text(json.dumps({
            "@jupyterlab/apputils-extension:notification": {
                "fetchNews": "false", "checkForUpdates": False},
        }))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, NBKERAS_HOME=str(self.home),
                   JUPYTER_RUNTIME_DIR=str(base / "runtime"),
                   TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.log = open(base / "lab.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.app, "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
             f"--ServerApp.root_dir={self.root}",
             f"--LabApp.workspaces_dir={base / 'ws'}",
             f"--LabServerApp.app_settings_dir={settings}",
             f"--LabServerApp.user_settings_dir={base / 'user-settings'}",
             *extra_args],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyter lab exited:\n" + (self.base / "lab.log").read_text())
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={TOKEN}", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("jupyter lab did not start:\n" + (self.base / "lab.log").read_text())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


_WORKSPACES = itertools.count()


def open_lab(browser, lab, path="", width=1400, height=900):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    page = context.new_page()
    # A workspace of its own: no layout carries over from another test.
    page.goto(f"{lab.url}/lab/workspaces/w{next(_WORKSPACES)}/{path}?token={TOKEN}")
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
    return context, page


def wait_for_kernel(page):
    """Until the notebook's kernel is idle (choosing it when JupyterLab asks)."""
    kernel = page.get_by_role("button", name=re.compile(r"Python 3 \(ipykernel\) \| Idle"))
    select_kernel = page.get_by_role("dialog").get_by_role("button", name="Select Kernel")
    expect(kernel.or_(select_kernel).first).to_be_visible(timeout=90_000)
    if select_kernel.is_visible():
        select_kernel.click()
    expect(kernel).to_be_visible(timeout=90_000)


def run_all(page):
    """Run → Run All Cells, as a user does (JupyterLab and Notebook 7 menus)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile("^Run All Cells")).click()


def show_sidebar(page):
    tab = page.get_by_role("tab", name="Keras runs")
    expect(tab).to_be_visible(timeout=30_000)
    tab.click()
    panel = page.get_by_role("region", name="Keras runs")
    expect(panel).to_be_visible()
    return tab, panel


def widen_sidebar(page, width):
    """Drags the handle between the left sidebar and the main area."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    left = page.locator("#jp-left-stack").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(left["x"] + width, y, steps=5)
    page.mouse.up()


def run_option(panel, model, run_id):
    return panel.get_by_role("option", name=f"{model} run {run_id}", exact=True)


def test_rest_api_needs_the_token(lab):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{lab.url}/nbkeras/api/runs", timeout=5)
    assert info.value.code == 403
    with urllib.request.urlopen(f"{lab.url}/nbkeras/api/runs?token={TOKEN}", timeout=5) as r:
        assert set(json.load(r)) == {"runs", "cursor"}


NOTEBOOK_CELLS = [
    "%load_ext nbkeras\n"
    "from sklearn.datasets import load_digits\n"
    "x, y = load_digits(return_X_y=True)\n"
    "x = (x / 16).astype('float32')",
    "%%model digits_nb\n"
    "input 64\n"
    "dense 64 relu\n"
    "dropout 0.1\n"
    "dense 10 softmax",
    # Small batches: each epoch takes a moment, so the sidebar can be seen
    # counting epochs while the run trains.
    "%fit digits_nb x y --val-split 0.2 --epochs 10 --batch-size 4 --seed 0",
]


def write_notebook(path: Path, cells) -> None:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}",
                   "metadata": {}, "outputs": [], "source": src}
                  for i, src in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)",
                                    "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }))


def run_notebook(browser, lab, name: str, cells):
    """Write `cells` as notebook `name`, open it in JupyterLab and run them all:
    (context, page, the notebook panel). The caller closes the context."""
    write_notebook(lab.root / name, cells)
    context, page = open_lab(browser, lab, f"tree/{name}")
    notebook = page.locator(".jp-NotebookPanel")
    expect(notebook).to_be_visible(timeout=60_000)
    wait_for_kernel(page)
    run_all(page)
    return context, page, notebook


def test_notebook_training_shows_live_in_the_sidebar(lab, browser):
    write_notebook(lab.root / "train.ipynb", NOTEBOOK_CELLS)
    context, page = open_lab(browser, lab, "tree/train.ipynb")
    try:
        notebook = page.locator(".jp-NotebookPanel")
        expect(notebook).to_be_visible(timeout=60_000)
        wait_for_kernel(page)
        _, panel = show_sidebar(page)
        if not Registry(lab.home).run_summaries():
            expect(panel.get_by_text("No runs yet")).to_be_visible()
        run_all(page)

        row = panel.get_by_role("option", name=re.compile(r"^digits_nb run \d+$"))
        expect(row).to_be_visible(timeout=120_000)
        # Watch the row while the run trains: the epoch count must move
        # through values between 0 and 10 before the run completes.
        seen = set()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            text = row.inner_text()
            m = re.search(r"(\d+)/10 ep", text)
            if m and "running" in text:
                seen.add(int(m.group(1)))
            if "completed" in text or "failed" in text:
                break
            page.wait_for_timeout(100)
        expect(row).to_contain_text("completed")
        expect(row).to_contain_text("10/10 ep")
        assert len(seen & set(range(1, 10))) >= 2, f"epoch counts seen while running: {seen}"

        # The final metrics are those the registry recorded, shown as text.
        run = Registry(lab.home).run_summaries(model="digits_nb")[0]
        assert run["status"] == "completed" and run["epochs"] == 10
        final = run["last"]["val_accuracy"]
        best = run["best"]["val_accuracy"]
        expect(row).to_contain_text(f"{fmt(final)} best {fmt(best)} @"
                                    f"{run['best_epoch']['val_accuracy']}")
        expect(row).to_contain_text("train.ipynb")

        row.click()
        details = panel.get_by_role("region", name="Run details")
        expect(details.get_by_role("img", name="loss curves")).to_be_visible()
        expect(details.locator("pre.nbk-spec")).to_contain_text("dense 64 relu")
        expect(details.get_by_role("button", name="Copy as %%model cell")).to_be_visible()
        # The kernel records an absolute path; the panel shows it relative to
        # the server root, as a link that opens the notebook.
        expect(details.get_by_role("button", name="train.ipynb", exact=True)).to_be_visible()
        widen_sidebar(page, 380)
        IMG.mkdir(parents=True, exist_ok=True)
        panel.screenshot(path=str(IMG / "sidebar.png"))

        fit_output = notebook.locator(".jp-CodeCell").nth(2).locator(".jp-OutputArea")
        expect(fit_output).to_contain_text("digits_nb")
        fit_output.screenshot(path=str(IMG / "fit-panel.png"))
    finally:
        context.close()


def test_sidebar_follows_a_run_live(lab, browser):
    registry = Registry(lab.home)
    context, page = open_lab(browser, lab)
    alerts = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    try:
        _, panel = show_sidebar(page)

        spec = "input 64\ndense 32 relu\ndropout 0.2\ndense 10 softmax"
        vid = registry.add_model_version("digits", spec, params=2410)
        rid = registry.start_run(model="digits", version_id=vid, options={"epochs": 4},
                                 device="CPU", backend="tensorflow", epochs_planned=4,
                                 notebook="train/digits.ipynb")
        row = run_option(panel, "digits", rid)
        expect(row).to_be_visible(timeout=5_000)
        expect(row).to_contain_text("running")
        expect(row).to_contain_text("0/4")

        # Each finished epoch shows up within about a second (the panel polls
        # every 0.7 s); the margin absorbs a busy CI machine.
        latencies = []
        curves = [(1.2, 0.9, 0.62, 0.70), (0.7, 0.6, 0.80, 0.83), (0.45, 0.5, 0.88, 0.86),
                  (0.35, 0.52, 0.9, 0.85)]
        for epoch, (loss, val_loss, acc, val_acc) in enumerate(curves):
            registry.log_epoch(rid, epoch + 1, {"loss": loss, "val_loss": val_loss,
                                            "accuracy": acc, "val_accuracy": val_acc})
            t = time.monotonic()
            expect(row).to_contain_text(f"{epoch + 1}/4", timeout=3_000)
            latencies.append(time.monotonic() - t)
        assert max(latencies) < 2.0, latencies
        registry.end_run(rid, "completed")
        expect(row).to_contain_text("completed")
        expect(row).to_contain_text("0.8500 best 0.8600 @3")

        # A hostile model name is shown as text and runs nothing.
        bad = registry.start_run(model=XSS, version_id=None, options={}, device="CPU",
                                 backend="tensorflow", epochs_planned=1)
        registry.log_epoch(bad, 1, {"loss": 1.0})
        registry.end_run(bad, "failed", "ValueError: boom")
        expect(run_option(panel, XSS, bad)).to_be_visible()
        expect(panel.get_by_role("button", name=f"{XSS}: 1 run")).to_contain_text(XSS)
        assert panel.locator("img").count() == 0
        assert alerts == []

        # Filter by name; sort by a metric.
        panel.get_by_role("searchbox", name="Filter by model name").fill("DIG")
        expect(run_option(panel, XSS, bad)).to_have_count(0)
        expect(row).to_be_visible()
        panel.get_by_role("searchbox", name="Filter by model name").fill("")
        expect(run_option(panel, XSS, bad)).to_be_visible()
        panel.get_by_role("combobox", name="Sort by").select_option("val_loss")
        expect(row).to_contain_text("0.5200 best 0.5000 @3")

        # The selected run: curves, final metrics, spec and its copy button.
        row.click()
        expect(row).to_have_attribute("aria-selected", "true")
        details = panel.get_by_role("region", name="Run details")
        expect(details).to_contain_text("digits · run #")
        expect(details.get_by_role("img", name="loss curves")).to_be_visible()
        expect(details.get_by_role("img", name="accuracy curves")).to_be_visible()
        expect(details.get_by_role("table", name="Results")).to_contain_text("val_accuracy")
        expect(details.locator("pre.nbk-spec")).to_have_text(spec)
        details.get_by_role("button", name="Copy as %%model cell").click()
        expect(details.get_by_role("button", name="Copied")).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"%%model digits\n{spec}\n"
    finally:
        context.close()


def test_hidden_sidebar_does_not_poll(lab, browser):
    context, page = open_lab(browser, lab)
    calls = []
    page.on("request", lambda r: calls.append(time.monotonic())
            if "/nbkeras/api/runs" in r.url else None)
    try:
        tab, panel = show_sidebar(page)
        page.wait_for_timeout(2_000)
        assert len(calls) >= 2, "the visible panel polls"
        tab.click()  # collapses the left sidebar
        expect(panel).to_be_hidden()
        page.wait_for_timeout(300)  # a request in flight may still land
        n = len(calls)
        page.wait_for_timeout(2_500)
        assert len(calls) == n, "the hidden panel made requests"
        tab.click()
        expect(panel).to_be_visible()
        page.wait_for_timeout(1_500)
        assert len(calls) > n
    finally:
        context.close()


def test_many_runs_render_only_the_visible_rows(lab, browser):
    # 10,000 runs served to the panel in place of the server's answer: this
    # checks the list, not the registry.
    runs = [{"id": i, "model": f"bulk{i % 50}", "version_id": None, "status": "completed",
             "started": "2026-01-01T00:00:00+00:00", "ended": "2026-01-01T00:00:30+00:00",
             "duration": 30.0, "device": "CPU", "backend": "tensorflow", "notebook": None,
             "epochs": 5, "epochs_planned": 5, "last": {"val_loss": i / 1e4},
             "best": {"val_loss": i / 1e4}, "best_epoch": {"val_loss": 4}, "seq": 1}
            for i in range(10_000, 0, -1)]
    full = json.dumps({"runs": runs, "cursor": 1})
    quiet = json.dumps({"runs": [], "cursor": 1})

    def answer(route):
        body = quiet if "since=" in route.request.url else full
        route.fulfill(status=200, content_type="application/json", body=body)

    context, page = open_lab(browser, lab)
    context.route(re.compile(r".*/nbkeras/api/runs(\?.*)?$"), answer)
    try:
        _, panel = show_sidebar(page)
        listbox = panel.get_by_role("listbox", name="Runs")
        expect(run_option(listbox, "bulk0", 10_000)).to_be_visible(timeout=15_000)
        assert listbox.get_by_role("option").count() < 60
        frames = page.evaluate("""async () => {
            const box = document.querySelector('[role=listbox][aria-label=Runs]');
            const times = [];
            for (let i = 0; i < 60; i++) {
              box.scrollTop += 4000;
              const t = performance.now();
              await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
              times.push(performance.now() - t);
            }
            return times;
        }""")
        assert listbox.get_by_role("option").count() < 60
        expect(listbox.get_by_role("option").first).to_be_visible()
        frames.sort()
        assert frames[len(frames) // 2] < 100, frames  # median frame pair well under 0.1 s
    finally:
        context.close()


def test_missing_server_extension_says_how_to_enable_it(tmp_path, browser):
    lab = Lab(tmp_path, extra_args=["--ServerApp.jpserver_extensions=nbkeras=False"])
    try:
        context, page = open_lab(browser, lab)
        try:
            _, panel = show_sidebar(page)
            alert = panel.get_by_role("alert")
            expect(alert).to_contain_text("jupyter server extension enable nbkeras",
                                          timeout=10_000)
        finally:
            context.close()
    finally:
        lab.stop()
