"""Optuna's pruners, re-implemented over plain per-trial curves, exactly.

Each class here takes the arguments of the Optuna pruner of the same name (Optuna 5.1,
``optuna/pruners/``), validates them the same way (one-line ``ValueError``) and answers
``prune(study, trial)`` as Optuna's ``prune`` does, with :class:`Study` and
:class:`Trial` standing in for ``optuna.study.Study`` and ``FrozenTrial``: only what the
pruners read (direction, study name, each trial's state, intermediate values and the
system attributes Successive Halving writes: :mod:`replay.engine.pruner_study`). Nothing here
imports Optuna; the proof of exactness is ``tests/test_pruners_optuna.py``, which runs
real Optuna beside it. :func:`replay.engine.pruner_replay.replay_study` runs a study's trials
under one of them.

The rules (Optuna's traps, each reproduced on purpose):

- Median / Percentile: only COMPLETE trials count, both for ``n_startup_trials`` and for
  the percentile; with no complete trial nothing is pruned, even at
  ``n_startup_trials=0``. The current trial's *best value over all its steps so far*
  (not its value at this step) is compared with the percentile of the complete trials'
  values *at this step*; trials without a value at this step are left out, NaN values
  are left out of the percentile but counted for ``n_min_trials``. A trial whose values
  so far are all NaN is pruned (once past warm-up and interval). Pruned iff strictly
  worse than the percentile (``best > p`` minimizing); for maximize the percentile is
  ``100 - percentile``. The percentile is numpy's linear interpolation, bit for bit.
- ``interval_steps`` counts from ``n_warmup_steps``: a step is checked when no earlier
  reported step of the trial lies at or above the last grid point
  ``warmup + k * interval`` at or below it; a step missed (not reported) is checked at
  the next reported step.
- Successive Halving: a trial reaches rung r at its first reported step at or above
  ``min_resource * reduction_factor ** (min_early_stopping_rate + r)``; its value *at
  that step* is recorded for the rung before the decision, whether it is then pruned or
  not, and competes with every earlier trial's value at that rung (any state). A NaN at
  a rung step prunes. Promoted iff among the best ``n // reduction_factor`` values of the
  rung (the best one while fewer than ``reduction_factor`` have reached it), ties
  promoted. A trial that skips several rungs (missing steps) is judged at each of them
  with the same value. ``min_resource="auto"`` is fixed once, at the first check after
  a trial completes: ``max(last_step of complete trials) // 100``, at least 1.
- Hyperband: brackets ``floor(log(max_resource / min_resource, reduction_factor)) + 1``
  (floating-point log, as Optuna computes it); a trial's bracket is
  ``crc32(f"{study_name}_{number}") % total_budget`` walked over the brackets' budgets,
  so it depends on the study's name; each bracket is a Successive Halving over its own
  trials only. ``max_resource="auto"`` is fixed at the first check after a trial
  completes, as ``max(last_step) + 1``; before that nothing is pruned.
- Threshold: the value at the current step (not the best) outside ``[lower, upper]``, or
  NaN, prunes; warm-up and interval as Median.
- Patient: looks at the trial's values only: with more than ``patience + 1`` steps
  reported, if the best of those before the last ``patience + 1`` (plus ``min_delta``)
  beats the best of the last ``patience + 1`` (NaN ignored; all-NaN never beats), the
  wrapped pruner decides (``None``: prune). The wrapped pruner is only *called* then, so
  its lazy state (Hyperband's brackets, Successive Halving's rungs and ``auto``) only
  advances on those calls.
"""

from __future__ import annotations

import binascii
import bisect
import math
from collections.abc import Iterable, Sequence

from replay.engine.pruner_study import COMPLETE, MAXIMIZE, MINIMIZE, Pruner, Study, Trial

__all__ = [
    "HyperbandPruner",
    "MedianPruner",
    "PatientPruner",
    "PercentilePruner",
    "SuccessiveHalvingPruner",
    "ThresholdPruner",
    "linear_percentile",
]


# --------------------------------------------------------------------------- percentile


def linear_percentile(sorted_values: Sequence[float], q: float) -> float:
    """``np.percentile(values, q * 100)`` (method linear) of sorted, NaN-free values,
    computed with the same floating-point operations as numpy 2 (``_quantile``'s
    virtual index ``(n - 1) * q`` and ``_lerp``), so the result is the same bit for bit.

    >>> linear_percentile([1.0, 2.0, 4.0, 8.0], 0.5)
    3.0
    """
    n = len(sorted_values)
    vi = (n - 1) * q
    if vi >= n - 1:  # numpy takes the last value twice, with gamma measured from -1
        prev, nxt, gamma = n - 1, n - 1, vi + 1
    else:
        prev = math.floor(vi)
        nxt, gamma = prev + 1, vi - prev
    a = float(sorted_values[prev])
    b = float(sorted_values[nxt])
    diff = b - a  # inf - inf is NaN here as in numpy: an infinite end gives NaN
    if gamma >= 0.5:
        return b - diff * (1 - gamma)
    return a + diff * gamma


def _is_first_in_interval_step(trial: Trial, step: int, warmup: int, interval: int) -> bool:
    """Optuna's ``_is_first_in_interval_step`` (steps reported in increasing order)."""
    nearest_lower_pruning_step = (step - warmup) // interval * interval + warmup
    return trial.second_last_step < nearest_lower_pruning_step


class PercentilePruner(Pruner):
    """Optuna's ``PercentilePruner``: prune a trial whose best value so far is worse than
    the ``percentile`` of the complete trials' values at the same step."""

    def __init__(
        self,
        percentile: float,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        n_min_trials: int = 1,
    ) -> None:
        if not 0.0 <= percentile <= 100:
            raise ValueError(
                f"Percentile must be between 0 and 100 inclusive, but got {percentile=}."
            )
        if n_startup_trials < 0:
            raise ValueError(
                f"Number of startup trials cannot be negative, but got {n_startup_trials=}."
            )
        if n_warmup_steps < 0:
            raise ValueError(
                f"Number of warmup steps cannot be negative, but got {n_warmup_steps=}."
            )
        if interval_steps < 1:
            raise ValueError(
                f"Pruning interval steps must be at least 1, but got {interval_steps=}."
            )
        if n_min_trials < 1:
            raise ValueError(
                f"Number of trials for pruning must be at least 1, but got {n_min_trials=}."
            )
        self.percentile = percentile
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps
        self.n_min_trials = n_min_trials

    def prune(self, study: Study, trial: Trial) -> bool:
        n_trials = study.n_complete
        if n_trials == 0 or n_trials < self.n_startup_trials:
            return False
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        if not _is_first_in_interval_step(trial, step, self.n_warmup_steps, self.interval_steps):
            return False
        maximize = study.direction == MAXIMIZE
        best = trial.best_max if maximize else trial.best_min
        if math.isnan(best):
            return True
        values, count = study.complete_at(step)
        if count < self.n_min_trials or not values:
            return False
        q = ((100 - self.percentile) if maximize else self.percentile) / 100
        p = linear_percentile(values, q)
        if math.isnan(p):
            return False
        return best < p if maximize else best > p


class MedianPruner(PercentilePruner):
    """Optuna's ``MedianPruner``: the 50th percentile."""

    def __init__(
        self,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        n_min_trials: int = 1,
    ) -> None:
        super().__init__(
            50.0, n_startup_trials, n_warmup_steps, interval_steps, n_min_trials=n_min_trials
        )


# --------------------------------------------------------------------------- threshold


class ThresholdPruner(Pruner):
    """Optuna's ``ThresholdPruner``: prune when the current value leaves
    ``[lower, upper]`` or is NaN."""

    def __init__(
        self,
        lower: float | None = None,
        upper: float | None = None,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
    ) -> None:
        if lower is None and upper is None:
            raise TypeError("Either lower or upper must be specified.")
        lower = float(lower) if lower is not None else -math.inf
        upper = float(upper) if upper is not None else math.inf
        if lower > upper:
            raise ValueError("lower should be smaller than upper.")
        if n_warmup_steps < 0:
            raise ValueError(f"Number of warmup steps cannot be negative but got {n_warmup_steps}.")
        if interval_steps < 1:
            raise ValueError(f"Pruning interval steps must be at least 1 but got {interval_steps}.")
        self.lower = lower
        self.upper = upper
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps

    def prune(self, study: Study, trial: Trial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        if not _is_first_in_interval_step(trial, step, self.n_warmup_steps, self.interval_steps):
            return False
        value = trial.intermediate_values[step]
        return math.isnan(value) or value < self.lower or value > self.upper


# --------------------------------------------------------------------------- patient


class PatientPruner(Pruner):
    """Optuna's ``PatientPruner``: defer to ``wrapped_pruner`` (None: prune) only after
    ``patience`` steps without an improvement by more than ``min_delta``."""

    def __init__(
        self, wrapped_pruner: Pruner | None, patience: int, min_delta: float = 0.0
    ) -> None:
        if patience < 0:
            raise ValueError(f"patience cannot be negative but got {patience}.")
        if min_delta < 0:
            raise ValueError(f"min_delta cannot be negative but got {min_delta}.")
        self.wrapped_pruner = wrapped_pruner
        self.patience = patience
        self.min_delta = min_delta

    def prune(self, study: Study, trial: Trial) -> bool:
        if trial.last_step is None:
            return False
        values = trial.values  # in step order
        n, window = len(values), self.patience + 1
        if n <= window:
            return False
        after = [v for v in values[n - window :] if not math.isnan(v)]
        minimize = study.direction == MINIMIZE
        # nanmin / nanmax of the values before the window (NaN while all are NaN)
        before = (trial.prefix_min if minimize else trial.prefix_max)[n - window - 1]
        if math.isnan(before) or not after:
            maybe_prune = False  # np.nanmin of all-NaN is NaN: every comparison is False
        elif minimize:
            maybe_prune = before + self.min_delta < min(after)
        else:
            maybe_prune = before - self.min_delta > max(after)
        if not maybe_prune:
            return False
        if self.wrapped_pruner is None:
            return True
        return self.wrapped_pruner.prune(study, trial)


# --------------------------------------------------------------------------- successive halving


def _estimate_min_resource(trials: Iterable[Trial]) -> int | None:
    n_steps = [t.last_step for t in trials if t.state == COMPLETE and t.last_step is not None]
    if not n_steps:
        return None
    return max(max(n_steps) // 100, 1)


class SuccessiveHalvingPruner(Pruner):
    """Optuna's ``SuccessiveHalvingPruner`` (asynchronous successive halving)."""

    def __init__(
        self,
        min_resource: str | int = "auto",
        reduction_factor: int = 4,
        min_early_stopping_rate: int = 0,
        bootstrap_count: int = 0,
    ) -> None:
        if isinstance(min_resource, str) and min_resource != "auto":
            raise ValueError(
                f"The value of `min_resource` is {min_resource}, "
                "but must be either `min_resource` >= 1 or 'auto'"
            )
        if isinstance(min_resource, int) and min_resource < 1:
            raise ValueError(
                f"The value of `min_resource` is {min_resource}, "
                "but must be either `min_resource >= 1` or 'auto'"
            )
        if reduction_factor < 2:
            raise ValueError(
                f"The value of `reduction_factor` is {reduction_factor}, "
                "but must be `reduction_factor >= 2`"
            )
        if min_early_stopping_rate < 0:
            raise ValueError(
                f"The value of `min_early_stopping_rate` is {min_early_stopping_rate}, "
                "but must be `min_early_stopping_rate >= 0`"
            )
        if bootstrap_count < 0:
            raise ValueError(
                f"The value of `bootstrap_count` is {bootstrap_count}, "
                "but must be `bootstrap_count >= 0`"
            )
        if bootstrap_count > 0 and min_resource == "auto":
            raise ValueError(
                "bootstrap_count > 0 and min_resource == 'auto' "
                f"are mutually incompatible, bootstrap_count is {bootstrap_count}"
            )
        self.min_resource: int | None = min_resource if isinstance(min_resource, int) else None
        self.reduction_factor = reduction_factor
        self.min_early_stopping_rate = min_early_stopping_rate
        self.bootstrap_count = bootstrap_count
        # rung key -> sorted values recorded at that rung (by this pruner's trials)
        self._rungs: dict[str, list[float]] = {}

    def prune(self, study: Study, trial: Trial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        rung = trial.rung  # = Optuna's _get_current_rung(trial): keys are set in order
        value = trial.intermediate_values[step]
        while True:
            if self.min_resource is None:
                self.min_resource = _estimate_min_resource(study.trials)
                if self.min_resource is None:
                    return False
            promotion_step = self.min_resource * (
                self.reduction_factor ** (self.min_early_stopping_rate + rung)
            )
            if step < promotion_step:
                return False
            if math.isnan(value):
                return True
            key = f"completed_rung_{rung}"
            trial.system_attrs[key] = value
            trial.rung = rung + 1
            competing = self._rungs.setdefault(key, [])
            bisect.insort(competing, value)  # the others' values, and this one
            if len(competing) <= self.bootstrap_count:
                return True
            if not _promotable(value, competing, self.reduction_factor, study.direction):
                return True
            rung += 1


def _promotable(value: float, competing: list[float], reduction_factor: int, direction) -> bool:
    idx = len(competing) // reduction_factor - 1
    if idx == -1:
        idx = 0
    if direction == MAXIMIZE:
        return value >= competing[-(idx + 1)]
    return value <= competing[idx]


# --------------------------------------------------------------------------- hyperband


class HyperbandPruner(Pruner):
    """Optuna's ``HyperbandPruner``: Successive Halving brackets, a trial's bracket
    drawn from a hash of the study name and the trial number."""

    def __init__(
        self,
        min_resource: int = 1,
        max_resource: str | int = "auto",
        reduction_factor: int = 3,
        bootstrap_count: int = 0,
    ) -> None:
        if not isinstance(max_resource, int) and max_resource != "auto":
            raise ValueError(
                f"The 'max_resource' should be integer or 'auto'. But max_resource = {max_resource}"
            )
        if bootstrap_count > 0 and max_resource == "auto":
            raise ValueError(
                "bootstrap_count > 0 and max_resource == 'auto' "
                f"are mutually incompatible, bootstrap_count is {bootstrap_count}"
            )
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.reduction_factor = reduction_factor
        self.bootstrap_count = bootstrap_count
        self._pruners: list[SuccessiveHalvingPruner] = []
        self._budgets: list[int] = []
        self._total_budget = 0
        self._n_brackets: int | None = None
        self._bracket_of: dict[int, int] = {}

    def prune(self, study: Study, trial: Trial) -> bool:
        if not self._pruners:
            self._initialize(study)
            if not self._pruners:
                return False
        bracket = self.bracket_id(study.study_name, trial.number)
        view = _BracketStudy(study, self, bracket)
        return self._pruners[bracket].prune(view, trial)

    @property
    def n_brackets(self) -> int | None:
        return self._n_brackets

    def _initialize(self, study: Study) -> None:
        if self.max_resource == "auto":
            n_steps = [
                t.last_step for t in study.trials if t.state == COMPLETE and t.last_step is not None
            ]
            if not n_steps:
                return
            self.max_resource = max(n_steps) + 1
        self.initialize_brackets()

    @property
    def has_brackets(self) -> bool:
        """Whether the brackets are set up (once ``max_resource`` is known)."""
        return bool(self._pruners)

    def initialize_brackets(self) -> None:
        """Set up the brackets and their Successive Halving pruners (``max_resource``
        known: an integer, or ``"auto"`` already fixed)."""
        if self._n_brackets is None:
            self._n_brackets = (
                math.floor(math.log(self.max_resource / self.min_resource, self.reduction_factor))
                + 1
            )
        for bracket in range(self._n_brackets):
            s = self._n_brackets - 1 - bracket
            budget = math.ceil(self._n_brackets * (self.reduction_factor**s) / (s + 1))
            self._total_budget += budget
            self._budgets.append(budget)
            self._pruners.append(
                SuccessiveHalvingPruner(
                    min_resource=self.min_resource,
                    reduction_factor=self.reduction_factor,
                    min_early_stopping_rate=bracket,
                    bootstrap_count=self.bootstrap_count,
                )
            )

    def bracket_id(self, study_name: str, number: int) -> int:
        """The bracket of trial ``number`` (0 before the brackets are set up)."""
        if not self._pruners:
            return 0
        found = self._bracket_of.get(number)
        if found is not None:
            return found
        n = binascii.crc32(f"{study_name}_{number}".encode()) % self._total_budget
        for bracket in range(self._n_brackets or 0):
            n -= self._budgets[bracket]
            if n < 0:
                self._bracket_of[number] = bracket
                return bracket
        raise AssertionError("unreachable: the budgets add up to the total")


class _BracketStudy:
    """The trials of one Hyperband bracket (Optuna's ``_BracketStudy``)."""

    def __init__(self, study: Study, pruner: HyperbandPruner, bracket: int) -> None:
        self._study = study
        self._pruner = pruner
        self._bracket = bracket
        self.direction = study.direction
        self.study_name = study.study_name

    @property
    def trials(self) -> list[Trial]:
        name, pruner = self.study_name, self._pruner
        return [t for t in self._study.trials if pruner.bracket_id(name, t.number) == self._bracket]
