"""Overhead of ``replay record`` and of ``replay.keras.RecordCallback`` over a plain
``model.fit``, side by side.

All sides train the same model on the same data for the same epochs with the same
validation set, each trial in a fresh Python process (TensorFlow's determinism
switch is process-wide), alternating plain / record / callback. Timing starts after
TensorFlow is imported and the data is loaded; it covers model build + training.

- plain: ``model.fit(x, y, epochs, batch_size, validation_data=..., shuffle=True)``,
  Keras defaults (no op determinism, so Keras may pick XLA: ``jit_compile="auto"``).
  ``--deterministic`` (alias ``--plain-deterministic``) enables TensorFlow's op
  determinism in every side that calls ``model.fit`` (plain, plain+eval, callback*,
  keras: the same kernels on both sides of each ratio), as a user recording a run to
  branch does: ``RecordCallback`` itself never switches it on. ``replay record`` always
  runs with it.
- record: :func:`replay.mnist.record.record` with ``quiet=True``: per-epoch fit calls over
  the epochs' fixed permutations (op determinism on), test-set evaluation, TensorBoard
  scalars + histograms, a fsynced checkpoint, metrics row and run.json per epoch, shadow
  callbacks (the commit is ``replay.keras``'s callback, as in callback).
- callback: plain's fit (same seeding, ``shuffle=True``) with
  ``RecordCallback(out, test_data=(x_test, y_test))``: everything record writes, for a
  user's own fit.
- callback-notest: plain's fit with ``RecordCallback(out)`` (no test_data), against plain.
- plain+eval: plain's fit with the test set evaluated after every epoch by hand (a tiny
  callback), what callback's test columns cost without recording: callback's baseline.
- callback-nohist: callback with ``histograms=False``.
- keras: plain's fit with what a user would run to log as much with Keras alone: the
  test set evaluated after every epoch, ``CSVLogger``, ``TensorBoard(histogram_freq=1)``
  and ``ModelCheckpoint`` of every epoch (callback's cost against doing it by hand).

Each trial also reports the CPU seconds (user + system) of its process over the timed
part, and each epoch's wall seconds. Each ratio is printed with a bootstrap 90% interval
(the trials resampled), and again for the lower quartile of the epochs after each trial's
first: on a machine whose speed varies from epoch to epoch, how uncertain the ratio is.
``--cpus 0`` runs every trial on one core: the background committer then competes with
training for all of it (the least favourable case for it), and on a 2-core VM whose
second core comes and goes the bare fit's trials are far steadier. (A fit that evaluates
inside a callback on one core had epochs of either 5.5 or 10 s there: no steadier.)

    .venv/bin/python benchmarks/bench_record.py --epochs 3 --repeats 3
    .venv/bin/python benchmarks/bench_record.py --epochs 5 --repeats 8 --cpus 0 \
        --modes plain,callback-notest
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


MODES = ("plain", "plain+eval", "callback", "callback-notest", "callback-nohist", "record",
         "keras")  # fmt: skip


def _keras_callbacks(keras, out: Path, test: tuple, batch_size: int) -> list:
    """What a user would run to log as much with Keras alone: the held-out test set
    evaluated after every epoch into the logs, CSVLogger, TensorBoard with histograms,
    and a ModelCheckpoint of every epoch."""

    class TestMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            scores = self.model.evaluate(*test, batch_size=batch_size, verbose=0,
                                         return_dict=True)  # fmt: skip
            logs.update({f"test_{k}": v for k, v in scores.items()})

    out.mkdir(parents=True)
    return [
        TestMetrics(),
        keras.callbacks.CSVLogger(str(out / "metrics.csv")),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), histogram_freq=1),
        keras.callbacks.ModelCheckpoint(str(out / "epoch-{epoch:03d}.keras")),
    ]


def _trial(mode: str, epochs: int, limit: int | None, batch_size: int, deterministic: bool) -> dict:
    """Run one timed trial in this process and return its figures."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401 - imported before the clock starts
    import numpy as np
    import tensorflow as tf

    from replay.mnist.config import RecordConfig
    from replay.mnist.data import load_mnist
    from replay.mnist.record import build_model, record, seed_everything

    data = load_mnist().limited(limit)
    config = RecordConfig(epochs=epochs, batch_size=batch_size, limit=limit)
    if mode != "record":
        tmp = tempfile.TemporaryDirectory()
        callbacks = []
        test = (data.x_test, data.y_test)
        out = Path(tmp.name) / "run"
        if mode.startswith("callback"):
            from replay.keras import RecordCallback

            commit_costs = _time_commits()

            callbacks.append(
                RecordCallback(
                    out,
                    None if mode == "callback-notest" else test,
                    test_batch_size=batch_size,
                    histograms=mode != "callback-nohist",
                )
            )
        if mode == "plain+eval":

            class TestMetrics(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    self.model.evaluate(*test, batch_size=batch_size, verbose=0)

            callbacks.append(TestMetrics())
        if mode == "keras":
            test = (data.x_test, data.y_test)
            callbacks = _keras_callbacks(keras, Path(tmp.name) / "run", test, batch_size)
        epoch_times: list[float] = []
        callbacks.append(_EpochTimer(keras, epoch_times))  # last: after every commit
        began, cpu = time.perf_counter(), _cpu()
        if deterministic:
            seed_everything(0)
        else:
            keras.utils.set_random_seed(0)
        model = build_model(config)
        model.fit(
            data.x_train,
            data.y_train,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=(data.x_val, data.y_val),
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        seconds, cpu = time.perf_counter() - began, _cpu() - cpu
        tmp.cleanup()
        params = sum(
            int(np.prod(w.shape)) * w.dtype.itemsize for w in (v.numpy() for v in model.weights)
        )
        optimizer = sum(
            int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.optimizer.variables
        )
        return {
            "mode": mode,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "epoch_seconds": epoch_times,
            **(commit_costs if mode.startswith("callback") else {}),
            "param_bytes": params,
            "optimizer_bytes": optimizer,
            "jit_compile": bool(model.jit_compile),
            "tf": tf.__version__,
        }
    with tempfile.TemporaryDirectory() as tmp:
        began, cpu = time.perf_counter(), _cpu()
        manifest = record(Path(tmp) / "run", config, quiet=True, echo=lambda line: None)
        seconds, cpu = time.perf_counter() - began, _cpu() - cpu
        entries = manifest["epochs"]
    return {
        "mode": mode,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "checkpoint_bytes": [e["bytes"] for e in entries],
        "epoch_seconds": [e["seconds"] for e in entries],
    }


def _EpochTimer(keras, times: list[float]):  # noqa: N802 - a class made on demand
    """A callback appending each epoch's wall seconds (begin to end, after the callbacks
    before it) to ``times``."""

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.began)

    return EpochTimer()


def _time_commits() -> dict[str, float]:
    """Instrument this process's run writer: the seconds (wall and thread CPU) of each
    epoch's commit on the training thread, and the thread CPU seconds of the background
    committer's work; filled in while the trial runs."""
    from replay.recording import run_writer

    costs = {"commit_wall": 0.0, "commit_cpu": 0.0, "background_cpu": 0.0, "drain_wall": 0.0}
    commit, files, drain = (run_writer.RunWriter.commit, run_writer.RunWriter._commit_files,
                            run_writer.RunWriter.drain)  # fmt: skip

    def timed(fn, *keys):
        def run(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                for key in keys:
                    took = time.thread_time() - cpu if "cpu" in key else time.perf_counter() - wall
                    costs[key] += took

        return run

    run_writer.RunWriter.commit = timed(commit, "commit_wall", "commit_cpu")
    run_writer.RunWriter._commit_files = timed(files, "background_cpu")
    run_writer.RunWriter.drain = timed(drain, "drain_wall")
    return costs


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its threads so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _total(trials: list[dict]) -> float:
    """The median of the trials' wall seconds (the fit, start to end)."""
    return statistics.median(t["seconds"] for t in trials)


def _fast_epoch(trials: list[dict]) -> float:
    """The lower quartile of the wall seconds of every epoch after each trial's first
    (which compiles): the side's speed when the machine is not slowing it down. On a
    machine whose speed varies from one epoch to the next (a shared host), this is
    steadier than the totals, and it counts a fixed per-epoch cost at least as heavily."""
    times = sorted(x for t in trials for x in t["epoch_seconds"][1:])
    return statistics.quantiles(times, n=4)[0] if len(times) > 1 else times[0]


def _interval(a: list[dict], b: list[dict], stat=_total, rounds: int = 2000) -> tuple[float, float]:
    """A bootstrap 90% interval of ``stat(a) / stat(b)``, each side's trials resampled:
    how far the machine's noise leaves the ratio uncertain."""
    import random

    draw = random.Random(0)
    ratios = sorted(
        stat(draw.choices(a, k=len(a))) / stat(draw.choices(b, k=len(b))) for _ in range(rounds)
    )
    return ratios[int(0.05 * rounds)], ratios[int(0.95 * rounds) - 1]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="training samples (default all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="trials of each side")
    parser.add_argument("--deterministic", "--plain-deterministic", action="store_true",
                        dest="plain_deterministic",
                        help="op determinism on in every model.fit side")  # fmt: skip
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated sides to run (default: all)")  # fmt: skip
    parser.add_argument("--cpus", default=None,
                        help="run every trial on these CPUs only (0: one core, where the "
                        "background committer competes with training for all of it)")  # fmt: skip
    parser.add_argument("--trial", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpus is not None:  # before TensorFlow sizes its thread pools
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    if args.trial:
        print(
            json.dumps(
                _trial(
                    args.trial, args.epochs, args.limit, args.batch_size, args.plain_deterministic
                )
            )
        )
        return

    modes = [m for m in MODES if m in args.modes.split(",")]
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    for i in range(args.repeats):
        for mode in modes:
            cmd = [
                sys.executable,
                __file__,
                "--trial",
                mode,
                "--epochs",
                str(args.epochs),
                "--batch-size",
                str(args.batch_size),
            ]
            if args.limit is not None:
                cmd += ["--limit", str(args.limit)]
            if args.plain_deterministic:
                cmd.append("--plain-deterministic")
            if args.cpus is not None:
                cmd += ["--cpus", args.cpus]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                sys.exit(f"{mode} trial failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results[mode].append(result)
            epochs = " ".join(f"{x:.2f}" for x in result["epoch_seconds"])
            print(f"trial {i + 1} {mode:15s} {result['seconds']:8.2f} s  "
                  f"cpu {result['cpu_seconds']:8.2f} s  load {_load()}  epochs {epochs}",
                  flush=True)  # fmt: skip

    med = {m: _total(results[m]) for m in modes}
    cpu = {m: statistics.median(r["cpu_seconds"] for r in results[m]) for m in modes}
    print(
        f"\nsetting: mlp, {args.epochs} epochs, batch {args.batch_size}, "
        f"train {args.limit or 50000}, validation 10000 (+ test 10000 where evaluated); "
        f"op determinism in model.fit sides={'on' if args.plain_deterministic else 'off'}; "
        f"CPUs {args.cpus or 'all'}; "
        f"load average at the end {_load()}"
    )
    labels = {
        "plain": "plain model.fit",
        "plain+eval": "plain + test evaluation by hand",
        "callback": "RecordCallback (test_data)",
        "callback-notest": "RecordCallback without test_data",
        "callback-nohist": "RecordCallback, histograms=False",
        "record": "replay record",
        "keras": "Keras callbacks (test eval, CSVLogger, TensorBoard+histograms, ModelCheckpoint)",
    }
    for mode in modes:
        times = sorted(r["seconds"] for r in results[mode])
        print(f"{labels[mode]:40s} median {med[mode]:8.2f} s  cpu {cpu[mode]:8.2f} s  "
              f"(trials {times[0]:.2f} to {times[-1]:.2f} s)")  # fmt: skip
    ratios = [
        ("callback-notest", "plain", "RecordCallback without test_data / plain fit "
         "(target <= 1.03)"),
        ("callback", "plain+eval", "RecordCallback / (plain fit + the same evaluation by hand) "
         "(target <= 1.03)"),
        ("callback-nohist", "plain+eval", "the same with histograms=False"),
        ("record", "plain", "replay record / plain fit"),
        ("callback", "keras", "RecordCallback / the same logging with Keras callbacks"),
    ]  # fmt: skip
    print("ratios: of the trials' median wall seconds (CPU seconds), then of the lower "
          "quartiles of their epochs after the first; 90% bootstrap intervals")  # fmt: skip
    for a, b, text in ratios:
        if a in med and b in med:
            low, high = _interval(results[a], results[b])
            fa, fb = _fast_epoch(results[a]), _fast_epoch(results[b])
            flow, fhigh = _interval(results[a], results[b], _fast_epoch)
            print(f"  {med[a] / med[b]:.3f} [{low:.3f}, {high:.3f}] (cpu {cpu[a] / cpu[b]:.3f});"
                  f" epochs {fa / fb:.3f} [{flow:.3f}, {fhigh:.3f}]  {text}")  # fmt: skip
    for mode in (m for m in modes if m.startswith("callback")):
        r = results[mode]
        wall = statistics.median(x["commit_wall"] for x in r) / args.epochs
        cpu_ = statistics.median(x["commit_cpu"] for x in r) / args.epochs
        bg = statistics.median(x["background_cpu"] for x in r) / args.epochs
        drain = statistics.median(x["drain_wall"] for x in r)
        print(
            f"{labels[mode]}: per epoch, the commit takes {wall * 1e3:.0f} ms on the training "
            f"thread ({cpu_ * 1e3:.0f} ms CPU), the background committer {bg * 1e3:.0f} ms CPU; "
            f"the fit's end waits {drain * 1e3:.0f} ms for the last commit (medians)"
        )
    if "record" in results:
        checkpoints = results["record"][0]["checkpoint_bytes"]
        print(f"checkpoint bytes per epoch: {checkpoints[0]:,}")


if __name__ == "__main__":
    main()
