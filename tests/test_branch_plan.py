"""The pure planner of `replay branch` (replay/engine/branch_plan.py) and its command's
refusals and dry runs: tables of curves, settings and expected forks; no TensorFlow.

The training side (bit-for-bit branches, resume, drift) is in test_branch.py.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import error_line, f32, make_run, run

from replay.engine.branch_plan import (
    COMBINED,
    BranchPlanError,
    Placement,
    Plateau,
    Setting,
    Step,
    Stopping,
    outcome,
    plan_root,
    settings_for,
    step,
    stopped,
)
from replay.sweeping.sweep import Grid

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs" / "mnist-mlp"
NAN = math.nan


def lr(factor: float, patience: int, **kw) -> Setting:
    return Setting(Plateau("val_loss", "min", factor, patience, **kw))


def es_lr(es_patience: int, factor: float, patience: int, **kw) -> Setting:
    return Setting(
        Plateau("val_loss", "min", factor, patience), Stopping("val_loss", "min", es_patience, **kw)
    )


def curves(val: list[float], rate: float = 0.1, rates: list[float] | None = None) -> dict:
    return {"val_loss": val, "learning_rate": rates or [rate] * len(val)}


# ---------------------------------------------------------------- plan_root

FLAT = [1.0, 0.9, 0.95, 0.97, 0.99, 1.0]  # best at epoch 1, then worse

PLACEMENTS = [
    # (why, setting, curve, recorded rates, expected placement)
    ("never cuts within the run", lr(0.5, 9), FLAT, None, Placement(None, None, None)),
    ("cuts at the end of epoch 2: fork 3", lr(0.5, 1), FLAT, None, Placement(3, f32(0.05), None)),
    ("patience 0 cuts as patience 1", lr(0.5, 0), FLAT, None, Placement(3, f32(0.05), None)),
    ("a cut after the last epoch changes no epoch", lr(0.5, 4), FLAT, None,
     Placement(None, None, None)),
    ("the factor sets the rate at the fork", lr(0.2, 2), FLAT, None,
     Placement(4, f32(0.02), None)),
    ("min_delta: small improvements do not count", lr(0.5, 1, min_delta=0.2),
     [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], None, Placement(2, f32(0.05), None)),
    ("recorded with the same cut: no fork", lr(0.5, 1), FLAT,
     [0.1, 0.1, 0.1, f32(0.05), f32(0.025), f32(0.0125)], Placement(None, None, None)),
    ("recorded with a later cut: fork where they differ", lr(0.5, 1), FLAT,
     [0.1, 0.1, 0.1, 0.1, f32(0.05), f32(0.05)], Placement(3, f32(0.05), None)),
    ("NaN is never an improvement", lr(0.5, 1), [1.0, NAN, 0.9, 0.8, 0.7, 0.6], None,
     Placement(2, f32(0.05), None)),
    ("combined: EarlyStopping stops before the fork", es_lr(1, 0.5, 2), FLAT, None,
     Placement(None, None, 2)),
    ("combined: EarlyStopping stops at the fork epoch's start", es_lr(3, 0.5, 2), FLAT, None,
     Placement(4, f32(0.05), 4)),
    ("combined: EarlyStopping never stops on the run", es_lr(9, 0.5, 1), FLAT, None,
     Placement(3, f32(0.05), None)),
]  # fmt: skip


@pytest.mark.parametrize(("setting", "val", "rates", "expected"), [p[1:] for p in PLACEMENTS],
                         ids=[p[0] for p in PLACEMENTS])  # fmt: skip
def test_where_a_setting_leaves_the_recorded_run(setting, val, rates, expected):
    plan = plan_root([setting], curves(val, rates=rates), initial_lr=0.1)
    assert plan.placements == (expected,)
    assert plan.on_run == (expected.fork is None)


def test_settings_with_the_same_fork_and_rate_share_a_first_level_branch():
    settings = [lr(0.5, 1), lr(0.5, 0), lr(0.2, 1), lr(0.5, 2), lr(0.5, 9)]
    plan = plan_root(settings, curves(FLAT), initial_lr=0.1)
    assert plan.groups == {(3, f32(0.02)): (2,), (3, f32(0.05)): (0, 1), (4, f32(0.05)): (3,)}
    assert plan.forks == (3, 4) and plan.checks == 2 and plan.on_run == 1
    # each group to the end of the run (6 epochs), each distinct schedule at most once
    assert (plan.epochs_low, plan.epochs_high, plan.naive) == (3 + 3 + 2, 3 + 3 + 3 + 2, 30)


def test_combined_settings_ride_for_free_and_may_end_early():
    settings = [es_lr(p, 0.5, 1) for p in (1, 2, 5, 9)]
    plan = plan_root(settings, curves(FLAT), initial_lr=0.1)
    # patience 1 stops at epoch 2, before the fork at 3; the others share one branch
    assert plan.on_run == 1 and plan.groups == {(3, f32(0.05)): (1, 2, 3)}
    assert (plan.epochs_low, plan.epochs_high) == (1, 3)  # all three may stop at once


def test_a_run_without_learning_rate_cannot_be_planned():
    with pytest.raises(BranchPlanError, match="no learning_rate column"):
        plan_root([lr(0.5, 1)], {"val_loss": FLAT}, initial_lr=0.1)


def test_a_monitor_the_run_lacks_is_refused():
    setting = Setting(Plateau("val_accuracy", "max", 0.5, 1))
    with pytest.raises(BranchPlanError, match="the run has no metric 'val_accuracy'"):
        plan_root([setting], curves(FLAT), initial_lr=0.1)


# ---------------------------------------------------------------- step

# The branch of RLROP(factor=0.5, patience=1) forked at epoch 3 of FLAT (8 epochs): its
# real callback cut the rate at the end of epochs 2 (the fork), 4 and 6.
BRANCH = curves(
    [1.0, 0.9, 0.95, 0.85, 0.86, 0.84, 0.845, 0.83],
    rates=[0.1, 0.1, 0.1, f32(0.05), f32(0.05), f32(0.025), f32(0.025), f32(0.0125)],
)
LIVE = lr(0.5, 1)
STRICT = lr(0.5, 1, min_delta=0.015)  # the same until epoch 5's 0.01 improvement, too small
LATE_ES = Setting(LIVE.plateau, Stopping("val_loss", "min", 1, start_from_epoch=3))

STEPS = [
    # (why, settings riding, epoch just committed, live rate for the next epoch, expected)
    ("agrees with the live callback: rides on", [LIVE], 3, f32(0.05), Step((0,), ())),
    ("cut with the live callback: rides on", [LIVE], 4, f32(0.025), Step((0,), ())),
    ("its next rate differs: a sub-branch from the next epoch", [LIVE, STRICT], 5, f32(0.025),
     Step((0,), (), {(6, f32(0.0125)): (1,)})),
    ("the run's last epoch: done", [LIVE], 7, None, Step((), (0,))),
    ("its EarlyStopping has not stopped: rides on", [LATE_ES], 3, f32(0.05), Step((0,), ())),
    ("its EarlyStopping stopped: done, whatever its rate", [LATE_ES], 4, f32(0.025),
     Step((), (0,))),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "epoch", "live", "expected"), [s[1:] for s in STEPS],
                         ids=[s[0] for s in STEPS])  # fmt: skip
def test_step(settings, epoch, live, expected):
    riders = list(range(len(settings)))
    assert step(settings, riders, BRANCH, epoch, next_rate=live, initial_lr=0.1,
                horizon=8) == expected  # fmt: skip


def test_a_rider_whose_schedule_left_the_branch_is_refused():
    with pytest.raises(BranchPlanError) as info:
        step([STRICT], [0], BRANCH, 6, next_rate=f32(0.025), initial_lr=0.1, horizon=8)
    assert str(info.value) == (
        "RLROP(factor=0.5, patience=1, min_delta=0.015): its learning rate at epoch 6 "
        "(0.012500000186264515) is not the branch's (0.02500000037252903); the branch does "
        "not answer it"
    )


def test_stopped_lists_the_combined_settings_whose_early_stopping_fired():
    settings = [es_lr(1, 0.5, 1), es_lr(4, 0.5, 1), lr(0.5, 1)]
    assert stopped(settings, [0, 1, 2], curves(FLAT), 1) == ()
    assert stopped(settings, [0, 1, 2], curves(FLAT), 2) == (0,)
    assert stopped(settings, [0, 1, 2], curves(FLAT), 5) == (0, 1)


def test_outcome_of_a_combined_setting():
    o = outcome(es_lr(2, 0.5, 1, restore_best_weights=True), curves(FLAT), initial_lr=0.1)
    assert (o.stopped_epoch, o.final_epoch, o.reductions) == (3, 1, (2, 3))
    assert o.metrics["val_loss"] == 0.9
    assert outcome(lr(0.5, 1), curves(FLAT), initial_lr=0.1).final_epoch == 5


# ---------------------------------------------------------------- settings of a grid


def test_settings_of_a_grid_in_grid_order():
    grid = Grid.from_options(Grid(policies=("reduce_lr_on_plateau",)), patience=(3, 4),
                             factor=(0.1, 0.5))  # fmt: skip
    labels = [s.label for s in settings_for(grid, ["val_loss"])]
    assert labels == [
        "RLROP(factor=0.1, patience=3)",
        "RLROP(factor=0.1, patience=4)",
        "RLROP(factor=0.5, patience=3)",
        "RLROP(factor=0.5, patience=4)",
    ]


def test_the_combined_grid_is_the_product_with_separate_patiences():
    grid = Grid.from_options(Grid(policies=(COMBINED,)), patience=tuple(range(3, 11)),
                             lr_patience=tuple(range(3, 11)), min_delta=(0.0,),
                             lr_min_delta=(1e-4,), restore_best_weights=(False,))  # fmt: skip
    settings = settings_for(grid, ["val_loss"])
    assert len(settings) == 8 * 24
    assert settings[0].label == "ES(patience=3)+RLROP(factor=0.1, patience=3)"
    assert settings[0].to_json() == {
        "policy": COMBINED,
        "reduce_lr_on_plateau": {"monitor": "val_loss", "factor": 0.1, "patience": 3,
                                 "mode": "auto", "min_delta": 1e-4, "cooldown": 0, "min_lr": 0.0},
        "early_stopping": {"monitor": "val_loss", "mode": "auto", "min_delta": 0.0, "patience": 3,
                           "baseline": None, "restore_best_weights": False,
                           "start_from_epoch": 0},
    }  # fmt: skip


def test_planning_a_thousand_settings_takes_under_a_second():
    from replay.recording.run_writer import read_rows

    rows = read_rows(SAMPLE / "metrics.csv")
    grid = Grid.from_options(Grid(policies=("reduce_lr_on_plateau",)), patience=tuple(range(20)),
                             factor=tuple(f / 100 for f in range(1, 51)))  # fmt: skip
    settings = settings_for(grid, ["val_loss"])
    assert len(settings) == 1000
    began = time.perf_counter()
    plan_root(settings, {c: [r[c] for r in rows] for c in rows[0]}, initial_lr=1e-3)
    assert time.perf_counter() - began < 1.0


# ---------------------------------------------------------------- the command, without training


def test_dry_run_plans_the_demo_grid_and_writes_nothing(tmp_path):
    copy = tmp_path / "mnist-mlp"
    shutil.copytree(SAMPLE, copy)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    result = run("branch", copy, "--patience", "3..10", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:6] == [
        "24 settings (reduce_lr_on_plateau on val_loss):",
        "  0 answered exactly by the recorded run (their rate never leaves it, or their "
        "EarlyStopping stops first)",
        "  24 need a branch: 24 first-level branches, forking at epochs 5, 10-16",
        "epochs to train: at most 432 (an upper bound: sub-branches are found while training, "
        "within it) + 8 exactness checks (one epoch per fork epoch; each sub-branch adds one)",
        "  re-training every setting from scratch: 720 epochs; the tree: at most 60% of that",
    ]
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


def test_dry_run_lists_a_small_grid_setting_by_setting():
    result = run("branch", SAMPLE, "--policy", COMBINED, "--patience", "5", "--min-delta", "0",
                 "--lr-patience", "3", "--lr-min-delta", "1e-4", "--factor", "0.25",
                 "--restore-best-weights", "no", "--dry-run")  # fmt: skip
    assert result.exit_code == 0, result.output
    line = "    ES(patience=5)+RLROP(factor=0.25, patience=3): branch at epoch 5 (lr 0.00025)"
    assert line in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--baseline", "0.5", "--start-from-epoch", "2", "--restore-best-weights", "no"],
         "--baseline, --start-from-epoch, --restore-best-weights"),
        (["--patience", "3", "--lr-patience", "2", "--min-delta", "0", "--lr-min-delta", "0"],
         "--patience, --min-delta"),
    ],
)  # fmt: skip
def test_options_branch_does_not_use_are_refused_in_one_line(tmp_path, args, named):
    copy = tmp_path / "mnist-mlp"
    shutil.copytree(SAMPLE, copy)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    policy = COMBINED if COMBINED in args else "reduce_lr_on_plateau"
    line = error_line(run("branch", copy, *args, "--dry-run"))
    assert line.startswith(f"Error: {named}: not used by replay branch --policy {policy} ")
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


@pytest.mark.parametrize(
    "args",
    [
        ["--patience", "3", "--gl-alpha", "1", "--save-best-only", "yes"],
        ["--pq-alpha", "1"], ["--up-strips", "2"], ["--strip-length", "5"],
        ["--initial-value-threshold", "0.1"], ["--policy", COMBINED, "--gl-alpha", "1"],
    ],
)  # fmt: skip
def test_options_branch_does_not_have_are_usage_errors(tmp_path, args):
    # Prechelt's and ModelCheckpoint's options are not branch's at all (its --help does
    # not list them, issue 21): click refuses them as unknown, exit 2, nothing written.
    copy = tmp_path / "mnist-mlp"
    shutil.copytree(SAMPLE, copy)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    result = run("branch", copy, *args, "--dry-run")
    assert result.exit_code == 2 and "Error: No such option '--" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


def test_the_combined_policy_uses_the_early_stopping_options():
    result = run("branch", SAMPLE, "--policy", COMBINED, "--patience", "3", "--lr-patience",
                 "2", "--baseline", "none", "--start-from-epoch", "1",
                 "--restore-best-weights", "yes", "--dry-run")  # fmt: skip
    assert result.exit_code == 0, result.output


def test_dry_run_does_not_import_tensorflow():
    code = ("import sys; from replay.commands.cli import cli; "
            "cli.main(['branch', sys.argv[1], '--patience', '3', '--dry-run'], "
            "standalone_mode=False); "
            "sys.exit(any(m in sys.modules for m in ('tensorflow', 'keras')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(SAMPLE)], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


def _recorded(tmp_path: Path, status: str = "complete", **changes) -> Path:
    """A run directory with run.json's config, metrics.csv in record's layout, fake checkpoints."""
    rows = "".join(f"{e},0.5,0.8,{v!r},0.8,{v!r},0.8,0.001,1.0\n" for e, v in enumerate(FLAT))
    header = ("epoch,loss,accuracy,val_loss,val_accuracy,test_loss,test_accuracy,learning_rate,"
              "epoch_seconds\n")  # fmt: skip
    root = make_run(tmp_path / "run", n=len(FLAT), status=status, metrics=header + rows)
    manifest = json.loads((root / "run.json").read_text())
    manifest.update(config={"epochs": len(FLAT), "model": "mlp", "batch_size": 128,
                            "optimizer": "adam", "learning_rate": 0.001, "seed": 0,
                            "limit": 100, "reduce_lr_on_plateau": None},
                    data={"origin": "keras-cache"}, **changes)  # fmt: skip
    (root / "run.json").write_text(json.dumps(manifest))
    return root


REFUSALS = [
    # (why, arguments after RUN, changes to the run, the one Error line after "Error: ")
    ("a policy that changes no rate", ["--policy", "early_stopping"], {},
     "--policy early_stopping: replay branch re-trains learning-rate schedules; it takes "
     "reduce_lr_on_plateau or early_stopping+reduce_lr_on_plateau (early_stopping alone changes "
     "no rate: `replay sweep` answers it exactly)."),
    ("another initial rate", ["--initial-lr", "0.01"], {},
     "--initial-lr 0.01: the run was recorded at 0.001; a branch continues the recorded "
     "training, so leave --initial-lr out"),
    ("a metric no callback can watch", ["--monitor", "epoch_seconds"], {},
     "--monitor epoch_seconds: the run's callbacks can watch loss, accuracy, val_loss, "
     "val_accuracy, test_loss, test_accuracy"),
    ("an unfinished run", [], {"status": "interrupted"},
     "{run}: the run is interrupted (6 epochs); finish it with `replay record --resume --out "
     "{run}` first"),
    ("a run published without checkpoints", [], {"checkpoints_included": False},
     "{run}: was published without its checkpoints, so no epoch can be re-trained; branch "
     "the original run directory (--dry-run plans it)"),
    ("a branch given as the run", [], {"parent": "../..", "fork_epoch": 2},
     "{run}: is a branch; branch its run ({up}) instead"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "changes", "message"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])  # fmt: skip
def test_refusals_are_one_line_and_write_nothing(tmp_path, args, changes, message):
    root = _recorded(tmp_path, **changes)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = run("branch", root, "--patience", "1", "--factor", "0.5", "-y", *args,
                 catch_exceptions=True)  # fmt: skip
    up = (root / "../..").resolve()
    assert error_line(result) == "Error: " + message.format(run=root, up=up)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_a_log_that_is_not_a_run_directory_is_refused(tmp_path):
    log = tmp_path / "training.csv"
    log.write_text("epoch,loss,val_loss\n0,1.0,1.0\n")
    result = run("branch", log, catch_exceptions=True)
    assert error_line(result) == (
        f"Error: {log}: no run.json; replay branch needs a run "
        "directory recorded by `replay record` (with its checkpoints)"
    )
