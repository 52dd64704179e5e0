"""Fault injection: kill, interrupt and break `replay record` mid-run, then prove nothing is lost.

Each scenario is a chain of real ``replay record`` processes on one run directory
(``--limit 3000 --epochs 6``): the first records, every later one is
``replay record --resume`` of exactly the state its predecessor was stopped in, and
the last one runs to the end. A process is stopped by

- SIGKILL while it is paused at a named point of the commit sequence
  (``REPLAY_TEST_HOOK=POINT@EPOCH:pause``, see :mod:`replay.recording.faults`),
- SIGKILL or SIGINT after a seeded random delay (``random.Random(0)``), counted from
  the moment its run.json says it is running,
- the hook's own ``interrupt`` (a Ctrl-C at that instant), ``enospc`` or ``eio``
  (a write that fails with a full or failing disk).

After every stop the run must be consistent: run.json parses and has the expected
status; each complete metrics.csv line equals the reference run's line (every column
but ``epoch_seconds``, as exact strings); each row has a committed checkpoint whose
sha256 and size match run.json (the last row may lack its entry when the process
died between the row and run.json: its checkpoint must then be a whole file, and
resume adopts it unchanged); no temporary file is listed or loaded; ``replay show``
and ``replay sweep`` read the partial run and say it is incomplete. Each resume
therefore starts from a stopped state and its epochs are compared with the
reference; the last one of each chain must reproduce the reference run exactly
(metrics, manifest, shadow callback decisions).

One test runs every chain, prints the tally (``pytest -s``) and fails listing every
scenario that broke. ``make test`` runs 2 random SIGKILLs and 1 random SIGINT (each stop
is a fresh process: TensorFlow's start-up is most of its time); ``REPLAY_FAULT_RANDOM=N``
runs N of each, e.g. ``REPLAY_FAULT_RANDOM=10 .venv/bin/pytest tests/test_faults.py -s``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.errors import BadLog
from analysis.formats import load_run
from analysis.reading.logs import checkpoint_path
from analysis.reading.rundir import checkpoint_name
from replay.commands.cli import cli
from replay.mnist.data import sha256_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 6
RECORD = ["--limit", "3000", "--epochs", str(EPOCHS), "--quiet"]
TIMEOUT = 300  # seconds one process may take to reach its stop (a slow, shared machine)
RANDOM_KILLS = int(os.environ.get("REPLAY_FAULT_RANDOM", "2"))  # random SIGKILLs per run
RANDOM_INTERRUPTS = int(os.environ.get("REPLAY_FAULT_RANDOM", "1"))  # random SIGINTs


@dataclass(frozen=True)
class Stop:
    """How one process of a chain is stopped."""

    label: str
    hook: str = ""  # REPLAY_TEST_HOOK; a ":pause" hook is followed by `signum`
    signum: int | None = None  # sent at the pause, or after a random delay when no hook
    kind: str = "kill"  # kill | interrupt | error: what the process must report

    @property
    def random(self) -> bool:
        return not self.hook

    @property
    def fault(self) -> str:
        """SIGKILL, SIGINT, ENOSPC or EIO."""
        if self.kind == "error":
            return self.hook.rsplit(":", 1)[1].upper()
        return "SIGKILL" if self.kind == "kill" else "SIGINT"


def paused_kill(point: str, epoch: int) -> Stop:
    return Stop(f"SIGKILL at {point}@{epoch}", f"{point}@{epoch}:pause", signal.SIGKILL)


CHAINS: dict[str, list[Stop]] = {
    # Every named point, epochs increasing along the chain (each resume goes further).
    "named SIGKILL": [
        paused_kill("epoch_start", 0),
        paused_kill("after_checkpoint_tmp", 0),  # checkpoint half committed
        paused_kill("after_checkpoint_rename", 1),  # checkpoint committed, no row yet
        paused_kill("after_metrics_row", 2),  # row written, run.json not yet
        paused_kill("epoch_start", 3),  # right after resume adopted epoch 2
        paused_kill("after_tensorboard", 3),
        paused_kill("in_fit", 4),
        paused_kill("after_manifest", 4),
        paused_kill("after_fit", 5),
    ],
    "random SIGKILL": [
        Stop(f"SIGKILL at random #{i}", signum=signal.SIGKILL) for i in range(RANDOM_KILLS)
    ],
    "Ctrl-C": [
        Stop("SIGINT at in_fit@1", "in_fit@1:interrupt", kind="interrupt"),
        Stop(
            "SIGINT at after_checkpoint_tmp@2 (mid-commit)",
            "after_checkpoint_tmp@2:interrupt",
            kind="interrupt",
        ),
        *(
            Stop(f"SIGINT at random #{i}", signum=signal.SIGINT, kind="interrupt")
            for i in range(RANDOM_INTERRUPTS)
        ),
    ],
    "failing writes": [
        Stop("ENOSPC at after_checkpoint_tmp@1", "after_checkpoint_tmp@1:enospc", kind="error"),
        Stop("EIO at after_metrics_row@3", "after_metrics_row@3:eio", kind="error"),
    ],
}
ERRNO_TEXT = {"enospc": "No space left on device", "eio": "Input/output error"}


@dataclass
class Tally:
    tried: int = 0
    consistent: int = 0
    resumes: int = 0
    resumes_equal: int = 0
    chains_complete: int = 0
    missed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class Reference:
    lines: list[str]  # metrics.csv rows without epoch_seconds
    manifest: dict
    seconds_per_epoch: float  # wall time per epoch, startup excluded (scales random delays)


# ---------------------------------------------------------------- processes


def _spawn(run: Path, resume: bool, hook: str, flag: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_TEST_HOOK")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", REPLAY_TEST_HOOK=hook, REPLAY_TEST_HOOK_SIGNAL=str(flag))
    args = ["--resume", "--quiet"] if resume else RECORD
    with open(log, "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "replay", "record", "--out", str(run), *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _stderr(log: Path) -> str:
    return log.read_text(errors="replace")


def _wait_until(proc: subprocess.Popen, ready, log: Path, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(
                f"exited with {proc.returncode} before {what}:\n{_stderr(log)[-2000:]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"did not reach {what} within {TIMEOUT}s")
        time.sleep(0.05)


def _manifest(run: Path) -> dict | None:
    try:
        return json.loads((run / "run.json").read_text())
    except (OSError, ValueError):
        return None


def _times_resumed(run: Path) -> int:
    m = _manifest(run)
    return -1 if m is None else len(m["resumed"])


def _finish(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- checks


def _lines(run: Path) -> list[str]:
    """Complete metrics.csv rows, without the epoch_seconds column."""
    body = (run / "metrics.csv").read_text().splitlines(keepends=True)[1:]
    return [line.rstrip("\n").rsplit(",", 1)[0] for line in body if line.endswith("\n")]


def _check_consistent(run: Path, ref: Reference, status: str) -> tuple[int, dict[int, str]]:
    """Assert every invariant of a stopped run; return (committed rows, unlisted ckpt sha)."""
    manifest = json.loads((run / "run.json").read_text())  # must parse
    assert manifest["status"] == status, f"status {manifest['status']!r}, expected {status!r}"
    lines = _lines(run) if (run / "metrics.csv").exists() else []
    n = len(lines)
    assert lines == ref.lines[:n], "a committed row differs from the reference run"
    entries = manifest["epochs"]
    assert [e["epoch"] for e in entries] == list(range(len(entries)))
    assert n - 1 <= len(entries) <= n, f"run.json lists {len(entries)} epochs, csv has {n}"
    for e in entries:
        assert e["checkpoint"] == f"checkpoints/{checkpoint_name(e['epoch'])}", e
    names = {p.name for p in (run / "checkpoints").iterdir()}
    committed = {checkpoint_name(i) for i in range(n)}
    assert committed <= names, f"missing checkpoints {sorted(committed - names)}"
    leftovers = names - committed  # the unfinished epoch's; resume deletes them
    assert leftovers <= {checkpoint_name(n), ".tmp-" + checkpoint_name(n)}, sorted(leftovers)
    unlisted: dict[int, str] = {}
    if n == 0:
        try:
            load_run(run)
        except BadLog as e:
            assert f"no epochs yet (run status '{status}')" in str(e), e
        else:
            raise AssertionError("a run without epochs loaded")
        return n, unlisted
    log = load_run(run)
    assert log.n_epochs == n and log.status == status
    assert sorted(log.checkpoints) == [e["epoch"] for e in entries]
    for epoch in range(len(entries)):
        assert checkpoint_path(log, epoch, verify=True) == run / entries[epoch]["checkpoint"]
    if len(entries) == n - 1:  # died between the row and run.json: the file must be whole
        path = run / "checkpoints" / checkpoint_name(n - 1)
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None, f"{path} is damaged"
        unlisted[n - 1] = sha256_file(path)
    return n, unlisted


def _check_readers(run: Path, n: int, status: str, out: Path) -> None:
    """`replay show` and `replay sweep` read the partial run and call it incomplete."""
    runner = CliRunner()
    show = runner.invoke(cli, ["show", str(run)])
    sweep = runner.invoke(
        cli, ["sweep", str(run), "--no-charts", "--format", "json", "--out", str(out)]
    )
    if n == 0:
        for result in (show, sweep):
            assert result.exit_code == 1, result.output
            assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
            assert f"has no epochs yet (run status '{status}')" in result.stderr
        return
    assert show.exit_code == 0, show.output
    assert (
        f"note: the run is incomplete ({status}); its {n} committed epochs are valid" in show.stdout
    ), show.output
    assert sweep.exit_code == 0, sweep.output
    assert f"the run is incomplete (status '{status}', {n} epochs committed)" in sweep.stderr, (
        sweep.output
    )
    records = json.loads(sweep.stdout)
    assert records and all(r["epochs_trained"] <= n for r in records if "epochs_trained" in r)


def _check_report(stop: Stop, rc: int, err: str, run: Path, n: int) -> None:
    """The process ended the way its stop demands, with a message and no traceback."""
    assert "Traceback" not in err, err[-3000:]
    if stop.kind == "kill":
        assert rc == -signal.SIGKILL, f"exit {rc}: {err[-2000:]}"
    elif stop.kind == "interrupt":
        assert rc == 130, f"exit {rc}: {err[-2000:]}"
        assert (
            f"Interrupted: {run} keeps {n} committed epoch(s); continue with: "
            f"replay record --resume --out {run}\n"
        ) in err, err[-2000:]
    else:
        assert rc == 1, f"exit {rc}: {err[-2000:]}"
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        action = stop.hook.rsplit(":", 1)[1]
        assert len(errors) == 1 and ERRNO_TEXT[action] in errors[0], err[-2000:]


def _check_final(run: Path, ref: Reference, adopted: dict[int, str]) -> None:
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "complete"
    assert _lines(run) == ref.lines, "the finished run differs from the reference run"
    assert manifest["shadow"] == ref.manifest["shadow"]
    assert manifest["config"] == ref.manifest["config"]
    entries = manifest["epochs"]
    assert [e["epoch"] for e in entries] == list(range(EPOCHS))
    log = load_run(run)
    for epoch in range(EPOCHS):
        checkpoint_path(log, epoch, verify=True)
    for epoch, digest in adopted.items():  # adopted as found, never rewritten
        assert entries[epoch]["sha256"] == digest, f"epoch {epoch}'s checkpoint changed"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        checkpoint_name(e) for e in range(EPOCHS)
    ]
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "metrics.csv",
        "run.json",
        "tensorboard",
    ]


# ---------------------------------------------------------------- the scenarios


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def _stop_process(
    stop: Stop, run: Path, resume: bool, work: Path, rng: random.Random, ref: Reference
) -> tuple[int, str, bool]:
    """Run one process to its stop; return (exit code, stderr, whether the fault hit it).

    A random signal that would come after the process has finished is not sent.
    """
    flag, log = work / "paused", work / "stderr.txt"
    flag.unlink(missing_ok=True)
    before = _times_resumed(run)
    committed = len(_lines(run)) if (run / "metrics.csv").exists() else 0
    proc = _spawn(run, resume, stop.hook, flag, log)
    hit = True
    try:
        if stop.hook.endswith(":pause"):
            _wait_until(proc, flag.exists, log, stop.hook)
            where, pid = flag.read_text().split()
            assert (where, int(pid)) == (stop.hook.rsplit(":", 1)[0], proc.pid)
            proc.send_signal(stop.signum)
        elif stop.random:
            # Counted from run.json saying "running" (TensorFlow loaded, model ready),
            # spread over the first 60% of the epochs this process has left to train.
            _wait_until(proc, lambda: _times_resumed(run) > before, log, "a running run.json")
            time.sleep(rng.uniform(0.05, 0.6) * (EPOCHS - committed) * ref.seconds_per_epoch)
            hit = proc.poll() is None
            if hit:
                proc.send_signal(stop.signum)
        rc = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, _stderr(log), hit


def _run_chain(
    name: str, stops: list[Stop], tmp: Path, ref: Reference, rng: random.Random, tally: Tally
) -> None:
    run = tmp / name.replace(" ", "-") / "run"
    run.parent.mkdir()
    adopted: dict[int, str] = {}  # epoch -> sha256 of a checkpoint that resume must adopt
    resumed = False  # whether the current process is a --resume
    for i, stop in enumerate(stops):
        scenario = f"{name} / {stop.label}"
        tally.resumes += resumed
        try:
            rc, err, hit = _stop_process(stop, run, resumed, run.parent, rng, ref)
            if hit and stop.random and _status(run) == "complete":
                # The signal landed after the last epoch was committed and run.json said
                # "complete" (during shutdown): the run is whole, nothing was interrupted.
                hit = False
                assert "Traceback" not in err, err[-3000:]
            elif not hit:  # a random signal that would have come after the run had finished
                assert rc == 0 and "Traceback" not in err, err[-3000:]
            if not hit:
                tally.missed += 1
                break
            tally.tried += 1
            tally.by_kind[stop.fault] = tally.by_kind.get(stop.fault, 0) + 1
            status = "running" if stop.kind == "kill" else "interrupted"
            n, unlisted = _check_consistent(run, ref, status)
            _check_report(stop, rc, err, run, n)
            entries = json.loads((run / "run.json").read_text())["epochs"]
            for epoch, digest in adopted.items():
                assert entries[epoch]["sha256"] == digest, f"epoch {epoch}'s checkpoint changed"
            adopted.update(unlisted)
        except Exception as e:  # every failure is reported with its scenario
            tally.failures.append(f"{scenario}: {type(e).__name__}: {e}")
            return  # the run itself is broken: the rest of the chain would prove nothing
        tally.resumes_equal += resumed  # all rows it committed equal the reference's
        try:
            _check_readers(run, n, status, run.parent / f"sweep-{i}")
        except Exception as e:  # the readers failed on a sound run: go on with the chain
            tally.failures.append(f"{scenario}: {type(e).__name__}: {e}")
        else:
            tally.consistent += 1
        resumed = True
    else:
        scenario = f"{name} / final resume"
        log = run.parent / "stderr.txt"
        resumed = True
        tally.resumes += 1
        rc = _finish(_spawn(run, True, "", run.parent / "paused", log))
        try:
            assert rc == 0 and "Traceback" not in _stderr(log), _stderr(log)[-3000:]
        except AssertionError as e:
            tally.failures.append(f"{scenario}: {e}")
            return
    try:
        _check_final(run, ref, adopted)
    except Exception as e:
        tally.failures.append(f"{scenario}: {type(e).__name__}: {e}")
        return
    tally.resumes_equal += resumed
    tally.chains_complete += 1


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    """ONE uninterrupted run with the same seed: what every interrupted run must become."""
    work = tmp_path_factory.mktemp("faults-reference")
    run, log = work / "run", work / "stderr.txt"
    proc = _spawn(run, False, "", work / "paused", log)
    _wait_until(proc, lambda: _times_resumed(run) == 0, log, "a running run.json")
    began = time.monotonic()
    assert _finish(proc) == 0, _stderr(log)[-3000:]
    seconds = time.monotonic() - began
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "complete" and len(_lines(run)) == EPOCHS
    return Reference(_lines(run), manifest, seconds / EPOCHS)


def test_kills_interrupts_and_failing_writes_never_lose_a_committed_epoch(reference, tmp_path):
    rng = random.Random(0)
    tally = Tally()
    began = time.monotonic()
    for name, stops in CHAINS.items():
        _run_chain(name, stops, tmp_path, reference, rng, tally)
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(tally.by_kind.items()))
    print(
        f"\nfault injection ({time.monotonic() - began:.0f}s): {tally.tried} kills tried "
        f"({kinds}); {tally.consistent} runs consistent; {tally.resumes_equal}/{tally.resumes} "
        f"resumes equal to the reference (every row they committed; {tally.chains_complete} "
        f"of {len(CHAINS)} chains resumed to the end); {tally.missed} random signals came "
        "after the run had finished"
    )
    assert not tally.failures, "\n".join(tally.failures)
    named = sum(not stop.random for stops in CHAINS.values() for stop in stops)  # 13
    assert tally.consistent == tally.tried >= named  # a random signal may come too late
    assert tally.resumes_equal == tally.resumes
    assert tally.chains_complete == len(CHAINS)
