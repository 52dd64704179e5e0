"""The public Python API: everything ``replay sweep``, ``pick`` and ``show`` do, as
functions that return objects (the CLI only parses options, calls these and prints).

>>> import replay
>>> s = replay.sweep("sample_logs/mnist-mlp", patience=range(3, 11), policy="early_stopping")
>>> len(s.records), s.records[0]["policy"]
(48, 'early_stopping')
>>> df = s.to_pandas()  # one row per record, as results.csv
>>> len(df), int(df["stopped_epoch"].min()), float(df["regret"].min())
(48, 4, 0.0)

Grid options take Python values: a scalar for one value, any iterable for several
(``patience=range(3, 11)``, ``min_delta=[0, 1e-3]``), or the CLI's range text
(``"3..10"``); ``restore_best_weights`` and ``save_best_only`` take True, False or
``"both"``. Left out (None), an option has the CLI's default. Bad input raises a
:class:`~analysis.errors.ReplayError` whose message is the CLI's ``Error:`` line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from analysis.errors import ReplayError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from analysis.logs import RunLog
    from replay.sweeping import Grid, SweepResult

__all__ = [
    "GRID_OPTIONS",
    "Pick",
    "Summary",
    "Sweep",
    "SweepPlan",
    "grid_options",
    "load",
    "pick",
    "plan_sweep",
    "show",
    "sweep",
]

#: Every grid option (a :class:`replay.sweeping.Grid` field) the API and the CLI take,
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


def _option(field_name: str) -> str:
    return "--" + {"policies": "policy", "monitors": "monitor"}.get(field_name, field_name).replace(
        "_", "-"
    )


def _number_text(v: Any) -> str:
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
    from replay.grid import GridError, parse_values

    rules = GRID_OPTIONS[name]
    option = _option(name)
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
    text = ",".join(_number_text(v) for v in items)
    return tuple(parse_values(text, option, **number_rules))


def grid_options(**given: Any) -> dict[str, Any]:
    """The grid fields that ``given`` (API keywords or grid field names, Python values or
    range text) sets, as the tuples a :class:`~replay.sweeping.Grid` holds; None means
    not given. Used by the API and by the CLI (whose options are already tuples).

    >>> grid_options(patience=range(3, 6), restore_best_weights="both", policy="prechelt")
    {'patience': (3, 4, 5), 'restore_best_weights': (False, True), 'policies': ('prechelt',)}

    Raises:
        GridError: an unknown option, or a value its rules refuse.
    """
    from replay.grid import GridError

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


# ----------------------------------------------------------------------------------
# load


def load(source: Any, *more: Any, name: str | None = None) -> list[RunLog]:
    """Every training in ``source`` (and ``more``), as :class:`~analysis.logs.RunLog`
    objects with names that tell them apart.

    ``source`` is a path of any log the CLI reads (``LOG#N`` picks one training of a log
    that holds several), a list of paths, a Keras ``History`` (what ``model.fit``
    returns), its ``history`` dict (one list of values per metric, one value per
    epoch), a pandas DataFrame (epochs as rows; an ``epoch`` column, if any, is the
    epoch), or RunLogs already loaded. ``name`` names an in-memory log
    (default ``history``).

    Raises:
        ReplayError: a path that is missing or not a log, a malformed log, an object
            of another kind.
    """
    from analysis.formats import load_logs, unique_names
    from analysis.logs import RunLog

    runs: list[RunLog] = []
    for item in (source, *more):
        if isinstance(item, (str, os.PathLike)):
            runs.extend(load_logs(item))
        elif isinstance(item, RunLog):
            runs.append(item)
        elif isinstance(item, (list, tuple)):
            runs.extend(load(*item) if item else [])
        else:
            runs.append(_in_memory(item, name or "history"))
    unique_names(runs)
    return runs


def _in_memory(obj: Any, name: str) -> RunLog:
    """A History, a dict of lists or a DataFrame as a RunLog (read as a CSVLogger file
    with those columns would be)."""
    columns = _columns_of(obj)
    if columns is None:
        raise ReplayError(
            f"cannot read a {type(obj).__name__} as a log; give a path, a Keras History, "
            "its history dict (metric -> list of values per epoch) or a pandas DataFrame."
        )
    if not columns:
        raise ReplayError(f"{name}: the log has no metrics.")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in columns.items())
        raise ReplayError(
            f"{name}: metrics of different lengths ({sizes}); give one value per epoch each."
        )
    return _run_from_columns(columns, name)


def _columns_of(obj: Any) -> dict[str, list] | None:
    history = getattr(obj, "history", None)
    if isinstance(history, Mapping) and not isinstance(obj, Mapping):  # a Keras History
        epochs = getattr(obj, "epoch", None)
        columns = {str(k): list(v) for k, v in history.items()}
        if epochs and len(epochs) == len(next(iter(columns.values()), [])):
            return {"epoch": list(epochs), **columns}
        return columns
    if isinstance(obj, Mapping):
        try:
            return {str(k): list(v) for k, v in obj.items()}
        except TypeError:
            raise ReplayError(
                "a history dict maps each metric to a list of values, one per epoch."
            ) from None
    if type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "columns"):
        if not hasattr(obj, "to_dict"):
            return None
        return {str(k): list(v) for k, v in obj.to_dict(orient="list").items()}
    return None


def _run_from_columns(columns: dict[str, list], name: str) -> RunLog:
    import csv
    import io
    import math

    from analysis.logs import runs_from_csv_text

    n = len(next(iter(columns.values())))
    if "epoch" not in columns:
        columns = {"epoch": list(range(n)), **columns}

    def cell(v: Any) -> str:
        if v is None:
            return ""
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ReplayError(
                f"{name}: {v!r} is not a number; a log holds one number per metric and epoch."
            ) from None
        if math.isfinite(f) and f == int(f) and isinstance(v, int):
            return str(int(v))
        return repr(f)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for i in range(n):
        writer.writerow(cell(values[i]) for values in columns.values())
    (run,) = runs_from_csv_text(buf.getvalue(), Path(name), name, name, "keras_history")[:1]
    return run


# ----------------------------------------------------------------------------------
# sweep


@dataclass
class SweepPlan:
    """A sweep checked and ready to run (:func:`plan_sweep`): the logs, the grid in the
    dialect chosen for them, and what was said on the way."""

    runs: list[RunLog]
    grid: Grid
    #: Notes about the choice of dialect (printed before the table by the CLI).
    dialect_notes: list[str]

    @property
    def sessions(self) -> int:
        """(run, setting) pairs: the size of a ``--tensorboard`` experiment."""
        return self.grid.size() * len(self.runs)

    def run(self) -> Sweep:
        """Replay every run through every setting; return the :class:`Sweep`."""
        from replay.sweeping import check_shadow
        from replay.sweeping import sweep as run_sweep

        result = run_sweep(self.runs, self.grid)
        warnings = list(dict.fromkeys(w for facts in result.facts for w in facts.notes))
        shadow: list[str] = []
        mismatch = False
        for run, facts in zip(self.runs, result.facts, strict=True):
            if run.shadow:
                check = check_shadow(facts, run.shadow, run.shadow_epochs)
                if check.total:
                    shadow.append(f"{run.name}: replay matches {check.matched}/{check.total} "
                                  "real Keras decisions")  # fmt: skip
                if not check.ok:
                    mismatch = True
                    shadow.extend(f"MISMATCH (a bug in callback-replay): {m}"
                                  for m in check.mismatches)  # fmt: skip
        return Sweep(self.runs, self.grid, result, self.dialect_notes, warnings, shadow, mismatch)


def plan_sweep(source: Any, *, max_settings: int | None = None, **options: Any) -> SweepPlan:
    """Load ``source`` (as :func:`load`), build the grid of ``options`` and check both,
    before any work: what :func:`sweep` does before it replays.

    Raises:
        ReplayError: a bad log or option, a monitor the log lacks, a grid too large.
    """
    from replay.sweeping import Grid

    given = grid_options(**options)
    grid = Grid.from_options(**given)
    runs = load(source)
    if not runs:
        raise ReplayError("no logs to sweep; give at least one.")
    check_monitors(runs, grid)
    grid, notes = choose_dialect(runs, grid, given, Grid.from_options)
    grid.check(max_settings=max_settings, runs=runs)
    return SweepPlan(list(runs), grid, notes)


def sweep(source: Any, *, max_settings: int | None = None, **options: Any) -> Sweep:
    """Replay ``source`` through every setting of the grid that ``options`` give, as
    ``replay sweep`` does, with the same defaults, dialect choice and notes.

    ``source``: as for :func:`load`. ``options``: ``policy`` (one name or several),
    ``monitor``, ``mode``, ``patience``, ``min_delta``, ``baseline``,
    ``start_from_epoch``, ``restore_best_weights``, ``lr_patience``, ``lr_min_delta``,
    ``factor``, ``cooldown``, ``min_lr``, ``initial_lr``, ``gl_alpha``, ``pq_alpha``,
    ``up_strips``, ``strip_length``, ``save_best_only``, ``initial_value_threshold``,
    ``dialect``, ``dialect_version``, ``threshold``, ``threshold_mode``, ``eps``,
    ``check_finite``, ``stopping_threshold``, ``divergence_threshold``,
    ``early_stopping_threshold``, ``period`` (the CLI's options, ``-`` as ``_``).

    Raises:
        ReplayError: as :func:`plan_sweep`.
    """
    return plan_sweep(source, max_settings=max_settings, **options).run()


def check_monitors(runs: Sequence[RunLog], grid: Grid) -> None:
    """Raise :class:`~analysis.errors.MissingMetric` for a monitor a run lacks."""
    from analysis.errors import missing_metric

    for run in runs:
        for monitor in grid.monitors_of(run):
            if not run.has(monitor):
                raise missing_metric(monitor, list(run.metrics.columns), run.source)


def choose_dialect(runs: Sequence[RunLog], grid: Grid, given: Mapping[str, Any], build):
    """``(grid, notes)``: ``grid`` itself when a dialect was given, else ``build(**given)``
    in the framework's own dialect when every run is a log of one framework
    (:func:`replay.dialect_sweep.dialect_for_runs`), or Keras's when that dialect cannot
    replay what was asked (a note says why)."""
    from replay.dialect_sweep import dialect_for_runs

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


def _column(values: list):
    """A DataFrame column: integers (epochs, patience) and flags stay so where some
    records have none (pandas's nullable Int64 and boolean), numbers as float64."""
    import pandas as pd

    present = [v for v in values if v is not None]
    if present and len(present) < len(values):
        if all(type(v) is int for v in present):
            return pd.array(values, dtype="Int64")
        if all(type(v) is bool for v in present):
            return pd.array(values, dtype="boolean")
    return values


@dataclass
class Sweep:
    """A sweep's answer: its records and what to make of them.

    ``records`` are exactly those ``results.json`` holds (a sequence of dicts, kept
    compact: each is built when read); :meth:`to_pandas` flattens them as
    ``results.csv`` does.
    """

    runs: list[RunLog]
    grid: Grid
    result: SweepResult
    dialect_notes: list[str] = field(default_factory=list)
    #: The logs' warnings (and their branches'), once each.
    warnings: list[str] = field(default_factory=list)
    #: Lines comparing the replay with the real Keras callbacks that ran in shadow mode.
    shadow: list[str] = field(default_factory=list)
    #: Whether the replay disagrees with a real Keras decision (a bug in callback-replay).
    mismatch: bool = False

    @property
    def records(self):
        return self.result.records

    @property
    def oracles(self) -> list[dict]:
        """Per (run, monitor): the held-out metric, its best epoch and value, the last."""
        return self.result.oracles

    @property
    def notes(self) -> list[str]:
        """What a reader of the records should know (the dialect's, then the sweep's)."""
        return [*self.dialect_notes, *self.result.notes]

    def __len__(self) -> int:
        return len(self.records)

    def to_pandas(self) -> pd.DataFrame:
        """One row per record, flattened as results.csv (``params.patience``,
        ``final_metrics.test_loss``, lists kept as lists)."""
        import pandas as pd

        from replay.report import csv_columns

        columns = csv_columns(self.records)
        data: dict[str, list] = {c: [None] * len(self.records) for c in columns}
        for i, record in enumerate(self.records):
            for key, value in record.items():
                if isinstance(value, dict):
                    for k, v in value.items():
                        data[f"{key}.{k}"][i] = v
                elif key in data:
                    data[key][i] = value
        return pd.DataFrame({c: _column(values) for c, values in data.items()}, columns=columns)

    def table(self) -> str:
        """The text ``replay sweep`` prints."""
        from replay.report import render_table

        return render_table(self.result)

    @property
    def verdict(self) -> str:
        """The plain-language verdict of each run and monitor (and across runs)."""
        from replay.report import render_aggregate, verdict

        texts = [
            verdict(self.records.where(run=o["run"], monitor=o["monitor"]), o["heldout"])
            for o in self.oracles
        ]
        if len(self.runs) > 1:
            texts.append(render_aggregate(self.records).strip())
        return "\n\n".join(t for t in texts if t)

    @property
    def best(self) -> pd.DataFrame:
        """Per run, monitor and policy, the setting with the least regret (ties: the
        fewest epochs trained, then the first), as rows of :meth:`to_pandas`."""
        df = self.to_pandas()
        if df.empty or "regret" not in df:
            return df.iloc[0:0]
        keys = ["run", "params.monitor", "policy"]
        ranked = df.assign(_order=range(len(df))).sort_values(
            ["regret", "epochs_trained", "_order"] if "epochs_trained" in df else
            ["regret", "_order"], na_position="last", kind="stable",
        )  # fmt: skip
        return ranked.groupby(keys, sort=False).head(1).sort_values("_order").drop(columns="_order")

    @property
    def chart_refusal(self) -> str | None:
        """Why no charts are drawn (too many settings to show), or None."""
        from replay.charting import chart_refusal

        return chart_refusal(self.result)

    def figures(self) -> dict[str, Figure]:
        """The sweep's charts as matplotlib Figures, by file name (``curves.png``, ...),
        nothing written.

        Raises:
            ReplayError: the charts would show too many settings (:attr:`chart_refusal`).
        """
        from analysis import charts
        from replay.charting import chart_jobs

        refusal = self.chart_refusal
        if refusal:
            raise ReplayError(refusal)
        jobs = chart_jobs(self.result, self.runs, Path("."))
        return {path.name: getattr(charts, name)(*args, **kw) for name, args, kw, path in jobs}

    def save(
        self, out: str | os.PathLike[str], *, charts: bool = True, force: bool = False,
        tee: tuple[str, TextIO] | None = None,
    ) -> list[str]:  # fmt: skip
        """Write results.json, results.csv (and, for several runs, the across-runs
        files) and the charts into ``out``, as ``replay sweep --out`` does; return the
        names written. ``tee=(fmt, stream)`` also streams that format to ``stream``.

        Raises:
            ReplayError: ``out`` is a file, or a non-empty directory without ``force``.
        """
        from replay.report import check_output_dir

        out = Path(out)
        check_output_dir(out, "--out", force, "overwrite its results")
        return self._write(out, charts=charts, tee=tee)

    def _write(self, out: Path, *, charts: bool, tee: tuple[str, TextIO] | None) -> list[str]:
        from replay.report import atomic_text, write_csv, write_json

        out.mkdir(parents=True, exist_ok=True)
        writers = {"json": write_json, "csv": write_csv}
        for kind, write in writers.items():
            with atomic_text(out / f"results.{kind}") as f:
                streams = (f, tee[1]) if tee and tee[0] == kind else (f,)
                write(self.records, *streams)
        written = ["results.json", "results.csv"]
        if len(self.runs) > 1:  # across runs: one row per setting (docs/sweep-output.md)
            from replay.report import write_aggregate_files

            written += write_aggregate_files(self.records, out)
        if charts and not self.chart_refusal:
            from replay.charting import draw_sweep_charts

            written += draw_sweep_charts(self.result, self.runs, out)
        return written

    def to_tensorboard(self, logdir: str | os.PathLike[str], *, force: bool = False) -> int:
        """Write the sweep as a TensorBoard HParams experiment (one session per run and
        setting) into ``logdir``; return the number of sessions.

        Raises:
            ReplayError: too many sessions, or ``logdir`` not empty without ``force``.
        """
        from replay import hparams

        logdir = Path(logdir)
        hparams.check_size(len(self.records))
        hparams.check_dir(logdir, force, None, len(self.records))
        return hparams.write_experiment(self.records, logdir, oracles=self.oracles, force=force)

    def _repr_html_(self) -> str:
        import base64
        import html
        import io

        runs = f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''}"
        parts = [f"<p><b>callback-replay sweep</b>: {runs}, {len(self.records):,} settings</p>"]
        if self.verdict:
            parts.append(f"<pre>{html.escape(self.verdict)}</pre>")
        best = self.best
        if not best.empty:
            parts.append(best.to_html(index=False, na_rep="-", max_cols=20))
        for note in self.notes:
            parts.append(f"<p>note: {html.escape(note)}</p>")
        if not self.chart_refusal:
            figures = self.figures()
            curves = figures.get("curves.png") or next(iter(figures.values()), None)
            if curves is not None:
                buf = io.BytesIO()
                curves.savefig(buf, format="png", dpi=80)
                data = base64.b64encode(buf.getvalue()).decode("ascii")
                parts.append(f'<img src="data:image/png;base64,{data}"/>')
        return "\n".join(parts)

    def __repr__(self) -> str:
        names = ", ".join(r.name for r in self.runs)
        return f"<Sweep of {names}: {len(self.records):,} records>"


# ----------------------------------------------------------------------------------
# pick


@dataclass
class Pick:
    """What one setting would have left you with (``replay pick``)."""

    run: RunLog
    record: dict
    #: The lines ``replay pick`` prints about the setting and the epoch kept.
    lines: list[str]
    #: What a reader should know about the answer (the sweep's notes).
    notes: list[str]
    #: The held-out metric the regret is measured on.
    metric: str | None
    #: The log's warnings, and notes about the choice of dialect.
    warnings: list[str] = field(default_factory=list)
    dialect_notes: list[str] = field(default_factory=list)

    @property
    def final_epoch(self) -> int | None:
        return self.record["final_epoch"]

    def checkpoint(self) -> Path:
        """The kept epoch's checkpoint file, its sha256 verified.

        Raises:
            CheckpointUnavailable: none kept, not recorded, missing or altered.
        """
        from analysis.errors import CheckpointUnavailable
        from analysis.logs import checkpoint_path

        final = self.final_epoch
        if final is None:
            raise CheckpointUnavailable("no epoch is kept, so there is no checkpoint.")
        return checkpoint_path(_holder(self.run, self.record, final), final, verify=True)

    def copy_checkpoint(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the kept checkpoint to ``dest`` (never overwriting); return ``dest``."""
        dest = Path(dest)
        if dest.exists():
            raise ReplayError(f"--copy {dest}: already exists; pick never overwrites a file.")
        _copy_new(self.checkpoint(), dest)
        return dest

    def __str__(self) -> str:
        return "\n".join(self.lines)


def pick(source: Any, **options: Any) -> Pick:
    """The epoch (and checkpoint) that one setting would have left you with, as
    ``replay pick`` says: every option one value; unset ones take Keras's defaults.

    Raises:
        ReplayError: a bad log or option, several values for an option.
    """
    from replay.grid import GridError
    from replay.sweeping import Grid

    given = grid_options(**options)
    for name, values in given.items():
        rules = GRID_OPTIONS[name]
        if values is not None and not ({"names", "flag", "text", "number"} & set(rules)):
            if len(values) != 1:
                text = ",".join(_number_text(v) for v in values)
                raise GridError(f"{_option(name)}: pick takes one value but got {text!r}.")
    grid = Grid.for_pick(**given)
    loaded = _one_run(source)
    check_monitors([loaded], grid)
    grid, dialect_notes = choose_dialect([loaded], grid, given, Grid.for_pick)
    from replay.sweeping import sweep as run_sweep

    result = run_sweep([loaded], grid)
    (record,) = result.records
    metric = record.get("regret_metric") or result.oracles[0]["heldout"]
    lines = _pick_lines(loaded, record, metric)
    return Pick(loaded, record, lines, result.notes, metric, list(loaded.warnings), dialect_notes)


def _one_run(source: Any) -> RunLog:
    """The one training of ``source`` (a path: ``LOG#N`` names one of several)."""
    if isinstance(source, (str, os.PathLike)):
        from analysis.formats import load_run

        return load_run(source)
    runs = load(source)
    if len(runs) != 1:
        from analysis.errors import AmbiguousLog

        raise AmbiguousLog(f"{len(runs)} trainings given; pick takes one.")
    return runs[0]


def _pick_lines(run: RunLog, record: dict, metric: str | None) -> list[str]:
    lines = [f"{run.name}: {_describe_pick(record)}"]
    final = record["final_epoch"]
    if final is None and record.get("counterfactual_from") is not None:
        return lines + [
            f"no recorded curve ran this schedule from epoch {record['counterfactual_from']} "
            "on, so the epoch you would end with is unknown; `replay branch` trains it"
        ]
    if final is None and record.get("saved_epochs") is not None:
        return lines + ["ModelCheckpoint saved no epoch, so there is no file to keep."]
    if final is None:
        return lines + ["the log has no epochs to keep."]
    lines.append(f"you end with the weights of epoch {final} (epoch {final + 1} in Keras's "
                 "1-based messages and checkpoint names)")  # fmt: skip
    if record["regret"] is not None:
        lines.append(f"regret on {metric}: {record['regret']:.6g} (0 = the best recorded epoch)")
    for k, v in record["final_metrics"].items():
        lines.append(f"  {k:<16} {'-' if v is None else repr(v)}")
    return lines


def _holder(run, record: dict, epoch: int):
    """The run directory holding ``epoch``'s checkpoint: the run, or the branch that
    answered the record (or the parent it forked from, for an epoch before its fork)."""
    from analysis.rundir import BRANCHES, load_run_dir

    if not record.get("branch") or run.root is None:
        return run
    holder = load_run_dir(run.root / BRANCHES / record["branch"])
    while epoch not in holder.checkpoints and isinstance((holder.manifest or {}).get("parent"),
                                                         str):  # fmt: skip
        # "../.." or "../<id>" (validated): collapse lexically to name the path plainly
        holder = load_run_dir(os.path.normpath(holder.root / holder.manifest["parent"]))
    return holder


def _describe_pick(record: dict) -> str:
    from analysis.records import MODEL_CHECKPOINT, REDUCE_LR_ON_PLATEAU, record_label

    dialect = f" ({record['dialect']} dialect)" if record.get("dialect") else ""
    setting = (f"{record['policy']}{dialect} {record_label(record)} on "
               f"{record['params']['monitor']}")  # fmt: skip
    where = f" (branch {record['branch']})" if record.get("branch") else ""
    if record["policy"] == MODEL_CHECKPOINT:
        saved = ", ".join(map(str, record["saved_epochs"])) or "none"
        return f"{setting}: saves epochs {saved}; its file holds the last one saved."
    if record["policy"] == REDUCE_LR_ON_PLATEAU:
        cuts = ", ".join(map(str, record["reductions"])) or "none"
        if record["counterfactual_from"] is None:
            return f"{setting}: cuts after epochs {cuts}, exact to the end{where}."
        return (f"{setting}: cuts after epochs {cuts}; exact up to epoch "
                f"{record['counterfactual_from'] - 1}{where}.")  # fmt: skip
    if record.get("counterfactual_from") is not None:
        return (f"{setting}: had not stopped by epoch {record['counterfactual_from'] - 1}, "
                f"where no recorded curve ran its learning-rate schedule{where}.")  # fmt: skip
    if record["censored"]:
        why = (
            f"never stopped within the {record['epochs_trained']} recorded epochs (censored: "
            "the log ended before this setting would have stopped)"
        )
    else:
        why = f"stopped at epoch {record['stopped_epoch']}"
    best = record["best_epoch"]
    return f"{setting}: {why}; best epoch {best}{where}."


def _copy_new(src: Path, dest: Path) -> None:
    """Copy without ever overwriting: the destination is created exclusively."""
    import shutil

    if dest.parent and not dest.parent.exists():
        raise ReplayError(f"--copy {dest}: directory {dest.parent} does not exist.")
    try:
        with open(src, "rb") as fin, open(dest, "xb") as fout:
            shutil.copyfileobj(fin, fout)
    except FileExistsError:
        raise ReplayError(f"--copy {dest}: already exists; pick never overwrites a file.") from None


# ----------------------------------------------------------------------------------
# show


@dataclass
class Summary:
    """``replay show``: a plain summary of a log (or a line per run of a folder of runs)."""

    runs: list[RunLog]
    text: str
    #: Whether the replay disagrees with a real Keras decision recorded in the run.
    mismatch: bool

    def figure(self) -> Figure:
        """The recorded curves of the log (one training) as a matplotlib Figure."""
        from replay.charting import run_figure

        if len(self.runs) != 1:
            raise ReplayError(
                f"{len(self.runs)} trainings; name one as LOG#1 ... LOG#{len(self.runs)} "
                "to draw it."
            )
        return run_figure(self.runs[0])

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.text)}</pre>"


def show(source: Any) -> Summary:
    """Summarize a log: format, epochs, status, best epochs, LR changes, provenance.

    Raises:
        ReplayError: a missing or unreadable log.
    """
    from analysis.formats import is_run_folder
    from replay.summary import render_folder_summary, render_summary

    runs = load(source)
    if isinstance(source, (str, os.PathLike)) and is_run_folder(source):
        text, mismatch = render_folder_summary(str(source), runs)
        return Summary(runs, text, mismatch)
    texts, mismatch = [], False
    for k, one in enumerate(runs):
        text, bad = render_summary(one)
        texts.append(("\n" if k else "") + text)
        mismatch = mismatch or bad
    return Summary(runs, "".join(texts), mismatch)
