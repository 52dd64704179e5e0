"""tf.keras 2.x (``tf.keras`` in TensorFlow 2.6-2.15, the ``tf_keras`` package 2.15-2.21).

Sources: keras-team/keras tags v2.6.0-v2.15.0 ``keras/callbacks.py`` (what ``tf.keras``
was in TensorFlow 2.6-2.15) and keras-team/tf-keras tags v2.15.0-v2.21.0
``tf_keras/callbacks.py``; checked against the installed tf_keras 2.21 by
``tests/test_dialect_tf_keras.py`` over thousands of generated curves.

The monitored value reaches the callbacks as a Python float (``fit`` converts the
logs with ``tf_utils.sync_to_numpy_or_python_type``), so every comparison is a
NumPy ``np.less`` / ``np.greater`` on float64: no float32 rounding, no flushing
of subnormals, and values beyond float32's range are just large numbers (Keras 3
compares in float32 and raises on them).

EarlyStopping (``version``: which tf.keras; the rules changed at these versions)
    ``best`` starts at +inf (``min``) or -inf (``max``): a NaN value is never an
    improvement, not even the first (Keras 3 makes the first value ``best``,
    whatever it is). ``min_delta`` is ``abs(min_delta)``; an improvement is
    ``current -/+ min_delta`` strictly beyond ``best``. Each epoch with a value and
    ``epoch >= start_from_epoch``: with ``restore_best_weights`` the first such
    epoch is snapshotted; ``wait += 1``; an improvement sets ``best`` (and the
    snapshot) and resets ``wait`` only if the value also beats ``baseline``; then
    ``wait >= patience`` (and ``epoch > 0``) stops.

    - ``auto`` mode: ``max`` when the name ends with ``acc``, ``accuracy`` or ``auc``,
      else ``min`` (2.7+); in 2.6, ``max`` when ``"acc"`` is anywhere in the name.
      Never an error.
    - 2.6 has no ``epoch > 0`` guard: patience 0 can stop at epoch 0.
    - before 2.12 an improving epoch still reaches the stop test: with patience 0
      it stops on an improvement (``wait`` was just reset to 0 and ``0 >= 0``).
    - ``start_from_epoch`` exists from 2.11.
    - before 2.16 the best weights are restored only when the callback stops
      training (in ``on_epoch_end``); from 2.16 (tf_keras) in ``on_train_end``,
      whether or not it stopped, as Keras 3 does.

ReduceLROnPlateau (the same logic in every version 2.6-2.21)
    ``auto`` mode is ``max`` when ``"acc"`` is anywhere in the name, else ``min``
    (so ``val_auc`` is *minimized*, unlike EarlyStopping's rule). ``min_delta`` keeps
    its sign: improvement is ``current < best - min_delta`` (``min``) or
    ``current > best + min_delta`` (``max``), ``best`` starting at +-inf, so NaN never
    improves. Cooldown and ``wait`` as in Keras 3 (cooldown decremented before the
    test, so ``cooldown=1`` has no effect). A cut needs ``old_lr > float32(min_lr)``
    where ``old_lr`` is the optimizer's float32 rate read as a NumPy float32, and
    computes ``max(old_lr * factor, min_lr)``:

    - under NumPy 2 (TensorFlow 2.18+ may run with it) the product is float32:
      ``factor`` is rounded to float32 and the product rounded once, and ``max``
      compares ``min_lr`` in float32 too;
    - under NumPy 1 (every TensorFlow before 2.18, and 2.18+ with NumPy 1) the
      product is float64, rounded to float32 when assigned, as Keras 3 does.

    The two can differ in the last bit (``0.05 * 0.1``: 0.0050000004 vs 0.005).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from replay.engine.dialects._common import check_finite, check_int, parse_version, plain_values
from replay.engine.policies import (
    EarlyStoppingResult,
    PlateauResult,
    PolicyError,
    check_plateau,
    check_rates,
)

__all__ = ["VERSIONS", "early_stopping", "early_stopping_mode", "plateau_mode",
           "reduce_lr_on_plateau"]  # fmt: skip

VERSIONS = ">=2.6,<=2.21"
_OLDEST, _NEWEST = (2, 6), (2, 21)
_MODES = ("auto", "min", "max")


def check_version(version: str) -> tuple[int, int]:
    """``version`` as (major, minor), refused outside tf.keras 2.6-2.21."""
    v = parse_version(version)[:2]
    if len(v) < 2 or not (_OLDEST <= v <= _NEWEST):
        raise PolicyError(
            f"the tf_keras dialect covers tf.keras 2.6-2.21 but got version {version!r}."
        )
    return v  # type: ignore[return-value]


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise PolicyError(
            f"mode must be one of auto, min, max but got {mode!r} "
            "(tf.keras would warn and fall back to auto; callback-replay refuses)."
        )


def early_stopping_mode(monitor: str, mode: str = "auto", version: str = "2.21") -> str:
    """``"min"`` or ``"max"``, as tf.keras ``EarlyStopping`` infers it.

    >>> early_stopping_mode("val_auc"), early_stopping_mode("val_top_acc_rate")
    ('max', 'min')

    Raises:
        PolicyError: an unknown mode or version.
    """
    _check_mode(mode)
    if mode != "auto":
        return mode
    if check_version(version) < (2, 7):
        return "max" if "acc" in monitor else "min"
    return "max" if monitor.endswith(("acc", "accuracy", "auc")) else "min"


def plateau_mode(monitor: str, mode: str = "auto") -> str:
    """``"min"`` or ``"max"``, as tf.keras ``ReduceLROnPlateau`` infers it.

    >>> plateau_mode("val_auc"), plateau_mode("val_top_acc_rate")
    ('min', 'max')

    Raises:
        PolicyError: an unknown mode.
    """
    _check_mode(mode)
    if mode != "auto":
        return mode
    return "max" if "acc" in monitor else "min"


def early_stopping(
    values: Sequence[float | None],
    *,
    monitor: str = "val_loss",
    min_delta: float = 0.0,
    patience: int = 0,
    mode: str = "auto",
    baseline: float | None = None,
    restore_best_weights: bool = False,
    start_from_epoch: int = 0,
    version: str = "2.21",
) -> EarlyStoppingResult:
    """Replay tf.keras ``EarlyStopping`` (of ``version``) over per-epoch ``values``.

    ``best_epoch`` is the last epoch that improved (``None`` if none did);
    ``final_epoch`` the epoch whose weights you end with.

    >>> early_stopping([float("nan"), 1.0, 1.0], patience=1).stopped_epoch
    2
    >>> early_stopping([0.5, 0.4, 0.3], patience=0, version="2.11").stopped_epoch
    1

    Raises:
        PolicyError: a parameter is invalid, or ``start_from_epoch`` before 2.11.
    """
    v = check_version(version)
    direction = early_stopping_mode(monitor, mode, version)
    delta = abs(check_finite("min_delta", min_delta))
    patience = check_int("patience", patience)
    start_from_epoch = check_int("start_from_epoch", start_from_epoch)
    if start_from_epoch and v < (2, 11):
        raise PolicyError(
            f"start_from_epoch exists from tf.keras 2.11 but got {start_from_epoch} "
            f"with version {version!r}."
        )
    if baseline is not None:
        baseline = check_finite("baseline", baseline)
    curve = plain_values(values)

    signed = delta if direction == "max" else -delta
    better = np.greater if direction == "max" else np.less
    best = -math.inf if direction == "max" else math.inf
    snapshot: int | None = None
    improved: int | None = None
    wait = 0
    stopped: int | None = None
    for epoch, current in enumerate(curve):
        if current is None or epoch < start_from_epoch:
            continue
        if restore_best_weights and snapshot is None:
            snapshot = epoch
        wait += 1
        if better(current - signed, best):
            best, improved = current, epoch
            if restore_best_weights:
                snapshot = epoch
            if baseline is None or better(current - signed, baseline):
                wait = 0
            if v >= (2, 12):
                continue
        if wait >= patience and (epoch > 0 or v < (2, 7)):
            stopped = epoch
            break

    last = stopped if stopped is not None else len(curve) - 1
    restored = bool(restore_best_weights) and snapshot is not None
    if v < (2, 16):  # restored in on_epoch_end, only when it stops
        restored = restored and stopped is not None
    return EarlyStoppingResult(
        stopped=stopped is not None,
        stopped_epoch=stopped,
        epochs_trained=last + 1,
        best_epoch=improved,
        final_epoch=snapshot if restored else (last if curve else None),
        restored=restored,
        censored=stopped is None,
    )


def _cut(old: float, factor: float, min_lr: float, numpy2: bool) -> float:
    """The new float32 rate: ``max(old_lr * factor, min_lr)`` as tf.keras computes it."""
    if numpy2:
        product = np.float32(old) * np.float32(factor)
        return float(max(product, np.float32(min_lr)))
    return float(np.float32(max(old * factor, min_lr)))


def reduce_lr_on_plateau(
    values: Sequence[float | None],
    *,
    initial_lr: float,
    monitor: str = "val_loss",
    factor: float = 0.1,
    patience: int = 10,
    min_delta: float = 1e-4,
    mode: str = "auto",
    cooldown: int = 0,
    min_lr: float = 0.0,
    numpy_major: int = 2,
) -> PlateauResult:
    """Replay tf.keras ``ReduceLROnPlateau`` over per-epoch ``values``.

    ``numpy_major``: the NumPy that ran it (2: float32 cuts; 1: float64 cuts, as in
    every TensorFlow before 2.18). ``lr[e]`` is the float32 rate during epoch ``e``.

    >>> reduce_lr_on_plateau([1.0, 1.0], initial_lr=0.05, patience=1).final_lr
    0.005000000353902578
    >>> reduce_lr_on_plateau([1.0, 1.0], initial_lr=0.05, patience=1, numpy_major=1).final_lr
    0.004999999888241291

    Raises:
        PolicyError: a parameter is invalid.
    """
    direction = plateau_mode(monitor, mode)
    factor, patience, cooldown = check_plateau(factor, patience, cooldown, framework="tf.keras")
    min_delta = check_finite("min_delta", min_delta)
    initial_lr, min_lr = check_rates(initial_lr, min_lr)
    if numpy_major not in (1, 2):
        raise PolicyError(f"numpy_major must be 1 or 2 but got {numpy_major!r}.")
    curve = plain_values(values)

    if direction == "min":
        best = math.inf

        def improves(a: float, b: float) -> bool:
            return bool(np.less(a, b - min_delta))
    else:
        best = -math.inf

        def improves(a: float, b: float) -> bool:
            return bool(np.greater(a, b + min_delta))

    lr = float(np.float32(initial_lr))
    floor = float(np.float32(min_lr))
    rates: list[float] = []
    reductions: list[int] = []
    wait = 0
    cooldown_counter = 0
    for epoch, current in enumerate(curve):
        rates.append(lr)
        if current is None:
            continue
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        if improves(current, best):
            best = current
            wait = 0
        elif cooldown_counter <= 0:
            wait += 1
            if wait >= patience and lr > floor:
                lr = _cut(lr, factor, min_lr, numpy_major == 2)
                reductions.append(epoch)
                cooldown_counter = cooldown
                wait = 0
    return PlateauResult(lr=tuple(rates), reductions=tuple(reductions), final_lr=lr)
