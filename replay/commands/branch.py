"""The ``replay branch`` command: plan (pure), print, confirm, grow the tree, summarize.

Importing this module never imports TensorFlow: planning and ``--dry-run`` need only
run.json and metrics.csv; the training engine (:mod:`replay.branching.branch`) is imported once
the plan is printed and confirmed. :func:`make_command` builds the command with the
grid options of ``replay sweep`` (passed in by :mod:`replay.commands.cli`, which registers it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from analysis.errors import ReplayError
from replay.branching.planning import (
    RootRun,
    build_plan,
    refuse_unused,
    render_plan,
    render_summary,
)
from replay.recording.executor import (
    JobsInterrupted,
    executor_options,
    make_executor,
    require_shared_path,
    resume_command,
)

if TYPE_CHECKING:  # pragma: no cover
    pass

LIST_SETTINGS = 12
"""Plans and summaries list every setting up to this many; larger grids are summarized."""


def _refuse_unused(ctx: click.Context, policies: Sequence[str]) -> None:
    """Raise :class:`BranchPlanError` naming every option given that the plan ignores."""
    from click.core import ParameterSource

    default = (None, ParameterSource.DEFAULT)
    given = [p.name for p in ctx.command.params
             if p.name and ctx.get_parameter_source(p.name) not in default]  # fmt: skip
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    refuse_unused(given, policies, flags.__getitem__)


def _policies(ctx, param, values) -> tuple[str, ...] | None:
    """``--policy`` for branch: only the policies that change the learning rate."""
    from replay.engine.branch_plan import BRANCH_POLICIES, BranchPlanError

    names: dict[str, None] = {}
    for text in values or ():
        for item in text.split(","):
            name = item.strip()
            if name not in BRANCH_POLICIES:
                from replay.engine.branch_plan import not_a_branch_policy

                raise BranchPlanError(not_a_branch_policy(name or repr(text)))
            names[name] = None
    return tuple(names) or None


class BranchJobsFailed(ReplayError):
    """Some branch jobs failed on an executor (each reported with its resume command)."""


def _failure_report(failed: Sequence[tuple[str, str]], argv: Sequence[str],
                    echo: Callable[..., None]) -> str:  # fmt: skip
    """Write one line per failed job (to stderr) with the command that resumes it;
    return the closing one-line error."""
    extra = () if {"-y", "--yes"} & set(argv) else ("-y",)
    again = resume_command(argv, extra=extra)
    for job, why in failed:
        echo(f"FAILED: branch {job}: {why}; resume it with: {again}", err=True)
    n = len(failed)
    return (f"{n} branch job{'s' if n != 1 else ''} failed (each branch keeps its committed "
            f"epochs); `{again}` resumes {'them' if n != 1 else 'it'}")  # fmt: skip


def make_command(grid_options: Callable[[], Callable]) -> click.Command:
    """``replay branch`` with ``grid_options()`` (replay.commands.cli's grid decorator)."""

    from replay.commands.record import KeepArgs

    @click.command("branch", cls=KeepArgs,
                   context_settings={"help_option_names": ["-h", "--help"],
                                     "max_content_width": 100})  # fmt: skip
    @click.argument("run", metavar="RUN", type=click.Path(path_type=Path))
    @grid_options()
    @click.option("--dry-run", is_flag=True, help="Print the plan and stop: train nothing.")
    @click.option("--max-epochs", type=click.IntRange(min=1), default=None, metavar="N",
                  help="Train at most N epochs in all (exactness checks included); settings "
                       "not reached stay counterfactual.")  # fmt: skip
    @click.option("--yes", "-y", is_flag=True, help="Do not ask before training.")
    @click.option(
        "--resume",
        is_flag=True,
        help="Continue branches left interrupted (Ctrl-C, a crash, --max-epochs).",
    )
    @click.option(
        "--allow-drift",
        is_flag=True,
        help="Branch even where re-training the fork epoch does not reproduce the "
        "recorded row (another machine or build); marked drift: true.",
    )
    @click.option(
        "--data",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The MNIST file the run was recorded from, if not found as recorded.",
    )
    @click.option(
        "--recipe",
        default=None,
        metavar="MODULE:FUNCTION",
        help="A run of your own model (RecordCallback): the recipe to train it with, "
        "instead of the one run.json names (e.g. after its file moved).",
    )
    @executor_options("branches", "RUN")
    @click.pass_context
    def branch(ctx: click.Context, run: Path, dry_run: bool, max_epochs: int | None, yes: bool,
               resume: bool, allow_drift: bool, data: Path | None, recipe: str | None,
               executor: str, address: str | None, **opts: Any) -> None:  # fmt: skip
        """Re-train RUN from the epochs where learning-rate settings leave it: exact answers.

        For each ReduceLROnPlateau setting of the grid (alone, or with an EarlyStopping:
        --policy early_stopping+reduce_lr_on_plateau), replay it on RUN's curve; where its
        rate first differs from the recorded one (epoch k), re-train from the checkpoint of
        epoch k-1 with the real callback live. Settings share branches while their rates
        agree; the tree grows while it trains. Branches go to RUN/branches/<id>/, each a
        run directory like RUN; `replay sweep RUN` then reports these settings exactly.
        The EarlyStopping and ReduceLROnPlateau options of sweep (default policy:
        reduce_lr_on_plateau).

        \b
        Examples:
          replay branch runs/mnist-mlp --patience 3..10 --dry-run
          replay branch runs/mnist-mlp --patience 3..10 --factor 0.1,0.2,0.5 -y
          replay branch runs/mnist-mlp --policy early_stopping+reduce_lr_on_plateau \\
              --patience 5 --min-delta 0 --lr-patience 3 --lr-min-delta 1e-4 \\
              --factor 0.25 --restore-best-weights no -y
          replay branch runs/mnist-mlp --patience 3..10 --resume -y   # after Ctrl-C
          replay branch /shared/runs/mlp --patience 3..10 -y --executor ray
        """
        from replay.engine.branch_plan import BranchPlanError
        from replay.sweeping.sweep import Grid

        runner = make_executor(executor, address)
        require_shared_path(executor, run, "RUN")
        require_shared_path(executor, data, "--data")
        if max_epochs is not None and executor != "local":
            raise BranchPlanError(
                "--max-epochs caps the epochs of one process's tree; it cannot be used "
                f"with --executor {executor}"
            )
        grid = Grid.from_options(Grid(policies=("reduce_lr_on_plateau",)), **opts)
        _refuse_unused(ctx, grid.policies)
        root = RootRun(run, recipe)
        plan = build_plan(root, grid)
        if not dry_run and plan.groups:
            root.require_checkpoints()  # refused before the plan is printed
        click.echo(render_plan(root, plan, max_epochs), nl=False)
        if dry_run or not plan.groups:
            return
        if sys.stdin.isatty() and not yes:
            click.confirm("Train these branches?", default=True, abort=True)
        runner.connect()  # an unreachable cluster is refused before RUN/branches is written
        from replay.commands.record import import_tensorflow_quietly

        import_tensorflow_quietly()
        from replay.branching.branch import Tree
        from replay.branching.nodes import BranchInterrupted, load_data, load_root

        argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else []
        if root.own:
            from replay.branching.user_model import UserTree, load_recipe_data, load_user_root

            node, config = load_user_root(run, recipe)
            made = load_recipe_data(config, run, echo=click.echo)
            tree = UserTree(node, config, plan, made, data_arg=config.recipe,
                            max_epochs=max_epochs, allow_drift=allow_drift, resume=resume,
                            argv=argv, echo=click.echo)  # fmt: skip
        else:
            node, config = load_root(run)
            dataset = load_data(node, config, data)
            tree = Tree(node, config, plan, dataset, data_arg=data, max_epochs=max_epochs,
                        allow_drift=allow_drift, resume=resume, argv=argv,
                        echo=click.echo)  # fmt: skip
        try:
            tree.grow(runner)
        except (BranchInterrupted, JobsInterrupted) as e:
            click.echo(f"Interrupted: {e}", err=True)
            sys.exit(130)
        click.echo(render_summary(root, plan, tree), nl=False)
        if tree.summary.failed:
            raise BranchJobsFailed(
                _failure_report(tree.summary.failed, ctx.meta.get("argv") or [], click.echo)
            )

    for param in branch.params:
        if param.name == "policies":
            param.callback = _policies  # its help: replay.commands.cli._grid_options("branch")
    return branch


__all__ = ["BranchJobsFailed", "make_command"]
