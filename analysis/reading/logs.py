"""Loading training logs: run directories, Keras CSVLogger files, TensorBoard log dirs.

Every loader returns a :class:`RunLog` whose ``table`` (and ``metrics`` frame) has one
row per epoch (0..n-1, contiguous) and one float64 column per metric, and whose
``absent`` array (and ``not_logged`` frame) marks the cells that were absent (``NA``,
empty, a missing epoch) as opposed to a logged NaN. Anything wrong with the input raises a
:class:`~analysis.errors.ReplayError` subclass whose message is one line naming the
file and what would fix it; recoverable oddities become ``RunLog.warnings``.

The stages: :mod:`analysis.reading.runlog` (the :class:`RunLog` type and how readers build one),
:mod:`analysis.reading.csvlog` (CSV files), this module (Keras TensorBoard directories), the
run-directory format (:mod:`analysis.reading.rundir`) and its reader
(:mod:`analysis.formats.run_dir`); detection in front of them all is
:mod:`analysis.formats`. ``RunLog``, ``load_csv`` and ``checkpoint_path`` are
re-exported here for the modules that import them from this one.

Decisions:

- A log with zero epochs is :class:`BadLog` ("has no epochs"): nothing can be replayed.
- CSV numbers are Python floats: ``nan``, ``inf``, ``-inf``, ``infinity`` in any case
  are values; a number beyond the float64 range (``1e400``) becomes +-inf with a warning.
  ``NA``, ``N/A`` (any case) and empty cells are "not logged".
- Duplicate epochs: the last row (CSV) or the latest wall time (TensorBoard) wins, with
  a warning naming the epochs. Missing epochs become not-logged rows, with a warning;
  a gap larger than ``10 * rows + 10000`` epochs is refused as BadLog (a damaged epoch
  column, not a log).
- A CSV whose last line has no newline and too few fields is a row cut off by a crash:
  it is dropped with a warning. Any other ragged row is BadLog. A file cut exactly at a
  line end (or an event file at a record end) cannot be told from a shorter log.
- Text is UTF-8 (a BOM is allowed) or UTF-16 with a BOM; anything else is BadLog.
- Cells are stripped of surrounding spaces; numbers are ASCII only and without ``_``
  (which Python's ``float`` would accept). A list-valued cell (``"[0.5, 0.25]"``, what
  CSVLogger writes for a vector metric) is BadLog like any non-numeric cell.
- No TensorFlow, keras or ``replay`` import, here or in :mod:`analysis.reading.tb`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from analysis.errors import (
    LogNotFound,
    ReplayError,
)
from analysis.names import lr_column
from analysis.reading.csvlog import SEPARATORS, load_csv, load_csv_runs, several_trainings
from analysis.reading.layouts import expected_layouts
from analysis.reading.lr_reading import read_order, with_reading
from analysis.reading.rundir import CheckpointInfo, checkpoint_path
from analysis.reading.runlog import RunLog, build, dir_name

__all__ = ["CheckpointInfo", "RunLog", "checkpoint_path", "load_csv", "load_tensorboard",
           "load_tensorboard_runs"]  # fmt: skip


# --------------------------------------------------------------------------- TensorBoard


def load_tensorboard(path: str | os.PathLike[str]) -> RunLog:
    """Load a Keras TensorBoard log directory of one training.

    See :func:`load_tensorboard_runs`.

    Raises:
        LogNotFound, BadLog: see :func:`load_tensorboard_runs`.
        AmbiguousLog: the directory holds several trainings.
    """
    runs = load_tensorboard_runs(path)
    if len(runs) > 1:
        raise several_trainings(os.fspath(path), len(runs))
    return runs[0]


def load_tensorboard_runs(
    path: str | os.PathLike[str], source: str | None = None, name: str | None = None
) -> list[RunLog]:
    """Every training of a Keras TensorBoard log directory, each a RunLog.

    Reads Keras 3 / tf.keras 2 logs (``train/``, ``validation/``, ``test/``) and Keras 2
    TF1-era flat folders (see :mod:`analysis.reading.tb`). Several trainings in one directory
    (event files starting again at epoch 0) are named ``name#1``, ``name#2``, ... Also
    accepts a run directory's parent of ``tensorboard/`` or a single event file. Values
    are float32 as TensorBoard stores them, widened to float64. The learning rate is
    aligned to the epoch it was in effect (:mod:`analysis.reading.lr_reading`), with a note
    saying how when it changes.

    Raises:
        LogNotFound: the path does not exist or holds no event files.
        BadLog: event files with no readable Keras epoch scalar.
    """
    from analysis.reading import tb

    p = Path(path)
    source = os.fspath(path) if source is None else source
    if not p.exists():
        raise LogNotFound(f"{p}: no such file or directory; pass {expected_layouts()}")
    logdir = p
    if p.is_dir() and not tb.find_event_folders(p) and (p / "tensorboard").is_dir():
        logdir = p / "tensorboard"
    if name is None:
        named = p.parent if p.is_file() else p
        if named.name in ("train", "validation", "test") and p.is_file():
            named = named.parent
        if named.name == "tensorboard" and (named.parent / "run.json").is_file():
            named = named.parent
        name = dir_name(named) or "tensorboard"
    trainings = tb.read_trainings(logdir)
    several = len(trainings) > 1
    runs = []
    for k, data in enumerate(trainings, 1):
        run = _tensorboard_run(logdir, data, name, source)
        if several:
            run.name, run.source = f"{name}#{k}", f"{source}#{k}"
        runs.append(_align_lr(run, logdir))
    return runs


def _tensorboard_run(logdir: Path, data, name: str, source: str) -> RunLog:
    """One training's RunLog, its learning rate as written."""
    columns = sorted(data.columns)
    steps = sorted(set().union(*(set(s) for s in data.columns.values())))
    epochs = np.asarray(steps, dtype=np.int64)
    pos = {s: i for i, s in enumerate(steps)}
    values = np.full((len(steps), len(columns)), np.nan)
    absent = np.ones((len(steps), len(columns)), dtype=bool)
    for j, c in enumerate(columns):
        for s, v in data.columns[c].items():
            values[pos[s], j] = v
            absent[pos[s], j] = False
    warnings = list(data.warnings)
    table, missing = build(logdir, columns, epochs, values, absent, None, warnings)
    return RunLog(name, source, "tensorboard", columns, table, missing, None, warnings)


def _align_lr(run: RunLog, logdir: Path) -> RunLog:
    """``run`` with its learning rate aligned to epochs (see :mod:`analysis.reading.lr_reading`)."""
    column = run.lr_column
    if column is None:
        return run
    written = tuple(run.values(column))
    csv_rates = csv_name = None
    if column != "lr" and len({v for v in written if v is not None}) > 1:
        found = _csv_beside(logdir, run)
        if found is not None:
            csv_name, csv_rates = found
    return with_reading(run, read_order(column, written, str(logdir), csv_rates, csv_name))


_CSV_SUFFIXES = frozenset({".csv", ".log", ".txt", ".tsv", ""})
_CSV_MAX_BYTES = 64 * 1024 * 1024


def _csv_beside(logdir: Path, run: RunLog) -> tuple[str, list[float | None]] | None:
    """A CSVLogger file of the same training next to the TensorBoard log, with its rates.

    Looked for in the log dir and its parent folder: files whose header has ``epoch``
    and a learning-rate column, one of whose trainings logged the same values as
    ``run`` (float32) for every metric both have. Returns (path, rate per epoch).
    """
    base = logdir if logdir.is_dir() else logdir.parent
    if base.name in ("train", "validation", "test"):
        base = base.parent
    for folder in (base, base.parent):
        try:
            entries = sorted(folder.iterdir())[:200]
        except OSError:
            continue
        for f in entries:
            found = _same_training_rates(f, run)
            if found is not None:
                return str(f), found
    return None


def _same_training_rates(f: Path, run: RunLog) -> list[float | None] | None:
    try:
        if (
            f.suffix.lower() not in _CSV_SUFFIXES
            or not f.is_file()
            or f.stat().st_size > _CSV_MAX_BYTES
        ):
            return None
        with open(f, "rb") as fh:
            head = fh.readline(65536).decode("utf-8-sig", errors="replace")
            sep = max(SEPARATORS, key=head.count)
            fields = [c.strip().strip('"') for c in head.strip().split(sep)]
            if "epoch" not in fields or lr_column(fields) is None:
                return None
            text = fh.read()
    except OSError:
        return None
    if not any(
        all(any(p.encode() in text for p in forms) for forms in column) for column in _probes(run)
    ):
        return None  # cheap: not its first values, so not this training's file
    try:
        trainings = load_csv_runs(f, str(f), f.stem)
    except ReplayError:
        return None
    for training in trainings:
        if _same_values(run, training):
            return training.values(training.lr_column)
    return None


def _probes(run: RunLog, k: int = 3) -> list[list[set[str]]]:
    """For ``loss`` (else the first metric), how a CSVLogger may have written its first
    ``k`` values (float32 widened: Keras 3's ``repr``; or the float32's shortest ``str``,
    Keras 2's)."""
    columns = [c for c in run.columns if lr_column([c]) is None]
    columns.sort(key=lambda c: c != "loss")
    for c in columns:
        firsts = [v for v in run.values(c) if v is not None and math.isfinite(v)][:k]
        if firsts:
            return [[{repr(v), str(np.float32(v))} for v in firsts]]
    return []


def _same_values(tb: RunLog, other: RunLog) -> bool:
    """Whether two logs hold the same float32 values for every metric both have."""
    common = [c for c in tb.columns if c in other.columns and lr_column([c]) is None]
    compared = 0
    with np.errstate(over="ignore"):
        for c in common:
            for a, b in zip(tb.values(c), other.values(c), strict=False):
                if a is None or b is None or (math.isnan(a) and math.isnan(b)):
                    continue
                if np.float32(a) != np.float32(b):
                    return False
                compared += 1
    return compared > 0
