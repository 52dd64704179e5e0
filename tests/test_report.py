import csv
import io
import json
import math
from dataclasses import replace

from replay.output.report import render_table, verdict
from replay.output.writers import flatten, render_csv, render_json
from replay.sweeping.sweep import Grid, RunFacts, sweep

VAL = [0.50, 0.40, 0.35, 0.36, 0.34, 0.37, 0.38, 0.39, 0.40, 0.41]
TEST = [0.52, 0.41, 0.36, 0.35, 0.36, 0.38, 0.39, 0.40, 0.41, 0.43]


def result(**grid):
    f = RunFacts("r", "r.csv", {"val_loss": VAL, "test_loss": TEST}, ["val_loss", "test_loss"], 10)
    return sweep([f], Grid(policies=("early_stopping",), min_delta=(0.0,), **grid))


def test_flatten_nests_params_and_metrics():
    (rec,) = result(patience=(2,), restore_best_weights=(True,)).records
    row = flatten(rec)
    assert row["params.patience"] == 2 and row["final_metrics.test_loss"] == 0.36
    assert "params" not in row and "final_metrics" not in row


def test_csv_and_json_render_the_same_records():
    records = result(patience=(1, 2, 3)).records
    rows = list(csv.DictReader(io.StringIO(render_csv(records))))
    parsed = json.loads(render_json(records))
    assert len(rows) == len(parsed) == len(records) == 6
    for row, rec in zip(rows, parsed, strict=True):
        assert int(row["params.patience"]) == rec["params"]["patience"]
        assert int(row["epochs_trained"]) == rec["epochs_trained"]
        assert row["stopped_epoch"] == ("" if rec["stopped_epoch"] is None else
                                        str(rec["stopped_epoch"]))  # fmt: skip


def test_verdict_names_the_cheapest_best_and_the_censored_patiences():
    res = result(patience=(1, 2, 8, 9))
    text = verdict(res.records, "test_loss")
    # patience 1 stops at epoch 3 (0.36 after best 0.35); without restore it keeps
    # epoch 3, whose test_loss 0.35 is the oracle: regret 0 in 4 epochs, the cheapest.
    # patience 8 and 9 never stop within the 10 recorded epochs.
    assert text.startswith(
        "Cheapest best outcome: patience=1 no-restore trains 4 epochs and keeps epoch 3 "
        "(0 regret on test_loss)."
    )
    assert "patience >= 8 never stops before the run ended (censored)" in text


def test_table_has_oracle_line_and_collapses_identical_outcomes():
    table = render_table(result(patience=(8, 9)))
    assert "oracle: best test_loss 0.35 at epoch 3" in table
    assert "patience=8-9 restore" in table
    assert "never (censored)" in table


# ---------------------------------------------------------------- issue 10 regressions


def _facts(metrics: dict) -> RunFacts:
    n = len(next(iter(metrics.values())))
    return RunFacts("r", "r.csv", metrics, list(metrics), n)


def test_keras2_acc_prints_as_percent_and_points_like_accuracy():
    val = [0.80, 0.85, 0.90, 0.89, 0.88, 0.87, 0.86, 0.85]
    test = [0.79, 0.84, 0.88, 0.89, 0.87, 0.86, 0.85, 0.84]
    grid = Grid(policies=("early_stopping",), min_delta=(0.0,), patience=(1, 2))

    def table(name: str) -> str:
        facts = _facts({f"val_{name}": val, f"test_{name}": test})
        return render_table(sweep([facts], replace(grid, monitors=(f"val_{name}",))))

    old, new = table("acc"), table("accuracy")
    assert "1.00 pp" in old and "89.00%" in old

    def words(text: str) -> list[str]:  # column widths follow the header names
        return [w for w in text.split() if set(w) != {"-"}]

    assert words(old.replace("_acc", "_accuracy")) == words(new)


def test_verdict_ranges_do_not_hide_gaps():
    # best at epoch 2, worse ever after: patience p stops at epoch 2 + p, keeps epoch 2.
    val = [0.5, 0.4, 0.3] + [0.3 + 0.01 * i for i in range(1, 20)]
    res = sweep([_facts({"val_loss": val, "test_loss": val})],
                Grid(policies=("early_stopping",), min_delta=(0.0,), patience=(3, 4, 5, 8, 12),
                     restore_best_weights=(True,)))  # fmt: skip
    text = verdict(res.records, "test_loss")
    assert "patience 3-5, 8, 12 stop at epoch 5-7, 10, 14, keep epoch 2" in text
    # censored settings share one table row: the label lists both patiences
    assert "patience=8|12 restore" in render_table(result(patience=(8, 12)))


def test_json_turns_non_finite_floats_into_null():
    (rec,) = result(patience=(2,), restore_best_weights=(True,)).records
    rec = dict(rec, regret=math.inf, final_metrics={"test_loss": -math.inf, "x": math.nan})
    parsed = json.loads(render_json([rec]))
    assert parsed[0]["regret"] is None
    assert parsed[0]["final_metrics"] == {"test_loss": None, "x": None}
    assert parsed[0]["params"]["patience"] == 2
