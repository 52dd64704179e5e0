"""Tests of analysis.reading.logs: CSVLogger files, run directories, dispatch, checkpoints."""

from __future__ import annotations

import gc
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_run
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis.reading.csvlog as logs_module
import analysis.reading.layouts as layouts_module
from analysis.errors import (
    BadLog,
    BadManifest,
    ChecksumMismatch,
    LogNotFound,
    MissingMetric,
    ReplayError,
    UnsafePath,
)
from analysis.formats import expected_layouts, load_run
from analysis.formats.run_dir import load_run_dir
from analysis.reading.logs import CheckpointInfo, RunLog, checkpoint_path, load_csv

DATA = Path(__file__).parent / "data"
NA = None  # a not-logged cell in the expected tables


def write(tmp_path: Path, content: bytes | str, name: str = "log.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def same(a: list[float | None], b: list[float | None]) -> bool:
    """Equal lists where NaN == NaN and None == None."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            if x is not y:
                return False
        elif not (x == y or (math.isnan(x) and math.isnan(y))):
            return False
    return True


def check_schema(run: RunLog) -> None:
    m, nl = run.metrics, run.not_logged
    assert m.index.name == "epoch" and list(m.index) == list(range(len(m)))
    assert isinstance(m.index, pd.RangeIndex)
    assert all(m[c].dtype == np.float64 for c in m.columns)
    assert nl.shape == m.shape and list(nl.columns) == list(m.columns)
    assert all(nl[c].dtype == bool for c in nl.columns)
    assert m.where(nl).isna().all().all()  # not-logged cells hold NaN
    for w in run.warnings:
        assert "\n" not in w


# --------------------------------------------------------------------------- CSV: good input

GOOD = [
    # id, content, expected {column: values}, warning regexes
    (
        "comma",
        "epoch,loss,val_loss\n0,1.5,1.6\n1,1.25,1.3\n",
        {"loss": [1.5, 1.25], "val_loss": [1.6, 1.3]},
        [],
    ),
    (
        "semicolon",
        "epoch;loss;val_loss\n0;1.5;1.6\n1;1.25;1.3\n",
        {"loss": [1.5, 1.25], "val_loss": [1.6, 1.3]},
        [],
    ),
    (
        "tab",
        "epoch\tloss\tval_loss\n0\t1.5\t1.6\n1\t1.25\t1.3\n",
        {"loss": [1.5, 1.25], "val_loss": [1.6, 1.3]},
        [],
    ),
    ("crlf-and-spaces", "epoch, loss\r\n0, 1.5\r\n\r\n1 ,2\r\n", {"loss": [1.5, 2.0]}, []),
    ("epoch-not-first", "loss,epoch\n0.5,0\n0.25,1\n", {"loss": [0.5, 0.25]}, []),
    ("float-epoch", "epoch,loss\n0.0,1\n1.0,2\n", {"loss": [1.0, 2.0]}, []),
    (
        "na-vs-nan",
        "epoch,a,b,c\n0,NA,nan,inf\n1,,NaN,-inf\n2,n/a,-nan,-Infinity\n3,na,1e-400,+INF\n",
        {
            "a": [NA, NA, NA, NA],
            "b": [math.nan] * 3 + [0.0],
            "c": [math.inf, -math.inf, -math.inf, math.inf],
        },
        [],
    ),
    (
        "all-na-column",
        "epoch,loss,val_loss\n0,1,NA\n1,2,NA\n",
        {"loss": [1.0, 2.0], "val_loss": [NA, NA]},
        [],
    ),
    (
        "resumed-fit-replaces",
        "epoch,loss\n0,1\n1,2\n2,3\n1,20\n2,30\n3,40\n",
        {"loss": [1.0, 20.0, 30.0, 40.0]},
        [
            r".*log\.csv: the epoch column goes back from 2 to 1 at line 5 \(a fit resumed from "
            r"epoch 1\); the rows from there on replace epoch 1 and later"
        ],
    ),
    # A resumed fit that stopped earlier than the first one: epochs 3-4 of the first
    # fit belong to a training that did not go on, so they are dropped, not kept.
    (
        "shorter-resume-drops-the-rest",
        "epoch,loss\n0,1\n1,2\n2,3\n3,4\n4,5\n2,30\n",
        {"loss": [1.0, 2.0, 30.0]},
        [
            r".*log\.csv: the epoch column goes back from 4 to 2 at line 7 \(a fit resumed from "
            r"epoch 2\); the rows from there on replace epoch 2 and later"
        ],
    ),
    (
        "gap",
        "epoch,loss\n0,1\n1,2\n4,5\n",
        {"loss": [1.0, 2.0, NA, NA, 5.0]},
        [r".*log\.csv: epochs 2-3 missing; marked their cells not logged"],
    ),
    (
        "starts-late",
        "epoch,loss\n2,1\n3,2\n",
        {"loss": [NA, NA, 1.0, 2.0]},
        [r".*: epochs 0-1 missing; .*"],
    ),
    (
        "overflow-to-inf",
        "epoch,loss\n0,1e400\n1,-1e999\n",
        {"loss": [math.inf, -math.inf]},
        [
            r".*log\.csv: 2 value\(s\) beyond the float64 range read as \+-inf \(first: line 2, "
            r"column 'loss', '1e400'\)"
        ],
    ),
    (
        "overflow-first-in-line-order",
        "epoch,b,a\n0,1,1e999\n1,1e400,1e400\n",
        {"b": [1.0, math.inf], "a": [math.inf, math.inf]},
        [
            r".*: 3 value\(s\) beyond the float64 range read as \+-inf \(first: line 2, "
            r"column 'a', '1e999'\)"
        ],
    ),
    (
        "cut-off-last-line",
        "epoch,loss,val_loss\n0,1,2\n1,3",
        {"loss": [1.0], "val_loss": [2.0]},
        [
            r".*log\.csv: the last line \(3\) is cut off \(2 of 3 fields, no newline: a crash "
            r"while writing\?\); ignored it"
        ],
    ),
    ("complete-last-line-without-newline", "epoch,loss\n0,1\n1,3", {"loss": [1.0, 3.0]}, []),
    ("utf8-bom", "\ufeffepoch,loss\n0,1\n", {"loss": [1.0]}, []),
    ("quoted", '"epoch","loss"\n"0","1.5"\n', {"loss": [1.5]}, []),
    (
        "extremes",
        "epoch,loss\n0,1e308\n1,-1e308\n2,5e-324\n",
        {"loss": [1e308, -1e308, 5e-324]},
        [],
    ),
]


@pytest.fixture(params=["fast", "cell-by-cell"])
def parse_path(request, monkeypatch):
    """Run a test with the column-wise fast path, then with the cell-by-cell parser only."""
    if request.param == "cell-by-cell":
        monkeypatch.setattr(logs_module, "_parse_columns", lambda *args: None)
    return request.param


@pytest.mark.parametrize(
    "content,expected,warnings", [g[1:] for g in GOOD], ids=[g[0] for g in GOOD]
)
def test_csv_good(tmp_path, parse_path, content, expected, warnings):
    run = load_csv(write(tmp_path, content))
    check_schema(run)
    assert run.format == "csv" and run.name == "log" and run.manifest is None
    assert list(run.metrics.columns) == list(expected)
    for col, vals in expected.items():
        assert same(run.values(col), vals), (col, run.values(col))
    assert len(run.warnings) == len(warnings), run.warnings
    for pattern, w in zip(warnings, run.warnings, strict=True):
        assert re.fullmatch(pattern, w), w


def test_csv_utf16(tmp_path):
    run = load_csv(write(tmp_path, "epoch,loss\n0,1\n".encode("utf-16")))
    assert run.values("loss") == [1.0]


def test_csv_fixture_semicolon_crlf():
    run = load_run(DATA / "csvlogger_semicolon.csv")
    check_schema(run)
    assert list(run.metrics.columns) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert run.values("val_loss") == [None, 0.85, 0.8]
    assert run.name == "csvlogger_semicolon" and run.warnings == []


def test_csv_fixture_resumed():
    run = load_run(DATA / "csvlogger_resumed.csv")
    assert run.values("loss") == [0.9, 0.8, 0.71, 0.61, 0.5]
    assert run.not_logged["val_loss"].tolist() == [False] * 5
    assert math.isnan(run.values("val_loss")[4])
    assert run.warnings == [
        f"{DATA / 'csvlogger_resumed.csv'}: the epoch column goes back from 3 to 2 at line 6 "
        "(a fit resumed from epoch 2); the rows from there on replace epoch 2 and later"
    ]


def test_csv_several_trainings_are_several_runs(tmp_path):
    """A 6-epoch training followed by 2- and 3-epoch restarts (CSVLogger(append=True) over
    three fits): three runs, never one spliced curve."""
    from analysis.errors import AmbiguousLog
    from analysis.formats import load_logs

    rows = ["0,5", "1,4", "2,3", "3,2", "4,1", "5,0.5", "0,9", "1,8", "0,7", "1,6", "2,5"]
    path = write(tmp_path, "epoch,loss\n" + "\n".join(rows) + "\n")
    runs = load_logs(path)
    assert [r.name for r in runs] == ["log#1", "log#2", "log#3"]
    assert [r.source for r in runs] == [f"{path}#1", f"{path}#2", f"{path}#3"]
    assert [r.values("loss") for r in runs] == [
        [5.0, 4.0, 3.0, 2.0, 1.0, 0.5],
        [9.0, 8.0],
        [7.0, 6.0, 5.0],
    ]
    assert runs[1].warnings == [
        f"{path}: holds 3 trainings (a new one starts where the epoch column goes back to 0 "
        "or the header repeats: lines 8, 10); this is training #2, lines 8-9"
    ]
    (second,) = load_logs(f"{path}#2")
    assert second.values("loss") == [9.0, 8.0] and second.name == "log#2"
    with pytest.raises(AmbiguousLog, match=re.escape(f"{path}: holds 3 trainings; name one")):
        load_csv(path)
    with pytest.raises(LogNotFound, match=r"holds 3 trainings, #1 to #3; pick one of them"):
        load_logs(f"{path}#4")


def test_csv_repeated_header_starts_a_training(tmp_path):
    """Two CSVLogger files joined with `cat` (headers and all) are two trainings."""
    from analysis.formats import load_logs

    path = write(tmp_path, "epoch,loss\n0,1\n1,2\nepoch,loss\n5,3\n6,4\n")
    runs = load_logs(path)
    assert [r.values("loss") for r in runs] == [[1.0, 2.0], [None] * 5 + [3.0, 4.0]]


def test_csv_many_duplicates_are_summarized(tmp_path):
    rows = "".join(f"{e},{e}\n" for e in range(30)) + "".join(f"{e},{e}\n" for e in range(5, 30))
    run = load_csv(write(tmp_path, "epoch,loss\n" + rows))
    assert run.n_epochs == 30
    assert run.warnings[0].endswith("the rows from there on replace epoch 5 and later")
    assert "goes back from 29 to 5 at line 32" in run.warnings[0]


def test_csv_many_gaps_are_summarized(tmp_path):
    rows = "".join(f"{e},{e}\n" for e in range(0, 60, 2))
    run = load_csv(write(tmp_path, "epoch,loss\n" + rows))
    assert run.n_epochs == 59
    assert "... (29 in all)" in run.warnings[0]


# --------------------------------------------------------------------------- CSV: bad input


def P(text: str) -> str:
    """A message pattern: literal text, with {p} standing for the file's path."""
    text = text.replace("{others}", layouts_module.other_csv_layouts())
    return re.escape(text).replace(re.escape("{p}"), ".*log\\.csv")


BAD = [
    (
        "empty",
        b"",
        BadLog,
        "{p}: empty file; expected a CSVLogger header line 'epoch,...' and one row per epoch",
    ),
    (
        "blank-lines",
        b" \n\n\t\n",
        BadLog,
        "{p}: empty file; expected a CSVLogger header line 'epoch,...' and one row per epoch",
    ),
    (
        "header-only",
        b"epoch,loss,val_loss\n",
        BadLog,
        "{p}: has no epochs (header only); nothing to replay, log at least one epoch",
    ),
    (
        "header-and-cut-row",
        b"epoch,loss,val_loss\n0,1",
        BadLog,
        "{p}: has no epochs (header only); nothing to replay, log at least one epoch",
    ),
    (
        "non-numeric",
        b"epoch,loss\n0,1\n1,abc\n",
        BadLog,
        "{p}: line 3, column 'loss': 'abc' is not a number; use a number, nan, inf, or NA for "
        "not logged",
    ),
    (
        "underscore-number",
        b"epoch,loss\n0,1_0\n",
        BadLog,
        "{p}: line 2, column 'loss': '1_0' is not a number; use a number, nan, inf, or NA for "
        "not logged",
    ),
    (
        "vector-metric",
        b'epoch,f1\n0,"[0.5, 0.25]"\n',
        BadLog,
        "{p}: line 2, column 'f1': '[0.5, 0.25]' is not a number; use a number, nan, inf, or "
        "NA for not logged",
    ),
    (
        "nul-byte",
        b"epoch,loss\n0,1\x00\n",
        BadLog,
        "{p}: line 2, column 'loss': '1\\x00' is not a number; use a number, nan, inf, or NA "
        "for not logged",
    ),
    (
        "long-value-shortened",
        b"epoch,loss\n0," + b"x" * 100 + b"\n",
        BadLog,
        "{p}: line 2, column 'loss': '" + "x" * 40 + "...' is not a number; use a number, nan, "
        "inf, or NA for not logged",
    ),
    (
        "bad-epoch",
        b"epoch,loss\nfirst,1\n",
        BadLog,
        "{p}: line 2, column 'epoch': 'first' is not a 0-based epoch number; the epoch column "
        "holds whole numbers 0, 1, 2, ...",
    ),
    (
        "negative-epoch",
        b"epoch,loss\n-1,1\n",
        BadLog,
        "{p}: line 2, column 'epoch': '-1' is not a 0-based epoch number; the epoch column "
        "holds whole numbers 0, 1, 2, ...",
    ),
    # A repeated header starts another training (files joined with their headers), so
    # load_csv, which returns one training, asks for one by name.
    (
        "repeated-header",
        b"epoch,loss\n0,1\nepoch,loss\n1,2\n",
        BadLog,
        "{p}: holds 2 trainings; name one as {p}#1 ... {p}#2",
    ),
    (
        "huge-epoch",
        b"epoch,loss\n0,1\n123456789,2\n",
        BadLog,
        "{p}: epoch 123456789 (line 3) would leave 123456788 epochs missing among 2 logged; "
        "check the epoch column (0-based epoch indices)",
    ),
    (
        "no-epoch-column",
        b"loss,val_loss\n1,2\n",
        BadLog,
        "{p}: line 1 has no 'epoch' column: 'loss,val_loss'; a Keras CSVLogger file starts "
        "with a header 'epoch' then metric names, separated by ',', ';' or tab{others}",
    ),
    (
        "capitalized-epoch",
        b"Epoch,loss\n0,1\n",
        BadLog,
        "{p}: line 1 has no 'epoch' column (the column must be named exactly 'epoch', in "
        "lower case): 'Epoch,loss'; a Keras CSVLogger file starts with a header 'epoch' then "
        "metric names, separated by ',', ';' or tab{others}",
    ),
    (
        "only-epoch",
        b"epoch\n0\n1\n",
        BadLog,
        "{p}: no metric columns besides 'epoch'; a CSVLogger file has one column per metric "
        "(loss, val_loss, ...)",
    ),
    (
        "unnamed-column",
        b"epoch,loss,\n0,1,\n",
        BadLog,
        "{p}: column 3 of the header (line 1) has no name; give every column a name or remove "
        "the stray separator",
    ),
    (
        "duplicate-column",
        b"epoch,loss,loss\n0,1,2\n",
        BadLog,
        "{p}: column 'loss' appears twice in the header (line 1); rename or remove one of them",
    ),
    (
        "ragged-long",
        b"epoch,loss\n0,1,2\n1,2\n",
        BadLog,
        "{p}: line 2 has 3 fields but the header has 2 (comma-separated); fix or remove that line",
    ),
    (
        "ragged-short",
        b"epoch;loss;val_loss\n0;1\n1;2;3\n",
        BadLog,
        "{p}: line 2 has 2 fields but the header has 3 (semicolon-separated); fix or remove "
        "that line",
    ),
    (
        "not-utf8",
        b"epoch,loss\n0,1\n1,\xe9\n",
        BadLog,
        "{p}: not UTF-8 text (byte 0xe9 at line 3: invalid continuation byte); save the file "
        "as UTF-8",
    ),
    (
        "huge-field",
        b'epoch,loss\n0,"' + b"1" * 200_000 + b'"\n',
        BadLog,
        "{p}: line 2 is not valid CSV (field larger than field limit (131072)); fix or remove "
        "that line",
    ),
]


@pytest.mark.parametrize("content,exc,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_csv_bad(tmp_path, parse_path, content, exc, message):
    with pytest.raises(exc) as info:
        load_csv(write(tmp_path, content))
    assert gc.isenabled()  # paused while parsing, restored on errors too
    assert "\n" not in str(info.value)
    assert re.fullmatch(P(message), str(info.value)), str(info.value)


def test_csv_missing_file(tmp_path):
    with pytest.raises(LogNotFound) as info:
        load_csv(tmp_path / "nope.csv")
    assert str(info.value) == (
        f"{tmp_path / 'nope.csv'}: no such file or directory; pass {expected_layouts()}"
    )


def test_csv_loader_on_directory(tmp_path):
    with pytest.raises(BadLog, match="is a directory, not a CSV file"):
        load_csv(tmp_path)


def test_csv_hundred_thousand_epochs(tmp_path):
    rows = "".join(f"{e},{e / 7!r},NA\n" for e in range(100_000))
    run = load_csv(write(tmp_path, "epoch,loss,val_loss\n" + rows))
    assert run.n_epochs == 100_000
    assert run.metrics["loss"].iloc[-1] == 99_999 / 7
    assert run.not_logged["val_loss"].all()


# --------------------------------------------------------------------------- RunLog API


def test_values_has_missing_metric(tmp_path):
    run = load_csv(write(tmp_path, "epoch,loss,val_loss,val_accuracy\n0,1,2,0.5\n"))
    assert run.has("val_loss") and not run.has("val_los")
    assert run.n_epochs == 1 and run.status == "unknown"
    assert run.checkpoints == {} and run.shadow == [] and not run.checkpoints_included
    with pytest.raises(MissingMetric) as info:
        run.values("val_los")
    assert str(info.value) == (
        f"{tmp_path / 'log.csv'}: no metric 'val_los' (the log has: loss, val_loss, "
        "val_accuracy); did you mean 'val_loss'?"
    )
    with pytest.raises(MissingMetric, match=r"did you mean 'val_loss'\?$"):
        run.values("VAL_LOSS")
    with pytest.raises(MissingMetric, match=r"\(the log has: loss, val_loss, val_accuracy\)\.$"):
        run.values("zzz")


def test_runlog_holds_arrays_and_builds_its_frames_from_them(tmp_path):
    """RunLog's numpy arrays are the log; metrics / not_logged are DataFrames of the
    same values, built once on first use."""
    run = load_csv(write(tmp_path, "epoch,loss,val_loss\n0,1.5,NA\n1,nan,0.5\n3,0.25,0.125\n"))
    assert run.columns == ("loss", "val_loss")
    assert run.table.dtype == np.float64 and run.absent.dtype == bool
    assert run.absent.tolist() == [[False, True], [False, False], [True, True], [False, False]]
    assert run.values("loss")[0] == 1.5 and math.isnan(run.values("loss")[1])
    assert run.values("val_loss") == [None, 0.5, None, 0.125]
    assert list(run.curves()) == ["loss", "val_loss"]
    assert np.array_equal(run.curves()["val_loss"], [np.nan, 0.5, np.nan, 0.125], equal_nan=True)
    check_schema(run)
    assert run.metrics is run.metrics and run.not_logged is run.not_logged
    assert np.array_equal(run.metrics.to_numpy(), run.table, equal_nan=True)
    assert np.array_equal(run.not_logged.to_numpy(), run.absent)
    with pytest.raises(ValueError, match="must be"):
        RunLog("r", "r", "csv", ("a", "b"), np.zeros((2, 1)), np.zeros((2, 1), bool))


# --------------------------------------------------------------------------- run directories


def test_run_dir_loads(tmp_path):
    root = make_run(tmp_path / "mnist")
    run = load_run(root)
    check_schema(run)
    assert (run.format, run.name, run.source, run.root) == ("run_dir", "mnist", str(root), root)
    assert run.status == "complete" and run.warnings == [] and run.n_epochs == 3
    assert run.values("loss") == [1.0, 0.5, 1 / 3]
    assert run.shadow == [{"callback": "EarlyStopping", "stopped_epoch": None}]
    info = run.checkpoints[1]
    assert isinstance(info, CheckpointInfo)
    assert (info.epoch, info.path, info.bytes) == (1, "checkpoints/epoch-002.keras", 18)
    assert checkpoint_path(run, 1) == root / "checkpoints/epoch-002.keras"
    assert load_csv(root / "metrics.csv").name == "mnist"


def test_run_dir_incomplete_warns(tmp_path):
    """A run being written (its writer holds the directory's lock) is incomplete; one
    whose run.json says running while no process holds the lock stopped unmarked."""
    import fcntl
    import os

    root = make_run(tmp_path / "r", n=2, status="running")
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as replay record / RecordCallback
        run = load_run_dir(root)
    finally:
        os.close(fd)
    assert run.status == "running"
    assert run.warnings == [
        f"{root}: the run is incomplete (status 'running', 2 epochs committed); results "
        "cover those epochs only, `replay record --resume` finishes it"
    ]
    assert load_run_dir(root).warnings == [
        f"{root}: the run is incomplete (status 'running', 2 epochs committed), and no "
        "process is writing it (it stopped without marking itself: Ctrl-C, a crash, kill "
        "-9); results cover those epochs only, `replay record --resume` finishes it"
    ]


def test_run_dir_metrics_ahead_of_manifest(tmp_path):
    # A crash between appending the metrics row and replacing run.json.
    root = make_run(tmp_path / "r", n=3, status="interrupted", manifest_epochs=2)
    run = load_run_dir(root)
    assert run.n_epochs == 3
    assert run.warnings[1] == (
        f"{root / 'run.json'}: no checkpoint entry for epoch 2 of metrics.csv; those epochs "
        "cannot be picked"
    )
    with pytest.raises(
        LogNotFound,
        match=r"no checkpoint recorded for epoch 2 \(recorded "
        r"epochs: 0-1\); pick a recorded epoch$",
    ):
        checkpoint_path(run, 2)


def test_run_dir_without_epochs_yet(tmp_path):
    root = make_run(tmp_path / "r", n=0, status="running")
    with pytest.raises(
        BadLog,
        match=r"metrics\.csv: has no epochs yet \(run status 'running'\); "
        r"nothing to replay, let the run commit an epoch or resume it$",
    ):
        load_run(root)
    (root / "metrics.csv").unlink()
    with pytest.raises(BadLog, match=r"metrics\.csv: missing \(run status 'running'\)"):
        load_run(root)


def test_checkpoint_verification(tmp_path):
    root = make_run(tmp_path / "r")
    run = load_run(root)
    ck = root / "checkpoints/epoch-001.keras"
    ck.write_bytes(b"weights of epoch X")  # same size, other bytes
    with pytest.raises(
        ChecksumMismatch,
        match=r"epoch-001\.keras: sha256 [0-9a-f]{12}\.\.\. "
        r"differs from run\.json's [0-9a-f]{12}\.\.\.; the checkpoint is damaged "
        r"or was replaced, restore it or re-record the run$",
    ):
        checkpoint_path(run, 0)
    assert checkpoint_path(run, 0, verify=False) == ck
    ck.write_bytes(b"short")
    with pytest.raises(
        ChecksumMismatch,
        match=r"epoch-001\.keras: 5 bytes but run\.json "
        r"records 18; ",
    ):
        checkpoint_path(run, 0)
    ck.unlink()
    with pytest.raises(
        LogNotFound,
        match=r"epoch-001\.keras: checkpoint of epoch 0 is "
        r"missing; restore it",
    ):
        checkpoint_path(run, 0)
    with pytest.raises(
        LogNotFound,
        match=r"no checkpoint recorded for epoch 9 \(recorded "
        r"epochs: 0-2\)",
    ):
        checkpoint_path(run, 9)


def test_checkpoints_not_included(tmp_path):
    root = make_run(tmp_path / "r", included=False)
    run = load_run(root)
    assert not run.checkpoints_included and set(run.checkpoints) == {0, 1, 2}
    with pytest.raises(
        LogNotFound,
        match=r"run\.json: says checkpoints_included: false "
        r"\(the run was copied without its checkpoints\), so epoch 1 has no "
        r"file; use the original run directory$",
    ):
        checkpoint_path(run, 1)


def test_checkpoint_of_a_csv_log(tmp_path):
    run = load_csv(write(tmp_path, "epoch,loss\n0,1\n"))
    with pytest.raises(
        LogNotFound,
        match=r"a csv log has no checkpoints; record the run "
        r"with `replay record` to keep one per epoch$",
    ):
        checkpoint_path(run, 0)


ESCAPES = [
    ("dotdot", "../outside.keras", "goes up with '..'"),
    ("dotdot-inner", "checkpoints/../../outside.keras", "goes up with '..'"),
    ("absolute", "/etc/passwd", "is an absolute path"),
    ("drive", "C:/x.keras", "is an absolute path"),
    ("backslash", "..\\outside.keras", "is not a plain relative path"),
    ("empty", "", "is not a plain relative path"),
    ("nul", "a\x00b", "is not a plain relative path"),
]


@pytest.mark.parametrize("rel,what", [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES])
def test_escaping_checkpoint_refused_at_load(tmp_path, rel, what):
    root = make_run(tmp_path / "r", paths={1: rel})
    with pytest.raises(UnsafePath) as info:
        load_run(root)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{root / 'run.json'}: epochs[1].checkpoint ")
    assert msg.endswith(
        f" {what}; checkpoint paths must stay inside the run directory; refusing to use it"
    )


def test_symlink_escape_refused(tmp_path):
    outside = tmp_path / "outside.keras"
    outside.write_bytes(b"weights of epoch 1")
    root = tmp_path / "r"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints/epoch-002.keras").symlink_to(outside)
    make_run(root)
    with pytest.raises(
        UnsafePath,
        match=r"epochs\[1\]\.checkpoint 'checkpoints/epoch-002\.keras' "
        r"leads outside the run directory \(to .*outside\.keras\); ",
    ):
        load_run(root)


def test_symlinked_folder_escape_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "r"
    root.mkdir()
    (root / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    make_run(root)
    with pytest.raises(UnsafePath, match="leads outside the run directory"):
        load_run(root)


def test_symlink_inside_is_fine(tmp_path):
    root = make_run(tmp_path / "r")
    ck = root / "checkpoints/epoch-001.keras"
    (root / "link.keras").symlink_to(ck)
    manifest = json.loads((root / "run.json").read_text())
    manifest["epochs"][0]["checkpoint"] = "link.keras"
    (root / "run.json").write_text(json.dumps(manifest))
    assert checkpoint_path(load_run(root), 0) == root / "link.keras"


def test_escape_via_symlink_created_after_load(tmp_path):
    root = make_run(tmp_path / "r")
    run = load_run(root)
    ck = root / "checkpoints/epoch-001.keras"
    ck.unlink()
    (tmp_path / "evil").write_bytes(b"weights of epoch 0")
    ck.symlink_to(tmp_path / "evil")
    with pytest.raises(UnsafePath, match="leads outside the run directory"):
        checkpoint_path(run, 0)


MANIFESTS = [
    (
        "truncated-json",
        b'{"status": "complete",',
        BadManifest,
        r"run\.json: not valid JSON \(Expecting property name enclosed in double quotes at line 1, "
        r"column 23\); restore run\.json or re-record the run",
    ),
    (
        "not-json",
        b"status: complete\n",
        BadManifest,
        r"run\.json: not valid JSON \(Expecting value at line 1, column 1\); restore run\.json or "
        r"re-record the run",
    ),
    (
        "empty",
        b"",
        BadManifest,
        r"run\.json: not valid JSON \(Expecting value at line 1, "
        r"column 1\); .*",
    ),
    (
        "not-utf8",
        b'{"status": "\xff"}',
        BadManifest,
        r"run\.json: not UTF-8 text \(byte 0xff at offset 12\); restore run\.json or re-record "
        r"the run",
    ),
    (
        "deep",
        b"[" * 100_000,
        BadManifest,
        r"run\.json: not valid JSON \(RecursionError: .*\); "
        r"restore run\.json or re-record the run",
    ),
    (
        "list",
        b"[]",
        BadManifest,
        r"run\.json: the top level must be a JSON object, got \[\]; "
        r"restore run\.json or re-record the run",
    ),
    ("status", b'{"status": 3}', BadManifest, r"run\.json: status must be a string, got 3; .*"),
    (
        "included",
        b'{"checkpoints_included": "no"}',
        BadManifest,
        r"run\.json: checkpoints_included must be true or false, got 'no'; .*",
    ),
    (
        "shadow",
        b'{"shadow": {}}',
        BadManifest,
        r"run\.json: shadow must be a list of objects, "
        r"got \{\}; .*",
    ),
    ("epochs", b'{"epochs": {}}', BadManifest, r"run\.json: epochs must be a list, got \{\}; .*"),
    (
        "epoch-entry",
        b'{"epochs": [3]}',
        BadManifest,
        r"run\.json: epochs\[0\] must be an "
        r"object, got 3; .*",
    ),
    (
        "epoch-number",
        b'{"epochs": [{"epoch": -1}]}',
        BadManifest,
        r"run\.json: epochs\[0\]\.epoch must be a 0-based epoch number, got -1; .*",
    ),
    (
        "epoch-bool",
        b'{"epochs": [{"epoch": true}]}',
        BadManifest,
        r"run\.json: epochs\[0\]\.epoch must be a 0-based epoch number, got True; .*",
    ),
    (
        "epoch-twice",
        b'{"epochs": [{"epoch": 0}, {"epoch": 0}]}',
        BadManifest,
        r"run\.json: epoch 0 is listed twice in 'epochs'; restore run\.json or re-record the run",
    ),
    (
        "checkpoint-type",
        b'{"epochs": [{"epoch": 0, "checkpoint": 5}]}',
        BadManifest,
        r"run\.json: epochs\[0\]\.checkpoint must be a path string or null, got 5; .*",
    ),
    (
        "sha",
        b'{"epochs": [{"epoch": 0, "sha256": "abc"}]}',
        BadManifest,
        r"run\.json: epochs\[0\]\.sha256 must be 64 lower-case hex digits or null, got 'abc'; .*",
    ),
    (
        "bytes",
        b'{"epochs": [{"epoch": 0, "bytes": -5}]}',
        BadManifest,
        r"run\.json: epochs\[0\]\.bytes must be a byte count or null, got -5; .*",
    ),
]


@pytest.mark.parametrize(
    "content,exc,pattern", [m[1:] for m in MANIFESTS], ids=[m[0] for m in MANIFESTS]
)
def test_bad_manifest(tmp_path, content, exc, pattern):
    root = make_run(tmp_path / "r")
    (root / "run.json").write_bytes(content)
    with pytest.raises(exc) as info:
        load_run(root)
    msg = str(info.value)
    assert "\n" not in msg
    assert re.fullmatch(re.escape(str(root)) + "/" + pattern, msg), msg
    assert isinstance(info.value, ReplayError)


def test_manifest_without_epochs_or_status(tmp_path):
    root = make_run(tmp_path / "r")
    (root / "run.json").write_text("{}")
    run = load_run(root)
    assert run.status == "unknown" and run.checkpoints == {}
    assert run.warnings[0].startswith(f"{root}: the run is incomplete (status 'unknown'")


# --------------------------------------------------------------------------- dispatch


def test_load_run_missing_path(tmp_path):
    with pytest.raises(LogNotFound) as info:
        load_run(tmp_path / "nothing")
    assert str(info.value) == (
        f"{tmp_path / 'nothing'}: no such file or directory; pass {expected_layouts()}"
    )
    assert expected_layouts().startswith("a run directory written by `replay record`, ")


def test_load_run_unrecognized_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(LogNotFound) as info:
        load_run(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: no recognizable log in this folder; pass {expected_layouts()}"
    )


def test_load_run_metrics_csv_without_manifest(tmp_path):
    root = make_run(tmp_path / "r")
    (root / "run.json").unlink()
    run = load_run(root)
    assert (run.format, run.name, run.manifest, run.root) == ("csv", "r", None, None)
    assert run.warnings == [
        f"{root}: has metrics.csv but no run.json; read it as a plain CSV log (no checkpoints, "
        "no status)"
    ]


def test_load_run_dir_requires_manifest(tmp_path):
    with pytest.raises(
        LogNotFound,
        match=r": no run\.json; a run directory from `replay "
        r"record` has run\.json and metrics\.csv$",
    ):
        load_run_dir(tmp_path)
    with pytest.raises(LogNotFound, match="is a file, not a run directory"):
        load_run_dir(write(tmp_path, "epoch,loss\n0,1\n"))


def test_paths_accept_str_and_pathlike(tmp_path):
    p = write(tmp_path, "epoch,loss\n0,1\n")
    assert load_run(str(p)).source == str(p)
    assert load_run(p).source == str(p)
    rel = os.path.relpath(p)
    assert load_run(rel).source == rel


def test_run_json_file_means_its_run_dir(tmp_path):
    root = make_run(tmp_path / "r")
    assert load_run(root / "run.json").format == "run_dir"


# --------------------------------------------------------------------------- robustness smoke
# (the full fuzzing lives with the reliability work; this keeps the contract in view)

SEED_CSV = (DATA / "keras_fit/log.csv").read_bytes()


@st.composite
def damaged_csv(draw) -> bytes:
    data = bytearray(SEED_CSV)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            data = data[:i]
        elif op == "insert":
            data[i:i] = draw(
                st.sampled_from(
                    [b"1e400", b"NA", b",", b";", b"\n", b'"', b"\x00", b"\xff", b"nan", b"-"]
                )
            )
        else:
            del data[i : i + draw(st.integers(1, 10))]
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.one_of(damaged_csv(), st.binary(max_size=200)))
def test_any_csv_bytes_give_a_runlog_or_a_replay_error(content):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "log.csv"
        p.write_bytes(content)
        try:
            run = load_csv(p)
        except ReplayError as e:
            assert "\n" not in str(e)
        else:
            check_schema(run)
            assert run.n_epochs > 0
