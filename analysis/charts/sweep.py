"""The four sweep charts: drawing only.

What each chart shows is computed by :mod:`analysis.charts.data` (plain data, tested
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

Multi-run sweeps: pass :func:`analysis.results.aggregation.aggregate` rows to
:func:`early_stopping_figure` with ``value_fields=("epochs_trained_mean",
"regret_mean")`` and to :func:`tradeoff_figure` with ``x_field="epochs_trained_mean",
metrics_field="final_metrics_mean"``.

matplotlib is imported inside the drawing functions only. Never imports TensorFlow or
``replay``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.charts.data import (
    MAX_BRANCH_LEGEND,
    MAX_FRONT_LISTED,
    branch_curves,
    cell_text,
    choose_heatmap_axes,
    col_labels,
    curve_epochs,
    dodge,
    front_listing,
    heatmap_grid,
    heatmap_notes,
    humanize,
    mark_layers,
    panel_title,
    pareto_front,
    sort_key,
    stop_marks,
    tradeoff_points,
)
from analysis.charts.schedules import (
    lr_axis,
    lr_is_relative,
    lr_schedule_lines,
    schedule_pieces,
    step_xy,
)
from analysis.results.records import (
    EARLY_STOPPING,
    PRECHELT,
    format_value,
    freeze,
    is_missing,
    records_higher_is_better,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from analysis.charts.data import Curves

from analysis.charts.branches import branches_figure
from analysis.charts.checkpoints import checkpoints_figure
from analysis.charts.spread import spread_figure
from analysis.charts.style import (
    BRANCH_HELDOUT_LS,
    BRANCH_LW,
    CENSORED_BAND,
    COLORBAR,
    COUNTERFACTUAL_LS,
    CURVES_MARGINS,
    CURVES_PANEL_HEIGHT,
    DENSE_HEATMAP,
    DENSE_SETTING_ROWS,
    DENSE_SIZE,
    DPI,
    FIG_HEIGHT,
    FIG_WIDTH,
    FOOTER_PAD,
    FRONT,
    FULL_RUN,
    HEATMAP_CMAPS,
    HEATMAP_GAP,
    LEGEND_RIGHT,
    LISTING_LEFT,
    LISTING_LINE,
    MUTED,
    ORACLE,
    RECORDED_LR,
    SETTING_ROW_HEIGHT,
    SETTING_ROWS_HEIGHT,
    SMALL_SIZE,
    THEME,
    TINY_SIZE,
    TRADEOFF_LEGEND_COLUMNS,
    TRADEOFF_LEGEND_ROW,
    TRADEOFF_PLOT_HEIGHT,
    colormap,
    draw_curves,
    empty_panel,
    footnote,
    legend_key,
    new_figure,
    patience_colors,
    save_figure,
    themed,
)

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

# ----------------------------------------------------------------------------------
# 1. Curves with stop / kept epochs


@themed
def curves_figure(
    metrics: Curves,
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
    (the first :data:`~analysis.charts.data.MAX_BRANCH_LEGEND` named). Returns the Figure.
    """
    n = len(curve_epochs(metrics))
    data = stop_marks(records, n)
    fig, top, bottom = _curves_axes(len(data["rows"]))
    fig.suptitle(title or f"{monitor}: where each setting stops and which epoch it keeps")
    draw_curves(top, metrics, monitor)
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
    fig = new_figure(FIG_WIDTH, CURVES_PANEL_HEIGHT + rows_h + CURVES_MARGINS)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(CURVES_PANEL_HEIGHT, rows_h))
    return fig, top, bottom


def _branch_colors(n: int) -> list:
    """A qualitative colour per branch: tab10 without the blue, orange and green of the
    run's splits, cycled."""
    cmap = colormap("tab10")
    return [cmap(3 + i % 7) for i in range(n)]


def _draw_branch_curves(ax: Axes, curves: Sequence[Mapping[str, Any]], monitor: str) -> list:
    """Each branch's curves from its fork on; the legend entries naming them."""
    if not curves:
        return []
    handles = []
    for i, (curve, color) in enumerate(zip(curves, _branch_colors(len(curves)), strict=True)):
        for col, xs, ys in curve["series"]:
            ls = "-" if col == monitor else BRANCH_HELDOUT_LS
            ax.plot(xs, ys, color=color, lw=BRANCH_LW, ls=ls, zorder=1.5, gid=f"branch:{col}")
        if i < MAX_BRANCH_LEGEND:
            handles.append(
                legend_key(color=color, lw=BRANCH_LW * 1.5, label=f"branch {curve['id']}")
            )
    if len(curves) > MAX_BRANCH_LEGEND:
        more = len(curves) - MAX_BRANCH_LEGEND
        handles.append(legend_key(color="none", label=f"... and {more} more branches"))
    handles.append(
        legend_key(color=MUTED, lw=BRANCH_LW, ls=BRANCH_HELDOUT_LS,
             label="branches: solid monitored,\ndotted held-out")
    )  # fmt: skip
    return handles


def _draw_epoch_guides(axes: Sequence[Axes], n: int, oracle_epoch: int | None) -> None:
    """The censored band past the log's end, and the oracle epoch, on every panel."""
    for ax in axes:
        ax.axvspan(n - 0.5, n + 0.5, lw=0.0, zorder=0, **CENSORED_BAND)
        if oracle_epoch is not None:
            ax.axvline(oracle_epoch, zorder=1, **ORACLE)


def _curves_legend(
    ax: Axes, oracle_epoch: int | None, heldout: str | None, branch_handles: Sequence = ()
) -> None:
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += branch_handles
    if oracle_epoch is not None:
        what = f"best {heldout}" if heldout else "best held-out value"
        handles.append(legend_key(label=f"oracle epoch {oracle_epoch}\n({what})", **ORACLE))
    handles.append(Patch(label="past the log's end", **CENSORED_BAND))
    ax.legend(handles=handles, **LEGEND_RIGHT)


def _draw_stop_marks(ax: Axes, data: Mapping[str, Any]) -> None:
    """Stop (x), kept (o) and never-stopped (>) epochs per setting row, by patience."""
    from matplotlib.collections import LineCollection

    if not data["marks"]:
        empty_panel(ax, "no early-stopping or Prechelt settings in this sweep")
        return
    color_of, _, _ = patience_colors(data["row_patience"])
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
        legend_key(marker="x", ls="none", color="0.2", label="stop epoch"),
        legend_key(
            marker="o",
            ls="none",
            mfc="none",
            color="0.2",
            label="kept epoch (final weights)",
        ),
        legend_key(marker=">", ls="none", color="0.2", label="never stopped\n(censored)"),
    ]
    ax.legend(handles=legend, title="colour: patience", alignment="left", **LEGEND_RIGHT)


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


@themed
def early_stopping_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    value_fields: Sequence[str] = ("epochs_trained", "regret"),
    title: str = "",
) -> Figure:
    """Annotated heatmaps (patience x other parameters) of each of ``value_fields``.

    Uses the ``early_stopping`` records (or :func:`analysis.results.aggregation.aggregate` rows,
    with ``value_fields=("epochs_trained_mean", "regret_mean")``); columns are chosen
    by :func:`analysis.charts.data.choose_heatmap_axes`, and the footnote names any
    parameter averaged over. Cells read ``≥n`` where every setting ran to the end of
    the log (censored), and are blank where the value is unknown (e.g. no held-out
    metric). Every cell carries its value, so there are no colour bars. Returns the
    Figure.
    """
    recs = [r for r in records if r.get("policy") == EARLY_STOPPING]
    fields = list(value_fields) or ["epochs_trained"]
    fig = new_figure(FIG_WIDTH, FIG_HEIGHT)
    fig.get_layout_engine().set(wspace=HEATMAP_GAP)
    axes = fig.subplots(1, len(fields), sharey=True, squeeze=False)[0]
    if not recs:
        fig.suptitle(title or "Early stopping")
        for ax in axes:
            empty_panel(ax, "no early-stopping settings in this sweep")
        return fig
    row_param, col_params, averaged = choose_heatmap_axes(recs)
    grids = [heatmap_grid(recs, row_param, col_params or None, f) for f in fields]
    cols = f" × {' × '.join(col_params)}" if col_params else ""
    fig.suptitle(title or f"Early stopping by patience{cols}")
    regret_metric = next((r.get("regret_metric") for r in recs if r.get("regret_metric")), None)
    for i, (ax, field, grid) in enumerate(zip(axes, fields, grids, strict=True)):
        _draw_heatmap(ax, grid, field, HEATMAP_CMAPS[i % len(HEATMAP_CMAPS)])
        ax.set_title(panel_title(field, regret_metric))
        _label_heatmap_columns(ax, col_params, grid["cols"])
    _label_heatmap_rows(axes[0], grids[0]["rows"])
    footnote(fig, heatmap_notes(grids, averaged))
    return fig


def _draw_heatmap(ax: Axes, grid: Mapping[str, Any], field: str, cmap_name: str) -> None:
    import numpy as np

    arr = np.array(
        [[np.nan if v is None else v for v in row] for row in grid["values"]], dtype=float
    )
    masked = np.ma.masked_invalid(arr)
    cmap = colormap(cmap_name, bad="white")
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


@themed
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
    once (:func:`~analysis.charts.schedules.schedule_pieces`), so that any number of
    counterfactual schedules overlapping at one rate still look dashed, never solid.
    Records on the relative scale (the log had no learning rate) are labelled as
    multiples of the initial rate. Returns the Figure.
    """
    lines = lr_schedule_lines(records)
    n_settings = sum(d["settings"] for d in lines)
    fig = new_figure(FIG_WIDTH, FIG_HEIGHT)
    ax = fig.subplots()
    fig.suptitle(title or f"ReduceLROnPlateau: learning-rate schedules ({n_settings} settings)")
    if not lines and recorded_lr is None:
        empty_panel(ax, "no reduce_lr_on_plateau settings in this sweep")
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
    ax.legend(handles=handles, **LEGEND_RIGHT)
    if axis["floor"] is not None:
        footnote(fig, f"rates below {axis['floor']:g} are cut off")
    return fig


def _draw_schedules(ax: Axes, lines: Sequence[Mapping[str, Any]]) -> list:
    """One colour per factor; a dot at each schedule's counterfactual boundary."""
    from matplotlib.collections import LineCollection

    factors = sorted({freeze(d["factor"]) for d in lines}, key=sort_key)
    pieces = schedule_pieces(lines)
    cmap = colormap("viridis")
    lw = 1.6 if len(lines) <= 10 else 1.0
    handles = []
    for i, f in enumerate(factors):
        color = cmap(0.85 * i / max(len(factors) - 1, 1))
        group = [d for d in lines if freeze(d["factor"]) == f]
        for kind, ls in (("exact", "-"), ("counterfactual", COUNTERFACTUAL_LS)):
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
        handles.append(legend_key(color=color, lw=2, label=label))
    return handles


def _draw_recorded_lr(ax: Axes, recorded_lr: Sequence[float | None] | None) -> list:
    if recorded_lr is None or all(is_missing(v) for v in recorded_lr):
        return []
    ax.plot(*step_xy(recorded_lr), zorder=5, **RECORDED_LR)
    return [legend_key(label="recorded learning rate", **RECORDED_LR)]


def _counterfactual_handle():
    return legend_key(
        marker="o",
        ls=COUNTERFACTUAL_LS,
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


@themed
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
    (:func:`analysis.results.records.records_higher_is_better`). For aggregate rows pass
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
        empty_panel(ax, f"no stopping settings with a {x_field} and a {metric}")
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
    fig = new_figure(FIG_WIDTH, height)
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
    (lambda p: p["policy"] == PRECHELT, {"marker": "^", "color": MUTED},
     "Prechelt (GL / PQ / UP)"),
    (lambda p: p["censored"], {"marker": "o", "mfc": "none", "color": MUTED},
     "hollow: never stopped (censored)"),
)  # fmt: skip


def _draw_points(fig: Figure, ax: Axes, pts: Sequence[Mapping[str, Any]]) -> list:
    """Settings coloured by patience, with the patience colour bar; their legend keys."""
    from matplotlib.cm import ScalarMappable

    color_of, norm, cut = patience_colors([p["patience"] for p in pts])
    _scatter_settings(ax, pts, color_of)
    if any(p["patience"] is not None for p in pts):
        mappable = ScalarMappable(norm=norm, cmap=cut)
        fig.colorbar(mappable, ax=ax, label="patience (epochs)", **COLORBAR)
    return [legend_key(ls="none", label=label, **style) for shown, style, label in _POINT_KEYS
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
    ax.scatter(fx, fy, s=150, facecolors="none", edgecolors=FRONT, lw=1.8, zorder=4)
    if x_max > fx[-1]:
        fx, fy = fx + [x_max], fy + [fy[-1]]
    ax.step(fx, fy, where="post", color=FRONT, lw=2.0, zorder=2)
    # Numbers on the chart, settings listed below it: no label covers a data point.
    number = {"textcoords": "offset points", "ha": "right", "fontweight": "bold", "zorder": 6}
    for i, (x, y) in enumerate(front[:MAX_FRONT_LISTED], start=1):
        ax.annotate(str(i), (x, y), xytext=(-7, 7), color=FRONT, **number)
    label = "Pareto front (fewer epochs, better value)"
    return [legend_key(color=FRONT, lw=2.0, marker="o", mfc="none", ms=10, label=label)]


def _list_front(fig: Figure, listing: Sequence[str]) -> None:
    """The front's settings, at the bottom of the footer."""
    x, y = LISTING_LEFT / FIG_WIDTH, FOOTER_PAD / fig.get_figheight()
    style = {"ha": "left", "va": "bottom", "color": "0.15", "linespacing": 1.35}
    fig.text(x, y, "\n".join(listing), **style)


def _draw_references(ax: Axes, oracle_value: float | None, full_run_value: float | None) -> list:
    """The oracle's and the full run's values as horizontal lines."""
    handles = []
    for value, style, what in (
        (oracle_value, ORACLE, "oracle (best epoch)"),
        (full_run_value, FULL_RUN, "full run (last epoch)"),
    ):
        if value is not None and not is_missing(value):
            ax.axhline(value, zorder=1, **style)
            handles.append(legend_key(label=f"{what}: {value:.4g}", **style))
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
