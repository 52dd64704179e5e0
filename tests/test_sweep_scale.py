"""Sweeps at scale (issue 13): compact records, streamed output, the grid's memory guard.

The writers must give, byte for byte, what ``json.dumps(records, indent=1)`` and
``csv.DictWriter`` over the flattened records give (:func:`reference_json`,
:func:`reference_csv`: the renderers before blocks), for the records as a sweep keeps
them (blocks with shared outcomes) and as plain dicts (one outcome each).
"""

from __future__ import annotations

import csv
import io
import json
import math
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import error_line, run, write_log

from replay.output import charting
from replay.output.report import render_table
from replay.output.writers import (
    atomic_text,
    flatten,
    render_csv,
    render_json,
    write_csv,
    write_json,
)
from replay.sweeping import grid as sweep_module
from replay.sweeping.blocks import Block, Records
from replay.sweeping.grid import GridTooLarge
from replay.sweeping.sweep import Grid, RunFacts, sweep

VAL = [0.50, 0.40, 0.35, 0.36, 0.34, 0.37, 0.38, 0.39, 0.40, 0.41]
TEST = [0.52, 0.41, 0.36, 0.35, 0.36, 0.38, 0.39, 0.40, 0.41, 0.43]
ACC = [0.80, 0.85, 0.90, 0.89, 0.91, 0.90, 0.88, 0.87, 0.86, 0.85]


def finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def reference_json(records) -> str:
    records = list(records)
    try:
        return json.dumps(records, indent=1, allow_nan=False) + "\n"
    except ValueError:
        return json.dumps(finite(records), indent=1, allow_nan=False) + "\n"


def reference_csv(records) -> str:
    rows = [flatten(r) for r in records]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def facts(name="r", n=10, lr=True, loss=True, source="r.csv", **extra) -> RunFacts:
    metrics = {"val_loss": VAL[:n], "test_loss": TEST[:n], "val_accuracy": ACC[:n], **extra}
    if loss:
        metrics["loss"] = [2 * v for v in VAL[:n]]
    if lr:
        metrics["learning_rate"] = [0.001] * n
    return RunFacts(name, source, metrics, list(metrics), n)


ALL = ("early_stopping", "reduce_lr_on_plateau", "prechelt", "early_stopping+reduce_lr_on_plateau")
CASES = {
    "es axes": ([facts()], Grid(policies=("early_stopping",), patience=tuple(range(12)),
                                baseline=(None, 0.38), start_from_epoch=(0, 2))),
    "all policies": ([facts()], Grid(policies=ALL, patience=(0, 2, 5), factor=(0.5, 0.1))),
    "relative lr, max mode": ([facts(lr=False)], Grid(policies=ALL, monitors=("val_accuracy",),
                                                      patience=(1, 3))),
    "two runs, other columns": ([facts(), facts("s", n=7, lr=False, loss=False, source="s")],
                                Grid(policies=ALL, patience=(1, 4))),
    "an empty log first": ([facts("e", n=0, lr=False), facts()],
                           Grid(policies=("early_stopping", "prechelt"), patience=(1, 2))),
    "names that need quoting": ([facts('a,"b"\né', source="x, y.csv")],
                                Grid(policies=("early_stopping",), patience=(1, 2))),
    "two monitors": ([facts()], Grid(policies=("early_stopping", "prechelt"),
                                     monitors=("val_loss", "val_accuracy"), patience=(2,))),
}  # fmt: skip


@pytest.fixture(params=list(CASES))
def swept(request):
    runs, grid = CASES[request.param]
    return sweep(runs, grid)


def test_writers_give_the_reference_text_for_blocks_and_for_plain_records(swept):
    plain = list(swept.records)
    assert render_json(swept.records) == render_json(plain) == reference_json(plain)
    assert render_csv(swept.records) == render_csv(plain) == reference_csv(plain)


def test_records_read_alike_by_index_iteration_and_slices(swept):
    records = swept.records
    listed = list(records)
    assert len(listed) == len(records) == sum(len(b) for b in records.blocks)
    assert [records[i] for i in range(len(records))] == listed
    assert records[-1] == listed[-1] and records[2:5] == listed[2:5]
    for block in records.blocks:
        assert [block[i] for i in range(len(block))] == list(block)


def test_the_table_reads_blocks_as_it_reads_plain_records(swept):
    # Plain records make one-record blocks with an outcome each; the sweep's share them.
    assert render_table(swept) == render_table(replace(swept, records=list(swept.records)))


def test_aggregate_of_runs_whose_prechelt_grids_differ():
    # "s" has no training loss: Prechelt's PQ is skipped there, so its blocks differ.
    runs = [facts(), facts("s", n=8, loss=False, source="s")]
    result = sweep(runs, Grid(policies=("prechelt", "early_stopping"), patience=(1, 2, 9)))
    table = render_table(result)
    assert table == render_table(replace(result, records=list(result.records)))
    assert "== across runs (" in table


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], ("[]\n", "\n")),
        ([{"run": "r", "source": "s", "policy": "p", "params": {"a": 1}, "x": math.inf,
           "m": {"k": math.nan}, "lr": [1.0, math.nan]}],
         ('[\n {\n  "run": "r",\n  "source": "s",\n  "policy": "p",\n  "params": {\n'
          '   "a": 1\n  },\n  "x": null,\n  "m": {\n   "k": null\n  },\n  "lr": [\n   1.0,\n'
          '   null\n  ]\n }\n]\n',
          "run,source,policy,params.a,x,m.k,lr\nr,s,p,1,inf,nan,1.0 nan\n")),
    ],
)  # fmt: skip
def test_hand_made_records_and_none(records, expected):
    assert (render_json(records), render_csv(records)) == expected
    assert expected == (reference_json(records), reference_csv(records))


def test_a_writer_streams_the_same_text_to_every_output(swept):
    outs = [io.StringIO(), io.StringIO()]
    write_csv(swept.records, *outs)
    assert outs[0].getvalue() == outs[1].getvalue() == render_csv(swept.records)
    outs = [io.StringIO(), io.StringIO()]
    write_json(swept.records, *outs)
    assert outs[0].getvalue() == outs[1].getvalue() == render_json(swept.records)


def test_atomic_text_replaces_in_one_step_or_not_at_all(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_text(path) as f:
        f.write("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "results.csv"]  # fmt: skip
    with atomic_text(path) as f:
        f.write("new, é\n")
    assert path.read_bytes() == "new, é\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_a_block_holds_each_setting_as_an_outcome_index():
    # 40,000 EarlyStopping settings over 30 epochs: a few bytes each, where a record
    # dict with its params takes 1.5 KB.
    f = RunFacts("r", "r.csv", {"val_loss": VAL * 3, "test_loss": TEST * 3},
                 ["val_loss", "test_loss"], 30)  # fmt: skip
    grid = Grid(policies=("early_stopping",), patience=tuple(range(100)),
                min_delta=tuple(i / 1e4 for i in range(200)))  # fmt: skip
    sweep([f], Grid(policies=("early_stopping",)))  # imports and caches outside the count
    tracemalloc.start()
    try:
        result = sweep([f], grid)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (block,) = result.records.blocks
    assert len(block) == 40_000 and len(block.outcomes) < 200
    assert peak < 16 * len(block)


def test_block_parameters_read_off_the_axes():
    result = sweep([facts()], Grid(policies=("early_stopping",), patience=(1, 2, 3),
                                   min_delta=(0.0, 0.01)))  # fmt: skip
    (block,) = result.records.blocks
    assert isinstance(block, Block) and block.sizes == (2, 3, 2)
    assert block.values_of("patience") == [1, 2, 3] and block.values_of("mode") == ["min"]
    members = block.select({"patience": lambda p: p > 1, "restore_best_weights": bool})
    assert [block[i]["params"]["patience"] for i in members] == [2, 3, 2, 3]
    values = block.param_values(members)
    assert values["min_delta"] == [0.0, 0.01] and values["restore_best_weights"] == [True]
    assert isinstance(Records.of(list(result.records)), Records)
    twice = Records([block, block])
    assert [(b is block, i.tolist()) for b, i in twice.per_block([1, 12, 14])] == [
        (True, [1]), (True, [0, 2])]  # fmt: skip
    assert twice[14] == block[2] and twice.where(policy="prechelt").blocks == ()


# ----------------------------------------------------------------------------------
# The guard: from the memory a sweep needs


def test_memory_needed_grows_with_settings_runs_and_epochs():
    small = Grid(policies=("early_stopping",), patience=tuple(range(10)))
    big = replace(small, patience=tuple(range(1000)))
    assert small.memory_needed(n_runs=1) < big.memory_needed(n_runs=1)
    assert big.memory_needed(n_runs=2) - big.memory_needed(n_runs=1) == (
        big.memory_needed(n_runs=1) - sweep_module.BASE_BYTES
    )
    lr = Grid(policies=("reduce_lr_on_plateau",))
    assert lr.memory_needed([facts(n=3)]) < lr.memory_needed([facts(n=10)])


def test_grid_check_names_the_estimate_and_the_ways_out():
    grid = Grid(policies=("early_stopping",), patience=tuple(range(100)))
    with pytest.raises(GridTooLarge) as e:
        grid.check(available=10**6)
    message = str(e.value)
    need = sweep_module._size(grid.memory_needed())  # 256 MB and 64 bytes a setting
    assert message.startswith(f"the grid has 600 settings, whose sweep needs about {need} of "
                              "memory, more than the 0.8 MB it may use (80% of 1 MB "
                              "available)")  # fmt: skip
    assert need == "268 MB"
    assert message.endswith("narrow the ranges, or pass --max-settings 600 to sweep them anyway.")
    grid.check(available=10**6, max_settings=600)


def test_available_memory_is_read():
    assert sweep_module.available_memory() > 0


def test_cli_refuses_before_any_work_and_max_settings_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = write_log(tmp_path / "training.csv")
    monkeypatch.setattr(sweep_module, "available_memory", lambda: 10**6)
    before = sorted(tmp_path.rglob("*"))
    result = run("sweep", log, "--patience", "0..9")
    # 10 patiences x 3 min_delta x 2 restore + 10 patiences x 3 factors
    assert error_line(result).startswith("Error: the grid has 90 settings, whose sweep needs")
    assert "pass --max-settings 90 to sweep them anyway." in error_line(result)
    assert result.stdout == "" and sorted(tmp_path.rglob("*")) == before
    result = run("sweep", log, "--patience", "0..9", "--max-settings", "90", "--format", "csv")
    assert result.exit_code == 0 and result.stdout.startswith("run,source,policy,")


def test_charts_of_too_many_settings_are_skipped_with_a_note(tmp_path, monkeypatch):
    log = write_log(tmp_path / "training.csv")
    monkeypatch.setattr(charting, "MAX_CHART_SETTINGS", 10)
    out = tmp_path / "o"
    result = run("sweep", log, "--patience", "1..3", "--out", out)
    assert result.exit_code == 0
    assert ("note: no charts: they would show 27 settings, more than 10; narrow the grid to "
            "draw them (--no-charts skips them).") in result.stderr  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "results.json"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_stdout_and_file_are_one_rendering(tmp_path, fmt):
    log = write_log(tmp_path / "training.csv")
    out = tmp_path / "o"
    result = run("sweep", log, "--patience", "1..3", "--format", fmt, "--out", out, "--no-charts")
    assert result.exit_code == 0
    assert result.stdout == (out / f"results.{fmt}").read_text()
    other = "json" if fmt == "csv" else "csv"
    assert (out / f"results.{other}").exists()
    assert not any(p.name.endswith(".tmp") for p in Path(out).iterdir())
