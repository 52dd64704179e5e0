"""``branches.png``: the branch tree of ``replay branch`` over epochs, each branch's held-out
metric at its end (data: :func:`branch_tree`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


from typing import TYPE_CHECKING

from analysis.results.records import is_missing

if TYPE_CHECKING:  # pragma: no cover
    pass

from analysis.charts.style import (
    BEST,
    CURVES_MARGINS,
    DENSE_SETTING_ROWS,
    FIG_WIDTH,
    SMALL_SIZE,
    TINY_SIZE,
    colormap,
    new_figure,
    themed,
)

__all__ = ["branches_figure", "branch_tree"]

# ----------------------------------------------------------------------------------
# 5. Branch tree (runs with branches from ``replay branch``)

BRANCH_ROW_HEIGHT = 0.32  # each branch's row...
BRANCH_ROWS_HEIGHT = (1.5, 12.0)  # ... within these bounds
_BRANCH_SEGMENT = {"lw": 2.4, "capstyle": "butt"}
_BRANCH_CONNECTOR = {"color": "0.55", "lw": 1.0}


@themed
def branches_figure(
    run_name: str,
    run_epochs: int,
    run_value: float | None,
    branches: Sequence[Mapping[str, Any]],
    *,
    metric: str | None,
    higher_is_better: bool | None = None,
    title: str = "",
) -> Figure:
    """The branch tree: x = epoch, one row per branch (the run on top, each branch
    under its parent, depth-first), a segment from its fork epoch to its last epoch,
    a connector down from its parent at the fork, and ``metric`` at its last epoch
    written at the segment's end (the best one highlighted, given
    ``higher_is_better``). ``branches`` as :func:`branch_tree`
    takes them. Returns the Figure.
    """
    tree = branch_tree(
        run_name, run_epochs, run_value, branches, metric, higher_is_better=higher_is_better
    )
    nodes = tree["nodes"]
    fig, ax = _branches_axes(len(nodes))
    fig.suptitle(title or _branches_title(run_name, tree))
    _draw_branch_connectors(ax, nodes)
    _draw_branch_segments(ax, nodes)
    _annotate_branch_ends(ax, nodes)
    _finish_branch_axes(ax, nodes, metric)
    return fig


def _branches_title(run_name: str, tree: Mapping[str, Any]) -> str:
    n, forks, depth = tree["n_branches"], tree["n_forks"], tree["depth"]

    def plural(k: int, word: str, many: str) -> str:
        return f"{k} {word if k == 1 else many}"

    return (f"{run_name}: {plural(n, 'branch', 'branches')} from "
            f"{plural(forks, 'fork point', 'fork points')}, "
            f"{plural(depth, 'level', 'levels')} deep")  # fmt: skip


def _branches_axes(n_rows: int) -> tuple[Figure, Axes]:
    lo, hi = BRANCH_ROWS_HEIGHT
    rows_h = min(max(BRANCH_ROW_HEIGHT * n_rows, lo), hi)
    fig = new_figure(FIG_WIDTH, rows_h + CURVES_MARGINS)
    return fig, fig.subplots()


def _draw_branch_segments(ax: Axes, nodes: Sequence[Mapping[str, Any]]) -> None:
    """One horizontal segment per row: the run black, branches coloured by depth."""
    from matplotlib.collections import LineCollection

    cmap = colormap("viridis")
    depth = max(n["depth"] for n in nodes)
    segs = [[(n["start"], n["y"]), (n["end"], n["y"])] for n in nodes[1:]]
    colors = [cmap(0.8 * (n["depth"] - 1) / max(depth - 1, 1)) for n in nodes[1:]]
    root = nodes[0]
    ax.plot([root["start"], root["end"]], [0, 0], color="black", gid="run",
            lw=_BRANCH_SEGMENT["lw"], solid_capstyle="butt")  # fmt: skip
    if segs:
        ax.add_collection(LineCollection(segs, colors=colors, gid="branches", **_BRANCH_SEGMENT))
        ax.scatter([n["start"] for n in nodes[1:]], [n["y"] for n in nodes[1:]], s=14,
                   c=colors, zorder=3)  # fmt: skip


def _draw_branch_connectors(ax: Axes, nodes: Sequence[Mapping[str, Any]]) -> None:
    """From the parent's row down to the child's, at the fork epoch."""
    from matplotlib.collections import LineCollection

    segs = [[(n["start"], n["parent_y"]), (n["start"], n["y"])]
            for n in nodes[1:] if n["parent_y"] is not None]  # fmt: skip
    if segs:
        ax.add_collection(LineCollection(segs, gid="connectors", zorder=1, **_BRANCH_CONNECTOR))


def _annotate_branch_ends(ax: Axes, nodes: Sequence[Mapping[str, Any]]) -> None:
    size = SMALL_SIZE if len(nodes) <= DENSE_SETTING_ROWS else TINY_SIZE
    for n in nodes:
        style = {"color": BEST, "fontweight": "bold"} if n["best"] else {"color": "0.15"}
        ax.annotate(n["label"], (n["end"], n["y"]), xytext=(5, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=size, **style)  # fmt: skip


def _finish_branch_axes(ax: Axes, nodes: Sequence[Mapping[str, Any]], metric: str | None) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_yticks([n["y"] for n in nodes])
    labels = [f"{n['id']} (run)" if i == 0 else n["id"] + (" (parent unfinished)" if
              n["orphan"] else "") for i, n in enumerate(nodes)]  # fmt: skip
    ax.set_yticklabels(labels)
    size = SMALL_SIZE if len(nodes) <= DENSE_SETTING_ROWS else TINY_SIZE
    ax.tick_params(axis="y", labelsize=size, length=0)
    ax.set_ylim(len(nodes) - 0.5, -0.5)  # the run on top
    last = max(n["end"] for n in nodes)
    # Room on the right for the end labels.
    ax.set_xlim(-0.5, last + 0.5 + max(2.0, 0.22 * (last + 1)))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (0-based; a branch starts at its fork epoch)")
    ax.grid(True, axis="x")
    what = f"{metric} at each branch's last epoch" if metric else "no held-out metric"
    best = "; best in bold" if any(n["best"] for n in nodes) else ""
    ax.set_title(f"Branch tree ({what}{best})", loc="left")


def _fork_order(b: Mapping[str, Any]) -> tuple[int, str]:
    return (int(b["fork_epoch"]), str(b["id"]))


def _value_label(metric: str | None, value: Any) -> str:
    if metric is None:
        return "no held-out metric"
    return f"{metric} ?" if is_missing(value) else f"{metric} {float(value):.4g}"


def branch_tree(
    run_name: str,
    run_epochs: int,
    run_value: float | None,
    branches: Sequence[Mapping[str, Any]],
    metric: str | None,
    *,
    higher_is_better: bool | None = None,
) -> dict[str, Any]:
    """The branch tree as rows to draw: the run on top, each branch under its parent.

    ``branches`` are plain dicts ``{"id", "parent" (a branch id, or None for the run),
    "fork_epoch", "n_epochs", "value" (``metric`` at its last epoch, or None)}``; a
    branch whose parent is not among them (not finished) hangs under the run, with
    ``orphan`` set and no connector. Children follow their parent depth-first, by fork
    epoch then id.

    Returns ``{"nodes": [{"id", "y" (row, 0 = the run), "depth", "start", "end",
    "fork_epoch" (None for the run), "parent_y" (None for the run and orphans),
    "value", "label" (``metric value``), "best"}], "n_branches", "n_forks",
    "depth"}``; ``best`` marks the best value (given ``higher_is_better``).

    >>> t = branch_tree("r", 5, 0.3, [{"id": "b", "parent": None, "fork_epoch": 2,
    ...                 "n_epochs": 5, "value": 0.2}], "test_loss", higher_is_better=False)
    >>> [(n["id"], n["y"], n["start"], n["end"], n["parent_y"], n["best"]) for n in t["nodes"]]
    [('r', 0, 0, 4, None, False), ('b', 1, 2, 4, 0, True)]
    """
    ids = {b["id"] for b in branches}
    children: dict[Any, list[Mapping[str, Any]]] = {}
    for b in sorted(branches, key=_fork_order):
        parent = b.get("parent")
        children.setdefault(parent if parent in ids else None, []).append(b)
    nodes: list[dict[str, Any]] = [
        {"id": run_name, "y": 0, "depth": 0, "start": 0, "end": run_epochs - 1,
         "fork_epoch": None, "parent_y": None, "value": run_value, "orphan": False}
    ]  # fmt: skip
    seen: set[Any] = set()

    def visit(b: Mapping[str, Any], parent_y: int | None, depth: int) -> None:
        if b["id"] in seen:
            return  # parent fields that loop: each branch drawn once
        seen.add(b["id"])
        y = len(nodes)
        orphan = b.get("parent") is not None and b.get("parent") not in ids
        nodes.append({"id": b["id"], "y": y, "depth": depth, "start": int(b["fork_epoch"]),
                      "end": int(b["n_epochs"]) - 1, "fork_epoch": int(b["fork_epoch"]),
                      "parent_y": None if orphan else parent_y, "value": b.get("value"),
                      "orphan": orphan})  # fmt: skip
        for child in children.get(b["id"], []):
            visit(child, y, depth + 1)

    for b in children.get(None, []):
        visit(b, 0, 1)
    for b in sorted(branches, key=_fork_order):  # in a loop of parents: under the run
        visit(b, 0, 1)
    values = [float(n["value"]) for n in nodes if not is_missing(n["value"])]
    best = None
    if values and higher_is_better is not None:
        best = max(values) if higher_is_better else min(values)
    for n in nodes:
        n["label"] = _value_label(metric, n["value"])
        n["best"] = best is not None and not is_missing(n["value"]) and float(n["value"]) == best
    return {
        "nodes": nodes,
        "n_branches": len(nodes) - 1,
        "n_forks": len({(n["parent_y"], n["fork_epoch"]) for n in nodes[1:]}),
        "depth": max(n["depth"] for n in nodes),
    }
