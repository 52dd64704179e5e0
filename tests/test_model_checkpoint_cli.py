"""`replay sweep` / `replay pick` with --policy model_checkpoint: the epochs
ModelCheckpoint saves and the file you are left with (Keras 3, and Keras 2 in the
tf-keras dialect with ``period``), records equal to the pure function, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_run

from analysis.results.records import (
    DialectModelCheckpointRecord,
    ModelCheckpointRecord,
)
from replay.commands.cli import cli
from replay.engine.dialects.model_checkpoint import VERSIONS, model_checkpoint
from replay.engine.grid import GridError
from replay.sweeping.sweep import Grid

# val_loss improves at 0, 1 and 4; test_loss is best at 4.
VAL = [1.0, 0.5, 0.6, 0.7, 0.4, 0.45]
TEST = [1.1, 0.6, 0.65, 0.7, 0.45, 0.5]


def write_csv(tmp_path: Path, val, test) -> Path:
    path = tmp_path / "log.csv"
    rows = [f"{e},1.0,{v},{t}" for e, (v, t) in enumerate(zip(val, test, strict=True))]
    path.write_text("\n".join(["epoch,loss,val_loss,test_loss", *rows]) + "\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sweep_json(path, *args) -> list[dict]:
    result = invoke("sweep", path, "--policy", "model_checkpoint", "--format", "json", *args)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def error_line(result) -> str:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "keras", "period", "save_best_only", "threshold", "saved", "final"),
    [
        # Keras 3, every epoch: all six, the file holds the last.
        (["--save-best-only", "no"], "3", 1, False, None, [0, 1, 2, 3, 4, 5], 5),
        # Keras 3, best only: each improvement on the best so far.
        (["--save-best-only", "yes"], "3", 1, True, None, [0, 1, 4], 4),
        # initial_value_threshold 0.55: epoch 0 (1.0) does not beat it.
        (["--save-best-only", "yes", "--initial-value-threshold", "0.55"], "3", 1, True, 0.55,
         [1, 4], 4),
        # Keras 2 period 3: only epochs 2 and 5 are looked at; 0.45 beats 0.6, and the
        # better epoch 4 (0.4) is never seen.
        (["--save-best-only", "yes", "--dialect", "tf-keras", "--period", "3"], "2", 3, True,
         None, [2, 5], 5),
        (["--save-best-only", "no", "--dialect", "tf-keras", "--period", "3"], "2", 3, False,
         None, [2, 5], 5),
        (["--save-best-only", "yes", "--dialect", "tf-keras"], "2", 1, True, None, [0, 1, 4], 4),
    ],
)  # fmt: skip
def test_saved_epochs_by_hand_and_as_the_function(
    tmp_path, args, keras, period, save_best_only, threshold, saved, final
):
    (rec,) = sweep_json(write_csv(tmp_path, VAL, TEST), *args)
    assert rec["saved_epochs"] == saved
    assert rec["final_epoch"] == final
    r = model_checkpoint(VAL, save_best_only=save_best_only, mode="min",
                         initial_value_threshold=threshold, period=period, keras=keras)  # fmt: skip
    assert (list(r.saved), r.final_epoch) == (saved, final)
    assert rec["final_metrics"]["test_loss"] == TEST[final]
    assert rec["regret"] == pytest.approx(TEST[final] - min(TEST))
    assert rec["regret_metric"] == "test_loss"
    assert rec["checkpoint"] is None  # a CSV log has no checkpoints
    if keras == "2":
        assert list(rec) == list(DialectModelCheckpointRecord.__annotations__)
        assert rec["params"]["period"] == period
        assert (rec["dialect"], rec["dialect_versions"]) == ("tf-keras", VERSIONS["2"])
    else:
        assert list(rec) == list(ModelCheckpointRecord.__annotations__)
        assert "period" not in rec["params"] and "dialect" not in rec


def test_sweep_defaults_to_both_ways(tmp_path):
    recs = sweep_json(write_csv(tmp_path, VAL, TEST))
    assert [r["params"]["save_best_only"] for r in recs] == [False, True]


def test_keras3_saves_a_nan_first_epoch_and_nothing_after(tmp_path):
    path = write_csv(tmp_path, ["nan", 0.5, 0.4], [0.9, 0.6, 0.5])
    (k3,) = sweep_json(path, "--save-best-only", "yes")
    assert (k3["saved_epochs"], k3["final_epoch"]) == ([0], 0)
    assert k3["regret"] == pytest.approx(0.4)
    assert model_checkpoint([math.nan, 0.5, 0.4], save_best_only=True).saved == (0,)
    # Keras 2 starts best at +inf: NaN is never saved.
    (k2,) = sweep_json(path, "--save-best-only", "yes", "--dialect", "tf-keras")
    assert (k2["saved_epochs"], k2["final_epoch"], k2["regret"]) == ([1, 2], 2, 0.0)


def test_keras2_period_misses_an_improvement_in_between(tmp_path):
    val = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]
    test = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]
    path = write_csv(tmp_path, val, test)
    args = ("--save-best-only", "yes", "--dialect", "tf-keras", "--period", "3")
    (rec,) = sweep_json(path, *args)
    assert (rec["saved_epochs"], rec["final_epoch"]) == ([2], 2)  # epoch 1 never looked at
    assert rec["regret"] == pytest.approx(0.1)
    (every,) = sweep_json(path, "--save-best-only", "yes", "--dialect", "tf-keras")
    assert (every["saved_epochs"], every["final_epoch"], every["regret"]) == ([0, 1], 1, 0.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "3"], "Error: --period is for --dialect tf-keras, not keras."),
        (["--period", "3", "--dialect", "torch"],
         "Error: --period is for --dialect tf-keras, not torch."),
        (["--period", "0", "--dialect", "tf-keras"],
         "Error: --period: 0 is below the minimum 1 (in '0')."),
        (["--initial-value-threshold", "x"],
         "Error: --initial-value-threshold: 'x' in 'x' is not a number."),
        (["--dialect", "torch"],
         "Error: --policy model_checkpoint: the torch dialect has reduce_lr_on_plateau only."),
    ],
)  # fmt: skip
def test_errors_are_one_line(tmp_path, args, message):
    path = write_csv(tmp_path, VAL, TEST)
    result = invoke("sweep", path, "--policy", "model_checkpoint", *args)
    assert error_line(result) == message


def test_library_validates_the_options():
    with pytest.raises(GridError, match="--period is for --dialect tf-keras, not keras"):
        Grid.from_options(policies=("model_checkpoint",), period=(3,))
    g = Grid.from_options(policies=("model_checkpoint",), dialect="tf-keras", period=(1, 3))
    assert g.counts() == {"model_checkpoint": 4}
    with pytest.raises(GridError, match="--save-best-only: pick takes yes or no"):
        Grid.for_pick(policies=("model_checkpoint",), save_best_only=(False, True))
    assert Grid.for_pick(policies=("model_checkpoint",)).save_best_only == (False,)


def test_tf_keras_sweep_without_policy_is_unchanged():
    assert Grid.from_options(dialect="tf-keras").policies == (
        "early_stopping",
        "reduce_lr_on_plateau",
    )


def test_csv_has_the_record_fields(tmp_path):
    path = write_csv(tmp_path, VAL, TEST)
    result = invoke("sweep", path, "--policy", "model_checkpoint", "--save-best-only", "yes",
                    "--format", "csv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["policy"] == "model_checkpoint"
    assert row["params.save_best_only"] == "True"
    assert row["params.initial_value_threshold"] == ""
    assert (row["saved_epochs"], row["final_epoch"]) == ("0 1 4", "4")
    assert (row["final_metrics.test_loss"], row["regret"]) == ("0.45", "0.0")


def test_table_section(tmp_path):
    path = write_csv(tmp_path, VAL, TEST)
    result = invoke("sweep", path, "--policy", "model_checkpoint", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    i = lines.index("ModelCheckpoint (2 settings, best first)")
    assert lines[i + 1].split() == ["setting", "saved", "epochs", "kept", "epoch", "test_loss",
                                    "regret"]  # fmt: skip
    assert lines[i + 3].split() == ["save_best_only", "0,", "1,", "4", "4", "0.45", "0"]
    assert lines[i + 4].startswith("every epoch")
    assert "(6 in all)" in lines[i + 4]


def test_pick_hands_over_the_verified_checkpoint(tmp_path):
    rows = "".join(f"{e},1.0,{v},{t}\n" for e, (v, t) in enumerate(zip(VAL, TEST, strict=True)))
    run = make_run(tmp_path / "run", n=6, metrics="epoch,loss,val_loss,test_loss\n" + rows)
    manifest = json.loads((run / "run.json").read_text())
    del manifest["shadow"]  # the fixture's EarlyStopping decisions are not this curve's
    (run / "run.json").write_text(json.dumps(manifest))
    result = invoke("pick", run, "--policy", "model_checkpoint", "--save-best-only", "yes",
                    "--copy", tmp_path / "kept.keras")  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    assert "saves epochs 0, 1, 4; its file holds the last one saved." in result.stdout
    assert "you end with the weights of epoch 4" in result.stdout
    expected = run / "checkpoints" / "epoch-005.keras"
    assert f"checkpoint: {expected} (sha256 verified)" in result.stdout
    assert (tmp_path / "kept.keras").read_bytes() == b"weights of epoch 4"
    # Keras's default (save_best_only=False): the last epoch.
    result = invoke("pick", run, "--policy", "model_checkpoint")
    assert result.exit_code == 0, result.stderr
    assert "you end with the weights of epoch 5" in result.stdout
    # The record carries our checkpoint of that epoch.
    (rec,) = sweep_json(run, "--save-best-only", "yes")
    assert rec["checkpoint"].endswith("epoch-005.keras")


def test_pick_takes_one_save_best_only(tmp_path):
    path = write_csv(tmp_path, VAL, TEST)
    result = invoke("pick", path, "--policy", "model_checkpoint", "--save-best-only", "both")
    assert error_line(result) == "Error: --save-best-only: pick takes yes or no, not both."


def test_pick_when_nothing_was_saved(tmp_path):
    path = write_csv(tmp_path, VAL, TEST)
    result = invoke("pick", path, "--policy", "model_checkpoint", "--save-best-only", "yes",
                    "--initial-value-threshold", "0.1")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "saves epochs none" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "ModelCheckpoint saved no epoch, so there is no file to keep."
    )
