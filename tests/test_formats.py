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
from replay.cli import cli

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
