"""PyTorch Lightning ``CSVLogger`` logs: ``lightning_logs/version_N/metrics.csv``.

How Lightning writes the file (lightning 2.x ``src/lightning/fabric/loggers/csv_logs.py``,
``_ExperimentWriter``; ``pytorch_lightning/loggers/csv_logs.py`` in 1.x): each
``log_metrics(metrics, step)`` call is one row ``{**metrics, "step": step}``; the header
is the union of the keys, sorted since lightning 2.2.0 and in order of first appearance
before (so 1.x files often end with ``epoch,step``); a cell the row did not log is empty.
``LoggerConnector.log_metrics`` (``src/lightning/pytorch/trainer/connectors/
logger_connector/logger_connector.py``) adds ``epoch = trainer.current_epoch`` to every
row it writes; ``LearningRateMonitor`` (``src/lightning/pytorch/callbacks/lr_monitor.py``)
writes to the logger directly, so its rows have an empty epoch. ``self.log(name,
on_step=True, on_epoch=True)`` forks a metric into ``name_step`` and ``name_epoch``
(``_ResultMetric.forked_name`` in ``.../logger_connector/result.py``), and several
dataloaders append ``/dataloader_idx_N``.

How it is read:

- Rows are merged per epoch: training step rows, the validation row and the
  ``*_epoch`` row of an epoch become one row. A row without an epoch (the learning-rate
  monitor's) belongs to the epoch of the next row that has one (it is logged as that
  epoch starts). ``step`` is never a metric.
- ``*_step`` columns are left out (per-step values), with a note. A column that still
  holds several different values within one epoch (``self.log`` in ``training_step``
  without ``on_epoch=True``, a learning rate logged per step) is left out too, with a
  warning naming it: it has no epoch value.
- Validation more than once per epoch (``val_check_interval < 1``, or an int interval
  shorter than an epoch): when some epoch has validation values at two or more distinct
  steps, each validation check is one row, in step order, and a warning says so:
  "epoch" k then means the k-th check, as Lightning's ``EarlyStopping`` counts them
  (its ``check_on_train_epoch_end`` defaults to False then), so ``--patience`` counts
  checks; ``--dialect keras`` replays the same rows. A check's row holds its validation
  values (``test*`` values logged at its step too); the epoch's training values
  (``on_epoch``) go to the row of its last check and are not logged in the others; the
  learning rate is the last one logged in the epoch up to the check (the one in effect
  there, also when logged per step). Epochs may hold different numbers of checks (a
  last, shorter epoch; an int ``val_check_interval`` with ``check_val_every_n_epoch=
  None``); an epoch without validation (``check_val_every_n_epoch > 1``) is one row with
  its training values only. A file with one validation per epoch reads as above.
- Rows after training: ``trainer.test()`` (and ``trainer.validate()``) after ``fit``
  log at the step a finished fit's counter holds (one past the fit's last step) with
  ``epoch = current_epoch`` (the number of epochs trained in lightning >= 1.6, the last
  epoch before). Trailing rows logged there (while an epoch takes more than one step),
  or holding only metrics the fit never logged (``test_*``, ``avg_test_*``, ``Final F1
  Score``), or only ``test*`` metrics, are left out of the per-epoch curve with one
  warning: they are no epoch's held-out metrics. Rows that advance the step by an
  epoch are epochs, whatever they hold (see :func:`_after_training`).
- Names become Keras names where they mean the same thing (the replay's conventions:
  bare = training, ``val_`` = validation, ``test_`` = held-out test), with a note
  listing each renaming (:func:`analysis.formats._util.keras_names`): ``X_epoch`` ->
  ``X``; ``train_X``, ``train/X``, ``training_X`` -> ``X``; ``val/X``, ``valid_X``,
  ``valid/X``, ``validation_X``, ``validation/X``, ``eval_X``, ``eval/X`` -> ``val_X``;
  ``test/X`` -> ``test_X``; a single ``lr-<Optimizer>`` column (the learning-rate monitor's, logged
  at the start of each epoch, so the rate in effect during it) -> ``learning_rate``. A
  renaming that would collide with an existing column is not made. Other names are
  kept.
- Directions: Lightning has no naming convention (its ``EarlyStopping`` and
  ``ModelCheckpoint`` default to ``mode="min"`` whatever the name), so none are
  given: Keras's name table decides, and other names need ``--mode``.
- An epoch column that goes back to 0 starts a new training (``name#1``, ``name#2``);
  one that goes back to k > 0 is a resumed fit (see :func:`analysis.reading.logs._build`).

Accepted paths: the ``metrics.csv`` file, its ``version_N`` folder, or a
``lightning_logs`` folder (one run per ``version_N`` that has a metrics.csv).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.errors import BadLog, LogNotFound
from analysis.formats._util import (
    FORK,
    LR_MONITOR,
    CsvTable,
    first_line,
    frame,
    header_names,
    keras_names,
    merge_epochs,
    number,
    read_csv,
    whole,
)
from analysis.reading.logs import RunLog
from analysis.reading.runlog import split_trainings, superseded, warn_resumes
from analysis.reading.tb import epochs_phrase

__all__ = ["claims", "load"]

FILE = "metrics.csv"
WHAT = "a Lightning CSVLogger header with 'epoch' and 'step' columns"
_VERSION = re.compile(r"version_([0-9]+)")


def _is_lightning_header(line: str | None) -> bool:
    names = header_names(line)
    return "epoch" in names and "step" in names


def _versions(p: Path) -> list[Path]:
    """The ``version_N`` folders of a ``lightning_logs`` folder that hold a metrics.csv."""
    try:
        found = [d for d in p.iterdir() if _VERSION.fullmatch(d.name) and (d / FILE).is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda d: int(d.name.split("_")[1]))


def claims(p: Path, head: str | None) -> bool:
    """A metrics.csv, or a folder of one or of version_N folders, with epoch and step columns."""
    if p.is_file():
        return _is_lightning_header(head)
    if (p / FILE).is_file():
        return _is_lightning_header(first_line(p / FILE))
    return any(_is_lightning_header(first_line(d / FILE)) for d in _versions(p))


def load(p: Path, source: str) -> list[RunLog]:
    """Every training in the Lightning log at ``p`` (see the module docstring).

    Raises:
        LogNotFound: a folder with no metrics.csv.
        BadLog: a malformed file, or nothing per-epoch in it.
    """
    if p.is_file():
        name = p.parent.name if p.name == FILE and p.parent.name else p.stem
        return _load_file(p, source, name)
    if (p / FILE).is_file():
        return _load_file(p / FILE, source, p.name or p.resolve().name)
    versions = _versions(p)
    if not versions:
        raise LogNotFound(f"{p}: no metrics.csv and no version_N/metrics.csv in this folder")
    runs: list[RunLog] = []
    for d in versions:
        runs.extend(_load_file(d / FILE, os.path.join(source, d.name), d.name))
    return runs


# --------------------------------------------------------------------------- reading


def _parse(
    path: Path, table: CsvTable | None = None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(metric columns, epoch and step per row with -1 for none, values, absent, warnings)
    of the metrics.csv at ``path``, or of ``table`` (rows rebuilt from another log of
    Lightning's loggers: :mod:`analysis.formats.torch_tb`)."""
    table = read_csv(path, WHAT) if table is None else table
    header = table.header
    if "epoch" not in header or "step" not in header:
        raise BadLog(f"{path}: the header has no 'epoch' and 'step' columns; expected {WHAT}")
    ep, st = header.index("epoch"), header.index("step")
    idx = [k for k in range(len(header)) if k not in (ep, st)]
    columns = [header[k] for k in idx]
    n = len(table.rows)
    epochs = np.full(n, -1, dtype=np.int64)
    steps = np.full(n, -1, dtype=np.int64)
    values = np.full((n, len(idx)), np.nan)
    absent = np.ones((n, len(idx)), dtype=bool)
    for i, (row, line) in enumerate(zip(table.rows, table.lines, strict=True)):
        e = whole(row[ep], path, line, "epoch")
        s = whole(row[st], path, line, "step")  # never a metric
        if e is not None:
            epochs[i] = e
        if s is not None:
            steps[i] = s
        for j, k in enumerate(idx):
            v = number(row[k], path, line, header[k])
            if v is not None:
                values[i, j] = v
                absent[i, j] = False
    return columns, epochs, steps, values, absent, table.warnings


def _fill_epochs(path: Path, epochs: np.ndarray) -> np.ndarray:
    """Rows without an epoch take the next row's (else the previous row's) epoch.

    >>> _fill_epochs(Path("m"), np.array([-1, 0, -1, 1, -1])).tolist()
    [0, 0, 1, 1, 1]
    """
    has = np.flatnonzero(epochs >= 0)
    if not len(has):
        raise BadLog(f"{path}: no row has an epoch; expected {WHAT}")
    nxt = np.searchsorted(has, np.arange(len(epochs)))
    nxt = np.minimum(nxt, len(has) - 1)
    return epochs[has[nxt]]


def _kind(column: str) -> str:
    """``test``, ``val``, ``lr`` or ``train`` for an original Lightning column name."""
    low = column.lower()
    if low.startswith("test"):
        return "test"
    if low.startswith(("val", "valid")):
        return "val"
    if LR_MONITOR.fullmatch(column) or low in ("lr", "learning_rate"):
        return "lr"
    return "train"


def _after_training(
    path: Path,
    columns: list[str],
    epochs: np.ndarray,
    steps: np.ndarray,
    absent: np.ndarray,
    warnings: list[str],
) -> int:
    """How many rows to keep: trailing rows logged after ``fit`` are cut, with one warning.

    What Lightning writes decides (``_LoggerConnector.log_metrics``, lightning 2.x
    ``src/lightning/pytorch/trainer/connectors/logger_connector/logger_connector.py``):
    every row without an explicit step is logged at ``step =
    fit_loop.epoch_loop._batches_that_stepped`` with ``epoch = trainer.current_epoch``.
    During the fit, an epoch's validation row and its ``on_epoch`` training row are
    logged before that counter moves past the epoch's last batch (``_TrainingEpochLoop.
    on_advance_end``; ``_FitLoop.on_advance_end`` steps it back by one for the training
    row), so epoch e ends at step ``(e + 1) * n - 1`` for n batches per epoch. A
    ``trainer.test()`` or ``trainer.validate()`` after the fit logs at the finished
    counter, one past the fit's last step, with ``current_epoch`` = the epochs completed
    (lightning >= 1.6; before, at the fit's last step and epoch), or at step 0 and epoch 0
    from a new Trainer on the same logger. So a trailing row is logged after the fit when

    - it sits where a finished (or new) trainer logs, the epoch after the last one at
      the step after the last one, while the fit's epochs are more than one step long
      (an epoch after it would be logged at least a whole epoch's steps later), and it
      holds no training value logged per step; or
    - it holds only metrics that no row of the fit logged (``test_step``'s names, any
      name: ``Final F1 Score``, ``avg_test_loss``), at the fit's last or finished
      step and epoch; or
    - it holds only ``test*`` metrics that no row of the fit logged.

    A row that advances the step by an epoch's steps is an epoch of the fit, whatever
    it holds (a training loss logged only every few epochs leaves later epochs with
    validation rows only).
    """
    kinds = np.array([_kind(c) for c in columns])
    logged = ~absent
    n = len(epochs)
    keep = n
    while keep and not logged[keep - 1].any():
        keep -= 1
    lr = kinds == "lr"
    started = keep
    while started and not logged[started - 1, ~lr].any():  # LearningRateMonitor's rows
        started -= 1
    if started < keep and started and logged[:started, ~lr].any():
        warnings.append(
            f"{path}: left out the learning rate logged at step "
            f"{int(steps[started])} as epoch {int(epochs[:started].max()) + 1} began: that "
            "epoch logged nothing else (the run stopped before its end)"
        )
        keep = started
    end = keep  # rows from here on are no fit's and no test's
    if keep:
        keep = _finished_trainer_rows(kinds, epochs, steps, logged, keep)
    test = kinds == "test"
    with_fit = logged[:, ~test].any(axis=1)  # rows that hold more than test metrics
    while keep:
        row = logged[keep - 1]
        fit_tests = logged[: keep - 1][with_fit[: keep - 1]][:, test].any(axis=0)
        if row[~test].any() or row[test][fit_tests].any():
            break
        keep -= 1
    cut = logged[keep:end].any(axis=0)
    if cut.any():
        names = ", ".join(c for c, x in zip(columns, cut, strict=True) if x)
        rows = logged[keep:end].any(axis=1)
        where = sorted(set(epochs[keep:end][rows].tolist()))
        at = sorted(set(steps[keep:end][rows].tolist()))
        warnings.append(
            f"{path}: {int(rows.sum())} row(s) after the fit ({names} at epoch "
            f"{', '.join(map(str, where))}, step {', '.join(map(str, at))}) were logged by "
            "trainer.test() or trainer.validate() after training (at the step Lightning "
            "logs a finished fit at, or with metrics the fit did not log); left them out "
            "of the per-epoch curve"
        )
    return keep


def _finished_trainer_rows(
    kinds: np.ndarray, epochs: np.ndarray, steps: np.ndarray, logged: np.ndarray, keep: int
) -> int:
    """Where the trailing rows at a finished (or new) trainer's step and epoch begin (see
    :func:`_after_training`); ``keep`` when there are none."""
    step, epoch = steps[keep - 1], epochs[keep - 1]
    start = keep - 1
    while start and steps[start - 1] == step and epochs[start - 1] == epoch:
        start -= 1
    fit = logged[:start] & (kinds != "lr")
    if not fit.any():
        return keep
    rows = fit.any(axis=1)
    last_step, last_epoch = int(steps[:start][rows].max()), int(epochs[:start][rows].max())
    before = rows & (epochs[:start] < last_epoch)
    stride = last_step - int(steps[:start][before].max()) if before.any() else last_step + 1
    fit_cols = fit.any(axis=0)
    per_step = _per_step_columns(kinds, epochs[:start], steps[:start], fit)
    finished = step == last_step + 1 and epoch == last_epoch + 1
    fresh = step == 0 and epoch == 0 and last_step > 0
    old = step in (last_step, last_step + 1) and epoch == last_epoch
    for i in range(keep - 1, start - 1, -1):
        row = logged[i]
        by_step = (finished or fresh) and stride > 1 and not row[per_step].any()
        by_names = (finished or fresh or old) and not row[fit_cols].any()
        if not (by_step or by_names):
            break
        keep = i
    return keep


def _per_step_columns(
    kinds: np.ndarray, epochs: np.ndarray, steps: np.ndarray, logged: np.ndarray
) -> np.ndarray:
    """Training columns logged at two or more steps of one epoch (``on_step`` values)."""
    out = np.zeros(len(kinds), dtype=bool)
    for j in np.flatnonzero(kinds == "train").tolist():
        rows = logged[:, j]
        pairs = np.unique(np.stack([epochs[rows], steps[rows]], axis=1), axis=0)
        out[j] = len(pairs) > len(np.unique(epochs[rows]))
    return out


def _is_step_column(column: str) -> bool:
    m = FORK.fullmatch(column)
    return m is not None and m.group(2) == "step"


def _drop_columns(columns, values, absent, drop: list[int]):
    keep = [j for j in range(len(columns)) if j not in set(drop)]
    return [columns[j] for j in keep], values[:, keep], absent[:, keep]


def _mid_epoch(
    path: Path,
    columns: list[str],
    epochs: np.ndarray,
    steps: np.ndarray,
    absent: np.ndarray,
    skip: set[int],
    warnings: list[str],
) -> None:
    """Warn about training columns only ever logged before their epoch's last row.

    An epoch-level value (``on_epoch=True``) is logged at the epoch's end, at the step of
    its last rows; ``self.log`` in ``training_step`` without ``on_epoch`` logs every
    ``log_every_n_steps`` steps, so an epoch that holds one such row holds a sample.
    """
    flagged = []
    for j, c in enumerate(columns):
        if _kind(c) != "train" or j in skip:
            continue
        comparable = early = 0
        for e in np.unique(epochs[~absent[:, j]]).tolist():
            mine = (epochs == e) & ~absent[:, j] & (steps >= 0)
            rows = (epochs == e) & (steps >= 0)
            if not mine.any():
                continue
            comparable += 1
            early += int(steps[mine].max() < steps[rows].max())
        if comparable and early == comparable:
            flagged.append(c)
    if flagged:
        warnings.append(
            f"{path}: {', '.join(flagged)} is logged before the end of each epoch (a per-step "
            "value, self.log without on_epoch=True): kept as the epoch's value, but it is one "
            "step's, not the epoch's mean"
        )


def _load_file(
    path: Path, source: str, name: str, table: CsvTable | None = None, fmt: str = "lightning"
) -> list[RunLog]:
    columns, epochs, steps, values, absent, warnings = _parse(path, table)
    epochs = _fill_epochs(path, epochs)
    step_cols = [j for j, c in enumerate(columns) if _is_step_column(c)]
    if step_cols:
        shown = ", ".join(columns[j] for j in step_cols)
        warnings.append(
            f"{path}: left out the per-step columns {shown} (their *_epoch "
            "twins, where logged, hold the epoch values)"
        )
        columns, values, absent = _drop_columns(columns, values, absent, step_cols)
    rows = np.flatnonzero((~absent).any(axis=1))  # rows that logged only *_step values go
    epochs, steps, values, absent = epochs[rows], steps[rows], values[rows], absent[rows]
    if not len(rows):
        raise BadLog(
            f"{path}: has no epochs (no row logs a per-epoch metric); nothing to replay "
            "(log with on_epoch=True)"
        )
    keep = _after_training(path, columns, epochs, steps, absent, warnings)
    if not keep:
        raise BadLog(
            f"{path}: every row was logged after training (trainer.test() or "
            "trainer.validate()); no epoch to replay"
        )
    epochs, steps, values, absent = epochs[:keep], steps[:keep], values[:keep], absent[:keep]
    empty = [j for j in range(len(columns)) if absent[:, j].all()]
    columns, values, absent = _drop_columns(columns, values, absent, empty)
    merged_epochs, merged_values, merged_absent, multi = merge_epochs(epochs, values, absent)
    _mid_epoch(path, columns, epochs, steps, absent, set(multi), warnings)
    checks = None
    if _several_checks(columns, epochs, steps, absent):
        checks = _checks(columns, epochs, steps, values, absent)
        values, absent, multi = checks.values, checks.absent, checks.multi
        if checks.lr_varies:
            warnings.append(
                f"{path}: the learning rate changes within an epoch (logged per step); each "
                "check's row holds the last rate logged before it"
            )
    else:
        epochs, values, absent = merged_epochs, merged_values, merged_absent
    if multi:
        shown = ", ".join(f"{columns[j]} (up to {k})" for j, k in sorted(multi.items()))
        warnings.append(
            f"{path}: left out {shown}: logged several times per epoch (per step, or validation "
            "more than once per epoch), so no value is the epoch's; log with on_epoch=True"
        )
        columns, values, absent = _drop_columns(columns, values, absent, list(multi))
    if not columns:
        raise BadLog(
            f"{path}: no metric is logged once per epoch; nothing to replay (log with "
            "on_epoch=True)"
        )
    renames = keras_names(columns, lr_monitor=True)
    if renames:
        shown = ", ".join(f"{a} -> {b}" for a, b in renames.items())
        warnings.append(f"{path}: read Lightning names as Keras names: {shown}")
        columns = [renames.get(c, c) for c in columns]
    if checks is not None:
        return _check_runs(path, source, name, columns, checks, values, absent, warnings, fmt)
    return _runs(path, source, name, columns, epochs, values, absent, warnings, fmt)


# --------------------------------------------------------------------------- checks


def _several_checks(
    columns: list[str], epochs: np.ndarray, steps: np.ndarray, absent: np.ndarray
) -> bool:
    """Whether some epoch holds validation values at two or more distinct steps.

    >>> _several_checks(["val_loss"], np.array([0, 0, 1]), np.array([4, 9, 14]),
    ...     np.zeros((3, 1), dtype=bool))
    True
    """
    val = np.array([_kind(c) == "val" for c in columns], dtype=bool)
    if not len(epochs) or not val.any():
        return False
    rows = (~absent[:, val]).any(axis=1) & (steps >= 0)
    if not rows.any():
        return False
    block = np.cumsum(_block_starts(epochs, steps))
    pairs = np.unique(np.stack([block[rows], steps[rows]], axis=1), axis=0)
    return int(np.bincount(pairs[:, 0]).max()) >= 2


def _block_starts(epochs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Rows that start an epoch: the epoch changes, or the step goes back (a new fit).

    >>> _block_starts(np.array([0, 0, 0, 0]), np.array([4, 9, 4, 9])).tolist()
    [True, False, True, False]
    """
    back = (steps[1:] >= 0) & (steps[1:] < steps[:-1])
    return np.r_[True, (epochs[1:] != epochs[:-1]) | back]


@dataclass
class _Checks:
    """One row per validation check (or per epoch without validation)."""

    block: np.ndarray  # the epoch block (consecutive rows of one epoch) of each row
    epoch: np.ndarray  # per block
    step: np.ndarray  # per row: the check's step (an epoch without validation: its last)
    validated: np.ndarray  # per row: whether it is a validation check
    values: np.ndarray
    absent: np.ndarray
    multi: dict[int, int]  # column -> most distinct values that fell into one row
    lr_varies: bool


def _checks(
    columns: list[str],
    epochs: np.ndarray,
    steps: np.ndarray,
    values: np.ndarray,
    absent: np.ndarray,
) -> _Checks:
    """The rows of a log that validates several times per epoch (see the module docstring)."""
    kinds = [_kind(c) for c in columns]
    val = np.array([k == "val" for k in kinds], dtype=bool)
    lr_cols = [j for j, k in enumerate(kinds) if k == "lr"]
    starts = np.flatnonzero(_block_starts(epochs, steps))
    ends = np.r_[starts[1:], len(epochs)]
    block: list[int] = []
    row_steps: list[int] = []
    validated: list[bool] = []
    anchors: list[int] = []  # the file row each check's learning rate is read up to
    cells: dict[tuple[int, int], list[float]] = {}
    lr_cells: dict[tuple[int, int], float] = {}
    lr_varies = False
    for b, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        checked = [i for i in range(s, e) if (~absent[i, val]).any()]
        at: dict[int, int] = {}
        for i in checked:
            at.setdefault(int(steps[i]), 0)
        first = len(block)
        for k, step in enumerate(sorted(at)):
            at[step] = first + k
            block.append(b)
            row_steps.append(step)
            validated.append(True)
            anchors.append(max(i for i in checked if steps[i] == step))
        if not at:
            block.append(b)
            row_steps.append(int(steps[s:e].max()))
            validated.append(False)
            anchors.append(e - 1)
        last = len(block) - 1
        for i in range(s, e):
            for j in np.flatnonzero(~absent[i]).tolist():
                if kinds[j] == "lr":
                    continue
                t = at.get(int(steps[i]), last) if kinds[j] in ("val", "test") else last
                cells.setdefault((t, j), []).append(float(values[i, j]))
        for j in lr_cols:
            logged = [i for i in range(s, e) if not absent[i, j]]
            if not logged:
                continue
            lr_varies |= len(np.unique(values[logged, j])) > 1  # NaNs are one value
            for t in range(first, last + 1):
                before = [i for i in logged if i <= anchors[t]]
                lr_cells[(t, j)] = float(values[before[-1] if before else logged[0], j])
    n = len(block)
    out_v = np.full((n, len(columns)), np.nan)
    out_a = np.ones((n, len(columns)), dtype=bool)
    multi: dict[int, int] = {}
    for (t, j), got in cells.items():
        if len(np.unique(got)) > 1:  # NaNs are one value
            multi[j] = max(multi.get(j, 0), len(got))
        out_v[t, j], out_a[t, j] = got[-1], False
    for (t, j), v in lr_cells.items():
        out_v[t, j], out_a[t, j] = v, False
    return _Checks(
        np.array(block, dtype=np.int64),
        epochs[starts],
        np.array(row_steps, dtype=np.int64),
        np.array(validated, dtype=bool),
        out_v,
        out_a,
        multi,
        lr_varies,
    )


def _check_note(path: Path, checks: _Checks, rows: np.ndarray) -> str | None:
    """The warning that says the rows are validation checks, and where each one was; None
    for a training of the file that never validated (its rows are its epochs)."""
    block = checks.block[rows]
    epoch = checks.epoch[block]
    validated = checks.validated[rows]
    if not validated.any():
        return None
    epochs = np.unique(epoch[validated])
    counts = [int(((epoch == e) & validated).sum()) for e in epochs.tolist()]
    if len(set(counts)) == 1:
        per = f"{counts[0]} per epoch"
    elif len(set(counts[:-1])) == 1 and counts[-1] < counts[0]:  # a shorter last epoch
        per = f"{counts[0]} per epoch, {counts[-1]} in the last"
    else:
        per = f"{min(counts)} to {max(counts)} per epoch"
    spans = []
    for e in np.unique(epoch).tolist()[:8]:
        mine = np.flatnonzero(epoch == e)
        a, b = int(mine[0]), int(mine[-1])
        spans.append(f"{a}-{b} epoch {e}" if b > a else f"{a} epoch {e}")
    more = ", ..." if len(np.unique(epoch)) > 8 else ""
    steps = checks.step[rows][validated]
    bare = "" if validated.all() else "; an epoch without validation is one row without val_*"
    return (
        f"{path}: validation ran several times per epoch ({int(validated.sum())} checks in "
        f"{len(epochs)} epochs, {per}, at steps {int(steps.min())} to {int(steps.max())}): "
        "each check is one row, as Lightning's EarlyStopping counts them, so 'epoch' k means "
        "the k-th check here and --patience counts checks (--dialect keras replays the same "
        f"rows); training values are at each epoch's last check{bare} (rows "
        f"{', '.join(spans)}{more})"
    )


def _check_runs(
    path: Path,
    source: str,
    name: str,
    columns: list[str],
    checks: _Checks,
    values: np.ndarray,
    absent: np.ndarray,
    warnings: list[str],
    fmt: str = "lightning",
) -> list[RunLog]:
    """One RunLog per training, one row per check; resumes replace from their epoch."""
    spans = split_trainings(checks.epoch, [])
    runs = []
    for k, (a, b) in enumerate(spans, 1):
        own = _training_warnings(path, warnings, k, len(spans))
        epochs = checks.epoch[a:b]
        kept = ~superseded(epochs)
        if not kept.all():
            warn_resumes(path, epochs, None, own)
        blocks = a + np.flatnonzero(kept)
        rows = np.flatnonzero(np.isin(checks.block, blocks))
        seen = epochs[kept].tolist()
        missing = sorted(set(range(int(seen[-1]) + 1)) - set(seen))
        if missing:
            own.append(
                f"{path}: {epochs_phrase(missing)} missing (no rows logged); the rows "
                f"(checks) go on without {'it' if len(missing) == 1 else 'them'}"
            )
        note = _check_note(path, checks, rows)
        if note:
            own.append(note)
        table, unlogged = frame(
            path, columns, np.arange(len(rows)), values[rows], absent[rows], own
        )
        suffix = f"#{k}" if len(spans) > 1 else ""
        runs.append(
            RunLog(name + suffix, source + suffix, fmt, columns, table, unlogged, warnings=own)
        )
    return runs


def _training_warnings(path: Path, warnings: list[str], k: int, n: int) -> list[str]:
    """The file's warnings for its k-th of n trainings (naming it when there are several)."""
    own = list(warnings)
    if n > 1:
        own.append(
            f"{path}: holds {n} trainings (the epoch column goes back to 0); this is training #{k}"
        )
    return own


def _runs(
    path: Path,
    source: str,
    name: str,
    columns: list[str],
    epochs: np.ndarray,
    values: np.ndarray,
    absent: np.ndarray,
    warnings: list[str],
    fmt: str = "lightning",
) -> list[RunLog]:
    """One RunLog per training (the epoch column going back to 0 starts another)."""
    spans = split_trainings(epochs, [])
    runs = []
    for k, (a, b) in enumerate(spans, 1):
        own = _training_warnings(path, warnings, k, len(spans))
        table, unlogged = frame(path, columns, epochs[a:b], values[a:b], absent[a:b], own)
        suffix = f"#{k}" if len(spans) > 1 else ""
        runs.append(
            RunLog(name + suffix, source + suffix, fmt, columns, table, unlogged, warnings=own)
        )
    return runs
