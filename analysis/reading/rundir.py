"""The run directory: its one definition, shared by its writer and its readers.

``replay record`` (:mod:`replay.mnist.record`) writes run directories;
:func:`analysis.formats.run_dir.load_run_dir` and :func:`checkpoint_path` read them.
Both use this module for everything that defines the format, so that the two sides
cannot drift apart:

- names: :data:`MANIFEST`, :data:`METRICS_CSV`, :data:`CHECKPOINTS`,
  :func:`checkpoint_name` and its inverse :func:`checkpoint_epoch`;
- run.json's schema (:class:`Manifest`, :class:`EpochEntry`, :class:`ShadowEntry`,
  :data:`OPTIONAL_FIELDS`) and its one validator, :func:`validate_manifest`
  (:func:`read_manifest` reads and validates);
- :func:`sha256_file` and :func:`verify_checkpoint` (size and sha256 against run.json);
- :func:`atomic_write` (temporary file, fsync, ``os.replace``, fsync of the folder).

The format itself (files, fields, commit order) is documented in
``docs/run-directory.md``. This module imports neither pandas (the writer imports it)
nor TensorFlow nor :mod:`replay`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypedDict

from analysis.errors import (
    BadManifest,
    CheckpointUnavailable,
    ChecksumMismatch,
    LogNotFound,
    UnsafePath,
)
from analysis.reading.durable import (
    WRITER_WAIT,
    atomic_file,
    atomic_write,
    fsync_dir,
    fsync_file,
    has_writer,
    lock_for_writing,
    temporary_path,
)

if TYPE_CHECKING:
    from analysis.reading.runlog import RunLog

__all__ = [
    "BRANCHES",
    "BRANCH_FIELDS",
    "CHECKPOINTS",
    "MANIFEST",
    "METRICS_CSV",
    "OPTIONAL_FIELDS",
    "SCHEMA_VERSION",
    "TMP_PREFIX",
    "BranchSetting",
    "CheckpointInfo",
    "CheckpointMismatch",
    "EpochEntry",
    "Manifest",
    "ShadowEntry",
    "atomic_file",
    "atomic_write",
    "checkpoint_epoch",
    "checkpoint_name",
    "checkpoint_path",
    "checkpoint_relpath",
    "first_own_epoch",
    "fsync_dir",
    "fsync_file",
    "lock_for_writing",
    "metrics_header",
    "metrics_line",
    "parse_checkpoints",
    "read_manifest",
    "sha256_file",
    "temporary_path",
    "validate_manifest",
    "verify_checkpoint",
    "write_manifest",
    "WRITER_WAIT",
    "has_writer",
    "stopped_unmarked",
]

SCHEMA_VERSION = 1
MANIFEST = "run.json"
METRICS_CSV = "metrics.csv"
CHECKPOINTS = "checkpoints"
#: Where a run keeps the branches ``replay branch`` trains from it: ``RUN/branches/<id>/``.
BRANCHES = "branches"
TMP_PREFIX = ".tmp-"
"""A checkpoint being written: ``checkpoints/.tmp-epoch-001.keras`` until renamed."""

_SHA_RE = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- schema


class EpochEntry(TypedDict):
    """One committed epoch in run.json's ``epochs`` (in order, epoch 0 first)."""

    epoch: int  # 0-based
    checkpoint: str | None  # relative to the run directory: "checkpoints/epoch-001.keras"
    sha256: str | None  # 64 lower-case hex digits
    bytes: int | None  # size of the checkpoint file
    seconds: float  # wall time of the epoch (fit + test evaluation)


class ShadowEntry(TypedDict, total=False):
    """The decisions of one real Keras callback that ran in observe-only mode."""

    callback: str  # "EarlyStopping" | "ReduceLROnPlateau"
    params: dict[str, Any] | None  # every parameter, Keras defaults filled in
    stopped_epoch: int | None  # EarlyStopping: its first stop request (0-based), or null
    best_epoch: int | None  # EarlyStopping
    initial_lr: float  # ReduceLROnPlateau
    reductions: list[int]  # ReduceLROnPlateau: epochs at whose end it cut the rate
    final_lr: float  # ReduceLROnPlateau


class Manifest(TypedDict, total=False):
    """run.json. ``replay record`` writes every field; readers need none of them.

    A reader checks the fields it uses when they are present (:func:`validate_manifest`);
    resuming a run also requires ``schema_version``, ``config``, ``data``, ``epochs``.
    """

    schema_version: int  # SCHEMA_VERSION
    name: str
    created: str  # ISO 8601, UTC
    updated: str | None
    status: str  # running | complete | interrupted
    command: list[str]  # the `replay record` command line that reproduces the run
    argv: list[str]
    resumed: list[dict[str, Any]]  # {"at", "from_epoch", "argv", "versions"} per resume
    config: dict[str, Any] | None  # replay.mnist.config.RecordConfig; null for a `model` run
    data: dict[str, Any] | None  # origin, file name, sha256s, split sizes (never an absolute
    # path); null for a `model` run
    # A run recorded by replay.keras.RecordCallback (any Keras model) has config and data
    # null and describes the model instead: recorder, name, class, parameters,
    # optimizer, initial_learning_rate, loss, epochs, steps_per_epoch, test_samples.
    model: dict[str, Any]
    versions: dict[str, str]  # python, tensorflow, keras, numpy, callback-replay
    determinism: dict[str, Any]
    columns: list[str]  # metrics.csv's header
    checkpoints_included: bool  # false: published without checkpoints/ (absent: true)
    epochs: list[EpochEntry]  # a branch: its own epochs only, fork_epoch first
    shadow: list[ShadowEntry]
    # A branch (RUN/branches/<id>/run.json, written by `replay branch`) adds these; each
    # has a row in OPTIONAL_FIELDS. See docs/run-directory.md, "Branches".
    parent: str  # the parent run directory, relative to the branch's: "../.." or "../<id>"
    fork_epoch: int  # the branch's first own epoch (>= 1); rows before it are the parent's
    fork_lr: float  # the rate in effect during fork_epoch (a float32 value)
    setting: BranchSetting
    parent_checkpoint_sha256: str  # of the parent's checkpoint of epoch fork_epoch - 1
    exactness: dict[str, Any]  # the check of the fork point: epoch, matched, columns, ...
    drift: bool  # true: a check found a difference and --allow-drift went on


class BranchSetting(TypedDict):
    """run.json's ``setting`` of a branch: the callbacks of the setting it was trained for.

    ``reduce_lr_on_plateau`` holds the parameters of the real Keras callback that was
    live (Keras's names, as ``config.reduce_lr_on_plateau``); ``early_stopping`` those of
    the EarlyStopping of a combined setting (replayed over the curve, never live: other
    settings riding on the branch need its later epochs), else null.
    """

    policy: str  # "reduce_lr_on_plateau" | "early_stopping+reduce_lr_on_plateau"
    reduce_lr_on_plateau: dict[str, Any]
    early_stopping: dict[str, Any] | None


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


_PARENT_RE = re.compile(r"\.\./(\.\.|[A-Za-z0-9][A-Za-z0-9._-]*)")


def _is_parent(v: object) -> bool:
    """``"../.."`` (the run) or ``"../<id>"`` (a sibling branch), and nothing else."""
    return isinstance(v, str) and _PARENT_RE.fullmatch(v) is not None


def _is_setting(v: object) -> bool:
    return (
        isinstance(v, dict)
        and isinstance(v.get("policy"), str)
        and isinstance(v.get("reduce_lr_on_plateau"), dict)
        and (v.get("early_stopping") is None or isinstance(v.get("early_stopping"), dict))
    )


OPTIONAL_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "status": (lambda v: v is None or isinstance(v, str), "a string"),
    "checkpoints_included": (lambda v: isinstance(v, bool), "true or false"),
    "model": (lambda v: isinstance(v, dict), "an object"),
    # branches
    "parent": (_is_parent, "'../..' (the run) or '../<id>' (another branch)"),
    "fork_epoch": (lambda v: _is_int(v) and v >= 1, "an epoch number of at least 1"),
    "setting": (
        _is_setting,
        "an object with policy, reduce_lr_on_plateau (an object) and early_stopping "
        "(an object or null)",
    ),
    "parent_checkpoint_sha256": (
        lambda v: isinstance(v, str) and _SHA_RE.fullmatch(v) is not None,
        "64 lower-case hex digits",
    ),
    "exactness": (lambda v: isinstance(v, dict), "an object"),
    "drift": (lambda v: isinstance(v, bool), "true or false"),
}
"""Top-level fields that are checked only when present: name -> (test, what it must be).

A new optional field is one row here; ``epochs``, ``shadow`` and a branch's ``fork_lr``
(any positive number) have checks of their own. The branch fields are also checked
together when resuming (:data:`BRANCH_FIELDS`).
"""

BRANCH_FIELDS = ("parent", "fork_epoch", "setting", "parent_checkpoint_sha256")
"""What makes a run directory a branch: resuming one needs all four."""

_RESUME_REQUIRES = (("config", dict), ("data", dict), ("epochs", list))
_MODEL_RUN_NULLABLE = ("config", "data")
"""Null or absent in a run whose run.json has a ``model`` object (any Keras model)."""


def first_own_epoch(manifest: Manifest | dict[str, Any]) -> int:
    """The first epoch a run trained itself: 0, or a branch's ``fork_epoch``.

    Epochs before it are rows copied from the parent, with no checkpoint of their own.

    >>> first_own_epoch({}), first_own_epoch({"fork_epoch": 7})
    (0, 7)
    """
    fork = manifest.get("fork_epoch")
    return fork if _is_int(fork) and fork >= 1 else 0


# --------------------------------------------------------------------------- validation


def _bad_field(manifest: Path, where: str, what: str, got: object) -> BadManifest:
    shown = repr(got)
    shown = shown[:40] + "..." if len(shown) > 40 else shown
    return BadManifest(
        f"{manifest}: {where} must be {what}, got {shown}; restore run.json or re-record the run"
    )


def read_manifest(root: Path, *, resume: bool = False) -> Manifest:
    """Read ``root/run.json`` and return it validated by :func:`validate_manifest`.

    Raises:
        BadManifest: unreadable, not UTF-8, not JSON, or not a valid manifest.
        UnsafePath: a checkpoint path that escapes ``root`` (or, with ``resume``, one
            that is not ``checkpoints/epoch-NNN.keras``).
    """
    mpath = root / MANIFEST
    try:
        raw = mpath.read_bytes()
    except OSError as e:
        raise BadManifest(
            f"{mpath}: cannot be read ({e.strerror or e}); check its permissions"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadManifest(
            f"{mpath}: not UTF-8 text (byte 0x{raw[e.start : e.start + 1].hex()} at offset "
            f"{e.start}); restore run.json or re-record the run"
        ) from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadManifest(
            f"{mpath}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
            "restore run.json or re-record the run"
        ) from None
    except (ValueError, RecursionError) as e:
        raise BadManifest(
            f"{mpath}: not valid JSON ({type(e).__name__}: {str(e).splitlines()[0][:80]}); "
            "restore run.json or re-record the run"
        ) from None
    return validate_manifest(manifest, root, resume=resume)


def validate_manifest(manifest: Any, root: Path, *, resume: bool = False) -> Manifest:
    """Return ``manifest`` (a parsed run.json of the run at ``root``) once it is valid.

    Every reader's checks: a JSON object; :data:`OPTIONAL_FIELDS` of the right type
    when present; ``shadow`` a list of objects of the shape replaying them relies on;
    ``epochs`` a list of objects with a 0-based ``epoch`` (each once), and a
    ``checkpoint`` path that stays inside ``root``, a ``sha256`` and a ``bytes`` count,
    each of its type or null. With ``resume`` (what continuing a run needs on top):
    ``schema_version`` is :data:`SCHEMA_VERSION`; ``config`` and ``data`` are objects
    (null or absent in a run of any model, which has a ``model`` object instead) and
    ``epochs`` a list; ``checkpoints_included`` is not false; ``epochs[i]`` is epoch
    ``i`` with checkpoint ``checkpoints/epoch-NNN.keras``.

    Raises:
        BadManifest: the first field that is missing or malformed.
        UnsafePath: a checkpoint path that escapes ``root``, or with ``resume`` one
            that is not the canonical name of its epoch.

    >>> validate_manifest({"status": "complete"}, Path("run"))
    {'status': 'complete'}
    >>> validate_manifest({"status": 3}, Path("run"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    analysis.errors.BadManifest: run/run.json: status must be a string, got 3; ...
    """
    mpath = root / MANIFEST
    if not isinstance(manifest, dict):
        raise _bad_field(mpath, "the top level", "a JSON object", manifest)
    if resume:
        _check_resumable(manifest, mpath)
    for key, (valid, what) in OPTIONAL_FIELDS.items():
        if key in manifest and not valid(manifest[key]):
            raise _bad_field(mpath, key, what, manifest[key])
    _check_shadow(manifest.get("shadow"), mpath)
    rate = manifest.get("fork_lr")
    if "fork_lr" in manifest and not (isinstance(rate, float) and math.isfinite(rate) and rate > 0):
        raise _bad_field(mpath, "fork_lr", "a positive learning rate", rate)
    _check_epochs(
        manifest.get("epochs"), root, mpath, canonical=resume, first=first_own_epoch(manifest)
    )
    return manifest  # type: ignore[return-value]


def _check_resumable(manifest: dict[str, Any], mpath: Path) -> None:
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise BadManifest(f"{mpath}: not a schema_version {SCHEMA_VERSION} run.json")
    for key, kind in _RESUME_REQUIRES:
        if key in _MODEL_RUN_NULLABLE and isinstance(manifest.get("model"), dict):
            if manifest.get(key) is None:
                continue
        if not isinstance(manifest.get(key), kind):
            raise BadManifest(f"{mpath}: missing or malformed {key!r}")
    if manifest.get("checkpoints_included") is False:
        raise BadManifest(
            f"{mpath}: this run was published without checkpoints; it cannot be resumed"
        )
    present = [k for k in BRANCH_FIELDS if k in manifest]
    if present and len(present) < len(BRANCH_FIELDS):
        missing = ", ".join(k for k in BRANCH_FIELDS if k not in manifest)
        raise BadManifest(
            f"{mpath}: a branch needs {', '.join(BRANCH_FIELDS)}, but {missing} is missing; "
            "restore run.json or delete the branch"
        )


def _check_shadow(shadow: Any, mpath: Path) -> None:
    if shadow is None:
        return
    if not (isinstance(shadow, list) and all(isinstance(s, dict) for s in shadow)):
        raise _bad_field(mpath, "shadow", "a list of objects", shadow)
    for i, entry in enumerate(shadow):
        _check_shadow_entry(mpath, f"shadow[{i}]", entry)


def _check_shadow_entry(mpath: Path, where: str, entry: dict[str, Any]) -> None:
    """The shape that replaying a shadow callback relies on (values are the policies' job).

    Raises:
        BadManifest: ``params`` not an object, ``monitor`` not a string, an epoch that
            is not an integer or null, ``reductions`` not a list of integers.
    """
    params = entry.get("params")
    if params is not None and not isinstance(params, dict):
        raise _bad_field(mpath, f"{where}.params", "an object", params)
    monitor = (params or {}).get("monitor")
    if monitor is not None and not isinstance(monitor, str):
        raise _bad_field(mpath, f"{where}.params.monitor", "a metric name", monitor)
    for key in ("stopped_epoch", "best_epoch"):
        value = entry.get(key)
        if value is not None and not _is_int(value):
            raise _bad_field(mpath, f"{where}.{key}", "an epoch number or null", value)
    reductions = entry.get("reductions")
    if reductions is not None and not (
        isinstance(reductions, list) and all(_is_int(r) for r in reductions)
    ):
        raise _bad_field(mpath, f"{where}.reductions", "a list of epoch numbers", reductions)


def _check_epochs(epochs: Any, root: Path, mpath: Path, *, canonical: bool, first: int = 0) -> None:
    if epochs is None:
        return
    if not isinstance(epochs, list):
        raise _bad_field(mpath, "epochs", "a list", epochs)
    seen: set[int] = set()
    try:
        root_resolved: Path | None = root.resolve()  # once, not once per checkpoint
    except (OSError, RuntimeError, ValueError):
        root_resolved = None  # _safe_relative says why, naming the entry
    for i, entry in enumerate(epochs):
        where = f"epochs[{i}]"
        if not isinstance(entry, dict):
            raise _bad_field(mpath, where, "an object", entry)
        ep = entry.get("epoch")
        if not _is_int(ep) or ep < 0:
            raise _bad_field(mpath, f"{where}.epoch", "a 0-based epoch number", ep)
        if ep in seen:
            raise BadManifest(
                f"{mpath}: epoch {ep} is listed twice in 'epochs'; restore run.json or "
                "re-record the run"
            )
        seen.add(ep)
        rel = entry.get("checkpoint")
        if rel is not None and not isinstance(rel, str):
            raise _bad_field(mpath, f"{where}.checkpoint", "a path string or null", rel)
        sha = entry.get("sha256")
        if sha is not None and not (isinstance(sha, str) and _SHA_RE.fullmatch(sha)):
            raise _bad_field(mpath, f"{where}.sha256", "64 lower-case hex digits or null", sha)
        size = entry.get("bytes")
        if size is not None and not (_is_int(size) and size >= 0):
            raise _bad_field(mpath, f"{where}.bytes", "a byte count or null", size)
        if isinstance(rel, str):
            _safe_relative(root, rel, mpath, f"{where}.checkpoint", root_resolved)
        if canonical:
            _check_canonical(mpath, i, entry, first)


def _check_canonical(mpath: Path, i: int, entry: dict[str, Any], first: int = 0) -> None:
    """What ``replay record`` writes and resume relies on: epochs[i] is epoch i (a
    branch's: epoch ``first + i``), whose checkpoint is ``checkpoints/epoch-NNN.keras``."""
    epoch = first + i
    if entry["epoch"] != epoch:
        order = f"epochs in order from {first}" + (" (fork_epoch)" if first else "")
        raise _bad_field(mpath, f"epochs[{i}].epoch", f"{epoch} ({order})", entry["epoch"])
    expected = checkpoint_relpath(epoch)
    rel = entry.get("checkpoint")
    if rel != expected:
        raise UnsafePath(f"{mpath}: epochs[{i}] names {rel!r}, expected {expected!r}")


def _safe_relative(
    root: Path, rel: str, manifest: Path, where: str, root_resolved: Path | None = None
) -> Path:
    """Return ``root / rel`` after checking that it stays inside ``root``
    (``root_resolved``: ``root.resolve()``, where the caller has it already).

    Raises:
        UnsafePath: absolute, ``..``, backslashes, or resolving outside ``root``.
    """
    shown = rel[:60] + "..." if len(rel) > 60 else rel
    prefix = f"{manifest}: {where} {shown!r}"
    fix = "checkpoint paths must stay inside the run directory; refusing to use it"
    if "\x00" in rel or "\\" in rel or not rel.strip():
        raise UnsafePath(f"{prefix} is not a plain relative path; {fix}")
    pp = PurePosixPath(rel)
    if pp.is_absolute() or re.match(r"[A-Za-z]:", rel):
        raise UnsafePath(f"{prefix} is an absolute path; {fix}")
    if ".." in pp.parts:
        raise UnsafePath(f"{prefix} goes up with '..'; {fix}")
    full = root / pp
    try:
        resolved = full.resolve()
        root_resolved = root_resolved or root.resolve()
    except (OSError, RuntimeError, ValueError) as e:
        raise UnsafePath(f"{prefix} cannot be resolved ({e}); {fix}") from None
    if not resolved.is_relative_to(root_resolved):
        raise UnsafePath(f"{prefix} leads outside the run directory (to {resolved}); {fix}")
    return full


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint recorded in run.json."""

    epoch: int  # 0-based
    path: str  # relative to the run directory, as in run.json
    sha256: str | None
    bytes: int | None


def checkpoint_name(epoch: int) -> str:
    """Return the checkpoint file name of 0-based ``epoch`` (1-based in the name, as
    ModelCheckpoint's ``{epoch:03d}``).

    >>> checkpoint_name(0)
    'epoch-001.keras'
    """
    return f"epoch-{epoch + 1:03d}.keras"


def checkpoint_relpath(epoch: int) -> str:
    """Return the checkpoint path of 0-based ``epoch`` as run.json records it.

    >>> checkpoint_relpath(11)
    'checkpoints/epoch-012.keras'
    """
    return f"{CHECKPOINTS}/{checkpoint_name(epoch)}"


def checkpoint_epoch(name: str) -> int | None:
    """Return the 0-based epoch of a checkpoint file name, or None for any other name.

    >>> checkpoint_epoch("epoch-012.keras"), checkpoint_epoch(".tmp-epoch-012.keras")
    (11, None)
    """
    if not (name.startswith("epoch-") and name.endswith(".keras")):
        return None
    try:
        return int(name[len("epoch-") : -len(".keras")]) - 1
    except ValueError:
        return None


def parse_checkpoints(manifest: Manifest) -> dict[int, CheckpointInfo]:
    """Checkpoint entries of a manifest already validated by :func:`validate_manifest`."""
    out: dict[int, CheckpointInfo] = {}
    for entry in manifest.get("epochs") or []:
        rel = entry.get("checkpoint")
        if isinstance(rel, str):
            ep = int(entry["epoch"])
            out[ep] = CheckpointInfo(ep, rel, entry.get("sha256"), entry.get("bytes"))
    return out


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class CheckpointMismatch(ChecksumMismatch):
    """A checkpoint whose size or sha256 differs from run.json (see :func:`verify_checkpoint`).

    Carries the facts, so a caller can word them for its own context: ``path``, the
    file's ``sha256`` and ``bytes``, run.json's ``expected_sha256`` and ``expected_bytes``.
    """

    def __init__(
        self,
        message: str,
        path: Path,
        sha256: str,
        size: int,
        expected_sha256: str | None,
        expected_bytes: int | None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.sha256 = sha256
        self.bytes = size
        self.expected_sha256 = expected_sha256
        self.expected_bytes = expected_bytes


def _missing(path: Path, epoch: int) -> LogNotFound:
    return LogNotFound(
        f"{path}: checkpoint of epoch {epoch} is missing; restore it from a copy of the "
        "run or re-record the run"
    )


def verify_checkpoint(path: Path, sha256: str | None, size: int | None, *, epoch: int) -> None:
    """Check the checkpoint file of ``epoch`` against what run.json records of it.

    ``size`` (bytes) is compared when recorded; ``sha256`` must be recorded and equal.

    Raises:
        LogNotFound: the file is missing or cannot be read.
        CheckpointMismatch: its size or sha256 differs, or run.json records no sha256.
    """
    if not path.is_file():
        raise _missing(path, epoch)
    try:
        actual_size = path.stat().st_size
        digest = sha256_file(path)
    except OSError as e:
        raise LogNotFound(
            f"{path}: checkpoint of epoch {epoch} cannot be read ({e.strerror or e}); "
            "check its permissions"
        ) from None
    fix = "the checkpoint is damaged or was replaced, restore it or re-record the run"
    if size is not None and actual_size != size:
        message = f"{path}: {actual_size} bytes but run.json records {size}; {fix}"
    elif sha256 is None:
        message = (
            f"{path}: run.json records no sha256 for epoch {epoch}, so it cannot be "
            "verified; restore run.json or re-record the run"
        )
    elif digest != sha256:
        message = f"{path}: sha256 {digest[:12]}... differs from run.json's {sha256[:12]}...; {fix}"
    else:
        return
    raise CheckpointMismatch(message, path, digest, actual_size, sha256, size)


# ------------------------------------------------------------------- metrics.csv and run.json


def metrics_line(fields: Sequence[object]) -> str:
    """One metrics.csv line of ``fields`` (``str`` of each), written by the ``csv`` module
    as Keras's CSVLogger writes: a metric name holding ``,``, ``"`` or a line break is
    quoted, so every CSV reader reads it back.

    >>> metrics_line(["epoch", "a,b", 'q"x', "loss"])
    'epoch,"a,b","q""x",loss\\n'
    """
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()


def metrics_header(raw: bytes) -> tuple[str, ...] | None:
    """The column names of the metrics.csv that starts with ``raw``, or None where it
    has no complete header line (written by :func:`metrics_line`)."""
    try:
        names = next(csv.reader(io.StringIO(raw.decode("utf-8", "replace"), newline="")))
    except (StopIteration, csv.Error):
        return None
    return tuple(names) if raw.startswith(metrics_line(names).encode()) else None


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write ``root/run.json`` atomically (indented JSON; NaN and infinity refused)."""
    atomic_write(root / MANIFEST, json.dumps(manifest, indent=2, allow_nan=False) + "\n")


# --------------------------------------------------------------------------- reading


STALE = "no process is writing it (it stopped without marking itself: Ctrl-C, a crash, kill -9)"


def stopped_unmarked(root: Path | None, status: str) -> bool:
    """Whether run.json says ``running`` while no process writes the run (:data:`STALE`).

    >>> stopped_unmarked(None, "complete")
    False
    """
    return status == "running" and root is not None and not has_writer(root)


def checkpoint_path(run: RunLog, epoch: int, verify: bool = True) -> Path:
    """Return the checkpoint file of ``epoch`` (0-based) inside the run directory.

    With ``verify``, its size and sha256 are checked against run.json
    (:func:`verify_checkpoint`).

    Raises:
        CheckpointUnavailable: the log has no checkpoints (not a run directory, or
            run.json says ``checkpoints_included: false``).
        LogNotFound: none is recorded for ``epoch``, or the file is missing.
        UnsafePath: the recorded path escapes the run directory.
        ChecksumMismatch: size or sha256 differ from run.json, or run.json has no
            sha256 to verify against.
    """
    from analysis.reading.tb import fmt_epochs

    if run.root is None or run.manifest is None:
        raise CheckpointUnavailable(
            f"{run.source}: a {run.format} log has no checkpoints; record the run with "
            "`replay record` to keep one per epoch"
        )
    mpath = run.root / MANIFEST
    if not run.checkpoints_included:
        raise CheckpointUnavailable(
            f"{mpath}: says checkpoints_included: false (the run was copied without its "
            f"checkpoints), so epoch {epoch} has no file; use the original run directory"
        )
    info = run.checkpoints.get(epoch)
    if info is None:
        have = fmt_epochs(sorted(run.checkpoints)) if run.checkpoints else "none"
        raise LogNotFound(
            f"{mpath}: no checkpoint recorded for epoch {epoch} (recorded epochs: {have}); "
            "pick a recorded epoch"
        )
    idx = next(i for i, e in enumerate(run.manifest.get("epochs") or []) if e.get("epoch") == epoch)
    full = _safe_relative(run.root, info.path, mpath, f"epochs[{idx}].checkpoint")
    if not full.is_file():
        raise _missing(full, epoch)
    if not verify:
        return full
    if info.sha256 is None:
        raise ChecksumMismatch(
            f"{mpath}: no sha256 recorded for epoch {epoch}, so {full} cannot be verified; "
            "pass verify=False to use it unverified"
        )
    verify_checkpoint(full, info.sha256, info.bytes, epoch=epoch)
    return full
