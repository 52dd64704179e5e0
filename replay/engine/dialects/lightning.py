"""PyTorch Lightning ``EarlyStopping`` (``lightning.pytorch.callbacks.EarlyStopping``).

Source: Lightning-AI/pytorch-lightning ``src/lightning/pytorch/callbacks/early_stopping.py``
(``_evaluate_stopping_criteria``, ``_run_early_stopping_check``, ``setup``); the decision
logic is the same from 1.5.0 to 2.6.x. Checked against the real Lightning 2.6.6 by the
truth table ``tests/data/dialects/lightning_early_stopping.json``
(``make_truth_tables.py``), which also holds the cases of Lightning's
``tests/tests_pytorch/callbacks/test_early_stopping.py``.

The logged value is a float32 tensor (``self.log`` of a Python float; ``dtype``
``"float64"`` for a metric logged as a float64 tensor), and every comparison is a
torch comparison in that dtype: ``current - min_delta`` is computed in float32, and
thresholds are compared in float32 (no subnormal flushing on CPU).

Each check, in this order (the first that applies decides):

1. ``check_finite`` and the value is NaN or +-inf: stop at once (even at the first
   check), whatever the patience.
2. ``stopping_threshold`` set and the value is strictly better than it: stop.
3. ``divergence_threshold`` set and the value is strictly worse than it: stop.
4. ``current - min_delta`` strictly better than ``best_score`` (+-inf at first):
   ``best_score = current``, ``wait_count = 0``. ``min_delta`` keeps its sign:
   ``mode="min"`` negates it (``self.min_delta *= -1``), so a positive ``min_delta``
   demands an improvement by more than ``min_delta``, and a negative one accepts a
   value up to ``|min_delta|`` *worse* than the best as an "improvement".
5. Otherwise ``wait_count += 1``, and ``wait_count >= patience`` stops (so patience 0
   and 1 both stop at the first check without improvement).

Patience counts *checks*, not epochs. The check runs at the end of each validation
(``check_on_train_epoch_end=False``), or at the end of each training epoch with the
latest logged value, stale or not (``True``). Lightning's default (``None``) is
``True`` exactly when validation runs once per epoch (``val_check_interval=1.0`` and
``check_val_every_n_epoch=1``). Here each entry of the curve is one epoch: ``None``
is an epoch without validation, which is no check with ``check_on_train_epoch_end``
false, and a re-check of the last value when true (so with validation every other
epoch each stale value counts as one more check without improvement). ``None``
(the default) reads the curve as Lightning would configure itself: ``True`` when
every epoch has a value, else ``False``. Before the first value there is nothing to
check (Lightning with ``strict=False``; ``strict=True`` would raise there).

No ``baseline``, no ``start_from_epoch``, no restoring of weights: you end with the
last epoch trained. ``verbose`` changes nothing. (The Trainer's ``min_epochs`` /
``min_steps`` can keep training past a stop; not modelled.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from replay.engine.dialects._common import check_finite, check_int, plain_values
from replay.engine.policies import EarlyStoppingResult, PolicyError

__all__ = ["VERSIONS", "LightningEarlyStoppingResult", "early_stopping"]

VERSIONS = ">=1.5,<=2.6"

NOT_STOPPED = "not_stopped"
NON_FINITE = "non_finite_metric"
STOPPING_THRESHOLD = "stopping_threshold"
DIVERGENCE_THRESHOLD = "divergence_threshold"
PATIENCE_EXHAUSTED = "patience_exhausted"


@dataclass(frozen=True)
class LightningEarlyStoppingResult(EarlyStoppingResult):
    """:class:`~replay.engine.policies.EarlyStoppingResult` plus Lightning's ``stopping_reason``
    (the values of ``EarlyStoppingReason``: ``"not_stopped"``, ``"non_finite_metric"``,
    ``"stopping_threshold"``, ``"divergence_threshold"``, ``"patience_exhausted"``) and
    the number of checks made."""

    reason: str = NOT_STOPPED
    checks: int = 0


def early_stopping(
    values: Sequence[float | None],
    *,
    mode: str = "min",
    min_delta: float = 0.0,
    patience: int = 3,
    check_finite: bool = True,
    stopping_threshold: float | None = None,
    divergence_threshold: float | None = None,
    check_on_train_epoch_end: bool | None = None,
    dtype: str = "float32",
) -> LightningEarlyStoppingResult:
    """Replay Lightning's ``EarlyStopping`` over per-epoch ``values``.

    >>> early_stopping([4.0, 3.0, float("nan"), 2.0]).stopped_epoch
    2
    >>> early_stopping([1.0, 1.0, 0.5], patience=1, min_delta=-0.5).stopped
    False

    Raises:
        PolicyError: a parameter is invalid.
    """
    if mode not in ("min", "max"):
        raise PolicyError(f"mode must be 'min' or 'max' (as in Lightning) but got {mode!r}.")
    if dtype not in ("float32", "float64"):
        raise PolicyError(f"dtype must be 'float32' or 'float64' but got {dtype!r}.")
    patience = check_int("patience", patience)
    min_delta = _check("min_delta", min_delta)
    thresholds = []
    for name, value in (("stopping_threshold", stopping_threshold),
                        ("divergence_threshold", divergence_threshold)):  # fmt: skip
        thresholds.append(None if value is None else _check(name, value))
    stop_at, diverge_at = thresholds
    curve = plain_values(values)
    if check_on_train_epoch_end is None:
        check_on_train_epoch_end = all(v is not None for v in curve)

    real = np.float32 if dtype == "float32" else np.float64
    sign = 1.0 if mode == "max" else -1.0
    delta = real(sign * min_delta)  # torch casts the Python scalar to the tensor's dtype
    op = np.greater if mode == "max" else np.less
    best = real(-np.inf if mode == "max" else np.inf)
    best_epoch: int | None = None
    latest: float | None = None
    wait = 0
    checks = 0
    stopped: int | None = None
    reason = NOT_STOPPED
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch, value in enumerate(curve):
            if value is not None:
                latest = value
            elif not check_on_train_epoch_end or latest is None:
                continue
            current = real(latest)
            checks += 1
            if check_finite and not np.isfinite(current):
                reason = NON_FINITE
            elif stop_at is not None and op(current, real(stop_at)):
                reason = STOPPING_THRESHOLD
            elif diverge_at is not None and op(-current, -real(diverge_at)):
                reason = DIVERGENCE_THRESHOLD
            elif op(real(current - delta), best):
                best, best_epoch, wait = current, epoch, 0
                continue
            else:
                wait += 1
                if wait < patience:
                    continue
                reason = PATIENCE_EXHAUSTED
            stopped = epoch
            break
    last = stopped if stopped is not None else len(curve) - 1
    return LightningEarlyStoppingResult(
        stopped=stopped is not None,
        stopped_epoch=stopped,
        epochs_trained=last + 1,
        best_epoch=best_epoch,
        final_epoch=last if curve else None,
        restored=False,
        censored=stopped is None,
        reason=reason,
        checks=checks,
    )


def _check(name: str, value: object) -> float:
    return check_finite(name, value)
