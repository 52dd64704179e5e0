"""The sweep record vocabulary: declared types match built records, one label function."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.results import records
from analysis.results.records import (
    setting_label,
    varying_values,
)
from replay.sweeping.sweep import Grid, RunFacts, sweep

VAL = [0.50, 0.40, 0.35, 0.36, 0.34, 0.37, 0.38, 0.39, 0.40, 0.41]
TEST = [0.52, 0.41, 0.36, 0.35, 0.36, 0.38, 0.39, 0.40, 0.41, 0.43]


def swept(**grid):
    facts = RunFacts(
        "r",
        "r.csv",
        {"loss": VAL, "val_loss": VAL, "test_loss": TEST},
        ["loss", "val_loss", "test_loss"],
        10,
    )
    return sweep([facts], Grid(policies=records.POLICIES, patience=(1,), min_delta=(0.0,), **grid))


@pytest.mark.parametrize(
    ("policy", "record_type", "params_type"),
    [
        ("early_stopping", records.EarlyStoppingRecord, records.EarlyStoppingParams),
        ("reduce_lr_on_plateau", records.PlateauRecord, records.PlateauParams),
        ("prechelt", records.PrecheltRecord, records.PrecheltParams),
        (records.COMBINED, records.CombinedRecord, records.CombinedParams),
        (records.MODEL_CHECKPOINT, records.ModelCheckpointRecord, records.ModelCheckpointParams),
    ],
)
def test_records_have_the_declared_fields_in_the_declared_order(policy, record_type, params_type):
    # The order is results.csv's column order: the TypedDicts are its definition.
    for rec in [r for r in swept().records if r["policy"] == policy]:
        assert list(rec) == list(record_type.__annotations__)
        assert list(rec["params"]) == list(params_type.__annotations__)


def test_oracles_have_the_declared_fields():
    (oracle,) = swept().oracles
    assert list(oracle) == list(records.Oracle.__annotations__)


def test_lr_scale_is_one_of_the_two_named_scales():
    assert {r["lr_scale"] for r in swept().records if "lr_scale" in r} == {records.RELATIVE}
    assert {r["lr_scale"] for r in swept(initial_lr=0.01).records if "lr_scale" in r} == {
        records.ABSOLUTE
    }


def test_policy_names():
    assert records.POLICIES == ("early_stopping", "reduce_lr_on_plateau", "prechelt",
                                "early_stopping+reduce_lr_on_plateau",
                                "model_checkpoint")  # fmt: skip
    assert records.STOP_POLICIES == ("early_stopping", "prechelt")
    assert {r["policy"] for r in swept().records} == set(records.POLICIES)


def es(patience=3, min_delta=0.0, baseline=None, restore=False, start=0):
    return {
        "monitor": "val_loss",
        "mode": "min",
        "min_delta": min_delta,
        "patience": patience,
        "baseline": baseline,
        "restore_best_weights": restore,
        "start_from_epoch": start,
    }


def lr(factor=0.1, patience=2, min_delta=1e-4, cooldown=0, min_lr=0.0):
    return {
        "monitor": "val_loss",
        "mode": "min",
        "factor": factor,
        "patience": patience,
        "min_delta": min_delta,
        "cooldown": cooldown,
        "min_lr": min_lr,
        "initial_lr": 0.001,
    }


def pre(criterion, alpha=None, strips=None, strip_length=5):
    return {
        "criterion": criterion,
        "alpha": alpha,
        "strips": strips,
        "strip_length": strip_length,
        "monitor": "val_loss",
        "error": "val_loss",
    }


@pytest.mark.parametrize(
    ("policy", "params", "expected"),
    [
        ("early_stopping", es(), "patience=3 no-restore"),
        (
            "early_stopping",
            es(min_delta=0.001, baseline=0.5, restore=True, start=2),
            "patience=3 min_delta=0.001 baseline=0.5 start=2 restore",
        ),
        ("reduce_lr_on_plateau", lr(), "factor=0.1 patience=2"),
        (
            "reduce_lr_on_plateau",
            lr(min_delta=0.0, cooldown=1, min_lr=1e-6),
            "factor=0.1 patience=2 cooldown=1 min_lr=1e-06 min_delta=0",
        ),
        ("prechelt", pre("gl", alpha=2.0), "GL2"),
        ("prechelt", pre("pq", alpha=0.5), "PQ0.5 k=5"),
        ("prechelt", pre("up", strips=3), "UP3 k=5"),
    ],
)
def test_table_labels(policy, params, expected):
    assert setting_label(policy, params) == expected


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ([es(3), es(4), es(6)], "patience=3-4|6 no-restore"),
        ([es(3), es(3, min_delta=0.001)], "patience=3 no-restore min_delta=0|0.001"),
        (
            [es(3, min_delta=0.01), es(3, min_delta=0.001)],
            "patience=3 min_delta=0.01|0.001 no-restore",
        ),
        ([es(3, restore=True), es(3)], "patience=3 restore|no-restore"),
        (
            [es(2, start=2), es(2, baseline=0.1, start=0)],
            "patience=2 start=2 no-restore baseline=None|0.1 start_from_epoch=2|0",
        ),
    ],
)
def test_table_labels_of_settings_sharing_a_row(group, expected):
    assert setting_label("early_stopping", group[0], varying_values(group)) == expected


@pytest.mark.parametrize(
    ("policy", "params", "varying", "expected"),
    [
        ("early_stopping", es(), {}, "default"),
        (
            "early_stopping",
            es(restore=True),
            {"patience": [], "restore_best_weights": []},
            "patience 3, restore yes",
        ),
        ("early_stopping", es(baseline=None), {"baseline": []}, "baseline none"),
        ("prechelt", pre("gl", alpha=2.0), {}, "GL α=2"),
        ("prechelt", pre("up", strips=3), {"strip_length": []}, "UP s=3, k=5"),
    ],
)
def test_chart_labels(policy, params, varying, expected):
    assert setting_label(policy, params, varying, style="chart") == expected


def test_the_vocabulary_imports_neither_replay_nor_matplotlib():
    code = (
        "import sys, analysis.results.records as r; r.setting_label('prechelt', {'criterion': 'gl',"
        " 'alpha': 1.0}); bad = [m for m in ('matplotlib', 'replay') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
