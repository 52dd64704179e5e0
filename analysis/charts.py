"""The four sweep charts, and the plain-data helpers that decide what they show.

Each chart is two steps: a *compute* helper that turns sweep records into plain
Python data (lists, dicts, tuples: easy to test without drawing), and a *draw*
function that builds its own ``matplotlib.figure.Figure`` (Agg canvas, no pyplot,
no global style) and returns it. The caller saves it with :func:`save_figure`.

Charts (``replay sweep --out DIR`` writes them):

- :func:`curves_figure`: train/validation/test curves of the monitored metric, and
  below them, one row per patience (or Prechelt criterion) with each setting's stop
  epoch and kept epoch, the oracle epoch and the censored band past the log's end.
- :func:`early_stopping_figure`: annotated heatmaps, patience x other parameters,
  of epochs trained and regret.
- :func:`lr_schedules_figure`: ReduceLROnPlateau schedules (log scale), coloured by
  factor, with the recorded rate and each schedule's counterfactual boundary.
- :func:`tradeoff_figure`: epochs trained against the held-out metric of the kept
  checkpoint, with the Pareto front and reference lines.

Multi-run sweeps: :func:`aggregate` folds records into one row per (policy, params)
with ``<field>_mean`` / ``_worst`` / ``_spread``; pass those rows to
:func:`early_stopping_figure` with ``value_fields=("epochs_trained_mean",
"regret_mean")`` and to :func:`tradeoff_figure` with ``x_field="epochs_trained_mean",
metrics_field="final_metrics_mean"``.

matplotlib is imported inside the drawing functions only, so the compute helpers
(and :func:`aggregate`) cost nothing to import. Never imports TensorFlow or ``replay``.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.names import base_name

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "aggregate",
    "choose_heatmap_axes",
    "curves_figure",
    "dodge",
    "early_stopping_figure",
    "heatmap_grid",
    "lr_schedule_lines",
    "lr_schedules_figure",
    "records_higher_is_better",
    "pareto_front",
    "save_figure",
    "stop_marks",
    "tradeoff_figure",
    "tradeoff_points",
]

DPI = 110
MAX_FRONT_LISTED = 8  # the trade-off chart names at most this many front settings
LR_DECADES_SHOWN = 1e-6  # the LR chart shows at most 6 decades below the highest rate
STOP_POLICIES = ("early_stopping", "prechelt")
LR_POLICY = "reduce_lr_on_plateau"

# Okabe-Ito colours (colour-blind safe) for the fixed series.
_TRAIN, _VAL, _TEST = "#0072B2", "#E69F00", "#009E73"
_FRONT = "#D55E00"
_ORACLE = "black"
_CENSORED_EDGE = "0.55"
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
_SHORT = {
    "patience": "patience",
    "min_delta": "min_delta",
    "restore_best_weights": "restore",
    "start_from_epoch": "start",
    "baseline": "baseline",
    "monitor": "monitor",
    "mode": "mode",
}


# ----------------------------------------------------------------------------------
# Small shared helpers


def _missing(v: Any) -> bool:
    """True for None and for a float NaN (both mean "no value" in a chart)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if not _missing(v)]
    return sum(vals) / len(vals) if vals else None


def _sort_key(v: Any) -> tuple:
    """Order mixed parameter values: None first, then by type name, then by value."""
    if v is None:
        return (0, "", 0)
    if isinstance(v, bool):
        return (1, "bool", int(v))
    if isinstance(v, (int, float)):
        return (1, "num", v)
    return (1, type(v).__name__, str(v))


def _freeze(v: Any) -> Hashable:
    if isinstance(v, Mapping):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _fmt(v: Any) -> str:
    """A parameter value as a short label: 0.001, none, yes/no."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _humanize(name: str) -> str:
    """``test_loss`` -> ``test loss``; ``regret_mean`` -> ``regret (mean over runs)``."""
    for suffix, words in (("_mean", "mean"), ("_worst", "worst"), ("_spread", "max-min")):
        if name.endswith(suffix):
            return f"{_humanize(name[: -len(suffix)])} ({words} over runs)"
    return name.replace("_", " ")


def records_higher_is_better(records: Iterable[Mapping[str, Any]]) -> bool | None:
    """Whether the records' monitored metric is maximized, from the mode the sweep
    resolved for it (``params["mode"]``, "min" or "max"); None when no record carries
    a mode or they disagree. Never guessed from a metric's name.

    >>> records_higher_is_better([{"params": {"mode": "max"}}, {"params": {}}])
    True
    """
    modes = {(r.get("params") or {}).get("mode") for r in records} - {None}
    return modes.pop() == "max" if len(modes) == 1 else None


def _is_censored(rec: Mapping[str, Any]) -> bool:
    """A record (or aggregate row, where every run was censored) that never stopped."""
    if "censored_runs" in rec:
        return bool(rec.get("runs")) and rec["censored_runs"] == rec["runs"]
    return bool(rec.get("censored"))


def _stop_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("policy") in STOP_POLICIES]


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


def _varying_params(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Parameter names with more than one distinct value across ``records``."""
    seen: dict[str, set] = {}
    for r in records:
        for k, v in (r.get("params") or {}).items():
            seen.setdefault(k, set()).add(_freeze(v))
    return [k for k, vals in seen.items() if len(vals) > 1]


def _setting_label(rec: Mapping[str, Any], varying: Sequence[str]) -> str:
    """A short label for one setting, naming only the parameters that vary."""
    p = rec.get("params") or {}
    if rec.get("policy") == "prechelt":
        return _prechelt_label(p)
    parts = [f"{_SHORT.get(k, k)} {_fmt(p[k])}" for k in varying if k in p]
    return ", ".join(parts) or "default"


def _prechelt_label(p: Mapping[str, Any], with_strip: bool = False) -> str:
    crit = str(p.get("criterion", "?")).upper()
    if crit == "UP":
        label = f"UP s={_fmt(p.get('strips'))}"
    else:
        label = f"{crit} α={_fmt(p.get('alpha'))}"
    if with_strip:
        label += f", k={_fmt(p.get('strip_length'))}"
    return label


# ----------------------------------------------------------------------------------
# Figure plumbing


def _figure(width: float = 10.0, height: float = 6.0) -> Figure:
    """A fresh pyplot-free Figure on an Agg canvas.

    No layout engine: each chart places its axes with margins given in inches
    (:func:`_place`). Constrained layout gives the same picture here but costs an
    extra measuring pass over every text at save time (about a third of the
    rendering time on a 2-core machine), and these charts' contents are known.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _place(fig: Figure, left: float, bottom: float, width: float, height: float,
           **kwargs: Any) -> Axes:
    """Add axes at a rectangle given in inches from the figure's lower-left corner."""
    w, h = fig.get_size_inches()
    return fig.add_axes((left / w, bottom / h, width / w, height / h), **kwargs)


def _move(ax: Axes, left: float, bottom: float, width: float, height: float) -> None:
    """Set an axes' rectangle, in inches from the figure's lower-left corner."""
    w, h = ax.figure.get_size_inches()
    ax.set_position((left / w, bottom / h, width / w, height / h))


def _text_inches(text: str, size: float) -> float:
    """Rough printed width of ``text`` in DejaVu Sans at ``size`` points."""
    longest = max((len(line) for line in text.split("\n")), default=0)
    return longest * size * 0.6 / 72


def _suptitle(fig: Figure, title: str) -> None:
    h = fig.get_size_inches()[1]
    fig.suptitle(title, fontsize=13, y=1 - 0.1 / h, va="top")


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def _cmap(name: str, bad: str | None = None):
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap.with_extremes(bad=bad) if bad is not None else cmap


def _patience_colors(patiences: Sequence[Any]):
    """A function patience -> RGBA (viridis, its pale yellow end cut off) and the norm."""
    from matplotlib.colors import Normalize

    vals = [float(p) for p in patiences if not _missing(p)]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    norm = Normalize(lo, hi)
    cmap = _cmap("viridis").resampled(256)
    from matplotlib.colors import ListedColormap

    cut = ListedColormap(cmap(list(x / 255 * 0.88 for x in range(256))), name="viridis_cut")

    def color(p: Any):
        return "0.35" if _missing(p) else cut(norm(float(p)))

    return color, norm, cut


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as a PNG (dpi 110) atomically, then close (clear) it.

    The image goes to a temporary file in the same directory and is moved into
    place with :func:`os.replace`, so ``path`` is never left half-written; its
    permissions follow the umask like any new file's.
    Raises OSError when the directory is missing or not writable.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}.png")
    # Not tempfile.mkstemp: its 0600 would stay on the chart. Mode 0666 here is
    # narrowed by the umask, as for any file open() creates (results.csv: 0644).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            # zlib level 3 instead of 6: a few percent larger, noticeably faster.
            fig.savefig(fh, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        fig.clear()


# ----------------------------------------------------------------------------------
# 1. Curves with stop / kept epochs


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
    stops = _stop_records(records)
    es_pat = sorted(
        {r["params"].get("patience") for r in stops if r["policy"] == "early_stopping"},
        key=_sort_key,
    )
    prechelt = [r for r in stops if r["policy"] == "prechelt"]
    several_k = len({(r.get("params") or {}).get("strip_length") for r in prechelt}) > 1
    pre_keys: list[Hashable] = []
    pre_labels: dict[Hashable, str] = {}
    for r in prechelt:
        p = r.get("params") or {}
        key = (p.get("criterion"), p.get("alpha"), p.get("strips"), p.get("strip_length"))
        if key not in pre_labels:
            pre_keys.append(key)
            pre_labels[key] = _prechelt_label(p, with_strip=several_k)
    rows = [f"patience {_fmt(p)}" for p in es_pat] + [pre_labels[k] for k in pre_keys]
    row_patience: list[Any] = list(es_pat) + [None] * len(pre_keys)
    row_of_pat = {_freeze(p): i for i, p in enumerate(es_pat)}
    row_of_pre = {k: len(es_pat) + i for i, k in enumerate(pre_keys)}

    marks: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for r in stops:
        p = r.get("params") or {}
        if r["policy"] == "early_stopping":
            row = row_of_pat[_freeze(p.get("patience"))]
            patience = p.get("patience")
        else:
            key = (p.get("criterion"), p.get("alpha"), p.get("strips"), p.get("strip_length"))
            row = row_of_pre[key]
            patience = None
        censored = _is_censored(r)
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


def curves_figure(
    metrics: pd.DataFrame,
    monitor: str,
    records: Sequence[Mapping[str, Any]],
    *,
    oracle_epoch: int | None,
    heldout: str | None,
    title: str = "",
) -> Figure:
    """Training curves of ``monitor``'s base metric, and where each setting stops.

    Top panel: the train / validation / test curves (``val_loss`` -> ``loss``,
    ``val_loss``, ``test_loss``, whichever exist). Bottom panel: one row per
    patience (and per Prechelt criterion): x marks the stop epoch, o the kept epoch
    (whose weights you end with), coloured by patience; settings that never stopped
    sit in the hatched band past the last epoch ("never stopped (censored)"). The
    oracle epoch (best ``heldout`` value) is a vertical line across both panels.
    Returns the Figure.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    n = len(metrics)
    epochs = [float(e) for e in metrics.index]
    base = base_name(monitor)
    series = [
        (col, label, color)
        for col, label, color in (
            (base, "train", _TRAIN),
            (f"val_{base}", "validation", _VAL),
            (f"test_{base}", "test", _TEST),
        )
        if col in metrics.columns and metrics[col].notna().any()
    ]
    data = stop_marks(records, n)
    rows = data["rows"]
    n_rows = max(len(rows), 1)
    row_font = 8 if n_rows <= 16 else 6

    # -- layout in inches: curves on top, one strip per setting row below
    top_h = 3.3
    bottom_h = min(max(0.2 * n_rows, 1.4), 4.5)
    height = 0.55 + top_h + 0.5 + bottom_h + 0.55
    fig = _figure(10.0, height)
    legend_labels = [f"{label} ({col})" for col, label, _ in series]
    what = f"best {heldout}" if heldout else "best held-out value"
    oracle_label = f"oracle epoch {oracle_epoch}\n({what})"
    legend_labels += [oracle_label, "past the log's end", "kept epoch (final weights)"]
    right = 0.35 + 0.45 + max(_text_inches(t, 8) for t in legend_labels)
    left = max(0.8, 0.45 + _text_inches(max(rows, key=len, default=""), row_font))
    width = 10.0 - left - right
    bottom = _place(fig, left, 0.55, width, bottom_h)
    top = _place(fig, left, 0.55 + bottom_h + 0.5, width, top_h, sharex=bottom)
    _suptitle(fig, title or f"{monitor}: where each setting stops and which epoch it keeps")

    # -- top: curves
    for col, label, color in series:
        top.plot(epochs, metrics[col].to_numpy(dtype=float), color=color,
                 lw=2.2 if col == monitor else 1.5, marker="o", ms=3, label=f"{label} ({col})")
    if not series:
        _empty(top, f"no {base} / val_{base} / test_{base} values in the log")
    top.set_ylabel(_humanize(base))
    top.grid(True, alpha=0.3)
    top.set_title("Recorded curves", fontsize=10, loc="left")
    top.tick_params(labelbottom=False)

    # -- censored band past the log's end, and the oracle epoch, on both panels
    band = (n - 0.5, n + 0.5)
    for ax in (top, bottom):
        ax.axvspan(*band, facecolor="0.93", edgecolor=_CENSORED_EDGE, hatch="///", lw=0.0,
                   zorder=0)
        if oracle_epoch is not None:
            ax.axvline(oracle_epoch, color=_ORACLE, ls="--", lw=1.2, zorder=1)
    handles, _ = top.get_legend_handles_labels()
    if oracle_epoch is not None:
        handles.append(Line2D([], [], color=_ORACLE, ls="--", lw=1.2, label=oracle_label))
    handles.append(Patch(facecolor="0.93", edgecolor=_CENSORED_EDGE, hatch="///",
                         label="past the log's end"))
    top.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
               frameon=False)

    # -- bottom: stop / kept epochs per setting
    marks = data["marks"]
    if not marks:
        _empty(bottom, "no early-stopping or Prechelt settings in this sweep")
    else:
        color_of, _, _ = _patience_colors(data["row_patience"])
        segs, seg_colors = [], []
        stop_xy, stop_c, kept_xy, kept_c, cens_xy, cens_c = [], [], [], [], [], []
        for m in marks:
            c = color_of(m["patience"])
            end = m["censored_x"] if m["censored"] else m["stop"]
            if m["final"] is not None and end is not None and m["final"] != end:
                segs.append([(m["final"], m["y"]), (end, m["y"])])
                seg_colors.append(c)
            if m["censored"]:
                cens_xy.append((m["censored_x"], m["y"]))
                cens_c.append(c)
            elif m["stop"] is not None:
                stop_xy.append((m["stop"], m["y"]))
                stop_c.append(c)
            if m["final"] is not None:
                kept_xy.append((m["final"], m["y"]))
                kept_c.append(c)
        if segs:
            bottom.add_collection(LineCollection(segs, colors=seg_colors, lw=0.8, alpha=0.6))
        if stop_xy:
            xs, ys = zip(*stop_xy, strict=True)
            bottom.scatter(xs, ys, marker="x", s=30, c=stop_c, lw=1.4, zorder=3)
        if kept_xy:
            xs, ys = zip(*kept_xy, strict=True)
            bottom.scatter(xs, ys, marker="o", s=30, facecolors="none", edgecolors=kept_c,
                           lw=1.3, zorder=3)
        if cens_xy:
            xs, ys = zip(*cens_xy, strict=True)
            bottom.scatter(xs, ys, marker=">", s=30, c=cens_c, zorder=3)
        bottom.set_yticks(range(len(rows)))
        bottom.set_yticklabels(rows, fontsize=row_font)
        for tick, p in zip(bottom.get_yticklabels(), data["row_patience"], strict=True):
            tick.set_color(color_of(p))
        bottom.set_ylim(-0.6, len(rows) - 0.4)
        legend = [
            Line2D([], [], marker="x", ls="none", color="0.2", label="stop epoch"),
            Line2D([], [], marker="o", ls="none", mfc="none", color="0.2",
                   label="kept epoch (final weights)"),
            Line2D([], [], marker=">", ls="none", color="0.2",
                   label="never stopped\n(censored)"),
        ]
        bottom.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      fontsize=8, frameon=False, title="colour: patience",
                      title_fontsize=8, alignment="left")
    bottom.set_title("Each setting (different outcomes within a row are spread vertically)",
                     fontsize=10, loc="left")
    bottom.set_xlabel("epoch (0-based, as in CSVLogger)")
    bottom.set_xlim(-0.5, n + 0.5)
    bottom.grid(True, axis="x", alpha=0.3)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


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
    varying = [k for k in _varying_params(records) if k != "patience"]
    ordered = [k for k in _COLUMN_PREFERENCE if k in varying]
    ordered += [k for k in varying if k not in ordered]
    distinct = {
        k: len({_freeze((r.get("params") or {}).get(k)) for r in records}) for k in ordered
    }
    cols: list[str] = []
    product = 1
    averaged: list[str] = []
    for k in ordered:
        if product * distinct[k] <= _MAX_HEATMAP_COLUMNS:
            cols.append(k)
            product *= distinct[k]
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
        cells.setdefault((_freeze(rk), _freeze(ck)), []).append(r)
    rows.sort(key=_sort_key)
    cols.sort(key=lambda c: tuple(_sort_key(x) for x in c) if not single else _sort_key(c))

    values, counts, censored, partly = [], [], [], []
    for rk in rows:
        v_row, n_row, c_row, p_row = [], [], [], []
        for ck in cols:
            cell = cells.get((_freeze(rk), _freeze(ck)), [])
            v_row.append(_mean(r.get(value) for r in cell))
            n_row.append(sum(1 for r in cell if not _missing(r.get(value))))
            flags = [_is_censored(r) for r in cell]
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


def _col_labels(names: Sequence[str], cols: Sequence[Any]) -> tuple[list[str], str]:
    """Tick labels (values only, one line per parameter) and the axis label naming them."""
    if not names:
        return ["all settings"] * len(cols), ""
    labels = []
    for key in cols:
        vals = key if isinstance(key, tuple) else (key,)
        labels.append("\n".join(_fmt(v) for v in vals))
    if len(names) == 1:
        return labels, names[0]
    return labels, " / ".join(names) + " (top to bottom)"


def _cell_text(field: str, v: float | None, censored: bool, partly: bool) -> str:
    """A heatmap cell's label; epochs of censored settings are lower bounds (``≥30``)."""
    if v is None:
        return ""
    if not field.startswith("epochs_trained"):
        return "0" if v == 0 else f"{v:.3g}"
    text = f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    if censored:
        return "≥" + text
    return text + "*" if partly else text


def early_stopping_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    value_fields: Sequence[str] = ("epochs_trained", "regret"),
    title: str = "",
) -> Figure:
    """Annotated heatmaps (patience x other parameters) of each of ``value_fields``.

    Uses the ``early_stopping`` records (or :func:`aggregate` rows, with
    ``value_fields=("epochs_trained_mean", "regret_mean")``); columns are chosen by
    :func:`choose_heatmap_axes`, and the footnote names any parameter averaged over.
    Cells read ``≥n`` where every setting ran to the end of the log (censored), and
    are blank where the value is unknown (e.g. no held-out metric). Returns the Figure.
    """
    import numpy as np

    recs = [r for r in records if r.get("policy") == "early_stopping"]
    fields = list(value_fields) or ["epochs_trained"]
    n_panels = len(fields)
    width, height = 10.0, 6.0
    fig = _figure(width, height)
    # In inches: the first panel's y labels, then the heatmaps with a gap between
    # them; later panels share the first's rows. Every cell carries its value, so
    # there are no colour bars (each would be one more axes with ticks to draw).
    lab, gap, right = 0.75, 0.35, 0.2
    hm_w = (width - lab - right - (n_panels - 1) * gap) / n_panels
    y0, hm_h = 0.95, height - 0.95 - 0.75
    axes: list[Axes] = []
    for i in range(n_panels):
        x = lab + i * (hm_w + gap)
        axes.append(_place(fig, x, y0, hm_w, hm_h, sharey=axes[0] if axes else None))
    if not recs:
        _suptitle(fig, title or "Early stopping")
        for ax in axes:
            _empty(ax, "no early-stopping settings in this sweep")
        return fig

    row_param, col_params, averaged = choose_heatmap_axes(recs)
    cols_desc = " × ".join(col_params)
    _suptitle(fig, title or "Early stopping by patience" + (f" × {cols_desc}" if cols_desc else ""))
    regret_metric = next((r.get("regret_metric") for r in recs if r.get("regret_metric")), None)
    any_partly = any_censored = any_blank = False
    for i, (ax, field) in enumerate(zip(axes, fields, strict=True)):
        grid = heatmap_grid(recs, row_param, col_params or None, field)
        any_partly = any_partly or any(any(row) for row in grid["partly_censored"])
        any_censored = any_censored or any(any(row) for row in grid["censored"])
        any_blank = any_blank or any(v is None for row in grid["values"] for v in row)
        arr = np.array(
            [[np.nan if v is None else v for v in row] for row in grid["values"]], dtype=float
        )
        masked = np.ma.masked_invalid(arr)
        cmap = _cmap(("viridis", "cividis")[i % 2], bad="white")
        im = ax.imshow(masked, cmap=cmap, aspect="auto", interpolation="nearest")
        if masked.count() == 0:
            im.set_clim(0, 1)
        label = _humanize(field)
        if field.startswith("regret"):
            label += f" in {regret_metric}" if regret_metric else ""
            label += "\n(0 = best; darker = lower)"
        else:
            label += "\n(darker = fewer)" if field.startswith("epochs") else "\n(darker = lower)"
        ax.set_title(label, fontsize=10)
        n_rows, n_cols = arr.shape
        size = 8 if n_rows <= 14 and n_cols <= 6 else 7
        rgba = cmap(im.norm(masked.filled(0.0)))
        dark = rgba[..., :3] @ np.array([0.299, 0.587, 0.114]) < 0.5  # text colour
        for y in range(n_rows):
            for x in range(n_cols):
                text = _cell_text(field, grid["values"][y][x], grid["censored"][y][x],
                                  grid["partly_censored"][y][x])
                if text:
                    ax.text(x, y, text, ha="center", va="center", fontsize=size,
                            color="white" if dark[y, x] else "black")
        ticks, xlabel = _col_labels(col_params, grid["cols"])
        ax.set_xticks(range(n_cols))
        ax.set_xticklabels(ticks, fontsize=8)
        ax.set_xlabel(xlabel)
        if i == 0:
            ax.set_yticks(range(n_rows))
            ax.set_yticklabels([_fmt(v) for v in grid["rows"]], fontsize=8)
            ax.set_ylabel("patience (epochs)")
        else:
            ax.tick_params(labelleft=False)
        # Cell separators as two collections (minor ticks would cost a Text each).
        ax.hlines(np.arange(0.5, n_rows - 1), -0.5, n_cols - 0.5, colors="white", lw=0.8)
        ax.vlines(np.arange(0.5, n_cols - 1), -0.5, n_rows - 0.5, colors="white", lw=0.8)
        ax.tick_params(length=0)
    notes = []
    if averaged:
        notes.append("each cell is the mean over " + ", ".join(averaged))
    if any_censored:
        notes.append("≥n: never stopped within the log (censored)")
    if any_partly:
        notes.append("*: some of the averaged settings never stopped")
    if any_blank:
        notes.append("blank: unknown (no held-out value)")
    if notes:
        fig.text(0.5, 0.08 / height, "; ".join(notes), ha="center", va="bottom", fontsize=8,
                 color="0.3")
    return fig


# ----------------------------------------------------------------------------------
# 3. Learning-rate schedules


def _step_xy(lr: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """Vertices of a post-step line: the rate lr[i] holds over [i, i + 1]."""
    xs: list[float] = []
    ys: list[float] = []
    for i, v in enumerate(lr):
        y = math.nan if _missing(v) or v <= 0 else float(v)
        xs += [float(i), float(i + 1)]
        ys += [y, y]
    return xs, ys


def lr_schedule_lines(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Distinct ReduceLROnPlateau schedules, grouped, in factor order.

    Returns one dict per distinct (factor, schedule, counterfactual_from):
    ``{"factor", "lr" (list), "counterfactual_from", "settings" (how many records
    share it)}``. Records of other policies are ignored.
    """
    out: dict[Hashable, dict[str, Any]] = {}
    for r in records:
        if r.get("policy") != LR_POLICY:
            continue
        factor = (r.get("params") or {}).get("factor")
        lr = list(r.get("lr") or [])
        cf = r.get("counterfactual_from")
        key = (_freeze(factor), tuple(lr), cf)
        if key not in out:
            out[key] = {"factor": factor, "lr": lr, "counterfactual_from": cf, "settings": 0}
        out[key]["settings"] += 1
    return sorted(out.values(), key=lambda d: _sort_key(d["factor"]))


def lr_schedules_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    recorded_lr: Sequence[float | None] | None,
    title: str = "",
) -> Figure:
    """Learning rate per epoch for each ReduceLROnPlateau setting, log scale.

    Identical schedules are drawn once; colour is the factor (one legend entry per
    factor, with how many settings and distinct schedules it covers). The log's
    own rate is black dashed; a dot marks each schedule's counterfactual boundary
    (from that epoch on, the recorded metrics were produced under another rate).
    Returns the Figure.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        MaxNLocator,
        NullFormatter,
        NullLocator,
    )

    lines = lr_schedule_lines(records)
    n_settings = sum(d["settings"] for d in lines)
    fig = _figure(10.0, 6.0)
    ax = _place(fig, 0.9, 0.65, 6.5, 4.75)
    _suptitle(fig, title or f"ReduceLROnPlateau: learning-rate schedules ({n_settings} settings)")
    if not lines and recorded_lr is None:
        _empty(ax, "no reduce_lr_on_plateau settings in this sweep")
        return fig
    factors = sorted({_freeze(d["factor"]) for d in lines}, key=_sort_key)
    cmap = _cmap("viridis")
    color = {
        f: cmap(0.85 * i / max(len(factors) - 1, 1)) for i, f in enumerate(factors)
    }
    handles = []
    lw = 1.6 if len(lines) <= 10 else 1.0
    for f in factors:
        group = [d for d in lines if _freeze(d["factor"]) == f]
        segs = []
        for d in group:
            xs, ys = _step_xy(d["lr"])
            segs.append(list(zip(xs, ys, strict=True)))
        ax.add_collection(LineCollection(segs, colors=[color[f]], lw=lw, alpha=0.8))
        cf_x = [d["counterfactual_from"] for d in group
                if d["counterfactual_from"] is not None
                and d["counterfactual_from"] < len(d["lr"])]
        cf_y = [d["lr"][d["counterfactual_from"]] for d in group
                if d["counterfactual_from"] is not None
                and d["counterfactual_from"] < len(d["lr"])]
        if cf_x:
            ax.scatter(cf_x, cf_y, s=28, color=color[f], edgecolors="black", lw=0.6,
                       zorder=4)
        n_set = sum(d["settings"] for d in group)
        handles.append(Line2D([], [], color=color[f], lw=2,
                              label=f"factor {_fmt(f)}: {n_set} settings, "
                                    f"{len(group)} distinct"))
    if recorded_lr is not None and any(not _missing(v) for v in recorded_lr):
        xs, ys = _step_xy(recorded_lr)
        ax.plot(xs, ys, color="black", ls="--", lw=1.6, zorder=5)
        handles.append(Line2D([], [], color="black", ls="--", lw=1.6,
                              label="recorded learning rate"))
    if any(d["counterfactual_from"] is not None for d in lines):
        handles.append(Line2D([], [], marker="o", ls="none", color="0.6", mec="black",
                              label="counterfactual from here on\n"
                                    "(metrics recorded under another rate)"))
    ax.set_yscale("log")
    ax.autoscale_view()
    clipped_note = ""
    # Plain-text tick labels (0.001, 1e-05): the default ones go through mathtext,
    # whose first use costs a noticeable fraction of a second.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    distinct = {v for d in lines for v in d["lr"] if not _missing(v) and v > 0}
    distinct |= {v for v in recorded_lr or [] if not _missing(v) and v > 0}
    if 0 < len(distinct) <= 8:
        ax.yaxis.set_major_locator(FixedLocator(sorted(distinct)))
    elif distinct and min(distinct) < max(distinct) * LR_DECADES_SHOWN:
        # A schedule cut every epoch reaches 1e-20 and would squash the rest.
        floor = max(distinct) * LR_DECADES_SHOWN
        ax.set_ylim(floor / 1.5, max(distinct) * 3)
        clipped_note = f"rates below {floor:g} are cut off"
    if distinct and max(distinct) / min(distinct) > 1e3:
        # Over many decades, minor ticks are clutter (and each costs a Tick to draw).
        ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("epoch (0-based; the rate in effect during the epoch)")
    ax.set_ylabel("learning rate (log scale)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    right = 0.3 + 0.45 + max(_text_inches(h.get_label(), 8) for h in handles)
    _move(ax, 0.9, 0.65, 10.0 - 0.9 - right, 4.75)
    if clipped_note:
        fig.text((10.0 - right + 0.15) / 10.0, 0.65 / 6.0, clipped_note, fontsize=8,
                 color="0.3", ha="left", va="bottom")
    return fig


# ----------------------------------------------------------------------------------
# 4. Trade-off: epochs trained against the kept checkpoint's held-out metric


def pareto_front(
    points: Iterable[tuple[float | None, float | None]], *, higher_is_better: bool = False
) -> list[tuple[float, float]]:
    """The non-dominated points: fewer epochs (x) and a better metric (y).

    Points with a missing coordinate (None/NaN) are skipped; duplicates appear once.
    Returns them sorted by x ascending (so y strictly improves along the list).

    >>> pareto_front([(5, 0.3), (3, 0.4), (8, 0.35), (3, 0.5)])
    [(3.0, 0.4), (5.0, 0.3)]
    """
    clean = [(float(x), float(y)) for x, y in points if not _missing(x) and not _missing(y)]
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
    stops = _stop_records(records)
    varying = _varying_params([r for r in stops if r["policy"] == "early_stopping"])
    out = []
    for r in stops:
        x = r.get(x_field)
        y = (r.get(metrics_field) or {}).get(metric)
        if _missing(x) or _missing(y):
            continue
        out.append(
            {
                "x": float(x),
                "y": float(y),
                "policy": r["policy"],
                "patience": (r.get("params") or {}).get("patience")
                if r["policy"] == "early_stopping"
                else None,
                "censored": _is_censored(r),
                "label": _setting_label(r, varying),
            }
        )
    return out


def tradeoff_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    full_run_value: float | None,
    oracle_value: float | None,
    metric: str,
    higher_is_better: bool | None = None,
    x_field: str = "epochs_trained",
    metrics_field: str = "final_metrics",
    title: str = "",
) -> Figure:
    """Epochs trained against ``metric`` at the kept checkpoint, one point per setting.

    The Pareto front (fewer epochs and a better metric) is a highlighted step line
    with its settings labelled; horizontal lines show the oracle (best value over all
    recorded epochs) and the full run (last epoch). ``higher_is_better`` defaults to
    the direction the records carry (:func:`records_higher_is_better`). For aggregate
    rows pass ``x_field="epochs_trained_mean", metrics_field="final_metrics_mean"``.
    Returns the Figure.

    Raises:
        ValueError: ``higher_is_better`` not given and no record carries a mode.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    pts = tradeoff_points(records, metric, x_field=x_field, metrics_field=metrics_field)
    if higher_is_better is None:
        higher_is_better = records_higher_is_better(records)
    if higher_is_better is None:
        if pts:
            raise ValueError(
                "tradeoff_figure: no record carries a resolved mode; pass higher_is_better."
            )
        higher_is_better = False  # nothing to rank
    front = pareto_front([(p["x"], p["y"]) for p in pts], higher_is_better=higher_is_better)
    listed = front[:MAX_FRONT_LISTED]
    # Below the axes: x label, legend, then one line per listed front point.
    foot = 1.3 + (0.15 * (len(listed) + 1) + 0.1 if listed else 0.0)
    width, height = 10.0, 5.4 + foot
    fig = _figure(width, height)
    has_bar = any(p["patience"] is not None for p in pts)
    right = 1.1 if has_bar else 0.3
    ax = _place(fig, 0.95, foot, width - 0.95 - right, height - foot - 0.6)
    direction = "higher" if higher_is_better else "lower"
    _suptitle(fig, title or f"Cost against outcome: epochs trained vs {_humanize(metric)}")
    ax.set_xlabel(_humanize(x_field))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    over = " (mean over runs)" if metrics_field.endswith("_mean") else ""
    ax.set_ylabel(f"{_humanize(metric)} at kept checkpoint{over} ({direction} is better)")
    ax.grid(True, alpha=0.3)
    handles = []
    if not pts:
        _empty(ax, f"no stopping settings with a {x_field} and a {metric}")
    else:
        offsets = dodge([(p["x"], p["y"]) for p in pts], width=0.5)
        color_of, norm, cut = _patience_colors([p["patience"] for p in pts])
        for is_pre, cens in ((False, False), (False, True), (True, False), (True, True)):
            sel = [
                (p["x"] + off, p["y"], color_of(p["patience"]))
                for p, off in zip(pts, offsets, strict=True)
                if (p["policy"] == "prechelt") == is_pre and p["censored"] == cens
            ]
            if not sel:
                continue
            xs, ys, cs = zip(*sel, strict=True)
            marker = "^" if is_pre else "o"
            if cens:  # hollow: the setting ran to the end of the log
                ax.scatter(xs, ys, marker=marker, s=42, facecolors="none", edgecolors=cs,
                           lw=1.3, zorder=3)
            else:
                ax.scatter(xs, ys, marker=marker, s=42, c=cs, edgecolors="white", lw=0.4,
                           zorder=3)
        if any(p["policy"] == "early_stopping" for p in pts):
            handles.append(Line2D([], [], marker="o", ls="none", color="#3b528b",
                                  label="early stopping (colour: patience)"))
        if any(p["policy"] == "prechelt" for p in pts):
            handles.append(Line2D([], [], marker="^", ls="none", color="0.35",
                                  label="Prechelt (GL / PQ / UP)"))
        if any(p["censored"] for p in pts):
            handles.append(Line2D([], [], marker="o", ls="none", mfc="none", color="0.35",
                                  label="hollow: never stopped (censored)"))
        fx, fy = [x for x, _ in front], [y for _, y in front]
        x_max = max(p["x"] for p in pts)
        ax.step(fx + ([x_max] if x_max > fx[-1] else []),
                fy + ([fy[-1]] if x_max > fx[-1] else []),
                where="post", color=_FRONT, lw=2.0, zorder=2)
        ax.scatter(fx, fy, s=150, facecolors="none", edgecolors=_FRONT, lw=1.8, zorder=4)
        handles.append(Line2D([], [], color=_FRONT, lw=2.0, marker="o", mfc="none", ms=10,
                              label="Pareto front (fewer epochs, better value)"))
        # Number the front's points on the chart and name their settings below it,
        # so that no label covers a data point.
        labels_of: dict[tuple[float, float], list[dict[str, Any]]] = {}
        for p in pts:
            labels_of.setdefault((p["x"], p["y"]), []).append(p)
        lines = [f"Pareto front, fewest epochs first"
                 f"{'' if len(front) <= len(listed) else f' (first {len(listed)} shown)'}:"]
        for i, (x, y) in enumerate(listed, start=1):
            ax.annotate(str(i), (x, y), xytext=(-7, 7), textcoords="offset points",
                        ha="right", fontsize=8, fontweight="bold", color=_FRONT, zorder=6)
            same = labels_of[(x, y)]
            more = f"  (and {len(same) - 1} more with the same outcome)" if len(same) > 1 else ""
            cens = "  [never stopped: censored]" if all(p["censored"] for p in same) else ""
            epochs = f"{x:.0f}" if x.is_integer() else f"{x:.1f}"
            lines.append(
                f"{i}.  {epochs} epochs, {metric} {y:.4g}:  {same[0]['label']}{more}{cens}"
            )
        fig.text(0.95 / width, 0.1 / height, "\n".join(lines), ha="left", va="bottom",
                 fontsize=8, color="0.15", linespacing=1.35)
        if has_bar:
            from matplotlib.cm import ScalarMappable

            cax = _place(fig, width - right + 0.15, foot, 0.15, height - foot - 0.6)
            fig.colorbar(ScalarMappable(norm=norm, cmap=cut), cax=cax,
                         label="patience (epochs)")
    if oracle_value is not None and not _missing(oracle_value):
        ax.axhline(oracle_value, color=_ORACLE, ls="--", lw=1.2, zorder=1)
        handles.append(Line2D([], [], color=_ORACLE, ls="--", lw=1.2,
                              label=f"oracle (best epoch): {oracle_value:.4g}"))
    if full_run_value is not None and not _missing(full_run_value):
        ax.axhline(full_run_value, color="0.45", ls=":", lw=1.6, zorder=1)
        handles.append(Line2D([], [], color="0.45", ls=":", lw=1.6,
                              label=f"full run (last epoch): {full_run_value:.4g}"))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncols=3, fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, (foot - 1.3 + 0.05) / height))
    return fig


# ----------------------------------------------------------------------------------
# 5. Multi-run aggregate


def aggregate(
    records: Sequence[Mapping[str, Any]],
    fields: Sequence[str] = ("epochs_trained", "regret"),
) -> list[dict[str, Any]]:
    """One row per (policy, params) across runs: mean, worst and spread of ``fields``.

    Each row: ``policy``, ``params``, ``runs`` (records folded), ``run_names``,
    ``censored_runs`` (how many never stopped), ``regret_metric`` (when all agree,
    else None), ``final_metrics_mean`` (per metric, over runs that have it), and per
    field ``<field>_mean``, ``<field>_worst`` (the maximum: for epochs trained and
    regret, larger is worse) and ``<field>_spread`` (max - min). Missing values (None,
    NaN) are skipped; a field with no value gives None for all three. Rows keep the
    order in which their settings first appear.

    >>> rows = aggregate([{"policy": "p", "params": {"a": 1}, "run": r, "regret": v}
    ...                   for r, v in (("x", 0.1), ("y", 0.3))])
    >>> rows[0]["runs"], rows[0]["regret_mean"], rows[0]["regret_worst"]
    (2, 0.2, 0.3)
    """
    groups: dict[Hashable, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault((r.get("policy"), _freeze(r.get("params") or {})), []).append(r)
    out = []
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
            vals = [float(m[f]) for m in members if not _missing(m.get(f))]
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
        out.append(row)
    return out
