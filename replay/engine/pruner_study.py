"""The study as Optuna's pruners see it: :class:`Study` and :class:`Trial` stand in for
``optuna.study.Study`` and ``FrozenTrial`` with only what the pruners read (direction,
study name, each trial's state, intermediate values and the system attributes Successive
Halving writes), and :class:`Pruner` for ``BasePruner``. The pruners are in
:mod:`replay.engine.pruners`; nothing here imports Optuna.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "COMPLETE",
    "FAIL",
    "MAXIMIZE",
    "MINIMIZE",
    "PRUNED",
    "RUNNING",
    "Pruner",
    "Study",
    "Trial",
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
