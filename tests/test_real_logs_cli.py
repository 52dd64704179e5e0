"""Issue 8 from the command line: logs people already have, read for what they are.

Each test is a situation seen on real logs: several trainings in one CSVLogger file,
two files called ``training.log``, no learning rate, Keras 2 names, a missing monitor.
"""

import csv
import io
import json
from pathlib import Path

from conftest import VAL, error_line, run


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def keras_rows(values: list[float], start: int = 0) -> list[str]:
    return [f"{e + start},{1.0 / (e + 1)!r},{v!r}" for e, v in enumerate(values)]


def csv_records(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))


def test_the_main_command_answers_a_log_without_learning_rate(tmp_path):
    """The default grid (EarlyStopping and ReduceLROnPlateau) exits 0 on a plain
    CSVLogger file: the LR half runs on the relative scale instead of stopping the sweep."""
    log = write(tmp_path / "training.log", "epoch,loss,val_loss", keras_rows(VAL))
    out = tmp_path / "out"
    result = run("sweep", log, "--patience", "3..10", "--out", out, "--no-charts")
    assert result.exit_code == 0, result.output
    assert "EarlyStopping (48 settings, best first)" in result.stdout
    # patience 3: best 0.34 at epoch 4, no improvement at 5, 6, 7 -> cut after epoch 7.
    records = json.loads((out / "results.json").read_text())
    (r,) = [r for r in records if r["policy"] == "reduce_lr_on_plateau"
            and r["params"]["factor"] == 0.5 and r["params"]["patience"] == 3]  # fmt: skip
    assert (r["reductions"], r["final_lr"], r["counterfactual_from"]) == ([7], 0.5, 8)
    # patience 8 never cuts within the 10 epochs: the run's own (constant) schedule.
    row = next(ln for ln in result.stdout.splitlines() if ln.startswith("factor=0.5 patience=8 "))
    assert row.split()[:6] == ["factor=0.5", "patience=8", "none", "1x", "initial", "exact"]
    records = json.loads((out / "results.json").read_text())
    lr = [r for r in records if r["policy"] == "reduce_lr_on_plateau"]
    assert len(lr) == 24 and {r["lr_scale"] for r in lr} == {"relative"}
    assert (
        "the log has no learning rate; ReduceLROnPlateau schedules are shown as "
        "multiples of the initial rate" in result.stderr
    )


def test_several_trainings_in_one_file_are_swept_as_several_runs(tmp_path):
    """A 10-epoch training, then a 4-epoch restart (CSVLogger(append=True) over two fits)."""
    rows = keras_rows(VAL) + keras_rows([0.9, 0.8, 0.85, 0.7])
    log = write(tmp_path / "training.log", "epoch,loss,val_loss", rows)
    out = tmp_path / "out"
    result = run("sweep", log, "--patience", "1", "--policy", "early_stopping",
                 "--min-delta", "0", "--out", out, "--no-charts")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "== training#1: 10 epochs, monitor val_loss ==" in result.stdout
    assert "== training#2: 4 epochs, monitor val_loss ==" in result.stdout
    by_run = {(r["run"], r["params.restore_best_weights"]): r for r in csv_records(out)}
    # patience 1: the first training stops at epoch 3 (0.36 > 0.35), keeping epoch 2;
    # the second at epoch 2 (0.85 > 0.8), keeping epoch 1: never a spliced curve.
    assert by_run[("training#1", "True")]["stopped_epoch"] == "3"
    assert by_run[("training#1", "True")]["final_epoch"] == "2"
    assert by_run[("training#2", "True")]["stopped_epoch"] == "2"
    assert by_run[("training#2", "True")]["final_epoch"] == "1"
    assert "holds 2 trainings" in result.stderr

    one = run("sweep", f"{log}#2", "--patience", "1", "--policy", "early_stopping",
              "--format", "json")  # fmt: skip
    assert one.exit_code == 0, one.output
    assert {r["run"] for r in json.loads(one.stdout)} == {"training#2"}
    assert {r["source"] for r in json.loads(one.stdout)} == {f"{log}#2"}


def test_pick_needs_one_training_and_show_covers_each(tmp_path):
    log = write(tmp_path / "log.csv", "epoch,loss,val_loss",
                keras_rows(VAL[:4]) + keras_rows([0.9, 0.8]))  # fmt: skip
    result = run("pick", log, "--patience", "1")
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {log}: holds 2 trainings; name one as {log}#1 ... {log}#2"
    )
    result = run("pick", f"{log}#2", "--patience", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("log#2: early_stopping patience=1")
    shown = run("show", log)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count("epochs: ") == 2
    assert "log#1  (csv: " in shown.stdout and "log#2  (csv: " in shown.stdout


def test_two_logs_with_the_same_name_stay_apart(tmp_path):
    a = write(tmp_path / "exp-a" / "training.log", "epoch,loss,val_loss", keras_rows(VAL))
    b = write(tmp_path / "exp-b" / "training.log", "epoch,loss,val_loss", keras_rows(VAL[:5]))
    out = tmp_path / "out"
    result = run("sweep", a, b, "--patience", "1", "--policy", "early_stopping",
                 "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "== exp-a/training: 10 epochs, monitor val_loss ==" in result.stdout
    assert "== exp-b/training: 5 epochs, monitor val_loss ==" in result.stdout
    runs = {r["run"] for r in csv_records(out)}
    assert runs == {"exp-a/training", "exp-b/training"}


def test_missing_default_monitor_names_what_the_log_has(tmp_path):
    log = write(tmp_path / "t.csv", "epoch,loss,accuracy", ["0,1.0,0.5", "1,0.9,0.6"])
    result = run("sweep", log)
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {log}: no metric 'val_loss' (the log has: loss, accuracy): it logged no "
        "validation metrics; did you mean 'loss' (--monitor loss)?"
    )
    log2 = write(tmp_path / "u.csv", "epoch,loss,val_los", ["0,1.0,0.5", "1,0.9,0.6"])
    result = run("sweep", log2)
    assert error_line(result) == (
        f"Error: {log2}: no metric 'val_loss' (the log has: loss, val_los); did you mean 'val_los'?"
    )


def test_keras2_names_are_read_for_what_they_are(tmp_path):
    """A tf.keras-era file: `acc`/`val_acc`, and `lr` showing real ReduceLROnPlateau cuts
    (factor 0.5, patience 1 over VAL: cuts after epochs 3, 5, 6, ...)."""
    lr = [0.01] * 4 + [0.005] * 2 + [0.0025, 0.00125, 0.000625, 0.0003125]
    rows = [f"{e},0.5,0.3,0.9,{VAL[e]!r},{lr[e]!r}" for e in range(10)]
    log = write(tmp_path / "training.log", "epoch,acc,loss,val_acc,val_loss,lr", rows)
    result = run("sweep", log, "--policy", "reduce_lr_on_plateau", "--factor", "0.5",
                 "--patience", "1", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert record["counterfactual_from"] is None
    assert record["reductions"] == [3, 5, 6, 7, 8, 9]
    result = run("sweep", log, "--monitor", "val_accuracy", "--policy", "early_stopping",
                 "--patience", "2", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {r["params"]["mode"] for r in json.loads(result.stdout)} == {"max"}
    assert "--monitor val_accuracy reads its column val_acc" in result.stderr
    shown = run("show", log)
    assert "learning-rate changes:" in shown.stdout
    assert "epoch 4: 0.01 -> 0.005" in shown.stdout


def test_show_uses_the_frameworks_own_directions():
    """Ultralytics's `fitness` and `metrics/*` are maximized by its convention (not by
    Keras's name table): `replay show` gives them a best epoch."""
    path = Path(__file__).parent / "data" / "formats" / "ultralytics" / "classify_8.2"
    shown = run("show", path)
    assert shown.exit_code == 0, shown.output
    row = next(ln for ln in shown.stdout.splitlines() if ln.startswith("fitness "))
    assert row.split() == ["fitness", "6", "0.9", "0.821875"]
