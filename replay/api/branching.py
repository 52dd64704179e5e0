"""``replay.plan_branch``: the plan ``replay branch --dry-run`` prints, as an object (no
TensorFlow: training the branches is the command's, ``replay branch RUN -y``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from replay.api.options import grid_options, option_flag

if TYPE_CHECKING:  # pragma: no cover
    from replay.branching.planning import RootRun
    from replay.engine.branch_plan import RootPlan
    from replay.sweeping.sweep import Grid

__all__ = ["BranchPlan", "plan_branch"]


@dataclass
class BranchPlan:
    """Where each setting of a grid leaves a recorded run, and what ``replay branch``
    would train to answer it exactly."""

    root: RootRun
    plan: RootPlan
    grid: Grid
    #: The text ``replay branch --dry-run`` prints.
    text: str

    @property
    def settings(self) -> list[str]:
        """Each setting's label, in the grid's order."""
        return [s.label for s in self.plan.settings]

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.text)}</pre>"


def plan_branch(
    run: str | os.PathLike[str], *, recipe: str | None = None, max_epochs: int | None = None,
    **options: Any,
) -> BranchPlan:  # fmt: skip
    """Plan ``replay branch RUN`` for the grid of ``options`` (``replay branch``'s: the
    ReduceLROnPlateau options, and EarlyStopping's with
    ``policy="early_stopping+reduce_lr_on_plateau"``; Python values as for
    :func:`replay.sweep`), as ``--dry-run`` does.

    Raises:
        ReplayError: not a run directory, a policy or option branch does not take.
    """
    from replay.branching.planning import RootRun, build_plan, refuse_unused, render_plan
    from replay.engine.branch_plan import BRANCH_POLICIES, BranchPlanError, not_a_branch_policy
    from replay.sweeping.sweep import Grid

    given = grid_options(**options)
    for name in given.get("policies") or ():
        if name not in BRANCH_POLICIES:
            raise BranchPlanError(not_a_branch_policy(name))
    grid = Grid.from_options(Grid(policies=("reduce_lr_on_plateau",)), **given)
    refuse_unused([k for k, v in given.items() if v is not None], grid.policies, option_flag)
    root = RootRun(Path(run), recipe)
    plan = build_plan(root, grid)
    return BranchPlan(root, plan, grid, render_plan(root, plan, max_epochs))
