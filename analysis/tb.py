"""Reading Keras TensorBoard logs without TensorFlow.

TensorBoard's own loader (``event_file_loader``) goes through ``tensorboard.compat.tf``,
which imports TensorFlow when it is installed, and stops without a word at the first
damaged record. So this module reads the TFRecord framing itself::

    uint64 length (little endian) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)

and parses each record with tensorboard's generated ``event_pb2.Event`` (protobuf
only). A truncated or CRC-damaged file yields the records before the damage plus a
warning that names the file and the last epoch read from it.

Which records are checked: the length CRC of every record (it protects the framing);
the data CRC of every record that carries an ``epoch_*`` value and of every record
up to ``_ALWAYS_CHECK_BYTES`` long (a damaged scalar record keeps its length, so it
is caught even if the damage hides its tag). Larger records without an ``epoch_*``
value (graphs, histograms, images) are ignored anyway, so their CRC is not computed:
pure-Python crc32c runs at about 5 MB/s.

Mapping (Keras layout): ``train/epoch_<m>`` -> ``<m>``, ``validation/epoch_<m>`` ->
``val_<m>``, ``test/epoch_<m>`` -> ``test_<m>``; ``epoch_learning_rate*`` keeps its
name whichever folder holds it (train's wins). Event files directly in the log
directory count as train. Tags that do not start with ``epoch_`` are ignored.
"""

from __future__ import annotations

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


@dataclass
class TensorBoardData:
    """What :func:`read_logdir` found: ``columns[name][epoch] = value`` and warnings."""

    columns: dict[str, dict[int, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _column_name(folder: str, tag: str) -> str:
    metric = tag[len(_TAG_PREFIX):]
    if metric.startswith("learning_rate"):
        return metric
    return FOLDERS[folder] + metric


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


def _read_file(path: Path, folder: str, points: dict[str, dict[int, _Point]],
               dups: dict[str, set[int]], skipped: set[str], warnings: list[str],
               counter: list[int]) -> int:
    """Read one event file into ``points``; return how many epoch values it gave."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    parse = event_pb2.Event.FromString
    reader = _RecordReader(path)
    n_values = 0
    last_epoch: int | None = None
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
            values = [v for v in event.summary.value if v.tag.startswith(_TAG_PREFIX)]
            if not values:
                continue
            if not checked and masked_crc32c(data) != rec.data_crc:
                damage = f"record data fails its CRC at byte {rec.offset}"
                break
            step = int(event.step)
            wall_time = float(event.wall_time)
            for v in values:
                tag = v.tag
                kind = v.WhichOneof("value")
                value: float | None
                if kind == "tensor":
                    value = _tensor_scalar(v.tensor)
                elif kind == "simple_value":
                    value = float(v.simple_value)
                else:
                    value = None
                if value is None:
                    if tag not in skipped:
                        skipped.add(tag)
                        warnings.append(f"{path}: tag {tag!r} is not a numeric scalar; ignored it")
                    continue
                if step < 0:
                    if f"#step:{tag}" not in skipped:
                        skipped.add(f"#step:{tag}")
                        warnings.append(
                            f"{path}: tag {tag!r} has negative step {step}; ignored those "
                            "points (Keras logs epoch scalars at step = 0-based epoch)"
                        )
                    continue
                name = _column_name(folder, tag)
                series = points.get(name)
                if series is None:
                    series = points[name] = {}
                counter[0] += 1
                new = (wall_time, counter[0], value)
                old = series.get(step)
                if old is not None:
                    dups.setdefault(f"{folder or '.'}/{tag}", set()).add(step)
                    new = max(old, new)
                series[step] = new
                n_values += 1
                last_epoch = step
    except OSError as e:
        damage = f"read error ({e.strerror or e})"
    damage = damage or reader.damage
    if damage:
        got = "no epoch read before it"
        if last_epoch is not None:
            got = f"last epoch read {last_epoch}"
        warnings.append(
            f"{path}: damaged ({damage}); kept the data before it ({got}), "
            "anything after it in this file is lost"
        )
    return n_values


def read_logdir(logdir: Path) -> TensorBoardData:
    """Read every ``epoch_*`` scalar of a Keras TensorBoard log directory.

    ``logdir`` may also be a single event file (its parent folder's name gives the prefix).

    Raises:
        LogNotFound: no event file where Keras puts them.
        BadLog: event files exist but hold no readable ``epoch_*`` scalar.
    """
    out = TensorBoardData()
    if logdir.is_file():
        parent = logdir.parent.name
        folder = parent if parent in ("train", "validation", "test") else ""
        folders = {folder: [logdir]}
    else:
        folders = find_event_folders(logdir)
        for extra in sorted(p for p in _subdirs(logdir) if p.name not in FOLDERS):
            if _event_files(extra):
                out.warnings.append(
                    f"{extra}: event files in a folder Keras does not write "
                    "(expected train/, validation/, test/); ignored them"
                )
    if not folders:
        raise LogNotFound(
            f"{logdir}: no TensorBoard event files (events.out.tfevents.*) in it or in its "
            f"train/, validation/, test/ folders{_nested_hint(logdir)}; pass the log_dir "
            "given to keras.callbacks.TensorBoard"
        )
    per_folder: dict[str, dict[str, dict[int, _Point]]] = {}
    skipped: set[str] = set()
    counter = [0]
    n_values = 0
    for folder, files in folders.items():
        points = per_folder.setdefault("train" if folder == "" else folder, {})
        dups: dict[str, set[int]] = {}
        for path in files:
            out.files.append(path)
            n_values += _read_file(path, folder, points, dups, skipped, out.warnings, counter)
        for tag, steps in sorted(dups.items()):
            out.warnings.append(
                f"{logdir}: {tag} has {_epochs_phrase(list(steps))} more than once "
                "(a resumed fit logging into the same folder?); kept the latest by wall time"
            )
    if n_values == 0:
        damaged = [w for w in out.warnings if ": damaged (" in w]
        detail = f"; {damaged[0]}" if damaged else ""
        raise BadLog(
            f"{logdir}: {len(out.files)} event file(s) but no readable epoch_* scalar"
            f"{detail}; a Keras TensorBoard callback writes epoch_loss etc. to train/ and "
            "validation/"
        )
    # Learning-rate columns come from the first folder (train first) that has them.
    for folder in _LR_PREFERENCE:
        key = "train" if folder == "" else folder
        for name, series in per_folder.get(key, {}).items():
            if name.startswith("learning_rate") and name not in out.columns:
                out.columns[name] = {s: p[2] for s, p in series.items()}
    for _key, cols in per_folder.items():
        for name, series in cols.items():
            if name.startswith("learning_rate"):
                continue
            out.columns[name] = {s: p[2] for s, p in series.items()}
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
