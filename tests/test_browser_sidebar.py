"""The sidebar's reading and comparing of runs in a real browser, at
JupyterLab's default sidebar width (about 245 px).

Runs are written into the server's registry from the test process, the way
a training kernel does. The test checks that no number is cut, selects two
runs of different models and reads their overlaid curves, legend,
comparison table, option and spec differences, reads one run's `%fit` line,
deletes a run through the confirmation dialog and sees a deletion made by
another process disappear. Another runs a real `%tune` study and a real
`%fit --cv 3` in the test process (the kernel's code, writing the server's
registry): each is one row that opens onto its runs, a new trial joins its
study at the next poll, the study shows its parallel coordinates and
sortable trials, and in the dark theme the panel is dark and its text
readable. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from nbkeras.fmt import fmt
from nbkeras.registry import Registry

from test_browser import (IMG, browser, lab, open_lab, run_option,  # noqa: F401 - fixtures
                          show_sidebar)

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


FIT_LINE_CUT = """(pre) => {
    // the %fit line wraps between its flags (or inside one too long for the
    // pane), never running past the pane's edge
    const edge = pre.getBoundingClientRect().right;
    const out = [...pre.querySelectorAll('.nbk-nowrap')]
        .filter(el => el.getBoundingClientRect().right > edge + 1).map(el => el.textContent);
    if (pre.scrollWidth > pre.clientWidth + 1) out.push('(the line scrolls)');
    return out;
}"""

TEXTS_OVERLAP = """(svg) => {
    // any two texts of the parallel coordinates drawn over each other, or
    // out of the figure
    const texts = [...svg.querySelectorAll('text')];
    const boxes = texts.map(t => t.getBoundingClientRect());
    const frame = svg.getBoundingClientRect();
    const out = [];
    boxes.forEach((a, i) => {
        if (a.left < frame.left - 1 || a.right > frame.right + 1) out.push(texts[i].textContent);
        boxes.slice(i + 1).forEach((b, k) => {
            const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
            const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
            if (x > 0.5 && y > 0.5) {
                out.push(`${texts[i].textContent} / ${texts[i + 1 + k].textContent}`);
            }
        });
    });
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

        assert details.locator("pre.nbk-fitline").evaluate(FIT_LINE_CUT) == []
        long_line = _train(reg, "digits", SPEC_A, _options(
            x="x_train_augmented_normalized", y="y_train_onehot",
            val=["x_validation_normalized", "y_validation_onehot"], early_stop=3,
            monitor="val_sparse_categorical_accuracy"), "CPU", 1.0)
        long_row = panel.get_by_role("option", name=f"digits run {long_line}", exact=True)
        expect(long_row).to_be_visible(timeout=5_000)
        long_row.click()
        fit = details.get_by_label("The %fit line of this run")
        expect(fit).to_contain_text("--monitor val_sparse_categorical_accuracy")
        assert fit.evaluate(FIT_LINE_CUT) == []
        panel.screenshot(path=str(IMG / "sidebar-fit-line.png"))
        rows[b].click()

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


# -- studies, folds and the dark theme ------------------------------------------

DIGITS = """
import numpy as np
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:240] / 16).astype('float32'); y = d.target[:240]
"""
STUDY_SPEC = """%%model tn --seed 0
input 64
dense {8, 32}@width relu
dropout 0.0..0.3
dense 10 softmax
optimizer adam lr=1e-3..3e-2:log"""
CV_SPEC = "%%model cvm --seed 0\ninput 64\ndense 16 relu\ndense 10 softmax"

TRIAL_LINE_CUT = """(panel) => [...panel.querySelectorAll('.nbk-trial-line')]
    // a trial's objective line: whole in its row, the name in full in its title
    .filter(el => el.scrollWidth > el.clientWidth + 1
        || !el.title.startsWith(el.querySelector('.nbk-trial-objective').textContent))
    .map(el => el.textContent)"""

NUMBERS_CUT = """(panel) => {
    // Group rows: each number whole inside its row; a name or metric cut
    // with an ellipsis only where the row's title says it in full.
    const out = [];
    for (const row of panel.querySelectorAll('.nbk-group-row')) {
        const outer = row.getBoundingClientRect();
        for (const el of row.querySelectorAll('.nbk-num')) {
            const box = el.getBoundingClientRect();
            if (el.scrollWidth > el.clientWidth + 1 || box.right > outer.right + 1) {
                out.push(el.textContent);
            }
        }
        for (const el of row.querySelectorAll('.nbk-group-name, .nbk-metric-key')) {
            if (el.scrollWidth > el.clientWidth + 1 && !row.title.includes(el.textContent)) {
                out.push(el.textContent);
            }
        }
    }
    // Table cells: never cut (the table scrolls sideways instead)
    for (const el of panel.querySelectorAll('.nbk-trials td, .nbk-trials .nbk-sort-head')) {
        if (el.scrollWidth > el.clientWidth + 1) out.push(el.textContent);
    }
    return out;
}"""

COLOUR = """(colour) => {
    // [r, g, b, alpha], r g b in 0..1, from 'rgb(...)', 'rgba(...)' or
    // 'color(srgb r g b [/ a])' (what color-mix() computes to)
    const srgb = colour.startsWith('color(srgb');
    const n = colour.match(/[\\d.]+/g).map(Number);
    const rgb = n.slice(0, 3).map(c => (srgb ? c : c / 255));
    return [...rgb, n.length > 3 ? n[3] : 1];
}"""

LUMINANCE = f"""(colour) => {{
    const [r, g, b] = ({COLOUR})(colour);
    const lin = c => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}}"""

# WCAG's contrast ratio of a text colour (its alpha composited) on a background
CONTRAST = f"""([text, background]) => {{
    const luminance = {LUMINANCE};
    const fg = ({COLOUR})(text);
    const bg = ({COLOUR})(background);
    const mixed = fg.slice(0, 3).map((c, i) => c * fg[3] + bg[i] * (1 - fg[3]));
    const a = luminance(`color(srgb ${{mixed.join(' ')}})`);
    const b = luminance(background);
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}}"""


def _style(locator, prop):
    return locator.evaluate(f"el => getComputedStyle(el).{prop}")


def _luminance(page, locator, prop):
    """WCAG's relative luminance (0 black .. 1 white) of a computed colour."""
    return page.evaluate(LUMINANCE, _style(locator, prop))


def _contrast(page, text, box):
    """WCAG's contrast ratio of `text`'s colour on `box`'s background."""
    return page.evaluate(CONTRAST, [_style(text, "color"), _style(box, "backgroundColor")])


def _use_theme(page, name):
    """Settings → Theme → NAME, as a user switches it."""
    item = ".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('{}'))".format
    page.get_by_role("menuitem", name="Settings", exact=True).click()
    page.locator(item("Theme")).click()  # a submenu: Lumino gives it no role
    page.locator(item(name)).click()
    light = "false" if "Dark" in name else "true"
    expect(page.locator(f"body[data-jp-theme-light='{light}']")).to_have_count(1, timeout=15_000)
    page.wait_for_timeout(500)  # the theme's stylesheet settles


def test_studies_and_folds_are_rows_that_open_and_read_in_the_dark_theme(
        lab, browser, ip, monkeypatch):
    monkeypatch.setenv("NBKERAS_HOME", str(lab.home))  # the kernel's registry is the server's
    ip.run_cell(DIGITS).raise_error()
    ip.run_cell(STUDY_SPEC).raise_error()
    ip.run_cell(CV_SPEC).raise_error()
    context, page = open_lab(browser, lab)
    try:
        _, panel = show_sidebar(page)
        # A study of two trials is one row; a third trial joins it at the next poll.
        ip.run_line_magic("tune", "tn x y --trials 2 -e 2 --val-split 0.25 --seed 1 --quiet")
        study = panel.get_by_role("option", name="study tn", exact=True)
        expect(study).to_contain_text("2 trials", timeout=15_000)
        df = ip.run_line_magic("tune", "tn x y --trials 1 -e 2 --val-split 0.25 --seed 1 "
                                       "--resume --quiet")
        t = time.monotonic()
        expect(study).to_contain_text("3 trials", timeout=5_000)
        assert time.monotonic() - t < 3.0
        best = df.iloc[0]
        assert best["state"] == "complete"
        expect(study).to_contain_text(
            f"val_loss best {fmt(best['value'])} trial {int(best['trial'])}")
        reg = Registry(lab.home)
        trials = [r for r in reg.run_summaries(model="tn")]
        assert len(trials) == 3
        for r in trials:  # collapsed: no trial row shows yet
            expect(run_option(panel, "tn", r["id"])).to_have_count(0)

        # A 3-fold cross-validation is one row: mean ± std of the key metric.
        cv = ip.run_line_magic("fit", "cvm x y --cv 3 -e 1 --quiet")
        folds = panel.get_by_role("option", name=re.compile(r"^cross-validation cv-cvm-"))
        expect(folds).to_contain_text("3 folds", timeout=15_000)
        # named by the model it validated, not by the clock time it started
        # named by its %fit line (the model and the options), not a clock time
        expect(folds.locator(".nbk-group-name")).to_have_text(
            re.compile(r"^%fit cvm x y .*--cv 3"))
        mean, std = cv.loc["mean", "val_accuracy"], cv.loc["std", "val_accuracy"]
        expect(folds).to_contain_text(f"val_accuracy {fmt(mean)} ± {fmt(std)}")
        assert panel.evaluate(NUMBERS_CUT) == []

        # Opened, each lists its runs: a study best first, folds in order.
        panel.get_by_role("button", name="Open study tn").click()
        members = panel.locator(".nbk-run-row.nbk-member")
        expect(members).to_have_count(3)
        expect(members.first).to_contain_text(f"trial {int(best['trial'])}")
        # Each trial's row shows the study's objective (val_loss, lower is
        # better), not the list's key metric (val_accuracy); the best tagged.
        ordered = sorted(df.to_dict("records"), key=lambda r: r["value"])
        for i, r in enumerate(ordered):
            expect(members.nth(i)).to_contain_text(f"trial {int(r['trial'])}")
            expect(members.nth(i).locator(".nbk-trial-line")).to_contain_text(
                f"val_loss ↓ {fmt(r['value'])}")
        expect(members.first.locator(".nbk-trial-line")).to_contain_text(
            f"val_loss ↓ {fmt(best['value'])} best")
        expect(members.locator(".nbk-best-tag")).to_have_count(1)
        expect(members.first).not_to_contain_text("val_accuracy")
        assert panel.evaluate(TRIAL_LINE_CUT) == []
        panel.get_by_role("button", name="Open cvm cross-validation").click()
        expect(members).to_have_count(6)
        expect(members.nth(0)).to_contain_text("fold 1/3")
        expect(members.nth(2)).to_contain_text("fold 3/3")
        # A run in a group is pinned and deleted as any run.
        first = members.first
        first.get_by_role("button", name=re.compile("^Pin ")).click()
        expect(first.get_by_role("button", name=re.compile("^Unpin "))).to_be_visible()
        assert panel.evaluate(OVERFLOWING) == []
        third_fold = members.filter(has_text="fold 3/3")
        third_fold.click()
        details = panel.get_by_role("region", name="Run details")
        details.get_by_role("button", name="Delete run").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
        expect(members).to_have_count(5)
        kept = cv.loc[[1, 2], "val_accuracy"].astype(float)
        expect(folds).to_contain_text("3 folds · 2 done")
        expect(folds).to_contain_text(f"{fmt(kept.mean())} ± {fmt(kept.std())}")
        panel.get_by_role("button", name="Close cvm cross-validation").click()

        # The study in the pane: parallel coordinates and the trials table.
        study.click()
        pane = panel.get_by_role("region", name="Study")
        expect(pane).to_be_visible()
        view = pane.get_by_role("img", name="Parallel coordinates of study tn")
        expect(view).to_be_visible()
        expect(view.locator("polyline")).to_have_count(3)
        expect(view.locator("polyline.nbk-pc-best")).to_have_count(1)
        # one axis per space plus the objective; `width` a choice, lr on a log scale
        expect(view.locator(".nbk-pc-axis")).to_have_count(4)
        expect(view.locator(".nbk-pc-name title")).to_have_text(
            ["width", "dropout.rate", "optimizer.learning_rate (log scale)", "val_loss"])
        expect(view.locator(".nbk-tick title")).to_contain_text(["8", "32"])
        table = pane.get_by_role("table", name="Trials")
        body = table.locator("tbody tr")
        expect(body).to_have_count(3)
        expect(body.locator("td:nth-child(1)")).to_have_text(
            [str(int(r["trial"])) for r in ordered])
        expect(body.locator("td:nth-child(2)")).to_have_text([fmt(r["value"]) for r in ordered])
        assert panel.evaluate(NUMBERS_CUT) == []
        # At the default width: no axis name or tick drawn over another, a
        # long name shortened with the whole name on hover; the table's
        # headings whole (wrapped after a dot or an underscore, never cut),
        # its states marked with the word on hover.
        assert view.evaluate(TEXTS_OVERLAP) == []
        expect(view.locator(".nbk-pc-name").nth(2)).to_contain_text("learning_rate")
        expect(table.locator(".nbk-sort-label")).to_have_text(
            ["trial", "val_loss", "width", "dropout.rate", "optimizer.learning_rate", "state"])
        expect(body.locator("td:last-child").first).to_have_attribute("title", "completed")
        assert _contrast(page, study.locator(".nbk-group-name"), study) >= 4.5
        IMG.mkdir(parents=True, exist_ok=True)
        panel.screenshot(path=str(IMG / "sidebar-study.png"))
        # sortable by any column, the objective best first by default
        table.get_by_role("button", name=re.compile("^val_loss")).click()
        expect(body.locator("td:nth-child(1)")).to_have_text(
            [str(int(r["trial"])) for r in reversed(ordered)])
        table.get_by_role("button", name=re.compile("^trial")).click()
        expect(body.locator("td:nth-child(1)")).to_have_text(["0", "1", "2"])
        table.get_by_role("button", name=re.compile("^val_loss")).click()
        expect(body.locator("td:nth-child(1)")).to_have_text(
            [str(int(r["trial"])) for r in ordered])

        # The dark theme: every colour is the theme's, so the panel turns dark
        # and its text light.
        _use_theme(page, "JupyterLab Dark")
        assert _luminance(page, panel, "backgroundColor") < 0.05
        assert _contrast(page, panel, panel) >= 7
        assert _luminance(page, view.locator(".nbk-pc-name").first, "fill") > 0.5
        assert _contrast(page, table.locator("td").first, panel) >= 7
        # the selected study's row keeps its text readable (WCAG AA: 4.5)
        assert _contrast(page, study.locator(".nbk-group-name"), study) >= 4.5
        assert _contrast(page, study.locator(".nbk-group-count"), study) >= 3.0
        assert panel.evaluate(NUMBERS_CUT) == []
        panel.screenshot(path=str(IMG / "sidebar-dark.png"))
    finally:
        try:
            _use_theme(page, "JupyterLab Light")  # the setting outlives the page
        finally:
            context.close()
