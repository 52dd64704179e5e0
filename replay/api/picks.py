"""``replay.pick``: the epoch and checkpoint one setting leaves you with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.errors import ReplayError
from replay.api.loading import load
from replay.api.options import (
    GRID_OPTIONS,
    check_monitors,
    choose_dialect,
    grid_options,
    number_text,
    option_flag,
)

if TYPE_CHECKING:  # pragma: no cover
    from analysis.reading.logs import RunLog

__all__ = ["Pick", "pick"]


@dataclass
class Pick:
    """What one setting would have left you with (``replay pick``)."""

    run: RunLog
    record: dict
    #: The lines ``replay pick`` prints about the setting and the epoch kept.
    lines: list[str]
    #: What a reader should know about the answer (the sweep's notes).
    notes: list[str]
    #: The held-out metric the regret is measured on.
    metric: str | None
    #: The log's warnings, and notes about the choice of dialect.
    warnings: list[str] = field(default_factory=list)
    dialect_notes: list[str] = field(default_factory=list)

    @property
    def final_epoch(self) -> int | None:
        return self.record["final_epoch"]

    def checkpoint(self) -> Path:
        """The kept epoch's checkpoint file, its sha256 verified.

        Raises:
            CheckpointUnavailable: none kept, not recorded, missing or altered.
        """
        from analysis.errors import CheckpointUnavailable
        from analysis.reading.logs import checkpoint_path

        final = self.final_epoch
        if final is None:
            raise CheckpointUnavailable("no epoch is kept, so there is no checkpoint.")
        return checkpoint_path(_holder(self.run, self.record, final), final, verify=True)

    def copy_checkpoint(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the kept checkpoint to ``dest`` (never overwriting); return ``dest``."""
        dest = Path(dest)
        if dest.exists():
            raise ReplayError(f"--copy {dest}: already exists; pick never overwrites a file.")
        _copy_new(self.checkpoint(), dest)
        return dest

    def __str__(self) -> str:
        return "\n".join(self.lines)


def pick(source: Any, **options: Any) -> Pick:
    """The epoch (and checkpoint) that one setting would have left you with, as
    ``replay pick`` says: every option one value; unset ones take Keras's defaults.

    Raises:
        ReplayError: a bad log or option, several values for an option.
    """
    from replay.engine.grid import GridError
    from replay.sweeping.sweep import Grid

    given = grid_options(**options)
    for name, values in given.items():
        rules = GRID_OPTIONS[name]
        if values is not None and not ({"names", "flag", "text", "number"} & set(rules)):
            if len(values) != 1:
                text = ",".join(number_text(v) for v in values)
                raise GridError(f"{option_flag(name)}: pick takes one value but got {text!r}.")
    grid = Grid.for_pick(**given)
    loaded = _one_run(source)
    check_monitors([loaded], grid)
    grid, dialect_notes = choose_dialect([loaded], grid, given, Grid.for_pick)
    from replay.sweeping.sweep import sweep as run_sweep

    result = run_sweep([loaded], grid)
    (record,) = result.records
    metric = record.get("regret_metric") or result.oracles[0]["heldout"]
    lines = _pick_lines(loaded, record, metric)
    return Pick(loaded, record, lines, result.notes, metric, list(loaded.warnings), dialect_notes)


def _one_run(source: Any) -> RunLog:
    """The one training of ``source`` (a path: ``LOG#N`` names one of several)."""
    if isinstance(source, (str, os.PathLike)):
        from analysis.formats import load_run

        return load_run(source)
    runs = load(source)
    if len(runs) != 1:
        from analysis.errors import AmbiguousLog

        raise AmbiguousLog(f"{len(runs)} trainings given; pick takes one.")
    return runs[0]


def _pick_lines(run: RunLog, record: dict, metric: str | None) -> list[str]:
    lines = [f"{run.name}: {_describe_pick(record)}"]
    final = record["final_epoch"]
    if final is None and record.get("counterfactual_from") is not None:
        return lines + [
            f"no recorded curve ran this schedule from epoch {record['counterfactual_from']} "
            "on, so the epoch you would end with is unknown; `replay branch` trains it"
        ]
    if final is None and record.get("saved_epochs") is not None:
        return lines + ["ModelCheckpoint saved no epoch, so there is no file to keep."]
    if final is None:
        return lines + ["the log has no epochs to keep."]
    lines.append(f"you end with the weights of epoch {final} (epoch {final + 1} in Keras's "
                 "1-based messages and checkpoint names)")  # fmt: skip
    if record["regret"] is not None:
        lines.append(f"regret on {metric}: {record['regret']:.6g} (0 = the best recorded epoch)")
    for k, v in record["final_metrics"].items():
        lines.append(f"  {k:<16} {'-' if v is None else repr(v)}")
    return lines


def _holder(run, record: dict, epoch: int):
    """The run directory holding ``epoch``'s checkpoint: the run, or the branch that
    answered the record (or the parent it forked from, for an epoch before its fork)."""
    from analysis.formats.run_dir import load_run_dir
    from analysis.reading.rundir import BRANCHES

    if not record.get("branch") or run.root is None:
        return run
    holder = load_run_dir(run.root / BRANCHES / record["branch"])
    while epoch not in holder.checkpoints and isinstance((holder.manifest or {}).get("parent"),
                                                         str):  # fmt: skip
        # "../.." or "../<id>" (validated): collapse lexically to name the path plainly
        holder = load_run_dir(os.path.normpath(holder.root / holder.manifest["parent"]))
    return holder


def _describe_pick(record: dict) -> str:
    from analysis.results.records import (
        MODEL_CHECKPOINT,
        REDUCE_LR_ON_PLATEAU,
        record_label,
    )

    dialect = f" ({record['dialect']} dialect)" if record.get("dialect") else ""
    setting = (f"{record['policy']}{dialect} {record_label(record)} on "
               f"{record['params']['monitor']}")  # fmt: skip
    where = f" (branch {record['branch']})" if record.get("branch") else ""
    if record["policy"] == MODEL_CHECKPOINT:
        saved = ", ".join(map(str, record["saved_epochs"])) or "none"
        return f"{setting}: saves epochs {saved}; its file holds the last one saved."
    if record["policy"] == REDUCE_LR_ON_PLATEAU:
        cuts = ", ".join(map(str, record["reductions"])) or "none"
        if record["counterfactual_from"] is None:
            return f"{setting}: cuts after epochs {cuts}, exact to the end{where}."
        return (f"{setting}: cuts after epochs {cuts}; exact up to epoch "
                f"{record['counterfactual_from'] - 1}{where}.")  # fmt: skip
    if record.get("counterfactual_from") is not None:
        return (f"{setting}: had not stopped by epoch {record['counterfactual_from'] - 1}, "
                f"where no recorded curve ran its learning-rate schedule{where}.")  # fmt: skip
    if record["censored"]:
        why = (
            f"never stopped within the {record['epochs_trained']} recorded epochs (censored: "
            "the log ended before this setting would have stopped)"
        )
    else:
        why = f"stopped at epoch {record['stopped_epoch']}"
    best = record["best_epoch"]
    return f"{setting}: {why}; best epoch {best}{where}."


def _copy_new(src: Path, dest: Path) -> None:
    """Copy without ever overwriting: the destination is created exclusively."""
    import shutil

    if dest.parent and not dest.parent.exists():
        raise ReplayError(f"--copy {dest}: directory {dest.parent} does not exist.")
    try:
        with open(src, "rb") as fin, open(dest, "xb") as fout:
            shutil.copyfileobj(fin, fout)
    except FileExistsError:
        raise ReplayError(f"--copy {dest}: already exists; pick never overwrites a file.") from None
