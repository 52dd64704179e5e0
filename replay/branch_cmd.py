"""The ``replay branch`` command: plan (pure), print, confirm, grow the tree, summarize.

Importing this module never imports TensorFlow: planning and ``--dry-run`` need only
run.json and metrics.csv; the training engine (:mod:`replay.branch`) is imported once
the plan is printed and confirmed. :func:`make_command` builds the command with the
grid options of ``replay sweep`` (passed in by :mod:`replay.cli`, which registers it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from analysis.errors import ReplayError
from replay.executor import (
    JobsInterrupted,
    executor_options,
    make_executor,
    require_shared_path,
    resume_command,
)

if TYPE_CHECKING:  # pragma: no cover
    from replay.branch_plan import RootPlan, Setting

LIST_SETTINGS = 12
"""Plans and summaries list every setting up to this many; larger grids are summarized."""


class RootRun:
    """What planning needs of the recorded run: its rows, config and manifest (no TF)."""

    def __init__(self, path: Path, recipe: str | None = None) -> None:
        from analysis.rundir import MANIFEST, METRICS_CSV, read_manifest
        from replay.branch_plan import BranchPlanError
        from replay.record import RecordConfig
        from replay.run_writer import read_rows

        if not (path / MANIFEST).is_file():
            raise BranchPlanError(
                f"{path}: no run.json; replay branch needs a run directory recorded by "
                "`replay record` (with its checkpoints)"
            )
        self.path = path
        self.manifest = read_manifest(path)
        if "fork_epoch" in self.manifest:
            raise BranchPlanError(
                f"{path}: is a branch; branch its run ({(path / '../..').resolve()}) instead"
            )
        self.own = isinstance(self.manifest.get("model"), dict)  # replay.keras.RecordCallback's
        if self.own:
            from replay.branch_user import user_config

            self.rows = read_rows(path / METRICS_CSV, columns=None)
            self.config = user_config(path, self.manifest, len(self.rows), recipe)
        elif not isinstance(self.manifest.get("config"), dict):
            raise BranchPlanError(f"{path / MANIFEST}: has no training config to branch with")
        else:
            self.config = RecordConfig.from_json(self.manifest["config"])
            self.rows = read_rows(path / METRICS_CSV)
        self.status = self.manifest.get("status")
        self.curves = {c: [r[c] for r in self.rows] for c in (self.rows[0] if self.rows else {})}

    def require_checkpoints(self) -> None:
        """Raise :class:`BranchPlanError` unless the run kept its checkpoints."""
        from replay.branch_plan import BranchPlanError

        if self.manifest.get("checkpoints_included") is False:
            raise BranchPlanError(
                f"{self.path}: was published without its checkpoints, so no epoch can be "
                "re-trained; branch the original run directory (--dry-run plans it)"
            )

    @property
    def epoch_seconds(self) -> float:
        seconds = [r["epoch_seconds"] for r in self.rows]
        return sum(seconds) / len(seconds) if seconds else 0.0


def build_plan(root: RootRun, grid) -> RootPlan:
    """The plan for ``grid`` (a :class:`replay.sweeping.Grid`) on ``root``.

    Raises:
        BranchPlanError: a monitor the run lacks (or that a callback cannot watch), an
            ``--initial-lr`` other than the run's, an incomplete run.
    """
    from replay.branch_plan import BranchPlanError, plan_root, settings_for
    from replay.run_writer import METRICS

    if root.status != "complete":
        how = (
            "continue its fit (replay.keras.restore gives the model and initial_epoch)"
            if root.own
            else f"finish it with `replay record --resume --out {root.path}`"
        )
        raise BranchPlanError(
            f"{root.path}: the run is {root.status} ({len(root.rows)} epochs); {how} first"
        )
    initial = root.config.learning_rate
    if grid.initial_lr is not None and grid.initial_lr != initial:
        raise BranchPlanError(
            f"--initial-lr {grid.initial_lr:g}: the run was recorded at {initial:g}; a branch "
            "continues the recorded training, so leave --initial-lr out"
        )
    monitors = grid.monitors or ("val_loss",)
    watchable = [c for c in root.curves if c not in ("epoch", "learning_rate", "epoch_seconds")
                 and not c.startswith("test_")] if root.own else METRICS  # fmt: skip
    for monitor in monitors:
        if monitor not in watchable:
            raise BranchPlanError(
                f"--monitor {monitor}: the run's callbacks can watch {', '.join(watchable)}"
            )
    settings = settings_for(grid, monitors)
    return plan_root(settings, root.curves, initial_lr=initial, horizon=root.config.epochs)


# ---------------------------------------------------------------------------- rendering


def _duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2 h 5 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def _epochs(forks: Sequence[int]) -> str:
    """``5, 10-16``."""
    parts, start = [], None
    for i, k in enumerate(forks):
        start = k if start is None else start
        if i + 1 == len(forks) or forks[i + 1] != k + 1:
            parts.append(str(k) if start == k else f"{start}-{k}")
            start = None
    return ", ".join(parts)


def render_plan(root: RootRun, plan: RootPlan, max_epochs: int | None) -> str:
    """The plan as ``replay branch`` prints it before training."""
    n = len(plan.settings)
    policies = sorted({s.policy for s in plan.settings})
    monitors = sorted({s.plateau.monitor for s in plan.settings})
    lines = [
        f"{root.path}: {plan.horizon} epochs recorded at lr {root.config.learning_rate:g} "
        f"({root.epoch_seconds:.1f} s an epoch)",
        f"{n} setting{'s' if n != 1 else ''} ({', '.join(policies)} on {', '.join(monitors)}):",
        f"  {plan.on_run} answered exactly by the recorded run (their rate never leaves it, "
        "or their EarlyStopping stops first)",
        f"  {n - plan.on_run} {'need' if n - plan.on_run != 1 else 'needs'} a branch: "
        f"{len(plan.groups)} first-level branch{'es' if len(plan.groups) != 1 else ''}"
        + (
            f", forking at epoch{'s' if len(plan.forks) != 1 else ''} {_epochs(plan.forks)}"
            if plan.groups
            else ""
        ),
    ]
    if n <= LIST_SETTINGS:
        for setting, place in zip(plan.settings, plan.placements, strict=True):
            lines.append(f"    {setting.label}: {_placement(place)}")
    if not plan.groups:
        return "\n".join(lines) + "\nnothing to train\n"
    bound = (f"at most {plan.epochs_high}" if plan.epochs_low == plan.epochs_high
             else f"{plan.epochs_low} to {plan.epochs_high}")  # fmt: skip
    lines.append(
        f"epochs to train: {bound} (an upper bound: sub-branches are found while training, "
        f"within it) + {plan.checks} exactness check{'s' if plan.checks != 1 else ''} (one "
        "epoch per fork epoch; each sub-branch adds one)"
    )
    share = 100 * plan.epochs_high / plan.naive if plan.naive else 0
    lines.append(
        f"  re-training every setting from scratch: {plan.naive} epochs; the tree: at most "
        f"{share:.0f}% of that"
    )
    if max_epochs is not None:
        lines.append(
            f"  capped at {max_epochs} epochs (--max-epochs, checks included): settings not "
            "reached stay counterfactual"
        )
    estimate = plan.seconds(root.epoch_seconds, max_epochs)
    lines.append(f"estimated time: about {_duration(estimate)} (from the recorded epoch_seconds)")
    return "\n".join(lines) + "\n"


def _placement(place) -> str:
    if place.fork is None:
        if place.stop is not None:
            return f"recorded run (its EarlyStopping stops at epoch {place.stop} first)"
        return "recorded run (its rate never leaves the recorded one)"
    return f"branch at epoch {place.fork} (lr {place.rate:g})"


def render_summary(root: RootRun, plan: RootPlan, tree) -> str:
    """The closing summary: what was trained, and where each setting stands."""
    s = tree.summary
    n = len(plan.settings)
    new = len(s.created)
    checks = s.checks_run + s.checks_cached
    lines = [
        f"done in {_duration(s.seconds)}: {len(s.branches)} branch"
        f"{'es' if len(s.branches) != 1 else ''} ({new} new, {s.sub_branches} sub-branch"
        f"{'es' if s.sub_branches != 1 else ''} found), {s.epochs} epochs trained, {checks} "
        f"exactness check{'s' if checks != 1 else ''} ({s.checks_run} run now, "
        f"{s.checks_cached} found)" + (f"; DRIFT in {', '.join(s.drift)}" if s.drift else ""),
    ]
    on_run = sum(1 for node in s.ends.values() if node == "")
    drifting = sum(1 for node in s.ends.values() if node in s.drift)
    exact = (f"exactly, but {drifting} on drifting branches (not exact)" if drifting
             else "exactly")  # fmt: skip
    lines.append(
        f"{n} setting{'s' if n != 1 else ''}: {on_run} answered by the recorded run, "
        f"{len(s.ends) - on_run} by branches, {exact}; {len(s.cut)} still counterfactual"
        + (" (--max-epochs)" if s.cut else "")
    )
    if n <= LIST_SETTINGS:
        for i, setting in enumerate(plan.settings):
            lines.extend(_outcome_lines(root, plan, tree, i, setting))
        best = _best_recorded(root, plan)
        if best and any(setting.stopping is not None for setting in plan.settings):
            lines.append(f"  the best the recorded run holds (the most an EarlyStopping alone "
                         f"could keep): {best}")  # fmt: skip
    if s.ends:
        lines.append(f"`replay sweep {root.path}` reads the branches: these settings are facts now")
    return "\n".join(lines) + "\n"


def _outcome_lines(root: RootRun, plan: RootPlan, tree, i: int, setting: Setting) -> list[str]:
    s = tree.summary
    if i in s.cut:
        node, epoch = s.cut[i]
        where = "the recorded run" if not node else node
        return [f"  {setting.label}: counterfactual from epoch {epoch} (on {where}; "
                "--max-epochs)"]  # fmt: skip
    node_id = s.ends.get(i)
    if node_id is None:
        return [f"  {setting.label}: not answered"]
    from replay.branch_plan import outcome

    curves = tree.nodes[node_id].curves() if node_id else root.curves
    initial = root.config.learning_rate
    o = outcome(setting, curves, initial_lr=initial)
    where = "the recorded run" if not node_id else f"branch {node_id}"
    lines = [f"  {setting.label} on {setting.plateau.monitor} ({where}): {_describe(o)}"]
    if setting.stopping is not None and node_id:
        base = outcome(setting, root.curves, initial_lr=initial)  # its EarlyStopping alone
        lines.append(f"    the same EarlyStopping on the recorded run (lr "
                     f"{_recorded_rates(root)}): {_describe(base, cuts=False)}")  # fmt: skip
    return lines


def _best_recorded(root: RootRun, plan: RootPlan) -> str | None:
    """The recorded run's best epoch by the held-out metric of the settings' monitor."""
    from replay.branch_plan import heldout_of

    metric = heldout_of(plan.settings[0].plateau.monitor, list(root.curves))
    if metric is None:
        return None
    values = root.curves[metric]
    sign = -1 if metric.endswith("accuracy") else 1
    finite = [e for e, v in enumerate(values) if v == v]  # NaN is never the best
    if not finite:
        return None
    epoch = min(finite, key=lambda e: (sign * values[e], e))
    shown = ", ".join(f"{c} {root.curves[c][epoch]:.4f}" for c in ("test_loss", "test_accuracy")
                      if c in root.curves)  # fmt: skip
    return f"epoch {epoch} by {metric}: {shown}"


def _recorded_rates(root: RootRun) -> str:
    rates = list(dict.fromkeys(root.curves.get("learning_rate", [])))
    return " then ".join(f"{r:g}" for r in rates) if len(rates) <= 3 else "as recorded"


def _describe(o, cuts: bool = True) -> str:
    what = (f"stops at epoch {o.stopped_epoch}" if o.stopped_epoch is not None
            else "trains to the last epoch")  # fmt: skip
    if cuts:
        what += (
            f", lr cut at the end of epoch{'s' if len(o.reductions) != 1 else ''} "
            + ", ".join(map(str, o.reductions))
            if o.reductions
            else ", no lr cut"
        )
    metrics = [c for c in ("test_loss", "test_accuracy") if c in o.metrics]
    shown = ", ".join(f"{c} {o.metrics[c]:.4f}" for c in metrics)
    return f"{what}; you end with epoch {o.final_epoch}: {shown}"


# ---------------------------------------------------------------------------- the command


#: Grid options of ``replay sweep`` that no branch setting uses (Prechelt, ModelCheckpoint).
NEVER_USED = ("gl_alpha", "pq_alpha", "up_strips", "strip_length", "save_best_only",
              "initial_value_threshold")  # fmt: skip
#: EarlyStopping's own options: used only by the combined policy.
STOPPING_ONLY = ("baseline", "start_from_epoch", "restore_best_weights")


def unused_options(given: Sequence[str], policies: Sequence[str]) -> list[str]:
    """The grid options among ``given`` (parameter names) that no setting of ``policies``
    uses: Prechelt's and ModelCheckpoint's always; EarlyStopping's without the combined
    policy, and there ``patience`` / ``min_delta`` where ``lr_patience`` / ``lr_min_delta``
    replace them.

    >>> unused_options(["patience", "gl_alpha", "baseline"], ["reduce_lr_on_plateau"])
    ['gl_alpha', 'baseline']
    """
    unused = set(NEVER_USED)
    if "early_stopping+reduce_lr_on_plateau" not in policies:
        unused.update(STOPPING_ONLY)
        unused.update(k for k in ("patience", "min_delta") if f"lr_{k}" in given)
    return [name for name in given if name in unused]


def _refuse_unused(ctx: click.Context, policies: Sequence[str]) -> None:
    """Raise :class:`BranchPlanError` naming every option given that the plan ignores."""
    from click.core import ParameterSource

    from replay.branch_plan import BranchPlanError

    default = (None, ParameterSource.DEFAULT)
    given = [p.name for p in ctx.command.params
             if p.name and ctx.get_parameter_source(p.name) not in default]  # fmt: skip
    unused = unused_options(given, policies)
    if unused:
        flags = {p.name: p.opts[0] for p in ctx.command.params}
        names = ", ".join(flags[n] for n in unused)
        raise BranchPlanError(
            f"{names}: not used by replay branch --policy {','.join(policies)} (it re-trains "
            "ReduceLROnPlateau schedules, with EarlyStopping only under "
            "early_stopping+reduce_lr_on_plateau); leave "
            f"{'them' if len(unused) > 1 else 'it'} out, or sweep them with replay sweep"
        )


def _policies(ctx, param, values) -> tuple[str, ...] | None:
    """``--policy`` for branch: only the policies that change the learning rate."""
    from replay.branch_plan import BRANCH_POLICIES, BranchPlanError

    names: dict[str, None] = {}
    for text in values or ():
        for item in text.split(","):
            name = item.strip()
            if name not in BRANCH_POLICIES:
                from replay.branch_plan import not_a_branch_policy

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
    """``replay branch`` with ``grid_options()`` (replay.cli's grid decorator)."""

    from replay.record_cmd import KeepArgs

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
        from replay.branch_plan import BranchPlanError
        from replay.sweeping import Grid

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
        from replay.record_cmd import import_tensorflow_quietly

        import_tensorflow_quietly()
        from replay.branch import BranchInterrupted, Tree, load_data, load_root

        argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else []
        if root.own:
            from replay.branch_user import UserTree, load_recipe_data, load_user_root

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
            param.callback = _policies  # its help: replay.cli._grid_options("branch")
    return branch


__all__ = ["RootRun", "build_plan", "make_command", "render_plan", "render_summary"]
