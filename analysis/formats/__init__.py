"""One detection step in front of one reader per log format.

:func:`load_logs` finds which format a path holds (:data:`FORMATS`, tried in order,
the first whose ``claims`` says yes wins) and returns every training in it as a
:class:`~analysis.logs.RunLog` with the same per-epoch shape, whatever wrote it. A
path that no reader claims is refused with a message naming what was expected:
nothing is ever read as a format it is not.

``LOG#N`` names the N-th training of a log that holds several (a CSVLogger file
appended to by several fits, a TensorBoard folder of several trainings).

Each reader is a :class:`Format`: ``claims(path, head)`` is a cheap look (``head``
is the first line of a file as text, None for a directory) and ``load(path, source)``
reads it. Readers raise :class:`~analysis.errors.ReplayError` subclasses with
one-line messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import AmbiguousLog, LogNotFound
from analysis.formats import hf, keras_history, lightning, mlflow, ultralytics
from analysis.logs import RunLog

__all__ = [
    "FORMATS",
    "Format",
    "detect",
    "expected_layouts",
    "load_logs",
    "load_run",
    "unique_names",
]


@dataclass(frozen=True)
class Format:
    """A log format: its name (``RunLog.format``), a phrase for messages, and its reader."""

    name: str
    describe: str
    claims: Callable[[Path, str | None], bool]
    load: Callable[[Path, str], list[RunLog]]
    csv: bool = False  # a CSV layout (named when a CSV file matches none of them)


def _header(head: str | None) -> list[str]:
    """The column names of a CSV header line (comma, semicolon or tab separated)."""
    if not head:
        return []
    sep = max((",", ";", "\t"), key=head.count)
    return [c.strip().strip('"') for c in head.split(sep)]


# --------------------------------------------------------------------------- Keras


def _is_run_dir(p: Path, head: str | None) -> bool:
    return (p.is_dir() and (p / "run.json").is_file()) or p.name == "run.json"


def _load_run_dir(p: Path, source: str) -> list[RunLog]:
    from analysis.rundir import load_run_dir

    return [load_run_dir(p.parent if p.name == "run.json" else p)]


def _is_tensorboard(p: Path, head: str | None) -> bool:
    from analysis import tb

    if p.is_file():
        return "tfevents" in p.name
    return bool(tb.find_event_folders(p)) or (
        (p / "tensorboard").is_dir() and bool(tb.find_event_folders(p / "tensorboard"))
    )


def _load_tensorboard(p: Path, source: str) -> list[RunLog]:
    from analysis.logs import load_tensorboard_runs

    return load_tensorboard_runs(p, source)


def _is_keras_csv(p: Path, head: str | None) -> bool:
    # Last in FORMATS: any file no other reader claimed. The CSV parser refuses one
    # without an 'epoch' column, naming every layout that is read (expected_layouts).
    return p.is_file() or (p / "metrics.csv").is_file()


def _load_keras_csv(p: Path, source: str) -> list[RunLog]:
    from analysis.logs import csv_stem, load_csv_runs

    if p.is_dir():
        runs = load_csv_runs(p / "metrics.csv", source, p.name or p.resolve().name)
        for run in runs:
            run.warnings.insert(0, (
                f"{p}: has metrics.csv but no run.json; read it as a plain CSV log "
                "(no checkpoints, no status)"
            ))  # fmt: skip
        return runs
    return load_csv_runs(p, source, csv_stem(p))


#: Every reader, in the order detection tries them. The other frameworks' readers come
#: before TensorBoard (their run folders often hold event files too, which say less) and
#: before the Keras CSV reader (their CSV files have an 'epoch' column too).
FORMATS: list[Format] = [
    Format("run_dir", "a run directory written by `replay record`", _is_run_dir, _load_run_dir),
    Format(
        "lightning",
        "a Lightning CSVLogger metrics.csv (header with 'epoch' and 'step') or "
        "its version_N or lightning_logs folder",
        lightning.claims,
        lightning.load,
        csv=True,
    ),
    Format("hf", "a Hugging Face trainer_state.json or its output folder", hf.claims, hf.load),
    Format(
        "ultralytics",
        "an Ultralytics or YOLOv5 results.csv or its run folder",
        ultralytics.claims,
        ultralytics.load,
        csv=True,
    ),
    Format(
        "mlflow",
        "an MLflow file-store run, experiment or mlruns folder",
        mlflow.claims,
        mlflow.load,
    ),
    Format("tensorboard", "a TensorBoard log directory", _is_tensorboard, _load_tensorboard),
    Format(
        "keras_history",
        "a Keras History saved with pandas (header with 'loss', no 'epoch')",
        keras_history.claims,
        keras_history.load,
        csv=True,
    ),
    Format(
        "csv",
        "a Keras CSVLogger file (header 'epoch,...')",
        _is_keras_csv,
        _load_keras_csv,
        csv=True,
    ),
]


# --------------------------------------------------------------------------- detection


def _head(p: Path) -> str | None:
    """The first non-blank line of a file (or of a folder's metrics.csv), best effort."""
    f = p / "metrics.csv" if p.is_dir() else p
    if not f.is_file():
        return None
    try:
        with open(f, "rb") as fh:
            raw = fh.read(65536)
    except OSError:
        return None
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("utf-8", errors="replace")
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), None)


def expected_layouts() -> str:
    """Every format read, as one phrase for messages."""
    return ", ".join(f.describe for f in FORMATS[:-1]) + " or " + FORMATS[-1].describe


def detect(p: Path) -> Format:
    """The format of the log at ``p``.

    Raises:
        LogNotFound: ``p`` does not exist, or no reader claims it (the message names
            what each reader expects).
    """
    try:
        exists = p.exists()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise LogNotFound(f"{p}: no such file or directory; pass {expected_layouts()}")
    head = _head(p)
    for fmt in FORMATS:
        if fmt.claims(p, head):
            return fmt
    if p.is_dir():
        from analysis import tb

        raise LogNotFound(
            f"{p}: no recognizable log in this folder{tb._nested_hint(p)}; pass "
            f"{expected_layouts()}"
        )
    shown = repr(head[:60] + "..." if head and len(head) > 60 else head or "")
    raise LogNotFound(
        f"{p}: not a log layout callback-replay knows (first line {shown}); expected "
        f"{expected_layouts()}"
    )


_SELECT = re.compile(r"(.+)#([0-9]+)")


def load_logs(spec: str | os.PathLike[str]) -> list[RunLog]:
    """Every training in the log at ``spec`` (``LOG#N``: the N-th only), each a RunLog.

    Raises:
        LogNotFound: see :func:`detect`; also ``LOG#N`` with no N-th training.
        BadLog, BadManifest, UnsafePath: from the reader.
    """
    text = os.fspath(spec)
    p = Path(text)
    m = _SELECT.fullmatch(text)
    if m is None or p.exists():
        return detect(p).load(p, text)
    base, n = m.group(1), int(m.group(2))
    runs = detect(Path(base)).load(Path(base), base)
    if len(runs) == 1:
        if n == 1:
            return runs
        raise LogNotFound(f"{text}: {base} holds one training; pass {base} without #{n}")
    if not 1 <= n <= len(runs):
        raise LogNotFound(
            f"{text}: {base} holds {len(runs)} trainings, #1 to #{len(runs)}; pick one of them"
        )
    return [runs[n - 1]]


def load_run(spec: str | os.PathLike[str]) -> RunLog:
    """The one training in the log at ``spec``.

    Raises:
        AmbiguousLog: the log holds several trainings (name one as ``LOG#N``).
        LogNotFound, BadLog, BadManifest, UnsafePath: see :func:`load_logs`.
    """
    runs = load_logs(spec)
    if len(runs) > 1:
        text = os.fspath(spec)
        raise AmbiguousLog(
            f"{text}: holds {len(runs)} trainings; name one as {text}#1 ... {text}#{len(runs)}"
        )
    return runs[0]


def unique_names(runs: Sequence[RunLog]) -> None:
    """Rename runs that share a name so that each tells where it came from.

    Runs from different sources with the same name get as many parent folders of
    their source as it takes to tell them apart (``a/training``, ``b/training``); the
    same source given twice gets ``(2)``, ``(3)``, ... Nothing is merged.
    """
    by_name: dict[str, list[RunLog]] = {}
    for run in runs:
        by_name.setdefault(run.name, []).append(run)
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        suffix = name[len(name.split("#")[0]) :]  # "#2" of a training in a log
        parents = [Path(r.source.split("#")[0]).resolve().parent.parts for r in group]
        depth = max(len(ps) for ps in parents)
        labels = [name] * len(group)  # the same source twice: numbered below
        for d in range(1, depth + 1):
            tried = ["/".join(ps[-d:] + (name.split("#")[0],)) + suffix for ps in parents]
            if len(set(tried)) == len(tried):
                labels = tried
                break
        seen: dict[str, int] = {}
        for run, label in zip(group, labels, strict=True):
            seen[label] = seen.get(label, 0) + 1
            run.name = label if seen[label] == 1 else f"{label} ({seen[label]})"
