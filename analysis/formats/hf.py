"""Hugging Face ``Trainer`` logs: ``trainer_state.json`` (its ``log_history``).

How transformers writes it (``src/transformers/trainer_callback.py``:
``TrainerState.save_to_json`` is ``json.dumps(dataclasses.asdict(state), indent=2,
sort_keys=True)``, so a NaN loss is written as the non-standard token ``NaN``, which
Python's json reads back, as it does ``Infinity``/``-Infinity``). ``Trainer.log``
(``src/transformers/trainer.py``) appends ``{**logs, "epoch": state.epoch, "step":
state.global_step}`` for every log: training entries (``loss``: the mean loss over the
optimizer steps since the previous training entry, ``learning_rate``, ``grad_norm``),
evaluation entries (``eval_loss``, ``eval_<metric>``, ``eval_runtime``, ...; one entry per
eval dataset, ``eval_<name>_<metric>``, when there are several) and, at the end of
``train()``, one summary entry (``train_runtime``, ``train_loss``, ...). ``state.epoch``
is a float: ``epoch + (step + 1) / steps_in_epoch``.

How it is read:

- One row per evaluation ("check"): with ``eval_strategy="epoch"`` that is one row per
  epoch (entries at ``epoch`` 1.0, 2.0, ...). With ``eval_strategy="steps"`` (several
  evaluations per epoch, or fewer) it is one row per evaluation, and a warning says that
  "epoch" k then means the k-th evaluation; HF's ``EarlyStoppingCallback`` counts its
  patience in evaluations too (``on_evaluate``). Entries of several eval datasets at one
  step are one row. An evaluation at step 0 (before training) is left out, with a note.
  A log without evaluations has one row per training log entry (one per epoch with
  ``logging_strategy="epoch"``).
- ``eval_<m>`` -> ``val_<m>`` (so ``eval_loss`` is ``val_loss``); ``test_<m>`` entries
  (``evaluate(metric_key_prefix="test")``) join the row of their step when there is one.
- Training entries belong to the evaluation that follows them (``step`` in
  ``(previous evaluation step, this evaluation step]``; HF logs before it evaluates at
  the same step, ``_maybe_log_save_evaluate``). ``loss`` per row is the mean of their
  losses weighted by the steps each covers, which is exactly the mean training loss of
  the interval. ``learning_rate`` is the first rate logged in the interval (HF logs the
  rate of the step just taken; under its per-step schedules the rate changes within an
  interval, and a warning says so). Other training values (``grad_norm``, ...) are the
  mean of the entries. Counters and timings (``*_runtime``, ``*_per_second``,
  ``total_flos``, ``num_tokens``, ``num_input_tokens_seen``) are not metrics: left out.
- Entries after the summary entry (``trainer.evaluate()`` after ``train()``), and
  training entries after the last evaluation, are left out with a warning.
- Directions: HF's rule (``TrainingArguments.__post_init__``: ``greater_is_better =
  not metric_for_best_model.endswith("loss")``) makes every ``*loss`` minimized. HF
  applies "maximized" to every other name only as a default users override for error
  rates (``wer``, ``cer``, perplexity), so other names keep Keras's name table or need
  ``--mode``. ``metric_for_best_model`` and ``greater_is_better`` are not in the file,
  but ``best_metric`` is, with ``best_global_step`` (or ``best_model_checkpoint``
  ``checkpoint-N``): when exactly one evaluation metric holds ``best_metric`` at that
  step, and it is the first strict best of its column in one direction only, that
  metric's direction is known and it becomes the default monitor (it is what
  ``EarlyStoppingCallback`` watches), with a note.

Accepted paths: the file (any ``*.json`` holding ``log_history``), its folder, or an
output folder of ``checkpoint-N/`` folders, of which the latest is read (with a note).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import BadLog, LogNotFound
from analysis.formats._util import frame, read_text
from analysis.reading.logs import RunLog

__all__ = ["claims", "load"]

FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"checkpoint-([0-9]+)")
_NOT_METRICS = re.compile(
    r"(?:.*_)?(?:runtime|samples_per_second|steps_per_second|tokens_per_second|"
    r"model_preparation_time)|total_flos|num_tokens|num_input_tokens_seen|eval_num_tokens"
)
_SUMMARY = ("train_runtime", "train_loss")


def _checkpoints(p: Path) -> list[Path]:
    try:
        found = [d for d in p.iterdir()
                 if _CHECKPOINT.fullmatch(d.name) and (d / FILE).is_file()]  # fmt: skip
    except OSError:
        return []
    return sorted(found, key=lambda d: int(d.name.split("-")[1]))


def _mentions_log_history(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            return b'"log_history"' in fh.read(1 << 20)
    except OSError:
        return False


def claims(p: Path, head: str | None) -> bool:
    """trainer_state.json (or a JSON file with ``log_history``), its folder, or checkpoint-N/."""
    if p.is_file():
        return p.name == FILE or (p.suffix == ".json" and _mentions_log_history(p))
    return (p / FILE).is_file() or bool(_checkpoints(p))


def load(p: Path, source: str) -> list[RunLog]:
    """The training in the trainer_state.json at ``p`` (see the module docstring).

    Raises:
        LogNotFound: a folder without trainer_state.json or checkpoints.
        BadLog: not JSON, no ``log_history``, or nothing to replay in it.
    """
    notes: list[str] = []
    if p.is_file():
        file = p
    elif (p / FILE).is_file():
        file = p / FILE
    else:
        checkpoints = _checkpoints(p)
        if not checkpoints:
            raise LogNotFound(f"{p}: no {FILE} and no checkpoint-N/{FILE} in this folder")
        file = checkpoints[-1] / FILE
        notes.append(
            f"{p}: read {checkpoints[-1].name}/{FILE}, the latest of {len(checkpoints)} "
            f"checkpoint(s): it covers training up to step {checkpoints[-1].name.split('-')[1]}"
        )
    folder = file.parent
    name = folder.name or folder.resolve().name
    if _CHECKPOINT.fullmatch(name) and folder.parent.name:
        name = f"{folder.parent.name}/{name}"
    return [_load_file(file, source, name, notes)]


# --------------------------------------------------------------------------- parsing


def _read_state(path: Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        state = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadLog(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
            "restore the file from its checkpoint"
        ) from None
    except (ValueError, RecursionError) as e:
        raise BadLog(f"{path}: not valid JSON ({type(e).__name__}); restore the file") from None
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise BadLog(f"{path}: no 'log_history' list; expected a Hugging Face {FILE}")
    return state


def _number(v: object) -> float | None:
    """A JSON number as a float (an int beyond float64 is +-inf), None for anything else."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _whole(v: object) -> int | None:
    """A JSON number that is a whole step 0 <= n < 2**62, else None."""
    f = _number(v)
    if f is None or not math.isfinite(f) or not f.is_integer() or not 0 <= f < 2**62:
        return None
    return int(f)


@dataclass
class _Entry:
    step: int
    epoch: float | None
    values: dict[str, float]
    kind: str  # "train" | "eval" | "test"
    after_train: bool


@dataclass
class _Log:
    entries: list[_Entry] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)  # non-numeric keys


def _entries(path: Path, history: list[Any]) -> _Log:
    out = _Log()
    done = False
    for i, raw in enumerate(history):
        if not isinstance(raw, dict):
            raise BadLog(f"{path}: log_history[{i}] is not an object; restore the file")
        step = _whole(raw.get("step"))
        if step is None:
            got = repr(raw.get("step"))[:40]
            raise BadLog(
                f"{path}: log_history[{i}] has no whole 'step' (got {got}); expected a "
                f"Hugging Face {FILE}"
            )
        epoch = _number(raw.get("epoch"))
        epoch = epoch if epoch is not None and math.isfinite(epoch) else None
        values: dict[str, float] = {}
        for k, v in raw.items():
            if k in ("step", "epoch") or not isinstance(k, str) or _NOT_METRICS.fullmatch(k):
                continue
            number = _number(v)
            if number is None:
                out.skipped.add(k)
                continue
            values[k] = number
        if any(k in raw for k in _SUMMARY):
            done = True
            continue
        if not values:
            continue
        if any(k.startswith("eval_") for k in values):
            kind = "eval"
        elif all(k.startswith("test_") for k in values):
            kind = "test"
        else:
            kind = "train"
        out.entries.append(_Entry(step, epoch, values, kind, done))
    return out


# --------------------------------------------------------------------------- rows


def _row_steps(path: Path, entries: list[_Entry], warnings: list[str]) -> tuple[list[int], str]:
    """The step of each row and what a row is ("eval" or "train")."""
    evals = sorted({e.step for e in entries if e.kind == "eval"})
    if evals and evals[0] == 0 and len(evals) > 1:
        warnings.append(f"{path}: left out the evaluation at step 0 (before any training step)")
        evals = evals[1:]
    if evals:
        return evals, "eval"
    trains = sorted({e.step for e in entries if e.kind == "train"})
    if not trains:
        raise BadLog(
            f"{path}: log_history has no training or evaluation entries; nothing to replay"
        )
    return trains, "train"


def _epoch_note(
    path: Path, rows: list[int], kind: str, entries: list[_Entry], warnings: list[str]
) -> None:
    """Say so when the rows are not whole epochs 1, 2, 3, ..."""
    epochs: dict[int, float] = {}
    for e in entries:
        if e.kind == kind and e.epoch is not None:
            epochs.setdefault(e.step, e.epoch)
    got = [epochs.get(s) for s in rows]
    if all(g is not None and abs(g - (k + 1)) < 0.011 for k, g in enumerate(got)):
        return
    known = [g for g in got if g is not None]
    span = f", epochs {min(known):.3g} to {max(known):.3g}" if known else ""
    what, whats = (
        ("evaluation", "evaluations")
        if kind == "eval"
        else ("training log entry", "training log entries")
    )
    warnings.append(
        f"{path}: {len(rows)} {whats} at steps {rows[0]} to {rows[-1]}{span}: each {what} is "
        f"one row, so 'epoch' k means the k-th {what} here (not a training epoch)"
    )


def _load_file(
    path: Path,
    source: str,
    name: str,
    notes: list[str],
    state: dict[str, Any] | None = None,
    fmt: str = "hf",
) -> RunLog:
    state = _read_state(path) if state is None else state  # or rebuilt: torch_tb
    log = _entries(path, state["log_history"])
    warnings = list(notes)
    if log.skipped:
        warnings.append(f"{path}: left out non-numeric values of {', '.join(sorted(log.skipped))}")
    late = [e for e in log.entries if e.after_train]
    if late:
        keys = sorted({k for e in late for k in e.values})
        warnings.append(
            f"{path}: left out {len(late)} entr{'y' if len(late) == 1 else 'ies'} "
            f"logged after training ended ({', '.join(keys)}): not a check during "
            "training"
        )
    entries = [e for e in log.entries if not e.after_train]
    rows, kind = _row_steps(path, entries, warnings)
    _epoch_note(path, rows, kind, entries, warnings)
    table = _table(path, rows, entries, warnings)
    columns = sorted(table, key=lambda c: (c.startswith("val_"), c.startswith("test_")))
    values = np.full((len(rows), len(columns)), np.nan)
    absent = np.ones((len(rows), len(columns)), dtype=bool)
    for j, c in enumerate(columns):
        for r, v in table[c].items():
            values[r, j] = v
            absent[r, j] = False
    table, missing = frame(path, columns, np.arange(len(rows)), values, absent, warnings)
    directions = {c: "min" for c in columns if c.endswith("loss")}
    monitor = _best_metric(path, state, rows, columns, table, missing, directions, warnings)
    run = RunLog(
        name, source, fmt, columns, table, missing, warnings=warnings, directions=directions
    )
    if monitor:
        run.default_monitor = monitor
    return run


def _table(
    path: Path, rows: list[int], entries: list[_Entry], warnings: list[str]
) -> dict[str, dict[int, float]]:
    """Column -> {row: value} for every row (see the module docstring)."""
    index = {s: r for r, s in enumerate(rows)}
    table: dict[str, dict[int, float]] = {}
    sums: dict[str, dict[int, list[tuple[float, float]]]] = {}
    dropped_train = dropped_test = 0
    prev_train_step = 0
    lr_varies = False
    for e in entries:
        if e.kind in ("eval", "test"):
            r = index.get(e.step)
            if r is None:
                dropped_test += e.kind == "test"
                continue
            for k, v in e.values.items():
                col = "val_" + k[len("eval_") :] if k.startswith("eval_") else k
                table.setdefault(col, {})[r] = v
            continue
        weight = max(e.step - prev_train_step, 1)
        prev_train_step = e.step
        r = int(np.searchsorted(rows, e.step))  # first row whose step >= this entry's
        if r >= len(rows):
            dropped_train += 1
            continue
        for k, v in e.values.items():
            if k == "learning_rate":
                cells = table.setdefault(k, {})
                if r in cells:
                    lr_varies |= cells[r] != v and not (math.isnan(cells[r]) and math.isnan(v))
                else:
                    cells[r] = v
            else:
                sums.setdefault(k, {}).setdefault(r, []).append((v, weight if k == "loss" else 1))
    for k, by_row in sums.items():
        table[k] = {r: _mean(pairs) for r, pairs in by_row.items()}
    if dropped_train:
        warnings.append(
            f"{path}: left out {dropped_train} training log entr"
            f"{'y' if dropped_train == 1 else 'ies'} after the last evaluation "
            f"(step {rows[-1]}): no check follows them"
        )
    if dropped_test:
        warnings.append(
            f"{path}: left out {dropped_test} test_* entr"
            f"{'y' if dropped_test == 1 else 'ies'} at steps with no evaluation"
        )
    if lr_varies:
        warnings.append(
            f"{path}: the learning rate changes within a row's interval (a per-step "
            "schedule); learning_rate holds the first rate logged in each"
        )
    if not table:
        raise BadLog(f"{path}: log_history has no metric values; nothing to replay")
    return table


def _mean(pairs: list[tuple[float, float]]) -> float:
    total = sum(w for _, w in pairs)
    return float(sum(v * w for v, w in pairs) / total)


# --------------------------------------------------------------------------- best metric


def _best_step(state: dict[str, Any]) -> int | None:
    step = _whole(state.get("best_global_step"))
    if step is not None:
        return step
    ckpt = state.get("best_model_checkpoint")
    if isinstance(ckpt, str):
        m = _CHECKPOINT.search(ckpt.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1])
        if m:
            return int(m.group(1))
    return None


def _best_metric(
    path: Path,
    state: dict[str, Any],
    rows: list[int],
    columns: list[str],
    table: np.ndarray,
    absent: np.ndarray,
    directions: dict[str, str],
    warnings: list[str],
) -> str | None:
    """The column ``best_metric`` belongs to, its direction added to ``directions``."""
    best, step = _number(state.get("best_metric")), _best_step(state)
    if best is None or not math.isfinite(best) or step not in rows:
        return None
    r = rows.index(step)
    found: list[tuple[str, str]] = []
    for j, c in enumerate(columns):
        if not c.startswith("val_"):
            continue
        col = table[:, j]
        logged = ~absent[:, j] & ~np.isnan(col)
        if not logged[r] or col[r] != best:
            continue
        seen = col[: r + 1][logged[: r + 1]]
        first = int(np.flatnonzero(col[: r + 1] == best)[0])
        lo, hi = seen.min(), seen.max()
        if first == r and best == lo and best != hi:
            found.append((c, "min"))
        elif first == r and best == hi and best != lo:
            found.append((c, "max"))
    if len(found) != 1:
        return None
    column, direction = found[0]
    if directions.get(column, direction) != direction:
        return None
    directions[column] = direction
    warnings.append(
        f"{path}: best_metric {best:.6g} at step {step} is {column}'s best ({direction}): "
        f"metric_for_best_model was {column[len('val_') :]}, which EarlyStoppingCallback "
        f"watches; {column} is the default monitor"
    )
    return column
