"""The sweep record vocabulary: one place for what a sweep record is and how it is named.

``replay sweep`` produces one record per (run, policy, setting) and one oracle per (run,
monitor); docs/sweep-output.md describes every field. This module declares them for
every module that builds or reads them (``replay/sweeping/sweep.py`` builds them, kept compact
by ``replay/sweeping/blocks.py``; ``replay/output/report.py``, ``replay/output/charting.py``,
``analysis/charts/data.py`` and ``analysis/charts/sweep.py`` read them):

- the policy names: :data:`POLICIES`, :data:`STOP_POLICIES`;
- the record types, as TypedDicts (records stay plain JSON-able dicts): the order of
  their fields is the order of the keys in a record, and so the column order of
  results.csv; with them the fields that end the records of a study's trials
  (:class:`TrialFields`) and the record of a pruner sweep over a study
  (:class:`PrunerRecord`, built by ``replay/sweeping/study_sweep.py``);
- how a setting is named: :func:`setting_label`, one vocabulary for tables and charts;
- which direction the records' metric improves in, and :func:`aggregate` (statistics of
  each setting over several runs: mean, min-max, a bootstrap interval of the mean,
  and in how many runs the setting is among the run's own best).

Plain Python: importing it loads neither matplotlib nor ``replay`` (numpy only inside
:func:`bootstrap_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict

__all__ = [
    "ABSOLUTE",
    "COMBINED",
    "EARLY_STOPPING",
    "MODEL_CHECKPOINT",
    "POLICIES",
    "PRECHELT",
    "REDUCE_LR_ON_PLATEAU",
    "RELATIVE",
    "STOP_POLICIES",
    "AggregateRow",
    "CombinedParams",
    "CombinedRecord",
    "DialectModelCheckpointParams",
    "DialectModelCheckpointRecord",
    "EarlyStoppingParams",
    "EarlyStoppingRecord",
    "LrScale",
    "Mode",
    "ModelCheckpointParams",
    "ModelCheckpointRecord",
    "Oracle",
    "PlateauParams",
    "PlateauRecord",
    "PolicyName",
    "PrecheltParams",
    "PrecheltRecord",
    "PrunerRecord",
    "Record",
    "StopOutcome",
    "StopRecord",
    "TrialEarlyStoppingRecord",
    "TrialFields",
    "TrialPlateauRecord",
    "format_value",
    "freeze",
    "is_censored",
    "is_missing",
    "monitor_higher_is_better",
    "ranges",
    "record_label",
    "records_higher_is_better",
    "setting_label",
    "stop_records",
    "varying_values",
]

# ----------------------------------------------------------------------------------
# Names

EARLY_STOPPING = "early_stopping"
REDUCE_LR_ON_PLATEAU = "reduce_lr_on_plateau"
PRECHELT = "prechelt"
#: Both Keras callbacks in one fit, the way people use them (``replay branch`` trains
#: the LR half where the recorded run cannot answer it).
COMBINED = "early_stopping+reduce_lr_on_plateau"
#: ``ModelCheckpoint``: which epochs it saves and which file you are left with.
MODEL_CHECKPOINT = "model_checkpoint"
#: Every policy a sweep replays, in the order ``--policy`` lists them.
POLICIES = (EARLY_STOPPING, REDUCE_LR_ON_PLATEAU, PRECHELT, COMBINED, MODEL_CHECKPOINT)
#: The policies that stop training (their records say where, and which epoch is kept).
STOP_POLICIES = (EARLY_STOPPING, PRECHELT)

#: ``lr_scale`` of a ReduceLROnPlateau record: rates as logged, or as multiples of the
#: initial rate (the log had no learning rate and no ``--initial-lr`` was given).
ABSOLUTE = "absolute"
RELATIVE = "relative"

PolicyName = Literal[
    "early_stopping",
    "reduce_lr_on_plateau",
    "prechelt",
    "early_stopping+reduce_lr_on_plateau",
    "model_checkpoint",
]
Mode = Literal["min", "max"]
LrScale = Literal["absolute", "relative"]


# ----------------------------------------------------------------------------------
# Record types (field meanings: docs/sweep-output.md)


class EarlyStoppingParams(TypedDict):
    monitor: str
    mode: Mode
    min_delta: float
    patience: int
    baseline: float | None
    restore_best_weights: bool
    start_from_epoch: int


class PrecheltParams(TypedDict):
    criterion: Literal["gl", "pq", "up"]
    alpha: float | None  # GL and PQ
    strips: int | None  # UP
    strip_length: int
    monitor: str
    error: str  # the monitor, or "1 - <monitor>" for a maximized metric


class PlateauParams(TypedDict):
    monitor: str
    mode: Mode
    factor: float
    patience: int
    min_delta: float
    cooldown: int
    min_lr: float
    initial_lr: float | None  # None on the relative scale


class StopOutcome(TypedDict):
    """What a stopping setting did: the fields after ``params`` of its record."""

    stopped: bool
    stopped_epoch: int | None
    epochs_trained: int
    best_epoch: int | None
    final_epoch: int | None
    checkpoint: str | None
    censored: bool
    final_metrics: dict[str, float | None]
    regret: float | None
    regret_metric: str | None


class _EarlyStoppingSetting(TypedDict):
    run: str
    source: str
    policy: Literal["early_stopping"]
    params: EarlyStoppingParams


class _PrecheltSetting(TypedDict):
    run: str
    source: str
    policy: Literal["prechelt"]
    params: PrecheltParams


class DialectFields(TypedDict):
    """The last fields of a record replayed in another framework's dialect (``--dialect``
    other than ``keras``; Keras's records have neither): its name and the versions of
    :data:`replay.engine.dialects.DIALECTS` whose rules it follows. Its params add the
    dialect's own parameters after Keras's (docs/sweep-output.md)."""

    dialect: str
    dialect_versions: str


class EarlyStoppingRecord(_EarlyStoppingSetting, StopOutcome):
    """One EarlyStopping setting replayed on one run."""


class PrecheltRecord(_PrecheltSetting, StopOutcome):
    """One Prechelt criterion setting replayed on one run."""


class PlateauRecord(TypedDict):
    """One ReduceLROnPlateau setting replayed on one run."""

    run: str
    source: str
    policy: Literal["reduce_lr_on_plateau"]
    params: PlateauParams
    lr_scale: LrScale
    lr: list[float]
    reductions: list[int]
    final_lr: float
    counterfactual_from: int | None
    # Where the recorded curves (the run's, or a branch's: `replay branch`) answer the
    # setting exactly (counterfactual_from null): the epoch you end with and what it
    # gave; null otherwise.
    final_epoch: int | None
    final_metrics: dict[str, float | None] | None
    regret: float | None
    checkpoint: str | None
    branch: str | None  # the branch directory that answered, or null for the run


class DialectEarlyStoppingRecord(EarlyStoppingRecord, DialectFields):
    """An EarlyStopping record in a non-Keras dialect: Keras's fields, then the dialect's."""


class DialectPlateauRecord(PlateauRecord, DialectFields):
    """A ReduceLROnPlateau record in a non-Keras dialect: Keras's fields, then the dialect's."""


class CombinedParams(EarlyStoppingParams):
    """EarlyStopping's parameters, then ReduceLROnPlateau's (its patience and min_delta
    as ``lr_patience`` / ``lr_min_delta``, as the command line names them)."""

    factor: float
    lr_patience: int
    lr_min_delta: float
    cooldown: int
    min_lr: float
    initial_lr: float | None  # None on the relative scale


class CombinedRecord(TypedDict):
    """One (EarlyStopping, ReduceLROnPlateau) pair of settings in one fit, on one run.

    The stop fields are answered on the curve the LR schedule produced (the run's, or a
    branch's) where it is known up to the stop; otherwise the setting is unknown from
    ``counterfactual_from`` on (``censored`` true, the outcome fields null). ``lr``,
    ``reductions`` and ``final_lr`` cover the epochs trained.
    """

    run: str
    source: str
    policy: Literal["early_stopping+reduce_lr_on_plateau"]
    params: CombinedParams
    stopped: bool
    stopped_epoch: int | None
    epochs_trained: int
    best_epoch: int | None
    final_epoch: int | None
    checkpoint: str | None
    censored: bool
    final_metrics: dict[str, float | None] | None
    regret: float | None
    regret_metric: str | None
    lr_scale: LrScale
    lr: list[float]
    reductions: list[int]
    final_lr: float | None
    counterfactual_from: int | None
    branch: str | None


class ModelCheckpointParams(TypedDict):
    """``ModelCheckpoint(save_freq="epoch")``'s parameters; ``period`` (Keras 2's) only
    in the tf-keras dialect's records (:class:`DialectModelCheckpointParams`)."""

    monitor: str
    mode: Mode
    save_best_only: bool
    initial_value_threshold: float | None


class DialectModelCheckpointParams(ModelCheckpointParams):
    period: int


class ModelCheckpointRecord(TypedDict):
    """One ModelCheckpoint setting replayed on one run: the epochs it saved (0-based)
    and the file you end with (``final_epoch``: the last epoch saved; null when
    nothing was saved), with its metrics and regret."""

    run: str
    source: str
    policy: Literal["model_checkpoint"]
    params: ModelCheckpointParams
    saved_epochs: list[int]
    final_epoch: int | None
    checkpoint: str | None
    final_metrics: dict[str, float | None]
    regret: float | None
    regret_metric: str | None


class _DialectModelCheckpointSetting(TypedDict):
    params: DialectModelCheckpointParams


class DialectModelCheckpointRecord(
    ModelCheckpointRecord, _DialectModelCheckpointSetting, DialectFields
):
    """A ModelCheckpoint record in the tf-keras dialect (Keras 2's rules, ``period``)."""


class TrialFields(TypedDict):
    """The last fields of every record whose run is a trial of a study (an Optuna study
    or a KerasTuner project swept as a folder of runs, one run per trial), after the
    dialect's fields if any: the trial's number, state (``complete``, ``pruned``,
    ``fail``, ``running``), final value (null unless complete) and parameters. Records of
    other logs have none of them (docs/sweep-output.md)."""

    trial_number: int
    trial_state: str
    trial_value: float | None
    trial_params: dict[str, Any]


class TrialEarlyStoppingRecord(EarlyStoppingRecord, TrialFields):
    """An EarlyStopping record of a study's trial: Keras's fields, then the trial's."""


class TrialPlateauRecord(PlateauRecord, TrialFields):
    """A ReduceLROnPlateau record of a study's trial: Keras's fields, then the trial's."""


StopRecord = EarlyStoppingRecord | PrecheltRecord
Record = (
    EarlyStoppingRecord | PrecheltRecord | PlateauRecord | CombinedRecord | ModelCheckpointRecord
)


class Oracle(TypedDict):
    """Per (run, monitor): the best epoch of the held-out metric, and the full run's end."""

    run: str
    monitor: str
    heldout: str | None
    oracle_epoch: int | None
    oracle_value: float | None
    last_epoch: int
    last_value: float | None


class AggregateRow(TypedDict, total=False):
    """One setting over several runs (:func:`aggregate`); ``<field>_mean`` / ``_worst`` /
    ``_spread`` for each field folded (here the default two), then the fields added for
    several seeds: ``<field>_min``, the bootstrap interval of the mean regret and the
    runs that have the setting among their best (docs/sweep-output.md)."""

    policy: str
    params: dict[str, Any]
    runs: int
    run_names: list[str]
    censored_runs: int
    regret_metric: str | None
    epochs_trained_mean: float | None
    epochs_trained_worst: float | None
    epochs_trained_spread: float | None
    regret_mean: float | None
    regret_worst: float | None
    regret_spread: float | None
    final_metrics_mean: dict[str, float | None]
    epochs_trained_min: float | None
    regret_min: float | None
    regret_ci_low: float | None
    regret_ci_high: float | None
    best_runs: int
    best_run_names: list[str]


class PrunerRecord(TypedDict):
    """One pruner setting replayed over a study (``replay sweep STUDY --policy
    median_pruner ...``; built by ``replay/sweeping/study_sweep.py``): the JSON record, which
    results.csv flattens (docs/sweep-output.md)."""

    run: str
    source: str
    policy: str
    setting: str
    params: dict[str, Any]
    pruned_at: dict[int, int]  # trial number -> step it is pruned at
    n_pruned: int
    steps_trained: int  # a lower bound when censored is not empty
    steps_recorded: int
    steps_saved_fraction: float
    censored: list[int]  # trials whose outcome is unknown under this setting
    exact_until: int | None  # first censored trial: later decisions assume it ended there
    best_trial: int | None
    best_value: float | None
    best_known: bool
    recorded_best_trial: int | None
    recorded_best_value: float | None
    regret: float | None
    recorded_best_survives: bool | None
    reproduces_recorded: bool


# ----------------------------------------------------------------------------------
# Values


def is_missing(v: Any) -> bool:
    """True for None and for a float NaN (both mean "no value")."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def freeze(v: Any) -> Hashable:
    """``v`` made hashable (dicts and lists as tuples), to group settings by value."""
    if isinstance(v, Mapping):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(freeze(x) for x in v)
    return v


def format_value(v: Any) -> str:
    """A parameter value in a chart: ``0.001``, ``none``, ``yes`` / ``no``.

    >>> format_value(0.001), format_value(None), format_value(True), format_value(3)
    ('0.001', 'none', 'yes', '3')
    """
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def ranges(values: Iterable[int], sep: str = ", ") -> str:
    """Integers as runs of consecutive values, never hiding a gap.

    >>> ranges([12, 8]), ranges([3, 4, 5, 8]), ranges([3, 4, 8], sep="|"), ranges([7])
    ('8, 12', '3-5, 8', '3-4|8', '7')
    """
    runs: list[list[int]] = []
    for v in sorted(set(values)):
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return sep.join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def varying_values(params: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The parameters with more than one distinct value, each with its distinct values
    (parameters and values in the order first seen).

    >>> varying_values([{"patience": 1, "min_delta": 0.0}, {"patience": 2, "min_delta": 0.0}])
    {'patience': [1, 2]}
    """
    seen: dict[str, dict[Hashable, Any]] = {}
    for p in params:
        for k, v in p.items():
            seen.setdefault(k, {}).setdefault(freeze(v), v)
    return {k: list(vals.values()) for k, vals in seen.items() if len(vals) > 1}


# ----------------------------------------------------------------------------------
# Setting labels

Style = Literal["table", "chart"]

# Table labels: per policy, (parameter, its name in the label, shown when), in label
# order; restore_best_weights is the flag "restore" / "no-restore", always shown.
_TABLE_PARAMS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    EARLY_STOPPING: (
        ("patience", "patience", lambda v: True),
        ("min_delta", "min_delta", bool),
        ("baseline", "baseline", lambda v: v is not None),
        ("start_from_epoch", "start", bool),
        ("restore_best_weights", "restore", lambda v: True),
    ),
    REDUCE_LR_ON_PLATEAU: (
        ("factor", "factor", lambda v: True),
        ("patience", "patience", lambda v: True),
        ("cooldown", "cooldown", bool),
        ("min_lr", "min_lr", bool),
        ("min_delta", "min_delta", lambda v: v != 1e-4),  # Keras's default
    ),
}
# Combined: EarlyStopping's parameters, then ReduceLROnPlateau's (its patience and
# min_delta as lr_patience / lr_min_delta, as the command line names them).
_TABLE_PARAMS[COMBINED] = _TABLE_PARAMS[EARLY_STOPPING] + (
    ("factor", "factor", lambda v: True),
    ("lr_patience", "lr_patience", lambda v: True),
    ("cooldown", "cooldown", bool),
    ("min_lr", "min_lr", bool),
    ("lr_min_delta", "lr_min_delta", lambda v: v != 1e-4),
)
_RESTORE_FLAGS = ("restore", "no-restore")
# Chart labels: shorter names for long parameters.
_CHART_NAMES = {"restore_best_weights": "restore", "start_from_epoch": "start"}


def setting_label(
    policy: str,
    params: Mapping[str, Any],
    varying: Mapping[str, Sequence[Any]] | None = None,
    *,
    style: Style = "table",
) -> str:
    """The name of a setting, in the text output (``style="table"``) or on a chart.

    ``varying`` maps the parameters whose values differ among the settings the label is
    read with to those values (:func:`varying_values`).

    ``"table"`` (the table, the verdict, ``pick``): the parameters a reader needs,
    patience, factor and restore always and the others where they differ from Keras's
    default: ``patience=3 min_delta=0.001 restore``, ``factor=0.5 patience=2``,
    ``GL2``, ``PQ0.5 k=5``, ``UP3 k=5``. With ``varying`` the label stands for all
    those settings (one table row for settings with the same outcome): the values are
    joined with ``|``, patience as ranges. (Prechelt criteria differ in kind: list the
    label of each instead.)

    ``"chart"``: only the parameters in ``varying``, each with this setting's value,
    ``patience 3, restore yes`` (``default`` when none); Prechelt ``GL α=2``,
    ``UP s=3``, with ``, k=5`` when the strip length varies.

    >>> p = {"monitor": "val_loss", "mode": "min", "min_delta": 0.0, "patience": 3,
    ...      "baseline": None, "restore_best_weights": True, "start_from_epoch": 0}
    >>> setting_label("early_stopping", p)
    'patience=3 restore'
    >>> setting_label("early_stopping", p, {"patience": [3, 4, 8], "min_delta": [0.0, 0.01]})
    'patience=3-4|8 restore min_delta=0|0.01'
    >>> setting_label("early_stopping", p, {"patience": [3, 4]}, style="chart")
    'patience 3'
    >>> setting_label("prechelt", {"criterion": "gl", "alpha": 2.0}, style="chart")
    'GL α=2'
    """
    if style not in ("table", "chart"):
        raise ValueError(f"style must be 'table' or 'chart' but got {style!r}.")
    varying = varying or {}
    if style == "chart":
        return _chart_label(policy, params, varying)
    if policy == PRECHELT:
        return _prechelt_table_label(params)
    if policy == MODEL_CHECKPOINT:
        return _checkpoint_table_label(params)
    tokens: list[str] = []
    in_place: set[str] = set()
    for name, short, shown in _TABLE_PARAMS[policy]:
        value = params[name]
        if name == "restore_best_weights":
            tokens.append(_RESTORE_FLAGS[0] if value else _RESTORE_FLAGS[1])
        elif not shown(value):
            continue
        elif name in varying and short == name:
            tokens.append(f"{name}={_joined(name, varying[name])}")
            in_place.add(name)
        else:
            tokens.append(f"{short}={_table_value(name, value)}")
    # Varying parameters not joined in place (not shown, or shown under a short name
    # such as start=) are listed last under their own names.
    for name, values in varying.items():
        if name in in_place or name in ("mode", "monitor"):
            continue
        if name == "restore_best_weights":
            tokens = [t for t in tokens if t not in _RESTORE_FLAGS]
            tokens.append("|".join(_RESTORE_FLAGS))
        else:
            tokens.append(f"{name}={_joined(name, values)}")
    return " ".join(tokens)


def distinct_label(
    policy: str,
    params: Mapping[str, Any],
    differing: Iterable[str],
    varying: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    """:func:`setting_label` of one setting (of the settings ``varying`` stands for, as
    there), plus ``name=value`` for each parameter in ``differing`` (those that differ
    among the settings read together) that the label does not show: a dialect's
    ``threshold_mode``, ``eps``, ... so that no two settings (or table rows) of a sweep
    share a name.

    >>> p = {"monitor": "val_loss", "mode": "min", "factor": 0.1, "patience": 2,
    ...      "threshold_mode": "abs", "min_delta": 0.0, "cooldown": 0, "min_lr": 0.0}
    >>> distinct_label("reduce_lr_on_plateau", p, ["threshold_mode", "patience"])
    'factor=0.1 patience=2 min_delta=0 threshold_mode=abs'
    """
    label = setting_label(policy, params, varying)
    named = {name for name, _, _ in _TABLE_PARAMS.get(policy, ())} | {"monitor", "mode"}
    named |= set(varying or ()) | _LABELLED.get(policy, set())
    extra = [f"{k}={_joined(k, [params[k]])}" for k in differing
             if k in params and k not in named]  # fmt: skip
    return " ".join([label, *extra]) if extra else label


def record_label(record: Mapping[str, Any]) -> str:
    """:func:`setting_label` of one record, as the text output names it."""
    return setting_label(record["policy"], record["params"])


def _table_value(name: str, value: Any) -> str:
    floats = ("min_delta", "baseline", "min_lr", "factor", "lr_min_delta")
    return f"{value:g}" if name in floats else str(value)


def _joined(name: str, values: Sequence[Any]) -> str:
    if name == "patience":
        return ranges(values, sep="|")
    return "|".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _prechelt_table_label(p: Mapping[str, Any]) -> str:
    if p["criterion"] == "up":
        return f"UP{p['strips']} k={p['strip_length']}"
    pq = f" k={p['strip_length']}" if p["criterion"] == "pq" else ""
    return f"{p['criterion'].upper()}{p['alpha']:g}{pq}"


# Parameters that the labels of policies outside _TABLE_PARAMS always tell apart.
_LABELLED = {
    MODEL_CHECKPOINT: {"save_best_only", "initial_value_threshold", "period"},
    PRECHELT: {"criterion", "alpha", "strips", "strip_length"},
}


def _checkpoint_table_label(p: Mapping[str, Any]) -> str:
    """``save_best_only``, ``every epoch``; then ``initial_value_threshold=0.5`` and
    ``period=3`` where set."""
    tokens = ["save_best_only" if p.get("save_best_only") else "every epoch"]
    if p.get("initial_value_threshold") is not None:
        tokens.append(f"initial_value_threshold={p['initial_value_threshold']:g}")
    if p.get("period", 1) != 1:
        tokens.append(f"period={p['period']}")
    return " ".join(tokens)


def _chart_label(policy: str, p: Mapping[str, Any], varying: Mapping[str, Any]) -> str:
    if policy == PRECHELT:
        crit = str(p.get("criterion", "?")).upper()
        if crit == "UP":
            label = f"UP s={format_value(p.get('strips'))}"
        else:
            label = f"{crit} α={format_value(p.get('alpha'))}"
        if "strip_length" in varying:
            label += f", k={format_value(p.get('strip_length'))}"
        return label
    parts = [f"{_CHART_NAMES.get(k, k)} {format_value(p[k])}" for k in varying if k in p]
    return ", ".join(parts) or "default"


# ----------------------------------------------------------------------------------
# Reading records


def stop_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records (or aggregate rows) of the policies that stop training."""
    return [r for r in records if r.get("policy") in STOP_POLICIES]


def is_censored(rec: Mapping[str, Any]) -> bool:
    """A record (or an aggregate row, where every run was censored) that never stopped."""
    if "censored_runs" in rec:
        return bool(rec.get("runs")) and rec["censored_runs"] == rec["runs"]
    return bool(rec.get("censored"))


def records_higher_is_better(records: Iterable[Mapping[str, Any]]) -> bool | None:
    """Whether the records' monitored metric is maximized, from the mode the sweep
    resolved for it (``params["mode"]``, "min" or "max"); None when no record carries
    a mode or they disagree. Never guessed from a metric's name.

    >>> records_higher_is_better([{"params": {"mode": "max"}}, {"params": {}}])
    True
    """
    modes = {(r.get("params") or {}).get("mode") for r in records} - {None}
    return modes.pop() == "max" if len(modes) == 1 else None


def monitor_higher_is_better(records: Iterable[Mapping[str, Any]], monitor: str) -> bool | None:
    """Whether the sweep maximized ``monitor``: the mode it resolved, as records carry it.

    EarlyStopping and ReduceLROnPlateau records hold ``params["mode"]``; a Prechelt
    record holds the error it used, ``1 - monitor`` exactly when the mode was max.
    None when no record of ``monitor`` is given.

    >>> monitor_higher_is_better([{"params": {"monitor": "val_r2", "error": "1 - val_r2"}}],
    ...                          "val_r2")
    True
    """
    for r in records:
        p = r["params"]
        if p.get("monitor") != monitor:
            continue
        if "mode" in p:
            return p["mode"] == "max"
        if "error" in p:
            return p["error"] != monitor
    return None
