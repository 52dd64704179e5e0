"""Charts: the compute helpers as table tests, the figures by their structure.

Records are built by hand here (the sweep engine is tested elsewhere); figures are
checked for axes, lines, labels, legend entries and annotations, and saved to
memory to prove they render.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys

import pandas as pd
import pytest

from analysis.charts import data as chartdata
from analysis.charts import schedules
from analysis.charts import sweep as charts
from analysis.results.aggregation import aggregate
from analysis.results.records import records_higher_is_better

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = math.nan


# Every figure built is closed after each test (conftest.figures).
pytestmark = pytest.mark.usefixtures("figures")


# ----------------------------------------------------------------------------------
# Hand-built records


def es(
    patience,
    *,
    min_delta=0.0,
    restore=False,
    stop=None,
    best=2,
    final=None,
    censored=False,
    regret=0.0,
    n=10,
    test_loss=0.3,
    monitor="val_loss",
    run="r1",
):
    """One early-stopping record; ``stop=None`` with ``censored=True`` ran to the end."""
    if final is None:
        final = best if restore else (n - 1 if stop is None else stop)
    return {
        "run": run,
        "source": f"logs/{run}",
        "policy": "early_stopping",
        "params": {
            "monitor": monitor,
            "mode": "min",
            "min_delta": min_delta,
            "patience": patience,
            "baseline": None,
            "restore_best_weights": restore,
            "start_from_epoch": 0,
        },
        "stopped": stop is not None,
        "stopped_epoch": stop,
        "epochs_trained": n if stop is None else stop + 1,
        "best_epoch": best,
        "final_epoch": final,
        "checkpoint": None,
        "censored": censored,
        "final_metrics": {"val_loss": test_loss, "test_loss": test_loss, "test_accuracy": 0.9},
        "regret": regret,
        "regret_metric": "test_loss",
    }


def prechelt(criterion="gl", alpha=2.0, strips=None, stop=4, best=2, test_loss=0.31):
    return {
        "run": "r1",
        "source": "logs/r1",
        "policy": "prechelt",
        "params": {
            "criterion": criterion,
            "alpha": alpha,
            "strips": strips,
            "strip_length": 5,
            "monitor": "val_loss",
            "error": "val_loss",
        },
        "stopped": True,
        "stopped_epoch": stop,
        "epochs_trained": stop + 1,
        "best_epoch": best,
        "final_epoch": best,
        "checkpoint": None,
        "censored": False,
        "final_metrics": {"test_loss": test_loss},
        "regret": 0.01,
        "regret_metric": "test_loss",
    }


def plateau(factor, patience, lr, cf=None):
    return {
        "run": "r1",
        "source": "logs/r1",
        "policy": "reduce_lr_on_plateau",
        "params": {
            "monitor": "val_loss",
            "mode": "min",
            "factor": factor,
            "patience": patience,
            "min_delta": 1e-4,
            "cooldown": 0,
            "min_lr": 0.0,
            "initial_lr": 0.001,
        },
        "lr": lr,
        "reductions": [i - 1 for i in range(1, len(lr)) if lr[i] < lr[i - 1]],
        "final_lr": lr[-1],
        "counterfactual_from": cf,
    }


def metrics_frame(n=10, *, test=True):
    epochs = range(n)
    data = {
        "loss": [1.0 / (e + 1) for e in epochs],
        "val_loss": [0.5 + 0.02 * (e - 3) ** 2 for e in epochs],
        "learning_rate": [0.001] * n,
    }
    if test:
        data["test_loss"] = [v + 0.01 for v in data["val_loss"]]
    df = pd.DataFrame(data, index=pd.RangeIndex(n, name="epoch"))
    df.loc[5, "loss"] = NAN  # a gap in the log
    return df


def sweep_records():
    """11 patiences x 2 min_deltas x restore both, with large patiences censored."""
    out = []
    for p in range(11):
        for d in (0.0, 0.01):
            for restore in (False, True):
                if p >= 7:
                    out.append(
                        es(
                            p,
                            min_delta=d,
                            restore=restore,
                            censored=True,
                            regret=0.02 if not restore else 0.0,
                        )
                    )
                else:
                    out.append(
                        es(
                            p,
                            min_delta=d,
                            restore=restore,
                            stop=2 + p,
                            regret=0.01 * p if not restore else 0.0,
                            test_loss=0.3 + 0.01 * p,
                        )
                    )
    return out


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def legend_texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


# ----------------------------------------------------------------------------------
# Compute helpers


@pytest.mark.parametrize(
    ("points", "higher", "expected"),
    [
        ([], False, []),
        ([(3, 0.5)], False, [(3.0, 0.5)]),
        ([(5, 0.3), (3, 0.4), (8, 0.35), (3, 0.5)], False, [(3.0, 0.4), (5.0, 0.3)]),
        ([(None, 0.1), (2, NAN), (4, 0.2), (6, None)], False, [(4.0, 0.2)]),
        ([(2, 0.1), (2, 0.1)], False, [(2.0, 0.1)]),
        ([(2, 0.3), (2, 0.1)], False, [(2.0, 0.1)]),
        ([(2, 0.1), (5, 0.1)], False, [(2.0, 0.1)]),
        ([(2, 0.9), (5, 0.95), (6, 0.93), (9, 0.99)], True, [(2.0, 0.9), (5.0, 0.95), (9.0, 0.99)]),
        ([(2, 0.9), (5, 0.95)], False, [(2.0, 0.9)]),
        ([(None, None)], False, []),
    ],
)
def test_pareto_front(points, higher, expected):
    assert chartdata.pareto_front(points, higher_is_better=higher) == expected


@pytest.mark.parametrize(
    ("keys", "width", "expected"),
    [
        ([], 0.6, []),
        (["a"], 0.6, [0.0]),
        (["a", "b", "a"], 0.5, [-0.25, 0.0, 0.25]),
        ([1, 1, 1], 1.0, [-0.5, 0.0, 0.5]),
    ],
)
def test_dodge(keys, width, expected):
    assert chartdata.dodge(keys, width) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("modes", "higher"),
    [(["min"], False), (["max", "max"], True), ([None], None), (["min", "max"], None)],
)
def test_records_higher_is_better_reads_the_resolved_mode(modes, higher):
    # Issue 10: the direction is the mode the sweep resolved, never a guess from the name.
    records = [{"params": {} if m is None else {"mode": m}} for m in modes]
    assert records_higher_is_better(records) is higher


def grid_rec(patience, min_delta, value, *, censored=False, restore=False):
    return {
        "policy": "early_stopping",
        "censored": censored,
        "regret": value,
        "params": {"patience": patience, "min_delta": min_delta, "restore_best_weights": restore},
    }


@pytest.mark.parametrize(
    ("records", "col", "expected_values", "expected_censored"),
    [
        # a full 2 x 2 grid
        (
            [
                grid_rec(1, 0.0, 0.1),
                grid_rec(1, 0.1, 0.2),
                grid_rec(2, 0.0, 0.3),
                grid_rec(2, 0.1, 0.4),
            ],
            "min_delta",
            [[0.1, 0.2], [0.3, 0.4]],
            [[False, False], [False, False]],
        ),
        # None and NaN are skipped; a cell with nothing left is None
        (
            [grid_rec(1, 0.0, None), grid_rec(1, 0.1, NAN), grid_rec(1, 0.1, 0.5)],
            "min_delta",
            [[None, 0.5]],
            [[False, False]],
        ),
        # a single setting
        ([grid_rec(3, 0.0, 0.25)], "min_delta", [[0.25]], [[False]]),
        # censored only
        (
            [grid_rec(5, 0.0, 0.0, censored=True), grid_rec(6, 0.0, 0.1, censored=True)],
            "min_delta",
            [[0.0], [0.1]],
            [[True], [True]],
        ),
        # a parameter not on an axis (restore) is averaged over
        (
            [grid_rec(1, 0.0, 0.2, restore=False), grid_rec(1, 0.0, 0.0, restore=True)],
            "min_delta",
            [[0.1]],
            [[False]],
        ),
        # no column parameter: one column
        ([grid_rec(1, 0.0, 0.2), grid_rec(1, 0.1, 0.4)], None, [[pytest.approx(0.3)]], [[False]]),
        # a missing cell in the grid is None
        (
            [grid_rec(1, 0.0, 0.1), grid_rec(2, 0.1, 0.2)],
            "min_delta",
            [[0.1, None], [None, 0.2]],
            [[False, False], [False, False]],
        ),
    ],
)
def test_heatmap_grid(records, col, expected_values, expected_censored):
    grid = chartdata.heatmap_grid(records, "patience", col, "regret")
    assert grid["values"] == expected_values
    assert grid["censored"] == expected_censored
    assert len(grid["rows"]) == len(expected_values)


def test_heatmap_grid_sorts_axes_and_takes_tuple_columns():
    recs = [
        grid_rec(p, d, 0.1, restore=r) for p in (3, 1, 2) for d in (0.1, 0.0) for r in (True, False)
    ]
    grid = chartdata.heatmap_grid(recs, "patience", ("min_delta", "restore_best_weights"), "regret")
    assert grid["rows"] == [1, 2, 3]
    assert grid["cols"] == [(0.0, False), (0.0, True), (0.1, False), (0.1, True)]
    assert grid["counts"] == [[1, 1, 1, 1]] * 3


def test_heatmap_grid_partly_censored():
    recs = [grid_rec(1, 0.0, 0.1, censored=True, restore=True), grid_rec(1, 0.0, 0.2)]
    grid = chartdata.heatmap_grid(recs, "patience", "min_delta", "regret")
    assert grid["censored"] == [[False]]
    assert grid["partly_censored"] == [[True]]


def axes_rec(**params):
    return {"policy": "early_stopping", "params": params}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([axes_rec(patience=p, min_delta=0.0) for p in (1, 2)], ("patience", (), [])),
        ([axes_rec(patience=1, min_delta=d) for d in (0.0, 0.1)], ("patience", ("min_delta",), [])),
        (
            [
                axes_rec(patience=1, min_delta=d, restore_best_weights=r)
                for d in (0.0, 0.1, 0.2)
                for r in (True, False)
            ],
            ("patience", ("min_delta", "restore_best_weights"), []),
        ),
        (
            [
                axes_rec(patience=1, min_delta=d, monitor=m, restore_best_weights=r)
                for d in (0.0, 0.1, 0.2)
                for m in ("val_loss", "val_accuracy")
                for r in (True, False)
            ],
            ("patience", ("min_delta", "monitor"), ["restore_best_weights"]),
        ),
        (
            [axes_rec(patience=1, monitor=m) for m in ("val_loss", "loss")],
            ("patience", ("monitor",), []),
        ),
        ([axes_rec(patience=1)], ("patience", (), [])),
    ],
)
def test_choose_heatmap_axes(records, expected):
    assert chartdata.choose_heatmap_axes(records) == expected


def test_aggregate_folds_runs_per_setting():
    recs = [
        es(3, stop=5, regret=0.1, run="a", test_loss=0.3),
        es(3, stop=7, regret=0.3, run="b", test_loss=0.5),
        es(4, stop=6, regret=None, run="a"),
        es(4, censored=True, regret=NAN, run="b"),
    ]
    rows = aggregate(recs)
    assert [r["params"]["patience"] for r in rows] == [3, 4]
    first, second = rows
    assert first["runs"] == 2 and first["run_names"] == ["a", "b"]
    assert first["regret_mean"] == pytest.approx(0.2)
    assert first["regret_worst"] == pytest.approx(0.3)
    assert first["regret_spread"] == pytest.approx(0.2)
    assert first["epochs_trained_mean"] == 7 and first["epochs_trained_worst"] == 8
    assert first["epochs_trained_spread"] == 2
    assert first["final_metrics_mean"]["test_loss"] == pytest.approx(0.4)
    assert first["censored_runs"] == 0 and first["regret_metric"] == "test_loss"
    # None and NaN regrets: nothing to average
    assert second["regret_mean"] is None and second["regret_worst"] is None
    assert second["regret_spread"] is None
    assert second["censored_runs"] == 1


@pytest.mark.parametrize(
    ("records", "expected_rows"),
    [
        ([], 0),
        ([es(1, stop=3)], 1),
        ([es(1, stop=3), es(1, stop=3, min_delta=0.1)], 2),
        ([es(1, censored=True, run="a"), es(1, censored=True, run="b")], 1),
        ([plateau(0.5, 2, [0.1, 0.05]), plateau(0.5, 2, [0.1, 0.05])], 1),
    ],
)
def test_aggregate_row_counts(records, expected_rows):
    rows = aggregate(records)
    assert len(rows) == expected_rows
    assert sum(r["runs"] for r in rows) == len(records)


def test_aggregate_without_the_field_gives_none():
    (row,) = aggregate([plateau(0.5, 2, [0.1, 0.05])])
    assert row["epochs_trained_mean"] is None and row["regret_worst"] is None
    assert row["final_metrics_mean"] == {}


def test_aggregate_censored_only_rows_count_as_censored_in_the_heatmap():
    rows = aggregate([es(1, censored=True, run="a"), es(1, censored=True, run="b")])
    grid = chartdata.heatmap_grid(rows, "patience", None, "epochs_trained_mean")
    assert grid["censored"] == [[True]] and grid["values"] == [[10.0]]


def test_stop_marks_rows_and_censoring():
    recs = [
        es(2, stop=4),
        es(2, stop=4),  # identical outcome: drawn once
        es(2, stop=4, restore=True),  # same row, different kept epoch: offset
        es(0, censored=True),
        prechelt("gl", 2.0),
        prechelt("up", None, 3),
        plateau(0.5, 1, [0.1, 0.05]),  # not a stopping policy: ignored
    ]
    data = chartdata.stop_marks(recs, n_epochs=10)
    assert data["rows"] == ["patience 0", "patience 2", "GL α=2", "UP s=3"]
    assert data["row_patience"] == [0, 2, None, None]
    marks = data["marks"]
    assert len(marks) == 5
    cens = [m for m in marks if m["censored"]]
    assert len(cens) == 1 and cens[0]["stop"] is None and cens[0]["censored_x"] == 10
    row2 = sorted(m["y"] for m in marks if m["row"] == 1)
    assert len(row2) == 2 and row2[0] < 1 < row2[1]


def test_stop_marks_censored_only():
    data = chartdata.stop_marks([es(p, censored=True) for p in (3, 4)], n_epochs=10)
    assert all(m["censored"] and m["stop"] is None for m in data["marks"])
    assert [m["y"] for m in data["marks"]] == [0.0, 1.0]


def test_lr_schedule_lines_groups_identical_schedules():
    recs = [
        plateau(0.5, 1, [1e-3, 5e-4, 5e-4], cf=2),
        plateau(0.5, 2, [1e-3, 5e-4, 5e-4], cf=2),
        plateau(0.1, 1, [1e-3, 1e-4, 1e-4], cf=2),
        es(1, stop=2),
    ]
    lines = schedules.lr_schedule_lines(recs)
    assert [(d["factor"], d["settings"]) for d in lines] == [(0.1, 1), (0.5, 2)]


def test_tradeoff_points_skip_missing_values():
    recs = [es(1, stop=3), es(2, stop=4, test_loss=None), prechelt()]
    recs[0]["final_metrics"]["test_loss"] = NAN
    pts = chartdata.tradeoff_points(recs, "test_loss")
    assert [(p["policy"], p["x"]) for p in pts] == [("prechelt", 5.0)]


# ----------------------------------------------------------------------------------
# Figures


def test_curves_figure_structure():
    recs = sweep_records() + [prechelt("gl", 2.0), prechelt("up", None, 3, stop=8)]
    fig = charts.curves_figure(
        metrics_frame(), "val_loss", recs, oracle_epoch=3, heldout="test_loss", title="run r1"
    )
    assert fig.get_suptitle() == "run r1"
    assert len(fig.axes) == 2
    top, bottom = sorted(fig.axes, key=lambda ax: -ax.get_position().y0)
    curve_labels = [ln.get_label() for ln in top.get_lines() if not ln.get_label().startswith("_")]
    assert curve_labels == ["train (loss)", "validation (val_loss)", "test (test_loss)"]
    assert legend_texts(top.get_legend()) == [
        "train (loss)",
        "validation (val_loss)",
        "test (test_loss)",
        "oracle epoch 3\n(best test_loss)",
        "past the log's end",
    ]
    assert legend_texts(bottom.get_legend()) == [
        "stop epoch",
        "kept epoch (final weights)",
        "never stopped\n(censored)",
    ]
    ticks = [t.get_text() for t in bottom.get_yticklabels()]
    assert ticks == [f"patience {p}" for p in range(11)] + ["GL α=2", "UP s=3"]
    assert bottom.get_xlabel() == "epoch (0-based, as in CSVLogger)"
    assert top.get_ylabel() == "loss"
    # x stops, o kept epochs, > censored, and the stop-to-kept segments
    assert len(bottom.collections) == 4
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_curves_figure_without_test_columns_or_settings():
    fig = charts.curves_figure(
        metrics_frame(test=False), "val_loss", [], oracle_epoch=None, heldout=None
    )
    top, bottom = sorted(fig.axes, key=lambda ax: -ax.get_position().y0)
    assert len([ln for ln in top.get_lines() if not ln.get_label().startswith("_")]) == 2
    assert "val_loss" in fig.get_suptitle()
    assert any("no early-stopping" in t.get_text() for t in bottom.texts)
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_curves_figure_censored_only():
    fig = charts.curves_figure(
        metrics_frame(),
        "val_loss",
        [es(p, censored=True) for p in (5, 6)],
        oracle_epoch=3,
        heldout="test_loss",
    )
    _, bottom = sorted(fig.axes, key=lambda ax: -ax.get_position().y0)
    # no stop markers: kept epochs, censored markers and the segments between them
    assert len(bottom.collections) == 3
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_early_stopping_figure_structure():
    recs = sweep_records()
    recs[0]["regret"] = None  # patience 0, min_delta 0, no restore: unknown
    fig = charts.early_stopping_figure(recs)
    assert len(fig.axes) == 2  # two annotated heatmaps, no colour bars
    epochs_ax, regret_ax = fig.axes
    assert epochs_ax.get_title() == "epochs trained\n(darker = fewer)"
    assert regret_ax.get_title() == "regret in test_loss\n(0 = best; darker = lower)"
    assert epochs_ax.get_ylabel() == "patience (epochs)"
    assert [t.get_text() for t in epochs_ax.get_yticklabels()] == [str(p) for p in range(11)]
    assert regret_ax.get_ylabel() == ""  # shares the rows of the first panel
    assert epochs_ax.get_xlabel() == "min_delta / restore_best_weights (top to bottom)"
    assert [t.get_text() for t in epochs_ax.get_xticklabels()] == [
        "0\nno",
        "0\nyes",
        "0.01\nno",
        "0.01\nyes",
    ]
    assert len(epochs_ax.texts) == 11 * 4
    assert len(regret_ax.texts) == 11 * 4 - 1  # the unknown regret is a blank cell
    censored = [t.get_text() for t in epochs_ax.texts if t.get_text().startswith("≥")]
    assert censored == ["≥10"] * 4 * 4  # patience 7..10 never stopped
    assert not any(t.get_text().startswith("≥") for t in regret_ax.texts)
    assert "min_delta" in fig.get_suptitle()
    assert fig.texts[-1].get_text() == (
        "≥n: never stopped within the log (censored); blank: unknown (no held-out value)"
    )
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_early_stopping_figure_single_setting_and_averaging_note():
    fig = charts.early_stopping_figure([es(3, stop=5)])
    assert len(fig.axes[0].texts) == 1 and len(fig.axes[1].texts) == 1
    assert [t.get_text() for t in fig.texts] == ["Early stopping by patience"]  # no notes
    recs = [
        es(p, min_delta=d, restore=r, monitor=m, stop=4)
        for p in (1, 2)
        for d in (0, 0.1, 0.2)
        for m in ("val_loss", "loss")
        for r in (True, False)
    ]
    fig = charts.early_stopping_figure(recs)
    assert any("mean over restore_best_weights" in t.get_text() for t in fig.texts)
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_early_stopping_figure_from_aggregate_rows():
    recs = sweep_records() + [dict(r, run="r2") for r in sweep_records()]
    rows = aggregate(recs)
    fig = charts.early_stopping_figure(rows, value_fields=("epochs_trained_mean", "regret_mean"))
    assert fig.axes[0].get_title().startswith("epochs trained (mean over runs)\n")
    assert fig.axes[1].get_title().startswith("regret (mean over runs) in test_loss\n")
    assert len(fig.axes[0].texts) == 44
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_early_stopping_figure_without_records():
    fig = charts.early_stopping_figure([plateau(0.5, 1, [0.1, 0.05])])
    assert any("no early-stopping" in t.get_text() for t in fig.axes[0].texts)
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_lr_schedules_figure_structure():
    base = [1e-3] * 4
    recs = [
        plateau(f, p, base[:2] + [1e-3 * f] * 2, cf=2) for f in (0.1, 0.2, 0.5) for p in (1, 2)
    ] + [plateau(0.5, 9, base, cf=None)]
    fig = charts.lr_schedules_figure(recs, recorded_lr=base)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "learning rate (log scale)"
    assert ax.get_xlabel().startswith("epoch")
    assert legend_texts(ax.get_legend()) == [
        "factor 0.1: 2 settings, 1 distinct",
        "factor 0.2: 2 settings, 1 distinct",
        "factor 0.5: 3 settings, 2 distinct",
        "recorded learning rate",
        "counterfactual from here on\n(metrics recorded under another rate)",
    ]
    recorded = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(recorded) == 1
    assert "7 settings" in fig.get_suptitle()
    assert png_bytes(fig).startswith(PNG_MAGIC)


def _overlapping_schedules(k: int = 8, n: int = 20):
    """``k`` schedules at 1e-3 counterfactual from epochs 1..k, cut at epochs 9..k+8: all
    of them dashed over epochs k..9 at one rate; one exact schedule besides."""
    recs = [plateau(0.1, 8 + c, [1e-3] * (8 + c) + [1e-4] * (n - 8 - c), cf=c)
            for c in range(1, k + 1)]  # fmt: skip
    return recs + [plateau(0.5, 3, [1e-3] * 4 + [5e-4] * (n - 4), cf=None)]


def _paths(ax, dashed: bool) -> list[list[tuple[float, float]]]:
    """The vertices of each line of the schedule collections, dashed or solid."""
    from matplotlib.collections import LineCollection

    out = []
    for c in ax.collections:
        if isinstance(c, LineCollection) and (c.get_linestyle()[0][1] is not None) == dashed:
            out += [[tuple(map(float, v)) for v in seg] for seg in c.get_segments()]
    return out


def _overlap(p, q) -> bool:
    """Whether two polylines of axis-parallel edges share a stretch of positive length."""
    for a, b in zip(p, p[1:], strict=False):
        for c, d in zip(q, q[1:], strict=False):
            for axis in (0, 1):  # along x (same y) or along y (same x)
                other = 1 - axis
                if not a[other] == b[other] == c[other] == d[other]:
                    continue
                lo = max(min(a[axis], b[axis]), min(c[axis], d[axis]))
                hi = min(max(a[axis], b[axis]), max(c[axis], d[axis]))
                if hi > lo:
                    return True
    return False


def test_overlapping_counterfactual_schedules_stay_dashed():
    """Dashes start anew at each line's start: two dashed lines that overlap look dashed
    only if they are the same line (same start, same phase), else their dashes fill each
    other's gaps and the overlap looks solid, like an exact schedule (issue 17)."""
    fig = charts.lr_schedules_figure(_overlapping_schedules(), recorded_lr=None)
    (ax,) = fig.axes
    dashed, solid = _paths(ax, dashed=True), _paths(ax, dashed=False)
    assert dashed and solid
    clashes = [(p, q) for i, p in enumerate(dashed) for q in dashed[i + 1 :]
               if p != q and _overlap(p, q)]  # fmt: skip
    assert clashes == []
    assert not [(p, q) for p in dashed for q in solid if _overlap(p, q)]
    # Each epoch at 1e-3 that only counterfactual schedules ran is drawn dashed, once
    # (before epoch 8, one of them ran it exactly: solid).
    edges = [(a, b) for p in dashed for a, b in zip(p, p[1:], strict=False)]
    at_rate = [(a[0], b[0]) for a, b in edges if a[1] == b[1] == 1e-3]
    assert sorted(at_rate) == [(float(e), float(e + 1)) for e in range(8, 16)]


def test_overlapping_counterfactual_schedules_look_dashed_in_the_png():
    """Along the rate 1e-3, where all eight counterfactual schedules overlap (epochs
    8..9), the drawn line has gaps, as a single dashed line has."""
    import numpy as np

    fig = charts.lr_schedules_figure(_overlapping_schedules(), recorded_lr=None)
    (ax,) = fig.axes
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    height = pixels.shape[0]
    (x0, y), (x1, _) = ax.transData.transform([(8.0, 1e-3), (10.0, 1e-3)])
    row = int(round(height - y))
    band = pixels[row - 1 : row + 2, int(x0) + 2 : int(x1) - 2].mean(axis=2).min(axis=0)
    inked = float(np.mean(band < 0.6))  # the line's dark purple, not the grid's light grey
    assert 0.3 < inked < 0.85, inked


def test_lr_schedules_figure_clips_runaway_schedules():
    tiny = [1e-3 * 0.1**i for i in range(20)]
    fig = charts.lr_schedules_figure([plateau(0.1, 0, tiny, cf=1)], recorded_lr=None)
    (ax,) = fig.axes
    assert ax.get_ylim()[0] > 1e-10
    assert any("cut off" in t.get_text() for t in fig.texts)
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_lr_schedules_figure_without_records():
    fig = charts.lr_schedules_figure([es(1, stop=3)], recorded_lr=None)
    assert any("no reduce_lr_on_plateau" in t.get_text() for t in fig.axes[0].texts)
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_tradeoff_figure_structure():
    recs = sweep_records() + [prechelt()]
    fig = charts.tradeoff_figure(recs, full_run_value=0.4, oracle_value=0.3, metric="test_loss")
    assert len(fig.axes) == 2  # the chart and the patience colour bar
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epochs trained"
    assert ax.get_ylabel() == "test loss at kept checkpoint (lower is better)"
    (legend,) = fig.legends
    assert legend_texts(legend) == [
        "early stopping (colour: patience)",
        "Prechelt (GL / PQ / UP)",
        "hollow: never stopped (censored)",
        "Pareto front (fewer epochs, better value)",
        "oracle (best epoch): 0.3",
        "full run (last epoch): 0.4",
    ]
    hlines = [ln for ln in ax.get_lines() if ln.get_linestyle() in ("--", ":")]
    assert len(hlines) == 2
    # the front: patience 0 with restore (3 epochs, 0.3) is best and cheapest
    numbers = [t.get_text() for t in ax.texts]
    assert numbers == ["1"]
    (listing,) = [t.get_text() for t in fig.texts if t.get_text().startswith("Pareto")]
    assert "1.  3 epochs, test_loss 0.3:" in listing
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_tradeoff_figure_accuracy_is_higher_is_better():
    recs = [es(1, stop=3), es(2, stop=6)]
    recs[0]["final_metrics"]["test_accuracy"] = 0.90
    recs[1]["final_metrics"]["test_accuracy"] = 0.95
    for r in recs:
        r["params"]["mode"] = "max"  # as the sweep resolves it for val_accuracy
    fig = charts.tradeoff_figure(
        recs, full_run_value=None, oracle_value=None, metric="test_accuracy"
    )
    ax = fig.axes[0]
    assert "higher is better" in ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == ["1", "2"]
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_tradeoff_figure_from_aggregate_rows_and_empty():
    rows = aggregate(sweep_records() + [dict(r, run="r2") for r in sweep_records()])
    fig = charts.tradeoff_figure(
        rows,
        full_run_value=None,
        oracle_value=None,
        metric="test_loss",
        x_field="epochs_trained_mean",
        metrics_field="final_metrics_mean",
    )
    assert "mean over runs" in fig.axes[0].get_xlabel()
    assert png_bytes(fig).startswith(PNG_MAGIC)
    fig = charts.tradeoff_figure([], full_run_value=None, oracle_value=None, metric="test_loss")
    assert len(fig.axes) == 1 and not fig.legends
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_save_figure_writes_png_atomically(tmp_path):
    fig = charts.tradeoff_figure(
        [es(1, stop=3)], full_run_value=None, oracle_value=None, metric="test_loss"
    )
    target = tmp_path / "tradeoff.png"
    charts.save_figure(fig, target)
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["tradeoff.png"]
    assert fig.axes == []  # closed (cleared)


def test_save_figure_into_missing_directory_raises_and_writes_nothing(tmp_path):
    fig = charts.tradeoff_figure([], full_run_value=None, oracle_value=None, metric="loss")
    with pytest.raises(OSError):
        charts.save_figure(fig, tmp_path / "missing" / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_importing_charts_loads_neither_matplotlib_nor_tensorflow_nor_replay():
    code = (
        "import sys, analysis.charts.sweep, analysis.charts.data as c;"
        "import analysis.results.aggregation as r;"
        "r.aggregate([]); c.pareto_front([]);"
        "bad = [m for m in ('matplotlib', 'tensorflow', 'keras', 'replay') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------------
# Issue 10 regressions


def test_r2_sweep_tradeoff_is_higher_is_better_with_the_right_front(tmp_path):
    # val_r2_score is maximized (Keras's R2Score); the old name guess said "lower".
    from analysis.formats import load_run
    from replay.output.charting import chart_jobs
    from replay.sweeping.sweep import Grid, sweep

    val = [0.50, 0.60, 0.70, 0.68, 0.72, 0.71, 0.69, 0.67, 0.66, 0.65]
    test = [0.48, 0.58, 0.69, 0.70, 0.71, 0.69, 0.68, 0.66, 0.65, 0.64]
    rows = ["epoch,loss,val_r2_score,test_r2_score"]
    rows += [f"{e},{1 / (e + 1)},{v},{t}" for e, (v, t) in enumerate(zip(val, test, strict=True))]
    (tmp_path / "r2.csv").write_text("\n".join(rows) + "\n")
    run = load_run(tmp_path / "r2.csv")
    grid = Grid(policies=("early_stopping", "prechelt"), monitors=("val_r2_score",),
                patience=(0, 1, 2, 5), min_delta=(0.0,))  # fmt: skip
    result = sweep([run], grid)
    (job,) = [j for j in chart_jobs(result, [run], tmp_path) if j[0] == "tradeoff_figure"]
    name, args, kwargs, _ = job
    assert kwargs["higher_is_better"] is True
    fig = charts.tradeoff_figure(*args, **kwargs)
    assert fig.axes[0].get_ylabel().endswith("(higher is better)")
    points = [(p["x"], p["y"]) for p in chartdata.tradeoff_points(*args, kwargs["metric"])]
    front = chartdata.pareto_front(points, higher_is_better=True)
    assert front[-1][1] == max(y for _, y in points) == 0.71  # the best r2 is on the front
    ys = [y for _, y in front]
    assert ys == sorted(set(ys))  # and it only gets better
    (listing,) = [t.get_text() for t in fig.texts if t.get_text().startswith("Pareto")]
    assert f"test_r2_score {front[-1][1]:.4g}" in listing


def test_tradeoff_figure_without_a_mode_refuses_to_guess():
    rec = es(1, stop=3)
    del rec["params"]["mode"]
    with pytest.raises(ValueError, match="pass higher_is_better"):
        charts.tradeoff_figure([rec], full_run_value=None, oracle_value=None, metric="test_loss")


def test_saved_charts_get_the_umask_permissions_like_any_new_file(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        charts.save_figure(charts.tradeoff_figure([], full_run_value=None, oracle_value=None,
                                                  metric="loss"), tmp_path / "a.png")  # fmt: skip
        os.umask(0o027)
        charts.save_figure(charts.tradeoff_figure([], full_run_value=None, oracle_value=None,
                                                  metric="loss"), tmp_path / "b.png")  # fmt: skip
    finally:
        os.umask(old)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.png").stat().st_mode & 0o777 == 0o640


# ----------------------------------------------------------------------------------
# The relative learning-rate scale (issue 8) and run names that are not file names


def relative(rec: dict) -> dict:
    """A ReduceLROnPlateau record of a log without a learning rate (multiples of 1)."""
    rec = dict(rec, lr_scale="relative", lr=[v / rec["lr"][0] for v in rec["lr"]])
    rec["params"] = dict(rec["params"], initial_lr=None)
    return rec


@pytest.mark.parametrize(
    ("scales", "ylabel"),
    [
        (["relative", "relative"], "learning rate (x initial rate)"),
        (["absolute", "absolute"], "learning rate (log scale)"),
        ([None, None], "learning rate (log scale)"),  # records from before lr_scale
    ],
)
def test_lr_schedules_figure_says_which_scale(scales, ylabel):
    recs = [plateau(0.5, 1, [1e-3, 1e-3, 5e-4, 5e-4], cf=2),
            plateau(0.1, 1, [1e-3, 1e-3, 1e-4, 1e-4], cf=2)]  # fmt: skip
    recs = [relative(r) if s == "relative" else dict(r, lr_scale=s) if s else r
            for r, s in zip(recs, scales, strict=True)]  # fmt: skip
    fig = charts.lr_schedules_figure(recs, recorded_lr=None)
    (ax,) = fig.axes
    assert ax.get_ylabel() == ylabel
    assert ax.get_yscale() == "log"
    # Per factor: the exact part (solid), the counterfactual part (dashed), the boundary dot.
    assert len(ax.collections) == 2 * 3
    assert legend_texts(ax.get_legend()) == [
        "factor 0.1: 1 settings, 1 distinct",
        "factor 0.5: 1 settings, 1 distinct",
        "counterfactual from here on\n(metrics recorded under another rate)",
    ]
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_sweep_of_a_log_without_learning_rate_charts_multiples_of_the_initial_rate(tmp_path):
    from replay.output.charting import chart_jobs
    from replay.sweeping.sweep import Grid, RunFacts, sweep

    val = [0.5, 0.4, 0.41, 0.42, 0.43, 0.44]
    facts = RunFacts("r", "r.csv", {"val_loss": val}, ["val_loss"], len(val))
    result = sweep([facts], Grid(policies=("reduce_lr_on_plateau",), patience=(1,)))
    assert {r["lr_scale"] for r in result.records} == {"relative"}
    (job,) = chart_jobs(result, [facts], tmp_path)
    name, args, kwargs, path = job
    assert (name, path) == ("lr_schedules_figure", tmp_path / "lr_schedules.png")
    fig = charts.lr_schedules_figure(*args, **kwargs)
    assert fig.axes[0].get_ylabel() == "learning rate (x initial rate)"
    assert png_bytes(fig).startswith(PNG_MAGIC)
    assert "1" in [t.get_text() for t in fig.axes[0].get_yticklabels()]  # the initial rate


@pytest.mark.parametrize("name", ["exp-a/training", "training#2", "a/b#3 $\\notacommand$"])
def test_run_names_are_titles_never_file_names(tmp_path, name):
    import dataclasses

    from analysis.formats import load_run
    from replay.output.charting import chart_jobs, draw_sweep_charts
    from replay.sweeping.sweep import Grid, sweep

    rows = ["epoch,loss,val_loss,test_loss,learning_rate"]
    rows += [f"{e},{1 / (e + 1)},{v},{v + 0.01},0.001"
             for e, v in enumerate([0.5, 0.4, 0.35, 0.36, 0.37, 0.38])]  # fmt: skip
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    run = dataclasses.replace(load_run(tmp_path / "log.csv"), name=name)
    result = sweep([run], Grid(policies=("early_stopping", "prechelt", "reduce_lr_on_plateau"),
                               patience=(1, 2), min_delta=(0.0,)))  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    jobs = chart_jobs(result, [run], out)
    names = ["curves.png", "early_stopping.png", "lr_schedules.png", "tradeoff.png"]
    assert [path for *_, path in jobs] == [out / n for n in names]
    for fig_name, args, kwargs, _ in jobs:
        fig = getattr(charts, fig_name)(*args, **kwargs)
        assert fig.get_suptitle().startswith(f"{name}: ")  # the name as it is
        assert png_bytes(fig).startswith(PNG_MAGIC)  # "$...$" is text, not mathtext
    assert draw_sweep_charts(result, [run], out) == names
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_a_chart_worker_that_dies_does_not_hang_the_command(tmp_path):
    """A forked drawing worker that dies (killed, crashed) leaves nothing waiting: the
    charts are drawn in process instead (a multiprocessing.Pool would wait forever).
    Run in a fresh interpreter, which has loaded nothing that makes forking unsafe."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "import replay.output.charting as c\n"
        "parent, out = os.getpid(), Path(sys.argv[1])\n"
        "def render(job):\n"
        "    if os.getpid() != parent:\n"
        "        os._exit(1)  # a worker dies\n"
        "    (out / job).write_text('drawn')\n"
        "c._render = render\n"
        "c._render_all(['a.png', 'b.png', 'c.png'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=120,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png"]


def test_charts_are_drawn_in_process_where_forking_is_unsafe(monkeypatch):
    """With a thread-heavy library loaded (TensorFlow, Ray, gRPC), nothing is forked."""
    import concurrent.futures
    import sys
    import types

    from replay.output import charting

    drawn = []
    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))
    monkeypatch.setattr(charting, "_render", drawn.append)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", None)  # any use fails
    charting._render_all(["a", "b"])
    assert drawn == ["a", "b"]
