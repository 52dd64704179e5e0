"""Real Optuna beside :mod:`replay.engine.pruners`: the same scripts and studies run through both.

Used by tests/test_pruners_optuna.py and benchmarks/bench_pruners.py. Optuna is imported
inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence
from typing import Any

from replay.engine import pruners as rp
from replay.engine.pruner_replay import TrialCurve
from replay.engine.pruner_study import COMPLETE, FAIL, MAXIMIZE, MINIMIZE, PRUNED, Study, Trial

#: Pruner name -> (Optuna class name, replay class).
PRUNERS = {
    "median": ("MedianPruner", rp.MedianPruner),
    "percentile": ("PercentilePruner", rp.PercentilePruner),
    "successive_halving": ("SuccessiveHalvingPruner", rp.SuccessiveHalvingPruner),
    "hyperband": ("HyperbandPruner", rp.HyperbandPruner),
    "threshold": ("ThresholdPruner", rp.ThresholdPruner),
    "patient": ("PatientPruner", rp.PatientPruner),
}


def quiet_optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*All-NaN slice encountered.*")
    warnings.filterwarnings("ignore", message=".*invalid value encountered.*")
    return optuna


def make_pruner(kind: str, kwargs: dict, *, real: bool) -> Any:
    """A pruner of ``kind`` with ``kwargs``: Optuna's (``real``) or the replay's.

    Patient's ``wrapped`` kwarg is ``None`` or ``(kind, kwargs)`` of the wrapped pruner.
    """
    kwargs = dict(kwargs)
    if kind == "patient" and kwargs.get("wrapped") is not None:
        inner_kind, inner = kwargs["wrapped"]
        kwargs["wrapped"] = make_pruner(inner_kind, inner, real=real)
    if kind == "patient":
        kwargs["wrapped_pruner"] = kwargs.pop("wrapped", None)
    name, cls = PRUNERS[kind]
    if real:
        optuna = quiet_optuna()
        cls = getattr(optuna.pruners, name)
    return cls(**kwargs)


# --------------------------------------------------------------------------- scripts


def run_script_replay(pruner: Any, direction: str, script: Sequence[tuple]) -> list[bool]:
    """Run a script (``ask``/``report``/``prune?``/``tell`` operations) on
    :mod:`replay.engine.pruners`; return the answer of every ``prune?``."""
    study = Study(direction, "script")
    trials: dict[str, Trial] = {}
    answers = []
    for op in script:
        if op[0] == "ask":
            trials[op[1]] = study.add(Trial(len(study.trials)))
        elif op[0] == "report":
            _, key, value, step = op
            trials[key].report(step, value)
        elif op[0] == "prune?":
            answers.append(pruner.prune(study, trials[op[1]]))
        elif op[0] == "tell":
            study.finish(trials[op[1]], op[2])
    return answers


def run_script_optuna(pruner: Any, direction: str, script: Sequence[tuple]) -> list[bool]:
    """The same script through real Optuna (``study.ask`` / ``trial.report`` /
    ``trial.should_prune`` / ``study.tell``)."""
    optuna = quiet_optuna()
    study = optuna.create_study(direction=direction, pruner=pruner, study_name="script")
    trials: dict[str, Any] = {}
    last: dict[str, float] = {}
    answers = []
    for op in script:
        if op[0] == "ask":
            trials[op[1]] = study.ask()
        elif op[0] == "report":
            _, key, value, step = op
            trials[key].report(value, step)
            last[key] = value
        elif op[0] == "prune?":
            answers.append(trials[op[1]].should_prune())
        elif op[0] == "tell":
            state = {
                COMPLETE: optuna.trial.TrialState.COMPLETE,
                PRUNED: optuna.trial.TrialState.PRUNED,
                FAIL: optuna.trial.TrialState.FAIL,
            }[op[2]]
            value = last.get(op[1], 0.0) if op[2] == COMPLETE else None
            if value is not None and math.isnan(value):
                value = 0.0  # a complete trial's final value cannot be NaN
            study.tell(trials[op[1]], value, state=state)
    return answers


# --------------------------------------------------------------------------- studies


class _Failed(Exception):
    pass


def optuna_prune_points(
    curves: Sequence[TrialCurve], pruner: Any, direction: str, study_name: str
) -> dict[int, int]:
    """Run ``curves`` as a study through real Optuna: the objective reports each recorded
    value and asks ``should_prune``; return ``{trial number: step it was pruned at}``."""
    optuna = quiet_optuna()
    study = optuna.create_study(direction=direction, pruner=pruner, study_name=study_name)
    pruned: dict[int, int] = {}
    by_number = {c.number: c for c in curves}

    def objective(trial: Any) -> float:
        curve = by_number[trial.number]
        for step, value in zip(curve.steps, curve.values, strict=True):
            trial.report(value, step)
            if trial.should_prune():
                pruned[trial.number] = step
                raise optuna.TrialPruned()
        if curve.state == FAIL:
            raise _Failed()
        if curve.state != COMPLETE:
            raise optuna.TrialPruned()
        return 0.0

    study.optimize(objective, n_trials=len(curves), catch=(_Failed,))
    return pruned


def random_study(rng: random.Random, max_trials: int = 50, max_steps: int = 14) -> dict:
    """A generated study: trials with random curve shapes and lengths, ties, NaN and
    infinities, missing steps, some failed or pruned in the record; a direction and a
    study name (Hyperband's brackets hash it)."""
    n_trials = rng.randint(1, max_trials)
    direction = rng.choice([MINIMIZE, MAXIMIZE])
    kind = rng.choice(["smooth", "ties", "noisy"])
    p_nan = rng.choice([0.0, 0.0, 0.05, 0.3])
    p_gap = rng.choice([0.0, 0.0, 0.2])
    start = rng.choice([0, 0, 1])
    curves = []
    for number in range(n_trials):
        length = rng.randint(1, max_steps)
        steps, values = [], []
        step = start
        level = rng.uniform(0.2, 2.0)
        slope = rng.uniform(-0.2, 0.05)
        for i in range(length):
            if kind == "ties":
                v = float(rng.randint(0, 3))
            elif kind == "smooth":
                v = level + slope * i
            else:
                v = rng.gauss(level, 0.5)
            r = rng.random()
            if r < p_nan:
                v = math.nan
            elif r < p_nan + 0.01:
                v = rng.choice([math.inf, -math.inf])
            steps.append(step)
            values.append(v)
            step += 1 + (rng.randint(1, 3) if rng.random() < p_gap else 0)
        state = rng.choices([COMPLETE, FAIL, PRUNED], [0.8, 0.1, 0.1])[0]
        curves.append(TrialCurve(number, tuple(steps), tuple(values), state))
    return {
        "curves": curves,
        "direction": direction,
        "study_name": f"study-{rng.randint(0, 10**6)}",
    }


def random_setting(rng: random.Random, kind: str, direction: str) -> dict:
    """Random Optuna keyword arguments for a pruner of ``kind`` (small values, where
    the decisions change)."""
    if kind in ("median", "percentile"):
        kw = {
            "n_startup_trials": rng.choice([0, 1, 2, 5]),
            "n_warmup_steps": rng.choice([0, 0, 1, 3]),
            "interval_steps": rng.choice([1, 1, 2, 3]),
            "n_min_trials": rng.choice([1, 1, 2, 4]),
        }
        if kind == "percentile":
            kw["percentile"] = rng.choice([0.0, 10.0, 25.0, 33.3, 50.0, 75.0, 90, 100.0])
        return kw
    if kind == "successive_halving":
        auto = rng.random() < 0.3
        return {
            "min_resource": "auto" if auto else rng.choice([1, 2, 3]),
            "reduction_factor": rng.choice([2, 3, 4]),
            "min_early_stopping_rate": rng.choice([0, 0, 1]),
            "bootstrap_count": 0 if auto else rng.choice([0, 0, 1, 3]),
        }
    if kind == "hyperband":
        auto = rng.random() < 0.4
        return {
            "min_resource": rng.choice([1, 1, 2]),
            "max_resource": "auto" if auto else rng.choice([4, 9, 12, 27]),
            "reduction_factor": rng.choice([2, 3, 4]),
            "bootstrap_count": 0 if auto else rng.choice([0, 0, 2]),
        }
    if kind == "threshold":
        lower = rng.choice([None, 0.5, 1.0])
        upper = rng.choice([None, 1.5, 2.5]) if lower is not None else rng.choice([1.0, 2.0])
        return {
            "lower": lower,
            "upper": upper,
            "n_warmup_steps": rng.choice([0, 1, 3]),
            "interval_steps": rng.choice([1, 2, 3]),
        }
    wrapped_kind = rng.choice([None, "median", "successive_halving", "hyperband", "threshold"])
    wrapped = (
        None
        if wrapped_kind is None
        else (wrapped_kind, random_setting(rng, wrapped_kind, direction))
    )
    return {
        "wrapped": wrapped,
        "patience": rng.choice([0, 1, 2, 4]),
        "min_delta": rng.choice([0.0, 0.0, 0.1, 1.0]),
    }


def small_study(url: str, name: str = "hp", n_trials: int = 10, steps: int = 6) -> Any:
    """A small real Optuna study at storage ``url``: trials over ``x`` (float) and
    ``width`` (int), ``steps`` values reported each (a dip at step 3, so that
    EarlyStopping stops some), the median pruner (2 startup trials, 1 warm-up step)
    pruning some of them. Returns the study."""
    optuna = quiet_optuna()

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        width = trial.suggest_int("width", 8, 64)
        v = 0.0
        for step in range(steps):
            v = x + 1.0 / (step + 1) + width / 1000 + (0.2 if step == 3 else 0.0)
            trial.report(v, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return v

    study = optuna.create_study(
        storage=url, study_name=name, sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )  # fmt: skip
    study.optimize(objective, n_trials=n_trials)
    return study
