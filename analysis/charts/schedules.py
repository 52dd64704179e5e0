"""What the learning-rate chart shows (``lr_schedules.png``), computed from records as plain
data: each setting's schedule as post-step lines, identical schedules drawn once in pieces
so that exact and counterfactual ones stay distinguishable however many overlap, and the
axis (ticks, floor, limits) that shows them. No drawing; matplotlib is never imported.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from analysis.charts.data import sort_key
from analysis.results.records import REDUCE_LR_ON_PLATEAU, RELATIVE, freeze, is_missing

__all__ = [
    "LR_DECADES_SHOWN",
    "LR_FIXED_TICKS",
    "lr_axis",
    "lr_is_relative",
    "lr_schedule_lines",
    "schedule_pieces",
    "split_schedule",
    "step_xy",
]

LR_DECADES_SHOWN = 1e-6  # the LR chart shows at most 6 decades below the highest rate
LR_FIXED_TICKS = 8  # at most this many distinct rates: one tick each


def step_xy(lr: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """Vertices of a post-step line: the rate lr[i] holds over [i, i + 1].

    >>> step_xy([0.1, 0.05])
    ([0.0, 1.0, 1.0, 2.0], [0.1, 0.1, 0.05, 0.05])
    """
    xs: list[float] = []
    ys: list[float] = []
    for i, v in enumerate(lr):
        y = math.nan if is_missing(v) or v <= 0 else float(v)
        xs += [float(i), float(i + 1)]
        ys += [y, y]
    return xs, ys


def split_schedule(
    lr: Sequence[float | None], counterfactual_from: int | None
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A schedule's step line (:func:`step_xy`) cut at ``counterfactual_from``: the
    exact vertices (epochs before it; all of them when None) and the counterfactual
    ones (from the step into that epoch on; empty when exact).

    >>> split_schedule([0.1, 0.1, 0.05], 2)
    ([(0.0, 0.1), (1.0, 0.1), (1.0, 0.1), (2.0, 0.1)], [(2.0, 0.1), (2.0, 0.05), (3.0, 0.05)])
    """
    xy = list(zip(*step_xy(lr), strict=True))
    if counterfactual_from is None or counterfactual_from >= len(lr):
        return xy, []
    cut = max(int(counterfactual_from), 0)
    if cut == 0:
        return [], xy
    return xy[: 2 * cut], xy[2 * cut - 1 :]


Point = tuple[float, float]
Piece = tuple[Point, Point]


def _schedule_steps(lr: list[float | None], levels: Mapping[int, list[float]]):
    """``(epoch, piece)`` of one schedule in drawing order: at each epoch the step into
    its rate (cut at every rate of ``levels`` there, ascending, and drawn downward), then
    its rate over it."""
    for e, r in enumerate(lr):
        before = lr[e - 1] if e else None
        if before is not None and r is not None and before != r:
            at = levels[e]
            cuts = at[
                bisect.bisect_left(at, min(before, r)) : bisect.bisect_right(at, max(before, r))
            ]
            for a, b in zip(cuts[::-1], cuts[-2::-1], strict=False):
                yield e, ((float(e), a), (float(e), b))
        if r is not None:
            yield e, ((float(e), r), (float(e + 1), r))


def schedule_pieces(lines: Sequence[Mapping[str, Any]]) -> dict[Hashable, dict[str, list]]:
    """The schedules of ``lines`` (:func:`lr_schedule_lines`) as polylines, each stretch
    of a counterfactual schedule drawn once.

    Returns ``{frozen factor: {"exact": [polyline], "counterfactual": [polyline]}}``, a
    polyline a list of ``(x, y)`` points along one schedule's step line. Dashes start
    anew at each line's start, so two dashed lines over one stretch with different starts
    fill each other's gaps and look solid ("exact"). So the schedules are cut into unit
    pieces (one epoch's rate; one step between two rates some schedule has at that
    epoch) and every piece is drawn once: solid in each factor where some schedule ran
    it exactly, else dashed in the first factor whose schedules reach it, and a piece
    some schedule ran exactly is never dashed. No two lines of the result overlap but
    the solid ones. Missing and non-positive rates leave a gap (as :func:`step_xy`).

    >>> p = schedule_pieces([{"factor": 0.5, "lr": [1.0, 0.5], "counterfactual_from": 1},
    ...                      {"factor": 0.5, "lr": [1.0, 1.0], "counterfactual_from": 1}])
    >>> p[0.5]["exact"]
    [[(0.0, 1.0), (1.0, 1.0)]]
    >>> p[0.5]["counterfactual"]
    [[(1.0, 1.0), (1.0, 0.5), (2.0, 0.5)], [(1.0, 1.0), (2.0, 1.0)]]
    """

    def rates(d: Mapping[str, Any]) -> list[float | None]:
        return [None if is_missing(v) or v <= 0 else float(v) for v in d["lr"]]

    ordered = sorted(lines, key=lambda d: sort_key(freeze(d["factor"])))
    met: dict[int, set[float]] = {}  # the rates met at each epoch's start
    for d in ordered:
        lr = rates(d)
        for e in range(1, len(lr)):
            if lr[e - 1] is not None and lr[e] is not None and lr[e - 1] != lr[e]:
                met.setdefault(e, set()).update((lr[e - 1], lr[e]))
    levels = {e: sorted(v) for e, v in met.items()}
    walks = []  # (factor, [(kind, piece)]) per schedule
    exact: dict[Piece, set[Hashable]] = {}
    for d in ordered:
        cf, factor = d["counterfactual_from"], freeze(d["factor"])
        walk = [("exact" if cf is None or e < cf else "counterfactual", piece)
                for e, piece in _schedule_steps(rates(d), levels)]  # fmt: skip
        walks.append((factor, walk))
        for kind, piece in walk:
            if kind == "exact":
                exact.setdefault(piece, set()).add(factor)
    out: dict[Hashable, dict[str, list]] = {
        factor: {"exact": [], "counterfactual": []} for factor, _ in walks
    }
    drawn: set[tuple[Hashable | None, Piece]] = set()
    for factor, walk in walks:
        line: list[Point] | None = None
        last = None
        for kind, piece in walk:
            if kind == "counterfactual" and piece in exact:
                kind = "exact"  # a recorded curve ran it: solid (in its own factors)
                if factor not in exact[piece]:
                    line = None
                    continue
            key = (factor if kind == "exact" else None, piece)  # dashed: once in all
            if key in drawn:
                line = None
                continue
            drawn.add(key)
            if line is not None and last == kind and line[-1] == piece[0]:
                line.append(piece[1])
            else:
                line = [piece[0], piece[1]]
                out[factor][kind].append(line)
            last = kind
    return out


def lr_schedule_lines(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Distinct ReduceLROnPlateau schedules, grouped, in factor order.

    Returns one dict per distinct (factor, schedule, counterfactual_from):
    ``{"factor", "lr" (list), "counterfactual_from", "settings" (how many records
    share it), "branched" (how many of them a branch answered)}``. Records of other
    policies are ignored.
    """
    out: dict[Hashable, dict[str, Any]] = {}
    for r in records:
        if r.get("policy") != REDUCE_LR_ON_PLATEAU:
            continue
        factor = (r.get("params") or {}).get("factor")
        lr = list(r.get("lr") or [])
        cf = r.get("counterfactual_from")
        key = (freeze(factor), tuple(lr), cf)
        if key not in out:
            out[key] = {"factor": factor, "lr": lr, "counterfactual_from": cf, "settings": 0,
                        "branched": 0}  # fmt: skip
        out[key]["settings"] += 1
        out[key]["branched"] += 1 if r.get("branch") else 0
    return sorted(out.values(), key=lambda d: sort_key(d["factor"]))


def lr_is_relative(records: Iterable[Mapping[str, Any]]) -> bool:
    """True when the ReduceLROnPlateau records are on the relative scale (multiples of
    the initial rate: the log had no learning rate).

    >>> lr_is_relative([{"policy": "reduce_lr_on_plateau", "lr_scale": "relative"}])
    True
    """
    scales = {r.get("lr_scale") for r in records if r.get("policy") == REDUCE_LR_ON_PLATEAU}
    return scales == {RELATIVE}


def lr_axis(
    lines: Sequence[Mapping[str, Any]], recorded_lr: Sequence[float | None] | None
) -> dict[str, Any]:
    """How the LR chart's log axis shows the rates of ``lines`` and the recorded ones.

    Returns ``{"ticks": [rate, ...] or None (one tick per rate when there are few),
    "floor": the lowest rate shown, or None when all are (a schedule cut every epoch
    reaches 1e-20 and would squash the rest), "ylim": the axis limits that cut there,
    or None, "minor": whether minor ticks help (not over many decades)}``.

    >>> lr_axis([{"lr": [1e-3, 1e-4]}], None)
    {'ticks': [0.0001, 0.001], 'floor': None, 'ylim': None, 'minor': True}
    """
    distinct = {v for d in lines for v in d["lr"] if not is_missing(v) and v > 0}
    distinct |= {v for v in recorded_lr or [] if not is_missing(v) and v > 0}
    ticks = floor = ylim = None
    if 0 < len(distinct) <= LR_FIXED_TICKS:
        ticks = sorted(distinct)
    elif distinct and min(distinct) < max(distinct) * LR_DECADES_SHOWN:
        floor = max(distinct) * LR_DECADES_SHOWN
        ylim = (floor / 1.5, max(distinct) * 3)
    minor = not (distinct and max(distinct) / min(distinct) > 1e3)
    return {"ticks": ticks, "floor": floor, "ylim": ylim, "minor": minor}
