"""``checkpoints.png``: the recorded curves and, per ModelCheckpoint setting, the epochs
it saves, the file you end with and its regret (data:
:func:`analysis.chartdata.checkpoint_rows`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.chartdata import (
    checkpoint_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from analysis.chart_style import (
    BEST,
    CURVES_MARGINS,
    CURVES_PANEL_HEIGHT,
    DENSE_SETTING_ROWS,
    FIG_WIDTH,
    MUTED,
    ORACLE,
    SMALL_SIZE,
    TINY_SIZE,
    draw_curves,
    empty_panel,
    legend_key,
    new_figure,
    themed,
)

__all__ = ["checkpoints_figure"]

# ----------------------------------------------------------------------------------
# 6. ModelCheckpoint: the epochs each setting saves and the file you end with

CHECKPOINT_ROW_HEIGHT = 0.24  # each setting row under the curves...
CHECKPOINT_ROWS_HEIGHT = (1.2, 7.0)  # ... within these bounds
CHECKPOINT_WIDTHS = (4.0, 1.4)  # the epochs (curves, rows) against the right column
_SAVED = {"marker": "o", "s": 16, "color": "0.35", "lw": 0, "zorder": 3}
_KEPT = {"marker": "o", "s": 90, "facecolors": BEST, "edgecolors": "black", "lw": 0.8,
         "zorder": 4}  # fmt: skip
_CHECKED = {"marker": "|", "s": 40, "color": "0.6", "lw": 1.0, "zorder": 2}
_ROW_LINE = {"color": "0.85", "lw": 0.8, "zorder": 1}


@themed
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
    draw_curves(top, metrics, monitor)
    if oracle_epoch is not None:
        for ax in (top, strip):
            ax.axvline(oracle_epoch, **ORACLE)
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
    fig = new_figure(FIG_WIDTH, CURVES_PANEL_HEIGHT + rows_h + CURVES_MARGINS)
    axes = fig.subplots(2, 2, sharex="col", width_ratios=CHECKPOINT_WIDTHS,
                        height_ratios=(CURVES_PANEL_HEIGHT, rows_h))  # fmt: skip
    axes[1][1].sharey(axes[1][0])
    axes[0][1].set_axis_off()
    return fig, axes[0], axes[1]


def _draw_saved_epochs(ax: Axes, rows: Sequence[Mapping[str, Any]]) -> None:
    """Per row: a faint line over the epochs, period ticks, saved dots, the kept dot."""
    if not rows:
        empty_panel(ax, "no ModelCheckpoint settings in this sweep")
        return
    for y, row in enumerate(rows):
        if row["checked"]:
            ax.scatter(row["checked"], [y] * len(row["checked"]), gid="checked", **_CHECKED)
        if row["saved"]:
            ax.plot([row["saved"][0], row["saved"][-1]], [y, y], **_ROW_LINE)
            ax.scatter(row["saved"], [y] * len(row["saved"]), gid="saved", **_SAVED)
        else:
            ax.annotate("nothing saved", (0, y), xytext=(2, 0), textcoords="offset points",
                        ha="left", va="center", color=MUTED, fontsize=SMALL_SIZE)  # fmt: skip
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
        handles.append(legend_key(label=f"oracle epoch {oracle_epoch}\n({what})", **ORACLE))
    handles.append(
        legend_key(marker="o", ls="none", ms=4, color=_SAVED["color"], label="epoch saved")
    )
    handles.append(
        legend_key(
            marker="o", ls="none", ms=9, mfc=BEST, mec="black", label="the file you end with"
        )
    )
    if any(r["checked"] for r in rows):
        handles.append(
            legend_key(marker="|", ls="none", ms=7, color=_CHECKED["color"],
                 label="epoch Keras 2 looks at\n(period: others never checked)")
        )  # fmt: skip
    ax.legend(handles=handles, loc="upper left", borderaxespad=0.0)
