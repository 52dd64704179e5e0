"""Detection of the other frameworks' logs, and the CLI on each of their fixtures.

Each reader has its own test file (test_formats_lightning.py, _hf, _ultralytics, _mlflow);
here: which reader claims which path, what an unknown CSV gets, and that ``replay sweep``
and ``replay show`` answer on every fixture (in-process, CliRunner).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.errors import BadLog
from analysis.formats import detect, load_run
from replay.commands.cli import cli

FORMATS = Path(__file__).parent / "data" / "formats"
LIGHTNING = FORMATS / "lightning" / "lightning_logs"
ULTRA = FORMATS / "ultralytics"


@pytest.mark.parametrize(("path", "name"), [
    (LIGHTNING, "lightning"),
    (LIGHTNING / "version_0", "lightning"),
    (LIGHTNING / "version_1" / "metrics.csv", "lightning"),
    (FORMATS / "hf" / "epoch", "hf"),
    (FORMATS / "hf" / "epoch" / "trainer_state.json", "hf"),
    (FORMATS / "hf" / "steps", "hf"),
    (ULTRA / "detect_8.0", "ultralytics"),
    (ULTRA / "segment_8.4" / "results.csv", "ultralytics"),
    (ULTRA / "yolov5_coco" / "results.csv", "ultralytics"),
    (FORMATS / "mlflow" / "mlruns", "mlflow"),
])  # fmt: skip
def test_detection(path, name):
    assert detect(path).name == name


@pytest.mark.parametrize(("header", "name"), [
    ("epoch,step,val_loss", "lightning"),
    ("val_loss,epoch,step", "lightning"),
    ("           epoch,  train/box_loss,  metrics/mAP50(B)", "ultralytics"),
    ("epoch,loss,val_loss", "csv"),
    ("epoch,loss,step_time", "csv"),
])  # fmt: skip
def test_csv_headers(tmp_path, header, name):
    p = tmp_path / "log.csv"
    p.write_text(header + "\n" + ",".join(["1"] * len(header.split(","))) + "\n")
    assert detect(p).name == name


def test_unknown_csv_is_refused_naming_every_layout(tmp_path):
    p = tmp_path / "results.csv"
    p.write_text("iteration,score\n1,0.5\n")
    with pytest.raises(BadLog) as info:
        load_run(p)
    message = str(info.value)
    assert "Lightning CSVLogger" in message and "Ultralytics" in message and "\n" not in message


# (fixture, extra sweep options, run header(s) the sweep prints)
SWEEPS = [
    (LIGHTNING, [], ["== version_0: 12 epochs, monitor val_loss ==",
                     "== version_1: 8 epochs, monitor val_loss =="]),
    (FORMATS / "hf" / "epoch", [], ["== epoch: 10 epochs, monitor val_accuracy =="]),
    (FORMATS / "hf" / "steps", [], ["== steps/checkpoint-300: 10 epochs, monitor val_loss =="]),
    (ULTRA / "detect_8.0", [], ["== detect_8.0: 15 epochs, monitor fitness =="]),
    (ULTRA / "classify_8.2", [], ["== classify_8.2: 12 epochs, monitor fitness =="]),
    (ULTRA / "segment_8.4", [], ["== segment_8.4: 14 epochs, monitor fitness =="]),
    (ULTRA / "yolov5_coco", ["--monitor", "val/box_loss"],
     ["== yolov5_coco: 12 epochs, monitor val/box_loss =="]),
    (FORMATS / "mlflow" / "mlruns", [], ["== lit: 8 epochs, monitor val_loss ==",
                                         "== mlp: 14 epochs, monitor val_loss =="]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "extra", "headers"), SWEEPS, ids=[str(s[0].relative_to(FORMATS)) for s in SWEEPS]
)
def test_cli_sweep_and_show(tmp_path, path, extra, headers):
    runner = CliRunner()
    result = runner.invoke(cli, ["sweep", str(path), "--patience", "3..10", "--no-charts",
                                 "--out", str(tmp_path / "out"), *extra])  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    for header in headers:
        assert header in result.output
    assert "EarlyStopping (" in result.output
    assert "Traceback" not in result.stderr
    for line in result.stderr.splitlines():  # one line each, from the reader
        assert re.match(r"(warning|note): |wrote ", line), line
    show = runner.invoke(cli, ["show", str(path)])
    assert show.exit_code == 0, show.output + show.stderr
    assert "epochs:" in show.output


# ---------------------------------------------------------------- one log given twice


def _logs(tmp_path: Path) -> None:
    """A folder of two run directories, a CSV log of two trainings, links to them."""
    import json
    import os

    from conftest import log_text, make_run

    for name in ("a", "b"):
        manifest = make_run(tmp_path / "runs" / name, n=6) / "run.json"
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "shadow": []}))
    (tmp_path / "two.csv").write_text(log_text(6) + log_text(8))
    os.symlink(tmp_path / "runs" / "a", tmp_path / "link")
    os.link(tmp_path / "two.csv", tmp_path / "hard.csv")
    (tmp_path / "sub").mkdir()


@pytest.mark.parametrize(
    ("specs", "runs", "warning"),
    [
        (["runs/a", "runs/a"], 1, "runs/a: given twice; read once"),
        (["runs/a", "./runs/a/"], 1, "runs/a: given twice; read once"),
        (["runs/a", "sub/../runs/a"], 1, "sub/../runs/a: the same log as runs/a; read once"),
        (["runs/a", "link"], 1, "link: the same log as runs/a; read once"),
        (["runs/a", "runs/a/metrics.csv"], 1,
         "runs/a/metrics.csv: the same log as runs/a; read once"),
        (["runs/a", "runs/a#1"], 1, "runs/a: given twice; read once"),
        (["runs", "runs/b"], 2, "runs/b: given twice; read once"),
        (["two.csv", "two.csv#2"], 2, "two.csv#2: given twice; read once"),
        (["two.csv#1", "hard.csv"], 2, "hard.csv#1: the same log as two.csv#1; read once"),
        (["runs/a", "runs/b"], 2, None),
        (["two.csv#1", "two.csv#2"], 2, None),
    ],
)  # fmt: skip
def test_one_log_given_twice_is_read_once_with_a_warning(tmp_path, monkeypatch, specs, runs,
                                                         warning):  # fmt: skip
    import json

    _logs(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["sweep", *specs, "--patience", "2", "--policy",
                                      "early_stopping", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len({r["run"] for r in records}) == runs
    warnings = [ln for ln in result.stderr.splitlines() if "read once" in ln]
    assert warnings == ([f"warning: {warning}"] if warning else [])


def test_one_log_given_twice_is_one_run_across_runs(tmp_path, monkeypatch):
    """The reproducer: a log twice was 'best in 2/2' with a bootstrap interval."""
    _logs(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["sweep", "runs/a", "link", "--patience", "2", "--policy",
                                      "early_stopping", "--no-charts", "--out", "out"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "across runs" not in result.stdout
    assert "/2" not in result.stdout


def test_the_readers_are_the_layouts_in_their_order():
    # analysis.reading.layouts names every layout for messages (below the readers, so that a
    # reader's error can name them without importing the detection step): one list.
    from analysis.formats import FORMATS
    from analysis.reading.layouts import LAYOUTS, expected_layouts

    assert [(f.name, f.describe, f.csv) for f in FORMATS] == [
        (x.name, x.describe, x.csv) for x in LAYOUTS
    ]
    assert expected_layouts().endswith(" or " + LAYOUTS[-1].describe)
