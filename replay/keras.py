"""Record any Keras model: ``RecordCallback`` writes a run directory during ``model.fit``.

    from replay.keras import RecordCallback

    model.fit(x, y, epochs=20, validation_data=(x_val, y_val),
              callbacks=[RecordCallback("runs/my-run", test_data=(x_test, y_test))])

The directory is the one ``replay record`` writes (``docs/run-directory.md``), so
``replay sweep``, ``show`` and ``pick`` read it as they read an MNIST run. After each
epoch it commits, in ``replay record``'s order
(:meth:`replay.recording.run_writer.RunWriter.commit`):
the checkpoint (the ``.keras`` file of the model at the epoch's end, built from a
copy of its config and variables taken then: :mod:`replay.recording.checkpoint_image`), the
metrics.csv row,
TensorBoard scalars and weight histograms, run.json, written by a background thread
while the next epoch trains. Columns: every
metric of the fit's logs (``loss`` first, then its ``val_`` twins), the held-out
``test_*`` metrics when ``test_data`` is given (``model.evaluate`` after each epoch),
then ``learning_rate`` (the optimizer's rate at the epoch's first training step: the
rate in effect during the epoch, whatever set it, a ``LearningRateScheduler``, a
``ReduceLROnPlateau`` of the epoch before or a schedule) and ``epoch_seconds``. The
observe-only ``EarlyStopping`` callbacks of ``replay record`` ride along for the monitors
the logs have; a live callback's stop request (a real ``EarlyStopping``) is left alone.

run.json has ``config: null`` and ``data: null`` (no MNIST recipe) and a ``model``
object describing what was recorded. A fit that stops (an exception, Ctrl-C, a kill)
leaves every committed epoch; a later fit with ``initial_epoch`` equal to the committed
epochs continues the run (:func:`restore` gives that model and epoch); any other
``initial_epoch`` is refused before training, as is a directory that holds anything but
such a run. ``replay record`` trains through the same commit callback
(:func:`commit_callback`).

Keras is imported when ``RecordCallback`` is first used, never by importing this module.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analysis.errors import ReplayError
from analysis.reading.rundir import MANIFEST, atomic_write, read_manifest
from replay.recipe import recipe_record
from replay.recording.faults import BadConfig, Hooks
from replay.recording.resume import ResumePlan, plan_resume
from replay.recording.run_dir_check import OutRules, check_out
from replay.recording.run_writer import (
    SHADOW_EARLY_STOPPING,
    Board,
    RunExists,
    RunWriter,
    Shadow,
    WriteFailed,
    header,
    load_checkpoint,
    lock_dir,
    new_manifest,
    read_columns,
    read_rows,
    utc_now,
    versions,
)

__all__ = [  # noqa: F822 (RecordCallback is lazy)
    "RecordCallback",
    "commit_callback",
    "fit",
    "metric_columns",
    "restore",
    "wait_for_commits",
]

RECORDER = "replay.keras.RecordCallback"
"""run.json's ``model.recorder`` of a run written by :class:`RecordCallback`."""

_CLASSES: dict[str, type] = {}
_HELD: dict[str, int] = {}  # resolved run directory -> flock descriptor held by this process
_OPEN: dict[str, Any] = {}  # resolved run directory -> the writer of a fit not yet ended


@atexit.register
def _mark_stopped_fits() -> None:
    """At exit, mark ``interrupted`` the runs of fits that raised outside our callbacks
    (Ctrl-C in a training step: Keras then calls no callback); each ends on a whole commit."""
    for writer in list(_OPEN.values()):
        if writer.manifest and writer.manifest.get("status") == "running":
            writer._abandon()  # after the commit in flight


_WRITERS: dict[str, Any] = {}  # resolved run directory -> its last writer in this process


def wait_for_commits(out: str | os.PathLike[str] | None = None) -> None:
    """Wait until the epochs this process handed to the background committer of run
    ``out`` (of every run when None) are on disk. A fit that ends normally waits by
    itself; after a fit that raised (a later callback's error, Ctrl-C), the commit in
    flight finishes in the background, before the process exits; :func:`restore` and a
    new :class:`RecordCallback` on that run wait for it first. Its error, if any, is moot
    (the run keeps the epochs committed before)."""
    keys = list(_WRITERS) if out is None else [str(Path(out).resolve())]
    for key in keys:
        writer = _WRITERS.get(key)
        if writer is not None:
            with contextlib.suppress(BaseException):
                writer.committer.wait()


class WrongEpoch(ReplayError):
    """``fit``'s ``initial_epoch`` is not the number of epochs the run has committed."""


def __getattr__(name: str) -> Any:
    if name == "RecordCallback":
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def metric_columns(logs: dict[str, Any], test: dict[str, Any] | None = None) -> tuple[str, ...]:
    """metrics.csv's columns for an epoch's ``logs`` (and ``test_`` logs): ``epoch``, the
    training metrics (``loss`` first), their ``val_`` twins, any other ``val_`` metric,
    the ``test_`` metrics in the same order, then ``learning_rate`` and ``epoch_seconds``.

    >>> metric_columns({"accuracy": 1, "loss": 2, "val_loss": 3, "val_accuracy": 4})
    ('epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'learning_rate', 'epoch_seconds')
    """
    own = ("epoch", "learning_rate", "lr", "epoch_seconds")
    names = [k for k in logs if k not in own]
    train = sorted((k for k in names if not k.startswith("val_")), key=lambda k: k != "loss")
    val = [k for k in (f"val_{t}" for t in train) if k in logs]
    val += [k for k in names if k.startswith("val_") and k not in val]
    tests = [k for k in (f"test_{t}" for t in train) if k in (test or {})]
    tests += [k for k in (test or {}) if k not in tests and k not in own]
    return ("epoch", *train, *val, *tests, "learning_rate", "epoch_seconds")


def current_rate(model: Any) -> float:
    """The optimizer's learning rate now (a schedule's value at the next step)."""
    return float(model.optimizer.learning_rate)


def commit_callback(writer: RunWriter, test_data: Any = None, test_batch_size: int | None = None):
    """A Keras callback that commits each epoch of a ``fit`` through ``writer``
    (:meth:`replay.recording.run_writer.RunWriter.commit`), with the ``test_`` metrics of
    ``test_data`` (a dataset, or ``(x, y)`` / ``(x, y, sample_weight)`` arrays)."""
    return _classes()["CommitCallback"](writer, test_data, test_batch_size)


def restore(out: str | os.PathLike[str]) -> tuple[Any, int]:
    """Return ``(model, initial_epoch)`` to continue a run :class:`RecordCallback` wrote:
    its last committed checkpoint (size and sha256 verified, loaded with
    ``safe_mode=True``) and the number of committed epochs.

    Raises:
        ReplayError: no such run, no epoch committed yet (start a new model at epoch 0),
            a damaged run or checkpoint (one line each).
    """
    root = Path(out)
    wait_for_commits(root)
    manifest, rows, plan = _plan(root)
    if plan.load is None:
        raise WrongEpoch(
            f"{root}: no epoch committed yet; fit a new model from initial_epoch=0 "
            "with RecordCallback"
        )
    if plan.verify is not None:
        RunWriter(root, Hooks())._verify(plan.verify)
    return load_checkpoint(root / plan.load), plan.committed


def _plan(root: Path) -> tuple[dict[str, Any], list[dict[str, float]] | None, ResumePlan]:
    """run.json (a RecordCallback run's), the complete rows and the plan to continue."""
    if not (root / MANIFEST).is_file():
        raise BadConfig(f"{root}: no run.json, so there is no run recorded by RecordCallback")
    manifest = read_manifest(root, resume=True)
    model = manifest.get("model")
    if not (isinstance(model, dict) and model.get("recorder") == RECORDER):
        raise RunExists(
            f"{root}: holds a run recorded by `replay record`; continue it with "
            f"replay record --resume --out {root}, or record into another directory"
        )
    csv = root / "metrics.csv"
    rows = read_rows(csv, columns=None) if csv.is_file() else None
    ckdir = root / "checkpoints"
    files = [p.name for p in ckdir.iterdir() if p.is_file()] if ckdir.is_dir() else []
    return manifest, rows, plan_resume(manifest, rows, files, root=root)


# What RecordCallback says of an ``out`` it will not record into (replay.recording.run_dir_check):
# a run is continued if this callback recorded it (_plan refuses any other).
OUT_RULES = OutRules(
    run=None,
    other="{out} is not empty and holds no run.json; record into an empty or new directory",
    file_hint="; pass a directory for the run",
)


def _check_out(out: Path) -> None:
    """Refuse, before any training, a run directory that cannot be one."""
    check_out(out, OUT_RULES)


def _check_test_data(data: Any) -> None:
    """Refuse, before any training, ``test_data`` that cannot give ``test_`` metrics:
    a sequence that is not ``(x, y)`` or ``(x, y, sample_weight)``, or inputs alone (an
    array or tensor: no targets to score)."""
    if data is None:
        return
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 3):
            raise BadConfig(
                f"test_data must be (x, y) or (x, y, sample_weight) but got {len(data)} "
                "item(s); pass the held-out inputs with their targets"
            )
    elif hasattr(data, "shape"):
        raise BadConfig(
            f"test_data must be (x, y), (x, y, sample_weight) or a dataset of (x, y) batches "
            f"but got inputs alone ({type(data).__name__} of shape {tuple(data.shape)}); pass "
            "test_data=(x_test, y_test)"
        )


def _name(thing: Any) -> str | None:
    if thing is None or isinstance(thing, str):
        return thing
    return getattr(thing, "name", None) or getattr(thing, "__name__", None) or type(thing).__name__


def _samples(data: Any) -> int | None:
    if isinstance(data, (tuple, list)) and data and hasattr(data[0], "shape"):
        return int(data[0].shape[0])
    return None


class _UserRun(RunWriter):
    """The run directory of :class:`RecordCallback`: any model, columns from its logs."""

    def __init__(self, out: Path, hooks: Hooks) -> None:
        super().__init__(out, hooks)
        self.columns = None  # from metrics.csv's header, or the first epoch's logs
        self.histograms = True  # TensorBoard weight histograms after each epoch
        self.replayed = False  # shadows built and fed the committed rows

    def open(self, model: Any, epoch: int, description: dict[str, Any],
             extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Start the run, or continue it when ``epoch`` is its number of committed epochs.

        Raises:
            WrongEpoch: ``epoch`` is not where the run stands.
            RunExists: the directory holds a ``replay record`` run.
            BadManifest, BadLog, ChecksumMismatch, LogNotFound: a damaged run.
        """
        self.model = model
        if (self.out / MANIFEST).is_file():
            self._continue(epoch)
        elif epoch != 0:
            raise WrongEpoch(
                f"{self.out}: holds no run yet, but fit starts at epoch {epoch}; a new run "
                "starts at initial_epoch=0"
            )
        else:
            self._start(description, extra or {})
        self.board = Board(self.out / "tensorboard", self.histograms)

    def _start(self, description: dict[str, Any], extra: dict[str, Any]) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckdir.mkdir(exist_ok=True)
        (self.out / "tensorboard").mkdir(exist_ok=True)
        self.manifest = new_manifest(self.out, _argv(), model=description, **extra)
        self._write_manifest()

    def _continue(self, epoch: int) -> None:
        manifest, rows, plan = _plan(self.out)
        if plan.committed != epoch:
            what = (
                "already holds a run with"
                if epoch == 0
                else f"fit starts at initial_epoch={epoch} but the run has"
            )
            raise WrongEpoch(
                f"{self.out}: {what} {plan.committed} committed epoch(s); continue it "
                f"with model.fit(..., initial_epoch={plan.committed}) and the model "
                "replay.keras.restore() returns, or record into another directory"
            )
        if plan.verify is not None:
            self._verify(plan.verify)
        if rows is not None:
            self.columns = read_columns(self.csv)
        self._apply(plan, manifest, rows or [])
        self.rows = rows or []
        self.manifest = manifest
        self.manifest["resumed"].append(
            {"at": utc_now(), "from_epoch": plan.committed, "argv": _argv(), "versions": versions()}
        )
        self.manifest["status"] = "running"
        self._write_manifest()

    def commit(
        self, epoch: int, logs: dict[str, Any], learning_rate: float, seconds: float
    ) -> dict[str, float]:
        if self.columns is None:
            test = {k: v for k, v in logs.items() if k.startswith("test_")}
            train = {k: v for k, v in logs.items() if k not in test}
            self.columns = metric_columns(train, test)
            atomic_write(self.csv, header(self.columns))
            self.manifest["columns"] = list(self.columns)
        if not self.replayed:
            self._replay_shadows()
        return super().commit(epoch, logs, learning_rate, seconds)

    def _replay_shadows(self) -> None:
        """The observe-only EarlyStopping callbacks whose monitor the run logs, fed the
        committed rows. Built after the first trained epoch of this fit: Keras's ``mode
        "auto"`` needs the model's compiled metrics, which training builds."""
        import keras

        monitors = [(m, p) for m, p in SHADOW_EARLY_STOPPING if m in self.columns]
        self.shadows = [Shadow(keras, self.model, m, p) for m, p in monitors]
        for row in self.rows:
            self._callbacks(int(row["epoch"]), self._logs(row))
        self.replayed = True

    def finish(self) -> None:
        """Mark the run complete (the fit ended) once its last epoch is committed."""
        self.drain()
        self.manifest["status"] = "complete"
        self._write_manifest()

    def close(self) -> None:
        with contextlib.suppress(BaseException):  # an error was raised by now, or is moot
            self.committer.wait()
        if self.board is not None:
            self.board.close()
            self.board = None


def _argv() -> list[str]:
    argv = list(sys.argv)
    if argv:
        argv[0] = Path(argv[0]).name
    return argv


def _describe(model: Any, params: dict[str, Any], test_data: Any) -> dict[str, Any]:
    """run.json's ``model``: what was recorded, as far as the model tells."""
    try:
        parameters = int(model.count_params())
    except ValueError:  # not built
        parameters = None
    optimizer = getattr(model, "optimizer", None)
    return {
        "recorder": RECORDER,
        "name": getattr(model, "name", None),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "parameters": parameters,
        "optimizer": _name(type(optimizer)) if optimizer is not None else None,
        "initial_learning_rate": current_rate(model) if optimizer is not None else None,
        "loss": _name(getattr(model, "loss", None)),
        "epochs": params.get("epochs"),
        "steps_per_epoch": params.get("steps"),
        "test_samples": _samples(test_data),
        "test_data": test_data is not None,
    }


def determinism(seed: int | None) -> dict[str, Any]:
    """run.json's ``determinism`` of a run recorded through a recipe: the seed of the
    model's seed generators, the Keras backend, and whether TensorFlow's op determinism
    was on (null on other backends)."""
    import keras

    backend = keras.backend.backend()
    op = None
    if backend == "tensorflow":
        from tensorflow.python.framework import config  # no public reader of the switch

        op = bool(config.is_op_determinism_enabled())
    return {"seed": seed, "backend": backend, "op_determinism": op,
            "seed_generators": "replay.inputs.generator_state(seed, epoch, index)"}  # fmt: skip


def fit(model: Any, recipe: Any, *, epochs: int, initial_epoch: int = 0,
        callbacks: Any = (), verbose: Any = "auto") -> Any:  # fmt: skip
    """``model.fit`` with a :class:`replay.recipe.Recipe`'s data, reproducibly: the
    recipe's training source set to each epoch (and the model's seed generators to
    ``(recipe.seed, epoch)``) by :func:`replay.inputs.epoch_callback`, ``shuffle=False``,
    then the recipe's callbacks and ``callbacks`` (a :class:`RecordCallback` among them
    records the recipe's input order, seed and ``test_data``). Returns the History.

    Put a live callback that changes the learning rate (``ReduceLROnPlateau``) before the
    ``RecordCallback``, so that the checkpoint holds the rate the next epoch starts with.
    """
    from replay.inputs import epoch_callback
    from replay.recipe import BadRecipe, Recipe

    if isinstance(recipe, dict):
        recipe = Recipe(**recipe)
    if not isinstance(recipe, Recipe):
        raise BadRecipe(f"fit: expected a replay.recipe.Recipe but got {type(recipe).__name__}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if hasattr(callback, "attach"):
            callback.attach(recipe)
    return model.fit(
        recipe.train,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=recipe.validation_data,
        shuffle=False,
        verbose=verbose,
        callbacks=[epoch_callback(recipe.train, seed=recipe.seed), *recipe.callbacks, *callbacks],
        **recipe.fit_kwargs,
    )


def _classes() -> dict[str, type]:
    """Build the callback classes on first use (importing Keras then)."""
    if _CLASSES:
        return _CLASSES
    import keras

    class CommitCallback(keras.callbacks.Callback):
        """Commits each epoch of one ``fit`` through a
        :class:`replay.recording.run_writer.RunWriter`."""

        def __init__(self, writer: Any, test_data: Any = None, test_batch_size: Any = None):
            super().__init__()
            self.writer = writer
            self.test_data = test_data
            self.test_batch_size = test_batch_size
            self.epoch = 0
            self.rate: float | None = None
            self.began = 0.0
            self.finished = False  # the writer says the run needs no more epochs
            hooks = writer.hooks if writer is not None else Hooks.from_env()
            if hooks.wants("in_fit"):  # fault tests only: a batch-end method makes
                # Keras wait for every batch's logs (no async dispatch), so a fit that
                # is not under test has none
                self.on_train_batch_end = self._in_fit

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.writer.hooks("epoch_start", epoch)
            self.epoch, self.rate, self.began = epoch, None, time.perf_counter()

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if self.rate is None:  # after every callback's on_epoch_begin (a scheduler's)
                self.rate = current_rate(self.model)

        def _in_fit(self, batch: int, logs: Any = None) -> None:
            if batch == 0:
                self.writer.hooks("in_fit", self.epoch)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            values = dict(logs or {})
            values.update(self._test())
            seconds = time.perf_counter() - self.began
            rate = self.rate if self.rate is not None else current_rate(self.model)
            self.writer.commit(epoch, values, rate, seconds)
            if self.writer._finished(epoch):
                self.finished = self.model.stop_training = True

        def _test(self) -> dict[str, float]:
            if self.test_data is None:
                return {}
            data = self.test_data
            if isinstance(data, (tuple, list)):  # (x, y) or (x, y, sample_weight)
                x, y, *weights = data
                found = self.model.evaluate(
                    x,
                    y,
                    sample_weight=weights[0] if weights else None,
                    batch_size=self.test_batch_size,
                    verbose=0,
                    return_dict=True,
                )
            else:
                found = self.model.evaluate(data, verbose=0, return_dict=True)
            return {f"test_{k}": float(v) for k, v in found.items()}

    class RecordCallback(CommitCallback):
        """Record this ``fit`` into the run directory ``out`` (see :mod:`replay.keras`).

        ``test_data``: held-out data, ``(x, y)`` arrays or a dataset, evaluated after each
        epoch into ``test_*`` columns (``test_batch_size`` for arrays; Keras's default
        otherwise). ``out`` must be new, empty, or a run this callback recorded whose
        committed epochs equal the fit's ``initial_epoch``.

        ``histograms=False`` leaves out the TensorBoard weight histograms (their cost
        grows with the model; they are written off the training path either way).

        ``recipe``: ``module:function`` or ``path/to/train.py:function`` returning a
        :class:`replay.recipe.Recipe` (called with ``recipe_args``, JSON values); run.json
        then records it with its file's sha256, and ``replay branch`` can train the run
        again. Train through :func:`replay.keras.fit`, which also records the input order.

        Raises (one line each, before anything is trained or written):
            RunExists: ``out`` is a file, or a directory holding anything else, or is
                being written by another process.
            WrongEpoch: ``initial_epoch`` is not the run's number of committed epochs.
        """

        def __init__(
            self,
            out: str | os.PathLike[str],
            test_data: Any = None,
            *,
            test_batch_size: int | None = None,
            recipe: str | None = None,
            recipe_args: dict[str, Any] | None = None,
            histograms: bool = True,
        ) -> None:
            if test_batch_size is not None and not (
                isinstance(test_batch_size, int) and test_batch_size >= 1
            ):
                raise BadConfig(f"test_batch_size must be at least 1 but got {test_batch_size!r}")
            self.out = Path(out)
            _check_out(self.out)
            _check_test_data(test_data)
            super().__init__(None, test_data, test_batch_size)
            self._opened = False
            self._created = False
            self.histograms = bool(histograms)
            self.recipe = None if recipe is None else recipe_record(recipe, self.out, recipe_args)
            self.input_order: dict[str, Any] | None = None  # set by replay.keras.fit
            self.seed: int | None = None

        def attach(self, made: Any) -> None:
            """Take what ``replay.keras.fit`` trains with from its :class:`Recipe`: the
            input order and seed to record, and its ``test_data`` unless given here."""
            from replay.inputs import describe

            self.input_order = describe(made.train)
            self.seed = made.seed
            if self.test_data is None and made.test_data is not None:
                _check_test_data(made.test_data)
                self.test_data = made.test_data
                self.test_batch_size = made.test_batch_size

        def on_train_begin(self, logs: Any = None) -> None:
            _check_out(self.out)
            self._created = not self.out.exists()
            try:
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RunExists(f"{self.out}: cannot be created ({e.strerror or e})") from None
            key = str(self.out.resolve())
            wait_for_commits(self.out)  # a fit of this process that stopped with an error
            if key in _HELD:  # left by such a fit
                os.close(_HELD.pop(key))
            _HELD[key] = lock_dir(self.out, RunExists, "process")
            self.writer = _WRITERS[key] = _UserRun(self.out, Hooks.from_env())
            self.writer.histograms = self.histograms
            _OPEN[key] = self.writer
            self._opened = False

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if not self._opened:
                try:
                    with self._guard():
                        description = _describe(self.model, self.params or {}, self.test_data)
                        self.writer.open(self.model, epoch, description, self._extra())
                except WrongEpoch:
                    if self._created:  # refused: leave no empty directory behind
                        with contextlib.suppress(OSError):
                            self.out.rmdir()
                    raise
                self._opened = True
            super().on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            with self._guard(abandon=True):
                super().on_epoch_end(epoch, logs)

        def on_train_end(self, logs: Any = None) -> None:
            if self._opened:
                with self._guard(abandon=True):  # the last commit may fail in the background
                    self.writer.finish()
            self._release()

        def _extra(self) -> dict[str, Any]:
            """run.json's ``recipe``, ``input_order`` and ``determinism`` of a new run."""
            if self.recipe is None and self.input_order is None:
                return {}
            return {"recipe": self.recipe, "input_order": self.input_order,
                    "determinism": determinism(self.seed)}  # fmt: skip

        @contextlib.contextmanager
        def _guard(self, abandon: bool = False) -> Iterator[None]:
            """On an error: mark the run interrupted (``abandon``: a commit failed),
            release it, re-raise (an ``OSError`` as one line, :class:`WriteFailed`)."""
            try:
                yield
            except BaseException as error:
                if abandon and self.writer.manifest:
                    self.writer._abandon()
                self._release()
                if isinstance(error, OSError):
                    done = len(self.writer.rows)
                    how = f"model.fit(..., initial_epoch={done}) on replay.keras.restore()'s model"
                    raise WriteFailed(self.out, done, error, how) from None
                raise

        def _release(self) -> None:
            if self.writer is not None:
                self.writer.close()
            _OPEN.pop(str(self.out.resolve()), None)
            fd = _HELD.pop(str(self.out.resolve()), None)
            if fd is not None:
                os.close(fd)

    CommitCallback.__module__ = RecordCallback.__module__ = __name__
    _CLASSES.update(CommitCallback=CommitCallback, RecordCallback=RecordCallback)
    return _CLASSES
