"""The tf_keras dialect decides exactly what the installed tf_keras 2.21 callbacks decide.

Differential: every generated curve (the generators of ``test_keras_parity.py``, plus
values beyond float32's range, which tf.keras compares as float64) goes through the real
``tf_keras.callbacks.EarlyStopping`` / ``ReduceLROnPlateau`` and through
``replay.engine.dialects.tf_keras``; stopped epoch, epochs trained, best epoch, the epoch whose
weights you end with, the cut epochs and the float32 bits of every rate must agree.
The callbacks are driven as ``fit`` drives them (``set_model``, ``on_train_begin``,
``on_epoch_end`` until ``stop_training``, ``on_train_end``), with a stand-in model whose
weights are the index of the epoch that produced them, and a real tf_keras SGD whose
float32 ``lr`` variable ReduceLROnPlateau reads and assigns (assignments are noted by
wrapping ``backend.set_value``, which still does the assigning).

Older tf.keras versions cannot be installed next to TensorFlow 2.21: their rules are
table rows below, each citing the source line that makes the difference.

Run with ``-s`` to see how many curves each test compared.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf_keras = pytest.importorskip("tf_keras")

import test_keras_parity as kp  # noqa: E402  (tests/ is on sys.path)
from tf_keras.src import backend as tfk_backend  # noqa: E402
from tf_keras.src import callbacks as tfk_callbacks  # noqa: E402

from replay.engine.dialects import tf_keras as dialect  # noqa: E402
from replay.engine.policies import PolicyError  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # min_delta drawn from steps between values beyond float32's range
    pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning"),
]

N_CURVES = kp.N_CURVES  # PARITY_CURVES lowers it for a quick local run
NAN, INF = math.nan, math.inf


# ----------------------------------------------------------------------------------
# Driving the real callbacks


@dataclass(frozen=True)
class Real:
    stopped_epoch: int | None
    epochs_trained: int
    best_epoch: int | None
    final_epoch: int | None


class EpochModel:
    """Stand-in model: its weights are the index of the epoch that produced them."""

    def __init__(self, optimizer=None):
        self.stop_training = False
        self.optimizer = optimizer
        self.epoch: int | None = None
        self.weights_now: int | None = None

    def get_weights(self):
        return [self.epoch]

    def set_weights(self, weights):
        self.weights_now = weights[0]


def real_early_stopping(values, **params) -> Real:
    model = EpochModel()
    callback = tfk_callbacks.EarlyStopping(**params)
    callback.set_model(model)
    stopped = None
    trained = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            model.epoch = model.weights_now = epoch
            trained += 1
            callback.on_epoch_end(epoch, {} if value is None else {params["monitor"]: value})
            if model.stop_training:
                stopped = epoch
                break
        callback.on_train_end()
    initial = math.inf if callback.monitor_op == np.less else -math.inf
    improved = callback.best != initial  # best moves only on an improvement
    return Real(stopped, trained, callback.best_epoch if improved else None,
                model.weights_now if trained else None)  # fmt: skip


_ASSIGNED: list[float] = []
_real_set_value = tfk_backend.set_value


def _recording_set_value(x, value):
    _ASSIGNED.append(value)
    _real_set_value(x, value)


def real_reduce_lr(values, *, initial_lr, **params):
    optimizer = tf_keras.optimizers.SGD(learning_rate=initial_lr)
    model = EpochModel(optimizer)
    callback = tfk_callbacks.ReduceLROnPlateau(**params)
    callback.set_model(model)
    rates, cuts = [], []
    _ASSIGNED.clear()
    tfk_callbacks.backend.set_value = _recording_set_value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            callback.on_train_begin()
            for epoch, value in enumerate(values):
                logs = {"filler": 0.0} if value is None else {params["monitor"]: value}
                before = len(_ASSIGNED)
                callback.on_epoch_end(epoch, logs)
                rates.append(float(logs["lr"]))  # tf.keras writes the rate it read
                if len(_ASSIGNED) > before:
                    cuts.append(epoch)
    finally:
        tfk_callbacks.backend.set_value = _real_set_value
    final = float(tfk_backend.get_value(optimizer.lr))
    return tuple(rates), tuple(cuts), final


def _bits(x: float) -> int:
    f = np.float32(x)
    assert float(f) == x, x
    return int(f.view(np.uint32))


# ----------------------------------------------------------------------------------
# Generated cases

BIG = [1e39, -1e39, 1e300, -1e300, 3.5e38, 5e-324]  # fine in float64, beyond float32


@st.composite
def tf_curves(draw):
    values = draw(kp.curves())
    if values and draw(st.integers(0, 7)) == 0:
        i = draw(st.integers(0, len(values) - 1))
        values[i] = draw(st.sampled_from(BIG))
    return values


def _finite_or_none(x: float | None) -> float | None:
    """A baseline drawn near a value beyond float32's range may overflow to inf."""
    return x if x is not None and math.isfinite(x) else None


TF_MONITOR_MODES = [
    *kp.MONITOR_MODES,
    ("val_auc", "auto"), ("val_acc", "auto"), ("accuracy", "auto"),
    ("val_acc_rate", "auto"), ("my_metric", "auto"),
]  # fmt: skip


@st.composite
def early_stopping_cases(draw):
    values = draw(tf_curves())
    monitor, mode = draw(st.sampled_from(TF_MONITOR_MODES))
    return values, {
        "monitor": monitor,
        "mode": mode,
        "patience": draw(st.integers(0, 12)),
        "min_delta": draw(kp.min_deltas(values)),
        "baseline": _finite_or_none(draw(kp.baselines(values))),
        "restore_best_weights": draw(st.booleans()),
        "start_from_epoch": draw(st.sampled_from([0, 0, 0, 1, 2, 3, 5])),
    }


@st.composite
def reduce_lr_cases(draw):
    values = draw(tf_curves())
    monitor, mode = draw(st.sampled_from(TF_MONITOR_MODES))
    initial_lr = draw(st.one_of(st.sampled_from(kp.INITIAL_LRS), st.floats(1e-8, 10.0)))
    factor = draw(st.one_of(st.sampled_from(kp.FACTORS), st.floats(1e-6, 1.0, exclude_max=True)))
    factor = max(factor, 1e-12)
    clamp = initial_lr * factor ** draw(st.integers(1, 5))
    min_lr = draw(st.sampled_from([
        0.0, 0.0, clamp, kp._f32(clamp), kp._next64(clamp, INF), kp._next64(clamp, 0.0),
        kp._next32(clamp, INF), kp._next32(clamp, 0.0), kp._f32(initial_lr), initial_lr, 1e-40,
    ]))  # fmt: skip
    min_delta = draw(kp.min_deltas(values, default=1e-4))
    return (
        values,
        initial_lr,
        {
            "monitor": monitor,
            "mode": mode,
            "factor": factor,
            "patience": draw(st.integers(0, 12)),
            "min_delta": min_delta,  # tf.keras keeps its sign here
            "cooldown": draw(st.integers(0, 4)),
            "min_lr": min_lr,
        },
    )


COUNTS: dict[str, int] = {}


def check_early_stopping(values, params) -> None:
    real = real_early_stopping(values, **params)
    mine = dialect.early_stopping(values, **params)
    assert (mine.stopped_epoch, mine.epochs_trained, mine.best_epoch, mine.final_epoch) == (
        real.stopped_epoch, real.epochs_trained, real.best_epoch, real.final_epoch
    ), (values, params, real, mine)  # fmt: skip
    assert mine.stopped == (real.stopped_epoch is not None)


def check_reduce_lr(values, initial_lr, params) -> None:
    rates, cuts, final = real_reduce_lr(values, initial_lr=initial_lr, **params)
    mine = dialect.reduce_lr_on_plateau(values, initial_lr=initial_lr, **params)
    context = (values, initial_lr, params, rates, cuts, final, mine)
    assert mine.reductions == cuts, context
    assert [_bits(r) for r in mine.lr] == [_bits(r) for r in rates], context
    assert _bits(mine.final_lr) == _bits(final), context


@kp.PARITY_SETTINGS
@given(early_stopping_cases())
def _early_stopping_property(case):
    check_early_stopping(*case)
    COUNTS["early_stopping"] = COUNTS.get("early_stopping", 0) + 1


@kp.PARITY_SETTINGS
@given(reduce_lr_cases())
def _reduce_lr_property(case):
    check_reduce_lr(*case)
    COUNTS["reduce_lr_on_plateau"] = COUNTS.get("reduce_lr_on_plateau", 0) + 1


def _report(capsys, key: str) -> int:
    n = COUNTS.get(key, 0)
    with capsys.disabled():
        print(f"\n[tf_keras parity] {key}: {n} generated curves compared with tf_keras 2.21")
    return n


def test_early_stopping_matches_tf_keras(capsys):
    COUNTS["early_stopping"] = 0
    _early_stopping_property()
    assert _report(capsys, "early_stopping") >= N_CURVES


def test_reduce_lr_on_plateau_matches_tf_keras(capsys):
    COUNTS["reduce_lr_on_plateau"] = 0
    _reduce_lr_property()
    assert _report(capsys, "reduce_lr_on_plateau") >= N_CURVES


# ----------------------------------------------------------------------------------
# The traps, each run through the real tf_keras 2.21 and the dialect

TRAPS_ES = [
    # best starts at +inf: a NaN first value is not best (Keras 3 makes it best).
    pytest.param([NAN, 1.0, 1.0, 1.0], {"monitor": "val_loss", "patience": 2},
                 {"stopped_epoch": 3, "best_epoch": 1}, id="nan-first-is-not-best"),
    # float64: values equal in float32 but not in float64 still improve.
    pytest.param([1.0, 1.0 - 2**-40, 1.0 - 2**-39], {"monitor": "val_loss", "patience": 1},
                 {"stopped_epoch": None, "best_epoch": 2}, id="float64-not-float32"),
    # auto mode from the name: *auc is maximized, 'acc' inside a name is not.
    pytest.param([0.5, 0.6, 0.7], {"monitor": "val_auc", "patience": 1},
                 {"stopped_epoch": None}, id="auc-suffix-max"),
    pytest.param([0.5, 0.6, 0.7], {"monitor": "val_acc_rate", "patience": 1},
                 {"stopped_epoch": 1}, id="acc-inside-name-min"),
    # values beyond float32's range are compared, not refused.
    pytest.param([1e39, 1e38, 2e38], {"monitor": "val_loss", "patience": 1},
                 {"stopped_epoch": 2, "best_epoch": 1}, id="beyond-float32"),
    # 2.16+: restores at the end of training even without a stop.
    pytest.param([0.5, 0.4, 0.45], {"monitor": "val_loss", "patience": 5,
                                    "restore_best_weights": True},
                 {"stopped_epoch": None, "final_epoch": 1}, id="restores-without-stop"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "params", "expected"), TRAPS_ES)
def test_tf_keras_early_stopping_traps(values, params, expected):
    real = real_early_stopping(values, **params)
    mine = dialect.early_stopping(values, **params)
    for field, value in expected.items():
        assert getattr(real, field) == value, (field, real)
        assert getattr(mine, field) == value, (field, mine)
    check_early_stopping(values, params)


def test_tf_keras_plateau_mode_differs_from_early_stopping():
    # ReduceLROnPlateau's auto rule is "'acc' in monitor": val_auc is minimized.
    values = [0.5, 0.6, 0.7, 0.8]
    params = {"monitor": "val_auc", "patience": 1, "factor": 0.5}
    rates, cuts, _ = real_reduce_lr(values, initial_lr=0.1, **params)
    assert cuts == (1, 2, 3)
    assert dialect.reduce_lr_on_plateau(values, initial_lr=0.1, **params).reductions == cuts
    assert dialect.plateau_mode("val_auc") == "min"
    assert dialect.early_stopping_mode("val_auc") == "max"


def test_tf_keras_cut_is_float32_under_numpy2():
    """The arithmetic the Keras 3 replay gets wrong for tf.keras: 0.05 * 0.1 in float32."""
    params = {"monitor": "val_loss", "patience": 1, "factor": 0.1}
    rates, cuts, final = real_reduce_lr([1.0, 1.0], initial_lr=0.05, **params)
    assert final == float(np.float32(0.05) * np.float32(0.1)) != float(np.float32(0.05 * 0.1))
    assert dialect.reduce_lr_on_plateau([1.0, 1.0], initial_lr=0.05, **params).final_lr == final


# ----------------------------------------------------------------------------------
# Older tf.keras (cannot be installed here): rules from keras-team/keras v2.6.0-v2.15.0
# and keras-team/tf-keras v2.15.0 keras/callbacks.py, one row per difference.

OLDER = [
    # v2.15.0 EarlyStopping.on_epoch_end restores only inside `if self.wait >= ...`.
    pytest.param("2.15", [0.5, 0.4, 0.45], {"patience": 5, "restore_best_weights": True},
                 (None, 2), id="2.15-no-restore-without-stop"),
    pytest.param("2.15", [0.5, 0.4, 0.45, 0.46], {"patience": 2, "restore_best_weights": True},
                 (3, 1), id="2.15-restores-on-stop"),
    pytest.param("2.16", [0.5, 0.4, 0.45], {"patience": 5, "restore_best_weights": True},
                 (None, 1), id="2.16-restores-at-train-end"),
    # v2.11.0 has no `return` after an improvement: patience 0 stops on an improving epoch.
    pytest.param("2.11", [0.5, 0.4, 0.3], {"patience": 0}, (1, 1), id="2.11-stops-on-improvement"),
    pytest.param("2.12", [0.5, 0.4, 0.3], {"patience": 0}, (None, 2), id="2.12-returns"),
    # v2.11.0 improvement that misses the baseline: wait counts on and the test runs.
    pytest.param("2.11", [0.9, 0.8, 0.7], {"patience": 2, "baseline": 0.5}, (1, 1),
                 id="2.11-baseline-stop-on-improving-epoch"),
    pytest.param("2.12", [0.9, 0.8, 0.7], {"patience": 2, "baseline": 0.5}, (None, 2),
                 id="2.12-baseline-improving-epochs-never-stop"),
    # v2.6.0: no `epoch > 0` guard; 'acc' anywhere in the name is max.
    pytest.param("2.6", [NAN, NAN, 0.5], {"patience": 0}, (0, 0), id="2.6-stops-at-epoch-0"),
    pytest.param("2.7", [NAN, NAN, 0.5], {"patience": 0}, (1, 1), id="2.7-epoch-0-guard"),
]  # fmt: skip


@pytest.mark.parametrize(("version", "values", "params", "expected"), OLDER)
def test_older_tf_keras_rules(version, values, params, expected):
    result = dialect.early_stopping(values, version=version, **params)
    assert (result.stopped_epoch, result.final_epoch) == expected


def test_older_auto_mode():
    assert dialect.early_stopping_mode("val_acc_rate", version="2.6") == "max"
    assert dialect.early_stopping_mode("val_acc_rate", version="2.7") == "min"
    assert dialect.early_stopping_mode("val_auc", version="2.6") == "min"


def test_numpy1_cut_is_float64_then_rounded():
    # TensorFlow < 2.18 runs NumPy 1: np.float32 * float is float64 (legacy promotion).
    result = dialect.reduce_lr_on_plateau([1.0, 1.0], initial_lr=0.05, patience=1, numpy_major=1)
    assert result.final_lr == float(np.float32(float(np.float32(0.05)) * 0.1))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"version": "2.5"}, "covers tf.keras 2.6-2.21 but got version '2.5'"),
    ({"version": "2.22"}, "but got version '2.22'"),
    ({"version": "two"}, "dotted integers such as '2.21' but got 'two'"),
    ({"start_from_epoch": 2, "version": "2.10"}, "from tf.keras 2.11 but got 2"),
    ({"mode": "up"}, "but got 'up'"),
    ({"patience": -1}, "patience cannot be negative but got -1"),
    ({"min_delta": NAN}, "min_delta must be finite but got nan"),
    ({"baseline": INF}, "baseline must be finite but got inf"),
])  # fmt: skip
def test_early_stopping_refuses(kwargs, message):
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dialect.early_stopping([1.0], **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"factor": 1.0}, "factor must be < 1.0 (as in tf.keras) but got 1.0"),
    ({"factor": 0.0}, "factor must be > 0 but got 0.0"),
    ({"min_lr": -1.0}, "min_lr cannot be negative but got -1.0"),
    ({"initial_lr": 0.0}, "initial_lr must be > 0 but got 0.0"),
    ({"numpy_major": 3}, "numpy_major must be 1 or 2 but got 3"),
    ({"cooldown": 1.5}, "cooldown must be an integer but got 1.5"),
])  # fmt: skip
def test_reduce_lr_refuses(kwargs, message):
    params = {"initial_lr": 0.1, **kwargs}
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dialect.reduce_lr_on_plateau([1.0], **params)


def test_empty_curve():
    result = dialect.early_stopping([], patience=1)
    assert (result.stopped, result.epochs_trained, result.final_epoch, result.censored) == (
        False, 0, None, True)  # fmt: skip
    assert dialect.reduce_lr_on_plateau([], initial_lr=0.1).lr == ()


def test_records_are_json():
    json.dumps(dialect.VERSIONS)
