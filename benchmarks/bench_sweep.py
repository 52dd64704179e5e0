"""Sweep engine against the real keras.callbacks objects, and `replay sweep` end to end.

Prints settings per second for both (same curves, same settings, alternating, in
one process), their ratio, the time of a 10,000-setting grid over a 100-epoch
curve, and the wall time of `replay sweep sample_logs/mnist-mlp --patience 3..10`
with charts. Targets: ratio >= 1000, 10k grid well under 1 s, end to end <= 2 s.

    .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

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

from replay.sweep import Grid, RunFacts, sweep  # noqa: E402


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


def main() -> None:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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

    sample = ROOT / "sample_logs" / "mnist-mlp"
    if sample.exists():
        replay = Path(sys.executable).with_name("replay")
        walls = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                subprocess.run(
                    [str(replay), "sweep", str(sample), "--patience", "3..10", "--out",
                     str(Path(tmp) / "o")],
                    check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                walls.append(time.perf_counter() - start)
        print(f"replay sweep sample_logs/mnist-mlp --patience 3..10 (charts): "
              f"{min(walls):.2f} s best of 3 (target <= 2 s)")  # fmt: skip
    else:
        print("sample_logs/mnist-mlp not found: end-to-end timing skipped")


if __name__ == "__main__":
    main()
