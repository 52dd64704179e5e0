"""callback-replay: replay recorded training metrics through exact Keras callback policies.

The public API (:mod:`replay.api`), the same answers as the ``replay`` command:

>>> import replay
>>> sweep = replay.sweep("sample_logs/mnist-mlp", patience=range(3, 11))
>>> sweep.to_pandas().shape[0] == len(sweep.records)
True

``import replay`` loads nothing heavy: numpy, pandas and matplotlib are imported by the
functions that need them, and TensorFlow only by recording and branching.
"""

from __future__ import annotations

from replay.version import __version__

__all__ = ["BranchPlan", "Pick", "PrunerSweep", "Summary", "Sweep", "__version__", "load",
           "pick", "plan_branch", "plan_sweep", "show", "sweep", "sweep_study"]  # fmt: skip

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str):
    if name in _API:
        from replay import api

        return getattr(api, name)
    raise AttributeError(f"module 'replay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
