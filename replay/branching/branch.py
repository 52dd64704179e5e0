"""The training half of ``replay branch``: grow the tree of branches that a plan needs.

A branch is a run directory under ``RUN/branches/<id>/`` in the format of
``replay record`` (docs/run-directory.md, "Branches"), trained from its parent's
checkpoint of the epoch before its fork with the setting's ReduceLROnPlateau live
(:mod:`replay.branching.recorder`), after the fork epoch was re-trained and compared with
the parent's row, bit for bit (:mod:`replay.branching.exactness`).

The tree is built adaptively (:func:`replay.engine.branch_plan.step`): after each committed
epoch, every setting riding on the branch is replayed over its curve; settings that
part get a sub-branch (queued), settings that are done leave; the branch ends, as
``complete``, when none rides on. With an executor other than the local one
(:mod:`replay.recording.executor`, e.g. Ray), each branch is a job of its own
(:func:`train_task`). TensorFlow is imported only inside the functions that train.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analysis.reading.rundir import BRANCHES, MANIFEST, first_own_epoch, read_manifest
from replay.branching.exactness import EXACTNESS, Checks, check_fork, environment
from replay.branching.nodes import (
    BranchInterrupted,
    BranchRefused,
    Drift,
    Node,
    epochs_of,
    load_data,
    read_node,
    setting_of,
)
from replay.branching.recorder import BranchRecorder, Fork
from replay.engine.branch_plan import RootPlan, step, stopped
from replay.engine.rates import f32
from replay.mnist.config import RecordConfig
from replay.mnist.data import Mnist
from replay.recording.executor import Done
from replay.recording.executor import Job as ExecutorJob
from replay.recording.faults import Hooks
from replay.recording.run_writer import RunInterrupted, WriteFailed, locked

__all__ = ["Job", "Summary", "Tree", "grow", "train_task"]

_ID_RE = re.compile(r"b(\d+)-")


class _BudgetSpent(Exception):
    """--max-epochs is spent while settings still ride on a branch (internal)."""


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
        self.checks = Checks(self.dir / EXACTNESS)
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

        ``executor`` (:mod:`replay.recording.executor`) other than the local one trains each branch
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
        node = None if bid is None else read_node(self.root.path, bid)
        riders = job.riders
        if node is not None:
            status = node.manifest.get("status")
            epochs = epochs_of(node, job.fork)
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
        count = [0]
        where: dict[str, str] = {}

        def submit() -> list[ExecutorJob]:
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
                tasks.append(ExecutorJob(bid, train_task, (spec,)))
            return tasks

        def on_done(done: Done) -> list[ExecutorJob]:
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

    recorder_class: type = BranchRecorder

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


def grow(root: Node, config: RecordConfig, plan: RootPlan, **options: Any) -> Summary:
    """Load the run's data and grow its tree (:class:`Tree`); return the summary."""
    data = load_data(root, config, options.get("data_arg"))
    return Tree(root, config, plan, data, **options).grow()
