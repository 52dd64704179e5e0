"""Issue 10 regressions at the command line: output folders, multi-valued options,
notes after the table, and `replay show`'s warnings and columns."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import VAL, run, write_log

from replay.output import writers as writers_module


@pytest.fixture
def log(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_log(tmp_path / "training.csv")


def records(result) -> list[dict]:
    return json.loads(result.stdout)


# ---------------------------------------------------------------- output folders


def test_two_sweeps_in_the_same_second_get_two_default_folders(log, tmp_path, monkeypatch):
    frozen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr(
        writers_module, "datetime", Clock
    )  # the default folder: replay.output.writers
    for _ in range(3):
        result = run("sweep", log, "--patience", "2", "--no-charts")
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    base = "sweep-training-20260102T030405Z"
    assert names == [base, f"{base}-2", f"{base}-3"]
    for name in names:
        assert {p.name for p in (tmp_path / "out" / name).iterdir()} == {
            "results.json", "results.csv"}  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_csv_and_json_on_stdout_write_no_folder_without_out(log, tmp_path, fmt):
    result = run("sweep", log, "--patience", "2", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training.csv"]
    assert "wrote" not in result.stderr
    result = run("sweep", log, "--patience", "2", "--format", fmt, "--out", "o", "--no-charts")
    assert (tmp_path / "o" / f"results.{fmt}").read_text() == result.stdout


def test_sweep_help_says_where_results_go(log):
    text = " ".join(run("sweep", "-h").stdout.split())
    assert "no folder with --format csv or json" in text


# ---------------------------------------------------------------- multi-valued options


@pytest.mark.parametrize(
    "args",
    [
        ["--policy", "early_stopping,prechelt"],
        ["--policy", "early_stopping", "--policy", "prechelt"],
        ["--policy", " prechelt , early_stopping", "--policy", "prechelt"],
    ],
)
def test_policy_takes_commas_and_repeats_alike(log, args):
    result = run("sweep", log, "--patience", "2", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    assert {r["policy"] for r in records(result)} == {"early_stopping", "prechelt"}


@pytest.mark.parametrize(
    "args",
    [["--monitor", "val_loss,loss"], ["--monitor", "val_loss", "--monitor", "loss"],
     ["--monitor", "val_loss,loss", "--monitor", "loss"]],
)  # fmt: skip
def test_monitor_takes_commas_and_repeats_alike(log, args):
    result = run("sweep", log, "--patience", "2", "--policy", "early_stopping",
                 "--format", "json", *args)  # fmt: skip
    assert result.exit_code == 0, result.output
    monitors = [r["params"]["monitor"] for r in records(result)]
    assert list(dict.fromkeys(monitors)) == ["val_loss", "loss"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--policy", "early_stopping,earlystopping"],
         "Error: --policy: 'earlystopping' is not one of early_stopping, "
         "reduce_lr_on_plateau, prechelt, early_stopping+reduce_lr_on_plateau, model_checkpoint, "
         "median_pruner, percentile_pruner, successive_halving_pruner, hyperband_pruner, "
         "threshold_pruner, patient_pruner."),
        (["--policy", "early_stopping,"], "Error: --policy: empty item in 'early_stopping,'."),
        (["--monitor", "val_loss", "--monitor", ""], "Error: --monitor: empty item in ''."),
    ],
)  # fmt: skip
def test_bad_names_are_one_line_errors(log, tmp_path, args, line):
    result = run("sweep", log, *args)
    assert result.exit_code == 1
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")] == [line]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training.csv"]


def test_pick_still_takes_one_monitor(log):
    result = run("pick", log, "--monitor", "val_loss", "--monitor", "loss")
    assert result.exit_code == 1
    assert "Error: --monitor: pick takes one metric but got 'val_loss,loss'." in result.stderr


# ---------------------------------------------------------------- table, then notes


def test_a_verdict_ending_censored_is_followed_by_a_newline_before_the_notes(tmp_path, log):
    # no test metrics: a note follows; patience 8 never stops within 10 epochs.
    csv = tmp_path / "val_only.csv"
    csv.write_text("\n".join(["epoch,val_loss"] + [f"{e},{v}" for e, v in enumerate(VAL)]) + "\n")
    result = run("sweep", csv, "--policy", "early_stopping", "--patience", "1,8",
                 "--out", "o", "--no-charts")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("never stops before the run ended (censored).\n")
    assert "(censored).\nnote: val_only: no test metrics" in result.output


# ---------------------------------------------------------------- replay show


def test_show_prints_each_warning_once_and_aligns_long_metric_names(tmp_path, log):
    gap = tmp_path / "gap.csv"
    gap.write_text("epoch,loss,val_loss,val_sparse_categorical_crossentropy\n"
                   "0,1.0,0.9,0.8\n1,0.8,0.7,0.6\n3,0.6,0.65,0.5\n")  # fmt: skip
    result = run("show", gap)
    assert result.exit_code == 0, result.output
    assert result.output.count("epoch 2 missing") == 1
    assert "warning: " in result.stdout and "warning" not in result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("metric "))
    table = lines[start : start + 4]
    cells = [m.span() for m in re.finditer(r"\S+(?: \S+)*", table[0])]  # "best epoch" is one
    assert [table[0][a:b] for a, b in cells] == ["metric", "best epoch", "best", "final"]
    for row in table[1:]:  # numbers end under the end of their header; names start at 0
        assert row[0] != " " and all(row[b - 1] != " " for _, b in cells[1:]), row
        assert all(b == len(row) or row[b] == " " for _, b in cells[1:]), row


def test_an_unusable_default_folder_is_refused_before_work_but_not_for_a_pipe(log, tmp_path):
    (tmp_path / "out").write_text("a file where the default folder would go")
    result = run("sweep", log, "--patience", "2")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot create the default results folder in {tmp_path / 'out'}; pass --out DIR."
    )
    assert run("sweep", log, "--patience", "2", "--format", "json").exit_code == 0
