"""The run-directory module (analysis/reading/rundir.py) and the pure resume plan
(replay/recording/resume.py).

Fast and without TensorFlow: tables of manifests, of crash states of the commit order,
and of files on disk. The recorder that applies a plan is exercised in test_record.py
and test_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.errors import (
    BadLog,
    BadManifest,
    ChecksumMismatch,
    LogNotFound,
    ReplayError,
    UnsafePath,
)
from analysis.reading.rundir import (
    OPTIONAL_FIELDS,
    CheckpointInfo,
    CheckpointMismatch,
    atomic_write,
    checkpoint_epoch,
    checkpoint_name,
    checkpoint_relpath,
    has_writer,
    read_manifest,
    sha256_file,
    temporary_path,
    validate_manifest,
    verify_checkpoint,
    write_manifest,
)
from replay.recording.resume import ResumePlan, plan_resume

ROOT = Path(__file__).resolve().parent.parent
SHA = "ab" * 32


def entry(epoch: int, **fields) -> dict:
    return {"epoch": epoch, "checkpoint": checkpoint_relpath(epoch), "sha256": SHA,
            "bytes": 10, "seconds": 1.0, **fields}  # fmt: skip


def resumable(n: int = 2, **fields) -> dict:
    """A manifest as `replay record` writes it, with `n` committed epochs."""
    return {"schema_version": 1, "name": "run", "status": "interrupted", "config": {"epochs": 3},
            "data": {"origin": "keras-cache"}, "checkpoints_included": True,
            "epochs": [entry(e) for e in range(n)], "shadow": [], **fields}  # fmt: skip


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("epoch", "name"), [(0, "epoch-001.keras"), (8, "epoch-009.keras"), (999, "epoch-1000.keras")]
)
def test_checkpoint_names_round_trip(epoch, name):
    assert checkpoint_name(epoch) == name
    assert checkpoint_relpath(epoch) == f"checkpoints/{name}"
    assert checkpoint_epoch(name) == epoch


@pytest.mark.parametrize(
    "name", [".tmp-epoch-001.keras", "epoch-001.h5", "epoch-abc.keras", "notes.txt", "epoch-.keras"]
)
def test_other_names_are_not_checkpoints(name):
    assert checkpoint_epoch(name) is None


# ---------------------------------------------------------------- the one validator


@pytest.mark.parametrize(
    "manifest",
    [{}, {"status": None}, {"epochs": []}, {"data": [1, 2], "config": 7},
     {"epochs": [{"epoch": 4, "checkpoint": "elsewhere/x.keras"}]},
     {"epochs": [{"epoch": 0, "checkpoint": None, "sha256": None, "bytes": None}]},
     {"shadow": [{"callback": "EarlyStopping", "params": None, "stopped_epoch": None}]},
     {"checkpoints_included": False}],
    ids=repr,
)  # fmt: skip
def test_readers_accept_what_they_do_not_need(tmp_path, manifest):
    assert validate_manifest(manifest, tmp_path) is manifest


READER_REFUSALS = [
    # (manifest, exception, message after "<root>/run.json: ")
    ([], BadManifest, "the top level must be a JSON object, got []; "),
    ({"status": 3}, BadManifest, "status must be a string, got 3; "),
    ({"checkpoints_included": None}, BadManifest, "checkpoints_included must be true or false"),
    ({"shadow": [{"reductions": 5}]}, BadManifest, "shadow[0].reductions must be a list of "),
    ({"epochs": [{"epoch": 0}, {"epoch": 0}]}, BadManifest, "epoch 0 is listed twice"),
    ({"epochs": [{"epoch": 0, "sha256": "AB" * 32}]}, BadManifest, "epochs[0].sha256 must be 64"),
    ({"epochs": [{"epoch": 0, "checkpoint": "../x"}]}, UnsafePath,
     "epochs[0].checkpoint '../x' goes up with '..'; "),
]  # fmt: skip


@pytest.mark.parametrize(("manifest", "exc", "message"), READER_REFUSALS,
                         ids=[r[2][:30] for r in READER_REFUSALS])  # fmt: skip
def test_readers_refuse_malformed_fields(tmp_path, manifest, exc, message):
    with pytest.raises(exc) as info:
        validate_manifest(manifest, tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'run.json'}: {message}")
    assert "\n" not in str(info.value)


RESUME_REFUSALS = [
    # (change to a resumable manifest, a reader accepts it, exception, message after
    # "<root>/run.json: ")
    ({"schema_version": 2}, True, BadManifest, "not a schema_version 1 run.json"),
    ({"schema_version": None}, True, BadManifest, "not a schema_version 1 run.json"),
    ({"config": None}, True, BadManifest, "missing or malformed 'config'"),
    ({"data": "x"}, True, BadManifest, "missing or malformed 'data'"),
    ({"epochs": None}, True, BadManifest, "missing or malformed 'epochs'"),
    ({"checkpoints_included": False}, True, BadManifest,
     "this run was published without checkpoints; it cannot be resumed"),
    ({"epochs": [entry(0), entry(2)]}, True, BadManifest,
     "epochs[1].epoch must be 1 (epochs in order from 0), got 2; "),
    ({"epochs": [entry(0, checkpoint="checkpoints/best.keras")]}, True, UnsafePath,
     "epochs[0] names 'checkpoints/best.keras', expected 'checkpoints/epoch-001.keras'"),
    # the readers' checks hold for resume too
    ({"status": 3}, False, BadManifest, "status must be a string, got 3; "),
    ({"epochs": [entry(0, bytes=-1)]}, False, BadManifest,
     "epochs[0].bytes must be a byte count"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "reader_accepts", "exc", "message"), RESUME_REFUSALS,
                         ids=[r[3][:30] for r in RESUME_REFUSALS])  # fmt: skip
def test_resume_needs_more_than_a_reader(tmp_path, change, reader_accepts, exc, message):
    manifest = resumable(**change)
    if reader_accepts:
        assert validate_manifest(manifest, tmp_path) is manifest
    with pytest.raises(exc) as info:
        validate_manifest(manifest, tmp_path, resume=True)
    assert str(info.value).startswith(f"{tmp_path / 'run.json'}: {message}")


def test_a_resumable_manifest_passes_both_levels(tmp_path):
    manifest = resumable(3)
    assert validate_manifest(manifest, tmp_path, resume=True) is manifest
    assert validate_manifest(manifest, tmp_path) is manifest


def test_optional_fields_are_checked_only_when_present(tmp_path):
    for key, (valid, what) in OPTIONAL_FIELDS.items():
        validate_manifest({k: v for k, v in resumable().items() if k != key}, tmp_path)
        assert not valid(12345.5)
        with pytest.raises(BadManifest, match=re.escape(f"{key} must be {what}, got 12345.5")):
            validate_manifest({**resumable(), key: 12345.5}, tmp_path)


@pytest.mark.parametrize("run", sorted((ROOT / "sample_logs").glob("*/run.json")), ids=str)
def test_the_writers_manifests_pass_the_readers_validation(run):
    manifest = read_manifest(run.parent)
    assert manifest["epochs"] and manifest["checkpoints_included"] is False
    with pytest.raises(BadManifest, match="published without checkpoints; it cannot be resumed"):
        read_manifest(run.parent, resume=True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"", r"not valid JSON \(Expecting value at line 1, column 1\); "),
     (b"\xef\xbb\xbf{}", None),  # a BOM is fine
     (b'{"a": "\xff"}', r"not UTF-8 text \(byte 0xff at offset 7\); ")],
)  # fmt: skip
def test_read_manifest_reports_undecodable_files(tmp_path, raw, message):
    (tmp_path / "run.json").write_bytes(raw)
    if message is None:
        assert read_manifest(tmp_path) == {}
        return
    with pytest.raises(BadManifest, match="^" + re.escape(f"{tmp_path}/run.json: ") + message):
        read_manifest(tmp_path)


# ---------------------------------------------------------------- checkpoints


def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3 << 20)  # more than one read block
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def _checkpoint(tmp_path: Path, data: bytes = b"weights of epoch 0") -> tuple[Path, str]:
    path = tmp_path / "epoch-001.keras"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_verify_checkpoint_accepts_the_recorded_file(tmp_path):
    path, sha = _checkpoint(tmp_path)
    verify_checkpoint(path, sha, 18, epoch=0)
    verify_checkpoint(path, sha, None, epoch=0)  # size not recorded: sha256 alone decides


@pytest.mark.parametrize(
    ("sha", "size", "message"),
    [("0" * 64, 18, r": sha256 [0-9a-f]{12}\.\.\. differs from run\.json's 000000000000\.\.\.; "
                    r"the checkpoint is damaged or was replaced, restore it or re-record the run$"),
     (None, 5, r": 18 bytes but run\.json records 5; the checkpoint is damaged"),
     (None, None, r": run\.json records no sha256 for epoch 0, so it cannot be verified; ")],
)  # fmt: skip
def test_verify_checkpoint_refuses_a_different_file(tmp_path, sha, size, message):
    path, actual = _checkpoint(tmp_path)
    with pytest.raises(CheckpointMismatch, match=re.escape(str(path)) + message) as info:
        verify_checkpoint(path, sha, size, epoch=0)
    e = info.value
    assert isinstance(e, ChecksumMismatch)
    assert (e.path, e.sha256, e.bytes, e.expected_sha256, e.expected_bytes) == (
        path,
        actual,
        18,
        sha,
        size,
    )


def test_verify_checkpoint_of_a_missing_file(tmp_path):
    with pytest.raises(LogNotFound, match=r"epoch-004\.keras: checkpoint of epoch 3 is missing; "):
        verify_checkpoint(tmp_path / "epoch-004.keras", SHA, 10, epoch=3)


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("data", ["text, é\n", b"\x00bytes\xff"])
def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path, data):
    path = tmp_path / "results.json"
    path.write_text("old")
    atomic_write(path, data)
    expected = data.encode() if isinstance(data, str) else data
    assert path.read_bytes() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_atomic_write_gives_a_new_file_the_umask_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "results.csv", "a,b\n")
    finally:
        os.umask(umask)
    assert (tmp_path / "results.csv").stat().st_mode & 0o777 == 0o644


def test_a_failed_atomic_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_text("old")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, "new")
    assert path.read_text() == "old"
    assert not temporary_path(path).exists() and temporary_path(path).name == ".run.json.tmp"


def test_write_manifest_writes_what_read_manifest_reads(tmp_path):
    manifest = resumable(2)
    write_manifest(tmp_path, manifest)
    text = (tmp_path / "run.json").read_text()
    assert text.endswith("}\n") and text == json.dumps(manifest, indent=2) + "\n"
    assert read_manifest(tmp_path, resume=True) == manifest
    with pytest.raises(ValueError):
        write_manifest(tmp_path, {**manifest, "updated": float("nan")})
    assert read_manifest(tmp_path) == manifest


# ---------------------------------------------------------------- plan_resume


def rows(n: int) -> list[dict]:
    return [{"epoch": e, "epoch_seconds": 1.0} for e in range(n)]


def last(n: int) -> CheckpointInfo:
    return CheckpointInfo(n - 1, checkpoint_relpath(n - 1), SHA, 10)


def files(*epochs: int, extra: tuple[str, ...] = ()) -> list[str]:
    return [checkpoint_name(e) for e in epochs] + list(extra)


PLANS = [
    # (state of the run directory, manifest epochs, metrics.csv rows, checkpoint files, plan)
    ("killed before metrics.csv was written", 0, None, [],
     ResumePlan(0, write_header=True)),
    ("killed in the first epoch's fit", 0, rows(0), [],
     ResumePlan(0)),
    ("killed with the first checkpoint half written", 0, rows(0), [".tmp-epoch-001.keras"],
     ResumePlan(0, discard=(".tmp-epoch-001.keras",))),
    ("interrupted between epochs", 2, rows(2), files(0, 1),
     ResumePlan(2, load="checkpoints/epoch-002.keras", verify=last(2))),
    ("killed after the checkpoint rename, before the row", 2, rows(2), files(0, 1, 2),
     ResumePlan(2, load="checkpoints/epoch-002.keras", verify=last(2),
                discard=("epoch-003.keras",))),
    ("killed after the row, before run.json", 2, rows(3), files(0, 1, 2),
     ResumePlan(3, load="checkpoints/epoch-003.keras", adopt=2)),
    ("killed after the first row, before run.json", 0, rows(1), files(0),
     ResumePlan(1, load="checkpoints/epoch-001.keras", adopt=0)),
    ("leftovers of several crashes", 1, rows(1),
     files(0, 1, 5, extra=(".tmp-epoch-002.keras", ".tmp-x", "notes.txt", "epoch-x.keras")),
     ResumePlan(1, load="checkpoints/epoch-001.keras", verify=last(1),
                discard=(".tmp-epoch-002.keras", ".tmp-x", "epoch-002.keras", "epoch-006.keras"))),
    ("a complete run given more epochs", 3, rows(3), files(0, 1, 2),
     ResumePlan(3, load="checkpoints/epoch-003.keras", verify=last(3))),
]  # fmt: skip


@pytest.mark.parametrize(("entries", "csv_rows", "names", "plan"), [p[1:] for p in PLANS],
                         ids=[p[0] for p in PLANS])  # fmt: skip
def test_plan_resume(entries, csv_rows, names, plan):
    manifest = resumable(entries)
    assert plan_resume(manifest, csv_rows, names) == plan
    assert plan.committed == len(csv_rows or [])
    assert manifest == resumable(entries)  # the plan changes nothing


REFUSED = [
    # (manifest epochs, metrics.csv rows, checkpoint files, exception, message)
    (2, None, files(0, 1), BadLog, "run/metrics.csv: missing, so the committed epochs are unknown"),
    (3, rows(2), files(0, 1, 2), BadManifest,
     "run: run.json lists 3 epochs but metrics.csv has 2 rows"),
    (1, rows(3), files(0, 1, 2), BadManifest,
     "run: run.json lists 1 epochs but metrics.csv has 3 rows"),
    (2, rows(3), files(0, 1), LogNotFound,
     "run/checkpoints/epoch-003.keras: checkpoint of committed epoch 2 is missing"),
]  # fmt: skip


@pytest.mark.parametrize(("entries", "csv_rows", "names", "exc", "message"), REFUSED,
                         ids=[r[4][:40] for r in REFUSED])  # fmt: skip
def test_plan_resume_refuses_an_inconsistent_run(entries, csv_rows, names, exc, message):
    with pytest.raises(exc) as info:
        plan_resume(resumable(entries), csv_rows, names, root=Path("run"))
    assert str(info.value) == message


def test_the_plan_and_the_format_need_neither_tensorflow_nor_pandas():
    code = (
        "import sys, analysis.reading.rundir, replay.recording.resume; "
        "sys.exit(sorted({'tensorflow', 'keras', 'pandas'} & set(sys.modules)) != [])"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_analysis_rundir_does_not_import_replay():
    code = (
        "import sys, analysis.reading.rundir; "
        "sys.exit(any(m.startswith('replay') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ---------------------------------------------------------------- the write lock and its probe

_PROBE = """
import sys, time
from pathlib import Path
from analysis.reading.rundir import has_writer
root, end, n = Path(sys.argv[1]), time.monotonic() + float(sys.argv[2]), 0
print("ready", flush=True)
while time.monotonic() < end:
    has_writer(root)
    n += 1
print(n)
"""


def test_a_readers_probe_never_makes_a_writer_fail(tmp_path):
    """Another process probes (has_writer: a shared lock for an instant) as fast as it
    can while this one takes and drops the write lock thousands of times: no take fails
    (before the fix, about 3% did: 'being written by another replay record process')."""
    from replay.recording.run_writer import lock_dir

    probe = subprocess.Popen([sys.executable, "-c", _PROBE, str(tmp_path), "2.5"],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert probe.stdout.readline().strip() == "ready"
    failed = taken = 0
    while probe.poll() is None and taken < 20_000:
        try:
            os.close(lock_dir(tmp_path))
        except ReplayError:
            failed += 1
        taken += 1
    probes = int(probe.communicate()[0])
    assert probes > 1000 and taken > 1000, (probes, taken)  # they did overlap
    assert failed == 0, f"{failed} of {taken} writers failed against {probes} probes"


def test_a_writer_waits_out_a_shared_lock_but_not_another_writer(tmp_path):
    import fcntl
    import threading
    import time

    from replay.recording.run_writer import (
        RunExists,
        lock_dir,
    )

    held = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_SH)  # a probe caught between its lock and its close
    threading.Timer(0.2, os.close, [held]).start()
    began = time.monotonic()
    fd = lock_dir(tmp_path)
    assert 0.15 < time.monotonic() - began < 3
    began = time.monotonic()
    with pytest.raises(RunExists, match="is being written by another replay record process"):
        lock_dir(tmp_path)  # a writer holds it: refused at once
    assert time.monotonic() - began < 0.5
    os.close(fd)
    assert not has_writer(tmp_path)
    os.close(lock_dir(tmp_path))
