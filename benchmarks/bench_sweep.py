"""The sweep engine against the real keras.callbacks objects, and `replay sweep` end to end.

Prints settings per second for both (same curves, same settings, alternating, in
one process), their ratio, the time of a 10,000-setting grid over a 100-epoch
curve, then `replay sweep sample_logs/mnist-mlp --policy early_stopping ... --format csv
--no-charts` end to end for 10^4 to 10^7 settings: each in a fresh process, its stdout
to /dev/null, wall time and peak memory (the process's maximum resident set, from
wait4), next to the engine alone on the same grid (`sweep()` in this process, records
kept as the sweep keeps them, nothing written). Last, the wall time of `replay sweep
sample_logs/mnist-mlp --patience 3..10` with its charts.

Targets: ratio >= 1000; 10k grid well under 1 s; end to end >= 200,000 settings/s and
under 1 GB at 10^6 settings; 10^7 completes (or is refused up front); the sample sweep
with charts <= 2 s.

    .venv/bin/python benchmarks/bench_sweep.py                 # everything
    .venv/bin/python benchmarks/bench_sweep.py --end-to-end    # without Keras
    .venv/bin/python benchmarks/bench_sweep.py --end-to-end --tree DIR --up-to 1000000
                                        # another checkout (an older one: 10^7 would not fit)
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from replay.sweeping.sweep import Grid, RunFacts, sweep  # noqa: E402

SAMPLE = ROOT / "sample_logs" / "mnist-mlp"
# (settings, grid options): EarlyStopping over the sample's 30 epochs, restore both ways.
GRIDS = [
    (10**4, ["--patience", "0..99", "--min-delta", "0..0.0049:0.0001"]),
    (10**5, ["--patience", "0..999", "--min-delta", "0..0.0049:0.0001"]),
    (10**6, ["--patience", "0..999", "--min-delta", "0..0.0499:0.0001"]),
    (10**7, ["--patience", "0..999", "--min-delta", "0..0.4999:0.0001"]),
]


def curve(n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    e = np.arange(n)
    v = 0.3 * np.exp(-e / 4) + 0.07 + 0.002 * np.maximum(0, e - 8) + rng.normal(0, 0.004, n)
    return [float(x) for x in v]


def facts(values: list[float]) -> RunFacts:
    return RunFacts("bench", "bench", {"val_loss": values}, ["val_loss"], len(values))


def keras_settings_per_second(values, settings, seconds: float = 3.0) -> float:
    import keras

    class Model:
        stop_training = False

        def get_weights(self):
            return [0]

        def set_weights(self, w):
            pass

    done = 0
    start = time.perf_counter()
    for patience, min_delta, restore in itertools.cycle(settings):
        cb = keras.callbacks.EarlyStopping(
            patience=patience, min_delta=min_delta, restore_best_weights=restore
        )
        model = Model()
        cb.set_model(model)
        cb.on_train_begin()
        for epoch, v in enumerate(values):
            cb.on_epoch_end(epoch, {"val_loss": v})
            if model.stop_training:
                break
        cb.on_train_end()
        done += 1
        if time.perf_counter() - start > seconds:
            break
    return done / (time.perf_counter() - start)


def replay_settings_per_second(values, grid: Grid, seconds: float = 1.0) -> float:
    f = facts(values)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += len(sweep([f], grid).records)
    return n / (time.perf_counter() - start)


def engine_versus_keras() -> None:
    values = curve(100, 0)
    patience = tuple(range(0, 50))
    min_delta = tuple(float(x) for x in np.linspace(0, 0.01, 100))
    grid = Grid(policies=("early_stopping",), patience=patience, min_delta=min_delta,
                restore_best_weights=(False, True))  # fmt: skip
    settings = list(itertools.product(patience[:10], min_delta[:10], (False, True)))
    print(f"grid: {grid.size():,} EarlyStopping settings over a {len(values)}-epoch curve")
    ours, theirs = [], []
    for _ in range(3):  # alternate the two, three rounds each
        ours.append(replay_settings_per_second(values, grid))
        theirs.append(keras_settings_per_second(values, settings))
    o, t = float(np.median(ours)), float(np.median(theirs))
    print(f"replay engine:          {o:>12,.0f} settings/s")
    print(f"real keras.callbacks:   {t:>12,.0f} settings/s")
    print(f"ratio:                  {o / t:>12,.0f}x  (target >= 1,000x)")
    times = []
    for _ in range(5):
        start = time.perf_counter()
        sweep([facts(values)], grid)
        times.append(time.perf_counter() - start)
    print(f"10,000-setting grid:    {min(times):.3f} s best of 5 (target well under 1 s)")


def command(tree: Path) -> list[str]:
    """How to run `replay` from ``tree`` (this checkout: its console script)."""
    if tree == ROOT:
        return [str(Path(sys.executable).with_name("replay"))]
    return [sys.executable, "-m", "replay"]


# Forks the command from a small interpreter and reports its wall time, peak memory
# and exit status: a child forked from this process (with Keras loaded: 600 MB) would
# count this process's memory as its peak, since Linux keeps the high-water mark of the
# memory a process had before exec.
LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print("LAUNCHER", time.perf_counter() - start, usage.ru_maxrss * 1024,
      os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, file=sys.stderr)
"""


def run_fresh(
    args: list[str], tree: Path, program: list[str] | None = None
) -> tuple[float, int, int]:
    """(wall seconds, peak resident bytes, exit status) of ``replay ARGS`` (or of
    ``program``) in a fresh process run in ``tree``, stdout to /dev/null."""
    program = command(tree) if program is None else program
    with open(os.devnull, "wb") as sink:
        done = subprocess.run([sys.executable, "-c", LAUNCHER, *program, *args], cwd=tree,
                              env={**os.environ, "PYTHONPATH": str(tree)},  # this tree's code
                              stdout=sink, stderr=subprocess.PIPE, text=True)  # fmt: skip
    report = [ln for ln in done.stderr.splitlines() if ln.startswith("LAUNCHER ")][-1]
    wall, peak, status, cpu = report.split()[1:]
    CPU_SECONDS[tuple(args)] = float(cpu)
    return float(wall), int(peak), int(status)


CPU_SECONDS: dict[tuple[str, ...], float] = {}
"""CPU seconds (user + system) of the last :func:`run_fresh` of each argument list: on a
shared machine they vary less than the wall time."""


def engine_seconds(options: list[str]) -> float:
    """`sweep()` alone on the sample for the grid of ``options``, best of 3 (1 if slow)."""
    from analysis.formats import load_run
    from replay.engine.grid import parse_values

    given = {}
    for flag, text in zip(options[::2], options[1::2], strict=True):
        name = flag.lstrip("-").replace("-", "_")
        given[name] = tuple(parse_values(text, flag, integer=name == "patience"))
    grid = Grid.from_options(policies=("early_stopping",), **given)
    run = load_run(SAMPLE)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = sweep([run], grid)
        best = min(best, time.perf_counter() - start)
        del result
        if best > 2:
            break
    return best


def python_start(tree: Path) -> float:
    """CPU seconds of ``python -c pass`` in a fresh process, best of 5: the unit of the
    ratios printed beside the times, which hold better across machines than seconds."""
    best = float("inf")
    for _ in range(5):
        run_fresh([], tree, [sys.executable, "-c", "pass"])
        best = min(best, CPU_SECONDS[()])
    return best


def end_to_end(tree: Path, engine: bool, up_to: int) -> None:
    print(f"replay sweep {SAMPLE.relative_to(ROOT)} --policy early_stopping "
          "--restore-best-weights both GRID --format csv --no-charts > /dev/null"
          + ("" if tree == ROOT else f"   (in {tree})"))  # fmt: skip
    unit = python_start(tree)
    print(f"python -c pass: {unit:.3f} s of CPU (best of 5; 'x start': the command's CPU "
          "seconds / this)")  # fmt: skip
    head = (f"{'settings':>12}  {'wall':>8}  {'cpu':>8}  {'x start':>8}  {'settings/s':>11}  "
            f"{'peak memory':>11}")  # fmt: skip
    print(head + ("  engine alone (settings/s)" if engine else ""))
    for n, options in GRIDS:
        if n > up_to:
            continue
        args = ["sweep", str(SAMPLE), "--policy", "early_stopping", "--restore-best-weights",
                "both", *options, "--format", "csv", "--no-charts"]  # fmt: skip
        wall, peak, status = run_fresh(args, tree)
        line = (
            f"{n:>12,}  {wall:>7.2f}s  {CPU_SECONDS[tuple(args)]:>7.2f}s  "
            f"{CPU_SECONDS[tuple(args)] / unit:>7.1f}x  {n / wall:>11,.0f}  "
            f"{peak / 2**20:>8,.0f} MB"
            if status == 0
            else f"{n:>12,}  exit status {status} after {wall:.1f} s"
        )
        if engine and status == 0:
            t = engine_seconds(options)
            line += f"  {t:>6.3f}s = {n / t:>11,.0f}"
        print(line)
    print("targets: >= 200,000 settings/s and < 1 GB at 10^6; 10^7 completes or is refused")
    walls, cpus = [], []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            args = ["sweep", str(SAMPLE), "--patience", "3..10", "--out", str(Path(tmp) / "o")]
            walls.append(run_fresh(args, tree)[0])
            cpus.append(CPU_SECONDS[tuple(args)])
    print(f"replay sweep {SAMPLE.relative_to(ROOT)} --patience 3..10 (charts): "
          f"{min(walls):.2f} s best of 3, {min(cpus):.2f} s of CPU = {min(cpus) / unit:.1f}x "
          "python -c pass (target <= 2 s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end-to-end", action="store_true", help="skip the Keras comparison")
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="run `python -m replay` in this checkout instead")  # fmt: skip
    parser.add_argument("--up-to", type=int, default=10**7,
                        help="the largest grid to sweep end to end (default 10^7)")  # fmt: skip
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not args.end_to_end:
        engine_versus_keras()
    if SAMPLE.exists():
        end_to_end(args.tree.resolve(), args.tree.resolve() == ROOT, args.up_to)
    else:
        print("sample_logs/mnist-mlp not found: end-to-end timing skipped")


if __name__ == "__main__":
    main()
