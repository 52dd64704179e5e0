"""The fast paths of replay_study (median, percentile, threshold, patient without a
wrapped pruner, successive halving, hyperband) against the generic path, which calls
each pruner's ``prune`` at every step as Optuna does (itself proven against Optuna in
test_pruners_optuna.py)."""

from __future__ import annotations

import random

import pytest
from optuna_harness import make_pruner, random_setting, random_study

from replay.engine.pruner_replay import replay_study, replay_study_generic


@pytest.mark.parametrize(
    "kind", ["median", "percentile", "threshold", "patient", "successive_halving", "hyperband"]
)
def test_fast_paths_equal_the_generic_replay(kind):
    rng = random.Random(f"fast-{kind}")
    checked = pruned = 0
    for _ in range(300):
        study = random_study(rng)
        kwargs = random_setting(rng, kind, study["direction"])
        if kind == "patient":
            kwargs["wrapped"] = None
        args = (study["direction"], study["study_name"])
        fast = replay_study(study["curves"], make_pruner(kind, kwargs, real=False), *args)
        slow = replay_study_generic(study["curves"], make_pruner(kind, kwargs, real=False), *args)
        assert fast == slow, (kind, kwargs)
        checked += 1
        pruned += len(fast)
    assert checked == 300 and pruned > 100
