"""``replay.sweep`` over a study with a pruner policy: Optuna's pruners replayed over the
trials of a recorded Optuna study (or a KerasTuner project), as ``replay sweep STUDY
--policy median_pruner ...`` does."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from analysis.errors import ReplayError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from replay.sweeping.study_sweep import StudySweep

__all__ = ["PrunerSweep", "is_pruner_sweep", "sweep_study"]


def is_pruner_sweep(options: dict[str, Any]) -> bool:
    """Whether ``options`` (the API's keywords) name a pruner policy."""
    from replay.engine.pruner_options import PRUNER_POLICIES

    policy = options.get("policy", options.get("policies"))
    names = [policy] if isinstance(policy, str) else list(policy or ())
    names = [n.strip() for name in names for n in str(name).split(",")]
    return any(n in PRUNER_POLICIES for n in names)


def _values(value: Any) -> tuple | None:
    """A pruner option's values: a scalar for one, any iterable for several."""
    if value is None:
        return None
    if isinstance(value, str) and value != "auto":
        raise ReplayError(f"expected a number or 'auto' but got {value!r}; give Python values.")
    items = (value,) if isinstance(value, (str, int, float)) else tuple(value)
    if not items:
        raise ReplayError("an option was given no values.")
    return items


@dataclass
class PrunerSweep:
    """A pruner sweep's answer: one record per setting (``results.json``'s)."""

    result: StudySweep

    @property
    def records(self) -> list[dict]:
        return self.result.records

    @property
    def study(self):
        return self.result.study

    @property
    def warnings(self) -> list[str]:
        return list(self.result.study.warnings)

    def reproducing(self) -> list[str]:
        """The settings whose pruning equals what the recorded study did."""
        return self.result.reproducing()

    def __len__(self) -> int:
        return len(self.records)

    def to_pandas(self) -> pd.DataFrame:
        """One row per setting, as results.csv (``params.*`` columns)."""
        import pandas as pd

        from replay.sweeping.study_sweep import flat_row

        return pd.DataFrame([flat_row(r) for r in self.records])

    def table(self) -> str:
        """The text ``replay sweep`` prints."""
        from replay.sweeping.study_sweep import render_table

        return render_table(self.result)

    def _policies(self) -> list[str]:
        """The pruners swept, in the order of their first setting (one chart each)."""
        return list(dict.fromkeys(r["policy"] for r in self.records))

    def _figure(self, policy: str) -> Figure:
        from analysis.charts.study import draw_pruner_sweep

        return draw_pruner_sweep(self.study, [r for r in self.records if r["policy"] == policy])

    def figures(self) -> dict[str, Figure]:
        """One chart per pruner (``<policy>.png``): the trials' curves with each
        setting's prune points, and compute saved against regret; nothing written."""
        return {f"{p}.png": self._figure(p) for p in self._policies()}

    def save(
        self, out: str | os.PathLike[str], *, charts: bool = True, force: bool = False,
        tee: tuple[str, TextIO] | None = None,
    ) -> list[str]:  # fmt: skip
        """Write results.json, results.csv and (``charts``) one chart per pruner
        (``<policy>.png``) into ``out``, as ``replay sweep STUDY --policy ... --out DIR``
        does; return the names written. ``tee=(fmt, stream)`` also writes that format
        (``json`` or ``csv``) to ``stream``.

        Raises:
            ReplayError: ``out`` is a file, or a non-empty directory without ``force``
                (nothing written).
        """
        from pathlib import Path

        from replay.output.writers import atomic_text, check_output_dir
        from replay.sweeping.study_sweep import to_csv, to_json

        out = Path(out)
        check_output_dir(out, "--out", force, "overwrite its results")
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for kind, render in {"json": to_json, "csv": to_csv}.items():
            text = render(self.records)
            with atomic_text(out / f"results.{kind}") as f:
                f.write(text)
            if tee and tee[0] == kind:
                tee[1].write(text)
            written.append(f"results.{kind}")
        if charts:
            from analysis.charts.style import save_figure

            for policy in self._policies():
                save_figure(self._figure(policy), out / f"{policy}.png")  # atomic
                written.append(f"{policy}.png")
        return written

    def to_tensorboard(self, logdir: str | os.PathLike[str], *, force: bool = False) -> int:
        """Write the sweep as a TensorBoard HParams experiment (one session per setting:
        the pruner's parameters as hyperparameters; steps trained, compute saved, trials
        pruned, best found, regret, ... as metrics) into ``logdir``, as ``replay sweep
        STUDY --policy ... --tensorboard DIR`` does; return the number of sessions.

        Raises:
            ReplayError: too many sessions, or ``logdir`` not empty without ``force``.
        """
        from pathlib import Path

        from replay.output import hparams

        logdir = Path(logdir)
        hparams.check_size(len(self.records))
        hparams.check_dir(logdir, force, None, len(self.records))
        return hparams.write_pruner_experiment(self.records, logdir, force=force)

    def _repr_html_(self) -> str:
        """A notebook cell's view: the table (each setting, the sum-up lines), the
        study's warnings and the first pruner's chart inline."""
        import base64
        import html
        import io

        parts = [f"<p><b>callback-replay pruner sweep</b> of {html.escape(self.study.name)}: "
                 f"{len(self.records):,} settings</p>",
                 f"<pre>{html.escape(self.table())}</pre>"]  # fmt: skip
        parts += [f"<p>warning: {html.escape(w)}</p>" for w in self.warnings]
        policies = self._policies()
        if policies:
            fig = self._figure(policies[0])
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=80)
            fig.clear()
            data = base64.b64encode(buf.getvalue()).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}"/>')
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"<PrunerSweep of {self.study.name}: {len(self.records):,} settings>"


def sweep_study(
    source: str | os.PathLike[str], *, policy: str | Iterable[str], study: str | None = None,
    recorded_pruner: str | None = None, **options: Any,
) -> PrunerSweep:  # fmt: skip
    """Replay Optuna's pruners (``policy``: ``median_pruner``, ``percentile_pruner``,
    ``successive_halving_pruner``, ``hyperband_pruner``, ``threshold_pruner``,
    ``patient_pruner``) over the trials of the study at ``source`` (an Optuna storage URL
    or journal file, ``study`` naming one of several; or a KerasTuner project), under
    every setting of the pruner options given (``n_startup_trials=range(6)``,
    ``n_warmup_steps=[0, 2]``, ``reduction_factor=3``, ``min_resource="auto"``, ...).

    Raises:
        ReplayError: no study there, an option no chosen pruner takes, a bad value.
    """
    from replay.engine.grid import GridError
    from replay.engine.pruner_options import OPTIONS, PRUNER_POLICIES
    from replay.sweeping.study_sweep import load_study, pruner_grid
    from replay.sweeping.study_sweep import sweep_study as run

    policies = tuple(n.strip() for p in ([policy] if isinstance(policy, str) else policy)
                     for n in p.split(","))  # fmt: skip
    for p in policies:
        if p not in PRUNER_POLICIES:
            raise GridError(f"--policy: pruners and callbacks cannot be swept together; got {p!r}.")
    for name in options:
        if name not in OPTIONS:
            raise GridError(
                f"unknown pruner option {name!r}; the options are: {', '.join(OPTIONS)}."
            )
    grid = pruner_grid(policies, **{k: _values(v) for k, v in options.items()})
    loaded = load_study(os.fspath(source), study)
    return PrunerSweep(run(loaded, grid, recorded_pruner=recorded_pruner))
