"""Loading training logs: run directories, Keras CSVLogger files, TensorBoard log dirs.

Every loader returns a :class:`RunLog` whose ``metrics`` frame has one row per epoch
(index ``epoch`` = 0..n-1, contiguous) and one float64 column per metric, and whose
``not_logged`` frame marks the cells that were absent (``NA``, empty, a missing epoch)
as opposed to a logged NaN. Anything wrong with the input raises a
:class:`~analysis.errors.ReplayError` subclass whose message is one line naming the
file and what would fix it; recoverable oddities become ``RunLog.warnings``.

Run directories (``replay record``'s run.json + metrics.csv + checkpoints) are read by
:mod:`analysis.rundir`, the format's one definition (documented in
``docs/run-directory.md``); :func:`load_run_dir`, :func:`checkpoint_path` and
:class:`CheckpointInfo` are re-exported here.

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
- No TensorFlow, keras or ``replay`` import, here or in :mod:`analysis.tb`.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import (
    AmbiguousLog,
    BadLog,
    LogNotFound,
    ReplayError,
    missing_metric,
)
from analysis.gcpause import gc_paused
from analysis.lr_reading import LrReading, read_order, with_reading
from analysis.names import find_column, lr_column
from analysis.rundir import (
    CheckpointInfo,
    checkpoint_path,
    first_own_epoch,
    load_run_dir,
    parse_checkpoints,
)
from analysis.tb import _epochs_phrase

__all__ = [
    "CheckpointInfo",
    "RunLog",
    "checkpoint_path",
    "load_csv",
    "load_run",
    "load_run_dir",
    "load_tensorboard",
    "load_tensorboard_runs",
]


def _kinds() -> str:
    from analysis.formats import expected_layouts

    return expected_layouts()


def other_csv_layouts() -> str:
    """``" (also read: ...)"`` naming the CSV layouts besides Keras's, or ``""``."""
    from analysis.formats import FORMATS

    others = [f.describe for f in FORMATS if f.csv and f.name != "csv"]
    return f" (also read: {', '.join(others)})" if others else ""


_NA_TOKENS = frozenset({"", "NA", "N/A"})
_SEPARATORS = (",", ";", "\t")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_EPOCH_RE = re.compile(r"\+?([0-9]{1,15})(?:\.0*)?")


def _gap_limit(n_rows: int) -> int:
    return 10 * n_rows + 10_000


def _show(value: str, limit: int = 40) -> str:
    """A cell as it appears in one-line messages: repr, shortened."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


# --------------------------------------------------------------------------- RunLog


@dataclass
class RunLog:
    """A loaded training log. Treat as immutable."""

    name: str
    source: str
    format: str  # a reader's name: "run_dir", "csv", "tensorboard", "lightning", ...
    metrics: pd.DataFrame
    not_logged: pd.DataFrame
    manifest: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    root: Path | None = None
    #: Directions the log's own framework gives its metric names ("min" | "max"),
    #: consulted before Keras's name table; empty for Keras logs.
    directions: dict[str, str] = field(default_factory=dict)
    #: Columns the log's framework computes on validation data without a ``val_``
    #: prefix (Ultralytics's ``metrics/*``, ``val/*`` and derived ``fitness``): each is
    #: its own held-out measure, as ``val_loss`` is in a log without ``test_`` metrics.
    validation: frozenset[str] = frozenset()
    #: What to monitor when the user names nothing: Keras's ``val_loss``, or the metric
    #: the log's own framework stops on (a reader that sets another one adds a note).
    default_monitor: str = "val_loss"
    #: How a TensorBoard learning rate was aligned to epochs (None for other logs).
    lr_reading: LrReading | None = None

    def column(self, metric: str) -> str | None:
        """The column holding ``metric``: itself, else its Keras 2 / Keras 3 spelling."""
        return find_column(metric, self.metrics.columns)

    def has(self, metric: str) -> bool:
        """Return whether ``metric`` is a column of this log (under either spelling)."""
        return self.column(metric) is not None

    @property
    def lr_column(self) -> str | None:
        """The learning-rate column (``learning_rate`` or Keras 2's ``lr``), or None.

        Its value at epoch e is the rate in effect during epoch e: every reader aligns
        it so (TensorBoard's two callback orders: :mod:`analysis.lr_reading`).
        """
        return lr_column(self.metrics.columns)

    def values(self, metric: str) -> list[float | None]:
        """Return ``metric`` per epoch: floats (NaN kept), None where not logged.

        Raises:
            MissingMetric: the log has no such column (the message lists what it has
                and suggests the closest name).
        """
        column = self.column(metric)
        if column is None:
            raise missing_metric(metric, [str(c) for c in self.metrics.columns], self.source)
        vals = self.metrics[column].to_numpy(dtype=np.float64)
        absent = self.not_logged[column].to_numpy(dtype=bool)
        return [None if a else float(v) for v, a in zip(vals, absent, strict=True)]

    @property
    def n_epochs(self) -> int:
        """Number of epochs (rows), including not-logged ones."""
        return len(self.metrics)

    @property
    def status(self) -> str:
        """The manifest's status (running | complete | interrupted), else ``"unknown"``."""
        if self.manifest and isinstance(self.manifest.get("status"), str):
            return str(self.manifest["status"])
        return "unknown"

    @property
    def checkpoints_included(self) -> bool:
        """False when there is no manifest or run.json says ``checkpoints_included: false``."""
        return self.manifest is not None and self.manifest.get("checkpoints_included", True) is True

    @cached_property
    def checkpoints(self) -> dict[int, CheckpointInfo]:
        """Checkpoints recorded in run.json by epoch (also when not included in the copy)."""
        if self.manifest is None:
            return {}
        return parse_checkpoints(self.manifest)

    @property
    def shadow(self) -> list[dict[str, Any]]:
        """The real Keras callbacks' observe-only decisions from run.json, or ``[]``."""
        if self.manifest is None:
            return []
        return list(self.manifest.get("shadow") or [])

    @property
    def shadow_epochs(self) -> int:
        """How many epochs the shadow decisions in run.json have seen.

        run.json is replaced after the metrics row is committed, so a run killed in
        between has one more row than its manifest (and its shadow decisions) covers.
        A branch's run.json lists its own epochs only, after its parent's rows.
        """
        epochs = (self.manifest or {}).get("epochs")
        if isinstance(epochs, list):
            return min(first_own_epoch(self.manifest) + len(epochs), self.n_epochs)
        return self.n_epochs


# --------------------------------------------------------------------------- building


def _build(
    path: Path | str,
    columns: list[str],
    epochs: np.ndarray,
    values: np.ndarray,
    absent: np.ndarray,
    lines: np.ndarray | None,
    warnings: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply resumes, fill gaps, return (metrics, not_logged) of one training.

    ``epochs``: int64 per row, in the order written; ``values``/``absent``: (rows,
    columns); ``lines``: the CSV line of each row, for messages. An epoch that goes
    back to k > 0 is a fit resumed from epoch k: its rows replace every row logged
    before them for epoch k and later (see :func:`_superseded`).
    """
    n_rows = len(epochs)
    if n_rows == 0:
        raise BadLog(f"{path}: has no epochs; nothing to replay (log at least one epoch)")
    kept = ~_superseded(epochs)
    if not kept.all():
        _warn_resumes(path, epochs, lines, warnings)
    keep = np.flatnonzero(kept)
    kept_epochs = epochs[keep]
    n = int(kept_epochs[-1]) + 1
    if n > _gap_limit(len(keep)):
        where = ""
        if lines is not None:
            where = f" (line {int(lines[int(np.argmax(epochs))])})"
        raise BadLog(
            f"{path}: epoch {n - 1}{where} would leave {n - len(keep)} epochs missing among "
            f"{len(keep)} logged; check the epoch column (0-based epoch indices)"
        )
    out_vals = np.full((n, len(columns)), np.nan, dtype=np.float64)
    out_absent = np.ones((n, len(columns)), dtype=bool)
    out_vals[kept_epochs] = values[keep]
    out_absent[kept_epochs] = absent[keep]
    if len(keep) < n:
        present = np.zeros(n, dtype=bool)
        present[kept_epochs] = True
        missing = np.flatnonzero(~present).tolist()
        warnings.append(f"{path}: {_epochs_phrase(missing)} missing; marked their cells not logged")
    index = pd.RangeIndex(n, name="epoch")
    metrics = pd.DataFrame(out_vals, index=index, columns=list(columns), copy=False)
    not_logged = pd.DataFrame(out_absent, index=index, columns=list(columns), copy=False)
    return metrics, not_logged


def _superseded(epochs: np.ndarray) -> np.ndarray:
    """Rows that a later row replaces: row i is dropped when a later row has an epoch <= its own.

    A fit resumed from epoch k (``initial_epoch=k`` with ``CSVLogger(append=True)``) logs
    k, k+1, ... again; what it logged is the training that went on, so everything from
    k on that was logged before it is dropped, including epochs the resumed fit did
    not reach. The kept rows are in increasing epoch order.

    >>> _superseded(np.array([0, 1, 2, 3, 1, 2])).tolist()
    [False, True, True, True, False, False]
    """
    if len(epochs) < 2:
        return np.zeros(len(epochs), dtype=bool)
    later_min = np.minimum.accumulate(epochs[::-1])[::-1]
    out = np.zeros(len(epochs), dtype=bool)
    out[:-1] = epochs[:-1] >= later_min[1:]
    return out


def _warn_resumes(
    path: Path | str, epochs: np.ndarray, lines: np.ndarray | None, warnings: list[str]
) -> None:
    """A warning per place where the epoch column goes back to k > 0 (a resumed fit)."""
    backs = np.flatnonzero(epochs[1:] <= epochs[:-1]) + 1
    for i in backs[:3].tolist():
        k, prev = int(epochs[i]), int(epochs[i - 1])
        where = f" at line {int(lines[i])}" if lines is not None else ""
        warnings.append(
            f"{path}: the epoch column goes back from {prev} to {k}{where} (a fit resumed "
            f"from epoch {k}); the rows from there on replace epoch {k} and later"
        )
    if len(backs) > 3:
        warnings.append(f"{path}: and {len(backs) - 3} more resumes like these")


def _split_trainings(epochs: np.ndarray, boundaries: list[int]) -> list[tuple[int, int]]:
    """Row ranges ``[start, end)`` of the trainings in one log.

    A row whose epoch is 0 after a row with any epoch starts a new training (a fresh
    ``fit``, which Keras's ``CSVLogger(append=True)`` appends to the same file), and so
    does each index in ``boundaries`` (a repeated header line).

    >>> _split_trainings(np.array([0, 1, 2, 0, 1, 3, 0]), [])
    [(0, 3), (3, 6), (6, 7)]
    """
    starts = set(np.flatnonzero(epochs == 0).tolist()) | set(boundaries)
    starts = sorted(s for s in starts if 0 < s < len(epochs))
    edges = [0, *starts, len(epochs)]
    return list(itertools.pairwise(edges))


# --------------------------------------------------------------------------- CSV


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif raw.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        encoding = "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        bad = raw[e.start : e.start + 1].hex()
        raise BadLog(
            f"{path}: not {encoding.upper().replace('-SIG', '')} text (byte 0x{bad} at line "
            f"{line}: {e.reason}); save the file as UTF-8"
        ) from None


def csv_rows(
    text: str, path: Path, sep: str = ",", *, split_on_header: bool = False
) -> tuple[list[str] | None, list[list[str]], list[int], list[int]]:
    """``(header, rows, line numbers, boundaries)`` of CSV ``text``: blank lines skipped,
    the first row the header (None when there is none); with ``split_on_header`` a row
    equal to the header (files of several trainings joined with their headers) is no row
    but a boundary: the index of the row after it.

    Raises:
        BadLog: a line that is not valid CSV, named by its number.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    boundaries: list[int] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = row
            elif split_on_header and row == header:
                boundaries.append(len(rows))
            else:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as e:
        raise BadLog(
            f"{path}: line {reader.line_num} is not valid CSV ({e}); fix or remove that line"
        ) from None
    return header, rows, lines, boundaries


def _detect_separator(header: str, path: Path) -> str:
    best: tuple[int, str] | None = None
    for sep in _SEPARATORS:
        try:
            names = [n.strip() for n in next(csv.reader([header], delimiter=sep))]
        except (csv.Error, StopIteration):
            continue
        if "epoch" in names and (best is None or len(names) > best[0]):
            best = (len(names), sep)
    if best is None:
        hint = ""
        if "epoch" in header.lower():
            hint = " (the column must be named exactly 'epoch', in lower case)"
        raise BadLog(
            f"{path}: line 1 has no 'epoch' column{hint}: {_show(header, 60)}; a Keras "
            "CSVLogger file starts with a header 'epoch' then metric names, separated "
            f"by ',', ';' or tab{other_csv_layouts()}"
        )
    return best[1]


@dataclass
class _Training:
    """One training of a CSV log: its frames and the warnings that concern it."""

    metrics: pd.DataFrame
    not_logged: pd.DataFrame
    warnings: list[str]
    lines: tuple[int, int]  # first and last line of its rows


def _parse_csv(text: str, path: Path) -> list[_Training]:
    """Parse CSVLogger text into its trainings (usually one; see :func:`_split_trainings`).

    Hundreds of thousands of row lists and tuples would set off the cyclic garbage
    collector again and again (+50% time at 100,000 epochs); they hold only strings
    and cannot form cycles, so collection is paused while parsing.

    Raises:
        BadLog: see :func:`load_csv`.
    """
    with gc_paused():
        return _parse_csv_text(text, path)


def _parse_csv_text(text: str, path: Path) -> list[_Training]:
    """The body of :func:`_parse_csv`."""
    warnings: list[str] = []
    if not text.strip():
        raise BadLog(
            f"{path}: empty file; expected a CSVLogger header line 'epoch,...' and one row "
            "per epoch"
        )
    header_line = next(ln for ln in io.StringIO(text, newline=None) if ln.strip()).rstrip("\n")
    sep = _detect_separator(header_line, path)
    unterminated = not text.endswith(("\n", "\r"))
    # The physical line number of the last line (csv counts \r\n as one break).
    last_line = text.count("\n") + 1 if unterminated else -1
    header, rows, line_nums, boundaries = csv_rows(text, path, sep, split_on_header=True)
    names = [n.strip() for n in header or []]
    if "epoch" not in names:
        raise BadLog(
            f"{path}: the header has no 'epoch' column; a Keras CSVLogger file starts with "
            "a header 'epoch' then metric names"
        )
    for k, n in enumerate(names):
        if not n:
            raise BadLog(
                f"{path}: column {k + 1} of the header (line 1) has no name; give every "
                "column a name or remove the stray separator"
            )
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise BadLog(
                f"{path}: column {n!r} appears twice in the header (line 1); rename or "
                "remove one of them"
            )
        seen.add(n)
    ep_col = names.index("epoch")
    metric_idx = [k for k in range(len(names)) if k != ep_col]
    columns = [names[k] for k in metric_idx]
    if not columns:
        raise BadLog(
            f"{path}: no metric columns besides 'epoch'; a CSVLogger file has one column "
            "per metric (loss, val_loss, ...)"
        )
    ncols = len(names)
    cut_off: str | None = None
    if rows and len(rows[-1]) < ncols and unterminated and line_nums[-1] == last_line:
        cut_off = (
            f"{path}: the last line ({line_nums[-1]}) is cut off ({len(rows[-1])} of {ncols} "
            "fields, no newline: a crash while writing?); ignored it"
        )
        rows.pop()
        line_nums.pop()
    if not rows:
        raise BadLog(
            f"{path}: has no epochs (header only); nothing to replay, log at least one epoch"
        )
    overflow: list[tuple[int, str, str]] = []
    fast = _parse_columns(rows, ncols, ep_col, metric_idx, names, line_nums, overflow)
    if fast is None:
        overflow.clear()
        fast = _parse_rows(path, rows, ncols, ep_col, metric_idx, names, line_nums, overflow, sep)
    epochs, values, absent = fast
    lines = np.asarray(line_nums)
    spans = _split_trainings(epochs, boundaries)
    trainings = []
    for k, (a, b) in enumerate(spans):
        first, last = int(lines[a]), int(lines[b - 1])
        own: list[str] = []
        if len(spans) > 1:
            restarts = ", ".join(str(int(lines[s])) for s, _ in spans[1:])
            own.append(
                f"{path}: holds {len(spans)} trainings (a new one starts where the epoch "
                f"column goes back to 0 or the header repeats: line{'s' if len(spans) > 2 else ''}"
                f" {restarts}); this is "
                f"training #{k + 1}, lines {first}-{last}"
            )
        mine = [o for o in overflow if first <= o[0] <= last]
        if mine:
            ln, col, cell = mine[0]
            own.append(
                f"{path}: {len(mine)} value(s) beyond the float64 range read as +-inf "
                f"(first: line {ln}, column {col!r}, {_show(cell)})"
            )
        if cut_off and k == len(spans) - 1:
            own.append(cut_off)
        metrics, not_logged = _build(
            path, columns, epochs[a:b], values[a:b], absent[a:b], lines[a:b], own
        )
        trainings.append(_Training(metrics, not_logged, warnings + own, (first, last)))
    return trainings


def _parse_rows(
    path: Path,
    rows: list[list[str]],
    ncols: int,
    ep_col: int,
    metric_idx: list[int],
    names: list[str],
    line_nums: list[int],
    overflow: list[tuple[int, str, str]],
    sep: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse cell by cell, in line order, so the first bad cell is the one reported.

    Raises:
        BadLog: a ragged row, a bad epoch or a non-numeric cell.
    """
    columns = metric_idx
    n = len(rows)
    epochs = np.empty(n, dtype=np.int64)
    values = np.empty((n, len(columns)), dtype=np.float64)
    absent = np.zeros((n, len(columns)), dtype=bool)
    na_tokens = _NA_TOKENS
    epoch_match = _EPOCH_RE.fullmatch
    isinf = math.isinf
    for i, row in enumerate(rows):
        if len(row) != ncols:
            raise BadLog(
                f"{path}: line {line_nums[i]} has {len(row)} fields but the header has "
                f"{ncols} ({_SEP_NAMES[sep]}-separated); fix or remove that line"
            )
        cell = row[ep_col].strip()
        m = epoch_match(cell)
        if m is None:
            raise BadLog(
                f"{path}: line {line_nums[i]}, column 'epoch': {_show(row[ep_col])} is not a "
                "0-based epoch number; the epoch column holds whole numbers 0, 1, 2, ..."
            )
        epochs[i] = int(m.group(1))
        vrow = values[i]
        arow = absent[i]
        for j, k in enumerate(metric_idx):
            s = row[k].strip()
            if s.upper() in na_tokens:
                vrow[j] = math.nan
                arow[j] = True
                continue
            try:
                if not s.isascii() or "_" in s:
                    raise ValueError
                v = float(s)
            except ValueError:
                raise BadLog(
                    f"{path}: line {line_nums[i]}, column {names[k]!r}: {_show(row[k])} is not "
                    "a number; use a number, nan, inf, or NA for not logged"
                ) from None
            if isinf(v) and "inf" not in s.lower():
                overflow.append((line_nums[i], names[k], s))
            vrow[j] = v
    return epochs, values, absent


class _Slow(Exception):
    """The column-wise fast path met something only the cell-wise path can judge."""


def _parse_columns(
    rows: list[list[str]],
    ncols: int,
    ep_col: int,
    metric_idx: list[int],
    names: list[str],
    line_nums: list[int],
    overflow: list[tuple[int, str, str]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Column-at-a-time parsing with C-level loops; None when :func:`_parse_rows` must judge.

    Accepts exactly what ``_parse_rows`` accepts, with the same results.
    """
    n = len(rows)
    if any(len(r) != ncols for r in rows):
        return None
    cols = list(zip(*rows, strict=True))
    try:
        ep_cells = cols[ep_col]
        joined = "".join(ep_cells)
        if not joined.isascii() or "_" in joined or "-" in joined or max(map(len, ep_cells)) > 15:
            raise _Slow
        epochs = np.fromiter(map(int, ep_cells), dtype=np.int64, count=n)
        values = np.empty((n, len(metric_idx)), dtype=np.float64)
        absent = np.zeros((n, len(metric_idx)), dtype=bool)
        na = _NA_TOKENS
        for j, k in enumerate(metric_idx):
            cells = cols[k]
            joined = "".join(cells)
            if not joined.isascii() or "_" in joined:
                raise _Slow
            try:
                values[:, j] = np.fromiter(map(float, cells), dtype=np.float64, count=n)
            except ValueError:
                mask = [c.strip().upper() in na for c in cells]
                absent[:, j] = mask
                values[:, j] = [
                    math.nan if m else float(c) for c, m in zip(cells, mask, strict=True)
                ]
            infs = np.flatnonzero(np.isinf(values[:, j]))
            for i in infs.tolist():
                if "inf" not in cells[i].lower():
                    overflow.append((line_nums[i], names[k], cells[i].strip()))
    except (_Slow, ValueError, OverflowError):
        return None
    overflow.sort(key=lambda t: (t[0], names.index(t[1])))
    return epochs, values, absent


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise LogNotFound(f"{path}: no such file or directory; pass {_kinds()}")
    if path.is_dir():
        raise BadLog(f"{path}: is a directory, not a CSV file; pass the CSVLogger file itself")
    try:
        return path.read_bytes()
    except OSError as e:
        raise BadLog(f"{path}: cannot be read ({e.strerror or e}); check its permissions") from None


def load_csv_runs(file: Path, source: str, name: str, fmt: str = "csv") -> list[RunLog]:
    """Every training of a CSVLogger file, each a RunLog (``name#1``, ``name#2``, ... when
    the file holds several; see :func:`_split_trainings`).

    Raises:
        LogNotFound, BadLog: see :func:`load_csv`.
    """
    return runs_from_csv_text(read_text(file), file, source, name, fmt)


def read_text(file: Path) -> str:
    """A log file's text (UTF-8, with or without BOM, or UTF-16 with a BOM).

    Raises:
        LogNotFound: no such file. BadLog: a directory, unreadable, or not such text.
    """
    return _decode(_read_bytes(file), file)


def runs_from_csv_text(text: str, file: Path, source: str, name: str, fmt: str) -> list[RunLog]:
    """The trainings of CSVLogger-layout ``text`` read from ``file``, as RunLogs.

    Raises:
        BadLog: see :func:`load_csv`.
    """
    trainings = _parse_csv(text, file)
    if len(trainings) == 1:
        t = trainings[0]
        return [RunLog(name, source, fmt, t.metrics, t.not_logged, None, t.warnings, None)]
    return [
        RunLog(f"{name}#{k}", f"{source}#{k}", fmt, t.metrics, t.not_logged, None, t.warnings,
               None)
        for k, t in enumerate(trainings, 1)
    ]  # fmt: skip


def _load_csv_file(file: Path, source: str, name: str, fmt: str) -> RunLog:
    runs = load_csv_runs(file, source, name, fmt)
    if len(runs) > 1:
        raise several_trainings(source, len(runs))
    return runs[0]


def several_trainings(source: str, n: int) -> AmbiguousLog:
    """The error for a log of ``n`` trainings where one is needed."""
    return AmbiguousLog(f"{source}: holds {n} trainings; name one as {source}#1 ... {source}#{n}")


def csv_stem(p: Path) -> str:
    """The run name of a CSV log: its stem, or its run directory's name for metrics.csv."""
    if p.name == "metrics.csv" and (p.parent / "run.json").is_file():
        return _dir_name(p.parent)
    return p.stem


def load_csv(path: str | os.PathLike[str]) -> RunLog:
    """Load a Keras CSVLogger file (or a run directory's metrics.csv) of one training.

    The separator (``,``, ``;`` or tab) is detected from the header.

    Raises:
        LogNotFound: the file does not exist.
        BadLog: empty, header only, not UTF-8, ragged or non-numeric cells, no
            ``epoch`` column, or a damaged epoch column.
        AmbiguousLog: the file holds several trainings (use :func:`load_csv_runs`).
    """
    p = Path(path)
    return _load_csv_file(p, os.fspath(path), csv_stem(p), "csv")


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
    TF1-era flat folders (see :mod:`analysis.tb`). Several trainings in one directory
    (event files starting again at epoch 0) are named ``name#1``, ``name#2``, ... Also
    accepts a run directory's parent of ``tensorboard/`` or a single event file. Values
    are float32 as TensorBoard stores them, widened to float64. The learning rate is
    aligned to the epoch it was in effect (:mod:`analysis.lr_reading`), with a note
    saying how when it changes.

    Raises:
        LogNotFound: the path does not exist or holds no event files.
        BadLog: event files with no readable Keras epoch scalar.
    """
    from analysis import tb

    p = Path(path)
    source = os.fspath(path) if source is None else source
    if not p.exists():
        raise LogNotFound(f"{p}: no such file or directory; pass {_kinds()}")
    logdir = p
    if p.is_dir() and not tb.find_event_folders(p) and (p / "tensorboard").is_dir():
        logdir = p / "tensorboard"
    if name is None:
        named = p.parent if p.is_file() else p
        if named.name in ("train", "validation", "test") and p.is_file():
            named = named.parent
        if named.name == "tensorboard" and (named.parent / "run.json").is_file():
            named = named.parent
        name = _dir_name(named) or "tensorboard"
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
    metrics, not_logged = _build(logdir, columns, epochs, values, absent, None, warnings)
    return RunLog(name, source, "tensorboard", metrics, not_logged, None, warnings, None)


def _align_lr(run: RunLog, logdir: Path) -> RunLog:
    """``run`` with its learning rate aligned to epochs (see :mod:`analysis.lr_reading`)."""
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
            sep = max(_SEPARATORS, key=head.count)
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
    columns = [c for c in run.metrics.columns if lr_column([c]) is None]
    columns.sort(key=lambda c: c != "loss")
    for c in columns:
        firsts = [v for v in run.values(c) if v is not None and math.isfinite(v)][:k]
        if firsts:
            return [[{repr(v), str(np.float32(v))} for v in firsts]]
    return []


def _same_values(tb: RunLog, other: RunLog) -> bool:
    """Whether two logs hold the same float32 values for every metric both have."""
    common = [
        c for c in tb.metrics.columns if c in other.metrics.columns and lr_column([c]) is None
    ]
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


def _dir_name(p: Path) -> str:
    return p.name or p.resolve().name


# --------------------------------------------------------------------------- dispatch


def load_run(path: str | os.PathLike[str]) -> RunLog:
    """Load the one training in the log at ``path``, whatever its format.

    See :func:`analysis.formats.load_run` (this is the same function, kept here for the
    readers' callers).
    """
    from analysis.formats import load_run as load_one

    return load_one(path)
