"""`replay sweep` / `replay pick` with --dialect: records match the dialect functions,
each dialect's trap (where it differs from Keras 3), and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import analysis.results.records as records_module
from replay.commands.cli import cli
from replay.engine.dialects import DIALECTS, hf, lightning, tf_keras, torch, ultralytics

FORMATS = Path(__file__).parent / "data" / "formats"
CURVE = [1.0, 0.8, 0.85, 0.7, 0.72, 0.71, 0.73, 0.69, 0.74, 0.75]


def write_csv(tmp_path: Path, values, name="val_loss", test=True) -> Path:
    path = tmp_path / "log.csv"
    header = f"epoch,loss,{name}" + (",test_loss" if test else "")
    rows = [f"{e},1.0,{v}" + (f",{v}" if test else "") for e, v in enumerate(values)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sweep_json(path, *args):
    result = invoke("sweep", path, "--format", "json", *args)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout), result.stderr


def error_line(result) -> str:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    return lines[-1]


# (dialect, options, the function's stop epoch for a record's params)
STOPS = [
    ("tf-keras", ["--dialect-version", "2.11"],
     lambda p: tf_keras.early_stopping(CURVE, patience=p["patience"], min_delta=p["min_delta"],
                                       restore_best_weights=p["restore_best_weights"],
                                       version="2.11")),
    ("tf-keras", [],
     lambda p: tf_keras.early_stopping(CURVE, patience=p["patience"], min_delta=p["min_delta"],
                                       restore_best_weights=p["restore_best_weights"])),
    ("lightning", ["--stopping-threshold", "none,0.7"],
     lambda p: lightning.early_stopping(CURVE, patience=p["patience"], min_delta=p["min_delta"],
                                        stopping_threshold=p["stopping_threshold"])),
    ("hf", ["--early-stopping-threshold", "0,0.05", "--dialect-version", "legacy"],
     lambda p: hf.early_stopping(CURVE, early_stopping_patience=p["patience"],
                                 early_stopping_threshold=p["min_delta"],
                                 load_best_model_at_end=p["restore_best_weights"],
                                 metric_for_best_model="loss", era="legacy")),
]  # fmt: skip


@pytest.mark.parametrize(("dialect", "extra", "replay"), STOPS)
def test_sweep_matches_the_dialect_functions(tmp_path, dialect, extra, replay):
    records, _ = sweep_json(write_csv(tmp_path, CURVE), "--dialect", dialect,
                            "--policy", "early_stopping", "--patience", "0..4", *extra)  # fmt: skip
    assert records and {r["policy"] for r in records} == {"early_stopping"}
    for r in records:
        expected = replay(r["params"])
        assert (r["stopped_epoch"], r["final_epoch"], r["best_epoch"]) == (
            expected.stopped_epoch,
            expected.final_epoch,
            expected.best_epoch,
        ), r["params"]
        assert list(r) == list(records_module.DialectEarlyStoppingRecord.__annotations__)
        assert r["dialect"] == dialect
        assert r["dialect_versions"] == DIALECTS[dialect]["versions"]


def test_ultralytics_matches_its_function(tmp_path):
    curve = [0.2, 0.5, 0.5, 0.4, 0.6, 0.6, 0.55]
    path = write_csv(tmp_path, curve, name="val_accuracy", test=False)
    for era in ultralytics.ERAS:
        records, _ = sweep_json(path, "--dialect", "ultralytics", "--monitor", "val_accuracy",
                                "--patience", "0..4", "--dialect-version", era)  # fmt: skip
        for r in records:
            expected = ultralytics.early_stopping(curve, patience=r["params"]["patience"], era=era)
            assert (r["stopped_epoch"], r["final_epoch"]) == (
                expected.stopped_epoch,
                expected.final_epoch,
            )
            assert r["params"]["era"] == era


def test_torch_plateau_matches_its_function(tmp_path):
    records, _ = sweep_json(write_csv(tmp_path, CURVE), "--dialect", "torch", "--patience",
                            "0..3", "--threshold-mode", "rel,abs", "--threshold", "0,0.05",
                            "--initial-lr", "0.1")  # fmt: skip
    assert len(records) == 4 * 2 * 2 * 3
    for r in records:
        p = r["params"]
        expected = torch.reduce_lr_on_plateau(
            CURVE, initial_lr=0.1, patience=p["patience"], factor=p["factor"],
            threshold=p["min_delta"], threshold_mode=p["threshold_mode"])  # fmt: skip
        assert r["reductions"] == list(expected.reductions)
        assert r["lr"] == list(expected.lr)
        assert r["dialect"] == "torch"
        assert list(r) == list(records_module.DialectPlateauRecord.__annotations__)


# Traps: one curve each, where the dialect's callback and Keras 3's part ways.
def test_torch_trap_patience_counts_past_the_first_bad_epoch(tmp_path):
    """torch patience 1 over [1.0, 1.1, 1.2]: the cut comes after epoch 2 (bad epochs
    must exceed patience); Keras 3 cuts after epoch 1."""
    path = write_csv(tmp_path, [1.0, 1.1, 1.2])
    common = ["--policy", "reduce_lr_on_plateau", "--patience", "1", "--factor", "0.5",
              "--initial-lr", "0.1"]  # fmt: skip
    (ours,), _ = sweep_json(path, "--dialect", "torch", *common)
    (keras,), _ = sweep_json(path, *common[:-2], "--initial-lr", "0.1", "--min-delta", "0.0001")
    assert ours["reductions"] == [2] and keras["reductions"][0] == 1
    assert "dialect" not in keras and "dialect_versions" not in keras


def test_tf_keras_trap_improvement_stops_before_2_12(tmp_path):
    """tf.keras 2.11, patience 0, a curve that improves every epoch: it stops after
    epoch 1 (the check follows an improvement); from 2.12 (and Keras 3) it never stops."""
    path = write_csv(tmp_path, [0.5, 0.4, 0.3])
    args = ["--dialect", "tf-keras", "--policy", "early_stopping", "--patience", "0",
            "--min-delta", "0",
            "--restore-best-weights", "no"]  # fmt: skip
    (old,), _ = sweep_json(path, *args, "--dialect-version", "2.11")
    (new,), _ = sweep_json(path, *args)
    assert old["stopped_epoch"] == 1 and new["stopped_epoch"] is None
    assert old["params"]["version"] == "2.11" and new["params"]["version"] == "2.21"


def test_lightning_trap_stopping_threshold(tmp_path):
    """Lightning stops once val_loss < stopping_threshold (epoch 2 here); Keras 3 with
    the same patience never stops on an improving curve."""
    path = write_csv(tmp_path, [1.2, 1.1, 1.0, 0.9])
    (r,), _ = sweep_json(path, "--dialect", "lightning", "--patience", "3", "--min-delta", "0",
                         "--stopping-threshold", "1.05")  # fmt: skip
    (k,), _ = sweep_json(path, "--policy", "early_stopping", "--patience", "3", "--min-delta",
                         "0", "--restore-best-weights", "no")  # fmt: skip
    assert r["stopped_epoch"] == 2 and k["stopped_epoch"] is None


def test_hf_trap_threshold_against_the_moving_best(tmp_path):
    """HF compares with the Trainer's best_metric, which moves on any improvement:
    threshold 0.05 over [1.0, 0.97, 0.94, 0.91] stops at epoch 2 (patience 2);
    Keras's min_delta 0.05 counts 0.94 as an improvement on 1.0 and never stops."""
    path = write_csv(tmp_path, [1.0, 0.97, 0.94, 0.91])
    (r,), _ = sweep_json(path, "--dialect", "hf", "--patience", "2", "--restore-best-weights",
                         "no", "--early-stopping-threshold", "0.05")  # fmt: skip
    (k,), _ = sweep_json(path, "--policy", "early_stopping", "--patience", "2", "--min-delta",
                         "0.05", "--restore-best-weights", "no")  # fmt: skip
    assert r["stopped_epoch"] == 2 and k["stopped_epoch"] is None


def test_ultralytics_trap_ties(tmp_path):
    """A flat fitness: the 'strict' era (8.3.80+) stops after patience 1; 'ties' never."""
    path = write_csv(tmp_path, [0.5, 0.5, 0.5], name="val_accuracy", test=False)
    args = ["--dialect", "ultralytics", "--monitor", "val_accuracy", "--patience", "1"]
    (strict,), _ = sweep_json(path, *args)
    (ties,), _ = sweep_json(path, *args, "--dialect-version", "ties")
    assert strict["stopped_epoch"] == 1 and ties["stopped_epoch"] is None


def test_framework_logs_default_to_their_dialect():
    records, stderr = sweep_json(FORMATS / "ultralytics" / "classify_8.2", "--patience", "2")
    assert {r["dialect"] for r in records} == {"ultralytics"}
    assert "note: ultralytics logs are replayed in the ultralytics dialect" in stderr
    records, _ = sweep_json(FORMATS / "lightning" / "lightning_logs", "--patience", "3")
    assert {(r["dialect"], r["policy"]) for r in records} == {("lightning", "early_stopping")}
    records, _ = sweep_json(FORMATS / "lightning" / "lightning_logs", "--patience", "3",
                            "--dialect", "keras")  # fmt: skip
    assert not any("dialect" in r for r in records)


def test_framework_default_falls_back_to_keras_for_what_it_lacks():
    path = FORMATS / "lightning" / "lightning_logs"
    records, stderr = sweep_json(path, "--patience", "3", "--baseline", "0.5")
    assert not any("dialect" in r for r in records)
    assert "--baseline: the lightning dialect has no such parameter" in stderr


def test_table_names_the_dialect(tmp_path):
    result = invoke("sweep", write_csv(tmp_path, CURVE), "--dialect", "torch", "--patience", "1",
                    "--no-charts", "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ReduceLROnPlateau (torch dialect, 3 settings, exact ones first)" in result.stdout


ERRORS = [
    (["--dialect", "torch", "--policy", "early_stopping"],
     "Error: --policy early_stopping: the torch dialect has reduce_lr_on_plateau only."),
    (["--dialect", "lightning", "--policy", "reduce_lr_on_plateau"],
     "Error: --policy reduce_lr_on_plateau: the lightning dialect has early_stopping only."),
    (["--dialect", "torch", "--min-delta", "0.1"],
     "Error: --min-delta: the torch dialect has no such parameter; use --threshold."),
    (["--dialect", "hf", "--min-delta", "0.1"],
     "Error: --min-delta: the hf dialect has no such parameter; use --early-stopping-threshold."),
    (["--dialect", "lightning", "--baseline", "1"],
     "Error: --baseline: the lightning dialect has no such parameter."),
    (["--dialect", "ultralytics", "--restore-best-weights", "no"],
     "Error: --restore-best-weights: the ultralytics dialect has no such parameter."),
    (["--eps", "0.1"], "Error: --eps is for --dialect torch, not keras."),
    (["--dialect", "hf", "--check-finite"], "Error: --check-finite is for --dialect lightning, "
     "not hf."),
    (["--dialect", "hf", "--dialect-version", "5"],
     "Error: --dialect-version: the hf dialect has 4.47+, legacy but got '5'."),
    (["--dialect", "torch", "--dialect-version", "1"],
     "Error: --dialect-version is for --dialect tf-keras/hf/ultralytics, not torch."),
    (["--dialect", "tf-keras", "--dialect-version", "2.5"],
     "Error: --dialect-version: the tf_keras dialect covers tf.keras 2.6-2.21 but got version "
     "'2.5'."),
    (["--dialect", "ultralytics"], "Error: the ultralytics dialect's EarlyStopping maximizes "
     "fitness, so it takes a maximized monitor (mode max)."),
    (["--dialect", "torch", "--threshold-mode", "log"],
     "Error: --threshold-mode: 'log' is not one of rel, abs."),
]  # fmt: skip


@pytest.mark.parametrize(("args", "line"), ERRORS)
def test_errors_are_one_line(tmp_path, args, line):
    result = invoke("sweep", write_csv(tmp_path, CURVE), "--no-charts", "--out",
                    tmp_path / "out", *args)  # fmt: skip
    assert error_line(result) == line
    assert "Traceback" not in result.output


def test_pick_in_a_dialect(tmp_path):
    path = write_csv(tmp_path, [1.0, 1.1, 1.2])
    result = invoke("pick", path, "--dialect", "torch", "--patience", "1", "--initial-lr", "0.1")
    assert result.exit_code == 0, result.output
    assert "reduce_lr_on_plateau (torch dialect)" in result.stdout
    assert "cuts after epochs 2, exact to the end." in result.stdout
    result = invoke("pick", path, "--dialect", "hf", "--patience", "1")
    assert result.exit_code == 0, result.output
    assert "early_stopping (hf dialect)" in result.stdout
    assert "you end with the weights of epoch 1" in result.stdout
    result = invoke("pick", path, "--dialect", "tf-keras", "--patience", "1")
    assert "early_stopping (tf-keras dialect)" in result.stdout
    result = invoke("pick", path, "--dialect", "torch", "--threshold-mode", "rel,abs")
    assert error_line(result).startswith("Error: --threshold-mode: pick takes one value")


@pytest.mark.parametrize(("dialect", "expected"), [("lightning", " (lightning dialect)"),
                                                   ("keras", "")])  # fmt: skip
def test_chart_titles_name_the_dialect(tmp_path, dialect, expected):
    """A chart of settings replayed in another framework's rules says whose."""
    from analysis.formats import load_logs
    from replay.output.charting import chart_jobs
    from replay.sweeping.sweep import Grid, sweep

    logs = load_logs(str(Path(__file__).parent / "data" / "formats" / "lightning" /
                         "val_check_interval"))  # fmt: skip
    grid = Grid.from_options(patience=(1, 2, 3), dialect=dialect)
    titles = {path.name: kwargs["title"]
              for _, _, kwargs, path in chart_jobs(sweep(logs, grid), logs, tmp_path)}  # fmt: skip
    assert titles["curves.png"] == f"version_0: where each EarlyStopping{expected} setting stops"
    assert titles["early_stopping.png"] == f"version_0: EarlyStopping{expected} grid"
