"""Render sweep results: the table (with a plain-language verdict), CSV and JSON.

All three are rendered from the same records (their fields, policy names and setting
labels: :mod:`analysis.records`); CSV is the records flattened (``params.patience``,
``final_metrics.test_loss``, ...), JSON is them as they are.

The records of a sweep are compact blocks (:mod:`replay.blocks`), and nothing here
builds them all: :func:`write_csv` and :func:`write_json` stream each block's text,
rendering every distinct value once (a template per block, cut from the text that
``json.dumps`` and ``csv.writer`` give a record whose values are placeholders), and the
table reads outcomes and counts. ``render_csv`` / ``render_json`` are those writers
into a string.
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
from json.encoder import encode_basestring_ascii as _encode_string  # json.dumps's own
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from analysis.errors import ReplayError
from analysis.names import is_accuracy
from analysis.records import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    COMBINED,
    EARLY_STOPPING,
    MODEL_CHECKPOINT,
    PRECHELT,
    REDUCE_LR_ON_PLATEAU,
    STOP_POLICIES,
    AggregateRow,
    EarlyStoppingRecord,
    PlateauRecord,
    Record,
    StopRecord,
    aggregate,
    bootstrap_interval,
    distinct_label,
    freeze,
    is_missing,
    ranges,
    record_label,
    setting_label,
    varying_values,
)
from replay.blocks import CONST, Block, Records

if TYPE_CHECKING:  # pragma: no cover
    from replay.sweep import SweepResult

__all__ = [
    "atomic_text",
    "csv_columns",
    "flatten",
    "render_csv",
    "render_json",
    "render_table",
    "verdict",
    "write_aggregate_files",
    "write_csv",
    "write_json",
]

TABLE_ROWS = 12


def _finite_or_none(value):
    """``value`` with every non-finite float (NaN, +-inf), however nested, made None.

    >>> _finite_or_none({"a": [1.0, float("inf")], "b": float("nan")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
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
    :func:`analysis.rundir.atomic_file`, for the streaming writers."""
    from analysis.rundir import atomic_file

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
        return json.dumps(_finite_or_none(value), indent=1, allow_nan=False, **kw)


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


def _rank_key(record: StopRecord):
    regret = record.get("regret")
    return (regret is None, regret if regret is not None else 0.0, record["epochs_trained"])


def _fmt_value(metric: str | None, value) -> str:
    if value is None:
        return "-"
    if is_accuracy(metric):
        return f"{100 * value:.2f}%"
    return f"{value:.4g}"


def _fmt_regret(metric: str | None, value) -> str:
    if value is None:
        return "-"
    if is_accuracy(metric):
        return f"{100 * value:.2f} pp"
    return f"{value:.3g}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in
              enumerate(headers)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _outcome(r: Mapping[str, Any]) -> tuple:
    return (r["stopped_epoch"], r["epochs_trained"], r["final_epoch"], r["regret"])


def _stop_rows(recs: Records, metric: str | None, limit: int) -> tuple[list[list[str]], int]:
    """Rows best first; settings with identical outcomes share a row when one label names
    exactly them.

    Read from the blocks' outcomes: each row's settings are counted, and only the first
    record of a row shown is built (the label reads its settings off the axes). A label
    stands for the product of the values it lists, so the settings of one outcome that
    are no product (a grid with a corner missing) are split into products
    (:func:`_product_parts`), one row each, with the same outcome columns: a label never
    names a setting that is not in its row. ``limit`` counts those rows.
    """
    groups: dict[tuple, int] = {}  # a row's outcome -> its number
    ranks: list[tuple] = []
    per_record = []
    for b in recs.blocks:
        of_outcome = np.empty(len(b.outcomes), dtype=np.int32)
        for oid, o in enumerate(b.outcomes):
            g = groups.get(_outcome(o))
            if g is None:
                g = groups[_outcome(o)] = len(ranks)
                ranks.append(_rank_key(o))
            of_outcome[oid] = g
        per_record.append(of_outcome[b.ids])
    if not per_record:
        return [], 0
    row_of = np.concatenate(per_record)
    present, first = np.unique(row_of, return_index=True)
    # sorted(records, key=_rank_key) is stable: rows by rank, then by first record
    ranked = sorted(zip(present.tolist(), first.tolist(), strict=True),
                    key=lambda gf: (ranks[gf[0]], gf[1]))  # fmt: skip
    rows, shown = [], 0
    codes_of = _ParamCodes(recs)
    differing = _differing(recs)
    for g, f in ranked:
        if len(rows) >= limit:
            break
        members = np.flatnonzero(row_of == g)
        r = recs[f]
        stop = "never (censored)" if r["censored"] else str(r["stopped_epoch"])
        cf = r.get("counterfactual_from")
        if cf is not None:  # a combined setting whose LR schedule no curve saw from cf on
            stop = f"unknown after {cf - 1}"
        value = (r["final_metrics"] or {}).get(metric) if metric else None
        outcome = [
            stop,
            str(r["epochs_trained"]),
            "-" if r["final_epoch"] is None else str(r["final_epoch"]),
            _fmt_value(metric, value),
            _fmt_regret(metric, r["regret"]),
        ]
        if r["policy"] == PRECHELT:
            parts = [(members, None)]
        else:
            parts = _product_parts(codes_of, members)
        for part, varying in parts[: limit - len(rows)]:
            shown += len(part)
            first_of_part = r if part[0] == f else recs[int(part[0])]
            rows.append([_row_label(recs, part, first_of_part, varying, differing), *outcome])
    return rows, len(recs) - shown


def _row_label(
    recs: Records,
    members: np.ndarray,
    first: Mapping[str, Any],
    varying: Mapping[str, list[Any]] | None = None,
    differing: Sequence[str] = (),
) -> str:
    """One label for the settings of one table row (records ``members``: the same
    outcome, a product of parameter values unless Prechelt's), ``first`` the first of
    them; ``varying``: their :func:`_varying` values, when known; ``differing``: the
    parameters that differ among all the rows (:func:`_differing`), each named."""
    if first["policy"] == PRECHELT:  # criteria differ in kind: list them
        return ", ".join(dict.fromkeys(record_label(recs[int(i)]) for i in members))
    if varying is None:
        varying = _varying(recs, members)
    return distinct_label(first["policy"], first["params"], differing, varying)


def _differing(recs: Records) -> list[str]:
    """The parameters whose values differ among the records ``recs``, read off the
    blocks' axes (a row label names each of them: issue 21)."""
    seen: dict[str, set] = {}
    for b in recs.blocks:
        for k, a in b.params:
            values = [b.const[k]] if a == CONST else [axis[k] for axis in b.axes[a]]
            seen.setdefault(k, set()).update(freeze(v) for v in values)
    return [k for k, values in seen.items() if len(values) > 1]


class _ParamCodes:
    """Records of ``recs`` as rows of small integers, one column per parameter (equal
    integers, equal values, as :func:`analysis.records.freeze` compares them), read off
    the axes: each axis's values are coded once, for every row of the table."""

    def __init__(self, recs: Records) -> None:
        self.recs = recs
        self.codes: dict[str, dict[Hashable, int]] = {}  # parameter -> value -> its code
        self.tables: dict[tuple[int, str], np.ndarray] = {}  # (block, parameter) -> codes

    def _table(self, k: int, b: Block, name: str, a: int) -> np.ndarray:
        table = self.tables.get((k, name))
        if table is None:
            known = self.codes.setdefault(name, {})
            values = [b.const[name]] if a == CONST else [v[name] for v in b.axes[a]]
            table = self.tables[(k, name)] = np.array(
                [known.setdefault(freeze(v), len(known)) for v in values], dtype=np.int64
            )
        return table

    def __call__(self, members: np.ndarray) -> np.ndarray:
        """Records ``members`` (sorted indices), a column per parameter not the same in
        all of them (a block without the parameter: code -1)."""
        number = {id(b): k for k, b in enumerate(self.recs.blocks)}
        chunks: list[tuple[int, dict[str, np.ndarray]]] = []
        for b, local in self.recs.per_block(members):
            k = number[id(b)]
            idx = np.unravel_index(local, b.sizes)
            chunks.append((len(local), {
                name: (np.full(len(local), self._table(k, b, name, a)[0])
                       if a == CONST else self._table(k, b, name, a)[idx[a]])
                for name, a in b.params
            }))  # fmt: skip
        columns = []
        for name in self.codes:
            column = np.concatenate([chunk.get(name, np.full(n, -1, dtype=np.int64))
                                     for n, chunk in chunks])  # fmt: skip
            if len(column) and (column != column[0]).any():
                columns.append(column)
        if not columns:
            return np.zeros((len(members), 0), dtype=np.int64)
        return np.stack(columns, axis=1)

    def on_axes(self, members: np.ndarray) -> dict[str, list[Any]] | None:
        """The quick check: when records ``members`` (sorted indices) are of one block
        and every combination of their axes' entries, each axis's entries every
        combination of their parameters' values, they are a product: their
        :func:`_varying` values; else None (they may be a product still)."""
        parts = list(self.recs.per_block(members))
        if len(parts) != 1:
            return None
        ((b, local),) = parts
        where = np.unravel_index(local, b.sizes)
        chosen = [np.flatnonzero(np.bincount(i, minlength=size)).tolist()
                  for i, size in zip(where, b.sizes, strict=True)]  # fmt: skip
        if math.prod(len(c) for c in chosen) != len(local):
            return None
        varying: dict[str, list[Any]] = {}
        for a, entries in enumerate(chosen):
            names = [name for name, source in b.params if source == a]
            if len(names) > 1 and len(entries) > 1:
                combos = {tuple(freeze(b.axes[a][j][n]) for n in names) for j in entries}
                if len(combos) != math.prod(len({c[i] for c in combos})
                                            for i in range(len(names))):  # fmt: skip
                    return None
        for name, a in b.params:  # in record order, as the records would list them
            if a != CONST and len(chosen[a]) > 1:
                seen: dict[Hashable, Any] = {}
                for j in chosen[a]:
                    seen.setdefault(freeze(b.axes[a][j][name]), b.axes[a][j][name])
                if len(seen) > 1:
                    varying[name] = list(seen.values())
        return varying


def _tuple_ids(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row of ``codes`` (rows, columns) as one integer (equal rows, equal ids; the
    ids 0..n-1 in sorted order) and the number of distinct rows ``n``."""
    ids = np.zeros(len(codes), dtype=np.int64)
    n = 1
    for c in range(codes.shape[1]):
        values, inverse = np.unique(codes[:, c], return_inverse=True)
        ids, inverse = np.unique(ids * len(values) + inverse.reshape(-1), return_inverse=True)
        n = len(ids)
        ids = inverse.reshape(-1)
    return ids, (n if len(codes) else 0)


def _is_product(codes: np.ndarray) -> bool:
    """Whether the distinct rows of ``codes`` are every combination of each column's
    distinct values."""
    _, n = _tuple_ids(codes)
    return n == math.prod(len(np.unique(codes[:, c])) for c in range(codes.shape[1]))


# Past this many varying parameters, the column to split on is chosen by a heuristic
# instead of by trying each.
_SPLIT_SEARCH = 3


def _split(codes: np.ndarray, rows: np.ndarray, cols: list[int]) -> list[np.ndarray]:
    """Rows ``rows`` of ``codes`` split into parts whose distinct tuples (over ``cols``)
    are products of values, few of them (greedy; fewest when few columns vary).

    Splitting on column ``c`` groups its values by their fiber (the tuples of the other
    columns that occur with the value): values with the same fiber ``F`` make the set
    ``values x F``, a product once ``F`` is split into products, recursively.
    """
    sub = codes[rows]
    cols = [c for c in cols if (sub[:, c] != sub[0, c]).any()]
    if len(cols) <= 1 or _is_product(sub[:, cols]):
        return [rows]
    plans = []
    for c in cols:
        rest = [x for x in cols if x != c]
        fiber, _ = _tuple_ids(sub[:, rest])
        value = sub[:, c]
        order = np.lexsort((fiber, value))
        v, fb = value[order], fiber[order]
        keep = np.ones(len(v), dtype=bool)
        keep[1:] = (v[1:] != v[:-1]) | (fb[1:] != fb[:-1])
        v, fb = v[keep], fb[keep]
        starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
        classes: dict[bytes, list[int]] = {}  # a fiber -> the values that have it
        for s, e in zip(starts.tolist(), [*starts[1:].tolist(), len(v)], strict=True):
            classes.setdefault(fb[s:e].tobytes(), []).append(int(v[s]))
        plans.append((len(classes), c, rest, list(classes.values())))
    if len(cols) > _SPLIT_SEARCH:  # the column whose values fall into the fewest classes
        plans = [min(plans, key=lambda p: p[0])]
    best: list[np.ndarray] | None = None
    for _, c, rest, classes in plans:
        parts = []
        for values in classes:
            parts += _split(codes, rows[np.isin(sub[:, c], values)], rest)
        if best is None or len(parts) < len(best):
            best = parts
    assert best is not None
    return best


def _product_parts(
    codes_of: _ParamCodes, members: np.ndarray
) -> list[tuple[np.ndarray, dict[str, list[Any]] | None]]:
    """Records ``members`` (sorted indices) as the parts that one label each names
    exactly: each the product of its parameters' values, by first record, with its
    :func:`_varying` values when the quick check found them (else None). Most often one
    part."""
    varying = codes_of.on_axes(members)
    if varying is not None:
        return [(members, varying)]
    codes = codes_of(members)
    if not codes.shape[1] or _is_product(codes):
        return [(members, None)]
    parts = _split(codes, np.arange(len(members)), list(range(codes.shape[1])))
    return [(p, None) for p in sorted((members[np.sort(p)] for p in parts),
                                      key=lambda p: int(p[0]))]  # fmt: skip


def _varying(recs: Records, members: np.ndarray) -> dict[str, list[Any]]:
    """:func:`analysis.records.varying_values` of the params of records ``members``
    (indices into ``recs``, in order), read off the blocks' axes."""
    seen: dict[str, dict[Hashable, Any]] = {}
    for b, local in recs.per_block(members):
        for name, values in b.param_values(local).items():
            known = seen.setdefault(name, {})
            for v in values:
                known.setdefault(freeze(v), v)
    return {k: list(vals.values()) for k, vals in seen.items() if len(vals) > 1}


def _fmt_lr(rate: float, scale: str | None) -> str:
    """A learning rate; on the relative scale (the log had no rate) as a multiple.

    >>> _fmt_lr(0.00025, "absolute"), _fmt_lr(0.01, "relative")
    ('0.00025', '0.01x initial')
    """
    return f"{rate:.3g}x initial" if scale == "relative" else f"{rate:.3g}"


def _lr_rows(
    records: list[PlateauRecord], metric: str | None, limit: int
) -> tuple[list[list[str]], int]:
    """Rows of the ReduceLROnPlateau table: exact settings (the run's own schedule, or a
    branch's) first, by regret; then the others, by patience and factor."""

    def key(r: PlateauRecord):
        regret = r.get("regret")
        exact = r.get("final_epoch") is not None
        return (not exact, regret if regret is not None else 0.0,
                r["params"]["patience"], r["params"]["factor"])  # fmt: skip

    ranked = sorted(records, key=key)
    differing = list(varying_values([r["params"] for r in records]))
    rows = []
    for r in ranked[:limit]:
        cuts = ",".join(str(e) for e in r["reductions"][:6]) or "none"
        if len(r["reductions"]) > 6:
            cuts += ",..."
        cf = r["counterfactual_from"]
        where = "exact" if cf is None else f"from epoch {cf}"
        if r.get("branch"):
            where += f" ({r['branch']})"
        final = r.get("final_metrics") or {}
        rows.append(
            [
                distinct_label(r["policy"], r["params"], differing),
                cuts,
                _fmt_lr(r["final_lr"], r.get("lr_scale")),
                where,
                _fmt_value(metric, final.get(metric) if metric else None),
                _fmt_regret(metric, r.get("regret")),
            ]
        )
    return rows, len(ranked) - len(rows)


def _saved_epochs(saved: Sequence[int], shown: int = 5) -> str:
    """``0, 1, 4``; ``2, 5, 8, 11, 14, ... (9 in all)``; ``none``."""
    if not saved:
        return "none"
    head = ", ".join(map(str, saved[:shown]))
    return head if len(saved) <= shown else f"{head}, ... ({len(saved)} in all)"


def _checkpoint_rows(recs: list, metric: str | None, limit: int) -> tuple[list[list[str]], int]:
    """ModelCheckpoint rows, least regret first (unknown regret last)."""

    def key(r):
        return (r["regret"] is None, r["regret"] or 0.0)

    ranked = sorted(recs, key=key)
    differing = list(varying_values([r["params"] for r in recs]))
    rows = []
    for r in ranked[:limit]:
        final = r["final_epoch"]
        rows.append(
            [
                distinct_label(r["policy"], r["params"], differing),
                _saved_epochs(r["saved_epochs"]),
                "-" if final is None else str(final),
                _fmt_value(metric, r["final_metrics"].get(metric) if metric else None),
                _fmt_regret(metric, r["regret"]),
            ]
        )
    return rows, len(ranked) - len(rows)


def render_table(result: SweepResult, *, limit: int = TABLE_ROWS) -> str:
    """The human summary: per run and monitor, oracle line, best settings first, verdict."""
    out: list[str] = []
    multi = len(result.facts) > 1
    records = Records.of(result.records)
    for oracle in result.oracles:
        run, monitor, metric = oracle["run"], oracle["monitor"], oracle["heldout"]
        mine = records.where(run=run, monitor=monitor)
        out.append(f"== {run}: {result_epochs(result, run)} epochs, monitor {monitor} ==")
        if oracle["oracle_epoch"] is not None:
            out.append(
                f"oracle: best {metric} {_fmt_value(metric, oracle['oracle_value'])} at epoch "
                f"{oracle['oracle_epoch']}; the full run ends at "
                f"{_fmt_value(metric, oracle['last_value'])} (epoch {oracle['last_epoch']})."
            )
        for policy, title in ((EARLY_STOPPING, "EarlyStopping"), (PRECHELT, "Prechelt"),
                              (COMBINED, "EarlyStopping + ReduceLROnPlateau")):  # fmt: skip
            recs = mine.where(policy=policy)
            if not recs:
                continue
            rows, more = _stop_rows(recs, metric, limit)
            headers = [
                "setting",
                "stopped at",
                "epochs",
                "kept epoch",
                metric or "held-out",
                "regret",
            ]
            out.append(f"\n{title} ({_dialect_of(recs)}{len(recs)} settings, best first)")
            out.append(_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
        recs = list(mine.where(policy=REDUCE_LR_ON_PLATEAU))
        if recs:
            rows, more = _lr_rows(recs, metric, limit)
            out.append(
                f"\nReduceLROnPlateau ({_dialect_of(recs)}{len(recs)} settings, exact ones first)"
            )
            headers = ["setting", "cuts after epochs", "final lr", "replay",
                       metric or "held-out", "regret"]  # fmt: skip
            out.append(_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
            if any(r["counterfactual_from"] is not None for r in recs):
                out.append(
                    "'from epoch N': the recorded metrics from epoch N on were produced with "
                    "a different learning rate than this schedule; decisions after that are "
                    "counterfactual."
                )
        recs = list(mine.where(policy=MODEL_CHECKPOINT))
        if recs:
            rows, more = _checkpoint_rows(recs, metric, limit)
            out.append(f"\nModelCheckpoint ({_dialect_of(recs)}{len(recs)} settings, best first)")
            headers = ["setting", "saved epochs", "kept epoch", metric or "held-out", "regret"]
            out.append(_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
        text = verdict(mine, metric)
        if text:
            out.append("\n" + text)
        out.append("")
    if multi:
        out.append(render_aggregate(records))
        checkpoints = render_checkpoint_aggregate(records)
        if checkpoints:  # under a blank line, whether or not a table came before
            out.append(checkpoints if out[-1] else checkpoints.lstrip("\n"))
    return "\n".join(out).rstrip() + "\n"


def _dialect_of(recs) -> str:
    """``"torch dialect, "`` for records replayed in a non-Keras dialect, else ``""``."""
    dialect = recs[0].get("dialect") if len(recs) else None
    return f"{dialect} dialect, " if dialect else ""


def result_epochs(result: SweepResult, run: str) -> int:
    for f in result.facts:
        if f.name == run:
            return f.n_epochs
    return 0


def render_aggregate(records: Iterable[Record], limit: int = TABLE_ROWS) -> str:
    """The across-runs table: :func:`analysis.records.aggregate` of the stop-policy
    records, best mean regret first (computed over the blocks, building only the rows
    shown), then :func:`aggregate_verdict`.

    Columns: the mean regret over runs, its ``[min, max]``, the bootstrap 95% interval
    of the mean, ``best in`` (``k/n``: the setting is among the least-regret settings of
    k of its n runs), mean epochs trained and censored runs.
    """
    rows = _AggregateRows(Records.of(records).where(policy=STOP_POLICIES))
    if not rows.n:
        return ""
    order = rows.order()
    table_rows = []
    for i in order[:limit]:
        r = rows.row(int(i))
        label = setting_label(r["policy"], r["params"])
        table_rows.append(
            [
                f"{r['params']['monitor']} {label}",
                str(r["runs"]),
                _num(r["regret_mean"]),
                _interval(r["regret_min"], r["regret_worst"]),
                _interval(r["regret_ci_low"], r["regret_ci_high"]),
                f"{r['best_runs']}/{r['runs']}",
                _num(r["epochs_trained_mean"], ".1f"),
                f"{r['censored_runs']}/{r['runs']}",
            ]
        )
    headers = ["setting", "runs", "regret mean", "[min, max]", "95% CI of mean", "best in",
               "epochs mean", "censored"]  # fmt: skip
    text = [f"== across runs ({rows.n} settings, best mean regret first) ==",
            _table(headers, table_rows)]  # fmt: skip
    if rows.n > limit:
        text.append(f"... {rows.n - limit} more settings in aggregate.csv")
    text.append(
        "[min, max]: regret over runs; 95% CI: bootstrap interval of the mean regret "
        f"({BOOTSTRAP_RESAMPLES} resamples of the runs, seed {BOOTSTRAP_SEED});\n"
        "best in k/n: the setting has the least regret of any setting in k of its n runs."
    )
    said = aggregate_verdict(rows)
    if said:
        text.append("\n" + said)
    return "\n".join(text)


def _interval(low: float | None, high: float | None) -> str:
    """``[0.001, 0.004]``, or ``-`` when unknown."""
    if low is None or high is None:
        return "-"
    return f"[{_num(low, '.3g')}, {_num(high, '.3g')}]"


def aggregate_verdict(rows: _AggregateRows) -> str:
    """Per monitor, a sentence on the setting with the least mean regret over runs and how
    many runs agree: in how many it is among the run's own best (least regret, ties
    included), and which setting is among the best in the most runs when that is another:
    "Across 5 runs (val_loss): best by mean regret is patience=6 restore, mean 0.0019 over
    runs in [0, 0.0062], ...; 3 of 5 runs have it among their best."
    """
    order = rows.order()
    firsts: dict[Any, int] = {}  # monitor -> its best row (in table order)
    for i in order.tolist():
        firsts.setdefault(rows.monitor(i), i)
    agree = rows.columns["best_runs"]
    mean = rows.columns["regret_mean"]
    sentences = []
    for monitor, i in firsts.items():
        best = rows.row(i)
        if best["regret_mean"] is None:
            continue
        mine = np.array([rows.monitor(j) == monitor for j in range(rows.n)]) if len(
            firsts) > 1 else np.ones(rows.n, dtype=bool)  # fmt: skip
        ties = int(np.sum(mine & (mean == best["regret_mean"]))) - 1
        label = setting_label(best["policy"], best["params"])
        n = best["runs"]
        sentence = (
            f"Across {n} runs ({monitor}): best by mean regret is {label}, mean "
            f"{_num(best['regret_mean'])} over runs in "
            f"{_interval(best['regret_min'], best['regret_worst'])}"
        )
        if best["regret_ci_low"] is not None:
            sentence += (", 95% interval of the mean "
                         f"{_interval(best['regret_ci_low'], best['regret_ci_high'])}")  # fmt: skip
        sentence += f"; {best['best_runs']} of {n} runs have it among their best"
        if ties > 0:
            sentence += (f" ({ties} more setting{'s' if ties > 1 else ''} tie on mean regret; "
                         "this one trains fewest epochs)")  # fmt: skip
        sentence += "."
        most = [j for j in order.tolist() if mine[j]]
        top = max(most, key=lambda j: agree[j])  # the first in table order among equals
        if agree[top] > best["best_runs"]:
            other = rows.row(top)
            sentence += (f" Among the best in the most runs: "
                         f"{setting_label(other['policy'], other['params'])} "
                         f"({other['best_runs']} of {other['runs']}, mean regret "
                         f"{_num(other['regret_mean'])}).")  # fmt: skip
        sentences.append(sentence)
    return " ".join(sentences)


def render_checkpoint_aggregate(records: Iterable[Record], limit: int = TABLE_ROWS) -> str:
    """The across-runs table of the ModelCheckpoint records (its own table: they keep a
    file instead of stopping): per setting, the epochs kept over runs and the kept
    file's regret (:func:`analysis.records.aggregate`), least mean regret first; ``""``
    when there are none."""
    recs = list(Records.of(records).where(policy=MODEL_CHECKPOINT))
    if not recs:
        return ""
    rows = aggregate(recs, fields=("regret",))
    kept: dict[Hashable, list[Any]] = {}
    for r in recs:
        kept.setdefault(freeze(r["params"]), []).append(r["final_epoch"])

    def key(row):
        return (row["regret_mean"] is None, row["regret_mean"] or 0.0)

    table_rows = []
    for row in sorted(rows, key=key)[:limit]:
        epochs = kept[freeze(row["params"])]
        known = [e for e in epochs if e is not None]
        none = len(epochs) - len(known)
        shown = ranges(known) if known else "-"
        table_rows.append(
            [
                f"{row['params']['monitor']} {setting_label(MODEL_CHECKPOINT, row['params'])}",
                str(row["runs"]),
                shown + (f" (+{none} none)" if none and known else ""),
                _num(row["regret_mean"]),
                _interval(row["regret_min"], row["regret_worst"]),
            ]
        )
    headers = ["setting", "runs", "kept epochs", "regret mean", "[min, max]"]
    text = [f"\n== ModelCheckpoint across runs ({len(rows)} settings, best mean regret first) ==",
            _table(headers, table_rows)]  # fmt: skip
    if len(rows) > limit:
        text.append(f"... {len(rows) - limit} more settings in results.csv")
    return "\n".join(text)


def aggregate_rows(records: Iterable[Record]) -> Iterator[AggregateRow]:
    """Every across-runs row of the stop-policy records, with all the fields of
    :class:`analysis.records.AggregateRow`, in the table's order (best mean regret
    first): what aggregate.json and aggregate.csv hold."""
    rows = _AggregateRows(Records.of(records).where(policy=STOP_POLICIES))
    for i in rows.order().tolist():
        yield rows.full_row(i)  # type: ignore[misc]


def write_aggregate_files(records: Iterable[Record], out: Path) -> list[str]:
    """Write aggregate.json (a JSON list, one row per line) and aggregate.csv (the rows
    flattened as results.csv's records are; run names separated by spaces) into ``out``,
    atomically, streaming the rows of :func:`aggregate_rows`; return the names written
    (none when there are no stop-policy records)."""
    rows = _AggregateRows(Records.of(records).where(policy=STOP_POLICIES))
    if not rows.n:
        return []

    def flat(row: Mapping[str, Any]) -> dict[str, Any]:
        return flatten({k: " ".join(map(str, v)) if k.endswith("run_names") else v
                        for k, v in row.items()})  # fmt: skip

    columns = list(dict.fromkeys(
        [k for first in rows.first_rows() for k in flat(first)]
        + [f"final_metrics_mean.{m}" for m in _metric_names(rows)]
    ))  # fmt: skip
    order = rows.order().tolist()
    with atomic_text(out / "aggregate.json") as f:
        f.write("[\n")
        for n, i in enumerate(order):
            text = json.dumps(_finite_or_none(rows.full_row(i)), allow_nan=False)
            f.write(text + (",\n" if n + 1 < len(order) else "\n"))
        f.write("]\n")
    with atomic_text(out / "aggregate.csv") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for i in order:
            writer.writerow({k: "" if v is None else v for k, v in flat(rows.full_row(i)).items()})
    return ["aggregate.json", "aggregate.csv"]


def _metric_names(rows: _AggregateRows) -> list[str]:
    """Every metric of the rows' ``final_metrics_mean``, in the order first seen."""
    names: dict[str, None] = {}
    for kind, what in rows.parts:
        if kind == "blocks":
            for b in what[0]:
                for o in b.outcomes:
                    names.update(dict.fromkeys(o.get("final_metrics") or {}))
        else:
            for r in what:
                names.update(dict.fromkeys(r["final_metrics_mean"]))
    return list(names)


class _AggregateRows:
    """:func:`analysis.records.aggregate`'s rows (the fields the table shows) over blocks.

    Blocks of one policy, monitor and constant parameters whose axes are the same in
    every run (the usual case: one grid over several runs) line up record for record:
    their statistics are columns of arrays, summed run after run in the order
    ``aggregate`` sums them. Others are aggregated record by record. Each row keeps
    where its setting first occurs (block, record), the order ``aggregate`` lists rows in.
    """

    _FIELDS = ("regret_mean", "regret_worst", "regret_spread", "epochs_trained_mean",
               "regret_min", "regret_ci_low", "regret_ci_high")  # fmt: skip
    _COUNTS = ("runs", "censored_runs", "best_runs")

    def __init__(self, recs: Records) -> None:
        families: dict[Hashable, list[int]] = {}
        for k, b in enumerate(recs.blocks):
            key = (b.policy, b.monitor, freeze(b.const), b.params)
            families.setdefault(key, []).append(k)
        #: The least regret of each (run, monitor): "among the run's best" means equal to it.
        self.run_best = _run_best(recs.blocks)
        self.parts: list[tuple[str, Any]] = []  # ("blocks", [Block]) or ("rows", [row])
        names = (*self._FIELDS, *self._COUNTS, "block", "record")
        columns: dict[str, list[np.ndarray]] = {f: [] for f in names}
        for ks in families.values():
            blocks = [recs.blocks[k] for k in ks]
            if _aligned(blocks):
                stats = _aligned_stats(blocks, self.run_best)
                part = ("blocks", (blocks, stats.pop("combos"), stats.pop("combo"), {}))
                stats["block"] = np.full(len(blocks[0]), ks[0])
                stats["record"] = np.arange(len(blocks[0]))
            else:
                rows = aggregate([r for b in blocks for r in b], run_best=self.run_best)
                part = ("rows", rows)
                stats = {f: np.array([np.nan if r[f] is None else r[f] for r in rows], float)
                         for f in self._FIELDS}  # fmt: skip
                for f in self._COUNTS:
                    stats[f] = np.array([r[f] for r in rows], dtype=np.int64)
                where: dict[Hashable, tuple[int, int]] = {}
                for k, b in zip(ks, blocks, strict=True):
                    for i, r in enumerate(b):
                        where.setdefault((r["policy"], freeze(r["params"])), (k, i))
                first = [where[(r["policy"], freeze(r["params"]))] for r in rows]
                stats["block"] = np.array([k for k, _ in first])
                stats["record"] = np.array([i for _, i in first])
            self.parts.append(part)
            for f, column in columns.items():
                column.append(stats[f])
        self.columns = {f: np.concatenate(c) if c else np.zeros(0) for f, c in columns.items()}
        self.starts = np.cumsum([0, *(len(c) for c in columns["runs"])])
        self.n = int(self.starts[-1])

    def order(self) -> np.ndarray:
        """Row numbers sorted as the table sorts aggregate rows (stable, over the order
        in which settings first occur): by (no mean regret, mean regret or 0, mean
        epochs or 0)."""
        regret, epochs = self.columns["regret_mean"], self.columns["epochs_trained_mean"]
        idx = np.lexsort((self.columns["record"], self.columns["block"]))
        idx = idx[np.argsort(np.nan_to_num(epochs, nan=0.0)[idx], kind="stable")]
        idx = idx[np.argsort(np.nan_to_num(regret, nan=0.0)[idx], kind="stable")]
        return idx[np.argsort(np.isnan(regret)[idx], kind="stable")]

    def row(self, i: int) -> dict[str, Any]:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        kind, what = self.parts[k]
        local = i - int(self.starts[k])
        if kind == "rows":
            row = what[local]
            params, policy = row["params"], row["policy"]
        else:
            params, policy = what[0][0].params_at(local), what[0][0].policy
        out: dict[str, Any] = {"policy": policy, "params": params}
        for f in (*self._FIELDS, *self._COUNTS):
            v = self.columns[f][i]
            out[f] = int(v) if f in self._COUNTS else (None if math.isnan(v) else float(v))
        return out

    def full_row(self, i: int) -> dict[str, Any]:
        """Row ``i`` with every field of :class:`analysis.records.AggregateRow`, as
        :func:`analysis.records.aggregate` gives it."""
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        kind, what = self.parts[k]
        local = i - int(self.starts[k])
        if kind == "rows":
            return dict(what[local])
        blocks, combos, combo, done = what
        u = int(combo[local])
        if u not in done:  # the fields after params depend on the outcomes only
            (done[u],) = aggregate(
                [{**b.head, "params": {"monitor": b.monitor}, **b.outcomes[o]}
                 for b, o in zip(blocks, combos[u], strict=True)],
                run_best=self.run_best,
            )  # fmt: skip
        return {**done[u], "params": blocks[0].params_at(local)}

    def monitor(self, i: int) -> str | None:
        """The monitor of row ``i``'s setting."""
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        kind, what = self.parts[k]
        if kind == "rows":
            return what[i - int(self.starts[k])]["params"].get("monitor")
        return what[0][0].monitor

    def first_rows(self) -> Iterator[dict[str, Any]]:
        """The first full row of each part (their fields: the columns of aggregate.csv)."""
        for start in self.starts[:-1].tolist():
            yield self.full_row(int(start))


def _run_best(blocks: Sequence[Block]) -> dict[tuple[str, str], float]:
    """:func:`analysis.records.run_best_regrets` read off the blocks' outcomes."""
    best: dict[tuple[str, str], float] = {}
    for b in blocks:
        vals = [float(b.outcomes[o]["regret"]) for o in b.present()
                if not is_missing(b.outcomes[o].get("regret"))]  # fmt: skip
        key = (b.run, b.monitor)
        if vals and (key not in best or min(vals) < best[key]):
            best[key] = min(vals)
    return best


def _aligned(blocks: list[Block]) -> bool:
    """Whether ``blocks`` hold the same settings in the same order, each setting once."""
    first = blocks[0]
    axes = [tuple(freeze(v) for v in axis) for axis in first.axes]
    if any(len(set(axis)) != len(axis) for axis in axes):
        return False
    return all(b.params == first.params and [tuple(freeze(v) for v in axis) for axis in b.axes]
               == axes for b in blocks[1:])  # fmt: skip


def _aligned_stats(
    blocks: list[Block], run_best: Mapping[tuple[str, str], float]
) -> dict[str, np.ndarray]:
    """Per setting of aligned blocks: mean, worst, spread and min of regret, its bootstrap
    interval, mean epochs, runs, censored runs and the runs that have it among their
    best, as :func:`analysis.records.aggregate` computes them."""
    n = len(blocks[0])
    acc = {f: (np.zeros(n), np.zeros(n, dtype=np.int64), np.full(n, -np.inf), np.full(n, np.inf))
           for f in ("regret", "epochs_trained")}  # fmt: skip
    censored = np.zeros(n, dtype=np.int64)
    for b in blocks:
        for f, (total, count, high, low) in acc.items():
            per_outcome = np.array([np.nan if is_missing(o.get(f)) else float(o[f])
                                    for o in b.outcomes])  # fmt: skip
            v = per_outcome[b.ids]
            ok = ~np.isnan(v)
            total += np.where(ok, v, 0.0)  # in run order, as sum() adds them
            count += ok
            np.maximum(high, np.where(ok, v, -np.inf), out=high)
            np.minimum(low, np.where(ok, v, np.inf), out=low)
        censored += np.array([bool(o.get("censored")) for o in b.outcomes])[b.ids]
    out: dict[str, np.ndarray] = {}
    for f, (total, count, high, low) in acc.items():
        some = count > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{f}_mean"] = np.where(some, total / np.maximum(count, 1), np.nan)
        out[f"{f}_worst"] = np.where(some, high, np.nan)
        out[f"{f}_spread"] = np.where(some, high - low, np.nan)
        out[f"{f}_min"] = np.where(some, low, np.nan)
    out["runs"] = np.full(n, len(blocks))
    out["censored_runs"] = censored
    out["best_runs"] = np.zeros(n, dtype=np.int64)
    for b in blocks:
        least = run_best.get((b.run, b.monitor))
        hit = np.array([least is not None and not is_missing(o.get("regret"))
                        and float(o["regret"]) == least for o in b.outcomes])  # fmt: skip
        out["best_runs"] += hit[b.ids]
    combos, inverse = _outcome_combos(blocks)
    low, high = np.full(len(combos), np.nan), np.full(len(combos), np.nan)
    for u, combo in enumerate(combos):
        interval = bootstrap_interval(b.outcomes[o].get("regret")
                                      for b, o in zip(blocks, combo, strict=True))  # fmt: skip
        if interval is not None:
            low[u], high[u] = interval
    out["regret_ci_low"], out["regret_ci_high"] = low[inverse], high[inverse]
    out["combos"], out["combo"] = combos, inverse  # type: ignore[assignment]
    return out


def _outcome_combos(blocks: list[Block]) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The distinct combinations of outcomes (one per run) of aligned blocks' settings,
    and each setting's combination: what a setting's statistics depend on (a few
    combinations, however large the grid)."""
    if not len(blocks[0]):
        return [], np.zeros(0, dtype=np.int64)
    combos, inverse = np.unique(np.stack([b.ids for b in blocks], axis=1), axis=0,
                                return_inverse=True)  # fmt: skip
    return [tuple(c) for c in combos.tolist()], np.asarray(inverse).reshape(-1)


def _num(v, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)


def verdict(records: Iterable[Record], metric: str | None) -> str:
    """A plain-language paragraph about the early-stopping patience sweep.

    Reads the default-like slice of the grid (one record per patience and restore) and
    the best outcome, never every record.
    """
    es = Records.of(records).where(policy=EARLY_STOPPING)
    if not es:
        return ""
    # Look at the default-like slice: smallest min_delta, no baseline, no warm-up.
    md = min(v for b in es.blocks for v in b.values_of("min_delta"))
    start = min(v for b in es.blocks for v in b.values_of("start_from_epoch"))
    where = {"min_delta": lambda v: v == md, "baseline": lambda v: v is None,
             "start_from_epoch": lambda v: v == start}  # fmt: skip
    sl = [b[i] for b in es.blocks for i in b.select(where)]
    sentences = []
    for restore in (True, False):
        part = sorted(
            (r for r in sl if r["params"]["restore_best_weights"] == restore),
            key=lambda r: r["params"]["patience"],
        )
        if not part:
            continue
        clauses = []
        stopped = [r for r in part if not r["censored"]]
        censored = [r for r in part if r["censored"]]
        # Group stopped settings by the size of their regret, in patience order.
        groups: list[list[EarlyStoppingRecord]] = []
        for r in stopped:
            if groups and _same_outcome(groups[-1][-1], r):
                groups[-1].append(r)
            else:
                groups.append([r])
        if len(groups) > 3:  # too many to list: one clause with ranges
            groups = [stopped]
        for g in groups:
            pats = ranges([r["params"]["patience"] for r in g])
            stops = ranges([r["stopped_epoch"] for r in g])
            kept = ranges([r["final_epoch"] for r in g])
            clauses.append(
                f"patience {pats} stop{'s' if len(g) == 1 else ''} at epoch {stops}, keep "
                f"epoch {kept} and {_cost(g, metric)}"
            )
        if censored:
            lo = min(r["params"]["patience"] for r in censored)
            hi = max(r["params"]["patience"] for r in censored)
            who = (
                f"patience >= {lo}"
                if hi == max(r["params"]["patience"] for r in part)
                else (f"patience {ranges([r['params']['patience'] for r in censored])}")
            )
            clauses.append(f"{who} never stops before the run ended (censored)")
        lead = "With restore_best_weights" if restore else "Without it"
        suffix = f" (min_delta={md:g})" if md else ""
        sentences.append(f"{lead}{suffix}: " + "; ".join(clauses) + ".")
    best = es.first_min(_rank_key)
    if best["regret"] is not None and metric:
        fewest = es.first_min(lambda o: o["epochs_trained"],
                              where=lambda o: o["regret"] == best["regret"])  # fmt: skip
        sentences.insert(0, f"Cheapest best outcome: {record_label(fewest)} trains "
                         f"{fewest['epochs_trained']} epochs and keeps epoch "
                         f"{fewest['final_epoch']} ({_fmt_regret(metric, fewest['regret'])} "
                         f"regret on {metric}).")  # fmt: skip
    return " ".join(sentences)


def _same_outcome(a: EarlyStoppingRecord, b: EarlyStoppingRecord) -> bool:
    ra, rb = a["regret"], b["regret"]
    if ra is None or rb is None:
        return ra is rb
    return math.isclose(ra, rb, rel_tol=0.25, abs_tol=1e-4)


def _cost(group: list[EarlyStoppingRecord], metric: str | None) -> str:
    regrets = [r["regret"] for r in group if r["regret"] is not None]
    if not regrets or metric is None:
        return "regret unknown"
    lo, hi = min(regrets), max(regrets)
    if hi == 0:
        return f"match the best {metric}"
    word = "lose" if is_accuracy(metric) else "give up"
    span = (
        _fmt_regret(metric, lo)
        if math.isclose(lo, hi)
        else (f"{_fmt_regret(metric, lo)} to {_fmt_regret(metric, hi)}")
    )
    return f"{word} {span} of {metric} against the best epoch"
