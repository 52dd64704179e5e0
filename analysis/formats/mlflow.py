"""MLflow file-store runs: ``mlruns/<experiment_id>/<run_id>/metrics/<key>``.

How MLflow writes them (``mlflow/store/tracking/file_store.py``, ``FileStore``; checked in
mlflow-skinny 3.17.2, where the file store needs ``MLFLOW_ALLOW_FILE_STORE=true``): a run
folder holds ``meta.yaml`` (``run_id``, ``run_name``, ``lifecycle_stage``, ...),
``params/``, ``tags/`` (``mlflow.runName``) and ``metrics/``, one text file per metric key
(a key with ``/`` is a nested path), one line per ``log_metric`` call:
``"{timestamp} {value} {step}"`` (``_log_run_metric``; MLflow's own reader,
``_get_metric_from_line``, also takes 2 fields, step 0, and 5, with a dataset name and
digest). The value is Python's ``str(float)``: ``nan`` and ``inf`` are values.

How it is read:

- The step is the epoch when the steps are (nearly) consecutive: Keras autologging logs
  ``logs`` at ``on_epoch_end`` with ``step=epoch`` (``mlflow/keras/callback.py``,
  ``mlflow/tensorflow/callback.py``), as do most manual loops; gaps become not-logged
  epochs with a warning. Steps far apart (global steps, as Hugging Face's
  ``MLflowCallback`` and ``log_every_n_steps`` log) give one row per logged step, and a
  warning says that "epoch" k then means the k-th logged step.
- A metric key ``epoch`` holding whole numbers (Lightning's ``MLFlowLogger`` logs the epoch
  with every call) gives each step its epoch; rows of one epoch are merged, and a key
  with several different values in one epoch is left out (per-step values), with a
  warning. ``epoch`` itself is not a metric.
- Several values at one step: the last by timestamp (then by line) wins, with a warning.
  A key whose values all sit at one step while the run has several (a summary logged
  once, or ``log_metric`` without ``step=``, like Keras autologging's ``validation_*``
  from ``on_test_end``) is left out, with a warning. When every key of a run is logged
  at one single step, the k-th value of each key (by timestamp) is read as epoch k, with
  a warning.
- Keras autologging logs Keras's names (``loss``, ``val_loss``, ``lr`` or
  ``learning_rate``, the rate in effect during the epoch as Keras's callbacks put it in
  ``logs``); they are kept. Other keys are the user's, as in Lightning: the same renaming
  to Keras names applies (``train_loss`` -> ``loss``, ``validation_loss`` ->
  ``val_loss``, ``train_loss_epoch`` from Lightning's ``MLFlowLogger`` -> ``loss``, ...;
  :func:`analysis.formats._util.keras_names`), with a note. MLflow has no naming
  convention of its own, so directions come from Keras's name table.
- Runs whose ``meta.yaml`` says ``lifecycle_stage: deleted`` are skipped in an
  experiment or ``mlruns`` folder, with a warning; params and tags are not read, except
  the run name (``tags/mlflow.runName``, else ``run_name`` in meta.yaml, else the id).

Accepted paths: a run folder, an experiment folder (one run per run folder), or the
``mlruns`` folder (every run of every experiment).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from analysis.errors import BadLog, LogNotFound
from analysis.formats._util import frame, keras_names, merge_epochs, read_text
from analysis.reading.logs import RunLog

__all__ = ["claims", "load"]

META = "meta.yaml"
_YAML_FIELD = re.compile(r"^(\w+):[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_INT = re.compile(r"-?[0-9]{1,19}")


def _is_run(p: Path) -> bool:
    return (p / META).is_file() and (p / "metrics").is_dir()


def _children(p: Path) -> list[Path]:
    try:
        return sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


def _runs_in(p: Path) -> list[Path]:
    return [d for d in _children(p) if _is_run(d)]


def claims(p: Path, head: str | None) -> bool:
    """A run folder (meta.yaml and metrics/), an experiment folder of them, or mlruns."""
    if not p.is_dir():
        return False
    return _is_run(p) or bool(_runs_in(p)) or any(_runs_in(d) for d in _children(p))


def load(p: Path, source: str) -> list[RunLog]:
    """Every run at ``p`` (see the module docstring), each a RunLog.

    Raises:
        LogNotFound: no run folder there.
        BadLog: a malformed metric file, or a run with nothing to replay.
    """
    if _is_run(p):
        return [_load_run(p, source, skip_deleted=False)]
    experiments = [p] if _runs_in(p) else [d for d in _children(p) if _runs_in(d)]
    runs: list[RunLog] = []
    skipped: list[str] = []
    for exp in experiments:
        for d in _runs_in(exp):
            rel = os.path.join(source, os.path.relpath(d, p))
            run = _load_run(d, rel, skip_deleted=True)
            if run is None:
                skipped.append(d.name)
            else:
                runs.append(run)
    if not runs:
        if skipped:
            raise LogNotFound(
                f"{p}: every run here is deleted (lifecycle_stage: deleted); "
                "pass a run folder to read one anyway"
            )
        raise LogNotFound(f"{p}: no MLflow run folder (meta.yaml and metrics/) here")
    if skipped:
        runs[0].warnings.append(
            f"{p}: skipped {len(skipped)} deleted run(s) "
            f"({', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''})"
        )
    return runs


# --------------------------------------------------------------------------- a run


def _meta(run: Path) -> dict[str, str]:
    try:
        text = read_text(run / META)
    except BadLog:
        return {}
    return {k: v.strip("'\"") for k, v in _YAML_FIELD.findall(text)}


def _run_name(run: Path, meta: dict[str, str]) -> str:
    tag = run / "tags" / "mlflow.runName"
    try:
        name = tag.read_text(encoding="utf-8").strip() if tag.is_file() else ""
    except (OSError, UnicodeDecodeError):
        name = ""
    name = name or meta.get("run_name", "") or run.name[:8] or run.resolve().name[:8]
    return " ".join(name.split())  # one line


def _load_run(run: Path, source: str, skip_deleted: bool) -> RunLog | None:
    meta = _meta(run)
    warnings: list[str] = []
    if meta.get("lifecycle_stage") == "deleted":
        if skip_deleted:
            return None
        warnings.append(f"{run / META}: the run is deleted (lifecycle_stage: deleted); read anyway")
    series = _read_metrics(run)
    rows, columns, values, absent = _assemble(run, series, warnings)
    renames = keras_names(columns)
    if renames:
        shown = ", ".join(f"{a} -> {b}" for a, b in renames.items())
        warnings.append(f"{run}: read metric keys as Keras names: {shown}")
        columns = [renames.get(c, c) for c in columns]
    table, missing = frame(run, columns, rows, values, absent, warnings)
    return RunLog(
        _run_name(run, meta), source, "mlflow", columns, table, missing, warnings=warnings
    )


Point = tuple[int, int, int, float]  # step, timestamp, line, value


def _read_metrics(run: Path) -> dict[str, list[Point]]:
    """Every metric file of a run: key -> points in file order."""
    root = run / "metrics"
    out: dict[str, list[Point]] = {}
    try:
        files = sorted(f for f in root.rglob("*") if f.is_file())
    except OSError as e:
        raise BadLog(
            f"{root}: cannot be listed ({e.strerror or e}); check its permissions"
        ) from None
    for f in files:
        key = f.relative_to(root).as_posix()
        points = [
            _point(f, i, line)
            for i, line in enumerate(read_text(f).splitlines(), 1)
            if line.strip()
        ]
        if points:
            out[key] = points
    if not out:
        raise BadLog(f"{root}: no metric values logged; nothing to replay")
    return out


def _point(f: Path, line_no: int, line: str) -> Point:
    parts = line.split()
    bad = len(parts) not in (2, 3, 5) or not all(_INT.fullmatch(x) for x in parts[:1] + parts[2:3])
    if not bad:
        try:
            value = float(parts[1]) if parts[1].isascii() and "_" not in parts[1] else None
        except ValueError:
            value = None
        bad = value is None
    if bad:
        shown = repr(line if len(line) <= 40 else line[:40] + "...")
        raise BadLog(
            f"{f}: line {line_no} is not 'timestamp value step' ({shown}); fix or remove that line"
        )
    step = int(parts[2]) if len(parts) >= 3 else 0
    return step, int(parts[0]), line_no, value


# --------------------------------------------------------------------------- rows


def _last_per_step(points: list[Point]) -> tuple[dict[int, float], int]:
    """step -> the value of the last point by (timestamp, line); how many values it replaced.

    A repeat of the same value (Lightning logs ``epoch`` with every call) replaces nothing.
    """
    out: dict[int, float] = {}
    replaced = 0
    for step, _, _, value in sorted(points, key=lambda p: (p[1], p[2])):
        old = out.get(step)
        if old is not None and old != value and not (math.isnan(old) and math.isnan(value)):
            replaced += 1
        out[step] = value
    return out, replaced


def _assemble(run: Path, series: dict[str, list[Point]], warnings: list[str]):
    """(row epochs, columns, values, absent) of a run's metrics."""
    steps_of = {k: {p[0] for p in pts} for k, pts in series.items()}
    all_steps = set().union(*steps_of.values())
    if len(all_steps) == 1 and any(len(pts) > 1 for pts in series.values()):
        return _by_rank(run, series, warnings)
    single = sorted(
        k for k, s in steps_of.items() if len(s) == 1 and len(all_steps) > 1 and k != "epoch"
    )
    if single:
        warnings.append(
            f"{run}: left out {', '.join(single)}: each logged at one step only "
            "(a summary, or log_metric without step=), not per epoch"
        )
    per_step: dict[str, dict[int, float]] = {}
    overridden = []
    for k, pts in series.items():
        if k in single:
            continue
        per_step[k], n = _last_per_step(pts)
        if n:
            overridden.append(f"{k} ({n})")
    if overridden:
        warnings.append(
            f"{run}: several values at one step for {', '.join(overridden)}; the "
            "last by timestamp wins"
        )
    epoch_of = per_step.pop("epoch", None)
    if not per_step:
        raise BadLog(f"{run}: no metric is logged per epoch; nothing to replay")
    columns = sorted(per_step)
    steps = np.array(sorted(set().union(*(set(s) for s in per_step.values()))), dtype=np.int64)
    pos = {int(s): i for i, s in enumerate(steps)}
    values = np.full((len(steps), len(columns)), np.nan)
    absent = np.ones((len(steps), len(columns)), dtype=bool)
    for j, c in enumerate(columns):
        for s, v in per_step[c].items():
            values[pos[s], j] = v
            absent[pos[s], j] = False
    whole = epoch_of and all(v.is_integer() and 0 <= v < 1e15 for v in epoch_of.values())
    if whole and any(int(s) in epoch_of for s in steps):
        return _by_epoch_key(run, steps, epoch_of, columns, values, absent, warnings)
    if epoch_of:
        warnings.append(
            f"{run}: left out the metric 'epoch' (not a whole epoch number at the "
            "steps of the other metrics)"
        )
    return _by_step(run, steps, columns, values, absent, warnings)


def _by_step(run, steps, columns, values, absent, warnings):
    span = int(steps[-1]) - int(steps[0]) + 1
    if steps[0] >= 0 and span <= 2 * len(steps):
        return steps, columns, values, absent
    warnings.append(
        f"{run}: {len(steps)} logged steps from {steps[0]} to {steps[-1]} are not consecutive "
        "epochs: each logged step is one row, so 'epoch' k means the k-th logged step"
    )
    return np.arange(len(steps)), columns, values, absent


def _by_epoch_key(run, steps, epoch_of, columns, values, absent, warnings):
    known = np.array([epoch_of.get(int(s), math.nan) for s in steps])
    has = np.flatnonzero(~np.isnan(known))
    nxt = np.minimum(np.searchsorted(has, np.arange(len(steps))), len(has) - 1)
    epochs = known[has[nxt]].astype(np.int64)
    epochs, values, absent, multi = merge_epochs(epochs, values, absent)
    if multi:
        shown = ", ".join(f"{columns[j]} (up to {k})" for j, k in sorted(multi.items()))
        warnings.append(
            f"{run}: left out {shown}: several different values within one epoch "
            "(per step), so none is the epoch's"
        )
        keep = [j for j in range(len(columns)) if j not in multi]
        columns = [columns[j] for j in keep]
        values, absent = values[:, keep], absent[:, keep]
    if not columns:
        raise BadLog(f"{run}: no metric is logged once per epoch; nothing to replay")
    return epochs, columns, values, absent


def _by_rank(run, series, warnings):
    counts = {k: len(p) for k, p in series.items()}
    warnings.append(
        f"{run}: every metric is logged at one single step (log_metric without step=): read "
        f"the k-th value of each key, by timestamp, as epoch k ({_counts(counts)})"
    )
    columns = sorted(series)
    n = max(counts.values())
    values = np.full((n, len(columns)), np.nan)
    absent = np.ones((n, len(columns)), dtype=bool)
    for j, c in enumerate(columns):
        ordered = [p[3] for p in sorted(series[c], key=lambda p: (p[1], p[2]))]
        values[: len(ordered), j] = ordered
        absent[: len(ordered), j] = False
    return np.arange(n), columns, values, absent


def _counts(counts: dict[str, int]) -> str:
    distinct = sorted(set(counts.values()))
    if len(distinct) == 1:
        return f"{distinct[0]} values each"
    return "values per key: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
