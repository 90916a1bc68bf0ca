"""`%serve` in real JupyterLab (Playwright + Debian's chromium).

The user serves a model from a notebook; clients call it while the user
watches: the cell shows the address and a `curl` example, and its live line
counts the requests as they come (several different counts seen while the
load runs, not only the last), with the final count equal to what was
sent. Shutting the kernel down frees the port. Screenshots (mid-load, after)
go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import httpx
from playwright.sync_api import expect

from test_browser import (IMG, browser, lab, open_lab, run_all,  # noqa: F401
                          wait_for_kernel, write_notebook)

CELLS = [
    "%load_ext nbkeras",
    "from sklearn.datasets import load_digits\nd = load_digits()\n"
    "x = (d.data / 16).astype('float32'); y = d.target",
    "%%model srv --seed 0\ninput 64\ndense 32 relu\ndense 10 softmax",
    "%fit srv x y -e 2 -b 64 --quiet",
    "%serve srv --port 0",
]
LINE = re.compile(r"`srv`: ([\d,]+) requests · [\d.]+/s · p50 [\d.]+ ms · p99 [\d.]+ ms · (\d+) errors")


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_serve_cell_counts_requests_live_and_the_kernel_frees_the_port(lab, browser):
    write_notebook(lab.root / "serve.ipynb", CELLS)
    context, page = open_lab(browser, lab, "tree/serve.ipynb", height=1100)
    try:
        expect(page.locator(".jp-NotebookPanel")).to_be_visible(timeout=60_000)
        wait_for_kernel(page)
        run_all(page)
        output = page.locator(".jp-CodeCell").nth(4).locator(".jp-OutputArea")
        expect(output).to_contain_text("curl", timeout=180_000)
        text = output.inner_text()
        url = re.search(r"(http://127\.0\.0\.1:\d+)/v1/models/srv:predict", text).group(1)
        port = int(url.rsplit(":", 1)[1])
        row = [[0.0] * 64]
        sent, failures = [0], []

        def load():  # a client calling the model for about 6 s
            with httpx.Client(timeout=30) as client:
                end = time.monotonic() + 6
                while time.monotonic() < end:
                    r = client.post(f"{url}/v1/models/srv:predict", json={"instances": row})
                    sent[0] += 1
                    if r.status_code != 200:
                        failures.append(r.status_code)
                    time.sleep(0.01)

        client = threading.Thread(target=load)
        client.start()
        counts = set()
        while client.is_alive():
            found = LINE.search(output.inner_text())
            if found:
                counts.add(int(found.group(1).replace(",", "")))
            if len(counts) == 3:
                IMG.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(IMG / "serve-live.png"))
            time.sleep(0.25)
        client.join()
        assert not failures
        assert len(counts) >= 4, f"the live line showed only {sorted(counts)} while requests came in"
        expect(output).to_contain_text(f"`srv`: {sent[0]:,} requests", timeout=10_000)
        assert LINE.search(output.inner_text()).group(2) == "0"
        IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMG / "serve-after.png"))
        # Kernel → Shut Down Kernel: the server goes with it
        page.get_by_role("menuitem", name="Kernel", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("^Shut Down Kernel")).click()
        deadline = time.monotonic() + 30
        while not _port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _port_is_free(port)
    finally:
        context.close()
