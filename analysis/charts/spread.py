"""``spread.png`` (several runs): each run's regret against patience, with the mean and
its spread (data: :func:`spread_series`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.charts.data import (
    humanize,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


from typing import TYPE_CHECKING

from analysis.results.records import (
    format_value,
    freeze,
    is_missing,
)

if TYPE_CHECKING:  # pragma: no cover
    pass

from analysis.charts.data import sort_key
from analysis.charts.style import (
    FIG_WIDTH,
    FRONT,
    LEGEND_RIGHT,
    empty_panel,
    footnote,
    legend_key,
    new_figure,
    themed,
)

__all__ = ["spread_figure", "spread_series"]

# ----------------------------------------------------------------------------------
# 7. Spread over runs (several seeds): regret against patience, each run and the mean

_MEAN = "#0072B2"
_RUN_POINT = {"color": "0.35", "alpha": 0.6, "s": 16, "lw": 0, "zorder": 7}
_MEAN_LINE = {"color": _MEAN, "lw": 2.0, "marker": "o", "ms": 5, "zorder": 4}
_SPREAD_BAND = {"color": _MEAN, "alpha": 0.13, "lw": 0, "zorder": 1}
_CI_BARS = {"color": "#003f63", "lw": 1.4, "capsize": 3, "zorder": 5, "fmt": "none"}
_LEAST_MEAN = {"marker": "*", "s": 170, "color": FRONT, "edgecolors": "white", "lw": 0.6,
         "zorder": 6}  # fmt: skip
SPREAD_HEIGHT = 5.2


@themed
def spread_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    x_param: str = "patience",
    split_param: str = "restore_best_weights",
    title: str = "",
    note: str = "",
) -> Figure:
    """Regret against ``x_param`` over several runs (seeds): one faint point per run and
    setting, the mean over runs as a line with its min-max band and the bootstrap 95%
    interval of the mean as bars, a star at the least mean regret; one panel per value of
    ``split_param`` (:func:`spread_series`). ``note`` goes under the
    axes. Returns the Figure."""
    data = spread_series(records, x_param=x_param, split_param=split_param)
    panels = data["panels"]
    fig = new_figure(FIG_WIDTH, SPREAD_HEIGHT)
    axes = fig.subplots(1, max(len(panels), 1), sharey=True, squeeze=False)[0]
    n = len(data["runs"])
    fig.suptitle(title or f"Regret over {n} runs: each run, the mean and its spread")
    if not panels:
        empty_panel(axes[0], "no stopping settings with a regret to show")
        return fig
    for ax, panel in zip(axes, panels, strict=True):
        _draw_spread_panel(ax, panel, n)
        _label_spread_axes(ax, panel, x_param)
    axes[0].set_ylabel(f"regret in {data['metric'] or 'the held-out metric'}\n"
                       "(0 = the run's best epoch; lower is better)")  # fmt: skip
    _spread_legend(fig, axes[-1], n)
    footnote(fig, note)
    return fig


def _draw_spread_panel(ax: Axes, panel: Mapping[str, Any], n_runs: int) -> None:
    """Each run's points (spread sideways by run), the min-max band, the mean line with
    its interval bars, and the star at the least mean."""
    xs = [float(x) for x in panel["x"]]
    step = min((b - a for a, b in zip(xs, xs[1:], strict=False)), default=1.0) or 1.0
    # A slot per run beside each x, none at x itself (where the mean and its bars are):
    # an odd count takes n_runs + 1 slots (an even count has none at the centre) and
    # leaves the one after the first half out.
    slots = [k + (n_runs % 2 and k >= n_runs // 2) for k in range(n_runs)]
    width = n_runs + n_runs % 2
    offsets = [(-0.5 + (k + 0.5) / width) * 0.5 * step for k in slots]
    px = [float(x) + offsets[k] for x, _, k in panel["points"]]
    ax.scatter(px, [y for _, y, _ in panel["points"]], **_RUN_POINT)
    ax.fill_between(xs, panel["low"], panel["high"], **_SPREAD_BAND)
    ax.plot(xs, panel["mean"], **_MEAN_LINE)
    bars = [(x, m, m - lo, hi - m) for x, m, lo, hi in
            zip(xs, panel["mean"], panel["ci_low"], panel["ci_high"], strict=True)
            if lo is not None and hi is not None]  # fmt: skip
    if bars:
        bx, by, below, above = zip(*bars, strict=True)
        ax.errorbar(bx, by, yerr=[below, above], **_CI_BARS)
    best = panel["x"].index(panel["best"])
    ax.scatter([xs[best]], [panel["mean"][best]], **_LEAST_MEAN)


def _label_spread_axes(ax: Axes, panel: Mapping[str, Any], x_param: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(panel["title"])
    ax.set_xlabel(humanize(x_param))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True)


def _spread_legend(fig: Figure, ax: Axes, n_runs: int) -> None:
    from matplotlib.patches import Patch

    handles = [
        legend_key(ls="none", marker="o", color="0.35", alpha=0.45, ms=5,
                   label=f"one run ({n_runs} runs)"),
        legend_key(label="mean over runs",
                   **{k: v for k, v in _MEAN_LINE.items() if k != "zorder"}),
        Patch(color=_MEAN, alpha=0.13, label="min-max over runs"),
        legend_key(color="#003f63", lw=1.4, marker="_", ms=8,
                   label="95% bootstrap interval of the mean"),
        legend_key(ls="none", marker="*", ms=12, color=FRONT,
                   label="least mean regret (in its panel)"),
    ]  # fmt: skip
    ax.legend(handles=handles, **LEGEND_RIGHT)


# ----------------------------------------------------------------------------------
# 6. Spread over runs (several seeds): each run's regret, the mean and its spread


def spread_series(records: Sequence[Mapping[str, Any]], x_param: str = "patience",
                  split_param: str = "restore_best_weights") -> dict[str, Any]:  # fmt: skip
    """Regret against ``x_param`` over several runs: what
    :func:`analysis.charts.sweep.spread_figure`
    draws, one panel per value of ``split_param``.

    ``records`` are the stopping records of one slice of the grid (one value of each
    parameter other than ``x_param`` and ``split_param``) from every run. Each panel:
    ``split`` (the value), ``title``, ``x`` (the ``x_param`` values, sorted), per x the
    ``mean``, ``low`` / ``high`` (min and max over runs), ``ci_low`` / ``ci_high`` (the
    bootstrap interval of the mean, None with fewer than two runs) and ``n`` (runs with a
    regret); ``points``: ``(x, regret, run index)`` for each run; ``best``: the x with
    the least mean regret (the first of equals). Returns ``{"runs": [names, in first-seen
    order], "metric": the regret metric (when all agree, else None), "panels": [...]}``.
    Records with no regret are left out; panels with none are not made.

    >>> recs = [{"run": r, "policy": "early_stopping", "regret": v, "regret_metric": "m",
    ...          "params": {"patience": p, "restore_best_weights": True}}
    ...         for r, p, v in (("a", 1, 0.2), ("b", 1, 0.4), ("a", 2, 0.0), ("b", 2, 0.2))]
    >>> (panel,) = spread_series(recs)["panels"]
    >>> panel["x"], panel["mean"], panel["low"], panel["high"], panel["best"]
    ([1, 2], [0.30000000000000004, 0.1], [0.2, 0.0], [0.4, 0.2], 2)
    """
    from analysis.results.aggregation import aggregate

    runs = list(dict.fromkeys(r["run"] for r in records))
    index = {name: i for i, name in enumerate(runs)}
    metrics = {r.get("regret_metric") for r in records if not is_missing(r.get("regret"))}
    panels = []
    splits = sorted({freeze(r["params"].get(split_param)) for r in records}, key=sort_key,
                    reverse=True)  # fmt: skip
    for split in splits:
        mine = [r for r in records if freeze(r["params"].get(split_param)) == split
                and not is_missing(r.get("regret"))]  # fmt: skip
        if not mine:
            continue
        by_x = {}
        for row in aggregate(mine, fields=("regret",)):
            by_x[freeze(row["params"].get(x_param))] = row
        xs = sorted(by_x, key=sort_key)
        rows = [by_x[x] for x in xs]
        means = [row["regret_mean"] for row in rows]
        panels.append({
            "split": split,
            "title": f"{humanize(split_param)}: {format_value(split)}",
            "x": xs,
            "mean": means,
            "low": [row["regret_min"] for row in rows],
            "high": [row["regret_worst"] for row in rows],
            "ci_low": [row["regret_ci_low"] for row in rows],
            "ci_high": [row["regret_ci_high"] for row in rows],
            "n": [row["runs"] for row in rows],
            "points": [(r["params"].get(x_param), float(r["regret"]), index[r["run"]])
                       for r in mine],
            "best": xs[means.index(min(means))],
        })  # fmt: skip
    return {"runs": runs, "metric": metrics.pop() if len(metrics) == 1 else None,
            "panels": panels}  # fmt: skip
