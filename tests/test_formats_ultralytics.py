"""The Ultralytics results.csv reader (analysis/formats/ultralytics.py).

Fixtures under tests/data/formats/ultralytics/ are written by make_fixtures.py with copies
of the writers (Ultralytics needs PyTorch): ``BaseTrainer.save_metrics`` of ultralytics
8.0.100 (``%23s`` header, 0-based epochs), 8.2.0 (``%23s``, 1-based) and 8.4.190 (plain
header with ``time``, 1-based), from ``ultralytics/engine/trainer.py`` of those wheels, and
YOLOv5's ``Loggers.on_fit_epoch_end`` (``utils/loggers/__init__.py``: ``%20s``,
0-based, ``x/lr0..2``) with the repeat of the last epoch that ``train.py`` writes on COCO.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run

from analysis.errors import BadLog
from analysis.formats import detect, load_run, ultralytics

DATA = Path(__file__).parent / "data" / "formats" / "ultralytics"


@pytest.mark.parametrize(("folder", "epochs", "first_fitness", "older"), [
    ("detect_8.0", 15, 0.1 * 0.54756 + 0.9 * 0.352, None),
    ("classify_8.2", 12, 0.5 * 0.6 + 0.5 * 0.975, None),
    ("segment_8.4", 14, 0.303061 + 0.303061, "8.3.9-8.3.197"),
    ("yolov5_coco", 12, 0.1 * 0.57847 + 0.9 * 0.37188, None),
])  # fmt: skip
def test_fixtures(folder, epochs, first_fitness, older):
    run = load_run(DATA / folder)
    assert run.format == "ultralytics" and run.name == folder
    assert run.n_epochs == epochs  # 1-based files: no missing epoch 0, no extra epoch
    assert not any("missing" in w for w in run.warnings)
    assert run.values("fitness")[0] == pytest.approx(first_fitness)
    assert run.default_monitor == "fitness" and run.directions["fitness"] == "max"
    assert "time" not in run.metrics.columns and "epoch" not in run.metrics.columns
    assert run.lr_column == "learning_rate"
    text = "\n".join(run.warnings)
    assert "derived fitness" in text and "default monitor" in text
    assert (older in text) if older else "8.3.197" not in text
    for column in run.metrics.columns:
        if column.startswith(("train/", "val/")):
            assert run.directions[column] == "min"
        elif column.startswith("metrics/"):
            assert run.directions[column] == "max"


def test_padding_and_epochs():
    run = load_run(DATA / "detect_8.0" / "results.csv")
    raw = (DATA / "detect_8.0" / "results.csv").read_text().splitlines()
    assert raw[0].startswith("                  epoch,")  # %23s
    assert raw[1].strip().startswith("0,")
    assert run.values("metrics/mAP50-95(B)")[0] == 0.352
    seg = load_run(DATA / "segment_8.4")
    assert (DATA / "segment_8.4" / "results.csv").read_text().startswith("epoch,time,")
    assert seg.n_epochs == 14 and seg.values("train/box_loss")[0] == 1.5  # the row of epoch 1


def test_yolov5_repeat_is_left_out():
    run = load_run(DATA / "yolov5_coco")
    assert run.n_epochs == 12
    assert run.values("metrics/mAP_0.5:0.95")[-1] != 0.45  # best.pt's values are not epoch 11
    assert any("repeat of epoch 11" in w for w in run.warnings)
    assert list(run.metrics.columns)[-4:] == ["x/lr0", "learning_rate", "x/lr2", "fitness"]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "results.csv"
    p.write_text(text)
    return p


def test_fitness_nan_is_zero_and_absent_is_absent(tmp_path):
    p = write(tmp_path, "epoch,time,metrics/mAP50(B),metrics/mAP50-95(B)\n1,1,nan,0.5\n"
                        "2,2,0.5,\n3,3,0.6,0.6\n")  # fmt: skip
    run = load_run(p)
    assert run.values("fitness") == [0.5, None, 0.6]  # np.nan_to_num, as ultralytics does


def test_depth_errors_are_minimized(tmp_path):
    p = write(tmp_path, "epoch,time,train/loss,metrics/delta1,metrics/rmse,val/loss\n"
                        "1,1,1.0,0.5,0.3,1.1\n2,2,0.9,0.6,0.2,1.0\n")  # fmt: skip
    run = load_run(p)
    assert run.directions["metrics/rmse"] == "min" and run.values("fitness") == [0.5, 0.6]


def test_columns_without_fitness(tmp_path):
    run = load_run(write(tmp_path, "epoch,train/loss,val/loss\n1,1.0,1.1\n2,0.9,1.0\n"))
    assert not run.has("fitness") and run.default_monitor == "val_loss"


def test_keras_csv_is_not_ultralytics(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("epoch,loss,val_loss\n0,1.0,1.1\n")
    assert detect(p).name == "csv"


def test_run_folder_with_event_file_is_read_from_results_csv(tmp_path):
    run_dir = tmp_path / "train"
    run_dir.mkdir()
    (run_dir / "results.csv").write_text((DATA / "detect_8.0" / "results.csv").read_text())
    (run_dir / "events.out.tfevents.1.host.1.0").write_bytes(b"")
    assert detect(run_dir).name == "ultralytics"


@pytest.mark.parametrize(("text", "message"), [
    ("epoch,train/loss\n1,abc\n", "line 2, column 'train/loss': 'abc' is not a number"),
    ("epoch,train/loss\n,1.0\n", "line 2 has no epoch"),
    ("epoch,train/loss\n1.5,1.0\n", "not a whole number"),
    ("epoch,train/loss\n", "has no epochs"),
    # Found by the fuzzer: an IndexError, a crash on an empty header.
    ("epoch,train/loss\n1,0.5\n0,0.4\n", "line 3 has epoch 0, but the file starts at epoch 1"),
    ('"', "no header line"),
])  # fmt: skip
def test_refusals(tmp_path, text, message):
    p = write(tmp_path, text)
    with pytest.raises(BadLog) as info:
        ultralytics.load(p, str(p))  # the reader itself: '"' is no layout detection knows
    assert message in str(info.value) and "\n" not in str(info.value)


def test_nan_cells_are_values(tmp_path):
    run = load_run(write(tmp_path, "epoch,train/loss\n1,nan\n2,inf\n"))
    assert math.isnan(run.values("train/loss")[0]) and run.values("train/loss")[1] == math.inf


@pytest.mark.parametrize("monitor", ["fitness", "metrics/mAP50-95(B)", "val/box_loss"])
def test_regret_is_measured_on_the_validation_metric_itself(monitor):
    """Ultralytics logs have no test split: like val_loss in a Keras log without test_
    metrics, a validation column (metrics/*, val/*, fitness) is its own held-out measure."""
    log = load_run(DATA / "detect_8.0")
    assert {"fitness", "metrics/mAP50-95(B)", "val/box_loss"} <= log.validation
    assert "train/box_loss" not in log.validation
    result = run("sweep", DATA / "detect_8.0", "--monitor", monitor, "--patience", "1..3",
                 "--policy", "early_stopping",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    values = log.values(monitor)
    best = (max if log.directions[monitor] == "max" else min)(values)
    assert {r["regret_metric"] for r in records} == {monitor}
    for record in records:
        assert record["regret"] == pytest.approx(abs(best - values[record["final_epoch"]]))
    assert all(r["regret"] is not None for r in records)
