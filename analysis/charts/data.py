"""What the sweep charts show, computed from records as plain data (no drawing).

Each function here turns sweep records (or :func:`analysis.results.aggregation.aggregate` rows)
into lists, dicts and tuples that :mod:`analysis.charts.sweep` draws; they are tested as
tables, without matplotlib, which this module never imports.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.names import base_name
from analysis.results.records import (
    EARLY_STOPPING,
    PRECHELT,
    format_value,
    freeze,
    is_censored,
    is_missing,
    setting_label,
    stop_records,
    varying_values,
)

if TYPE_CHECKING:  # pragma: no cover
    from typing import TypeAlias

    import pandas as pd

    #: A run's recorded values as the curve charts take them: a mapping column ->
    #: values per epoch 0..n-1 (NaN where not logged: :meth:`RunLog.curves
    #: <analysis.reading.runlog.RunLog.curves>`), or a pandas DataFrame whose index is the
    #: epochs (:attr:`RunLog.metrics <analysis.reading.runlog.RunLog.metrics>`).
    Curves: TypeAlias = Mapping[str, Sequence[float]] | pd.DataFrame

__all__ = [
    "MAX_BRANCH_LEGEND",
    "MAX_FRONT_LISTED",
    "branch_curves",
    "choose_heatmap_axes",
    "col_labels",
    "curve_epochs",
    "curve_series",
    "curve_values",
    "dodge",
    "front_listing",
    "heatmap_grid",
    "heatmap_notes",
    "humanize",
    "mark_layers",
    "panel_title",
    "pareto_front",
    "sort_key",
    "stop_marks",
    "tradeoff_points",
]

MAX_FRONT_LISTED = 8  # the trade-off chart names at most this many front settings
MAX_BRANCH_LEGEND = 8  # the curves chart names at most this many branches in its legend
# Preferred heatmap column parameters, in order; patience is always the row.
_COLUMN_PREFERENCE = (
    "min_delta",
    "monitor",
    "restore_best_weights",
    "baseline",
    "start_from_epoch",
    "mode",
)
_MAX_HEATMAP_COLUMNS = 8


# ----------------------------------------------------------------------------------
# Shared


def sort_key(v: Any) -> tuple:
    """Order mixed parameter values: None first, then by type name, then by value."""
    if v is None:
        return (0, "", 0)
    if isinstance(v, bool):
        return (1, "bool", int(v))
    if isinstance(v, (int, float)):
        return (1, "num", v)
    return (1, type(v).__name__, str(v))


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if not is_missing(v)]
    return sum(vals) / len(vals) if vals else None


def humanize(name: str) -> str:
    """``test_loss`` -> ``test loss``; ``regret_mean`` -> ``regret (mean over runs)``.

    >>> humanize("regret_mean")
    'regret (mean over runs)'
    """
    for suffix, words in (("_mean", "mean"), ("_worst", "worst"), ("_spread", "max-min")):
        if name.endswith(suffix):
            return f"{humanize(name[: -len(suffix)])} ({words} over runs)"
    return name.replace("_", " ")


def dodge(keys: Sequence[Hashable], width: float = 0.6) -> list[float]:
    """Offsets that spread items sharing a key evenly over ``width``; singletons get 0.

    >>> dodge(["a", "b", "a"], width=0.5)
    [-0.25, 0.0, 0.25]
    """
    groups: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    out = [0.0] * len(keys)
    for members in groups.values():
        m = len(members)
        if m > 1:
            for j, i in enumerate(members):
                out[i] = -width / 2 + width * j / (m - 1)
    return out


# ----------------------------------------------------------------------------------
# 1. Curves with stop / kept epochs


def curve_epochs(metrics: Curves) -> list[float]:
    """The epochs (x values) of a run's recorded ``metrics``: a mapping column -> values
    per epoch 0..n-1 (:meth:`analysis.reading.runlog.RunLog.curves`), or a pandas DataFrame whose
    index is the epochs (:attr:`analysis.reading.runlog.RunLog.metrics`).

    >>> curve_epochs({"loss": [1.0, 0.5, 0.25]})
    [0.0, 1.0, 2.0]
    """
    if isinstance(metrics, Mapping):
        return [float(e) for e in range(max((len(v) for v in metrics.values()), default=0))]
    return [float(e) for e in metrics.index]


def curve_values(metrics: Curves, column: str) -> list[float]:
    """Column ``column`` of ``metrics`` (as :func:`curve_epochs` takes them) as floats,
    NaN where not logged.

    >>> curve_values({"loss": [1, float("nan")]}, "loss")
    [1.0, nan]
    """
    values = metrics[column]
    if hasattr(values, "to_numpy"):  # a pandas Series
        values = values.to_numpy(dtype=float)
    return [float(v) for v in values]


def curve_series(metrics: Curves, monitor: str) -> list[tuple[str, str]]:
    """``(column, split)`` of the curves to draw for ``monitor``'s base metric: train,
    validation, test, those the log has values of.

    >>> curve_series({"loss": [1.0], "val_loss": [float("nan")]}, "val_loss")
    [('loss', 'train')]
    """
    base = base_name(monitor)
    return [
        (col, split)
        for col, split in ((base, "train"), (f"val_{base}", "validation"), (f"test_{base}", "test"))
        if col in metrics and not all(math.isnan(v) for v in curve_values(metrics, col))
    ]


def branch_curves(
    branches: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """The part of each branch's curves to draw over the run's: from the epoch before
    its fork (the checkpoint it started from, a row it shares with its parent) on.

    ``branches`` are plain dicts ``{"id", "fork_epoch", "metrics": {column: [values]}}``
    (see :func:`branch_tree`); ``columns`` the run's curves to follow (monitor and
    held-out). Returns ``{"id", "series": [(column, epochs, values), ...]}`` per branch,
    in order, leaving out columns the branch has no value of after its fork.

    >>> branch_curves([{"id": "b1", "fork_epoch": 2, "metrics": {"val_loss": [3, 2, 1, 0]}}],
    ...               ["val_loss"])
    [{'id': 'b1', 'series': [('val_loss', [1, 2, 3], [2.0, 1.0, 0.0])]}]
    """
    out = []
    for b in branches:
        start = max(int(b["fork_epoch"]) - 1, 0)
        series = []
        for col in columns:
            values = list((b.get("metrics") or {}).get(col) or [])[start:]
            if not any(not is_missing(v) for v in values[1:]):
                continue
            ys = [math.nan if is_missing(v) else float(v) for v in values]
            series.append((col, list(range(start, start + len(ys))), ys))
        out.append({"id": b["id"], "series": series})
    return out


def _prechelt_key(p: Mapping[str, Any]) -> tuple:
    return (p.get("criterion"), p.get("alpha"), p.get("strips"), p.get("strip_length"))


def stop_marks(records: Sequence[Mapping[str, Any]], n_epochs: int) -> dict[str, Any]:
    """Where to draw each stopping setting under the curves.

    Returns ``{"rows": [label, ...], "row_patience": [patience or None, ...],
    "marks": [...]}``; one mark per distinct outcome (settings with the same row,
    stop, kept epoch and censoring share it), a dict with ``row`` (index into rows),
    ``y`` (row plus a dodge offset, so that different outcomes in one row stay
    visible), ``stop`` (stop epoch, None when censored), ``final`` (kept epoch or
    None), ``censored``, ``patience`` (None for Prechelt) and ``censored_x`` (where a
    censored setting is drawn: in the band just past the last epoch, ``n_epochs``).

    Early-stopping rows (one per patience, ascending) come first, then one row per
    Prechelt criterion setting. Records of other policies are ignored.
    """
    stops = stop_records(records)
    es_pat = sorted(
        {r["params"].get("patience") for r in stops if r["policy"] == EARLY_STOPPING},
        key=sort_key,
    )
    prechelt = [r.get("params") or {} for r in stops if r["policy"] == PRECHELT]
    pre_varying = varying_values(prechelt)
    pre_labels: dict[Hashable, str] = {}
    for p in prechelt:
        pre_labels.setdefault(
            _prechelt_key(p), setting_label(PRECHELT, p, pre_varying, style="chart")
        )
    rows = [
        setting_label(EARLY_STOPPING, {"patience": p}, {"patience": es_pat}, style="chart")
        for p in es_pat
    ] + list(pre_labels.values())
    row_patience: list[Any] = list(es_pat) + [None] * len(pre_labels)
    row_of_pat = {freeze(p): i for i, p in enumerate(es_pat)}
    row_of_pre = {k: len(es_pat) + i for i, k in enumerate(pre_labels)}

    marks: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for r in stops:
        p = r.get("params") or {}
        if r["policy"] == EARLY_STOPPING:
            row = row_of_pat[freeze(p.get("patience"))]
            patience = p.get("patience")
        else:
            row = row_of_pre[_prechelt_key(p)]
            patience = None
        censored = is_censored(r)
        stop = None if censored else r.get("stopped_epoch")
        outcome = (row, stop, r.get("final_epoch"), censored)
        if outcome in seen:
            continue
        seen.add(outcome)
        marks.append(
            {
                "row": row,
                "stop": stop,
                "final": r.get("final_epoch"),
                "censored": censored,
                "patience": patience,
                "censored_x": n_epochs,
            }
        )
    offsets = dodge([m["row"] for m in marks], 0.5)
    for m, off in zip(marks, offsets, strict=True):
        m["y"] = m["row"] + off
    return {"rows": rows, "row_patience": row_patience, "marks": marks}


def mark_layers(marks: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple]]:
    """The marks of :func:`stop_marks` as the layers drawn, each item ending with its
    patience (the colour): ``segments`` ``(kept x, stop or censored x, y, patience)``,
    and ``stop``, ``kept``, ``censored`` ``(x, y, patience)``.

    >>> mark_layers([{"final": 2, "stop": 4, "censored": False, "censored_x": 9, "y": 0,
    ...               "patience": 2}])["segments"]
    [(2, 4, 0, 2)]
    """
    layers: dict[str, list[tuple]] = {"segments": [], "stop": [], "kept": [], "censored": []}
    for m in marks:
        y, patience = m["y"], m["patience"]
        end = m["censored_x"] if m["censored"] else m["stop"]
        if m["final"] is not None and end is not None and m["final"] != end:
            layers["segments"].append((m["final"], end, y, patience))
        if m["censored"]:
            layers["censored"].append((m["censored_x"], y, patience))
        elif m["stop"] is not None:
            layers["stop"].append((m["stop"], y, patience))
        if m["final"] is not None:
            layers["kept"].append((m["final"], y, patience))
    return layers


# ----------------------------------------------------------------------------------
# 2. Early-stopping heatmaps


def choose_heatmap_axes(
    records: Sequence[Mapping[str, Any]],
) -> tuple[str, tuple[str, ...], list[str]]:
    """Pick the heatmap's row parameter, column parameters, and those averaged over.

    Rows are always ``patience``. Columns are the varying parameters, taken in the
    order min_delta, monitor, restore_best_weights, baseline, start_from_epoch, mode
    (then any other), as long as their combinations fit in 8 columns; the varying
    parameters left over are averaged over (the chart says so).

    >>> recs = [{"params": {"patience": p, "min_delta": d}} for p in (1, 2) for d in (0, .1)]
    >>> choose_heatmap_axes(recs)
    ('patience', ('min_delta',), [])
    """
    varying = varying_values(r.get("params") or {} for r in records)
    varying.pop("patience", None)
    ordered = [k for k in _COLUMN_PREFERENCE if k in varying]
    ordered += [k for k in varying if k not in ordered]
    cols: list[str] = []
    product = 1
    averaged: list[str] = []
    for k in ordered:
        # A record without the parameter counts as one more value (None).
        distinct = len({freeze((r.get("params") or {}).get(k)) for r in records})
        if product * distinct <= _MAX_HEATMAP_COLUMNS:
            cols.append(k)
            product *= distinct
        else:
            averaged.append(k)
    return "patience", tuple(cols), averaged


def heatmap_grid(
    records: Sequence[Mapping[str, Any]],
    row_param: str,
    col_param: str | Sequence[str] | None,
    value: str,
) -> dict[str, Any]:
    """Mean of ``value`` per (row, column) cell; parameters not named are averaged over.

    ``col_param`` is one parameter name, a sequence of names (columns are their
    combinations, as tuples), or None (a single column ``()``). Missing values
    (None, NaN) are skipped; a cell with no value is None. Returns::

        {"rows": [...], "cols": [...], "values": [[float | None]], "counts": [[int]],
         "censored": [[bool]] (every record in the cell never stopped),
         "partly_censored": [[bool]] (some, not all)}

    >>> recs = [{"params": {"patience": 1, "min_delta": 0}, "regret": 0.5},
    ...         {"params": {"patience": 1, "min_delta": 0}, "regret": None}]
    >>> heatmap_grid(recs, "patience", "min_delta", "regret")["values"]
    [[0.5]]
    """
    if col_param is None:
        col_names: tuple[str, ...] = ()
    elif isinstance(col_param, str):
        col_names = (col_param,)
    else:
        col_names = tuple(col_param)
    single = isinstance(col_param, str)

    def col_key(r: Mapping[str, Any]) -> Any:
        p = r.get("params") or {}
        key = tuple(p.get(k) for k in col_names)
        return key[0] if single else key

    cells: dict[tuple, list[Mapping[str, Any]]] = {}
    rows: list[Any] = []
    cols: list[Any] = []
    for r in records:
        rk = (r.get("params") or {}).get(row_param)
        ck = col_key(r)
        if rk not in rows:
            rows.append(rk)
        if ck not in cols:
            cols.append(ck)
        cells.setdefault((freeze(rk), freeze(ck)), []).append(r)
    rows.sort(key=sort_key)
    cols.sort(key=lambda c: tuple(sort_key(x) for x in c) if not single else sort_key(c))

    values, counts, censored, partly = [], [], [], []
    for rk in rows:
        v_row, n_row, c_row, p_row = [], [], [], []
        for ck in cols:
            cell = cells.get((freeze(rk), freeze(ck)), [])
            v_row.append(_mean(r.get(value) for r in cell))
            n_row.append(sum(1 for r in cell if not is_missing(r.get(value))))
            flags = [is_censored(r) for r in cell]
            c_row.append(bool(flags) and all(flags))
            p_row.append(any(flags) and not all(flags))
        values.append(v_row)
        counts.append(n_row)
        censored.append(c_row)
        partly.append(p_row)
    return {
        "rows": rows,
        "cols": cols,
        "values": values,
        "counts": counts,
        "censored": censored,
        "partly_censored": partly,
    }


def col_labels(names: Sequence[str], cols: Sequence[Any]) -> tuple[list[str], str]:
    """Tick labels (values only, one line per parameter) and the axis label naming them.

    >>> col_labels(("min_delta", "restore_best_weights"), [(0.0, False)])
    (['0\\nno'], 'min_delta / restore_best_weights (top to bottom)')
    """
    if not names:
        return ["all settings"] * len(cols), ""
    labels = []
    for key in cols:
        vals = key if isinstance(key, tuple) else (key,)
        labels.append("\n".join(format_value(v) for v in vals))
    if len(names) == 1:
        return labels, names[0]
    return labels, " / ".join(names) + " (top to bottom)"


def cell_text(field: str, v: float | None, censored: bool, partly: bool) -> str:
    """A heatmap cell's label; epochs of censored settings are lower bounds (``≥30``).

    >>> cell_text("epochs_trained", 30.0, True, False), cell_text("regret", 0.01234, False, False)
    ('≥30', '0.0123')
    """
    if v is None:
        return ""
    if not field.startswith("epochs_trained"):
        return "0" if v == 0 else f"{v:.3g}"
    text = f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    if censored:
        return "≥" + text
    return text + "*" if partly else text


def panel_title(field: str, regret_metric: str | None) -> str:
    """A heatmap panel's title: the value and how to read its colour.

    >>> panel_title("regret", "test_loss")
    'regret in test_loss\\n(0 = best; darker = lower)'
    """
    label = humanize(field)
    if field.startswith("regret"):
        label += f" in {regret_metric}" if regret_metric else ""
        return label + "\n(0 = best; darker = lower)"
    return label + ("\n(darker = fewer)" if field.startswith("epochs") else "\n(darker = lower)")


def heatmap_notes(grids: Sequence[Mapping[str, Any]], averaged: Sequence[str]) -> str:
    """The heatmap figure's footnote: what was averaged over and what the marks mean."""
    notes = []
    if averaged:
        notes.append("each cell is the mean over " + ", ".join(averaged))
    if any(any(row) for g in grids for row in g["censored"]):
        notes.append("≥n: never stopped within the log (censored)")
    if any(any(row) for g in grids for row in g["partly_censored"]):
        notes.append("*: some of the averaged settings never stopped")
    if any(v is None for g in grids for row in g["values"] for v in row):
        notes.append("blank: unknown (no held-out value)")
    return "; ".join(notes)


# ----------------------------------------------------------------------------------
# 3. Trade-off: epochs trained against the kept checkpoint's held-out metric


def pareto_front(
    points: Iterable[tuple[float | None, float | None]], *, higher_is_better: bool = False
) -> list[tuple[float, float]]:
    """The non-dominated points: fewer epochs (x) and a better metric (y).

    Points with a missing coordinate (None/NaN) are skipped; duplicates appear once.
    Returns them sorted by x ascending (so y strictly improves along the list).

    >>> pareto_front([(5, 0.3), (3, 0.4), (8, 0.35), (3, 0.5)])
    [(3.0, 0.4), (5.0, 0.3)]
    """
    clean = [(float(x), float(y)) for x, y in points if not is_missing(x) and not is_missing(y)]
    sign = -1.0 if higher_is_better else 1.0
    clean.sort(key=lambda p: (p[0], sign * p[1]))
    front: list[tuple[float, float]] = []
    best = math.inf
    for x, y in clean:
        if sign * y < best:
            front.append((x, y))
            best = sign * y
    return front


def tradeoff_points(
    records: Sequence[Mapping[str, Any]],
    metric: str,
    *,
    x_field: str = "epochs_trained",
    metrics_field: str = "final_metrics",
) -> list[dict[str, Any]]:
    """One point per stopping setting with both coordinates known.

    Returns dicts ``{"x", "y", "policy", "patience", "censored", "label"}`` where
    ``y = record[metrics_field][metric]``; settings with a missing x or y are left out.
    """
    stops = stop_records(records)
    varying = varying_values(r.get("params") or {} for r in stops if r["policy"] == EARLY_STOPPING)
    out = []
    for r in stops:
        x = r.get(x_field)
        y = (r.get(metrics_field) or {}).get(metric)
        if is_missing(x) or is_missing(y):
            continue
        params = r.get("params") or {}
        out.append(
            {
                "x": float(x),
                "y": float(y),
                "policy": r["policy"],
                "patience": params.get("patience") if r["policy"] == EARLY_STOPPING else None,
                "censored": is_censored(r),
                "label": setting_label(r["policy"], params, varying, style="chart"),
            }
        )
    return out


def front_listing(
    front: Sequence[tuple[float, float]], points: Sequence[Mapping[str, Any]], metric: str
) -> list[str]:
    """The lines naming the Pareto front's settings under the trade-off chart, fewest
    epochs first, at most :data:`MAX_FRONT_LISTED` of them (the chart numbers them 1,
    2, ...); empty without a front.
    """
    if not front:
        return []
    listed = front[:MAX_FRONT_LISTED]
    labels_of: dict[tuple[float, float], list[Mapping[str, Any]]] = {}
    for p in points:
        labels_of.setdefault((p["x"], p["y"]), []).append(p)
    shown = "" if len(front) <= len(listed) else f" (first {len(listed)} shown)"
    lines = [f"Pareto front, fewest epochs first{shown}:"]
    for i, (x, y) in enumerate(listed, start=1):
        same = labels_of[(x, y)]
        more = f"  (and {len(same) - 1} more with the same outcome)" if len(same) > 1 else ""
        cens = "  [never stopped: censored]" if all(p["censored"] for p in same) else ""
        epochs = f"{x:.0f}" if x.is_integer() else f"{x:.1f}"
        lines.append(f"{i}.  {epochs} epochs, {metric} {y:.4g}:  {same[0]['label']}{more}{cens}")
    return lines
