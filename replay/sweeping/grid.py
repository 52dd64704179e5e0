"""The grid of a sweep: every value of every parameter to try, checked when built.

:class:`Grid` holds the settings of every policy and dialect; :meth:`Grid.check`
refuses, before any work, a grid whose sweep would not fit in the memory available
(:meth:`Grid.memory_needed`), unless ``--max-settings`` says otherwise.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from analysis.errors import ReplayError
from analysis.results.records import (
    COMBINED,
    EARLY_STOPPING,
    MODEL_CHECKPOINT,
    POLICIES,
    PRECHELT,
    REDUCE_LR_ON_PLATEAU,
)
from replay.engine.grid import GridError
from replay.engine.policies import PolicyError, resolve_mode

__all__ = ["DEFAULT_GRID", "Grid", "GridTooLarge", "available_memory"]

#: Bytes a sweep holds per setting, by policy, at its peak (from
#: benchmarks/bench_sweep.py's figures, with room to spare): an EarlyStopping or combined
#: setting is an outcome index in a block plus the table's and the writers' arrays; a
#: ReduceLROnPlateau or Prechelt setting is a record, read whole by the table and charts.
SETTING_BYTES = {EARLY_STOPPING: 64, COMBINED: 64, REDUCE_LR_ON_PLATEAU: 6000, PRECHELT: 6000,
                 MODEL_CHECKPOINT: 6000}  # fmt: skip
#: A ReduceLROnPlateau record's schedule, per epoch of the log.
LR_EPOCH_BYTES = 64
#: A distinct outcome of a combined block (its schedule slices are shared).
OUTCOME_BYTES = 1000
#: What every sweep needs besides: the interpreter, numpy, the logs, the chart workers.
BASE_BYTES = 256 * 2**20
#: The share of the available memory a sweep may plan to fill.
MEMORY_SHARE = 0.8
#: Epochs assumed per log when :meth:`Grid.memory_needed` is given no runs.
DEFAULT_EPOCHS = 100


class GridTooLarge(ReplayError):
    """A grid whose sweep needs more memory than is available, or more settings than
    ``--max-settings``."""


def available_memory() -> int | None:
    """Bytes this process may still allocate: the kernel's MemAvailable, or less under
    a cgroup memory limit; None where neither can be read."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):  # fmt: skip
        try:
            with open(limit) as f, open(usage) as g:
                cap = f.read().strip()
                if cap.isdigit() and int(cap) < 2**60:
                    found.append(max(int(cap) - int(g.read().strip()), 0))
        except (OSError, ValueError):
            pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(found)


def _size(n: float) -> str:
    """Bytes for a person: ``1.4 GB``, ``380 MB``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 1e6:.2g} MB"


@dataclass(frozen=True)
class Grid:
    """Every value of every parameter to try. ``lr_*`` fall back to the shared ones."""

    policies: tuple[str, ...] = ("early_stopping", "reduce_lr_on_plateau")
    #: Empty: each run's own default monitor (``val_loss``, or the one its framework uses).
    monitors: tuple[str, ...] = ()
    mode: str = "auto"
    patience: tuple[int, ...] = tuple(range(11))
    min_delta: tuple[float, ...] = (0.0, 1e-4, 1e-3)
    baseline: tuple[float | None, ...] = (None,)
    start_from_epoch: tuple[int, ...] = (0,)
    restore_best_weights: tuple[bool, ...] = (False, True)
    lr_patience: tuple[int, ...] | None = None
    lr_min_delta: tuple[float, ...] = (1e-4,)
    factor: tuple[float, ...] = (0.1, 0.2, 0.5)
    cooldown: tuple[int, ...] = (0,)
    min_lr: tuple[float, ...] = (0.0,)
    initial_lr: float | None = None
    gl_alpha: tuple[float, ...] = (1.0, 2.0, 5.0)
    pq_alpha: tuple[float, ...] = (0.5, 1.0, 2.0)
    up_strips: tuple[int, ...] = (2, 3, 4)
    strip_length: tuple[int, ...] = (5,)
    #: Whose callbacks to replay (``--dialect``; :mod:`replay.sweeping.dialect_sweep`), and the
    #: parameters only some dialects have (torch; Lightning; Hugging Face).
    dialect: str = "keras"
    dialect_version: str | None = None
    threshold: tuple[float, ...] | None = None
    threshold_mode: tuple[str, ...] = ("rel",)
    eps: tuple[float, ...] = (1e-8,)
    check_finite: tuple[bool, ...] = (True,)
    stopping_threshold: tuple[float | None, ...] = (None,)
    divergence_threshold: tuple[float | None, ...] = (None,)
    early_stopping_threshold: tuple[float, ...] = (0.0,)
    #: ModelCheckpoint (``--policy model_checkpoint``): both ways by default in a sweep
    #: (pick: Keras's default, False); ``period`` is Keras 2's (tf-keras dialect only).
    save_best_only: tuple[bool, ...] = (False, True)
    initial_value_threshold: tuple[float | None, ...] = (None,)
    period: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.validate()

    def monitors_of(self, run) -> tuple[str, ...]:
        """The monitors ``run`` is replayed on: the grid's, else the run's default one."""
        return self.monitors or (run.default_monitor,)

    @property
    def lr_patiences(self) -> tuple[int, ...]:
        return self.lr_patience if self.lr_patience is not None else self.patience

    def counts(self) -> dict[str, int]:
        """Settings per policy, per run (monitors included)."""
        m = len(self.monitors) or 1
        es = (
            len(self.patience)
            * len(self.min_delta)
            * len(self.baseline)
            * len(self.start_from_epoch)
            * len(self.restore_best_weights)
        )
        lr = self._lr_count()
        if self.dialect == "lightning":
            es = (len(self.patience) * len(self.min_delta) * len(self.check_finite)
                  * len(self.stopping_threshold) * len(self.divergence_threshold))  # fmt: skip
        elif self.dialect == "hf":
            es = (len(self.patience) * len(self.early_stopping_threshold)
                  * len(self.restore_best_weights))  # fmt: skip
        elif self.dialect == "ultralytics":
            es = len(self.patience)
        pr = (len(self.gl_alpha) + len(self.pq_alpha) + len(self.up_strips)) * len(
            self.strip_length
        )
        mc = len(self.save_best_only) * len(self.initial_value_threshold) * len(self.period or (1,))
        table = {EARLY_STOPPING: es * m, REDUCE_LR_ON_PLATEAU: lr * m, PRECHELT: pr * m,
                 COMBINED: es * lr * m, MODEL_CHECKPOINT: mc * m}  # fmt: skip
        return {p: table[p] for p in self.policies}

    def size(self) -> int:
        return sum(self.counts().values())

    def memory_needed(self, runs=(), n_runs: int = 1) -> int:
        """Bytes a sweep of ``runs`` (or of ``n_runs`` logs of :data:`DEFAULT_EPOCHS`
        epochs) holds at its peak: :data:`BASE_BYTES` plus, per run, each policy's
        settings times :data:`SETTING_BYTES`, the schedules of ReduceLROnPlateau records
        (:data:`LR_EPOCH_BYTES` per epoch), and the outcomes of the combined policy at
        their worst: per LR setting, one per EarlyStopping setting but at most
        2(n + 1) per (min_delta, baseline, start_from_epoch) and 2(n + 1)n in all, on an
        n-epoch log (:data:`OUTCOME_BYTES` each, and n + 1 schedule slices)."""
        epochs = [run.n_epochs for run in runs] or [DEFAULT_EPOCHS] * n_runs
        counts = self.counts()
        lr_settings = self._lr_count() * (len(self.monitors) or 1)
        traces = len(self.min_delta) * len(self.baseline) * len(self.start_from_epoch)
        es_settings = traces * len(self.patience) * len(self.restore_best_weights)
        total = BASE_BYTES
        for n in epochs:
            for policy, count in counts.items():
                ready_made = self.dialect != "keras"  # one record per setting
                total += count * SETTING_BYTES[REDUCE_LR_ON_PLATEAU if ready_made else policy]
                if policy == REDUCE_LR_ON_PLATEAU:
                    total += count * n * LR_EPOCH_BYTES
                elif policy == COMBINED:
                    outcomes = min(es_settings, 2 * (n + 1) * min(traces, max(n, 1)))
                    schedules = (n + 1) * n * LR_EPOCH_BYTES
                    total += lr_settings * (outcomes * OUTCOME_BYTES + schedules)
        return total

    def _lr_count(self) -> int:
        if self.dialect == "torch":
            deltas = len(self.threshold or (1e-4,)) * len(self.threshold_mode) * len(self.eps)
        else:
            deltas = len(self.lr_min_delta)
        return (len(self.lr_patiences) * deltas * len(self.factor)
                * len(self.cooldown) * len(self.min_lr))  # fmt: skip

    def check(
        self, n_runs: int = 1, max_settings: int | None = None, runs=(),
        available: int | None = None,
    ) -> None:  # fmt: skip
        """Raise before any work when the grid is unusable or too large.

        ``runs`` (RunLogs or RunFacts), when given, are checked for a direction of each
        monitor they will be replayed on. Too large: more settings than ``max_settings``
        when it is given (``--max-settings``: the user's bound, whatever the memory);
        else a sweep that needs (:meth:`memory_needed`) more than :data:`MEMORY_SHARE`
        of ``available`` bytes (default: :func:`available_memory`).

        Raises:
            PolicyError: an unknown policy, or a monitor without a direction.
            GridTooLarge: see above; the message names the estimate and the ways out.
        """
        for monitor in self.monitors:
            if not runs:
                resolve_mode(monitor, self.mode)
        for run in runs:
            for monitor in self.monitors_of(run):
                resolve_mode(monitor, self.mode, run.directions)
        size = self.size() * max(n_runs, len(runs))
        if max_settings is not None:
            if size > max_settings:
                raise GridTooLarge(
                    f"the grid has {size:,} settings, more than --max-settings "
                    f"{max_settings:,}; narrow the ranges or raise --max-settings."
                )
            return
        need = self.memory_needed(runs, n_runs=n_runs)
        available = available_memory() if available is None else available
        if available is not None and need > MEMORY_SHARE * available:
            raise GridTooLarge(
                f"the grid has {size:,} settings, whose sweep needs about {_size(need)} of "
                f"memory, more than the {_size(MEMORY_SHARE * available)} it may use "
                f"({MEMORY_SHARE:.0%} of {_size(available)} available); narrow the ranges, "
                f"or pass --max-settings {size} to sweep them anyway."
            )

    def validate(self) -> None:
        """Raise for a grid no sweep could replay; every grid is checked when built.

        Each policy must be one of :data:`~analysis.results.records.POLICIES` and one its
        dialect has (:func:`replay.sweeping.dialect_sweep.check_dialect`), ``mode`` auto, min or
        max, a ``factor`` > 0 and < 1 (as in Keras), ``initial_lr`` finite and > 0.

        >>> Grid(policies=("bogus",))
        Traceback (most recent call last):
        ...
        replay.engine.policies.PolicyError: policy must be one of early_stopping, ...
        >>> Grid(dialect="torch", policies=("early_stopping",))
        Traceback (most recent call last):
        ...
        replay.engine.grid.GridError: --policy early_stopping: the torch dialect has ...

        Raises:
            PolicyError: an unknown policy or mode.
            GridError: a policy the dialect lacks, a value out of range.
        """
        from replay.sweeping.dialect_sweep import check_dialect

        for p in self.policies:
            if p not in POLICIES:
                raise PolicyError(f"policy must be one of {', '.join(POLICIES)} but got {p!r}.")
        if self.mode not in ("auto", "min", "max"):
            raise PolicyError(f"mode must be one of auto, min, max but got {self.mode!r}.")
        check_dialect(self.dialect, self.policies, self.dialect_version, self.threshold_mode)
        for f in self.factor:
            if not 0 < f < 1:
                raise GridError(f"--factor: {f:g} is out of range; a factor must be > 0 and < 1.")
        lr = self.initial_lr
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise GridError(f"--initial-lr must be a positive number but got {lr}.")

    @classmethod
    def from_options(cls, base: Grid | None = None, **given) -> Grid:
        """The grid that ``base`` (default: :data:`DEFAULT_GRID`) becomes with ``given``.

        ``given`` holds fields by name; None means "not given" and keeps ``base``'s
        value, except that ``monitors`` not given is ``()`` (each run's own default
        monitor) and ``lr_min_delta`` not given follows a given ``min_delta``.

        >>> Grid.from_options(min_delta=(0.01,)).lr_min_delta
        (0.01,)
        >>> Grid.from_options().lr_min_delta, Grid.from_options().monitors
        ((0.0001,), ())

        Raises:
            GridError: see :meth:`validate`.
        """
        from replay.sweeping.dialect_sweep import check_dialect_options

        changes = {k: v for k, v in given.items() if v is not None}
        dialect = changes.pop("dialect", None) or (base.dialect if base else "keras")
        changes = check_dialect_options(dialect, changes)
        changes.setdefault("monitors", ())
        if "lr_min_delta" not in changes and "min_delta" in changes:
            changes["lr_min_delta"] = changes["min_delta"]
        return replace(base if base is not None else cls(), **changes)

    @classmethod
    def for_pick(cls, **given) -> Grid:
        """The one setting ``replay pick`` replays: Keras's defaults where not ``given``.

        EarlyStopping: patience 0, min_delta 0, no restore; ReduceLROnPlateau's
        patience 10 (``--lr-patience``, or ``--patience`` for the LR policy alone),
        min_delta 1e-4 and factor 0.1; Prechelt's GL 2, PQ 1, UP 3, of which only the
        criterion given (else GL) is kept. ``given`` as for :meth:`from_options`.
        A ReduceLROnPlateau setting (alone or combined) hands over the last epoch of the
        curve that answers it exactly (the run's or a branch's).

        >>> Grid.for_pick(policies=("reduce_lr_on_plateau",)).lr_patiences
        (10,)
        >>> Grid.for_pick(policies=(COMBINED,), patience=(3,)).lr_patiences
        (10,)

        >>> g = Grid.for_pick(policies=("prechelt",), up_strips=(4,))
        >>> g.gl_alpha, g.pq_alpha, g.up_strips
        ((), (), (4,))

        Raises:
            ReplayError: several monitors, restore both ways, a policy that does not
                stop training (or several), or several Prechelt criteria.
        """
        keras = cls(
            policies=("early_stopping",),
            patience=(0,),
            min_delta=(0.0,),
            restore_best_weights=(False,),
            save_best_only=(False,),
            lr_min_delta=(1e-4,),
            factor=(0.1,),
            gl_alpha=(2.0,),
            pq_alpha=(1.0,),
            up_strips=(3,),
        )
        if not given.get("policies") and given.get("dialect") == "tf-keras":
            given = {**given, "policies": (EARLY_STOPPING,)}  # of its two, the one that stops
        if given.get("lr_patience") is None and (
            COMBINED in (given.get("policies") or ()) or given.get("patience") is None
        ):
            keras = replace(keras, lr_patience=(10,))  # Keras's ReduceLROnPlateau default
        grid = cls.from_options(keras, **given)
        if len(grid.monitors) > 1:
            names = ",".join(grid.monitors)
            raise GridError(f"--monitor: pick takes one metric but got {names!r}.")
        if len(grid.threshold_mode) != 1:
            modes = ",".join(grid.threshold_mode)
            raise GridError(f"--threshold-mode: pick takes one value but got {modes!r}.")
        if len(grid.restore_best_weights) != 1:
            raise GridError("--restore-best-weights: pick takes yes or no, not both.")
        if len(grid.save_best_only) != 1:
            raise GridError("--save-best-only: pick takes yes or no, not both.")
        if len(grid.policies) != 1:
            raise ReplayError(
                "pick chooses one checkpoint, so it takes one policy: --policy "
                f"{', '.join(POLICIES)}."
            )
        if grid.policies[0] == "prechelt":
            criteria = ("gl_alpha", "pq_alpha", "up_strips")
            named = [k for k in criteria if given.get(k) is not None]
            if len(named) > 1:
                raise ReplayError("pick takes one Prechelt criterion: --gl-alpha, --pq-alpha "
                                  "or --up-strips, not several.")  # fmt: skip
            keep = named[0] if named else "gl_alpha"
            grid = replace(grid, **{k: () for k in criteria if k != keep})
        return grid


DEFAULT_GRID = Grid()
