"""Fuzzing every log reader: mutated real logs end in a valid RunLog or a ReplayError.

Four formats, each started from a real recorded file and mutated by hypothesis
(byte flips, truncation at line / field / record boundaries, inserted and duplicated
lines or records, wrong encodings, huge numbers, empty fields, extra and missing
columns, swapped header names, NUL bytes, very long lines):

- ``csv``: a run's ``metrics.csv`` read with :func:`load_csv`;
- ``run_dir``: ``run.json`` (structural and byte mutations) plus ``metrics.csv``, read
  with :func:`load_run_dir` and :func:`load_run`;
- ``tensorboard``: an event file of a real ``model.fit`` TensorBoard log, read with
  :func:`load_tensorboard` as a log directory or as a single file;
- ``csvlogger``: Keras CSVLogger files read through the detection step
  :func:`analysis.formats.load_logs` (every training in the file).

Each case ends in exactly one of: a RunLog whose invariants hold, or a ReplayError
whose message is one line. Anything else fails. A smaller sample per format goes
through the CLI in-process (``show``, ``sweep --no-charts``, ``pick``): exit 0, or a
non-zero exit with exactly one ``Error: ...`` line on stderr and no traceback.

Every test counts its own cases and asserts the count at its end; ``pytest -s``
prints the tally. Inputs that crashed the readers once are fixed rows in
``REGRESSIONS`` at the bottom.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tbevents import file_version_event, frame_record, scalar_event

from analysis.errors import ReplayError
from analysis.formats import load_logs, load_run
from analysis.formats.run_dir import load_run_dir
from analysis.reading.logs import RunLog, checkpoint_path, load_csv, load_tensorboard
from analysis.reading.tb import masked_crc32c
from replay.commands.cli import cli

DATA = Path(__file__).parent / "data"
FUZZ = DATA / "fuzz"
RUN_DIR = FUZZ / "run"  # a real recorded run trimmed to 12 epochs (no checkpoints)
TB_DIR = DATA / "keras_fit" / "tb"  # TensorBoard log of a real 3-epoch model.fit
CSVLOGGER_FILES = [
    DATA / "keras_fit" / "log.csv",
    DATA / "csvlogger_resumed.csv",
    DATA / "csvlogger_semicolon.csv",
    DATA / "csvlogger_appended.csv",  # three fits, the second resumed; Keras 2 names
]

# Cases per format through the loaders and through the CLI; FUZZ_SCALE=10 digs deeper.
N_LOADER = int(2000 * float(os.environ.get("FUZZ_SCALE", "1")))
N_CLI = int(200 * float(os.environ.get("FUZZ_SCALE", "1")))

SUPPRESS = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, suppress_health_check=SUPPRESS,
                    print_blob=True)  # fmt: skip


# ------------------------------------------------------------------------ outcomes


def check_runlog(run: RunLog) -> None:
    """The invariants every loaded log keeps (see analysis.reading.logs' module docstring)."""
    assert isinstance(run, RunLog)
    m, absent = run.metrics, run.not_logged
    n = len(m)
    assert n >= 1 and m.shape[1] >= 1
    assert m.shape == absent.shape
    assert list(m.columns) == list(absent.columns)
    assert len(set(m.columns)) == m.shape[1]
    assert m.index.equals(pd.RangeIndex(n)) and absent.index.equals(pd.RangeIndex(n))
    assert all(dt == np.float64 for dt in m.dtypes)
    assert all(dt == np.bool_ for dt in absent.dtypes)
    assert run.n_epochs == n
    arr, mask = m.to_numpy(), absent.to_numpy()
    assert np.isnan(arr[mask]).all()  # a not-logged cell holds no value
    for j, column in enumerate(m.columns):
        vals = run.values(column)
        assert len(vals) == n
        for i, v in enumerate(vals):
            if mask[i, j]:
                assert v is None
            else:
                assert isinstance(v, float)
                assert v == arr[i, j] or (math.isnan(v) and math.isnan(arr[i, j]))
    for w in run.warnings:
        assert isinstance(w, str) and "\n" not in w and "\r" not in w, w
    assert isinstance(run.status, str)
    assert isinstance(run.checkpoints, dict)
    assert isinstance(run.shadow, list)


def outcome(load, *args) -> str:
    """Call a loader: "ok" (invariants checked) or "error" (one-line ReplayError).

    A loader may return one RunLog or a list of them (one per training in the log).
    Any other exception propagates and fails the test.
    """
    try:
        loaded = load(*args)
    except ReplayError as e:
        msg = str(e)
        assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
        return "error"
    runs = loaded if isinstance(loaded, list) else [loaded]
    assert runs
    for run in runs:
        check_runlog(run)
        if run.manifest is not None:
            for epoch in range(min(run.n_epochs, 3)):  # a pick on this log: refuse or hand over
                try:
                    checkpoint_path(run, epoch)
                except ReplayError as e:
                    assert "\n" not in str(e)
    return "ok"


# What the CLI writes to stderr, one line each: a message cut in two fails the check.
STDERR_LINE = re.compile(r"(warning: |note: |Error: |wrote |MISMATCH |.+: replay matches \d+/\d+ )")


def check_cli(result) -> str:
    """Exit 0, or non-zero with exactly one ``Error: ...`` line; never a traceback."""
    text = result.output + result.stderr
    assert "Traceback" not in text, text[-2000:]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"crash: {result.exception!r}") from result.exception
    for line in result.stderr.splitlines():
        assert STDERR_LINE.match(line), f"stray stderr line: {line!r}"
    if result.exit_code == 0:
        return "exit 0"
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    return f"exit {result.exit_code}"


def run_cli(target: Path, out: Path, extra: list[str]) -> Counter:
    runner = CliRunner()
    tally: Counter = Counter()
    commands = [
        ["show", str(target)],
        ["sweep", str(target), "--patience", "0..3", "--no-charts", "--out", str(out), "--force",
         *extra],
        ["pick", str(target), "--patience", "2"],
    ]  # fmt: skip
    for args in commands:
        tally[f"{args[0]} {check_cli(runner.invoke(cli, args))}"] += 1
    return tally


# ------------------------------------------------------------------------ mutations

HOSTILE_CELLS = [
    b"", b" ", b"1e308", b"-1e308", b"1e400", b"-1e400", b"1e-400", b"4.9e-324",
    b"9" * 400, b"0." + b"0" * 400 + b"1", b"-" + b"9" * 30, b"nan", b"NaN", b"-nan",
    b"inf", b"-Infinity", b"INF", b"NA", b"n/a", b"None", b"null", b"0x10", b"1_0",
    "\u0661".encode(), "\uff11".encode(), b" 1 ", b'"1"', b'"a,b"', b'"', b'""', b"\x00",
    b"[0.5, 0.25]", b"-0", b"+1", b"1.", b".", b"e", b"--1", b"\xff", b"x" * 5000,
    b"epoch", b"loss", b"val_loss", b"\r", b"999999999999999", b"9999999999999999",
    b"-1", b"1.5", b"0.0", b"3.0", b"2.0000", b"1e3", b"1e18", b"18446744073709551616",
    b"\xc3\xa9", b"\xef\xbb\xbf", b"\t", b";", b",",
]  # fmt: skip
BOUNDARY_BYTES = [b"\n", b",", b";", b"\t", b"\r", b'"']
ENCODINGS = ["utf-16-le", "utf-16-be", "utf-16", "utf-8-sig", "latin-1", "cp1252"]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def _split_end(line: bytes) -> tuple[bytes, bytes]:
    body = line.rstrip(b"\r\n")
    return body, line[len(body) :]


def _boundaries(data: bytes) -> list[int]:
    """Offsets next to line ends and separators: where a crash leaves a file cut."""
    out = {0, len(data)}
    for i, b in enumerate(data):
        if bytes([b]) in BOUNDARY_BYTES:
            out.update((i, i + 1))
    return sorted(out)


def mutate_text(draw, data: bytes, max_ops: int = 4) -> bytes:
    """Apply up to ``max_ops`` random mutations to a CSV-like file."""
    for _ in range(draw(st.integers(0, max_ops), label="n_ops")):
        op = draw(st.sampled_from([  # the ones that often leave a readable file come twice
            "flip", "setbyte", "truncate", "cut_boundary", "cut_boundary", "dupline",
            "dupline", "delline", "insline", "cell", "cell", "addcol", "dropcol", "swapheader",
            "longline", "separator", "eol", "encode", "random", "nul",
        ]), label="op")  # fmt: skip
        lines = _lines(data)
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
        elif op == "setbyte" and data:
            i = draw(st.integers(0, len(data) - 1))
            b = draw(st.sampled_from([b"\x00", b"\xff", b"\x80", b"\n", b"\r", b",", b'"', b" "]))
            data = data[:i] + b + data[i + 1 :]
        elif op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "cut_boundary":
            data = data[: draw(st.sampled_from(_boundaries(data)))]
        elif op == "dupline":
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines)))
            line = lines[i] if lines[i].endswith(b"\n") else lines[i] + b"\n"
            lines.insert(j, line)
            data = b"".join(lines)
        elif op == "delline":
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = b"".join(lines)
        elif op == "insline":
            cells = draw(st.lists(st.sampled_from(HOSTILE_CELLS), min_size=0, max_size=12))
            sep = draw(st.sampled_from([b",", b";", b"\t"]))
            lines.insert(draw(st.integers(0, len(lines))), sep.join(cells) + b"\n")
            data = b"".join(lines)
        elif op in ("cell", "addcol", "dropcol"):
            i = draw(st.integers(0, len(lines) - 1))
            body, end = _split_end(lines[i])
            cells = body.split(b",")
            if op == "cell":
                k = draw(st.integers(0, len(cells) - 1))
                cells[k] = draw(st.sampled_from(HOSTILE_CELLS))
            elif op == "addcol":
                cells.insert(draw(st.integers(0, len(cells))), draw(st.sampled_from(HOSTILE_CELLS)))
            elif len(cells) > 1:
                del cells[draw(st.integers(0, len(cells) - 1))]
            lines[i] = b",".join(cells) + end
            data = b"".join(lines)
        elif op == "swapheader":
            body, end = _split_end(lines[0])
            cells = body.split(b",")
            a, b = draw(st.integers(0, len(cells) - 1)), draw(st.integers(0, len(cells) - 1))
            cells[a], cells[b] = cells[b], cells[a]
            lines[0] = b",".join(cells) + end
            data = b"".join(lines)
        elif op == "longline":
            n = draw(st.sampled_from([1000, 70_000, 300_000]))
            filler = draw(st.sampled_from([b"1", b"x", b",", b"0,"]))
            lines.insert(draw(st.integers(0, len(lines))), filler * n + b"\n")
            data = b"".join(lines)
        elif op == "separator":
            data = data.replace(b",", draw(st.sampled_from([b";", b"\t", b" ", b"|"])))
        elif op == "eol":
            data = data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n", b"\x85"])))
        elif op == "encode":
            enc = draw(st.sampled_from(ENCODINGS))
            text = data.decode("utf-8", "replace")
            if draw(st.booleans()):
                text = text.replace("loss", "loss\u00e9\u00b5", 1)
            data = text.encode(enc, "replace")
        elif op == "random":
            data = draw(st.binary(max_size=300))
        elif op == "nul":
            i = draw(st.integers(0, len(data)))
            data = data[:i] + b"\x00" * draw(st.integers(1, 8)) + data[i:]
    return data


# ------------------------------------------------------------------------ CSV

CSV_BASE = (RUN_DIR / "metrics.csv").read_bytes()


def test_fuzz_metrics_csv(tmp_path):
    tally: Counter = Counter()
    target = tmp_path / "metrics.csv"

    @fuzz_settings(N_LOADER)
    @given(st.data())
    def case(data):
        target.write_bytes(mutate_text(data.draw, CSV_BASE))
        tally[outcome(load_csv, target)] += 1

    case()
    _report("csv", tally, N_LOADER)


# ------------------------------------------------------------------------ run.json

MANIFEST = json.loads((RUN_DIR / "run.json").read_text())
HOSTILE_PATHS = [
    "../x", "../../etc/passwd", "/etc/passwd", "C:\\x", "C:x", "checkpoints\\epoch-001.keras",
    "checkpoints/../../x", "", " ", ".", "checkpoints/", "a\x00b", "//server/share",
    "checkpoints/" + "x" * 5000, "checkpoints/epoch-001.keras", "\u00e9.keras",
]  # fmt: skip
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
    st.sampled_from([1e308, -1e308, 10**400, -1, 0, 2**63, 2**64]),
    st.text(max_size=20), st.sampled_from(HOSTILE_PATHS),
    st.sampled_from(["val_loss", "loss", "EarlyStopping", "ReduceLROnPlateau", "min", "max",
                     "complete", "running", "a" * 64, "0" * 63]),
)  # fmt: skip
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["epoch", "checkpoint", "sha256", "bytes", "params", "monitor",
                         "patience", "callback", "status", "mode", "x"]) | st.text(max_size=5),
        kids, max_size=4),
    max_leaves=8,
)  # fmt: skip


def _containers(obj, path=()):
    """Every (path, container) in a JSON document."""
    if isinstance(obj, (dict, list)):
        yield path, obj
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in items:
            yield from _containers(v, (*path, k))


def mutate_manifest(draw, manifest: dict) -> dict:
    doc = json.loads(json.dumps(manifest))
    for _ in range(draw(st.integers(0, 4), label="n_json_ops")):
        spots = list(_containers(doc))
        _path, box = draw(st.sampled_from(spots))
        keys = list(box.keys()) if isinstance(box, dict) else list(range(len(box)))
        op = draw(st.sampled_from(["set", "set", "delete", "duplicate", "add", "checkpoint"]))
        if op == "checkpoint":
            epochs = doc.get("epochs") if isinstance(doc, dict) else None
            if isinstance(epochs, list) and epochs and isinstance(epochs[0], dict):
                i = draw(st.integers(0, len(epochs) - 1))
                if isinstance(epochs[i], dict):
                    epochs[i]["checkpoint"] = draw(st.sampled_from(HOSTILE_PATHS))
            continue
        if not keys:
            op = "add"
        if op == "set":
            box[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        elif op == "delete":
            del box[draw(st.sampled_from(keys))]
        elif op == "duplicate" and isinstance(box, list):
            box.insert(
                draw(st.integers(0, len(box))),
                json.loads(json.dumps(box[draw(st.sampled_from(keys))])),
            )
        elif isinstance(box, dict):
            box[
                draw(
                    st.sampled_from(
                        ["status", "epochs", "shadow", "checkpoints_included", "x", "name"]
                    )
                )
            ] = draw(JSON_VALUES)
        else:
            box.append(draw(JSON_VALUES))
    return doc


def _write_run(draw, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    doc = mutate_manifest(draw, MANIFEST)
    text = json.dumps(doc, indent=draw(st.sampled_from([None, 2])))
    if draw(st.booleans()):
        text = draw(st.sampled_from([
            text, "[" * 100_000 + "]" * 100_000, '{"epochs": ' + "[" * 50_000, "", "{}",
            "null", "NaN", '{"status": "complete", "epochs": []}',
        ]))  # fmt: skip
    raw = text.encode()
    if draw(st.integers(0, 3)) == 0:
        raw = mutate_text(draw, raw, max_ops=2)
    (root / "run.json").write_bytes(raw)
    csv_kind = draw(st.sampled_from(["same", "same", "same", "mutated", "missing", "dir"]))
    if csv_kind == "same":
        (root / "metrics.csv").write_bytes(CSV_BASE)
    elif csv_kind == "mutated":
        (root / "metrics.csv").write_bytes(mutate_text(draw, CSV_BASE, max_ops=2))
    elif csv_kind == "dir":
        (root / "metrics.csv").mkdir()
    if draw(st.integers(0, 4)) == 0:  # a checkpoint file that run.json may or may not match
        (root / "checkpoints").mkdir()
        (root / "checkpoints" / "epoch-001.keras").write_bytes(b"PK\x03\x04not a model")


def test_fuzz_run_dir(tmp_path):
    tally: Counter = Counter()
    root = tmp_path / "run"

    @fuzz_settings(N_LOADER)
    @given(st.data())
    def case(data):
        _write_run(data.draw, root)
        tally[outcome(load_run_dir, root)] += 1
        outcome(load_run, root)  # the dispatcher agrees (or fails the same way)

    case()
    _report("run_dir", tally, N_LOADER)


# ------------------------------------------------------------------------ TensorBoard


def _records(data: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(data):
        (n,) = struct.unpack_from("<Q", data, off)
        out.append(data[off + 12 : off + 12 + n])
        off += 12 + n + 4
    return out


TB_FILES = {
    "train": next((TB_DIR / "train").iterdir()),
    "validation": next((TB_DIR / "validation").iterdir()),
}
TB_RECORDS = {k: _records(p.read_bytes()) for k, p in TB_FILES.items()}
TAGS = [
    "epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_val_loss", "epoch_",
    "epoch_loss\x00", "epoch_\u00e9", "epoch_" + "x" * 2000, "loss", "epoch_learning_rate_2",
    "epoch_epoch",
]  # fmt: skip
STEPS = st.one_of(
    st.integers(0, 5),
    st.integers(-5, 200),
    st.sampled_from([-(2**63), 2**63 - 1, 2**40, 10**6, 30_000, 100_000]),
)
VALUES = st.one_of(st.floats(width=32), st.sampled_from([1e308, -1e308, 3.4e38, 1e-45]))


def _tensor_event(draw) -> bytes:
    """An Event whose epoch_* value is an odd TensorProto (dtype, shape, content)."""
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(step=draw(STEPS), wall_time=draw(st.floats()))
    v = event.summary.value.add(tag=draw(st.sampled_from(TAGS)))
    t = v.tensor
    t.dtype = draw(st.integers(0, 30))
    for size in draw(st.lists(st.sampled_from([-1, 0, 1, 2, 2**40]), max_size=3)):
        t.tensor_shape.dim.add(size=size)
    kind = draw(st.sampled_from(["content", "float", "double", "int", "int64", "half", "bool",
                                 "uint64", "string", "none"]))  # fmt: skip
    if kind == "content":
        t.tensor_content = draw(st.binary(max_size=10))
    elif kind == "float":
        t.float_val.extend(draw(st.lists(st.floats(width=32), max_size=2)))
    elif kind == "double":
        t.double_val.extend(draw(st.lists(st.floats(), max_size=2)))
    elif kind == "int":
        t.int_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=2)))
    elif kind == "int64":
        t.int64_val.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2)))
    elif kind == "half":
        t.half_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=2)))
    elif kind == "bool":
        t.bool_val.extend(draw(st.lists(st.booleans(), max_size=2)))
    elif kind == "uint64":
        t.uint64_val.extend(draw(st.lists(st.integers(0, 2**64 - 1), max_size=2)))
    elif kind == "string":
        t.string_val.extend(draw(st.lists(st.binary(max_size=5), max_size=2)))
    return event.SerializeToString()


def _bad_header(n: int) -> bytes:
    """A record header claiming ``n`` bytes, with a valid length CRC."""
    header = struct.pack("<Q", n)
    return header + struct.pack("<I", masked_crc32c(header))


def mutate_event_file(draw, records: list[bytes]) -> bytes:
    records = list(records)
    raw_ops = []
    for _ in range(draw(st.integers(0, 4), label="n_tb_ops")):
        op = draw(st.sampled_from([
            "dup", "drop", "swap", "scalar", "tensor", "garbage_record", "payload_flip",
            "file_version", "flip", "truncate", "cut_record", "huge_length", "junk_bytes",
        ]), label="op")  # fmt: skip
        n = len(records)
        if op == "dup" and n:
            records.insert(draw(st.integers(0, n)), records[draw(st.integers(0, n - 1))])
        elif op == "drop" and n:
            del records[draw(st.integers(0, n - 1))]
        elif op == "swap" and n:
            i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            records[i], records[j] = records[j], records[i]
        elif op == "scalar":
            event = scalar_event(
                draw(st.sampled_from(TAGS)),
                draw(VALUES),
                draw(STEPS),
                draw(st.floats()),
                as_tensor=draw(st.booleans()),
            )
            records.insert(draw(st.integers(0, n)), event)
        elif op == "tensor":
            records.insert(draw(st.integers(0, n)), _tensor_event(draw))
        elif op == "garbage_record":
            records.insert(draw(st.integers(0, n)), draw(st.binary(max_size=60)))
        elif op == "payload_flip" and n:
            i = draw(st.integers(0, n - 1))
            if records[i]:
                k = draw(st.integers(0, len(records[i]) - 1))
                rec = bytearray(records[i])
                rec[k] ^= draw(st.integers(1, 255))
                records[i] = bytes(rec)  # re-framed below with valid CRCs: reaches the parser
        elif op == "file_version":
            records.insert(draw(st.integers(0, n)), file_version_event(draw(st.floats())))
        else:
            raw_ops.append(op)
    data = b"".join(frame_record(r) for r in records)
    starts = [0]
    for r in records:
        starts.append(starts[-1] + 16 + len(r))
    for op in raw_ops:
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
        elif op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "cut_record" and records:
            # Inside a record: mid length, after length, mid CRC, mid data, mid data CRC.
            k = draw(st.integers(0, len(records) - 1))
            size = 16 + len(records[k])
            cut = draw(st.sampled_from([0, 4, 8, 10, 12, 12 + len(records[k]) // 2,
                                        size - 4, size - 2, size - 1]))  # fmt: skip
            data = data[: starts[k] + cut]
        elif op == "huge_length":
            k = draw(st.integers(0, len(starts) - 1))
            n_bytes = draw(st.sampled_from([2**63, 2**64 - 1, 2**40, 10**9, 100_000]))
            data = data[: starts[k]] + _bad_header(n_bytes) + data[starts[k] :]
        elif op == "junk_bytes":
            i = draw(st.integers(0, len(data)))
            data = data[:i] + draw(st.binary(min_size=1, max_size=20)) + data[i:]
    return data


def _write_tb(draw, root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    which = draw(st.sampled_from(["validation", "train"]), label="folder")
    for folder, path in TB_FILES.items():
        (root / folder).mkdir(parents=True)
        dest = root / folder / path.name
        if folder == which:
            dest.write_bytes(mutate_event_file(draw, TB_RECORDS[folder]))
        else:
            shutil.copyfile(path, dest)
    if draw(st.integers(0, 3)) == 0:
        return root / which / TB_FILES[which].name  # a single event file
    return root


def test_fuzz_tensorboard(tmp_path):
    tally: Counter = Counter()
    root = tmp_path / "tb"

    @fuzz_settings(N_LOADER)
    @given(st.data())
    def case(data):
        target = _write_tb(data.draw, root)
        tally[outcome(load_tensorboard, target)] += 1

    case()
    _report("tensorboard", tally, N_LOADER)


# ------------------------------------------------------------------------ CSVLogger

CSVLOGGER_BASES = [p.read_bytes() for p in CSVLOGGER_FILES]


def _write_csvlogger(draw, target: Path) -> None:
    base = draw(st.sampled_from(CSVLOGGER_BASES), label="base")
    target.write_bytes(mutate_text(draw, base))


def test_fuzz_csvlogger(tmp_path):
    tally: Counter = Counter()
    target = tmp_path / "training.log"

    @fuzz_settings(N_LOADER)
    @given(st.data())
    def case(data):
        _write_csvlogger(data.draw, target)
        tally[outcome(load_logs, target)] += 1  # every training in the file

    case()
    _report("csvlogger", tally, N_LOADER)


# A Keras History saved with pandas, with and without its index column, and two
# histories concatenated (the index goes back to 0).
HISTORY_BASES = [
    b",loss,accuracy,val_loss,val_accuracy\n0,0.9,0.5,1.0,0.45\n1,0.7,0.6,0.8,0.55\n"
    b"2,0.6,0.7,0.85,0.6\n0,1.1,0.4,1.2,0.35\n1,0.95,0.5,1.0,0.5\n",
    b"loss,val_loss,learning_rate\n0.9,1.0,0.001\n0.7,0.8,0.001\n0.6,0.85,0.0005\n",
]


def test_fuzz_keras_history(tmp_path):
    tally: Counter = Counter()
    target = tmp_path / "history.csv"

    @fuzz_settings(N_LOADER)
    @given(st.data())
    def case(data):
        base = data.draw(st.sampled_from(HISTORY_BASES), label="base")
        target.write_bytes(mutate_text(data.draw, base))
        tally[outcome(load_logs, target)] += 1

    case()
    _report("keras_history", tally, N_LOADER)


# ------------------------------------------------------------------------ the CLI

SWEEP_EXTRA = st.sampled_from([[], ["--initial-lr", "0.001"], ["--monitor", "loss"],
                               ["--policy", "prechelt"], ["--format", "json"]])  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "run_dir", "tensorboard", "csvlogger"])
def test_fuzz_cli(tmp_path, fmt):
    tally: Counter = Counter()
    cases = [0]

    @fuzz_settings(N_CLI)
    @given(st.data())
    def case(data):
        draw = data.draw
        if fmt == "csv":
            target = tmp_path / "metrics.csv"
            target.write_bytes(mutate_text(draw, CSV_BASE))
        elif fmt == "run_dir":
            target = tmp_path / "run"
            _write_run(draw, target)
        elif fmt == "tensorboard":
            target = _write_tb(draw, tmp_path / "tb")
        else:
            target = tmp_path / "training.csv"
            _write_csvlogger(draw, target)
        tally.update(run_cli(target, tmp_path / "out", draw(SWEEP_EXTRA)))
        cases[0] += 1

    case()
    print(f"\nfuzz cli {fmt}: {cases[0]} cases, {dict(sorted(tally.items()))}")
    assert cases[0] >= N_CLI


def _report(fmt: str, tally: Counter, n: int) -> None:
    total = sum(tally.values())
    print(f"\nfuzz {fmt}: {total} cases ({tally['ok']} loaded, {tally['error']} ReplayError)")
    assert total >= n, f"only {total} cases ran for {fmt}"


# ------------------------------------------------------------------------ regressions

# Each row crashed (or broke the one-line contract of) the CLI before its fix:
# (what it caught, run.json patch as literal JSON, expected load outcome, expected CLI exits)
REGRESSIONS = [
    # check_shadow did dict(True): TypeError traceback from `show` and `sweep`.
    (
        "shadow params not an object",
        '{"shadow": [{"callback": "EarlyStopping", "params": true}]}',
        "error",
        {1},
    ),
    # `monitor not in facts.metrics` with a list: unhashable-type TypeError traceback.
    (
        "shadow monitor a list",
        '{"shadow": [{"callback": "EarlyStopping", "params": {"monitor": ["val_loss"]}}]}',
        "error",
        {1},
    ),
    # list(5) on the recorded reductions: TypeError traceback.
    (
        "shadow reductions a number",
        '{"shadow": [{"callback": "ReduceLROnPlateau", '
        '"params": {"monitor": "val_loss"}, "reductions": 5}]}',
        "error",
        {1},
    ),
    # `show` exited 3 on a shadow mismatch with no `Error:` line at all (sweep had one).
    (
        "shadow mismatch in show",
        '{"shadow": [{"callback": "EarlyStopping", "params": null, '
        '"stopped_epoch": 3, "best_epoch": 1}]}',
        "ok",
        {3},
    ),
    # A parameter name with a newline split the MISMATCH line in two.
    (
        "shadow label with a newline",
        '{"shadow": [{"callback": "EarlyStopping", '
        '"params": {"a\\nb": 1}, "stopped_epoch": 3, "best_epoch": 1}]}',
        "ok",
        {3},
    ),
    # Damaged settings: a PolicyError without saying it came from run.json's shadow.
    (
        "shadow patience a string",
        '{"shadow": [{"callback": "EarlyStopping", "params": {"patience": "x"}}]}',
        "ok",
        {1},
    ),
    # render_summary called .get / .items on them: AttributeError traceback from `show`.
    ("data a list", '{"data": [1, 2]}', "ok", {0}),
    ("versions a string", '{"versions": "3.11"}', "ok", {0}),
    ("config a number", '{"config": 7}', "ok", {0}),
]


@pytest.mark.parametrize(("what", "patch", "loaded", "exits"), REGRESSIONS,
                         ids=[r[0] for r in REGRESSIONS])  # fmt: skip
def test_regression_run_json(tmp_path, what, patch, loaded, exits):
    root = tmp_path / "run"
    shutil.copytree(RUN_DIR, root)
    (root / "run.json").write_text(json.dumps({**MANIFEST, **json.loads(patch)}))
    assert outcome(load_run_dir, root) == loaded
    runner = CliRunner()
    for args in (["show", str(root)],
                 ["sweep", str(root), "--no-charts", "--out", str(tmp_path / "out")]):  # fmt: skip
        result = runner.invoke(cli, args)
        check_cli(result)
        assert result.exit_code in exits, (args, result.output, result.stderr)
