"""Fuzzing the Lightning, Hugging Face, Ultralytics and MLflow readers, as
test_fuzz_readers.py fuzzes the Keras ones: 2,000 mutated fixtures per format, each ending
in valid RunLogs or one one-line ReplayError, never anything else.

Mutations: the text mutations of test_fuzz_readers (byte flips, truncation at line and
field boundaries, inserted and duplicated lines, odd cells, encodings, NUL bytes, ...)
on the CSV files, the JSON text and MLflow's metric files and meta.yaml; structural
mutations of trainer_state.json (odd values in any field, deleted and duplicated
entries); for MLflow also removed, added and nested metric files. Each case goes through
the format's own reader, one in four also through the dispatcher, and a smaller sample
through the CLI (``show`` and ``sweep``: exit 0 or one ``Error:`` line).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from analysis.errors import ReplayError
from analysis.formats import hf, lightning, load_logs, mlflow, ultralytics
from replay.commands.cli import cli

try:
    import test_fuzz_readers as base
except ImportError:  # run from outside tests/
    from tests import test_fuzz_readers as base

FORMATS = Path(__file__).parent / "data" / "formats"
N = int(2000 * float(os.environ.get("FUZZ_SCALE", "1")))
N_CLI = int(100 * float(os.environ.get("FUZZ_SCALE", "1")))

LIGHTNING_BASES = [p.read_bytes() for p in sorted(FORMATS.glob("lightning/**/metrics.csv"))] + [
    b"epoch,lr-Adam,step,train/loss,val/loss\n,0.1,0,,\n0,,4,0.9,\n0,,9,,0.5\n1,,14,0.7,\n"
    b"1,,19,,0.4\n2,,20,,0.45\n",
    b"train_loss,val_loss,test_loss,epoch,step\n0.9,0.5,,0,9\n0.7,0.4,,1,19\n,,0.42,1,19\n",
]  # fmt: skip
ULTRA_BASES = [p.read_bytes() for p in sorted(FORMATS.glob("ultralytics/*/results.csv"))]
HF_BASES = [p.read_text() for p in sorted(FORMATS.glob("hf/**/trainer_state.json"))]
MLFLOW_RUN = next(p.parent.parent for p in FORMATS.glob("mlflow/mlruns/*/*/tags/mlflow.runName")
                  if p.read_text() == "mlp")  # fmt: skip


def outcome(load, *args) -> str:
    """ "ok" (every run's invariants hold) or "error" (a one-line ReplayError)."""
    try:
        runs = load(*args)
    except ReplayError as e:
        msg = str(e)
        assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
        return "error"
    assert runs
    for run in runs:
        base.check_runlog(run)
        assert run.default_monitor in run.metrics.columns or run.default_monitor == "val_loss"
        assert set(run.directions) <= set(run.metrics.columns)
        assert set(run.directions.values()) <= {"min", "max"}
    return "ok"


def report(fmt: str, tally: Counter) -> None:
    total = sum(tally.values())
    print(f"\nfuzz {fmt}: {total} cases ({tally['ok']} loaded, {tally['error']} ReplayError)")
    assert total >= N, f"only {total} cases ran for {fmt}"


# ------------------------------------------------------------------------ writers

# Each writer overwrites the files of the previous case in place: removing and creating
# folders for every case costs more than the readers do.


def write_lightning(draw, root: Path) -> Path:
    target = root / "version_0" / "metrics.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(base.mutate_text(draw, draw(st.sampled_from(LIGHTNING_BASES))))
    return draw(st.sampled_from([target, target.parent, root]))


def write_ultralytics(draw, root: Path) -> Path:
    target = root / "results.csv"
    target.write_bytes(base.mutate_text(draw, draw(st.sampled_from(ULTRA_BASES))))
    return draw(st.sampled_from([target, root]))


HF_ODD = st.one_of(
    base.JSON_SCALARS,
    st.sampled_from(
        [math.nan, math.inf, -math.inf, -5, 2**62, 2**63, 0.5, "NaN", [], {}, {"step": 1}]
    ),
)


def mutate_state(draw, text: str) -> dict:
    doc = json.loads(text)
    for _ in range(draw(st.integers(0, 3), label="n_json_ops")):
        spots = list(base._containers(doc))
        _path, box = draw(st.sampled_from(spots))
        keys = list(box.keys()) if isinstance(box, dict) else list(range(len(box)))
        op = draw(st.sampled_from(["set", "set", "delete", "duplicate", "add", "best"]))
        if op == "best":
            doc[draw(st.sampled_from(["best_metric", "best_global_step",
                                      "best_model_checkpoint"]))] = draw(HF_ODD)  # fmt: skip
        elif not keys:
            continue
        elif op == "set":
            box[draw(st.sampled_from(keys))] = draw(HF_ODD)
        elif op == "delete":
            del box[draw(st.sampled_from(keys))]
        elif op == "duplicate" and isinstance(box, list):
            box.insert(draw(st.integers(0, len(box))), box[draw(st.sampled_from(keys))])
        elif isinstance(box, dict):
            box[
                draw(
                    st.sampled_from(
                        [
                            "eval_loss",
                            "loss",
                            "test_loss",
                            "step",
                            "epoch",
                            "learning_rate",
                            "train_runtime",
                            "eval_x",
                        ]
                    )
                )
            ] = draw(HF_ODD)
        else:
            box.append(draw(HF_ODD))
    return doc


def write_hf(draw, root: Path) -> Path:
    doc = mutate_state(draw, draw(st.sampled_from(HF_BASES)))
    raw = json.dumps(doc, indent=draw(st.sampled_from([None, 2])), default=str).encode()
    if draw(st.integers(0, 3)) == 0:
        raw = base.mutate_text(draw, raw, max_ops=2)
    (root / "checkpoint-7").mkdir(exist_ok=True)
    files = [root / "trainer_state.json", root / "checkpoint-7" / "trainer_state.json"]
    keep = draw(st.sampled_from(files))
    for f in files:
        f.unlink(missing_ok=True)
    keep.write_bytes(raw)
    return draw(st.sampled_from([keep, root]))


MLFLOW_FILES = {p.relative_to(MLFLOW_RUN): p.read_bytes()
                for p in MLFLOW_RUN.rglob("*") if p.is_file()}  # fmt: skip


def write_mlflow(draw, root: Path) -> Path:
    run = root / "1" / "run1"
    if not run.exists():
        shutil.copytree(MLFLOW_RUN, run)
        (root / "1" / "meta.yaml").write_text("experiment_id: '1'\nname: e\n")
    dirty = _MLFLOW_DIRTY.setdefault(root, set())
    for f in dirty:  # undo the previous case
        rel = f.relative_to(run)
        if rel in MLFLOW_FILES:
            f.write_bytes(MLFLOW_FILES[rel])
        else:
            f.unlink(missing_ok=True)
    dirty.clear()
    files = sorted(run / rel for rel in MLFLOW_FILES if rel.parts[0] == "metrics")
    for _ in range(draw(st.integers(0, 2), label="n_files")):
        op = draw(st.sampled_from(["mutate", "mutate", "delete", "add", "nested", "meta"]))
        if op == "mutate":
            f = draw(st.sampled_from(files))
            if f.exists():
                f.write_bytes(base.mutate_text(draw, f.read_bytes(), max_ops=2))
        elif op == "delete":
            f = draw(st.sampled_from(files))
            f.unlink(missing_ok=True)
        elif op in ("add", "nested"):
            key = draw(st.sampled_from(["epoch", "lr", "val_loss2", "a/b/c", "train/loss"]))
            lines = draw(
                st.lists(
                    st.tuples(st.integers(-3, 2**64), base.VALUES, st.integers(-3, 10**6)),
                    max_size=4,
                )
            )
            f = run / "metrics" / key
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(f"{t} {v} {s}\n" for t, v, s in lines))
        else:
            f = run / "meta.yaml"
            f.write_bytes(base.mutate_text(draw, f.read_bytes(), max_ops=2))
        dirty.add(f)
    return draw(st.sampled_from([run, root / "1", root]))


_MLFLOW_DIRTY: dict[Path, set[Path]] = {}


WRITERS = {
    "lightning": (write_lightning, lightning.load),
    "ultralytics": (write_ultralytics, ultralytics.load),
    "hf": (write_hf, hf.load),
    "mlflow": (write_mlflow, mlflow.load),
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_fuzz_format(tmp_path, fmt):
    write, load = WRITERS[fmt]
    tally: Counter = Counter()

    root = tmp_path / "case"
    root.mkdir()

    @base.fuzz_settings(N)
    @given(st.data())
    def case(data):
        target = write(data.draw, root)
        tally[outcome(load, target, str(target))] += 1
        if data.draw(st.integers(0, 3), label="dispatch") == 0:
            outcome(load_logs, target)  # the dispatcher: this reader, another one, or an error

    case()
    report(fmt, tally)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_fuzz_cli(tmp_path, fmt):
    write, _ = WRITERS[fmt]
    tally: Counter = Counter()
    runner = CliRunner()

    root = tmp_path / "case"
    root.mkdir()

    @base.fuzz_settings(N_CLI)
    @given(st.data())
    def case(data):
        target = write(data.draw, root)
        for args in (["show", str(target)],
                     ["sweep", str(target), "--patience", "0..3", "--no-charts", "--out",
                      str(tmp_path / "out"), "--force"]):  # fmt: skip
            tally[f"{args[0]} {base.check_cli(runner.invoke(cli, args))}"] += 1

    case()
    print(f"\nfuzz cli {fmt}: {dict(sorted(tally.items()))}")
    assert sum(tally.values()) >= 2 * N_CLI
