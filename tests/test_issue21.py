"""Issue 21: what a new user meets. Regression tests of its numbered items (the README
and the help are held true by tests/test_docs.py and tests/test_help.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import error_line, run

SAMPLE = "sample_logs/mnist-mlp"


def _table_labels(text: str) -> list[list[str]]:
    """The setting labels of each table of a sweep's text output, table by table."""
    tables, rows = [], None
    for line in text.splitlines():
        if line.startswith("-----"):
            rows = []
            tables.append(rows)
        elif rows is not None and line.strip() and not line.startswith("..."):
            rows.append(line.split("  ")[0].strip())
        else:
            rows = None
    return tables


# Every option in which settings of one dialect's policy can differ, with two values.
LABEL_CASES = [
    ("keras", "early_stopping", ["--min-delta", "0,0.01"]),
    ("keras", "early_stopping", ["--baseline", "none,0.09"]),
    ("keras", "early_stopping", ["--start-from-epoch", "0,2"]),
    ("keras", "reduce_lr_on_plateau", ["--lr-min-delta", "0.0001,0.01"]),
    ("keras", "reduce_lr_on_plateau", ["--cooldown", "0,2"]),
    ("keras", "reduce_lr_on_plateau", ["--min-lr", "0,0.0005"]),
    ("keras", "early_stopping+reduce_lr_on_plateau", ["--lr-patience", "1,2"]),
    ("keras", "model_checkpoint", ["--initial-value-threshold", "none,0.09"]),
    ("tf-keras", "early_stopping", ["--baseline", "none,0.09"]),
    ("tf-keras", "reduce_lr_on_plateau", ["--min-lr", "0,0.0005"]),
    ("tf-keras", "model_checkpoint", ["--period", "1"]),
    ("torch", "reduce_lr_on_plateau", ["--threshold-mode", "rel,abs"]),
    ("torch", "reduce_lr_on_plateau", ["--threshold", "0.0001,0.01"]),
    ("torch", "reduce_lr_on_plateau", ["--eps", "1e-8,0.01"]),
    ("lightning", "early_stopping", ["--stopping-threshold", "none,0.09"]),
    ("lightning", "early_stopping", ["--divergence-threshold", "none,0.08"]),
    ("lightning", "early_stopping", ["--no-check-finite"]),
    ("hf", "early_stopping", ["--early-stopping-threshold", "0,0.01"]),
    ("ultralytics", "early_stopping", ["--monitor", "val_accuracy"]),
]


@pytest.mark.parametrize("dialect, policy, option", LABEL_CASES)
def test_no_two_rows_of_a_table_share_a_label(tmp_path, dialect, policy, option):
    """Item 2: a row label names every parameter in which the rows differ, in every
    dialect (was: torch's threshold_mode left out, so every row printed twice)."""
    result = run("sweep", SAMPLE, "--dialect", dialect, "--policy", policy, *option,
                 "--patience", "3,4", "--no-charts", "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    tables = _table_labels(result.stdout)
    assert tables and all(tables), result.stdout
    for labels in tables:
        assert len(labels) == len(set(labels)), result.stdout


def test_a_dialect_fallback_note_reads_as_one_sentence(tmp_path):
    """Item 6 (was: '... early_stopping only. (in the lightning dialect); replayed ...')."""
    log = "tests/data/formats/lightning/lightning_logs/version_0"
    result = run("sweep", log, "--policy", "reduce_lr_on_plateau", "--no-charts",
                 "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = [ln for ln in result.stderr.splitlines() if "keras dialect instead" in ln]
    assert notes == [
        "note: lightning logs are replayed in the lightning dialect, but --policy "
        "reduce_lr_on_plateau: the lightning dialect has early_stopping only; replayed in "
        "the keras dialect instead."
    ]


def test_a_folder_of_runs_beside_runs_is_not_told_to_resume(tmp_path):
    """Item 7: a folder of seed runs inside a folder of runs is no unfinished run."""
    import shutil

    shutil.copytree(SAMPLE, tmp_path / "runs" / "mnist-mlp")
    shutil.copytree(SAMPLE, tmp_path / "runs" / "mlp" / "seed-0")
    line = error_line(run("sweep", tmp_path / "runs", "--no-charts"))
    assert "(it is a folder of runs itself); pass it on its own, move it out" in line
    assert "--resume" not in line


def test_branch_refuses_a_run_without_checkpoints_before_its_plan():
    """Item 7: `replay branch sample_logs/mnist-mlp -y` refuses first (was: most of its
    plan printed, then the refusal); --dry-run still plans it."""
    result = run("branch", SAMPLE, "--patience", "3", "-y")
    assert error_line(result).startswith(f"Error: {SAMPLE}: was published without its checkpoints")
    assert result.stdout == ""
    planned = run("branch", SAMPLE, "--patience", "3", "--dry-run")
    assert planned.exit_code == 0 and "need a branch" in planned.stdout


# ---------------------------------------------------------------------------- item 4

DOC = Path(__file__).resolve().parents[1] / "docs" / "sweep-output.md"


def _sections(text: str) -> dict[str, str]:
    """The text under each ``## `` heading of a Markdown file, by heading."""
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            out[name] = ""
        elif name is not None:
            out[name] += line + "\n"
    return out


def _field_table(section: str) -> list[str]:
    """The field names of the ``| field | what it holds |`` table of a section, in order
    (``epochs_trained_mean``, ``_worst``: a name starting with ``_`` extends the stem of
    the name before it)."""
    names: list[str] = []
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    for row in rows:
        for name in re.findall(r"`([^`]+)`", row.split("|")[1]):
            if name.startswith("_"):
                name = names[-1].rsplit("_", 1)[0] + name
            names.append(name)
    return names


def _params_sentence(section: str, intro: str) -> list[str]:
    """The backticked names of the sentence starting ``intro`` (up to its first ``;`` or
    full stop), parenthesized asides left out."""
    text = section[section.index(intro) + len(intro) :]
    while re.search(r"\([^()]*\)", text):  # innermost asides first
        text = re.sub(r"\([^()]*\)", "", text)
    text = re.split(r";|\.(?:\s|$)", text, maxsplit=1)[0]
    return re.findall(r"`([^`]+)`", text)


def _fields(name: str) -> list[str]:
    import typing

    import analysis.results.records as records

    return list(typing.get_type_hints(getattr(records, name)))


def test_docs_give_the_fields_in_the_order_of_the_record_types():
    """Item 4: docs/sweep-output.md's field tables and ``params`` lists are in the order
    of the record types in analysis/results/records.py, which is results.csv's column order (was:
    ReduceLROnPlateau's ``lr_scale`` documented fourth, written first)."""
    doc = _sections(DOC.read_text())
    head = _fields("EarlyStoppingRecord")[:4]
    assert _field_table(doc["Fields every record has"]) == head
    assert _field_table(doc["Early stopping and Prechelt"]) == _fields("EarlyStoppingRecord")[4:]
    assert _fields("PrecheltRecord") == _fields("EarlyStoppingRecord")
    assert _field_table(doc["ReduceLROnPlateau"]) == _fields("PlateauRecord")[4:]
    assert _field_table(doc["Across runs: aggregate.json and aggregate.csv"]) == _fields(
        "AggregateRow"
    )
    es = doc["Early stopping and Prechelt"]
    assert _params_sentence(es, "`params` for `early_stopping`:") == _fields("EarlyStoppingParams")
    assert _params_sentence(es, "`params` for `prechelt`:") == _fields("PrecheltParams")
    lr = doc["ReduceLROnPlateau"]
    assert _params_sentence(lr, "`params`:") == _fields("PlateauParams")
    mc = doc["ModelCheckpoint"]
    assert _params_sentence(mc, "`params`:") == _fields("ModelCheckpointParams")
    assert (
        _params_sentence(mc, "`policy` `model_checkpoint` (type `ModelCheckpointRecord`):")
        == (_fields("ModelCheckpointRecord")[4:])
    )
    both = doc["EarlyStopping and ReduceLROnPlateau in one fit"]
    assert _params_sentence(both, "`params`: EarlyStopping's, then ReduceLROnPlateau's:") == (
        _fields("CombinedParams")
    )
    policies = re.findall(r"`([^`]+)`", doc["Fields every record has"].split("| `policy` |")[1]
                          .split("\n")[0])  # fmt: skip
    from analysis.results.records import POLICIES

    assert sorted(policies) == sorted(POLICIES)


def test_dialect_version_says_it_takes_one_version_not_a_range():
    """Item 5: `--dialect-version 2.6..2.21`, as the README table printed it, is refused
    saying what the option takes; the help and the table now say it too."""
    line = error_line(run("sweep", SAMPLE, "--dialect", "tf-keras", "--dialect-version",
                          "2.6..2.21", "--no-charts"))  # fmt: skip
    assert line.endswith("it takes one tf.keras version (2.6 to 2.21), not a range.")
    from replay.commands.cli import cli

    (option,) = [p for p in cli.commands["sweep"].params if p.name == "dialect_version"]
    assert "not a range" in option.help and "2.6..2.21" not in option.help


def test_a_found_branch_is_reported_with_its_own_epochs():
    """Item 12: a found branch says how many of its epochs it trained itself (was:
    "complete, 18 epochs" for a branch forked at 12: its curve copies the parent's)."""
    from replay.branching.nodes import Node, epochs_of

    rows = [{"val_loss": 1.0}] * 18
    assert epochs_of(Node("b001", Path("b001"), rows, {}), 12) == "18 epochs, 6 of its own"
    assert epochs_of(Node("b001", Path("b001"), rows[:1], {}), 0) == "1 epoch, 1 of its own"


def test_tb_folder_of_the_readme_is_ignored_by_git():
    """Item 12: the README's `--tensorboard tb/sweep` writes tb/, which git ignores."""
    root = Path(__file__).resolve().parents[1]
    assert "--tensorboard tb/sweep" in (root / "README.md").read_text()
    assert "/tb/" in (root / ".gitignore").read_text().split()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_shipped_manifests_name_no_path_of_one_machine():
    """Item 11 (its fixture part): tests/data/fuzz/run/run.json held the absolute path of
    the data file on the machine that recorded it; manifests shipped with the project
    (sample_logs/, the fuzz seeds) name files relatively."""
    import json

    root = Path(__file__).resolve().parents[1]
    manifests = [*root.glob("sample_logs/**/run.json"), *root.glob("tests/data/fuzz/**/run.json")]
    assert len(manifests) >= 3
    for path in manifests:
        absolute = [s for s in _strings(json.loads(path.read_text())) if s.startswith("/")]
        assert absolute == [], path


STOPPED_FIT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
import numpy as np
from replay.keras import RecordCallback


class CtrlC(keras.callbacks.Callback):  # Ctrl-C in a training step of epoch 1
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            raise KeyboardInterrupt


rng = np.random.default_rng(0)
x, y = rng.random((64, 4), dtype=np.float32), rng.integers(0, 2, 64)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, epochs=3, batch_size=32, validation_data=(x, y), verbose=0,
          callbacks=[RecordCallback(sys.argv[1]), CtrlC()])
"""


@pytest.mark.slow
def test_ctrl_c_in_a_recorded_fit_marks_the_run_interrupted(tmp_path):
    """Item 8: a KeyboardInterrupt in a training step of a fit recorded by RecordCallback
    (where Keras calls no callback) leaves run.json ``interrupted`` when the process
    exits, as docs/run-directory.md says (was: ``running``)."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", STOPPED_FIT, str(out)], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert "KeyboardInterrupt" in done.stderr and done.returncode != 0, done.stderr[-2000:]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    assert [e["epoch"] for e in manifest["epochs"]] == [0]  # the committed epoch is kept
    assert run("show", out).exit_code == 0
