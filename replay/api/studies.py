"""``replay.sweep`` over a study with a pruner policy: Optuna's pruners replayed over the
trials of a recorded Optuna study (or a KerasTuner project), as ``replay sweep STUDY
--policy median_pruner ...`` does."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis.errors import ReplayError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from replay.study_sweep import StudySweep

__all__ = ["PrunerSweep", "is_pruner_sweep", "sweep_study"]


def is_pruner_sweep(options: dict[str, Any]) -> bool:
    """Whether ``options`` (the API's keywords) name a pruner policy."""
    from replay.pruner_options import PRUNER_POLICIES

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

        from replay.study_sweep import flat_row

        return pd.DataFrame([flat_row(r) for r in self.records])

    def table(self) -> str:
        """The text ``replay sweep`` prints."""
        from replay.study_sweep import render_table

        return render_table(self.result)

    def figures(self) -> dict[str, Figure]:
        """One chart per pruner (``<policy>.png``): the trials' curves with each
        setting's prune points, and compute saved against regret."""
        from analysis.study_charts import draw_pruner_sweep

        policies = dict.fromkeys(r["policy"] for r in self.records)
        return {f"{p}.png": draw_pruner_sweep(self.study, [r for r in self.records
                                                          if r["policy"] == p])
                for p in policies}  # fmt: skip

    def to_tensorboard(self, logdir: str | os.PathLike[str], *, force: bool = False) -> int:
        """Write the sweep as a TensorBoard HParams experiment (one session per setting:
        the pruner's parameters as hyperparameters; steps trained, compute saved, trials
        pruned, best found, regret, ... as metrics) into ``logdir``, as ``replay sweep
        STUDY --policy ... --tensorboard DIR`` does; return the number of sessions.

        Raises:
            ReplayError: too many sessions, or ``logdir`` not empty without ``force``.
        """
        from pathlib import Path

        from replay import hparams

        logdir = Path(logdir)
        hparams.check_size(len(self.records))
        hparams.check_dir(logdir, force, None, len(self.records))
        return hparams.write_pruner_experiment(self.records, logdir, force=force)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.table())}</pre>"

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
    from replay.grid import GridError
    from replay.pruner_options import OPTIONS, PRUNER_POLICIES
    from replay.study_sweep import load_study, pruner_grid
    from replay.study_sweep import sweep_study as run

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
