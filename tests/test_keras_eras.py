"""Logs as each Keras era writes them, and their learning rate aligned to its epochs.

- Keras 3.15 (installed): real fits with real ``ReduceLROnPlateau`` + ``TensorBoard`` +
  ``CSVLogger`` callbacks, in both orders (slow).
- tf.keras 2.21 (the ``tf_keras`` package, a dev extra): real fits in a subprocess, so
  that its import stays out of this process's Keras 3 (slow).
- Keras 2.2 with TensorFlow 1 cannot be installed here: hand-made fixtures that follow
  keras-team/keras 2.2.4 ``keras/callbacks.py``: ``TensorBoard.set_model`` opens one
  ``tf.summary.FileWriter(log_dir)`` per ``fit`` (one flat folder, one events file per
  training); ``on_epoch_end`` calls ``_write_logs(logs, epoch)``, which writes every
  ``logs`` item but ``batch``/``size`` as ``Summary.Value(tag=name, simple_value=value)``
  at step = epoch (``update_freq='epoch'``); histograms (``histogram_freq``) are ``histo``
  values. ``ReduceLROnPlateau.on_epoch_end`` sets ``logs['lr']`` before it cuts;
  ``metrics=['accuracy']`` is logged as ``acc`` (``engine/training.py``, suffix
  ``'acc'``), and ``CSVLogger`` writes ``epoch`` then the sorted keys.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tbevents import file_version_event, frame_record, scalar_event

from analysis.errors import AmbiguousLog
from analysis.formats import load_logs, load_run
from analysis.reading.logs import load_csv
from analysis.reading.lr_reading import AFTER, DURING
from replay.commands.cli import cli
from replay.engine.policies import reduce_lr_on_plateau
from replay.sweeping.lr_alignment import align_lr
from replay.sweeping.sweep import Grid, sweep

ROOT = Path(__file__).resolve().parent.parent


def f32(x: float) -> float:
    return float(np.float32(x))


def sweep_json(log: Path | str, factor: float, patience: int, out: Path) -> list[dict]:
    """``replay sweep LOG --policy reduce_lr_on_plateau`` with one setting, as JSON."""
    result = CliRunner().invoke(cli, [
        "sweep", str(log), "--policy", "reduce_lr_on_plateau", "--factor", str(factor),
        "--patience", str(patience), "--format", "json", "--out", str(out),
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def plateau_grid(factor: float, patience: int) -> Grid:
    return Grid(policies=("reduce_lr_on_plateau",), factor=(factor,), patience=(patience,))


# --------------------------------------------------------------------------- Keras 2.2, TF1

VAL = [1.0, 0.8, 0.7, 0.72, 0.71, 0.69, 0.70, 0.70, 0.71, 0.68, 0.69, 0.70]


def histogram_event(tag: str, step: int) -> bytes:
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=0.0, step=step)
    v = event.summary.value.add(tag=tag)
    v.histo.min, v.histo.max, v.histo.num = -1.0, 1.0, 3.0
    return event.SerializeToString()


def keras22_logs(val_loss: list[float], lr: list[float], first: int = 0) -> list[dict]:
    """The ``logs`` of each epoch of a Keras 2.2 fit with ReduceLROnPlateau (``lr``)."""
    return [
        {
            "loss": 1.5 - 0.1 * e,
            "acc": 0.5 + 0.01 * e,
            "val_loss": v,
            "val_acc": 0.6 + 0.01 * e,
            "lr": r,
        }
        for e, (v, r) in enumerate(zip(val_loss, lr, strict=True), first)
    ]


def write_keras22_fit(
    path: Path, logs: list[dict], first: int = 0, wall: float = 1000.0, histograms: bool = True
) -> Path:
    """One events file as Keras 2.2.4's TensorBoard writes it for one fit."""
    events = [file_version_event(wall)]
    for e, epoch_logs in enumerate(logs, first):
        if histograms:
            events.append(histogram_event("dense_1/kernel_0", e))
        for name, value in epoch_logs.items():
            events.append(scalar_event(name, value, e, wall + e, as_tensor=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(frame_record(ev) for ev in events))
    return path


def test_keras22_flat_folder_is_read_with_its_names(tmp_path):
    made = reduce_lr_on_plateau(VAL, initial_lr=0.01, factor=0.5, patience=2)
    assert len(made.reductions) >= 2
    write_keras22_fit(
        tmp_path / "logs/events.out.tfevents.1500000000.host", keras22_logs(VAL, list(made.lr))
    )
    run = load_run(tmp_path / "logs")
    assert run.format == "tensorboard" and run.name == "logs"
    assert list(run.metrics.columns) == ["acc", "loss", "lr", "val_acc", "val_loss"]
    assert run.lr_column == "lr" and run.values("lr") == list(made.lr)
    assert run.values("val_accuracy") == [f32(0.6 + 0.01 * e) for e in range(len(VAL))]
    assert run.values("val_loss") == [f32(v) for v in VAL]
    assert (run.lr_reading.order, run.lr_reading.evidence) == (DURING, "tag")
    assert run.warnings == [
        f"{tmp_path / 'logs'}: lr at step e read as the rate in effect during epoch e: Keras 2 "
        "/ tf.keras log logs['lr'], set before ReduceLROnPlateau cuts"
    ]


def test_keras22_flat_folder_replays_its_own_setting_exactly(tmp_path):
    made = reduce_lr_on_plateau(VAL, initial_lr=0.01, factor=0.5, patience=2)
    write_keras22_fit(
        tmp_path / "logs/events.out.tfevents.1500000000.host", keras22_logs(VAL, list(made.lr))
    )
    (record,) = sweep_json(tmp_path / "logs", 0.5, 2, tmp_path / "out")
    assert record["counterfactual_from"] is None
    assert record["lr"] == list(made.lr) and record["reductions"] == list(made.reductions)


def test_keras22_csvlogger_with_real_cuts_replays_its_own_setting_exactly(tmp_path):
    """keras 2.2.4 CSVLogger: ``epoch`` then sorted(logs): acc, loss, lr, val_acc, val_loss."""
    made = reduce_lr_on_plateau(VAL, initial_lr=0.01, factor=0.5, patience=2)
    rows = ["epoch,acc,loss,lr,val_acc,val_loss"]
    for e, logs in enumerate(keras22_logs(VAL, list(made.lr))):
        rows.append(
            ",".join(
                [str(e)]
                + [str(np.float32(logs[k])) for k in ("acc", "loss", "lr", "val_acc", "val_loss")]
            )
        )
    log = tmp_path / "training.log"
    log.write_text("\n".join(rows) + "\n")
    (record,) = sweep_json(log, 0.5, 2, tmp_path / "out")
    assert record["counterfactual_from"] is None
    assert record["lr"] == list(made.lr)


def test_keras22_several_trainings_in_one_folder_are_several_runs(tmp_path):
    logdir = tmp_path / "logs"
    a = write_keras22_fit(
        logdir / "events.out.tfevents.1500000000.host", keras22_logs(VAL[:5], [0.01] * 5), wall=1000
    )
    b = write_keras22_fit(
        logdir / "events.out.tfevents.1500000900.host",
        keras22_logs(VAL[:3], [0.02] * 3),
        wall=2000,
        histograms=False,
    )
    runs = load_logs(logdir)
    assert [(r.name, r.source, r.n_epochs) for r in runs] == [
        ("logs#1", f"{logdir}#1", 5),
        ("logs#2", f"{logdir}#2", 3),
    ]
    assert runs[1].values("lr") == [f32(0.02)] * 3
    note = (
        f"{logdir}: holds 2 trainings (a new one starts with each event file that goes "
        f"back to epoch 0: {b.name}); this is training #"
    )
    assert runs[0].warnings == [note + f"1, {a.name}"]
    assert runs[1].warnings == [note + f"2, {b.name}"]
    (second,) = load_logs(f"{logdir}#2")
    assert second.values("val_loss") == [f32(v) for v in VAL[:3]]
    with pytest.raises(AmbiguousLog, match=r": holds 2 trainings; name one as .*#1 \.\.\. "):
        load_run(logdir)


def test_keras22_resumed_fit_replaces_from_its_first_epoch(tmp_path):
    logdir = tmp_path / "logs"
    write_keras22_fit(
        logdir / "events.out.tfevents.1500000000.host", keras22_logs(VAL[:6], [0.01] * 6), wall=1000
    )
    resumed = keras22_logs([0.5, 0.4, 0.3, 0.2], [0.01] * 4, first=4)
    b = write_keras22_fit(
        logdir / "events.out.tfevents.1500000900.host", resumed, first=4, wall=2000
    )
    run = load_run(logdir)
    assert run.values("val_loss") == [f32(v) for v in [*VAL[:4], 0.5, 0.4, 0.3, 0.2]]
    assert run.warnings == [
        f"{b}: starts at epoch 4 after events.out.tfevents.1500000000.host reached epoch 5 (a "
        "fit resumed from epoch 4); its values replace epoch 4 and later"
    ]


def test_tf1_flat_folder_without_loss_is_not_read_as_keras(tmp_path):
    """A flat folder of another tool's scalars (no ``loss``, names with ``/``) is no Keras 2 log."""
    path = tmp_path / "logs/events.out.tfevents.1"
    path.parent.mkdir(parents=True)
    path.write_bytes(
        b"".join(
            frame_record(e)
            for e in [
                file_version_event(),
                scalar_event("Loss/train", 1.0, 0, as_tensor=False),
                scalar_event("epoch", 0.0, 0, as_tensor=False),
            ]
        )
    )
    # Issue 20: such folders are read for what they are (an ``epoch`` scalar beside the
    # steps: Lightning's TensorBoardLogger), never as Keras's layout, and say so.
    run = load_run(tmp_path / "logs")
    assert run.format != "tensorboard"
    assert any("read as PyTorch Lightning TensorBoardLogger events" in w for w in run.warnings)


# --------------------------------------------------------------------------- Keras 3, real

KERAS3_FACTOR, KERAS3_PATIENCE = 0.2, 2
ORDERS = {
    # ReduceLROnPlateau before TensorBoard: TensorBoard shows each cut one epoch early.
    "plateau-first": AFTER,
    # TensorBoard before ReduceLROnPlateau: it shows the rate during each epoch.
    "tensorboard-first": DURING,
}


def keras3_fit(root: Path, order: str) -> list[float]:
    """A tiny regression fit with real callbacks; returns the rate during each epoch."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x @ rng.normal(size=8) + rng.normal(scale=2.0, size=256)).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "mse")
    rates: list[float] = []

    class RecordRate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(float(np.asarray(self.model.optimizer.learning_rate)))

    plateau = keras.callbacks.ReduceLROnPlateau(factor=KERAS3_FACTOR, patience=KERAS3_PATIENCE)
    board = keras.callbacks.TensorBoard(str(root / "tb"))
    csv = keras.callbacks.CSVLogger(str(root / "training.log"))  # after the plateau: has its rate
    first = [plateau, board] if order == "plateau-first" else [board, plateau]
    model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=16,
        batch_size=32,
        verbose=0,
        callbacks=[RecordRate(), *first, csv],
    )
    return rates


@pytest.fixture(scope="module")
def keras3_runs(tmp_path_factory) -> dict[str, tuple[Path, list[float]]]:
    out = {}
    for order in ORDERS:
        root = tmp_path_factory.mktemp(order)
        out[order] = (root, keras3_fit(root, order))
        alone = root / "alone"
        shutil.copytree(root / "tb", alone / "tb")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS)
def test_keras3_writes_what_its_source_says(keras3_runs, order):
    root, rates = keras3_runs[order]
    assert len(set(rates)) >= 3, rates  # at least two real cuts
    csv = load_csv(root / "training.log")
    assert csv.values("learning_rate") == rates  # ReduceLROnPlateau's logs: before its cut
    (run,) = load_logs(root / "alone/tb")
    written = list(run.lr_reading.written)
    if ORDERS[order] == AFTER:  # TensorBoard read the optimizer after the cut
        assert written[:-1] == rates[1:] and written != rates
    else:
        assert written == rates


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS)
def test_keras3_tensorboard_beside_its_csvlogger_is_aligned(keras3_runs, order):
    root, rates = keras3_runs[order]
    (run,) = load_logs(root / "tb")
    assert (run.lr_reading.order, run.lr_reading.evidence) == (ORDERS[order], "csv")
    assert run.values("learning_rate") == rates
    assert f"the learning rate of {root / 'training.log'} (same training) shows it" in (
        run.lr_reading.note
    )
    assert run.lr_reading.note in run.warnings


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS)
def test_keras3_tensorboard_alone_is_aligned_by_the_settings_that_reproduce_it(keras3_runs, order):
    root, rates = keras3_runs[order]
    (run,) = load_logs(root / "alone/tb")
    assert run.lr_reading.evidence == "default"
    aligned = align_lr(run, ("val_loss",), (1e-4,))
    assert (aligned.lr_reading.order, aligned.lr_reading.evidence) == (ORDERS[order], "settings")
    assert aligned.values("learning_rate") == rates
    assert (
        f"ReduceLROnPlateau(monitor='val_loss', factor={KERAS3_FACTOR}, patience="
        f"{KERAS3_PATIENCE}, min_delta=0.0001, cooldown=0) reproduces its cuts so"
    ) in aligned.lr_reading.note
    (r,) = sweep([aligned], plateau_grid(KERAS3_FACTOR, KERAS3_PATIENCE)).records
    assert r["counterfactual_from"] is None and r["lr"] == rates


@pytest.mark.slow
@pytest.mark.parametrize("where", ["tb", "alone/tb"])
@pytest.mark.parametrize("order", ORDERS)
def test_keras3_sweep_of_the_generating_setting_is_exact(keras3_runs, order, where, tmp_path):
    """The issue's proof: ``replay sweep TBDIR`` with the setting that made the run reports
    counterfactual_from null and the optimizer's own float32 rates, in either order, with
    or without the CSVLogger file beside it."""
    root, rates = keras3_runs[order]
    (record,) = sweep_json(root / where, KERAS3_FACTOR, KERAS3_PATIENCE, tmp_path / "out")
    assert record["counterfactual_from"] is None
    assert record["lr"] == rates


@pytest.mark.slow
@pytest.mark.parametrize("scheduler_first", [True, False])
def test_keras3_learning_rate_scheduler_is_the_rate_during_each_epoch(tmp_path, scheduler_first):
    """LearningRateScheduler sets the rate at the start of each epoch: TensorBoard shows
    the rate during the epoch in either order, although it changes at step 1."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(128, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    rates: list[float] = []

    class RecordRate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(float(np.asarray(self.model.optimizer.learning_rate)))

    scheduler = keras.callbacks.LearningRateScheduler(lambda e: 0.01 * 0.9**e)
    board = keras.callbacks.TensorBoard(str(tmp_path / "tb"))
    first = [scheduler, board] if scheduler_first else [board, scheduler]
    model.fit(
        x,
        x.sum(axis=1),
        validation_split=0.25,
        epochs=6,
        verbose=0,
        callbacks=[*first, RecordRate()],
    )
    (run,) = load_logs(tmp_path / "tb")
    assert run.lr_reading.evidence == "first-epoch"  # the loader alone assumes a cut
    aligned = align_lr(run)
    assert (aligned.lr_reading.order, aligned.lr_reading.evidence) == (DURING, "settings")
    assert aligned.values("learning_rate") == rates


# --------------------------------------------------------------------------- tf.keras 2.21, real

TF_KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tf_keras as keras

    def fit(root, plateau_first, factor):
        keras.utils.set_random_seed(1)
        rng = np.random.default_rng(1)
        x = rng.normal(size=(256, 8)).astype("float32")
        y = ((x @ rng.normal(size=8) + rng.normal(scale=2.0, size=256)) > 0).astype("float32")
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "binary_crossentropy",
                      metrics=["acc"])
        rates = []

        class RecordRate(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                rates.append(float(keras.backend.get_value(self.model.optimizer.lr)))

        plateau = keras.callbacks.ReduceLROnPlateau(factor=factor, patience=2)
        board = keras.callbacks.TensorBoard(os.path.join(root, "tb"))
        csv = keras.callbacks.CSVLogger(os.path.join(root, "training.log"))
        first = [plateau, board, csv] if plateau_first else [board, csv, plateau]
        model.fit(x, y, validation_split=0.25, epochs=16, batch_size=32, verbose=0,
                  callbacks=[RecordRate(), *first])
        with open(os.path.join(root, "rates.json"), "w") as f:
            json.dump(rates, f)

    out = sys.argv[1]
    fit(os.path.join(out, "plateau-first"), True, 0.5)
    fit(os.path.join(out, "tensorboard-first"), False, 0.5)
    fit(os.path.join(out, "factor-0.1"), True, 0.1)
""")


@pytest.fixture(scope="module")
def tf_keras_runs(tmp_path_factory) -> Path:
    """tf.keras 2.21 fits (in a subprocess); ``<root>/<case>/{tb,training.log,rates.json}``."""
    pytest.importorskip("tf_keras")
    root = tmp_path_factory.mktemp("tf_keras")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", TF_KERAS_SCRIPT, str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return root


def tf_keras_rates(root: Path, case: str) -> list[float]:
    return json.loads((root / case / "rates.json").read_text())


@pytest.mark.slow
def test_tf_keras_csvlogger_names_lr_and_acc(tf_keras_runs):
    rates = tf_keras_rates(tf_keras_runs, "plateau-first")
    assert len(set(rates)) >= 3, rates
    run = load_csv(tf_keras_runs / "plateau-first/training.log")
    assert list(run.metrics.columns) == ["acc", "loss", "lr", "val_acc", "val_loss"]
    assert run.lr_column == "lr"
    assert [f32(v) for v in run.values("lr")] == rates  # str(np.float32): "0.05"
    assert run.values("val_accuracy") == run.values("val_acc")
    # Listed after ReduceLROnPlateau's turn, CSVLogger's keys (from the first epoch) lack lr.
    later = load_csv(tf_keras_runs / "tensorboard-first/training.log")
    assert list(later.metrics.columns) == ["acc", "loss", "val_acc", "val_loss"]


@pytest.mark.slow
def test_tf_keras_tensorboard_epoch_lr_is_the_rate_during_each_epoch(tf_keras_runs):
    rates = tf_keras_rates(tf_keras_runs, "plateau-first")
    (run,) = load_logs(tf_keras_runs / "plateau-first/tb")
    assert list(run.metrics.columns) == ["acc", "loss", "lr", "val_acc", "val_loss"]
    assert run.values("lr") == rates
    assert (run.lr_reading.order, run.lr_reading.evidence) == (DURING, "tag")
    # TensorBoard before ReduceLROnPlateau: logs['lr'] is not set yet, no rate at all.
    (later,) = load_logs(tf_keras_runs / "tensorboard-first/tb")
    assert later.lr_column is None and later.lr_reading is None


@pytest.mark.slow
@pytest.mark.parametrize("log", ["training.log", "tb"])
def test_tf_keras_sweep_of_the_generating_setting_is_exact(tf_keras_runs, log, tmp_path):
    rates = tf_keras_rates(tf_keras_runs, "plateau-first")
    (record,) = sweep_json(tf_keras_runs / "plateau-first" / log, 0.5, 2, tmp_path / "out")
    assert record["counterfactual_from"] is None
    assert record["lr"] == rates


@pytest.mark.slow
def test_tf_keras_float32_cuts_replay_exactly(tf_keras_runs):
    """tf.keras 2.21 under NumPy 2 cuts in float32 (``old_lr * factor`` with ``old_lr`` a
    NumPy float32): the tf_keras dialect reproduces its rates bit for bit, where the Keras 3
    policy (float64 product, rounded once) differs in the last bit from the first cut."""
    from replay.engine.dialects import tf_keras as tf_keras_dialect

    rates = tf_keras_rates(tf_keras_runs, "factor-0.1")
    assert len(set(rates)) >= 2, rates
    run = load_csv(tf_keras_runs / "factor-0.1/training.log")
    val_loss = run.values("val_loss")
    cuts = tuple(i - 1 for i in range(1, len(rates)) if rates[i] != rates[i - 1])
    replayed = tf_keras_dialect.reduce_lr_on_plateau(
        val_loss, initial_lr=rates[0], factor=0.1, patience=2
    )
    assert replayed.reductions[: len(cuts)] == cuts
    assert list(replayed.lr) == rates
    keras3 = reduce_lr_on_plateau(val_loss, initial_lr=rates[0], factor=0.1, patience=2)
    assert keras3.reductions == replayed.reductions and list(keras3.lr) != rates
