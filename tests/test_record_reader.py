"""The `%fit` record and the `%tune` record as a reader meets them, without a
browser (tests/test_browser_reader.py opens them in JupyterLab and nbconvert).

Untrusted, JupyterLab's and Notebook 7's sanitizer keeps a style declaration
only when its value is literal (`var(--jp-...)` goes, and with it a bar's
fill and the status colour); GitHub keeps no style. The figures sit on the
notebook's own background, light or dark.
"""

from __future__ import annotations

import io
import re

from PIL import Image

from nbkeras.tune.view import (LEFT, RIGHT, WIDTH, SearchState, TrialRow, objective_png,
                               objective_svg, search_html)
from nbkeras.view.plots import record_png
from nbkeras.view.progress import RunState
from nbkeras.view.record import panel_html


def _state(status="completed", epochs=4, done=4):
    s = RunState(name="m", epochs=epochs, steps=10,
                 history={"loss": [1.0, 0.7, 0.6, 0.55][:done],
                          "val_loss": [1.1, 0.8, 0.7, 0.72][:done]})
    s.finish(status)
    return s


def _declarations(html: str):
    for style in re.findall(r"style='([^']*)'", html):
        for decl in filter(None, style.split(";")):
            yield decl.strip()


def test_the_record_styles_are_literal_values_a_sanitizer_keeps():
    html = panel_html(_state()) + panel_html(_state("stopped", done=2))
    decls = list(_declarations(html))
    assert decls
    assert [d for d in decls if "var(" in d or "calc(" in d] == []


def test_each_bar_carries_its_fraction_as_text_for_where_no_style_survives():
    html = panel_html(_state("stopped", epochs=4, done=1))
    texts = re.findall(r"<span class='nbkeras-bar-text'>([^<]*)</span>", html)
    epochs = texts[0]
    assert epochs == "█" * 5 + "░" * 15   # 1 of 4 epochs
    assert texts[1] == "█" * 20           # the last epoch's batches, all done
    bar = re.search(r"<span class='nbkeras-bar' style='([^']*)'", html).group(1)
    assert "font-size:0" in bar   # hidden wherever the styles (and so the bar) show


def test_the_status_has_a_colour_of_its_own_in_every_theme():
    for status in ("completed", "stopped", "failed"):
        html = panel_html(_state(status))
        colour = re.search(r"class='nbkeras-status' style='color:(#[0-9a-f]{6})'", html)
        assert colour, status


def _transparent_corners(png: bytes) -> bool:
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    w, h = image.size
    return all(image.getpixel(p)[3] == 0 for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)))


def test_the_record_chart_has_a_transparent_background():
    png, _, _ = record_png(_state())
    assert _transparent_corners(png)
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    # inside the plot area too (it was a white box on the dark theme)
    assert image.getpixel((image.width // 4, image.height // 2))[3] == 0


def _search(states=("complete", "pruned", "complete"), values=(0.9, 0.8, 0.5)):
    s = SearchState(study="st", objective="val_loss", direction="min", spaces=["width"],
                    planned=len(states))
    for i, (state, value) in enumerate(zip(states, values)):
        s.rows.append(TrialRow(i, {"width": 8 * (i + 1)}, state, value, 1.0))
    return s


def test_the_tune_table_says_stopped_as_the_sidebar_does():
    s = _search()
    html = search_html(s)
    assert "<td>stopped</td>" in html and "pruned" not in html
    assert "<td>completed</td>" in html
    assert "(stopped)</title>" in objective_svg(s)


def test_the_tune_chart_keeps_its_last_point_inside_the_plot():
    svg = objective_svg(_search())
    xs = [float(x) for x in re.findall(r"<circle cx='([\d.]+)'", svg)]
    assert max(xs) + 3.5 < WIDTH - RIGHT - 10   # half a trial of room on the right
    assert min(xs) - 3.5 > LEFT + 10


def test_the_tune_record_has_a_transparent_background():
    assert _transparent_corners(objective_png(_search()))


def test_a_row_label_stays_on_one_line_past_epoch_9():
    s = RunState(name="m", epochs=24, steps=10, history={"loss": [1.0] * 24})
    s.finish("completed")
    labels = re.findall(r"<span style='([^']*)'>epoch", panel_html(s))
    assert labels and all("white-space:nowrap" in style for style in labels)
