"""Across runs (several runs swept together): one row per setting, its mean regret and
spread over runs (:func:`analysis.results.aggregation.aggregate`), as a table, a verdict and the
files aggregate.json and aggregate.csv."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.results.aggregation import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    aggregate,
    run_best_regrets,
)
from analysis.results.records import (
    MODEL_CHECKPOINT,
    STOP_POLICIES,
    AggregateRow,
    Record,
    freeze,
    ranges,
    setting_label,
)
from replay.sweeping.blocks import Block, Records

if TYPE_CHECKING:  # pragma: no cover
    pass

from replay.output.tables import TABLE_ROWS, fmt_number, text_table
from replay.output.writers import atomic_text, finite_or_none, flatten

__all__ = [
    "aggregate_rows",
    "aggregate_verdict",
    "render_aggregate",
    "render_checkpoint_aggregate",
    "write_aggregate_files",
]


def render_aggregate(records: Iterable[Record], limit: int = TABLE_ROWS) -> str:
    """The across-runs table: :func:`analysis.results.aggregation.aggregate` of the stop-policy
    records, best mean regret first (computed over the blocks, building only the rows
    shown), then :func:`aggregate_verdict`.

    Columns: the mean regret over runs, its ``[min, max]``, the bootstrap 95% interval
    of the mean, ``best in`` (``k/n``: the setting is among the least-regret settings of
    k of its n runs), mean epochs trained and censored runs.
    """
    rows = _AggregateRows(Records.of(records).where(policy=STOP_POLICIES))
    if not rows.n:
        return ""
    order = rows.order()
    table_rows = []
    for i in order[:limit]:
        r = rows.row(int(i))
        label = setting_label(r["policy"], r["params"])
        table_rows.append(
            [
                f"{r['params']['monitor']} {label}",
                str(r["runs"]),
                fmt_number(r["regret_mean"]),
                _interval(r["regret_min"], r["regret_worst"]),
                _interval(r["regret_ci_low"], r["regret_ci_high"]),
                f"{r['best_runs']}/{r['runs']}",
                fmt_number(r["epochs_trained_mean"], ".1f"),
                f"{r['censored_runs']}/{r['runs']}",
            ]
        )
    headers = ["setting", "runs", "regret mean", "[min, max]", "95% CI of mean", "best in",
               "epochs mean", "censored"]  # fmt: skip
    text = [f"== across runs ({rows.n} settings, best mean regret first) ==",
            text_table(headers, table_rows)]  # fmt: skip
    if rows.n > limit:
        text.append(f"... {rows.n - limit} more settings in aggregate.csv")
    text.append(
        "[min, max]: regret over runs; 95% CI: bootstrap interval of the mean regret "
        f"({BOOTSTRAP_RESAMPLES} resamples of the runs, seed {BOOTSTRAP_SEED});\n"
        "best in k/n: the setting has the least regret of any setting in k of its n runs."
    )
    said = aggregate_verdict(rows)
    if said:
        text.append("\n" + said)
    return "\n".join(text)


def _interval(low: float | None, high: float | None) -> str:
    """``[0.001, 0.004]``, or ``-`` when unknown."""
    if low is None or high is None:
        return "-"
    return f"[{fmt_number(low, '.3g')}, {fmt_number(high, '.3g')}]"


def aggregate_verdict(rows: _AggregateRows) -> str:
    """Per monitor, a sentence on the setting with the least mean regret over runs and how
    many runs agree: in how many it is among the run's own best (least regret, ties
    included), and which setting is among the best in the most runs when that is another:
    "Across 5 runs (val_loss): best by mean regret is patience=6 restore, mean 0.0019 over
    runs in [0, 0.0062], ...; 3 of 5 runs have it among their best."
    """
    order = rows.order()
    firsts: dict[Any, int] = {}  # monitor -> its best row (in table order)
    for i in order.tolist():
        firsts.setdefault(rows.monitor(i), i)
    agree = rows.columns["best_runs"]
    mean = rows.columns["regret_mean"]
    sentences = []
    for monitor, i in firsts.items():
        best = rows.row(i)
        if best["regret_mean"] is None:
            continue
        mine = np.array([rows.monitor(j) == monitor for j in range(rows.n)]) if len(
            firsts) > 1 else np.ones(rows.n, dtype=bool)  # fmt: skip
        ties = int(np.sum(mine & (mean == best["regret_mean"]))) - 1
        label = setting_label(best["policy"], best["params"])
        n = best["runs"]
        sentence = (
            f"Across {n} runs ({monitor}): best by mean regret is {label}, mean "
            f"{fmt_number(best['regret_mean'])} over runs in "
            f"{_interval(best['regret_min'], best['regret_worst'])}"
        )
        if best["regret_ci_low"] is not None:
            sentence += (", 95% interval of the mean "
                         f"{_interval(best['regret_ci_low'], best['regret_ci_high'])}")  # fmt: skip
        sentence += f"; {best['best_runs']} of {n} runs have it among their best"
        if ties > 0:
            sentence += (f" ({ties} more setting{'s' if ties > 1 else ''} tie on mean regret; "
                         "this one trains fewest epochs)")  # fmt: skip
        sentence += "."
        most = [j for j in order.tolist() if mine[j]]
        top = max(most, key=lambda j: agree[j])  # the first in table order among equals
        if agree[top] > best["best_runs"]:
            other = rows.row(top)
            sentence += (f" Among the best in the most runs: "
                         f"{setting_label(other['policy'], other['params'])} "
                         f"({other['best_runs']} of {other['runs']}, mean regret "
                         f"{fmt_number(other['regret_mean'])}).")  # fmt: skip
        sentences.append(sentence)
    return " ".join(sentences)


def render_checkpoint_aggregate(records: Iterable[Record], limit: int = TABLE_ROWS) -> str:
    """The across-runs table of the ModelCheckpoint records (its own table: they keep a
    file instead of stopping): per setting, the epochs kept over runs and the kept
    file's regret (:func:`analysis.results.aggregation.aggregate`), least mean regret first; ``""``
    when there are none."""
    recs = list(Records.of(records).where(policy=MODEL_CHECKPOINT))
    if not recs:
        return ""
    rows = aggregate(recs, fields=("regret",))
    kept: dict[Hashable, list[Any]] = {}
    for r in recs:
        kept.setdefault(freeze(r["params"]), []).append(r["final_epoch"])

    def key(row):
        return (row["regret_mean"] is None, row["regret_mean"] or 0.0)

    table_rows = []
    for row in sorted(rows, key=key)[:limit]:
        epochs = kept[freeze(row["params"])]
        known = [e for e in epochs if e is not None]
        none = len(epochs) - len(known)
        shown = ranges(known) if known else "-"
        table_rows.append(
            [
                f"{row['params']['monitor']} {setting_label(MODEL_CHECKPOINT, row['params'])}",
                str(row["runs"]),
                shown + (f" (+{none} none)" if none and known else ""),
                fmt_number(row["regret_mean"]),
                _interval(row["regret_min"], row["regret_worst"]),
            ]
        )
    headers = ["setting", "runs", "kept epochs", "regret mean", "[min, max]"]
    text = [f"\n== ModelCheckpoint across runs ({len(rows)} settings, best mean regret first) ==",
            text_table(headers, table_rows)]  # fmt: skip
    if len(rows) > limit:
        text.append(f"... {len(rows) - limit} more settings in results.csv")
    return "\n".join(text)


def aggregate_rows(records: Iterable[Record]) -> Iterator[AggregateRow]:
    """Every across-runs row of the stop-policy records, with all the fields of
    :class:`analysis.results.records.AggregateRow`, in the table's order (best mean regret
    first): what aggregate.json and aggregate.csv hold."""
    rows = _AggregateRows(Records.of(records).where(policy=STOP_POLICIES))
    for i in rows.order().tolist():
        yield rows.full_row(i)  # type: ignore[misc]


def write_aggregate_files(records: Iterable[Record], out: Path) -> list[str]:
    """Write aggregate.json (a JSON list, one row per line) and aggregate.csv (the rows
    flattened as results.csv's records are; run names separated by spaces) into ``out``,
    atomically, streaming the rows of :func:`aggregate_rows`; return the names written
    (none when there are no stop-policy records)."""
    rows = _AggregateRows(Records.of(records).where(policy=STOP_POLICIES))
    if not rows.n:
        return []

    def flat(row: Mapping[str, Any]) -> dict[str, Any]:
        return flatten({k: " ".join(map(str, v)) if k.endswith("run_names") else v
                        for k, v in row.items()})  # fmt: skip

    columns = list(dict.fromkeys(
        [k for first in rows.first_rows() for k in flat(first)]
        + [f"final_metrics_mean.{m}" for m in _metric_names(rows)]
    ))  # fmt: skip
    order = rows.order().tolist()
    with atomic_text(out / "aggregate.json") as f:
        f.write("[\n")
        for n, i in enumerate(order):
            text = json.dumps(finite_or_none(rows.full_row(i)), allow_nan=False)
            f.write(text + (",\n" if n + 1 < len(order) else "\n"))
        f.write("]\n")
    with atomic_text(out / "aggregate.csv") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for i in order:
            writer.writerow({k: "" if v is None else v for k, v in flat(rows.full_row(i)).items()})
    return ["aggregate.json", "aggregate.csv"]


def _metric_names(rows: _AggregateRows) -> list[str]:
    """Every metric of the rows' ``final_metrics_mean``, in the order first seen."""
    names: dict[str, None] = {}
    for kind, what in rows.parts:
        if kind == "blocks":
            for b in what[0]:
                for o in b.outcomes:
                    names.update(dict.fromkeys(o.get("final_metrics") or {}))
        else:
            for r in what:
                names.update(dict.fromkeys(r["final_metrics_mean"]))
    return list(names)


class _AggregateRows:
    """:func:`analysis.results.aggregation.aggregate`'s rows (the fields the table shows) over
    blocks.

    Blocks of one policy, monitor and constant parameters whose axes are the same in
    every run (the usual case: one grid over several runs) line up record for record:
    their statistics are columns of arrays, summed run after run in the order
    ``aggregate`` sums them. Others are aggregated record by record. Each row keeps
    where its setting first occurs (block, record), the order ``aggregate`` lists rows in.
    """

    _FIELDS = ("regret_mean", "regret_worst", "regret_spread", "epochs_trained_mean",
               "regret_min", "regret_ci_low", "regret_ci_high")  # fmt: skip
    _COUNTS = ("runs", "censored_runs", "best_runs")

    def __init__(self, recs: Records) -> None:
        families: dict[Hashable, list[int]] = {}
        for k, b in enumerate(recs.blocks):
            key = (b.policy, b.monitor, freeze(b.const), b.params)
            families.setdefault(key, []).append(k)
        #: The least regret of each (run, monitor): "among the run's best" means equal to it.
        self.run_best = _run_best(recs.blocks)
        self.parts: list[tuple[str, Any]] = []  # ("blocks", [Block]) or ("rows", [row])
        names = (*self._FIELDS, *self._COUNTS, "block", "record")
        columns: dict[str, list[np.ndarray]] = {f: [] for f in names}
        for ks in families.values():
            blocks = [recs.blocks[k] for k in ks]
            if _aligned(blocks):
                stats = _aligned_stats(blocks, self.run_best)
                part = ("blocks", (blocks, stats.pop("combos"), stats.pop("combo"),
                                   stats.pop("rows")))  # fmt: skip
                stats["block"] = np.full(len(blocks[0]), ks[0])
                stats["record"] = np.arange(len(blocks[0]))
            else:
                rows = aggregate([r for b in blocks for r in b], run_best=self.run_best)
                part = ("rows", rows)
                stats = {f: np.array([np.nan if r[f] is None else r[f] for r in rows], float)
                         for f in self._FIELDS}  # fmt: skip
                for f in self._COUNTS:
                    stats[f] = np.array([r[f] for r in rows], dtype=np.int64)
                where: dict[Hashable, tuple[int, int]] = {}
                for k, b in zip(ks, blocks, strict=True):
                    for i, r in enumerate(b):
                        where.setdefault((r["policy"], freeze(r["params"])), (k, i))
                first = [where[(r["policy"], freeze(r["params"]))] for r in rows]
                stats["block"] = np.array([k for k, _ in first])
                stats["record"] = np.array([i for _, i in first])
            self.parts.append(part)
            for f, column in columns.items():
                column.append(stats[f])
        self.columns = {f: np.concatenate(c) if c else np.zeros(0) for f, c in columns.items()}
        self.starts = np.cumsum([0, *(len(c) for c in columns["runs"])])
        self.n = int(self.starts[-1])

    def order(self) -> np.ndarray:
        """Row numbers sorted as the table sorts aggregate rows (stable, over the order
        in which settings first occur): by (no mean regret, mean regret or 0, mean
        epochs or 0)."""
        regret, epochs = self.columns["regret_mean"], self.columns["epochs_trained_mean"]
        idx = np.lexsort((self.columns["record"], self.columns["block"]))
        idx = idx[np.argsort(np.nan_to_num(epochs, nan=0.0)[idx], kind="stable")]
        idx = idx[np.argsort(np.nan_to_num(regret, nan=0.0)[idx], kind="stable")]
        return idx[np.argsort(np.isnan(regret)[idx], kind="stable")]

    def row(self, i: int) -> dict[str, Any]:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        kind, what = self.parts[k]
        local = i - int(self.starts[k])
        if kind == "rows":
            row = what[local]
            params, policy = row["params"], row["policy"]
        else:
            params, policy = what[0][0].params_at(local), what[0][0].policy
        out: dict[str, Any] = {"policy": policy, "params": params}
        for f in (*self._FIELDS, *self._COUNTS):
            v = self.columns[f][i]
            out[f] = int(v) if f in self._COUNTS else (None if math.isnan(v) else float(v))
        return out

    def full_row(self, i: int) -> dict[str, Any]:
        """Row ``i`` with every field of :class:`analysis.results.records.AggregateRow`, as
        :func:`analysis.results.aggregation.aggregate` gives it."""
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        kind, what = self.parts[k]
        local = i - int(self.starts[k])
        if kind == "rows":
            return dict(what[local])
        blocks, _combos, combo, rows = what  # the fields after params: the outcomes'
        return {**rows[int(combo[local])], "params": blocks[0].params_at(local)}

    def monitor(self, i: int) -> str | None:
        """The monitor of row ``i``'s setting."""
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        kind, what = self.parts[k]
        if kind == "rows":
            return what[i - int(self.starts[k])]["params"].get("monitor")
        return what[0][0].monitor

    def first_rows(self) -> Iterator[dict[str, Any]]:
        """The first full row of each part (their fields: the columns of aggregate.csv)."""
        for start in self.starts[:-1].tolist():
            yield self.full_row(int(start))


def _run_best(blocks: Sequence[Block]) -> dict[tuple[str, str], float]:
    """:func:`analysis.results.aggregation.run_best_regrets` over the blocks' distinct outcomes."""
    return run_best_regrets({"run": b.run, "params": {"monitor": b.monitor},
                             "regret": b.outcomes[o].get("regret")}
                            for b in blocks for o in b.present())  # fmt: skip


def _aligned(blocks: list[Block]) -> bool:
    """Whether ``blocks`` hold the same settings in the same order, each setting once."""
    first = blocks[0]
    axes = [tuple(freeze(v) for v in axis) for axis in first.axes]
    if any(len(set(axis)) != len(axis) for axis in axes):
        return False
    return all(b.params == first.params and [tuple(freeze(v) for v in axis) for axis in b.axes]
               == axes for b in blocks[1:])  # fmt: skip


def _aligned_stats(
    blocks: list[Block], run_best: Mapping[tuple[str, str], float]
) -> dict[str, np.ndarray]:
    """Per setting of aligned blocks, the table's fields of its aggregate row.

    A setting's row depends only on its outcome in each run: each distinct combination
    of outcomes (a few, however large the grid: :func:`_outcome_combos`) is aggregated
    once by :func:`analysis.results.aggregation.aggregate` itself, and its settings share the row.
    Also returned: ``combos``, ``combo`` (each setting's combination) and ``rows``.
    """
    combos, inverse = _outcome_combos(blocks)
    rows = [
        aggregate([{**b.head, "params": {"monitor": b.monitor}, **b.outcomes[o]}
                   for b, o in zip(blocks, combo, strict=True)], run_best=run_best)[0]
        for combo in combos
    ]  # fmt: skip
    out: dict[str, Any] = {}
    for f in _AggregateRows._FIELDS:
        per_combo = np.array([np.nan if r[f] is None else r[f] for r in rows], dtype=float)
        out[f] = per_combo[inverse]
    for f in _AggregateRows._COUNTS:
        out[f] = np.array([r[f] for r in rows], dtype=np.int64)[inverse]
    out["combos"], out["combo"], out["rows"] = combos, inverse, dict(enumerate(rows))
    return out


def _outcome_combos(blocks: list[Block]) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The distinct combinations of outcomes (one per run) of aligned blocks' settings,
    and each setting's combination: what a setting's statistics depend on (a few
    combinations, however large the grid)."""
    if not len(blocks[0]):
        return [], np.zeros(0, dtype=np.int64)
    combos, inverse = np.unique(np.stack([b.ids for b in blocks], axis=1), axis=0,
                                return_inverse=True)  # fmt: skip
    return [tuple(c) for c in combos.tolist()], np.asarray(inverse).reshape(-1)
