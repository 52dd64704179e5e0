"""Reading Keras TensorBoard logs without TensorFlow.

TensorBoard's own loader (``event_file_loader``) goes through ``tensorboard.compat.tf``,
which imports TensorFlow when it is installed, and stops without a word at the first
damaged record. So this module reads the TFRecord framing itself::

    uint64 length (little endian) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)

and parses each record with tensorboard's generated ``event_pb2.Event`` (protobuf
only). A truncated or CRC-damaged file yields the records before the damage plus a
warning that names the file and the last epoch read from it.

Which records are checked: the length CRC of every record (it protects the framing);
the data CRC of every record that carries a numeric scalar (or an ``epoch_*`` tag) and
of every record up to ``_ALWAYS_CHECK_BYTES`` long (a damaged scalar record keeps its
length, so it is caught even if the damage hides its tag). Larger records without a
scalar (graphs, histograms, images) are ignored anyway, so their CRC is not computed:
pure-Python crc32c runs at about 5 MB/s.

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
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import BadLog, LogNotFound

#: Keras subfolders and the column prefix each one maps to ("" = the log dir itself).
FOLDERS: dict[str, str] = {"train": "", "": "", "validation": "val_", "test": "test_"}
_LR_PREFERENCE = ("train", "", "validation", "test")
_ALWAYS_CHECK_BYTES = 4096
_TAG_PREFIX = "epoch_"
_BATCH_PREFIX = "batch_"  # per-batch scalars (update_freq), never read


# --------------------------------------------------------------------------- crc32c

def _make_crc_table() -> tuple[int, ...]:
    poly = 0x82F63B78  # Castagnoli polynomial, bit-reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _make_crc_table()
_CRC_TABLE16: list[int] = []  # two bytes per step; built on first use (65,536 entries)
_LITTLE = sys.byteorder == "little"


def _table16() -> list[int]:
    if not _CRC_TABLE16:
        t = _CRC_TABLE
        _CRC_TABLE16.extend(
            t[(t[x & 0xFF] ^ (x >> 8)) & 0xFF] ^ (t[x & 0xFF] >> 8) for x in range(65536)
        )
    return _CRC_TABLE16


def crc32c(data: bytes) -> int:
    """Return the CRC-32C (Castagnoli) checksum of ``data``.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    table = _CRC_TABLE
    c = 0xFFFFFFFF
    even = len(data) & ~1
    if _LITTLE and even:
        t16 = _table16()
        for w in memoryview(data)[:even].cast("H"):
            c = t16[(c ^ w) & 0xFFFF] ^ (c >> 16)
        data = data[even:]
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """Return the masked CRC-32C that TFRecord framing stores."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """Return ``data`` framed as one TFRecord (what the reader undoes)."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def scalar_event(tag: str, value: float, step: int, wall_time: float = 0.0,
                 *, as_tensor: bool = True) -> bytes:
    """Return a serialized ``Event`` holding one scalar, as ``tf.summary.scalar`` writes it.

    ``as_tensor=False`` writes the TF1 ``simple_value`` form instead. Used by tests and
    benchmarks to build event files without TensorFlow.
    """
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=wall_time, step=step)
    v = event.summary.value.add(tag=tag)
    if as_tensor:
        v.metadata.plugin_data.plugin_name = "scalars"
        v.tensor.dtype = 1  # DT_FLOAT
        v.tensor.float_val.append(value)
    else:
        v.simple_value = value
    return event.SerializeToString()


def file_version_event(wall_time: float = 0.0) -> bytes:
    """Return the serialized first ``Event`` of every event file (``brain.Event:2``)."""
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString()


# --------------------------------------------------------------------------- records

@dataclass
class _Record:
    offset: int
    data: bytes
    data_crc: int


class _RecordReader:
    """Iterate over the records of one file; ``damage`` says why iteration stopped early."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.damage: str | None = None

    def __iter__(self) -> Iterator[_Record]:
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while True:
                header = f.read(12)
                if not header:
                    return
                if len(header) < 12:
                    self.damage = f"truncated record header at byte {offset}"
                    return
                (length,) = struct.unpack_from("<Q", header, 0)
                (length_crc,) = struct.unpack_from("<I", header, 8)
                if masked_crc32c(header[:8]) != length_crc:
                    self.damage = f"record length fails its CRC at byte {offset}"
                    return
                if offset + 12 + length + 4 > size:
                    self.damage = f"truncated record at byte {offset}"
                    return
                data = f.read(length)
                footer = f.read(4)
                if len(data) < length or len(footer) < 4:
                    self.damage = f"truncated record at byte {offset}"
                    return
                (data_crc,) = struct.unpack("<I", footer)
                yield _Record(offset, data, data_crc)
                offset += 12 + length + 4


# --------------------------------------------------------------------------- values

_DTYPES: dict[int, str] = {
    1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8",
    10: "?", 17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8",
}


def _tensor_scalar(t: Any) -> float | None:
    """Return the value of a one-element numeric ``TensorProto``, else None."""
    if t.dtype == 1 and not t.tensor_content and len(t.float_val) == 1:
        if not t.tensor_shape.dim:
            return float(t.float_val[0])  # tf.summary.scalar
    dims = [d.size for d in t.tensor_shape.dim]
    if any(d != 1 for d in dims):
        return None
    dtype = t.dtype
    if t.tensor_content:
        np_dtype = _DTYPES.get(dtype)
        if np_dtype is None and dtype == 14:  # bfloat16: upper half of a float32
            raw = t.tensor_content
            if len(raw) != 2:
                return None
            return float(np.frombuffer(b"\0\0" + raw, "<f4")[0])
        if np_dtype is None:
            return None
        raw = t.tensor_content
        if len(raw) != np.dtype(np_dtype).itemsize:
            return None
        return float(np.frombuffer(raw, np_dtype)[0])
    if dtype == 1 and len(t.float_val) == 1:
        return float(t.float_val[0])
    if dtype == 2 and len(t.double_val) == 1:
        return float(t.double_val[0])
    if dtype in (3, 4, 5, 6, 17) and len(t.int_val) == 1:
        return float(t.int_val[0])
    if dtype == 9 and len(t.int64_val) == 1:
        return float(t.int64_val[0])
    if dtype in (22, 23) and len(t.uint64_val or t.uint32_val) == 1:
        return float((t.uint64_val or t.uint32_val)[0])
    if dtype == 10 and len(t.bool_val) == 1:
        return float(t.bool_val[0])
    if dtype == 19 and len(t.half_val) == 1:
        bits = np.array([t.half_val[0] & 0xFFFF], np.uint16)
        return float(bits.view(np.float16)[0])
    if dtype == 14 and len(t.half_val) == 1:
        bits = np.array([(t.half_val[0] & 0xFFFF) << 16], np.uint32)
        return float(bits.view(np.float32)[0])
    return None


# (wall_time, read order, value): the max wins, so later wall time, then later read.
_Point = tuple[float, int, float]


def _scalar_value(v: Any) -> float | None:
    """The number a ``Summary.Value`` holds (tensor or TF1 ``simple_value``), else None."""
    kind = v.WhichOneof("value")
    if kind == "tensor":
        return _tensor_scalar(v.tensor)
    if kind == "simple_value":
        return float(v.simple_value)
    return None


def _is_lr(column: str) -> bool:
    """Whether a column holds a learning rate (kept under its name in every folder)."""
    return column == "lr" or column.startswith("learning_rate")


def _column_name(folder: str, tag: str) -> str:
    metric = tag[len(_TAG_PREFIX):]
    if _is_lr(metric):
        return metric
    return FOLDERS[folder] + metric


def _keras_columns(folder: str, raw: dict[str, dict[int, _Point]],
                   epoch_tags: bool) -> dict[str, dict[int, _Point]]:
    """The Keras columns among one file's scalars (see the module docstring)."""
    if epoch_tags:
        return {_column_name(folder, t): s for t, s in raw.items() if t.startswith(_TAG_PREFIX)}
    if folder == "" and "loss" in raw and "epoch" not in raw:  # Keras 2 with TF1
        return {t: s for t, s in raw.items() if "/" not in t}
    return {}


@dataclass
class EventFile:
    """The Keras columns of one event file: ``columns[name][step] = (wall, order, value)``."""

    path: Path
    folder: str
    columns: dict[str, dict[int, _Point]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def start(self) -> int:
        """The first epoch it holds (0 for a fresh ``fit``, k for one resumed at k)."""
        return min(min(s) for s in self.columns.values() if s)

    @property
    def first_wall(self) -> float:
        """The wall time of its first epoch value (orders the files of one folder)."""
        return min(p[0] for s in self.columns.values() for p in s.values())

    @property
    def order_key(self) -> tuple[float, str]:
        return (self.first_wall, self.path.name)


def read_event_file(path: Path, folder: str, counter: Iterator[int] | None = None) -> EventFile:
    """Read the Keras epoch scalars of one event file (``folder``: its Keras folder).

    A damaged file yields the values before the damage and a warning.
    """
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    counter = counter if counter is not None else itertools.count()
    parse = event_pb2.Event.FromString
    reader = _RecordReader(path)
    raw: dict[str, dict[int, _Point]] = {}
    dups: dict[str, set[int]] = {}
    negative: dict[str, int] = {}
    non_scalar: list[str] = []
    epoch_tags = False
    last_read: dict[str, tuple[int, int]] = {}  # tag -> (read order, step) of its last value
    damage: str | None = None
    try:
        for rec in reader:
            data = rec.data
            checked = len(data) <= _ALWAYS_CHECK_BYTES
            if checked and masked_crc32c(data) != rec.data_crc:
                damage = f"record data fails its CRC at byte {rec.offset}"
                break
            try:
                event = parse(data)
            except (DecodeError, ValueError, RuntimeError):
                if not checked and masked_crc32c(data) != rec.data_crc:
                    damage = f"record data fails its CRC at byte {rec.offset}"
                else:
                    damage = f"record at byte {rec.offset} is not a TensorBoard event"
                break
            found = [(v.tag, _scalar_value(v)) for v in event.summary.value
                     if not v.tag.startswith(_BATCH_PREFIX)]
            if not any(x is not None or t.startswith(_TAG_PREFIX) for t, x in found):
                continue  # no value of ours (histograms, images, text, batch scalars)
            if not checked and masked_crc32c(data) != rec.data_crc:
                damage = f"record data fails its CRC at byte {rec.offset}"
                break
            step = int(event.step)
            wall_time = float(event.wall_time)
            for tag, value in found:
                if tag.startswith(_TAG_PREFIX):
                    epoch_tags = True
                if value is None:
                    if tag.startswith(_TAG_PREFIX) and tag not in non_scalar:
                        non_scalar.append(tag)
                    continue
                if step < 0:
                    negative.setdefault(tag, step)
                    continue
                series = raw.get(tag)
                if series is None:
                    series = raw[tag] = {}
                new = (wall_time, next(counter), value)
                old = series.get(step)
                if old is not None:
                    dups.setdefault(tag, set()).add(step)
                    new = max(old, new)
                series[step] = new
                last_read[tag] = (new[1], step)
    except OSError as e:
        damage = f"read error ({e.strerror or e})"
    out = EventFile(path, folder, _keras_columns(folder, raw, epoch_tags))
    if epoch_tags:
        kept = {t for t in raw if t.startswith(_TAG_PREFIX)}
    else:
        kept = {t for t in raw if "/" not in t} if out.columns else set()
    for tag in non_scalar:
        out.warnings.append(f"{path}: tag {tag!r} is not a numeric scalar; ignored it")
    for tag, step in negative.items():
        if tag in kept or tag.startswith(_TAG_PREFIX):
            out.warnings.append(
                f"{path}: tag {tag!r} has negative step {step}; ignored those points "
                "(Keras logs epoch scalars at step = 0-based epoch)"
            )
    for tag, steps in sorted(dups.items()):
        if tag in kept:
            out.warnings.append(
                f"{path}: {tag} has {_epochs_phrase(sorted(steps))} more than once; kept the "
                "latest by wall time"
            )
    damage = damage or reader.damage
    if damage:
        last = max((last_read[t] for t in kept if t in last_read), default=None)
        got = "no epoch read before it" if last is None else f"last epoch read {last[1]}"
        out.warnings.append(
            f"{path}: damaged ({damage}); kept the data before it ({got}), "
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


def _epochs_phrase(epochs: list[int]) -> str:
    """``[3]`` -> ``"epoch 3"``, ``[1, 2, 5]`` -> ``"epochs 1-2, 5"``."""
    return ("epoch " if len(set(epochs)) == 1 else "epochs ") + _fmt_epochs(epochs)


def _fmt_epochs(epochs: list[int], limit: int = 10) -> str:
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
        (group for group in (("train", ""), ("validation",), ("test",))
         if any(by_folder.get(g) for g in group)),
        (),
    )
    fits = [_Fit(f) for f in sorted((f for g in main_folders for f in by_folder.get(g, [])),
                                    key=lambda f: f.order_key)]
    for folder, group in by_folder.items():
        if folder in main_folders:
            continue
        group = sorted(group, key=lambda f: f.order_key)
        if len(group) == len(fits) and all(
                f.start == fit.main.start for f, fit in zip(group, fits, strict=True)):
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
                for step, point in series.items():
                    old = target.get(step)
                    if old is not None:
                        dups.setdefault(name, set()).add(step)
                        point = max(old, point)
                    target[step] = point
        for name, steps in sorted(dups.items()):
            out.warnings.append(
                f"{logdir}: {name} has {_epochs_phrase(sorted(steps))} in several event "
                "files of one fit; kept the latest by wall time"
            )
        for name, series in merged.items():
            columns.setdefault(name, {}).update((s, p[2]) for s, p in series.items())
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
    files = [read_event_file(path, folder, counter)
             for folder, paths in folders.items() for path in paths]
    fits = _group_fits(files)
    if not fits:
        damaged = [w for f in files for w in f.warnings if ": damaged (" in w]
        detail = f"; {damaged[0]}" if damaged else ""
        raise BadLog(
            f"{logdir}: {len(files)} event file(s) but no readable epoch_* scalar (nor the "
            f"loss of a TF1-era flat folder){detail}; a Keras TensorBoard callback writes "
            "epoch_loss etc. to train/ and validation/"
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
