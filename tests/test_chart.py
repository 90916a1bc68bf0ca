"""The live chart (inline SVG) and the PNG record, from fake run states."""

import math
import re
import statistics
import struct
import time
import xml.etree.ElementTree as ET

import pytest

from nbkeras.view import chart
from nbkeras.view.chart import PANEL_HEIGHT, PANEL_WIDTH, chart_svg, layout
from nbkeras.view.progress import RunState

NAN = float("nan")
SVG = "{http://www.w3.org/2000/svg}"


def typical(epochs=50, planned=None):
    """3 metric families, train and val, and a learning rate that is not drawn."""
    h = {k: [] for k in ("loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae",
                         "learning_rate")}
    for e in range(epochs):
        h["loss"].append(1.5 * math.exp(-e / 10) + 0.05)
        h["val_loss"].append(1.6 * math.exp(-e / 10) + 0.2 + 0.004 * max(0, e - 30))
        h["accuracy"].append(0.95 - 0.6 * math.exp(-e / 8))
        h["val_accuracy"].append(0.9 - 0.6 * math.exp(-e / 8) - 0.002 * max(0, e - 25))
        h["mae"].append(0.5 + 0.3 * math.exp(-e / 20))
        h["val_mae"].append(0.55 + 0.3 * math.exp(-e / 20))
        h["learning_rate"].append(0.001)
    return RunState(name="m", epochs=planned or epochs, history=h)


def panels(html):
    """Each <svg> of the chart, parsed (also checks that each is valid XML)."""
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", html, flags=re.S)]


def texts(svg):
    return [t.text for t in svg.iter(SVG + "text")]


def best_dot(svg):
    return next(c for c in svg.iter(SVG + "circle") if c.get("class") == "best")


def test_one_panel_per_family_loss_first_no_learning_rate():
    html = chart_svg(typical())
    svgs = panels(html)
    assert [s.get("data-family") for s in svgs] == ["loss", "accuracy", "mae"]
    assert "learning_rate" not in html
    for svg, title in zip(svgs, ("loss", "accuracy", "mae")):
        assert title in texts(svg) and "epoch" in texts(svg)
        assert svg.get("width") == str(PANEL_WIDTH) and svg.get("height") == str(PANEL_HEIGHT)
    # the legend once, in the first panel
    assert [sum(t in ("train", "val", "best") for t in texts(s)) for s in svgs] == [3, 0, 0]
    assert html.startswith("<div") and "flex-wrap:wrap" in html


def test_train_and_val_curves_in_two_colours():
    svgs = panels(chart_svg(typical()))
    for svg in svgs:
        strokes = [p.get("stroke") for p in svg.iter(SVG + "path") if "h14" not in p.get("d")]
        assert chart.TRAIN_COLOR in strokes and chart.VAL_COLOR in strokes
    no_val = panels(chart_svg(RunState(epochs=5, history={"loss": [1.0, 0.7, 0.5]})))[0]
    assert chart.VAL_COLOR not in ET.tostring(no_val, encoding="unicode")
    assert "val" not in texts(no_val)


def test_best_epoch_marked_lower_loss_higher_accuracy():
    state = RunState(epochs=6, history={
        "loss": [1.0, 0.8, 0.6, 0.5, 0.45, 0.4],
        "val_loss": [1.1, 0.9, 0.7, 0.65, 0.7, 0.8],               # best: epoch 4
        "accuracy": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9],
        "val_accuracy": [0.45, 0.55, 0.72, 0.7, 0.74, 0.73]})     # best: epoch 5
    loss, acc = panels(chart_svg(state))
    assert best_dot(loss).get("data-epoch") == "4"
    assert best_dot(acc).get("data-epoch") == "5"
    assert best_dot(loss).get("fill") == chart.BEST_COLOR
    # on the val curve
    assert "val_loss 0.65 at epoch 4" in best_dot(loss).find(SVG + "title").text
    # without validation, on the train curve
    train_only = panels(chart_svg(RunState(epochs=3, history={"loss": [0.9, 0.5, 0.7]})))[0]
    assert best_dot(train_only).get("data-epoch") == "2"


def test_log_scale_when_loss_spans_more_than_a_decade():
    state = RunState(epochs=20, history={"loss": [1.0 * 0.78 ** e for e in range(20)],
                                         "accuracy": [0.01 + e / 25 for e in range(20)]})
    loss, acc = panels(chart_svg(state))
    assert loss.get("data-scale") == "log"
    assert {"0.01", "0.1", "1"} <= set(texts(loss))
    assert acc.get("data-scale") == "linear"     # higher is better: never log
    flat = RunState(epochs=5, history={"loss": [1.0, 0.5, 0.3, 0.2, 0.15]})
    svg = panels(chart_svg(flat))[0]
    assert svg.get("data-scale") == "linear" and "0.0" in " ".join(texts(svg))  # from 0


def test_axes_have_few_round_ticks():
    svg = panels(chart_svg(typical(50)))[0]
    labels = texts(svg)
    assert {"10", "20", "30", "40", "50"} <= set(labels)
    for n in (1, 3, 7, 12, 50, 333, 10_000):
        axis = chart.x_axis(n)
        assert 1 <= len(axis.ticks) <= 6 and all(t == int(t) for t in axis.ticks)
        assert axis.lo <= 1 and axis.hi >= n
    for values in ([0.1, 0.9], [0.93, 0.995], [2.0, 2.0], [1e6, 3e6], [-5, 5], [1e-5, 3e-5]):
        axis = chart.y_axis(values, "accuracy")
        assert 3 <= len(axis.ticks) <= 5, (values, axis)
        assert axis.lo <= min(values) and axis.hi >= max(values)
        assert len(set(axis.labels)) == len(axis.labels)


def test_trace_of_the_epoch_in_progress_on_the_loss_panel():
    state = RunState(epochs=10, history={"loss": [1.0, 0.8], "val_loss": [1.1, 0.9],
                                         "accuracy": [0.5, 0.6]})
    trace = [(2 + i / 10, 0.8 - i * 0.01) for i in range(1, 6)]   # in epoch 3
    without = panels(chart_svg(state))
    loss, acc = panels(chart_svg(state, trace=trace))
    assert len(list(loss.iter(SVG + "path"))) == len(list(without[0].iter(SVG + "path"))) + 1
    traced = [p for p in loss.iter(SVG + "path") if p.find(SVG + "title") is not None]
    assert len(traced) == 1 and "in progress" in traced[0].find(SVG + "title").text
    assert len(list(acc.iter(SVG + "path"))) == len(list(without[1].iter(SVG + "path")))


def test_only_a_trace_still_draws_the_loss_panel():
    state = RunState(epochs=20)
    assert chart_svg(state) == ""
    html = chart_svg(state, trace=[(0.05, 2.3), (0.1, 2.1), (0.15, 1.9)])
    (loss,) = panels(html)
    assert loss.get("data-family") == "loss"
    assert "0" in texts(loss) and "20" in texts(loss)   # epoch 1 is traced from x = 0


def test_nan_and_inf_are_gaps_and_a_lone_epoch_a_dot():
    state = RunState(epochs=8, history={"loss": [1.0, 0.8, NAN, 0.6, 0.5, math.inf, 0.4, NAN]})
    svg = panels(chart_svg(state))[0]
    curve = next(p for p in svg.iter(SVG + "path") if p.get("stroke") == chart.TRAIN_COLOR
                 and p.get("d").startswith("M") and "h14" not in p.get("d"))
    assert curve.get("d").count("M") == 2          # epochs 1-2 and 4-5
    dots = [c for c in svg.iter(SVG + "circle") if c.get("fill") == chart.TRAIN_COLOR]
    assert len(dots) == 1                          # epoch 7 alone
    assert "nan" not in ET.tostring(svg, encoding="unicode").lower()
    one = panels(chart_svg(RunState(epochs=1, history={"loss": [0.7]})))[0]
    assert any(c.get("class") != "best" for c in one.iter(SVG + "circle"))
    assert "1" in texts(one)
    all_nan = chart_svg(RunState(epochs=3, history={"loss": [NAN, NAN]}))
    assert len(panels(all_nan)) == 1                # axes, no curve, no crash


def test_metric_names_are_escaped():
    state = RunState(epochs=2, history={"loss": [1.0, 0.5], "a<b>&c": [0.2, 0.3]})
    svgs = panels(chart_svg(state))
    assert svgs[1].get("data-family") == "a<b>&c" and "a<b>&c" in texts(svgs[1])


def test_at_most_eight_panels_in_the_same_grid_as_the_record():
    state = RunState(epochs=3)
    for e in range(3):
        state.end_epoch({f"out{i}_loss": 1.0 / (e + 1) for i in range(12)})
    html = chart_svg(state)
    assert len(panels(html)) == chart.MAX_PANELS
    columns, rows = layout(chart.MAX_PANELS)
    assert f"max-width:{columns * PANEL_WIDTH}px" in html
    assert [layout(n) for n in (0, 1, 2, 3, 4, 5, 8)] == [
        (0, 0), (1, 1), (2, 1), (3, 1), (2, 2), (3, 2), (3, 3)]
    assert f"max-width:{PANEL_WIDTH}px" in chart_svg(state, width=PANEL_WIDTH + 50)


def test_size_is_bounded_however_many_epochs():
    html = chart_svg(typical(10_000))
    assert len(html) < 15_000
    for svg in panels(html):
        for path in svg.iter(SVG + "path"):
            if path.get("stroke") in (chart.TRAIN_COLOR, chart.VAL_COLOR):
                points = len(re.findall(r"[-\d.]+[, -]?[-\d.]+", path.get("d")))
                assert points <= chart.MAX_POINTS + 2
    # a spike survives downsampling
    loss = typical(10_000).history["loss"]
    loss[7777] = 50.0
    runs = chart.curve_runs(range(1, 10_001), loss)
    assert sum(map(len, runs)) <= chart.MAX_POINTS and (7778, 50.0) in runs[0]


def test_same_state_same_svg_with_one_decimal_coordinates():
    state = typical()
    html = chart_svg(state)
    assert html == chart_svg(state)
    coordinates = re.findall(r' (?:d|x|y|cx|cy)="([^"]*)"', html)
    assert coordinates and not re.search(r"\.\d\d", " ".join(coordinates))


def test_build_is_cheap():
    state = typical(50)
    chart_svg(state)
    times = []
    for _ in range(50):
        t = time.perf_counter()
        chart_svg(state, trace=[(49 + i / 20, 0.1) for i in range(10)])
        times.append(time.perf_counter() - t)
    assert statistics.median(times) < 0.002   # a sanity bound: ~0.3 ms measured


def png_size(png):
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])


def test_record_png_has_the_layout_of_the_live_chart_at_2x():
    from nbkeras.view.plots import record_png
    png, width, height = record_png(typical())
    columns, rows = layout(3)
    assert (width, height) == (columns * PANEL_WIDTH, rows * PANEL_HEIGHT)
    assert png_size(png) == (2 * width, 2 * height)
    assert len(png) < 60_000
    assert record_png(RunState(epochs=3)) is None


def test_record_png_survives_gaps_and_long_runs():
    from nbkeras.view.plots import history_figure_png, record_png
    png, width, _ = record_png(RunState(epochs=4, history={"loss": [NAN, 0.5, math.inf, 0.3],
                                                           "val_loss": [NAN, NAN, NAN, NAN]}))
    assert png_size(png)[0] == 2 * width
    png, width, height = record_png(typical(10_000))
    assert png_size(png) == (2 * width, 2 * height) and len(png) < 100_000
    assert png_size(history_figure_png({"loss": [1.0, 0.5]}))[0] == 2 * PANEL_WIDTH


@pytest.mark.parametrize("history", [{"loss": [1.0]}, {"loss": [0.0, 0.0]},
                                     {"loss": [-1.0, -2.0]}, {"accuracy": [1.0, 1.0]},
                                     {"loss": [1e-9, 1e9]}])
def test_odd_values_draw(history):
    assert len(panels(chart_svg(RunState(epochs=2, history=history)))) == 1


def test_best_of_a_long_run_agrees_with_the_run_state():
    state = typical(1000)
    state.history["score"] = [math.sin(e / 50) for e in range(1000)]
    state.directions = {"score": "min"}       # known from the compiled model
    for fam, has_val in (("loss", True), ("accuracy", True), ("mae", False), ("score", False)):
        key, value, epoch = chart.best_point(state, fam, has_val)
        assert (value, epoch) == state.best(key), fam
    assert chart.best_point(state, "score", False)[1] == pytest.approx(-1.0)


def test_an_ended_run_spans_the_epochs_it_reached_not_the_planned_ones():
    """A run stopped at epoch 3 of 200 is drawn over 1..3, not squeezed left."""
    from nbkeras.view.chart import x_last
    state = RunState(epochs=200, history={"loss": [1.0, 0.8, 0.7]})
    assert x_last(state) == 200  # while it trains the axis never rescales
    state.status = "stopped"
    assert x_last(state) == 3
    assert ">200<" not in chart_svg(state) and ">3<" in chart_svg(state)
