"""The sweep answers ReduceLROnPlateau settings from branches (issue 9, item 2).

A recorded run at a constant rate 0.001, and one branch forked at epoch 4 with the
rate halved (what ``factor=0.5, patience=1`` does after the first epoch without
improvement, epoch 3). Hand-made run directories in the format of
docs/run-directory.md ("Branches"); the training side is tests/test_branch.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import f32, make_run

from analysis.formats import load_run
from analysis.reading.rundir import checkpoint_relpath
from replay.sweeping.sweep import Grid, sweep

VAL = [0.50, 0.40, 0.35, 0.36, 0.34, 0.37, 0.38, 0.39]
TEST = [0.52, 0.41, 0.36, 0.35, 0.36, 0.38, 0.39, 0.40]
# After the branch's cut, its own epochs 4-7 improve again, then stall.
BRANCH_VAL = VAL[:4] + [0.33, 0.32, 0.325, 0.33]
BRANCH_TEST = TEST[:4] + [0.33, 0.31, 0.315, 0.32]
HEADER = "epoch,loss,val_loss,test_loss,learning_rate"


def csv(val, test, lr) -> str:
    rows = [f"{e},{1 / (e + 1)!r},{v!r},{t!r},{r!r}" for e, (v, t, r) in
            enumerate(zip(val, test, lr, strict=True))]  # fmt: skip
    return HEADER + "\n" + "\n".join(rows) + "\n"


def make_tree(tmp_path: Path, *, branch_epochs: int = 8, status: str = "complete") -> Path:
    root = make_run(tmp_path / "run", n=8, metrics=csv(VAL, TEST, [0.001] * 8))
    b = root / "branches" / "b001-e04-lr0.0005"
    (b / "checkpoints").mkdir(parents=True)
    # The live callback (factor 0.5, patience 1) cuts again at the end of epoch 6.
    lr = ([0.001] * 4 + [0.0005] * 3 + [0.00025])[:branch_epochs]
    (b / "metrics.csv").write_text(csv(BRANCH_VAL[:branch_epochs], BRANCH_TEST[:branch_epochs], lr))
    entries = []
    for e in range(4, branch_epochs):
        blob = f"branch weights of epoch {e}".encode()
        (b / checkpoint_relpath(e)).write_bytes(blob)
        sha = hashlib.sha256(blob).hexdigest()
        entries.append({"epoch": e, "checkpoint": checkpoint_relpath(e), "sha256": sha,
                        "bytes": len(blob)})  # fmt: skip
    parent_sha = hashlib.sha256(b"weights of epoch 3").hexdigest()
    (b / "run.json").write_text(json.dumps({
        "schema_version": 1, "name": b.name, "status": status, "epochs": entries,
        "parent": "../..", "fork_epoch": 4, "fork_lr": 0.0005,
        "setting": {"policy": "reduce_lr_on_plateau", "early_stopping": None,
                    "reduce_lr_on_plateau": {"monitor": "val_loss", "factor": 0.5,
                                             "patience": 1}},
        "parent_checkpoint_sha256": parent_sha,
    }))  # fmt: skip
    return root


GRID = Grid(policies=("reduce_lr_on_plateau",), factor=(0.5, 0.1), patience=(1,),
            lr_min_delta=(0.0,))  # fmt: skip


def by_factor(records) -> dict[float, dict]:
    return {r["params"]["factor"]: r for r in records}


def test_a_branch_makes_its_setting_exact(tmp_path):
    root = make_tree(tmp_path)
    result = sweep([load_run(root)], GRID)
    half, tenth = by_factor(result.records).values()
    # factor 0.5: the branch's own rates are this schedule's all the way.
    assert half["counterfactual_from"] is None and half["branch"] == "b001-e04-lr0.0005"
    assert half["lr"] == [f32(0.001)] * 4 + [f32(0.0005)] * 3 + [f32(0.00025)]
    assert half["reductions"] == [3, 6, 7]  # the cut after the last epoch changes nothing
    assert half["final_epoch"] == 7
    assert half["final_metrics"]["test_loss"] == 0.32
    # regret against the best recorded epoch of the run (test 0.35 at epoch 3): negative
    # means the branch did better than any epoch the run recorded.
    assert half["regret"] == 0.32 - 0.35
    assert half["checkpoint"] == str(root / "branches" / "b001-e04-lr0.0005" /
                                     checkpoint_relpath(7))  # fmt: skip
    # factor 0.1 cuts at the same epoch to another rate: no branch answers it.
    assert tenth["counterfactual_from"] == 4 and tenth["branch"] is None
    assert tenth["final_epoch"] is None and tenth["regret"] is None


def test_a_rider_that_parts_inside_the_branch_is_exact_up_to_there(tmp_path):
    """patience 1, factor 0.5 with min_delta 0.01: on the run's curve it cuts at the end
    of epoch 3 as the branch did; on the branch's curve epoch 5 (0.32, not below
    0.33 - 0.01) is no improvement, so it cuts at the end of 5, which the branch (live
    callback: min_delta 0) did not: exact to epoch 5, counterfactual from 6."""
    root = make_tree(tmp_path)
    grid = Grid(policies=("reduce_lr_on_plateau",), factor=(0.5,), patience=(1,),
                lr_min_delta=(0.01,))  # fmt: skip
    (r,) = sweep([load_run(root)], grid).records
    assert r["branch"] == "b001-e04-lr0.0005"
    assert r["counterfactual_from"] == 6 and r["final_epoch"] is None


def test_a_branch_shorter_than_the_run_answers_only_its_epochs(tmp_path):
    root = make_tree(tmp_path, branch_epochs=6)
    half = by_factor(sweep([load_run(root)], GRID).records)[0.5]
    assert half["counterfactual_from"] == 6 and half["final_epoch"] is None


def test_an_unfinished_branch_is_never_used(tmp_path):
    root = make_tree(tmp_path, status="interrupted")
    result = sweep([load_run(root)], GRID)
    half = by_factor(result.records)[0.5]
    assert half["counterfactual_from"] == 4 and half["branch"] is None
    assert any("branch is interrupted (8 epochs); not used until `replay branch --resume` "
               "finishes it" in n for n in result.facts[0].notes)  # fmt: skip


def test_the_runs_own_schedule_is_exact_without_branches(tmp_path):
    """A setting that never cuts within the recorded epochs is what the run did."""
    root = make_run(tmp_path / "run", n=8, metrics=csv(VAL, TEST, [0.001] * 8))
    grid = Grid(policies=("reduce_lr_on_plateau",), factor=(0.5,), patience=(5,))
    (r,) = sweep([load_run(root)], grid).records
    assert r["counterfactual_from"] is None and r["reductions"] == []
    assert r["final_epoch"] == 7 and r["regret"] == TEST[7] - 0.35
    assert r["checkpoint"] == str(root / checkpoint_relpath(7)) and r["branch"] is None


COMBINED_GRID = Grid(policies=("early_stopping+reduce_lr_on_plateau",), patience=(1, 2),
                     min_delta=(0.0,), restore_best_weights=(True,), factor=(0.5, 0.1),
                     lr_patience=(1,), lr_min_delta=(0.0,))  # fmt: skip


def combined(records) -> dict[tuple[int, float], dict]:
    return {(r["params"]["patience"], r["params"]["factor"]): r for r in records}


def test_combined_settings_ride_on_the_branch_of_their_lr_setting(tmp_path):
    root = make_tree(tmp_path)
    result = sweep([load_run(root)], COMBINED_GRID)
    assert len(result.records) == 4 == COMBINED_GRID.size()
    recs = combined(result.records)
    # EarlyStopping patience 1 stops at epoch 3 on every curve (0.36 > 0.35): before the
    # schedules part (epoch 4), so it is exact whatever the factor.
    for factor in (0.5, 0.1):
        r = recs[(1, factor)]
        assert (r["stopped_epoch"], r["final_epoch"], r["counterfactual_from"]) == (3, 2, None)
        assert r["reductions"] == [] and r["lr"] == [f32(0.001)] * 4
    # patience 2 goes past epoch 4: with factor 0.5 it rides the branch, where 0.33, 0.32
    # improve and 0.325, 0.33 do not: it stops at epoch 7 and keeps epoch 5.
    r = recs[(2, 0.5)]
    assert r["branch"] == "b001-e04-lr0.0005" and r["counterfactual_from"] is None
    assert (r["stopped_epoch"], r["best_epoch"], r["final_epoch"]) == (7, 5, 5)
    assert r["final_metrics"]["test_loss"] == 0.31 and r["regret"] == 0.31 - 0.35
    assert r["checkpoint"].endswith("b001-e04-lr0.0005/" + checkpoint_relpath(5))
    # with factor 0.1 no curve saw epoch 4 under its rate: unknown from there.
    r = recs[(2, 0.1)]
    assert r["counterfactual_from"] == 4 and r["final_epoch"] is None
    assert r["censored"] and r["epochs_trained"] == 4


def test_combined_without_branches_is_exact_where_earlystopping_stops_first(tmp_path):
    root = make_run(tmp_path / "run", n=8, metrics=csv(VAL, TEST, [0.001] * 8))
    recs = combined(sweep([load_run(root)], COMBINED_GRID).records)
    assert recs[(1, 0.5)]["counterfactual_from"] is None
    assert recs[(1, 0.5)]["checkpoint"] == str(root / checkpoint_relpath(2))
    assert recs[(2, 0.5)]["counterfactual_from"] == 4


def test_pick_hands_over_the_branch_checkpoint(tmp_path):
    from conftest import run

    root = make_tree(tmp_path)
    result = run("pick", root, "--policy", "early_stopping+reduce_lr_on_plateau",
                 "--patience", "2", "--lr-patience", "1", "--factor", "0.5", "--min-delta",
                 "0", "--lr-min-delta", "0", "--restore-best-weights", "yes")  # fmt: skip
    assert result.exit_code in (0, 3), result.output  # 3: the fixture's fake shadow entries
    lines = result.stdout.splitlines()
    assert lines[0].endswith("stopped at epoch 7; best epoch 5 (branch b001-e04-lr0.0005).")
    branch = root / "branches" / "b001-e04-lr0.0005"
    assert f"checkpoint: {branch / checkpoint_relpath(5)} (sha256 verified)" in lines
    # An epoch before the fork is the run's own checkpoint (the branch holds none).
    result = run("pick", root, "--policy", "early_stopping+reduce_lr_on_plateau",
                 "--patience", "1", "--lr-patience", "1", "--factor", "0.5", "--min-delta",
                 "0", "--lr-min-delta", "0", "--restore-best-weights", "yes")  # fmt: skip
    assert f"checkpoint: {root / checkpoint_relpath(2)} (sha256 verified)" in result.stdout
    result = run("pick", root, "--policy", "reduce_lr_on_plateau", "--patience", "1",
                 "--factor", "0.1", "--lr-min-delta", "0")  # fmt: skip
    assert "no recorded curve ran this schedule from epoch 4 on" in result.stdout
    assert "checkpoint:" not in result.stdout
