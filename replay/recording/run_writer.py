"""The run writer: a run directory committed epoch by epoch, for ``replay record``'s MNIST
recipe (:mod:`replay.mnist.record`) and for any Keras model (:mod:`replay.keras`'s
``RecordCallback``), its commits in order in a background thread while the next epoch
trains. The commit order, resume and Ctrl-C are described in :mod:`replay.mnist.record`.

TensorFlow and Keras are imported only inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import math
import os
import platform
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import BadLog, ChecksumMismatch, LogNotFound, ReplayError
from analysis.reading.rundir import (
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
    sha256_file,
    temporary_path,
    verify_checkpoint,
    write_manifest,
)
from replay.recording.checkpoint_image import Image, Walk, checkpoint_image
from replay.recording.faults import Hooks
from replay.recording.resume import ResumePlan
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


# ---------------------------------------------------------------- metrics.csv


def _append_line(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def utc_now() -> str:
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
def locked(
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
    """Take the exclusive flock of :func:`locked` and return its descriptor (closing
    it releases the lock); raise ``error`` if another holder has it."""
    fd = lock_for_writing(out)  # waits out readers' probes: only a writer refuses
    if fd is None:
        raise error(f"{out} is being written by another {writer}")
    return fd


# ---------------------------------------------------------------- callbacks


class Shadow:
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


class LivePlateau:
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


MANIFEST_KEYS = (
    "schema_version", "name", "created", "updated", "status", "command", "argv", "resumed",
    "config", "model", "data", "versions", "determinism", "columns", "checkpoints_included",
    "epochs", "shadow",
)  # fmt: skip
"""run.json's keys in the order every recorder writes them (``model``: a user's run only)."""


def new_manifest(out: Path, argv: list[str], **fields: Any) -> dict[str, Any]:
    """run.json of a run before its first epoch, for every recorder: ``replay record``'s
    (``command``, ``config``, ``data``, ``determinism``, ``columns``), a
    :class:`replay.keras.RecordCallback` run and a branch of one (``model``, ...).
    ``fields`` set keys of :data:`MANIFEST_KEYS` in their place (the others null or
    empty) and add any other after them, in the order given."""
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": out.resolve().name,
        "created": utc_now(),
        "updated": None,
        "status": "running",
        "command": None,
        "argv": argv,
        "resumed": [],
        "config": None,
        "data": None,
        "versions": versions(),
        "determinism": None,
        "columns": None,
        "checkpoints_included": True,
        "epochs": [],
        "shadow": [],
        **fields,
    }
    place = {key: i for i, key in enumerate(MANIFEST_KEYS)}
    return dict(sorted(manifest.items(), key=lambda item: place.get(item[0], len(place))))


HISTOGRAM_BUCKETS = 30
"""TensorBoard's default bucket count (``histogram_pb``'s ``DEFAULT_BUCKET_COUNT``)."""


def histogram_summary(tag: str, values: Any) -> Any:
    """The ``Summary`` protobuf that TensorBoard's ``histogram_pb(tag, values)`` returns,
    byte for byte, about 20 times faster: its buckets are the same float64 arithmetic
    (each value's bucket ``floor((v - min) / width)``, clamped to the last), counted by
    ``np.bincount`` where ``histogram_pb`` sums a values x buckets one-hot matrix (about
    45 ms an epoch for a 670k-weight model). Empty, constant and non-finite data are left
    to ``histogram_pb`` itself."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.histogram import metadata
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb
    from tensorboard.util import tensor_util

    data = np.asarray(values, dtype=np.float64).ravel()
    low, high = (data.min(), data.max()) if data.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)) or high == low:
        return histogram_pb(tag, data)
    width = (high - low) / HISTOGRAM_BUCKETS
    index = np.floor((data - low) / width).astype(int)
    np.minimum(index, HISTOGRAM_BUCKETS - 1, out=index)
    counts = np.bincount(index, minlength=HISTOGRAM_BUCKETS)
    edges = np.linspace(low, high, HISTOGRAM_BUCKETS + 1)
    buckets = np.array([edges[:-1], edges[1:], counts]).transpose()
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=tag,
        metadata=metadata.create_summary_metadata(display_name=None, description=None),
        tensor=tensor_util.make_tensor_proto(buckets, dtype=np.float64),
    )
    return summary


class Board:
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

    def snapshot(
        self, model: Any, copies: dict[int, np.ndarray] | None = None
    ) -> list[tuple[str, np.ndarray]] | None:
        """``model``'s weights now, named by Keras's histogram tags (None: no histograms);
        ``copies``: values already copied, by the variable's ``id`` (a checkpoint image's)."""
        if model is None or not self.histograms:
            return None
        copies = copies or {}
        return [
            (
                weight.path.replace(":", "_") + "/histogram",
                copies[id(weight)] if id(weight) in copies else np.array(weight.numpy()),
            )
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
        # Keras's tag names ("dense_1/kernel/histogram")
        for name, values in weights:
            summary = histogram_summary(name, values)
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


class RunWriter:
    """One process writing one run directory: the per-epoch commit, and what a stop leaves.

    What is trained is the subclasses' business: :class:`Recorder` (``replay record``'s
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
        self.board: Board | None = None  # set while training
        self.shadows: list[Shadow] = []
        self.plateau: LivePlateau | None = None
        self.observed = 0  # epochs the callbacks have seen
        self.committer = _Committer()
        self.background = True  # commit while the next epoch trains
        self.walk = Walk()  # the saveables a checkpoint holds, found at the first commit

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
            # the state the next epoch starts from: a copy now, its file built in files()
            image = checkpoint_image(self.model, self.walk)
            weights = self.board.snapshot(self.model, image.copies)

            def files() -> None:
                self._commit_files(epoch, row, image, weights, seconds)

            if self.background:
                self.committer.submit(files)
            else:
                files()
        return row

    def _commit_files(self, epoch: int, row: dict[str, float], image: Image,
                      weights: list | None, seconds: float) -> None:  # fmt: skip
        """Steps 2 to 5 of the commit (module docstring), from the epoch's checkpoint
        image and weights: in the background committer while the next epoch trains."""
        entry = self._write_checkpoint(epoch, seconds, image.build())
        _append_line(self.csv, format_row(row, self.columns))
        self.rows.append(row)
        self.hooks("after_metrics_row", epoch)
        self.board.write(row, weights)
        self.hooks("after_tensorboard", epoch)
        self.manifest["epochs"].append(entry)
        self._write_manifest()
        self.hooks("after_manifest", epoch)

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
        return self._entry(epoch, seconds, hashlib.sha256(image).hexdigest())

    def _entry(self, epoch: int, seconds: float, sha256: str | None = None) -> dict[str, Any]:
        """run.json's entry of a committed epoch; ``sha256``: of the bytes just written
        (else the file is read)."""
        path = self.ckdir / checkpoint_name(epoch)
        if not path.is_file():
            raise LogNotFound(f"{path}: checkpoint of committed epoch {epoch} is missing")
        return {
            "epoch": epoch,
            "checkpoint": checkpoint_relpath(epoch),
            "sha256": sha256 or sha256_file(path),
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
        self.manifest["updated"] = utc_now()
        write_manifest(self.out, self.manifest)
