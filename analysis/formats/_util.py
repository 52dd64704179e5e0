"""Pieces the framework readers share: CSV text, numbers, per-epoch merging.

Every helper raises :class:`~analysis.errors.BadLog` with a one-line message naming the
file; the readers add what is particular to their format.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.errors import BadLog, LogNotFound
from analysis.reading.csvlog import csv_rows, decode
from analysis.reading.runlog import build

__all__ = [
    "CsvTable",
    "first_line",
    "frame",
    "keras_names",
    "merge_epochs",
    "number",
    "read_csv",
    "read_text",
    "whole",
]

_NA = frozenset({"", "NA", "N/A"})
#: ``name_step`` / ``name_epoch`` of a forked Lightning metric, with its dataloader suffix.
FORK = re.compile(r"(.+)_(step|epoch)((?:/dataloader_idx_[0-9]+)?)")
LR_MONITOR = re.compile(r"lr-[^/]+")
#: Prefix -> Keras prefix, first match wins.
_SUFFIXES = {"train": "", "training": "", "val": "val_", "valid": "val_",
             "validation": "val_", "eval": "val_", "test": "test_"}  # fmt: skip
_PREFIXES = (
    ("training_", ""),
    ("training/", ""),
    ("train_", ""),
    ("train/", ""),
    ("validation_", "val_"),
    ("validation/", "val_"),
    ("valid_", "val_"),
    ("valid/", "val_"),
    ("val/", "val_"),
    ("eval_", "val_"),
    ("eval/", "val_"),
    ("test/", "test_"),
)


def read_text(path: Path) -> str:
    """The text of ``path`` (UTF-8, or UTF-16 with a BOM).

    Raises:
        LogNotFound: no such file.
        BadLog: a directory, unreadable, or not text.
    """
    if not path.exists():
        raise LogNotFound(f"{path}: no such file or directory")
    if not path.is_file():
        raise BadLog(f"{path}: is not a file; pass the log file or the folder holding it")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BadLog(f"{path}: cannot be read ({e.strerror or e}); check its permissions") from None
    return decode(raw, path)


def first_line(path: Path) -> str | None:
    """The first non-blank line of a file, best effort (for ``claims``): None if unreadable."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(65536)
    except OSError:
        return None
    text = raw.decode("utf-8-sig", errors="replace")
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), None)


def header_names(line: str | None) -> list[str]:
    """The column names of a comma-separated header line, stripped of padding.

    >>> header_names("  epoch,   train/loss")
    ['epoch', 'train/loss']
    """
    if not line:
        return []
    try:
        row = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return []
    return [c.strip() for c in row]


@dataclass
class CsvTable:
    """A comma-separated file: stripped header names, the rows, their line numbers."""

    header: list[str]
    rows: list[list[str]]
    lines: list[int]
    warnings: list[str] = field(default_factory=list)


def read_csv(path: Path, what: str) -> CsvTable:
    """Read a comma-separated log whose header ``what`` describes (for messages).

    A last line without a newline and with too few fields is a row cut off by a crash:
    it is dropped with a warning. Any other ragged row is BadLog.

    Raises:
        LogNotFound, BadLog: see :func:`read_text`; also empty, header only, a ragged
            row, an unnamed or repeated column.
    """
    text = read_text(path)
    if not text.strip():
        raise BadLog(f"{path}: empty file; expected {what} and one row per epoch")
    raw, rows, lines, _ = csv_rows(text, path)
    header = None if raw is None else [c.strip() for c in raw]
    if header is None:  # only blank rows, e.g. one quoted newline
        raise BadLog(f"{path}: no header line; expected {what} and one row per epoch")
    for k, name in enumerate(header):
        if not name:
            raise BadLog(
                f"{path}: column {k + 1} of the header has no name; give every column a name "
                "or remove the stray comma"
            )
    if len(set(header)) < len(header):
        twice = next(n for n in header if header.count(n) > 1)
        raise BadLog(f"{path}: column {twice!r} appears twice in the header; rename or remove one")
    table = CsvTable(header, rows, lines)
    n = len(header)
    if rows and len(rows[-1]) < n and not text.endswith(("\n", "\r")):
        table.warnings.append(
            f"{path}: the last line ({lines[-1]}) is cut off ({len(rows[-1])} of {n} fields, no "
            "newline: a crash while writing?); ignored it"
        )
        rows.pop()
        lines.pop()
    for row, line in zip(rows, lines, strict=True):
        if len(row) != n:
            raise BadLog(
                f"{path}: line {line} has {len(row)} fields but the header has {n}; fix or "
                "remove that line"
            )
    if not rows:
        raise BadLog(f"{path}: has no epochs (header only); nothing to replay")
    return table


def _shown(cell: str) -> str:
    return repr(cell if len(cell) <= 40 else cell[:40] + "...")


def number(cell: str, path: Path, line: int, column: str) -> float | None:
    """A cell as a float, None when empty or ``NA`` (not logged).

    ``nan``/``inf`` are values; numbers are ASCII without ``_`` (which ``float`` accepts).

    >>> [number(c, Path("x"), 2, "a") for c in (" 0.5 ", "", "nan")]
    [0.5, None, nan]

    Raises:
        BadLog: not a number.
    """
    s = cell.strip()
    if s.upper() in _NA:
        return None
    try:
        if not s.isascii() or "_" in s:
            raise ValueError
        return float(s)
    except ValueError:
        raise BadLog(
            f"{path}: line {line}, column {column!r}: {_shown(cell)} is not a number; use a "
            "number, nan, inf, or leave the cell empty for not logged"
        ) from None


def whole(cell: str, path: Path, line: int, column: str) -> int | None:
    """A cell as a non-negative whole number (``3``, ``3.0``), None when empty.

    Raises:
        BadLog: anything else.
    """
    v = number(cell, path, line, column)
    if v is None:
        return None
    if not (math.isfinite(v) and v >= 0 and v == int(v) and v < 1e15):
        raise BadLog(
            f"{path}: line {line}, column {column!r}: {_shown(cell)} is not a whole number "
            "0, 1, 2, ...; fix that cell"
        )
    return int(v)


def merge_epochs(
    epochs: np.ndarray, values: np.ndarray, absent: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]:
    """Merge consecutive rows with the same epoch into one row each.

    Returns ``(epochs, values, absent, multi)``: one row per block of consecutive rows
    with the same epoch, in order (a later block with a lower epoch is a resume, which
    :func:`frame` applies); ``multi`` maps each column that holds several *different*
    values within one block (logged per step, not per epoch) to the most values it
    held in one block. Identical repeats (``NaN`` equal to ``NaN``) are one value.

    >>> e, v, a, multi = merge_epochs(np.array([0, 0, 1]), np.array([[1.0, np.nan],
    ...     [np.nan, 2.0], [3.0, 4.0]]), np.array([[False, True], [True, False], [False, False]]))
    >>> e.tolist(), v.tolist(), multi
    ([0, 1], [[1.0, 2.0], [3.0, 4.0]], {})
    """
    n_rows, n_cols = values.shape
    if not n_rows:
        return epochs, values, absent, {}
    starts = np.flatnonzero(np.r_[True, epochs[1:] != epochs[:-1]])
    ends = np.r_[starts[1:], n_rows]
    out_v = np.full((len(starts), n_cols), np.nan)
    out_a = np.ones((len(starts), n_cols), dtype=bool)
    multi: dict[int, int] = {}
    for b, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        for j in range(n_cols):
            logged = values[s:e, j][~absent[s:e, j]]
            if not len(logged):
                continue
            distinct = np.unique(logged)  # NaN counted once (equal_nan), 0.0 == -0.0
            if len(distinct) > 1:
                multi[j] = max(multi.get(j, 0), len(logged))
            out_v[b, j] = logged[-1]
            out_a[b, j] = False
    return epochs[starts], out_v, out_a, multi


def frame(
    path: Path | str,
    columns: list[str],
    epochs: np.ndarray,
    values: np.ndarray,
    absent: np.ndarray,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """The per-epoch ``(table, absent)`` arrays (see :class:`~analysis.reading.runlog.RunLog`) of
    rows already one per epoch.

    Resumes (an epoch going back to k > 0) and gaps are applied by
    :func:`analysis.reading.logs._build`, with its warnings.

    Raises:
        BadLog: no rows, no columns, or an epoch far beyond the rows logged.
    """
    if not columns:
        raise BadLog(f"{path}: no metric columns; nothing to replay")
    if len(epochs) and int(np.min(epochs)) < 0:
        raise BadLog(f"{path}: a negative epoch ({int(np.min(epochs))}); fix the epoch column")
    return build(path, columns, np.asarray(epochs, dtype=np.int64), values, absent, None, warnings)


def keras_names(columns: list[str], lr_monitor: bool = False) -> dict[str, str]:
    """Renaming of column names to the replay's Keras conventions, where they mean the same.

    ``X_epoch`` -> ``X`` (Lightning's epoch half of a forked metric); ``train_X``,
    ``train/X``, ``training_X``, ``training/X`` -> ``X``; ``val/X``, ``valid_X``,
    ``valid/X``, ``validation_X``, ``validation/X``, ``eval_X``, ``eval/X`` (Hugging Face's
    names) -> ``val_X``; ``test/X`` -> ``test_X``; the split as a suffix too (``X/train``
    -> ``X``, ``X/val`` -> ``val_X``, ``X/test`` -> ``test_X``);
    with ``lr_monitor``, a single ``lr-<Optimizer>`` column (Lightning's
    ``LearningRateMonitor``) -> ``learning_rate``. A renaming that would collide with
    another column is not made.

    >>> keras_names(["train_loss_epoch", "val/acc", "lr-Adam", "loss2"], lr_monitor=True)
    {'train_loss_epoch': 'loss', 'val/acc': 'val_acc', 'lr-Adam': 'learning_rate'}
    >>> keras_names(["loss/train", "loss/val", "DiarizationErrorRate/Miss"])
    {'loss/train': 'loss', 'loss/val': 'val_loss'}
    """
    wanted: dict[str, str] = {}
    for c in columns:
        m = FORK.fullmatch(c)
        base = m.group(1) + m.group(3) if m and m.group(2) == "epoch" else c
        for prefix, to in _PREFIXES:
            if base.startswith(prefix) and len(base) > len(prefix):
                base = to + base[len(prefix) :]
                break
        else:  # the split as a suffix: loss/train, loss/val (pyannote, SummaryWriter habits)
            head, _, split = base.rpartition("/")
            to = _SUFFIXES.get(split.lower())
            if head and "/" not in head and to is not None:
                base = to + head
        if base != c:
            wanted[c] = base
    lrs = [
        c
        for c in columns
        if lr_monitor and LR_MONITOR.fullmatch(c) and not c.endswith(("-momentum", "-weight_decay"))
    ]
    if len(lrs) == 1:
        wanted[lrs[0]] = "learning_rate"
    targets = [wanted.get(c, c) for c in columns]
    return {c: t for c, t in wanted.items() if targets.count(t) == 1}
