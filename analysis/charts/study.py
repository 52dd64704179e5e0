"""The chart of a pruner sweep over a study: the trials' curves with the settings' prune
points, and compute saved against regret across settings.

Plain records in (the pruner sweep's JSON records: ``pruned_at``, ``steps_saved_fraction``,
``regret``, ``best_known``), a matplotlib Figure out; the caller saves it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["draw_pruner_sweep", "prune_point_counts"]


def prune_point_counts(records: Sequence[Mapping[str, Any]]) -> Counter:
    """How many settings prune each (trial, step)."""
    counts: Counter = Counter()
    for r in records:
        for trial, step in r["pruned_at"].items():
            counts[(int(trial), int(step))] += 1
    return counts


def draw_pruner_sweep(study, records: Sequence[Mapping[str, Any]]):
    """Two panels: each trial's curve (the recorded best in a color of its own) with a
    marker where settings prune it (sized by how many do), and one point per setting:
    share of the recorded steps saved against regret (hollow: regret unknown, drawn at
    the regret of the best trial among those it let complete)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8))
    curves, trade = fig.subplots(1, 2)
    best = study.best_trial()
    by_number = {t.number: t for t in study.trials}
    for t in study.trials:
        if not t.steps:
            continue
        is_best = best is not None and t.number == best.number
        curves.plot(
            t.steps, t.values,
            color="tab:green" if is_best else "0.6",
            lw=2.0 if is_best else 0.8,
            label=f"recorded best #{t.number}" if is_best else None,
            zorder=3 if is_best else 1,
        )  # fmt: skip
    counts = prune_point_counts(records)
    if counts:
        xs, ys, sizes = [], [], []
        for (trial, step), n in counts.items():
            t = by_number.get(trial)
            if t is None or step not in t.steps:
                continue
            xs.append(step)
            ys.append(t.values[t.steps.index(step)])
            sizes.append(12 + 60 * n / max(1, len(records)))
        curves.scatter(xs, ys, s=sizes, color="tab:red", marker="x", zorder=4,
                       label=f"prune points ({len(records)} settings)")  # fmt: skip
    curves.set_xlabel("step")
    curves.set_ylabel(f"{study.metric} ({study.direction})")
    curves.set_title(f"{study.name}: trials and prune points")
    curves.legend(loc="best", fontsize=8)

    known = [r for r in records if r["best_known"] and r["regret"] is not None]
    unknown = [r for r in records if not r["best_known"] and r["best_value"] is not None]
    rec_best = best.value if best is not None else None
    if known:
        trade.scatter(
            [100 * r["steps_saved_fraction"] for r in known],
            [r["regret"] for r in known],
            color="tab:blue",
            label="regret known",
        )
    if unknown and rec_best is not None:
        sign = 1.0 if study.direction == "minimize" else -1.0
        trade.scatter([100 * r["steps_saved_fraction"] for r in unknown],
                      [sign * (r["best_value"] - rec_best) for r in unknown],
                      facecolors="none", edgecolors="tab:orange",
                      label="unknown (censored trials): best found so far")  # fmt: skip
    trade.set_xlabel("compute saved (% of recorded steps)")
    trade.set_ylabel("regret (found best vs recorded best)")
    trade.set_title(f"{records[0]['policy'] if records else 'pruner'}: saved vs regret")
    if known or unknown:
        trade.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
