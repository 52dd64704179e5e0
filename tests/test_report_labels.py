"""The table's row labels name exactly the settings of their row.

A row stands for settings with the same outcome, and its label lists each parameter's
values (``patience=1-2 min_delta=0|0.001 restore|no-restore``): a reader takes it for
every combination of them. When the settings of one outcome are no such product (a
grid with a corner missing), the table splits them into products, one row each.

Each test parses the labels back (:func:`expand`) into the settings they name and
checks them against the records.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
from conftest import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.output.report import _stop_rows, render_table
from replay.sweeping.blocks import Block, Records
from replay.sweeping.sweep import Grid, RunFacts, sweep

# A setting as a label shows it: (patience, min_delta, baseline, start, restore).
Key = tuple[int, str, str, int, bool]
_DEFAULTS = {"min_delta": ["0"], "baseline": ["None"], "start": [0]}


def _text(v) -> str:
    return "None" if v is None else f"{v:g}"


def key_of(params) -> Key:
    return (params["patience"], _text(params["min_delta"]), _text(params["baseline"]),
            params["start_from_epoch"], params["restore_best_weights"])  # fmt: skip


def _patiences(text: str) -> list[int]:
    out = []
    for part in text.split("|"):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def expand(label: str) -> set[Key]:
    """The EarlyStopping settings a table label names: every combination of its values."""
    values: dict[str, list] = dict(_DEFAULTS)
    for token in label.split():
        if token in ("restore", "no-restore", "restore|no-restore"):
            values["restore"] = [t == "restore" for t in token.split("|")]
            continue
        name, _, text = token.partition("=")
        name = {"start_from_epoch": "start"}.get(name, name)
        assert name in ("patience", "min_delta", "baseline", "start"), token
        if name == "patience":
            values[name] = _patiences(text)
        elif name == "start":
            values[name] = [int(v) for v in text.split("|")]
        else:
            values[name] = text.split("|")
    names = ("patience", "min_delta", "baseline", "start", "restore")
    return set(itertools.product(*(values[n] for n in names)))


def table_rows(text: str, title: str = "EarlyStopping") -> list[list[str]]:
    """The rows of the table under the line starting with ``title``, as cells."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(title + " ("))
    rows = []
    for ln in lines[start + 3 :]:
        if not ln.strip() or ln.startswith("... "):
            break
        rows.append(re.split(r"\s{2,}", ln))
    return rows


def _cells(outcome) -> list[str]:
    """The columns after the label that a row shows for ``outcome`` (a record)."""
    stop = "never (censored)" if outcome["censored"] else str(outcome["stopped_epoch"])
    kept = "-" if outcome["final_epoch"] is None else str(outcome["final_epoch"])
    return [stop, str(outcome["epochs_trained"]), kept]


def check_exact(rows: list[list[str]], records) -> None:
    """Each row's label names settings of the grid that all have one outcome, the one
    the row shows; no setting is named twice, and together the rows name every setting.
    (So the rows of one outcome name exactly the settings that have it.)"""
    outcome_of = {key_of(r["params"]): r for r in records}
    assert len(outcome_of) == len(records)  # the keys tell settings apart
    named: list[Key] = []
    for row in rows:
        keys = expand(row[0])
        assert keys <= outcome_of.keys(), (row[0], keys - outcome_of.keys())
        outcomes = {(o["stopped_epoch"], o["epochs_trained"], o["final_epoch"], o["regret"])
                    for o in (outcome_of[k] for k in keys)}  # fmt: skip
        assert len(outcomes) == 1, (row[0], outcomes)
        assert row[1:4] == _cells(outcome_of[next(iter(keys))]), row
        named += keys
    assert len(named) == len(set(named)), "a setting named by two rows"
    assert set(named) == outcome_of.keys()


def es_result(val, **grid):
    f = RunFacts("r", "r.csv", {"val_loss": list(val)}, ["val_loss"], len(val))
    return sweep([f], Grid(policies=("early_stopping",), **grid))


# ------------------------------------------------------------------ the concrete case

# val_loss improves by 0.001 from epoch 0 to 1, then by 0.088: with min_delta=0.001 the
# first step is no improvement, so patience 1 stops at epoch 1; every other setting of
# patience 1-2 x min_delta 0|0.0001|0.001 x restore both ways runs to the end.
CURVE = [0.425, 0.424, 0.336]


def test_a_corner_of_the_grid_with_another_outcome_gets_rows_of_its_own(tmp_path):
    log = tmp_path / "training.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{e},1.0,{v}\n" for e, v in
                                                     enumerate(CURVE)))  # fmt: skip
    result = run("sweep", log, "--policy", "early_stopping", "--patience", "1..2",
                 "--min-delta", "0,0.0001,0.001", "--restore-best-weights", "both",
                 "--out", tmp_path / "out", "--no-charts")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    labels = [r[0] for r in rows]
    # Was one row "patience=1-2 min_delta=0|0.0001|0.001 restore|no-restore" for 10
    # settings (12 named), two of which are on the rows below it.
    assert labels == [
        "patience=1-2 min_delta=0|0.0001 restore|no-restore",
        "patience=2 min_delta=0.001 restore|no-restore",
        "patience=1 min_delta=0.001 no-restore",
        "patience=1 min_delta=0.001 restore",
    ]
    assert rows[0][1:] == rows[1][1:] == ["never (censored)", "3", "2", "0.336", "0"]
    res = es_result(CURVE, patience=(1, 2), min_delta=(0.0, 0.0001, 0.001),
                    restore_best_weights=(True, False))  # fmt: skip
    check_exact(rows, res.records)


def test_a_product_stays_one_row():
    res = es_result(CURVE, patience=(5, 6, 8), min_delta=(0.0, 0.001),
                    restore_best_weights=(True, False))  # fmt: skip
    rows = table_rows(render_table(res))
    assert [r[0] for r in rows] == ["patience=5-6|8 min_delta=0|0.001 restore|no-restore"]


def test_the_rows_limit_counts_split_rows_and_the_rest_is_counted_as_settings():
    res = es_result(CURVE, patience=(1, 2), min_delta=(0.0, 0.0001, 0.001),
                    restore_best_weights=(True, False))  # fmt: skip
    text = render_table(res, limit=1)
    assert [r[0] for r in table_rows(text)] == [
        "patience=1-2 min_delta=0|0.0001 restore|no-restore"
    ]
    assert "... 4 more settings in results.csv / --format csv" in text


# ------------------------------------------------------------------ properties

curves = st.lists(st.sampled_from([0.30, 0.33, 0.34, 0.36, 0.40, 0.45]), min_size=1,
                  max_size=9)  # fmt: skip


def subset(values):
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values),
                    unique=True).map(sorted)  # fmt: skip


grids = st.fixed_dictionaries(
    {
        "patience": subset(list(range(6))),
        "min_delta": subset([0.0, 0.0001, 0.001, 0.02]),
        "baseline": st.sampled_from([(None,), (None, 0.35), (0.4,)]),
        "start_from_epoch": subset([0, 1, 2]),
        "restore_best_weights": subset([False, True]),
    }
).map(lambda g: {k: tuple(v) for k, v in g.items()})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(curves, grids)
def test_every_row_label_names_exactly_settings_of_its_outcome(val, grid):
    res = es_result(val, **grid)
    rows = table_rows(render_table(res, limit=10**6))
    check_exact(rows, res.records)


def _block(sizes, ids, n_outcomes):
    """An EarlyStopping block over patience x min_delta x restore, each setting's
    outcome ``ids`` (outcome k stops at epoch k)."""
    traces = [{"min_delta": d, "baseline": None, "start_from_epoch": 0}
              for d in (0.0, 0.0001, 0.001, 0.01)[: sizes[0]]]  # fmt: skip
    patiences = [{"patience": p} for p in range(1, sizes[1] + 1)]
    restores = [{"restore_best_weights": r} for r in (True, False)[: sizes[2]]]
    outcomes = [{"stopped_epoch": k, "epochs_trained": k + 1, "final_epoch": k,
                 "final_metrics": {"val_loss": 0.5}, "regret": 0.1 * k, "censored": False}
                for k in range(n_outcomes)]  # fmt: skip
    params = (("monitor", -1), ("mode", -1), ("min_delta", 0), ("patience", 1),
              ("baseline", 0), ("restore_best_weights", 2), ("start_from_epoch", 0))  # fmt: skip
    head = {"run": "r", "source": "r.csv", "policy": "early_stopping"}
    return Block(head, "val_loss", params, {"monitor": "val_loss", "mode": "min"},
                 (traces, patiences, restores), outcomes, ids)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_partition_of_a_grid_gets_exact_labels(data):
    """Outcomes spread over the grid at random, not as curves spread them: the labels
    stay exact, and an outcome whose settings are a product keeps one row."""
    sizes = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6)),
             data.draw(st.integers(1, 2)))  # fmt: skip
    n = int(np.prod(sizes))
    k = data.draw(st.integers(1, 4))
    ids = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    recs = Records([_block(sizes, ids, k)])
    rows, more = _stop_rows(recs, "val_loss", 10**6)
    assert more == 0
    check_exact(rows, list(recs))
    for o in set(ids):
        members = {key_of(r["params"]) for r in recs if r["stopped_epoch"] == o}
        sizes_of = [len({m[i] for m in members}) for i in range(5)]
        if len(members) == np.prod(sizes_of):
            assert sum(r[1] == str(o) for r in rows) == 1
