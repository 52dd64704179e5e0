"""Render sweep results: the table (with a plain-language verdict), CSV and JSON.

All three are rendered from the same records (their fields, policy names and setting
labels: :mod:`analysis.records`); CSV is the records flattened (``params.patience``,
``final_metrics.test_loss``, ...), JSON is them as they are.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.names import is_accuracy
from analysis.records import (
    COMBINED,
    EARLY_STOPPING,
    PRECHELT,
    REDUCE_LR_ON_PLATEAU,
    STOP_POLICIES,
    EarlyStoppingRecord,
    PlateauRecord,
    Record,
    StopRecord,
    aggregate,
    ranges,
    record_label,
    setting_label,
    varying_values,
)

if TYPE_CHECKING:  # pragma: no cover
    from replay.sweep import SweepResult

__all__ = ["flatten", "render_csv", "render_json", "render_table", "verdict"]

TABLE_ROWS = 12


def _finite_or_none(value):
    """``value`` with every non-finite float (NaN, +-inf), however nested, made None.

    >>> _finite_or_none({"a": [1.0, float("inf")], "b": float("nan")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row: nested dicts become dotted columns, lists become space-joined text."""
    row: dict = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for k, v in value.items():
                row[f"{key}.{k}"] = v
        elif isinstance(value, list):
            row[key] = " ".join(repr(v) for v in value)
        else:
            row[key] = value
    return row


def render_csv(records: Sequence[Record]) -> str:
    rows = [flatten(r) for r in records]
    columns: list[str] = []
    for row in rows:
        for k in row:
            if k not in columns:
                columns.append(k)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def render_json(records: Sequence[Record]) -> str:
    """The records as strict JSON: a non-finite float (NaN, +-inf) becomes null.

    ``json.dumps`` never hands floats to ``default``, so the records are cleaned only
    when the strict dump refuses them (rare: a diverged run's metrics).
    """
    records = list(records)
    try:
        text = json.dumps(records, indent=1, allow_nan=False)
    except ValueError:  # "Out of range float values are not JSON compliant"
        text = json.dumps(_finite_or_none(records), indent=1, allow_nan=False)
    return text + "\n"


def _rank_key(record: StopRecord):
    regret = record.get("regret")
    return (regret is None, regret if regret is not None else 0.0, record["epochs_trained"])


def _fmt_value(metric: str | None, value) -> str:
    if value is None:
        return "-"
    if is_accuracy(metric):
        return f"{100 * value:.2f}%"
    return f"{value:.4g}"


def _fmt_regret(metric: str | None, value) -> str:
    if value is None:
        return "-"
    if is_accuracy(metric):
        return f"{100 * value:.2f} pp"
    return f"{value:.3g}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in
              enumerate(headers)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _row_label(group: list[StopRecord]) -> str:
    """One label for the settings of one table row (the same outcome)."""
    first = group[0]
    if first["policy"] == PRECHELT:  # criteria differ in kind: list them
        return ", ".join(dict.fromkeys(record_label(r) for r in group))
    varying = varying_values(r["params"] for r in group)
    return setting_label(first["policy"], first["params"], varying)


def _outcome(r: StopRecord) -> tuple:
    return (r["stopped_epoch"], r["epochs_trained"], r["final_epoch"], r["regret"])


def _stop_rows(records: list[StopRecord], metric: str | None,
               limit: int) -> tuple[list[list[str]], int]:  # fmt: skip
    """Rows best first; settings with identical outcomes share one row."""
    groups: dict[tuple, list[StopRecord]] = {}
    for r in sorted(records, key=_rank_key):
        groups.setdefault(_outcome(r), []).append(r)
    ranked = list(groups.values())
    rows = []
    for group in ranked[:limit]:
        r = group[0]
        stop = "never (censored)" if r["censored"] else str(r["stopped_epoch"])
        cf = r.get("counterfactual_from")
        if cf is not None:  # a combined setting whose LR schedule no curve saw from cf on
            stop = f"unknown after {cf - 1}"
        value = (r["final_metrics"] or {}).get(metric) if metric else None
        rows.append(
            [
                _row_label(group),
                stop,
                str(r["epochs_trained"]),
                "-" if r["final_epoch"] is None else str(r["final_epoch"]),
                _fmt_value(metric, value),
                _fmt_regret(metric, r["regret"]),
            ]
        )
    return rows, sum(len(g) for g in ranked[limit:])


def _fmt_lr(rate: float, scale: str | None) -> str:
    """A learning rate; on the relative scale (the log had no rate) as a multiple.

    >>> _fmt_lr(0.00025, "absolute"), _fmt_lr(0.01, "relative")
    ('0.00025', '0.01x initial')
    """
    return f"{rate:.3g}x initial" if scale == "relative" else f"{rate:.3g}"


def _lr_rows(
    records: list[PlateauRecord], metric: str | None, limit: int
) -> tuple[list[list[str]], int]:
    """Rows of the ReduceLROnPlateau table: exact settings (the run's own schedule, or a
    branch's) first, by regret; then the others, by patience and factor."""

    def key(r: PlateauRecord):
        regret = r.get("regret")
        exact = r.get("final_epoch") is not None
        return (not exact, regret if regret is not None else 0.0,
                r["params"]["patience"], r["params"]["factor"])  # fmt: skip

    ranked = sorted(records, key=key)
    rows = []
    for r in ranked[:limit]:
        cuts = ",".join(str(e) for e in r["reductions"][:6]) or "none"
        if len(r["reductions"]) > 6:
            cuts += ",..."
        cf = r["counterfactual_from"]
        where = "exact" if cf is None else f"from epoch {cf}"
        if r.get("branch"):
            where += f" ({r['branch']})"
        final = r.get("final_metrics") or {}
        rows.append(
            [
                record_label(r),
                cuts,
                _fmt_lr(r["final_lr"], r.get("lr_scale")),
                where,
                _fmt_value(metric, final.get(metric) if metric else None),
                _fmt_regret(metric, r.get("regret")),
            ]
        )
    return rows, len(ranked) - len(rows)


def render_table(result: SweepResult, *, limit: int = TABLE_ROWS) -> str:
    """The human summary: per run and monitor, oracle line, best settings first, verdict."""
    out: list[str] = []
    multi = len(result.facts) > 1
    for oracle in result.oracles:
        run, monitor, metric = oracle["run"], oracle["monitor"], oracle["heldout"]
        mine = [r for r in result.records if r["run"] == run and r["params"]["monitor"] == monitor]
        out.append(f"== {run}: {result_epochs(result, run)} epochs, monitor {monitor} ==")
        if oracle["oracle_epoch"] is not None:
            out.append(
                f"oracle: best {metric} {_fmt_value(metric, oracle['oracle_value'])} at epoch "
                f"{oracle['oracle_epoch']}; the full run ends at "
                f"{_fmt_value(metric, oracle['last_value'])} (epoch {oracle['last_epoch']})."
            )
        for policy, title in ((EARLY_STOPPING, "EarlyStopping"), (PRECHELT, "Prechelt"),
                              (COMBINED, "EarlyStopping + ReduceLROnPlateau")):  # fmt: skip
            recs = [r for r in mine if r["policy"] == policy]
            if not recs:
                continue
            rows, more = _stop_rows(recs, metric, limit)
            headers = [
                "setting",
                "stopped at",
                "epochs",
                "kept epoch",
                metric or "held-out",
                "regret",
            ]
            out.append(f"\n{title} ({len(recs)} settings, best first)")
            out.append(_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
        recs = [r for r in mine if r["policy"] == REDUCE_LR_ON_PLATEAU]
        if recs:
            rows, more = _lr_rows(recs, metric, limit)
            out.append(f"\nReduceLROnPlateau ({len(recs)} settings, exact ones first)")
            headers = ["setting", "cuts after epochs", "final lr", "replay",
                       metric or "held-out", "regret"]  # fmt: skip
            out.append(_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
            if any(r["counterfactual_from"] is not None for r in recs):
                out.append(
                    "'from epoch N': the recorded metrics from epoch N on were produced with "
                    "a different learning rate than this schedule; decisions after that are "
                    "counterfactual."
                )
        text = verdict(mine, metric)
        if text:
            out.append("\n" + text)
        out.append("")
    if multi:
        out.append(render_aggregate(result.records))
    return "\n".join(out).rstrip() + "\n"


def result_epochs(result: SweepResult, run: str) -> int:
    for f in result.facts:
        if f.name == run:
            return f.n_epochs
    return 0


def render_aggregate(records: Sequence[Record], limit: int = TABLE_ROWS) -> str:
    rows = aggregate([r for r in records if r["policy"] in STOP_POLICIES])
    if not rows:
        return ""
    rows.sort(key=lambda r: (r["regret_mean"] is None, r["regret_mean"] or 0.0,
                             r["epochs_trained_mean"] or 0))  # fmt: skip
    table_rows = []
    for r in rows[:limit]:
        label = setting_label(r["policy"], r["params"])
        table_rows.append(
            [
                f"{r['params']['monitor']} {label}",
                str(r["runs"]),
                _num(r["regret_mean"]),
                _num(r["regret_worst"]),
                _num(r["regret_spread"]),
                _num(r["epochs_trained_mean"], ".1f"),
                f"{r['censored_runs']}/{r['runs']}",
            ]
        )
    headers = ["setting", "runs", "regret mean", "worst", "spread", "epochs mean", "censored"]
    text = [f"== across runs ({len(rows)} settings, best mean regret first) ==",
            _table(headers, table_rows)]  # fmt: skip
    if len(rows) > limit:
        text.append(f"... {len(rows) - limit} more settings in results.csv")
    return "\n".join(text)


def _num(v, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)


def verdict(records: Sequence[Record], metric: str | None) -> str:
    """A plain-language paragraph about the early-stopping patience sweep."""
    es = [r for r in records if r["policy"] == EARLY_STOPPING]
    if not es:
        return ""
    # Look at the default-like slice: smallest min_delta, no baseline, no warm-up.
    md = min(r["params"]["min_delta"] for r in es)
    start = min(r["params"]["start_from_epoch"] for r in es)
    sl = [
        r
        for r in es
        if r["params"]["min_delta"] == md
        and r["params"]["baseline"] is None
        and r["params"]["start_from_epoch"] == start
    ]
    sentences = []
    for restore in (True, False):
        part = sorted(
            (r for r in sl if r["params"]["restore_best_weights"] == restore),
            key=lambda r: r["params"]["patience"],
        )
        if not part:
            continue
        clauses = []
        stopped = [r for r in part if not r["censored"]]
        censored = [r for r in part if r["censored"]]
        # Group stopped settings by the size of their regret, in patience order.
        groups: list[list[EarlyStoppingRecord]] = []
        for r in stopped:
            if groups and _same_outcome(groups[-1][-1], r):
                groups[-1].append(r)
            else:
                groups.append([r])
        if len(groups) > 3:  # too many to list: one clause with ranges
            groups = [stopped]
        for g in groups:
            pats = ranges([r["params"]["patience"] for r in g])
            stops = ranges([r["stopped_epoch"] for r in g])
            kept = ranges([r["final_epoch"] for r in g])
            clauses.append(
                f"patience {pats} stop{'s' if len(g) == 1 else ''} at epoch {stops}, keep "
                f"epoch {kept} and {_cost(g, metric)}"
            )
        if censored:
            lo = min(r["params"]["patience"] for r in censored)
            hi = max(r["params"]["patience"] for r in censored)
            who = (
                f"patience >= {lo}"
                if hi == max(r["params"]["patience"] for r in part)
                else (f"patience {ranges([r['params']['patience'] for r in censored])}")
            )
            clauses.append(f"{who} never stops before the run ended (censored)")
        lead = "With restore_best_weights" if restore else "Without it"
        suffix = f" (min_delta={md:g})" if md else ""
        sentences.append(f"{lead}{suffix}: " + "; ".join(clauses) + ".")
    best = min(es, key=_rank_key)
    if best["regret"] is not None and metric:
        fewest = min((r for r in es if r["regret"] == best["regret"]),
                     key=lambda r: r["epochs_trained"])  # fmt: skip
        sentences.insert(0, f"Cheapest best outcome: {record_label(fewest)} trains "
                         f"{fewest['epochs_trained']} epochs and keeps epoch "
                         f"{fewest['final_epoch']} ({_fmt_regret(metric, fewest['regret'])} "
                         f"regret on {metric}).")  # fmt: skip
    return " ".join(sentences)


def _same_outcome(a: EarlyStoppingRecord, b: EarlyStoppingRecord) -> bool:
    ra, rb = a["regret"], b["regret"]
    if ra is None or rb is None:
        return ra is rb
    return math.isclose(ra, rb, rel_tol=0.25, abs_tol=1e-4)


def _cost(group: list[EarlyStoppingRecord], metric: str | None) -> str:
    regrets = [r["regret"] for r in group if r["regret"] is not None]
    if not regrets or metric is None:
        return "regret unknown"
    lo, hi = min(regrets), max(regrets)
    if hi == 0:
        return f"match the best {metric}"
    word = "lose" if is_accuracy(metric) else "give up"
    span = (
        _fmt_regret(metric, lo)
        if math.isclose(lo, hi)
        else (f"{_fmt_regret(metric, lo)} to {_fmt_regret(metric, hi)}")
    )
    return f"{word} {span} of {metric} against the best epoch"
