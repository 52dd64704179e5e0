"""``spread.png`` (several runs): each run's regret against patience, with the mean and
its spread (data: :func:`analysis.chartdata.spread_series`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.chartdata import (
    humanize,
    spread_series,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from analysis.chart_style import (
    FIG_WIDTH,
    FRONT,
    LEGEND_RIGHT,
    empty_panel,
    footnote,
    legend_key,
    new_figure,
    themed,
)

__all__ = ["spread_figure"]

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
    ``split_param`` (:func:`analysis.chartdata.spread_series`). ``note`` goes under the
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
