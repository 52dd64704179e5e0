"""Deciding a TensorBoard learning rate's epochs from the ReduceLROnPlateau settings
that reproduce it.

:mod:`analysis.reading.lr_reading` decides which epoch each value of a TensorBoard learning
rate belongs to when the log itself tells (the tag, a CSVLogger file beside it, a
change between steps 0 and 1). When it cannot, the two readings still predict
different cut epochs: under "during" a change between steps k-1 and k is a cut at the
end of epoch k-1; under "after" one at the end of epoch k. Only one of them may be
what some ``ReduceLROnPlateau`` setting would have done with the recorded metrics.

:func:`align_lr` searches for such settings (the monitor asked for first, then the
log's other metrics; ``min_delta`` among the sweep's and 0, 1e-4, 1e-3; patience
0-50; cooldown 0, and only if no reading is reproduced so, 1-10; ``min_lr`` 0 or the
lowest rate logged; the factor is the observed ratio and does not move a cut). The
first monitor (and cooldown stage) that reproduces either reading decides, and the
column is realigned:

- evidence ``"default"`` (ambiguous): the one reading some setting reproduces; when
  both or neither are reproduced, the values stay as written (neither: no
  ``ReduceLROnPlateau`` made the changes, and a ``LearningRateScheduler`` sets the
  rate at the start of an epoch, so TensorBoard shows the rate during each epoch in
  either order);
- evidence ``"first-epoch"`` (a change between steps 0 and 1, read as logged after a
  cut): kept when a setting reproduces it, else read as written (a scheduler's).

The result says which reading was used and why (``RunLog.lr_reading.note``, one of
the run's warnings). No TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.names import lr_column
from analysis.reading.logs import RunLog
from analysis.reading.lr_reading import (
    AFTER,
    DEFAULT_ORDER,
    DURING,
    changes,
    describe_order,
    with_reading,
)
from replay.engine.policies import PlateauTrace, PolicyError, resolve_mode

__all__ = ["MIN_DELTAS", "Witness", "align_lr", "reproducing_settings"]

#: ``min_delta`` values always tried (0, Keras's default 1e-4, 1e-3).
MIN_DELTAS = (0.0, 1e-4, 1e-3)
PATIENCES = (*range(1, 51), 0)  # 1 first: patience 0 and 1 act alike
#: Keras's default cooldown (0) first: a reading explained without a cooldown wins over
#: one that needs some.
COOLDOWN_STAGES = ((0,), range(1, 11))


@dataclass(frozen=True)
class Witness:
    """A ``ReduceLROnPlateau`` setting whose cuts match the log under ``order``."""

    order: str
    monitor: str
    mode: str
    min_delta: float
    patience: int
    cooldown: int
    min_lr: float
    factor: float

    def describe(self) -> str:
        return (
            f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor:.3g}, "
            f"patience={self.patience}, min_delta={self.min_delta:g}, cooldown={self.cooldown}"
            + (f", min_lr={self.min_lr:.3g})" if self.min_lr else ")")
        )


def _first_reach(flags: Sequence[bool | None]) -> dict[int, int]:
    """``{w: first epoch where wait reaches w}``, counting non-improvements without cuts."""
    out: dict[int, int] = {}
    wait = 0
    for epoch, improved in enumerate(flags):
        if improved is None:
            continue
        wait = 0 if improved else wait + 1
        if wait and wait not in out:
            out[wait] = epoch
    return out


def _monitors(run: RunLog, asked: Sequence[str]) -> list[str]:
    """The monitors to try, in order: those asked for, the log's default, the rest."""
    out: list[str] = []
    for m in [*asked, run.default_monitor, "val_loss"]:
        column = run.column(m)
        if column is not None and column not in out:
            out.append(column)
    for column in run.columns:
        if column not in out and lr_column([column]) is None:
            out.append(str(column))
    return out


def reproducing_settings(
    run: RunLog,
    written: Sequence[float | None],
    monitors: Sequence[str] = (),
    min_deltas: Sequence[float] = (),
    mode: str = "auto",
) -> dict[str, Witness]:
    """A reproducing setting per reading (``DURING`` / ``AFTER``), for the first monitor
    (in :func:`_monitors` order) and cooldown stage that has any; empty when none
    reproduces the changes.

    ``written``: the learning rate at each step as TensorBoard stored it.
    """
    w = list(written)
    n = len(w)
    if n < 2 or any(v is None or not v > 0 for v in w):
        return {}
    moves = changes(w)
    if not moves or any(w[k] > w[k - 1] for k in moves):
        return {}  # no change, or a rise: not ReduceLROnPlateau's
    factor = w[moves[0]] / w[moves[0] - 1]
    floor = min(w) * (1 + 1e-5)  # the lowest rate logged, as a min_lr that stops the cuts
    observed = {DURING: {k - 1 for k in moves}, AFTER: set(moves)}
    last_visible = {DURING: n - 2, AFTER: n - 1}
    deltas = list(dict.fromkeys([*min_deltas, *MIN_DELTAS]))
    asked = {run.column(m) for m in monitors}
    for monitor in _monitors(run, monitors):
        try:  # the sweep's mode is for its own monitors; the others go by their names
            resolved = resolve_mode(monitor, mode if monitor in asked else "auto", run.directions)
        except PolicyError:
            continue
        traces = [PlateauTrace(run.values(monitor), mode=resolved, min_delta=d) for d in deltas]
        for cooldowns in COOLDOWN_STAGES:
            found: dict[str, Witness] = {}
            for min_delta, trace in zip(deltas, traces, strict=True):
                reach = _first_reach(trace.flags)
                for order in (DURING, AFTER):
                    if order in found:
                        continue
                    first = min(observed[order])
                    for patience in (p for p in PATIENCES if reach.get(max(p, 1)) == first):
                        hit = _search(
                            trace,
                            w[0],
                            factor,
                            floor,
                            patience,
                            cooldowns,
                            observed[order],
                            last_visible[order],
                        )
                        if hit is not None:
                            cooldown, min_lr = hit
                            found[order] = Witness(
                                order,
                                monitor,
                                resolved,
                                min_delta,
                                patience,
                                cooldown,
                                min_lr,
                                factor,
                            )
                            break
                if len(found) == 2:
                    break
            if found:
                return found
    return {}


def _search(
    trace: PlateauTrace,
    initial: float,
    factor: float,
    floor: float,
    patience: int,
    cooldowns: Sequence[int],
    observed: set[int],
    last: int,
) -> tuple[int, float] | None:
    for cooldown in cooldowns:
        for min_lr in (0.0, floor):
            r = trace.decide(
                initial_lr=initial,
                factor=factor,
                patience=patience,
                cooldown=cooldown,
                min_lr=min_lr,
            )
            if {e for e in r.reductions if e <= last} == observed:
                return cooldown, min_lr
    return None


def align_lr(
    run: RunLog, monitors: Sequence[str] = (), min_deltas: Sequence[float] = (), mode: str = "auto"
) -> RunLog:
    """``run`` with its TensorBoard learning rate aligned by the settings that reproduce
    it, when the log alone left the reading open (see the module docstring).

    ``monitors`` / ``min_deltas`` / ``mode``: the sweep's, tried first (``mode`` for
    ``monitors`` only). Returns ``run`` itself when there is nothing to decide (no
    TensorBoard learning rate, a reading the log decided, a constant rate).

    >>> import numpy as np
    >>> run = RunLog("r", "r.csv", "csv", ["loss"], np.ones((1, 1)), np.zeros((1, 1), bool))
    >>> align_lr(run) is run
    True
    """
    reading = run.lr_reading
    if reading is None or reading.evidence not in ("default", "first-epoch"):
        return run
    found = reproducing_settings(run, reading.written, monitors, min_deltas, mode)
    if reading.evidence == "first-epoch":
        if AFTER in found:
            why = (
                f"{found[AFTER].describe()} reproduces its cuts only so, and it changes "
                "between steps 0 and 1"
            )
            return with_reading(run, reading.decide(AFTER, "settings", why))
        return with_reading(run, reading.decide(DURING, "settings", _NOT_PLATEAU))
    if len(found) == 1:
        ((order, witness),) = found.items()
        other = AFTER if order == DURING else DURING
        why = (
            f"{witness.describe()} reproduces its cuts so, and no setting does when read "
            f"as {describe_order(other)}"
        )
        return with_reading(run, reading.decide(order, "settings", why))
    if not found:
        return with_reading(run, reading.decide(DURING, "settings", _NOT_PLATEAU))
    why = (
        f"ambiguous, ReduceLROnPlateau settings reproduce its cuts under either reading "
        f"({found[DURING].describe()} as written, {found[AFTER].describe()} one epoch "
        "later); read as written (the default)"
    )
    return with_reading(run, reading.decide(DEFAULT_ORDER, "default", why))


_NOT_PLATEAU = (
    "no ReduceLROnPlateau setting (patience 0-50, cooldown 0-10) reproduces its changes as "
    "cuts, so a scheduler made them, and a LearningRateScheduler's rate shows as the rate "
    "during each epoch in either order"
)
