"""TensorBoard logs written by PyTorch tools (analysis/formats/torch_tb.py, issue 20).

Fixtures are written at test time by tensorboardX's ``SummaryWriter`` (the writer
``torch.utils.tensorboard`` was forked from; same ``add_scalar(tag, value, step)``
events), with the tags and steps each tool's source writes; the source file is named in
each test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.formats import detect, load_logs, load_run
from tests.test_formats_lightning import _lightning_fit, _train_epoch, _val

tensorboardX = pytest.importorskip("tensorboardX")


def _writer(d: Path, **kw):
    d.mkdir(parents=True, exist_ok=True)
    return tensorboardX.SummaryWriter(str(d), **kw)


def _write(d: Path, points, wall0=1000.0, suffix=""):
    """points: [(tag, value, step)] in the order the tool writes them, each as the
    ``Summary.Value(tag, simple_value)`` that ``torch.utils.tensorboard``'s
    ``add_scalar`` writes (torch/utils/tensorboard/summary.py, ``scalar``): the tag as
    given (tensorboardX's own add_scalar would rename ``mAP50(B)`` to ``mAP50_B_``)."""
    from tensorboardX.proto.summary_pb2 import Summary

    w = _writer(d, filename_suffix=suffix)
    fw = w._get_file_writer()
    for i, (tag, value, step) in enumerate(points):
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
        fw.add_summary(summary, step, wall0 + i)
    w.close()
    return d


# --------------------------------------------------------------------------- Lightning


def _lightning_points(epochs=5, batches=4, test=True, lr=True):
    # src/lightning/fabric/loggers/tensorboard.py (TensorBoardLogger.log_metrics): one
    # add_scalar per key of the row LoggerConnector.log_metrics passes, epoch included
    # (src/lightning/pytorch/trainer/connectors/logger_connector/logger_connector.py);
    # log_hyperparams writes hp_metric = -1 at step 0; LearningRateMonitor
    # (src/lightning/pytorch/callbacks/lr_monitor.py) logs lr-Adam at each epoch start
    # without an epoch.
    def on_step(e, b):
        return {"train_loss_step": 1.0 - 0.01 * (e * batches + b)}

    def on_epoch(e):
        return {"train_loss_epoch": _train_epoch(e)["train_loss"]}

    rows, stepped = _lightning_fit(batches, epochs, 2, on_step=on_step, val=_val,
                                   on_epoch=on_epoch)  # fmt: skip
    points = [("hp_metric", -1.0, 0)]
    for r in rows:
        step = r["step"]
        for k, v in r.items():
            if k != "step":
                points.append((k, float(v), step))
    if lr:
        for e in range(epochs):
            points.append(("lr-Adam", 0.001 if e < 3 else 0.0005, e * batches))
    if test:
        points += [("test_loss", 0.61, stepped), ("epoch", float(epochs), stepped)]
    return points


def test_lightning_tensorboard_logger(tmp_path):
    d = _write(tmp_path / "lightning_logs" / "version_0", _lightning_points())
    (d / "hparams.yaml").write_text("lr: 0.001\n")
    run = load_run(d)
    assert detect(d).name == "torch_tensorboard"
    assert run.format == "lightning" and run.n_epochs == 5
    assert run.values("val_loss") == pytest.approx([1.0, 0.95, 0.9, 0.85, 0.8])
    assert run.values("loss") == pytest.approx([_train_epoch(e)["train_loss"] for e in range(5)])
    assert run.values("learning_rate") == pytest.approx([0.001] * 3 + [0.0005] * 2)
    assert not run.has("hp_metric") and not run.has("test_loss")
    text = "\n".join(run.warnings)
    assert "PyTorch Lightning TensorBoardLogger" in text
    assert "train_loss_step" in text and "after the fit" in text


def test_lightning_logs_folder_with_several_versions(tmp_path):
    root = tmp_path / "lightning_logs"
    _write(root / "version_0", _lightning_points(epochs=3, test=False))
    _write(root / "version_1", _lightning_points(epochs=4, test=False))
    (root / "version_2").mkdir()  # a version that never logged
    runs = load_logs(root)
    assert [r.name for r in runs] == ["version_0", "version_1"]
    assert [r.n_epochs for r in runs] == [3, 4]


def test_sweep_a_lightning_tensorboard_log(tmp_path):
    from tests.conftest import run as cli

    d = _write(tmp_path / "version_0", _lightning_points(epochs=8, test=False))
    result = cli("sweep", d, "--patience", "3..10", "--no-charts", "--format", "csv",
                 "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") >= 8


# --------------------------------------------------------------------------- Hugging Face


def _hf_points(evals=3, steps_per_epoch=10, logging_steps=5):
    # src/transformers/integrations/integration_utils.py, TensorBoardCallback.on_log:
    # rewrite_logs turns eval_x into eval/x and every other key into train/x, written at
    # state.global_step; the summary log at the end (train_runtime, train_loss,
    # total_flos, epoch) goes through it too.
    points = []
    for step in range(1, evals * steps_per_epoch + 1):
        epoch = step / steps_per_epoch
        if step % logging_steps == 0:
            points += [("train/loss", 1.0 - step * 0.01, step),
                       ("train/learning_rate", 5e-5 * (1 - step / 40), step),
                       ("train/epoch", epoch, step)]  # fmt: skip
        if step % steps_per_epoch == 0:
            e = step // steps_per_epoch
            points += [("eval/loss", [0.9, 0.8, 0.85][e - 1], step),
                       ("eval/runtime", 1.5, step), ("train/epoch", epoch, step)]  # fmt: skip
    last = evals * steps_per_epoch
    points += [("train/train_runtime", 12.0, last), ("train/train_loss", 0.8, last),
               ("train/total_flos", 1e12, last), ("train/epoch", float(evals), last)]  # fmt: skip
    return points


def test_hf_trainer_tensorboard(tmp_path):
    d = _write(tmp_path / "runs" / "Dec07_03-00-00_host", _hf_points())
    # an args-only file in a <time>/ sub-folder (add_text), no scalars
    w = _writer(d / "1733540400.0")
    w.add_text("args", "{}", 0)
    w.close()
    run = load_run(tmp_path / "runs")
    assert run.format == "hf" and run.n_epochs == 3
    assert run.values("val_loss") == pytest.approx([0.9, 0.8, 0.85])
    assert run.default_monitor == "val_loss"
    # train/loss averaged per interval between evaluations (weighted by steps)
    assert run.values("loss") == pytest.approx([0.925, 0.825, 0.725])
    assert "Hugging Face Trainer TensorBoard" in "\n".join(run.warnings)


# --------------------------------------------------------------------------- Ultralytics


def _yolo_points(epochs=4, v5=False):
    # ultralytics/utils/callbacks/tensorboard.py: on_train_epoch_end writes
    # label_loss_items(prefix="train") and trainer.lr at epoch + 1, on_fit_epoch_end
    # trainer.metrics at epoch + 1; final_eval runs on_fit_epoch_end once more (best.pt).
    # YOLOv5 (utils/loggers/__init__.py, on_fit_epoch_end) writes every key at epoch.
    points = []
    box = "train/box_loss"
    m = "metrics/mAP_0.5" if v5 else "metrics/mAP50(B)"
    lr = "x/lr0" if v5 else "lr/pg0"
    vals = [0.1, 0.3, 0.35, 0.34, 0.36, 0.2][:epochs]
    for e in range(epochs):
        step = e if v5 else e + 1
        points += [(box, 1.0 - 0.1 * e, step), (lr, 0.01, step), (m, vals[e], step),
                   ("val/box_loss", 1.1 - 0.1 * e, step)]  # fmt: skip
    if not v5:
        points += [(m, 0.35, epochs), ("val/box_loss", 0.8, epochs)]  # final_eval of best.pt
    return points


@pytest.mark.parametrize("v5", [False, True])
def test_ultralytics_tensorboard(tmp_path, v5):
    d = _write(tmp_path / "runs" / "detect" / "train", _yolo_points(v5=v5))
    run = load_run(d)
    assert run.format == "ultralytics" and run.n_epochs == 4
    m = "metrics/mAP_0.5" if v5 else "metrics/mAP50(B)"
    assert run.values(m) == pytest.approx([0.1, 0.3, 0.35, 0.34])
    if not v5:
        assert "final validation of best.pt" in "\n".join(run.warnings)


# --------------------------------------------------------------------------- scripts


def test_plain_summary_writer_per_epoch(tmp_path):
    # The PyTorch tutorial's loop: writer.add_scalar("Loss/train", loss, epoch) and
    # ("Loss/val", ...), steps 0-based; add_scalars("acc", {...}) writes sub-folders
    # acc_train/ and acc_val/ holding tag "acc" (tensorboardX/writer.py add_scalars).
    points = []
    for e in range(6):
        points += [
            ("Loss/train", 1.0 - 0.1 * e, e),
            ("Loss/val", [0.9, 0.7, 0.6, 0.65, 0.7, 0.8][e], e),
        ]
    d = _write(tmp_path / "runs" / "exp1", points)
    run = load_run(d)
    assert run.format == "tensorboard" and run.n_epochs == 6
    assert run.values("val_loss") == pytest.approx([0.9, 0.7, 0.6, 0.65, 0.7, 0.8])
    text = "\n".join(run.warnings)
    assert "0-based (steps 0 to 5)" in text and "Loss/val -> val_loss" in text


def test_plain_add_scalars_subfolders(tmp_path):
    d = tmp_path / "run"
    w = _writer(d)
    for e in range(1, 4):
        w.add_scalars("loss", {"train": 1.0 / e, "validation": 1.2 / e}, e, walltime=2000.0 + e)
    w.close()
    run = load_run(d)
    assert run.n_epochs == 3
    assert run.values("val_loss") == pytest.approx([1.2, 0.6, 0.4])
    assert "1-based (steps 1 to 3)" in "\n".join(run.warnings)


def test_keras_tensorboard_is_still_keras(tmp_path):
    d = tmp_path / "keras"
    _write(d / "train", [("epoch_loss", 0.5, 0), ("epoch_loss", 0.4, 1)])
    _write(d / "validation", [("epoch_loss", 0.6, 0), ("epoch_loss", 0.5, 1)])
    assert detect(d).name == "tensorboard"


def test_files_without_scalars_are_refused(tmp_path):
    from analysis.errors import ReplayError

    w = _writer(tmp_path / "empty")
    w.add_text("args", "{}", 0)
    w.close()
    with pytest.raises(ReplayError):
        load_run(tmp_path / "empty")


def test_versions_with_only_hp_metric_are_left_out_or_refused(tmp_path):
    # TensorBoardLogger.log_hyperparams writes hp_metric = -1 at step 0 when the logger
    # starts (src/lightning/pytorch/loggers/tensorboard.py); a run that stopped before
    # logging anything leaves only that.
    from analysis.errors import BadLog

    root = tmp_path / "lightning_logs"
    _write(root / "version_0", [("hp_metric", -1.0, 0)])
    _write(root / "version_2", _lightning_points(epochs=3, test=False))
    _write(root / "version_10", [("hp_metric", -1.0, 0)])
    runs = load_logs(root)
    assert [r.name for r in runs] == ["version_2"]
    assert (
        "left out 2 folder(s) or file(s) that hold no training (version_0, version_10"
        in (runs[0].warnings[0])
    )
    with pytest.raises(BadLog, match="none holds a metric"):
        load_logs(root / "version_0")


def test_hf_folder_reused_by_two_trainers_and_an_evaluate(tmp_path):
    # One logging_dir for a whole script: each Trainer opens its own SummaryWriter
    # (TensorBoardCallback._init_summary_writer), trainer.evaluate() after training logs
    # eval/* and train/epoch at the final global step.
    d = tmp_path / "runs" / "Dec07_03-00-00_host"
    _write(d, _hf_points(), wall0=1000.0, suffix=".1")
    _write(d, [("eval/loss", 0.81, 30), ("train/epoch", 3.0, 30)], wall0=5000.0, suffix=".2")
    _write(d, _hf_points(evals=2), wall0=9000.0, suffix=".3")
    runs = load_logs(d)
    assert [r.n_epochs for r in runs] == [3, 2]
    assert "trainer.evaluate()" in runs[0].warnings[0]


def test_plain_folder_reused_by_two_launches_and_a_truncated_file(tmp_path):
    # Each launch of a script opens a new event file in the same log_dir; the second was
    # committed while it was still writing (its last record cut short).
    d = tmp_path / "runs"
    _write(d, [("Loss/Val_Epoch", 0.5 - 0.1 * e, e) for e in range(3)], suffix=".1")
    second = _write(d, [("Loss/Val_Epoch", 0.9 - 0.1 * e, e) for e in range(4)], wall0=5000.0,
                    suffix=".2")  # fmt: skip
    last = sorted(second.glob("*.2"))[0]
    last.write_bytes(last.read_bytes()[:-7])
    runs = load_logs(d)
    assert [r.name for r in runs] == ["runs#1", "runs#2"]
    assert runs[0].values("val_loss") == pytest.approx([0.5, 0.4, 0.3])
    assert runs[1].values("val_loss") == pytest.approx([0.9, 0.8, 0.7])  # before the damage
    assert any("damaged" in w for w in runs[1].warnings)
