"""A monitor that is never finite (issue 20): named once, in one line, by show and sweep.

The decisions themselves stay each dialect's: the stop epochs below come from the
dialect modules, which the truth tables of the real frameworks check on all-NaN curves
(tests/data/dialects/*.json) and, for Keras 3, tests/test_keras_parity.py.
"""

from __future__ import annotations

import json
import math

import pytest

from replay.engine.dialects import NAN_RULES, never_finite_note
from replay.engine.dialects import hf as hf_dialect
from replay.engine.dialects import lightning as lightning_dialect
from replay.engine.policies import early_stopping
from tests.conftest import run

NAN = math.nan


def _diverged(tmp_path, n=6, val="nan"):
    p = tmp_path / "diverged.csv"
    rows = ["epoch,loss,val_loss"] + [f"{e},{1.0 / (e + 1)},{val}" for e in range(n)]
    p.write_text("\n".join(rows) + "\n")
    return p


def _notes(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "never finite" in ln]


def test_show_names_the_never_finite_metric_once(tmp_path):
    result = run("show", _diverged(tmp_path))
    assert result.exit_code == 0, result.output
    notes = _notes(result.output)
    assert len(notes) == 1
    assert "val_loss (NaN at each of its 6 epochs) is never finite" in notes[0]
    assert "loss (" not in notes[0].replace("val_loss (", "")  # loss is finite
    assert NAN_RULES["keras"] in notes[0]


def test_show_of_a_finite_log_says_nothing(tmp_path):
    result = run("show", _diverged(tmp_path, val="0.5"))
    assert result.exit_code == 0 and not _notes(result.output)


def _stops(stdout: str) -> dict[int, set]:
    """patience -> the stop epochs of its records (one each, whatever else varies)."""
    out: dict[int, set] = {}
    for r in json.loads(stdout):
        out.setdefault(r["params"]["patience"], set()).add(r["stopped_epoch"])
    return out


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("keras", lambda p: early_stopping([NAN] * 6, patience=p).stopped_epoch),
        ("lightning", lambda p: lightning_dialect.early_stopping([NAN] * 6, patience=p)
         .stopped_epoch),
        ("hf", lambda p: hf_dialect.early_stopping([NAN] * 6, early_stopping_patience=p)
         .stopped_epoch),
    ],
)  # fmt: skip
def test_sweep_names_it_once_and_keeps_the_dialects_rule(tmp_path, dialect, expected):
    args = ["sweep", _diverged(tmp_path), "--policy", "early_stopping", "--patience", "1..3"]
    result = run(*args, "--dialect", dialect, "--format", "json")
    assert result.exit_code == 0, result.stderr
    notes = _notes(result.stderr)
    assert len(notes) == 1, result.stderr
    assert "val_loss (NaN at each of its 6 epochs)" in notes[0]
    assert NAN_RULES[dialect] in notes[0]
    assert _stops(result.stdout) == {p: {expected(p)} for p in (1, 2, 3)}


def test_lightning_stops_at_once_keras_after_patience(tmp_path):
    # The rules the note names, as numbers: check_finite stops at the first epoch;
    # Keras 3 takes the first NaN as best and stops `patience` epochs later.
    log = _diverged(tmp_path)
    got = {}
    for dialect in ("keras", "lightning"):
        result = run("sweep", log, "--policy", "early_stopping", "--patience", "2",
                     "--dialect", dialect, "--format", "json")  # fmt: skip
        got[dialect] = _stops(result.stdout)
    assert got == {"keras": {2: {2}}, "lightning": {2: {0}}}


def test_note_names_inf_and_several_metrics():
    note = never_finite_note("r", {"a": [math.inf, None, math.inf], "b": [NAN, -math.inf]})
    assert note.startswith("r: a (inf at each of its 2 epochs), b (-inf or NaN at each of its 2")
    assert "are never finite" in note
    assert never_finite_note("r", {"a": [NAN, 1.0]}) is None
    assert never_finite_note("r", {"a": [None, None]}) is None
