"""The nodes of ``replay branch``'s tree: the recorded run and its branches, each a run
directory (docs/run-directory.md, "Branches"), loaded with the checks that refuse what
cannot be branched; the data and the setting a branch trains with; and the load of a
parent's checkpoint, sha256-verified, that every branch and fork check starts from.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from analysis.errors import BadManifest, ChecksumMismatch, LogNotFound, ReplayError
from analysis.reading.rundir import (
    BRANCHES,
    MANIFEST,
    METRICS_CSV,
    CheckpointInfo,
    CheckpointMismatch,
    parse_checkpoints,
    read_manifest,
    verify_checkpoint,
)
from replay.engine.branch_plan import Plateau, Setting, Stopping
from replay.mnist.config import RecordConfig
from replay.mnist.data import BadData, Mnist, load_mnist
from replay.mnist.record import command_option
from replay.recording.run_writer import load_checkpoint, read_rows

__all__ = [
    "ROOT_REF",
    "BranchInterrupted",
    "BranchRefused",
    "Drift",
    "Node",
    "epochs_of",
    "load_data",
    "load_root",
    "load_verified",
    "read_node",
    "setting_of",
]

ROOT_REF = "../.."


class BranchRefused(ReplayError):
    """A run or a branch that cannot be branched (not recorded, incomplete, changed, ...)."""


class Drift(BranchRefused):
    """Re-training the fork epoch did not reproduce the recorded row."""


class BranchInterrupted(ReplayError):
    """Ctrl-C or a failed write stopped a branch; it is marked interrupted."""


# ---------------------------------------------------------------- the tree's nodes


@dataclasses.dataclass
class Node:
    """A run directory of the tree: the recorded run (``id`` "") or a branch."""

    id: str
    path: Path
    rows: list[dict[str, float]]
    manifest: dict[str, Any]

    @property
    def ref(self) -> str:
        """How a child's run.json names it as ``parent``: ``../..`` or ``../<id>``."""
        return ROOT_REF if not self.id else f"../{self.id}"

    @property
    def name(self) -> str:
        return "the run" if not self.id else self.id

    def curves(self) -> dict[str, list[float]]:
        return {c: [r[c] for r in self.rows] for c in (self.rows[0] if self.rows else {})}

    def checkpoint(self, epoch: int) -> CheckpointInfo:
        """Its own checkpoint of ``epoch`` as run.json records it.

        Raises:
            LogNotFound: none is recorded (an epoch before a branch's fork).
        """
        info = parse_checkpoints(self.manifest).get(epoch)
        if info is None:
            raise LogNotFound(f"{self.path / MANIFEST}: no checkpoint of epoch {epoch}")
        return info


def load_root(path: Path) -> tuple[Node, RecordConfig]:
    """The recorded run to branch, and its training configuration.

    Raises:
        BranchRefused: not a complete run directory of ``replay record`` with its
            checkpoints (or a branch itself).
        BadManifest, UnsafePath, BadLog: a damaged run.json or metrics.csv.
    """
    if not (path / MANIFEST).is_file():
        raise BranchRefused(
            f"{path}: no run.json; replay branch needs a run directory recorded by "
            "`replay record` (with its checkpoints)"
        )
    manifest = read_manifest(path)
    if "fork_epoch" in manifest:
        raise BranchRefused(
            f"{path}: is a branch; branch its run ({(path / ROOT_REF).resolve()}) instead"
        )
    if manifest.get("checkpoints_included") is False:
        raise BranchRefused(
            f"{path}: was published without its checkpoints, so no epoch can be re-trained; "
            "branch the original run directory (--dry-run plans it)"
        )
    manifest = read_manifest(path, resume=True)
    status = manifest.get("status")
    if status != "complete":
        raise BranchRefused(
            f"{path}: the run is {status} ({len(manifest['epochs'])} epochs); finish it with "
            f"`replay record --resume --out {path}` first"
        )
    config = RecordConfig.from_json(manifest["config"])
    rows = read_rows(path / METRICS_CSV)
    if len(rows) != len(manifest["epochs"]) or len(rows) != config.epochs:
        raise BadManifest(
            f"{path}: run.json lists {len(manifest['epochs'])} epochs of {config.epochs} but "
            f"metrics.csv has {len(rows)} rows; restore the run or re-record it"
        )
    return Node("", path, rows, manifest), config


def epochs_of(node: Node, fork: int) -> str:
    """``18 epochs, 6 of its own``: a branch's curve holds its parent's epochs before the
    fork (copied) and its own from ``fork`` on."""
    total = len(node.rows)
    own = max(total - fork, 0)
    return f"{total} epoch{'s' if total != 1 else ''}, {own} of its own"


def read_node(root: Path, bid: str) -> Node:
    """The branch ``bid`` of the run at ``root``: its run.json and its rows so far."""
    path = root / BRANCHES / bid
    manifest = read_manifest(path)
    csv = path / METRICS_CSV
    rows = read_rows(csv, columns=None) if csv.is_file() else []
    return Node(bid, path, rows, manifest)


def load_verified(run: Path, info: CheckpointInfo) -> Any:
    """The model of checkpoint ``info`` of the run at ``run``, its sha256 verified first.

    Raises:
        ChecksumMismatch: the file differs from run.json's record of it.
    """
    try:
        verify_checkpoint(run / info.path, info.sha256, info.bytes, epoch=info.epoch)
    except CheckpointMismatch as e:
        raise ChecksumMismatch(
            f"{e.path}: sha256 {e.sha256} ({e.bytes} bytes) differs from run.json's "
            f"{e.expected_sha256} ({e.expected_bytes} bytes); restore the checkpoint"
        ) from None
    return load_checkpoint(run / info.path)


def setting_of(out: Path, manifest: dict[str, Any]) -> Setting:
    """The setting a branch's run.json names (its live ReduceLROnPlateau goes on live).

    Raises:
        BadManifest: ``setting`` lacks a parameter.
    """
    raw = manifest["setting"]
    try:
        plateau = Plateau(**raw["reduce_lr_on_plateau"])
        e = raw.get("early_stopping")
        return Setting(plateau, None if e is None else Stopping(**e))
    except TypeError as err:
        raise BadManifest(
            f"{out / MANIFEST}: setting is malformed ({err}); restore run.json or delete the branch"
        ) from None


def load_data(root: Node, config: RecordConfig, data: str | os.PathLike | None) -> Mnist:
    """The data the run was recorded with (its content sha256 checked), limited as it was.

    Raises:
        BadData: not the same data.
    """
    recorded = root.manifest["data"]
    if data is None and recorded.get("origin") == "--data":
        data = recorded.get("path") or command_option(root.manifest.get("command"), "--data")
    dataset = load_mnist(data)
    if dataset.source["content_sha256"] != recorded.get("content_sha256"):
        raise BadData(
            f"{dataset.source['path']} does not hold the data {root.path} was recorded with "
            "(content sha256 differs); pass the original file with --data"
        )
    return dataset.limited(config.limit)
