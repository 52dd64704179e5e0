"""replay.engine.pruners against real Optuna: Optuna's own test cases as table rows, and a
differential test over generated studies (every prune decision, trial and step, equal).

``REPLAY_PRUNER_STUDIES=2000`` runs more generated studies than ``make test`` does.
"""

from __future__ import annotations

import itertools
import math
import os
import random

import pytest

optuna = pytest.importorskip("optuna")

from optuna_harness import (  # noqa: E402
    PRUNERS,
    make_pruner,
    optuna_prune_points,
    random_setting,
    random_study,
    run_script_optuna,
    run_script_replay,
)

from replay.engine import pruners as rp  # noqa: E402
from replay.engine.pruner_replay import TrialCurve, replay_study  # noqa: E402
from replay.engine.pruner_study import COMPLETE, FAIL, PRUNED  # noqa: E402

NAN = math.nan
C, P, F = COMPLETE, PRUNED, FAIL


def _trial(key: str, reports: list[tuple[float, int]], state: str | None = C) -> list[tuple]:
    """ask, report each (value, step), then tell (None: left running)."""
    ops: list[tuple] = [("ask", key)]
    ops += [("report", key, v, s) for v, s in reports]
    if state is not None:
        ops.append(("tell", key, state))
    return ops


def _asks(key: str, reports: list[tuple[float, int]]) -> list[tuple]:
    """ask, then after each report ask should_prune."""
    ops: list[tuple] = [("ask", key)]
    for v, s in reports:
        ops += [("report", key, v, s), ("prune?", key)]
    return ops


# Each row: (Optuna test it reproduces, pruner kind, kwargs, direction, script, answers).
ROWS = [
    (
        "test_median.py::test_median_pruner_with_one_trial",
        "median",
        {"n_startup_trials": 0, "n_warmup_steps": 0},
        "minimize",
        _asks("a", [(1, 1)]),
        [False],
    ),
    *[
        (
            "test_median.py::test_median_pruner_intermediate_values",
            "median",
            {"n_startup_trials": 0, "n_warmup_steps": 0},
            direction,
            _trial("a", [(1, 1)]) + _asks("b", [(v, 1)]),
            [True],
        )
        for direction, v in (("minimize", 2), ("maximize", 0.5))
    ],
    (
        "test_median.py::test_median_pruner_intermediate_values_nan",
        "median",
        {"n_startup_trials": 0, "n_warmup_steps": 0},
        "minimize",
        _asks("a", [(NAN, 1)])
        + [("tell", "a", C)]
        + _asks("b", [(NAN, 1)])
        + [("tell", "b", C)]
        + _asks("c", [(1, 1)]),
        [False, True, False],
    ),
    (
        "test_median.py::test_median_pruner_n_startup_trials",
        "median",
        {"n_startup_trials": 2, "n_warmup_steps": 0},
        "minimize",
        _trial("a", [(1, 0)]) + _asks("b", [(2, 0)]) + [("tell", "b", C)] + _asks("c", [(3, 0)]),
        [False, True],
    ),
    (
        "test_median.py::test_median_pruner_n_warmup_steps",
        "median",
        {"n_startup_trials": 0, "n_warmup_steps": 1},
        "minimize",
        _trial("a", [(1, 0), (1, 1)]) + _asks("b", [(2, 0), (2, 1)]),
        [False, True],
    ),
    (
        "test_median.py::test_median_pruner_n_min_trials",
        "median",
        {"n_startup_trials": 2, "n_warmup_steps": 0, "n_min_trials": 2},
        "minimize",
        _trial("a", [(4, 1), (2, 2)])
        + _trial("b", [(3, 1)])
        + [
            ("ask", "c"),
            ("report", "c", 4, 1),
            ("report", "c", 3, 2),
            ("prune?", "c"),
            ("tell", "c", C),
        ]
        + [("ask", "d"), ("report", "d", 4, 1), ("report", "d", 3, 2), ("prune?", "d")],
        [False, True],
    ),
    *[
        (
            "test_percentile.py::test_25_percentile_pruner_intermediate_values",
            "percentile",
            {"percentile": 25.0, "n_startup_trials": 0, "n_warmup_steps": 0},
            direction,
            [op for v in (1, 2, 3, 4, 5) for op in _trial(f"t{v}", [(v, 1)])]
            + [("ask", "x"), ("prune?", "x"), ("report", "x", latest, 1), ("prune?", "x")],
            [False, True],
        )
        for direction, latest in (("minimize", 2.1), ("maximize", 3.9))
    ],
    (
        "test_percentile.py::test_25_percentile_pruner_intermediate_values_nan",
        "percentile",
        {"percentile": 25.0, "n_startup_trials": 0, "n_warmup_steps": 0},
        "minimize",
        _asks("a", [(NAN, 1)])
        + [("tell", "a", C)]
        + _asks("b", [(NAN, 1)])
        + [("tell", "b", C)]
        + _asks("c", [(1, 1)]),
        [False, True, False],
    ),
    *[
        (
            "test_successive_halving.py::test_successive_halving_pruner_intermediate_values",
            "successive_halving",
            {"min_resource": 1, "reduction_factor": 2, "min_early_stopping_rate": 0},
            direction,
            _asks("a", [(1, 1)])
            + [("ask", "b"), ("prune?", "b"), ("report", "b", v, 1), ("prune?", "b")],
            [False, False, True],
        )
        for direction, v in (("minimize", 2), ("maximize", 0.5))
    ],
    (
        "test_successive_halving.py::test_successive_halving_pruner_first_trial_is_not_pruned",
        "successive_halving",
        {"min_resource": 1, "reduction_factor": 2, "min_early_stopping_rate": 0},
        "minimize",
        _asks("a", [(1, i) for i in range(10)]),
        [False] * 10,
    ),
    (
        "test_successive_halving.py::test_successive_halving_pruner_with_nan",
        "successive_halving",
        {"min_resource": 2, "reduction_factor": 2, "min_early_stopping_rate": 0},
        "minimize",
        _asks("a", [(NAN, 1), (NAN, 2)]),
        [False, True],
    ),
    (
        "test_successive_halving.py::test_successive_halving_pruner_bootstrap_parameter",
        "successive_halving",
        {"min_resource": 1, "reduction_factor": 2, "bootstrap_count": 1},
        "minimize",
        [
            ("ask", "a"),
            ("ask", "b"),
            ("report", "a", 1, 1),
            ("prune?", "a"),
            ("report", "b", 1, 1),
            ("prune?", "b"),
        ],
        [True, False],
    ),
    (
        "test_successive_halving.py::test_successive_halving_pruner_rung_check (as decisions)",
        "successive_halving",
        {"min_resource": 1, "reduction_factor": 2, "min_early_stopping_rate": 0},
        "minimize",
        [op for i in range(7) for op in _asks(f"t{i}", [(0.1 * (i + 1), 7)])]
        + _asks("x", [(0.75, 7)])
        + _asks("y", [(0.25, 7)])
        + _asks("z", [(0.05, 7)]),
        # t0 is promoted alone; t1..t6 lose rung 0; x loses rung 0, y rung 1; z passes
        # rungs 0-2 and step 7 is below rung 3 (step 8): not pruned.
        [False, True, True, True, True, True, True, True, True, False],
    ),
    (
        "test_threshold.py::test_threshold_pruner_with_nan",
        "threshold",
        {"lower": 0.0, "upper": 1.0},
        "minimize",
        _asks("a", [(NAN, 1)]),
        [True],
    ),
    (
        "test_threshold.py::test_threshold_pruner_n_warmup_steps",
        "threshold",
        {"lower": 0.0, "upper": 1.0, "n_warmup_steps": 2},
        "minimize",
        _asks("a", [(-10.0, 0), (100.0, 1), (-100.0, 3), (1.0, 4), (1000.0, 5)]),
        [False, False, True, False, True],
    ),
    (
        "test_threshold.py::test_threshold_pruner_interval_steps",
        "threshold",
        {"lower": 0.0, "upper": 1.0, "interval_steps": 2},
        "minimize",
        _asks("a", [(-10.0, 0), (100.0, 1), (-100.0, 2), (10.0, 3), (1000.0, 4)]),
        [True, False, True, False, True],
    ),
    (
        "test_patient.py::test_patient_pruner_intermediate_values_nan",
        "patient",
        {"wrapped": None, "patience": 0, "min_delta": 0},
        "minimize",
        [("ask", "a"), ("prune?", "a")] + _asks("a", [(NAN, 0), (1.0, 1), (NAN, 2)])[1:],
        [False, False, False, False],
    ),
    *[
        (
            "test_patient.py::test_patient_pruner_intermediate_values",
            "patient",
            {"wrapped": None, "patience": patience, "min_delta": delta},
            direction,
            _asks("a", [(v, s) for s, v in enumerate(values)]),
            [s in expected for s in range(len(values))],
        )
        for patience, delta, direction, values, expected in [
            (0, 0, "maximize", [1, 0], [1]),
            (1, 0, "maximize", [2, 1, 0], [2]),
            (0, 0, "minimize", [0, 1], [1]),
            (1, 0, "minimize", [0, 1, 2], [2]),
            (0, 1.0, "maximize", [1, 0], []),
            (1, 1.0, "maximize", [3, 2, 1, 0], [3]),
            (0, 1.0, "minimize", [0, 1], []),
            (1, 1.0, "minimize", [0, 1, 2, 3], [3]),
        ]
    ],
    # Traps found reading the source (no Optuna test of their own).
    (
        "trap: pruned trials are no complete trials (median ignores them)",
        "median",
        {"n_startup_trials": 0},
        "minimize",
        _trial("a", [(5, 0)], P) + _asks("b", [(9, 0)]),
        [False],
    ),
    (
        "trap: the current trial's best so far is compared, not its value at this step",
        "median",
        {"n_startup_trials": 0},
        "minimize",
        _trial("a", [(1, 0), (1, 1)]) + _asks("b", [(0.5, 0), (7, 1)]),
        [False, False],
    ),
    (
        "trap: an infinite value at the percentile's end makes it NaN: no pruning",
        "percentile",
        {"percentile": 100.0, "n_startup_trials": 0},
        "minimize",
        _trial("a", [(math.inf, 0)]) + _asks("b", [(1e308, 0)]),
        [False],
    ),
    (
        "trap: a skipped interval step is checked at the next reported step",
        "median",
        {"n_startup_trials": 0, "n_warmup_steps": 0, "interval_steps": 3},
        "minimize",
        _trial("a", [(0, s) for s in range(8)]) + _asks("b", [(1, 0), (1, 1), (1, 4), (1, 5)]),
        [True, False, True, False],
    ),
]


@pytest.mark.parametrize(
    "cites,kind,kwargs,direction,script,expected", ROWS, ids=[r[0] for r in ROWS]
)
def test_optuna_cases(cites, kind, kwargs, direction, script, expected):
    """Each row is checked against real Optuna too, so a row cannot be wrong silently."""
    assert run_script_optuna(make_pruner(kind, kwargs, real=True), direction, script) == expected
    assert run_script_replay(make_pruner(kind, kwargs, real=False), direction, script) == expected


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("percentile", {"percentile": -0.1}),
        ("percentile", {"percentile": 100.1}),
        ("median", {"n_startup_trials": -1}),
        ("median", {"n_warmup_steps": -1}),
        ("median", {"interval_steps": 0}),
        ("median", {"n_min_trials": 0}),
        ("successive_halving", {"min_resource": 0}),
        ("successive_halving", {"min_resource": "fast"}),
        ("successive_halving", {"reduction_factor": 1}),
        ("successive_halving", {"min_early_stopping_rate": -1}),
        ("successive_halving", {"bootstrap_count": -1}),
        ("successive_halving", {"bootstrap_count": 1, "min_resource": "auto"}),
        ("hyperband", {"max_resource": "big"}),
        ("hyperband", {"bootstrap_count": 1, "max_resource": "auto"}),
        ("threshold", {"lower": 2.0, "upper": 1.0}),
        ("threshold", {"lower": 0.0, "n_warmup_steps": -1}),
        ("threshold", {"lower": 0.0, "interval_steps": 0}),
        ("patient", {"wrapped": None, "patience": -1}),
        ("patient", {"wrapped": None, "patience": 0, "min_delta": -1.0}),
    ],
)
def test_bad_arguments_refused_as_optuna_refuses_them(kind, kwargs):
    with pytest.raises(ValueError) as real:
        make_pruner(kind, kwargs, real=True)
    with pytest.raises(ValueError) as ours:
        make_pruner(kind, kwargs, real=False)
    assert str(ours.value) == str(real.value)


def test_threshold_needs_a_bound():
    with pytest.raises(TypeError, match="Either lower or upper"):
        rp.ThresholdPruner()


N_STUDIES = int(os.environ.get("REPLAY_PRUNER_STUDIES", "120"))


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(4))
def test_differential_generated_studies(chunk):
    """Generated studies (1 to 50 trials, ties, NaN, +-inf, missing steps, failed and
    pruned trials, both directions), each pruner under a random setting per study: every
    prune point (trial, step) equals real Optuna's."""
    rng = random.Random(1900 + chunk)
    decisions = 0
    for i in range(N_STUDIES // 4):
        study = random_study(rng)
        for kind in PRUNERS:
            kwargs = random_setting(rng, kind, study["direction"])
            args = (study["curves"], study["direction"], study["study_name"])
            real = optuna_prune_points(
                args[0], make_pruner(kind, kwargs, real=True), args[1], args[2]
            )
            ours = replay_study(args[0], make_pruner(kind, kwargs, real=False), args[1], args[2])
            assert ours == real, (chunk, i, kind, kwargs, study["direction"])
            decisions += len(real)
    assert decisions > 0  # the generated studies do prune


GRIDS = {
    "median": {
        "n_startup_trials": [0, 1, 3],
        "n_warmup_steps": [0, 2],
        "interval_steps": [1, 2],
        "n_min_trials": [1, 3],
    },
    "percentile": {"percentile": [0.0, 25.0, 50.0, 90.0, 100.0], "n_startup_trials": [0, 2]},
    "successive_halving": {
        "min_resource": ["auto", 1, 2],
        "reduction_factor": [2, 3],
        "min_early_stopping_rate": [0, 1],
    },
    "hyperband": {
        "min_resource": [1, 2],
        "max_resource": ["auto", 9, 16],
        "reduction_factor": [2, 3],
    },
    "threshold": {"upper": [1.0, 2.0], "n_warmup_steps": [0, 2], "interval_steps": [1, 2]},
    "patient": {
        "wrapped": [None, ("median", {"n_startup_trials": 1})],
        "patience": [0, 1, 3],
        "min_delta": [0.0, 0.2],
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(GRIDS))
def test_differential_parameter_grid(kind):
    """A whole grid of each pruner's parameters over the same three studies."""
    rng = random.Random(77)
    studies = [random_study(rng, max_trials=30, max_steps=12) for _ in range(3)]
    grid = GRIDS[kind]
    for values in itertools.product(*grid.values()):
        kwargs = dict(zip(grid, values, strict=True))
        if kwargs.get("min_resource") == "auto" and kwargs.get("bootstrap_count"):
            continue
        for study in studies:
            args = (study["curves"], study["direction"], study["study_name"])
            real = optuna_prune_points(
                args[0], make_pruner(kind, kwargs, real=True), args[1], args[2]
            )
            ours = replay_study(args[0], make_pruner(kind, kwargs, real=False), args[1], args[2])
            assert ours == real, (kind, kwargs)


def test_replay_study_orders_and_states():
    """A trial not pruned ends as recorded; a recorded-pruned one ends pruned (what the
    record holds), and is no complete trial for those after it."""
    curves = [
        TrialCurve(0, (0, 1), (1.0, 1.0), PRUNED),
        TrialCurve(1, (0, 1), (5.0, 5.0), COMPLETE),
        TrialCurve(2, (0, 1), (9.0, 9.0), COMPLETE),
    ]
    # Trial 0 ended pruned: trial 1 is the first complete one, so trial 2 is judged
    # against trial 1 alone.
    assert replay_study(curves, rp.MedianPruner(n_startup_trials=0)) == {2: 0}
    assert replay_study(curves, rp.MedianPruner(n_startup_trials=2)) == {}
