"""`replay record`: the run directory, determinism, interruption, resume, refusals.

Training tests share one tiny recorded run (``--limit 2000 --epochs 3``, module
scope) and compare everything else against it. Its plateau setting
(``min_delta=0.5``) makes the real ReduceLROnPlateau cut the rate during the run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from analysis.reading.rundir import checkpoint_name
from replay.commands import record as record_cmd
from replay.mnist.config import parse_plateau
from replay.mnist.data import sha256_file
from replay.mnist.record import Hooks
from replay.recording.faults import BadConfig
from replay.recording.run_writer import (
    COLUMNS,
    HEADER,
    PLATEAU_DEFAULTS,
    read_rows,
)

ROOT = Path(__file__).resolve().parent.parent
PLATEAU = "factor=0.5,patience=1,min_delta=0.5"
TINY = ["--limit", "2000", "--epochs", "3", "--quiet", "--reduce-lr-on-plateau", PLATEAU]


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(record_cmd.record, [str(a) for a in args], env=env)


def values(run: Path) -> list[list[float]]:
    """metrics.csv rows without epoch_seconds (the one column that is wall time)."""
    return [[row[c] for c in COLUMNS[:-1]] for row in read_rows(run / "metrics.csv")]


def manifest(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("record") / "tiny"
    result = invoke("--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return out


# ---------------------------------------------------------------- no training


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("factor=2", "--reduce-lr-on-plateau: factor must be in (0, 1) but got 2.0"),
        ("factor=0", "--reduce-lr-on-plateau: factor must be in (0, 1) but got 0.0"),
        ("patience=-1", "--reduce-lr-on-plateau: patience cannot be negative but got -1"),
        ("patience=1.5", "--reduce-lr-on-plateau: patience must be an integer but got '1.5'"),
        ("min_lr=nan", "--reduce-lr-on-plateau: min_lr must be finite but got 'nan'"),
        ("min_delta=x", "--reduce-lr-on-plateau: min_delta must be a number but got 'x'"),
        (
            "monitor=val_los",
            "--reduce-lr-on-plateau: monitor must be one of loss, accuracy, "
            "val_loss, val_accuracy, test_loss, test_accuracy but got 'val_los'",
        ),
        ("mode=up", "--reduce-lr-on-plateau: mode must be auto, min or max but got 'up'"),
        (
            "verbose=1",
            "--reduce-lr-on-plateau: unknown key 'verbose' (known: monitor, factor, "
            "patience, mode, min_delta, cooldown, min_lr)",
        ),
        ("factor", "--reduce-lr-on-plateau: expected KEY=VALUE but got 'factor'"),
        ("factor=0.5,factor=0.2", "--reduce-lr-on-plateau: key 'factor' given twice"),
        ("", "--reduce-lr-on-plateau: no settings given (e.g. factor=0.5,patience=2)"),
    ],
)
def test_bad_plateau_spec_is_one_line_error_and_writes_nothing(tmp_path, spec, message):
    out = tmp_path / "run"
    result = invoke("--out", out, "--reduce-lr-on-plateau", spec)
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert not out.exists()


def test_parse_plateau_fills_keras_defaults():
    params = parse_plateau("factor=0.5, patience=2")
    assert params == {**PLATEAU_DEFAULTS, "factor": 0.5, "patience": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit must be in 1..50000 but got 0"),
        (["--epochs", "0"], "--epochs must be at least 1 but got 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1 but got 0"),
        (["--learning-rate", "-1"], "--learning-rate must be positive but got -1.0"),
        (["--seed", "-1"], "--seed must be in 0..2**32-1 but got -1"),
        (["--resume"], "--resume needs --out RUN, the run directory to continue"),
    ],
)
def test_bad_options_are_refused(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_existing_run_is_refused_without_force_and_left_untouched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    (out / "metrics.csv").write_text("precious")
    result = invoke("--out", out, "--limit", "10", "--epochs", "1")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {out} already holds a run; pass --force to overwrite it, "
        "or --resume to continue it\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "run.json"]
    assert (out / "metrics.csv").read_text() == "precious"


def test_force_refuses_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke("--out", tmp_path, "--force", "--limit", "10", "--epochs", "1")
    assert result.exit_code == 1
    assert "holds no run.json; refusing to overwrite it even with --force" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("out", "force", "message"),
    [
        ("file/run", False, "{out}: {tmp}/file is not a directory"),  # was a traceback
        (
            "full",
            False,
            "{out} is not empty and holds no run.json; record into an empty or new directory",
        ),  # said "already holds a run; pass --force", which --force then refused
        ("file/run", True, "{out}: {tmp}/file is not a directory"),
    ],
)
def test_an_out_that_cannot_hold_a_run_is_refused_in_one_line(tmp_path, out, force, message):
    """replay record and RecordCallback share one check of --out (replay.recording.run_dir_check);
    each keeps its own words. A path under a file gave a NotADirectoryError traceback (a
    file itself is refused by click's option type)."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    out = tmp_path / out
    result = invoke("--out", out, *(["--force"] if force else []), "--limit", "10", "--epochs", "1")
    assert (result.exit_code, result.output) == (
        1,
        "Error: " + message.format(out=out, tmp=tmp_path) + "\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full"]
    assert (tmp_path / "file").read_text() == "x"
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def test_the_three_recorders_share_one_out_check(tmp_path):
    """replay record (with and without --force), --seeds' folder and RecordCallback
    refuse through replay.recording.run_dir_check.check_out, each with its own rules."""
    from replay import keras as replay_keras
    from replay.mnist import record, seeds
    from replay.recording.run_dir_check import check_out
    from replay.recording.run_writer import RunExists

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    rules = {
        "record": record.OUT_RULES,
        "record --force": record.OUT_RULES_FORCE,
        "callback": replay_keras.OUT_RULES,
    }
    refused = {}
    for name, rule in rules.items():
        for out in (run, other, tmp_path / "new"):
            try:
                check_out(out, rule)
            except RunExists as e:
                refused[name, out.name] = str(e).replace(str(tmp_path), "T")
    assert refused == {
        ("record", "run"): "T/run already holds a run; pass --force to overwrite it, or "
        "--resume to continue it",
        ("record", "other"): "T/other is not empty and holds no run.json; record into an "
        "empty or new directory",
        ("record --force", "other"): "T/other is not empty and holds no run.json; refusing to "
        "overwrite it even with --force",
        ("callback", "other"): "T/other is not empty and holds no run.json; record into an "
        "empty or new directory",
    }
    with pytest.raises(RunExists, match="holds a single run"):
        seeds.check_folder(run, force=True, resume=False)
    seeds.check_folder(other, force=True, resume=False)  # a folder of seeds: taken


def test_bad_data_is_refused_and_writes_nothing(tmp_path):
    bogus = tmp_path / "mnist.npz"
    bogus.write_bytes(b"not a zip file")
    out = tmp_path / "run"
    result = invoke("--out", out, "--data", bogus, "--limit", "10", "--epochs", "1")
    assert result.exit_code == 1
    assert result.output == (f"Error: {bogus}: neither a Keras mnist.npz nor a gzipped mnist.pkl\n")
    assert not out.exists()
    missing = tmp_path / "nope.npz"
    result = invoke("--out", out, "--data", missing)
    assert (result.exit_code, result.output) == (1, f"Error: {missing}: no such file\n")
    assert not out.exists()


def test_resume_of_a_missing_run_is_refused(tmp_path):
    result = invoke("--out", tmp_path / "none", "--resume")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path / 'none'}: no run.json here, so there is no run to resume\n"
    )


def test_importing_the_command_does_not_import_tensorflow():
    code = (
        "import sys, replay.commands.record, replay.mnist.record, replay.mnist.data; "
        "sys.exit(any(m in sys.modules for m in ('tensorflow', 'keras')))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize(
    ("spec", "rules"),
    [
        ("", ()),
        ("after_manifest@1:pause", (("after_manifest", 1, "pause"),)),
        (
            "in_fit:interrupt; after_checkpoint_tmp@0:kill",
            (("in_fit", None, "interrupt"), ("after_checkpoint_tmp", 0, "kill")),
        ),
    ],
)
def test_hook_spec_parses(spec, rules):
    assert Hooks.from_env({"REPLAY_TEST_HOOK": spec}).rules == rules


@pytest.mark.parametrize("spec", ["nowhere:kill", "in_fit:explode", "in_fit@x:kill", "in_fit"])
def test_bad_hook_spec_is_refused(spec):
    with pytest.raises(BadConfig, match="REPLAY_TEST_HOOK"):
        Hooks.from_env({"REPLAY_TEST_HOOK": spec})


def test_read_rows_ignores_or_cuts_a_partial_trailing_line(tmp_path):
    path = tmp_path / "metrics.csv"
    full = "0," + ",".join(["0.5"] * (len(COLUMNS) - 1)) + "\n"
    path.write_text(HEADER + full + "1,0.25,0.")
    assert len(read_rows(path)) == 1
    assert path.read_text().endswith("0.")
    read_rows(path, repair=True)
    assert path.read_text() == HEADER + full


# ---------------------------------------------------------------- the tiny run


@pytest.mark.slow
def test_every_file_is_there_and_the_manifest_matches_them(tiny):
    assert sorted(p.name for p in tiny.iterdir()) == [
        "checkpoints",
        "metrics.csv",
        "run.json",
        "tensorboard",
    ]
    m = manifest(tiny)
    assert m["schema_version"] == 1 and m["status"] == "complete" and m["name"] == "tiny"
    assert m["config"]["limit"] == 2000 and m["config"]["epochs"] == 3
    assert m["data"]["split"] == {"train": 50000, "validation": 10000, "test": 10000}
    assert m["data"]["train_used"] == 2000 and len(m["data"]["sha256"]) == 64
    assert set(m["versions"]) == {"python", "tensorflow", "keras", "numpy", "callback-replay"}
    assert m["command"][:2] == ["replay", "record"] and m["checkpoints_included"] is True
    assert [e["epoch"] for e in m["epochs"]] == [0, 1, 2]
    assert sorted(p.name for p in (tiny / "checkpoints").iterdir()) == [
        checkpoint_name(e) for e in range(3)
    ]
    for entry in m["epochs"]:
        path = tiny / entry["checkpoint"]
        assert sha256_file(path) == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]
        assert entry["seconds"] > 0
    for split in ("train", "validation", "test"):
        assert list((tiny / "tensorboard" / split).glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_metrics_csv_layout(tiny):
    lines = (tiny / "metrics.csv").read_text().splitlines()
    assert lines[0] == (
        "epoch,loss,accuracy,val_loss,val_accuracy,test_loss,test_accuracy,"
        "learning_rate,epoch_seconds"
    )
    assert len(lines) == 4
    rows = read_rows(tiny / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for row, line in zip(rows, lines[1:], strict=True):
        assert line.split(",")[1:] == [repr(row[c]) for c in COLUMNS[1:]]  # full precision
        assert all(np.float32(row[c]) == row[c] for c in COLUMNS[1:-1])  # float32 values
        assert 0 < row["accuracy"] <= 1 and row["epoch_seconds"] > 0


def _scalars(directory: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    found: dict[str, dict[int, float]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    scalar = float(tensor_util.make_ndarray(value.tensor))
                    found.setdefault(value.tag, {})[event.step] = scalar
    return found


@pytest.mark.slow
def test_tensorboard_scalars_equal_the_csv(tiny):
    rows = read_rows(tiny / "metrics.csv")
    board = tiny / "tensorboard"
    for split, prefix in (("train", ""), ("validation", "val_"), ("test", "test_")):
        scalars = _scalars(board / split)
        expected = {
            "epoch_loss": {r["epoch"]: r[prefix + "loss"] for r in rows},
            "epoch_accuracy": {r["epoch"]: r[prefix + "accuracy"] for r in rows},
        }
        if split == "train":
            expected["epoch_learning_rate"] = {r["epoch"]: r["learning_rate"] for r in rows}
        assert scalars == expected
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = {
        v.tag
        for p in (board / "train").glob("events.*")
        for e in EventFileLoader(str(p)).Load()
        for v in e.summary.value
    }
    assert "dense_1/kernel/histogram" in tags and "digits/bias/histogram" in tags


@pytest.mark.slow
def test_shadow_callbacks_agree_with_the_replay(tiny):
    from replay.engine.policies import early_stopping

    rows = read_rows(tiny / "metrics.csv")
    shadows = [s for s in manifest(tiny)["shadow"] if s["callback"] == "EarlyStopping"]
    assert [(s["params"]["monitor"], s["params"]["patience"]) for s in shadows] == [
        ("val_loss", 2),
        ("val_loss", 5),
        ("val_loss", 10),
        ("val_accuracy", 5),
    ]
    for shadow in shadows:
        params = shadow["params"]
        replay = early_stopping([r[params["monitor"]] for r in rows], **params)
        assert (shadow["stopped_epoch"], shadow["best_epoch"]) == (
            replay.stopped_epoch,
            replay.best_epoch,
        )


@pytest.mark.slow
def test_plateau_replay_reproduces_the_recorded_learning_rates(tiny):
    from replay.engine.policies import reduce_lr_on_plateau

    m = manifest(tiny)
    rows = read_rows(tiny / "metrics.csv")
    (plateau,) = [s for s in m["shadow"] if s["callback"] == "ReduceLROnPlateau"]
    params = m["config"]["reduce_lr_on_plateau"]
    assert plateau["params"] == params == parse_plateau(PLATEAU)
    replay = reduce_lr_on_plateau(
        [r[params["monitor"]] for r in rows], initial_lr=m["config"]["learning_rate"], **params
    )
    recorded = np.array([r["learning_rate"] for r in rows], dtype=np.float32)
    assert recorded.tobytes() == np.array(replay.lr, dtype=np.float32).tobytes()
    assert list(replay.reductions) == plateau["reductions"] == [1, 2]  # cuts really happened
    assert recorded[2] == np.float32(5e-4)
    assert np.float32(replay.final_lr) == np.float32(plateau["final_lr"])


@pytest.mark.slow
def test_observe_only_shadow_freezes_at_its_first_stop_request():
    import keras

    from replay.engine.policies import early_stopping
    from replay.recording.run_writer import Shadow

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.evaluate(np.zeros((2, 2)), np.zeros(2), verbose=0)  # builds the metrics
    curve = [0.5, 0.4, 0.45, 0.46, 0.3, 0.2, 0.5, 0.6, 0.7]
    for monitor, patience in (("val_loss", 2), ("val_accuracy", 2), ("val_loss", 0)):
        shadow = Shadow(keras, model, monitor, patience)
        for epoch, value in enumerate(curve):
            shadow.observe(epoch, {monitor: value})
            assert model.stop_training is False
        replay = early_stopping(curve, monitor=monitor, patience=patience)
        assert (shadow.stopped_epoch, shadow.best_epoch) == (
            replay.stopped_epoch,
            replay.best_epoch,
        )
        assert shadow.callback.stopped_epoch >= (shadow.stopped_epoch or 0)
    # Keras itself would have moved on to later epochs; the record did not.
    assert Shadow(keras, model, "val_loss", 2).to_json()["stopped_epoch"] is None


@pytest.mark.slow
def test_two_runs_are_bit_identical(tiny, tmp_path):
    again = tmp_path / "again"
    result = invoke("--out", again, *TINY)
    assert result.exit_code == 0, result.output
    assert values(again) == values(tiny)
    assert manifest(again)["shadow"] == manifest(tiny)["shadow"]


# ---------------------------------------------------------------- interruption and resume


def _copy(tiny: Path, tmp_path: Path) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(tiny, run)
    return run


def _same_as_tiny(run: Path, tiny: Path) -> None:
    assert values(run) == values(tiny)
    a, b = manifest(run), manifest(tiny)
    assert a["status"] == "complete" and a["shadow"] == b["shadow"]
    # Checkpoint bytes differ between runs: Keras stores the save time inside each file.
    assert [e["checkpoint"] for e in a["epochs"]] == [e["checkpoint"] for e in b["epochs"]]
    for entry in a["epochs"]:
        assert sha256_file(run / entry["checkpoint"]) == entry["sha256"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        checkpoint_name(e) for e in range(3)
    ]
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "metrics.csv",
        "run.json",
        "tensorboard",
    ]


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_and_resume_finishes_it(tiny, tmp_path):
    run = tmp_path / "run"
    result = invoke("--out", run, *TINY, env={"REPLAY_TEST_HOOK": "in_fit@1:interrupt"})
    assert result.exit_code == 130
    assert "Interrupted: " in result.output and "interrupted; " not in result.output
    m = manifest(run)
    assert m["status"] == "interrupted" and len(m["epochs"]) == 1
    assert values(run) == values(tiny)[:1]
    assert not list((run / "checkpoints").glob(".tmp-*"))
    result = invoke("--out", run, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    _same_as_tiny(run, tiny)
    assert [r["from_epoch"] for r in manifest(run)["resumed"]] == [1]


@pytest.mark.slow
def test_ctrl_c_during_a_commit_finishes_that_commit(tiny, tmp_path):
    run = tmp_path / "run"
    hook = {"REPLAY_TEST_HOOK": "after_checkpoint_rename@0:interrupt"}
    result = invoke("--out", run, *TINY, env=hook)
    assert result.exit_code == 130
    m = manifest(run)
    assert m["status"] == "interrupted" and len(m["epochs"]) == 1
    assert values(run) == values(tiny)[:1]


def _spawn(run: Path, hook: str, signal_file: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "REPLAY_TEST_HOOK": hook}
    if signal_file is not None:
        env["REPLAY_TEST_HOOK_SIGNAL"] = str(signal_file)
    code = (
        "import sys; from replay.commands.record import record; "
        "record.main(sys.argv[1:], prog_name='replay record')"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, "--out", str(run), *TINY],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_after_the_second_epoch_then_resume_matches_an_uninterrupted_run(tiny, tmp_path):
    run, flag = tmp_path / "run", tmp_path / "paused"
    proc = _spawn(run, "after_manifest@1:pause", flag)
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "recording never reached epoch 2"
            time.sleep(0.2)
        assert flag.read_text().split()[0] == "after_manifest@1"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    m = manifest(run)
    assert m["status"] == "running" and len(m["epochs"]) == 2
    assert values(run) == values(tiny)[:2]
    result = invoke("--out", run, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    _same_as_tiny(run, tiny)


@pytest.mark.slow
def test_sigkill_mid_commit_leaves_a_temp_checkpoint_that_resume_discards(tiny, tmp_path):
    run = tmp_path / "run"
    proc = _spawn(run, "after_checkpoint_tmp@1:kill")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert [p.name for p in (run / "checkpoints").glob(".tmp-*")] == [".tmp-epoch-002.keras"]
    assert values(run) == values(tiny)[:1]
    result = invoke("--out", run, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    _same_as_tiny(run, tiny)


@pytest.mark.slow
def test_resume_discards_an_unfinished_epoch(tiny, tmp_path):
    """Checkpoint committed but its row only half written, plus temporary files."""
    run = _copy(tiny, tmp_path)
    m = manifest(run)
    m["epochs"].pop()
    m["status"] = "running"
    (run / "run.json").write_text(json.dumps(m))
    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    (run / "metrics.csv").write_text("".join(lines[:-1]) + lines[-1][:20])
    (run / "checkpoints" / ".tmp-epoch-004.keras").write_bytes(b"partial")
    (run / ".run.json.tmp").write_text("{")
    result = invoke("--out", run, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    _same_as_tiny(run, tiny)
    assert [r["from_epoch"] for r in manifest(run)["resumed"]] == [2]


@pytest.mark.slow
def test_resume_adopts_a_row_committed_just_before_the_crash(tiny, tmp_path):
    """Killed after the row, before run.json: the epoch counts; nothing is retrained."""
    run = _copy(tiny, tmp_path)
    m = manifest(run)
    m["epochs"].pop()
    m["status"] = "running"
    (run / "run.json").write_text(json.dumps(m))
    result = invoke("--out", run, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    _same_as_tiny(run, tiny)
    assert manifest(run)["epochs"][2]["sha256"] == manifest(tiny)["epochs"][2]["sha256"]


@pytest.mark.slow
def test_resume_refuses_a_tampered_checkpoint(tiny, tmp_path):
    run = _copy(tiny, tmp_path)
    m = manifest(run)
    m["status"] = "interrupted"
    (run / "run.json").write_text(json.dumps(m))
    path = run / "checkpoints" / checkpoint_name(2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = invoke("--out", run, "--resume")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: sha256 ")
    assert result.output.endswith(
        f"differs from run.json's {m['epochs'][2]['sha256']} ({m['epochs'][2]['bytes']} bytes)\n"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_resume_keeps_the_recorded_settings(tiny, tmp_path):
    run = _copy(tiny, tmp_path)
    result = invoke("--out", run, "--resume", "--seed", "1")
    assert result.exit_code == 1
    assert result.output == (
        "Error: --seed 1 differs from the recorded 0; a resumed run keeps "
        "its settings (only --epochs may grow)\n"
    )


@pytest.mark.slow
def test_force_overwrites_a_run(tiny, tmp_path):
    run = _copy(tiny, tmp_path)
    result = invoke("--out", run, "--force", "--limit", "500", "--epochs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(read_rows(run / "metrics.csv")) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-001.keras"]
    assert "Recording" in result.output and f"Run complete: {run}" in result.output


@pytest.mark.slow
def test_resume_of_a_complete_run_does_nothing(tiny, tmp_path):
    run = _copy(tiny, tmp_path)
    before = (run / "run.json").read_text()
    result = invoke("--out", run, "--resume")
    assert (result.exit_code, result.output) == (
        0,
        f"{run} is already complete (3 epochs); nothing to do\n",
    )
    assert (run / "run.json").read_text() == before


@pytest.mark.slow
def test_resume_with_more_epochs_extends_a_complete_run(tiny, tmp_path):
    run = _copy(tiny, tmp_path)
    result = invoke("--out", run, "--resume", "--epochs", "4", "--quiet")
    assert result.exit_code == 0, result.output
    assert values(run)[:3] == values(tiny) and len(values(run)) == 4
    m = manifest(run)
    assert m["config"]["epochs"] == 4 and len(m["epochs"]) == 4 and m["status"] == "complete"
    assert f"Resuming {run} from epoch 4" in result.output
