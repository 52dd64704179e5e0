"""Which epoch a TensorBoard learning rate belongs to (analysis.reading.lr_reading,
replay.sweeping.lr_alignment). Event files are hand-made in the Keras 3 layout (``train/``,
``validation/``); real Keras runs in both callback orders are in test_keras_eras.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tbevents import file_version_event, frame_record, scalar_event

from analysis.formats import load_logs
from analysis.reading.lr_reading import AFTER, DURING, aligned, order_from_rates, read_order
from replay.engine.policies import reduce_lr_on_plateau
from replay.sweeping.lr_alignment import align_lr, reproducing_settings


def f32(x: float) -> float:
    return float(np.float32(x))


def write_events(
    path: Path, tag_values: dict[str, list[float]], first: int = 0, wall: float = 100.0
) -> Path:
    events = [file_version_event(wall)]
    n = max(len(v) for v in tag_values.values())
    for i in range(n):
        for tag, vals in tag_values.items():
            if i < len(vals):
                events.append(scalar_event(tag, vals[i], first + i, wall + i))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(frame_record(e) for e in events))
    return path


def keras3_logdir(
    root: Path, val_loss: list[float], written_lr: list[float], loss: list[float] | None = None
) -> Path:
    """A Keras 3 TensorBoard log: train (loss, learning_rate), validation (loss)."""
    loss = loss or [2.0 - 0.01 * e for e in range(len(val_loss))]
    write_events(
        root / "train/events.out.tfevents.1.h.1.0.v2",
        {"epoch_loss": loss, "epoch_learning_rate": written_lr},
    )
    write_events(root / "validation/events.out.tfevents.1.h.1.1.v2", {"epoch_loss": val_loss})
    return root


# --------------------------------------------------------------------------- rules


def test_aligned_and_order_from_rates():
    assert aligned([0.1, 0.05, 0.025], DURING) == [0.1, 0.05, 0.025]
    assert aligned([0.1, 0.05, 0.025], AFTER) == [0.1, 0.1, 0.05]
    assert aligned([None, 0.1, 0.05], AFTER) == [None, None, 0.1]
    assert aligned([], AFTER) == []
    with pytest.raises(ValueError, match="order must be 'during' or 'after' but got 'x'"):
        aligned([0.1], "x")
    assert order_from_rates([0.1, 0.1, 0.05], [0.1, 0.1, 0.05]) == DURING
    assert order_from_rates([0.1, 0.05, 0.05], [0.1, 0.1, 0.05]) == AFTER
    assert order_from_rates([0.1, 0.1, 0.1], [0.1, 0.1, 0.1]) is None  # both fit
    assert order_from_rates([0.1, 0.2, 0.3], [0.1, 0.1, 0.05]) is None  # neither


@pytest.mark.parametrize(
    "column,written,csv,order,evidence",
    [
        ("learning_rate", [0.1, 0.1, 0.1], None, DURING, "constant"),
        ("lr", [0.1, 0.05, 0.05], None, DURING, "tag"),  # Keras 2's logs['lr'], even at step 1
        ("learning_rate", [0.1, 0.1, 0.05, 0.05], [0.1, 0.1, 0.05, 0.05], DURING, "csv"),
        ("learning_rate", [0.1, 0.1, 0.05, 0.05], [0.1, 0.1, 0.1, 0.05], AFTER, "csv"),
        ("learning_rate", [0.1, 0.05, 0.05], None, AFTER, "first-epoch"),
        ("learning_rate", [0.1, 0.05, 0.05], [0.3, 0.3, 0.3], AFTER, "first-epoch"),  # CSV no fit
        ("learning_rate", [0.1, 0.1, 0.05], None, DURING, "default"),
    ],
)
def test_read_order_rules(column, written, csv, order, evidence):
    reading = read_order(column, written, "tb", csv, "training.log")
    assert (reading.order, reading.evidence) == (order, evidence)
    assert (reading.note is None) == (evidence == "constant")
    assert reading.decided == (evidence != "default")


def test_notes_say_which_reading_and_why():
    r = read_order("learning_rate", [0.1, 0.05, 0.05], "logs/tb")
    assert r.note == (
        "logs/tb: learning_rate at step e read as the rate after epoch e's cut, i.e. of epoch "
        "e+1 (ReduceLROnPlateau listed before TensorBoard): it changes between steps 0 and 1, "
        "which a ReduceLROnPlateau cut can only do when TensorBoard logs the rate after the "
        "cut (the first epoch always improves on the initial best); aligned to the epoch each "
        "rate was in effect (the rate after the last epoch, 0.05, is no epoch's)"
    )
    r = read_order("learning_rate", [0.1, 0.1, 0.05], "logs/tb")
    assert r.note == (
        "logs/tb: learning_rate at step e read as the rate in effect during epoch e: ambiguous, "
        "the log does not tell the callback order (the default reading; a CSVLogger file of "
        "this training beside the log would decide it)"
    )


# --------------------------------------------------------------------------- loader

VAL = [1.0, 0.8, 0.7, 0.72, 0.71, 0.69, 0.70, 0.70, 0.71, 0.68, 0.69, 0.70]
MADE = reduce_lr_on_plateau(VAL, initial_lr=0.01, factor=0.5, patience=2)  # cuts 4, 7, 11
AS_WRITTEN = {DURING: list(MADE.lr), AFTER: [*MADE.lr[1:], MADE.final_lr]}


def test_first_epoch_change_is_read_as_logged_after_the_cut(tmp_path):
    val = [1.0, 1.1, 1.2, 0.9, 0.95, 0.96]
    made = reduce_lr_on_plateau(val, initial_lr=0.01, factor=0.5, patience=1)  # cuts 1, 2, 4, 5
    (run,) = load_logs(keras3_logdir(tmp_path, val, [*made.lr[1:], made.final_lr]))
    assert (run.lr_reading.order, run.lr_reading.evidence) == (AFTER, "first-epoch")
    assert run.values("learning_rate") == list(made.lr)
    kept = align_lr(run)  # a setting reproduces it so: kept
    assert (kept.lr_reading.order, kept.lr_reading.evidence) == (AFTER, "settings")
    assert kept.values("learning_rate") == list(made.lr)
    assert (
        "ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=1, min_delta=0, "
        "cooldown=0) reproduces its cuts only so" in kept.lr_reading.note
    )
    assert kept.warnings.count(kept.lr_reading.note) == 1
    assert run.lr_reading.note not in kept.warnings


@pytest.mark.parametrize("order", [DURING, AFTER])
def test_settings_decide_an_ambiguous_log(tmp_path, order):
    (run,) = load_logs(keras3_logdir(tmp_path, VAL, AS_WRITTEN[order]))
    assert (run.lr_reading.order, run.lr_reading.evidence) == (DURING, "default")
    decided = align_lr(run)
    assert (decided.lr_reading.order, decided.lr_reading.evidence) == (order, "settings")
    assert decided.values("learning_rate") == list(MADE.lr)
    assert decided.not_logged["learning_rate"].tolist() == [False] * len(VAL)


def test_both_readings_reproduced_stays_ambiguous(tmp_path):
    val = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0]
    (run,) = load_logs(keras3_logdir(tmp_path, val, [0.01] * 4 + [0.005] * 4, loss=[1.0] * 8))
    found = reproducing_settings(run, run.lr_reading.written)
    assert (found[DURING].patience, found[AFTER].patience) == (2, 3)
    same = align_lr(run)
    assert (same.lr_reading.order, same.lr_reading.evidence) == (DURING, "default")
    assert same.values("learning_rate") == [f32(0.01)] * 4 + [f32(0.005)] * 4
    assert (
        "ambiguous, ReduceLROnPlateau settings reproduce its cuts under either reading"
        in same.lr_reading.note
    )


def test_a_scheduler_is_read_as_the_rate_during_each_epoch(tmp_path):
    """LearningRateScheduler(lambda e: 0.01 * 0.9**e): it sets the rate at the start of an
    epoch, so TensorBoard shows the rate during each epoch in either order; the change at
    step 1 is no ReduceLROnPlateau cut (every metric improves every epoch)."""
    val = [1.0 / (e + 1) for e in range(8)]
    schedule = [f32(0.01 * 0.9**e) for e in range(8)]
    (run,) = load_logs(keras3_logdir(tmp_path, val, schedule))
    assert run.lr_reading.evidence == "first-epoch"
    fixed = align_lr(run)
    assert (fixed.lr_reading.order, fixed.lr_reading.evidence) == (DURING, "settings")
    assert fixed.values("learning_rate") == schedule
    assert "so a scheduler made them" in fixed.lr_reading.note


def test_decided_readings_are_left_alone(tmp_path):
    (run,) = load_logs(keras3_logdir(tmp_path, VAL, [0.01] * len(VAL)))
    assert run.lr_reading.evidence == "constant" and run.warnings == []
    assert align_lr(run) is run


def test_csv_beside_decides_and_must_be_the_same_training(tmp_path):
    logdir = keras3_logdir(tmp_path / "tb", VAL, AS_WRITTEN[AFTER])
    other = ["epoch,learning_rate,loss,val_loss"] + [
        f"{e},{r!r},{2.0 - 0.01 * e!r},{v + 1!r}"
        for e, (r, v) in enumerate(zip(MADE.lr, VAL, strict=True))
    ]
    (tmp_path / "other.csv").write_text("\n".join(other) + "\n")  # another training's values
    (run,) = load_logs(logdir)
    assert run.lr_reading.evidence == "default"
    mine = ["epoch,learning_rate,loss,val_loss"] + [
        f"{e},{r!r},{f32(2.0 - 0.01 * e)!r},{f32(v)!r}"
        for e, (r, v) in enumerate(zip(MADE.lr, VAL, strict=True))
    ]
    (tmp_path / "training.log").write_text("\n".join(mine) + "\n")
    (run,) = load_logs(logdir)
    assert (run.lr_reading.order, run.lr_reading.evidence) == (AFTER, "csv")
    assert run.values("learning_rate") == list(MADE.lr)
    assert f"the learning rate of {tmp_path / 'training.log'} (same training)" in run.warnings[-1]
