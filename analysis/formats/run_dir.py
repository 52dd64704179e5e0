"""Run directories written by ``replay record`` (run.json + metrics.csv + checkpoints),
read as a :class:`~analysis.reading.runlog.RunLog`; the format itself is
:mod:`analysis.reading.rundir`'s."""

from __future__ import annotations

import os
from pathlib import Path

from analysis.errors import BadLog, LogNotFound
from analysis.reading.csvlog import load_csv_file
from analysis.reading.layouts import expected_layouts
from analysis.reading.rundir import (
    MANIFEST,
    METRICS_CSV,
    STALE,
    first_own_epoch,
    read_manifest,
    stopped_unmarked,
)
from analysis.reading.runlog import RunLog, dir_name
from analysis.reading.tb import epochs_phrase

__all__ = ["load_run_dir"]


def load_run_dir(path: str | os.PathLike[str]) -> RunLog:
    """Load a run directory written by ``replay record`` (run.json + metrics.csv).

    Metrics come from metrics.csv, checkpoints from run.json. An incomplete run
    (status running or interrupted) loads with a warning.

    Raises:
        LogNotFound: no such directory, or no run.json in it.
        BadManifest: run.json unreadable or malformed.
        UnsafePath: a checkpoint path in run.json escapes the run directory.
        BadLog: metrics.csv missing, malformed or without epochs.
    """
    root = Path(path)
    if not root.is_dir():
        if root.exists():
            raise LogNotFound(f"{root}: is a file, not a run directory; pass {expected_layouts()}")
        raise LogNotFound(f"{root}: no such file or directory; pass {expected_layouts()}")
    if not (root / MANIFEST).is_file():
        raise LogNotFound(
            f"{root}: no run.json; a run directory from `replay record` has run.json and "
            "metrics.csv"
        )
    manifest = read_manifest(root)
    status = manifest.get("status", "unknown")
    mfile = root / METRICS_CSV
    if not mfile.is_file():
        raise BadLog(
            f"{mfile}: missing (run status {status!r}); the run has no committed epoch yet, "
            "or the file was removed: resume or re-record the run"
        )
    try:
        run = load_csv_file(mfile, os.fspath(path), dir_name(root), "run_dir")
    except BadLog as e:
        if "has no epochs" in str(e) and status != "complete":
            raise BadLog(
                f"{mfile}: has no epochs yet (run status {status!r}); nothing to replay, "
                "let the run commit an epoch or resume it"
            ) from None
        raise
    run.manifest = manifest  # type: ignore[assignment]
    run.root = root
    if status != "complete":
        finish = (
            f"a fit from initial_epoch={run.n_epochs} with RecordCallback continues it"
            if isinstance(manifest.get("model"), dict)
            else "`replay record --resume` finishes it"
        )
        run.warnings.insert(
            0,
            (
                f"{root}: the run is incomplete (status {status!r}, {run.n_epochs} epochs "
                f"committed){', and ' + STALE if stopped_unmarked(root, status) else ''}; "
                f"results cover those epochs only, {finish}"
            ),
        )
    recorded = set(run.checkpoints)
    logged = set(range(first_own_epoch(manifest), run.n_epochs))  # a branch's earlier rows
    # are its parent's, whose checkpoints are the parent's
    if run.checkpoints_included and recorded and logged - recorded:
        run.warnings.append(
            f"{root / MANIFEST}: no checkpoint entry for "
            f"{epochs_phrase(sorted(logged - recorded))} of metrics.csv; those epochs "
            "cannot be picked"
        )
    if recorded - logged:
        run.warnings.append(
            f"{root / MANIFEST}: lists checkpoints for "
            f"{epochs_phrase(sorted(recorded - logged))} that metrics.csv lacks; ignored them"
        )
    return run
