"""PyTorch ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

Source: pytorch/pytorch ``torch/optim/lr_scheduler.py`` (``ReduceLROnPlateau.step``,
``_reduce_lr``, ``_is_better``), the same logic from torch 1.x to 2.13; checked
against the real torch 2.13.0 (CPU build) by the truth table
``tests/data/dialects/torch_plateau.json`` (``make_truth_tables.py``), which also holds
every ReduceLROnPlateau case of pytorch's ``test/optim/test_lrscheduler.py``.

Each call of ``step(metric)`` (one per epoch with a value; ``None`` means the epoch
had no value and ``step`` was not called):

1. ``current`` is compared with ``best`` (starting at +inf for ``min``, -inf for
   ``max``) in float64: ``rel`` mode ``current < best * (1 - threshold)`` (``min``) or
   ``current > best * (1 + threshold)`` (``max``); ``abs`` mode ``current < best -
   threshold`` / ``current > best + threshold``. Strict; NaN is never better.
2. Better: ``best = current``, ``num_bad_epochs = 0``; else ``num_bad_epochs += 1``.
3. In cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1`` and
   ``num_bad_epochs = 0``: bad epochs during cooldown are forgotten.
4. ``num_bad_epochs > patience`` (not ``>=``: patience 1 cuts after the *second*
   bad epoch, Keras after the first): for every param group ``new = max(old *
   factor, min_lr[i])`` in float64 (the rates are Python floats, no float32), kept
   only if ``old - new > eps`` (1e-8 by default: a rate at most eps above its floor
   is never cut); then ``cooldown_counter = cooldown`` and ``num_bad_epochs = 0``,
   whether or not any group changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from replay.engine.dialects._common import check_finite, plain_values
from replay.engine.policies import PlateauResult, PolicyError, check_plateau

__all__ = ["VERSIONS", "TorchPlateauResult", "reduce_lr_on_plateau"]

VERSIONS = ">=1.0,<=2.13"


@dataclass(frozen=True)
class TorchPlateauResult(PlateauResult):
    """:class:`~replay.engine.policies.PlateauResult` for the first param group, plus all groups.

    ``group_lr[g][e]`` is group ``g``'s rate during epoch ``e`` (float64 values);
    ``reductions`` are the epochs after whose ``step`` some group's rate changed;
    ``group_final_lr[g]`` the rates after the last step.
    """

    group_lr: tuple[tuple[float, ...], ...] = ()
    group_final_lr: tuple[float, ...] = ()


def _per_group(name: str, value: float | Sequence[float], groups: int | None) -> list[float]:
    if isinstance(value, (list, tuple)):
        if groups is not None and len(value) != groups:
            raise PolicyError(f"expected {groups} {name}s (one per group) but got {len(value)}.")
        if not value:
            raise PolicyError(f"{name} needs at least one group but got {value!r}.")
        return [check_finite(name, v) for v in value]
    return [check_finite(name, value)] * (groups or 1)


def reduce_lr_on_plateau(
    values: Sequence[float | None],
    *,
    initial_lr: float | Sequence[float],
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float | Sequence[float] = 0.0,
    eps: float = 1e-8,
) -> TorchPlateauResult:
    """Replay ``torch.optim.lr_scheduler.ReduceLROnPlateau`` over per-epoch ``values``.

    ``initial_lr`` and ``min_lr`` take one value per param group (or one for all).

    >>> reduce_lr_on_plateau([1.0, 1.1, 1.2], initial_lr=0.1, patience=1).reductions
    (2,)

    Raises:
        PolicyError: a parameter is invalid (torch's own checks, and also a negative
            patience, cooldown, threshold, eps or min_lr, and ``factor <= 0``).
    """
    if mode not in ("min", "max"):
        raise PolicyError(f"mode must be 'min' or 'max' but got {mode!r}.")
    if threshold_mode not in ("rel", "abs"):
        raise PolicyError(f"threshold_mode must be 'rel' or 'abs' but got {threshold_mode!r}.")
    factor, patience, cooldown = check_plateau(factor, patience, cooldown, framework="torch")
    threshold = check_finite("threshold", threshold)
    eps = check_finite("eps", eps)
    for name, value in (("threshold", threshold), ("eps", eps)):
        if value < 0:
            raise PolicyError(f"{name} cannot be negative but got {value}.")
    rates = _per_group("initial_lr", initial_lr, None)
    if any(r <= 0 for r in rates):
        raise PolicyError(f"initial_lr must be > 0 but got {initial_lr!r}.")
    floors = _per_group("min_lr", min_lr, len(rates))
    if any(f < 0 for f in floors):
        raise PolicyError(f"min_lr cannot be negative but got {min_lr!r}.")
    curve = plain_values(values)

    if mode == "min" and threshold_mode == "rel":

        def better(a: float, best: float) -> bool:
            return a < best * (1.0 - threshold)
    elif mode == "min":

        def better(a: float, best: float) -> bool:
            return a < best - threshold
    elif threshold_mode == "rel":

        def better(a: float, best: float) -> bool:
            return a > best * (threshold + 1.0)
    else:

        def better(a: float, best: float) -> bool:
            return a > best + threshold

    best = math.inf if mode == "min" else -math.inf
    history: list[tuple[float, ...]] = []
    reductions: list[int] = []
    bad = 0
    cooldown_counter = 0
    for epoch, current in enumerate(curve):
        history.append(tuple(rates))
        if current is None:
            continue
        if better(current, best):
            best = current
            bad = 0
        else:
            bad += 1
        if cooldown_counter > 0:
            cooldown_counter -= 1
            bad = 0
        if bad > patience:
            changed = False
            for g, old in enumerate(rates):
                new = max(old * factor, floors[g])
                if old - new > eps:
                    rates[g] = new
                    changed = True
            if changed:
                reductions.append(epoch)
            cooldown_counter = cooldown
            bad = 0
    group_lr = tuple(tuple(h[g] for h in history) for g in range(len(rates)))
    return TorchPlateauResult(
        lr=group_lr[0],
        reductions=tuple(reductions),
        final_lr=rates[0],
        group_lr=group_lr,
        group_final_lr=tuple(rates),
    )
