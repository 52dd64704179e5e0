"""Replay one or more logs through grids of policy settings.

:func:`sweep` returns one record (a JSON-able dict) per (run, policy, setting),
with the fields listed in docs/sweep-output.md, kept as compact blocks
(:mod:`replay.sweeping.blocks`): per setting only the index of its outcome. The work that does
not depend on a setting (improvement traces, per-epoch metrics, regrets) is done once
per run and shared, so a grid of a million settings over a 100-epoch curve takes a
second or two and a few megabytes.

:meth:`Grid.check` refuses, before any work, a grid whose sweep would not fit in the
memory available (:meth:`Grid.memory_needed`), unless ``--max-settings`` says otherwise.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from analysis.names import base_name
from analysis.reading.gcpause import gc_paused
from analysis.results.records import (
    ABSOLUTE,
    COMBINED,
    EARLY_STOPPING,
    MODEL_CHECKPOINT,
    PRECHELT,
    REDUCE_LR_ON_PLATEAU,
    RELATIVE,
    LrScale,
    Oracle,
    PlateauRecord,
    PrecheltParams,
    PrecheltRecord,
    StopOutcome,
    StopRecord,
)
from replay.engine.dialects import never_finite_note
from replay.engine.policies import (
    Curve,
    EarlyStoppingTrace,
    PlateauTrace,
    PrecheltTrace,
    resolve_mode,
)
from replay.engine.rates import counterfactual_from
from replay.sweeping.blocks import CONST, Block, Records
from replay.sweeping.grid import DEFAULT_GRID, Grid
from replay.sweeping.lr_alignment import align_lr
from replay.sweeping.run_facts import (
    RunFacts,
    check_shadow,
    checkpoint_files,
    initial_lr_for,
    recorded_lr,
    regrets_of,
)

__all__ = [
    "DEFAULT_GRID",
    "Grid",
    "RunFacts",
    "SweepResult",
    "check_shadow",
    "sweep",
]


@dataclass
class SweepResult:
    """Records plus what a reader of them should know (types: :mod:`analysis.results.records`).

    ``records`` is a :class:`replay.sweeping.blocks.Records`: a sequence of record dicts kept as
    compact blocks, each record built when read.
    """

    records: Records
    oracles: list[Oracle]
    notes: list[str]
    facts: list[RunFacts]


def sweep(runs: Iterable, grid: Grid = DEFAULT_GRID) -> SweepResult:
    """Replay every run through every setting of ``grid``.

    ``runs`` are :class:`analysis.reading.logs.RunLog` objects (or :class:`RunFacts`).

    Raises:
        MissingMetric: a monitor (or the training counterpart Prechelt needs) is absent.
        PolicyError: an invalid parameter, or a mode that cannot be inferred.
    """
    with gc_paused():  # tens of thousands of cycle-free dicts
        return _sweep(runs, grid)


def _sweep(runs: Iterable, grid: Grid) -> SweepResult:
    blocks: list[Block] = []
    oracles: list[Oracle] = []
    notes: list[str] = []
    all_facts: list[RunFacts] = []
    for run in runs:
        trial = _trial_fields(run)
        first = len(blocks)
        if not isinstance(run, RunFacts):
            # A TensorBoard learning rate whose epochs the log left open is aligned by
            # the ReduceLROnPlateau settings that reproduce it (replay/sweeping/lr_alignment.py).
            run = align_lr(run, grid.monitors_of(run), grid.lr_min_delta, grid.mode)
        facts = run if isinstance(run, RunFacts) else RunFacts.from_runlog(run)
        all_facts.append(facts)
        rows = facts.epoch_rows()
        for monitor in grid.monitors_of(facts):
            values = facts.values(monitor)
            nan_note = never_finite_note(facts.name, {monitor: values}, grid.dialect)
            if nan_note:
                notes.append(nan_note)
            mode = resolve_mode(monitor, grid.mode, facts.directions)
            column = facts.column(monitor)
            if column != monitor:
                notes.append(f"{facts.name}: --monitor {monitor} reads its column {column}.")
            heldout = facts.heldout_for(monitor)
            if heldout is None:
                regrets, oracle = [None] * facts.n_epochs, None
                notes.append(f"{facts.name}: no held-out metric for {monitor}; regret unknown.")
            else:
                if heldout.startswith("val_") or heldout == column:
                    notes.append(
                        f"{facts.name}: no test metrics in the log; regret for {monitor} "
                        f"uses {heldout} (the metric the policy watched)."
                    )
                regrets, oracle = regrets_of(facts.values(heldout), resolve_mode(heldout, mode))
            oracles.append(
                {
                    "run": facts.name,
                    "monitor": monitor,
                    "heldout": heldout,
                    "oracle_epoch": oracle,
                    "oracle_value": None if oracle is None else rows[oracle].get(heldout),
                    "last_epoch": facts.n_epochs - 1,
                    "last_value": rows[-1].get(heldout) if rows and heldout else None,
                }
            )
            best = oracles[-1]["oracle_value"]
            ctx = _Context(facts, monitor, mode, heldout, regrets, rows, best)
            curve = Curve(values)
            for policy in grid.policies:
                if policy == MODEL_CHECKPOINT:
                    blocks.append(_listed(_sweep_model_checkpoint(ctx, values, grid)))
                elif grid.dialect != "keras":
                    blocks.append(_listed(_sweep_dialect(ctx, policy, values, grid, notes)))
                elif policy == EARLY_STOPPING:
                    blocks.append(_sweep_early_stopping(ctx, curve, grid))
                elif policy == REDUCE_LR_ON_PLATEAU:
                    blocks.append(_listed(_sweep_plateau(ctx, curve, grid, notes)))
                elif policy == COMBINED:
                    blocks.append(_sweep_combined(ctx, curve, grid, notes))
                else:
                    blocks.append(_listed(_sweep_prechelt(ctx, values, grid, notes)))
        if trial is not None:  # a study's trial: its fields end each of its records
            for b in blocks[first:]:
                if b is not None:
                    b.outcomes = [{**o, **trial} for o in b.outcomes]
    return SweepResult(records=Records(b for b in blocks if b is not None), oracles=oracles,
                       notes=_unique(notes), facts=all_facts)  # fmt: skip


def _trial_fields(run) -> dict | None:
    """The fields of a study's trial (:class:`analysis.results.records.TrialFields`) for a run
    read from a study (:meth:`analysis.formats.studylog.StudyLog.runs`), else None."""
    log = run.log if isinstance(run, RunFacts) else run
    return getattr(log, "trial", None)


def _sweep_dialect(ctx: _Context, policy: str, values, grid: Grid, notes: list[str]) -> list:
    """``policy`` in ``grid``'s dialect (:mod:`replay.sweeping.dialect_sweep`): ready-made
    records."""
    from replay.sweeping.dialect_sweep import sweep_dialect_early_stopping, sweep_dialect_plateau

    if policy == EARLY_STOPPING:
        return sweep_dialect_early_stopping(ctx, values, grid)
    initial, recorded, scale, min_lrs = _lr_start(ctx, grid, notes)
    return sweep_dialect_plateau(ctx, values, grid, initial, recorded, scale, min_lrs)


def _sweep_model_checkpoint(ctx: _Context, values, grid: Grid) -> list:
    """ModelCheckpoint's settings (:func:`replay.sweeping.dialect_sweep.sweep_model_checkpoint`)."""
    from replay.sweeping.dialect_sweep import sweep_model_checkpoint

    return sweep_model_checkpoint(ctx, values, grid)


def _listed(records: list) -> Block | None:
    """A block of ready-made records (a small grid's: ReduceLROnPlateau, Prechelt)."""
    return Block.from_records(records) if records else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass
class _Context:
    facts: RunFacts
    monitor: str
    mode: str
    heldout: str | None
    regrets: list[float | None]
    rows: list[dict]
    oracle_value: float | None = None  # the best held-out value over the recorded epochs

    def root_outcome(self, cf: int | None) -> dict:
        """Outcome fields of a ReduceLROnPlateau setting answered by the run itself.

        Exact (``cf`` None: the run's own rates are this schedule's): you end with the
        last epoch. Otherwise unknown: the run went on under other rates.
        """
        last = self.facts.n_epochs - 1
        if cf is not None or last < 0:
            return {"final_epoch": None, "final_metrics": None, "regret": None,
                    "checkpoint": None, "branch": None}  # fmt: skip
        return {
            "final_epoch": last,
            "final_metrics": self.rows[last],
            "regret": self.regrets[last],
            "checkpoint": self.facts.checkpoints.get(last),
            "branch": None,
        }

    def head(self, policy: str) -> dict:
        """The fields before ``params`` of this run's records of ``policy``."""
        return {"run": self.facts.name, "source": self.facts.source, "policy": policy}

    def stop_record(
        self, policy: str, params: PrecheltParams, stop: int | None, last: int,
        best: int | None, final: int | None,
    ) -> StopRecord:  # fmt: skip
        """A stop-policy record; ``last`` is the last trained epoch (-1 for an empty log)."""
        return {**self.head(policy), "params": params,  # type: ignore[typeddict-item]
                **self.stop_outcome(stop, last, best, final)}  # fmt: skip

    def stop_outcome(
        self, stop: int | None, last: int, best: int | None, final: int | None
    ) -> StopOutcome:
        """The fields after ``params`` of a stop-policy record (see :meth:`stop_record`)."""
        return {
            "stopped": stop is not None,
            "stopped_epoch": stop,
            "epochs_trained": last + 1,
            "best_epoch": best,
            "final_epoch": final,
            "checkpoint": None if final is None else self.facts.checkpoints.get(final),
            "censored": stop is None,
            "final_metrics": {} if final is None else self.rows[final],
            "regret": None if final is None else self.regrets[final],
            "regret_metric": self.heldout,
        }


#: EarlyStopping's parameters in record order, each with the axis of the sweep's blocks
#: that holds it: (min_delta, baseline, start_from_epoch) combinations, patience,
#: restore_best_weights. The combined policy puts the LR settings first (axis 0).
_ES_PARAMS = (("monitor", CONST), ("mode", CONST), ("min_delta", 0), ("patience", 1),
              ("baseline", 0), ("restore_best_weights", 2), ("start_from_epoch", 0))  # fmt: skip


def _es_axes(grid: Grid) -> tuple[list[dict], list[dict], list[dict]]:
    """The EarlyStopping axes of ``grid``: trace settings, patiences, restores."""
    from replay.engine.policies import check_int

    traces = [{"min_delta": d, "baseline": b, "start_from_epoch": s} for d, b, s in
              itertools.product(grid.min_delta, grid.baseline, grid.start_from_epoch)]  # fmt: skip
    patiences = [{"patience": check_int("patience", p)} for p in grid.patience]
    restores = [{"restore_best_weights": bool(r)} for r in grid.restore_best_weights]
    return traces, patiences, restores


def _es_trace(values, mode: str, setting: dict) -> EarlyStoppingTrace:
    return EarlyStoppingTrace(values, mode=mode, min_delta=setting["min_delta"],
                              baseline=setting["baseline"],
                              start_from_epoch=setting["start_from_epoch"])  # fmt: skip


def _sweep_early_stopping(ctx: _Context, values, grid: Grid) -> Block:
    """Every EarlyStopping setting, as a block: per setting only its outcome's index.

    Outcomes are told apart by (stop, last trained, best, kept epoch): on a curve of n
    epochs, at most 2(n + 1) per (min_delta, baseline, start_from_epoch), and in
    practice a few dozen in all, however large the grid.
    """
    traces, patiences, restores = _es_axes(grid)
    flags = [r["restore_best_weights"] for r in restores]
    outcomes = _Outcomes()
    known: dict[tuple, tuple[int, ...]] = {}  # (stop, last, best) -> an outcome per flag
    ids = array("I")
    for setting in traces:
        trace = _es_trace(values, ctx.mode, setting)
        for p in patiences:
            point = trace.stop_point(p["patience"])
            pair = known.get(point)
            if pair is None:
                finals = [_kept(point[1], point[2], r) for r in flags]
                pair = known[point] = tuple(
                    outcomes.add((*point, f), ctx.stop_outcome, *point, f) for f in finals
                )
            ids.extend(pair)
    const = {"monitor": ctx.monitor, "mode": ctx.mode}
    return Block(ctx.head(EARLY_STOPPING), ctx.monitor, _ES_PARAMS, const,
                 (traces, patiences, restores), outcomes.values, _ids(ids))  # fmt: skip


def _kept(last: int, best: int | None, restore: bool) -> int | None:
    """The epoch whose weights EarlyStopping leaves (None for an empty log)."""
    return None if last < 0 else (best if restore and best is not None else last)


class _Outcomes:
    """Distinct outcomes of a block, each built once: :meth:`add` returns its index."""

    def __init__(self) -> None:
        self.values: list[dict] = []
        self._index: dict[tuple, int] = {}

    def add(self, key: tuple, build, *args) -> int:
        """The index of the outcome told apart by ``key``; ``build(*args)`` if new."""
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.values)
            self.values.append(build(*args))
        return i


def _ids(ids: array) -> np.ndarray:
    return np.frombuffer(ids, dtype=np.dtype(f"u{ids.itemsize}")) if ids else np.zeros(0)


def _lr_start(ctx: _Context, grid: Grid, notes: list[str]):
    """A ReduceLROnPlateau sweep's initial rate, recorded rates, scale and usable
    ``min_lr`` values (with notes when the log has no learning rate)."""
    initial = initial_lr_for(ctx.facts, grid.initial_lr)
    recorded = recorded_lr(ctx.facts)
    scale: LrScale = ABSOLUTE
    min_lrs = grid.min_lr
    if initial is None:
        scale = RELATIVE
        notes.append(
            f"{ctx.facts.name}: the log has no learning rate; ReduceLROnPlateau schedules "
            "are shown as multiples of the initial rate (x initial), and the log is taken "
            "to have run at a constant rate (--initial-lr gives absolute rates)."
        )
        min_lrs = tuple(m for m in grid.min_lr if m == 0)
        if len(min_lrs) < len(grid.min_lr):
            skipped = ", ".join(f"{m:g}" for m in grid.min_lr if m != 0)
            notes.append(
                f"{ctx.facts.name}: min_lr {skipped} needs an absolute rate; those settings "
                "are skipped (pass --initial-lr to replay them)."
            )
    return initial, recorded, scale, min_lrs


def _sweep_plateau(ctx: _Context, values, grid: Grid, notes: list[str]) -> list[PlateauRecord]:
    initial, recorded, scale, min_lrs = _lr_start(ctx, grid, notes)
    out: list[PlateauRecord] = []
    tree = _Tree(ctx) if ctx.facts.branches else None
    for min_delta in grid.lr_min_delta:
        trace = PlateauTrace(values, mode=ctx.mode, min_delta=min_delta)
        for factor, patience, cooldown, min_lr in itertools.product(
            grid.factor, grid.lr_patiences, grid.cooldown, min_lrs
        ):
            setting = {
                "initial_lr": 1.0 if initial is None else initial,
                "factor": factor,
                "patience": patience,
                "cooldown": cooldown,
                "min_lr": min_lr,
            }
            r = trace.decide(**setting)
            cf = counterfactual_from(r.lr, r.reductions, recorded)
            if tree is not None and cf is not None:
                coverage = tree.follow(min_delta, setting, r)
                lr, reductions, final_lr = coverage.lr, coverage.reductions, coverage.final_lr
                cf, outcome = coverage.counterfactual_from, tree.outcome(coverage)
            else:
                lr, reductions, final_lr = r.lr, r.reductions, r.final_lr
                outcome = ctx.root_outcome(cf)
            out.append(
                {
                    "run": ctx.facts.name,
                    "source": ctx.facts.source,
                    "policy": REDUCE_LR_ON_PLATEAU,
                    "params": {
                        "monitor": ctx.monitor,
                        "mode": ctx.mode,
                        "factor": factor,
                        "patience": patience,
                        "min_delta": min_delta,
                        "cooldown": cooldown,
                        "min_lr": min_lr,
                        "initial_lr": initial,
                    },
                    "lr_scale": scale,
                    "lr": list(lr),
                    "reductions": list(reductions),
                    "final_lr": final_lr,
                    "counterfactual_from": cf,
                    **outcome,
                }
            )
    return out


#: The combined policy's parameters in record order: EarlyStopping's (its axes shifted
#: by one), then the LR setting's (axis 0).
_COMBINED_PARAMS = tuple((k, a if a == CONST else a + 1) for k, a in _ES_PARAMS) + tuple(
    (k, 0) for k in ("factor", "lr_patience", "lr_min_delta", "cooldown", "min_lr", "initial_lr")
)


def _sweep_combined(ctx: _Context, values, grid: Grid, notes: list[str]) -> Block | None:
    """EarlyStopping and ReduceLROnPlateau in one fit: every pair of settings, as a block
    whose axes are the LR settings, then EarlyStopping's.

    The EarlyStopping replays on the curve the LR setting produced: the run's, or the
    branch that answers it (:func:`replay.sweeping.branches.follow`). Its decision is exact when
    it stops before the first epoch no recorded curve saw under this schedule
    (``counterfactual_from``: training ends before the schedules part), or when the
    schedule is exact to the run's end; otherwise the outcome is unknown and the record
    says from which epoch.
    """
    from replay.sweeping.branches import walk_tree

    lr_records = _sweep_plateau(ctx, values, grid, notes)  # the schedules, and their notes
    tree = _Tree(ctx)
    root = ctx.facts.log
    traces, patiences, restores = _es_axes(grid)
    flags = [r["restore_best_weights"] for r in restores]
    lr_axis = []
    outcomes = _Outcomes()
    ids = array("I")
    for i, lr_rec in enumerate(lr_records):
        lp = lr_rec["params"]
        lr_axis.append({"factor": lp["factor"], "lr_patience": lp["patience"],
                        "lr_min_delta": lp["min_delta"], "cooldown": lp["cooldown"],
                        "min_lr": lp["min_lr"], "initial_lr": lp["initial_lr"]})  # fmt: skip
        setting = {"initial_lr": 1.0 if lp["initial_lr"] is None else lp["initial_lr"],
                   "factor": lp["factor"], "patience": lp["patience"],
                   "cooldown": lp["cooldown"], "min_lr": lp["min_lr"]}  # fmt: skip
        node, walked, limit = root, (), lr_rec["counterfactual_from"]
        if root is not None and ctx.facts.branches:
            on_root = PlateauTrace(values, mode=ctx.mode, min_delta=lp["min_delta"]).decide(
                **setting)  # fmt: skip
            coverage = walk_tree(tree.decider(lp["min_delta"], setting, on_root), root,
                             ctx.facts.branches, 1000)  # fmt: skip
            node, walked, limit = coverage.node, coverage.branches, coverage.counterfactual_from
        node_facts = tree.facts_of(node)
        known = limit if limit is not None else node_facts.n_epochs
        complete = limit is None and node_facts.n_epochs == ctx.facts.n_epochs
        for es_setting in traces:
            trace = tree.es_trace(node_facts, es_setting)
            for p in patiences:
                stop, last, best = trace.stop_point(p["patience"])
                exact = (stop is not None and stop < known) or complete
                for restore in flags:
                    key = (i, stop, last, best, _kept(last, best, restore)) if exact else (i,)
                    ids.append(
                        outcomes.add(
                            key,
                            tree.combined_outcome,
                            lr_rec,
                            node_facts,
                            walked,
                            exact,
                            known,
                            stop,
                            last,
                            best,
                            restore,
                        )
                    )
    if not ids:
        return None
    const = {"monitor": ctx.monitor, "mode": ctx.mode}
    return Block(ctx.head(COMBINED), ctx.monitor, _COMBINED_PARAMS, const,
                 (lr_axis, traces, patiences, restores), outcomes.values, _ids(ids))  # fmt: skip


class _Tree:
    """A run's branches, walked for each ReduceLROnPlateau setting (replay/sweeping/branches.py).

    Traces are built once per (node, min_delta), checkpoints once per node.
    """

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.traces: dict[tuple[int, float], PlateauTrace] = {}
        self.checkpoints: dict[int, dict[int, str]] = {}
        self.node_facts: dict[int, RunFacts] = {}
        self.node_rows: dict[int, list[dict]] = {}
        self.es_traces: dict[tuple, EarlyStoppingTrace] = {}
        self.schedules: dict[tuple[int, int], tuple[list, list]] = {}

    def decider(self, min_delta: float, setting: dict, on_root):
        """``decide(node)`` for :func:`replay.sweeping.branches.follow`: the setting on a node."""
        root = self.ctx.facts.log

        def decide(node):
            if node is root:
                return on_root
            key = (id(node), min_delta)
            if key not in self.traces:
                values = node.values(self.ctx.monitor)
                self.traces[key] = PlateauTrace(values, mode=self.ctx.mode, min_delta=min_delta)
            return self.traces[key].decide(**setting)

        return decide

    def follow(self, min_delta: float, setting: dict, on_root):
        from replay.sweeping.branches import follow

        decide = self.decider(min_delta, setting, on_root)
        coverage = follow(decide, self.ctx.facts.log, self.ctx.facts.branches)
        final = decide(coverage.node).final_lr
        return _Covered(coverage, final)

    def facts_of(self, node) -> RunFacts:
        """The run's facts for the run itself (or a RunFacts sweep), a branch's else."""
        if node is None or node is self.ctx.facts.log:
            return self.ctx.facts
        if id(node) not in self.node_facts:
            self.node_facts[id(node)] = RunFacts.from_runlog(node)
        return self.node_facts[id(node)]

    def es_trace(self, facts: RunFacts, setting: dict) -> EarlyStoppingTrace:
        """EarlyStopping's trace of ``setting`` (an axis value of :func:`_es_axes`) on
        the monitor's curve of ``facts``."""
        key = (id(facts), setting["min_delta"], setting["baseline"], setting["start_from_epoch"])
        if key not in self.es_traces:
            self.es_traces[key] = _es_trace(Curve(facts.values(self.ctx.monitor)), self.ctx.mode,
                                            setting)  # fmt: skip
        return self.es_traces[key]

    def rows_of(self, facts: RunFacts) -> list[dict]:
        """Each epoch's metrics of the run (shared with the context) or of a branch."""
        if facts is self.ctx.facts:
            return self.ctx.rows
        if id(facts) not in self.node_rows:
            self.node_rows[id(facts)] = facts.epoch_rows()
        return self.node_rows[id(facts)]

    def combined_outcome(self, lr_rec, facts: RunFacts, walked, exact: bool, known: int,
                         stop, last, best, restore: bool) -> dict:  # fmt: skip
        """The fields after ``params`` of a combined record (see :func:`_sweep_combined`)."""
        ctx = self.ctx
        if not exact:
            outcome = {"stopped": False, "stopped_epoch": None, "epochs_trained": known,
                       "best_epoch": None, "final_epoch": None, "checkpoint": None,
                       "censored": True, "final_metrics": None, "regret": None}  # fmt: skip
            trained = known
        else:
            final = best if restore and best is not None else last
            rows = self.rows_of(facts)
            if facts is ctx.facts:
                regret = ctx.regrets[final] if final >= 0 else None
            else:  # a branch's epoch, against the best epoch the run recorded
                value = rows[final].get(ctx.heldout) if ctx.heldout else None
                regret = None
                if value is not None and ctx.oracle_value is not None:
                    regret = (value - ctx.oracle_value if ctx.mode == "min"
                              else ctx.oracle_value - value)  # fmt: skip
            outcome = {"stopped": stop is not None, "stopped_epoch": stop,
                       "epochs_trained": last + 1, "best_epoch": best, "final_epoch": final,
                       "checkpoint": facts.checkpoints.get(final), "censored": stop is None,
                       "final_metrics": rows[final] if final >= 0 else {},
                       "regret": regret}  # fmt: skip
            trained = last + 1
        rates = lr_rec["lr"]
        key = (id(lr_rec), trained)  # outcomes that train as long share the schedule
        if key not in self.schedules:
            cuts = [e for e in lr_rec["reductions"] if e < trained - 1]
            self.schedules[key] = (list(rates[:trained]), cuts)
        lr, cuts = self.schedules[key]
        return {
            **outcome,
            "regret_metric": ctx.heldout,
            "lr_scale": lr_rec["lr_scale"],
            "lr": lr,
            "reductions": cuts,
            "final_lr": rates[trained - 1] if trained else None,
            "counterfactual_from": None if exact else known,
            "branch": walked[-1].path.name if walked else None,
        }

    def outcome(self, covered: _Covered) -> dict:
        from replay.sweeping.branches import plateau_outcome

        def checkpoints_of(node):
            if id(node) not in self.checkpoints:
                self.checkpoints[id(node)] = checkpoint_files(node)
            return self.checkpoints[id(node)]

        oracle = self.ctx.oracle_value
        return plateau_outcome(covered.coverage, self.ctx.heldout, self.ctx.mode, oracle,
                               checkpoints_of)  # fmt: skip


@dataclass(frozen=True)
class _Covered:
    coverage: object
    final_lr: float

    @property
    def lr(self):
        return self.coverage.lr

    @property
    def reductions(self):
        return self.coverage.reductions

    @property
    def counterfactual_from(self):
        return self.coverage.counterfactual_from


def _sweep_prechelt(ctx: _Context, values, grid: Grid, notes: list[str]) -> list[PrecheltRecord]:
    train_name = base_name(ctx.monitor)
    train = ctx.facts.values(train_name) if train_name in ctx.facts.metrics else None
    error = ctx.monitor
    if ctx.mode == "max":
        # Prechelt's criteria are defined for errors: convert explicitly and say so.
        error = f"1 - {ctx.monitor}"
        values = [None if v is None else 1.0 - v for v in values]
        train = None if train is None else [None if v is None else 1.0 - v for v in train]
        notes.append(f"{ctx.facts.name}: Prechelt's criteria use {error} as the error.")
    if train is None and grid.pq_alpha:
        notes.append(f"{ctx.facts.name}: no {train_name} column; Prechelt's PQ is skipped.")
    out = []
    for k in grid.strip_length:
        trace = PrecheltTrace(values, train, strip_length=k)
        runs = [("gl", a, None, trace.gl_alpha) for a in grid.gl_alpha]
        if train is not None:
            runs += [("pq", a, None, trace.pq_alpha) for a in grid.pq_alpha]
        runs += [("up", None, s, trace.up_s) for s in grid.up_strips]
        for criterion, alpha, strips, fn in runs:
            params: PrecheltParams = {
                "criterion": criterion,
                "alpha": alpha,
                "strips": strips,
                "strip_length": k,
                "monitor": ctx.monitor,
                "error": error,
            }
            r = fn(alpha if strips is None else strips)
            last = r.epochs_trained - 1
            out.append(
                ctx.stop_record(PRECHELT, params, r.stopped_epoch, last, r.best_epoch,
                                r.final_epoch)
            )  # fmt: skip
    return out


# ----------------------------------------------------------------------------------
# Shadow agreement: the real Keras callbacks that watched a recorded run.
