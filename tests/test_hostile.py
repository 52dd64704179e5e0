"""Hostile input: paths that escape the run, pickles that run code, unsafe checkpoints,
and numeric extremes (100,000 epochs, +-1e308, all-NaN, a single epoch).

Each refusal is checked through the library (the ReplayError subclass) and, where a
command reaches it, through the CLI (exit 1 and one ``Error: ...`` line).
"""

from __future__ import annotations

import ast
import functools
import gzip
import hashlib
import json
import math
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line, run

from analysis.errors import UnsafePath
from analysis.formats import load_run
from analysis.formats.run_dir import load_run_dir
from analysis.reading.logs import checkpoint_path, load_csv
from replay.engine.policies import (
    EarlyStoppingTrace,
    PlateauTrace,
    early_stopping,
    prechelt,
    reduce_lr_on_plateau,
)
from replay.mnist.data import BadData, load_file, load_mnist
from replay.sweeping.sweep import Grid, sweep

DATA = Path(__file__).parent / "data"
RUN = DATA / "fuzz" / "run"  # a real recorded run, 12 epochs, published without checkpoints
REPO = Path(__file__).parent.parent


# Exceptions caught: error_line asserts that none escaped the command.
invoke = functools.partial(run, catch_exceptions=True)


# ---------------------------------------------------------------------- escaping paths


def make_run(tmp_path: Path) -> Path:
    """A run directory with real checkpoint files whose sha256 and size run.json records."""
    root = tmp_path / "run"
    shutil.copytree(RUN, root)
    manifest = json.loads((root / "run.json").read_text())
    manifest["checkpoints_included"] = True
    (root / "checkpoints").mkdir()
    for entry in manifest["epochs"]:
        blob = f"checkpoint of epoch {entry['epoch']}".encode()
        (root / entry["checkpoint"]).write_bytes(blob)
        entry["sha256"] = hashlib.sha256(blob).hexdigest()
        entry["bytes"] = len(blob)
    (root / "run.json").write_text(json.dumps(manifest, indent=2))
    return root


def set_checkpoint(root: Path, epoch: int, rel: str, blob: bytes | None = None) -> None:
    manifest = json.loads((root / "run.json").read_text())
    entry = manifest["epochs"][epoch]
    entry["checkpoint"] = rel
    if blob is not None:  # the sha256 of the outside file: only the path can give it away
        entry["sha256"] = hashlib.sha256(blob).hexdigest()
        entry["bytes"] = len(blob)
    (root / "run.json").write_text(json.dumps(manifest, indent=2))


# `replay pick RUN --patience 2` on this run stops at epoch 3 (val_loss 0.0911 at epoch 1,
# then 0.0927, 0.0968) and hands over epoch 3's checkpoint.
PICK = ["--patience", "2"]


def test_a_sound_run_hands_over_its_checkpoint(tmp_path):
    # The control: the escapes below are refused for their path, not for a broken setup.
    root = make_run(tmp_path)
    run = load_run_dir(root)
    assert checkpoint_path(run, 3) == root / "checkpoints" / "epoch-004.keras"
    result = invoke("pick", root, *PICK, "--copy", tmp_path / "kept.keras")
    assert result.exit_code == 0, result.output
    assert "you end with the weights of epoch 3" in result.stdout
    assert (tmp_path / "kept.keras").read_bytes() == b"checkpoint of epoch 3"


ESCAPES = [
    # (checkpoint path in run.json, words of the refusal)
    ("../outside/secret.keras", "goes up with '..'"),
    ("checkpoints/../../outside/secret.keras", "goes up with '..'"),
    ("{outside}", "is an absolute path"),
    ("/etc/passwd", "is an absolute path"),
    ("C:\\Windows\\system.ini", "is not a plain relative path"),
    ("C:secret.keras", "is an absolute path"),
    ("checkpoints/epoch-004.keras\x00.txt", "is not a plain relative path"),
]


@pytest.mark.parametrize(("rel", "words"), ESCAPES)
def test_a_checkpoint_path_outside_the_run_is_refused(tmp_path, rel, words):
    root = make_run(tmp_path)
    secret = tmp_path / "outside" / "secret.keras"
    secret.parent.mkdir()
    secret.write_bytes(b"not yours")
    rel = rel.format(outside=secret)
    set_checkpoint(root, 3, rel, b"not yours")
    for load in (load_run_dir, load_run):
        with pytest.raises(UnsafePath, match=words) as info:
            load(root)
        assert "\n" not in str(info.value) and "epochs[3].checkpoint" in str(info.value)
    line = error_line(invoke("pick", root, *PICK, "--copy", tmp_path / "kept.keras"))
    assert words in line and "refusing to use it" in line
    assert not (tmp_path / "kept.keras").exists()
    error_line(invoke("sweep", root, "--no-charts", "--out", tmp_path / "out"))
    error_line(invoke("show", root))


@pytest.mark.parametrize("how", ["file", "directory"])
def test_a_symlink_leading_outside_the_run_is_refused(tmp_path, how):
    root = make_run(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "epoch-004.keras").write_bytes(b"checkpoint of epoch 3")  # even the same bytes
    if how == "file":
        (root / "checkpoints" / "epoch-004.keras").unlink()
        (root / "checkpoints" / "epoch-004.keras").symlink_to(outside / "epoch-004.keras")
    else:
        shutil.rmtree(root / "checkpoints")
        (root / "checkpoints").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="leads outside the run directory"):
        load_run_dir(root)
    line = error_line(invoke("pick", root, *PICK, "--copy", tmp_path / "kept.keras"))
    assert "leads outside the run directory" in line
    assert not (tmp_path / "kept.keras").exists()


def test_a_symlink_planted_after_loading_is_refused_when_the_checkpoint_is_fetched(tmp_path):
    root = make_run(tmp_path)
    run = load_run_dir(root)  # sound when loaded
    outside = tmp_path / "secret.keras"
    outside.write_bytes(b"checkpoint of epoch 3")
    ckpt = root / "checkpoints" / "epoch-004.keras"
    ckpt.unlink()
    ckpt.symlink_to(outside)
    with pytest.raises(UnsafePath, match="leads outside the run directory"):
        checkpoint_path(run, 3)


def test_a_symlink_inside_the_run_is_accepted(tmp_path):
    # Not every symlink is hostile: one that stays inside the run directory is fine.
    root = make_run(tmp_path)
    ckpt = root / "checkpoints" / "epoch-004.keras"
    ckpt.rename(root / "checkpoints" / "real.keras")
    ckpt.symlink_to("real.keras")
    assert checkpoint_path(load_run_dir(root), 3) == ckpt


# ---------------------------------------------------------------------- pickles


class _Reduce:
    """Pickles as a call of ``func(*args)``: what a malicious data file carries."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _payloads(marker: Path) -> dict[str, bytes]:
    import builtins
    import subprocess

    m = str(marker)
    touch = f"open({m!r}, 'w').close()"
    hand_written = (  # protocol 0, written by hand: posix.system('touch MARKER')
        b"cposix\nsystem\n(V" + f"touch {m}".encode() + b"\ntR."
    )
    return {
        "os.system": pickle.dumps(((_Reduce(os.system, f"touch {m}"), None), None, None), 2),
        "builtins.open": pickle.dumps(((_Reduce(builtins.open, m, "w"), None), None, None), 2),
        "builtins.exec": pickle.dumps(_Reduce(builtins.exec, touch), 4),  # STACK_GLOBAL
        "builtins.eval": pickle.dumps(_Reduce(builtins.eval, touch), 0),
        "subprocess.Popen": pickle.dumps(_Reduce(subprocess.Popen, ["touch", m]), 5),
        "posix.system": hand_written,
        # A global hidden after a harmless array: the array loads, then the refusal.
        "after an array": pickle.dumps(
            (np.zeros((2, 2), np.float32), _Reduce(os.system, f"touch {m}")), 2
        ),
    }


PAYLOADS = ["os.system", "builtins.open", "builtins.exec", "builtins.eval",
            "subprocess.Popen", "posix.system", "after an array"]  # fmt: skip


@pytest.mark.parametrize("name", PAYLOADS)
def test_a_data_pickle_with_a_forbidden_global_is_refused_before_it_runs(tmp_path, name):
    marker = tmp_path / "marker"
    evil = tmp_path / "mnist.pkl.gz"
    with gzip.open(evil, "wb") as f:
        f.write(_payloads(marker)[name])
    for load in (load_file, load_mnist):
        with pytest.raises(BadData, match=r"refused: forbidden global in pickle: ") as info:
            load(evil)
        assert "\n" not in str(info.value)
        assert not marker.exists()
    out = tmp_path / "run"
    line = error_line(invoke("record", "--out", out, "--data", evil, "--limit", "10",
                             "--epochs", "1"))  # fmt: skip
    assert line.startswith(f"Error: {evil}: refused: forbidden global in pickle: ")
    assert not marker.exists() and not out.exists()


def test_a_plain_pickle_and_an_object_npz_are_refused_without_running(tmp_path):
    marker = tmp_path / "marker"
    raw = tmp_path / "mnist.pkl"  # not gzipped: never unpickled at all
    raw.write_bytes(_payloads(marker)["os.system"])
    with pytest.raises(BadData, match="neither a Keras mnist.npz nor a gzipped mnist.pkl"):
        load_file(raw)
    npz = tmp_path / "mnist.npz"  # an object array in an .npz is a pickle inside a zip
    objects = np.empty(1, dtype=object)
    objects[0] = _Reduce(os.system, f"touch {marker}")
    np.savez(npz, x_train=objects, y_train=objects, x_test=objects, y_test=objects)
    with pytest.raises(BadData, match="cannot read as .npz"):
        load_file(npz)
    assert not marker.exists()


# ---------------------------------------------------------------------- checkpoints


def _load_model_calls() -> list[tuple[str, int, ast.Call]]:
    calls = []
    for path in sorted((REPO / "replay").rglob("*.py")) + sorted((REPO / "analysis").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("load_model", "load_weights", "load"):
                    calls.append((path.name, node.lineno, node))
    return calls


def test_every_model_load_in_the_project_passes_safe_mode_true():
    model_loads = [
        (f, ln, c) for f, ln, c in _load_model_calls()
        if isinstance(c.func, ast.Attribute) and c.func.attr == "load_model"
    ]  # fmt: skip
    assert model_loads, "no keras load_model call found: update this test"
    for f, ln, call in model_loads:
        kw = {k.arg: k.value for k in call.keywords}
        assert "safe_mode" in kw, f"{f}:{ln}: load_model without safe_mode=True"
        assert isinstance(kw["safe_mode"], ast.Constant) and kw["safe_mode"].value is True, (
            f"{f}:{ln}: safe_mode is not the literal True"
        )


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory) -> Path:
    keras = pytest.importorskip("keras")
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Lambda(lambda x: x * 2.0),
    ])  # fmt: skip
    model.save(path)
    return path


@pytest.mark.slow
def test_safe_mode_refuses_a_keras_file_with_a_lambda_layer(lambda_model):
    import keras

    with pytest.raises(ValueError, match="(?i)lambda.*(unsafe|safe_mode)|safe_mode"):
        keras.saving.load_model(lambda_model, safe_mode=True)


# ---------------------------------------------------------------------- numeric extremes

N_BIG = 100_000
V_BOTTOM = 50_000


def v_curve(n: int = N_BIG) -> list[float]:
    """val_loss falling by 0.001 per epoch to 1.0 at epoch 50,000, then rising again."""
    return [1.0 + abs(e - V_BOTTOM) * 1e-3 for e in range(n)]


@pytest.mark.parametrize("patience", [0, 1, 2, 5, 1000])
def test_early_stopping_over_100000_epochs(patience):
    r = early_stopping(v_curve(), patience=patience, restore_best_weights=True)
    # Improves every epoch up to 50,000; then wait = 1, 2, ... and stops when it reaches
    # patience (patience 0 behaves as 1).
    assert r.best_epoch == V_BOTTOM and r.final_epoch == V_BOTTOM
    assert r.stopped_epoch == V_BOTTOM + max(patience, 1)


def test_plateau_over_100000_epochs():
    r = reduce_lr_on_plateau(v_curve(), initial_lr=1e-3, factor=0.5, patience=2)
    # Cuts every second epoch after the bottom until float32 halves the rate to 0.
    assert r.reductions[:3] == (V_BOTTOM + 2, V_BOTTOM + 4, V_BOTTOM + 6)
    assert all(b - a == 2 for a, b in zip(r.reductions, r.reductions[1:], strict=False))
    assert r.final_lr == 0.0 and len(r.lr) == N_BIG
    assert r.lr[V_BOTTOM + 2] == float(np.float32(1e-3)) and r.lr[V_BOTTOM + 3] < r.lr[0]


def _write_csv(path: Path, val: list[float], loss: list[float] | None = None) -> Path:
    loss = loss if loss is not None else val
    with open(path, "w") as f:
        f.write("epoch,loss,val_loss,learning_rate\n")
        for e, (t, v) in enumerate(zip(loss, val, strict=True)):
            f.write(f"{e},{t!r},{v!r},0.001\n")
    return path


def test_sweep_of_100000_epochs_is_linear(tmp_path, capsys):
    big = _write_csv(tmp_path / "big.csv", v_curve())
    t0 = time.perf_counter()
    run = load_csv(big)
    t_load = time.perf_counter() - t0
    grid = Grid(patience=(0, 1, 2, 5), min_delta=(0.0, 1e-4), restore_best_weights=(False, True),
                lr_patience=(2,), factor=(0.5,))  # fmt: skip
    t0 = time.perf_counter()
    result = sweep([run], grid)
    t_sweep = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n100,000 epochs: load {t_load:.2f} s, sweep of {grid.size()} settings "
              f"{t_sweep:.2f} s")  # fmt: skip
    es = [r for r in result.records if r["policy"] == "early_stopping"]
    for r in es:
        p, md = r["params"]["patience"], r["params"]["min_delta"]
        if md == 0.0:
            assert r["stopped_epoch"] == V_BOTTOM + max(p, 1)
            assert r["best_epoch"] == V_BOTTOM
        else:  # each epoch improves by 0.001 > 1e-4 too: the same answers
            assert r["stopped_epoch"] == V_BOTTOM + max(p, 1)
        assert r["final_epoch"] == (V_BOTTOM if r["params"]["restore_best_weights"]
                                    else r["stopped_epoch"])  # fmt: skip
    (plateau,) = [r for r in result.records if r["policy"] == "reduce_lr_on_plateau"]
    assert plateau["reductions"][0] == V_BOTTOM + 2
    # Generous: the whole sweep is linear in the epochs (about a second here); a
    # quadratic pass over 100,000 epochs would take minutes.
    assert t_load + t_sweep < 30


def test_replay_sweep_cli_on_100000_epochs(tmp_path, capsys):
    big = _write_csv(tmp_path / "big.csv", v_curve())
    out = tmp_path / "out"
    t0 = time.perf_counter()
    result = invoke("sweep", big, "--no-charts", "--out", out, "--patience", "0..5",
                    "--min-delta", "0,0.0001", "--lr-patience", "2", "--factor", "0.5",
                    "--format", "json")  # fmt: skip
    elapsed = time.perf_counter() - t0
    with capsys.disabled():
        size = (out / "results.json").stat().st_size / 1e6
        print(f"\nreplay sweep, 100,000 epochs: {elapsed:.2f} s, results.json {size:.1f} MB")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    es = [r for r in records if r["policy"] == "early_stopping"]
    assert len(es) == 6 * 2 * 2
    assert {r["stopped_epoch"] - max(r["params"]["patience"], 1) for r in es} == {V_BOTTOM}
    assert elapsed < 60


EXTREMES = [
    # (val_loss curve, patience, expected stopped_epoch, expected best_epoch)
    # 1e308 is beyond float32: it reads as +inf, which any finite value beats.
    ([1e308, 0.5, 0.4, 1e308, 1e308, 1e308], 2, 4, 2),
    # -1e308 reads as -inf: nothing beats it afterwards.
    ([0.5, -1e308, 0.4, 0.3, 0.2], 2, 3, 1),
    ([-1e308, -1e308, -1e308], 1, 1, 0),
    ([1e308] * 4, 3, 3, 0),
    # All NaN: the first NaN becomes best (a None reference is always beaten), then no
    # NaN is an improvement.
    ([math.nan] * 6, 0, 1, 0),
    ([math.nan] * 6, 3, 3, 0),
    # A single epoch: epoch 0 never stops (Keras's `epoch > 0`).
    ([0.7], 0, None, 0),
    ([math.nan], 0, None, 0),
    ([1e308], 5, None, 0),
]


@pytest.mark.parametrize(("curve", "patience", "stopped", "best"), EXTREMES)
def test_early_stopping_at_numeric_extremes(curve, patience, stopped, best):
    r = early_stopping(curve, patience=patience)
    assert (r.stopped_epoch, r.best_epoch) == (stopped, best)
    assert r.final_epoch == (stopped if stopped is not None else len(curve) - 1)
    assert r.censored == (stopped is None)


@pytest.mark.parametrize(("curve", "patience", "reductions"), [
    ([1e308, 0.5, 0.4, 1e308, 1e308, 1e308], 2, (4,)),
    ([0.5, -1e308, 0.4, 0.3, 0.2], 2, (3,)),
    ([math.nan] * 6, 2, (2, 4)),
    ([0.7], 0, ()),
    ([math.nan], 0, ()),
])  # fmt: skip
def test_plateau_at_numeric_extremes(curve, patience, reductions):
    r = reduce_lr_on_plateau(curve, initial_lr=0.1, factor=0.5, patience=patience)
    assert r.reductions == reductions
    assert len(r.lr) == len(curve)


def test_max_mode_and_prechelt_at_numeric_extremes():
    # Accuracy of 1e308 is +inf in float32: the best, never beaten.
    r = early_stopping([0.5, 1e308, 0.9, 0.95], monitor="val_accuracy", patience=2)
    assert (r.stopped_epoch, r.best_epoch) == (3, 1)
    # Prechelt works in float64: 1e308 is a (huge) finite error, -1e308 a finite minimum.
    assert prechelt([0.5, 1e308], criterion="gl", alpha=5).stopped_epoch == 1
    assert prechelt([-1e308, 0.5, 0.4], criterion="gl", alpha=5).best_epoch == 0
    r = prechelt([math.nan] * 10, [math.nan] * 10, criterion="pq", alpha=0.5)
    assert (r.stopped_epoch, r.best_epoch, r.final_epoch) == (None, None, 9)
    assert prechelt([0.3], criterion="up", strips=1).stopped_epoch is None


@pytest.mark.parametrize("name", ["huge", "negative_huge", "all_nan", "single"])
def test_sweep_and_cli_at_numeric_extremes(tmp_path, name):
    curves = {
        "huge": [1e308, 0.5, 0.4, 1e308, 1e308, 1e308],
        "negative_huge": [0.5, -1e308, 0.4, 0.3, 0.2],
        "all_nan": [math.nan] * 6,
        "single": [0.7],
    }
    curve = curves[name]
    log = _write_csv(tmp_path / f"{name}.csv", curve)
    run = load_csv(log)
    assert run.values("val_loss") == pytest.approx(curve, nan_ok=True)
    grid = Grid(policies=("early_stopping", "reduce_lr_on_plateau", "prechelt"),
                patience=(0, 2), restore_best_weights=(False,))  # fmt: skip
    result = sweep([run], grid)
    es = {r["params"]["patience"]: r for r in result.records
          if r["policy"] == "early_stopping" and r["params"]["min_delta"] == 0.0}  # fmt: skip
    for patience, r in es.items():
        expected = early_stopping(curve, patience=patience)
        assert (r["stopped_epoch"], r["best_epoch"]) == (
            expected.stopped_epoch,
            expected.best_epoch,
        )
        json.dumps(r, allow_nan=False)  # no NaN or inf leaks into the JSON records
    for command in (["show", log],
                    ["sweep", log, "--no-charts", "--out", tmp_path / "out", "--format", "json",
                     "--policy", "early_stopping", "--policy", "reduce_lr_on_plateau",
                     "--policy", "prechelt"],
                    ["pick", log, "--patience", "2"]):  # fmt: skip
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output, result.stderr)
        assert "Traceback" not in result.output + result.stderr
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert records and all(r["run"] == name for r in records)


def test_trace_objects_handle_empty_and_single_curves():
    assert EarlyStoppingTrace([], mode="min").decide(3).final_epoch is None
    assert EarlyStoppingTrace([0.1], mode="min").stop_point(0) == (None, 0, 0)
    assert PlateauTrace([], mode="min").decide(initial_lr=0.1).lr == ()


# ---------------------------------------------------------------------- misc hostile logs


def test_a_run_json_nested_100000_deep_is_a_bad_manifest(tmp_path):
    root = tmp_path / "run"
    shutil.copytree(RUN, root)
    (root / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    error_line(invoke("show", root))


@pytest.mark.slow
def test_resume_checkpoint_with_lambda_layer_is_refused_with_a_clear_message(tmp_path):
    import keras

    from replay.recording.run_writer import (
        UnsafeCheckpoint,
        load_checkpoint,
    )

    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(UnsafeCheckpoint) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: refused: the model holds code")
    assert "callback-replay never does" in message


@pytest.mark.slow
def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    from replay.recording.run_writer import (
        BadCheckpoint,
        load_checkpoint,
    )

    path = tmp_path / "epoch-001.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BadCheckpoint, match=r"not a loadable Keras model"):
        load_checkpoint(path)
