"""The project's own exception types.

Library code raises these; only the CLI turns them into one-line ``Error: ...``
messages. Every message names the problem and what would fix it, on one line.
"""

from __future__ import annotations


class ReplayError(Exception):
    """Base class of every error callback-replay reports to a user."""


class LogNotFound(ReplayError):
    """A path that does not exist, or a directory with no recognizable log."""


class CheckpointUnavailable(LogNotFound):
    """A log that carries no checkpoint files (CSV/TensorBoard, or copied without them)."""


class BadLog(ReplayError):
    """A log that exists but cannot be read (malformed CSV, unreadable events, ...)."""


class AmbiguousLog(BadLog):
    """A log holding several trainings where one is needed (``LOG#2`` names one)."""


class MissingMetric(ReplayError):
    """A metric that the log does not contain."""


class BadManifest(ReplayError):
    """A run.json that is not valid JSON or does not have the expected shape."""


class ChecksumMismatch(ReplayError):
    """A checkpoint whose sha256 or size differs from the manifest."""


class UnsafePath(ReplayError):
    """A path in a manifest that escapes its run directory."""


def missing_metric(metric: str, available: list[str], source: str) -> MissingMetric:
    """The error for a metric that ``source`` lacks: lists what is there, suggests the closest.

    The suggestion tries, in order: the same name in another case, the name without
    TensorBoard's ``epoch_`` tag prefix, then the closest spelling. A validation
    metric asked of a log with no validation metrics says so.

    >>> str(missing_metric("epoch_loss", ["loss", "val_loss"], "tb"))
    "tb: no metric 'epoch_loss' (the log has: loss, val_loss); did you mean 'loss'?"
    >>> print(missing_metric("val_loss", ["loss", "accuracy"], "log.csv"))  # doctest: +ELLIPSIS
    log.csv: no metric ... validation metrics; did you mean 'loss' (--monitor loss)?
    """
    import difflib

    lower = {c.lower(): c for c in available}
    close = lower.get(metric.lower())
    if close is None and metric.startswith("epoch_"):
        close = lower.get(metric[len("epoch_") :].lower())
    why = ""
    if metric.startswith("val_") and not any(c.startswith("val_") for c in available):
        why = ": it logged no validation metrics"
        close = close or lower.get(metric[len("val_") :].lower())
    if close is None:
        matches = difflib.get_close_matches(metric, available, n=1, cutoff=0.6)
        close = matches[0] if matches else None
    hint = "."
    if close:
        hint = f"; did you mean {close!r}" + (f" (--monitor {close})?" if why else "?")
    listed = ", ".join(available) if available else "none"
    return MissingMetric(f"{source}: no metric {metric!r} (the log has: {listed}){why}{hint}")
