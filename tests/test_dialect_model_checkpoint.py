"""The model_checkpoint dialect saves exactly the epochs the real ModelCheckpoints save.

Differential: generated curves (``test_keras_parity.py``'s generators) through the real
``keras.callbacks.ModelCheckpoint`` (Keras 3.15) and ``tf_keras.callbacks.ModelCheckpoint``
(tf_keras 2.21, with ``period``), driven as ``fit`` drives them, with a stand-in model whose
``save`` notes the epoch instead of writing a file; and through
``replay.engine.dialects.model_checkpoint``. The saved epochs must be identical.
"""

from __future__ import annotations

import math
import os
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf_keras = pytest.importorskip("tf_keras")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import test_keras_parity as kp  # noqa: E402

from replay.engine.dialects.model_checkpoint import model_checkpoint  # noqa: E402
from replay.engine.policies import PolicyError  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
N_CURVES = max(1, kp.N_CURVES // 3)  # 1,000 per Keras by default
NAN = math.nan


class SavingModel:
    """Stand-in model: ``save`` / ``save_weights`` note the epoch being saved."""

    def __init__(self):
        self.saved: list[int] = []
        self.epoch = 0
        self.stop_training = False
        self.distribute_strategy = tf.distribute.get_strategy()

    def save(self, *args, **kwargs):
        self.saved.append(self.epoch)

    save_weights = save


def real_saves(values, *, keras_major: str, tmp, **params) -> tuple[int, ...]:
    model = SavingModel()
    module = keras.callbacks if keras_major == "3" else tf_keras.callbacks
    callback = module.ModelCheckpoint(os.path.join(tmp, "m.keras"), **params)
    callback.set_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            model.epoch = epoch
            callback.on_epoch_begin(epoch)
            logs = {"filler": 0.0}
            if value is not None:
                logs[params.get("monitor", "val_loss")] = value
            callback.on_epoch_end(epoch, logs)
    return tuple(model.saved)


MODES = [("val_loss", "auto"), ("val_loss", "min"), ("val_loss", "max"),
         ("val_accuracy", "max"), ("my_metric", "min"), ("my_metric", "max")]  # fmt: skip


@st.composite
def cases(draw, keras_major: str):
    values = draw(kp.curves())
    monitor, mode = draw(st.sampled_from(MODES))
    finite = [v for v in values if v is not None and math.isfinite(v)]
    threshold = draw(st.sampled_from([None, None, "curve", 0.5, 0.0]))
    if threshold == "curve":
        threshold = draw(st.sampled_from(finite)) if finite else None
    params = {"monitor": monitor, "mode": mode, "save_best_only": draw(st.booleans()),
              "initial_value_threshold": threshold}  # fmt: skip
    if keras_major == "2":
        params["period"] = draw(st.sampled_from([1, 1, 2, 3, 5]))
    return values, params


COUNTS: dict[str, int] = {}


def _check(values, params, keras_major, tmp):
    real = real_saves(values, keras_major=keras_major, tmp=tmp, **params)
    mine = model_checkpoint(values, keras=keras_major, **params)
    assert mine.saved == real, (values, params, real, mine)
    assert mine.final_epoch == (real[-1] if real else None)


@pytest.mark.parametrize("keras_major", ["3", "2"])
def test_model_checkpoint_matches_real(keras_major, tmp_path, capsys):
    COUNTS[keras_major] = 0

    @kp.PARITY_SETTINGS.__class__(kp.PARITY_SETTINGS, max_examples=N_CURVES)
    @given(cases(keras_major))
    def prop(case):
        _check(*case, keras_major, str(tmp_path))
        COUNTS[keras_major] += 1

    prop()
    with capsys.disabled():
        print(f"\n[model_checkpoint parity] Keras {keras_major}: {COUNTS[keras_major]} curves")
    assert COUNTS[keras_major] >= N_CURVES


TRAPS = [
    # Keras 3: the first epoch is saved even when NaN; nothing beats NaN afterwards.
    pytest.param("3", [NAN, 0.5, 0.4], {"save_best_only": True}, (0,), id="k3-nan-first"),
    # Keras 3: an epoch without the monitor is saved anyway (with a warning).
    pytest.param("3", [0.5, None, 0.6], {"save_best_only": True}, (0, 1), id="k3-missing-saves"),
    # Keras 2: NaN never saved; a missing monitor is skipped.
    pytest.param("2", [NAN, 0.5, None, 0.4], {"save_best_only": True}, (1, 3), id="k2-nan"),
    # Keras 2 period=3 (the seed blog recipe): only epochs 2, 5, 8 are looked at.
    pytest.param("2", [1.0, 0.2, 0.5, 0.6, 0.7, 0.8, 0.3, 0.1, 0.4],
                 {"save_best_only": True, "period": 3}, (2, 8), id="k2-period-3-misses-best"),
    pytest.param("3", [0.5, 0.4], {"save_best_only": True, "initial_value_threshold": 0.45},
                 (1,), id="k3-initial-value-threshold"),
]  # fmt: skip


@pytest.mark.parametrize(("keras_major", "values", "params", "expected"), TRAPS)
def test_model_checkpoint_traps(keras_major, values, params, expected, tmp_path):
    assert real_saves(values, keras_major=keras_major, tmp=str(tmp_path), **params) == expected
    assert model_checkpoint(values, keras=keras_major, **params).saved == expected


def test_model_checkpoint_refuses():
    with pytest.raises(PolicyError, match="Keras 3's ModelCheckpoint has no period but got"):
        model_checkpoint([1.0], period=3)
    with pytest.raises(PolicyError, match="period cannot be less than 1 but got 0"):
        model_checkpoint([1.0], period=0, keras="2")
    with pytest.raises(PolicyError, match="keras must be '3' or '2' but got '4'"):
        model_checkpoint([1.0], keras="4")
