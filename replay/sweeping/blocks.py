"""Sweep records kept compact: one block per (run, monitor, policy).

A grid is a product of axes (EarlyStopping: the (min_delta, baseline, start_from_epoch)
combinations, then patience, then restore_best_weights), and most of its settings end
the way many others do (the same stop, kept epoch, metrics, regret). So a block holds
each axis's values once, each distinct outcome once, and per setting only the index of
its outcome (4 bytes). Record ``i`` of a block is the ``i``-th combination of the axes
(the last axis varies fastest, like nested loops) joined with ``outcomes[ids[i]]``: the
same dict, field for field and in the same order, that docs/sweep-output.md describes
(types: :mod:`analysis.results.records`).

:class:`Records`, the sweep's sequence of records, builds a record dict only when one
is read. The writers (:func:`replay.output.report.write_csv`,
:func:`replay.output.report.write_json`)
render blocks without building records, and the table reads outcomes and counts.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from analysis.results.records import freeze

__all__ = ["CONST", "HEAD", "Block", "Records", "blocks_of"]

#: The fields before ``params`` in every record, constant over a block.
HEAD = ("run", "source", "policy")
#: A parameter's source that is no axis: the value is in :attr:`Block.const`.
CONST = -1


def _position(i: int, n: int) -> int:
    """Index ``i`` of a sequence of ``n`` records, negative from the end, as a list takes it.

    Raises:
        IndexError: outside the sequence.
    """
    j = i + n if i < 0 else i
    if not 0 <= j < n:
        raise IndexError(f"record {i} of {n}")
    return j


class Block(Sequence):
    """The records of one (run, monitor, policy), compactly (see the module's docstring).

    ``params`` lists the parameters in record order as ``(name, source)``: ``source`` is
    the index of the axis whose values hold it, or :data:`CONST` for :attr:`const`.
    Each axis is a sequence of dicts (parameter name -> value); ``outcomes`` are the
    fields after ``params``, shared by every record that ends that way (read them,
    never change them); ``ids`` gives each record's outcome index.
    """

    def __init__(
        self,
        head: Mapping[str, Any],
        monitor: str,
        params: Sequence[tuple[str, int]],
        const: Mapping[str, Any],
        axes: Sequence[Sequence[Mapping[str, Any]]],
        outcomes: Sequence[Mapping[str, Any]],
        ids,
    ) -> None:
        self.head = {k: head[k] for k in HEAD}
        self.monitor = monitor
        self.params = tuple(params)
        self.const = dict(const)
        self.axes = tuple(tuple(a) for a in axes)
        self.outcomes = list(outcomes)
        self.ids = np.asarray(ids, dtype=np.uint32)
        self.sizes = tuple(len(a) for a in self.axes)
        if not self.axes or len(self.ids) != math.prod(self.sizes):
            raise ValueError(f"{len(self.ids)} outcome ids for axes of sizes {self.sizes}")

    @property
    def run(self) -> str:
        return self.head["run"]

    @property
    def policy(self) -> str:
        return self.head["policy"]

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"Block({self.run!r}, {self.monitor!r}, {self.policy!r}: {len(self)} records, "
                f"{len(self.outcomes)} outcomes)")  # fmt: skip

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = _position(i, len(self))
        return {**self.head, "params": self.params_at(i), **self.outcomes[int(self.ids[i])]}

    def __iter__(self) -> Iterator[dict]:
        head, const, params, outcomes = self.head, self.const, self.params, self.outcomes
        for combo, oid in zip(itertools.product(*self.axes), self.ids.tolist(), strict=True):
            p = {k: const[k] if a == CONST else combo[a][k] for k, a in params}
            yield {**head, "params": p, **outcomes[oid]}

    # -- positions -------------------------------------------------------------------

    def axis_indices(self, i: int) -> tuple[int, ...]:
        """The axis indices of record ``i``."""
        out = []
        for size in reversed(self.sizes):
            i, r = divmod(i, size)
            out.append(r)
        return tuple(reversed(out))

    def params_at(self, i: int) -> dict[str, Any]:
        """The ``params`` of record ``i``, built afresh."""
        idx = self.axis_indices(i)
        return {k: self.const[k] if a == CONST else self.axes[a][idx[a]][k] for k, a in self.params}

    def values_of(self, name: str) -> list[Any]:
        """Every value parameter ``name`` takes in this block (its axis, or the constant)."""
        for k, a in self.params:
            if k == name:
                return [self.const[k]] if a == CONST else [v[k] for v in self.axes[a]]
        return []

    def select(self, conditions: Mapping[str, Callable[[Any], bool]]) -> list[int]:
        """The records (indices, in order) whose parameters pass every condition."""
        source = dict(self.params)
        allowed: list[list[int]] = [list(range(s)) for s in self.sizes]
        for name, ok in conditions.items():
            a = source.get(name)
            if a is None or (a == CONST and not ok(self.const[name])):
                return []
            if a != CONST:
                allowed[a] = [j for j in allowed[a] if ok(self.axes[a][j][name])]
        strides = [math.prod(self.sizes[a + 1 :]) for a in range(len(self.sizes))]
        return [sum(j * s for j, s in zip(combo, strides, strict=True))
                for combo in itertools.product(*allowed)]  # fmt: skip

    def param_values(self, members: np.ndarray) -> dict[str, list[Any]]:
        """For records ``members`` (indices in order): each parameter's distinct values in
        the order they are first seen, as :func:`analysis.results.records.varying_values` reads
        them, computed from the axes without building the records."""
        idx = np.unravel_index(np.asarray(members, dtype=np.int64), self.sizes)
        orders = []
        for arr in idx:
            u, first = np.unique(arr, return_index=True)
            orders.append(u[np.argsort(first, kind="stable")].tolist())
        out: dict[str, list[Any]] = {}
        for k, a in self.params:
            vals = [self.const[k]] if a == CONST else [self.axes[a][j][k] for j in orders[a]]
            seen: dict[Hashable, Any] = {}
            for v in vals:
                seen.setdefault(freeze(v), v)
            out[k] = list(seen.values())
        return out

    def present(self) -> list[int]:
        """The outcome indices some record of the block has."""
        return np.unique(self.ids).tolist() if len(self) else []

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> Block:
        """A block of ready-made records of one (run, monitor, policy), one axis long:
        each record's params are one axis value, its other fields one outcome."""
        first = records[0]
        keys = tuple(first["params"])
        params = [(k, 0) for k in keys]
        axis = [r["params"] for r in records]
        outcomes = [{k: v for k, v in r.items() if k not in HEAD and k != "params"}
                    for r in records]  # fmt: skip
        return cls(first, first["params"].get("monitor"), params, {}, [axis], outcomes,
                   np.arange(len(records)))  # fmt: skip


def _block_key(record: Mapping[str, Any]) -> tuple:
    params = record.get("params") or {}
    return (*(record.get(k) for k in HEAD), params.get("monitor"), tuple(params),
            tuple(k for k in record if k not in HEAD and k != "params"))  # fmt: skip


def blocks_of(records: Iterable[Mapping[str, Any]]) -> list[Block]:
    """Ready-made record dicts as blocks (consecutive records of one run, monitor,
    policy and field layout share one), so that any list of records can be written and
    summarized as a sweep's are."""
    out: list[Block] = []
    for _, group in itertools.groupby(records, key=_block_key):
        out.append(Block.from_records(list(group)))
    return out


class Records(Sequence):
    """A sweep's records, block after block: a read-only sequence of record dicts, each
    built when read (so keep one only as long as you need it)."""

    def __init__(self, blocks: Iterable[Block] = ()) -> None:
        self.blocks = tuple(b for b in blocks if len(b))
        self._starts = list(itertools.accumulate((len(b) for b in self.blocks), initial=0))

    @classmethod
    def of(cls, records: Iterable[Mapping[str, Any]]) -> Records:
        """``records`` as :class:`Records` (itself when it already is)."""
        if isinstance(records, Records):
            return records
        return cls(blocks_of(records))

    def __len__(self) -> int:
        return self._starts[-1]

    def __repr__(self) -> str:
        return f"Records({len(self)} records in {len(self.blocks)} blocks)"

    def __iter__(self) -> Iterator[dict]:
        for b in self.blocks:
            yield from b

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = _position(i, len(self))
        k = bisect_right(self._starts, i) - 1
        return self.blocks[k][i - self._starts[k]]

    def per_block(self, indices: np.ndarray) -> Iterator[tuple[Block, np.ndarray]]:
        """Sorted record indices as (block, indices within it), block by block."""
        indices = np.asarray(indices, dtype=np.int64)
        bounds = np.searchsorted(indices, self._starts)
        for k, b in enumerate(self.blocks):
            if bounds[k] < bounds[k + 1]:
                yield b, indices[bounds[k] : bounds[k + 1]] - self._starts[k]

    def where(
        self, *, run: str | None = None, monitor: str | None = None,
        policy: str | Iterable[str] | None = None,
    ) -> Records:  # fmt: skip
        """The records of the blocks that match (a view: nothing is copied)."""
        policies = (policy,) if isinstance(policy, str) else policy
        if policies is not None:
            policies = tuple(policies)
        return Records(
            b for b in self.blocks
            if (run is None or b.run == run) and (monitor is None or b.monitor == monitor)
            and (policies is None or b.policy in policies)
        )  # fmt: skip

    def first_min(
        self, key: Callable[[Mapping[str, Any]], Any],
        where: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> dict | None:  # fmt: skip
        """The first record (in order) with the least ``key(outcome)`` among those whose
        outcome passes ``where``, as ``min`` over the records would find it; None if none.
        ``key`` and ``where`` read only the fields after ``params``."""
        best: tuple[Any, Block, int] | None = None
        for b in self.blocks:
            keyed = [(key(b.outcomes[o]), o) for o in b.present()
                     if where is None or where(b.outcomes[o])]  # fmt: skip
            if not keyed:
                continue
            low = min(k for k, _ in keyed)
            if best is None or low < best[0]:
                hits = np.isin(b.ids, [o for k, o in keyed if k == low])
                best = (low, b, int(np.argmax(hits)))
        return None if best is None else best[1][best[2]]
