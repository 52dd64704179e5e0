"""Learning rates and metrics as TensorFlow holds them (float32), and where a schedule
parts from the one a log recorded.

An optimizer's learning-rate variable and the values Keras compares are float32: a
rate or a metric is compared as the float32 it rounds to (subnormals flushed to zero,
as TensorFlow's CPU kernels do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["counterfactual_from", "f32", "first_difference", "float32_array", "rates_f32"]

_F32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def f32(x: float) -> float:
    """``x`` as the float32 TensorFlow holds (an optimizer's learning-rate variable, a
    metric), back as a Python float; subnormals flushed to zero as in :func:`float32_array`.

    >>> f32(0.1) == 0.1, f32(0.5) == 0.5, f32(1e-40)
    (False, True, 0.0)
    """
    out = float(np.float32(x))
    return 0.0 if abs(out) < _F32_MIN_NORMAL else out


def rates_f32(values) -> list[float | None]:
    """A recorded learning-rate column as the float32 rates in effect (:func:`f32`),
    None where not logged or not finite."""
    return [None if v is None or not math.isfinite(v) else f32(v) for v in values]


def first_difference(schedule: Sequence[float], recorded: Sequence[float | None]) -> int | None:
    """The first epoch whose rate in ``schedule`` differs from the ``recorded`` one,
    compared as float32 (:func:`f32`); an epoch recorded as None matches any rate.

    >>> first_difference([0.1, 0.1, 0.01], [0.1, None, 0.1]), first_difference([0.1], [0.1])
    (2, None)
    """
    for epoch, (ours, theirs) in enumerate(zip(schedule, recorded, strict=False)):
        if theirs is not None and f32(ours) != f32(theirs):
            return epoch
    return None


def counterfactual_from(
    schedule: Sequence[float], reductions: Sequence[int], recorded: Sequence[float | None] | None
) -> int | None:
    """First epoch whose recorded metrics did not see ``schedule``; None when they all did.

    With a recorded learning-rate column, the first epoch whose recorded rate
    differs from the schedule's (compared as float32); without one, the log is
    taken to have run at the initial rate, so the first epoch after the first cut.
    """
    if recorded is None:
        if not reductions or reductions[0] + 1 >= len(schedule):
            return None
        return reductions[0] + 1
    return first_difference(schedule, recorded)


def float32_array(values: np.ndarray) -> np.ndarray:
    """Round float64 values to float32 as TensorFlow does, flushing subnormals to zero.

    Returned as float64 so that comparisons with Python floats stay exact.
    """
    with np.errstate(over="ignore"):
        out = values.astype(np.float32).astype(np.float64)
    out[np.abs(out) < _F32_MIN_NORMAL] = 0.0
    return out
