"""Glue between sweep results and :mod:`analysis.charts.sweep` (matplotlib imported lazily).

Chart files have fixed names in the output folder (``curves.png``, ...); a run's name
(which may hold ``/`` or ``#``) only ever appears in titles.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.results.aggregation import aggregate
from analysis.results.records import (
    EARLY_STOPPING,
    MODEL_CHECKPOINT,
    REDUCE_LR_ON_PLATEAU,
    STOP_POLICIES,
    Oracle,
    format_value,
    monitor_higher_is_better,
)

if TYPE_CHECKING:  # pragma: no cover
    from replay.sweeping.sweep import SweepResult

__all__ = [
    "MAX_CHART_SETTINGS",
    "chart_refusal",
    "draw_run_chart",
    "draw_sweep_charts",
    "run_figure",
]

#: Sweeps whose charts would show more settings than this draw none (a note says so):
#: such a chart is a blur of points, and drawing it takes minutes.
MAX_CHART_SETTINGS = 100_000


def _agg() -> None:
    """Matplotlib's Agg backend, unless pyplot is already in use (a notebook's inline
    backend, a user's window): the charts draw on Agg canvases of their own either way,
    and a library must not switch its caller's backend."""
    import sys

    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")


def _oracle(result: SweepResult, run_name: str, monitor: str) -> Oracle:
    return next(o for o in result.oracles if o["run"] == run_name and o["monitor"] == monitor)


def chart_settings(result: SweepResult) -> int:
    """How many records the sweep charts read (those of the first monitor)."""
    monitor = result.oracles[0]["monitor"] if result.oracles else None
    if monitor is None:
        return 0
    records = result.records.where(monitor=monitor)
    return len(records.where(policy=STOP_POLICIES)) + len(
        records.where(run=result.facts[0].name, policy=REDUCE_LR_ON_PLATEAU)
    )


def chart_refusal(result: SweepResult) -> str | None:
    """Why the sweep charts are not drawn (too many settings to show), or None."""
    n = chart_settings(result)
    if n <= MAX_CHART_SETTINGS:
        return None
    return (f"no charts: they would show {n:,} settings, more than {MAX_CHART_SETTINGS:,}; "
            "narrow the grid to draw them (--no-charts skips them).")  # fmt: skip


def draw_sweep_charts(result: SweepResult, runs, out: Path) -> list[str]:
    """Draw curves.png, early_stopping.png, lr_schedules.png and tradeoff.png into ``out``,
    branches.png when the (first) run has finished branches (``replay branch``), and
    checkpoints.png for ModelCheckpoint settings (``--policy model_checkpoint``).

    One run: that run's charts. Several runs: the aggregate over runs (heatmaps and
    trade-off of means, and spread.png: each run's regret against patience with the mean
    and its spread), and the curves of the first run. Returns the names written.
    """
    jobs = chart_jobs(result, runs, out)
    _render_all(jobs)
    return [path.name for *_, path in jobs]


def chart_jobs(result: SweepResult, runs, out: Path) -> list[tuple]:
    """What :func:`draw_sweep_charts` draws: ``(figure function name, args, kwargs, path)``
    per chart, the data computed and nothing drawn yet.
    """
    _agg()
    from replay.sweeping.run_facts import recorded_lr

    multi = len(runs) > 1
    monitor = result.oracles[0]["monitor"] if result.oracles else None
    if monitor is None:
        return []
    first = runs[0]
    facts = result.facts[0]
    oracle = _oracle(result, facts.name, monitor)
    # Views of the sweep's records (replay.sweeping.blocks.Records): each chart builds the records
    # it reads as it reads them.
    mine = result.records.where(run=facts.name, monitor=monitor)
    stops = mine.where(policy=EARLY_STOPPING)
    all_stops = result.records.where(monitor=monitor, policy=STOP_POLICIES)
    suffix = f" ({facts.name})" if multi else ""

    jobs: list[tuple] = []

    def save(job: tuple, name: str) -> None:
        jobs.append((*job, out / name))

    branches = branch_data(facts, monitor, oracle["heldout"])
    if stops:
        save(
            (
                "curves_figure",
                (first.curves(), monitor, stops),
                {
                    "oracle_epoch": oracle["oracle_epoch"],
                    "heldout": oracle["heldout"],
                    "title": f"{facts.name}: where each EarlyStopping{_rules(stops)} setting "
                    f"stops{suffix}",
                    "branches": branches,
                },
            ),
            "curves.png",
        )
        es_all = all_stops.where(policy=EARLY_STOPPING)
        if multi:
            rows = aggregate(es_all)
            job = (
                "early_stopping_figure",
                (rows,),
                {
                    "value_fields": ("epochs_trained_mean", "regret_mean"),
                    "title": f"EarlyStopping over {len(runs)} runs (means)",
                },
            )
        else:
            job = ("early_stopping_figure", (es_all,),
                   {"title": f"{facts.name}: EarlyStopping{_rules(es_all)} grid"})  # fmt: skip
        save(job, "early_stopping.png")
        spread = spread_job(es_all, len(runs)) if multi else None
        if spread:
            save(spread, "spread.png")
    lrs = mine.where(policy=REDUCE_LR_ON_PLATEAU)
    if lrs:
        save(
            (
                "lr_schedules_figure",
                (lrs,),
                {
                    "recorded_lr": recorded_lr(facts),
                    "title": f"{facts.name}: ReduceLROnPlateau{_rules(lrs)} schedules{suffix}",
                },
            ),
            "lr_schedules.png",
        )
    metric = oracle["heldout"]
    direction = {"higher_is_better": monitor_higher_is_better(all_stops, monitor)}
    if all_stops and metric:
        if multi:
            rows = aggregate(all_stops)
            oracles = [_oracle(result, f.name, monitor) for f in result.facts]
            save(
                (
                    "tradeoff_figure",
                    (rows,),
                    {
                        "full_run_value": _mean([o["last_value"] for o in oracles]),
                        "oracle_value": _mean([o["oracle_value"] for o in oracles]),
                        "metric": metric,
                        **direction,
                        "x_field": "epochs_trained_mean",
                        "metrics_field": "final_metrics_mean",
                        "title": f"Epochs against {metric} over {len(runs)} runs (means)",
                    },
                ),
                "tradeoff.png",
            )
        else:
            save(
                (
                    "tradeoff_figure",
                    (all_stops,),
                    {
                        "full_run_value": oracle["last_value"],
                        "oracle_value": oracle["oracle_value"],
                        "metric": metric,
                        **direction,
                        "title": f"{facts.name}: epochs trained against {metric} at the "
                        "kept checkpoint",
                    },
                ),
                "tradeoff.png",
            )
    if branches:
        metric = oracle["heldout"] or monitor
        run_value = (facts.metrics.get(metric) or [None])[-1] if facts.n_epochs else None
        save(
            (
                "branches_figure",
                (facts.name, facts.n_epochs, run_value, branches),
                {"metric": metric, **direction},
            ),
            "branches.png",
        )
    checkpoints = checkpoint_job(mine, first, oracle, runs)
    if checkpoints:
        save(checkpoints, "checkpoints.png")
    return jobs


def _rules(records) -> str:
    """`` (lightning dialect)`` for records replayed in another framework's rules than
    Keras 3's, ``""`` for Keras's (or none)."""
    first = next(iter(records), None)
    dialect = first.get("dialect") if first is not None else None
    return f" ({dialect} dialect)" if dialect and dialect != "keras" else ""


def checkpoint_job(mine, run, oracle: Oracle, runs) -> tuple | None:
    """The ``checkpoints.png`` job for the ModelCheckpoint records among ``mine`` (one
    run's, one monitor's), or None where there are none. Several runs: the first run's,
    the title says so (the table has every run)."""
    records = [dict(r) for r in mine.where(policy=MODEL_CHECKPOINT)]
    if not records:
        return None
    dialect = records[0].get("dialect")
    rules = " (Keras 2 rules: tf-keras dialect)" if dialect else ""
    of = f" (first of {len(runs)} runs)" if len(runs) > 1 else ""
    return (
        "checkpoints_figure",
        (run.curves(), oracle["monitor"], records),
        {
            "oracle_epoch": oracle["oracle_epoch"],
            "heldout": oracle["heldout"],
            "title": f"{oracle['run']}{of}: the epochs ModelCheckpoint{rules} saves "
            "and the file you end with",
        },
    )


def spread_job(es, n_runs: int) -> tuple | None:
    """The ``spread.png`` job of a sweep of several runs: the EarlyStopping records
    (``es``, one monitor's, every run's) of the grid's default-like slice (the least
    min_delta and start_from_epoch, no baseline, as the verdict reads), regret against
    patience; None where no record of the slice has a regret."""
    if not es:
        return None
    chosen = {"min_delta": min(v for b in es.blocks for v in b.values_of("min_delta")),
              "start_from_epoch": min(v for b in es.blocks
                                      for v in b.values_of("start_from_epoch")),
              "baseline": None}  # fmt: skip
    where = {k: (lambda v, want=want: v == want) for k, want in chosen.items()}
    records = [b[i] for b in es.blocks for i in b.select(where)]
    if not any(r["regret"] is not None for r in records):
        return None
    more = {k for b in es.blocks for k in chosen if len(set(map(str, b.values_of(k)))) > 1}
    note = ""
    if more:
        shown = ", ".join(f"{k} {format_value(chosen[k])}" for k in sorted(more))
        note = f"Settings with {shown}; every setting is in aggregate.csv."
    monitor = es.blocks[0].monitor
    title = f"EarlyStopping on {monitor} over {n_runs} runs: regret of each run and the mean"
    return ("spread_figure", (records,), {"title": title, "note": note})


def branch_data(facts, monitor: str, heldout: str | None) -> list[dict]:
    """The run's finished branches as the plain dicts :mod:`analysis.charts.sweep` draws:
    ``{"id" (directory name), "parent" (a branch id, or None for the run), "fork_epoch",
    "n_epochs", "metrics": {column: [values]} (``monitor`` and ``heldout``), "value"
    (the held-out metric, else the monitor, at the branch's last epoch)}``.
    """
    log = getattr(facts, "log", None)
    found = getattr(facts, "branches", None) or []
    if not found or log is None or log.root is None:
        return []
    ids = {b.path: b.path.name for b in found}
    try:
        root = Path(log.root).resolve()  # as find_branches resolves each branch's parent
    except (OSError, RuntimeError):
        root = Path(log.root).absolute()
    metric = heldout or monitor
    out = []
    for b in found:
        columns = set(b.run.columns)
        metrics = {c: b.run.values(c) for c in dict.fromkeys((monitor, heldout)) if c in columns}
        values = metrics.get(metric) or []
        out.append(
            {
                "id": b.path.name,
                "parent": None if b.parent == root else ids.get(b.parent, str(b.parent)),
                "fork_epoch": b.fork_epoch,
                "n_epochs": b.run.n_epochs,
                "metrics": metrics,
                "value": values[-1] if values else None,
            }
        )
    return out


#: True in a forked drawing worker (:func:`_render_all`), which exits when the charts
#: are drawn: its figures need no clearing after they are saved.
_IN_WORKER = False


def _mark_worker() -> None:
    global _IN_WORKER
    _IN_WORKER = True


def _render(job: tuple) -> None:
    from analysis.charts import sweep as charts

    name, args, kwargs, path = job
    charts.save_figure(getattr(charts, name)(*args, **kwargs), path, clear=not _IN_WORKER)


#: Libraries whose threads make a fork unsafe (a lock held by one of them stays held in
#: the child forever): a process that has loaded one draws in process. ``replay sweep``
#: loads none; a Python session or a test process may have.
_FORK_UNSAFE = ("tensorflow", "ray", "grpc", "torch")


def _render_all(jobs: list[tuple]) -> None:
    """Render the charts, two at a time in forked workers where the machine has 2+ cores.

    Drawing is CPU-bound matplotlib work; forking after matplotlib is imported
    costs a few milliseconds and halves the wall time on two cores. Where forking is
    unsafe (:data:`_FORK_UNSAFE`) or a worker dies, the charts are drawn in process: a
    worker's death never leaves the command waiting (a ``multiprocessing.Pool`` would
    wait forever).
    """
    import multiprocessing
    import sys

    workers = min(len(jobs), os.cpu_count() or 1, 4)
    if (
        workers < 2
        or "fork" not in multiprocessing.get_all_start_methods()
        or any(name in sys.modules for name in _FORK_UNSAFE)
    ):
        for job in jobs:
            _render(job)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Import what drawing needs once, before forking, so workers don't each import it.
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.collections  # noqa: F401
    import matplotlib.figure  # noqa: F401

    try:
        with ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_mark_worker
        ) as pool:
            list(pool.map(_render, jobs))
    except BrokenProcessPool:  # a worker died (killed, crashed): draw them here
        for job in jobs:
            _render(job)


def _mean(values):
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def draw_run_chart(run, path: Path) -> None:
    """The recorded curves of one log (``replay show --chart``), no policy marks."""
    from analysis.charts import sweep as charts

    charts.save_figure(run_figure(run), path)


def run_figure(run):
    """The recorded curves of one log as a matplotlib Figure, no policy marks."""
    _agg()
    from analysis.charts import sweep as charts
    from replay.sweeping.run_facts import RunFacts

    facts = RunFacts.from_runlog(run)
    monitor = "val_loss" if "val_loss" in facts.metrics else facts.columns[0]
    heldout = facts.heldout_for(monitor)
    return charts.curves_figure(
        run.curves(), monitor, [], oracle_epoch=None, heldout=heldout, title=f"{run.name}"
    )
