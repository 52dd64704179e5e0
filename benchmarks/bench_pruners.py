"""Speed of the pruner replay: a generated study of 1,000 trials x 100 steps, 100 settings
of each pruner; settings per second, and the ratio against real Optuna replaying the same
study under the same settings (timed on a few settings spread over the grid, first to
last, as Optuna takes seconds per setting: the ratio is of the mean times per setting).
Every timed Optuna setting is also checked for equal decisions.

    PYTHONPATH=. python benchmarks/bench_pruners.py [--trials 1000] [--steps 100]
        [--settings 100] [--optuna-settings 3]
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from optuna_harness import make_pruner, optuna_prune_points  # noqa: E402

from replay.engine.pruner_replay import TrialCurve, prepare, replay_study  # noqa: E402
from replay.engine.pruner_study import COMPLETE, MINIMIZE  # noqa: E402


def study(n_trials: int, n_steps: int, seed: int = 0) -> list[TrialCurve]:
    """Learning curves: a level, a decay rate and noise per trial, all complete."""
    rng = random.Random(seed)
    curves = []
    for number in range(n_trials):
        level, rate = rng.uniform(0.2, 1.0), rng.uniform(0.01, 0.1)
        values = tuple(level * math.exp(-rate * s) + rng.gauss(0, 0.01) for s in range(n_steps))
        curves.append(TrialCurve(number, tuple(range(n_steps)), values, COMPLETE))
    return curves


def settings(kind: str, n: int) -> list[dict]:
    grids = {
        "median": [
            {"n_startup_trials": a, "n_warmup_steps": b, "interval_steps": c}
            for a, b, c in itertools.product(range(5), range(0, 50, 10), (1, 2, 5, 10))
        ],
        "percentile": [
            {"percentile": p, "n_startup_trials": a, "n_warmup_steps": b}
            for p, a, b in itertools.product((10.0, 25.0, 50.0, 75.0, 90.0), range(5), range(4))
        ],
        "successive_halving": [
            {"min_resource": m, "reduction_factor": r, "min_early_stopping_rate": e}
            for m, r, e in itertools.product((1, 2, 3, 5, "auto"), (2, 3, 4, 5), range(5))
        ],
        "hyperband": [
            {"min_resource": m, "max_resource": x, "reduction_factor": r}
            for m, x, r in itertools.product(
                (1, 2, 3, 4, 5), (50, 100, 200, 400, "auto"), (2, 3, 4, 5)
            )  # fmt: skip
        ],
        "threshold": [
            {"upper": u, "n_warmup_steps": w, "interval_steps": i}
            for u, w, i in itertools.product(
                (0.3, 0.5, 0.7, 0.9, 1.1), range(0, 40, 10), (1, 2, 3, 4, 5)
            )  # fmt: skip
        ],
        "patient": [
            {"wrapped": None, "patience": p, "min_delta": d}
            for p, d in itertools.product(range(20), (0.0, 0.001, 0.005, 0.01, 0.05))
        ],
    }
    return grids[kind][:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--settings", type=int, default=100)
    ap.add_argument("--optuna-settings", type=int, default=3)
    args = ap.parse_args()
    curves = prepare(study(args.trials, args.steps))
    print(f"study: {args.trials} trials x {args.steps} steps; {args.settings} settings each")
    print(f"{'pruner':20s} {'replay s':>9s} {'settings/s':>11s} {'optuna s/setting':>17s} "
          f"{'ratio':>8s}")  # fmt: skip
    for kind in ("median", "percentile", "successive_halving", "hyperband", "threshold",
                 "patient"):  # fmt: skip
        grid = settings(kind, args.settings)
        t0 = time.perf_counter()
        ours = [replay(curves, kind, kw) for kw in grid]
        took = time.perf_counter() - t0
        per_ours = took / len(grid)
        optuna_times = []
        k = max(1, args.optuna_settings)
        spread = [grid[round(i * (len(grid) - 1) / max(1, k - 1))] for i in range(k)]
        for kw in spread:
            t0 = time.perf_counter()
            real = optuna_prune_points(curves, make_pruner(kind, kw, real=True), "minimize",
                                       "bench")  # fmt: skip
            optuna_times.append(time.perf_counter() - t0)
            assert real == ours[grid.index(kw)], (kind, kw)
        per_optuna = sum(optuna_times) / len(optuna_times) if optuna_times else math.nan
        print(f"{kind:20s} {took:9.2f} {len(grid) / took:11.1f} {per_optuna:17.2f} "
              f"{per_optuna / per_ours:7.0f}x")  # fmt: skip


def replay(curves, kind, kw):
    return replay_study(curves, make_pruner(kind, kw, real=False), MINIMIZE, "bench")


if __name__ == "__main__":
    main()
