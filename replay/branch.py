"""The training half of ``replay branch``: grow the tree of branches that a plan needs.

A branch is a run directory under ``RUN/branches/<id>/`` in the format of
``replay record`` (docs/run-directory.md, "Branches"): its ``metrics.csv`` starts with
its parent's rows ``0 .. k-1``, copied, then holds the rows of the epochs it trained
itself, from ``k`` = ``fork_epoch`` on; its checkpoints are those of its own epochs.
It is trained as a resumed run whose ReduceLROnPlateau is the setting's: the parent's
checkpoint of epoch ``k - 1`` is loaded (sha256-verified), fresh real callbacks are fed
the rows ``0 .. k-1`` (the optimizer's rate set back to the initial rate first), so that
the real ``keras.callbacks.ReduceLROnPlateau`` is in the state the setting's would
have been in, and cuts the rate at the end of ``k - 1`` as the plan said (its rate
must equal the replay's float32 rate, or the branch refuses); then epochs ``k, k+1,
...`` train with it live and are committed exactly as ``replay record`` commits them
(:class:`replay.record.Recorder`: Ctrl-C and kill safety, resume).

Exactness is proven before a branch trains: epoch ``k`` is re-trained from the same
checkpoint under the parent's recorded rate and compared with the parent's row ``k``,
bit for bit (every column but ``epoch_seconds``). A difference means another machine
or library build: the branch refuses, unless ``allow_drift`` (then its run.json says
``drift: true``). Checks are kept in ``RUN/branches/exactness.json``, one per (parent,
fork epoch, checkpoint, environment), so sibling branches do not repeat them.

The tree is built adaptively (:func:`replay.branch_plan.step`): after each committed
epoch, every setting riding on the branch is replayed over its curve; settings that
part get a sub-branch (queued), settings that are done leave; the branch ends, as
``complete``, when none rides on. TensorFlow is imported only inside the functions
that train.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analysis.errors import BadLog, BadManifest, ChecksumMismatch, LogNotFound, ReplayError
from analysis.rundir import (
    BRANCHES,
    MANIFEST,
    METRICS_CSV,
    CheckpointInfo,
    CheckpointMismatch,
    atomic_write,
    first_own_epoch,
    parse_checkpoints,
    read_manifest,
    verify_checkpoint,
)
from replay.branch_plan import RootPlan, Setting, step, stopped
from replay.data import BadData, Mnist, load_mnist
from replay.faults import Hooks
from replay.rates import f32
from replay.record import (
    MnistBatches,
    RecordConfig,
    Recorder,
    seed_everything,
    train_epoch,
)
from replay.resume import ResumePlan
from replay.run_writer import (
    METRICS,
    Board,
    RunInterrupted,
    WriteFailed,
    format_row,
    header,
    load_checkpoint,
    locked,
    read_rows,
    utc_now,
    versions,
)

__all__ = [
    "EXACTNESS",
    "BranchInterrupted",
    "BranchRefused",
    "Drift",
    "Fork",
    "Job",
    "Node",
    "Summary",
    "Tree",
    "check_fork",
    "environment",
    "grow",
    "load_data",
    "load_root",
]

EXACTNESS = "exactness.json"
ROOT_REF = "../.."
_ID_RE = re.compile(r"b(\d+)-")


class BranchRefused(ReplayError):
    """A run or a branch that cannot be branched (not recorded, incomplete, changed, ...)."""


class Drift(BranchRefused):
    """Re-training the fork epoch did not reproduce the recorded row."""


class BranchInterrupted(ReplayError):
    """Ctrl-C or a failed write stopped a branch; it is marked interrupted."""


class _BudgetSpent(Exception):
    """--max-epochs is spent while settings still ride on a branch (internal)."""


# ---------------------------------------------------------------- the tree's nodes


@dataclasses.dataclass
class Node:
    """A run directory of the tree: the recorded run (``id`` "") or a branch."""

    id: str
    path: Path
    rows: list[dict[str, float]]
    manifest: dict[str, Any]

    @property
    def ref(self) -> str:
        """How a child's run.json names it as ``parent``: ``../..`` or ``../<id>``."""
        return ROOT_REF if not self.id else f"../{self.id}"

    @property
    def name(self) -> str:
        return "the run" if not self.id else self.id

    def curves(self) -> dict[str, list[float]]:
        return {c: [r[c] for r in self.rows] for c in (self.rows[0] if self.rows else {})}

    def checkpoint(self, epoch: int) -> CheckpointInfo:
        """Its own checkpoint of ``epoch`` as run.json records it.

        Raises:
            LogNotFound: none is recorded (an epoch before a branch's fork).
        """
        info = parse_checkpoints(self.manifest).get(epoch)
        if info is None:
            raise LogNotFound(f"{self.path / MANIFEST}: no checkpoint of epoch {epoch}")
        return info


def load_root(path: Path) -> tuple[Node, RecordConfig]:
    """The recorded run to branch, and its training configuration.

    Raises:
        BranchRefused: not a complete run directory of ``replay record`` with its
            checkpoints (or a branch itself).
        BadManifest, UnsafePath, BadLog: a damaged run.json or metrics.csv.
    """
    if not (path / MANIFEST).is_file():
        raise BranchRefused(
            f"{path}: no run.json; replay branch needs a run directory recorded by "
            "`replay record` (with its checkpoints)"
        )
    manifest = read_manifest(path)
    if "fork_epoch" in manifest:
        raise BranchRefused(
            f"{path}: is a branch; branch its run ({(path / ROOT_REF).resolve()}) instead"
        )
    if manifest.get("checkpoints_included") is False:
        raise BranchRefused(
            f"{path}: was published without its checkpoints, so no epoch can be re-trained; "
            "branch the original run directory (--dry-run plans it)"
        )
    manifest = read_manifest(path, resume=True)
    status = manifest.get("status")
    if status != "complete":
        raise BranchRefused(
            f"{path}: the run is {status} ({len(manifest['epochs'])} epochs); finish it with "
            f"`replay record --resume --out {path}` first"
        )
    config = RecordConfig.from_json(manifest["config"])
    rows = read_rows(path / METRICS_CSV)
    if len(rows) != len(manifest["epochs"]) or len(rows) != config.epochs:
        raise BadManifest(
            f"{path}: run.json lists {len(manifest['epochs'])} epochs of {config.epochs} but "
            f"metrics.csv has {len(rows)} rows; restore the run or re-record it"
        )
    return Node("", path, rows, manifest), config


def _epochs_of(node: Node, fork: int) -> str:
    """``18 epochs, 6 of its own``: a branch's curve holds its parent's epochs before the
    fork (copied) and its own from ``fork`` on."""
    total = len(node.rows)
    own = max(total - fork, 0)
    return f"{total} epoch{'s' if total != 1 else ''}, {own} of its own"


def _node(root: Path, bid: str) -> Node:
    path = root / BRANCHES / bid
    manifest = read_manifest(path)
    csv = path / METRICS_CSV
    rows = read_rows(csv, columns=None) if csv.is_file() else []
    return Node(bid, path, rows, manifest)


def environment() -> dict[str, Any]:
    """What a fork check is valid for: library versions and the machine."""
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {**versions(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu": cpu}  # fmt: skip


# ---------------------------------------------------------------- the exactness check


def same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def check_fork(parent: Node, fork: int, config: RecordConfig, data: Mnist) -> dict[str, Any]:
    """Re-train epoch ``fork`` from ``parent``'s checkpoint of ``fork - 1`` under its
    recorded rate; return the check (``matched``, differing ``columns``, both rows).

    Raises:
        ChecksumMismatch, LogNotFound: the checkpoint is damaged or missing.
    """
    import keras

    info = parent.checkpoint(fork - 1)
    keras.backend.clear_session()
    seed_everything(config.seed)
    batches = MnistBatches(data, config.batch_size, config.seed)
    model = load_verified(parent.path, info)
    model.evaluate(batches.val.take(1), verbose=0)  # as a resumed run does (record.py)
    rate = float(model.optimizer.learning_rate)
    logs, seconds = train_epoch(model, batches, fork)
    retrained = {**logs, "learning_rate": rate}
    recorded = {c: parent.rows[fork][c] for c in retrained}
    columns = [c for c in (*METRICS, "learning_rate") if not same_value(recorded[c], retrained[c])]
    keras.backend.clear_session()
    return {
        "parent": parent.ref,
        "epoch": fork,
        "parent_checkpoint_sha256": info.sha256,
        "matched": not columns,
        "columns": columns,
        "recorded": recorded,
        "retrained": retrained,
        "seconds": seconds,
        "at": utc_now(),
        "environment": environment(),
    }


def load_verified(run: Path, info: CheckpointInfo) -> Any:
    try:
        verify_checkpoint(run / info.path, info.sha256, info.bytes, epoch=info.epoch)
    except CheckpointMismatch as e:
        raise ChecksumMismatch(
            f"{e.path}: sha256 {e.sha256} ({e.bytes} bytes) differs from run.json's "
            f"{e.expected_sha256} ({e.expected_bytes} bytes); restore the checkpoint"
        ) from None
    return load_checkpoint(run / info.path)


class _Checks:
    """``RUN/branches/exactness.json``: the fork checks made so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        self.new: list[dict[str, Any]] = []  # added by this process
        self.write = True  # False in a Ray task: the driver writes the file
        if path.is_file():
            try:
                self.entries = list(json.loads(path.read_text())["checks"])
            except (ValueError, KeyError, TypeError):
                raise BadManifest(
                    f"{path}: not a list of checks; delete it (the checks are made again)"
                ) from None

    def find(self, parent: str, epoch: int, sha: str | None, env: dict) -> dict | None:
        """The check of (parent, epoch) from that checkpoint in this environment, if made."""
        wanted = (parent, epoch, sha, env)
        for entry in self.entries:
            key = tuple(entry.get(k) for k in ("parent", "epoch", "parent_checkpoint_sha256",
                                               "environment"))  # fmt: skip
            if key == wanted:
                return entry
        return None

    def add(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self.new.append(entry)
        if self.write:
            atomic_write(self.path, json.dumps({"checks": self.entries}, indent=2) + "\n")

    def merge(self, entries: Sequence[dict[str, Any]]) -> None:
        """Add the checks a task made (the driver's side), each one once."""
        for entry in entries:
            key = (entry.get(k) for k in ("parent", "epoch", "parent_checkpoint_sha256",
                                          "environment"))  # fmt: skip
            if self.find(*key) is None:
                self.add(entry)


# ---------------------------------------------------------------- one branch


@dataclasses.dataclass(frozen=True)
class Fork:
    """Where a branch starts: its parent, first own epoch, rate then, and live setting."""

    parent: Node
    epoch: int
    rate: float  # float32 value: the setting's rate during ``epoch``
    setting: Setting  # whose ReduceLROnPlateau is live
    exactness: dict[str, Any]
    drift: bool

    @property
    def checkpoint(self) -> CheckpointInfo:
        return self.parent.checkpoint(self.epoch - 1)

    def manifest_fields(self) -> dict[str, Any]:
        """What a branch's run.json says of its fork (``docs/run-directory.md``)."""
        return {
            "parent": self.parent.ref,
            "fork_epoch": self.epoch,
            "fork_lr": self.rate,
            "setting": self.setting.to_json(),
            "parent_checkpoint_sha256": self.checkpoint.sha256,
            "exactness": self.exactness,
            "drift": self.drift,
        }


class BranchRecorder(Recorder):
    """``replay record``'s recorder for a branch: it starts from the parent's checkpoint
    of ``fork.epoch - 1`` with the parent's rows, and ends when ``on_epoch`` says so."""

    def __init__(self, out: Path, config: RecordConfig, data: Mnist, data_arg: Any,
                 hooks: Hooks, echo: Callable[[str], None], fork: Fork,
                 on_epoch: Callable[[int, float], bool]) -> None:  # fmt: skip
        super().__init__(out, config, data, data_arg, True, hooks, echo)
        self.fork = fork
        self.on_epoch = on_epoch

    def _base_manifest(self, argv: list[str]) -> dict[str, Any]:
        manifest = super()._base_manifest(argv)
        manifest.update(self.fork.manifest_fields())
        return manifest

    def _csv_start(self) -> str:
        """The header and the parent's rows before the fork, copied byte for byte."""
        path = self.fork.parent.path / METRICS_CSV
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        copied = lines[1 : self.fork.epoch + 1]
        head = header(self.columns)
        rows = self.fork.parent.rows[: self.fork.epoch]
        expected = [format_row(row, self.columns) for row in rows]
        if lines[:1] != [head] or copied != expected:
            raise BadLog(f"{path}: changed while branching; branch again")
        return head + "".join(copied)

    def _start_model(self, plan: ResumePlan) -> Any:
        if plan.load is not None:
            return super()._start_model(plan)
        return load_verified(self.fork.parent.path, self.fork.checkpoint)

    def _check_replayed_rate(self, restored: float) -> None:
        if len(self.rows) > self.fork.epoch:
            super()._check_replayed_rate(restored)
            return
        replayed = float(self.model.optimizer.learning_rate)
        if f32(replayed) != self.fork.rate:
            raise BranchRefused(
                f"{self.out}: the real ReduceLROnPlateau({self.fork.setting.label}) fed the "
                f"rows before epoch {self.fork.epoch} sets the rate {replayed!r}, but its "
                f"replay gives {self.fork.rate!r}; refusing to branch (a bug in callback-replay)"
            )

    def start(self, argv: list[str]) -> None:
        """Prepare the branch (run.json, then metrics.csv with the parent's rows), load the
        parent's checkpoint and bring the callbacks to the fork."""
        self.ckdir.mkdir(exist_ok=True)
        (self.out / "tensorboard").mkdir(exist_ok=True)
        self.manifest = self._base_manifest(argv)
        self._write_manifest()  # run.json first: a directory with it can always be resumed
        atomic_write(self.csv, self._csv_start())
        self.rows = [dict(r) for r in self.fork.parent.rows[: self.fork.epoch]]
        board = Board(self.out / "tensorboard")
        try:
            for row in self.rows:
                board.write(row, None)  # the parent's epochs: scalars, no histograms
        finally:
            board.close()
        self._prepare_inputs()
        self.model = load_verified(self.fork.parent.path, self.fork.checkpoint)
        self._warm_up()
        self._init_callbacks()
        self._replay_callbacks()
        self._write_manifest()

    def live_rate(self) -> float:
        return float(self.model.optimizer.learning_rate)

    def _finished(self, epoch: int) -> bool:
        self.drain()  # the settings riding on read the branch's committed rows
        return self.on_epoch(epoch, self.live_rate())

    def finish(self) -> None:
        """Mark the branch complete without training (its settings need no more epochs)."""
        self.drain()
        self.manifest["status"] = "complete"
        self._write_manifest()


# ---------------------------------------------------------------- the tree


@dataclasses.dataclass
class Job:
    """A branch to train or reuse: from ``parent`` at ``fork`` with ``rate``, for ``riders``."""

    parent: Node
    fork: int
    rate: float
    riders: tuple[int, ...]


@dataclasses.dataclass
class Summary:
    """What :meth:`Tree.grow` did.

    ``ends`` maps each setting answered exactly to the node whose curve answers it
    ("" for the recorded run); ``cut`` each setting left counterfactual by
    ``--max-epochs`` to (node, first epoch no curve saw under its schedule).
    """

    branches: list[str] = dataclasses.field(default_factory=list)  # used, in order
    trained: dict[str, int] = dataclasses.field(default_factory=dict)  # id -> epochs trained now
    created: list[str] = dataclasses.field(default_factory=list)
    sub_branches: int = 0
    checks_run: int = 0
    checks_cached: int = 0
    drift: list[str] = dataclasses.field(default_factory=list)
    ends: dict[int, str] = dataclasses.field(default_factory=dict)
    cut: dict[int, tuple[str, int]] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (job, why)

    def merge(self, other: Summary) -> None:
        """Add what a task's tree did (an executor's job) to this summary."""
        self.branches += other.branches
        for bid, n in other.trained.items():
            self.trained[bid] = self.trained.get(bid, 0) + n
        self.created += other.created
        self.sub_branches += other.sub_branches
        self.checks_run += other.checks_run
        self.checks_cached += other.checks_cached
        self.drift += other.drift
        self.ends.update(other.ends)
        self.cut.update(other.cut)

    @property
    def epochs(self) -> int:
        return sum(self.trained.values())


class Tree:
    """The branches of one recorded run, grown for the settings of a plan."""

    @classmethod
    def task_data(cls, root: Node, config: RecordConfig, data_arg: Any) -> Any:
        """The data a branch job of this tree trains on, loaded in the job's process."""
        return load_data(root, config, data_arg)

    def __init__(self, root: Node, config: RecordConfig, plan: RootPlan, data: Mnist, *,
                 data_arg: Any = None, max_epochs: int | None = None,
                 allow_drift: bool = False, resume: bool = False, argv: Sequence[str] = (),
                 echo: Callable[[str], None] = print) -> None:  # fmt: skip
        self.root = root
        self.config = config
        self.plan = plan
        self.settings = plan.settings
        self.data = data
        self.data_arg = data_arg
        self.budget = max_epochs
        self.allow_drift = allow_drift
        self.resume = resume
        self.argv = list(argv)
        self.echo = echo
        self.dir = root.path / BRANCHES
        self.nodes: dict[str, Node] = {"": root}
        self.summary = Summary()
        self.queue: deque[Job] = deque()
        self.checks = _Checks(self.dir / EXACTNESS)
        self.env: dict[str, Any] | None = None
        self.hooks = Hooks.from_env()

    # -- what is on disk

    def _index(self) -> dict[tuple[str, int, float], str]:
        """Existing branches by (parent, fork_epoch, fork_lr)."""
        found: dict[tuple[str, int, float], str] = {}
        for path in sorted(p for p in self.dir.iterdir() if p.is_dir()):
            if not (path / MANIFEST).is_file():
                continue
            m = read_manifest(path)
            parent, fork, rate = m.get("parent"), m.get("fork_epoch"), m.get("fork_lr")
            if isinstance(parent, str) and isinstance(fork, int) and isinstance(rate, float):
                found.setdefault((parent, fork, f32(rate)), path.name)
        return found

    def _remove_unstarted(self) -> None:
        """Remove branch folders that a kill left before their run.json (no file in them)."""
        import shutil

        for path in self.dir.iterdir():
            if path.is_dir() and not (path / MANIFEST).exists():
                if not any(p.is_file() for p in path.rglob("*")):
                    shutil.rmtree(path)

    def _new_id(self, fork: int, rate: float) -> str:
        taken = [int(m.group(1)) for p in self.dir.iterdir() if (m := _ID_RE.match(p.name))]
        return f"b{max(taken, default=0) + 1:03d}-e{fork:02d}-lr{rate:g}"

    # -- growing

    def grow(self, executor: Any = None) -> Summary:
        """Train (or reuse) every branch the plan's settings need; return the summary.

        ``executor`` (:mod:`replay.executor`) other than the local one trains each branch
        as a job of its own, started once the job of the branch it forks from returned;
        a failed job is listed in ``summary.failed`` and the others go on.

        Raises:
            Drift: a fork check found a difference (and not ``allow_drift``).
            BranchInterrupted: Ctrl-C or a failed write; the branch is marked interrupted.
            BranchRefused: an unfinished branch without ``resume``, or a changed parent.
        """
        began = time.perf_counter()
        for i, placement in enumerate(self.plan.placements):
            if placement.fork is None:
                self.summary.ends[i] = ""
        jobs = [Job(self.root, k, rate, riders) for (k, rate), riders in self.plan.groups.items()]
        jobs.sort(key=lambda j: (-len(j.riders), j.fork, j.rate))
        self.queue.extend(jobs)
        self.dir.mkdir(exist_ok=True)
        with locked(self.dir, BranchRefused, "replay branch"):  # one per run at a time
            self._remove_unstarted()
            if executor is not None and executor.name != "local":
                self._grow_on(executor)
            else:
                number = 0
                while self.queue:
                    number += 1
                    self._job(self.queue.popleft(), number)
        self.summary.seconds = time.perf_counter() - began
        return self.summary

    def _job(self, job: Job, number: int) -> None:
        ready = self._prepare(job, number)
        if ready is not None:
            self._train(job, *ready)

    def _prepare(self, job: Job, number: int) -> tuple[str, Node | None, tuple[int, ...]] | None:
        """What ``job`` needs: None (an existing branch answers its settings, or the
        budget is spent), else its branch id, existing branch (to resume) and riders."""
        bid = self._index().get((job.parent.ref, job.fork, job.rate))
        n = len(job.riders)
        head = f"[branch {number} of {number + len(self.queue)}]"
        where = (f"fork at epoch {job.fork} of {job.parent.name}, lr {job.rate:g}, "
                 f"{n} setting{'s' if n != 1 else ''}")  # fmt: skip
        node = None if bid is None else _node(self.root.path, bid)
        riders = job.riders
        if node is not None:
            status = node.manifest.get("status")
            epochs = _epochs_of(node, job.fork)
            self.echo(f"{head} {bid} ({where}): found, {status}, {epochs}")
            if status != "complete" and not self.resume:
                raise BranchRefused(
                    f"{node.path}: branch is {status} ({len(node.rows)} epochs); rerun with "
                    "--resume to continue it"
                )
            riders = self._walk(node, riders)
            if not riders:
                self._used(node)
                return None
        if self.budget is not None and self.budget < 1 + self._check_cost(job):
            self.echo(f"{head} not trained ({where}): --max-epochs is spent")
            last = None if node is None else len(node.rows)
            self._cut(riders, job.parent.id if node is None else node.id, last or job.fork)
            return None
        if node is None:
            bid = self._new_id(job.fork, job.rate)
            self.echo(f"{head} {bid} ({where})")
        return bid, node, riders

    # -- growing on an executor (Ray): the driver's side

    def _grow_on(self, executor: Any) -> None:
        """Run each branch as a job of ``executor``. The driver alone decides branch ids
        (it creates the folder before the job starts) and writes exactness.json (from the
        checks the jobs return); a job starts once its parent branch's job returned."""
        from replay.executor import Done
        from replay.executor import Job as Task

        count = [0]
        where: dict[str, str] = {}

        def submit() -> list[Task]:
            tasks = []
            while self.queue:
                job = self.queue.popleft()
                count[0] += 1
                ready = self._prepare(job, count[0])
                if ready is None:
                    continue
                bid, node, riders = ready
                if node is None:
                    (self.dir / bid).mkdir()  # the id is taken before the job runs
                where[bid] = f"fork at epoch {job.fork} of {job.parent.name}, lr {job.rate:g}"
                spec = _Task(type(self), self.root, self.config, self.plan, self.data_arg,
                             self.allow_drift, self.resume, tuple(self.argv), job, bid,
                             node, riders)  # fmt: skip
                tasks.append(Task(bid, train_task, (spec,)))
            return tasks

        def on_done(done: Done) -> list[Task]:
            bid = done.job.name
            if not done.ok:
                self.echo(f"  {bid}: FAILED: {done.error}")
                self.summary.failed.append((f"{bid} ({where[bid]})", done.error or "?"))
                return []
            result: _TaskResult = done.result
            for line in result.lines:
                self.echo(f"  {bid}: {line.strip()}")
            self.summary.merge(result.summary)
            self.nodes.update(result.nodes)
            self.checks.merge(result.checks)
            self.queue.extend(result.queue)
            return submit()

        executor.run(submit(), on_done)

    def _walk(self, node: Node, riders: tuple[int, ...]) -> tuple[int, ...]:
        """Step the riders over an existing branch's rows; return those that need more
        epochs than it has (their step at its last row waits for the live rate)."""
        fork = first_own_epoch(node.manifest)
        curves = node.curves()
        last = len(node.rows) - 1
        for epoch in range(fork, last):
            riders = self._step(node, riders, curves, epoch, node.rows[epoch + 1]["learning_rate"])
            if not riders:
                return ()
        if last < fork:
            return riders
        if last + 1 >= self.plan.horizon:
            return self._step(node, riders, curves, last, None)
        for i in stopped(self.settings, riders, curves, last):
            self.summary.ends[i] = node.id
        return tuple(i for i in riders if i not in self.summary.ends)

    def _step(self, node: Node, riders: Sequence[int], curves, epoch: int,
              next_rate: float | None) -> tuple[int, ...]:  # fmt: skip
        """Apply :func:`step` after ``epoch`` of ``node``: queue the partings, note the
        settings that are done; return the riders that go on."""
        st = step(self.settings, riders, curves, epoch, next_rate=next_rate,
                  initial_lr=self.config.learning_rate, horizon=self.plan.horizon)  # fmt: skip
        for i in st.done:
            self.summary.ends[i] = node.id
        for (fork, rate), parted in st.parted.items():
            n = len(parted)
            self.echo(f"  {n} setting{'s' if n != 1 else ''} part at epoch {fork} "
                      f"(lr {rate:g}): sub-branch queued")  # fmt: skip
            self.queue.append(Job(node, fork, rate, parted))
            self.summary.sub_branches += 1
        return st.riding

    def _cut(self, riders: Sequence[int], node_id: str, epoch: int) -> None:
        for i in riders:
            self.summary.cut[i] = (node_id, epoch)

    def _used(self, node: Node) -> None:
        self.summary.branches.append(node.id)
        self.nodes[node.id] = node
        if node.manifest.get("drift"):
            self.summary.drift.append(node.id)

    # -- exactness

    def _check_cost(self, job: Job) -> int:
        return 1 if self._has_row(job) and self._cached(job) is None else 0

    @staticmethod
    def _has_row(job: Job) -> bool:
        return len(job.parent.rows) > job.fork

    def _cached(self, job: Job) -> dict | None:
        if self.env is None:
            self.env = environment()
        sha = job.parent.checkpoint(job.fork - 1).sha256
        return self.checks.find(job.parent.ref, job.fork, sha, self.env)

    def _exactness(self, job: Job) -> tuple[dict[str, Any], bool]:
        """The check of ``job``'s fork point (made now, or found) and whether it drifts."""
        inherited = bool(job.parent.manifest.get("drift", False))
        if not self._has_row(job):
            return {"epoch": job.fork, "matched": None,
                    "why": f"{job.parent.name} ends at epoch {job.fork - 1}, so there is no "
                           "row to compare; its own fork check covers this environment"
                    }, inherited  # fmt: skip
        check = self._cached(job)
        if check is None:
            self.echo(f"  exactness: re-training epoch {job.fork} of {job.parent.name} from its "
                      f"checkpoint of epoch {job.fork - 1}")  # fmt: skip
            check = self._check_fork(job.parent, job.fork)
            self.checks.add(check)
            self.summary.checks_run += 1
            if self.budget is not None:
                self.budget -= 1
        else:
            self.summary.checks_cached += 1
        brief = {k: check[k] for k in ("epoch", "matched", "columns", "at")}
        if check["matched"]:
            self.echo(f"  exact: epoch {job.fork} re-trained equals {job.parent.name}'s row, "
                      "bit for bit")  # fmt: skip
            return brief, inherited
        diffs = ", ".join(
            f"{c} {check['recorded'][c]!r} vs {check['retrained'][c]!r}" for c in check["columns"]
        )
        if not self.allow_drift:
            raise Drift(self._drift_message(job, diffs))
        self.echo(f"  DRIFT at epoch {job.fork} ({diffs}); going on (--allow-drift)")
        return brief, True

    def _check_fork(self, parent: Node, fork: int) -> dict[str, Any]:
        return check_fork(parent, fork, self.config, self.data)

    def _drift_message(self, job: Job, diffs: str) -> str:
        return (
            f"{job.parent.path}: re-training epoch {job.fork} from its checkpoint does not "
            f"reproduce the recorded row ({diffs}): this machine or library build is not "
            "the one that trained it, so branches would not be exact; pass --allow-drift "
            "to branch anyway (marked drift: true)"
        )

    # -- training

    recorder_class: type = None  # set below: BranchRecorder

    def _train(self, job: Job, bid: str, node: Node | None, riders: tuple[int, ...]) -> None:
        import keras

        exactness, drift = self._exactness(job)
        out = self.dir / bid
        if node is None:
            fork = Fork(job.parent, job.fork, job.rate, self.settings[riders[0]], exactness, drift)
            config = dataclasses.replace(
                self.config, reduce_lr_on_plateau=fork.setting.plateau.params()
            )
            manifest = None
        else:
            manifest = read_manifest(out, resume=True)
            config = self._branch_config(out, manifest)
            drift = drift or bool(manifest.get("drift", False))
            setting = setting_of(out, manifest)
            fork = Fork(job.parent, job.fork, job.rate, setting, exactness, drift)
            if manifest.get("parent_checkpoint_sha256") != fork.checkpoint.sha256:
                raise BranchRefused(
                    f"{out}: run.json's parent_checkpoint_sha256 is not the sha256 of "
                    f"{job.parent.name}'s checkpoint of epoch {job.fork - 1}: the parent "
                    "changed since the branch was made; delete the branch"
                )
        ride = _Ride(self, bid, riders)
        recorder = self.recorder_class(out, config, self.data, self.data_arg, self.hooks,
                                   lambda line: self.echo("  " + line), fork,
                                   ride.on_epoch)  # fmt: skip
        ride.recorder = recorder
        keras.backend.clear_session()
        try:
            if manifest is None:
                out.mkdir(exist_ok=True)  # the driver of an executor creates it first
                self.summary.created.append(bid)
            with locked(out):
                if manifest is None:
                    recorder.start(self.argv)
                else:
                    recorder.resume(manifest, self.argv)
                    recorder.manifest.update(exactness=exactness, drift=drift)
                    if not ride.first_step():
                        recorder.finish()
                        return
                recorder.run()
        except _BudgetSpent:
            self._cut(ride.riders, bid, len(recorder.rows))
            self.echo(f"  --max-epochs is spent: {bid} stops after epoch "
                      f"{len(recorder.rows) - 1} (interrupted; --resume continues it)")  # fmt: skip
        except RunInterrupted:
            raise BranchInterrupted(
                f"{out} keeps {len(recorder.rows)} epochs (marked interrupted); "
                "rerun the same command with --resume to continue"
            ) from None
        except WriteFailed as e:
            raise BranchInterrupted(
                f"{str(e).split('; ')[0]}; {out} is marked interrupted; fix the cause, then "
                "rerun the same command with --resume"
            ) from None
        finally:
            keras.backend.clear_session()
            if recorder.manifest:
                self._used(ride.node())

    def _branch_config(self, out: Path, manifest: dict[str, Any]) -> RecordConfig:
        config = RecordConfig.from_json(manifest["config"])
        if dataclasses.replace(config, reduce_lr_on_plateau=None, epochs=0) != (
            dataclasses.replace(self.config, reduce_lr_on_plateau=None, epochs=0)
        ):
            raise BranchRefused(
                f"{out}: its training config differs from the run's (other than "
                "reduce_lr_on_plateau); delete the branch"
            )
        return config


Tree.recorder_class = BranchRecorder


class _Ride:
    """The settings riding on one branch while it trains; decides when it ends."""

    def __init__(self, tree: Tree, bid: str, riders: tuple[int, ...]) -> None:
        self.tree = tree
        self.bid = bid
        self.riders = riders
        self.recorder: BranchRecorder | None = None

    def node(self) -> Node:
        """The branch as a node of the tree (its rows and run.json, as they grow)."""
        r = self.recorder
        return Node(self.bid, r.out, r.rows, r.manifest)

    def _after(self, epoch: int, live_rate: float) -> None:
        rows = self.recorder.rows
        curves = {c: [r[c] for r in rows] for c in rows[0]}
        horizon = self.tree.plan.horizon
        next_rate = None if epoch + 1 >= horizon else live_rate
        self.riders = self.tree._step(self.node(), self.riders, curves, epoch, next_rate)

    def first_step(self) -> bool:
        """On a resumed branch: the step at its last row, which needed the live rate.
        Returns whether any setting still rides on."""
        last = len(self.recorder.rows) - 1
        if last >= self.recorder.fork.epoch:
            self._after(last, self.recorder.live_rate())
        return bool(self.riders)

    def on_epoch(self, epoch: int, live_rate: float) -> bool:
        """After ``epoch`` is committed: whether the branch is finished.

        Raises:
            _BudgetSpent: ``--max-epochs`` is spent while settings still ride on.
        """
        summary, tree = self.tree.summary, self.tree
        summary.trained[self.bid] = summary.trained.get(self.bid, 0) + 1
        if tree.budget is not None:
            tree.budget -= 1
        self._after(epoch, live_rate)
        if not self.riders:
            return True
        if tree.budget is not None and tree.budget <= 0:
            raise _BudgetSpent
        return False


@dataclasses.dataclass(frozen=True)
class _Task:
    """What a branch job needs to train one branch in another process (``tree``: the
    tree's class, which loads the data its runs train on: :meth:`Tree.task_data`)."""

    tree: type
    root: Node
    config: RecordConfig
    plan: RootPlan
    data_arg: Any
    allow_drift: bool
    resume: bool
    argv: tuple[str, ...]
    job: Job
    bid: str
    node: Node | None
    riders: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _TaskResult:
    """What a branch job did: its lines, summary, nodes, new checks and queued jobs."""

    lines: list[str]
    summary: Summary
    nodes: dict[str, Node]
    checks: list[dict[str, Any]]
    queue: list[Job]


def train_task(task: _Task) -> _TaskResult:
    """A branch job (run by an executor, e.g. in a Ray worker): train one branch with a
    tree of its own that writes nothing shared (exactness.json stays the driver's).

    Raises what :meth:`Tree._train` raises; the branch is left resumable.
    """
    lines: list[str] = []
    data = task.tree.task_data(task.root, task.config, task.data_arg)
    tree = task.tree(task.root, task.config, task.plan, data, data_arg=task.data_arg,
                     allow_drift=task.allow_drift, resume=task.resume, argv=task.argv,
                     echo=lines.append)  # fmt: skip
    tree.checks.write = False
    tree._train(task.job, task.bid, task.node, task.riders)
    nodes = {k: v for k, v in tree.nodes.items() if k}
    return _TaskResult(lines, tree.summary, nodes, tree.checks.new, list(tree.queue))


def setting_of(out: Path, manifest: dict[str, Any]) -> Setting:
    """The setting a branch's run.json names (its live ReduceLROnPlateau goes on live).

    Raises:
        BadManifest: ``setting`` lacks a parameter.
    """
    from replay.branch_plan import Plateau, Stopping

    raw = manifest["setting"]
    try:
        plateau = Plateau(**raw["reduce_lr_on_plateau"])
        e = raw.get("early_stopping")
        return Setting(plateau, None if e is None else Stopping(**e))
    except TypeError as err:
        raise BadManifest(
            f"{out / MANIFEST}: setting is malformed ({err}); restore run.json or delete the branch"
        ) from None


def load_data(root: Node, config: RecordConfig, data: str | os.PathLike | None) -> Mnist:
    """The data the run was recorded with (its content sha256 checked), limited as it was.

    Raises:
        BadData: not the same data.
    """
    recorded = root.manifest["data"]
    if data is None and recorded.get("origin") == "--data":
        from replay.record import command_option

        data = recorded.get("path") or command_option(root.manifest.get("command"), "--data")
    dataset = load_mnist(data)
    if dataset.source["content_sha256"] != recorded.get("content_sha256"):
        raise BadData(
            f"{dataset.source['path']} does not hold the data {root.path} was recorded with "
            "(content sha256 differs); pass the original file with --data"
        )
    return dataset.limited(config.limit)


def grow(root: Node, config: RecordConfig, plan: RootPlan, **options: Any) -> Summary:
    """Load the run's data and grow its tree (:class:`Tree`); return the summary."""
    data = load_data(root, config, options.get("data_arg"))
    return Tree(root, config, plan, data, **options).grow()
