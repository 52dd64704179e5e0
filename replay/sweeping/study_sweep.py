"""Pruner sweeps over a recorded study: what each pruner setting would have done.

:class:`PrunerGrid` is the grid of pruner settings, checked when built (every value
through the pruner's own guard clauses; an option no chosen pruner takes is refused).
:func:`sweep_study` replays the study's trials under each setting, in the order they
were started (trial number), one after the other
(:func:`replay.engine.pruner_replay.replay_study`), and returns one
:class:`~analysis.results.records.PrunerRecord` per setting.

Honesty: a trial the recorded study pruned, or left running, has no values after its
last step. A setting that does not prune it by then cannot know how it would have ended:
it is *censored* (listed in ``censored``), its steps after the record are not counted
(``steps_trained`` is then a lower bound), and any answer that depends on it says so:
``best_known`` is false and ``regret`` null (a censored trial might have beaten the
best one found). The trials after the first censored one are replayed with it ended
where its record ends (``exact_until``: the first censored trial's number). A failed
trial fails again where it failed: that does not depend on the pruner.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import AmbiguousLog, LogNotFound, ReplayError
from analysis.formats.studylog import StudyLog
from analysis.results.records import PrunerRecord
from replay.engine import pruners as rp
from replay.engine.grid import GridError
from replay.engine.pruner_options import (
    HYPERBAND,
    MEDIAN,
    OPTIONS,
    PATIENT,
    PERCENTILE,
    PRUNER_POLICIES,
    SUCCESSIVE_HALVING,
    THRESHOLD,
)
from replay.engine.pruner_replay import TrialCurve, prepare, replay_study
from replay.engine.pruner_study import COMPLETE, FAIL, PRUNED, RUNNING, Pruner

__all__ = [
    "PRUNER_POLICIES",
    "load_study",
    "pruner_grid",
    "PrunerGrid",
    "StudySweep",
    "pruned_map",
    "sweep_study",
]

#: Each pruner's parameters with Optuna's defaults (percentile and patience have none
#: in Optuna: their grid defaults are 25,50,75 and 0..5).
DEFAULTS: dict[str, dict[str, Any]] = {
    MEDIAN: {"n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1, "n_min_trials": 1},
    PERCENTILE: {
        "percentile": (25.0, 50.0, 75.0),
        "n_startup_trials": 5,
        "n_warmup_steps": 0,
        "interval_steps": 1,
        "n_min_trials": 1,
    },
    SUCCESSIVE_HALVING: {
        "min_resource": "auto",
        "reduction_factor": 4,
        "min_early_stopping_rate": 0,
        "bootstrap_count": 0,
    },
    HYPERBAND: {
        "min_resource": 1,
        "max_resource": "auto",
        "reduction_factor": 3,
        "bootstrap_count": 0,
    },
    THRESHOLD: {"lower": None, "upper": None, "n_warmup_steps": 0, "interval_steps": 1},
    PATIENT: {"patience": tuple(range(6)), "min_delta": 0.0, "wrapped": None},
}

_CLASSES = {
    MEDIAN: rp.MedianPruner,
    PERCENTILE: rp.PercentilePruner,
    SUCCESSIVE_HALVING: rp.SuccessiveHalvingPruner,
    HYPERBAND: rp.HyperbandPruner,
    THRESHOLD: rp.ThresholdPruner,
}


def _label(policy: str, params: dict[str, Any]) -> str:
    def show(v):
        if isinstance(v, float) and v.is_integer():
            return f"{v:g}"
        return str(v)

    inner = " ".join(f"{k}={show(v)}" for k, v in params.items())
    return f"{policy} {inner}".strip()


@dataclass(frozen=True)
class PrunerGrid:
    """The settings of a pruner sweep: ``policies`` and per-parameter values (None:
    the pruner's default). Checked when built: :meth:`settings` never fails."""

    policies: tuple[str, ...]
    values: tuple[tuple[str, tuple], ...]  # (parameter, values) given

    def __post_init__(self) -> None:
        if not self.policies:
            raise GridError(f"--policy: name a pruner: {', '.join(PRUNER_POLICIES)}.")
        for p in self.policies:
            if p not in PRUNER_POLICIES:
                raise GridError(f"--policy: {p!r} is not one of {', '.join(PRUNER_POLICIES)}.")
        given = dict(self.values)
        for w in given.get("wrapped") or ():
            if w is not None and w not in _CLASSES:
                raise GridError(f"--wrapped: {w!r} is not one of none, {', '.join(_CLASSES)}.")
        takes = set()
        for p in self.policies:
            takes |= set(DEFAULTS[p])
            if p == PATIENT:
                wrapped = given.get("wrapped") or ()
                for w in wrapped:
                    if w is not None:
                        takes |= set(DEFAULTS[w])
        for name in given:
            if name not in takes:
                raise GridError(
                    f"{OPTIONS[name]}: no chosen pruner takes it ({', '.join(self.policies)}); "
                    "drop it or add the pruner that does."
                )
        if THRESHOLD in self.policies and not (given.get("lower") or given.get("upper")):
            raise GridError(f"{THRESHOLD}: give --lower, --upper or both.")
        for policy, params in self._expand():
            try:
                self.build(policy, params)
            except (ValueError, TypeError) as e:
                raise GridError(f"{_label(policy, params)}: {e}") from None

    @classmethod
    def from_options(cls, policies: Sequence[str], **given: Any) -> PrunerGrid:
        """A grid from option values (tuples, or None for not given)."""
        return cls(
            tuple(policies),
            tuple((k, tuple(v)) for k, v in given.items() if v is not None),
        )

    def _params_of(self, policy: str) -> dict[str, tuple]:
        given = dict(self.values)
        out = {}
        for name, default in DEFAULTS[policy].items():
            if name in given:
                out[name] = given[name]
            elif isinstance(default, tuple):
                out[name] = default
            else:
                out[name] = (default,)
        return out

    def _expand(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for policy in self.policies:
            grid = self._params_of(policy)
            if policy == THRESHOLD:
                grid = {k: v for k, v in grid.items() if v != (None,)}
            if policy == HYPERBAND:  # 'auto' of --min-resource is Successive Halving's
                grid["min_resource"] = tuple(v for v in grid["min_resource"] if v != "auto")
                if not grid["min_resource"]:
                    raise GridError(f"--min-resource: {HYPERBAND} needs an integer (not auto).")
            for combo in itertools.product(*grid.values()):
                params = dict(zip(grid, combo, strict=True))
                if policy == PATIENT and params["wrapped"] is not None:
                    inner = self._params_of(params["wrapped"])
                    for inner_combo in itertools.product(*inner.values()):
                        out.append(
                            (policy, {**params, **dict(zip(inner, inner_combo, strict=True))})
                        )
                else:
                    out.append((policy, params))
        return out

    def settings(self) -> list[tuple[str, dict[str, Any]]]:
        """Every (policy, params) of the grid, defaults filled in."""
        return self._expand()

    def size(self) -> int:
        return len(self._expand())

    @staticmethod
    def build(policy: str, params: dict[str, Any]) -> Pruner:
        """A fresh pruner for one setting (pruners keep state: one per replay)."""
        if policy == PATIENT:
            wrapped_name = params.get("wrapped")
            wrapped = None
            if wrapped_name is not None:
                inner = {k: v for k, v in params.items() if k in DEFAULTS[wrapped_name]}
                wrapped = PrunerGrid.build(wrapped_name, inner)
            return rp.PatientPruner(wrapped, params["patience"], params["min_delta"])
        if policy == HYPERBAND:  # Optuna checks these only when its brackets are set up
            rp.SuccessiveHalvingPruner(params["min_resource"], params["reduction_factor"])
        return _CLASSES[policy](**params)


def pruned_map(study: StudyLog) -> dict[int, int]:
    """The recorded pruning: ``{trial number: last reported step}`` of pruned trials."""
    return {t.number: t.steps[-1] for t in study.trials if t.state == "pruned" and t.steps}


def _curves(study: StudyLog) -> list[TrialCurve]:
    state = {"complete": COMPLETE, "fail": FAIL, "pruned": PRUNED}
    return [
        TrialCurve(t.number, t.steps, t.values, state.get(t.state, RUNNING))
        for t in study.trials
        if t.state != "waiting"
    ]


def _record(study: StudyLog, policy: str, params: dict, pruned: dict[int, int]) -> PrunerRecord:
    recorded_pruned = pruned_map(study)
    steps_recorded = sum(len(t.steps) for t in study.trials)
    trained, censored, survivors = 0, [], []
    for t in study.trials:
        if t.number in pruned:
            trained += sum(1 for s in t.steps if s <= pruned[t.number])
            continue
        trained += len(t.steps)
        if t.state in ("pruned", "running"):
            censored.append(t.number)
        elif t.state == "complete" and t.value is not None and not math.isnan(t.value):
            survivors.append(t)
    sign = 1.0 if study.direction == "minimize" else -1.0
    best = min(survivors, key=lambda t: (sign * t.value, t.number)) if survivors else None
    recorded = study.best_trial()
    known = not censored
    regret = None
    if known and best is not None and recorded is not None:
        regret = sign * (best.value - recorded.value)
    return PrunerRecord(
        run=study.name,
        source=study.source,
        policy=policy,
        setting=_label(policy, params),
        params=dict(params),
        pruned_at=dict(sorted(pruned.items())),
        n_pruned=len(pruned),
        steps_trained=trained,
        steps_recorded=steps_recorded,
        steps_saved_fraction=(1 - trained / steps_recorded) if steps_recorded else 0.0,
        censored=censored,
        exact_until=censored[0] if censored else None,
        best_trial=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_known=known,
        recorded_best_trial=None if recorded is None else recorded.number,
        recorded_best_value=None if recorded is None else recorded.value,
        regret=regret,
        recorded_best_survives=None if recorded is None else recorded.number not in pruned,
        reproduces_recorded=pruned == recorded_pruned,
    )


@dataclass
class StudySweep:
    """A pruner sweep's result: the study and one record per setting, in grid order."""

    study: StudyLog
    records: list[PrunerRecord]
    recorded_pruner: str | None = None

    def reproducing(self) -> list[str]:
        """The settings whose pruning equals the recorded study's."""
        return [r["setting"] for r in self.records if r["reproduces_recorded"]]


def pruner_grid(policies: Sequence[str], **given: Any) -> PrunerGrid:
    """The grid of ``policies`` (pruners) with the options ``given`` (tuples; None: not
    given); ``patience`` and ``min_delta``, shared with EarlyStopping's options on the
    command line, are the patient pruner's only.

    Raises:
        GridError: a value a pruner refuses, an option no chosen pruner takes.
    """
    given = {k: v for k, v in given.items() if v is not None}
    if PATIENT not in policies:
        given.pop("patience", None)  # EarlyStopping's options, not a pruner's
        given.pop("min_delta", None)
    return PrunerGrid.from_options(policies, **given)


def load_study(spec: str, study: str | None = None) -> StudyLog:
    """The study at ``spec``: an Optuna storage (URL or journal file) or a KerasTuner
    project.

    Raises:
        LogNotFound: neither; AmbiguousLog: a folder of several KerasTuner projects.
    """
    from analysis.formats import kerastuner, optuna_study

    if optuna_study.is_study_spec(spec):
        return optuna_study.load_study(spec, study)
    projects = kerastuner.project_dirs(Path(spec))
    if len(projects) == 1:
        if study is not None:
            raise ReplayError(f"--study: {spec} is a KerasTuner project; --study is for Optuna.")
        return kerastuner.load_project(projects[0])
    if projects:
        names = ", ".join(p.name for p in projects)
        raise AmbiguousLog(
            f"{spec}: holds {len(projects)} KerasTuner projects ({names}); "
            f"pass one of them, e.g. {projects[0]}"
        )
    raise LogNotFound(
        f"{spec}: not a study; a pruner sweep reads an Optuna storage (sqlite:///study.db, "
        "a journal file) or a KerasTuner project (DIR/PROJECT with oracle.json)"
    )


def sweep_study(
    study: StudyLog, grid: PrunerGrid, *, recorded_pruner: str | None = None
) -> StudySweep:
    """Replay ``study`` under every setting of ``grid``.

    Raises:
        ReplayError: the study has no trial to replay.
    """
    curves = prepare(_curves(study))  # built once for every setting
    if not any(c.steps for c in curves):
        raise ReplayError(
            f"{study.source}: no trial reported intermediate values (trial.report); "
            "a pruner has nothing to replay"
        )
    records = []
    for policy, params in grid.settings():
        pruner = grid.build(policy, params)
        pruned = replay_study(curves, pruner, study.direction, study.name)
        records.append(_record(study, policy, params, pruned))
    return StudySweep(study, records, recorded_pruner)


# --------------------------------------------------------------------------- output


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def to_json(records: Sequence[PrunerRecord]) -> str:
    """The records as one JSON list (non-finite floats as null)."""
    return json.dumps([_json_safe(dict(r)) for r in records], indent=1) + "\n"


def flat_row(record: PrunerRecord) -> dict[str, Any]:
    """One CSV row: params as ``params.NAME`` columns, ``pruned_at`` as ``trial@step``
    items separated by spaces, lists space-separated."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key == "params":
            for k, v in value.items():
                row[f"params.{k}"] = v
        elif key == "pruned_at":
            row[key] = " ".join(f"{n}@{s}" for n, s in value.items())
        elif isinstance(value, list):
            row[key] = " ".join(str(v) for v in value)
        else:
            row[key] = value
    return row


def to_csv(records: Sequence[PrunerRecord]) -> str:
    import csv
    import io

    rows = [flat_row(r) for r in records]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def render_table(result: StudySweep) -> str:
    """The sweep as a text table, one row per setting, and the lines that sum it up."""
    study = result.study
    head = ["setting", "pruned", "steps", "saved", "best", "value", "regret", "rec.best", "note"]
    rows = []
    for r in result.records:
        note = []
        if r["censored"]:
            note.append(f"{len(r['censored'])} censored")
        if r["reproduces_recorded"]:
            note.append("= recorded")
        best = "-" if r["best_trial"] is None else f"#{r['best_trial']}"
        rows.append(
            [
                r["setting"],
                str(r["n_pruned"]),
                f"{r['steps_trained']}{'+' if r['censored'] else ''}/{r['steps_recorded']}",
                f"{100 * r['steps_saved_fraction']:.0f}%",
                best + ("" if r["best_known"] else "?"),
                _num(r["best_value"]),
                "unknown" if not r["best_known"] else _num(r["regret"]),
                {True: "kept", False: "pruned", None: "-"}[r["recorded_best_survives"]],
                ", ".join(note),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = [
        f"study {study.name} ({study.format}, {study.direction} {study.metric}): "
        f"{len(study.trials)} trials, {sum(t.state == 'pruned' for t in study.trials)} "
        "pruned in the record; replayed in trial-number order",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
    ]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    recorded = study.best_trial()
    if recorded is not None:
        lines.append(f"recorded best: trial #{recorded.number}, value {recorded.value:.6g}")
    reproducing = result.reproducing()
    if reproducing:
        lines.append(
            f"settings that reproduce the recorded pruning ({len(reproducing)}): "
            + "; ".join(reproducing[:10])
            + (" ..." if len(reproducing) > 10 else "")
        )
    else:
        lines.append("no setting of the grid reproduces the recorded pruning")
    if result.recorded_pruner is not None:
        match = [r for r in result.records if r["setting"] == result.recorded_pruner]
        if not match:
            lines.append(f"--recorded-pruner {result.recorded_pruner!r} is no setting of the grid")
        else:
            ok = match[0]["reproduces_recorded"]
            lines.append(
                f"recorded pruner {result.recorded_pruner}: "
                + ("reproduces the recorded pruning" if ok else
                   "does NOT reproduce the recorded pruning (another order of trials, "
                   "several workers, or another pruner)")
            )  # fmt: skip
    if any(r["censored"] for r in result.records):
        lines.append(
            "? = unknown: a censored trial (pruned or running in the record, not pruned by "
            "this setting) has no values after its last step and might have been the best"
        )
    return "\n".join(lines) + "\n"


def render_trials(study: StudyLog) -> str:
    """``replay show`` of a study: one line per trial (state, steps, value, params)."""
    lines = [
        f"study {study.name} ({study.format}) at {study.source}",
        f"direction: {study.direction} {study.metric}; {len(study.trials)} trials",
    ]
    best = study.best_trial()
    head = ["trial", "state", "steps", "last step", "value", "params"]
    rows = []
    for t in study.trials:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in t.params.items())  # fmt: skip
        mark = " *" if best is not None and t.number == best.number else ""
        rows.append([
            f"#{t.number}{mark}", t.state, str(len(t.steps)),
            "-" if t.last_step is None else str(t.last_step), _num(t.value), params,
        ])  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]  # fmt: skip
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if best is not None:
        lines.append(f"* best trial: #{best.number}, value {best.value:.6g}")
    for w in study.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"
