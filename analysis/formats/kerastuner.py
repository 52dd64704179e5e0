"""KerasTuner projects (``DIR/PROJECT/oracle.json`` and ``trial_*/trial.json``), read from
their JSON directly: no keras-tuner import.

Each ``trial.json`` holds, per metric, its ``direction`` and ``observations`` (``{"value":
[one per execution], "step": epoch}``; several executions are averaged, as KerasTuner
does), the trial's ``status``, ``score`` and hyperparameter ``values``. The order of the
trials is the oracle's ``start_order``.

What KerasTuner writes: keras-tuner 1.4 records one observation per metric and trial,
at the trial's best epoch (``best_step``), not every epoch; a tuner that calls
``oracle.update_trial`` each epoch (a custom ``run_trial``) writes whole curves. The
objective's name is not stored either: it is the metric whose observation at
``best_step`` equals the trial's ``score`` (a ``val_`` metric first when several do).

Status: COMPLETED is complete; STOPPED (stopped by the tuner) is pruned; INVALID and
FAILED are fail; RUNNING and IDLE are running.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from analysis.errors import BadLog, LogNotFound
from analysis.formats.studylog import StudyLog, StudyTrial

__all__ = ["claims", "load", "load_project", "project_dirs"]

_STATES = {
    "COMPLETED": "complete",
    "STOPPED": "pruned",
    "INVALID": "fail",
    "FAILED": "fail",
    "RUNNING": "running",
    "IDLE": "running",
}


def project_dirs(p: Path) -> list[Path]:
    """The KerasTuner project folders at ``p``: itself (it holds oracle.json, or it is
    the oracle.json), or its children that do."""
    if p.is_file():
        return [p.parent] if p.name == "oracle.json" else []
    if not p.is_dir():
        return []
    if (p / "oracle.json").is_file():
        return [p]
    try:
        children = sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))
    except OSError:
        return []
    return [c for c in children if (c / "oracle.json").is_file()]


def claims(p: Path, head: str | None) -> bool:
    return bool(project_dirs(p))


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LogNotFound(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadLog(f"{path}: not a KerasTuner JSON file ({e})") from None
    if not isinstance(data, dict):
        raise BadLog(f"{path}: not a KerasTuner JSON file (not an object)")
    return data


def _curve(path: Path, metric: dict) -> tuple[tuple[int, ...], tuple[float, ...]]:
    by_step: dict[int, float] = {}
    for obs in metric.get("observations") or []:
        try:
            step = int(obs["step"])
            vals = [float(v) for v in obs["value"]]
        except (KeyError, TypeError, ValueError):
            raise BadLog(f"{path}: an observation without a numeric value and step") from None
        if step < 0 or not vals:
            raise BadLog(f"{path}: an observation at step {step} with {len(vals)} values")
        by_step[step] = sum(vals) / len(vals)
    steps = tuple(sorted(by_step))
    return steps, tuple(by_step[s] for s in steps)


def _objective(path: Path, trials: list[dict]) -> tuple[str, str]:
    """(metric name, direction) of the project's objective, from scores and observations."""
    votes: dict[str, int] = {}
    for data in trials:
        score, best = data.get("score"), data.get("best_step")
        metrics = (data.get("metrics") or {}).get("metrics") or {}
        if score is None:
            continue
        for name, metric in metrics.items():
            steps, values = _curve(path, metric)
            at = dict(zip(steps, values, strict=True))
            v = at.get(best) if best is not None else None
            if v is not None and (v == score or math.isclose(v, float(score), rel_tol=1e-12)):
                votes[name] = votes.get(name, 0) + 1
    if not votes:
        raise BadLog(
            f"{path}: no trial has a score that one of its metrics reached; the objective "
            "cannot be told (no trial completed?)"
        )
    top = max(votes.values())
    names = sorted(n for n, c in votes.items() if c == top)
    name = next((n for n in names if n.startswith("val_")), names[0])
    direction = None
    for data in trials:
        metric = ((data.get("metrics") or {}).get("metrics") or {}).get(name)
        if metric and metric.get("direction") in ("min", "max"):
            direction = metric["direction"]
            break
    if direction is None:
        raise BadLog(f"{path}: the objective {name!r} has no direction")
    return name, "minimize" if direction == "min" else "maximize"


def load_project(project: Path) -> StudyLog:
    """The KerasTuner project at ``project`` as a study.

    Raises:
        LogNotFound: no oracle.json.
        BadLog: unreadable JSON, no trials, no objective to be found.
    """
    oracle = _json(project / "oracle.json")
    trial_files = sorted(project.glob("trial_*/trial.json"))
    if not trial_files:
        raise BadLog(f"{project}: a KerasTuner project without trials (no trial_*/trial.json)")
    datas = [_json(f) for f in trial_files]
    metric, direction = _objective(project, datas)
    order = [str(t) for t in oracle.get("start_order") or []]
    by_id = {str(d.get("trial_id")): (f, d) for f, d in zip(trial_files, datas, strict=True)}
    ids = [i for i in order if i in by_id] + sorted(i for i in by_id if i not in order)
    trials = []
    for number, trial_id in enumerate(ids):
        f, data = by_id[trial_id]
        status = str(data.get("status"))
        state = _STATES.get(status)
        if state is None:
            raise BadLog(f"{f}: unknown trial status {status!r}")
        metrics = (data.get("metrics") or {}).get("metrics") or {}
        steps, values = _curve(f, metrics.get(metric) or {})
        score = data.get("score")
        trials.append(
            StudyTrial(
                number=number,
                state=state,
                steps=steps,
                values=values,
                value=float(score) if state == "complete" and score is not None else None,
                params=dict((data.get("hyperparameters") or {}).get("values") or {}),
            )
        )
    warnings = []
    if trials and all(len(t.steps) <= 1 for t in trials):
        warnings.append(
            f"{project}: every trial has at most one observation (keras-tuner records the "
            "best epoch only); a pruner replay sees one step per trial"
        )
    return StudyLog(
        name=project.name,
        source=str(project),
        format="kerastuner",
        direction=direction,
        metric=metric,
        trials=trials,
        warnings=warnings,
    )


def load(p: Path, source: str) -> list:
    """Detection's reader: each trial of each project at ``p`` as a RunLog."""
    out = []
    for project in project_dirs(p):
        study = load_project(project)
        runs = study.runs()
        for run in runs:
            run.warnings.extend(study.warnings)
        out.extend(runs)
    return out
