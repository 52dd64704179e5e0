"""The per-epoch log every reader returns (:class:`RunLog`), and how readers build one
from columns of values (:func:`build`): one row per epoch, contiguous, duplicates and
gaps resolved with warnings.

A RunLog holds numpy arrays (``columns``, ``table``, ``absent``); its pandas frames
(``metrics``, ``not_logged``) are built from them on first use, so that reading a log
and sweeping it never import pandas.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.errors import (
    BadLog,
    missing_metric,
)
from analysis.names import find_column, lr_column
from analysis.reading.lr_reading import LrReading
from analysis.reading.rundir import CheckpointInfo, first_own_epoch, parse_checkpoints
from analysis.reading.tb import epochs_phrase

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["RunLog", "build", "dir_name", "gap_limit", "show_cell", "split_trainings", "superseded",
           "warn_resumes"]  # fmt: skip


def gap_limit(n_rows: int) -> int:
    return 10 * n_rows + 10_000


def show_cell(value: str, limit: int = 40) -> str:
    """A cell as it appears in one-line messages: repr, shortened."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


# --------------------------------------------------------------------------- RunLog


@dataclass
class RunLog:
    """A loaded training log. Treat as immutable.

    ``table[e, j]`` is column ``columns[j]``'s value at epoch ``e`` (float64, NaN where
    not logged); ``absent[e, j]`` is True where the log has no value (``NA``, an empty
    cell, a missing epoch), as opposed to a logged NaN. ``metrics`` and ``not_logged``
    are the same as pandas DataFrames (index ``epoch`` = 0..n-1).
    """

    name: str
    source: str
    format: str  # a reader's name: "run_dir", "csv", "tensorboard", "lightning", ...
    columns: tuple[str, ...]
    table: np.ndarray
    absent: np.ndarray
    manifest: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    root: Path | None = None
    #: Directions the log's own framework gives its metric names ("min" | "max"),
    #: consulted before Keras's name table; empty for Keras logs.
    directions: dict[str, str] = field(default_factory=dict)
    #: Columns the log's framework computes on validation data without a ``val_``
    #: prefix (Ultralytics's ``metrics/*``, ``val/*`` and derived ``fitness``): each is
    #: its own held-out measure, as ``val_loss`` is in a log without ``test_`` metrics.
    validation: frozenset[str] = frozenset()
    #: What to monitor when the user names nothing: Keras's ``val_loss``, or the metric
    #: the log's own framework stops on (a reader that sets another one adds a note).
    default_monitor: str = "val_loss"
    #: How a TensorBoard learning rate was aligned to epochs (None for other logs).
    lr_reading: LrReading | None = None
    #: For a trial of a study (:mod:`analysis.formats.studylog`): its number, state,
    #: final value and parameters (:class:`analysis.results.records.TrialFields`), which
    #: end each of its sweep records; None for other logs.
    trial: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.columns = tuple(self.columns)
        if self.table.shape != (len(self.table), len(self.columns)) or (
            self.absent.shape != self.table.shape
        ):
            raise ValueError(
                f"table {self.table.shape} and absent {self.absent.shape} must be "
                f"(epochs, {len(self.columns)} columns)"
            )

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """The values as a DataFrame: index ``epoch`` (0..n-1), one float64 column per
        metric, NaN where not logged (built on first use; imports pandas)."""
        return self._frame(self.table)

    @cached_property
    def not_logged(self) -> pd.DataFrame:
        """``absent`` as a DataFrame of bools shaped as :attr:`metrics`."""
        return self._frame(self.absent)

    def _frame(self, array: np.ndarray) -> pd.DataFrame:
        import pandas as pd

        index = pd.RangeIndex(len(array), name="epoch")
        return pd.DataFrame(array, index=index, columns=list(self.columns), copy=True)

    def column(self, metric: str) -> str | None:
        """The column holding ``metric``: itself, else its Keras 2 / Keras 3 spelling."""
        return find_column(metric, self.columns)

    def has(self, metric: str) -> bool:
        """Return whether ``metric`` is a column of this log (under either spelling)."""
        return self.column(metric) is not None

    @property
    def lr_column(self) -> str | None:
        """The learning-rate column (``learning_rate`` or Keras 2's ``lr``), or None.

        Its value at epoch e is the rate in effect during epoch e: every reader aligns
        it so (TensorBoard's two callback orders: :mod:`analysis.reading.lr_reading`).
        """
        return lr_column(self.columns)

    def values(self, metric: str) -> list[float | None]:
        """Return ``metric`` per epoch: floats (NaN kept), None where not logged.

        Raises:
            MissingMetric: the log has no such column (the message lists what it has
                and suggests the closest name).
        """
        column = self.column(metric)
        if column is None:
            raise missing_metric(metric, [str(c) for c in self.columns], self.source)
        j = self.columns.index(column)
        vals = self.table[:, j].tolist()
        absent = self.absent[:, j].tolist()
        return [None if a else v for v, a in zip(vals, absent, strict=True)]

    def curves(self) -> dict[str, np.ndarray]:
        """Each column's values per epoch (float64, NaN where not logged), by name: what
        the charts draw (:func:`analysis.charts.data.curve_series`), without pandas."""
        return {c: self.table[:, j] for j, c in enumerate(self.columns)}

    @property
    def n_epochs(self) -> int:
        """Number of epochs (rows), including not-logged ones."""
        return len(self.table)

    @property
    def status(self) -> str:
        """The manifest's status (running | complete | interrupted), else ``"unknown"``."""
        if self.manifest and isinstance(self.manifest.get("status"), str):
            return str(self.manifest["status"])
        return "unknown"

    @property
    def checkpoints_included(self) -> bool:
        """False when there is no manifest or run.json says ``checkpoints_included: false``."""
        return self.manifest is not None and self.manifest.get("checkpoints_included", True) is True

    @cached_property
    def checkpoints(self) -> dict[int, CheckpointInfo]:
        """Checkpoints recorded in run.json by epoch (also when not included in the copy)."""
        if self.manifest is None:
            return {}
        return parse_checkpoints(self.manifest)

    @property
    def shadow(self) -> list[dict[str, Any]]:
        """The real Keras callbacks' observe-only decisions from run.json, or ``[]``."""
        if self.manifest is None:
            return []
        return list(self.manifest.get("shadow") or [])

    @property
    def shadow_epochs(self) -> int:
        """How many epochs the shadow decisions in run.json have seen.

        run.json is replaced after the metrics row is committed, so a run killed in
        between has one more row than its manifest (and its shadow decisions) covers.
        A branch's run.json lists its own epochs only, after its parent's rows.
        """
        epochs = (self.manifest or {}).get("epochs")
        if isinstance(epochs, list):
            return min(first_own_epoch(self.manifest) + len(epochs), self.n_epochs)
        return self.n_epochs


# --------------------------------------------------------------------------- building


def build(
    path: Path | str,
    columns: list[str],
    epochs: np.ndarray,
    values: np.ndarray,
    absent: np.ndarray,
    lines: np.ndarray | None,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Apply resumes, fill gaps, return ``(table, absent)`` of one training: one row
    per epoch 0..n-1, one column per name in ``columns`` (see :class:`RunLog`).

    ``epochs``: int64 per row, in the order written; ``values``/``absent``: (rows,
    columns); ``lines``: the CSV line of each row, for messages. An epoch that goes
    back to k > 0 is a fit resumed from epoch k: its rows replace every row logged
    before them for epoch k and later (see :func:`superseded`).
    """
    n_rows = len(epochs)
    if n_rows == 0:
        raise BadLog(f"{path}: has no epochs; nothing to replay (log at least one epoch)")
    kept = ~superseded(epochs)
    if not kept.all():
        warn_resumes(path, epochs, lines, warnings)
    keep = np.flatnonzero(kept)
    kept_epochs = epochs[keep]
    n = int(kept_epochs[-1]) + 1
    if n > gap_limit(len(keep)):
        where = ""
        if lines is not None:
            where = f" (line {int(lines[int(np.argmax(epochs))])})"
        raise BadLog(
            f"{path}: epoch {n - 1}{where} would leave {n - len(keep)} epochs missing among "
            f"{len(keep)} logged; check the epoch column (0-based epoch indices)"
        )
    out_vals = np.full((n, len(columns)), np.nan, dtype=np.float64)
    out_absent = np.ones((n, len(columns)), dtype=bool)
    out_vals[kept_epochs] = values[keep]
    out_absent[kept_epochs] = absent[keep]
    if len(keep) < n:
        present = np.zeros(n, dtype=bool)
        present[kept_epochs] = True
        missing = np.flatnonzero(~present).tolist()
        warnings.append(f"{path}: {epochs_phrase(missing)} missing; marked their cells not logged")
    return out_vals, out_absent


def superseded(epochs: np.ndarray) -> np.ndarray:
    """Rows that a later row replaces: row i is dropped when a later row has an epoch <= its own.

    A fit resumed from epoch k (``initial_epoch=k`` with ``CSVLogger(append=True)``) logs
    k, k+1, ... again; what it logged is the training that went on, so everything from
    k on that was logged before it is dropped, including epochs the resumed fit did
    not reach. The kept rows are in increasing epoch order.

    >>> superseded(np.array([0, 1, 2, 3, 1, 2])).tolist()
    [False, True, True, True, False, False]
    """
    if len(epochs) < 2:
        return np.zeros(len(epochs), dtype=bool)
    later_min = np.minimum.accumulate(epochs[::-1])[::-1]
    out = np.zeros(len(epochs), dtype=bool)
    out[:-1] = epochs[:-1] >= later_min[1:]
    return out


def warn_resumes(
    path: Path | str, epochs: np.ndarray, lines: np.ndarray | None, warnings: list[str]
) -> None:
    """A warning per place where the epoch column goes back to k > 0 (a resumed fit)."""
    backs = np.flatnonzero(epochs[1:] <= epochs[:-1]) + 1
    for i in backs[:3].tolist():
        k, prev = int(epochs[i]), int(epochs[i - 1])
        where = f" at line {int(lines[i])}" if lines is not None else ""
        warnings.append(
            f"{path}: the epoch column goes back from {prev} to {k}{where} (a fit resumed "
            f"from epoch {k}); the rows from there on replace epoch {k} and later"
        )
    if len(backs) > 3:
        warnings.append(f"{path}: and {len(backs) - 3} more resumes like these")


def split_trainings(epochs: np.ndarray, boundaries: list[int]) -> list[tuple[int, int]]:
    """Row ranges ``[start, end)`` of the trainings in one log.

    A row whose epoch is 0 after a row with any epoch starts a new training (a fresh
    ``fit``, which Keras's ``CSVLogger(append=True)`` appends to the same file), and so
    does each index in ``boundaries`` (a repeated header line).

    >>> split_trainings(np.array([0, 1, 2, 0, 1, 3, 0]), [])
    [(0, 3), (3, 6), (6, 7)]
    """
    starts = set(np.flatnonzero(epochs == 0).tolist()) | set(boundaries)
    starts = sorted(s for s in starts if 0 < s < len(epochs))
    edges = [0, *starts, len(epochs)]
    return list(itertools.pairwise(edges))


def dir_name(p: Path) -> str:
    """The name a log gets from its path: the last part (resolved for ``.``)."""
    return p.name or p.resolve().name
