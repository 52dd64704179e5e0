"""A hyperparameter study as a log: its trials, each a per-step curve of the objective.

One shape for what both study readers return (:mod:`analysis.formats.optuna_study`,
:mod:`analysis.formats.kerastuner`): :class:`StudyLog` holds the trials in trial-number
order, each a :class:`StudyTrial` with the steps it reported (step = epoch when a Keras
callback reported them), its state, final value, parameters and times.
:meth:`StudyLog.runs` gives each trial as a :class:`~analysis.reading.logs.RunLog` (one column,
the objective; step k is epoch k, steps never reported are "not logged"), so that the
EarlyStopping and ReduceLROnPlateau sweeps read a study as a folder of runs, each of
their records ending with the trial's fields (:meth:`StudyTrial.record_fields`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.errors import BadLog
from analysis.results.records import TrialFields

__all__ = ["STATES", "StudyLog", "StudyTrial"]

#: A trial's state, in Optuna's words lower-cased (KerasTuner's are mapped onto them).
STATES = ("complete", "pruned", "fail", "running", "waiting")


@dataclass(frozen=True)
class StudyTrial:
    """One trial: reported ``steps`` (increasing) and ``values``, ``state``, final
    ``value`` (None unless complete), ``params``, ISO start and end times (or None)."""

    number: int
    state: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None

    @property
    def last_step(self) -> int | None:
        return self.steps[-1] if self.steps else None

    def record_fields(self) -> TrialFields:
        """The fields that end every sweep record of this trial's run
        (:class:`analysis.results.records.TrialFields`)."""
        return TrialFields(trial_number=self.number, trial_state=self.state,
                           trial_value=self.value, trial_params=dict(self.params))  # fmt: skip


@dataclass
class StudyLog:
    """A study: name, where it was read from, ``direction`` (minimize | maximize), the
    name of the reported metric, the trials by number, and reader warnings."""

    name: str
    source: str
    format: str  # "optuna" | "kerastuner"
    direction: str
    metric: str
    trials: list[StudyTrial]
    warnings: list[str] = field(default_factory=list)

    def best_trial(self) -> StudyTrial | None:
        """The complete trial with the best final value (the lowest number among ties),
        as Optuna's ``study.best_trial``; None when no trial completed with a value."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        done = [t for t in done if not math.isnan(t.value)]
        if not done:
            return None
        sign = 1.0 if self.direction == "minimize" else -1.0
        return min(done, key=lambda t: (sign * t.value, t.number))

    def runs(self) -> list:
        """Each trial with at least one reported step as a RunLog named
        ``STUDY/trial-N``, in trial-number order.

        Raises:
            BadLog: no trial reported any intermediate value.
        """
        from analysis.reading.logs import RunLog

        out = []
        mode = "min" if self.direction == "minimize" else "max"
        for t in self.trials:
            if not t.steps:
                continue
            n = t.steps[-1] + 1
            values = np.full(n, np.nan)
            absent = np.ones(n, dtype=bool)
            values[list(t.steps)] = t.values
            absent[list(t.steps)] = False
            run = RunLog(
                name=f"{self.name}/trial-{t.number}",
                source=f"{self.source}#trial-{t.number}",
                format=self.format,
                columns=(self.metric,),
                table=values.reshape(n, 1),
                absent=absent.reshape(n, 1),
                directions={self.metric: mode},
                validation=frozenset({self.metric}),
                default_monitor=self.metric,
                trial=dict(t.record_fields()),
            )
            out.append(run)
        if not out:
            raise BadLog(
                f"{self.source}: study {self.name!r} has no trial with intermediate values "
                "(trial.report); nothing to replay"
            )
        return out
