"""Planning ``replay branch`` on a recorded run, without TensorFlow: the run's rows and
config (:class:`RootRun`), the plan of the grid's settings on it (:func:`build_plan`:
:mod:`replay.engine.branch_plan`), and the text that describes the plan and, after training,
its outcome. The command (:mod:`replay.commands.branch`) and the API
(:func:`replay.plan_branch`) both plan through here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from replay.engine.branch_plan import RootPlan, Setting

__all__ = [
    "LIST_SETTINGS",
    "RootRun",
    "build_plan",
    "refuse_unused",
    "render_plan",
    "render_summary",
    "unused_options",
]

LIST_SETTINGS = 12
"""Plans and summaries list every setting up to this many; larger grids are summarized."""


class RootRun:
    """What planning needs of the recorded run: its rows, config and manifest (no TF)."""

    def __init__(self, path: Path, recipe: str | None = None) -> None:
        from analysis.reading.rundir import MANIFEST, METRICS_CSV, read_manifest
        from replay.engine.branch_plan import BranchPlanError
        from replay.mnist.config import RecordConfig
        from replay.recording.run_writer import read_rows

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
            from replay.branching.user_model import user_config

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
        from replay.engine.branch_plan import BranchPlanError

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
    """The plan for ``grid`` (a :class:`replay.sweeping.sweep.Grid`) on ``root``.

    Raises:
        BranchPlanError: a monitor the run lacks (or that a callback cannot watch), an
            ``--initial-lr`` other than the run's, an incomplete run.
    """
    from replay.engine.branch_plan import BranchPlanError, plan_root, settings_for
    from replay.recording.run_writer import METRICS

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
    from replay.engine.branch_plan import outcome

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
    from replay.engine.branch_plan import heldout_of

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


def refuse_unused(given: Sequence[str], policies: Sequence[str], flag_of) -> None:
    """Raise :class:`~replay.engine.branch_plan.BranchPlanError` naming every option among
    ``given`` (parameter names) that no setting of ``policies`` uses
    (:func:`unused_options`); ``flag_of(name)`` is how the option is spelled."""
    from replay.engine.branch_plan import BranchPlanError

    unused = unused_options(given, policies)
    if unused:
        names = ", ".join(flag_of(n) for n in unused)
        raise BranchPlanError(
            f"{names}: not used by replay branch --policy {','.join(policies)} (it re-trains "
            "ReduceLROnPlateau schedules, with EarlyStopping only under "
            "early_stopping+reduce_lr_on_plateau); leave "
            f"{'them' if len(unused) > 1 else 'it'} out, or sweep them with replay sweep"
        )
