"""The table a sweep prints: per run and monitor, the oracle line, the settings best
first (EarlyStopping, Prechelt, combined, ReduceLROnPlateau, ModelCheckpoint), and a
plain-language verdict; across runs, the tables of :mod:`replay.output.aggregates`.

The records are compact blocks (:mod:`replay.sweeping.blocks`): the table reads outcomes and
counts, never every record. The files (results.json, results.csv) are
:mod:`replay.output.writers`'.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.names import is_accuracy
from analysis.results.records import (
    COMBINED,
    EARLY_STOPPING,
    MODEL_CHECKPOINT,
    PRECHELT,
    REDUCE_LR_ON_PLATEAU,
    EarlyStoppingRecord,
    PlateauRecord,
    Record,
    StopRecord,
    distinct_label,
    freeze,
    ranges,
    record_label,
    varying_values,
)
from replay.sweeping.blocks import CONST, Block, Records

if TYPE_CHECKING:  # pragma: no cover
    from replay.sweeping.sweep import SweepResult

__all__ = ["render_table", "result_epochs", "verdict"]

from replay.output.aggregates import render_aggregate, render_checkpoint_aggregate
from replay.output.tables import TABLE_ROWS, text_table


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


def _outcome(r: Mapping[str, Any]) -> tuple:
    return (r["stopped_epoch"], r["epochs_trained"], r["final_epoch"], r["regret"])


def _stop_rows(recs: Records, metric: str | None, limit: int) -> tuple[list[list[str]], int]:
    """Rows best first; settings with identical outcomes share a row when one label names
    exactly them.

    Read from the blocks' outcomes: each row's settings are counted, and only the first
    record of a row shown is built (the label reads its settings off the axes). A label
    stands for the product of the values it lists, so the settings of one outcome that
    are no product (a grid with a corner missing) are split into products
    (:func:`_product_parts`), one row each, with the same outcome columns: a label never
    names a setting that is not in its row. ``limit`` counts those rows.
    """
    groups: dict[tuple, int] = {}  # a row's outcome -> its number
    ranks: list[tuple] = []
    per_record = []
    for b in recs.blocks:
        of_outcome = np.empty(len(b.outcomes), dtype=np.int32)
        for oid, o in enumerate(b.outcomes):
            g = groups.get(_outcome(o))
            if g is None:
                g = groups[_outcome(o)] = len(ranks)
                ranks.append(_rank_key(o))
            of_outcome[oid] = g
        per_record.append(of_outcome[b.ids])
    if not per_record:
        return [], 0
    row_of = np.concatenate(per_record)
    present, first = np.unique(row_of, return_index=True)
    # sorted(records, key=_rank_key) is stable: rows by rank, then by first record
    ranked = sorted(zip(present.tolist(), first.tolist(), strict=True),
                    key=lambda gf: (ranks[gf[0]], gf[1]))  # fmt: skip
    rows, shown = [], 0
    codes_of = _ParamCodes(recs)
    differing = _differing(recs)
    for g, f in ranked:
        if len(rows) >= limit:
            break
        members = np.flatnonzero(row_of == g)
        r = recs[f]
        stop = "never (censored)" if r["censored"] else str(r["stopped_epoch"])
        cf = r.get("counterfactual_from")
        if cf is not None:  # a combined setting whose LR schedule no curve saw from cf on
            stop = f"unknown after {cf - 1}"
        value = (r["final_metrics"] or {}).get(metric) if metric else None
        outcome = [
            stop,
            str(r["epochs_trained"]),
            "-" if r["final_epoch"] is None else str(r["final_epoch"]),
            _fmt_value(metric, value),
            _fmt_regret(metric, r["regret"]),
        ]
        if r["policy"] == PRECHELT:
            parts = [(members, None)]
        else:
            parts = _product_parts(codes_of, members)
        for part, varying in parts[: limit - len(rows)]:
            shown += len(part)
            first_of_part = r if part[0] == f else recs[int(part[0])]
            rows.append([_row_label(recs, part, first_of_part, varying, differing), *outcome])
    return rows, len(recs) - shown


def _row_label(
    recs: Records,
    members: np.ndarray,
    first: Mapping[str, Any],
    varying: Mapping[str, list[Any]] | None = None,
    differing: Sequence[str] = (),
) -> str:
    """One label for the settings of one table row (records ``members``: the same
    outcome, a product of parameter values unless Prechelt's), ``first`` the first of
    them; ``varying``: their :func:`_varying` values, when known; ``differing``: the
    parameters that differ among all the rows (:func:`_differing`), each named."""
    if first["policy"] == PRECHELT:  # criteria differ in kind: list them
        return ", ".join(dict.fromkeys(record_label(recs[int(i)]) for i in members))
    if varying is None:
        varying = _varying(recs, members)
    return distinct_label(first["policy"], first["params"], differing, varying)


def _differing(recs: Records) -> list[str]:
    """The parameters whose values differ among the records ``recs``, read off the
    blocks' axes (a row label names each of them: issue 21)."""
    seen: dict[str, set] = {}
    for b in recs.blocks:
        for k, a in b.params:
            values = [b.const[k]] if a == CONST else [axis[k] for axis in b.axes[a]]
            seen.setdefault(k, set()).update(freeze(v) for v in values)
    return [k for k, values in seen.items() if len(values) > 1]


class _ParamCodes:
    """Records of ``recs`` as rows of small integers, one column per parameter (equal
    integers, equal values, as :func:`analysis.results.records.freeze` compares them), read off
    the axes: each axis's values are coded once, for every row of the table."""

    def __init__(self, recs: Records) -> None:
        self.recs = recs
        self.codes: dict[str, dict[Hashable, int]] = {}  # parameter -> value -> its code
        self.tables: dict[tuple[int, str], np.ndarray] = {}  # (block, parameter) -> codes

    def text_table(self, k: int, b: Block, name: str, a: int) -> np.ndarray:
        table = self.tables.get((k, name))
        if table is None:
            known = self.codes.setdefault(name, {})
            values = [b.const[name]] if a == CONST else [v[name] for v in b.axes[a]]
            table = self.tables[(k, name)] = np.array(
                [known.setdefault(freeze(v), len(known)) for v in values], dtype=np.int64
            )
        return table

    def __call__(self, members: np.ndarray) -> np.ndarray:
        """Records ``members`` (sorted indices), a column per parameter not the same in
        all of them (a block without the parameter: code -1)."""
        number = {id(b): k for k, b in enumerate(self.recs.blocks)}
        chunks: list[tuple[int, dict[str, np.ndarray]]] = []
        for b, local in self.recs.per_block(members):
            k = number[id(b)]
            idx = np.unravel_index(local, b.sizes)
            chunks.append((len(local), {
                name: (np.full(len(local), self.text_table(k, b, name, a)[0])
                       if a == CONST else self.text_table(k, b, name, a)[idx[a]])
                for name, a in b.params
            }))  # fmt: skip
        columns = []
        for name in self.codes:
            column = np.concatenate([chunk.get(name, np.full(n, -1, dtype=np.int64))
                                     for n, chunk in chunks])  # fmt: skip
            if len(column) and (column != column[0]).any():
                columns.append(column)
        if not columns:
            return np.zeros((len(members), 0), dtype=np.int64)
        return np.stack(columns, axis=1)

    def on_axes(self, members: np.ndarray) -> dict[str, list[Any]] | None:
        """The quick check: when records ``members`` (sorted indices) are of one block
        and every combination of their axes' entries, each axis's entries every
        combination of their parameters' values, they are a product: their
        :func:`_varying` values; else None (they may be a product still)."""
        parts = list(self.recs.per_block(members))
        if len(parts) != 1:
            return None
        ((b, local),) = parts
        where = np.unravel_index(local, b.sizes)
        chosen = [np.flatnonzero(np.bincount(i, minlength=size)).tolist()
                  for i, size in zip(where, b.sizes, strict=True)]  # fmt: skip
        if math.prod(len(c) for c in chosen) != len(local):
            return None
        varying: dict[str, list[Any]] = {}
        for a, entries in enumerate(chosen):
            names = [name for name, source in b.params if source == a]
            if len(names) > 1 and len(entries) > 1:
                combos = {tuple(freeze(b.axes[a][j][n]) for n in names) for j in entries}
                if len(combos) != math.prod(len({c[i] for c in combos})
                                            for i in range(len(names))):  # fmt: skip
                    return None
        for name, a in b.params:  # in record order, as the records would list them
            if a != CONST and len(chosen[a]) > 1:
                seen: dict[Hashable, Any] = {}
                for j in chosen[a]:
                    seen.setdefault(freeze(b.axes[a][j][name]), b.axes[a][j][name])
                if len(seen) > 1:
                    varying[name] = list(seen.values())
        return varying


def _tuple_ids(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row of ``codes`` (rows, columns) as one integer (equal rows, equal ids; the
    ids 0..n-1 in sorted order) and the number of distinct rows ``n``."""
    ids = np.zeros(len(codes), dtype=np.int64)
    n = 1
    for c in range(codes.shape[1]):
        values, inverse = np.unique(codes[:, c], return_inverse=True)
        ids, inverse = np.unique(ids * len(values) + inverse.reshape(-1), return_inverse=True)
        n = len(ids)
        ids = inverse.reshape(-1)
    return ids, (n if len(codes) else 0)


def _is_product(codes: np.ndarray) -> bool:
    """Whether the distinct rows of ``codes`` are every combination of each column's
    distinct values."""
    _, n = _tuple_ids(codes)
    return n == math.prod(len(np.unique(codes[:, c])) for c in range(codes.shape[1]))


# Past this many varying parameters, the column to split on is chosen by a heuristic
# instead of by trying each.
_SPLIT_SEARCH = 3


def _split(codes: np.ndarray, rows: np.ndarray, cols: list[int]) -> list[np.ndarray]:
    """Rows ``rows`` of ``codes`` split into parts whose distinct tuples (over ``cols``)
    are products of values, few of them (greedy; fewest when few columns vary).

    Splitting on column ``c`` groups its values by their fiber (the tuples of the other
    columns that occur with the value): values with the same fiber ``F`` make the set
    ``values x F``, a product once ``F`` is split into products, recursively.
    """
    sub = codes[rows]
    cols = [c for c in cols if (sub[:, c] != sub[0, c]).any()]
    if len(cols) <= 1 or _is_product(sub[:, cols]):
        return [rows]
    plans = []
    for c in cols:
        rest = [x for x in cols if x != c]
        fiber, _ = _tuple_ids(sub[:, rest])
        value = sub[:, c]
        order = np.lexsort((fiber, value))
        v, fb = value[order], fiber[order]
        keep = np.ones(len(v), dtype=bool)
        keep[1:] = (v[1:] != v[:-1]) | (fb[1:] != fb[:-1])
        v, fb = v[keep], fb[keep]
        starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
        classes: dict[bytes, list[int]] = {}  # a fiber -> the values that have it
        for s, e in zip(starts.tolist(), [*starts[1:].tolist(), len(v)], strict=True):
            classes.setdefault(fb[s:e].tobytes(), []).append(int(v[s]))
        plans.append((len(classes), c, rest, list(classes.values())))
    if len(cols) > _SPLIT_SEARCH:  # the column whose values fall into the fewest classes
        plans = [min(plans, key=lambda p: p[0])]
    best: list[np.ndarray] | None = None
    for _, c, rest, classes in plans:
        parts = []
        for values in classes:
            parts += _split(codes, rows[np.isin(sub[:, c], values)], rest)
        if best is None or len(parts) < len(best):
            best = parts
    assert best is not None
    return best


def _product_parts(
    codes_of: _ParamCodes, members: np.ndarray
) -> list[tuple[np.ndarray, dict[str, list[Any]] | None]]:
    """Records ``members`` (sorted indices) as the parts that one label each names
    exactly: each the product of its parameters' values, by first record, with its
    :func:`_varying` values when the quick check found them (else None). Most often one
    part."""
    varying = codes_of.on_axes(members)
    if varying is not None:
        return [(members, varying)]
    codes = codes_of(members)
    if not codes.shape[1] or _is_product(codes):
        return [(members, None)]
    parts = _split(codes, np.arange(len(members)), list(range(codes.shape[1])))
    return [(p, None) for p in sorted((members[np.sort(p)] for p in parts),
                                      key=lambda p: int(p[0]))]  # fmt: skip


def _varying(recs: Records, members: np.ndarray) -> dict[str, list[Any]]:
    """:func:`analysis.results.records.varying_values` of the params of records ``members``
    (indices into ``recs``, in order), read off the blocks' axes."""
    seen: dict[str, dict[Hashable, Any]] = {}
    for b, local in recs.per_block(members):
        for name, values in b.param_values(local).items():
            known = seen.setdefault(name, {})
            for v in values:
                known.setdefault(freeze(v), v)
    return {k: list(vals.values()) for k, vals in seen.items() if len(vals) > 1}


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
    differing = list(varying_values([r["params"] for r in records]))
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
                distinct_label(r["policy"], r["params"], differing),
                cuts,
                _fmt_lr(r["final_lr"], r.get("lr_scale")),
                where,
                _fmt_value(metric, final.get(metric) if metric else None),
                _fmt_regret(metric, r.get("regret")),
            ]
        )
    return rows, len(ranked) - len(rows)


def _saved_epochs(saved: Sequence[int], shown: int = 5) -> str:
    """``0, 1, 4``; ``2, 5, 8, 11, 14, ... (9 in all)``; ``none``."""
    if not saved:
        return "none"
    head = ", ".join(map(str, saved[:shown]))
    return head if len(saved) <= shown else f"{head}, ... ({len(saved)} in all)"


def _checkpoint_rows(recs: list, metric: str | None, limit: int) -> tuple[list[list[str]], int]:
    """ModelCheckpoint rows, least regret first (unknown regret last)."""

    def key(r):
        return (r["regret"] is None, r["regret"] or 0.0)

    ranked = sorted(recs, key=key)
    differing = list(varying_values([r["params"] for r in recs]))
    rows = []
    for r in ranked[:limit]:
        final = r["final_epoch"]
        rows.append(
            [
                distinct_label(r["policy"], r["params"], differing),
                _saved_epochs(r["saved_epochs"]),
                "-" if final is None else str(final),
                _fmt_value(metric, r["final_metrics"].get(metric) if metric else None),
                _fmt_regret(metric, r["regret"]),
            ]
        )
    return rows, len(ranked) - len(rows)


def render_table(result: SweepResult, *, limit: int = TABLE_ROWS) -> str:
    """The human summary: per run and monitor, oracle line, best settings first, verdict."""
    out: list[str] = []
    multi = len(result.facts) > 1
    records = Records.of(result.records)
    for oracle in result.oracles:
        run, monitor, metric = oracle["run"], oracle["monitor"], oracle["heldout"]
        mine = records.where(run=run, monitor=monitor)
        out.append(f"== {run}: {result_epochs(result, run)} epochs, monitor {monitor} ==")
        if oracle["oracle_epoch"] is not None:
            out.append(
                f"oracle: best {metric} {_fmt_value(metric, oracle['oracle_value'])} at epoch "
                f"{oracle['oracle_epoch']}; the full run ends at "
                f"{_fmt_value(metric, oracle['last_value'])} (epoch {oracle['last_epoch']})."
            )
        for policy, title in ((EARLY_STOPPING, "EarlyStopping"), (PRECHELT, "Prechelt"),
                              (COMBINED, "EarlyStopping + ReduceLROnPlateau")):  # fmt: skip
            recs = mine.where(policy=policy)
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
            out.append(f"\n{title} ({_dialect_of(recs)}{len(recs)} settings, best first)")
            out.append(text_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
        recs = list(mine.where(policy=REDUCE_LR_ON_PLATEAU))
        if recs:
            rows, more = _lr_rows(recs, metric, limit)
            out.append(
                f"\nReduceLROnPlateau ({_dialect_of(recs)}{len(recs)} settings, exact ones first)"
            )
            headers = ["setting", "cuts after epochs", "final lr", "replay",
                       metric or "held-out", "regret"]  # fmt: skip
            out.append(text_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
            if any(r["counterfactual_from"] is not None for r in recs):
                out.append(
                    "'from epoch N': the recorded metrics from epoch N on were produced with "
                    "a different learning rate than this schedule; decisions after that are "
                    "counterfactual."
                )
        recs = list(mine.where(policy=MODEL_CHECKPOINT))
        if recs:
            rows, more = _checkpoint_rows(recs, metric, limit)
            out.append(f"\nModelCheckpoint ({_dialect_of(recs)}{len(recs)} settings, best first)")
            headers = ["setting", "saved epochs", "kept epoch", metric or "held-out", "regret"]
            out.append(text_table(headers, rows))
            if more:
                out.append(f"... {more} more settings in results.csv / --format csv")
        text = verdict(mine, metric)
        if text:
            out.append("\n" + text)
        out.append("")
    if multi:
        out.append(render_aggregate(records))
        checkpoints = render_checkpoint_aggregate(records)
        if checkpoints:  # under a blank line, whether or not a table came before
            out.append(checkpoints if out[-1] else checkpoints.lstrip("\n"))
    return "\n".join(out).rstrip() + "\n"


def _dialect_of(recs) -> str:
    """``"torch dialect, "`` for records replayed in a non-Keras dialect, else ``""``."""
    dialect = recs[0].get("dialect") if len(recs) else None
    return f"{dialect} dialect, " if dialect else ""


def result_epochs(result: SweepResult, run: str) -> int:
    for f in result.facts:
        if f.name == run:
            return f.n_epochs
    return 0


def verdict(records: Iterable[Record], metric: str | None) -> str:
    """A plain-language paragraph about the early-stopping patience sweep.

    Reads the default-like slice of the grid (one record per patience and restore) and
    the best outcome, never every record.
    """
    es = Records.of(records).where(policy=EARLY_STOPPING)
    if not es:
        return ""
    # Look at the default-like slice: smallest min_delta, no baseline, no warm-up.
    md = min(v for b in es.blocks for v in b.values_of("min_delta"))
    start = min(v for b in es.blocks for v in b.values_of("start_from_epoch"))
    where = {"min_delta": lambda v: v == md, "baseline": lambda v: v is None,
             "start_from_epoch": lambda v: v == start}  # fmt: skip
    sl = [b[i] for b in es.blocks for i in b.select(where)]
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
    best = es.first_min(_rank_key)
    if best["regret"] is not None and metric:
        fewest = es.first_min(lambda o: o["epochs_trained"],
                              where=lambda o: o["regret"] == best["regret"])  # fmt: skip
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
