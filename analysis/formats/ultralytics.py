"""Ultralytics ``results.csv`` (YOLOv8 / YOLO11 ``runs/<task>/<name>/``, and YOLOv5's).

How Ultralytics writes it (``BaseTrainer.save_metrics`` in ``ultralytics/engine/trainer.py``,
``ultralytics/yolo/engine/trainer.py`` before 8.0.14x; checked in the wheels of 8.0.100 to
8.4.190): one row per epoch, ``{**label_loss_items(tloss), **metrics, **lr}``, so
``train/<loss>``, ``metrics/<name>``, ``val/<loss>``, then ``lr/pg0..2``. Three layouts:

- 8.0.0-8.0.161: header and values padded to 23 characters (``%23s``, ``%23.5g``),
  epoch 0-based (``self.epoch``);
- 8.0.162-8.3.8: the same padding, epoch 1-based (``self.epoch + 1``);
- 8.3.9 on: no padding (``%s``, ``%.6g``), a ``time`` column (seconds since the start)
  after ``epoch``, epoch 1-based.

YOLOv5 (``utils/loggers/__init__.py``, ``on_fit_epoch_end``) pads to 20 characters,
writes 0-based epochs and names its rates ``x/lr0..2``; on COCO it writes the last epoch
again after validating ``best.pt`` (``train.py``).

How it is read:

- Epochs: a file whose first epoch is 0 is 0-based (8.0.0-8.0.161, YOLOv5); otherwise
  epochs are 1-based and epoch k is read as k - 1. Padding is stripped. ``time`` is not a
  metric. YOLOv5's trailing repeat of its last epoch is left out, with a warning.
- Names are kept as Ultralytics writes them; their prefixes are Ultralytics's own
  convention and give the directions: ``train/*`` and ``val/*`` are losses (min);
  ``metrics/*`` are maximized, except the depth errors ``metrics/abs_rel``, ``rmse``,
  ``silog`` (min); ``fitness`` is maximized.
- The learning rate: the optimizer's parameter groups are biases, weights with decay and
  weights without (``build_optimizer``; in 8.0-8.3 and YOLOv5 pg0 is the bias group, from
  8.4 pg2); the bias group's rate falls from ``warmup_bias_lr`` during warmup while the
  others rise, then all follow one schedule. ``lr/pg1`` (``x/lr1``), a weight group in
  every version, is ``learning_rate``; pg0 and pg2 keep their names. It is read after the
  epoch's last batch and before ``scheduler.step()``: the rate in effect during the epoch
  (after warmup, which changes it every batch).
- ``fitness``: Ultralytics's ``EarlyStopping`` (``ultralytics/utils/torch_utils.py``)
  stops on the validator's fitness, which results.csv does not hold. It is derived
  (``ultralytics/utils/metrics.py``, from the CSV's 5-6 significant digits, NaN as 0 as
  ``np.nan_to_num`` does): detection and OBB ``0.1 * mAP50 + 0.9 * mAP50-95`` of the (B)
  box metrics (``Metric.fitness``; 8.3.198 on: ``mAP50-95`` alone); segmentation and pose
  add the same of their (M) / (P) metrics; classification ``(top1 + top5) / 2`` (8.0.137
  on; ``top5`` before); semantic segmentation ``mIoU``; depth ``delta1``; YOLOv5 ``0.1 *
  mAP_0.5 + 0.9 * mAP_0.5:0.95`` (box plus mask for segmentation). Where the layout does
  not tell which version wrote it, the newest rule is used and a warning names the older
  one. ``fitness`` is the default monitor, with a note.

Accepted paths: the CSV file, or a run folder holding ``results.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.errors import BadLog, LogNotFound
from analysis.formats._util import (
    CsvTable,
    first_line,
    frame,
    header_names,
    number,
    read_csv,
    whole,
)
from analysis.reading.logs import RunLog

__all__ = ["claims", "load"]

FILE = "results.csv"
WHAT = "an Ultralytics results.csv header ('epoch', 'train/...', 'metrics/...')"
_PREFIXES = ("train/", "val/", "metrics/", "lr/pg", "x/lr")
_MIN_METRICS = ("metrics/abs_rel", "metrics/rmse", "metrics/silog")


def _is_results_header(line: str | None) -> bool:
    names = header_names(line)
    return "epoch" in names and any(n.startswith(_PREFIXES) for n in names)


def claims(p: Path, head: str | None) -> bool:
    """A CSV whose header has 'epoch' and Ultralytics's ``train/``, ``metrics/``, ... names."""
    if p.is_file():
        return _is_results_header(head)
    return (p / FILE).is_file() and _is_results_header(first_line(p / FILE))


def load(p: Path, source: str) -> list[RunLog]:
    """The training in the results.csv at ``p`` (see the module docstring).

    Raises:
        LogNotFound: a folder without results.csv.
        BadLog: a malformed file.
    """
    file = p if p.is_file() else p / FILE
    if not file.is_file():
        raise LogNotFound(f"{p}: no {FILE} in this folder")
    folder = file.parent
    name = (folder.name or folder.resolve().name) if file.name == FILE else file.stem
    return [_load_file(file, source, name)]


def _load_file(
    path: Path, source: str, name: str, table: CsvTable | None = None, fmt: str = "ultralytics"
) -> RunLog:
    table = read_csv(path, WHAT) if table is None else table  # or rebuilt: torch_tb
    warnings = list(table.warnings)
    header = table.header
    if "epoch" not in header:
        raise BadLog(f"{path}: the header has no 'epoch' column; expected {WHAT}")
    ep = header.index("epoch")
    idx = [k for k, c in enumerate(header) if k != ep and c != "time"]
    columns = [header[k] for k in idx]
    if not columns:
        raise BadLog(f"{path}: no metric columns; expected {WHAT}")
    n = len(table.rows)
    epochs = np.empty(n, dtype=np.int64)
    values = np.full((n, len(idx)), np.nan)
    absent = np.ones((n, len(idx)), dtype=bool)
    for i, (row, line) in enumerate(zip(table.rows, table.lines, strict=True)):
        e = whole(row[ep], path, line, "epoch")
        if e is None:
            raise BadLog(f"{path}: line {line} has no epoch; every row of {FILE} has one")
        epochs[i] = e
        for j, k in enumerate(idx):
            v = number(row[k], path, line, header[k])
            if v is not None:
                values[i, j] = v
                absent[i, j] = False
    yolov5 = any(c.startswith("x/lr") for c in columns) or "metrics/mAP_0.5" in columns
    if yolov5 and n > 1 and epochs[-1] == epochs[-2]:
        warnings.append(
            f"{path}: left out the last line ({table.lines[-1]}), a repeat of epoch "
            f"{epochs[-1]}: YOLOv5's validation of best.pt after training"
        )
        epochs, values, absent = epochs[:-1], values[:-1], absent[:-1]
    zero_based = int(epochs[0]) == 0
    if not zero_based:
        if (epochs == 0).any():
            line = table.lines[int(np.argmax(epochs == 0))]
            raise BadLog(
                f"{path}: line {line} has epoch 0, but the file starts at epoch "
                f"{epochs[0]} (1-based); fix the epoch column"
            )
        epochs = epochs - 1
    layout = (
        "yolov5"
        if yolov5
        else "time"
        if "time" in header
        else "padded0"
        if zero_based
        else "padded1"
    )
    lr = next((c for c in ("lr/pg1", "x/lr1") if c in columns), None)
    if lr is not None and "learning_rate" not in columns:
        columns[columns.index(lr)] = "learning_rate"
    fitness = _fitness(path, columns, values, absent, layout, warnings)
    if fitness is not None:
        columns.append("fitness")
        values = np.column_stack([values, fitness[0]])
        absent = np.column_stack([absent, fitness[1]])
    table, missing = frame(path, columns, epochs, values, absent, warnings)
    run = RunLog(
        name,
        source,
        fmt,
        columns,
        table,
        missing,
        warnings=warnings,
        directions=_directions(columns),
        validation=frozenset(
            c for c in columns if c.startswith(("metrics/", "val/")) or c == "fitness"
        ),
    )
    if fitness is not None:
        run.default_monitor = "fitness"
    return run


def _directions(columns: list[str]) -> dict[str, str]:
    """Ultralytics's prefixes as directions.

    >>> _directions(["train/box_loss", "metrics/mAP50(B)", "metrics/rmse", "lr/pg0", "fitness"])
    {'train/box_loss': 'min', 'metrics/mAP50(B)': 'max', 'metrics/rmse': 'min', 'fitness': 'max'}
    """
    out: dict[str, str] = {}
    for c in columns:
        if c.startswith(("train/", "val/")) or c in _MIN_METRICS:
            out[c] = "min"
        elif c.startswith("metrics/") or c == "fitness":
            out[c] = "max"
    return out


# --------------------------------------------------------------------------- fitness


def _box(suffix: str, v5: bool) -> tuple[str, str]:
    if v5:
        return f"metrics/mAP_0.5{suffix}", f"metrics/mAP_0.5:0.95{suffix}"
    return f"metrics/mAP50{suffix}", f"metrics/mAP50-95{suffix}"


def _fitness(
    path: Path,
    columns: list[str],
    values: np.ndarray,
    absent: np.ndarray,
    layout: str,
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, absent) of the derived fitness column, or None when the columns do not allow."""
    col = {c: j for j, c in enumerate(columns)}
    v5 = layout == "yolov5"
    terms: list[tuple[str, float]] = []
    older = ""
    groups = [s for s in ("(B)", "(M)", "(P)", "") if all(n in col for n in _box(s, v5))]
    if groups:
        map_weights = (0.0, 1.0) if layout == "time" else (0.1, 0.9)
        for s in groups:
            m50, m5095 = _box(s, v5)
            terms += [(m50, map_weights[0]), (m5095, map_weights[1])]
        if layout == "time":
            older = (
                "ultralytics 8.3.9-8.3.197 wrote this same layout and weighted "
                "0.1 * mAP50 + 0.9 * mAP50-95 (8.3.198 on: mAP50-95 alone, used here)"
            )
    elif "metrics/accuracy_top1" in col and "metrics/accuracy_top5" in col:
        terms = [("metrics/accuracy_top1", 0.5), ("metrics/accuracy_top5", 0.5)]
        if layout == "padded0":
            older = "ultralytics before 8.0.137 used top5 alone (8.0.137 on: (top1 + top5) / 2)"
    elif "metrics/mIoU" in col:
        terms = [("metrics/mIoU", 1.0)]
    elif "metrics/delta1" in col:
        terms = [("metrics/delta1", 1.0)]
    if not terms:
        return None
    idx = [col[c] for c, _ in terms]
    weights = np.array([w for _, w in terms])
    fit = np.nan_to_num(values[:, idx]) @ weights
    fit_absent = absent[:, idx].any(axis=1)
    fit[fit_absent] = np.nan
    formula = " + ".join(c if w == 1 else f"{w:g} * {c}" for c, w in terms if w)
    warnings.append(
        f"{path}: derived fitness = {formula} (ultralytics/utils/metrics.py), what Ultralytics's "
        f"EarlyStopping stops on; it is the default monitor" + (f"; {older}" if older else "")
    )
    return fit, fit_absent
