"""Reading Keras TensorBoard logs without TensorFlow.

TensorBoard's own loader (``event_file_loader``) goes through ``tensorboard.compat.tf``,
which imports TensorFlow when it is installed, and stops without a word at the first
damaged record. This module keeps that loader's shape, small generators stacked one on
another (its ``RawEventFileLoader`` yields records, ``LegacyEventFileLoader`` parses
them), but reads the TFRecord framing itself::

    uint64 length (little endian) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)

and says where a file is damaged. The stages, per event file::

    read_records(path)        (offset, data) of each record, both CRCs of every record checked
    -> parse_events(...)      tensorboard's generated ``event_pb2.Event`` (protobuf only)
    -> scalar_points(...)     (tag, step, wall_time, value) of each value of ours
    -> _tally(...)            the points by tag and step, duplicates, negative steps
    -> read_event_file(...)   an EventFile: the Keras columns, and warnings

A stage that meets damage (a truncated record, a CRC that fails, a record that is not an
event) raises :class:`DamagedFile`, as tensorboard's record iterator raises
``DataLossError``; ``_tally`` keeps the points read before it, so a damaged file yields
the values before the damage plus a warning that names the file and the last epoch read
from it. The CRC-32C is ``google-crc32c``'s (C, hardware-accelerated where the CPU can).
Tensors are decoded by ``tensorboard.util.tensor_util.make_ndarray`` (numpy and
tensorboard's TensorFlow stub, never TensorFlow), after a fast path for the float32
scalar that ``tf.summary.scalar`` writes; bfloat16 and the uint32/uint64 value lists,
which the stub cannot decode, have a case of their own.

Mapping, per event file:

- Keras 3 / tf.keras 2 (``train/``, ``validation/``, ``test/``): ``train/epoch_<m>`` ->
  ``<m>``, ``validation/epoch_<m>`` -> ``val_<m>``, ``test/epoch_<m>`` -> ``test_<m>``;
  ``epoch_learning_rate*`` and ``epoch_lr`` keep their name whichever folder holds them
  (train's wins). Event files directly in the log directory count as train, so
  tf.keras 1.x's flat ``epoch_val_loss`` is ``val_loss``.
- Keras 2 with TF1 (one flat folder, a file without any ``epoch_*`` tag but with
  ``loss``, as ``keras.callbacks.TensorBoard._write_logs`` of Keras 2.0-2.3 writes it):
  every scalar tag is a column under its own name (``loss``, ``acc``, ``val_loss``,
  ``val_acc``, ``lr``), except tags with a ``/`` (other tools' summaries).
- ``batch_*`` tags, non-scalar values (histograms, images, text) and, in the Keras
  layout, tags without the ``epoch_`` prefix are ignored.

Trainings: each event file of the main folder (``train/``, or the flat folder) is one
``fit`` (Keras opens new writers per ``fit``); files are ordered by the wall time of
their first value. A file that starts again at epoch 0 starts a new training; one that
starts at k > 0 is a resumed fit, whose values replace epoch k and later. Files of
``validation/`` and ``test/`` join the fit of the same rank (the usual one file per
folder per fit), else the last fit that began before them.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import google_crc32c

from analysis.errors import BadLog, LogNotFound

#: Keras subfolders and the column prefix each one maps to ("" = the log dir itself).
FOLDERS: dict[str, str] = {"train": "", "": "", "validation": "val_", "test": "test_"}
_LR_PREFERENCE = ("train", "", "validation", "test")
_TAG_PREFIX = "epoch_"
_BATCH_PREFIX = "batch_"  # per-batch scalars (update_freq), never read


# --------------------------------------------------------------------------- crc32c


def crc32c(data: bytes) -> int:
    """Return the CRC-32C (Castagnoli) checksum of ``data``.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    return google_crc32c.value(data)


def masked_crc32c(data: bytes) -> int:
    """Return the masked CRC-32C that TFRecord framing stores."""
    c = google_crc32c.value(data)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# --------------------------------------------------------------------------- stages


class DamagedFile(Exception):
    """Raised by a stage at the first damaged record (what, at which byte): the pipeline
    ends there, as tensorboard's ``DataLossError`` ends its record iterator, and
    :func:`read_event_file` keeps the values read before it."""


_HEADER = struct.Struct("<QI")  # length, masked crc32c(length)
_FOOTER = struct.Struct("<I")  # masked crc32c(data)
_F32 = struct.Struct("<f")
_MASK_DELTA = 0xA282EAD8  # TFRecord's CRC mask: rotate right by 15, add this
_CHUNK = 1 << 20

#: (tag, step, wall_time, value): value None for an ``epoch_*`` tag that holds no number.
ScalarPoint = tuple[str, int, float, float | None]


def read_records(path: Path) -> Iterator[tuple[int, bytes]]:
    """Stage 1: ``(offset, data)`` of each record of an event file, both CRCs checked.

    Reads the file in chunks of ``_CHUNK`` bytes (or one record, if larger), never a
    length that the file cannot hold.

    Raises:
        DamagedFile: at a truncated record, a failing CRC or a read error.
    """
    crc, delta = google_crc32c.value, _MASK_DELTA
    length_crcs: dict[int, int] = {}  # length -> the masked CRC its 8 bytes must carry
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf, pos, n, offset = b"", 0, 0, 0  # buf[pos] is the file's byte at offset
            while True:
                if n - pos < 16:  # not even a header and a footer left: read on
                    buf, pos = buf[pos:] + f.read(_CHUNK), 0
                    n = len(buf)
                    if not n:
                        return
                    if n < 12:
                        raise DamagedFile(f"truncated record header at byte {offset}")
                length, length_crc = _HEADER.unpack_from(buf, pos)
                expected = length_crcs.get(length)
                if expected is None:
                    expected = length_crcs[length] = masked_crc32c(buf[pos : pos + 8])
                if length_crc != expected:
                    raise DamagedFile(f"record length fails its CRC at byte {offset}")
                end = pos + 16 + length
                if end > n and offset + 16 + length <= size:  # a record beyond the chunk
                    buf, pos = buf[pos:] + f.read(max(end - n, _CHUNK)), 0
                    n, end = len(buf), 16 + length
                if end > n:
                    raise DamagedFile(f"truncated record at byte {offset}")
                data = buf[pos + 12 : end - 4]
                c = crc(data)
                if (((c >> 15) | (c << 17)) + delta) & 0xFFFFFFFF != _FOOTER.unpack_from(
                    buf, end - 4
                )[0]:
                    raise DamagedFile(f"record data fails its CRC at byte {offset}")
                yield offset, data
                offset += end - pos
                pos = end
    except OSError as e:
        raise DamagedFile(f"read error ({e.strerror or e})") from e


def parse_events(records: Iterable[tuple[int, bytes]]) -> Iterator[Any]:
    """Stage 2: each record parsed as an ``event_pb2.Event``.

    Raises:
        DamagedFile: a record is not an event (or ``records`` raised it).
    """
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    parse = event_pb2.Event.FromString
    for offset, data in records:
        try:
            event = parse(data)
        except (DecodeError, ValueError, RuntimeError):
            raise DamagedFile(f"record at byte {offset} is not a TensorBoard event") from None
        yield event


def scalar_points(events: Iterable[Any]) -> Iterator[ScalarPoint]:
    """Stage 3: a :data:`ScalarPoint` per summary value of ours: each numeric scalar and
    each ``epoch_*`` tag (value None when it is not a numeric scalar), ``batch_*`` tags
    left out."""
    for event in events:
        step, wall_time = event.step, event.wall_time
        for v in event.summary.value[:]:  # (a list: quicker to walk than the container)
            tag = v.tag
            if tag.startswith(_BATCH_PREFIX):
                continue
            value = _scalar_value(v)
            if value is not None or tag.startswith(_TAG_PREFIX):
                yield tag, step, wall_time, value


# --------------------------------------------------------------------------- values

_DT_FLOAT, _DT_BFLOAT16, _DT_UINT32, _DT_UINT64 = 1, 14, 22, 23
#: Numeric dtypes make_ndarray decodes without TensorFlow (float, double, int32, uint8,
#: int16, int8, int64, bool, uint16, half; uint32/uint64 from tensor_content).
_NUMERIC = frozenset({1, 2, 3, 4, 5, 6, 9, 10, 17, 19, 22, 23})


def _scalar_value(v: Any) -> float | None:
    """The number a ``Summary.Value`` holds (tensor or TF1 ``simple_value``), else None."""
    t = v.tensor  # an empty TensorProto (dtype 0) when the value is not a tensor
    dtype = t.dtype
    if dtype == _DT_FLOAT and not t.tensor_shape.dim:  # tf.summary.scalar's forms
        content = t.tensor_content
        if content:  # Keras 3 and tf.keras 2
            return _F32.unpack(content)[0] if len(content) == 4 else None
        floats = t.float_val
        if len(floats) == 1:
            return floats[0]
    if dtype:
        return _tensor_scalar(t)
    if v.HasField("simple_value"):  # TF1
        return v.simple_value
    return None


def _tensor_scalar(t: Any) -> float | None:
    """Return the value of a one-element numeric ``TensorProto``, else None.

    A value that does not fit its dtype (half bits or a uint8 out of range) is not a number.
    """
    if any(d.size != 1 for d in t.tensor_shape.dim):
        return None  # not one element (nor let make_ndarray repeat a value 2**40 times)
    dtype = t.dtype
    if dtype == _DT_BFLOAT16:  # the stub has no bfloat16: it is a float32's upper half
        half = t.half_val
        raw = t.tensor_content or (struct.pack("<H", half[0] & 0xFFFF) if len(half) == 1 else b"")
        return _F32.unpack(b"\0\0" + raw)[0] if len(raw) == 2 else None
    if dtype in (_DT_UINT32, _DT_UINT64) and not t.tensor_content:  # lists the stub skips
        values = t.uint64_val or t.uint32_val
        return float(values[0]) if len(values) == 1 else None
    if dtype not in _NUMERIC:
        return None
    from tensorboard.util.tensor_util import make_ndarray

    try:
        array = make_ndarray(t)
    except (TypeError, ValueError, OverflowError):
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


# --------------------------------------------------------------------------- one file

# (wall_time, read order, value): the max wins, so later wall time, then later read.
_Point = tuple[float, int, float]


@dataclass
class _Tally:
    """One file's scalar points by tag (``raw[tag][step]``), and what is odd about them."""

    raw: dict[str, dict[int, _Point]] = field(default_factory=dict)
    dups: dict[str, set[int]] = field(default_factory=dict)
    negative: dict[str, int] = field(default_factory=dict)  # tag -> its first negative step
    non_scalar: list[str] = field(default_factory=list)
    last_read: dict[str, tuple[int, int]] = field(default_factory=dict)  # (order, step)
    damage: str | None = None

    @property
    def epoch_tags(self) -> bool:
        """Whether the file has any ``epoch_*`` tag (the Keras layout, not TF1's)."""
        tags = itertools.chain(self.raw, self.non_scalar, self.negative)
        return any(t.startswith(_TAG_PREFIX) for t in tags)


def _tally(points: Iterable[ScalarPoint], counter: Iterator[int]) -> _Tally:
    """Stage 4: gather the points (a duplicated step keeps the latest by wall time) up to
    the damage, if any."""
    out = _Tally()
    raw, last_read = out.raw, out.last_read
    try:
        for tag, step, wall_time, value in points:
            if value is None:  # an epoch_* tag holding no number
                if tag not in out.non_scalar:
                    out.non_scalar.append(tag)
                continue
            if step < 0:
                out.negative.setdefault(tag, step)
                continue
            series = raw.get(tag)
            if series is None:
                series = raw[tag] = {}
            new = (wall_time, next(counter), value)
            old = series.get(step)
            if old is not None:
                out.dups.setdefault(tag, set()).add(step)
                new = max(old, new)
            series[step] = new
            last_read[tag] = (new[1], step)
    except DamagedFile as e:
        out.damage = str(e)
    return out


def _is_lr(column: str) -> bool:
    """Whether a column holds a learning rate (kept under its name in every folder)."""
    return column == "lr" or column.startswith("learning_rate")


def _column_name(folder: str, tag: str) -> str:
    metric = tag[len(_TAG_PREFIX) :]
    if _is_lr(metric):
        return metric
    return FOLDERS[folder] + metric


def _keras_columns(
    folder: str, raw: dict[str, dict[int, _Point]], epoch_tags: bool
) -> dict[str, dict[int, _Point]]:
    """The Keras columns among one file's scalars (see the module docstring)."""
    if epoch_tags:
        return {_column_name(folder, t): s for t, s in raw.items() if t.startswith(_TAG_PREFIX)}
    if folder == "" and "loss" in raw and "epoch" not in raw:  # Keras 2 with TF1
        return {t: s for t, s in raw.items() if "/" not in t}
    return {}


@dataclass
class EventFile:
    """The Keras columns of one event file: ``columns[name][step] = (wall, order, value)``.

    The columns are fixed once read (``start`` and ``first_wall`` are cached).
    """

    path: Path
    folder: str
    columns: dict[str, dict[int, _Point]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    tags: tuple[str, ...] = ()  # every scalar tag seen, Keras's or not (for messages)

    @cached_property
    def start(self) -> int:
        """The first epoch it holds (0 for a fresh ``fit``, k for one resumed at k)."""
        return min(min(s) for s in self.columns.values() if s)

    @cached_property
    def first_wall(self) -> float:
        """The wall time of its first epoch value (orders the files of one folder)."""
        return min(p[0] for s in self.columns.values() for p in s.values())

    @property
    def order_key(self) -> tuple[float, str]:
        return (self.first_wall, self.path.name)


def read_event_file(path: Path, folder: str, counter: Iterator[int] | None = None) -> EventFile:
    """Read the Keras epoch scalars of one event file (``folder``: its Keras folder).

    A damaged file yields the values before the damage and a warning. ``counter`` numbers
    the values in read order across the files of one log directory (ties of wall time).
    """
    points = scalar_points(parse_events(read_records(path)))
    tally = _tally(points, counter if counter is not None else itertools.count())
    epoch_tags = tally.epoch_tags
    out = EventFile(path, folder, _keras_columns(folder, tally.raw, epoch_tags))
    if epoch_tags:
        kept = {t for t in tally.raw if t.startswith(_TAG_PREFIX)}
    else:
        kept = {t for t in tally.raw if "/" not in t} if out.columns else set()
    out.warnings = _file_warnings(path, tally, kept)
    out.tags = tuple(sorted(tally.raw))
    return out


#: Scalar tags that PyTorch tools write to TensorBoard, and the log of theirs to read.
_FOREIGN = (
    (("metrics/mAP", "train/box_loss", "val/box_loss", "lr/pg", "metrics/accuracy_top"),
     "Ultralytics", "its results.csv"),
    (("hp_metric", "lr-"), "PyTorch Lightning's TensorBoardLogger",
     "the metrics.csv of its CSVLogger"),
    (("train/loss", "eval/loss", "train/learning_rate", "train/epoch"),
     "a Hugging Face Trainer", "its trainer_state.json"),
)  # fmt: skip


def _foreign_hint(tags: Iterable[str]) -> str:
    """``"; its scalar tags (...) are <tool>'s ...: pass <log> instead"`` where the tags tell
    which tool wrote them, else ``""``.

    >>> print(_foreign_hint(["metrics/mAP50(B)", "train/box_loss"]))  # doctest: +ELLIPSIS
    ; its scalar tags (metrics/mAP50(B), train/box_loss) are Ultralytics's, ...: pass its ...
    """
    tags = sorted(set(tags))
    for prefixes, who, log in _FOREIGN:
        if any(t.startswith(prefixes) for t in tags):
            shown = ", ".join(tags[:4]) + (", ..." if len(tags) > 4 else "")
            return (f"; its scalar tags ({shown}) are {who}'s, not Keras's epoch scalars: "
                    f"pass {log} instead")  # fmt: skip
    return ""


def _file_warnings(path: Path, tally: _Tally, kept: set[str]) -> list[str]:
    """One file's warnings: non-scalar epoch tags, negative steps, duplicates, damage."""
    out = [f"{path}: tag {tag!r} is not a numeric scalar; ignored it" for tag in tally.non_scalar]
    for tag, step in tally.negative.items():
        if tag in kept or tag.startswith(_TAG_PREFIX):
            out.append(
                f"{path}: tag {tag!r} has negative step {step}; ignored those points "
                "(Keras logs epoch scalars at step = 0-based epoch)"
            )
    for tag, steps in sorted(tally.dups.items()):
        if tag in kept:
            out.append(
                f"{path}: {tag} has {epochs_phrase(sorted(steps))} more than once; kept the "
                "latest by wall time"
            )
    if tally.damage:
        last = max((tally.last_read[t] for t in kept if t in tally.last_read), default=None)
        got = "no epoch read before it" if last is None else f"last epoch read {last[1]}"
        out.append(
            f"{path}: damaged ({tally.damage}); kept the data before it ({got}), "
            "anything after it in this file is lost"
        )
    return out


# --------------------------------------------------------------------------- trainings


@dataclass
class TensorBoardData:
    """One training of a log directory: ``columns[name][epoch] = value`` and warnings."""

    columns: dict[str, dict[int, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


@dataclass
class _Fit:
    """One ``fit``: its event file in the main folder and those it wrote in the others."""

    main: EventFile
    others: list[EventFile] = field(default_factory=list)

    @property
    def files(self) -> list[EventFile]:
        """Its files, main first, then validation, then test (the learning rate's order)."""
        rank = {f: i for i, f in enumerate(_LR_PREFERENCE)}
        return [self.main, *sorted(self.others, key=lambda f: rank[f.folder])]


def _event_files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [p for p in entries if "tfevents" in p.name and p.is_file()]


def find_event_folders(logdir: Path) -> dict[str, list[Path]]:
    """Return ``{folder: [event files]}`` for the Keras folders of ``logdir`` that have any.

    ``""`` stands for event files lying directly in ``logdir``.
    """
    found: dict[str, list[Path]] = {}
    for folder in FOLDERS:
        d = logdir / folder if folder else logdir
        if d.is_dir():
            files = _event_files(d)
            if files:
                found[folder] = files
    return found


def epochs_phrase(epochs: list[int]) -> str:
    """``[3]`` -> ``"epoch 3"``, ``[1, 2, 5]`` -> ``"epochs 1-2, 5"``."""
    return ("epoch " if len(set(epochs)) == 1 else "epochs ") + fmt_epochs(epochs)


def fmt_epochs(epochs: list[int], limit: int = 10) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (at most ``limit`` ranges, then a count)."""
    eps = sorted(set(epochs))
    ranges: list[str] = []
    i = 0
    while i < len(eps):
        j = i
        while j + 1 < len(eps) and eps[j + 1] == eps[j] + 1:
            j += 1
        ranges.append(str(eps[i]) if i == j else f"{eps[i]}-{eps[j]}")
        i = j + 1
    if len(ranges) > limit:
        return ", ".join(ranges[:limit]) + f", ... ({len(eps)} in all)"
    return ", ".join(ranges)


def _group_fits(files: list[EventFile]) -> list[_Fit]:
    """Group the files that hold values into fits, in the order they were written.

    The main folder (``train/`` or the log dir itself, else the first other folder with
    values) has one file per fit. A file of another folder joins the fit of the same
    rank when the folder has as many files and each starts at its fit's epoch, else
    the last fit that began before it (by wall time).
    """
    by_folder: dict[str, list[EventFile]] = {}
    for f in files:
        if f.columns:
            by_folder.setdefault(f.folder, []).append(f)
    main_folders = next(
        (
            group
            for group in (("train", ""), ("validation",), ("test",))
            if any(by_folder.get(g) for g in group)
        ),
        (),
    )
    fits = [
        _Fit(f)
        for f in sorted(
            (f for g in main_folders for f in by_folder.get(g, [])), key=lambda f: f.order_key
        )
    ]
    for folder, group in by_folder.items():
        if folder in main_folders:
            continue
        group = sorted(group, key=lambda f: f.order_key)
        if len(group) == len(fits) and all(
            f.start == fit.main.start for f, fit in zip(group, fits, strict=True)
        ):
            for f, fit in zip(group, fits, strict=True):
                fit.others.append(f)
            continue
        for f in group:
            began = [fit for fit in fits if fit.main.first_wall <= f.first_wall]
            (began[-1] if began else fits[0]).others.append(f)
    return fits


def _split_fits(fits: list[_Fit]) -> list[list[_Fit]]:
    """Trainings: a fit whose main file starts at epoch 0 starts a new one."""
    trainings: list[list[_Fit]] = []
    for fit in fits:
        if not trainings or fit.main.start == 0:
            trainings.append([])
        trainings[-1].append(fit)
    return trainings


def _merge_fits(fits: list[_Fit], logdir: Path) -> TensorBoardData:
    """One training's columns: a fit resumed at k replaces epoch k and later."""
    out = TensorBoardData()
    columns: dict[str, dict[int, float]] = {}
    previous: EventFile | None = None
    for fit in fits:
        k = fit.main.start
        if previous is not None and columns:
            reached = max((max(s) for s in columns.values() if s), default=-1)
            if k <= reached:
                out.warnings.append(
                    f"{fit.main.path}: starts at epoch {k} after {_rel(previous.path, logdir)} "
                    f"reached epoch {reached} (a fit resumed from epoch {k}); its values "
                    f"replace epoch {k} and later"
                )
                for s in columns.values():
                    for step in [s_ for s_ in s if s_ >= k]:
                        del s[step]
        merged: dict[str, dict[int, _Point]] = {}
        owner: dict[str, str] = {}
        dups: dict[str, set[int]] = {}
        for f in fit.files:
            out.files.append(f.path)
            out.warnings.extend(f.warnings)
            for name, series in f.columns.items():
                if name in merged and _is_lr(name) and owner[name] != f.folder:
                    continue  # the learning rate of the first folder that has it
                target = merged.setdefault(name, {})
                owner.setdefault(name, f.folder)
                if not target:
                    target.update(series)
                    continue
                for step, point in series.items():
                    old = target.get(step)
                    if old is not None:
                        dups.setdefault(name, set()).add(step)
                        point = max(old, point)
                    target[step] = point
        for name, steps in sorted(dups.items()):
            out.warnings.append(
                f"{logdir}: {name} has {epochs_phrase(sorted(steps))} in several event "
                "files of one fit; kept the latest by wall time"
            )
        for name, series in merged.items():
            columns.setdefault(name, {}).update({s: p[2] for s, p in series.items()})
        previous = fit.main
    out.columns = {name: dict(sorted(s.items())) for name, s in columns.items() if s}
    return out


def _rel(path: Path, logdir: Path) -> str:
    try:
        return str(path.relative_to(logdir))
    except ValueError:
        return str(path)


def read_trainings(logdir: Path) -> list[TensorBoardData]:
    """Read every Keras epoch scalar of a TensorBoard log directory, one entry per training.

    Each event file of the main folder (``train/``, or the log dir itself for TF1-era
    Keras) is one ``fit``. One that starts again at epoch 0 starts a new training; one
    that starts at k > 0 is a resumed fit whose values replace epoch k and later (both
    with a warning). ``logdir`` may also be a single event file (its parent folder's
    name gives the prefix).

    Raises:
        LogNotFound: no event file where Keras puts them.
        BadLog: event files exist but hold no readable Keras epoch scalar.
    """
    notes: list[str] = []
    if logdir.is_file():
        parent = logdir.parent.name
        folder = parent if parent in ("train", "validation", "test") else ""
        folders = {folder: [logdir]}
    else:
        folders = find_event_folders(logdir)
        for extra in sorted(p for p in _subdirs(logdir) if p.name not in FOLDERS):
            if _event_files(extra):
                notes.append(
                    f"{extra}: event files in a folder Keras does not write "
                    "(expected train/, validation/, test/); ignored them"
                )
    if not folders:
        raise LogNotFound(
            f"{logdir}: no TensorBoard event files (events.out.tfevents.*) in it or in its "
            f"train/, validation/, test/ folders{_nested_hint(logdir)}; pass the log_dir "
            "given to keras.callbacks.TensorBoard"
        )
    counter = itertools.count()
    files = [
        read_event_file(path, folder, counter)
        for folder, paths in folders.items()
        for path in paths
    ]
    fits = _group_fits(files)
    if not fits:
        damaged = [w for f in files for w in f.warnings if ": damaged (" in w]
        detail = f"; {damaged[0]}" if damaged else ""
        foreign = _foreign_hint(t for f in files for t in f.tags)
        raise BadLog(
            f"{logdir}: {len(files)} event file(s) but no readable epoch_* scalar (nor the "
            f"loss of a TF1-era flat folder){detail}; a Keras TensorBoard callback writes "
            f"epoch_loss etc. to train/ and validation/{foreign}"
        )
    grouped = {f.path for fit in fits for f in [fit.main, *fit.others]}
    notes.extend(w for f in files if f.path not in grouped for w in f.warnings)
    trainings = _split_fits(fits)
    out = []
    for k, training in enumerate(trainings, 1):
        data = _merge_fits(training, logdir)
        own = list(notes)
        if len(trainings) > 1:
            starts = ", ".join(_rel(t[0].main.path, logdir) for t in trainings[1:])
            mine = ", ".join(_rel(p, logdir) for p in data.files)
            own.append(
                f"{logdir}: holds {len(trainings)} trainings (a new one starts with each event "
                f"file that goes back to epoch 0: {starts}); this is training #{k}, {mine}"
            )
        data.warnings[:0] = own
        out.append(data)
    return out


def _subdirs(d: Path) -> list[Path]:
    try:
        return [p for p in d.iterdir() if p.is_dir()]
    except OSError:
        return []


def _nested_hint(logdir: Path) -> str:
    """Name subfolders that look like TensorBoard log dirs themselves, for the error."""
    if not logdir.is_dir():
        return ""
    nested = sorted(p.name for p in _subdirs(logdir) if find_event_folders(p))
    if not nested:
        return ""
    shown = ", ".join(nested[:5]) + (", ..." if len(nested) > 5 else "")
    return f" (its subfolders {shown} hold TensorBoard logs: pass one of them)"
