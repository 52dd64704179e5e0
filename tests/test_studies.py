"""Studies as logs (Optuna storages, KerasTuner projects) and pruner sweeps over them,
end to end through the CLI, checked against real Optuna."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

from conftest import error_line, run  # noqa: E402
from optuna_harness import optuna_prune_points, quiet_optuna  # noqa: E402

from analysis.formats import load_logs  # noqa: E402
from analysis.formats.optuna_study import load_study  # noqa: E402
from replay.engine.pruner_replay import TrialCurve  # noqa: E402
from replay.sweeping.study_sweep import PrunerGrid, pruned_map, sweep_study  # noqa: E402


def _objective(seed: int = 0, epochs: int = 8):
    rng = random.Random(seed)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        base = rng.uniform(0.2, 1.0)
        v = math.nan
        for epoch in range(epochs):
            v = base * 0.9**epoch + abs(math.log10(lr) + 2) * 0.1
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return v

    return objective


def make_study(storage, name="demo", n_trials=12, pruner=None, direction="minimize", seed=0):
    quiet_optuna()
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    study.optimize(_objective(seed), n_trials=n_trials)
    return study


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "study.db"
    make_study(f"sqlite:///{path}")
    return path


def _records(result) -> list[dict]:
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


def test_sweep_of_a_real_study_median_grid(db):
    """The issue's 'done when' command: 36 settings, exit 0, each setting's prune points
    equal to real Optuna replaying the same trials in the same order."""
    result = run(
        "sweep", f"sqlite:///{db}", "--policy", "median_pruner",
        "--n-startup-trials", "0..5", "--n-warmup-steps", "0..5", "--format", "json",
    )  # fmt: skip
    records = _records(result)
    assert len(records) == 36
    study = load_study(f"sqlite:///{db}")
    recorded = pruned_map(study)
    assert recorded  # the study pruned some trials
    curves = [TrialCurve(t.number, t.steps, t.values, t.state) for t in study.trials]
    for r in records:
        params = r["params"]
        real = optuna_prune_points(
            curves, optuna.pruners.MedianPruner(**params), "minimize", study.name
        )
        # Censored trials end pruned at their last step in both (what the record holds).
        assert {int(k): v for k, v in r["pruned_at"].items()} == real, r["setting"]
        assert r["steps_recorded"] == sum(len(t.steps) for t in study.trials)
    # The pruner the study ran with (startup 2, warm-up 1) reproduces its pruning.
    ran = [r for r in records if r["params"]["n_startup_trials"] == 2
           and r["params"]["n_warmup_steps"] == 1]  # fmt: skip
    assert ran[0]["reproduces_recorded"] is True
    assert ran[0]["censored"] == [] and ran[0]["regret"] == 0
    assert ran[0]["best_trial"] == study.best_trial().number


def test_censored_trials_are_marked_never_guessed(db):
    """A setting that lets a recorded-pruned trial run on cannot know its end: the trial
    is censored, the best is not known and the regret is null."""
    study = load_study(f"sqlite:///{db}")
    grid = PrunerGrid.from_options(["median_pruner"], n_warmup_steps=(5,))
    (record,) = sweep_study(study, grid).records
    recorded = pruned_map(study)
    # Censored: the recorded-pruned trials this setting does not prune by their last step.
    assert record["censored"] == sorted(n for n in recorded if n not in record["pruned_at"])
    assert len(record["censored"]) >= 2
    assert all(record["pruned_at"][n] <= recorded[n] for n in record["pruned_at"])
    assert record["best_known"] is False and record["regret"] is None
    assert record["exact_until"] == record["censored"][0]
    assert record["reproduces_recorded"] is False
    assert record["steps_trained"] == record["steps_recorded"]  # a lower bound, marked


def test_table_names_the_reproducing_settings_and_recorded_pruner(db, tmp_path):
    result = run(
        "sweep", f"sqlite:///{db}", "--policy", "median_pruner", "--n-startup-trials", "2",
        "--n-warmup-steps", "1,4", "--out", tmp_path / "o",
        "--recorded-pruner",
        "median_pruner n_startup_trials=2 n_warmup_steps=1 interval_steps=1 n_min_trials=1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "settings that reproduce the recorded pruning (1)" in result.stdout
    assert (
        "recorded pruner median_pruner n_startup_trials=2 n_warmup_steps=1 interval_steps=1 "
        "n_min_trials=1: reproduces the recorded pruning" in result.stdout
    )
    assert "censored" in result.stdout
    written = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert written == ["median_pruner.png", "results.csv", "results.json"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o" / "results.csv").read_text())))
    assert len(rows) == 2 and rows[0]["params.n_warmup_steps"] == "1"


def test_show_lists_the_trials(db):
    result = run("show", f"sqlite:///{db}")
    assert result.exit_code == 0, result.stderr
    study = load_study(f"sqlite:///{db}")
    for t in study.trials:
        assert any(line.startswith(f"#{t.number} ") for line in result.stdout.splitlines())
    assert "pruned" in result.stdout and "lr=" in result.stdout


def test_journal_file_reads_like_the_database(tmp_path, db):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    journal = tmp_path / "study.log"
    make_study(JournalStorage(JournalFileBackend(str(journal))))
    a, b = load_study(str(journal)), load_study(f"sqlite:///{db}")
    assert [(t.number, t.state, t.steps, t.values) for t in a.trials] == [
        (t.number, t.state, t.steps, t.values) for t in b.trials
    ]
    runs = load_logs(journal)  # detection: each trial a run
    assert len(runs) == len(a.trials) and runs[0].name == "demo/trial-0"


def test_several_studies_need_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    make_study(url, "a", n_trials=3)
    make_study(url, "b", n_trials=3)
    line = error_line(run("sweep", url, "--policy", "median_pruner", catch_exceptions=True))
    assert line.endswith("holds 2 studies (a, b); pick one with --study NAME")
    ok = run("sweep", url, "--study", "b", "--policy", "median_pruner", "--format", "json")
    assert _records(ok)[0]["run"] == "b"
    line = error_line(run("sweep", url, "--study", "c", "--policy", "median_pruner",
                          catch_exceptions=True))  # fmt: skip
    assert "no study named 'c'; it holds a, b" in line
    # EarlyStopping over a study's trials: --study picks it, each trial a run.
    es = run("sweep", url, "--study", "a", "--patience", "1", "--format", "json",
             "--restore-best-weights", "no")  # fmt: skip
    assert {r["run"] for r in _records(es)} == {"a/trial-0", "a/trial-1", "a/trial-2"}


def test_multi_objective_refused_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    quiet_optuna()
    study = optuna.create_study(storage=url, study_name="mo", directions=["minimize"] * 2)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
    line = error_line(run("sweep", url, "--policy", "median_pruner", catch_exceptions=True))
    assert line == (
        f"Error: {url}: study 'mo' is multi-objective (2 objectives); Optuna's pruners do "
        "not support it"
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--policy", "median_pruner", "--percentile", "50"],
         "--percentile: no chosen pruner takes it (median_pruner)"),
        (["--policy", "threshold_pruner"], "threshold_pruner: give --lower, --upper or both."),
        (["--n-startup-trials", "3"], "--n-startup-trials: a pruner option; pass --policy"),
        (["--policy", "median_pruner,early_stopping"], "cannot be swept together"),
        (["--policy", "successive_halving_pruner", "--reduction-factor", "1"],
         "must be `reduction_factor >= 2`"),
        (["--policy", "hyperband_pruner", "--bootstrap-count", "1"],
         "bootstrap_count > 0 and max_resource == 'auto' are mutually incompatible"),
        (["--policy", "patient_pruner", "--wrapped", "nope"], "--wrapped: 'nope' is not one of"),
    ],
)  # fmt: skip
def test_bad_pruner_grids_refused_in_one_line(db, args, message):
    line = error_line(run("sweep", f"sqlite:///{db}", *args, catch_exceptions=True))
    assert message in line


def test_every_pruner_policy_sweeps(db):
    result = run(
        "sweep", f"sqlite:///{db}", "--format", "json",
        "--policy", "percentile_pruner,successive_halving_pruner,hyperband_pruner,"
        "threshold_pruner,patient_pruner",
        "--percentile", "50", "--n-startup-trials", "1", "--min-resource", "1,auto",
        "--reduction-factor", "2,3", "--upper", "0.7", "--patience", "1",
        "--wrapped", "none,median_pruner",
    )  # fmt: skip
    records = _records(result)
    policies = {r["policy"] for r in records}
    assert policies == {
        "percentile_pruner", "successive_halving_pruner", "hyperband_pruner",
        "threshold_pruner", "patient_pruner",
    }  # fmt: skip
    hb = [r for r in records if r["policy"] == "hyperband_pruner"]
    assert {r["params"]["min_resource"] for r in hb} == {1}  # 'auto' is SH's only
    assert any(r["n_pruned"] for r in records)


def test_sweep_and_help_never_import_optuna(tmp_path):
    code = (
        "import sys\n"
        "from replay.commands.cli import cli\n"
        "for args in (['sweep', '--help'], ['show', '--help'], ['--help']):\n"
        "    try:\n"
        "        cli(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('IMPORTED', [m for m in ('optuna', 'keras_tuner') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "IMPORTED []" in out.stdout


KT_SCRIPT = """
import sys
import numpy as np, keras, keras_tuner as kt
x = np.random.RandomState(0).rand(48, 3).astype("float32")
y = (x.sum(1) > 1.5).astype("float32")
def build(hp):
    m = keras.Sequential([keras.layers.Input((3,)),
        keras.layers.Dense(hp.Int("units", 2, 6, step=2), activation="relu"),
        keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
              loss="binary_crossentropy")
    return m
t = kt.RandomSearch(build, objective="val_loss", max_trials=3, directory=sys.argv[1],
                    project_name="demo", seed=1, overwrite=True)
t.search(x, y, epochs=2, validation_split=0.25, verbose=0)
"""


@pytest.fixture(scope="module")
def kt_project(tmp_path_factory):
    pytest.importorskip("keras_tuner")
    root = tmp_path_factory.mktemp("kt")
    out = subprocess.run([sys.executable, "-c", KT_SCRIPT, str(root)], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return root


@pytest.mark.slow
def test_kerastuner_project_written_by_keras_tuner(kt_project):
    """A project the real keras-tuner wrote: trials, objective, direction, parameters."""
    from analysis.formats.kerastuner import load_project

    study = load_project(kt_project / "demo")
    assert study.metric == "val_loss" and study.direction == "minimize"
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert all(t.state == "complete" and t.steps for t in study.trials)
    assert set(study.trials[0].params) == {"units", "lr"}
    assert study.best_trial().value == min(t.value for t in study.trials)
    runs = load_logs(kt_project)  # detection: the folder holding the project
    assert [r.name for r in runs] == ["demo/trial-0", "demo/trial-1", "demo/trial-2"]
    shown = run("show", kt_project / "demo")
    assert shown.exit_code == 0 and "units=" in shown.stdout
    swept = run("sweep", kt_project / "demo", "--policy", "median_pruner", "--format", "json")
    assert len(_records(swept)) == 1


@pytest.mark.slow
def test_example_runs_a_study_and_sweeps_it(tmp_path):
    """examples/optuna_study.py on tiny settings: a real study of the MNIST MLP, each
    epoch reported from a Keras callback, then the pruner sweep over it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, root / "examples" / "optuna_study.py", "--trials", "3", "--epochs", "2",
         "--limit", "500", "--storage", "sqlite:///s.db", "--out", "o"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "settings that reproduce the recorded pruning" in done.stdout
    study = load_study(f"sqlite:///{tmp_path / 's.db'}")
    assert [len(t.steps) for t in study.trials] == [2, 2, 2]
    assert {"width", "learning_rate"} == set(study.trials[0].params)
    records = json.loads((tmp_path / "o" / "results.json").read_text())
    assert len(records) == 4 * 1 and (tmp_path / "o" / "median_pruner.png").is_file()


def test_pruners_only_over_studies_and_only_in_sweep(tmp_path):
    log = tmp_path / "training.csv"
    log.write_text("epoch,loss,val_loss\n0,1.0,1.0\n1,0.5,0.9\n")
    line = error_line(run("sweep", log, "--policy", "median_pruner", catch_exceptions=True))
    assert line.startswith(f"Error: {log}: not a study; a pruner sweep reads an Optuna storage")
    line = error_line(run("pick", log, "--policy", "median_pruner", catch_exceptions=True))
    assert line.startswith("Error: --policy: 'median_pruner' is not one of early_stopping")


def test_missing_or_foreign_storage_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    line = error_line(run("sweep", url, "--policy", "median_pruner", catch_exceptions=True))
    assert line == (
        f"Error: {url}: no such database file {tmp_path / 'none.db'}; pass the sqlite:/// "
        "URL of an existing study"
    )
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 10)
    line = error_line(run("show", f"sqlite:///{junk}", catch_exceptions=True))
    assert line.startswith(f"Error: sqlite:///{junk}: cannot be opened as an Optuna storage (")
    assert not (tmp_path / "none.db").exists()  # nothing created


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (["--policy", "median_pruner", "--n-startup-trials", "0..5", "--n-warmup-steps", "0..5"],
         {"policy": "median_pruner", "n_startup_trials": range(6), "n_warmup_steps": range(6)}),
        (["--policy", "hyperband_pruner,successive_halving_pruner", "--reduction-factor", "2,3"],
         {"policy": ["hyperband_pruner", "successive_halving_pruner"],
          "reduction_factor": [2, 3]}),
        (["--policy", "patient_pruner", "--patience", "1..3", "--wrapped", "none,median_pruner"],
         {"policy": "patient_pruner", "patience": range(1, 4),
          "wrapped": [None, "median_pruner"]}),
        (["--policy", "threshold_pruner", "--n-min-trials", "2"],
         {"policy": "threshold_pruner", "n_min_trials": 2}),
    ],
)  # fmt: skip
def test_the_python_api_sweeps_a_study_as_the_cli_does(db, args, kwargs):
    """Issue 17's sameness, for pruner sweeps: replay.sweep(STUDY, policy=<pruner>, ...)
    gives the records of `replay sweep STUDY --policy <pruner> ... --format json`, or its
    error."""
    import replay
    from analysis.errors import ReplayError
    from replay.sweeping.study_sweep import to_json

    result = run("sweep", f"sqlite:///{db}", *args, "--format", "json")
    try:
        answer = replay.sweep(f"sqlite:///{db}", **kwargs)
    except ReplayError as e:
        assert error_line(result) == f"Error: {e}"
        return
    assert result.exit_code == 0, result.stderr
    assert to_json(answer.records) == result.stdout
    assert len(answer.to_pandas()) == len(answer.records)
    assert set(answer.figures()) == {f"{p}.png" for p in dict.fromkeys(
        r["policy"] for r in answer.records)}  # fmt: skip


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (["--policy", "median_pruner", "--n-warmup-steps", "0..2"],
         {"policy": "median_pruner", "n_warmup_steps": range(3)}),
        (["--policy", "hyperband_pruner,successive_halving_pruner", "--reduction-factor", "2,3",
          "--format", "csv"],
         {"policy": ["hyperband_pruner", "successive_halving_pruner"],
          "reduction_factor": [2, 3]}),
        (["--policy", "patient_pruner", "--patience", "1,2", "--wrapped", "none,median_pruner",
          "--no-charts", "--format", "json"],
         {"policy": "patient_pruner", "patience": [1, 2], "wrapped": [None, "median_pruner"]}),
    ],
)  # fmt: skip
def test_pruner_sweep_save_writes_what_the_cli_writes(db, tmp_path, args, kwargs):
    """PrunerSweep.save is the one writer of a pruner sweep's --out folder: the CLI's
    files and the API's are the same names, byte for byte (charts: by name)."""
    import replay

    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    result = run("sweep", f"sqlite:///{db}", *args, "--out", cli_out)
    assert result.exit_code == 0, result.stderr
    answer = replay.sweep(f"sqlite:///{db}", **kwargs)
    written = answer.save(api_out, charts="--no-charts" not in args)
    assert f"wrote {', '.join(written)} to {cli_out}" in result.stderr
    assert sorted(p.name for p in cli_out.iterdir()) == sorted(written)
    assert sorted(p.name for p in api_out.iterdir()) == sorted(written)
    charts = [n for n in written if n.endswith(".png")]
    assert charts == ([] if "--no-charts" in args else [f"{p}.png" for p in dict.fromkeys(
        r["policy"] for r in answer.records)])  # fmt: skip
    for name in written:
        if name.endswith(".png"):
            assert (api_out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert (api_out / name).read_bytes() == (cli_out / name).read_bytes(), name
    if "--format" in args:  # the chosen format also went to stdout
        fmt = args[args.index("--format") + 1]
        assert result.stdout == (api_out / f"results.{fmt}").read_text()


def test_pruner_sweep_save_refuses_as_the_cli_and_writes_nothing(db, tmp_path):
    import replay
    from analysis.errors import ReplayError

    answer = replay.sweep(f"sqlite:///{db}", policy="median_pruner", n_warmup_steps=[0, 1])
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    cli = error_line(run("sweep", f"sqlite:///{db}", "--policy", "median_pruner", "--out", full))
    with pytest.raises(ReplayError) as e:
        answer.save(full)
    assert (
        f"Error: {e.value}"
        == cli
        == (
            f"Error: --out {full}: directory exists and is not empty; pass --force to overwrite "
            "its results, or choose another directory."
        )
    )
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ReplayError, match="exists and is not a directory; choose another path"):
        answer.save(a_file)
    assert a_file.read_text() == "x"
    assert answer.save(full, force=True, charts=False) == ["results.json", "results.csv"]
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt", "results.csv", "results.json"]


def test_pruner_sweep_in_python_table_pandas_and_notebook_view(db, tmp_path):
    """table() is the CLI's text, to_pandas() the columns and rows of results.csv, and a
    notebook shows the table and a chart inline."""
    import html

    import replay

    args = ["--policy", "median_pruner", "--n-startup-trials", "0,2", "--n-warmup-steps", "0,1"]
    result = run("sweep", f"sqlite:///{db}", *args, "--no-charts", "--out", tmp_path / "o")
    answer = replay.sweep(f"sqlite:///{db}", policy="median_pruner", n_startup_trials=[0, 2],
                          n_warmup_steps=[0, 1])  # fmt: skip
    assert answer.table() == result.stdout
    df = answer.to_pandas()
    with open(tmp_path / "o" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(df.columns) == list(rows[0])
    assert list(df["setting"]) == [r["setting"] for r in rows]
    assert [int(n) for n in df["n_pruned"]] == [int(r["n_pruned"]) for r in rows]
    view = answer._repr_html_()
    assert html.escape(answer.table()) in view
    assert f"{len(answer.records):,} settings" in view
    assert view.count('<img src="data:image/png;base64,iVBORw0KGgo') == 1
