"""EarlyStopping and ReduceLROnPlateau sweeps over a study's trials (issue 19): each
record of a trial's run ends with the trial's number, state, value and parameters
(``TrialFields``); records of every other log are as before. And the study record types
as docs/sweep-output.md gives them."""

from __future__ import annotations

import csv
import io
import json
import re
import typing
from pathlib import Path

import pytest
from conftest import run, write_log

import analysis.results.records as records_module
from replay.output import hparams

DOC = Path(__file__).resolve().parents[1] / "docs" / "sweep-output.md"
TRIAL_FIELDS = ["trial_number", "trial_state", "trial_value", "trial_params"]
TYPES = {"early_stopping": "EarlyStoppingRecord", "reduce_lr_on_plateau": "PlateauRecord"}


def _fields(name: str) -> list[str]:
    return list(typing.get_type_hints(getattr(records_module, name)))


def _section(heading: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _field_table(section: str) -> list[str]:
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    return [n for row in rows for n in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_docs_give_the_study_record_fields_in_the_order_of_their_types():
    """docs/sweep-output.md's tables of the pruner record and of a trial's fields are in
    the order of PrunerRecord and TrialFields (analysis/results/records.py), which is the order
    of the keys in a record and of the columns in results.csv."""
    assert _field_table(_section("Pruner sweeps over a study (`--policy median_pruner` ...)")) == (
        _fields("PrunerRecord")
    )
    assert _field_table(_section("Records of a study's trials")) == _fields("TrialFields")
    assert _fields("TrialFields") == TRIAL_FIELDS
    assert _fields("TrialEarlyStoppingRecord") == _fields("EarlyStoppingRecord") + TRIAL_FIELDS
    assert _fields("TrialPlateauRecord") == _fields("PlateauRecord") + TRIAL_FIELDS


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A real Optuna study and its url."""
    pytest.importorskip("optuna")
    from optuna_harness import small_study

    url = f"sqlite:///{tmp_path_factory.mktemp('study') / 'study.db'}"
    small_study(url, n_trials=6)
    from analysis.formats.optuna_study import load_study

    return url, load_study(url)


def _json(result) -> list[dict]:
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


def test_each_record_of_a_trial_ends_with_the_trials_fields(study):
    url, loaded = study
    trials = {f"{loaded.name}/trial-{t.number}": t for t in loaded.trials}
    assert {"pruned", "complete"} <= {t.state for t in loaded.trials}
    records = _json(run("sweep", url, "--policy", "early_stopping,reduce_lr_on_plateau",
                        "--patience", "1,2", "--factor", "0.5", "--lr-patience", "1",
                        "--format", "json"))  # fmt: skip
    assert {r["policy"] for r in records} == {"early_stopping", "reduce_lr_on_plateau"}
    assert {r["run"] for r in records} == set(trials)
    for r in records:
        t = trials[r["run"]]
        assert list(r)[-4:] == TRIAL_FIELDS
        assert list(r)[:-4] == _fields(TYPES[r["policy"]])
        assert (r["trial_number"], r["trial_state"], r["trial_value"]) == (
            t.number, t.state, t.value)  # fmt: skip
        assert r["trial_params"] == t.params and set(t.params) == {"x", "width"}
    assert any(r["trial_state"] == "pruned" and r["trial_value"] is None for r in records)


def test_csv_pandas_and_hparams_show_the_trials_parameters(study, tmp_path):
    """results.csv and Sweep.to_pandas() have the trial's fields as columns
    (``trial_params.x``); the HParams sessions have its parameters as hyperparameters;
    the streamed JSON is json.dumps of the records."""
    import replay

    url, loaded = study
    answer = replay.sweep(url, patience=[1, 2], policy="early_stopping")
    out = tmp_path / "o"
    answer.save(out, charts=False)
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == len(answer.records)
    header = list(rows[0])
    assert header[-5:] == ["trial_number", "trial_state", "trial_value", "trial_params.x",
                           "trial_params.width"]  # fmt: skip
    by_number = {t.number: t for t in loaded.trials}
    for row in rows:
        t = by_number[int(row["trial_number"])]
        assert float(row["trial_params.x"]) == t.params["x"]
        assert row["trial_value"] == ("" if t.value is None else repr(t.value))
    df = answer.to_pandas()
    assert list(df.columns) == header
    assert df["trial_params.width"].tolist() == [by_number[n].params["width"]
                                                 for n in df["trial_number"]]  # fmt: skip
    written = (out / "results.json").read_text()
    assert json.loads(written) == json.loads(json.dumps(list(answer.records)))
    sessions = list(hparams.sessions(answer.records, answer.oracles))
    for s, r in zip(sessions, answer.records, strict=True):
        assert s.hparams["trial_params.x"] == r["trial_params"]["x"]
        assert s.hparams["trial_params.width"] == r["trial_params"]["width"]


def test_a_dialects_fields_come_before_the_trials(study):
    url, _ = study
    records = _json(run("sweep", url, "--dialect", "torch", "--factor", "0.5",
                        "--lr-patience", "1", "--format", "json"))  # fmt: skip
    assert records
    for r in records:
        assert list(r)[-6:] == ["dialect", "dialect_versions", *TRIAL_FIELDS]


def test_records_of_other_logs_have_no_trial_fields(tmp_path):
    """A log that is not a study's trial: its records and columns are as before."""
    log = write_log(tmp_path / "training.csv")
    result = run("sweep", log, "--policy", "early_stopping,reduce_lr_on_plateau",
                 "--patience", "2", "--format", "json")  # fmt: skip
    records = _json(result)
    assert records and not any(k.startswith("trial_") for r in records for k in r)
    for r in records:
        assert list(r) == _fields(TYPES[r["policy"]])
