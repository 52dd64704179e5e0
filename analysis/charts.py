"""The four sweep charts: drawing only.

What each chart shows is computed by :mod:`analysis.chartdata` (plain data, tested
without drawing); each figure function here reads as a short list of named stages
that draw that data on a ``matplotlib.figure.Figure`` of its own (Agg canvas, no
pyplot, constrained layout) and returns it. Every figure is built and saved under one
theme (:data:`THEME`, a ``matplotlib.rc_context``), never the global style; the
caller saves it with :func:`save_figure`.

Charts (``replay sweep --out DIR`` writes them):

- :func:`curves_figure`: train/validation/test curves of the monitored metric, and
  below them, one row per patience (or Prechelt criterion) with each setting's stop
  epoch and kept epoch, the oracle epoch and the censored band past the log's end.
- :func:`early_stopping_figure`: annotated heatmaps, patience x other parameters,
  of epochs trained and regret.
- :func:`lr_schedules_figure`: ReduceLROnPlateau schedules (log scale), coloured by
  factor, with the recorded rate and each schedule's counterfactual boundary.
- :func:`tradeoff_figure`: epochs trained against the held-out metric of the kept
  checkpoint, with the Pareto front and reference lines.
- :func:`branches_figure` (runs with branches from ``replay branch``): the branch
  tree over epochs, each branch's held-out metric at its end.
- :func:`checkpoints_figure` (``--policy model_checkpoint``): the curves, and per
  setting the epochs ModelCheckpoint saves, the file you end with and its regret.

Multi-run sweeps: pass :func:`analysis.records.aggregate` rows to
:func:`early_stopping_figure` with ``value_fields=("epochs_trained_mean",
"regret_mean")`` and to :func:`tradeoff_figure` with ``x_field="epochs_trained_mean",
metrics_field="final_metrics_mean"``.

matplotlib is imported inside the drawing functions only. Never imports TensorFlow or
``replay``.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.chartdata import (
    MAX_BRANCH_LEGEND,
    MAX_FRONT_LISTED,
    branch_curves,
    branch_tree,
    cell_text,
    checkpoint_rows,
    choose_heatmap_axes,
    col_labels,
    curve_series,
    dodge,
    front_listing,
    heatmap_grid,
    heatmap_notes,
    humanize,
    lr_axis,
    lr_is_relative,
    lr_schedule_lines,
    mark_layers,
    panel_title,
    pareto_front,
    schedule_pieces,
    sort_key,
    spread_series,
    step_xy,
    stop_marks,
    tradeoff_points,
)
from analysis.names import base_name
from analysis.records import (
    EARLY_STOPPING,
    PRECHELT,
    format_value,
    freeze,
    is_missing,
    records_higher_is_better,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "THEME",
    "branches_figure",
    "checkpoints_figure",
    "curves_figure",
    "early_stopping_figure",
    "lr_schedules_figure",
    "save_figure",
    "spread_figure",
    "tradeoff_figure",
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
_LEGEND_RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}
_COLORBAR = {"fraction": 0.025, "pad": 0.015, "aspect": 30}

# Okabe-Ito colours (colour-blind safe) for the fixed series.
_SPLIT_COLORS = {"train": "#0072B2", "validation": "#E69F00", "test": "#009E73"}
_FRONT = "#D55E00"
_MUTED = "0.35"
# Styles of the reference marks, shared by each mark and its legend entry.
_ORACLE = {"color": "black", "ls": "--", "lw": 1.2}
_FULL_RUN = {"color": "0.45", "ls": ":", "lw": 1.6}
_RECORDED_LR = {"color": "black", "ls": "--", "lw": 1.6}
_CENSORED_BAND = {"facecolor": "0.93", "edgecolor": "0.55", "hatch": "///"}
# Branch curves over the run's: thin; the monitored one solid, the held-out one dotted.
_BRANCH_LW = 0.9
_BRANCH_HELDOUT_LS = ":"
_COUNTERFACTUAL_LS = "--"
_HEATMAP_CMAPS = ("viridis", "cividis")


# ----------------------------------------------------------------------------------
# Figure plumbing


def _themed(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under :data:`THEME` (rc settings are read as artists are made)."""

    @functools.wraps(draw)
    def figure_function(*args: Any, **kwargs: Any) -> Figure:
        import matplotlib

        with matplotlib.rc_context(THEME):
            return draw(*args, **kwargs)

    return figure_function


def _figure(width: float = FIG_WIDTH, height: float = FIG_HEIGHT) -> Figure:
    """A fresh pyplot-free Figure on an Agg canvas, with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _footnote(fig: Figure, text: str) -> None:
    """A note under everything else (constrained layout makes room for it)."""
    if text:
        fig.supxlabel(text, color="0.3")


def _empty(ax: Axes, message: str) -> None:
    """``message`` in the middle of an axes with nothing to show."""
    style = {"ha": "center", "va": "center", "color": _MUTED, "fontsize": TEXT_SIZE}
    ax.text(0.5, 0.5, message, transform=ax.transAxes, **style)
    ax.set_xticks([])
    ax.set_yticks([])


def _key(**style: Any):
    """A legend entry: a line and/or marker in ``style`` (with its ``label``)."""
    from matplotlib.lines import Line2D

    return Line2D([], [], **style)


def _cmap(name: str, bad: str | None = None):
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap.with_extremes(bad=bad) if bad is not None else cmap


def _patience_colors(patiences: Sequence[Any]):
    """A function patience -> RGBA (viridis, its pale yellow end cut off) and the norm."""
    from matplotlib.colors import ListedColormap, Normalize

    vals = [float(p) for p in patiences if not is_missing(p)]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    norm = Normalize(lo, hi)
    cmap = _cmap("viridis").resampled(256)
    cut = ListedColormap(cmap(list(x / 255 * 0.88 for x in range(256))), name="viridis_cut")

    def color(p: Any):
        return _MUTED if is_missing(p) else cut(norm(float(p)))

    return color, norm, cut


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as a PNG (dpi 110) atomically, then close (clear) it.

    The image goes to a temporary file in the same directory and is moved into
    place with :func:`os.replace`, so ``path`` is never left half-written; its
    permissions follow the umask like any new file's.
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
            # zlib level 3 instead of 6: a few percent larger, noticeably faster.
            fig.savefig(fh, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        fig.clear()


# ----------------------------------------------------------------------------------
# 1. Curves with stop / kept epochs


@_themed
def curves_figure(
    metrics: pd.DataFrame,
    monitor: str,
    records: Sequence[Mapping[str, Any]],
    *,
    oracle_epoch: int | None,
    heldout: str | None,
    title: str = "",
    branches: Sequence[Mapping[str, Any]] = (),
) -> Figure:
    """Training curves of ``monitor``'s base metric, and where each setting stops.

    Top panel: the train / validation / test curves (``val_loss`` -> ``loss``,
    ``val_loss``, ``test_loss``, whichever exist). Bottom panel: one row per
    patience (and per Prechelt criterion): x marks the stop epoch, o the kept epoch
    (whose weights you end with), coloured by patience; settings that never stopped
    sit in the hatched band past the last epoch ("never stopped (censored)"). The
    oracle epoch (best ``heldout`` value) is a vertical line across both panels.
    ``branches`` (plain dicts ``{"id", "fork_epoch", "metrics": {column: [values]}}``,
    from ``replay branch``) add each branch's ``monitor`` (solid) and ``heldout``
    (dotted) curves from its fork on, thin, one colour and legend entry per branch
    (the first :data:`~analysis.chartdata.MAX_BRANCH_LEGEND` named). Returns the Figure.
    """
    n = len(metrics)
    data = stop_marks(records, n)
    fig, top, bottom = _curves_axes(len(data["rows"]))
    fig.suptitle(title or f"{monitor}: where each setting stops and which epoch it keeps")
    _draw_curves(top, metrics, monitor)
    columns = [c for c in dict.fromkeys((monitor, heldout)) if c is not None]
    branch_handles = _draw_branch_curves(top, branch_curves(branches, columns), monitor)
    _draw_epoch_guides((top, bottom), n, oracle_epoch)
    _curves_legend(top, oracle_epoch, heldout, branch_handles)
    _draw_stop_marks(bottom, data)
    _finish_settings_axis(bottom, n)
    return fig


def _curves_axes(n_rows: int) -> tuple[Figure, Axes, Axes]:
    lo, hi = SETTING_ROWS_HEIGHT
    rows_h = min(max(SETTING_ROW_HEIGHT * max(n_rows, 1), lo), hi)
    fig = _figure(FIG_WIDTH, CURVES_PANEL_HEIGHT + rows_h + CURVES_MARGINS)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(CURVES_PANEL_HEIGHT, rows_h))
    return fig, top, bottom


def _draw_curves(ax: Axes, metrics: pd.DataFrame, monitor: str) -> None:
    epochs = [float(e) for e in metrics.index]
    series = curve_series(metrics, monitor)
    for col, split in series:
        ax.plot(
            epochs,
            metrics[col].to_numpy(dtype=float),
            color=_SPLIT_COLORS[split],
            lw=2.2 if col == monitor else 1.5,
            marker="o",
            ms=3,
            label=f"{split} ({col})",
        )
    base = base_name(monitor)
    if not series:
        _empty(ax, f"no {base} / val_{base} / test_{base} values in the log")
    ax.set_ylabel(humanize(base))
    ax.grid(True)
    ax.set_title("Recorded curves", loc="left")
    ax.tick_params(labelbottom=False)


def _branch_colors(n: int) -> list:
    """A qualitative colour per branch: tab10 without the blue, orange and green of the
    run's splits, cycled."""
    cmap = _cmap("tab10")
    return [cmap(3 + i % 7) for i in range(n)]


def _draw_branch_curves(ax: Axes, curves: Sequence[Mapping[str, Any]], monitor: str) -> list:
    """Each branch's curves from its fork on; the legend entries naming them."""
    if not curves:
        return []
    handles = []
    for i, (curve, color) in enumerate(zip(curves, _branch_colors(len(curves)), strict=True)):
        for col, xs, ys in curve["series"]:
            ls = "-" if col == monitor else _BRANCH_HELDOUT_LS
            ax.plot(xs, ys, color=color, lw=_BRANCH_LW, ls=ls, zorder=1.5, gid=f"branch:{col}")
        if i < MAX_BRANCH_LEGEND:
            handles.append(_key(color=color, lw=_BRANCH_LW * 1.5, label=f"branch {curve['id']}"))
    if len(curves) > MAX_BRANCH_LEGEND:
        more = len(curves) - MAX_BRANCH_LEGEND
        handles.append(_key(color="none", label=f"... and {more} more branches"))
    handles.append(
        _key(color=_MUTED, lw=_BRANCH_LW, ls=_BRANCH_HELDOUT_LS,
             label="branches: solid monitored,\ndotted held-out")
    )  # fmt: skip
    return handles


def _draw_epoch_guides(axes: Sequence[Axes], n: int, oracle_epoch: int | None) -> None:
    """The censored band past the log's end, and the oracle epoch, on every panel."""
    for ax in axes:
        ax.axvspan(n - 0.5, n + 0.5, lw=0.0, zorder=0, **_CENSORED_BAND)
        if oracle_epoch is not None:
            ax.axvline(oracle_epoch, zorder=1, **_ORACLE)


def _curves_legend(
    ax: Axes, oracle_epoch: int | None, heldout: str | None, branch_handles: Sequence = ()
) -> None:
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += branch_handles
    if oracle_epoch is not None:
        what = f"best {heldout}" if heldout else "best held-out value"
        handles.append(_key(label=f"oracle epoch {oracle_epoch}\n({what})", **_ORACLE))
    handles.append(Patch(label="past the log's end", **_CENSORED_BAND))
    ax.legend(handles=handles, **_LEGEND_RIGHT)


def _draw_stop_marks(ax: Axes, data: Mapping[str, Any]) -> None:
    """Stop (x), kept (o) and never-stopped (>) epochs per setting row, by patience."""
    from matplotlib.collections import LineCollection

    if not data["marks"]:
        _empty(ax, "no early-stopping or Prechelt settings in this sweep")
        return
    color_of, _, _ = _patience_colors(data["row_patience"])
    layers = mark_layers(data["marks"])

    def xy_colors(layer: str):
        xs, ys, pats = zip(*layers[layer], strict=True)
        return xs, ys, [color_of(p) for p in pats]

    if layers["segments"]:
        segs = [[(x0, y), (x1, y)] for x0, x1, y, _ in layers["segments"]]
        colors = [color_of(p) for *_, p in layers["segments"]]
        ax.add_collection(LineCollection(segs, colors=colors, lw=0.8, alpha=0.6))
    if layers["stop"]:
        xs, ys, cs = xy_colors("stop")
        ax.scatter(xs, ys, marker="x", s=30, c=cs, lw=1.4, zorder=3)
    if layers["kept"]:
        xs, ys, cs = xy_colors("kept")
        ax.scatter(xs, ys, marker="o", s=30, facecolors="none", edgecolors=cs, lw=1.3, zorder=3)
    if layers["censored"]:
        xs, ys, cs = xy_colors("censored")
        ax.scatter(xs, ys, marker=">", s=30, c=cs, zorder=3)
    _label_setting_rows(ax, data["rows"], data["row_patience"], color_of)
    legend = [
        _key(marker="x", ls="none", color="0.2", label="stop epoch"),
        _key(
            marker="o",
            ls="none",
            mfc="none",
            color="0.2",
            label="kept epoch (final weights)",
        ),
        _key(marker=">", ls="none", color="0.2", label="never stopped\n(censored)"),
    ]
    ax.legend(handles=legend, title="colour: patience", alignment="left", **_LEGEND_RIGHT)


def _label_setting_rows(
    ax: Axes, rows: Sequence[str], patiences: Sequence[Any], color_of: Callable[[Any], Any]
) -> None:
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows)
    ax.tick_params(axis="y", labelsize=SMALL_SIZE if len(rows) <= DENSE_SETTING_ROWS else TINY_SIZE)
    for tick, p in zip(ax.get_yticklabels(), patiences, strict=True):
        tick.set_color(color_of(p))
    ax.set_ylim(-0.6, len(rows) - 0.4)


def _finish_settings_axis(ax: Axes, n: int) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title("Each setting (different outcomes within a row are spread vertically)", loc="left")
    ax.set_xlabel("epoch (0-based, as in CSVLogger)")
    ax.set_xlim(-0.5, n + 0.5)
    ax.grid(True, axis="x")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# ----------------------------------------------------------------------------------
# 2. Early-stopping heatmaps


@_themed
def early_stopping_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    value_fields: Sequence[str] = ("epochs_trained", "regret"),
    title: str = "",
) -> Figure:
    """Annotated heatmaps (patience x other parameters) of each of ``value_fields``.

    Uses the ``early_stopping`` records (or :func:`analysis.records.aggregate` rows,
    with ``value_fields=("epochs_trained_mean", "regret_mean")``); columns are chosen
    by :func:`analysis.chartdata.choose_heatmap_axes`, and the footnote names any
    parameter averaged over. Cells read ``≥n`` where every setting ran to the end of
    the log (censored), and are blank where the value is unknown (e.g. no held-out
    metric). Every cell carries its value, so there are no colour bars. Returns the
    Figure.
    """
    recs = [r for r in records if r.get("policy") == EARLY_STOPPING]
    fields = list(value_fields) or ["epochs_trained"]
    fig = _figure(FIG_WIDTH, FIG_HEIGHT)
    fig.get_layout_engine().set(wspace=HEATMAP_GAP)
    axes = fig.subplots(1, len(fields), sharey=True, squeeze=False)[0]
    if not recs:
        fig.suptitle(title or "Early stopping")
        for ax in axes:
            _empty(ax, "no early-stopping settings in this sweep")
        return fig
    row_param, col_params, averaged = choose_heatmap_axes(recs)
    grids = [heatmap_grid(recs, row_param, col_params or None, f) for f in fields]
    cols = f" × {' × '.join(col_params)}" if col_params else ""
    fig.suptitle(title or f"Early stopping by patience{cols}")
    regret_metric = next((r.get("regret_metric") for r in recs if r.get("regret_metric")), None)
    for i, (ax, field, grid) in enumerate(zip(axes, fields, grids, strict=True)):
        _draw_heatmap(ax, grid, field, _HEATMAP_CMAPS[i % len(_HEATMAP_CMAPS)])
        ax.set_title(panel_title(field, regret_metric))
        _label_heatmap_columns(ax, col_params, grid["cols"])
    _label_heatmap_rows(axes[0], grids[0]["rows"])
    _footnote(fig, heatmap_notes(grids, averaged))
    return fig


def _draw_heatmap(ax: Axes, grid: Mapping[str, Any], field: str, cmap_name: str) -> None:
    import numpy as np

    arr = np.array(
        [[np.nan if v is None else v for v in row] for row in grid["values"]], dtype=float
    )
    masked = np.ma.masked_invalid(arr)
    cmap = _cmap(cmap_name, bad="white")
    im = ax.imshow(masked, cmap=cmap, aspect="auto", interpolation="nearest")
    if masked.count() == 0:
        im.set_clim(0, 1)
    rgba = cmap(im.norm(masked.filled(0.0)))
    dark = rgba[..., :3] @ np.array([0.299, 0.587, 0.114]) < 0.5  # text colour
    n_rows, n_cols = arr.shape
    max_rows, max_cols = DENSE_HEATMAP
    size = SMALL_SIZE if n_rows <= max_rows and n_cols <= max_cols else DENSE_SIZE
    for y in range(n_rows):
        for x in range(n_cols):
            text = cell_text(
                field, grid["values"][y][x], grid["censored"][y][x], grid["partly_censored"][y][x]
            )
            if text:
                color = "white" if dark[y, x] else "black"
                ax.text(x, y, text, ha="center", va="center", fontsize=size, color=color)
    # Cell separators as two collections (minor ticks would cost a Text each).
    ax.hlines(np.arange(0.5, n_rows - 1), -0.5, n_cols - 0.5, colors="white", lw=0.8)
    ax.vlines(np.arange(0.5, n_cols - 1), -0.5, n_rows - 0.5, colors="white", lw=0.8)
    ax.tick_params(length=0, labelsize=SMALL_SIZE)


def _label_heatmap_columns(ax: Axes, names: Sequence[str], cols: Sequence[Any]) -> None:
    ticks, xlabel = col_labels(names, cols)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(ticks)
    ax.set_xlabel(xlabel)


def _label_heatmap_rows(ax: Axes, rows: Sequence[Any]) -> None:
    """Patience on the first panel's rows (the others share them, unlabelled)."""
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([format_value(v) for v in rows])
    ax.set_ylabel("patience (epochs)")


# ----------------------------------------------------------------------------------
# 3. Learning-rate schedules


@_themed
def lr_schedules_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    recorded_lr: Sequence[float | None] | None,
    title: str = "",
) -> Figure:
    """Learning rate per epoch for each ReduceLROnPlateau setting, log scale.

    Identical schedules are drawn once; colour is the factor (one legend entry per
    factor, with how many settings and distinct schedules it covers, and how many of
    them branches answered). The log's own rate is black dashed. Each schedule is
    solid where a recorded curve (the run's or a branch's) ran it, and dashed from its
    counterfactual boundary on, where a dot marks it (from that epoch on, the recorded
    metrics were produced under another rate). Schedules are drawn in unit pieces, each
    once (:func:`~analysis.chartdata.schedule_pieces`), so that any number of
    counterfactual schedules overlapping at one rate still look dashed, never solid.
    Records on the relative scale (the log had no learning rate) are labelled as
    multiples of the initial rate. Returns the Figure.
    """
    lines = lr_schedule_lines(records)
    n_settings = sum(d["settings"] for d in lines)
    fig = _figure(FIG_WIDTH, FIG_HEIGHT)
    ax = fig.subplots()
    fig.suptitle(title or f"ReduceLROnPlateau: learning-rate schedules ({n_settings} settings)")
    if not lines and recorded_lr is None:
        _empty(ax, "no reduce_lr_on_plateau settings in this sweep")
        return fig
    handles = _draw_schedules(ax, lines)
    handles += _draw_recorded_lr(ax, recorded_lr)
    if any(d["counterfactual_from"] is not None for d in lines):
        handles.append(_counterfactual_handle())
    axis = lr_axis(lines, recorded_lr)
    _lr_log_axis(ax, axis)
    ax.set_xlabel("epoch (0-based; the rate in effect during the epoch)")
    relative = lr_is_relative(records)
    ax.set_ylabel("learning rate (x initial rate)" if relative else "learning rate (log scale)")
    ax.grid(True)
    ax.legend(handles=handles, **_LEGEND_RIGHT)
    if axis["floor"] is not None:
        _footnote(fig, f"rates below {axis['floor']:g} are cut off")
    return fig


def _draw_schedules(ax: Axes, lines: Sequence[Mapping[str, Any]]) -> list:
    """One colour per factor; a dot at each schedule's counterfactual boundary."""
    from matplotlib.collections import LineCollection

    factors = sorted({freeze(d["factor"]) for d in lines}, key=sort_key)
    pieces = schedule_pieces(lines)
    cmap = _cmap("viridis")
    lw = 1.6 if len(lines) <= 10 else 1.0
    handles = []
    for i, f in enumerate(factors):
        color = cmap(0.85 * i / max(len(factors) - 1, 1))
        group = [d for d in lines if freeze(d["factor"]) == f]
        for kind, ls in (("exact", "-"), ("counterfactual", _COUNTERFACTUAL_LS)):
            if pieces[f][kind]:  # each stretch once: overlaps keep their dashes
                ax.add_collection(
                    LineCollection(pieces[f][kind], colors=[color], lw=lw, ls=ls, alpha=0.8)
                )
        cf = [
            (d["counterfactual_from"], d["lr"][d["counterfactual_from"]])
            for d in group
            if d["counterfactual_from"] is not None and d["counterfactual_from"] < len(d["lr"])
        ]
        if cf:
            xs, ys = zip(*cf, strict=True)
            ax.scatter(xs, ys, s=28, color=color, edgecolors="black", lw=0.6, zorder=4)
        n_set = sum(d["settings"] for d in group)
        n_branched = sum(d.get("branched", 0) for d in group)
        label = f"factor {format_value(f)}: {n_set} settings, {len(group)} distinct"
        if n_branched:
            label += f"\n({n_branched} answered by branches)"
        handles.append(_key(color=color, lw=2, label=label))
    return handles


def _draw_recorded_lr(ax: Axes, recorded_lr: Sequence[float | None] | None) -> list:
    if recorded_lr is None or all(is_missing(v) for v in recorded_lr):
        return []
    ax.plot(*step_xy(recorded_lr), zorder=5, **_RECORDED_LR)
    return [_key(label="recorded learning rate", **_RECORDED_LR)]


def _counterfactual_handle():
    return _key(
        marker="o",
        ls=_COUNTERFACTUAL_LS,
        color="0.6",
        mec="black",
        label="counterfactual from here on\n(metrics recorded under another rate)",
    )


def _lr_log_axis(ax: Axes, axis: Mapping[str, Any]) -> None:
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        MaxNLocator,
        NullFormatter,
        NullLocator,
    )

    ax.set_yscale("log")
    ax.autoscale_view()
    # Plain-text tick labels (0.001, 1e-05): the default ones go through mathtext,
    # whose first use costs a noticeable fraction of a second.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if axis["ticks"] is not None:
        ax.yaxis.set_major_locator(FixedLocator(axis["ticks"]))
    if axis["ylim"] is not None:
        ax.set_ylim(*axis["ylim"])
    if not axis["minor"]:
        # Over many decades, minor ticks are clutter (and each costs a Tick to draw).
        ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# ----------------------------------------------------------------------------------
# 4. Trade-off: epochs trained against the kept checkpoint's held-out metric


@_themed
def tradeoff_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    full_run_value: float | None,
    oracle_value: float | None,
    metric: str,
    higher_is_better: bool | None = None,
    x_field: str = "epochs_trained",
    metrics_field: str = "final_metrics",
    title: str = "",
) -> Figure:
    """Epochs trained against ``metric`` at the kept checkpoint, one point per setting.

    The Pareto front (fewer epochs and a better metric) is a highlighted step line
    with its settings numbered and listed below; horizontal lines show the oracle
    (best value over all recorded epochs) and the full run (last epoch).
    ``higher_is_better`` defaults to the direction the records carry
    (:func:`analysis.records.records_higher_is_better`). For aggregate rows pass
    ``x_field="epochs_trained_mean", metrics_field="final_metrics_mean"``. Returns the
    Figure.

    Raises:
        ValueError: ``higher_is_better`` not given and no record carries a mode.
    """
    pts = tradeoff_points(records, metric, x_field=x_field, metrics_field=metrics_field)
    higher_is_better = _direction(records, pts, higher_is_better)
    front = pareto_front([(p["x"], p["y"]) for p in pts], higher_is_better=higher_is_better)
    listing = front_listing(front, pts, metric)
    fig, ax = _tradeoff_axes(len(listing))
    fig.suptitle(title or f"Cost against outcome: epochs trained vs {humanize(metric)}")
    _label_tradeoff_axes(ax, metric, x_field, metrics_field, higher_is_better)
    handles = []
    if not pts:
        _empty(ax, f"no stopping settings with a {x_field} and a {metric}")
    else:
        handles += _draw_points(fig, ax, pts)
        handles += _draw_front(ax, front, max(p["x"] for p in pts))
        _list_front(fig, listing)
    handles += _draw_references(ax, oracle_value, full_run_value)
    _tradeoff_legend(fig, handles, len(listing))
    return fig


def _direction(
    records: Sequence[Mapping[str, Any]], pts: Sequence[Any], higher_is_better: bool | None
) -> bool:
    if higher_is_better is None:
        higher_is_better = records_higher_is_better(records)
    if higher_is_better is None:
        if pts:
            raise ValueError(
                "tradeoff_figure: no record carries a resolved mode; pass higher_is_better."
            )
        higher_is_better = False  # nothing to rank
    return higher_is_better


def _footer_heights(n_listing: int) -> tuple[float, float]:
    """Inches under the axes for the legend (two rows at most) and the front's listing."""
    legend = 2 * TRADEOFF_LEGEND_ROW + FOOTER_PAD
    listing = LISTING_LINE * n_listing + FOOTER_PAD if n_listing else 0.0
    return legend, listing


def _tradeoff_axes(n_listing: int) -> tuple[Figure, Axes]:
    """The axes above a footer (legend, then the listing) that layout leaves alone."""
    footer = sum(_footer_heights(n_listing))
    height = TRADEOFF_PLOT_HEIGHT + footer
    fig = _figure(FIG_WIDTH, height)
    fig.get_layout_engine().set(rect=(0, footer / height, 1, 1 - footer / height))
    return fig, fig.subplots()


def _label_tradeoff_axes(
    ax: Axes, metric: str, x_field: str, metrics_field: str, higher_is_better: bool
) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(humanize(x_field))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    over = " (mean over runs)" if metrics_field.endswith("_mean") else ""
    direction = "higher" if higher_is_better else "lower"
    ax.set_ylabel(f"{humanize(metric)} at kept checkpoint{over} ({direction} is better)")
    ax.grid(True)


# Legend keys of the trade-off points: (shown when a point..., style, label).
_POINT_KEYS = (
    (lambda p: p["policy"] == EARLY_STOPPING, {"marker": "o", "color": "#3b528b"},
     "early stopping (colour: patience)"),
    (lambda p: p["policy"] == PRECHELT, {"marker": "^", "color": _MUTED},
     "Prechelt (GL / PQ / UP)"),
    (lambda p: p["censored"], {"marker": "o", "mfc": "none", "color": _MUTED},
     "hollow: never stopped (censored)"),
)  # fmt: skip


def _draw_points(fig: Figure, ax: Axes, pts: Sequence[Mapping[str, Any]]) -> list:
    """Settings coloured by patience, with the patience colour bar; their legend keys."""
    from matplotlib.cm import ScalarMappable

    color_of, norm, cut = _patience_colors([p["patience"] for p in pts])
    _scatter_settings(ax, pts, color_of)
    if any(p["patience"] is not None for p in pts):
        mappable = ScalarMappable(norm=norm, cmap=cut)
        fig.colorbar(mappable, ax=ax, label="patience (epochs)", **_COLORBAR)
    return [_key(ls="none", label=label, **style) for shown, style, label in _POINT_KEYS
            if any(shown(p) for p in pts)]  # fmt: skip


def _scatter_settings(ax: Axes, pts: Sequence[Mapping[str, Any]], color_of: Callable) -> None:
    """o early stopping, ^ Prechelt; hollow where the setting never stopped (censored).
    Points with the same outcome are spread sideways."""
    offsets = dodge([(p["x"], p["y"]) for p in pts], width=0.5)
    for is_pre, cens in ((False, False), (False, True), (True, False), (True, True)):
        sel = [
            (p["x"] + off, p["y"], color_of(p["patience"]))
            for p, off in zip(pts, offsets, strict=True)
            if (p["policy"] == PRECHELT) == is_pre and p["censored"] == cens
        ]
        if not sel:
            continue
        xs, ys, cs = zip(*sel, strict=True)
        marker = "^" if is_pre else "o"
        if cens:
            ax.scatter(xs, ys, marker=marker, s=42, facecolors="none", edgecolors=cs, lw=1.3,
                       zorder=3)  # fmt: skip
        else:
            ax.scatter(xs, ys, marker=marker, s=42, c=cs, edgecolors="white", lw=0.4, zorder=3)


def _draw_front(ax: Axes, front: Sequence[tuple[float, float]], x_max: float) -> list:
    """The front as a step line to the last point's x, its points ringed and numbered."""
    fx, fy = [x for x, _ in front], [y for _, y in front]
    ax.scatter(fx, fy, s=150, facecolors="none", edgecolors=_FRONT, lw=1.8, zorder=4)
    if x_max > fx[-1]:
        fx, fy = fx + [x_max], fy + [fy[-1]]
    ax.step(fx, fy, where="post", color=_FRONT, lw=2.0, zorder=2)
    # Numbers on the chart, settings listed below it: no label covers a data point.
    number = {"textcoords": "offset points", "ha": "right", "fontweight": "bold", "zorder": 6}
    for i, (x, y) in enumerate(front[:MAX_FRONT_LISTED], start=1):
        ax.annotate(str(i), (x, y), xytext=(-7, 7), color=_FRONT, **number)
    label = "Pareto front (fewer epochs, better value)"
    return [_key(color=_FRONT, lw=2.0, marker="o", mfc="none", ms=10, label=label)]


def _list_front(fig: Figure, listing: Sequence[str]) -> None:
    """The front's settings, at the bottom of the footer."""
    x, y = LISTING_LEFT / FIG_WIDTH, FOOTER_PAD / fig.get_figheight()
    style = {"ha": "left", "va": "bottom", "color": "0.15", "linespacing": 1.35}
    fig.text(x, y, "\n".join(listing), **style)


def _draw_references(ax: Axes, oracle_value: float | None, full_run_value: float | None) -> list:
    """The oracle's and the full run's values as horizontal lines."""
    handles = []
    for value, style, what in (
        (oracle_value, _ORACLE, "oracle (best epoch)"),
        (full_run_value, _FULL_RUN, "full run (last epoch)"),
    ):
        if value is not None and not is_missing(value):
            ax.axhline(value, zorder=1, **style)
            handles.append(_key(label=f"{what}: {value:.4g}", **style))
    return handles


def _tradeoff_legend(fig: Figure, handles: Sequence[Any], n_listing: int) -> None:
    """At the top of the footer: under the axes, above the listing."""
    if not handles:
        return
    footer = sum(_footer_heights(n_listing))
    fig.legend(
        handles=handles,
        loc="upper center",
        ncols=TRADEOFF_LEGEND_COLUMNS,
        bbox_to_anchor=(0.5, footer / fig.get_figheight()),
    )


# ----------------------------------------------------------------------------------
# 5. Branch tree (runs with branches from ``replay branch``)

BRANCH_ROW_HEIGHT = 0.32  # each branch's row...
BRANCH_ROWS_HEIGHT = (1.5, 12.0)  # ... within these bounds
_BRANCH_SEGMENT = {"lw": 2.4, "capstyle": "butt"}
_BRANCH_CONNECTOR = {"color": "0.55", "lw": 1.0}
_BEST = "#D55E00"


@_themed
def branches_figure(
    run_name: str,
    run_epochs: int,
    run_value: float | None,
    branches: Sequence[Mapping[str, Any]],
    *,
    metric: str | None,
    higher_is_better: bool | None = None,
    title: str = "",
) -> Figure:
    """The branch tree: x = epoch, one row per branch (the run on top, each branch
    under its parent, depth-first), a segment from its fork epoch to its last epoch,
    a connector down from its parent at the fork, and ``metric`` at its last epoch
    written at the segment's end (the best one highlighted, given
    ``higher_is_better``). ``branches`` as :func:`analysis.chartdata.branch_tree`
    takes them. Returns the Figure.
    """
    tree = branch_tree(
        run_name, run_epochs, run_value, branches, metric, higher_is_better=higher_is_better
    )
    nodes = tree["nodes"]
    fig, ax = _branches_axes(len(nodes))
    fig.suptitle(title or _branches_title(run_name, tree))
    _draw_branch_connectors(ax, nodes)
    _draw_branch_segments(ax, nodes)
    _annotate_branch_ends(ax, nodes)
    _finish_branch_axes(ax, nodes, metric)
    return fig


def _branches_title(run_name: str, tree: Mapping[str, Any]) -> str:
    n, forks, depth = tree["n_branches"], tree["n_forks"], tree["depth"]

    def plural(k: int, word: str, many: str) -> str:
        return f"{k} {word if k == 1 else many}"

    return (f"{run_name}: {plural(n, 'branch', 'branches')} from "
            f"{plural(forks, 'fork point', 'fork points')}, "
            f"{plural(depth, 'level', 'levels')} deep")  # fmt: skip


def _branches_axes(n_rows: int) -> tuple[Figure, Axes]:
    lo, hi = BRANCH_ROWS_HEIGHT
    rows_h = min(max(BRANCH_ROW_HEIGHT * n_rows, lo), hi)
    fig = _figure(FIG_WIDTH, rows_h + CURVES_MARGINS)
    return fig, fig.subplots()


def _draw_branch_segments(ax: Axes, nodes: Sequence[Mapping[str, Any]]) -> None:
    """One horizontal segment per row: the run black, branches coloured by depth."""
    from matplotlib.collections import LineCollection

    cmap = _cmap("viridis")
    depth = max(n["depth"] for n in nodes)
    segs = [[(n["start"], n["y"]), (n["end"], n["y"])] for n in nodes[1:]]
    colors = [cmap(0.8 * (n["depth"] - 1) / max(depth - 1, 1)) for n in nodes[1:]]
    root = nodes[0]
    ax.plot([root["start"], root["end"]], [0, 0], color="black", gid="run",
            lw=_BRANCH_SEGMENT["lw"], solid_capstyle="butt")  # fmt: skip
    if segs:
        ax.add_collection(LineCollection(segs, colors=colors, gid="branches", **_BRANCH_SEGMENT))
        ax.scatter([n["start"] for n in nodes[1:]], [n["y"] for n in nodes[1:]], s=14,
                   c=colors, zorder=3)  # fmt: skip


def _draw_branch_connectors(ax: Axes, nodes: Sequence[Mapping[str, Any]]) -> None:
    """From the parent's row down to the child's, at the fork epoch."""
    from matplotlib.collections import LineCollection

    segs = [[(n["start"], n["parent_y"]), (n["start"], n["y"])]
            for n in nodes[1:] if n["parent_y"] is not None]  # fmt: skip
    if segs:
        ax.add_collection(LineCollection(segs, gid="connectors", zorder=1, **_BRANCH_CONNECTOR))


def _annotate_branch_ends(ax: Axes, nodes: Sequence[Mapping[str, Any]]) -> None:
    size = SMALL_SIZE if len(nodes) <= DENSE_SETTING_ROWS else TINY_SIZE
    for n in nodes:
        style = {"color": _BEST, "fontweight": "bold"} if n["best"] else {"color": "0.15"}
        ax.annotate(n["label"], (n["end"], n["y"]), xytext=(5, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=size, **style)  # fmt: skip


def _finish_branch_axes(ax: Axes, nodes: Sequence[Mapping[str, Any]], metric: str | None) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_yticks([n["y"] for n in nodes])
    labels = [f"{n['id']} (run)" if i == 0 else n["id"] + (" (parent unfinished)" if
              n["orphan"] else "") for i, n in enumerate(nodes)]  # fmt: skip
    ax.set_yticklabels(labels)
    size = SMALL_SIZE if len(nodes) <= DENSE_SETTING_ROWS else TINY_SIZE
    ax.tick_params(axis="y", labelsize=size, length=0)
    ax.set_ylim(len(nodes) - 0.5, -0.5)  # the run on top
    last = max(n["end"] for n in nodes)
    # Room on the right for the end labels.
    ax.set_xlim(-0.5, last + 0.5 + max(2.0, 0.22 * (last + 1)))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (0-based; a branch starts at its fork epoch)")
    ax.grid(True, axis="x")
    what = f"{metric} at each branch's last epoch" if metric else "no held-out metric"
    best = "; best in bold" if any(n["best"] for n in nodes) else ""
    ax.set_title(f"Branch tree ({what}{best})", loc="left")


# ----------------------------------------------------------------------------------
# 6. ModelCheckpoint: the epochs each setting saves and the file you end with

CHECKPOINT_ROW_HEIGHT = 0.24  # each setting row under the curves...
CHECKPOINT_ROWS_HEIGHT = (1.2, 7.0)  # ... within these bounds
CHECKPOINT_WIDTHS = (4.0, 1.4)  # the epochs (curves, rows) against the right column
_SAVED = {"marker": "o", "s": 16, "color": "0.35", "lw": 0, "zorder": 3}
_KEPT = {"marker": "o", "s": 90, "facecolors": _BEST, "edgecolors": "black", "lw": 0.8,
         "zorder": 4}  # fmt: skip
_CHECKED = {"marker": "|", "s": 40, "color": "0.6", "lw": 1.0, "zorder": 2}
_ROW_LINE = {"color": "0.85", "lw": 0.8, "zorder": 1}


@_themed
def checkpoints_figure(
    metrics: pd.DataFrame,
    monitor: str,
    records: Sequence[Mapping[str, Any]],
    *,
    oracle_epoch: int | None,
    heldout: str | None,
    title: str = "",
) -> Figure:
    """Which epochs each ModelCheckpoint setting saves, and which file you end with.

    Top: the recorded curves of ``monitor``'s base metric (as :func:`curves_figure`),
    the legend to their right. Below, one row per distinct outcome
    (:func:`analysis.chartdata.checkpoint_rows`: settings with the same saved epochs
    share a row; at most :data:`~analysis.chartdata.MAX_CHECKPOINT_ROWS`, the title
    says when some are left out): a grey dot per epoch saved, the epoch of the file
    you end with as a large orange dot, and Keras 2's ``period`` checks as ticks. To
    the right of each row, a bar of the kept file's regret, labelled with its held-out
    value. The oracle epoch (best ``heldout``) is a vertical line. Returns the Figure.
    """
    n = len(metrics)
    data = checkpoint_rows(records, n)
    rows = data["rows"]
    fig, (top, legend_ax), (strip, bars) = _checkpoint_axes(len(rows))
    fig.suptitle(_checkpoint_title(title, monitor, data))
    _draw_curves(top, metrics, monitor)
    if oracle_epoch is not None:
        for ax in (top, strip):
            ax.axvline(oracle_epoch, **_ORACLE)
    _draw_saved_epochs(strip, rows)
    _finish_checkpoint_rows(strip, rows, n)
    _draw_kept_regret(bars, rows, data)
    _checkpoint_legend(legend_ax, top, rows, oracle_epoch, heldout)
    return fig


def _checkpoint_title(title: str, monitor: str, data: Mapping[str, Any]) -> str:
    title = title or f"{monitor}: the epochs ModelCheckpoint saves and the file you end with"
    return f"{title}\n({data['note']})" if data["note"] else title


def _checkpoint_axes(n_rows: int) -> tuple[Figure, Sequence[Axes], Sequence[Axes]]:
    lo, hi = CHECKPOINT_ROWS_HEIGHT
    rows_h = min(max(CHECKPOINT_ROW_HEIGHT * max(n_rows, 1), lo), hi)
    fig = _figure(FIG_WIDTH, CURVES_PANEL_HEIGHT + rows_h + CURVES_MARGINS)
    axes = fig.subplots(2, 2, sharex="col", width_ratios=CHECKPOINT_WIDTHS,
                        height_ratios=(CURVES_PANEL_HEIGHT, rows_h))  # fmt: skip
    axes[1][1].sharey(axes[1][0])
    axes[0][1].set_axis_off()
    return fig, axes[0], axes[1]


def _draw_saved_epochs(ax: Axes, rows: Sequence[Mapping[str, Any]]) -> None:
    """Per row: a faint line over the epochs, period ticks, saved dots, the kept dot."""
    if not rows:
        _empty(ax, "no ModelCheckpoint settings in this sweep")
        return
    for y, row in enumerate(rows):
        if row["checked"]:
            ax.scatter(row["checked"], [y] * len(row["checked"]), gid="checked", **_CHECKED)
        if row["saved"]:
            ax.plot([row["saved"][0], row["saved"][-1]], [y, y], **_ROW_LINE)
            ax.scatter(row["saved"], [y] * len(row["saved"]), gid="saved", **_SAVED)
        else:
            ax.annotate("nothing saved", (0, y), xytext=(2, 0), textcoords="offset points",
                        ha="left", va="center", color=_MUTED, fontsize=SMALL_SIZE)  # fmt: skip
    kept = [(row["final"], y) for y, row in enumerate(rows) if row["final"] is not None]
    if kept:
        xs, ys = zip(*kept, strict=True)
        ax.scatter(xs, ys, gid="kept", **_KEPT)


def _finish_checkpoint_rows(ax: Axes, rows: Sequence[Mapping[str, Any]], n: int) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["label"] for r in rows])
    size = SMALL_SIZE if len(rows) <= DENSE_SETTING_ROWS else TINY_SIZE
    ax.tick_params(axis="y", labelsize=size, length=0)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first setting on top
    ax.set_xlim(-0.7, n - 0.3)  # room for the kept dot
    ax.set_xlabel("epoch (0-based, as in CSVLogger)")
    ax.grid(True, axis="x")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Each setting: the epochs it saves, and the file you end with", loc="left")


def _draw_kept_regret(ax: Axes, rows: Sequence[Mapping[str, Any]], data: Mapping[str, Any]) -> None:
    """A bar per row: the kept file's regret, labelled with its held-out value."""
    metric, regret_metric = data["metric"], data["regret_metric"]
    ys = [y for y, r in enumerate(rows) if r["regret"] is not None]
    regrets = [rows[y]["regret"] for y in ys]
    if ys:
        ax.barh(ys, regrets, height=0.6, color="0.7", gid="regret")
    top = max(regrets, default=0.0) or 1.0
    size = SMALL_SIZE if len(rows) <= DENSE_SETTING_ROWS else TINY_SIZE
    for y, r in enumerate(rows):
        text = _kept_value_text(r)
        ax.annotate(text, (r["regret"] or 0.0, y), xytext=(3, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=size, color="0.15")  # fmt: skip
    ax.set_xlim(0, top * 1.9)  # room for the labels
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.tick_params(axis="x", labelsize=SMALL_SIZE)
    ax.grid(True, axis="x")
    ax.set_title(f"The file you end with:\n{metric} (+ regret)", loc="left")
    if regret_metric and any(regrets):
        ax.set_xlabel(f"bar: regret in {regret_metric}\n(0 = the best epoch's)")
    else:
        ax.set_xticks([])
        ax.set_xlabel("regret 0 everywhere\n(the best epoch's file)" if regret_metric
                      else "no held-out metric:\nno regret", fontsize=SMALL_SIZE)  # fmt: skip


def _kept_value_text(row: Mapping[str, Any]) -> str:
    """``0.1076 (+0.0288)``, ``0.07876 (best)``; ``nothing saved``; ``?`` for no value."""
    if row["final"] is None:
        return "nothing saved"
    value = "?" if row["value"] is None else f"{row['value']:.4g}"
    if row["regret"] is None:
        return value
    return f"{value} (best)" if row["regret"] == 0 else f"{value} (+{row['regret']:.3g})"


def _checkpoint_legend(
    ax: Axes, curves: Axes, rows: Sequence[Mapping[str, Any]], oracle_epoch: int | None,
    heldout: str | None,
) -> None:  # fmt: skip
    handles, _ = curves.get_legend_handles_labels()
    if oracle_epoch is not None:
        what = f"best {heldout}" if heldout else "best held-out value"
        handles.append(_key(label=f"oracle epoch {oracle_epoch}\n({what})", **_ORACLE))
    handles.append(_key(marker="o", ls="none", ms=4, color=_SAVED["color"], label="epoch saved"))
    handles.append(
        _key(marker="o", ls="none", ms=9, mfc=_BEST, mec="black", label="the file you end with")
    )
    if any(r["checked"] for r in rows):
        handles.append(
            _key(marker="|", ls="none", ms=7, color=_CHECKED["color"],
                 label="epoch Keras 2 looks at\n(period: others never checked)")
        )  # fmt: skip
    ax.legend(handles=handles, loc="upper left", borderaxespad=0.0)


# ----------------------------------------------------------------------------------
# 7. Spread over runs (several seeds): regret against patience, each run and the mean

_MEAN = "#0072B2"
_RUN_POINT = {"color": "0.35", "alpha": 0.6, "s": 16, "lw": 0, "zorder": 7}
_MEAN_LINE = {"color": _MEAN, "lw": 2.0, "marker": "o", "ms": 5, "zorder": 4}
_SPREAD_BAND = {"color": _MEAN, "alpha": 0.13, "lw": 0, "zorder": 1}
_CI_BARS = {"color": "#003f63", "lw": 1.4, "capsize": 3, "zorder": 5, "fmt": "none"}
_LEAST_MEAN = {"marker": "*", "s": 170, "color": _FRONT, "edgecolors": "white", "lw": 0.6,
         "zorder": 6}  # fmt: skip
SPREAD_HEIGHT = 5.2


@_themed
def spread_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    x_param: str = "patience",
    split_param: str = "restore_best_weights",
    title: str = "",
    note: str = "",
) -> Figure:
    """Regret against ``x_param`` over several runs (seeds): one faint point per run and
    setting, the mean over runs as a line with its min-max band and the bootstrap 95%
    interval of the mean as bars, a star at the least mean regret; one panel per value of
    ``split_param`` (:func:`analysis.chartdata.spread_series`). ``note`` goes under the
    axes. Returns the Figure."""
    data = spread_series(records, x_param=x_param, split_param=split_param)
    panels = data["panels"]
    fig = _figure(FIG_WIDTH, SPREAD_HEIGHT)
    axes = fig.subplots(1, max(len(panels), 1), sharey=True, squeeze=False)[0]
    n = len(data["runs"])
    fig.suptitle(title or f"Regret over {n} runs: each run, the mean and its spread")
    if not panels:
        _empty(axes[0], "no stopping settings with a regret to show")
        return fig
    for ax, panel in zip(axes, panels, strict=True):
        _draw_spread_panel(ax, panel, n)
        _label_spread_axes(ax, panel, x_param)
    axes[0].set_ylabel(f"regret in {data['metric'] or 'the held-out metric'}\n"
                       "(0 = the run's best epoch; lower is better)")  # fmt: skip
    _spread_legend(fig, axes[-1], n)
    _footnote(fig, note)
    return fig


def _draw_spread_panel(ax: Axes, panel: Mapping[str, Any], n_runs: int) -> None:
    """Each run's points (spread sideways by run), the min-max band, the mean line with
    its interval bars, and the star at the least mean."""
    xs = [float(x) for x in panel["x"]]
    step = min((b - a for a, b in zip(xs, xs[1:], strict=False)), default=1.0) or 1.0
    # A slot per run beside each x, none at x itself (where the mean and its bars are):
    # an odd count takes n_runs + 1 slots (an even count has none at the centre) and
    # leaves the one after the first half out.
    slots = [k + (n_runs % 2 and k >= n_runs // 2) for k in range(n_runs)]
    width = n_runs + n_runs % 2
    offsets = [(-0.5 + (k + 0.5) / width) * 0.5 * step for k in slots]
    px = [float(x) + offsets[k] for x, _, k in panel["points"]]
    ax.scatter(px, [y for _, y, _ in panel["points"]], **_RUN_POINT)
    ax.fill_between(xs, panel["low"], panel["high"], **_SPREAD_BAND)
    ax.plot(xs, panel["mean"], **_MEAN_LINE)
    bars = [(x, m, m - lo, hi - m) for x, m, lo, hi in
            zip(xs, panel["mean"], panel["ci_low"], panel["ci_high"], strict=True)
            if lo is not None and hi is not None]  # fmt: skip
    if bars:
        bx, by, below, above = zip(*bars, strict=True)
        ax.errorbar(bx, by, yerr=[below, above], **_CI_BARS)
    best = panel["x"].index(panel["best"])
    ax.scatter([xs[best]], [panel["mean"][best]], **_LEAST_MEAN)


def _label_spread_axes(ax: Axes, panel: Mapping[str, Any], x_param: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(panel["title"])
    ax.set_xlabel(humanize(x_param))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True)


def _spread_legend(fig: Figure, ax: Axes, n_runs: int) -> None:
    from matplotlib.patches import Patch

    handles = [
        _key(ls="none", marker="o", color="0.35", alpha=0.45, ms=5,
             label=f"one run ({n_runs} runs)"),
        _key(label="mean over runs", **{k: v for k, v in _MEAN_LINE.items() if k != "zorder"}),
        Patch(color=_MEAN, alpha=0.13, label="min-max over runs"),
        _key(color="#003f63", lw=1.4, marker="_", ms=8,
             label="95% bootstrap interval of the mean"),
        _key(ls="none", marker="*", ms=12, color=_FRONT, label="least mean regret (in its panel)"),
    ]  # fmt: skip
    ax.legend(handles=handles, **_LEGEND_RIGHT)
