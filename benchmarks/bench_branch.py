"""Epochs the branch tree trains against re-training every setting, and planning time.

Planning only, no training (``replay.engine.branch_plan.plan_root`` on a recorded curve):

- the demo's LR grid (``--patience 3..10``, factors 0.1/0.2/0.5: 24 settings) and a
  combined grid of 8 EarlyStopping x 24 ReduceLROnPlateau settings (192), on
  ``sample_logs/mnist-mlp`` (or the run given as the first argument);
- each grid's first-level branches, the bounds on the epochs the tree trains (sub-branches
  are found while training, within the upper bound; combined branches end as soon as
  every EarlyStopping riding on them has stopped, which only training tells: for them
  the upper bound assumes none stops early), the exactness checks (one epoch per fork
  epoch, more with sub-branches), against re-training every setting from scratch for the
  run's epochs;
- the same under ``--max-epochs``: how many settings the cap reaches when branches are
  trained in ``replay branch``'s order (most settings first), each charged its upper bound;
- the wall time of planning a 1,000-setting grid (LR alone, and combined), and of
  ``replay branch --dry-run`` end to end. Target: under a second.

    .venv/bin/python benchmarks/bench_branch.py [RUN]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from replay.engine.branch_plan import COMBINED, RootPlan, plan_root, settings_for  # noqa: E402
from replay.recording.run_writer import read_rows  # noqa: E402
from replay.sweeping.sweep import Grid  # noqa: E402

LR_GRID = {"policies": ("reduce_lr_on_plateau",), "patience": tuple(range(3, 11))}
COMBINED_GRID = {
    "policies": (COMBINED,),
    "patience": tuple(range(3, 11)),  # 8 EarlyStopping settings, and --lr-patience 3..10
    "min_delta": (0.0,),
    "lr_min_delta": (1e-4,),
    "restore_best_weights": (False,),  # restoring changes no epoch trained
}


def plan_for(curves: dict, horizon: int, initial_lr: float, **grid) -> RootPlan:
    g = Grid.from_options(Grid(), **grid)
    return plan_root(settings_for(g, ["val_loss"]), curves, initial_lr=initial_lr,
                     horizon=horizon)  # fmt: skip


def capped(plan: RootPlan, cap: int) -> tuple[int, int]:
    """(settings reached, epochs spent) under ``--max-epochs cap``, each first-level branch
    charged its upper bound (to the run's end) plus its fork check if new."""
    order = sorted(plan.groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    spent, reached, checked = 0, plan.on_run, set()
    for (fork, _), members in order:
        cost = plan.horizon - fork + (fork not in checked)
        if spent + cost > cap:
            break
        spent += cost
        checked.add(fork)
        reached += len(members)
    return reached, spent


def report(name: str, plan: RootPlan) -> None:
    n = len(plan.settings)
    bound = (f"{plan.epochs_high}" if plan.epochs_low == plan.epochs_high
             else f"{plan.epochs_low}..{plan.epochs_high}")  # fmt: skip
    print(
        f"{name}: {n} settings, {plan.on_run} answered by the recorded run, "
        f"{len(plan.groups)} first-level branches (forks at epochs {list(plan.forks)})"
    )
    print(
        f"  tree: {bound} epochs + {plan.checks} exactness checks; from scratch: "
        f"{plan.naive} epochs; tree / scratch <= {plan.epochs_high / plan.naive:.1%} "
        f"({(plan.epochs_high + plan.checks) / plan.naive:.1%} with the checks)"
    )
    for cap in (50, 100, 200):
        reached, spent = capped(plan, cap)
        print(
            f"  --max-epochs {cap}: at least {reached}/{n} settings exact ({spent} epochs charged)"
        )


def timed(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "sample_logs" / "mnist-mlp"
    rows = read_rows(run / "metrics.csv")
    curves = {c: [r[c] for r in rows] for c in rows[0]}
    horizon, initial = len(rows), rows[0]["learning_rate"]
    print(f"run: {run} ({horizon} epochs)\n")
    report("LR grid (--patience 3..10, factors 0.1/0.2/0.5)",
           plan_for(curves, horizon, initial, **LR_GRID))  # fmt: skip
    report("combined grid (8 EarlyStopping x 24 ReduceLROnPlateau)",
           plan_for(curves, horizon, initial, **COMBINED_GRID))  # fmt: skip

    print("\nplanning wall time (median of 7):")
    lr_1000 = {"policies": ("reduce_lr_on_plateau",), "patience": tuple(range(20)),
               "factor": tuple(f / 100 for f in range(1, 51))}  # fmt: skip
    combined_1000 = {
        **COMBINED_GRID,
        "patience": tuple(range(10)),
        "lr_patience": tuple(range(20)),
        "factor": (0.1, 0.2, 0.3, 0.5, 0.7),
    }
    for name, grid in (("1,000 LR settings", lr_1000), ("1,000 combined settings", combined_1000)):
        plan = plan_for(curves, horizon, initial, **grid)
        assert len(plan.settings) == 1000, len(plan.settings)
        seconds = timed(lambda grid=grid: plan_for(curves, horizon, initial, **grid))
        print(f"  {name}: {seconds * 1000:.1f} ms ({len(plan.groups)} first-level branches)")
    cmd = [  # this checkout's code, whichever interpreter runs the script
        sys.executable,
        "-m",
        "replay",
        "branch",
        str(run),
        "--patience",
        "0..19",
        "--factor",
        ",".join(f"{f / 100:g}" for f in range(1, 51)),
        "--dry-run",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seconds = timed(lambda: subprocess.run(cmd, check=True, capture_output=True, env=env),
                    repeat=3)  # fmt: skip
    start = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat=3)
    print(f"  `replay branch --dry-run` of the 1,000 LR settings, end to end: {seconds:.2f} s "
          f"({seconds / start:.1f}x `python -c pass`, {start:.3f} s here)")  # fmt: skip
    lr_ms = timed(lambda: plan_for(curves, horizon, initial, **lr_1000)) * 1000
    print(f"  planning 1,000 LR settings takes {lr_ms / (start * 1000):.2f}x `python -c pass`")


if __name__ == "__main__":
    main()
