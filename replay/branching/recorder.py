"""One branch as ``replay record`` trains it: a branch is trained as a resumed run whose
ReduceLROnPlateau is the setting's. The parent's checkpoint of epoch ``k - 1`` is loaded
(sha256-verified), fresh real callbacks are fed the rows ``0 .. k-1`` (the optimizer's rate
set back to the initial rate first), so that the real ``keras.callbacks.ReduceLROnPlateau``
is in the state the setting's would have been in, and cuts the rate at the end of ``k - 1``
as the plan said (its rate must equal the replay's float32 rate, or the branch refuses);
then epochs ``k, k+1, ...`` train with it live and are committed exactly as ``replay
record`` commits them (:class:`replay.mnist.record.Recorder`: Ctrl-C and kill safety, resume).

A branch's ``metrics.csv`` starts with its parent's rows ``0 .. k-1``, copied byte for
byte, then holds the rows of the epochs it trained itself; its run.json says where it
forked (:meth:`Fork.manifest_fields`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.errors import BadLog
from analysis.reading.rundir import METRICS_CSV, CheckpointInfo, atomic_write
from replay.branching.nodes import BranchRefused, Node, load_verified
from replay.engine.branch_plan import Setting
from replay.engine.rates import f32
from replay.mnist.config import RecordConfig
from replay.mnist.data import Mnist
from replay.mnist.record import Recorder
from replay.recording.faults import Hooks
from replay.recording.resume import ResumePlan
from replay.recording.run_writer import Board, format_row, header

__all__ = ["BranchRecorder", "Fork"]


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
