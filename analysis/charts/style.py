"""What every chart shares: the theme, sizes and colours, the figure and its helpers,
the recorded curves' panel, and :func:`save_figure`. matplotlib is imported inside the
functions only; never imports TensorFlow or ``replay``."""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from analysis.charts.data import (
    curve_epochs,
    curve_series,
    curve_values,
    humanize,
)
from analysis.names import base_name
from analysis.results.records import is_missing

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from analysis.charts.data import Curves

__all__ = [
    "BEST",
    "BRANCH_HELDOUT_LS",
    "BRANCH_LW",
    "CENSORED_BAND",
    "COLORBAR",
    "COUNTERFACTUAL_LS",
    "CURVES_MARGINS",
    "CURVES_PANEL_HEIGHT",
    "DENSE_HEATMAP",
    "DENSE_SETTING_ROWS",
    "DENSE_SIZE",
    "DPI",
    "FIG_HEIGHT",
    "FIG_WIDTH",
    "FOOTER_PAD",
    "FRONT",
    "FULL_RUN",
    "HEATMAP_CMAPS",
    "HEATMAP_GAP",
    "LEGEND_RIGHT",
    "LISTING_LEFT",
    "LISTING_LINE",
    "MUTED",
    "ORACLE",
    "RECORDED_LR",
    "SETTING_ROWS_HEIGHT",
    "SETTING_ROW_HEIGHT",
    "SMALL_SIZE",
    "SPLIT_COLORS",
    "TEXT_SIZE",
    "THEME",
    "TINY_SIZE",
    "TITLE_SIZE",
    "TRADEOFF_LEGEND_COLUMNS",
    "TRADEOFF_LEGEND_ROW",
    "TRADEOFF_PLOT_HEIGHT",
    "colormap",
    "draw_curves",
    "empty_panel",
    "footnote",
    "legend_key",
    "new_figure",
    "patience_colors",
    "save_figure",
    "themed",
]

DPI = 110

# ----------------------------------------------------------------------------------
# Theme: text sizes and the rc settings every figure is built and saved under.

TITLE_SIZE = 13  # the figure's title
TEXT_SIZE = 10  # panel titles, axis labels, tick labels, "nothing to show" messages
SMALL_SIZE = 8  # legends, notes, annotations, heatmap cells, setting rows
DENSE_SIZE = 7  # heatmap cells of a large grid
TINY_SIZE = 6  # setting rows when there are many

THEME: dict[str, Any] = {
    "font.size": SMALL_SIZE,
    "figure.titlesize": TITLE_SIZE,
    "figure.labelsize": SMALL_SIZE,  # footnotes (the figure's x label)
    "axes.titlesize": TEXT_SIZE,
    "axes.labelsize": TEXT_SIZE,
    "xtick.labelsize": TEXT_SIZE,
    "ytick.labelsize": TEXT_SIZE,
    "legend.fontsize": SMALL_SIZE,
    "legend.title_fontsize": SMALL_SIZE,
    "legend.frameon": False,
    "grid.alpha": 0.3,
    # Run and metric names are text: a "$" in one must never start mathtext.
    "text.parse_math": False,
}

# ----------------------------------------------------------------------------------
# Layout, in inches (constrained layout places the axes within the figure).

FIG_WIDTH = 10.0
FIG_HEIGHT = 6.0  # heatmaps, LR schedules
CURVES_PANEL_HEIGHT = 3.3  # the recorded curves
SETTING_ROW_HEIGHT = 0.2  # each setting row under them...
SETTING_ROWS_HEIGHT = (1.4, 4.5)  # ... within these bounds
CURVES_MARGINS = 1.6  # title, gap between the panels, x axis
DENSE_SETTING_ROWS = 16  # more rows than this: TINY_SIZE labels
DENSE_HEATMAP = (14, 6)  # more rows or columns than this: DENSE_SIZE cells
HEATMAP_GAP = 0.06  # between the heatmaps, as a fraction of a heatmap's width
TRADEOFF_PLOT_HEIGHT = 6.1  # title, axes and x axis above the footer
TRADEOFF_LEGEND_ROW = 0.22  # a row of the legend under the trade-off axes
TRADEOFF_LEGEND_COLUMNS = 3
LISTING_LINE = 0.15  # a line of the Pareto-front listing under the legend
LISTING_LEFT = 0.3  # the listing's left edge
FOOTER_PAD = 0.1
# A legend to the right of its axes, top-aligned.
LEGEND_RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}
COLORBAR = {"fraction": 0.025, "pad": 0.015, "aspect": 30}

# Okabe-Ito colours (colour-blind safe) for the fixed series.
SPLIT_COLORS = {"train": "#0072B2", "validation": "#E69F00", "test": "#009E73"}
FRONT = "#D55E00"
MUTED = "0.35"
# Styles of the reference marks, shared by each mark and its legend entry.
ORACLE = {"color": "black", "ls": "--", "lw": 1.2}
FULL_RUN = {"color": "0.45", "ls": ":", "lw": 1.6}
RECORDED_LR = {"color": "black", "ls": "--", "lw": 1.6}
CENSORED_BAND = {"facecolor": "0.93", "edgecolor": "0.55", "hatch": "///"}
# Branch curves over the run's: thin; the monitored one solid, the held-out one dotted.
BRANCH_LW = 0.9
BRANCH_HELDOUT_LS = ":"
COUNTERFACTUAL_LS = "--"
HEATMAP_CMAPS = ("viridis", "cividis")


# ----------------------------------------------------------------------------------
# Figure plumbing


def themed(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under :data:`THEME` (rc settings are read as artists are made)."""

    @functools.wraps(draw)
    def figure_function(*args: Any, **kwargs: Any) -> Figure:
        import matplotlib

        with matplotlib.rc_context(THEME):
            return draw(*args, **kwargs)

    return figure_function


def new_figure(width: float = FIG_WIDTH, height: float = FIG_HEIGHT) -> Figure:
    """A fresh pyplot-free Figure on an Agg canvas, with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def footnote(fig: Figure, text: str) -> None:
    """A note under everything else (constrained layout makes room for it)."""
    if text:
        fig.supxlabel(text, color="0.3")


def empty_panel(ax: Axes, message: str) -> None:
    """``message`` in the middle of an axes with nothing to show."""
    style = {"ha": "center", "va": "center", "color": MUTED, "fontsize": TEXT_SIZE}
    ax.text(0.5, 0.5, message, transform=ax.transAxes, **style)
    ax.set_xticks([])
    ax.set_yticks([])


def legend_key(**style: Any):
    """A legend entry: a line and/or marker in ``style`` (with its ``label``)."""
    from matplotlib.lines import Line2D

    return Line2D([], [], **style)


def colormap(name: str, bad: str | None = None):
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap.with_extremes(bad=bad) if bad is not None else cmap


def patience_colors(patiences: Sequence[Any]):
    """A function patience -> RGBA (viridis, its pale yellow end cut off) and the norm."""
    from matplotlib.colors import ListedColormap, Normalize

    vals = [float(p) for p in patiences if not is_missing(p)]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    norm = Normalize(lo, hi)
    cmap = colormap("viridis").resampled(256)
    cut = ListedColormap(cmap(list(x / 255 * 0.88 for x in range(256))), name="viridis_cut")

    def color(p: Any):
        return MUTED if is_missing(p) else cut(norm(float(p)))

    return color, norm, cut


def save_figure(fig: Figure, path: str | os.PathLike[str], *, clear: bool = True) -> None:
    """Write ``fig`` as a PNG (dpi 110) atomically, then close (clear) it unless
    ``clear`` is False (a process about to exit need not: clearing rebuilds every axes).

    The image goes to a temporary file in the same directory and is moved into
    place with :func:`os.replace`, so ``path`` is never left half-written; its
    permissions follow the umask like any new file's. The figure's layout is computed
    once and then fixed (see :func:`_layout_once`).
    Raises OSError when the directory is missing or not writable.
    """
    import matplotlib

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}.png")
    # Not tempfile.mkstemp: its 0600 would stay on the chart. Mode 0666 here is
    # narrowed by the umask, as for any file open() creates (results.csv: 0644).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        # Ticks are made as the figure is drawn: under the theme too.
        with os.fdopen(fd, "wb") as fh, matplotlib.rc_context(THEME):
            _layout_once(fig)
            # zlib level 3 instead of 6: a few percent larger, noticeably faster.
            fig.savefig(fh, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        if clear:
            fig.clear()


def _layout_once(fig: Figure) -> None:
    """Run ``fig``'s layout engine (constrained layout) now, then fix the layout.

    ``savefig`` with a layout engine draws the whole figure twice: once with rendering
    disabled, only to run the layout, then for real (with the engine off). Running the
    engine directly places the axes exactly as that first draw would (it reads the same
    figure, at the same dpi) without drawing every artist for nothing; with the engine
    removed, ``savefig`` draws once. Same pixels, about a tenth less time per chart.
    """
    engine = fig.get_layout_engine()
    if engine is None or not fig.axes or fig.dpi != DPI:
        return
    import matplotlib

    engine.execute(fig)
    no_default = {"figure.autolayout": False, "figure.constrained_layout.use": False}
    with matplotlib.rc_context(no_default):
        fig.set_layout_engine(None)  # None (no engine), not "none" (a placeholder engine)


BEST = "#D55E00"


def draw_curves(ax: Axes, metrics: Curves, monitor: str) -> None:
    epochs = curve_epochs(metrics)
    series = curve_series(metrics, monitor)
    for col, split in series:
        ax.plot(
            epochs,
            curve_values(metrics, col),
            color=SPLIT_COLORS[split],
            lw=2.2 if col == monitor else 1.5,
            marker="o",
            ms=3,
            label=f"{split} ({col})",
        )
    base = base_name(monitor)
    if not series:
        empty_panel(ax, f"no {base} / val_{base} / test_{base} values in the log")
    ax.set_ylabel(humanize(base))
    ax.grid(True)
    ax.set_title("Recorded curves", loc="left")
    ax.tick_params(labelbottom=False)
