"""What a sweep needs from a log, computed once per run (:class:`RunFacts`: its columns
as lists, directions, held-out column, regrets, checkpoints, finished branches), the rates
it recorded, and the check of the real Keras callbacks that ran in shadow mode
(:func:`check_shadow`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.errors import ReplayError, missing_metric
from analysis.names import find_column, heldout_column, lr_column
from replay.engine.policies import (
    PolicyError,
    early_stopping,
    reduce_lr_on_plateau,
)
from replay.engine.rates import rates_f32

__all__ = [
    "RunFacts",
    "ShadowCheck",
    "best_epoch",
    "check_shadow",
    "checkpoint_files",
    "initial_lr_for",
    "json_float",
    "recorded_lr",
    "regrets_of",
]


@dataclass
class RunFacts:
    """What a sweep needs from a log, computed once per run."""

    name: str
    source: str
    metrics: dict[str, list[float | None]]
    columns: list[str]
    n_epochs: int
    checkpoints: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    directions: dict[str, str] = field(default_factory=dict)
    default_monitor: str = "val_loss"
    validation: frozenset[str] = frozenset()
    #: The log itself, and the finished branches under it (``replay branch``).
    log: object | None = None
    branches: list = field(default_factory=list)

    @classmethod
    def from_runlog(cls, run) -> RunFacts:
        """Build from an :class:`analysis.reading.logs.RunLog` (finding its branches, if any)."""
        from replay.sweeping.branches import find_branches

        columns = list(run.columns)
        metrics = {c: run.values(c) for c in columns}
        branches, branch_notes = find_branches(run)
        return cls(
            name=run.name,
            source=str(run.source),
            metrics=metrics,
            columns=columns,
            n_epochs=run.n_epochs,
            checkpoints=checkpoint_files(run),
            notes=list(run.warnings) + branch_notes,
            directions=dict(run.directions),
            default_monitor=run.default_monitor,
            validation=run.validation,
            log=run,
            branches=branches,
        )

    def column(self, metric: str) -> str | None:
        """The column holding ``metric`` (either Keras spelling: ``val_acc``/``val_accuracy``)."""
        return find_column(metric, self.columns)

    @property
    def lr_column(self) -> str | None:
        """The learning-rate column (``learning_rate`` or ``lr``), or None."""
        return lr_column(self.columns)

    def values(self, metric: str) -> list[float | None]:
        column = self.column(metric)
        if column is None:
            raise missing_metric(metric, self.columns, self.source)
        return self.metrics[column]

    def heldout_for(self, monitor: str) -> str | None:
        """The held-out column matching ``monitor`` (:func:`analysis.names.heldout_column`)."""
        return heldout_column(monitor, self.columns, self.validation)

    def epoch_rows(self) -> list[dict[str, float | None]]:
        rows = []
        for e in range(self.n_epochs):
            rows.append({c: json_float(self.metrics[c][e]) for c in self.columns})
        return rows


def checkpoint_files(run) -> dict[int, str]:
    """The checkpoint file of each epoch of a run directory (or branch), by epoch.

    A branch keeps only its own epochs' checkpoints; those before its fork are its
    parent's (run.json's ``parent``), found the same way.
    """
    out: dict[int, str] = {}
    manifest = run.manifest or {}
    if run.root is None or not manifest.get("checkpoints_included", True):
        return out
    parent, fork = manifest.get("parent"), manifest.get("fork_epoch")
    if isinstance(parent, str) and isinstance(fork, int) and (run.root / parent).is_dir():
        from analysis.formats.run_dir import load_run_dir

        inherited = checkpoint_files(load_run_dir(run.root / parent))
        out.update({e: f for e, f in inherited.items() if e < fork})
    for epoch, info in run.checkpoints.items():
        out[epoch] = str(Path(run.source) / info.path)
    return out


def json_float(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return float(v)


def best_epoch(values: Sequence[float | None], mode: str) -> int | None:
    """The first epoch with the best finite value (``mode`` "min" or "max"), or None."""
    arr = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(arr))
    if not len(idx):
        return None
    return int(idx[np.argmin(arr[idx]) if mode == "min" else np.argmax(arr[idx])])


def regrets_of(values: Sequence[float | None], mode: str) -> tuple[list[float | None], int | None]:
    """Per-epoch regret (0 best, larger worse) and the oracle epoch."""
    oracle = best_epoch(values, mode)
    if oracle is None:
        return [None] * len(values), None
    best = values[oracle]
    regret = [None if v is None else (v - best if mode == "min" else best - v) for v in values]
    return [r if r is not None and math.isfinite(r) else None for r in regret], oracle


def recorded_lr(facts: RunFacts) -> list[float | None] | None:
    """The log's learning rate in effect during each epoch as float32 values, or None.

    Read from ``learning_rate``, else Keras 2's ``lr``.
    """
    column = facts.lr_column
    return None if column is None else rates_f32(facts.metrics[column])


def initial_lr_for(facts: RunFacts, grid_initial: float | None) -> float | None:
    """The rate at epoch 0: ``--initial-lr``, else the log's first rate, else None.

    None means the log has no learning rate: schedules are then replayed on a
    relative scale (the first epoch's rate is 1).
    """
    if grid_initial is not None:
        return grid_initial
    rec = recorded_lr(facts)
    return next((v for v in rec or [] if v is not None), None)


@dataclass(frozen=True)
class ShadowCheck:
    total: int
    matched: int
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.matched == self.total


def check_shadow(facts: RunFacts, shadow: list[dict], epochs: int | None = None) -> ShadowCheck:
    """Replay each shadow callback's settings and compare its recorded decisions.

    ``epochs`` limits the replay to the epochs the shadow callbacks had seen when
    run.json was last written (see ``RunLog.shadow_epochs``).

    Each EarlyStopping entry contributes two decisions (stopped epoch, best epoch);
    each ReduceLROnPlateau entry one (its reductions).
    """
    total = matched = 0
    mismatches: list[str] = []
    for entry in shadow:
        kind = entry.get("callback")
        params = dict(entry.get("params") or {})
        monitor = params.get("monitor", "val_loss")
        if facts.column(monitor) is None:
            continue
        values = facts.values(monitor)[:epochs]
        label = f"{kind}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
        label = " ".join(label.splitlines())  # one line, whatever run.json holds
        try:
            if kind == "EarlyStopping":
                keys = ("min_delta", "patience", "mode", "baseline", "restore_best_weights")
                kwargs = {k: params[k] for k in keys if k in params}
                kwargs["start_from_epoch"] = params.get("start_from_epoch", 0)
                r = early_stopping(values, monitor=monitor, **kwargs)
                best = r.best_epoch
                pairs = [
                    ("stopped_epoch", r.stopped_epoch, entry.get("stopped_epoch")),
                    ("best_epoch", best, entry.get("best_epoch")),
                ]
            elif kind == "ReduceLROnPlateau":
                keys = ("factor", "patience", "min_delta", "mode", "cooldown", "min_lr")
                kwargs = {k: params[k] for k in keys if k in params}
                initial = entry.get("initial_lr") or initial_lr_for(facts, None) or 1.0
                r = reduce_lr_on_plateau(values, monitor=monitor, initial_lr=initial, **kwargs)
                pairs = [("reductions", list(r.reductions), list(entry.get("reductions") or []))]
            else:
                continue
        except PolicyError as e:  # settings damaged in run.json, not a replay bug
            raise ReplayError(
                f"{facts.source}: run.json's shadow {label} cannot be replayed ({e}); "
                "restore run.json or re-record the run"
            ) from None
        for what, ours, theirs in pairs:
            total += 1
            if ours == theirs:
                matched += 1
            else:
                mismatches.append(f"{label}: {what} replay={ours} keras={theirs}")
    return ShadowCheck(total, matched, tuple(mismatches))
