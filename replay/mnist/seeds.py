"""``replay record --seeds``: one run per seed, ``OUT/seed-N``, each a job of an executor.

The folder holds nothing but the seeds' run directories (``replay sweep OUT`` reads
them together). Each job calls :func:`replay.mnist.record.record` on its own directory, so
the per-epoch commit rules (and a killed job's resumability) are those of one run.
TensorFlow is imported by the jobs only.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analysis.errors import ReplayError
from analysis.reading.rundir import MANIFEST
from replay.recording.executor import Done, Job, LocalExecutor, RayExecutor
from replay.recording.run_dir_check import OutRules, check_out
from replay.recording.run_writer import RunInterrupted

__all__ = ["SeedsFailed", "SeedsInterrupted", "check_folder", "record_seeds", "seed_dir"]


class SeedsFailed(ReplayError):
    """Some seed jobs failed (each one reported with the command that resumes it)."""


class SeedsInterrupted(RunInterrupted):
    """Ctrl-C stopped an in-process seed job: the message resumes every seed, not just it."""

    def __init__(self, out: Path, committed: int, resume_all: str) -> None:
        ReplayError.__init__(
            self,
            f"{out} keeps {committed} committed epoch(s); continue every seed with: {resume_all}",
        )
        self.out = out
        self.committed = committed


def seed_dir(out: Path, seed: int) -> Path:
    """``OUT/seed-N``.

    >>> seed_dir(Path("runs/mlp"), 3).as_posix()
    'runs/mlp/seed-3'
    """
    return out / f"seed-{seed}"


def check_folder(out: Path, *, force: bool, resume: bool) -> None:
    """Refuse an ``out`` that is a single run, or that holds anything while neither
    ``force`` nor ``resume`` is given.

    Raises:
        RunExists: as ``replay record`` does for one run.
    """
    from replay.recording.faults import BadConfig

    if resume and force:
        raise BadConfig("--resume and --force cannot be used together")
    single = "{out} holds a single run (run.json), not a folder of seeds; pass another --out"
    held = (
        "{out} already holds runs; pass --force to overwrite its seeds, or --resume to "
        "continue them"
    )
    check_out(out, OutRules(run=single, other=None if force or resume else held))


@dataclasses.dataclass(frozen=True)
class SeedResult:
    """What one seed job did: its run's status, epochs in all and trained now, and the
    last epoch's val_loss."""

    status: str
    epochs: int
    trained: int
    last: dict[str, float]


def record_one(
    out: Path,
    config: Any,
    data: str | None,
    resume: bool,
    force: bool,
    overrides: dict[str, Any],
    progress: bool = False,
) -> SeedResult:
    """The job of one seed: record (or resume, or skip a complete) ``out``.

    With ``resume``, a seed whose directory has no run.json yet is recorded afresh. With
    ``progress`` (in process), each epoch's summary line is printed, prefixed by the
    seed's folder; a Ray task prints nothing (its line comes from the driver).
    """
    from analysis.reading.rundir import read_manifest
    from replay.mnist.record import record
    from replay.recording.run_writer import read_rows

    before = 0
    if resume and (out / MANIFEST).is_file():
        before = len(read_manifest(out).get("epochs") or [])
    else:
        resume = False
    argv = config.command(out, data) + (["--resume"] if resume else [])

    def echo(line: str) -> None:
        if progress and line.startswith("epoch "):
            print(f"[{out.name.replace('-', ' ', 1)}] {line}", flush=True)

    final = record(out, config, data=data, resume=resume, force=force, quiet=True,
                   overrides=overrides, argv=argv, echo=echo)  # fmt: skip
    epochs = len(final.get("epochs") or [])
    rows = read_rows(out / "metrics.csv")
    last = {"val_loss": rows[-1]["val_loss"]} if rows else {}
    return SeedResult(final.get("status", "?"), epochs, epochs - before, last)


def record_seeds(
    out: Path,
    config: Any,
    seeds: Sequence[int],
    *,
    executor: LocalExecutor | RayExecutor,
    data: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
    resume_all: str | None = None,
    echo: Callable[[str], None] = print,
    err: Callable[[str], None] = print,
    quiet: bool = False,
) -> list[Done]:
    """Record one run per seed into ``out/seed-N`` through ``executor``; return the jobs.

    ``config`` is the :class:`replay.mnist.config.RecordConfig` of every seed (its ``seed``
    replaced). One line per seed job goes to ``echo`` as it completes; each failed job
    gets a line (to ``err``) with the command that resumes it. In process, unless
    ``quiet``, each epoch's line too.

    Raises:
        BadConfig, RunExists, ExecutorError: before any job runs (or anything is written).
        SeedsFailed: after every job ran, when some failed (ray executor).
        SeedsInterrupted: Ctrl-C in process (with ``resume_all``; else RunInterrupted).
    """
    check_folder(out, force=force, resume=resume)
    configs = [dataclasses.replace(config, seed=s) for s in seeds]
    if not resume:
        for c in configs:
            c.validate()
    data_arg = None if data is None else str(data)
    given = {k: v for k, v in (overrides or {}).items() if k != "seed"}
    progress = executor.name == "local" and not quiet
    jobs = [Job(f"seed-{s}", record_one,
                (seed_dir(out, s), c, data_arg, resume, force, given, progress))
            for s, c in zip(seeds, configs, strict=True)]  # fmt: skip
    n = len(jobs)
    executor.connect()  # an unreachable cluster is refused before OUT is created
    echo(f"Recording {n} seed{'s' if n != 1 else ''} into {out} ({executor.name} executor)")
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []

    def report(done: Done) -> None:
        seed = done.job.name.split("-", 1)[1]
        path = done.job.args[0]
        if done.ok:
            r: SeedResult = done.result
            shown = "".join(f", {k} {v:.4f}" for k, v in r.last.items())
            echo(f"[seed {seed}] {path}: {r.status}, {r.epochs} epochs ({r.trained} trained "
                 f"now){shown}")  # fmt: skip
            return
        failed.append(seed)
        again = ["replay", "record", "--out", str(path), "--resume"]
        if "epochs" in given:
            again += ["--epochs", str(given["epochs"])]
        if data_arg is not None:
            again += ["--data", data_arg]
        err(f"[seed {seed}] FAILED: {done.error}; resume it with: {shlex.join(again)}")

    try:
        done = executor.run(jobs, report)
    except RunInterrupted as e:
        if resume_all is None:
            raise
        raise SeedsInterrupted(e.out, e.committed, resume_all) from None
    if failed:
        hint = f"; `{resume_all}` resumes them all" if resume_all else ""
        raise SeedsFailed(
            f"{len(failed)} of {n} seed jobs failed (seeds {', '.join(failed)}){hint}"
        )
    return done
