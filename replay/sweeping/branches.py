"""Which recorded curve answers a ReduceLROnPlateau setting: the run's, or a branch's.

A branch (``replay branch``, see docs/run-directory.md "Branches") is a run directory
under ``RUN/branches/<id>/`` that re-trained from the checkpoint of epoch ``fork_epoch
- 1`` of its ``parent`` (the run or another branch) under another learning-rate
schedule; its ``metrics.csv`` holds the whole curve (the parent's rows before the
fork, then its own).

:func:`follow` walks that tree for one setting: replay the setting on a node's curve;
where its rate first differs from the node's recorded rate (epoch k), go on in the
child branch that forked at k with the setting's rate for epoch k; where there is none,
the answer is exact up to k and counterfactual from there. A setting that never
differs from the node it ends in is answered exactly, epoch for epoch. The tree may
have been built for other settings: any branch whose curve the setting reproduces
answers it.

Pure: RunLogs in, facts out; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from analysis.errors import ReplayError
from analysis.reading.logs import RunLog
from analysis.reading.rundir import BRANCHES
from replay.engine.rates import rates_f32

__all__ = ["Branch", "Coverage", "find_branches", "follow"]


@dataclass(frozen=True)
class Branch:
    """A finished branch: its run, where it forked, and its parent's directory."""

    run: RunLog
    path: Path
    parent: Path
    fork_epoch: int


@dataclass(frozen=True)
class Coverage:
    """How far the recorded curves answer one setting.

    ``node`` is the run (the root or a branch) whose curve the setting followed last;
    ``branches`` the branches walked to get there; ``lr`` and ``reductions`` the
    setting's schedule on that curve; ``counterfactual_from`` the first epoch that no
    recorded curve saw under this schedule (None: exact to the end of ``node``).
    """

    node: RunLog
    branches: tuple[Branch, ...]
    lr: tuple[float, ...]
    reductions: tuple[int, ...]
    counterfactual_from: int | None


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p.absolute()


def find_branches(root: RunLog) -> tuple[list[Branch], list[str]]:
    """The finished branches under ``root``'s ``branches/`` folder, and notes.

    Branches that are still running or were interrupted are left out, each with a
    note (a partial branch is never taken for a finished one); so is one whose parent
    or fork epoch is missing or does not fit.

    Raises:
        ReplayError: from reading a branch's run directory (damaged run.json, ...).
    """
    if root.root is None or not (root.root / BRANCHES).is_dir():
        return [], []
    from analysis.formats.run_dir import load_run_dir

    found: list[Branch] = []
    notes: list[str] = []
    for path in sorted(p for p in (root.root / BRANCHES).iterdir() if p.is_dir()):
        if not (path / "run.json").is_file():
            continue
        run = load_run_dir(path)
        run.warnings.clear()  # an unfinished branch is reported below, once
        m = run.manifest or {}
        parent, fork = m.get("parent"), m.get("fork_epoch")
        if not isinstance(parent, str) or not isinstance(fork, int) or isinstance(fork, bool):
            notes.append(f"{path}: run.json names no parent and fork_epoch; not used as a branch")
            continue
        if run.status != "complete":
            notes.append(
                f"{path}: branch is {run.status} ({run.n_epochs} epochs); not used until "
                "`replay branch --resume` finishes it"
            )
            continue
        if not 0 < fork < run.n_epochs:
            notes.append(f"{path}: fork_epoch {fork} is outside its {run.n_epochs} epochs; "
                         "not used")  # fmt: skip
            continue
        found.append(Branch(run, _resolved(path), _resolved(path / parent), fork))
    return found, notes


def _rates(run: RunLog) -> list[float | None] | None:
    column = run.lr_column
    return None if column is None else rates_f32(run.values(column))


def follow(decide, root: RunLog, branches: Sequence[Branch], max_depth: int = 1000) -> Coverage:
    """Walk the branch tree for one setting.

    ``decide(run)`` replays the setting on ``run``'s curve and returns an object with
    ``lr`` (rate in effect during each epoch, float32 values) and ``reductions``,
    e.g. ``lambda run: PlateauTrace(run.values(monitor), ...).decide(...)``.

    A branch may end before the run's last epoch (it was trained for settings whose
    EarlyStopping stopped): a setting that needs the run's epochs and ends on such a
    branch is exact up to its end and counterfactual from there.
    """
    coverage = walk_tree(decide, root, branches, max_depth)
    if coverage.counterfactual_from is None and coverage.node.n_epochs < root.n_epochs:
        return replace(coverage, counterfactual_from=coverage.node.n_epochs)
    return coverage


def walk_tree(decide, root: RunLog, branches: Sequence[Branch], max_depth: int) -> Coverage:
    from replay.engine.rates import counterfactual_from

    node, walked = root, []
    node_dir = _resolved(root.root) if root.root is not None else None
    for _ in range(max_depth):
        r = decide(node)
        cf = counterfactual_from(r.lr, r.reductions, _rates(node))
        if cf is None or node_dir is None:
            return Coverage(node, tuple(walked), tuple(r.lr), tuple(r.reductions), cf)
        child = next(
            (
                b for b in branches
                if b.parent == node_dir and b.fork_epoch == cf
                and (_rates(b.run) or [None] * (cf + 1))[cf] == r.lr[cf]
            ),
            None,
        )  # fmt: skip
        if child is None:
            return Coverage(node, tuple(walked), tuple(r.lr), tuple(r.reductions), cf)
        node, node_dir = child.run, child.path
        walked.append(child)
    raise ReplayError(f"{root.source}: branches nest deeper than {max_depth}; check their "
                      "parent fields")  # fmt: skip


def plateau_outcome(
    coverage: Coverage, heldout: str | None, mode: str, oracle_value: float | None,
    checkpoints_of,
) -> dict:  # fmt: skip
    """The outcome fields of a ReduceLROnPlateau record, where the curves answer it.

    Exact (``counterfactual_from`` None): training ran to the end of ``coverage.node``
    under this schedule, so you end with its last epoch's weights: ``final_epoch``,
    ``final_metrics`` (that row), ``checkpoint`` (``checkpoints_of(node)[epoch]`` or
    None) and ``regret`` (the held-out metric there against the best recorded epoch of
    the run, ``oracle_value``; negative means better than any recorded epoch). Not
    exact: all None, since what the schedule would have given is not known. ``branch``
    names the branch that answered (its directory name), or None for the run itself.
    """
    node = coverage.node
    branch = coverage.branches[-1].path.name if coverage.branches else None
    if coverage.counterfactual_from is not None or node.n_epochs == 0:
        return {"final_epoch": None, "final_metrics": None, "regret": None,
                "checkpoint": None, "branch": branch}  # fmt: skip
    final = node.n_epochs - 1
    row = {}
    for column in node.columns:
        v = node.values(column)[final]
        row[str(column)] = None if v is None or not math.isfinite(v) else float(v)
    regret = None
    value = row.get(heldout) if heldout else None
    if value is not None and oracle_value is not None:
        regret = value - oracle_value if mode == "min" else oracle_value - value
    return {
        "final_epoch": final,
        "final_metrics": row,
        "regret": regret,
        "checkpoint": checkpoints_of(node).get(final),
        "branch": branch,
    }
