"""checkpoints.png (issue 12): per ModelCheckpoint setting the epochs saved and the file
you end with, with its held-out metric and regret; charts of dialect sweeps; the
ModelCheckpoint table across runs.

The curve is tests/test_model_checkpoint_cli.py's: val_loss improves at epochs 0, 1 and
4; test_loss is best at 4.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import run

from analysis.charts import sweep as charts
from analysis.charts.checkpoints import checkpoint_label, checkpoint_rows
from analysis.formats import load_run
from replay.output.aggregates import render_checkpoint_aggregate
from replay.output.charting import chart_jobs
from replay.sweeping.sweep import Grid, sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VAL = [1.0, 0.5, 0.6, 0.7, 0.4, 0.45]
TEST = [1.1, 0.6, 0.65, 0.7, 0.45, 0.5]
ACC = [0.5, 0.7, 0.68, 0.66, 0.8, 0.79]

# Every figure built is closed after each test (conftest.figures).
pytestmark = pytest.mark.usefixtures("figures")


def write_csv(path: Path, val=VAL, test=TEST) -> Path:
    rows = [f"{e},{1.0 / (e + 1)!r},{v!r},{t!r},{a!r},{a!r},0.001"
            for e, (v, t, a) in enumerate(zip(val, test, ACC, strict=True))]  # fmt: skip
    header = "epoch,loss,val_loss,test_loss,val_accuracy,test_accuracy,learning_rate"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def record(saved, regret, value, **params) -> dict:
    """A ModelCheckpoint record as the sweep writes it (the fields the chart reads)."""
    params = {"monitor": "val_loss", "mode": "min", "save_best_only": True,
              "initial_value_threshold": None, **params}  # fmt: skip
    final = saved[-1] if saved else None
    return {"run": "r", "source": "r.csv", "policy": "model_checkpoint", "params": params,
            "saved_epochs": list(saved), "final_epoch": final,
            "final_metrics": {} if final is None else {"test_loss": value},
            "regret": regret, "regret_metric": "test_loss"}  # fmt: skip


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def checkpoint_figure(tmp_path: Path, grid: Grid):
    log = load_run(write_csv(tmp_path / "log.csv"))
    result = sweep([log], grid)
    jobs = {path.name: (name, args, kwargs) for name, args, kwargs, path in
            chart_jobs(result, [log], tmp_path)}  # fmt: skip
    name, args, kwargs = jobs["checkpoints.png"]
    return getattr(charts, name)(*args, **kwargs)


# ----------------------------------------------------------------------------------
# The data: rows, saved and kept epochs, by hand


@pytest.mark.parametrize(
    ("records", "rows"),
    [
        # Keras 3 on VAL: every epoch keeps the last; best only keeps 4 (regret 0).
        ([record(range(6), 0.05, 0.5, save_best_only=False), record([0, 1, 4], 0.0, 0.45)],
         [("every epoch", [0, 1, 2, 3, 4, 5], 5, None, 0.05),
          ("best only", [0, 1, 4], 4, None, 0.0)]),
        # Keras 2 period 3 looks at 2 and 5 only: best only and every epoch save the same
        # epochs, so they share a row; the epochs looked at are listed.
        ([record([2, 5], 0.05, 0.5, save_best_only=False, period=3),
          record([2, 5], 0.05, 0.5, period=3), record([0, 1, 4], 0.0, 0.45, period=1)],
         [("every epoch|best only, period 3", [2, 5], 5, [2, 5], 0.05),
          ("best only", [0, 1, 4], 4, None, 0.0)]),
        # A threshold nothing beats: nothing saved, no file, no regret.
        ([record([], None, None, initial_value_threshold=0.1),
          record([4], 0.0, 0.45, initial_value_threshold=0.5)],
         [("best only, threshold 0.1", [], None, None, None),
          ("best only, threshold 0.5", [4], 4, None, 0.0)]),
        # Four thresholds with one outcome: one row, the values as a range.
        ([record([1, 4], 0.0, 0.45, initial_value_threshold=t) for t in (0.6, 0.7, 0.8, 0.9)],
         [("best only, threshold 0.6..0.9 (4 values)", [1, 4], 4, None, 0.0)]),
        ([], []),
    ],
)  # fmt: skip
def test_checkpoint_rows(records, rows):
    data = checkpoint_rows(records, 6)
    got = [(r["label"], r["saved"], r["final"], r["checked"], r["regret"]) for r in data["rows"]]
    assert got == rows
    assert data["settings"] == len(records)
    assert data["note"] == ""


def test_checkpoint_rows_carry_the_kept_files_held_out_value():
    data = checkpoint_rows([record([0, 1, 4], 0.0, 0.45), record([0], 0.65, 1.1)], 6)
    assert [r["value"] for r in data["rows"]] == [0.45, 1.1]
    assert (data["metric"], data["regret_metric"]) == ("test_loss", "test_loss")


def test_without_a_held_out_metric_the_value_is_the_monitors():
    rec = record([0, 1], None, None)
    rec.update(final_metrics={"val_loss": 0.5}, regret_metric=None)
    data = checkpoint_rows([rec], 2)
    assert (data["metric"], data["regret_metric"]) == ("val_loss", None)
    assert data["rows"][0]["value"] == 0.5


def test_too_many_outcomes_keep_the_least_regret_in_grid_order():
    outcomes = ((0, 0.3, 1.0), (1, 0.1, 0.9), (2, None, 0.8), (3, 0.2, 0.7))
    recs = [record([e], regret, 0.5, initial_value_threshold=t) for e, regret, t in outcomes]
    data = checkpoint_rows(recs, 4, max_rows=2)
    assert [r["final"] for r in data["rows"]] == [1, 3]
    assert data["outcomes"] == 4
    assert data["note"] == (
        "showing the 2 of 4 distinct outcomes with the least regret (all in results.csv)"
    )


def test_checkpoint_label_shows_period_and_threshold_only_where_set():
    assert checkpoint_label([{"save_best_only": False, "period": 1}]) == "every epoch"
    assert checkpoint_label([{"save_best_only": True, "initial_value_threshold": 0.25,
                              "period": 2}]) == "best only, threshold 0.25, period 2"  # fmt: skip


# ----------------------------------------------------------------------------------
# The figure


def test_the_figure_marks_saved_and_kept_epochs(tmp_path):
    grid = Grid(policies=("model_checkpoint",), save_best_only=(False, True))
    fig = checkpoint_figure(tmp_path, grid)
    top, legend_ax, strip, bars = fig.axes
    assert fig.get_suptitle() == ("log: the epochs ModelCheckpoint saves and the file you end with")
    assert [t.get_text() for t in strip.get_yticklabels()] == ["every epoch", "best only"]
    points = [tuple(p) for c in strip.collections if c.get_gid() == "saved"
              for p in c.get_offsets().tolist()]  # fmt: skip
    assert points == [(e, 0) for e in range(6)] + [(0, 1), (1, 1), (4, 1)]
    (kept,) = [c for c in strip.collections if c.get_gid() == "kept"]
    assert [tuple(p) for p in kept.get_offsets().tolist()] == [(5, 0), (4, 1)]
    assert not [c for c in strip.collections if c.get_gid() == "checked"]
    # The oracle epoch (best test_loss: 4) crosses the curves and the rows.
    assert [ln.get_xdata()[0] for ln in strip.get_lines() if ln.get_linestyle() == "--"] == [4]
    # Beside each row: the kept file's test_loss and its regret as a bar.
    assert [t.get_text() for t in bars.texts] == ["0.5 (+0.05)", "0.45 (best)"]
    (bar_container,) = bars.containers
    assert [round(b.get_width(), 6) for b in bar_container] == [0.05, 0.0]
    assert bars.get_xlabel() == "bar: regret in test_loss\n(0 = the best epoch's)"
    labels = [t.get_text() for t in legend_ax.get_legend().get_texts()]
    assert "the file you end with" in labels and "epoch saved" in labels
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_keras2_period_draws_the_epochs_it_looks_at(tmp_path):
    grid = Grid(policies=("model_checkpoint",), save_best_only=(True,), period=(3,),
                dialect="tf-keras")  # fmt: skip
    fig = checkpoint_figure(tmp_path, grid)
    _, legend_ax, strip, _ = fig.axes
    assert "Keras 2 rules: tf-keras dialect" in fig.get_suptitle()
    assert [t.get_text() for t in strip.get_yticklabels()] == ["best only, period 3"]
    (checked,) = [c for c in strip.collections if c.get_gid() == "checked"]
    assert [p[0] for p in checked.get_offsets().tolist()] == [2, 5]
    (kept,) = [c for c in strip.collections if c.get_gid() == "kept"]
    assert kept.get_offsets().tolist() == [[5, 0]]  # the better epoch 4 is never looked at
    labels = [t.get_text() for t in legend_ax.get_legend().get_texts()]
    assert "epoch Keras 2 looks at\n(period: others never checked)" in labels


def test_a_setting_that_saves_nothing_says_so():
    import pandas as pd

    metrics = pd.DataFrame({"val_loss": VAL, "test_loss": TEST})
    recs = [record([], None, None, initial_value_threshold=0.1), record([4], 0.0, 0.45)]
    fig = charts.checkpoints_figure(metrics, "val_loss", recs, oracle_epoch=4,
                                    heldout="test_loss", title="t")  # fmt: skip
    _, _, strip, bars = fig.axes
    assert [t.get_text() for t in strip.texts] == ["nothing saved"]
    assert [t.get_text() for t in bars.texts] == ["nothing saved", "0.45 (best)"]
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_too_many_rows_say_so_in_the_title():
    import pandas as pd

    metrics = pd.DataFrame({"val_loss": [0.5] * 50})
    recs = [record([e], e / 100, 0.5, initial_value_threshold=1.0 + e) for e in range(50)]
    fig = charts.checkpoints_figure(metrics, "val_loss", recs, oracle_epoch=None,
                                    heldout="test_loss", title="t")  # fmt: skip
    strip = fig.axes[2]
    assert len(strip.get_yticklabels()) == 40
    assert fig.get_suptitle() == (
        "t\n(showing the 40 of 50 distinct outcomes with the least regret (all in results.csv))"
    )


# ----------------------------------------------------------------------------------
# From the command line


def sweep_out(tmp_path: Path, *args) -> tuple[list[str], Path]:
    out = tmp_path / "out"
    result = run("sweep", write_csv(tmp_path / "log.csv"), "--out", out, *args)
    assert result.exit_code == 0, result.output + result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("wrote ")]
    return line.removeprefix("wrote ").split(" to ")[0].split(", "), out


@pytest.mark.parametrize(
    "args",
    [
        ("--policy", "model_checkpoint"),
        ("--policy", "model_checkpoint", "--dialect", "tf-keras", "--period", "1,3"),
        ("--policy", "model_checkpoint,early_stopping", "--patience", "1,2"),
    ],
)
def test_sweep_writes_checkpoints_png(tmp_path, args):
    names, out = sweep_out(tmp_path, *args)
    assert "checkpoints.png" in names
    assert (out / "checkpoints.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == sorted(
        n for n in names if n.endswith(".png")
    )


def test_a_sweep_without_model_checkpoint_draws_no_checkpoints_png(tmp_path):
    names, out = sweep_out(tmp_path, "--patience", "1,2")
    assert "checkpoints.png" not in names and not (out / "checkpoints.png").exists()


@pytest.mark.parametrize(
    ("args", "charts_written"),
    [
        (("--dialect", "tf-keras"),
         ["curves.png", "early_stopping.png", "lr_schedules.png", "tradeoff.png"]),
        (("--dialect", "torch", "--threshold-mode", "rel,abs"), ["lr_schedules.png"]),
        (("--dialect", "lightning", "--stopping-threshold", "none,0.45",
          "--divergence-threshold", "none,0.9"),
         ["curves.png", "early_stopping.png", "tradeoff.png"]),
        (("--dialect", "hf", "--early-stopping-threshold", "0,0.01"),
         ["curves.png", "early_stopping.png", "tradeoff.png"]),
        (("--dialect", "ultralytics", "--monitor", "val_accuracy", "--mode", "max"),
         ["curves.png", "early_stopping.png", "tradeoff.png"]),
    ],
)  # fmt: skip
def test_dialect_sweeps_write_their_charts(tmp_path, args, charts_written):
    names, out = sweep_out(tmp_path, "--patience", "1,2", *args)
    assert names == ["results.json", "results.csv", *charts_written]
    for name in charts_written:
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    records = json.loads((out / "results.json").read_text())
    assert {r["dialect"] for r in records} == {args[1]}


# ----------------------------------------------------------------------------------
# Several runs


def test_the_table_across_runs_has_the_checkpoint_settings(tmp_path):
    a = write_csv(tmp_path / "a.csv")
    b = write_csv(tmp_path / "b.csv", val=[1.0, 0.5, 0.4, 0.7, 0.6, 0.45],
                  test=[1.1, 0.6, 0.45, 0.7, 0.65, 0.5])  # fmt: skip
    out = tmp_path / "out"
    result = run("sweep", a, b, "--policy", "model_checkpoint", "--out", out)
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("== ModelCheckpoint across runs (2 settings, best mean regret first) ==")
    header, _, best, every = lines[start + 1 : start + 5]
    assert header.split() == ["setting", "runs", "kept", "epochs", "regret", "mean", "[min,",
                              "max]"]  # fmt: skip
    # best only keeps epoch 4 of a and epoch 2 of b, both the best test_loss.
    assert best.split() == ["val_loss", "save_best_only", "2", "2,", "4", "0", "[0,", "0]"]
    # every epoch keeps epoch 5 of both: regret 0.05 each.
    assert every.split() == ["val_loss", "every", "epoch", "2", "5", "0.05", "[0.05,", "0.05]"]
    assert (out / "checkpoints.png").read_bytes().startswith(PNG_MAGIC)


def test_no_checkpoint_records_no_table():
    assert render_checkpoint_aggregate([]) == ""
