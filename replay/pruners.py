"""Optuna's pruners, re-implemented over plain per-trial curves, exactly.

Each class here takes the arguments of the Optuna pruner of the same name (Optuna 5.1,
``optuna/pruners/``), validates them the same way (one-line ``ValueError``) and answers
``prune(study, trial)`` as Optuna's ``prune`` does, with :class:`Study` and
:class:`Trial` standing in for ``optuna.study.Study`` and ``FrozenTrial``: only what the
pruners read (direction, study name, each trial's state, intermediate values and the
system attributes Successive Halving writes). Nothing here imports Optuna; the proof of
exactness is ``tests/test_pruners_optuna.py``, which runs real Optuna beside it.

:func:`replay_study` runs the trials of a study one after another, in trial-number
order, each seeing the trials before it in the state this pruner left them, and says
where each trial is pruned.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = [
    "COMPLETE",
    "FAIL",
    "MAXIMIZE",
    "MINIMIZE",
    "PRUNED",
    "RUNNING",
    "HyperbandPruner",
    "MedianPruner",
    "PatientPruner",
    "PercentilePruner",
    "Pruner",
    "Study",
    "SuccessiveHalvingPruner",
    "ThresholdPruner",
    "Trial",
    "TrialCurve",
    "PreparedStudy",
    "linear_percentile",
    "prepare",
    "replay_study",
]

MINIMIZE = "minimize"
MAXIMIZE = "maximize"
RUNNING = "running"
COMPLETE = "complete"
PRUNED = "pruned"
FAIL = "fail"


# --------------------------------------------------------------------------- study state


@dataclass(eq=False)
class Trial:
    """A trial as a pruner sees it (Optuna's FrozenTrial, the fields pruners read).

    ``report`` keeps, beside the values, what the pruners need at each call without
    looking at all steps again (the steps must come in increasing order).
    """

    number: int
    state: str = RUNNING
    intermediate_values: dict[int, float] = field(default_factory=dict)
    system_attrs: dict[str, float] = field(default_factory=dict)
    last_step: int | None = None
    second_last_step: int = -1  # the greatest reported step before last_step, or -1
    best_min: float = math.nan  # nanmin of the values so far (NaN while all are NaN)
    best_max: float = math.nan
    values: list[float] = field(default_factory=list)  # in step order
    prefix_min: list[float] = field(default_factory=list)  # best_min after each value
    prefix_max: list[float] = field(default_factory=list)
    rung: int = 0  # Successive Halving's completed rungs (keys completed_rung_0, 1, ...)

    def report(self, step: int, value: float) -> None:
        """Add the value at ``step`` (greater than every step reported before)."""
        if self.last_step is not None and step <= self.last_step:
            raise ValueError(f"steps must increase: {step} after {self.last_step}")
        value = float(value)
        self.intermediate_values[step] = value
        self.second_last_step = -1 if self.last_step is None else self.last_step
        self.last_step = step
        if not math.isnan(value):
            if math.isnan(self.best_min) or value < self.best_min:
                self.best_min = value
            if math.isnan(self.best_max) or value > self.best_max:
                self.best_max = value
        self.values.append(value)
        self.prefix_min.append(self.best_min)
        self.prefix_max.append(self.best_max)


class Study:
    """The trials a pruner sees: in trial-number order, with an index of the complete
    trials' values per step (what Median and Percentile read)."""

    def __init__(self, direction: str = MINIMIZE, study_name: str = "study") -> None:
        if direction not in (MINIMIZE, MAXIMIZE):
            raise ValueError(f"direction must be 'minimize' or 'maximize' but got {direction!r}.")
        self.direction = direction
        self.study_name = study_name
        self.trials: list[Trial] = []
        self.n_complete = 0
        # step -> (sorted non-NaN values of complete trials at that step, count incl. NaN)
        self._at_step: dict[int, tuple[list[float], list[int]]] = {}

    def add(self, trial: Trial) -> Trial:
        """Start ``trial`` (running) after the ones already in the study."""
        self.trials.append(trial)
        return trial

    def finish(self, trial: Trial, state: str) -> None:
        """End ``trial`` in ``state`` (complete, pruned, fail)."""
        trial.state = state
        if state != COMPLETE:
            return
        self.n_complete += 1
        for step, value in trial.intermediate_values.items():
            values, count = self._at_step.setdefault(step, ([], [0]))
            count[0] += 1
            if not math.isnan(value):
                bisect.insort(values, value)

    def get_trials(self, states: Iterable[str] | None = None) -> list[Trial]:
        if states is None:
            return list(self.trials)
        wanted = set(states)
        return [t for t in self.trials if t.state in wanted]

    def complete_at(self, step: int) -> tuple[list[float], int]:
        """The complete trials' values at ``step``: sorted non-NaN values, count with NaN."""
        found = self._at_step.get(step)
        return ([], 0) if found is None else (found[0], found[1][0])


class Pruner:
    """Optuna's ``BasePruner``: ``prune(study, trial)`` says whether to stop the trial."""

    def prune(self, study: Study, trial: Trial) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


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


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer but got {value!r}.")


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


def _current_rung(trial: Trial) -> int:
    rung = 0
    while f"completed_rung_{rung}" in trial.system_attrs:
        rung += 1
    return rung


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
        rung = trial.rung  # = _current_rung(trial): the rung keys are set in order
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
        self._initialize_brackets()

    def _initialize_brackets(self) -> None:
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


# --------------------------------------------------------------------------- sequential replay


@dataclass(frozen=True)
class TrialCurve:
    """A recorded trial: its number, reported steps (increasing) and values, and the
    state the recorded study left it in (complete, pruned, fail, running)."""

    number: int
    steps: tuple[int, ...]
    values: tuple[float, ...]
    state: str = COMPLETE


class PreparedStudy(tuple):
    """The trials of a study (a tuple of :class:`TrialCurve`) with their curves as 2-D
    arrays, built once for many replays (:func:`prepare`): the vectorized fast paths
    (threshold, patient) read them."""

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, values, valid)``, one row per trial, padded with -1 / NaN / False."""
        width = max((len(c.steps) for c in self), default=0)
        steps = np.full((len(self), width), -1, dtype=np.int64)
        values = np.full((len(self), width), np.nan)
        valid = np.zeros((len(self), width), dtype=bool)
        for row, c in enumerate(self):
            k = len(c.steps)
            steps[row, :k] = c.steps
            values[row, :k] = c.values
            valid[row, :k] = True
        return steps, values, valid


def prepare(trials: Sequence[TrialCurve]) -> PreparedStudy:
    """``trials`` ready for many replays (the same decisions, faster)."""
    return trials if isinstance(trials, PreparedStudy) else PreparedStudy(trials)


def replay_study(
    trials: Sequence[TrialCurve],
    pruner: Pruner | Callable[[], Pruner],
    direction: str = MINIMIZE,
    study_name: str = "study",
) -> dict[int, int]:
    """Run ``trials`` in order under ``pruner``; return ``{trial number: pruned step}``.

    Each trial reports its steps one by one and asks the pruner after each, as an
    objective calling ``trial.report`` then ``trial.should_prune`` does. A trial not
    pruned ends in its recorded state: complete, fail, or (recorded pruned or still
    running) pruned at its last step, which is what the recorded study holds.

    >>> curves = [TrialCurve(0, (0, 1), (1.0, 0.5)), TrialCurve(1, (0, 1), (2.0, 2.0))]
    >>> replay_study(curves, MedianPruner(n_startup_trials=1))
    {1: 0}
    """
    if callable(pruner) and not isinstance(pruner, Pruner):
        pruner = pruner()
    fast = _FAST.get(type(pruner))
    if fast is not None and not (
        isinstance(pruner, PatientPruner) and pruner.wrapped_pruner is not None
    ):
        return fast(trials, pruner, direction == MAXIMIZE, study_name)
    return replay_study_generic(trials, pruner, direction, study_name)


def replay_study_generic(
    trials: Sequence[TrialCurve], pruner: Pruner, direction: str, study_name: str = "study"
) -> dict[int, int]:
    """:func:`replay_study` through ``pruner.prune`` at every step (the reference the
    fast paths are tested against)."""
    study = Study(direction, study_name)
    pruned: dict[int, int] = {}
    for curve in trials:
        trial = study.add(Trial(curve.number))
        for step, value in zip(curve.steps, curve.values, strict=True):
            trial.report(step, value)
            if pruner.prune(study, trial):
                pruned[curve.number] = step
                break
        if curve.number in pruned:
            study.finish(trial, PRUNED)
        elif curve.state == COMPLETE:
            study.finish(trial, COMPLETE)
        elif curve.state == FAIL:
            study.finish(trial, FAIL)
        else:
            study.finish(trial, PRUNED)
    return pruned


# --------------------------------------------------------------------------- fast paths
#
# The same decisions as replay_study_generic for the pruners whose state is simple
# (tests/test_pruners_fast.py compares them on generated studies): no Trial objects, the
# percentile of each step cached until the next trial completes.


def _replay_percentile(
    trials: Sequence[TrialCurve], pr: PercentilePruner, maximize: bool, study_name: str = "study"
):
    q = ((100 - pr.percentile) if maximize else pr.percentile) / 100
    warm, interval, n_min = pr.n_warmup_steps, pr.interval_steps, pr.n_min_trials
    startup = pr.n_startup_trials
    at_step: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    cache: dict[int, float] = {}
    n_complete = 0
    pruned: dict[int, int] = {}
    for curve in trials:
        stop = None
        if n_complete > 0 and n_complete >= startup:
            best = math.nan
            prev = -1
            for step, v in zip(curve.steps, curve.values, strict=True):
                if v == v and (best != best or (v > best if maximize else v < best)):
                    best = v
                if step >= warm and prev < (step - warm) // interval * interval + warm:
                    if best != best:
                        stop = step
                        break
                    p = cache.get(step)
                    if p is None:
                        values = at_step.get(step)
                        if counts.get(step, 0) < n_min or not values:
                            p = math.nan
                        else:
                            p = linear_percentile(values, q)
                        cache[step] = p
                    if p == p and (best < p if maximize else best > p):
                        stop = step
                        break
                prev = step
        if stop is not None:
            pruned[curve.number] = stop
        elif curve.state == COMPLETE:
            n_complete += 1
            cache.clear()
            for step, v in zip(curve.steps, curve.values, strict=True):
                counts[step] = counts.get(step, 0) + 1
                if v == v:
                    bisect.insort(at_step.setdefault(step, []), v)
    return pruned


def _replay_threshold(
    trials: Sequence[TrialCurve], pr: ThresholdPruner, maximize: bool, study_name: str = "study"
):
    steps, values, valid = prepare(trials).arrays
    if not steps.size:
        return {}
    warm, interval = pr.n_warmup_steps, pr.interval_steps
    prev = np.full_like(steps, -1)
    prev[:, 1:] = steps[:, :-1]
    with np.errstate(invalid="ignore"):
        checked = valid & (steps >= warm) & (prev < (steps - warm) // interval * interval + warm)
        hit = checked & (np.isnan(values) | (values < pr.lower) | (values > pr.upper))
    return _first_hits(trials, steps, hit)


def _first_hits(trials: Sequence[TrialCurve], steps: np.ndarray, hit: np.ndarray):
    """``{trial number: step}`` of the first True of each row of ``hit``."""
    rows = np.flatnonzero(hit.any(axis=1))
    cols = hit[rows].argmax(axis=1)
    return {trials[int(r)].number: int(steps[r, c]) for r, c in zip(rows, cols, strict=True)}


def _replay_patient(
    trials: Sequence[TrialCurve], pr: PatientPruner, maximize: bool, study_name: str = "study"
):
    steps, values, valid = prepare(trials).arrays
    window = pr.patience + 1
    if steps.shape[1] <= window:
        return {}
    best = np.fmax if maximize else np.fmin  # NaN-ignoring, NaN where all are NaN
    n = values.shape[1] - window  # checks at i = window .. width - 1
    before = best.accumulate(values, axis=1)[:, :n]  # best of values[: i - window + 1]
    after = values[:, 1 : 1 + n].copy()  # best of values[i - window + 1 : i + 1]
    for k in range(1, window):
        best(after, values[:, 1 + k : 1 + k + n], out=after)
    with np.errstate(invalid="ignore"):
        if maximize:
            hit = before - pr.min_delta > after
        else:
            hit = before + pr.min_delta < after
    hit &= valid[:, window:]
    return _first_hits(trials, steps[:, window:], hit)


def _halve(
    curve: TrialCurve,
    min_resource: int,
    rf: int,
    rate: int,
    bootstrap: int,
    rungs: list[list[float]],
    maximize: bool,
) -> int | None:
    """One trial under Successive Halving (the rungs' sorted values, shared by the
    trials of one halving); the step it is pruned at, or None."""  # fmt: skip
    rung = 0
    promotion = min_resource * rf ** (rate + rung)
    for step, value in zip(curve.steps, curve.values, strict=True):
        while step >= promotion:
            if value != value:
                return step
            if len(rungs) == rung:
                rungs.append([])
            competing = rungs[rung]
            bisect.insort(competing, value)
            if len(competing) <= bootstrap:
                return step
            idx = len(competing) // rf - 1
            if idx == -1:
                idx = 0
            if not (value >= competing[-(idx + 1)] if maximize else value <= competing[idx]):
                return step
            rung += 1
            promotion = min_resource * rf ** (rate + rung)
    return None


def _replay_successive_halving(
    trials: Sequence[TrialCurve],
    pr: SuccessiveHalvingPruner,
    maximize: bool,
    study_name: str = "study",
):
    min_resource = pr.min_resource
    last_complete: int | None = None  # the greatest last step of a complete trial
    rungs: list[list[float]] = []
    pruned: dict[int, int] = {}
    for curve in trials:
        if curve.steps and min_resource is None and last_complete is not None:
            min_resource = max(last_complete // 100, 1)  # fixed at its first check
        stop = None
        if curve.steps and min_resource is not None:
            rate, bootstrap = pr.min_early_stopping_rate, pr.bootstrap_count
            stop = _halve(
                curve, min_resource, pr.reduction_factor, rate, bootstrap, rungs, maximize
            )
        if stop is not None:
            pruned[curve.number] = stop
        elif curve.state == COMPLETE and curve.steps:
            last = curve.steps[-1]
            last_complete = last if last_complete is None else max(last_complete, last)
    return pruned


def _replay_hyperband(
    trials: Sequence[TrialCurve], pr: HyperbandPruner, maximize: bool, study_name: str = "study"
):
    pruned: dict[int, int] = {}
    last_complete: int | None = None
    rungs: dict[int, list[list[float]]] = {}
    for curve in trials:
        if curve.steps and not pr._pruners:
            if pr.max_resource != "auto" or last_complete is not None:
                if pr.max_resource == "auto":
                    pr.max_resource = last_complete + 1
                pr._initialize_brackets()
        stop = None
        if curve.steps and pr._pruners:
            bracket = pr.bracket_id(study_name, curve.number)
            stop = _halve(curve, pr.min_resource, pr.reduction_factor, bracket,
                          pr.bootstrap_count, rungs.setdefault(bracket, []), maximize)  # fmt: skip
        if stop is not None:
            pruned[curve.number] = stop
        elif curve.state == COMPLETE and curve.steps:
            last = curve.steps[-1]
            last_complete = last if last_complete is None else max(last_complete, last)
    return pruned


_FAST: dict[type, Callable] = {
    SuccessiveHalvingPruner: _replay_successive_halving,
    HyperbandPruner: _replay_hyperband,
    PercentilePruner: _replay_percentile,
    MedianPruner: _replay_percentile,
    ThresholdPruner: _replay_threshold,
    PatientPruner: _replay_patient,
}
