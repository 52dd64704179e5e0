"""results.json and results.csv: the sweep's records written as they stream from its
compact blocks (:mod:`replay.sweeping.blocks`), and the output folder they go to.

Nothing here builds every record: :func:`write_csv` and :func:`write_json` stream each
block's text, rendering every distinct value once (a template per block, cut from the
text that ``json.dumps`` and ``csv.writer`` give a record whose values are
placeholders). ``render_csv`` / ``render_json`` are those writers into a string.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from json.encoder import encode_basestring_ascii as _encode_string  # json.dumps's own
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from analysis.errors import ReplayError
from analysis.results.records import Record
from replay.sweeping.blocks import CONST, Block, Records

if TYPE_CHECKING:  # pragma: no cover
    pass


__all__ = [
    "DEFAULT_OUT_ROOT",
    "atomic_text",
    "check_out_dir",
    "check_output_dir",
    "csv_columns",
    "default_out_dir",
    "finite_or_none",
    "flatten",
    "render_csv",
    "render_json",
    "write_csv",
    "write_json",
]


def finite_or_none(value):
    """``value`` with every non-finite float (NaN, +-inf), however nested, made None.

    >>> finite_or_none({"a": [1.0, float("inf")], "b": float("nan")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row: nested dicts become dotted columns, lists become space-joined text."""
    row: dict = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for k, v in value.items():
                row[f"{key}.{k}"] = v
        elif isinstance(value, list):
            row[key] = " ".join(repr(v) for v in value)
        else:
            row[key] = value
    return row


def render_csv(records: Iterable[Record]) -> str:
    """The records as CSV (:func:`write_csv`), in a string."""
    buf = io.StringIO()
    write_csv(records, buf)
    return buf.getvalue()


def render_json(records: Iterable[Record]) -> str:
    """The records as strict JSON (:func:`write_json`), in a string."""
    buf = io.StringIO()
    write_json(records, buf)
    return buf.getvalue()


# ----------------------------------------------------------------------------------
# Streaming writers

_CHUNK = 1 << 16  # pieces of text per write
_REDUCE_AT = 16  # settle an axis's values into the text when this many records share them


def write_csv(records: Iterable[Record], *outs: TextIO) -> None:
    """Write the records as CSV to each of ``outs``: one row per record, flattened
    (:func:`flatten`: ``params.patience``, ``final_metrics.test_loss``; a list as its
    values separated by spaces, None as an empty cell), columns in the order they first
    occur over the records (:func:`csv_columns`), ``\\n`` line ends.
    """
    recs = Records.of(records)
    columns = csv_columns(recs)
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(columns)
    _write(outs, head.getvalue())
    fmt = _CsvFormat(columns)
    for block in recs.blocks:
        for text in _block_text(block, fmt):
            _write(outs, text)


def write_json(records: Iterable[Record], *outs: TextIO) -> None:
    """Write the records to each of ``outs`` as one JSON list (``indent=1``), strict:
    a non-finite float (NaN, +-inf) anywhere in a record is written as null. The text
    is ``json.dumps(records, indent=1) + "\\n"``'s, byte for byte.
    """
    recs = Records.of(records)
    if not len(recs):
        _write(outs, "[]\n")
        return
    _write(outs, "[\n")
    first = True
    for block in recs.blocks:
        for text in _block_text(block, _JSON):
            if first:  # the separator the template starts with has no record before it
                text, first = text[len(_JSON_SEP) :], False
            _write(outs, text)
    _write(outs, "\n]\n")


def _write(outs: Sequence[TextIO], text: str) -> None:
    for out in outs:
        out.write(text)


def check_output_dir(path: Path, option: str, force: bool, forced: str) -> None:
    """Refuse ``path`` as the output directory of ``option`` before any work: a file, a
    non-empty directory without ``force`` (``forced`` says what --force does there), a
    place that is not a directory or not writable. Nothing is created.
    """
    if path.exists() and not path.is_dir():
        raise ReplayError(f"{option} {path}: exists and is not a directory; choose another path.")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise ReplayError(
            f"{option} {path}: directory exists and is not empty; pass --force to {forced}, "
            "or choose another directory."
        )
    parent = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise ReplayError(f"{option} {path}: {parent} is not a directory; choose another path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReplayError(f"{option} {path}: {parent} is not writable; choose another directory.")


def atomic_text(path: Path):
    """A text file (UTF-8) that replaces ``path`` in one step when the block ends well:
    :func:`analysis.reading.rundir.atomic_file`, for the streaming writers."""
    from analysis.reading.rundir import atomic_file

    return atomic_file(path)


def csv_columns(records: Iterable[Record]) -> list[str]:
    """results.csv's columns: the records' flattened fields in the order they first
    occur (read from each block's distinct outcomes, in the order its records reach
    them)."""
    columns: dict[str, None] = {}
    for block in Records.of(records).blocks:
        base = [*block.head, *(f"params.{k}" for k, _ in block.params)]
        for shape in _shapes_in_order(block, _flat_shape):
            for name in base + [".".join(map(str, path)) for path in shape]:
                columns.setdefault(name)
    return list(columns)


def _shapes_in_order(block: Block, shape_of) -> list:
    """The distinct ``shape_of(outcome)`` of a block, in the order its records reach them."""
    shapes: dict[Hashable, int] = {}
    sid = np.array([shapes.setdefault(shape_of(o), len(shapes)) for o in block.outcomes])
    if len(shapes) == 1:
        return list(shapes)
    used, first = np.unique(sid[block.ids], return_index=True)
    listed = list(shapes)
    return [listed[s] for s in used[np.argsort(first, kind="stable")]]


def _flat_shape(outcome: Mapping[str, Any]) -> tuple[tuple, ...]:
    """The paths of an outcome's flattened columns (``("final_metrics", "loss")``)."""
    return tuple(
        path for key, value in outcome.items()
        for path in ([(key, k) for k in value] if isinstance(value, dict) else [(key,)])
    )  # fmt: skip


class _Slot:
    """A place in a template for the value at ``path`` of an axis value (``level`` < the
    block's axes) or of the outcome; ``indent``: the JSON line's indentation."""

    __slots__ = ("level", "path", "indent", "frags")

    def __init__(self, level: int, path: tuple, indent: int = 0) -> None:
        self.level, self.path, self.indent = level, path, indent
        self.frags: list[str] | None = None  # the text of each axis value, once rendered

    def value(self, source: Mapping[str, Any]) -> Any:
        v = source[self.path[0]]
        return v if len(self.path) == 1 else v[self.path[1]]


class _Run:
    """A stretch of a template that only the outcome fills: its text per outcome."""

    __slots__ = ("items", "cache")

    def __init__(self, items: list) -> None:
        self.items = items
        self.cache: list[str | None] | None = None


def _dumps(value: Any, **kw: Any) -> str:
    """``json.dumps(value, indent=1)``, strict; non-finite floats as null."""
    try:
        return json.dumps(value, indent=1, allow_nan=False, **kw)
    except ValueError:  # "Out of range float values are not JSON compliant"
        return json.dumps(finite_or_none(value), indent=1, allow_nan=False, **kw)


_TOKEN = re.compile(r'"\\u0000slot(\d+)\\u0000"')
_JSON_SEP = ",\n"


class _JsonFormat:
    """Records as ``json.dumps([...], indent=1)`` writes them."""

    @staticmethod
    def shape(outcome: Mapping[str, Any]) -> tuple:
        return tuple(outcome)

    @staticmethod
    def template(block: Block, shape: tuple) -> list:
        """One record's text with a :class:`_Slot` for each value that varies, cut out
        of the text ``json.dumps`` gives the record with placeholders for them."""
        slots: list[_Slot] = []

        def slot(level: int, key: str) -> _Token:
            slots.append(_Slot(level, (key,)))
            return _Token(len(slots) - 1)

        k = len(block.axes)
        params = {key: block.const[key] if a == CONST else slot(a, key) for key, a in block.params}
        skeleton = {**block.head, "params": params, **{key: slot(k, key) for key in shape}}
        text = _dumps([skeleton], default=lambda t: t.text)[2:-2]  # without "[\n", "\n]"
        items: list = [_JSON_SEP]
        pos = 0
        for m in _TOKEN.finditer(text):
            items.append(text[pos : m.start()])
            line = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
            found = slots[int(m.group(1))]
            found.indent = len(line) - len(line.lstrip(" "))
            items.append(found)
            pos = m.end()
        items.append(text[pos:])
        return items

    @staticmethod
    def fragment(value: Any, slot: _Slot) -> str:
        text = _json_plain(value, slot.indent)
        if text is None:
            text = _dumps(value)
            text = text.replace("\n", "\n" + " " * slot.indent) if "\n" in text else text
        return text


def _json_scalar(value: Any) -> str | None:
    """A scalar as ``json.dumps`` writes it (strict: a non-finite float as null), for
    the plain types; None for anything else."""
    t = type(value)
    if t is float:
        return float.__repr__(value) if math.isfinite(value) else "null"
    if t is str:
        return _encode_string(value)
    if t is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    return None


def _json_plain(value: Any, indent: int) -> str | None:
    """``json.dumps(value, indent=1)`` indented by ``indent`` (see :meth:`_JsonFormat.
    fragment`), for a scalar or a flat list or dict of them with string keys (a
    schedule, a row of metrics); None for anything else."""
    t = type(value)
    if t is not list and t is not dict:
        return _json_scalar(value)
    if not value:
        return "[]" if t is list else "{}"
    if t is list:
        items = [_json_scalar(v) for v in value]
    elif all(type(k) is str for k in value):
        items = [_json_scalar(v) for v in value.values()]
        if None not in items:
            items = [f"{_encode_string(k)}: {i}" for k, i in zip(value, items, strict=True)]
    else:
        return None
    if None in items:
        return None
    pad = "\n" + " " * (indent + 1)
    opening, closing = ("[", "]") if t is list else ("{", "}")
    return opening + pad + ("," + pad).join(items) + "\n" + " " * indent + closing


class _Token:
    __slots__ = ("text",)

    def __init__(self, i: int) -> None:
        self.text = f"\x00slot{i}\x00"


_JSON = _JsonFormat()


class _CsvFormat:
    """Records as rows of ``csv.DictWriter(fieldnames=columns)`` over :func:`flatten`."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = columns

    shape = staticmethod(_flat_shape)

    def template(self, block: Block, shape: tuple) -> list:
        k = len(block.axes)
        cells: dict[str, Any] = {key: _csv_cell(v) for key, v in block.head.items()}
        for key, a in block.params:
            cells[f"params.{key}"] = (_csv_cell(block.const[key], nested=True) if a == CONST
                                      else _Slot(a, (key,)))  # fmt: skip
        for path in shape:
            cells[".".join(map(str, path))] = _Slot(k, path)
        items: list = []
        for j, column in enumerate(self.columns):
            if j:
                items.append(",")
            items.append(cells.get(column, ""))
        items.append("\n")
        return items

    @staticmethod
    def fragment(value: Any, slot: _Slot) -> str:
        # params' values and a dict's (final_metrics.*) are written as they are; a list
        # at the top of a record as its values (flatten).
        return _csv_cell(value, nested=len(slot.path) > 1 or slot.level != _OUTCOME)


_OUTCOME = -2  # _Slot.level of an outcome's field once a template is compiled
_CSV_SPECIAL = frozenset(',"\r\n')  # what makes csv.writer quote a field


def _csv_cell(value: Any, *, nested: bool = False) -> str:
    """One cell as ``csv.writer`` writes it in a row of several (:func:`flatten`'s
    value; None as an empty cell)."""
    if not nested and isinstance(value, list):
        value = " ".join(repr(v) for v in value)
    t = type(value)
    if t is float:  # csv.writer writes a float's repr, an int's or a bool's str
        return float.__repr__(value)
    if t is int or t is bool:
        return str(value)
    if value is None or (t is str and not value):
        return ""  # (a row of one empty cell would be quoted; ours have several)
    if t is str and _CSV_SPECIAL.isdisjoint(value):
        return value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([value])
    return buf.getvalue()[:-1]


def _compile(items: list, k: int) -> list:
    """A template's items with the outcome's slots (and the literal text around them)
    gathered into :class:`_Run` s, adjacent literals merged."""
    out: list = []
    for item in items:
        if isinstance(item, _Slot) and item.level == k:
            item.level = _OUTCOME
            if out and isinstance(out[-1], _Run):
                out[-1].items.append(item)
            else:
                lead = [out.pop()] if out and isinstance(out[-1], str) else []
                out.append(_Run([*lead, item]))
        elif isinstance(item, str):
            if not item:
                continue
            if out and isinstance(out[-1], _Run):
                out[-1].items.append(item)
            elif out and isinstance(out[-1], str):
                out[-1] += item
            else:
                out.append(item)
        else:
            out.append(item)
    return out


def _block_text(block: Block, fmt) -> Iterator[str]:
    """The text of every record of ``block``, in order, in pieces of many records.

    Each distinct value is rendered once: an axis value's text when first needed, an
    outcome's once per template stretch it fills. Going down the axes, the text that
    the current axis values fix is joined in advance (where enough records share it);
    each record then adds a few pieces: that text, its inner axes' values, its outcome's.
    """
    k = len(block.axes)
    outcomes = block.outcomes
    shapes: dict[Hashable, int] = {}
    shape_of = [shapes.setdefault(fmt.shape(o), len(shapes)) for o in outcomes]
    templates = [_compile(fmt.template(block, s), k) for s in shapes]
    shared = len(outcomes) < len(block)  # else every record has its own outcome
    for t in templates:
        for item in t:
            if isinstance(item, _Run):
                item.cache = [None] * len(outcomes) if shared else None
    sizes = block.sizes
    inner = [math.prod(sizes[a + 1 :]) for a in range(k)]
    ids = memoryview(block.ids)
    buf: list[str] = []

    def frags(slot: _Slot) -> list[str]:
        if slot.frags is None:
            slot.frags = [fmt.fragment(slot.value(v), slot) for v in block.axes[slot.level]]
        return slot.frags

    def settle(items: list, level: int, j: int) -> list:
        out: list = []
        for item in items:
            if isinstance(item, _Slot) and item.level == level:
                item = frags(item)[j]
            if isinstance(item, str) and out and isinstance(out[-1], str):
                out[-1] += item
            else:
                out.append(item)
        return out

    def run_text(run: _Run, oid: int) -> str:
        cache = run.cache
        if cache is not None and cache[oid] is not None:
            return cache[oid]
        outcome = outcomes[oid]
        text = "".join(i if isinstance(i, str) else fmt.fragment(i.value(outcome), i)
                       for i in run.items)  # fmt: skip
        if cache is not None:
            cache[oid] = text
        return text

    def emit(lists: list[list], level: int, offset: int) -> Iterator[str]:
        """Every record below ``offset`` at ``level``, piece by piece, into ``buf``
        (handed out whenever it holds a chunk)."""
        plans = []
        for items in lists:
            plan = []
            for item in items:
                if isinstance(item, _Slot):
                    plan.append((1, frags(item), item.level - level))
                elif isinstance(item, _Run):
                    plan.append((2, item, 0))
                else:
                    plan.append((0, item, 0))
            plans.append(plan)
        append = buf.append
        combos = itertools.product(*(range(s) for s in sizes[level:]))
        for combo, oid in zip(combos, ids[offset:offset + inner[level - 1] if level else None],
                              strict=False):  # fmt: skip
            for kind, what, at in plans[shape_of[oid]]:
                if kind == 0:
                    append(what)
                elif kind == 1:
                    append(what[combo[at]])
                else:
                    append(run_text(what, oid))
            if len(buf) >= _CHUNK:
                yield "".join(buf)
                buf.clear()

    def walk(lists: list[list], level: int, offset: int) -> Iterator[str]:
        if level == k or inner[level] < _REDUCE_AT:
            yield from emit(lists, level, offset)
        else:
            for j in range(sizes[level]):
                yield from walk([settle(t, level, j) for t in lists], level + 1,
                                offset + j * inner[level])  # fmt: skip
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf.clear()

    yield from walk(templates, 0, 0)
    if buf:
        yield "".join(buf)


DEFAULT_OUT_ROOT = Path("out")


def default_out_dir(runs) -> Path:
    """Create and return a new folder ``out/sweep-<name>-<UTC time>`` for a sweep's results.

    If that name is taken (two sweeps of one log in the same second), the next free one
    of ``...-2``, ``...-3``, ... : ``mkdir`` without ``exist_ok`` either creates the folder
    or fails, atomically, so two processes never end up in the same folder.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = runs[0].name if len(runs) == 1 else f"{runs[0].name}-and-{len(runs) - 1}-more"
    base = f"sweep-{name}-{stamp}".replace(os.sep, "_")
    DEFAULT_OUT_ROOT.mkdir(parents=True, exist_ok=True)
    path, n = DEFAULT_OUT_ROOT / base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = DEFAULT_OUT_ROOT / f"{base}-{n}"


def check_out_dir(out: Path | None, force: bool, fmt: str = "table") -> None:
    """Refuse an unusable output directory before any work (and before writing).

    Without ``--out``, a table's results go to a new folder under ``out/`` (which must be
    a writable directory or creatable), and csv/json output, meant for a pipe, writes
    no folder at all.
    """
    if out is None:
        where = DEFAULT_OUT_ROOT if DEFAULT_OUT_ROOT.exists() else Path(".")
        if fmt == "table" and not (where.is_dir() and os.access(where, os.W_OK | os.X_OK)):
            raise ReplayError(
                f"cannot create the default results folder in {where.resolve()}; pass --out DIR."
            )
        return
    from replay.output.writers import check_output_dir

    check_output_dir(out, "--out", force, "overwrite its results")
