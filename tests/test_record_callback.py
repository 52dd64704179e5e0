"""``replay.keras.RecordCallback``: any Keras model recorded into a run directory.

A tiny regression model on synthetic data (a few hundred samples, a few epochs) keeps
each fit well under a second. ``shuffle=False`` where a run is compared bit for bit
with another: Keras's own shuffling draws from the global RNG, which a continued fit
does not carry over.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line, run

from analysis.errors import ReplayError
from analysis.formats.run_dir import load_run_dir
from analysis.reading.rundir import read_manifest

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 4


def test_importing_replay_keras_does_not_import_tensorflow():
    code = (
        "import sys, replay.keras, replay.commands.cli; "
        "sys.exit(any(m in sys.modules for m in ('tensorflow', 'keras')))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize(
    ("logs", "test", "columns"),
    [
        (
            {"accuracy": 1, "loss": 1, "val_accuracy": 1, "val_loss": 1},
            {"test_loss": 1, "test_accuracy": 1},
            ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"),
        ),
        ({"loss": 1, "mae": 1, "learning_rate": 1}, {}, ("loss", "mae")),  # no validation
        (
            {"mae": 1, "loss": 1, "val_loss": 1, "val_extra": 1},
            {},
            ("loss", "mae", "val_loss", "val_extra"),
        ),  # fmt: skip
    ],
)
def test_metric_columns(logs, test, columns):
    from replay.keras import metric_columns

    assert metric_columns(logs, test) == ("epoch", *columns, "learning_rate", "epoch_seconds")


# ---------------------------------------------------------------- training


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(400, 1))).astype("float32")
    return (x[:256], y[:256]), (x[256:320], y[256:320]), (x[320:], y[320:])


def _model(rate: float = 0.01):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="mse", metrics=["mae"])
    return model


def _fit(model, out, *, epochs=EPOCHS, initial_epoch=0, before=(), after=(), test=True):
    from replay.keras import RecordCallback

    train, val, held_out = _data()
    recorder = RecordCallback(out, test_data=held_out if test else None)
    model.fit(
        *train,
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=64,
        validation_data=val,
        shuffle=False,
        verbose=0,
        callbacks=[*before, recorder, *after],
    )
    return model


def _rows(out: Path) -> list[list[str]]:
    """metrics.csv's rows as text, without epoch_seconds (wall time)."""
    lines = (out / "metrics.csv").read_text().splitlines()
    return [line.rsplit(",", 1)[0] for line in lines]


class _Probe:
    """The rate each epoch really trained with: the optimizer's, at a batch's end."""

    def __new__(cls):
        import keras

        class Probe(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.rates = {}

            def on_train_batch_end(self, batch, logs=None):
                self.rates.setdefault(self._epoch, float(self.model.optimizer.learning_rate))

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch

        return Probe()


class _Stop:
    """Raises ``error`` at ``epoch``: in on_epoch_end (after the commit, placed after the
    recorder) or in on_train_batch_end (mid-epoch)."""

    def __new__(cls, epoch, error, where="on_epoch_end"):
        import keras

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, e, logs=None):
                if where == "on_epoch_end" and e == epoch:
                    raise error

            def on_train_batch_end(self, batch, logs=None):
                if where == "batch" and self._epoch == epoch and batch == 1:
                    raise error

            def on_epoch_begin(self, e, logs=None):
                self._epoch = e

        return Stop()


def _halving():
    """A real LearningRateScheduler that halves the rate every epoch (stateless, so a
    continued fit gets the same rates)."""
    import keras

    return keras.callbacks.LearningRateScheduler(lambda epoch, rate: 0.01 * 0.5**epoch)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """An uninterrupted run: 4 epochs, the scheduler listed after the recorder (its
    on_epoch_begin runs after the recorder's)."""
    out = tmp_path_factory.mktemp("callback") / "run"
    probe = _Probe()
    _fit(_model(), out, after=[_halving(), probe])
    return out, probe.rates


@pytest.mark.slow
def test_the_run_directory_reads_like_a_replay_record_run(recorded):
    out, _ = recorded
    manifest = read_manifest(out, resume=True)
    assert manifest["status"] == "complete"
    assert manifest["config"] is None and manifest["data"] is None
    assert manifest["model"]["recorder"] == "replay.keras.RecordCallback"
    assert manifest["model"]["test_samples"] == 80
    assert [e["checkpoint"] for e in manifest["epochs"]] == [
        f"checkpoints/epoch-00{i}.keras" for i in range(1, EPOCHS + 1)
    ]
    columns = "epoch,loss,mae,val_loss,val_mae,test_loss,test_mae,learning_rate,epoch_seconds"
    assert (out / "metrics.csv").read_text().splitlines()[0] == columns
    assert manifest["columns"] == columns.split(",")
    assert [s["params"]["monitor"] for s in manifest["shadow"]] == ["val_loss"] * 3
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == [
        "test",
        "train",
        "validation",
    ]
    log = load_run_dir(out)
    assert log.n_epochs == EPOCHS and not log.warnings
    assert sorted(log.checkpoints) == list(range(EPOCHS))


@pytest.mark.slow
def test_sweep_show_and_pick_read_it(recorded, tmp_path):
    out, _ = recorded
    result = run("sweep", out, "--patience", "0..2", "--out", tmp_path / "sweep", "--no-charts")
    assert result.exit_code == 0, result.output
    assert "replay matches 6/6 real Keras decisions" in result.output
    assert "test_loss" in result.output
    shown = run("show", out)
    assert shown.exit_code == 0 and "model: recorder=replay.keras.RecordCallback" in shown.output
    picked = run("pick", out, "--patience", "1")
    assert picked.exit_code == 0, picked.output
    assert "sha256 verified" in picked.output


def _recorded_rates(out: Path) -> list[float]:
    return [row["learning_rate"] for row in load_run_dir(out).metrics.to_dict("records")]


@pytest.mark.slow
def test_learning_rate_is_the_rate_during_each_epoch_under_a_scheduler(recorded):
    out, probed = recorded
    rates = _recorded_rates(out)
    assert rates == [probed[e] for e in range(EPOCHS)]
    assert rates == [np.float32(0.01 * 0.5**e) for e in range(EPOCHS)]


@pytest.mark.slow
@pytest.mark.parametrize("plateau_first", [True, False])
def test_learning_rate_is_the_rate_during_each_epoch_under_reduce_lr_on_plateau(
    tmp_path, plateau_first
):
    import keras

    # min_delta 1e9: every epoch after the first fails to improve, and patience 0 cuts
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=0, min_delta=1e9)
    probe = _Probe()
    where = {"before": [plateau], "after": [probe]}
    if not plateau_first:
        where = {"after": [plateau, probe]}
    _fit(_model(), tmp_path / "run", epochs=3, test=False, **where)
    rates = _recorded_rates(tmp_path / "run")
    assert rates == [probe.rates[e] for e in range(3)]
    assert rates == [np.float32(r) for r in (0.01, 0.01, 0.005)]
    assert "test_loss" not in load_run_dir(tmp_path / "run").metrics.columns


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "committed"),
    [
        ("raise_after_commit", 2),  # a later callback fails in epoch 1's on_epoch_end
        ("ctrl_c_mid_epoch", 2),  # KeyboardInterrupt in epoch 2's training
        ("commit_fails", 2),  # an I/O error inside epoch 1's commit, after its row
    ],
)
def test_a_stopped_fit_leaves_a_run_that_continues_bit_for_bit(
    recorded, tmp_path, monkeypatch, stop, committed
):
    import keras

    from replay.keras import restore, wait_for_commits

    reference, _ = recorded
    out = tmp_path / "run"
    after = []
    if stop == "raise_after_commit":
        after, error = [_Stop(1, RuntimeError("boom"))], RuntimeError
    elif stop == "ctrl_c_mid_epoch":
        after, error = [_Stop(2, KeyboardInterrupt, where="batch")], KeyboardInterrupt
    else:
        monkeypatch.setenv("REPLAY_TEST_HOOK", "after_metrics_row@1:eio")
        error = ReplayError
    with pytest.raises(error) as caught:
        _fit(_model(), out, after=[_halving(), *after])
    # the commit in flight when fit raised finishes in the background (before the
    # process exits); wait for it here, before reading the run from outside
    wait_for_commits(out)
    if stop == "commit_fails":
        assert "\n" not in str(caught.value) and "initial_epoch=2" in str(caught.value)
        monkeypatch.delenv("REPLAY_TEST_HOOK")
    log = load_run_dir(out)  # consistent: run.json lists every row's checkpoint
    assert log.n_epochs == committed and sorted(log.checkpoints) == list(range(committed))
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert "initial_epoch=2 with RecordCallback continues it" in log.warnings[0]

    keras.backend.clear_session()
    model, epoch = restore(out)
    assert epoch == committed
    _fit(model, out, initial_epoch=epoch, after=[_halving()])
    assert _rows(out) == _rows(reference)
    manifest, expected = read_manifest(out), read_manifest(reference)
    assert manifest["status"] == "complete" and manifest["shadow"] == expected["shadow"]
    assert [r["from_epoch"] for r in manifest["resumed"]] == [committed]


@pytest.mark.slow
def test_a_fit_that_does_not_start_where_the_run_stands_is_refused(recorded, tmp_path):
    import shutil

    from replay.keras import WrongEpoch

    out = tmp_path / "run"
    shutil.copytree(recorded[0], out)
    before = (out / "metrics.csv").read_bytes()
    with pytest.raises(WrongEpoch) as fresh:
        _fit(_model(), out)
    assert str(fresh.value).startswith(f"{out}: already holds a run with 4 committed epoch(s);")
    with pytest.raises(WrongEpoch) as gap:
        _fit(_model(), out, epochs=6, initial_epoch=2)
    assert "fit starts at initial_epoch=2 but the run has 4 committed epoch(s)" in str(gap.value)
    with pytest.raises(WrongEpoch) as new:
        _fit(_model(), tmp_path / "new", initial_epoch=1)
    assert "holds no run yet, but fit starts at epoch 1" in str(new.value)
    assert not (tmp_path / "new").exists()  # the refusal leaves no empty directory behind
    for e in (fresh, gap, new):
        assert "\n" not in str(e.value)
    assert (out / "metrics.csv").read_bytes() == before
    # the refused fits released the run: continuing it works in this process
    _fit(_model(), out, epochs=5, initial_epoch=4)
    assert load_run_dir(out).n_epochs == 5


@pytest.mark.slow
def test_bad_out_paths_are_refused_in_one_line(tmp_path):
    from replay.keras import RecordCallback
    from replay.recording.run_writer import RunExists

    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    cases = {
        tmp_path / "file": "exists and is not a directory",
        tmp_path / "file" / "run": "is not a directory",
        tmp_path / "full": "is not empty and holds no run.json",
    }
    for out, message in cases.items():
        with pytest.raises(RunExists) as caught:
            RecordCallback(out)
        assert message in str(caught.value) and "\n" not in str(caught.value)
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("test_data", "message"),
    [
        (np.zeros((4, 8)), "but got inputs alone (ndarray of shape (4, 8)); pass test_data=("),
        ((np.zeros((4, 8)),), "must be (x, y) or (x, y, sample_weight) but got 1 item(s)"),
        ([np.zeros(4)] * 4, "must be (x, y) or (x, y, sample_weight) but got 4 item(s)"),
    ],
)
def test_test_data_without_targets_is_refused_before_training(tmp_path, test_data, message):
    from replay.keras import RecordCallback
    from replay.recording.faults import BadConfig

    with pytest.raises(BadConfig) as caught:
        RecordCallback(tmp_path / "run", test_data=test_data)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_replay_record_resume_and_branch_refuse_a_callback_run_without_recipe(recorded):
    out = recorded[0]
    result = run("record", "--resume", "--out", out, catch_exceptions=True)
    assert "was recorded by replay.keras.RecordCallback" in error_line(result)
    branch = run("branch", out, "--policy", "reduce_lr_on_plateau", "--factor", "0.5",
                 "--lr-patience", "1", catch_exceptions=True)  # fmt: skip
    assert error_line(branch) == (
        f"Error: {out}: recorded by RecordCallback without a recipe, so replay branch cannot "
        "train it again; record it with RecordCallback(..., recipe='train.py:function') and "
        "replay.keras.fit, or pass --recipe PATH:FUNCTION"
    )


@pytest.mark.slow
def test_example_records_its_own_model_and_sweeps_it(tmp_path):
    out = tmp_path / "own"
    done = subprocess.run(
        [sys.executable, ROOT / "examples" / "own_model.py", "--limit", "1000", "--epochs", "2",
         "--out", out],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "EarlyStopping" in done.stdout and "test_loss" in done.stdout
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["model"]["name"] == "own_cnn" and manifest["status"] == "complete"
    assert load_run_dir(out).n_epochs == 2
    assert (tmp_path / "own-sweep" / "results.json").is_file()


@pytest.mark.slow
def test_a_metric_name_with_a_comma_and_a_quote_is_written_and_read_back(tmp_path):
    """Keras allows any metric name; metrics.csv quotes it (the csv module) and every
    reader reads it back: the run's own reader (resume), the run directory's, the
    CSVLogger reader, and sweep / show / pick on the run."""
    import csv

    import keras

    from analysis.reading.logs import load_csv
    from replay.recording.run_writer import (
        read_columns,
        read_rows,
    )

    name = 'mae, "x"'
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse",
                  metrics=[keras.metrics.MeanAbsoluteError(name=name)])  # fmt: skip
    out = tmp_path / "run"
    _fit(model, out, epochs=3)
    with open(out / "metrics.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[:4] == ["epoch", "loss", name, "val_loss"] and f"val_{name}" in header
    assert len(rows) == 3 and all(len(r) == len(header) for r in rows)
    columns = read_columns(out / "metrics.csv")
    assert columns == tuple(header)
    assert [r["epoch"] for r in read_rows(out / "metrics.csv", columns=None)] == [0, 1, 2]
    for log in (load_run_dir(out), load_csv(out / "metrics.csv")):
        assert log.n_epochs == 3 and log.has(name) and log.has(f"val_{name}")
        assert log.values(name) == [float(r[header.index(name)]) for r in rows]

    # --monitor takes comma-separated names, so the sweep watches val_loss here.
    result = run("sweep", out, "--patience", "0..1", "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    stops = [r for r in records if r["policy"] == "early_stopping"]
    assert stops and all(name in r["final_metrics"] for r in stops)
    shown = run("show", out)
    assert shown.exit_code == 0, shown.output
    assert name in shown.output
    picked = run("pick", out, "--patience", "1")
    assert picked.exit_code == 0, picked.output

    # A second fit continues the run: the quoted header is read back, not refused.
    _fit(model, out, epochs=4, initial_epoch=3)
    assert load_run_dir(out).n_epochs == 4
