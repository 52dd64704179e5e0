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

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from replay.api.branching import BranchPlan, plan_branch
    from replay.api.loading import load
    from replay.api.options import GRID_OPTIONS, check_monitors, choose_dialect, grid_options
    from replay.api.picks import Pick, pick
    from replay.api.studies import PrunerSweep, sweep_study
    from replay.api.summaries import Summary, show
    from replay.api.sweeps import Sweep, SweepPlan, plan_sweep, sweep

#: Where each public name lives; its module is imported when the name is first used
#: (the CLI's ``--help`` needs only ``GRID_OPTIONS``).
_HOMES = {
    "BranchPlan": "branching", "plan_branch": "branching", "load": "loading",
    "GRID_OPTIONS": "options", "check_monitors": "options", "choose_dialect": "options",
    "grid_options": "options", "Pick": "picks", "pick": "picks", "PrunerSweep": "studies",
    "sweep_study": "studies", "Summary": "summaries", "show": "summaries", "Sweep": "sweeps",
    "SweepPlan": "sweeps", "plan_sweep": "sweeps", "sweep": "sweeps",
}  # fmt: skip

__all__ = [
    "GRID_OPTIONS",
    "BranchPlan",
    "Pick",
    "PrunerSweep",
    "Summary",
    "Sweep",
    "SweepPlan",
    "check_monitors",
    "choose_dialect",
    "grid_options",
    "load",
    "pick",
    "plan_branch",
    "plan_sweep",
    "show",
    "sweep",
    "sweep_study",
]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'replay.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"replay.api.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
