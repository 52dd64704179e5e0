"""Several seeds (issue 11, section 2): a folder of run directories swept together.

``replay record --seeds 0..4 --out runs/mlp`` writes ``runs/mlp/seed-N``; ``replay sweep
runs/mlp`` reads one run per run directory and ranks settings by their mean regret
across runs with its spread (min-max, a bootstrap interval of the mean) and how many
runs have each setting among their best. Every expected value here is recomputed from
the per-run records of the same sweep (results.json), never typed in.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import HEADER, error_line, make_run, run

from analysis.formats import load_logs, natural_key, run_folder_children
from analysis.results.aggregation import (
    BOOTSTRAP_LEVEL,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    aggregate,
    bootstrap_interval,
)
from analysis.results.records import record_label

SEEDS = (0, 1, 2, 10)  # seed-10 sorts after seed-2 only in natural order
N_EPOCHS = 24
STOP = ("early_stopping", "prechelt")


def curves(seed: int) -> str:
    """metrics.csv of one seed: a noisy validation curve that overfits late, and a test
    curve near it, different for every seed (so runs disagree on the best patience)."""
    rng = np.random.default_rng(seed)
    e = np.arange(N_EPOCHS)
    val = (
        0.08 + 0.5 * np.exp(-e / 4) + 0.002 * np.maximum(e - 9, 0) + rng.normal(0, 0.008, N_EPOCHS)
    )
    test = val + 0.003 + rng.normal(0, 0.005, N_EPOCHS)
    rows = "".join(
        f"{i},{float(1 / (i + 1))!r},{float(val[i])!r},{float(test[i])!r},0.001\n"
        for i in range(N_EPOCHS)
    )
    return HEADER + "\n" + rows


def seed_run(folder: Path, seed: int) -> Path:
    """``folder/seed-N`` as `replay record --seeds` writes it (no shadow callbacks: the
    fake curves were not trained with them)."""
    root = make_run(folder / f"seed-{seed}", n=N_EPOCHS, metrics=curves(seed))
    manifest = json.loads((root / "run.json").read_text())
    manifest["shadow"] = []
    manifest["config"] = {"seed": seed}
    (root / "run.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture
def seeds(tmp_path) -> Path:
    folder = tmp_path / "mlp"
    for seed in SEEDS:
        seed_run(folder, seed)
    (folder / "seeds.json").write_text(json.dumps({"seeds": list(SEEDS)}))  # an index: ignored
    (folder / "README.md").write_text("four seeds\n")
    (folder / "plots").mkdir()  # a folder that holds nothing a run holds: ignored
    return folder


def sweep(folder: Path, out: Path, *args):
    result = run("sweep", folder, "--patience", "1..8", "--restore-best-weights", "both",
                 "--out", out, *args)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def key(row) -> tuple:
    return (row["policy"], json.dumps(row["params"], sort_keys=True))


# ----------------------------------------------------------------------------------
# Reading the folder


def test_a_folder_of_runs_is_one_run_per_seed_in_natural_order(seeds):
    runs = load_logs(seeds)
    assert [r.name for r in runs] == [f"mlp/seed-{s}" for s in SEEDS]
    assert [r.source for r in runs] == [str(seeds / f"seed-{s}") for s in SEEDS]
    assert {r.format for r in runs} == {"run_dir"}
    assert [r.manifest["config"]["seed"] for r in runs] == list(SEEDS)
    assert sorted(["seed-10", "seed-2", "seed-1"], key=natural_key) == ["seed-1", "seed-2",
                                                                          "seed-10"]  # fmt: skip
    assert run_folder_children(seeds) == [seeds / f"seed-{s}" for s in SEEDS]


def test_two_folders_of_seeds_keep_their_names_apart(tmp_path):
    for name in ("mlp", "cnn"):
        for seed in (0, 1):
            seed_run(tmp_path / name, seed)
    result = run("sweep", tmp_path / "mlp", tmp_path / "cnn", "--patience", "2",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    names = list(dict.fromkeys(r["run"] for r in json.loads(result.stdout)))
    assert names == ["mlp/seed-0", "mlp/seed-1", "cnn/seed-0", "cnn/seed-1"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda f: (f / "seed-2" / "run.json").write_text("{not json"),
         "run seed-2 of this folder of runs cannot be read: {f}/seed-2/run.json: not valid JSON"),
        (lambda f: (f / "seed-5").mkdir() or (f / "seed-5" / "metrics.csv").write_text("epoch\n"),
         "{f}: a folder of 4 run directories, but {f}/seed-5 is not one (it holds metrics.csv "
         "but no run.json); finish it (`replay record --resume`), move it out, or pass the "
         "runs you mean one by one"),
        (lambda f: (f / "seed-7").mkdir(),
         "{f}/seed-7 is not one (it is named like the runs beside it but has no run.json)"),
        (lambda f: (f / "metrics.csv").write_text("epoch,loss\n0,1.0\n"),
         "{f}: a folder of 4 run directories that also holds the log metrics.csv; pass the "
         "runs you mean one by one, or move metrics.csv out"),
    ],
)  # fmt: skip
def test_a_folder_that_would_mislead_is_refused_naming_what(seeds, make, expected):
    make(seeds)
    line = error_line(run("sweep", seeds, "--patience", "2", "--format", "json"))
    assert expected.format(f=seeds) in line


def test_pick_on_a_folder_of_seeds_names_one_run_to_pass(seeds):
    line = error_line(run("pick", seeds, "--patience", "3"))
    assert line == (f"Error: {seeds}: a folder of 4 runs (seed-0 ... seed-10); this command "
                    f"reads one run: pass one of them, e.g. {seeds / 'seed-0'}")  # fmt: skip
    result = run("pick", seeds / "seed-10", "--patience", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("seed-10: early_stopping patience=3 no-restore on val_loss")


def test_show_on_a_folder_of_seeds_prints_a_line_per_run(seeds):
    result = run("show", seeds)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{seeds}: a folder of 4 runs"
    rows = [ln.split() for ln in lines if ln.startswith("mlp/")]
    assert [r[:4] for r in rows] == [[f"mlp/seed-{s}", str(s), str(N_EPOCHS), "complete"]
                                     for s in SEEDS]  # fmt: skip
    for row, s in zip(rows, SEEDS, strict=True):
        val = [float(line.split(",")[2]) for line in curves(s).splitlines()[1:]]
        assert row[-1] == str(int(np.argmin(val)))  # "val_loss 0.0812 at epoch E"
    line = error_line(run("show", seeds, "--chart", seeds.parent / "c.png"))
    assert line.startswith(f"Error: --chart: {seeds}: a folder of 4 runs")


def test_a_folder_of_one_run_is_not_called_runs(tmp_path):
    folder = tmp_path / "one"
    seed_run(folder, 3)
    assert run("show", folder).stdout.splitlines()[0] == f"{folder}: a folder of 1 run"
    line = error_line(run("pick", folder, "--patience", "3"))
    assert line.startswith(f"Error: {folder}: a folder of 1 run (seed-3); this command reads")


# ----------------------------------------------------------------------------------
# The aggregate, recomputed from the per-run records


def reference_interval(values: list[float]) -> tuple[float, float]:
    """The documented bootstrap, written out independently of analysis.results.records."""
    n = len(values)
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    means = np.array([sum(values[j] for j in row) / n for row in draws])
    tail = 100 * (1 - BOOTSTRAP_LEVEL) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def test_folder_sweep_aggregate_matches_the_per_run_records(seeds, tmp_path):
    out = tmp_path / "o"
    result = sweep(seeds, out, "--policy", "early_stopping,prechelt", "--no-charts")
    records = json.loads((out / "results.json").read_text())
    rows = json.loads((out / "aggregate.json").read_text())
    stops = [r for r in records if r["policy"] in STOP]
    # Each run's own best: the least regret of any stopping setting on that run.
    least = {name: min(r["regret"] for r in stops if r["run"] == name)
             for name in {r["run"] for r in stops}}  # fmt: skip
    by_setting: dict[tuple, list[dict]] = {}
    for r in stops:
        by_setting.setdefault(key(r), []).append(r)
    assert sorted(key(r) for r in rows) == sorted(by_setting)
    for row in rows:
        members = by_setting[key(row)]
        regrets = [m["regret"] for m in members]
        assert row["runs"] == len(members) == len(SEEDS)
        assert row["run_names"] == [f"mlp/seed-{s}" for s in SEEDS]
        assert row["regret_mean"] == pytest.approx(sum(regrets) / len(regrets), abs=1e-15)
        assert row["regret_min"] == min(regrets)
        assert row["regret_worst"] == max(regrets)
        assert row["regret_spread"] == pytest.approx(max(regrets) - min(regrets), abs=1e-15)
        low, high = reference_interval(regrets)
        assert row["regret_ci_low"] == pytest.approx(low, abs=1e-12)
        assert row["regret_ci_high"] == pytest.approx(high, abs=1e-12)
        assert row["regret_min"] <= row["regret_ci_low"] <= row["regret_mean"]
        assert row["regret_mean"] <= row["regret_ci_high"] <= row["regret_worst"]
        best = [m["run"] for m in members if m["regret"] == least[m["run"]]]
        assert row["best_run_names"] == best
        assert row["best_runs"] == len(best)
        epochs = [m["epochs_trained"] for m in members]
        assert row["epochs_trained_min"] == min(epochs)
        assert row["epochs_trained_mean"] == pytest.approx(sum(epochs) / len(epochs))
    # Best mean regret first; among equals, fewer mean epochs.
    ranks = [(r["regret_mean"], r["epochs_trained_mean"]) for r in rows]
    assert ranks == sorted(ranks)
    # The same rows as analysis.results.aggregation.aggregate over plain records.
    assert {key(r): r for r in json.loads(json.dumps(aggregate(stops)))} == {
        key(r): r for r in rows
    }
    # aggregate.csv: the same rows, flattened, in the same order.
    with open(out / "aggregate.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(t["policy"], t["params.patience"]) for t in table] == [
        (r["policy"], "" if r["params"].get("patience") is None else str(r["params"]["patience"]))
        for r in rows
    ]
    assert [float(t["regret_ci_high"]) for t in table] == [r["regret_ci_high"] for r in rows]
    assert table[0]["best_run_names"] == " ".join(rows[0]["best_run_names"])
    # The table and its verdict say the same.
    top = rows[0]
    assert (f"best by mean regret is {record_label(top)}, mean {top['regret_mean']:.4g}"
            in result.stdout)  # fmt: skip
    assert f"{top['best_runs']} of {len(SEEDS)} runs have it among their best" in result.stdout
    first_row = next(ln for ln in result.stdout.splitlines() if ln.startswith("val_loss "))
    assert f"[{top['regret_min']:.3g}, {top['regret_worst']:.3g}]" in first_row
    assert f"{top['best_runs']}/{len(SEEDS)}" in first_row.split()


def test_the_verdict_names_the_setting_best_in_most_runs_when_another(seeds, tmp_path):
    out = tmp_path / "o"
    result = sweep(seeds, out, "--policy", "early_stopping", "--no-charts")
    rows = json.loads((out / "aggregate.json").read_text())
    most = max(rows, key=lambda r: r["best_runs"])  # the first in table order among equals
    said = f"Among the best in the most runs: {record_label(most)} ({most['best_runs']} of"
    assert (said in result.stdout) == (most["best_runs"] > rows[0]["best_runs"])
    ties = sum(1 for r in rows if r["regret_mean"] == rows[0]["regret_mean"]) - 1
    assert (f"({ties} more setting" in result.stdout) == (ties > 0)


def test_bootstrap_interval_is_deterministic_and_documented():
    values = [0.0, 0.01, 0.004, 0.02, 0.001]
    assert bootstrap_interval(values) == reference_interval(values)
    assert bootstrap_interval(values) == bootstrap_interval(list(values))
    assert bootstrap_interval([0.5, None, math.nan]) is None  # one value: no interval
    assert bootstrap_interval([0.3, 0.3, 0.3]) == (0.3, 0.3)
    low, high = bootstrap_interval(values, level=0.5)
    assert bootstrap_interval(values)[0] <= low <= high <= bootstrap_interval(values)[1]


def test_single_runs_write_no_aggregate(seeds, tmp_path):
    out = tmp_path / "o"
    result = run("sweep", seeds / "seed-1", "--patience", "2", "--out", out, "--no-charts")
    assert result.exit_code == 0, result.output
    assert not (out / "aggregate.json").exists()
    assert "across runs" not in result.stdout


# ----------------------------------------------------------------------------------
# The chart of the spread


def test_spread_chart_is_written_for_a_folder_of_seeds(seeds, tmp_path):
    out = tmp_path / "o"
    result = sweep(seeds, out)
    assert "spread.png" in result.stderr
    assert (out / "spread.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.usefixtures("figures")
def test_spread_figure_shows_every_run_and_the_mean(seeds, tmp_path, figures):
    from analysis.charts.spread import spread_series
    from analysis.charts.sweep import spread_figure

    out = tmp_path / "o"
    sweep(seeds, out, "--no-charts", "--policy", "early_stopping")
    es = [r for r in json.loads((out / "results.json").read_text())
          if r["params"]["min_delta"] == 0]  # fmt: skip
    data = spread_series(es)
    assert data["runs"] == [f"mlp/seed-{s}" for s in SEEDS]
    assert data["metric"] == "test_loss"
    assert [p["split"] for p in data["panels"]] == [True, False]
    for panel in data["panels"]:
        assert panel["x"] == list(range(1, 9))
        mine = [r for r in es if r["params"]["restore_best_weights"] == panel["split"]]
        assert len(panel["points"]) == len(mine) == 8 * len(SEEDS)
        for x, mean, low, high in zip(panel["x"], panel["mean"], panel["low"], panel["high"],
                                      strict=True):  # fmt: skip
            regrets = [r["regret"] for r in mine if r["params"]["patience"] == x]
            assert mean == pytest.approx(sum(regrets) / len(regrets))
            assert (low, high) == (min(regrets), max(regrets))
        assert panel["best"] == panel["x"][panel["mean"].index(min(panel["mean"]))]
    fig = spread_figure(es, title="t", note="n")
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["restore best weights: yes",
                                               "restore best weights: no"]  # fmt: skip
    assert axes[0].get_xlabel() == "patience"
    assert "regret in test_loss" in axes[0].get_ylabel()
    labels = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert labels == [f"one run ({len(SEEDS)} runs)", "mean over runs", "min-max over runs",
                      "95% bootstrap interval of the mean",
                      "least mean regret (in its panel)"]  # fmt: skip
    mean_line = axes[0].get_lines()[0]
    assert list(mean_line.get_ydata()) == pytest.approx(data["panels"][0]["mean"])
    points = axes[0].collections[0].get_offsets()
    assert len(points) == 8 * len(SEEDS)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(b"\x89PNG")
