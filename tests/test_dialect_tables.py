"""torch, Lightning, Hugging Face and Ultralytics dialects against their truth tables.

The tables in ``tests/data/dialects/`` were written once by the real frameworks
(``make_truth_tables.py``: torch 2.13.0, lightning 2.6.6, transformers 5.24.0, the
``EarlyStopping`` of the ultralytics 8.3.0 and 8.4.190 wheels), since none of them
may be a dependency here. Each row is one case: the frameworks' own test cases (each
citing the test it reproduces, with that test's expected answer checked too), the traps
of issue 12, and generated curves. Fast: no framework is imported.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from replay.engine.dialects import hf, lightning, ultralytics
from replay.engine.dialects import torch as torch_dialect
from replay.engine.policies import PolicyError

TABLES = Path(__file__).parent / "data" / "dialects"
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def dec(x):
    if isinstance(x, str):
        return _SPECIAL.get(x, x)
    if isinstance(x, list):
        return [dec(v) for v in x]
    if isinstance(x, dict):
        return {k: dec(v) for k, v in x.items()}
    return x


def load(name: str) -> list:
    cases = dec(json.loads((TABLES / name).read_text())["cases"])
    return [pytest.param(c, id=c["id"]) for c in cases]


# ---------------------------------------------------------------------------- torch


@pytest.mark.parametrize("case", load("torch_plateau.json"))
def test_torch_plateau_matches_torch(case):
    values, after = case["values"], case["after"]
    steps = len(after)  # pytorch's own tests step fewer epochs than they have metrics
    result = torch_dialect.reduce_lr_on_plateau(
        values[:steps], initial_lr=case["initial_lr"], **case["params"]
    )
    # after[e][g]: group g's rate after epoch e's step = the rate during epoch e + 1.
    for g, rates in enumerate(result.group_lr):
        mine = [*rates[1:], result.group_final_lr[g]][:steps]
        assert mine == [row[g] for row in after], (g, case)
    assert list(result.group_final_lr) == (after[-1] if after else case["initial_lr"])
    changed = tuple(e for e in range(steps)
                    if after[e] != (after[e - 1] if e else case["initial_lr"]))  # fmt: skip
    assert result.reductions == changed
    for g, target in enumerate(case.get("torch_test_targets", [])):
        # pytorch asserts with atol=1e-5, rtol=0 on the rate after each step
        assert [row[g] for row in after] == pytest.approx(target, abs=1e-5, rel=0)


def test_torch_patience_one_cuts_a_step_later_than_keras():
    from replay.engine.policies import reduce_lr_on_plateau as keras_plateau

    values = [1.0, 1.1, 1.2]
    assert keras_plateau(values, initial_lr=0.1, patience=1).reductions == (1, 2)
    assert torch_dialect.reduce_lr_on_plateau(values, initial_lr=0.1, patience=1).reductions == (2,)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"factor": 1.0}, r"factor must be < 1.0 \(as in torch\) but got 1.0"),
    ({"mode": "auto"}, "mode must be 'min' or 'max' but got 'auto'"),
    ({"threshold_mode": "pct"}, "threshold_mode must be 'rel' or 'abs' but got 'pct'"),
    ({"min_lr": [0.0, 0.0, 0.0]}, "expected 1 min_lrs .one per group. but got 3"),
    ({"eps": -1.0}, "eps cannot be negative but got -1.0"),
    ({"patience": -1}, "patience cannot be negative but got -1"),
    ({"initial_lr": [0.1, -1.0]}, r"initial_lr must be > 0 but got \[0.1, -1.0\]"),
])  # fmt: skip
def test_torch_refuses(kwargs, message):
    with pytest.raises(PolicyError, match=message):
        torch_dialect.reduce_lr_on_plateau([1.0], **{"initial_lr": 0.1, **kwargs})


# ---------------------------------------------------------------------------- Lightning


@pytest.mark.parametrize("case", load("lightning_early_stopping.json"))
def test_lightning_matches_lightning(case):
    result = lightning.early_stopping(
        case["values"], check_on_train_epoch_end=case["check_on_train_epoch_end"],
        **case["params"])  # fmt: skip
    standin = case["standin"]
    assert (result.stopped_epoch, result.reason, result.checks) == (
        standin["stopped_epoch"], standin["reason"], standin["checks"]), case  # fmt: skip
    if "real" in case:  # a real Trainer.fit agrees with the stand-in driver
        assert (case["real"]["stopped_epoch"], case["real"]["reason"]) == (
            standin["stopped_epoch"], standin["reason"])  # fmt: skip
    if "lightning_test_expected_stop_epoch" in case:
        assert result.stopped_epoch == case["lightning_test_expected_stop_epoch"]


def test_lightning_default_check_reads_the_curve():
    # Validation every other epoch: Lightning's default checks at validation end only.
    curve = [None, 5.0, None, 4.0, None, 4.0, None, 4.0, None, 4.0]
    at_validation = lightning.early_stopping(curve, patience=3)
    assert (at_validation.stopped_epoch, at_validation.checks) == (9, 5)
    # Checked at every training epoch's end, each stale value is one more bad check.
    every_epoch = lightning.early_stopping(curve, patience=3, check_on_train_epoch_end=True)
    assert (every_epoch.stopped_epoch, every_epoch.checks) == (6, 6)


def test_lightning_min_delta_in_float32():
    # 0.7 + 0.2 < 0.9 holds in float64 (0.8999999999999999), not in float32, where the
    # logged tensors compare: a float32 Lightning metric does not improve by min_delta.
    assert lightning.early_stopping([0.9, 0.7], patience=1, min_delta=0.2).stopped is True
    assert lightning.early_stopping([0.9, 0.7], patience=1, min_delta=0.2,
                                    dtype="float64").stopped is False  # fmt: skip


def test_lightning_refuses():
    with pytest.raises(PolicyError, match="got 'auto'"):
        lightning.early_stopping([1.0], mode="auto")
    with pytest.raises(PolicyError, match="stopping_threshold must be finite but got nan"):
        lightning.early_stopping([1.0], stopping_threshold=math.nan)


# ---------------------------------------------------------------------------- Hugging Face


@pytest.mark.parametrize("case", load("hf_early_stopping.json"))
def test_hf_matches_transformers(case):
    result = hf.early_stopping(case["values"], **case["params"])
    real = case["real"]
    assert (result.stopped_epoch, result.best_epoch) == (real["stopped_epoch"], real["best_epoch"])
    assert result.final_epoch == (
        real["best_epoch"]
        if real["best_epoch"] is not None
        else result.epochs_trained - 1
        if case["values"]
        else None
    )


# From the 4.46.3 source (best_metric set in _save_checkpoint, first evaluation always):
HF_LEGACY = [
    pytest.param([math.nan, 1.0, 0.5, 0.4], {"early_stopping_patience": 2}, (2, 0),
                 id="legacy-nan-first-poisons-best"),
    pytest.param([math.nan, 1.0, 0.5, 0.4], {"early_stopping_patience": 2, "era": "4.47+"},
                 (None, 3), id="4.47-nan-first-skipped"),
    pytest.param([1.0, 0.95, 0.92, 0.85], {"early_stopping_patience": 2,
                                          "early_stopping_threshold": 0.1}, (2, 2),
                 id="legacy-threshold-vs-moving-best"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "params", "expected"), HF_LEGACY)
def test_hf_legacy_era(values, params, expected):
    result = hf.early_stopping(values, **{"era": "legacy", **params})
    assert (result.stopped_epoch, result.best_epoch) == expected


def test_hf_direction_from_metric_name():
    assert hf.early_stopping([0.5, 0.6], metric_for_best_model="accuracy").stopped is False
    assert hf.early_stopping([0.5, 0.6], metric_for_best_model="eval_loss").stopped_epoch == 1


# ---------------------------------------------------------------------------- Ultralytics


@pytest.mark.parametrize("case", load("ultralytics_early_stopping.json"))
def test_ultralytics_matches_its_stopper(case):
    result = ultralytics.early_stopping(case["values"], era=case["era"], **case["params"])
    assert (result.stopped_epoch, result.best_epoch) == (
        case["real"]["stopped_epoch"], case["real"]["best_epoch"])  # fmt: skip


# best.pt: the trainer's best_fitness and save_model (engine/trainer.py).
ULTRALYTICS_BEST = [
    pytest.param([0.5, 0.6, 0.6, 0.4], {"trainer_best": "none"}, 2, id="tie-rewrites-best.pt"),
    pytest.param([math.nan, 0.5, 0.6], {"trainer_best": "none"}, 2,
                 id="none-rule-nan-first-then-never"),
    pytest.param([math.nan, 0.5, 0.6], {"trainer_best": "falsy"}, 2, id="falsy-rule"),
    pytest.param([0.0, -0.1, -0.2], {"trainer_best": "falsy"}, 1, id="falsy-zero-is-none"),
    pytest.param([0.0, -0.1, -0.2], {"trainer_best": "yolov5"}, 0, id="yolov5-from-zero"),
]  # fmt: skip


@pytest.mark.parametrize(("fitness", "params", "final"), ULTRALYTICS_BEST)
def test_ultralytics_best_pt(fitness, params, final):
    result = ultralytics.early_stopping(fitness, patience=100, **params)
    assert result.final_epoch == final


def test_ultralytics_traps():
    # ties: a plateau moves best_epoch forward and never stops (8.0-8.3.60).
    assert not ultralytics.early_stopping([0.5] * 10, patience=3, era="ties").stopped
    assert ultralytics.early_stopping([0.5] * 10, patience=3, era="strict").stopped_epoch == 3
    # best fitness 0 is "none yet": a drop after zeros becomes best (strict era).
    assert ultralytics.early_stopping([0.0, 0.0, -0.5, -0.6], patience=1).best_epoch == 2
    # patience 0 never stops.
    assert not ultralytics.early_stopping([0.5, 0.1, 0.1, 0.1], patience=0).stopped
