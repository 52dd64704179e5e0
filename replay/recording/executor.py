"""Executors: where the independent jobs of a command run (seeds of ``replay record``,
branches of ``replay branch``).

A :class:`Job` is a module-level function and its arguments (so that a Ray worker
imports the function by name). An executor runs a first set of jobs and, as each one
completes, asks ``on_done`` for the jobs that completion makes possible (a sub-branch
starts only once the branch it forks from has committed its checkpoint and its task
has returned). Two executors:

- :class:`LocalExecutor` (``--executor local``, the default): in this process, one job
  after the other, in order; a job's exception propagates as it always has.
- :class:`RayExecutor` (``--executor ray``): each job a Ray task (no retries); jobs
  run concurrently, and a job that raises or whose worker dies is reported as a failed
  :class:`Done` while the others go on. Ray is imported only here, when it is used.

Every Ray task writes its own run directory, on a filesystem every worker sees: paths
given with ``--executor ray`` must be absolute (:func:`require_shared_path`). Files that
several jobs share (a branch tree's ``exactness.json``, the choice of branch ids) are
written by the driver only, from the tasks' results.

Fault injection (tests): the driver's ``REPLAY_TEST_HOOK*`` variables (see
:mod:`replay.recording.faults`) are set in a Ray task's process while it runs, as a local run
would see them; ``REPLAY_TEST_HOOK_JOB=NAME`` limits them to the job named NAME.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from analysis.errors import ReplayError

__all__ = [
    "EXECUTORS",
    "JobsInterrupted",
    "executor_options",
    "Done",
    "ExecutorError",
    "Job",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
    "require_shared_path",
    "resume_command",
]

EXECUTORS = ("local", "ray")
HOOK_JOB = "REPLAY_TEST_HOOK_JOB"


class ExecutorError(ReplayError):
    """An executor that cannot run (Ray missing or unreachable, a relative path, ...)."""


class JobsInterrupted(ExecutorError):
    """Ctrl-C while Ray ran the jobs: those still running were stopped (exit status 130,
    as for an interrupted run in process)."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One independent job: ``fn(*args)``, named for progress and failure reports.

    ``fn`` must be a module-level function (a Ray worker imports it by name).
    """

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclasses.dataclass(frozen=True)
class Done:
    """A finished job: its ``result``, or ``error`` (one line: why it failed)."""

    job: Job
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


OnDone = Callable[[Done], Iterable[Job] | None]


class LocalExecutor:
    """Run jobs in this process, sequentially, first in first out (today's behaviour)."""

    name = "local"

    def connect(self) -> None:
        """Nothing to connect to (see :meth:`RayExecutor.connect`)."""

    def run(self, jobs: Iterable[Job], on_done: OnDone | None = None) -> list[Done]:
        """Run ``jobs`` and those ``on_done`` adds; return every :class:`Done` in order.

        A job's exception propagates (nothing after it runs).

        >>> [d.result for d in LocalExecutor().run([Job("a", abs, (-2,)), Job("b", abs, (3,))])]
        [2, 3]
        """
        queue = deque(jobs)
        done: list[Done] = []
        while queue:
            job = queue.popleft()
            finished = Done(job, job.fn(*job.args))
            done.append(finished)
            if on_done is not None:
                queue.extend(on_done(finished) or ())
        return done


class RayExecutor:
    """Run jobs as Ray tasks: on the cluster at ``address``, or on a local Ray instance
    started for the run (and stopped after it). A Ray already initialized in this
    process (a test's) is used as it is."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._started = False  # whether connect() started the Ray this run() stops

    def run(self, jobs: Iterable[Job], on_done: OnDone | None = None) -> list[Done]:
        """Run ``jobs`` concurrently, submitting those ``on_done`` returns as each
        completes; return every :class:`Done` in order of completion.

        Raises:
            ExecutorError: Ray is not installed, or the cluster cannot be reached.
        """
        ray = _import_ray()
        self.connect()
        try:
            task = ray.remote(max_retries=0)(_run_job)
            pending: dict[Any, Job] = {}

            def submit(job: Job) -> None:
                pending[task.remote(job.fn, job.args, _hook_env(job.name))] = job

            for job in jobs:
                submit(job)
            done: list[Done] = []
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                finished = _collect(ray, ref, pending.pop(ref))
                done.append(finished)
                if on_done is not None:
                    for job in on_done(finished) or ():
                        submit(job)
            return done
        except KeyboardInterrupt:
            raise JobsInterrupted(
                "the jobs still running were stopped (each run keeps its committed "
                "epochs); rerun the same command with --resume"
            ) from None
        finally:
            if self._started:
                self._started = False
                ray.shutdown()

    def connect(self) -> None:
        """Connect to the cluster (or start a local Ray instance) unless Ray is already
        initialized; :meth:`run` calls it, and a command calls it first to refuse an
        unreachable cluster before it writes anything. :meth:`run` stops a Ray it started.

        Raises:
            ExecutorError: Ray is not installed, or cannot be started or reached.
        """
        ray = _import_ray()
        if ray.is_initialized():
            return
        import logging
        import warnings

        options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if self.address is None:
            options["include_dashboard"] = False
        try:
            with warnings.catch_warnings():  # Ray Client's timeout warning repeats the error
                warnings.simplefilter("ignore")
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = self.address or "a local Ray instance"
            fix = (
                "check --address (a running cluster's, e.g. ray://head:10001), or leave it out "
                "to start a local Ray instance"
                if self.address is not None
                else "check that Ray starts here (ray start --head)"
            )
            raise ExecutorError(
                f"--executor ray: cannot start or reach {where} ({_line(e)}); {fix}"
            ) from None
        self._started = True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "--executor ray needs Ray: pip install 'callback-replay[ray]'"
        ) from None
    return ray


def _hook_env(name: str) -> dict[str, str]:
    """The driver's fault-injection variables for the job ``name`` (see the module doc)."""
    only = os.environ.get(HOOK_JOB)
    if only is not None and only != name:
        return {}
    return {
        k: v for k, v in os.environ.items() if k.startswith("REPLAY_TEST_HOOK") and k != HOOK_JOB
    }


def _run_job(fn: Callable[..., Any], args: tuple[Any, ...], env: dict[str, str]) -> Any:
    """A Ray task's body: ``fn(*args)`` with the job's fault-injection variables set."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("REPLAY_TEST_HOOK")}
    os.environ.update(env)
    try:
        return fn(*args)
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


def _collect(ray: Any, ref: Any, job: Job) -> Done:
    """The :class:`Done` of a completed task: its result, or why it failed."""
    try:
        return Done(job, ray.get(ref))
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        return Done(job, error=_line(cause) if cause is not None else _line(e))
    except ray.exceptions.RayError as e:  # WorkerCrashedError, node died, ...
        kind = type(e).__name__
        return Done(job, error=f"its Ray worker died ({kind}); the run keeps every committed epoch")


def _line(e: BaseException) -> str:
    """An exception as one line: its message's first line, or its type's name."""
    text = str(e).strip().splitlines()
    if isinstance(e, ReplayError) and text:
        return text[0]
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def executor_options(jobs: str, path: str) -> Callable[[Any], Any]:
    """The ``--executor`` and ``--address`` click options of a command whose ``jobs``
    ("--seeds jobs", "branches") can run on Ray, ``path`` naming the path that must then
    be absolute on a shared filesystem."""
    import click

    def decorate(f: Any) -> Any:
        f = click.option(
            "--address",
            default=None,
            metavar="ADDRESS",
            help="With --executor ray: the Ray cluster to use (e.g. ray://head:10001 or "
            "auto). Default: start a local Ray instance.",
        )(f)
        return click.option(
            "--executor",
            type=click.Choice(EXECUTORS),
            default="local",
            show_default=True,
            help=f"Where {jobs} run: local (in this process, one after the other) or ray "
            f"(Ray tasks; {path} must then be an absolute path on a shared filesystem).",
        )(f)

    return decorate


def make_executor(name: str, address: str | None = None) -> LocalExecutor | RayExecutor:
    """The executor ``--executor name`` names (``--address`` only with ray).

    >>> make_executor("local").name
    'local'

    Raises:
        ExecutorError: an unknown name, or an address for the local executor.
    """
    if name not in EXECUTORS:
        raise ExecutorError(f"--executor must be one of {', '.join(EXECUTORS)} but got {name!r}")
    if name == "local":
        if address is not None:
            raise ExecutorError("--address is for --executor ray (the cluster to run on)")
        return LocalExecutor()
    return RayExecutor(address)


def require_shared_path(executor: str, path: str | os.PathLike | None, option: str) -> None:
    """Refuse a relative ``path`` with the ray executor: every worker must see it.

    >>> require_shared_path("ray", "/shared/runs/mlp", "--out")
    >>> require_shared_path("ray", "runs/mlp", "--out")
    Traceback (most recent call last):
    ...
    replay.recording.executor.ExecutorError: --out runs/mlp: --executor ray needs an \
absolute path on a filesystem every Ray worker can see (a shared filesystem); pass one
    """
    if executor == "ray" and path is not None and not Path(path).is_absolute():
        raise ExecutorError(
            f"{option} {path}: --executor ray needs an absolute path on a filesystem every "
            "Ray worker can see (a shared filesystem); pass one"
        )


def resume_command(argv: Sequence[str], *, extra: Sequence[str] = ()) -> str:
    """The command line ``argv`` with ``--force`` dropped and ``--resume`` (then
    ``extra``) added where missing, quoted for a shell.

    >>> resume_command(["replay", "record", "--seeds", "0..4", "--out", "/r/m", "--force"])
    'replay record --seeds 0..4 --out /r/m --resume'
    """
    args = [a for a in argv if a != "--force"]
    for flag in ("--resume", *extra):
        if flag not in args:
            args.append(flag)
    return shlex.join(args)
