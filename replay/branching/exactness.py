"""The exactness check of ``replay branch``: before a branch trains, epoch ``k`` is
re-trained from the parent's checkpoint of ``k - 1`` under the parent's recorded rate and
compared with the parent's row ``k``, bit for bit (every column but ``epoch_seconds``). A
difference means another machine or library build: the branch refuses, unless
``allow_drift`` (then its run.json says ``drift: true``). Checks are kept in
``RUN/branches/exactness.json``, one per (parent, fork epoch, checkpoint, environment), so
sibling branches do not repeat them. TensorFlow is imported only by :func:`check_fork`.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.errors import BadManifest
from analysis.reading.rundir import atomic_write
from replay.branching.nodes import Node, load_verified
from replay.mnist.config import RecordConfig
from replay.mnist.data import Mnist
from replay.mnist.record import MnistBatches, seed_everything, train_epoch
from replay.recording.run_writer import METRICS, utc_now, versions

__all__ = ["EXACTNESS", "Checks", "check_fork", "environment", "same_value"]

EXACTNESS = "exactness.json"


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


class Checks:
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
