"""The public Python API (``import replay``) gives the CLI's answers (issue 17).

The sameness test runs, for every log under tests/data and sample_logs and a set of
option combinations (each policy, each dialect, several runs, no learning rate, a
missing monitor), ``replay sweep ... --format json`` and ``replay.sweep(...)`` with
the same options as Python values, and requires the same records (byte for byte as
JSON), the same warnings and notes, or the same error message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import error_line, run, write_log

import replay
from analysis.errors import ReplayError
from analysis.formats import detect
from replay.engine.policies import PolicyError
from replay.output.writers import render_json
from replay.sweeping.sweep import Grid

ROOT = Path(__file__).resolve().parent.parent


def _logs() -> list[str]:
    """Every log under tests/data and sample_logs that a reader claims (the outermost
    path of each: a run directory, not its tensorboard/ folder), relative to ROOT."""
    found: list[Path] = []
    for top in (ROOT / "sample_logs", ROOT / "tests" / "data"):
        for p in sorted(top.rglob("*")):
            if p.name.startswith(".") or p.name == "VERSION" or p.suffix in (".py", ".json"):
                continue
            if any(parent in found for parent in p.parents):
                continue
            try:
                detect(p)
            except ReplayError:
                continue
            found.append(p)
    return [str(p.relative_to(ROOT)) for p in found]


LOGS = _logs()

#: (CLI options, the same as API keywords with Python values).
OPTIONS = [
    ([], {}),
    (["--patience", "3..10"], {"patience": range(3, 11)}),
    (["--restore-best-weights", "yes", "--min-delta", "0,0.001"],
     {"restore_best_weights": True, "min_delta": [0, 0.001]}),
    (["--baseline", "none,0.3", "--start-from-epoch", "2"], {"baseline": [None, 0.3],
                                                             "start_from_epoch": 2}),
    (["--policy", "reduce_lr_on_plateau", "--factor", "0.1,0.5", "--cooldown", "0..2"],
     {"policy": "reduce_lr_on_plateau", "factor": (0.1, 0.5), "cooldown": range(3)}),
    (["--policy", "reduce_lr_on_plateau", "--initial-lr", "0.01", "--min-lr", "0.001"],
     {"policy": "reduce_lr_on_plateau", "initial_lr": 0.01, "min_lr": 0.001}),
    (["--policy", "prechelt", "--gl-alpha", "1,3"], {"policy": "prechelt", "gl_alpha": [1, 3]}),
    (["--policy", "early_stopping+reduce_lr_on_plateau", "--patience", "2,5", "--factor", "0.5"],
     {"policy": "early_stopping+reduce_lr_on_plateau", "patience": [2, 5], "factor": 0.5}),
    (["--policy", "model_checkpoint"], {"policy": "model_checkpoint"}),
    (["--dialect", "tf-keras", "--patience", "1..3", "--dialect-version", "2.10"],
     {"dialect": "tf-keras", "patience": [1, 2, 3], "dialect_version": "2.10"}),
    (["--dialect", "torch", "--threshold-mode", "rel,abs", "--patience", "3,4"],
     {"dialect": "torch", "threshold_mode": ["rel", "abs"], "patience": (3, 4)}),
    (["--dialect", "lightning", "--patience", "2..4", "--no-check-finite"],
     {"dialect": "lightning", "patience": "2..4", "check_finite": False}),
    (["--dialect", "hf", "--early-stopping-threshold", "0,0.01"],
     {"dialect": "hf", "early_stopping_threshold": [0.0, 0.01]}),
    (["--dialect", "ultralytics", "--monitor", "fitness"],
     {"dialect": "ultralytics", "monitor": "fitness"}),
    (["--monitor", "val_nope"], {"monitor": "val_nope"}),
    (["--monitor", "val_loss,loss", "--mode", "min"], {"monitor": ["val_loss", "loss"],
                                                       "mode": "min"}),
]  # fmt: skip


def _api(paths: list[str], kwargs: dict):
    """``(json text, stderr lines)`` of replay.sweep, or ``(None, error message)``."""
    try:
        s = replay.sweep(paths, **kwargs)
    except ReplayError as e:
        return None, str(e)
    lines = [f"note: {n}" for n in s.dialect_notes]
    lines += [f"warning: {w}" for w in s.warnings]
    lines += [f"note: {n}" for n in s.result.notes]
    lines += s.shadow
    return render_json(s.records), lines


@pytest.fixture
def at_root(monkeypatch):
    """Run from the project root, so that both sides name the logs as given."""
    monkeypatch.chdir(ROOT)


def _same(paths: list[str], args: list[str], kwargs: dict) -> None:
    result = run("sweep", *paths, *args, "--format", "json")
    text, said = _api(paths, kwargs)
    if text is None:
        assert error_line(result) == f"Error: {said}"
        return
    assert result.exit_code == 0, result.stderr
    assert result.stdout == text
    assert result.stderr.splitlines() == said


def test_the_logs_found_cover_every_reader():
    formats = {replay.load(str(ROOT / p))[0].format for p in LOGS}
    assert {"run_dir", "csv", "tensorboard", "hf", "lightning", "ultralytics"} <= formats, formats
    assert len(LOGS) >= 12, LOGS


@pytest.mark.parametrize("log", LOGS)
@pytest.mark.parametrize(
    "args, kwargs", OPTIONS, ids=lambda x: " ".join(x) if isinstance(x, list) else None
)
def test_api_and_cli_give_the_same_records(at_root, log, args, kwargs):
    _same([log], args, kwargs)


@pytest.mark.parametrize(
    "args, kwargs", OPTIONS[:9], ids=lambda x: " ".join(x) if isinstance(x, list) else None
)
def test_api_and_cli_give_the_same_records_over_several_runs(at_root, args, kwargs):
    _same(["sample_logs/mnist-mlp", "sample_logs/mnist-mlp-plateau"], args, kwargs)


# ----------------------------------------------------------------------------------
# Logs in memory: a History, its dict, a DataFrame


VAL = [0.5, 0.4, 0.35, 0.36, 0.34, 0.37, 0.38, 0.39]
HISTORY = {"loss": [1.0 / (e + 1) for e in range(8)], "val_loss": VAL,
           "learning_rate": [0.001] * 8}  # fmt: skip


class History:  # what keras.callbacks.History holds after fit
    def __init__(self, history):
        self.history = history
        self.epoch = list(range(len(next(iter(history.values())))))


def _log_file(tmp_path) -> Path:
    lines = ["epoch,learning_rate,loss,val_loss"]
    lines += [f"{e},0.001,{HISTORY['loss'][e]!r},{VAL[e]!r}" for e in range(8)]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda: HISTORY,
        lambda: History(HISTORY),
        lambda: pd.DataFrame(HISTORY),
        lambda: {k: np.array(v) for k, v in HISTORY.items()},
    ],
    ids=["dict", "History", "DataFrame", "numpy"],
)
def test_a_history_in_memory_sweeps_as_its_csv_file(tmp_path, make):
    from_file = replay.sweep(_log_file(tmp_path), patience=range(1, 4))
    in_memory = replay.sweep(make(), patience=range(1, 4))
    strip = lambda recs: [{k: v for k, v in r.items() if k not in ("run", "source")}  # noqa: E731
                          for r in json.loads(render_json(recs))]  # fmt: skip
    assert strip(in_memory.records) == strip(from_file.records)
    assert in_memory.records[0]["run"] == "history"


@pytest.mark.parametrize(
    "bad, message",
    [
        (42, "cannot read a int as a log"),
        ({"loss": [1, 2], "val_loss": [1]}, "metrics of different lengths (loss: 2, val_loss: 1)"),
        ({"loss": ["a"]}, "'a' is not a number"),
        ({}, "the log has no metrics"),
    ],
)
def test_what_is_not_a_log_is_refused_in_one_line(bad, message):
    with pytest.raises(ReplayError, match=None) as e:
        replay.load(bad)
    assert message in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------------
# The Sweep object


@pytest.fixture(scope="module")
def sample():
    return replay.sweep(str(ROOT / "sample_logs/mnist-mlp"), patience=range(3, 11))


def test_to_pandas_is_results_csv_as_a_frame(sample, tmp_path):
    df = sample.to_pandas()
    out = tmp_path / "out"
    sample.save(out, charts=False)
    csv = pd.read_csv(out / "results.csv")
    assert list(df.columns) == list(csv.columns)
    assert len(df) == len(csv) == len(sample.records)
    assert df["params.patience"].tolist() == csv["params.patience"].tolist()
    assert df["regret"].fillna(-1).tolist() == pytest.approx(csv["regret"].fillna(-1).tolist())


def test_save_writes_what_the_cli_writes(sample, tmp_path):
    written = sample.save(tmp_path / "api")
    result = run("sweep", ROOT / "sample_logs/mnist-mlp", "--patience", "3..10", "--out",
                 tmp_path / "cli")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert sorted(written) == sorted(p.name for p in (tmp_path / "cli").iterdir())
    for name in ("results.json", "results.csv"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    with pytest.raises(ReplayError, match="directory exists and is not empty; pass --force"):
        sample.save(tmp_path / "api")


def test_table_verdict_and_best(sample):
    result = run("sweep", ROOT / "sample_logs/mnist-mlp", "--patience", "3..10", "--no-charts",
                 "--out", "/dev/null/x")  # fmt: skip
    assert "Error: --out /dev/null/x" in result.stderr  # (refused before any output)
    assert sample.table().startswith("== mnist-mlp: 30 epochs, monitor val_loss ==")
    assert sample.verdict.startswith("Cheapest best outcome: patience=4 restore")
    best = sample.best
    assert set(best["policy"]) == {"early_stopping", "reduce_lr_on_plateau"}
    es = best[best["policy"] == "early_stopping"].iloc[0]
    df = sample.to_pandas()
    stops = df[df["policy"] == "early_stopping"]
    assert es["regret"] == stops["regret"].min()
    fewest = stops[stops["regret"] == es["regret"]]["epochs_trained"].min()
    assert es["epochs_trained"] == fewest


def test_figures_are_the_charts_as_figures(sample):
    from matplotlib.figure import Figure

    figures = sample.figures()
    assert {"curves.png", "early_stopping.png", "lr_schedules.png", "tradeoff.png"} <= set(figures)
    assert all(isinstance(f, Figure) for f in figures.values())
    assert figures["curves.png"].get_suptitle().startswith("mnist-mlp: where each")


def test_repr_html_shows_verdict_best_rows_and_the_curves(sample):
    html = sample._repr_html_()
    assert "Cheapest best outcome" in html
    assert "<table" in html and "params.patience" in html
    assert '<img src="data:image/png;base64,' in html


def test_to_tensorboard_writes_an_hparams_experiment(sample, tmp_path):
    n = sample.to_tensorboard(tmp_path / "tb")
    assert n == len(sample.records)
    assert len([p for p in (tmp_path / "tb").iterdir() if p.is_dir()]) == n
    with pytest.raises(ReplayError, match="not empty"):
        sample.to_tensorboard(tmp_path / "tb")


# ----------------------------------------------------------------------------------
# pick and show


def test_pick_says_what_the_cli_says():
    path = str(ROOT / "sample_logs/mnist-mlp")
    answer = replay.pick(path, patience=5, restore_best_weights=True)
    result = run("pick", path, "--patience", "5", "--restore-best-weights", "yes")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("\n".join(answer.lines) + "\n")
    assert answer.final_epoch == 5
    with pytest.raises(ReplayError, match="pick takes one value"):
        replay.pick(path, patience=[3, 4])


def test_show_says_what_the_cli_says(tmp_path):
    log = write_log(tmp_path / "log.csv")
    summary = replay.show(log)
    result = run("show", log)
    assert result.stdout == summary.text
    assert summary.figure().axes


# ----------------------------------------------------------------------------------
# Grids are checked when built; options are checked as the CLI checks them


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"policies": ("bogus",)}, PolicyError, "policy must be one of"),
        ({"dialect": "hf", "policies": ("early_stopping+reduce_lr_on_plateau",)},
         ReplayError, "--policy early_stopping+reduce_lr_on_plateau: the hf dialect has"),
        ({"dialect": "torch", "policies": ("early_stopping",)}, ReplayError,
         "--policy early_stopping: the torch dialect has reduce_lr_on_plateau only."),
        ({"dialect": "nope"}, ReplayError, "--dialect must be one of"),
        ({"factor": (1.5,)}, ReplayError, "--factor: 1.5 is out of range"),
        ({"mode": "up"}, PolicyError, "mode must be one of auto, min, max"),
        ({"dialect": "tf-keras", "dialect_version": "2.99"}, ReplayError, "2.6-2.21"),
    ],
)  # fmt: skip
def test_every_grid_is_checked_when_built(kwargs, error, message):
    with pytest.raises(error, match=None) as e:
        Grid(**kwargs)
    assert message in str(e.value)


def test_both_grid_constructors_have_one_default():
    assert Grid() == Grid.from_options()
    assert Grid().monitors == ()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"patience": -1}, "--patience"),
        ({"patience": 1.5}, "--patience"),
        ({"restore_best_weights": "maybe"}, "--restore-best-weights: expected yes, no or both"),
        ({"bogus": 1}, "unknown option 'bogus'"),
        ({"min_delta": []}, "--min-delta: no values given."),
    ],
)
def test_bad_options_raise_the_cli_message(kwargs, message):
    with pytest.raises(ReplayError) as e:
        replay.sweep(str(ROOT / "sample_logs/mnist-mlp"), **kwargs)
    assert message in str(e.value)


def test_bad_option_values_give_the_clis_message_word_for_word():
    with pytest.raises(ReplayError) as e:
        replay.sweep(str(ROOT / "sample_logs/mnist-mlp"), patience="3..x")
    result = run("sweep", ROOT / "sample_logs/mnist-mlp", "--patience", "3..x")
    assert error_line(result) == f"Error: {e.value}"


def test_import_replay_loads_nothing_heavy():
    code = (
        "import sys, replay; replay.__version__; "
        "heavy = [m for m in ('numpy', 'pandas', 'matplotlib', 'tensorflow', 'optuna', 'jax') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_a_dialect_that_cannot_replay_the_policy_says_so_in_one_plain_note(at_root):
    # Issue 21 item 6: the note was "...has early_stopping only. (in the lightning
    # dialect); replayed in the keras dialect instead."
    log = "tests/data/formats/lightning/lightning_logs"
    s = replay.sweep(log, policy="reduce_lr_on_plateau", patience=2)
    assert s.dialect_notes == [
        "lightning logs are replayed in the lightning dialect, but --policy "
        "reduce_lr_on_plateau: the lightning dialect has early_stopping only; replayed "
        "in the keras dialect instead."
    ]
    assert all("dialect" not in r for r in s.records)
    result = run("sweep", log, "--policy", "reduce_lr_on_plateau", "--patience", "2",
                 "--format", "csv")  # fmt: skip
    assert f"note: {s.dialect_notes[0]}" in result.stderr.splitlines()


def test_a_log_given_twice_is_one_run_in_the_api_too(at_root):
    s = replay.sweep(["sample_logs/mnist-mlp", "./sample_logs/mnist-mlp"], patience=3)
    assert len(s.runs) == 1
    assert "sample_logs/mnist-mlp: given twice; read once" in s.warnings
    _same(["sample_logs/mnist-mlp", "./sample_logs/mnist-mlp"], ["--patience", "3"],
          {"patience": 3})  # fmt: skip


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (["--patience", "3..10"], {"patience": range(3, 11)}),
        (["--patience", "2,5", "--factor", "0.1,0.5", "--cooldown", "0..1"],
         {"patience": [2, 5], "factor": [0.1, 0.5], "cooldown": range(2)}),
        (["--policy", "early_stopping+reduce_lr_on_plateau", "--patience", "5", "--min-delta", "0",
          "--lr-patience", "3", "--lr-min-delta", "1e-4", "--factor", "0.25",
          "--restore-best-weights", "no"],
         {"policy": "early_stopping+reduce_lr_on_plateau", "patience": 5, "min_delta": 0,
          "lr_patience": 3, "lr_min_delta": 1e-4, "factor": 0.25, "restore_best_weights": False}),
        (["--baseline", "0.5"], {"baseline": 0.5}),
        (["--policy", "early_stopping"], {"policy": "early_stopping"}),
    ],
)  # fmt: skip
def test_plan_branch_is_the_dry_run(at_root, args, kwargs):
    """replay.plan_branch(RUN, ...) gives the plan `replay branch RUN ... --dry-run`
    prints, or its one-line error."""
    result = run("branch", "sample_logs/mnist-mlp", *args, "--dry-run")
    try:
        plan = replay.plan_branch("sample_logs/mnist-mlp", **kwargs)
    except ReplayError as e:
        assert error_line(result) == f"Error: {e}"
        return
    assert result.exit_code == 0, result.stderr
    assert result.stdout == plan.text
    assert len(plan.settings) == len(plan.plan.settings) > 0
