"""The history chart as a PNG, for the static record a finished run leaves.

The live panel draws its chart as inline SVG (`nbkeras.view.chart`); a
saved notebook, nbconvert and GitHub show the PNG that `record_png` renders
once when the run ends, with the same grid, panel size, axes, ticks and
colours, so the output does not jump when the one replaces the other.

It renders in about 40 ms (a bare Agg canvas, no pyplot; a 64-colour PNG),
once per run; `warm_up` imports matplotlib on a background thread when the
panel appears, so the first record does not pay for the import at the end
of the run. Imports no Keras.
"""

from __future__ import annotations

import io
from typing import Dict, List, Optional, Tuple

from . import chart
from .progress import RunState, is_plotted

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"


_WARM: list = []


def warm_up() -> None:
    """Import matplotlib and load its fonts on a background thread, once per
    process, so the first record does not add the imports to the end of the
    run (started when the panel appears, done before the first epochs end on
    all but the shortest runs)."""
    if _WARM:
        return
    import threading

    def work():
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
            from PIL import Image  # noqa: F401
            fig = Figure(figsize=(1, 1), dpi=20)
            FigureCanvasAgg(fig)
            fig.add_subplot().set_title("x", fontsize=9)
            fig.canvas.draw()
        except Exception:
            pass

    thread = threading.Thread(target=work, name="nbkeras-plot-warm-up", daemon=True)
    _WARM.append(thread)
    thread.start()


# The PNGs have a transparent background, so they sit on the notebook's own
# (white, or JupyterLab Dark's #111): their text and lines are mid-tones that
# read on both (the text about 4:1 on either), as the record's HTML does.
_TEXT_COLOR = "#7d7d7d"
_GRID_COLOR = (0.5, 0.5, 0.5, 0.25)
_AXIS_COLOR = (0.5, 0.5, 0.5, 0.6)
NEUTRAL_TEXT = _TEXT_COLOR
WRONG_COLOR = "#dc4638"   # red that reads on both, as the record's "stopped"
DPI = 144   # 2 pixels per CSS pixel (HiDPI); 1 point = 1 CSS pixel


def record_png(state: RunState) -> Optional[Tuple[bytes, int, int]]:
    """The final chart as a PNG, drawn once by matplotlib.

    Same grid (`chart.layout`), panel size (`chart.PANEL_WIDTH` x
    `chart.PANEL_HEIGHT`), plot area, axes, ticks and labels as the live
    `chart.chart_svg`, so replacing the live chart by this PNG does not make
    the output jump: train and val curves, the best epoch's dot, the legend
    in the first panel, log scale by the same rule. Rendered at 2x for HiDPI
    screens: show it at its CSS size.

    Args:
        state: the run.

    Returns:
        `(png_bytes, css_width, css_height)`: the PNG is `2 * css_width`
        pixels wide. `None` when there is nothing to draw (no epoch).

    Example:

    >>> png, width, height = record_png(RunState(epochs=3, history={"loss": [1.0, 0.6, 0.5]}))
    >>> width, height
    (300, 200)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fams = chart.families(state)
    recorded = state.epochs_recorded()
    if not fams or recorded == 0:
        return None
    columns, rows = chart.layout(len(fams))
    pw, ph = chart.PANEL_WIDTH, chart.PANEL_HEIGHT
    width, height = columns * pw, rows * ph
    ml, mt = chart.MARGIN_LEFT, chart.MARGIN_TOP
    plot_w = pw - ml - chart.MARGIN_RIGHT
    plot_h = ph - mt - chart.MARGIN_BOTTOM
    fig = Figure(figsize=(width / 72, height / 72), dpi=DPI, facecolor="none")
    FigureCanvasAgg(fig)

    def at(x, y):  # CSS pixels from the figure's top left -> figure fraction
        return x / width, 1 - y / height

    xaxis = chart.x_axis(chart.x_last(state))
    has_val = any(k.startswith("val_") and is_plotted(k) for k in state.history)
    line = dict(lw=1.6, solid_joinstyle="round", solid_capstyle="round", clip_on=False)
    for i, fam in enumerate(fams):
        row, col = divmod(i, columns)
        left, top = col * pw, row * ph
        x0, y0 = at(left + ml, top + mt + plot_h)
        ax = fig.add_axes((x0, y0, plot_w / width, plot_h / height), facecolor="none")
        train = state.history.get(fam) or []
        val = state.history.get("val_" + fam) or []
        xs = range(1, max(len(train), len(val)) + 1)
        curves = [(chart.curve_runs(xs, train), chart.TRAIN_COLOR),
                  (chart.curve_runs(xs, val), chart.VAL_COLOR)]
        yaxis = chart.y_axis([y for runs, _ in curves for run in runs for _, y in run], fam,
                             chart.lower_is_better_in(state, fam))
        if yaxis.scale == "log":
            ax.set_yscale("log")
        ax.set_xlim(xaxis.lo, xaxis.hi)
        ax.set_ylim(yaxis.lo, yaxis.hi)
        for e in state.phases:  # --fine-tune: where the base was unfrozen
            ax.axvline(e + 0.5, color=_GRID_COLOR, ls="--", lw=1.2)
            ax.text(e + 0.5, yaxis.hi, " fine-tune", fontsize=9, va="top", ha="left",
                    color=_TEXT_COLOR)
        ax.set_xticks(xaxis.ticks, xaxis.labels)
        ax.set_yticks(yaxis.ticks, yaxis.labels)
        ax.minorticks_off()
        ax.tick_params(length=0, pad=5, labelsize=11, labelcolor=_TEXT_COLOR)
        ax.grid(True, color=_GRID_COLOR, lw=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color(_AXIS_COLOR)
            ax.spines[side].set_linewidth(0.8)
        for runs, color in curves:
            for run in runs:
                rx, ry = zip(*run)
                if len(run) == 1:
                    ax.plot(rx, ry, ls="", marker="o", ms=5, color=color, clip_on=False)
                else:
                    ax.plot(rx, ry, color=color, **line)
        _, value, epoch = chart.best_point(state, fam, bool(curves[1][0]))
        if epoch is not None:
            ax.plot([epoch], [value], ls="", marker="o", ms=8, mew=0,
                    color=chart.BEST_COLOR, clip_on=False, zorder=5)
        room = pw - 8 - chart.MARGIN_RIGHT - (chart.legend_width(has_val) + 10 if i == 0 else 0)
        fig.text(*at(left + 8, top + 16), chart.short_title(fam, room), fontsize=12.5,
                 fontweight="bold", color=_TEXT_COLOR, va="baseline")
        fig.text(*at(left + ml + plot_w / 2, top + ph - 5), "epoch", fontsize=11.5,
                 color=_TEXT_COLOR, ha="center", va="baseline")
    x = pw - chart.MARGIN_RIGHT - chart.legend_width(has_val)   # the legend, as in the SVG
    for label, color, text_width in chart.legend_items(has_val):
        if label == "best":
            fig.add_artist(Line2D(*zip(at(x + 7, 12)), ls="", marker="o", ms=8, mew=0,
                                  color=color, transform=fig.transFigure))
        else:
            fig.add_artist(Line2D(*zip(at(x, 12), at(x + 14, 12)), lw=2, color=color,
                                  transform=fig.transFigure))
        fig.text(*at(x + 18, 16), label, fontsize=11.5, color=_TEXT_COLOR, va="baseline")
        x += 18 + text_width + 10
    return encode_png(fig), width, height


def encode_png(fig, colors: int = 64) -> bytes:
    """The figure as PNG bytes, in a palette of a few colours, its background
    transparent: the chart is flat colour with antialiased edges, and 64
    colours keep it sharp at a third of the size of true colour."""
    fig.canvas.draw()
    canvas = fig.canvas
    w, h = canvas.get_width_height(physical=True)
    return quantized_png(canvas.buffer_rgba(), (w, h), colors)


def quantized_png(rgba, size, colors: int) -> bytes:
    """RGBA pixels as a palette PNG that keeps their transparency."""
    from PIL import Image

    image = Image.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1)
    image = image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE,
                           dither=Image.Dither.NONE)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=6)  # 6 ms here; `optimize` took 35 ms more
    return buf.getvalue()


def neutral(fig) -> None:
    """Recolour a figure's black frame text and lines (titles, axis labels,
    ticks, spines, a colorbar's) to mid-tones, for a transparent background
    in a light or a dark theme. Text drawn in the plot (annotations) and
    text given a colour of its own keep theirs."""
    from matplotlib.colors import to_rgb

    def dark(color) -> bool:
        try:
            return sum(to_rgb(color)) < 0.9
        except ValueError:
            return False

    for ax in fig.axes:
        legend = ax.get_legend()
        texts = [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label,
                 *ax.get_xticklabels(), *ax.get_yticklabels(),
                 *(legend.get_texts() if legend is not None else [])]
        for text in texts:
            if dark(text.get_color()):
                text.set_color(_TEXT_COLOR)
        ax.tick_params(which="both", color=_AXIS_COLOR, labelcolor=_TEXT_COLOR)
        for spine in ax.spines.values():
            if dark(spine.get_edgecolor()):
                spine.set_edgecolor(_AXIS_COLOR)
        if ax.patch.get_facecolor()[:3] == (1.0, 1.0, 1.0):
            ax.patch.set_alpha(0.0)
    for text in fig.texts:
        if dark(text.get_color()):
            text.set_color(_TEXT_COLOR)


def history_figure_png(history: Dict[str, List[float]], name: str = "model") -> Optional[bytes]:
    """A PNG of a finished history at 2x resolution (for `%models --compare`
    and records): `record_png`'s bytes, or None when there is nothing to draw."""
    state = RunState(name=name, history={k: list(v) for k, v in history.items()})
    out = record_png(state)
    return out[0] if out else None
