"""``checkpoints.png``: the recorded curves and, per ModelCheckpoint setting, the epochs
it saves, the file you end with and its regret (data:
:func:`checkpoint_rows`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.charts.data import curve_epochs, sort_key
from analysis.charts.style import (
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
from analysis.results.records import (
    MODEL_CHECKPOINT,
    format_value,
    freeze,
    is_missing,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from analysis.charts.data import Curves

__all__ = ["checkpoints_figure", "MAX_CHECKPOINT_ROWS", "checkpoint_label", "checkpoint_rows"]

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
    metrics: Curves,
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
    (:func:`checkpoint_rows`: settings with the same saved epochs
    share a row; at most :data:`MAX_CHECKPOINT_ROWS`, the title
    says when some are left out): a grey dot per epoch saved, the epoch of the file
    you end with as a large orange dot, and Keras 2's ``period`` checks as ticks. To
    the right of each row, a bar of the kept file's regret, labelled with its held-out
    value. The oracle epoch (best ``heldout``) is a vertical line. Returns the Figure.
    """
    n = len(curve_epochs(metrics))
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


# ----------------------------------------------------------------------------------
# 5. ModelCheckpoint: the epochs each setting saves and the file you end with

MAX_CHECKPOINT_ROWS = 40  # the ModelCheckpoint chart draws at most this many rows
_JOINED_VALUES = 3  # a row's label lists up to this many values of a parameter


def _joined_values(values: Sequence[Any]) -> str:
    """``0.1|0.2``; more than :data:`_JOINED_VALUES` as ``0.1..0.5 (5 values)``."""
    if len(values) <= _JOINED_VALUES:
        return "|".join(format_value(v) for v in values)
    ordered = sorted(values, key=sort_key)
    return f"{format_value(ordered[0])}..{format_value(ordered[-1])} ({len(values)} values)"


def checkpoint_label(params: Sequence[Mapping[str, Any]]) -> str:
    """The chart name of the ModelCheckpoint settings ``params`` (one or several that
    share a row): ``best only`` or ``every epoch``, then ``threshold`` (Keras's
    ``initial_value_threshold``) and ``period`` where any is set; several values joined.

    >>> checkpoint_label([{"save_best_only": True, "initial_value_threshold": None}])
    'best only'
    >>> checkpoint_label([{"save_best_only": True, "initial_value_threshold": t, "period": 3}
    ...                   for t in (0.5, 0.6)])
    'best only, threshold 0.5|0.6, period 3'
    """

    def distinct(name: str, default: Any) -> list[Any]:
        seen: dict[Hashable, Any] = {}
        for p in params:
            v = p.get(name, default)
            seen.setdefault(freeze(v), v)
        return list(seen.values())

    best = distinct("save_best_only", False)
    parts = ["|".join("best only" if b else "every epoch" for b in sorted(best))]
    thresholds = distinct("initial_value_threshold", None)
    if thresholds != [None]:
        parts.append(f"threshold {_joined_values(thresholds)}")
    periods = distinct("period", 1)
    if periods != [1]:
        parts.append(f"period {_joined_values(periods)}")
    return ", ".join(parts)


def checkpoint_rows(
    records: Sequence[Mapping[str, Any]],
    n_epochs: int,
    *,
    max_rows: int = MAX_CHECKPOINT_ROWS,
) -> dict[str, Any]:
    """One row per distinct ModelCheckpoint outcome (the epochs saved), in the order the
    grid first reaches it; settings with the same saved epochs share a row.

    Returns ``{"rows": [{"label" (:func:`checkpoint_label` of its settings), "saved"
    (epochs saved), "final" (the epoch of the file you end with, None when nothing was
    saved), "checked" (the epochs Keras 2's ``period`` looks at, when it is above 1 for
    every setting of the row, else None), "value" (the held-out metric of the kept
    file; the monitor's where there is none), "regret", "settings" (how many)}],
    "metric" (whose ``value``), "regret_metric", "settings", "outcomes" (distinct, before
    any cut), "note"}``. Where there are more than ``max_rows`` outcomes, the rows kept
    are the ``max_rows`` of least regret (unknown last), still in grid order, and
    ``note`` says so. Records of other policies are ignored.

    >>> recs = [{"policy": "model_checkpoint", "params": {"monitor": "val_loss",
    ...          "save_best_only": b}, "saved_epochs": s, "final_epoch": s[-1],
    ...          "final_metrics": {"test_loss": v}, "regret": r, "regret_metric": "test_loss"}
    ...         for b, s, v, r in ((False, [0, 1, 2], 0.3, 0.1), (True, [0, 1], 0.2, 0.0))]
    >>> [(r["label"], r["final"], r["regret"]) for r in checkpoint_rows(recs, 3)["rows"]]
    [('every epoch', 2, 0.1), ('best only', 1, 0.0)]
    """
    recs = [r for r in records if r.get("policy") == MODEL_CHECKPOINT]
    regret_metric = next((r.get("regret_metric") for r in recs if r.get("regret_metric")), None)
    monitor = next(((r.get("params") or {}).get("monitor") for r in recs), None)
    metric = regret_metric or monitor
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in recs:
        groups.setdefault((tuple(r.get("saved_epochs") or ()), r.get("final_epoch")), []).append(r)
    rows = []
    for (saved, final), members in groups.items():
        params = [m.get("params") or {} for m in members]
        periods = {int(p.get("period", 1)) for p in params}
        period = periods.pop() if len(periods) == 1 else 1
        first = members[0]
        value = (first.get("final_metrics") or {}).get(metric) if final is not None else None
        regret = first.get("regret")
        rows.append(
            {
                "label": checkpoint_label(params),
                "saved": list(saved),
                "final": final,
                "checked": list(range(period - 1, n_epochs, period)) if period > 1 else None,
                "value": None if is_missing(value) else float(value),
                "regret": None if is_missing(regret) else float(regret),
                "settings": len(members),
            }
        )
    note = ""
    if len(rows) > max_rows:
        order = sorted(
            range(len(rows)),
            key=lambda i: (rows[i]["regret"] is None, rows[i]["regret"] or 0.0, i),
        )
        keep = sorted(order[:max_rows])
        note = (
            f"showing the {max_rows} of {len(rows)} distinct outcomes with the least regret "
            "(all in results.csv)"
        )
        rows = [rows[i] for i in keep]
    return {
        "rows": rows,
        "metric": metric,
        "regret_metric": regret_metric,
        "settings": len(recs),
        "outcomes": len(groups),
        "note": note,
    }
