"""Keras CSVLogger files (and the CSV text of the other CSV layouts): decoding, the
separator, the rows, the trainings a file holds (a CSVLogger appended to by several fits).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.errors import (
    AmbiguousLog,
    BadLog,
    LogNotFound,
)
from analysis.reading.gcpause import gc_paused
from analysis.reading.layouts import expected_layouts, other_csv_layouts
from analysis.reading.runlog import (
    RunLog,
    build,
    dir_name,
    show_cell,
    split_trainings,
)

_NA_TOKENS = frozenset({"", "NA", "N/A"})
SEPARATORS = (",", ";", "\t")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_EPOCH_RE = re.compile(r"\+?([0-9]{1,15})(?:\.0*)?")

__all__ = [
    "SEPARATORS",
    "csv_rows",
    "csv_stem",
    "decode",
    "load_csv",
    "load_csv_file",
    "load_csv_runs",
    "read_text",
    "runs_from_csv_text",
    "several_trainings",
]

# --------------------------------------------------------------------------- CSV


def decode(raw: bytes, path: Path) -> str:
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
    for sep in SEPARATORS:
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
            f"{path}: line 1 has no 'epoch' column{hint}: {show_cell(header, 60)}; a Keras "
            "CSVLogger file starts with a header 'epoch' then metric names, separated "
            f"by ',', ';' or tab{other_csv_layouts()}"
        )
    return best[1]


@dataclass
class _Training:
    """One training of a CSV log: its values and the warnings that concern it."""

    columns: list[str]
    table: np.ndarray
    absent: np.ndarray
    warnings: list[str]
    lines: tuple[int, int]  # first and last line of its rows


def _parse_csv(text: str, path: Path) -> list[_Training]:
    """Parse CSVLogger text into its trainings (usually one; see :func:`split_trainings`).

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
    spans = split_trainings(epochs, boundaries)
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
                f"(first: line {ln}, column {col!r}, {show_cell(cell)})"
            )
        if cut_off and k == len(spans) - 1:
            own.append(cut_off)
        table, missing = build(
            path, columns, epochs[a:b], values[a:b], absent[a:b], lines[a:b], own
        )
        trainings.append(_Training(columns, table, missing, warnings + own, (first, last)))
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
                f"{path}: line {line_nums[i]}, column 'epoch': {show_cell(row[ep_col])} is not a "
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
                    f"{path}: line {line_nums[i]}, column {names[k]!r}: {show_cell(row[k])} is not "
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
        raise LogNotFound(f"{path}: no such file or directory; pass {expected_layouts()}")
    if path.is_dir():
        raise BadLog(f"{path}: is a directory, not a CSV file; pass the CSVLogger file itself")
    try:
        return path.read_bytes()
    except OSError as e:
        raise BadLog(f"{path}: cannot be read ({e.strerror or e}); check its permissions") from None


def load_csv_runs(file: Path, source: str, name: str, fmt: str = "csv") -> list[RunLog]:
    """Every training of a CSVLogger file, each a RunLog (``name#1``, ``name#2``, ... when
    the file holds several; see :func:`split_trainings`).

    Raises:
        LogNotFound, BadLog: see :func:`load_csv`.
    """
    return runs_from_csv_text(read_text(file), file, source, name, fmt)


def read_text(file: Path) -> str:
    """A log file's text (UTF-8, with or without BOM, or UTF-16 with a BOM).

    Raises:
        LogNotFound: no such file. BadLog: a directory, unreadable, or not such text.
    """
    return decode(_read_bytes(file), file)


def runs_from_csv_text(text: str, file: Path, source: str, name: str, fmt: str) -> list[RunLog]:
    """The trainings of CSVLogger-layout ``text`` read from ``file``, as RunLogs.

    Raises:
        BadLog: see :func:`load_csv`.
    """
    trainings = _parse_csv(text, file)
    if len(trainings) == 1:
        t = trainings[0]
        return [RunLog(name, source, fmt, t.columns, t.table, t.absent, None, t.warnings)]
    return [
        RunLog(f"{name}#{k}", f"{source}#{k}", fmt, t.columns, t.table, t.absent, None,
               t.warnings)
        for k, t in enumerate(trainings, 1)
    ]  # fmt: skip


def load_csv_file(file: Path, source: str, name: str, fmt: str) -> RunLog:
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
        return dir_name(p.parent)
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
    return load_csv_file(p, os.fspath(path), csv_stem(p), "csv")
