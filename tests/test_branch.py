"""`replay branch` trains: branches are bit for bit the runs their settings would record.

Two tiny runs share the module (``--limit 500 --epochs 8``, from the same seed and data):
``constant`` at a constant rate, and ``plateau`` with the real
``ReduceLROnPlateau(factor=0.5, patience=1)`` acting, which cuts the rate at the end of
epoch 5 (val_loss rises there) and so runs at 5e-4 from epoch 6. Branching ``constant``
for that setting must give ``plateau``'s metrics.csv, every column but epoch_seconds.
Each test branches its own copy of ``constant``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line, run

from analysis.reading.rundir import read_manifest, sha256_file
from replay.commands import record as record_cmd
from replay.recording.run_writer import (
    COLUMNS,
    read_rows,
)

pytestmark = pytest.mark.slow

TINY = ["--limit", "500", "--epochs", "8", "--quiet"]
SETTING = ["--factor", "0.5", "--lr-patience", "1"]
BRANCH = "b001-e06-lr0.0005"


def record(out: Path, *args: str) -> Path:
    from click.testing import CliRunner

    result = CliRunner().invoke(record_cmd.record, ["--out", str(out), *TINY, *args])
    assert result.exit_code == 0, result.output
    return out


def values(run_dir: Path) -> list[list[float]]:
    """metrics.csv rows without epoch_seconds (the one column that is wall time)."""
    return [[row[c] for c in COLUMNS[:-1]] for row in read_rows(run_dir / "metrics.csv")]


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("branch")
    constant = record(root / "constant")
    plateau = record(root / "plateau", "--reduce-lr-on-plateau", "factor=0.5,patience=1")
    rates = [row["learning_rate"] for row in read_rows(plateau / "metrics.csv")]
    assert rates == [0.0010000000474974513] * 6 + [0.0005000000237487257] * 2  # it really cuts
    return {"constant": constant, "plateau": plateau}


@pytest.fixture
def constant(runs, tmp_path) -> Path:
    copy = tmp_path / "constant"
    shutil.copytree(runs["constant"], copy)
    return copy


def branch(run_dir: Path, *args: str, **kwargs):
    return run("branch", run_dir, *args, "-y", **kwargs)


def test_a_branch_is_the_run_its_setting_records_bit_for_bit(runs, constant):
    result = branch(constant, *SETTING)
    assert result.exit_code == 0, result.output
    out = constant / "branches" / BRANCH
    assert values(out) == values(runs["plateau"])
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[:7] == (constant / "metrics.csv").read_text().splitlines()[:7]  # copied as is
    m = manifest(out)
    assert m["status"] == "complete" and m["parent"] == "../.." and m["fork_epoch"] == 6
    assert m["fork_lr"] == 0.0005000000237487257 and m["drift"] is False
    assert m["parent_checkpoint_sha256"] == sha256_file(constant / "checkpoints/epoch-006.keras")
    assert m["setting"] == {
        "policy": "reduce_lr_on_plateau",
        "reduce_lr_on_plateau": {"monitor": "val_loss", "factor": 0.5, "patience": 1,
                                 "mode": "auto", "min_delta": 1e-4, "cooldown": 0, "min_lr": 0.0},
        "early_stopping": None,
    }  # fmt: skip
    assert m["exactness"]["epoch"] == 6 and m["exactness"]["matched"] is True
    assert [e["epoch"] for e in m["epochs"]] == [6, 7]  # its own checkpoints only
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch-007.keras",
        "epoch-008.keras",
    ]
    assert read_manifest(out, resume=True) == m  # a resumable run directory
    assert m["shadow"] == manifest(runs["plateau"])["shadow"]  # the same real decisions
    check = json.loads((constant / "branches" / "exactness.json").read_text())["checks"]
    assert [(c["parent"], c["epoch"], c["matched"]) for c in check] == [("../..", 6, True)]
    assert "1 setting: 0 answered by the recorded run, 1 by branches, exactly" in result.stdout
    # The sweep now answers that setting from the branch: exact, with the outcome the
    # second recording had (its last epoch, its test loss, the branch's checkpoint).
    swept = run("sweep", constant, *SETTING, "--policy", "reduce_lr_on_plateau",
                "--format", "json")  # fmt: skip
    assert swept.exit_code == 0, swept.output
    (rec,) = json.loads(swept.stdout)
    assert rec["counterfactual_from"] is None and rec["branch"] == BRANCH
    plateau_rows = read_rows(runs["plateau"] / "metrics.csv")
    assert rec["final_epoch"] == 7
    assert rec["final_metrics"]["test_loss"] == plateau_rows[7]["test_loss"]
    assert rec["lr"] == [r["learning_rate"] for r in plateau_rows]
    assert rec["checkpoint"] == str(out / "checkpoints" / "epoch-008.keras")


def test_siblings_reuse_the_check_and_a_sub_branch_is_exact_too(runs, constant, tmp_path):
    """min_delta 0.005 shares the branch until epoch 6's improvement of 0.0043, too small
    for it: it cuts at the end of epoch 6 where the live callback does not, and parts."""
    assert branch(constant, *SETTING).exit_code == 0
    strict = record(tmp_path / "strict", "--reduce-lr-on-plateau",
                    "factor=0.5,patience=1,min_delta=0.005")  # fmt: skip
    result = branch(constant, *SETTING, "--lr-min-delta", "0.0001,0.005")
    assert result.exit_code == 0, result.output
    assert (
        f"[branch 1 of 1] {BRANCH} (fork at epoch 6 of the run, lr 0.0005, 2 settings): "
        "found, complete, 8 epochs" in result.stdout
    )
    assert "  1 setting part at epoch 7 (lr 0.00025): sub-branch queued" in result.stdout
    sub = constant / "branches" / "b002-e07-lr0.00025"
    assert values(sub) == values(strict)
    m = manifest(sub)
    assert (m["parent"], m["fork_epoch"], m["exactness"]["matched"]) == (f"../{BRANCH}", 7, True)
    assert "1 epochs trained, 1 exactness check (1 run now, 0 found)" in result.stdout
    again = branch(constant, *SETTING, "--lr-min-delta", "0.0001,0.005")
    assert "0 epochs trained" in again.stdout and "(0 new, 1 sub-branch found)" in again.stdout


def test_an_interrupted_branch_resumes_to_the_same_metrics(runs, constant):
    result = branch(constant, *SETTING, env={"REPLAY_TEST_HOOK": "in_fit@7:interrupt"})
    assert result.exit_code == 130
    out = constant / "branches" / BRANCH
    assert "Interrupted: " in result.stderr and "interrupted; " not in result.stderr
    m = manifest(out)
    assert m["status"] == "interrupted" and [e["epoch"] for e in m["epochs"]] == [6]
    assert values(out) == values(runs["plateau"])[:7]
    refused = branch(constant, *SETTING, catch_exceptions=True)
    assert error_line(refused) == (f"Error: {out}: branch is interrupted (7 epochs); rerun with "
                                   "--resume to continue it")  # fmt: skip
    resumed = branch(constant, *SETTING, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert values(out) == values(runs["plateau"])
    m = manifest(out)
    assert m["status"] == "complete" and [r["from_epoch"] for r in m["resumed"]] == [7]
    assert "1 exactness check (0 run now, 1 found)" in resumed.stdout


def test_max_epochs_leaves_the_rest_counterfactual_and_resumable(runs, constant):
    result = branch(constant, *SETTING, "--max-epochs", "2")  # the check, then one epoch
    assert result.exit_code == 0, result.output
    out = constant / "branches" / BRANCH
    assert manifest(out)["status"] == "interrupted" and len(values(out)) == 7
    assert "1 still counterfactual (--max-epochs)" in result.stdout
    assert branch(constant, *SETTING, "--resume").exit_code == 0
    assert values(out) == values(runs["plateau"])


def test_a_combined_branch_ends_when_its_early_stopping_stops(constant):
    # min_delta 0.02: RLROP cuts at the end of epoch 4 (its improvement was 0.019); the
    # EarlyStopping (patience 2, min_delta 0.02) waits since epoch 4 and stops on the branch.
    result = branch(constant, "--policy", "early_stopping+reduce_lr_on_plateau", "--patience",
                    "2", "--min-delta", "0.02", "--lr-patience", "1", "--factor", "0.5",
                    "--restore-best-weights", "no")  # fmt: skip
    assert result.exit_code == 0, result.output
    (out,) = (constant / "branches").glob("b001-e05-*")
    rows = read_rows(out / "metrics.csv")
    from replay.engine.policies import early_stopping

    stop = early_stopping([r["val_loss"] for r in rows], patience=2, min_delta=0.02).stopped_epoch
    assert stop == len(rows) - 1 < 7  # it trained exactly up to the stop, no further
    assert manifest(out)["status"] == "complete"
    assert manifest(out)["setting"]["early_stopping"]["patience"] == 2
    # The sweep answers the combined setting exactly from the branch, though the branch
    # ends before the run's last epoch: its EarlyStopping stopped there.
    swept = run("sweep", constant, "--policy", "early_stopping+reduce_lr_on_plateau",
                "--patience", "2", "--min-delta", "0.02", "--lr-patience", "1", "--factor",
                "0.5", "--restore-best-weights", "no", "--format", "json")  # fmt: skip
    assert swept.exit_code == 0, swept.output
    (rec,) = json.loads(swept.stdout)
    assert rec["branch"] == out.name and rec["counterfactual_from"] is None
    assert rec["stopped_epoch"] == stop == rec["final_epoch"]


def test_drift_is_refused_unless_allowed(constant):
    lines = (constant / "metrics.csv").read_text().splitlines(keepends=True)
    fields = lines[7].split(",")  # epoch 6, the fork: nudge test_accuracy, which no one watches
    recorded = float(fields[6])
    fields[6] = repr(float(np.nextafter(np.float32(recorded), np.float32(2))))
    lines[7] = ",".join(fields)
    (constant / "metrics.csv").write_text("".join(lines))
    result = branch(constant, *SETTING, catch_exceptions=True)
    assert error_line(result).startswith(
        f"Error: {constant}: re-training epoch 6 from its checkpoint does not reproduce the "
        f"recorded row (test_accuracy {fields[6]} vs {recorded!r}): this machine or library "
        "build is not the one that trained it, so branches would not be exact; pass "
        "--allow-drift to branch anyway (marked drift: true)"
    )
    assert not (constant / "branches" / BRANCH).exists()
    allowed = branch(constant, *SETTING, "--allow-drift")
    assert allowed.exit_code == 0, allowed.output
    m = manifest(constant / "branches" / BRANCH)
    assert m["drift"] is True and m["exactness"]["columns"] == ["test_accuracy"]
    assert f"DRIFT in {BRANCH}" in allowed.stdout
    assert "1 by branches, exactly, but 1 on drifting branches (not exact)" in allowed.stdout


def test_dry_run_trains_nothing(constant):
    result = branch(constant, *SETTING, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "    RLROP(factor=0.5, patience=1): branch at epoch 6 (lr 0.0005)" in result.stdout
    assert not (constant / "branches").exists()
