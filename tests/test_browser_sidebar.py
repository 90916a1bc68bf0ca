"""The sidebar's reading and comparing of runs in a real browser, at
JupyterLab's default sidebar width (about 245 px).

Runs are written into the server's registry from the test process, the way
a training kernel does. The test checks that no number is cut, selects two
runs of different models and reads their overlaid curves, legend,
comparison table, option and spec differences, reads one run's `%fit` line,
deletes a run through the confirmation dialog and sees a deletion made by
another process disappear. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import time

from playwright.sync_api import expect

from nbkeras.fmt import fmt
from nbkeras.registry import Registry

from test_browser import IMG, browser, lab, open_lab, show_sidebar  # noqa: F401 - fixtures

SPEC_A = "input 64\ndense 32 relu\ndense 10 softmax"
SPEC_B = "input 64\ndense 128 relu\ndropout 0.2\ndense 10 softmax"


def _options(**flags):
    """A run's options as `%fit` records them (argparse defaults + flags)."""
    options = dict(name="digits", x="x", y="y", epochs=10, batch_size=32, val=None,
                   val_split=None, no_shuffle=False, seed=None, mixed_precision=False,
                   early_stop=None, monitor=None, initial_epoch=0)
    options.update(flags)
    options["epochs_planned"] = options["epochs"]
    return options


def _train(reg, model, spec, options, device, scale):
    vid = reg.add_model_version(model, spec, params=2410)
    rid = reg.start_run(model=model, version_id=vid, options=options, device=device,
                        backend="tensorflow", epochs_planned=options["epochs"],
                        notebook="work/train.ipynb")
    for e in range(1, options["epochs"] + 1):
        loss = 2.3 * scale / e ** 1.3
        reg.log_epoch(rid, e, {"loss": loss, "val_loss": loss * 1.15 + 0.01 * e,
                               "accuracy": 1 - loss / 2.5, "val_accuracy": 0.96 - loss / 2.2},
                      directions={"loss": "min", "val_loss": "min", "accuracy": "max",
                                  "val_accuracy": "max"})
    reg.end_run(rid, "completed")
    return rid


OVERFLOWING = """(panel) => {
    // Numbers and table cells cut by their own box or by a box around them
    // (a row, a pane, a scroller): each must show whole where it is drawn.
    const out = [];
    for (const el of panel.querySelectorAll(
            '.nbk-run-row .nbk-num, .nbk-metrics td, .nbk-metrics th')) {
        const box = el.getBoundingClientRect();
        if (box.width === 0) continue;
        let clip = el.parentElement;
        while (clip && getComputedStyle(clip).overflowX === 'visible') clip = clip.parentElement;
        const outer = clip ? clip.getBoundingClientRect() : box;
        if (el.scrollWidth > el.clientWidth + 1 || box.right > outer.right + 1) {
            out.push(el.textContent);
        }
    }
    return out;
}"""


def test_compare_two_runs_and_delete_one_at_the_default_width(lab, browser):
    reg = Registry(lab.home)
    a = _train(reg, "digits", SPEC_A, _options(val_split=0.2), "CPU", 1.0)
    b = _train(reg, "digits_wide", SPEC_B, _options(name="digits_wide", batch_size=64,
                                                    val_split=0.2, seed=3), "CPU", 0.8)
    c = _train(reg, "digits", SPEC_A, _options(epochs=6, mixed_precision=True), "GPU:0", 1.2)
    context, page = open_lab(browser, lab)
    try:
        _, panel = show_sidebar(page)
        width = panel.bounding_box()["width"]
        assert 200 <= width <= 300, width  # JupyterLab's default sidebar width
        rows = {rid: panel.get_by_role("option", name=f"{model} run {rid}", exact=True)
                for rid, model in ((a, "digits"), (b, "digits_wide"), (c, "digits"))}
        for row in rows.values():
            expect(row).to_be_visible(timeout=15_000)

        # Each row shows the key metric in full, never cut.
        summary = reg.run(a)
        expect(rows[a]).to_contain_text(
            f"{fmt(summary['last']['val_accuracy'])} best {fmt(summary['best']['val_accuracy'])}"
            f" @{summary['best_epoch']['val_accuracy']}")
        assert panel.evaluate(OVERFLOWING) == []
        # device and precision only where they differ from the usual ones
        expect(rows[c]).to_contain_text("GPU:0 · mixed")
        assert "CPU" not in rows[a].inner_text()

        # Select two runs of different models: overlaid curves, legend, table.
        panel.get_by_role("checkbox", name=f"Compare digits run {a}").check()
        panel.get_by_role("checkbox", name=f"Compare digits_wide run {b}").check()
        compare = panel.get_by_role("region", name="Run comparison")
        expect(compare).to_be_visible()
        legend = compare.get_by_role("list", name="Compared runs").get_by_role("listitem")
        expect(legend).to_have_count(2)
        expect(legend.nth(0)).to_contain_text(f"digits #{a}")
        expect(legend.nth(1)).to_contain_text(f"digits_wide #{b}")
        loss_chart = compare.get_by_role("img", name="loss curves")
        expect(loss_chart).to_be_visible()
        expect(loss_chart.locator("path")).to_have_count(4)  # 2 runs x (loss, val_loss)

        table = compare.get_by_role("table", name="Metrics compared")
        expect(table).to_be_visible()
        best_b = reg.run(b)["best"]["val_accuracy"]
        best_cells = table.locator("td.nbk-best")
        expect(best_cells.first).to_be_visible()
        assert fmt(best_b) in best_cells.all_inner_texts()
        options = compare.get_by_role("table", name="Options compared")
        expect(options).to_contain_text("-b")
        expect(options).to_contain_text("64")
        expect(compare.locator(".nbk-diff-add")).to_contain_text(["+ dense 128 relu",
                                                                  "+ dropout 0.2"])
        assert panel.evaluate(OVERFLOWING) == []

        # Hover a chart: epoch and every curve's value.
        box = loss_chart.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        readout = compare.locator(".nbk-readout").first
        expect(readout).to_contain_text("epoch")
        expect(readout).to_contain_text(f"digits #{a} val_loss")
        IMG.mkdir(parents=True, exist_ok=True)
        panel.screenshot(path=str(IMG / "sidebar-compare.png"))
        compare.locator(".nbk-compare").evaluate("el => el.scrollTop = el.scrollHeight")
        panel.screenshot(path=str(IMG / "sidebar-compare-table.png"))

        # One run's details: the %fit line that produced it.
        compare.get_by_role("button", name="Close the comparison").click()
        rows[b].click()
        details = panel.get_by_role("region", name="Run details")
        expect(details.get_by_label("The %fit line of this run")).to_have_text(
            "%fit digits_wide x y -b 64 --val-split 0.2 --seed 3")
        expect(details.get_by_role("img", name="loss curves")).to_be_visible()
        panel.screenshot(path=str(IMG / "sidebar-details.png"))

        # Delete it, with confirmation: gone from the list and from the file.
        details.get_by_role("button", name="Delete run").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"Delete run #{b}?")
        dialog.get_by_role("button", name="Delete", exact=True).click()
        expect(rows[b]).to_have_count(0)
        assert reg.run(b) is None
        expect(panel.get_by_role("region", name="Run details")).to_have_count(0)

        # A deletion by another process disappears within about a second.
        other = Registry(lab.home)
        t = time.monotonic()
        assert other.delete_runs([c]) == [c]
        expect(rows[c]).to_have_count(0, timeout=3_000)
        assert time.monotonic() - t < 2.5
        expect(rows[a]).to_be_visible()
    finally:
        context.close()
