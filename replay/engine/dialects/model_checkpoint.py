"""``ModelCheckpoint``: which epochs it saves, and which file you are left with.

Sources: keras-team/keras v3.15.0 ``keras/src/callbacks/model_checkpoint.py``
(``_should_save_model``) and ``monitor_callback.py`` (``_is_improvement``); for Keras 2,
keras-team/tf-keras v2.21.0 ``tf_keras/callbacks.py`` (``ModelCheckpoint.__init__``,
``on_epoch_end``, ``_save_model``; the same in keras-team/keras v2.6.0-v2.15.0). Keras 3
is checked against the installed Keras 3.15 and Keras 2 against tf_keras 2.21 by
``tests/test_dialect_model_checkpoint.py`` (their real callbacks, saving stubbed).

Keras 3 (``keras="3"``, 3.11-3.15, where ``ModelCheckpoint`` became a ``MonitorCallback``;
3.0-3.10 started ``best`` at +-inf, so a NaN was never saved: not modelled),
``save_freq="epoch"``:
    Without ``save_best_only`` every epoch is saved. With it, an epoch is saved when
    its value improves on ``best`` as EarlyStopping compares (float32, subnormals
    flushed, strict, ``min_delta`` 0); ``best`` starts at ``initial_value_threshold``,
    or at None, which *any* first value beats: the first epoch is always saved, even
    when it is NaN, and after a NaN nothing improves, so nothing else is ever saved.
    An epoch whose logs lack the monitor is *saved* (with a warning). ``mode="auto"``
    takes the direction from the metric (the replay's name table).

Keras 2 / tf.keras (``keras="2"``), ``save_freq="epoch"``:
    ``period`` (deprecated, default 1): only every ``period``-th epoch is considered
    (epochs ``period - 1``, ``2 * period - 1``, ...); the epochs in between are never
    looked at, so an improvement there is missed. Comparisons are NumPy float64;
    ``best`` starts at ``initial_value_threshold`` or +-inf, so NaN is never saved.
    An epoch lacking the monitor is skipped (not saved). ``mode="auto"`` is ``max``
    when ``"acc"`` is in the name or it starts with ``"fmeasure"``, else ``min``.

The file you are left with: with a ``filepath`` without ``{epoch}`` each save
overwrites the last, so it holds the last epoch saved (``final_epoch``); with
``{epoch}`` in the name, that is the newest of several files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from replay.engine.dialects._common import check_finite, check_int, plain_values
from replay.engine.policies import Curve, Improvement, PolicyError, resolve_mode
from replay.engine.rates import float32_array

__all__ = ["VERSIONS", "CheckpointResult", "model_checkpoint"]

VERSIONS = {"3": ">=3.11,<=3.15", "2": "tf.keras >=2.6,<=2.15; tf_keras >=2.15,<=2.21"}


@dataclass(frozen=True)
class CheckpointResult:
    """The epochs ``ModelCheckpoint`` saved (0-based) and the one its file holds.

    ``final_epoch`` is ``None`` when nothing was saved.
    """

    saved: tuple[int, ...]
    final_epoch: int | None


def keras2_mode(monitor: str, mode: str) -> str:
    if mode != "auto":
        return mode
    return "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"


def model_checkpoint(
    values: Sequence[float | None],
    *,
    monitor: str = "val_loss",
    save_best_only: bool = False,
    mode: str = "auto",
    initial_value_threshold: float | None = None,
    period: int = 1,
    keras: str = "3",
) -> CheckpointResult:
    """Replay ``ModelCheckpoint(save_freq="epoch")`` over per-epoch ``values``.

    >>> model_checkpoint([float("nan"), 0.5, 0.4], save_best_only=True).saved
    (0,)
    >>> model_checkpoint([1.0, 0.5, 0.6, 0.7], save_best_only=True, period=3, keras="2").saved
    (2,)

    Raises:
        PolicyError: a parameter is invalid (``period`` other than 1 with Keras 3,
            which dropped it).
    """
    if keras not in VERSIONS:
        raise PolicyError(f"keras must be '3' or '2' but got {keras!r}.")
    if mode not in ("auto", "min", "max"):
        raise PolicyError(f"mode must be one of auto, min, max but got {mode!r}.")
    period = check_int("period", period, minimum=1)
    if keras == "3" and period != 1:
        raise PolicyError(f"Keras 3's ModelCheckpoint has no period but got period={period}.")
    if initial_value_threshold is not None:
        initial_value_threshold = check_finite("initial_value_threshold", initial_value_threshold)
    curve = plain_values(values)
    if not save_best_only:
        saved = tuple(range(period - 1, len(curve), period))
        return CheckpointResult(saved, saved[-1] if saved else None)
    if keras == "3":
        saved = _keras3(curve, resolve_mode(monitor, mode), initial_value_threshold)
    else:
        saved = _keras2(curve, keras2_mode(monitor, mode), initial_value_threshold, period)
    return CheckpointResult(saved, saved[-1] if saved else None)


def _keras3(curve: list[float | None], direction: str, threshold: float | None) -> tuple:
    imp = Improvement(Curve(curve), direction, 0.0)
    reference = None if threshold is None else float(float32_array(np.array([threshold]))[0])
    saved = []
    for epoch, value in enumerate(curve):
        if value is None:  # "Can save best model only with ... available": saves anyway
            saved.append(epoch)
        elif reference is None or imp.beats_value(epoch, reference):
            reference = imp.plain[epoch]
            saved.append(epoch)
    return tuple(saved)


def _keras2(
    curve: list[float | None], direction: str, threshold: float | None, period: int
) -> tuple:
    better = np.greater if direction == "max" else np.less
    best = threshold if threshold is not None else (-math.inf if direction == "max" else math.inf)
    saved = []
    for epoch in range(period - 1, len(curve), period):
        value = curve[epoch]
        if value is not None and better(value, best):
            best = value
            saved.append(epoch)
    return tuple(saved)
