"""Drive the real ``keras.callbacks`` objects over a recorded curve.

The differential test (``tests/test_keras_parity.py``) runs every generated curve
through these functions and through ``replay.engine.policies`` and requires identical
answers. Nothing here re-implements a policy: the decisions come from the installed
``keras.callbacks.EarlyStopping`` / ``ReduceLROnPlateau`` objects, driven the way
``model.fit`` drives them (``set_model``, ``on_train_begin``, ``on_epoch_end`` per
epoch until ``model.stop_training``, ``on_train_end``), with a stand-in model whose
"weights" are the index of the epoch that produced them and a real Keras optimizer
whose float32 ``learning_rate`` variable is what ReduceLROnPlateau reads and assigns.

Importing this module imports TensorFlow.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True)
class KerasEarlyStopping:
    """What real ``EarlyStopping`` decided; same fields as the replay's result."""

    stopped: bool
    stopped_epoch: int | None
    epochs_trained: int
    best_epoch: int | None
    final_epoch: int | None


@dataclass(frozen=True)
class KerasReduceLR:
    """What real ``ReduceLROnPlateau`` did; same fields as the replay's result."""

    lr: tuple[float, ...]
    reductions: tuple[int, ...]
    final_lr: float


class EpochModel:
    """Stand-in model: its weights are the index of the epoch that produced them."""

    def __init__(self, optimizer=None):
        self.stop_training = False
        self.optimizer = optimizer
        self.epoch: int | None = None
        self.restored: list[int] | None = None

    def get_weights(self):
        return [self.epoch]

    def set_weights(self, weights):
        self.restored = list(weights)


class RecordingSGD(keras.optimizers.SGD):
    """A real Keras SGD whose ``learning_rate`` setter also notes each assignment.

    The assignment itself is Keras's own (``Variable.assign`` on the float32
    variable); recording it is how the harness learns that ReduceLROnPlateau cut
    the rate, even where the float32 value did not change.
    """

    def _record_and_assign(self, value):
        self.assignments.append(value)
        keras.optimizers.SGD.learning_rate.fset(self, value)

    learning_rate = property(keras.optimizers.SGD.learning_rate.fget, _record_and_assign)


def _logs(monitor: str, value: float | None) -> dict:
    return {} if value is None else {monitor: float(value)}


def run_early_stopping(
    values: Sequence[float | None],
    *,
    monitor: str = "val_loss",
    model=None,
    **params,
) -> KerasEarlyStopping:
    """Feed ``values`` to a real ``keras.callbacks.EarlyStopping(monitor=..., **params)``.

    ``model`` defaults to an ``EpochModel``; pass a compiled Keras model to let
    ``mode="auto"`` consult its metrics (the "final epoch" is then not tracked).
    """
    stand_in = model is None
    model = EpochModel() if stand_in else model
    model.stop_training = False
    callback = keras.callbacks.EarlyStopping(monitor=monitor, **params)
    callback.set_model(model)
    stopped_epoch = None
    epochs_trained = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            if stand_in:
                model.epoch = epoch
            epochs_trained += 1
            callback.on_epoch_end(epoch, _logs(monitor, value))
            if model.stop_training:
                stopped_epoch = epoch
                break
        callback.on_train_end()
    # Keras's own record agrees with what the loop saw (0 means "not stopped",
    # which is unambiguous because Keras never stops at epoch 0).
    assert callback.stopped_epoch == (stopped_epoch or 0)
    if stand_in and model.restored is not None:
        final_epoch = model.restored[0]
    else:
        final_epoch = epochs_trained - 1 if epochs_trained else None
    # ``best`` is None until the first monitored epoch (a None reference always
    # loses, so the first monitored value, NaN included, becomes ``best``).
    best_epoch = callback.best_epoch if callback.best is not None else None
    return KerasEarlyStopping(
        stopped=stopped_epoch is not None,
        stopped_epoch=stopped_epoch,
        epochs_trained=epochs_trained,
        best_epoch=best_epoch,
        final_epoch=final_epoch if stand_in else None,
    )


_OPTIMIZER: RecordingSGD | None = None


def _optimizer(initial_lr: float) -> RecordingSGD:
    """One real optimizer reused across curves; its rate is re-assigned per curve.

    Building an optimizer costs milliseconds; assigning the initial rate goes through
    the same float64 -> float32 conversion as the constructor.
    """
    global _OPTIMIZER
    if _OPTIMIZER is None:
        _OPTIMIZER = RecordingSGD(learning_rate=float(initial_lr))
        _OPTIMIZER.assignments = []
    else:
        keras.optimizers.SGD.learning_rate.fset(_OPTIMIZER, float(initial_lr))
    _OPTIMIZER.assignments = []
    return _OPTIMIZER


# A filler key that keeps ``logs`` non-empty, so ReduceLROnPlateau's ``logs or {}``
# keeps our dict and the rate it reads lands where we can see it.
_EPOCH_KEY = "harness_epoch"


def _read_lr(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def run_reduce_lr_on_plateau(
    values: Sequence[float | None],
    *,
    initial_lr: float,
    monitor: str = "val_loss",
    **params,
) -> KerasReduceLR:
    """Feed ``values`` to a real ``keras.callbacks.ReduceLROnPlateau(**params)``.

    ``lr[e]`` is the optimizer's float32 rate as Keras reads it at the end of epoch
    ``e`` before deciding (the rate in effect during the epoch); ``reductions`` are
    the epochs at whose end Keras assigned a new rate.
    """
    optimizer = _optimizer(initial_lr)
    model = EpochModel(optimizer)
    callback = keras.callbacks.ReduceLROnPlateau(monitor=monitor, **params)
    callback.set_model(model)
    lrs = []
    reductions = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            # Keras itself writes the rate it read before deciding into a non-empty
            # ``logs`` dict: that read is the rate in effect during this epoch.
            logs = {_EPOCH_KEY: float(epoch), **_logs(monitor, value)}
            assigned = len(optimizer.assignments)
            callback.on_epoch_end(epoch, logs)
            lrs.append(logs["learning_rate"])
            if len(optimizer.assignments) > assigned:
                reductions.append(epoch)
        callback.on_train_end()
        final_lr = _read_lr(optimizer)
    return KerasReduceLR(lr=tuple(lrs), reductions=tuple(reductions), final_lr=final_lr)


def float32_bits(x: float) -> int:
    """The float32 bit pattern of ``x`` (which must be exactly a float32 value)."""
    f = np.float32(x)
    assert float(f) == float(x) or (np.isnan(f) and np.isnan(x)), x
    return int(f.view(np.uint32))
