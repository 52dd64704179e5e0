"""Write the committed fixtures of the Lightning, Hugging Face, Ultralytics and MLflow readers.

    python tests/data/formats/make_fixtures.py [lightning|ultralytics|hf|mlflow ...]

- ``hf``: written by the real ``transformers.trainer_callback.TrainerState.save_to_json``
  (transformers 5.24.0, installed without PyTorch: ``pip install transformers``). The
  ``log_history`` entries are what ``Trainer.log`` appends (``src/transformers/trainer.py``:
  ``{**logs, "epoch": state.epoch, "step": state.global_step}``), built here because the
  Trainer itself needs PyTorch.
- ``mlflow``: written by the real MLflow file store (mlflow-skinny 3.17.2,
  ``MLFLOW_ALLOW_FILE_STORE=true``), through ``MlflowClient.log_metric`` with the steps
  Keras autologging (``mlflow/keras/callback.py``) and Lightning's ``MLFlowLogger`` use.
- ``lightning`` and ``ultralytics``: both writers need PyTorch, so the files are written
  by copies of their code: Lightning's ``_ExperimentWriter.save`` (lightning 2.5,
  ``src/lightning/fabric/loggers/csv_logs.py``; pytorch_lightning 1.x for the old
  layout) and Ultralytics's ``BaseTrainer.save_metrics`` (8.0.100, 8.2.0 and 8.4.190,
  ``ultralytics/engine/trainer.py``) and YOLOv5's ``Loggers.on_fit_epoch_end``
  (``utils/loggers/__init__.py``).

The curves are made up: smooth, with a best epoch in the middle, so that a sweep has
something to decide.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def curve(n: int, best: int, low: float, high: float, rise: float) -> list[float]:
    """A validation-like curve: falls to ``low`` at ``best``, then rises by ``rise`` per epoch."""
    out = []
    for e in range(n):
        if e <= best:
            out.append(low + (high - low) * (1 - e / best) ** 2)
        else:
            out.append(low + rise * (e - best) ** 1.5)
    return [round(v, 6) for v in out]


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# --------------------------------------------------------------------------- Lightning


def _lightning_save(path: Path, rows: list[dict], sort_keys: bool) -> None:
    """``_ExperimentWriter.save``: DictWriter over the union of keys (sorted in 2.2+)."""
    if sort_keys:
        keys = sorted(set().union(*rows))
    else:  # pytorch_lightning 1.x: last_m.update(m) for every row, in order
        last: dict = {}
        for r in rows:
            last.update(r)
        keys = list(last)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def make_lightning() -> None:
    root = fresh(HERE / "lightning" / "lightning_logs")
    # version_0: lightning 2.x. 12 epochs of 20 steps, log_every_n_steps=5;
    # self.log("train_loss", on_step=True, on_epoch=True) -> train_loss_step / _epoch;
    # validation logs val_loss, val_acc; LearningRateMonitor(logging_interval="epoch")
    # logs lr-Adam at each epoch start with no epoch key; ReduceLROnPlateau halves the
    # rate after epoch 7; trainer.test() after fit logs at epoch = 12 (current_epoch).
    n, steps = 12, 20
    val = curve(n, 5, 0.30, 0.90, 0.02)
    acc = [round(0.95 - v / 3, 6) for v in val]
    rows: list[dict] = []
    for e in range(n):
        lr = 0.001 if e < 8 else 0.0005
        rows.append({"lr-Adam": lr, "step": e * steps})
        train = [round(1.0 / (1 + 0.3 * (e * steps + s)) + 0.05, 6) for s in range(steps)]
        for s in range(4, steps, 5):
            rows.append({"train_loss_step": train[s], "epoch": e, "step": e * steps + s})
        end = e * steps + steps - 1
        rows.append({"val_loss": val[e], "val_acc": acc[e], "epoch": e, "step": end})
        rows.append({"train_loss_epoch": round(sum(train) / steps, 6), "epoch": e, "step": end})
    rows.append({"test_loss": 0.41, "test_acc": 0.83, "epoch": n, "step": n * steps})
    (root / "version_0").mkdir()
    _lightning_save(root / "version_0" / "metrics.csv", rows, sort_keys=True)
    # version_1: pytorch_lightning 1.x, one row per epoch from validation_epoch_end,
    # header in order of first appearance: epoch,step last.
    rows = [
        {
            "train_loss": round(0.8 - 0.05 * e, 6),
            "val_loss": v,
            "val_acc": a,
            "epoch": e,
            "step": 9 + 10 * e,
        }
        for e, (v, a) in enumerate(zip(val[:8], acc, strict=False))
    ]
    (root / "version_1").mkdir()
    _lightning_save(root / "version_1" / "metrics.csv", rows, sort_keys=False)


# --------------------------------------------------------------------------- Ultralytics

DETECT = ["train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/precision(B)",
          "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss",
          "val/cls_loss", "val/dfl_loss", "lr/pg0", "lr/pg1", "lr/pg2"]  # fmt: skip
SEGMENT = ["train/box_loss", "train/seg_loss", "train/cls_loss", "train/dfl_loss",
           "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
           "metrics/precision(M)", "metrics/recall(M)", "metrics/mAP50(M)", "metrics/mAP50-95(M)",
           "val/box_loss", "val/seg_loss", "val/cls_loss", "val/dfl_loss", "lr/pg0", "lr/pg1",
           "lr/pg2"]  # fmt: skip
CLASSIFY = ["train/loss", "metrics/accuracy_top1", "metrics/accuracy_top5", "val/loss",
            "lr/pg0", "lr/pg1", "lr/pg2"]  # fmt: skip
YOLOV5 = ["train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision",
          "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "val/box_loss",
          "val/obj_loss", "val/cls_loss", "x/lr0", "x/lr1", "x/lr2"]  # fmt: skip


def _yolo_values(keys: list[str], e: int, n: int, best: int) -> list[float]:
    """Plausible values: losses fall, mAPs peak at ``best``, rates warm up then decay."""
    peak = 1 - ((e - best) / n) ** 2
    out = []
    for k in keys:
        if k.startswith(("train/", "val/")):
            overfit = 0.02 * max(0, e - best) if k.startswith("val/") else 0
            out.append(1.5 / (1 + 0.3 * e) + overfit)
        elif k.startswith(("lr/", "x/")):  # warmup over 3 epochs; the bias group falls from 0.1
            warm = min(1.0, (e + 1) / 3)
            rate = 0.01 * (1 - e / n) * warm
            out.append(rate + 0.09 * (1 - warm) if k.endswith(("pg0", "lr0")) else rate)
        elif "mAP50-95" in k or "0.95" in k:
            out.append(0.45 * peak)
        elif "mAP" in k:
            out.append(0.70 * peak)
        elif "top5" in k:
            out.append(min(1.0, 0.9 + 0.1 * peak))
        else:
            out.append(0.8 * peak)
    return out


def _v8_padded(path: Path, keys: list[str], n: int, best: int, one_based: bool) -> None:
    """ultralytics 8.0.x-8.3.8 ``save_metrics``: %23s header, %23.5g values."""
    for e in range(n):
        vals = _yolo_values(keys, e, n, best)
        k = len(keys) + 1
        s = "" if path.exists() else ("%23s," * k % tuple(["epoch"] + keys)).rstrip(",") + "\n"
        with open(path, "a") as f:
            f.write(s + ("%23.5g," * k % tuple([e + int(one_based)] + vals)).rstrip(",") + "\n")


def _v8_time(path: Path, keys: list[str], n: int, best: int) -> None:
    """ultralytics 8.3.9+ ``save_metrics``: %s header with time, %.6g values."""
    for e in range(n):
        vals = _yolo_values(keys, e, n, best)
        k = len(keys) + 2
        s = "" if path.exists() else ("%s," * k % ("epoch", "time", *keys)).rstrip(",") + "\n"
        with open(path, "a", encoding="utf-8") as f:
            f.write(s + ("%.6g," * k % (e + 1, 61.5 * (e + 1), *vals)).rstrip(",") + "\n")


def _v5(path: Path, n: int, best: int) -> None:
    """YOLOv5 ``on_fit_epoch_end``: %20s header, %20.5g, 0-based; COCO repeats the last epoch."""
    for i, e in enumerate([*range(n), n - 1]):
        vals = _yolo_values(YOLOV5, e if i < n else best, n, best)  # the repeat: best.pt's
        k = len(YOLOV5) + 1
        s = "" if path.exists() else ("%20s," * k % ("epoch", *YOLOV5)).rstrip(",") + "\n"
        with open(path, "a") as f:
            f.write(s + ("%20.5g," * k % (e, *vals)).rstrip(",") + "\n")


def make_ultralytics() -> None:
    root = fresh(HERE / "ultralytics")
    (root / "detect_8.0").mkdir()
    _v8_padded(root / "detect_8.0" / "results.csv", DETECT, 15, 7, one_based=False)
    (root / "classify_8.2").mkdir()
    _v8_padded(root / "classify_8.2" / "results.csv", CLASSIFY, 12, 6, one_based=True)
    (root / "segment_8.4").mkdir()
    _v8_time(root / "segment_8.4" / "results.csv", SEGMENT, 14, 8)
    (root / "yolov5_coco").mkdir()
    _v5(root / "yolov5_coco" / "results.csv", 12, 5)


# --------------------------------------------------------------------------- Hugging Face


def _hf_state(history: list[dict], **fields):
    from transformers.trainer_callback import TrainerState

    return TrainerState(log_history=history, **fields)


def _hf_history(epochs: int, steps_per_epoch: int, logging_steps: int, eval_every: int | None):
    """``Trainer.log`` entries: training every ``logging_steps``, evaluation every
    ``eval_every`` steps (None: at each epoch end), the summary, one evaluate() after."""
    val = curve(40, 5, 0.35, 0.95, 0.01)
    history: list[dict] = []
    last_logged = 0
    total = epochs * steps_per_epoch
    n_eval = 0
    for step in range(1, total + 1):
        epoch = step / steps_per_epoch
        if step % logging_steps == 0:
            loss = 1.2 / (1 + step / 40) + 0.05
            if step == 3 * logging_steps:
                loss = float("nan")  # a NaN loss: written as the token NaN
            history.append(
                {
                    "epoch": epoch,
                    "grad_norm": 1.5 - step / total,
                    "learning_rate": 5e-05 * (1 - (step - 1) / total),
                    "loss": loss,
                    "step": step,
                }
            )
            last_logged = step
        at_eval = step % eval_every == 0 if eval_every else step % steps_per_epoch == 0
        if at_eval:
            v = val[n_eval]
            history.append(
                {
                    "epoch": epoch,
                    "eval_accuracy": round(0.97 - v / 2, 6),
                    "eval_loss": v,
                    "eval_runtime": 1.25,
                    "eval_samples_per_second": 160.0,
                    "eval_steps_per_second": 10.0,
                    "step": step,
                }
            )
            n_eval += 1
    assert last_logged
    history.append(
        {
            "epoch": float(epochs),
            "step": total,
            "total_flos": 1.2e15,
            "train_loss": 0.42,
            "train_runtime": 300.5,
            "train_samples_per_second": 100.0,
            "train_steps_per_second": 6.0,
        }
    )
    history.append(
        {
            "epoch": float(epochs),
            "eval_accuracy": 0.8,
            "eval_loss": 0.5,
            "eval_runtime": 1.2,
            "step": total,
        }
    )  # trainer.evaluate() after train()
    return history


def make_hf() -> None:
    import transformers

    root = fresh(HERE / "hf")
    # Evaluation each epoch, 10 epochs of 50 steps, logging_steps=20;
    # metric_for_best_model="accuracy" (greater_is_better): best at the 6th evaluation.
    history = _hf_history(10, 50, 20, None)
    evals = [h for h in history if "eval_accuracy" in h][:-1]
    best = max(evals, key=lambda h: h["eval_accuracy"])
    state = _hf_state(
        history,
        epoch=10.0,
        global_step=500,
        max_steps=500,
        num_train_epochs=10,
        logging_steps=20,
        best_metric=best["eval_accuracy"],
        best_global_step=best["step"],
        best_model_checkpoint=f"out/checkpoint-{best['step']}",
    )
    (root / "epoch").mkdir()
    state.save_to_json(str(root / "epoch" / "trainer_state.json"))
    # Evaluation every 30 steps, epochs of 100 steps; checkpoints every 100 steps hold the
    # history so far (the output folder has no trainer_state.json of its own).
    full = _hf_history(3, 100, 10, 30)
    for ckpt in (100, 200, 300):
        part = [h for h in full[:-2] if h["step"] <= ckpt]  # no summary, no evaluate()
        state = _hf_state(
            part,
            epoch=ckpt / 100,
            global_step=ckpt,
            max_steps=300,
            num_train_epochs=3,
            logging_steps=10,
            eval_steps=30,
        )
        (root / "steps" / f"checkpoint-{ckpt}").mkdir(parents=True)
        state.save_to_json(str(root / "steps" / f"checkpoint-{ckpt}" / "trainer_state.json"))
    (root / "VERSION").write_text(f"transformers {transformers.__version__}\n")


# --------------------------------------------------------------------------- MLflow


def make_mlflow() -> None:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    import mlflow
    from mlflow.tracking import MlflowClient

    root = fresh(HERE / "mlflow")
    # Written under /tmp, then moved here: meta.yaml records absolute artifact paths.
    tmp = Path(tempfile.mkdtemp(prefix="fixture-"))
    store = tmp / "mlruns"
    client = MlflowClient(tracking_uri=store.as_uri())
    t0 = 1_700_000_000_000
    exp = client.create_experiment("keras-autolog")
    # A Keras fit with mlflow autologging: on_epoch_end logs `logs` with step=epoch;
    # on_test_end logs validation_* without a step (step 0) after each validation.
    run = client.create_run(exp, run_name="mlp").info.run_id
    val = curve(14, 6, 0.08, 0.40, 0.004)
    for e in range(14):
        t = t0 + 1000 * e
        client.log_metric(run, "validation_loss", val[e], timestamp=t)
        lr = 0.001 if e < 10 else 0.0005
        for k, v in (
            ("loss", round(0.5 / (1 + e), 6)),
            ("accuracy", round(0.9 + e / 200, 6)),
            ("val_loss", val[e]),
            ("val_accuracy", round(0.99 - val[e] / 4, 6)),
            ("learning_rate", lr),
        ):
            client.log_metric(run, k, v, timestamp=t + 10, step=e)
    client.log_metric(run, "val_loss", 0.41, timestamp=t0 + 1000, step=0)  # logged again
    client.log_metric(run, "stopped_epoch", 0, timestamp=t0 + 20000)
    client.set_terminated(run)
    # A deleted run in the same experiment: skipped when the experiment is read.
    gone = client.create_run(exp, run_name="deleted").info.run_id
    client.log_metric(gone, "val_loss", 1.0, timestamp=t0, step=0)
    client.set_terminated(gone)
    client.delete_run(gone)
    # Lightning's MLFlowLogger: steps are global steps, 'epoch' is a metric; *_step per
    # step, *_epoch and val_loss per epoch.
    exp2 = client.create_experiment("lightning")
    run = client.create_run(exp2, run_name="lit").info.run_id
    for e in range(8):
        for s in range(4, 20, 5):
            step = 20 * e + s
            client.log_metric(
                run, "train_loss_step", 1 / (1 + step), timestamp=t0 + step, step=step
            )
            client.log_metric(run, "epoch", e, timestamp=t0 + step, step=step)
        end = 20 * e + 19
        client.log_metric(run, "val_loss", val[e], timestamp=t0 + end, step=end)
        client.log_metric(run, "train_loss_epoch", 0.5 / (1 + e), timestamp=t0 + end, step=end)
        client.log_metric(run, "epoch", e, timestamp=t0 + end, step=end)
    client.set_terminated(run)
    shutil.move(str(store), str(root / "mlruns"))
    shutil.rmtree(tmp)
    (root / "VERSION").write_text(f"mlflow {mlflow.__version__}\n")


MAKERS = {
    "lightning": make_lightning,
    "ultralytics": make_ultralytics,
    "hf": make_hf,
    "mlflow": make_mlflow,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(MAKERS):
        MAKERS[name]()
        print(f"wrote {name} fixtures under {HERE}")
