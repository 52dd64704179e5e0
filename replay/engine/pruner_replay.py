"""A recorded study replayed under one pruner of :mod:`replay.engine.pruners`, exactly.

:func:`replay_study` runs the trials of a study one after another, in trial-number
order, each seeing the trials before it in the state this pruner left them, and says
where each trial is pruned. :func:`replay_study_generic` asks ``pruner.prune`` at every
step (the reference); the fast paths below give the same decisions for the pruners whose
state is simple, without :class:`~replay.engine.pruner_study.Trial` objects, some vectorized
over a :class:`PreparedStudy` (``tests/test_pruners_fast.py`` compares them).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from replay.engine.pruner_study import (
    COMPLETE,
    FAIL,
    MAXIMIZE,
    MINIMIZE,
    PRUNED,
    Pruner,
    Study,
    Trial,
)
from replay.engine.pruners import (
    HyperbandPruner,
    MedianPruner,
    PatientPruner,
    PercentilePruner,
    SuccessiveHalvingPruner,
    ThresholdPruner,
    linear_percentile,
)

__all__ = [
    "PreparedStudy",
    "TrialCurve",
    "prepare",
    "replay_study",
    "replay_study_generic",
]


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
        if curve.steps and not pr.has_brackets:
            if pr.max_resource != "auto" or last_complete is not None:
                if pr.max_resource == "auto":
                    pr.max_resource = last_complete + 1
                pr.initialize_brackets()
        stop = None
        if curve.steps and pr.has_brackets:
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
