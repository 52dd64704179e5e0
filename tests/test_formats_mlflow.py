"""The MLflow file-store reader (analysis/formats/mlflow.py).

Fixtures under tests/data/formats/mlflow/mlruns/ were written by the real MLflow file
store (mlflow-skinny 3.17.2; see make_fixtures.py and mlflow/VERSION): a Keras-autolog-like
run (``step=epoch``, ``validation_*`` at step 0 as ``on_test_end`` logs them, one value
logged again at a step), a deleted run, and a run shaped as Lightning's ``MLFlowLogger``
logs (global steps, an ``epoch`` metric). Where mlflow is installed, the last test writes
them again with it and checks that the reader sees the same.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import installed

from analysis.errors import BadLog, LogNotFound
from analysis.formats import detect, load_logs, load_run

DATA = Path(__file__).parent / "data" / "formats" / "mlflow" / "mlruns"


def run_folder(root: Path, name: str) -> Path:
    """The run folder whose tags/mlflow.runName is ``name`` (run ids are random)."""
    return next(p.parent.parent for p in root.glob("*/*/tags/mlflow.runName")
                if p.read_text() == name)  # fmt: skip


def test_mlruns_root_reads_every_live_run():
    runs = load_logs(DATA)
    assert sorted(r.name for r in runs) == ["lit", "mlp"]
    assert all(r.format == "mlflow" for r in runs)
    assert any("skipped 1 deleted run(s)" in w for r in runs for w in r.warnings)
    assert detect(DATA).name == "mlflow"


def test_keras_autolog_run():
    run = load_run(run_folder(DATA, "mlp"))
    assert run.n_epochs == 14
    assert list(run.metrics.columns) == ["accuracy", "learning_rate", "loss", "val_accuracy",
                                         "val_loss"]  # fmt: skip
    assert run.values("val_loss")[0] == 0.41  # logged again later at step 0: last wins
    assert run.values("learning_rate") == [0.001] * 10 + [0.0005] * 4
    text = "\n".join(run.warnings)
    assert "left out stopped_epoch, validation_loss: each logged at one step only" in text
    assert "several values at one step for val_loss (1); the last by timestamp wins" in text


def test_lightning_mlflowlogger_run():
    run = load_run(run_folder(DATA, "lit"))
    assert run.n_epochs == 8 and list(run.metrics.columns) == ["loss", "val_loss"]
    assert run.values("loss")[1] == 0.25  # train_loss_epoch of epoch 1
    text = "\n".join(run.warnings)
    assert "left out train_loss_step (up to 4)" in text and "train_loss_epoch -> loss" in text
    assert "several values" not in text  # epoch logged twice at one step with one value


def test_experiment_folder_and_deleted_run():
    deleted = run_folder(DATA, "deleted")
    exp = deleted.parent
    assert [r.name for r in load_logs(exp)] == ["mlp"]
    run = load_run(deleted)  # named directly: read, with a warning
    assert any("the run is deleted" in w for w in run.warnings)


def make_run(tmp_path: Path, metrics: dict[str, str], meta: str = "run_name: r\n") -> Path:
    run = tmp_path / "mlruns" / "1" / "abc123"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text(meta)
    (run.parent / "meta.yaml").write_text("experiment_id: '1'\nname: e\n")
    for key, text in metrics.items():
        (run / "metrics" / key).parent.mkdir(parents=True, exist_ok=True)
        (run / "metrics" / key).write_text(text)
    return run


def test_steps_far_apart_are_rows(tmp_path):
    run = load_run(
        make_run(
            tmp_path,
            {
                "eval_loss": "1 0.5 500\n2 0.4 1000\n3 0.3 1500\n",
                "train/loss": "1 0.9 500\n3 0.7 1500\n",
            },
        )
    )
    assert run.n_epochs == 3 and run.values("loss") == [0.9, None, 0.7]
    assert run.values("val_loss") == [0.5, 0.4, 0.3]  # Hugging Face's eval_loss
    assert any("'epoch' k means the k-th logged step" in w for w in run.warnings)
    assert run.name == "r"


def test_every_value_at_step_zero_is_read_in_time_order(tmp_path):
    run = load_run(
        make_run(
            tmp_path, {"val_loss": "3 0.3 0\n1 0.5 0\n2 0.4 0\n", "loss": "1 0.9 0\n2 0.8 0\n"}
        )
    )
    assert run.values("val_loss") == [0.5, 0.4, 0.3] and run.values("loss") == [0.9, 0.8, None]
    assert any("log_metric without step=" in w for w in run.warnings)


def test_gaps_and_old_and_dataset_lines(tmp_path):
    run = load_run(make_run(tmp_path, {"val_loss": "1 0.5 0\n2 nan 1\n3 0.3 3 ds abcd\n"}))
    assert run.values("val_loss")[:2] == [0.5, pytest.approx(float("nan"), nan_ok=True)]
    assert run.values("val_loss")[2:] == [None, 0.3]
    assert any("epoch 2 missing" in w for w in run.warnings)


def test_epoch_key_off_the_metric_steps(tmp_path):
    # Found by the fuzzer (IndexError): an 'epoch' key at none of the other keys' steps.
    run = load_run(make_run(tmp_path, {"val_loss": "1 0.5 0\n2 0.4 1\n", "epoch": "1 0 7\n"}))
    assert run.values("val_loss") == [0.5, 0.4]
    assert any("left out the metric 'epoch'" in w for w in run.warnings)


@pytest.mark.parametrize(("text", "message"), [
    ("1 abc 0\n", "line 1 is not 'timestamp value step'"),
    ("1 0.5 0 extra\n", "line 1 is not 'timestamp value step'"),
    ("x 0.5 0\n", "line 1 is not 'timestamp value step'"),
    ("", "no metric values logged"),
])  # fmt: skip
def test_refusals(tmp_path, text, message):
    with pytest.raises(BadLog) as info:
        load_run(make_run(tmp_path, {"val_loss": text}))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_not_a_store(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(LogNotFound):
        load_run(tmp_path)


@pytest.mark.skipif(
    not installed("mlflow"),
    reason="mlflow is not installed (see make_fixtures.py)",
)
def test_the_real_writer_writes_the_fixtures(tmp_path):
    shutil.copy(DATA.parent.parent / "make_fixtures.py", tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "make_fixtures.py"), "mlflow"], check=True)
    again = {r.name: r for r in load_logs(tmp_path / "mlflow" / "mlruns")}
    for run in load_logs(DATA):
        assert again[run.name].metrics.equals(run.metrics)
        assert again[run.name].not_logged.equals(run.not_logged)
