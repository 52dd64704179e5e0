"""Charts of a run with branches (issue 9, item 6): branch curves on curves.png, the
schedules a branch answers drawn exact on lr_schedules.png, and branches.png.

The run directory is hand-made as in tests/test_sweep_branches.py: a run at a constant
rate, a branch forked at epoch 4 with the rate halved, and a branch of that branch
forked at epoch 6 (the rate halved again).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from test_sweep_branches import BRANCH_TEST, BRANCH_VAL, csv, make_tree

from analysis.charts import branches as branch_charts
from analysis.charts import data as chartdata
from analysis.charts import schedules
from analysis.charts import sweep as charts
from analysis.formats import load_run
from replay.output.charting import chart_jobs, draw_sweep_charts
from replay.sweeping.sweep import Grid, sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIRST = "b001-e04-lr0.0005"
SECOND = "b002-e06-lr0.00025"
GRID = Grid(policies=("early_stopping", "reduce_lr_on_plateau"), patience=(1, 2),
            min_delta=(0.0,), restore_best_weights=(False,), factor=(0.5, 0.1),
            lr_patience=(1,), lr_min_delta=(0.0,))  # fmt: skip


# Every figure built is closed after each test (conftest.figures).
pytestmark = pytest.mark.usefixtures("figures")


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def add_child(root: Path) -> None:
    """A branch of the first branch, forked at epoch 6 (its own rows from there)."""
    parent = root / "branches" / FIRST
    child = root / "branches" / SECOND
    shutil.copytree(parent, child)
    val = BRANCH_VAL[:6] + [0.31, 0.30]
    test = BRANCH_TEST[:6] + [0.30, 0.29]
    lr = [0.001] * 4 + [0.0005] * 2 + [0.00025] * 2
    (child / "metrics.csv").write_text(csv(val, test, lr))
    manifest = json.loads((child / "run.json").read_text())
    manifest.update(name=SECOND, parent=f"../{FIRST}", fork_epoch=6, fork_lr=0.00025)
    (child / "run.json").write_text(json.dumps(manifest))


@pytest.fixture
def tree(tmp_path):
    root = make_tree(tmp_path)
    add_child(root)
    run = load_run(root)
    return run, sweep([run], GRID)


def jobs_by_name(result, run, out: Path) -> dict:
    return {path.name: (name, args, kwargs) for name, args, kwargs, path in
            chart_jobs(result, [run], out)}  # fmt: skip


def figure(job):
    name, args, kwargs = job
    return getattr(charts, name)(*args, **kwargs)


def legend_texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def test_the_sweep_finds_both_branches(tree):
    run, result = tree
    assert sorted(b.path.name for b in result.facts[0].branches) == [FIRST, SECOND]


def test_branches_png_is_drawn_and_listed(tree, tmp_path):
    run, result = tree
    out = tmp_path / "out"
    out.mkdir()
    names = draw_sweep_charts(result, [run], out)
    assert names == ["curves.png", "early_stopping.png", "lr_schedules.png", "tradeoff.png",
                     "branches.png"]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_branches_figure_draws_the_tree(tree, tmp_path):
    run, result = tree
    fig = figure(jobs_by_name(result, run, tmp_path)["branches.png"])
    (ax,) = fig.axes
    assert fig.get_suptitle() == "run: 2 branches from 2 fork points, 2 levels deep"
    # The run on top, then the first branch, then its child.
    assert [t.get_text() for t in ax.get_yticklabels()] == ["run (run)", FIRST, SECOND]
    (segments,) = [c for c in ax.collections if c.get_gid() == "branches"]
    assert [seg.tolist() for seg in segments.get_segments()] == [[[4, 1], [7, 1]],
                                                                  [[6, 2], [7, 2]]]  # fmt: skip
    (connectors,) = [c for c in ax.collections if c.get_gid() == "connectors"]
    assert [seg.tolist() for seg in connectors.get_segments()] == [[[4, 0], [4, 1]],
                                                                    [[6, 1], [6, 2]]]  # fmt: skip
    (root_line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "run"]
    assert list(root_line.get_xdata()) == [0, 7]
    texts = {t.get_text(): t for t in ax.texts}
    assert list(texts) == ["test_loss 0.4", "test_loss 0.32", "test_loss 0.29"]
    assert texts["test_loss 0.29"].xy == (7, 2)
    assert texts["test_loss 0.29"].get_fontweight() == "bold"  # the best (lower is better)
    assert texts["test_loss 0.4"].get_fontweight() == "normal"
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_curves_draw_each_branch_from_its_fork(tree, tmp_path):
    run, result = tree
    fig = figure(jobs_by_name(result, run, tmp_path)["curves.png"])
    top = fig.axes[0]
    branch_lines = [ln for ln in top.get_lines() if str(ln.get_gid()).startswith("branch:")]
    # monitored (solid) and held-out (dotted) per branch, from the epoch before the fork.
    assert len(branch_lines) == 4
    assert sorted(ln.get_linestyle() for ln in branch_lines) == ["-", "-", ":", ":"]
    starts = sorted(ln.get_xdata()[0] for ln in branch_lines)
    assert starts == [3, 3, 5, 5]
    assert all(ln.get_linewidth() < 1.5 for ln in branch_lines)  # thinner than the run's
    texts = legend_texts(top.get_legend())
    assert f"branch {FIRST}" in texts and f"branch {SECOND}" in texts
    assert "branches: solid monitored,\ndotted held-out" in texts
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_the_curves_legend_names_at_most_a_few_branches():
    many = [{"id": f"b{i:03d}", "fork_epoch": 2, "metrics": {"val_loss": [0.5, 0.4, 0.3, 0.2]}}
            for i in range(12)]  # fmt: skip
    import pandas as pd

    metrics = pd.DataFrame({"val_loss": [0.5, 0.4, 0.35, 0.36]})
    fig = charts.curves_figure(metrics, "val_loss", [], oracle_epoch=None, heldout=None,
                               branches=many)  # fmt: skip
    texts = legend_texts(fig.axes[0].get_legend())
    named = [t for t in texts if t.startswith("branch ")]
    assert len(named) == chartdata.MAX_BRANCH_LEGEND
    assert f"... and {12 - chartdata.MAX_BRANCH_LEGEND} more branches" in texts
    assert png_bytes(fig).startswith(PNG_MAGIC)


def linestyles(ax) -> list[tuple[str, float, float]]:
    """(solid or dashed, first and last epoch it covers) of each schedule LineCollection."""
    from matplotlib.collections import LineCollection

    out = []
    for c in ax.collections:
        if isinstance(c, LineCollection):
            _, dashes = c.get_linestyle()[0]
            xs = [x for segment in c.get_segments() for x, _ in segment]
            out.append(("solid" if dashes is None else "dashed", min(xs), max(xs)))
    return out


def test_schedules_answered_by_a_branch_are_solid(tree, tmp_path):
    run, result = tree
    plateau = {r["params"]["factor"]: r for r in result.records
               if r["policy"] == "reduce_lr_on_plateau"}  # fmt: skip
    assert plateau[0.5]["counterfactual_from"] is None and plateau[0.5]["branch"]
    assert plateau[0.1]["counterfactual_from"] == 4
    fig = figure(jobs_by_name(result, run, tmp_path)["lr_schedules.png"])
    (ax,) = fig.axes
    # factor 0.1: solid to epoch 4, dashed from there; factor 0.5: solid throughout.
    n = len(plateau[0.1]["lr"])
    assert linestyles(ax) == [("solid", 0, 4), ("dashed", 4, n), ("solid", 0, n)]
    texts = legend_texts(ax.get_legend())
    assert "factor 0.5: 1 settings, 1 distinct\n(1 answered by branches)" in texts
    assert "factor 0.1: 1 settings, 1 distinct" in texts
    assert png_bytes(fig).startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("lr", "cf", "exact", "counterfactual"),
    [
        ([0.1, 0.1], None, [(0, 0.1), (1, 0.1), (1, 0.1), (2, 0.1)], []),
        ([0.1, 0.05], 1, [(0, 0.1), (1, 0.1)], [(1, 0.1), (1, 0.05), (2, 0.05)]),
        ([0.1, 0.05], 0, [], [(0, 0.1), (1, 0.1), (1, 0.05), (2, 0.05)]),
        ([0.1, 0.05], 5, [(0, 0.1), (1, 0.1), (1, 0.05), (2, 0.05)], []),
        ([], None, [], []),
    ],
)
def test_split_schedule(lr, cf, exact, counterfactual):
    assert schedules.split_schedule(lr, cf) == (exact, counterfactual)


def b(id_, parent, fork, n=8, value=0.3):
    return {"id": id_, "parent": parent, "fork_epoch": fork, "n_epochs": n, "value": value}


@pytest.mark.parametrize(
    ("branches", "rows", "parents"),
    [
        ([], ["r"], [None]),
        ([b("x", None, 4), b("y", "x", 6), b("z", None, 2)], ["r", "z", "x", "y"],
         [None, 0, 0, 2]),
        # a parent that is not a finished branch: under the run, without a connector
        ([b("x", "gone", 4)], ["r", "x"], [None, None]),
        # parents that loop: each drawn once, under the run
        ([b("x", "y", 4), b("y", "x", 5)], ["r", "x", "y"], [None, 0, 1]),
    ],
)  # fmt: skip
def test_branch_tree_rows(branches, rows, parents):
    tree = branch_charts.branch_tree("r", 8, 0.4, branches, "test_loss", higher_is_better=False)
    assert [n["id"] for n in tree["nodes"]] == rows
    assert [n["parent_y"] for n in tree["nodes"]] == parents
    assert tree["n_branches"] == len(branches)


def test_branch_tree_labels_missing_values():
    tree = branch_charts.branch_tree("r", 8, None, [b("x", None, 4, value=None)], "test_loss")
    assert [n["label"] for n in tree["nodes"]] == ["test_loss ?", "test_loss ?"]
    assert not any(n["best"] for n in tree["nodes"])


def test_a_run_without_branches_draws_no_branches_png(tmp_path):
    from conftest import make_run
    from test_sweep_branches import TEST, VAL

    root = make_run(tmp_path / "run", n=8, metrics=csv(VAL, TEST, [0.001] * 8))
    run = load_run(root)
    names = list(jobs_by_name(sweep([run], GRID), run, tmp_path))
    assert names == ["curves.png", "early_stopping.png", "lr_schedules.png", "tradeoff.png"]


def test_sample_sweep_charts_are_unchanged(tmp_path):
    """`replay sweep sample_logs/mnist-mlp --patience 3..10 --out DIR` writes the four
    charts and no branches.png."""
    from conftest import run as cli

    sample = Path(__file__).resolve().parent.parent / "sample_logs" / "mnist-mlp"
    if not sample.exists():
        pytest.skip("no sample_logs/mnist-mlp")
    out = tmp_path / "x"
    result = cli("sweep", sample, "--patience", "3..10", "--out", out, "--force")
    assert result.exit_code in (0, 3), result.output
    charts_written = sorted(p.name for p in out.glob("*.png"))
    assert charts_written == ["curves.png", "early_stopping.png", "lr_schedules.png",
                              "tradeoff.png"]  # fmt: skip
    assert "branches.png" not in result.output
