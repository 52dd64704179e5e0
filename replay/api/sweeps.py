"""``replay.sweep``: a grid replayed over logs, and the :class:`Sweep` it answers with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from analysis.errors import ReplayError
from replay.api.loading import load
from replay.api.options import check_monitors, choose_dialect, grid_options

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from analysis.reading.logs import RunLog
    from replay.sweeping.sweep import Grid, SweepResult

__all__ = ["Sweep", "SweepPlan", "plan_sweep", "sweep"]


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
        from replay.sweeping.run_facts import check_shadow
        from replay.sweeping.sweep import sweep as run_sweep

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
    from replay.sweeping.sweep import Grid

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
    A pruner ``policy`` over a study returns a :class:`~replay.api.studies.PrunerSweep`
    (:func:`~replay.api.studies.sweep_study`: the pruners' options, ``study=``).

    Raises:
        ReplayError: as :func:`plan_sweep`.
    """
    from replay.api.studies import is_pruner_sweep, sweep_study

    if is_pruner_sweep(options):  # Optuna's pruners over a study's trials
        return sweep_study(source, **options)
    return plan_sweep(source, max_settings=max_settings, **options).run()


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

        from replay.output.writers import csv_columns

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
        from replay.output.report import render_table

        return render_table(self.result)

    @property
    def verdict(self) -> str:
        """The plain-language verdict of each run and monitor (and across runs)."""
        from replay.output.aggregates import render_aggregate
        from replay.output.report import verdict

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
        from replay.output.charting import chart_refusal

        return chart_refusal(self.result)

    def figures(self) -> dict[str, Figure]:
        """The sweep's charts as matplotlib Figures, by file name (``curves.png``, ...),
        nothing written.

        Raises:
            ReplayError: the charts would show too many settings (:attr:`chart_refusal`).
        """
        from analysis.charts import sweep as charts
        from replay.output.charting import chart_jobs

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
        from replay.output.writers import atomic_text, check_output_dir, write_csv, write_json

        out = Path(out)
        check_output_dir(out, "--out", force, "overwrite its results")
        out.mkdir(parents=True, exist_ok=True)
        writers = {"json": write_json, "csv": write_csv}
        for kind, write in writers.items():
            with atomic_text(out / f"results.{kind}") as f:
                streams = (f, tee[1]) if tee and tee[0] == kind else (f,)
                write(self.records, *streams)
        written = ["results.json", "results.csv"]
        if len(self.runs) > 1:  # across runs: one row per setting (docs/sweep-output.md)
            from replay.output.aggregates import write_aggregate_files

            written += write_aggregate_files(self.records, out)
        if charts and not self.chart_refusal:
            from replay.output.charting import draw_sweep_charts

            written += draw_sweep_charts(self.result, self.runs, out)
        return written

    def to_tensorboard(self, logdir: str | os.PathLike[str], *, force: bool = False) -> int:
        """Write the sweep as a TensorBoard HParams experiment (one session per run and
        setting) into ``logdir``; return the number of sessions.

        Raises:
            ReplayError: too many sessions, or ``logdir`` not empty without ``force``.
        """
        from replay.output import hparams

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
