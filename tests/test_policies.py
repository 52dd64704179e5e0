"""Table tests for the policies: one row per case, expected epochs written out.

The differential test against the real Keras callbacks is in test_keras_parity.py;
these rows pin down each rule in isolation, including every scenario of Keras's own
early_stopping_test.py and reduce_lr_on_plateau_test.py.
"""

import math

import numpy as np
import pytest
from conftest import f32

from replay.engine.policies import (
    PolicyError,
    early_stopping,
    prechelt,
    reduce_lr_on_plateau,
    resolve_mode,
)

NAN = math.nan
INF = math.inf
KERAS_PATIENCE_LOSSES = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]


# (kwargs, curve, stopped_epoch, epochs_trained, best_epoch, final_epoch)
ES_ROWS = [
    # Keras test_early_stopping_patience: stops at max(patience, 1) + 2.
    *[
        pytest.param(
            {"monitor": "loss", "patience": p},
            KERAS_PATIENCE_LOSSES,
            max(p, 1) + 2,
            max(p, 1) + 3,
            2,
            max(p, 1) + 2,
            id=f"keras-patience-{p}",
        )
        for p in (0, 1, 2, 3)
    ],
    # Keras test_early_stopping_final_weights_when_restoring_model_weights.
    pytest.param(
        {"patience": 2, "restore_best_weights": True},
        [0.2, 0.15, 0.1, 0.11, 0.12],
        4, 5, 2, 2,
        id="keras-restore-best",
    ),
    # Keras ..._with_baseline: baseline never beaten, wait never resets.
    pytest.param(
        {"patience": 5, "baseline": 0.5, "restore_best_weights": True},
        [0.9, 0.8, 0.7, 0.71, 0.72, 0.73],
        4, 5, 2, 2,
        id="keras-baseline-restore",
    ),
    pytest.param(
        {"patience": 2, "baseline": 0.75},
        [0.9, 0.8, 0.7, 0.71, 0.72, 0.73],
        # 0.9 and 0.8 improve but miss the baseline (wait 1, 2); 0.7 beats it (wait 0).
        4, 5, 2, 4,
        id="baseline-beaten-resets-wait",
    ),
    # restore_best_weights restores even when training never stopped.
    pytest.param(
        {"patience": 10, "restore_best_weights": True},
        [0.5, 0.3, 0.4, 0.45],
        None, 4, 1, 1,
        id="restore-without-stop",
    ),
    pytest.param(
        {"patience": 10}, [0.5, 0.3, 0.4, 0.45], None, 4, 1, 3, id="no-restore-without-stop"
    ),
    # min_delta: improvements smaller than it do not count.
    pytest.param(
        {"patience": 1, "min_delta": 0.05}, [1.0, 0.97, 0.9], 1, 2, 0, 1, id="min-delta-blocks"
    ),
    pytest.param(
        {"patience": 1, "min_delta": -0.05}, [1.0, 0.97, 0.9], 1, 2, 0, 1, id="min-delta-abs"
    ),
    # max mode and auto on accuracy.
    pytest.param(
        {"monitor": "val_accuracy", "patience": 1}, [0.5, 0.6, 0.6], 2, 3, 1, 2, id="auto-max"
    ),
    pytest.param(
        {"monitor": "val_loss", "mode": "max", "patience": 1},
        [0.5, 0.6, 0.6], 2, 3, 1, 2, id="explicit-max",
    ),
    # Ties are not improvements (strict comparison).
    pytest.param({"patience": 2}, [1.0, 1.0, 1.0, 1.0], 2, 3, 0, 2, id="ties"),
    # Equal in float32, different in float64: no improvement.
    pytest.param(
        {"patience": 1}, [1.0, 1.0 - 1e-12, 0.5], 1, 2, 0, 1, id="float32-equal"
    ),
    # TensorFlow flushes subnormals to zero: 1e-45 does not beat 3e-45.
    pytest.param({"patience": 1}, [3e-45, 1e-45, 0.0], 1, 2, 0, 1, id="subnormal-flush"),
    # start_from_epoch: earlier epochs are not looked at at all.
    pytest.param(
        {"patience": 1, "start_from_epoch": 3},
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        4, 5, 3, 4,
        id="start-from-epoch",
    ),
    pytest.param(
        {"patience": 1, "start_from_epoch": 2, "restore_best_weights": True},
        [1.0, 2.0, 3.0, 4.0],
        3, 4, 2, 2,
        id="start-from-epoch-snapshot",
    ),
    # Missing values are skipped: no wait increment.
    pytest.param({"patience": 2}, [1.0, None, 2.0, None, 3.0], 4, 5, 0, 4, id="missing-skipped"),
    # NaN first becomes best, and nothing ever beats it.
    pytest.param({"patience": 2}, [NAN, 0.1, 0.05], 2, 3, 0, 2, id="nan-first"),
    pytest.param({"patience": 1}, [0.5, NAN, 0.4], 1, 2, 0, 1, id="nan-later-no-improvement"),
    pytest.param({"patience": 1}, [INF, 1.0, 2.0], 2, 3, 1, 2, id="inf-beaten"),
    pytest.param({"patience": 1}, [-INF, -1e30, 0.0], 1, 2, 0, 1, id="minus-inf-unbeatable"),
    pytest.param({"patience": 1}, [-1.0, -2.0, -1.5], 2, 3, 1, 2, id="negative"),
    # Beyond float32's range: +-inf as a float32 would hold it (Keras raises).
    pytest.param({"patience": 1}, [1e308, 1e300, 1.0], 1, 2, 0, 1, id="float32-overflow"),
    # Empty and all-missing curves.
    pytest.param({"patience": 1}, [], None, 0, None, None, id="empty"),
    pytest.param({"patience": 1}, [None, None, None], None, 3, None, 2, id="all-missing"),
    pytest.param(
        {"patience": 1, "restore_best_weights": True},
        [None, None],
        None, 2, None, 1,
        id="all-missing-restore-has-no-snapshot",
    ),
    pytest.param({"patience": 0}, [5.0], None, 1, 0, 0, id="single-epoch"),
]  # fmt: skip


@pytest.mark.parametrize("kwargs, curve, stopped, trained, best, final", ES_ROWS)
def test_early_stopping_table(kwargs, curve, stopped, trained, best, final):
    r = early_stopping(curve, **kwargs)
    assert (r.stopped_epoch, r.epochs_trained, r.best_epoch, r.final_epoch) == (
        stopped,
        trained,
        best,
        final,
    )
    assert r.stopped == (stopped is not None)
    assert r.censored == (stopped is None)


def test_patience_zero_and_one_agree_everywhere():
    rng = np.random.default_rng(0)
    for _ in range(200):
        curve = list(np.round(rng.normal(1, 0.1, size=rng.integers(1, 30)), 2))
        assert early_stopping(curve, patience=0) == early_stopping(curve, patience=1)


# (kwargs, curve, lr per epoch, reductions)
PLATEAU_ROWS = [
    # Keras test_reduces_lr_with_model_fit: min_delta 100 makes every epoch after
    # the first a non-improvement.
    pytest.param(
        {"patience": 1, "factor": 0.1, "min_delta": 100, "initial_lr": 0.1},
        [1.0, 0.9],
        [0.1, 0.1], (1,),
        id="keras-reduces-lr",
    ),
    # Keras test_honors_min_lr: 0.1 -> 0.01 -> max(0.001, 0.005); then no cut since
    # the rate equals float32(min_lr).
    pytest.param(
        {"patience": 1, "factor": 0.1, "min_delta": 10, "min_lr": 0.005, "initial_lr": 0.1},
        [1.0, 0.9, 0.8, 0.7, 0.6],
        [0.1, 0.1, 0.01, 0.005, 0.005], (1, 2),
        id="keras-min-lr",
    ),
    # Keras test_cooldown: cooldown 2 with patience 1 cuts twice in 4 epochs.
    pytest.param(
        {"patience": 1, "factor": 0.1, "min_delta": 100, "cooldown": 2, "initial_lr": 0.1},
        [1.0, 0.9, 0.8, 0.7],
        [0.1, 0.1, 0.01, 0.01], (1, 3),
        id="keras-cooldown",
    ),
    # cooldown=1 has no effect in Keras 3: same as cooldown=0.
    pytest.param(
        {"patience": 1, "factor": 0.5, "cooldown": 1, "initial_lr": 1.0},
        [1.0, 1.0, 1.0, 1.0],
        [1.0, 1.0, 0.5, 0.25], (1, 2, 3),
        id="cooldown-one-no-effect",
    ),
    pytest.param(
        {"patience": 1, "factor": 0.5, "cooldown": 0, "initial_lr": 1.0},
        [1.0, 1.0, 1.0, 1.0],
        [1.0, 1.0, 0.5, 0.25], (1, 2, 3),
        id="cooldown-zero",
    ),
    pytest.param(
        {"patience": 2, "factor": 0.5, "initial_lr": 1.0},
        [1.0, 0.5, 0.6, 0.7, 0.4, 0.45, 0.46],
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5], (3, 6),
        id="improvement-resets-wait",
    ),
    # Default min_delta is 1e-4: a gain of 5e-5 is not an improvement.
    pytest.param(
        {"patience": 1, "factor": 0.5, "initial_lr": 1.0},
        [1.0, 0.99995],
        [1.0, 1.0], (1,),
        id="default-min-delta",
    ),
    # Missing epochs do nothing, not even count down the cooldown.
    pytest.param(
        {"patience": 1, "factor": 0.5, "cooldown": 2, "initial_lr": 1.0},
        [1.0, 1.0, None, None, 1.0, 1.0],
        [1.0, 1.0, 0.5, 0.5, 0.5, 0.5], (1, 5),
        id="missing-skips-cooldown",
    ),
    # The rate is stored as float32 after each cut.
    pytest.param(
        {"patience": 1, "factor": 0.1, "initial_lr": 1e-3},
        [1.0, 1.0, 1.0],
        [f32(1e-3), f32(1e-3), f32(f32(1e-3) * 0.1)], (1, 2),
        id="float32-storage",
    ),
    pytest.param(
        {"patience": 1, "initial_lr": 0.1},
        [NAN, 0.1, 0.05],
        [0.1, 0.1, 0.01], (1, 2),
        id="nan-first",
    ),
    pytest.param({"patience": 0, "initial_lr": 0.1}, [], [], (), id="empty"),
    pytest.param(
        {"patience": 0, "initial_lr": 0.1}, [None, None], [0.1, 0.1], (), id="all-missing"
    ),
]  # fmt: skip


@pytest.mark.parametrize("kwargs, curve, rates, reductions", PLATEAU_ROWS)
def test_reduce_lr_on_plateau_table(kwargs, curve, rates, reductions):
    r = reduce_lr_on_plateau(curve, **kwargs)
    bits = np.array(r.lr, dtype=np.float32).view(np.uint32).tolist()
    assert bits == np.array(rates, dtype=np.float32).view(np.uint32).tolist()
    assert r.reductions == reductions
    assert all(float(np.float32(x)) == x for x in r.lr)


def test_final_lr_is_rate_after_last_decision():
    r = reduce_lr_on_plateau([1.0, 1.0], initial_lr=1.0, patience=1, factor=0.5)
    assert r.lr == (1.0, 1.0) and r.final_lr == 0.5


@pytest.mark.parametrize(
    "monitor, mode, expected",
    [
        ("loss", "auto", "min"),
        ("val_loss", "auto", "min"),
        ("test_loss", "auto", "min"),
        ("val_accuracy", "auto", "max"),
        ("sparse_categorical_accuracy", "auto", "max"),
        ("val_auc", "auto", "max"),
        ("val_mae", "auto", "min"),
        ("val_accuracy", "min", "min"),
        ("anything", "max", "max"),
    ],
)
def test_resolve_mode(monitor, mode, expected):
    assert resolve_mode(monitor, mode) == expected


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: early_stopping([1.0], patience=-1), "patience cannot be negative but got -1."),
        (lambda: early_stopping([1.0], patience=1.5), "patience must be an integer but got 1.5."),
        (
            lambda: early_stopping([1.0], mode="minimum"),
            "mode must be one of auto, min, max but got 'minimum'",
        ),
        (lambda: early_stopping([1.0], monitor="val_foo"), "cannot infer whether 'val_foo'"),
        (
            lambda: early_stopping([1.0], min_delta=math.nan),
            "min_delta must be finite but got nan.",
        ),
        (lambda: early_stopping([1.0], baseline="x"), "baseline must be a number but got 'x'."),
        (
            lambda: early_stopping([1.0], start_from_epoch=-2),
            "start_from_epoch cannot be negative but got -2.",
        ),
        (
            lambda: reduce_lr_on_plateau([1.0], initial_lr=0.1, factor=1.0),
            "factor must be < 1.0 (as in Keras) but got 1.0.",
        ),
        (
            lambda: reduce_lr_on_plateau([1.0], initial_lr=0.1, factor=0),
            "factor must be > 0 but got 0.0.",
        ),
        (
            lambda: reduce_lr_on_plateau([1.0], initial_lr=0.1, cooldown=-1),
            "cooldown cannot be negative but got -1.",
        ),
        (
            lambda: reduce_lr_on_plateau([1.0], initial_lr=0.1, min_lr=-1e-3),
            "min_lr cannot be negative but got -0.001.",
        ),
        (lambda: reduce_lr_on_plateau([1.0], initial_lr=0), "initial_lr must be > 0 but got 0.0."),
        (
            lambda: prechelt([0.1], criterion="gl", alpha=1, monitor="val_accuracy"),
            "convert it to an error first (1 - accuracy)",
        ),
        (
            lambda: prechelt([0.1], criterion="xx", alpha=1),
            "criterion must be one of gl, pq, up but got 'xx'.",
        ),
        (
            lambda: prechelt([0.1], criterion="pq", alpha=1),
            "the PQ criterion needs training errors",
        ),
        (
            lambda: prechelt([0.1], criterion="up", strips=0),
            "up_strips cannot be less than 1 but got 0.",
        ),
    ],
)
def test_bad_parameters_name_the_value(call, message):
    with pytest.raises(PolicyError) as info:
        call()
    assert message in str(info.value)


# Prechelt: val errors, train errors, kwargs, stopped_epoch, final_epoch
VAL = [0.50, 0.40, 0.35, 0.36, 0.40, 0.38, 0.39, 0.41, 0.45, 0.50, 0.55, 0.60]
TRAIN = [0.60, 0.45, 0.38, 0.33, 0.30, 0.28, 0.27, 0.26, 0.255, 0.25, 0.249, 0.248]
PRECHELT_ROWS = [
    # GL(3) = 100 * (0.36/0.35 - 1) = 2.86; GL(4) = 14.3.
    pytest.param({"criterion": "gl", "alpha": 2}, 3, 2, id="gl2"),
    pytest.param({"criterion": "gl", "alpha": 5}, 4, 2, id="gl5"),
    pytest.param({"criterion": "gl", "alpha": 100}, None, 2, id="gl-never"),
    # Strips of 5 end at epochs 4 and 9. P_5(4) = 1000 * (2.06 / 1.5 - 1) = 373.3,
    # GL(4) / P = 0.038; P_5(9) = 1000 * (1.315 / 1.25 - 1) = 52, GL(9) = 42.9: 0.82.
    pytest.param({"criterion": "pq", "alpha": 0.5}, 9, 2, id="pq0.5"),
    pytest.param({"criterion": "pq", "alpha": 0.01}, 4, 2, id="pq0.01"),
    # Strip ends with k=3: epochs 2, 5, 8, 11: val 0.35, 0.38 (rise), 0.45 (rise), 0.60.
    pytest.param({"criterion": "up", "strips": 1, "strip_length": 3}, 5, 2, id="up1"),
    pytest.param({"criterion": "up", "strips": 2, "strip_length": 3}, 8, 2, id="up2"),
    pytest.param({"criterion": "up", "strips": 4, "strip_length": 3}, None, 2, id="up4-never"),
]


@pytest.mark.parametrize("kwargs, stopped, final", PRECHELT_ROWS)
def test_prechelt_table(kwargs, stopped, final):
    r = prechelt(VAL, TRAIN, **kwargs)
    assert (r.stopped_epoch, r.final_epoch, r.censored) == (stopped, final, stopped is None)
    assert r.epochs_trained == (stopped + 1 if stopped is not None else len(VAL))


def test_prechelt_final_epoch_is_best_up_to_the_stop():
    # The best epoch after the stop (0.1 at epoch 4) is not one the run saw.
    r = prechelt([0.5, 0.4, 0.6, 0.7, 0.1], criterion="gl", alpha=10)
    assert (r.stopped_epoch, r.final_epoch) == (2, 1)


@pytest.mark.parametrize(
    "val, stopped, final",
    [
        ([], None, None),
        ([None, None], None, 1),
        ([NAN, 0.5, 0.6], 2, 1),
        ([0.0, 0.0, 0.1], 2, 0),  # E_opt = 0: GL is +inf for any positive error
    ],
)
def test_prechelt_edge_curves(val, stopped, final):
    r = prechelt(val, criterion="gl", alpha=1)
    assert (r.stopped_epoch, r.final_epoch) == (stopped, final)
