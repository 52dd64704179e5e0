"""The branch fields of run.json (analysis/reading/rundir.py) and resuming a branch
(replay/recording/resume.py): tables of manifests and crash states, no TensorFlow.

A branch forked at epoch k: metrics.csv holds its parent's rows 0..k-1, then its own;
run.json's ``epochs`` lists its own epochs only, from k.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_run

from analysis.errors import BadManifest, UnsafePath
from analysis.formats.run_dir import load_run_dir
from analysis.reading.rundir import (
    CheckpointInfo,
    checkpoint_name,
    checkpoint_relpath,
    first_own_epoch,
    validate_manifest,
)
from replay.recording.resume import ResumePlan, plan_resume

SHA = "ab" * 32
FORK = 4
SETTING = {
    "policy": "reduce_lr_on_plateau",
    "early_stopping": None,
    "reduce_lr_on_plateau": {"monitor": "val_loss", "factor": 0.5, "patience": 1},
}


def entry(epoch: int) -> dict:
    return {"epoch": epoch, "checkpoint": checkpoint_relpath(epoch), "sha256": SHA,
            "bytes": 10, "seconds": 1.0}  # fmt: skip


def branch(own: int = 2, **fields) -> dict:
    """A branch's run.json forked at epoch FORK with ``own`` committed epochs of its own."""
    return {"schema_version": 1, "name": "b001-e04-lr0.0005", "status": "interrupted",
            "config": {"epochs": 8}, "data": {"origin": "keras-cache"},
            "checkpoints_included": True, "epochs": [entry(FORK + i) for i in range(own)],
            "shadow": [], "parent": "../..", "fork_epoch": FORK, "fork_lr": 0.0005,
            "setting": SETTING, "parent_checkpoint_sha256": SHA, "exactness": {"epoch": FORK},
            "drift": False, **fields}  # fmt: skip


def test_a_branch_passes_both_levels(tmp_path):
    m = branch()
    assert validate_manifest(m, tmp_path, resume=True) is m
    assert first_own_epoch(m) == FORK and first_own_epoch({}) == 0


BAD_FIELDS = [
    ("parent", "../../elsewhere", "parent must be '../..' (the run) or '../<id>' (another branch)"),
    ("parent", "/abs/run", "parent must be '../..' (the run) or '../<id>' (another branch)"),
    ("parent", "../b001/..", "parent must be '../..' (the run) or '../<id>' (another branch)"),
    ("fork_epoch", 0, "fork_epoch must be an epoch number of at least 1, got 0"),
    ("fork_epoch", True, "fork_epoch must be an epoch number of at least 1, got True"),
    ("setting", {"policy": "reduce_lr_on_plateau"},
     "setting must be an object with policy, reduce_lr_on_plateau (an object) and "
     "early_stopping (an object or null)"),
    ("parent_checkpoint_sha256", "AB" * 32,
     "parent_checkpoint_sha256 must be 64 lower-case hex digits"),
    ("drift", "no", "drift must be true or false, got 'no'"),
    ("fork_lr", 0.0, "fork_lr must be a positive learning rate, got 0.0"),
    ("fork_lr", "1e-3", "fork_lr must be a positive learning rate, got '1e-3'"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "message"), BAD_FIELDS,
                         ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD_FIELDS])  # fmt: skip
def test_malformed_branch_fields_are_refused_by_readers(tmp_path, key, value, message):
    with pytest.raises(BadManifest, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_manifest(branch(**{key: value}), tmp_path)


def test_resuming_a_branch_needs_all_its_fields(tmp_path):
    m = branch()
    del m["parent_checkpoint_sha256"]
    validate_manifest(m, tmp_path)  # a reader does not need it
    with pytest.raises(BadManifest, match="a branch needs parent, fork_epoch, setting, "
                                          "parent_checkpoint_sha256, but "
                                          "parent_checkpoint_sha256 is missing"):  # fmt: skip
        validate_manifest(m, tmp_path, resume=True)


def test_a_branch_lists_its_own_epochs_from_its_fork(tmp_path):
    m = branch(epochs=[entry(0), entry(1)])
    validate_manifest(m, tmp_path)
    with pytest.raises(BadManifest, match=r"epochs\[0\].epoch must be 4 \(epochs in order from "
                                          r"4 \(fork_epoch\)\), got 0"):  # fmt: skip
        validate_manifest(m, tmp_path, resume=True)
    m = branch(epochs=[{**entry(FORK), "checkpoint": checkpoint_relpath(0)}])
    with pytest.raises(UnsafePath, match="expected 'checkpoints/epoch-005.keras'"):
        validate_manifest(m, tmp_path, resume=True)


# ---------------------------------------------------------------- plan_resume of a branch


def rows(n: int) -> list[dict]:
    return [{"epoch": e, "epoch_seconds": 1.0} for e in range(n)]


def last(epoch: int) -> CheckpointInfo:
    return CheckpointInfo(epoch, checkpoint_relpath(epoch), SHA, 10)


PLANS = [
    # (state, own epochs in run.json, metrics.csv rows, checkpoint files, plan)
    ("killed before metrics.csv was written: the parent's rows are copied again", 0, None, [],
     ResumePlan(FORK, write_header=True)),
    ("killed in its first epoch: starts again from the parent's checkpoint", 0, rows(FORK), [],
     ResumePlan(FORK)),
    ("killed with its first checkpoint half written", 0, rows(FORK), [".tmp-epoch-005.keras"],
     ResumePlan(FORK, discard=(".tmp-epoch-005.keras",))),
    ("killed after its first row, before run.json: adopted", 0, rows(FORK + 1),
     [checkpoint_name(FORK)], ResumePlan(FORK + 1, load=checkpoint_relpath(FORK), adopt=FORK)),
    ("interrupted after two epochs of its own", 2, rows(FORK + 2),
     [checkpoint_name(FORK), checkpoint_name(FORK + 1)],
     ResumePlan(FORK + 2, load=checkpoint_relpath(FORK + 1), verify=last(FORK + 1))),
    ("killed after a checkpoint rename, before the row", 1, rows(FORK + 1),
     [checkpoint_name(FORK), checkpoint_name(FORK + 1)],
     ResumePlan(FORK + 1, load=checkpoint_relpath(FORK), verify=last(FORK),
                discard=(checkpoint_name(FORK + 1),))),
]  # fmt: skip


@pytest.mark.parametrize(("own", "csv_rows", "names", "plan"), [p[1:] for p in PLANS],
                         ids=[p[0] for p in PLANS])  # fmt: skip
def test_plan_resume_of_a_branch(own, csv_rows, names, plan):
    assert plan_resume(branch(own), csv_rows, names) == plan


@pytest.mark.parametrize(
    ("own", "csv_rows", "message"),
    [(0, rows(FORK - 1), "run: metrics.csv has 3 rows, fewer than the 4 its parent's rows "
                         "before fork_epoch 4 should give"),
     (2, rows(FORK + 4), "run: run.json lists 2 epochs but metrics.csv has 4 rows after "
                         "fork_epoch 4")],
)  # fmt: skip
def test_plan_resume_refuses_an_inconsistent_branch(own, csv_rows, message):
    with pytest.raises(BadManifest) as info:
        plan_resume(branch(own), csv_rows, [], root=Path("run"))
    assert str(info.value) == message


# ---------------------------------------------------------------- reading a branch


def test_a_branch_reads_without_warnings_about_its_parents_epochs(tmp_path):
    root = make_run(tmp_path / "b001", n=FORK + 2)
    m = json.loads((root / "run.json").read_text())
    m["epochs"] = m["epochs"][FORK:]
    m.update(parent="../..", fork_epoch=FORK, fork_lr=0.0005, setting=SETTING,
             parent_checkpoint_sha256=SHA)  # fmt: skip
    (root / "run.json").write_text(json.dumps(m))
    run = load_run_dir(root)
    assert run.warnings == [] and sorted(run.checkpoints) == [FORK, FORK + 1]
    assert run.shadow_epochs == FORK + 2
