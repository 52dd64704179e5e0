"""What ``replay record --resume`` does with a stopped run, decided without touching it.

:func:`plan_resume` compares run.json, the complete rows of metrics.csv and the files in
``checkpoints/`` and returns a :class:`ResumePlan`; the recorder
(:meth:`replay.mnist.record.Recorder.resume`) verifies the checkpoint it names, applies it
and loads the model. Pure: no Keras, no file access, so every crash state of the commit
order (``docs/run-directory.md``) is a row of a table test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import BadLog, BadManifest, LogNotFound
from analysis.reading.rundir import (
    CHECKPOINTS,
    METRICS_CSV,
    TMP_PREFIX,
    CheckpointInfo,
    Manifest,
    checkpoint_epoch,
    checkpoint_name,
    checkpoint_relpath,
    first_own_epoch,
)


@dataclass(frozen=True)
class ResumePlan:
    """How to continue a stopped run.

    ``committed``: the epochs kept (every complete metrics.csv row); training continues
    at this 0-based epoch. ``load``: the checkpoint (relative path) to load, None to
    build a fresh model (a branch: to load its parent's checkpoint of the epoch before
    ``fork_epoch``). ``verify``: the run.json entry to check that checkpoint against
    before loading it, None when it is adopted. ``adopt``: the epoch whose row was
    committed but whose run.json entry was not (the process died in between): its
    checkpoint is hashed and added to run.json. ``discard``: names in ``checkpoints/``
    to delete (temporary files, checkpoints of epochs without a row). ``write_header``:
    metrics.csv does not exist yet (the process died before writing it).
    """

    committed: int
    load: str | None = None
    verify: CheckpointInfo | None = None
    adopt: int | None = None
    discard: tuple[str, ...] = ()
    write_header: bool = False


def plan_resume(
    manifest: Manifest,
    rows: Sequence[Any] | None,
    checkpoints: Iterable[str],
    *,
    root: Path = Path("."),
) -> ResumePlan:
    """Return the plan for resuming the run at ``root`` (used in messages only).

    ``manifest`` is run.json validated for resuming
    (``analysis.reading.rundir.read_manifest(root, resume=True)``: epochs[i] is epoch i),
    ``rows`` the complete rows of metrics.csv (None when the file is missing),
    ``checkpoints`` the names of the files in ``checkpoints/``.

    A row is written only after its checkpoint is committed, and run.json only after
    the row: so run.json lists as many epochs as metrics.csv has rows, or one fewer.
    A branch (run.json has ``fork_epoch`` k) starts with the k rows copied from its
    parent and lists only its own epochs: the same holds of the rows after the k-th.

    Raises:
        BadLog: metrics.csv is missing but run.json lists epochs.
        BadManifest: run.json and metrics.csv disagree by more than the last row.
        LogNotFound: the checkpoint of a row that run.json lacks is missing.

    >>> rows, files = [{"epoch": 0}], ["epoch-001.keras", ".tmp-epoch-002.keras"]
    >>> plan_resume({"epochs": []}, rows, files)  # doctest: +NORMALIZE_WHITESPACE
    ResumePlan(committed=1, load='checkpoints/epoch-001.keras', verify=None, adopt=0,
               discard=('.tmp-epoch-002.keras',), write_header=False)
    """
    entries = manifest["epochs"]
    first = first_own_epoch(manifest)
    if rows is None and entries:
        raise BadLog(f"{root / METRICS_CSV}: missing, so the committed epochs are unknown")
    committed = len(rows) if rows is not None else first
    if committed < first:
        raise BadManifest(
            f"{root}: metrics.csv has {committed} rows, fewer than the {first} its parent's "
            f"rows before fork_epoch {first} should give"
        )
    own = committed - first
    if len(entries) > own or len(entries) < own - 1:
        counted = f" after fork_epoch {first}" if first else ""
        raise BadManifest(
            f"{root}: run.json lists {len(entries)} epochs but metrics.csv has {own} rows{counted}"
        )
    names = set(checkpoints)
    adopt = committed - 1 if len(entries) == own - 1 else None
    if adopt is not None and checkpoint_name(adopt) not in names:
        path = root / CHECKPOINTS / checkpoint_name(adopt)
        raise LogNotFound(f"{path}: checkpoint of committed epoch {adopt} is missing")
    verify = None
    if own and adopt is None:
        last = entries[-1]
        verify = CheckpointInfo(
            last["epoch"], last["checkpoint"], last.get("sha256"), last.get("bytes")
        )
    return ResumePlan(
        committed=committed,
        load=checkpoint_relpath(committed - 1) if own else None,
        verify=verify,
        adopt=adopt,
        discard=tuple(sorted(n for n in names if _leftover(n, committed))),
        write_header=rows is None,
    )


def _leftover(name: str, committed: int) -> bool:
    """A temporary file, or the checkpoint of an epoch whose row was never written."""
    if name.startswith(TMP_PREFIX):
        return True
    epoch = checkpoint_epoch(name)
    return epoch is not None and epoch >= committed
