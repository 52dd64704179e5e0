"""The PyTorch Lightning CSVLogger reader (analysis/formats/lightning.py).

Fixtures under tests/data/formats/lightning/ are written by make_fixtures.py with a copy of
Lightning's own writer: ``_ExperimentWriter.save`` of lightning 2.5
(``src/lightning/fabric/loggers/csv_logs.py``: csv.DictWriter over the sorted union of
keys) for version_0, and pytorch_lightning 1.x's (keys in order of first appearance, so
``epoch,step`` last) for version_1. Rows as ``LoggerConnector.log_metrics`` and
``LearningRateMonitor`` write them (lightning 2.5,
``src/lightning/pytorch/trainer/connectors/logger_connector/logger_connector.py``,
``src/lightning/pytorch/callbacks/lr_monitor.py``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.errors import BadLog, LogNotFound
from analysis.formats import detect, load_logs, load_run

DATA = Path(__file__).parent / "data" / "formats" / "lightning" / "lightning_logs"
NA = None


def write(tmp_path: Path, text: str, name: str = "metrics.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def rounded(values):
    return [None if v is None else (v if math.isnan(v) else round(v, 6)) for v in values]


def test_fixture_lightning_2():
    run = load_run(DATA / "version_0")
    assert run.format == "lightning" and run.name == "version_0"
    assert list(run.metrics.columns) == ["learning_rate", "loss", "val_acc", "val_loss"]
    assert run.n_epochs == 12  # the test row at epoch 12 is not an epoch
    assert run.values("learning_rate") == [0.001] * 8 + [0.0005] * 4
    assert run.lr_column == "learning_rate"
    assert rounded(run.values("val_loss"))[:6] == [0.9, 0.684, 0.516, 0.396, 0.324, 0.3]
    assert run.values("loss")[0] == 0.396961  # train_loss_epoch, not a train_loss_step value
    assert not run.has("test_loss") and not run.has("step") and not run.has("epoch")
    text = "\n".join(run.warnings)
    assert "train_loss_step" in text and "trainer.test()" in text
    assert "train_loss_epoch -> loss, lr-Adam -> learning_rate" in text
    assert run.directions == {} and run.default_monitor == "val_loss"


def test_fixture_lightning_1_layout():
    run = load_run(DATA / "version_1" / "metrics.csv")
    head = (DATA / "version_1" / "metrics.csv").read_text().splitlines()[0]
    assert head.endswith("epoch,step")
    assert list(run.metrics.columns) == ["loss", "val_loss", "val_acc"]
    assert run.n_epochs == 8 and run.values("loss")[:2] == [0.8, 0.75]


def test_lightning_logs_folder_is_one_run_per_version():
    runs = load_logs(DATA)
    assert [r.name for r in runs] == ["version_0", "version_1"]
    assert all(r.format == "lightning" for r in runs)
    assert detect(DATA).name == "lightning"


# (what, csv text, expected columns {name: values}, warnings that must appear)
CASES = [
    (
        "train, val and epoch rows merge per epoch",
        "epoch,step,train_loss_epoch,val_loss\n0,9,,0.5\n0,9,0.9,\n1,19,,0.4\n1,19,0.7,\n",
        {"loss": [0.9, 0.7], "val_loss": [0.5, 0.4]},
        [],
    ),
    (
        "a per-step column without suffix is left out",
        "epoch,step,train_loss,val_loss\n0,4,0.9,\n0,9,0.8,\n0,9,,0.5\n1,14,0.7,\n1,19,0.6,\n"
        "1,19,,0.4\n",
        {"val_loss": [0.5, 0.4]},
        ["left out train_loss (up to 2)"],
    ),
    (
        "one per-step sample per epoch is kept, with a warning",
        "epoch,step,train_loss,val_loss\n0,4,0.9,\n0,9,,0.5\n1,14,0.7,\n1,19,,0.4\n",
        {"loss": [0.9, 0.7], "val_loss": [0.5, 0.4]},
        ["train_loss is logged before the end of each epoch"],
    ),
    (
        "trainer.validate() and test() after fit are no epoch",
        "epoch,step,test_loss,train_loss,val_loss\n0,9,,0.9,0.5\n1,19,,0.7,0.4\n2,20,,,0.45\n"
        "2,20,0.46,,\n",
        {"loss": [0.9, 0.7], "val_loss": [0.5, 0.4]},
        ["2 row(s) after the fit (test_loss, val_loss at epoch 2, step 20)"],
    ),
    (
        "older Lightning: test after fit at the last epoch",
        "train_loss,val_loss,test_loss,epoch,step\n0.9,0.5,,0,9\n0.7,0.4,,1,19\n,,0.42,1,19\n",
        {"loss": [0.9, 0.7], "val_loss": [0.5, 0.4]},
        ["(test_loss at epoch 1, step 19)"],
    ),
    (
        "test metrics logged during fit are per-epoch",
        "epoch,step,test_loss,train_loss,val_loss\n0,9,0.55,0.9,0.5\n1,19,0.45,0.7,0.4\n",
        {"test_loss": [0.55, 0.45], "loss": [0.9, 0.7], "val_loss": [0.5, 0.4]},
        [],
    ),
    (
        "the learning-rate monitor's rows belong to the next epoch",
        "epoch,lr-SGD,step,train_loss_epoch\n,0.1,0,\n0,,9,0.9\n,0.01,10,\n1,,19,0.7\n",
        {"learning_rate": [0.1, 0.01], "loss": [0.9, 0.7]},
        ["lr-SGD -> learning_rate"],
    ),
    (
        "slash names, NaN kept, empty not logged",
        "epoch,step,train/loss,val/loss,val/acc\n0,9,nan,0.5,\n1,19,0.7,0.4,0.8\n",
        {"loss": [math.nan, 0.7], "val_loss": [0.5, 0.4], "val_acc": [None, 0.8]},
        ["train/loss -> loss"],
    ),
    (
        "the split as a suffix (pyannote's loss/train, loss/val)",
        "epoch,step,loss/train,loss/val,DER/Miss\n0,194,,0.19,0.02\n0,194,0.2,,\n",
        {"loss": [0.2], "val_loss": [0.19], "DER/Miss": [0.02]},
        ["loss/train -> loss, loss/val -> val_loss"],
    ),
    (
        "no renaming onto an existing column",
        "epoch,step,loss,train_loss,val_loss\n0,9,1.0,0.9,0.5\n",
        {"loss": [1.0], "train_loss": [0.9], "val_loss": [0.5]},
        [],
    ),
    (
        "a resumed fit replaces from its epoch",
        "epoch,step,train_loss,val_loss\n0,9,0.9,0.5\n1,19,0.7,0.4\n2,29,0.6,0.6\n1,19,0.69,0.39\n",
        {"loss": [0.9, 0.69], "val_loss": [0.5, 0.39]},
        ["goes back from 2 to 1"],
    ),
    (
        "dataloader suffixes",
        "epoch,step,val_loss/dataloader_idx_0,val_loss_epoch/dataloader_idx_1\n0,9,0.5,0.6\n",
        {"val_loss/dataloader_idx_0": [0.5], "val_loss/dataloader_idx_1": [0.6]},
        [],
    ),
]


@pytest.mark.parametrize(("what", "text", "expected", "warned"), CASES, ids=[c[0] for c in CASES])
def test_lightning_reading(tmp_path, what, text, expected, warned):
    run = load_run(write(tmp_path, text))
    assert run.format == "lightning"
    assert sorted(run.metrics.columns) == sorted(expected)
    for column, values in expected.items():
        got = run.values(column)
        assert len(got) == len(values)
        for g, v in zip(got, values, strict=True):
            assert (g is None and v is None) or g == v or (math.isnan(g) and math.isnan(v))
    text_w = "\n".join(run.warnings)
    for w in warned:
        assert w in text_w, text_w


def test_epoch_back_to_zero_is_two_trainings(tmp_path):
    p = write(tmp_path, "epoch,step,val_loss\n0,9,0.5\n1,19,0.4\n0,9,0.6\n")
    runs = load_logs(p)
    assert [r.name for r in runs] == [f"{tmp_path.name}#1", f"{tmp_path.name}#2"]
    assert runs[1].values("val_loss") == [0.6]


@pytest.mark.parametrize(("text", "exc", "message"), [
    ("epoch,step,val_loss\n0,9,abc\n", BadLog, "line 2, column 'val_loss': 'abc' is not a number"),
    ("epoch,step,val_loss\n-1,9,0.5\n", BadLog, "is not a whole number"),
    ("epoch,step,train_loss_step\n0,4,0.5\n", BadLog, "has no epochs"),
    ("epoch,step,train_loss\n0,4,0.5\n0,9,0.4\n", BadLog, "no metric is logged once per epoch"),
    ("epoch,step,val_loss\n,9,0.5\n", BadLog, "no row has an epoch"),
    ("epoch,step,val_loss\n0,9\n", BadLog, "line 2 has 2 fields but the header has 3"),
    # Found by the fuzzer (an IndexError): nothing but rows logged after training.
    ("epoch,step,test_loss\n0,9,0.5\n", BadLog, "every row was logged after training"),
])  # fmt: skip
def test_lightning_refusals(tmp_path, text, exc, message):
    with pytest.raises(exc, match=None) as info:
        load_run(write(tmp_path, text))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_folder_without_metrics(tmp_path):
    (tmp_path / "version_0").mkdir()
    with pytest.raises(LogNotFound):
        load_run(tmp_path)


# --------------------------------------------------------------------------- checks

CHECKS = Path(__file__).parent / "data" / "formats" / "lightning" / "val_check_interval"
#: make_fixtures.curve(13, 9, 0.30, 0.90, 0.02): val_loss at the 13 checks.
CHECK_VAL = [0.9, 0.774074, 0.662963, 0.566667, 0.485185, 0.418519, 0.366667, 0.32963,
             0.307407, 0.3, 0.32, 0.356569, 0.403923]  # fmt: skip


def test_fixture_val_check_interval_one_row_per_check():
    run = load_run(CHECKS / "version_0")
    assert list(run.metrics.columns) == ["learning_rate", "loss", "val_acc", "val_loss"]
    assert run.n_epochs == 13  # 4 + 4 + 4 + 1 checks; the test row after fit is none
    assert run.values("val_loss") == CHECK_VAL
    assert run.values("val_acc")[9] == 0.85
    # train_loss_epoch sits at each epoch's last check, not logged (None) at the others
    assert run.values("loss") == [NA, NA, NA, 0.396961, NA, NA, NA, 0.15484,
                                  NA, NA, NA, 0.11386, 0.101044]  # fmt: skip
    # lr-SGD logged per step: the rate logged last before each check (halved at step 30)
    assert run.values("learning_rate") == [0.1] * 6 + [0.05] * 6 + [0.025]
    assert not run.has("train_loss_step") and not run.has("test_loss")
    text = "\n".join(run.warnings)
    assert (
        "validation ran several times per epoch (13 checks in 4 epochs, 4 per epoch, 1 in the "
        "last, at steps 4 to 64): each check is one row, as Lightning's EarlyStopping counts "
        "them, so 'epoch' k means the k-th check here and --patience counts checks "
        "(--dialect keras replays the same rows)" in text
    )
    assert "(rows 0-3 epoch 0, 4-7 epoch 1, 8-11 epoch 2, 12 epoch 3)" in text
    assert "the learning rate changes within an epoch" in text
    assert "left out train_loss_step" not in text and "trainer.test()" in text


@pytest.mark.parametrize(("patience", "stop"), [(1, 10), (2, 11), (3, 12)])
def test_sweep_lightning_dialect_stops_at_the_check(patience, stop):
    """Lightning's EarlyStopping(patience=3) stopped this fit at its 13th check (row 12)."""
    import json

    from conftest import run as replay

    result = replay("sweep", CHECKS / "version_0", "--dialect", "lightning", "--patience",
                    patience, "--min-delta", "0", "--no-charts", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    (record,) = json.loads(result.stdout)
    assert record["dialect"] == "lightning" and record["best_epoch"] == 9
    assert record["stopped_epoch"] == stop
    assert record["final_metrics"]["val_loss"] == CHECK_VAL[stop]
    assert "--patience counts checks" in result.stderr


# (what, csv text, expected columns {name: values}, warnings that must appear)
CHECK_CASES = [
    (
        "check_val_every_n_epoch=2, two checks per validated epoch",
        "epoch,step,train_loss_epoch,val_loss\n0,9,0.9,\n1,14,,0.5\n1,19,,0.4\n1,19,0.7,\n"
        "2,29,0.6,\n3,34,,0.45\n3,39,,0.42\n3,39,0.5,\n",
        {"loss": [0.9, NA, 0.7, 0.6, NA, 0.5], "val_loss": [NA, 0.5, 0.4, NA, 0.45, 0.42]},
        [
            "4 checks in 2 epochs, 2 per epoch",
            "an epoch without validation is one row without val_*",
            "(rows 0 epoch 0, 1-2 epoch 1, 3 epoch 2, 4-5 epoch 3)",
        ],
    ),
    (
        "an int val_check_interval: checks per epoch vary",
        "epoch,step,train_loss_epoch,val_loss\n0,6,,0.9\n0,9,0.8,\n1,13,,0.7\n1,19,0.6,\n"
        "2,20,,0.5\n2,27,,0.45\n2,29,0.4,\n",
        {"loss": [0.8, 0.6, NA, 0.4], "val_loss": [0.9, 0.7, 0.5, 0.45]},
        ["4 checks in 3 epochs, 1 to 2 per epoch, at steps 6 to 27"],
    ),
    (
        "the learning-rate monitor's epoch rows hold for every check of the epoch",
        "epoch,lr-SGD,step,val_loss\n,0.1,0,\n0,,4,0.9\n0,,9,0.8\n,0.01,10,\n1,,14,0.7\n"
        "1,,19,0.6\n",
        {"learning_rate": [0.1, 0.1, 0.01, 0.01], "val_loss": [0.9, 0.8, 0.7, 0.6]},
        ["2 per epoch", "lr-SGD -> learning_rate"],
    ),
    (
        "a per-step training column is still left out",
        "epoch,step,train_loss,val_loss\n0,4,0.9,0.5\n0,9,0.8,0.45\n1,14,0.7,0.4\n1,19,0.6,0.35\n",
        {"val_loss": [0.5, 0.45, 0.4, 0.35]},
        ["left out train_loss (up to 2)"],
    ),
    (
        "a resumed fit replaces the checks from its epoch",
        "epoch,step,val_loss\n0,4,0.9\n0,9,0.8\n1,14,0.7\n1,19,0.6\n2,24,0.65\n1,14,0.69\n"
        "1,19,0.59\n",
        {"val_loss": [0.9, 0.8, 0.69, 0.59]},
        ["goes back from 2 to 1", "4 checks in 2 epochs"],
    ),
    (
        "a test metric at a check's step joins that check",
        "epoch,step,test_loss,val_loss\n0,4,0.95,0.9\n0,9,0.85,0.8\n0,9,,\n1,14,0.75,0.7\n",
        {"test_loss": [0.95, 0.85, 0.75], "val_loss": [0.9, 0.8, 0.7]},
        ["2 per epoch, 1 in the last"],
    ),
]


@pytest.mark.parametrize(
    ("what", "text", "expected", "warned"), CHECK_CASES, ids=[c[0] for c in CHECK_CASES]
)
def test_lightning_checks(tmp_path, what, text, expected, warned):
    test_lightning_reading(tmp_path, what, text, expected, warned)


def test_checks_of_two_trainings(tmp_path):
    p = write(tmp_path, "epoch,step,val_loss\n0,4,0.9\n0,9,0.8\n0,4,0.7\n0,9,0.6\n1,14,0.5\n")
    runs = load_logs(p)
    assert [r.values("val_loss") for r in runs] == [[0.9, 0.8], [0.7, 0.6, 0.5]]
    assert "training #2" in "\n".join(runs[1].warnings)


def test_one_validation_per_epoch_is_no_check_row(tmp_path):
    """The same step twice (a repeated row) is one check: per-epoch rows, as before."""
    run = load_run(write(tmp_path, "epoch,step,val_loss\n0,9,0.5\n0,9,0.5\n1,19,0.4\n"))
    assert run.values("val_loss") == [0.5, 0.4]
    assert "several times per epoch" not in "\n".join(run.warnings)


def test_a_training_without_validation_beside_one_with_checks(tmp_path):
    """Found by tests/test_fuzz_formats.py: the file's second training never validated;
    its rows are its epochs, with no note about checks (was: a crash)."""
    text = (
        "epoch,step,train_loss_epoch,val_loss\n0,4,,0.9\n0,9,,0.8\n0,9,0.85,\n1,14,,0.7\n"
        "1,19,,0.6\n1,19,0.75,\n0,9,0.7,\n1,19,0.6,\n"
    )
    p = write(tmp_path, text)
    first, second = load_logs(p)
    assert first.values("val_loss") == [0.9, 0.8, 0.7, 0.6]
    assert second.values("loss") == [0.7, 0.6]
    assert "several times per epoch" in "\n".join(first.warnings)
    assert "several times per epoch" not in "\n".join(second.warnings)


# --------------------------------------------------------------------------- after the fit
# Rows as Lightning 2.x logs them (issue 20): every row without an explicit step goes
# through ``_LoggerConnector.log_metrics``
# (src/lightning/pytorch/trainer/connectors/logger_connector/logger_connector.py), at
# ``step = fit_loop.epoch_loop._batches_that_stepped`` with ``epoch = current_epoch``.
# ``_TrainingEpochLoop.advance`` logs on_step values when ``should_update_logs`` (that
# counter + 1 divisible by log_every_n_steps), ``on_advance_end`` runs validation at the
# epoch's last batch before the counter moves on (src/lightning/pytorch/loops/
# training_epoch_loop.py), and ``_FitLoop.on_advance_end`` logs the on_epoch training
# values with the counter stepped back by one (src/lightning/pytorch/loops/fit_loop.py).
# After the fit, ``trainer.test()``/``validate()`` log at the finished counter with
# ``current_epoch`` = the epochs completed. The file is written as ``_ExperimentWriter``
# of lightning >= 2.2 writes it (src/lightning/fabric/loggers/csv_logs.py): a
# csv.DictWriter over the sorted union of keys, empty cells for keys a row lacks.


def _lightning_fit(batches, epochs, every, on_step=None, val=None, on_epoch=None):
    """(rows, finished counter) of a fit, as Lightning's loops log them."""
    rows, stepped = [], 0
    for e in range(epochs):
        for b in range(batches):
            if on_step and (stepped + 1) % every == 0:
                rows.append({**on_step(e, b), "epoch": e, "step": stepped})
            if val and b == batches - 1:
                rows.append({**val(e), "epoch": e, "step": stepped})
            stepped += 1
        if on_epoch:
            rows.append({**on_epoch(e), "epoch": e, "step": stepped - 1})
    return rows, stepped


def _write_lightning(tmp_path: Path, rows: list[dict]) -> Path:
    import csv

    keys = sorted({k for r in rows for k in r})
    p = tmp_path / "metrics.csv"
    with p.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, restval="")
        w.writeheader()
        w.writerows(rows)
    return p


def _val(e):
    return {"val_loss": round(1.0 - 0.05 * e, 4)}


def _train_epoch(e):
    return {"train_loss": round(1.2 - 0.06 * e, 4)}


@pytest.mark.parametrize(
    ("what", "test_row"),
    [
        ("a custom name beside test_loss", {"Final F1 Score": 0.81, "test_loss": 0.52}),
        (
            "only test_* and avg_test_* names",
            {"avg_test_acc": 0.8, "avg_test_loss": 0.5, "test_acc": 0.79, "test_loss": 0.51},
        ),
        ("trainer.validate() after the fit, with the fit's own names", {"val_loss": 0.77}),
    ],
)
def test_a_row_logged_after_the_fit_is_no_epoch(tmp_path, what, test_row):
    rows, stepped = _lightning_fit(5, 4, 50, val=_val, on_epoch=_train_epoch)
    rows.append({**test_row, "epoch": 4, "step": stepped})  # trainer.test() after fit
    run = load_run(_write_lightning(tmp_path, rows))
    assert run.n_epochs == 4
    assert sorted(run.metrics.columns) == ["loss", "val_loss"]
    assert run.values("val_loss") == [1.0, 0.95, 0.9, 0.85]
    notes = [w for w in run.warnings if "after the fit" in w]
    assert len(notes) == 1 and "1 row(s)" in notes[0] and "epoch 4, step 20" in notes[0]
    for name in test_row:
        assert name in notes[0]


def test_epochs_after_the_last_training_loss_row_are_epochs(tmp_path):
    # self.log("train_loss", loss) in training_step (on_step only) with log_every_n_steps
    # = 10 and 3 batches per epoch: a training row in epochs 3, 6 and 9 only, val_loss
    # every epoch; epochs 10 and 11 come after the last training row.
    def on_step(e, b):
        return {"train_loss": round(1.5 - 0.01 * (3 * e + b), 4)}

    rows, _ = _lightning_fit(3, 12, 10, on_step=on_step, val=_val)
    assert max(r["epoch"] for r in rows if "train_loss" in r) == 9
    run = load_run(_write_lightning(tmp_path, rows))
    assert run.n_epochs == 12
    assert run.values("val_loss") == [_val(e)["val_loss"] for e in range(12)]
    assert not any("after the fit" in w for w in run.warnings)


def test_rows_at_the_finished_step_of_a_one_step_epoch_fit_are_kept(tmp_path):
    # One batch per epoch: an epoch after the fit would be logged at the finished step
    # too, so only names tell; a row with the fit's own names there is an epoch.
    rows, stepped = _lightning_fit(1, 3, 50, val=_val, on_epoch=_train_epoch)
    rows.append({"val_loss": 0.7, "epoch": 3, "step": stepped})
    run = load_run(_write_lightning(tmp_path, rows))
    assert run.n_epochs == 4 and run.values("val_loss")[-1] == 0.7


def test_the_learning_rate_of_an_epoch_that_never_ended_is_no_epoch(tmp_path):
    # LearningRateMonitor.on_train_epoch_start logs at the counter the epoch starts at,
    # without an epoch (src/lightning/pytorch/callbacks/lr_monitor.py); a run stopped
    # during that epoch logged nothing else in it.
    rows, stepped = _lightning_fit(5, 3, 50, val=_val, on_epoch=_train_epoch)
    rows.append({"lr-Adam": 0.001, "step": stepped})
    run = load_run(_write_lightning(tmp_path, rows))
    assert run.n_epochs == 3
    text = "\n".join(run.warnings)
    assert "as epoch 3 began: that epoch logged nothing else" in text
    assert "after the fit" not in text
