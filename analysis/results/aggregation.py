"""Statistics over runs: one row per setting across several runs (:func:`aggregate`),
the bootstrap interval of a mean (:func:`bootstrap_interval`) and each run's least
regret (:func:`run_best_regrets`), over sweep records (:mod:`analysis.results.records`)."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from analysis.results.records import (
    AggregateRow,
    freeze,
    is_missing,
)

__all__ = [
    "BOOTSTRAP_LEVEL",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "aggregate",
    "bootstrap_interval",
    "run_best_regrets",
]


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if not is_missing(v)]
    return sum(vals) / len(vals) if vals else None


#: The interval of a mean over runs (:func:`bootstrap_interval`): the percentile
#: bootstrap with this many resamples of the runs, drawn by
#: ``numpy.random.default_rng(BOOTSTRAP_SEED)``, at this level.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
BOOTSTRAP_LEVEL = 0.95


@functools.lru_cache(maxsize=64)
def _resamples(n: int, resamples: int, seed: int):
    """Indices of ``resamples`` draws of ``n`` runs with replacement, shape (resamples, n)."""
    import numpy as np

    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    draws.setflags(write=False)
    return draws


@functools.lru_cache(maxsize=4096)
def _interval(values: tuple[float, ...], resamples: int, seed: int, level: float):
    import numpy as np

    means = np.asarray(values)[_resamples(len(values), resamples, seed)].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(
    values: Iterable[Any],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = BOOTSTRAP_LEVEL,
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the mean of ``values`` (missing ones skipped),
    as ``(low, high)``; None for fewer than two values.

    Deterministic: ``resamples`` draws of as many values as there are, with replacement,
    from ``numpy.random.default_rng(seed)`` (the same draws for every call with as many
    values, so the interval depends only on the values and their order); the mean of
    each draw; their ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (numpy's
    default linear interpolation).

    >>> bootstrap_interval([0.0, 0.0, 0.0]), bootstrap_interval([1.0])
    ((0.0, 0.0), None)
    >>> low, high = bootstrap_interval([0.0, 0.1, 0.2, 0.3]); 0.0 <= low < 0.15 < high <= 0.3
    True
    """
    vals = tuple(float(v) for v in values if not is_missing(v))
    if len(vals) < 2:
        return None
    return _interval(vals, resamples, seed, level)


def run_best_regrets(records: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, Any], float]:
    """The least regret of each (run, monitor) over ``records``: what "among the run's
    best" is measured against (records with missing regret are skipped).

    >>> run_best_regrets([{"run": "a", "params": {"monitor": "m"}, "regret": v}
    ...                   for v in (0.2, 0.1, None)])
    {('a', 'm'): 0.1}
    """
    best: dict[tuple[Any, Any], float] = {}
    for r in records:
        v = r.get("regret")
        if is_missing(v):
            continue
        key = (r.get("run"), (r.get("params") or {}).get("monitor"))
        if key not in best or float(v) < best[key]:
            best[key] = float(v)
    return best


def aggregate(
    records: Sequence[Mapping[str, Any]],
    fields: Sequence[str] = ("epochs_trained", "regret"),
    run_best: Mapping[tuple[Any, Any], float] | None = None,
) -> list[AggregateRow]:
    """One row per (policy, params) across runs: mean, worst and spread of ``fields``.

    Each row: ``policy``, ``params``, ``runs`` (records folded), ``run_names``,
    ``censored_runs`` (how many never stopped), ``regret_metric`` (when all agree,
    else None), ``final_metrics_mean`` (per metric, over runs that have it), and per
    field ``<field>_mean``, ``<field>_worst`` (the maximum: for epochs trained and
    regret, larger is worse) and ``<field>_spread`` (max - min). Missing values (None,
    NaN) are skipped; a field with no value gives None for all three. Rows keep the
    order in which their settings first appear.

    Then, for several seeds: ``<field>_min`` per field; ``regret_ci_low`` /
    ``regret_ci_high``, the :func:`bootstrap_interval` of the mean regret (None with
    fewer than two regrets); ``best_runs`` and ``best_run_names``: the runs in which the
    setting is among that run's best, its regret equal to the least regret of any setting
    on that run and monitor (``run_best``: :func:`run_best_regrets`, by default over
    ``records``).

    >>> rows = aggregate([{"policy": "p", "params": {"a": 1}, "run": r, "regret": v}
    ...                   for r, v in (("x", 0.1), ("y", 0.3))])
    >>> rows[0]["runs"], rows[0]["regret_mean"], rows[0]["regret_worst"]
    (2, 0.2, 0.3)
    """
    if run_best is None:
        run_best = run_best_regrets(records)
    groups: dict[Hashable, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault((r.get("policy"), freeze(r.get("params") or {})), []).append(r)
    out: list[AggregateRow] = []
    for members in groups.values():
        first = members[0]
        row: dict[str, Any] = {
            "policy": first.get("policy"),
            "params": dict(first.get("params") or {}),
            "runs": len(members),
            "run_names": [m.get("run") for m in members],
            "censored_runs": sum(1 for m in members if m.get("censored")),
        }
        metrics = {m.get("regret_metric") for m in members}
        row["regret_metric"] = metrics.pop() if len(metrics) == 1 else None
        for f in fields:
            vals = [float(m[f]) for m in members if not is_missing(m.get(f))]
            row[f"{f}_mean"] = sum(vals) / len(vals) if vals else None
            row[f"{f}_worst"] = max(vals) if vals else None
            row[f"{f}_spread"] = max(vals) - min(vals) if vals else None
        names: list[str] = []
        for m in members:
            for k in m.get("final_metrics") or {}:
                if k not in names:
                    names.append(k)
        row["final_metrics_mean"] = {
            k: _mean((m.get("final_metrics") or {}).get(k) for m in members) for k in names
        }
        for f in fields:
            vals = [float(m[f]) for m in members if not is_missing(m.get(f))]
            row[f"{f}_min"] = min(vals) if vals else None
        interval = bootstrap_interval(m.get("regret") for m in members)
        row["regret_ci_low"], row["regret_ci_high"] = interval or (None, None)
        best = [m.get("run") for m in members if _among_best(m, run_best)]
        row["best_runs"] = len(best)
        row["best_run_names"] = best
        out.append(row)  # type: ignore[arg-type]
    return out


def _among_best(record: Mapping[str, Any], run_best: Mapping[tuple[Any, Any], float]) -> bool:
    v = record.get("regret")
    key = (record.get("run"), (record.get("params") or {}).get("monitor"))
    return not is_missing(v) and key in run_best and float(v) == run_best[key]
