"""The grid options of the API and the CLI: their rules, Python values as grid tuples,
and the grid chosen for a set of logs (monitors checked, the dialect chosen)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis.errors import ReplayError

if TYPE_CHECKING:  # pragma: no cover
    from analysis.reading.logs import RunLog
    from replay.sweeping.sweep import Grid

__all__ = ["GRID_OPTIONS", "check_monitors", "choose_dialect", "grid_options", "number_text",
           "option_flag"]  # fmt: skip

#: Every grid option (a :class:`replay.sweeping.sweep.Grid` field) the API and the CLI take,
#: with the rules its values obey (as ``--option`` ranges on the command line):
#: ``integer``, ``minimum``, ``allow_none`` (``none`` allowed); ``names`` marks a list
#: of names, ``flag`` a yes/no/both choice, ``text`` one string, ``number`` one float.
GRID_OPTIONS: dict[str, dict[str, Any]] = {
    "policies": {"names": True},
    "monitors": {"names": True},
    "mode": {"text": True},
    "patience": {"integer": True, "minimum": 0},
    "min_delta": {},
    "baseline": {"allow_none": True},
    "start_from_epoch": {"integer": True, "minimum": 0},
    "restore_best_weights": {"flag": True},
    "lr_patience": {"integer": True, "minimum": 0},
    "lr_min_delta": {},
    "factor": {},
    "cooldown": {"integer": True, "minimum": 0},
    "min_lr": {"minimum": 0},
    "initial_lr": {"number": True},
    "gl_alpha": {},
    "pq_alpha": {},
    "up_strips": {"integer": True, "minimum": 1},
    "strip_length": {"integer": True, "minimum": 1},
    "save_best_only": {"flag": True},
    "initial_value_threshold": {"allow_none": True},
    "dialect": {"text": True},
    "dialect_version": {"text": True},
    "threshold": {"minimum": 0},
    "threshold_mode": {"names": True},
    "eps": {"minimum": 0},
    "check_finite": {"flag": True},
    "stopping_threshold": {"allow_none": True},
    "divergence_threshold": {"allow_none": True},
    "early_stopping_threshold": {},
    "period": {"integer": True, "minimum": 1},
}
#: The API's keyword for a grid field where the two differ (one policy, one monitor).
_KEYWORDS = {"policy": "policies", "monitor": "monitors"}
_FLAG_WORDS = {"yes": (True,), "no": (False,), "both": (False, True)}


def option_flag(field_name: str) -> str:
    return "--" + {"policies": "policy", "monitors": "monitor"}.get(field_name, field_name).replace(
        "_", "-"
    )


def number_text(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        raise ReplayError(f"expected a number but got {v!r}.")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    try:  # numpy scalars, Decimal, Fraction: as the float they are
        return repr(float(v)) if float(v) != int(float(v)) else str(int(float(v)))
    except (TypeError, ValueError, OverflowError):
        return str(v)


def _grid_value(name: str, value: Any) -> Any:
    """``value`` (a Python value, or the CLI's text) as the tuple the grid field holds."""
    from replay.engine.grid import GridError, parse_values

    rules = GRID_OPTIONS[name]
    option = option_flag(name)
    if value is None:
        return None
    if rules.get("text"):
        if not isinstance(value, str):
            raise GridError(f"{option}: expected a name but got {value!r}.")
        return value
    if rules.get("number"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise GridError(f"{option}: expected a number but got {value!r}.") from None
    if rules.get("names"):
        items = value.split(",") if isinstance(value, str) else list(value)
        names: dict[str, None] = {}
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise GridError(f"{option}: empty or non-text item in {value!r}.")
            names[item.strip()] = None
        return tuple(names) or None
    if rules.get("flag"):
        if isinstance(value, str):
            if value not in _FLAG_WORDS:
                raise GridError(f"{option}: expected yes, no or both but got {value!r}.")
            return _FLAG_WORDS[value]
        flags = (value,) if isinstance(value, bool) else tuple(value)
        if not flags or not all(isinstance(f, bool) for f in flags):
            raise GridError(f"{option}: expected True, False or 'both' but got {value!r}.")
        return tuple(dict.fromkeys(flags))
    number_rules = {k: rules[k] for k in ("integer", "minimum", "allow_none") if k in rules}
    if isinstance(value, str):
        return tuple(parse_values(value, option, **number_rules))
    items = [value] if not isinstance(value, Iterable) else list(value)
    if not items:
        raise GridError(f"{option}: no values given.")
    text = ",".join(number_text(v) for v in items)
    return tuple(parse_values(text, option, **number_rules))


def grid_options(**given: Any) -> dict[str, Any]:
    """The grid fields that ``given`` (API keywords or grid field names, Python values or
    range text) sets, as the tuples a :class:`~replay.sweeping.sweep.Grid` holds; None means
    not given. Used by the API and by the CLI (whose options are already tuples).

    >>> grid_options(patience=range(3, 6), restore_best_weights="both", policy="prechelt")
    {'patience': (3, 4, 5), 'restore_best_weights': (False, True), 'policies': ('prechelt',)}

    Raises:
        GridError: an unknown option, or a value its rules refuse.
    """
    from replay.engine.grid import GridError

    out: dict[str, Any] = {}
    for key, value in given.items():
        name = _KEYWORDS.get(key, key)
        if name not in GRID_OPTIONS:
            raise GridError(f"unknown option {key!r}; the options are: {', '.join(_api_names())}.")
        if isinstance(value, tuple) and _already_parsed(name, value):
            out[name] = value or None
        else:
            out[name] = _grid_value(name, value)
    return out


def _already_parsed(name: str, value: tuple) -> bool:
    """A tuple from the CLI's parser: kept as it is (its rules were applied there)."""
    rules = GRID_OPTIONS[name]
    if rules.get("names"):
        return all(isinstance(v, str) for v in value)
    if rules.get("flag"):
        return all(isinstance(v, bool) for v in value)
    return False


def _api_names() -> list[str]:
    back = {v: k for k, v in _KEYWORDS.items()}
    return [back.get(name, name) for name in GRID_OPTIONS]


def check_monitors(runs: Sequence[RunLog], grid: Grid) -> None:
    """Raise :class:`~analysis.errors.MissingMetric` for a monitor a run lacks."""
    from analysis.errors import missing_metric

    for run in runs:
        for monitor in grid.monitors_of(run):
            if not run.has(monitor):
                raise missing_metric(monitor, list(run.columns), run.source)


def choose_dialect(runs: Sequence[RunLog], grid: Grid, given: Mapping[str, Any], build):
    """``(grid, notes)``: ``grid`` itself when a dialect was given, else ``build(**given)``
    in the framework's own dialect when every run is a log of one framework
    (:func:`replay.sweeping.dialect_sweep.dialect_for_runs`), or Keras's when that dialect cannot
    replay what was asked (a note says why)."""
    from replay.sweeping.dialect_sweep import dialect_for_runs

    if given.get("dialect") is not None:
        return grid, []
    monitors = tuple(m for run in runs for m in grid.monitors_of(run))
    dialect, notes = dialect_for_runs(runs, None, monitors)
    if dialect != "keras":
        try:
            grid = build(**{**given, "dialect": dialect})
        except ReplayError as e:
            reason = str(e).rstrip(".")
            notes = [f"{runs[0].format} logs are replayed in the {dialect} dialect, but "
                     f"{reason}; replayed in the keras dialect instead."]  # fmt: skip
    return grid, notes
