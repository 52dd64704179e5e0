"""Which branches a grid of learning-rate settings needs: the pure half of ``replay branch``.

A setting's ReduceLROnPlateau, replayed on a recorded curve, gives the rate in effect
during every epoch. Up to the first epoch ``k`` where that rate differs from the
recorded one, the recorded metrics *are* what the setting would have produced; from
``k`` on they are not, and the setting needs a **branch**: a re-training from the
checkpoint of epoch ``k - 1`` with the setting's rate at ``k`` and its real callback
live (:mod:`replay.branching.branch`). Settings with the same ``(k, rate at k)`` share it.

The tree grows while it trains: after each epoch of a branch, :func:`step` replays
every setting riding on it over the branch's curve so far. A setting whose rate for
the next epoch differs from the live callback's *parts* there and needs a sub-branch
(parent: this branch); one whose EarlyStopping (a combined setting) has stopped, or
that reached the run's last epoch, is *done*. A branch trains on while a setting
rides on it.

Everything here is pure (floats in, frozen dataclasses out; no TensorFlow, no files),
so the tree's rules are table tests and planning 1,000 settings takes milliseconds:

- :class:`Setting` (a :class:`Plateau`, and a :class:`Stopping` for the combined
  policy) and :func:`settings_for` (a :class:`replay.sweeping.sweep.Grid`'s settings);
- :func:`plan_root`: where each setting leaves the recorded run, the first-level
  branches, and bounds on the epochs the tree trains (:class:`RootPlan`);
- :func:`step`: the adaptive rule after one epoch of a branch (:class:`Step`);
- :func:`outcome`: what a setting ends with on a curve that is exact for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from analysis.errors import ReplayError
from analysis.names import heldout_column
from replay.engine.policies import (
    EarlyStoppingTrace,
    PlateauResult,
    PlateauTrace,
    resolve_mode,
)
from replay.engine.rates import f32, first_difference

__all__ = [
    "BRANCH_POLICIES",
    "COMBINED",
    "BranchPlanError",
    "Curves",
    "Placement",
    "Plateau",
    "RootPlan",
    "Setting",
    "Step",
    "Stopping",
    "outcome",
    "plan_root",
    "settings_for",
    "step",
    "stopped",
]

COMBINED = "early_stopping+reduce_lr_on_plateau"
BRANCH_POLICIES = ("reduce_lr_on_plateau", COMBINED)

Curves = Mapping[str, Sequence[float]]
"""A run's metrics.csv as columns: metric name -> one value per epoch (``learning_rate``
included: the rate in effect during each epoch)."""


class BranchPlanError(ReplayError):
    """A grid or a run that cannot be branched (the message says why and what to do)."""


# ----------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Plateau:
    """The parameters of one ``keras.callbacks.ReduceLROnPlateau``.

    ``mode`` is what the callback is given (``auto``, ``min`` or ``max``); the replay
    resolves ``auto`` as Keras does (:func:`replay.engine.policies.resolve_mode`).
    """

    monitor: str
    mode: str
    factor: float
    patience: int
    min_delta: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0

    def params(self) -> dict:
        """Keyword arguments of the real callback, in ``replay record``'s key order."""
        return {"monitor": self.monitor, "factor": self.factor, "patience": self.patience,
                "mode": self.mode, "min_delta": self.min_delta, "cooldown": self.cooldown,
                "min_lr": self.min_lr}  # fmt: skip


@dataclass(frozen=True)
class Stopping:
    """The parameters of one ``keras.callbacks.EarlyStopping`` (``mode`` as given)."""

    monitor: str
    mode: str
    patience: int
    min_delta: float = 0.0
    baseline: float | None = None
    start_from_epoch: int = 0
    restore_best_weights: bool = False

    def params(self) -> dict:
        """Keyword arguments of the real callback."""
        return {"monitor": self.monitor, "mode": self.mode, "min_delta": self.min_delta,
                "patience": self.patience, "baseline": self.baseline,
                "restore_best_weights": self.restore_best_weights,
                "start_from_epoch": self.start_from_epoch}  # fmt: skip


@dataclass(frozen=True)
class Setting:
    """One setting of a grid: a ReduceLROnPlateau, with an EarlyStopping in the same fit
    for the combined policy."""

    plateau: Plateau
    stopping: Stopping | None = None

    @property
    def policy(self) -> str:
        return "reduce_lr_on_plateau" if self.stopping is None else COMBINED

    def to_json(self) -> dict:
        """run.json's ``setting`` (:class:`analysis.reading.rundir.BranchSetting`)."""
        return {
            "policy": self.policy,
            "reduce_lr_on_plateau": self.plateau.params(),
            "early_stopping": None if self.stopping is None else self.stopping.params(),
        }

    @property
    def label(self) -> str:
        """A short name: ``ES(patience=5)+RLROP(factor=0.25, patience=3)``, defaults left out.

        >>> Setting(Plateau("val_loss", "min", 0.25, 3), Stopping("val_loss", "min", 5)).label
        'ES(patience=5)+RLROP(factor=0.25, patience=3)'
        """
        p = self.plateau
        lr = [f"factor={p.factor:g}", f"patience={p.patience}"]
        lr += [f"min_delta={p.min_delta:g}"] if p.min_delta != 1e-4 else []
        lr += [f"cooldown={p.cooldown}"] if p.cooldown else []
        lr += [f"min_lr={p.min_lr:g}"] if p.min_lr else []
        text = f"RLROP({', '.join(lr)})"
        s = self.stopping
        if s is None:
            return text
        es = [f"patience={s.patience}"]
        es += [f"min_delta={s.min_delta:g}"] if s.min_delta else []
        es += [f"baseline={s.baseline:g}"] if s.baseline is not None else []
        es += [f"start_from_epoch={s.start_from_epoch}"] if s.start_from_epoch else []
        es += ["restore_best_weights"] if s.restore_best_weights else []
        return f"ES({', '.join(es)})+{text}"


def settings_for(grid, monitors: Sequence[str]) -> list[Setting]:
    """Every setting of ``grid`` (a :class:`replay.sweeping.sweep.Grid`) for ``monitors``, in grid
    order.

    ``grid.policies`` must be among :data:`BRANCH_POLICIES`. The combined policy is the
    product of the EarlyStopping grid (``patience``, ``min_delta``, ``baseline``,
    ``start_from_epoch``, ``restore_best_weights``) and the ReduceLROnPlateau grid
    (``lr_patience`` or else ``patience``, ``lr_min_delta``, ``factor``, ``cooldown``,
    ``min_lr``) on the same monitor.

    Raises:
        BranchPlanError: a policy that needs no branch.
        PolicyError: a monitor whose direction cannot be inferred.
    """
    for policy in grid.policies:
        if policy not in BRANCH_POLICIES:
            raise BranchPlanError(not_a_branch_policy(policy))
    out: list[Setting] = []
    for monitor in monitors:
        resolve_mode(monitor, grid.mode)  # raises if it cannot be inferred
        mode = grid.mode
        plateaus = [
            Plateau(monitor, mode, factor, patience, min_delta, cooldown, min_lr)
            for min_delta, factor, patience, cooldown, min_lr in itertools.product(
                grid.lr_min_delta, grid.factor, grid.lr_patiences, grid.cooldown, grid.min_lr
            )
        ]
        for policy in grid.policies:
            if policy == "reduce_lr_on_plateau":
                out.extend(Setting(p) for p in plateaus)
                continue
            stoppings = [
                Stopping(monitor, mode, patience, min_delta, baseline, start, restore)
                for min_delta, baseline, start, patience, restore in itertools.product(
                    grid.min_delta, grid.baseline, grid.start_from_epoch, grid.patience,
                    grid.restore_best_weights,
                )
            ]  # fmt: skip
            out.extend(Setting(p, s) for s in stoppings for p in plateaus)
    return out


def not_a_branch_policy(policy: str) -> str:
    return (
        f"--policy {policy}: replay branch re-trains learning-rate schedules; it takes "
        f"{' or '.join(BRANCH_POLICIES)} ({policy} alone changes no rate: `replay sweep` "
        "answers it exactly)."
    )


# ----------------------------------------------------------------------------------
# replaying settings over a curve


class _Replayer:
    """Every setting's decisions over one curve, sharing traces among settings."""

    def __init__(self, curves: Curves, initial_lr: float) -> None:
        self.curves = curves
        self.initial_lr = initial_lr
        self._plateau_traces: dict[tuple, PlateauTrace] = {}
        self._stop_traces: dict[tuple, EarlyStoppingTrace] = {}
        self._schedules: dict[Plateau, PlateauResult] = {}
        self._stops: dict[tuple, int | None] = {}

    def _values(self, monitor: str) -> Sequence[float]:
        try:
            return self.curves[monitor]
        except KeyError:
            raise BranchPlanError(
                f"the run has no metric {monitor!r} (it has: {', '.join(self.curves)})"
            ) from None

    def schedule(self, p: Plateau) -> PlateauResult:
        """The rate during each epoch, and after the last one (``final_lr``)."""
        found = self._schedules.get(p)
        if found is None:
            key = (p.monitor, p.mode, p.min_delta)
            trace = self._plateau_traces.get(key)
            if trace is None:
                mode = resolve_mode(p.monitor, p.mode)
                trace = PlateauTrace(self._values(p.monitor), mode=mode, min_delta=p.min_delta)
                self._plateau_traces[key] = trace
            found = trace.decide(
                initial_lr=self.initial_lr,
                factor=p.factor,
                patience=p.patience,
                cooldown=p.cooldown,
                min_lr=p.min_lr,
            )
            self._schedules[p] = found
        return found

    def stop(self, s: Stopping) -> int | None:
        """The epoch at whose end the EarlyStopping stops training, or None."""
        key = (s.monitor, s.mode, s.min_delta, s.baseline, s.start_from_epoch)
        if (key, s.patience) not in self._stops:
            trace = self._stop_traces.get(key)
            if trace is None:
                trace = EarlyStoppingTrace(self._values(s.monitor),
                                           mode=resolve_mode(s.monitor, s.mode),
                                           min_delta=s.min_delta, baseline=s.baseline,
                                           start_from_epoch=s.start_from_epoch)  # fmt: skip
                self._stop_traces[key] = trace
            self._stops[key, s.patience] = trace.stop_point(s.patience)[0]
        return self._stops[key, s.patience]


# ----------------------------------------------------------------------------------
# the plan on the recorded run


@dataclass(frozen=True)
class Placement:
    """Where one setting leaves the recorded run.

    ``fork`` is None when the recorded run answers the setting exactly (its schedule
    never differs, or its EarlyStopping stops first: ``stop`` < the first difference);
    else the first epoch whose rate differs, and ``rate`` the setting's rate then.
    """

    fork: int | None
    rate: float | None
    stop: int | None  # EarlyStopping's stop on the recorded curve (combined policy)


@dataclass(frozen=True)
class RootPlan:
    """The plan on the recorded run: what ``replay branch`` prints before training.

    ``groups`` maps each first-level branch ``(fork epoch, rate then)`` to the indices of
    the settings that start on it, in order of fork epoch. ``epochs_low`` and
    ``epochs_high`` bound the epochs the tree trains (sub-branches are found while
    training): ``low`` counts each first-level branch to the end of the run (or one
    epoch where all its settings may stop early), ``high`` each distinct
    ReduceLROnPlateau that needs a branch to the end of the run. ``checks``: the epochs
    re-trained to prove exactness, one per distinct fork epoch. ``naive``: every
    setting re-trained from scratch for the run's epochs.
    """

    settings: tuple[Setting, ...]
    placements: tuple[Placement, ...]
    groups: dict[tuple[int, float], tuple[int, ...]]
    horizon: int
    epochs_low: int
    epochs_high: int
    checks: int
    naive: int

    @property
    def on_run(self) -> int:
        """Settings the recorded run answers exactly."""
        return sum(p.fork is None for p in self.placements)

    @property
    def forks(self) -> tuple[int, ...]:
        """The distinct fork epochs of the first-level branches."""
        return tuple(sorted({k for k, _ in self.groups}))

    def seconds(self, epoch_seconds: float, cap: int | None = None) -> float:
        """Estimated training time: (epochs, at most ``cap``, + checks) x ``epoch_seconds``."""
        epochs = self.epochs_high + self.checks
        return (epochs if cap is None else min(cap, epochs)) * epoch_seconds


def plan_root(settings: Sequence[Setting], curves: Curves, *, initial_lr: float,
              horizon: int | None = None) -> RootPlan:  # fmt: skip
    """Where each setting leaves the recorded run, and the first-level branches.

    ``curves`` is the recorded run's metrics (with ``learning_rate``), ``initial_lr``
    the rate it started with, ``horizon`` its epochs (default: the curve's length).

    >>> curves = {"val_loss": [1.0, 0.9, 0.95, 0.97, 0.99], "learning_rate": [0.1] * 5}
    >>> plan = plan_root([Setting(Plateau("val_loss", "min", 0.5, 1))], curves, initial_lr=0.1)
    >>> plan.placements[0], plan.groups
    (Placement(fork=3, rate=0.05000000074505806, stop=None), {(3, 0.05000000074505806): (0,)})

    Raises:
        BranchPlanError: a monitor the run lacks, or no learning_rate column.
    """
    if "learning_rate" not in curves:
        raise BranchPlanError("the run has no learning_rate column; it cannot be branched")
    recorded = curves["learning_rate"]
    horizon = len(recorded) if horizon is None else horizon
    replayer = _Replayer(curves, initial_lr)
    placements = []
    groups: dict[tuple[int, float], list[int]] = {}
    for i, setting in enumerate(settings):
        r = replayer.schedule(setting.plateau)
        fork = first_difference(r.lr, recorded)
        stop = None if setting.stopping is None else replayer.stop(setting.stopping)
        if fork is not None and stop is not None and stop < fork:
            fork = None  # it stops before its schedule leaves the recorded one
        rate = None if fork is None else f32(r.lr[fork])
        placements.append(Placement(fork, rate, stop))
        if fork is not None:
            groups.setdefault((fork, rate), []).append(i)
    ordered = {key: tuple(groups[key]) for key in sorted(groups)}
    low = sum(
        horizon - k if any(settings[i].stopping is None for i in members) else 1
        for (k, _), members in ordered.items()
    )
    distinct = {(settings[i].plateau, placements[i].fork) for m in ordered.values() for i in m}
    high = sum(horizon - k for _, k in distinct)
    return RootPlan(
        settings=tuple(settings),
        placements=tuple(placements),
        groups=ordered,
        horizon=horizon,
        epochs_low=low,
        epochs_high=high,
        checks=len({k for k, _ in ordered}),
        naive=len(settings) * horizon,
    )


# ----------------------------------------------------------------------------------
# the adaptive step


@dataclass(frozen=True)
class Step:
    """Where the settings riding on a branch stand after one of its epochs.

    ``riding``: they need the next epoch, at the live callback's rate. ``done``: they
    need no more epochs (their EarlyStopping stopped, or the run's last epoch is
    reached). ``parted``: they need the next epoch at another rate: a sub-branch per
    ``(next epoch, its rate)``.
    """

    riding: tuple[int, ...]
    done: tuple[int, ...]
    parted: dict[tuple[int, float], tuple[int, ...]] = field(default_factory=dict)


def step(settings: Sequence[Setting], riders: Sequence[int], curves: Curves, epoch: int, *,
         next_rate: float | None, initial_lr: float, horizon: int) -> Step:  # fmt: skip
    """Replay the ``riders`` (indices into ``settings``) over a branch's curve up to
    ``epoch`` and sort them by what they need next.

    ``curves`` holds the branch's whole curve (its parent's rows, then its own) up to
    ``epoch`` at least; ``next_rate`` is the rate the live callback set for
    ``epoch + 1`` (None when ``epoch`` is the run's last).

    >>> s = [Setting(Plateau("val_loss", "min", 0.5, patience)) for patience in (1, 2)]
    >>> curves = {"val_loss": [1.0, 0.9, 0.95], "learning_rate": [0.1, 0.1, 0.1]}
    >>> step(s, [0, 1], curves, 2, next_rate=f32(0.05), initial_lr=0.1, horizon=5)
    Step(riding=(0,), done=(), parted={(3, 0.10000000149011612): (1,)})

    Raises:
        BranchPlanError: a rider whose schedule up to ``epoch`` is not the branch's
            recorded one (it should have parted earlier: a bug, or a damaged branch).
    """
    n = epoch + 1
    prefix = {name: values[:n] for name, values in curves.items()}
    replayer = _Replayer(prefix, initial_lr)
    recorded = prefix.get("learning_rate", ())
    riding: list[int] = []
    done: list[int] = []
    parted: dict[tuple[int, float], list[int]] = {}
    for i in riders:
        setting = settings[i]
        if setting.stopping is not None and replayer.stop(setting.stopping) is not None:
            done.append(i)
            continue
        r = replayer.schedule(setting.plateau)
        differs = first_difference(r.lr, recorded)
        if differs is not None:
            raise BranchPlanError(
                f"{setting.label}: its learning rate at epoch {differs} ({r.lr[differs]!r}) is "
                f"not the branch's ({recorded[differs]!r}); the branch does not answer it"
            )
        if next_rate is None or n >= horizon:
            done.append(i)
        elif f32(r.final_lr) == f32(next_rate):
            riding.append(i)
        else:
            parted.setdefault((n, f32(r.final_lr)), []).append(i)
    return Step(tuple(riding), tuple(done), {k: tuple(v) for k, v in sorted(parted.items())})


def stopped(settings: Sequence[Setting], riders: Sequence[int], curves: Curves, epoch: int
            ) -> tuple[int, ...]:  # fmt: skip
    """The ``riders`` whose EarlyStopping (combined policy) has stopped by ``epoch``.

    >>> s = [Setting(Plateau("val_loss", "min", 0.5, 9), Stopping("val_loss", "min", 1))]
    >>> curves = {"val_loss": [1.0, 0.9, 0.95]}
    >>> stopped(s, [0], curves, 1), stopped(s, [0], curves, 2)
    ((), (0,))
    """
    replayer = _Replayer({k: v[: epoch + 1] for k, v in curves.items()}, 1.0)
    return tuple(
        i for i in riders
        if settings[i].stopping is not None and replayer.stop(settings[i].stopping) is not None
    )  # fmt: skip


# ----------------------------------------------------------------------------------
# outcomes


@dataclass(frozen=True)
class Outcome:
    """What one setting ends with on a curve that is exact for it.

    ``stopped_epoch``: where its EarlyStopping stopped (None: it trained to the end);
    ``final_epoch``: whose weights you end with; ``reductions``: epochs at whose end
    the rate was cut; ``metrics``: every column at ``final_epoch``.
    """

    stopped_epoch: int | None
    final_epoch: int
    reductions: tuple[int, ...]
    metrics: dict[str, float]


def outcome(setting: Setting, curves: Curves, *, initial_lr: float) -> Outcome:
    """The outcome of ``setting`` on ``curves`` (the recorded run's, or a branch's whose
    schedule is the setting's).

    >>> curves = {"val_loss": [1.0, 0.9, 0.95, 0.97], "learning_rate": [0.1] * 4}
    >>> s = Setting(Plateau("val_loss", "min", 0.5, 9), Stopping("val_loss", "min", 1))
    >>> o = outcome(s, curves, initial_lr=0.1)
    >>> o.stopped_epoch, o.final_epoch
    (2, 2)
    """
    replayer = _Replayer(curves, initial_lr)
    n = len(next(iter(curves.values())))
    stop = None if setting.stopping is None else replayer.stop(setting.stopping)
    last = n - 1 if stop is None else stop
    final = last
    if setting.stopping is not None and setting.stopping.restore_best_weights:
        trace = EarlyStoppingTrace(
            curves[setting.stopping.monitor][: last + 1],
            mode=resolve_mode(setting.stopping.monitor, setting.stopping.mode),
            min_delta=setting.stopping.min_delta, baseline=setting.stopping.baseline,
            start_from_epoch=setting.stopping.start_from_epoch,
        )  # fmt: skip
        best = trace.stop_point(setting.stopping.patience)[2]
        final = last if best is None else best
    r = _Replayer({k: v[: last + 1] for k, v in curves.items()}, initial_lr).schedule(
        setting.plateau
    )
    return Outcome(stop, final, tuple(r.reductions), {k: v[final] for k, v in curves.items()})


def heldout_of(monitor: str, columns: Sequence[str]) -> str | None:
    """The held-out column of ``monitor`` (:func:`analysis.names.heldout_column`).

    >>> heldout_of("val_loss", ["val_loss", "test_loss"])
    'test_loss'
    """
    return heldout_column(monitor, columns)
