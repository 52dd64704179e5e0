"""One detection step in front of one reader per log format.

:func:`load_logs` finds which format a path holds (:data:`FORMATS`, tried in order,
the first whose ``claims`` says yes wins) and returns every training in it as a
:class:`~analysis.reading.logs.RunLog` with the same per-epoch shape, whatever wrote it. A
path that no reader claims is refused with a message naming what was expected:
nothing is ever read as a format it is not.

``LOG#N`` names the N-th training of a log that holds several (a CSVLogger file
appended to by several fits, a TensorBoard folder of several trainings).

A folder of run directories (``replay record --seeds 0..4 --out runs/mlp`` writes
``runs/mlp/seed-0`` ...) is read as one run per run directory, named ``mlp/seed-0`` ...
and in natural order (``seed-2`` before ``seed-10``): :func:`run_folder_children`.

Each reader is a :class:`Format`: ``claims(path, head)`` is a cheap look (``head``
is the first line of a file as text, None for a directory) and ``load(path, source)``
reads it. Readers raise :class:`~analysis.errors.ReplayError` subclasses with
one-line messages.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import AmbiguousLog, BadLog, LogNotFound, ReplayError
from analysis.reading.layouts import LAYOUTS, expected_layouts
from analysis.reading.logs import RunLog

__all__ = [
    "FORMATS",
    "Format",
    "detect",
    "expected_layouts",
    "load_logs",
    "load_all",
    "log_identity",
    "is_run_folder",
    "load_run",
    "natural_key",
    "one_run_of_folder",
    "run_folder_children",
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
    from analysis.formats.run_dir import load_run_dir

    return [load_run_dir(p.parent if p.name == "run.json" else p)]


# --------------------------------------------------------------------------- folders of runs


def natural_key(name: str) -> tuple:
    """A sort key that orders the numbers in names by value.

    >>> sorted(["seed-10", "seed-2", "seed-1"], key=natural_key)
    ['seed-1', 'seed-2', 'seed-10']
    """
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"([0-9]+)", name))


def _is_run_dir_path(p: Path) -> bool:
    return p.is_dir() and (p / "run.json").is_file()


def _visible_children(p: Path) -> list[Path]:
    try:
        return [c for c in p.iterdir() if not c.name.startswith(".")]
    except OSError:
        return []


def _is_run_folder(p: Path, head: str | None) -> bool:
    """A folder that is no run directory itself but has run directories as children."""
    if not p.is_dir() or (p / "run.json").exists():
        return False
    return any(_is_run_dir_path(c) for c in _visible_children(p))


def _count_runs(runs: list[Path]) -> str:
    """``1 run directory``, ``3 run directories``."""
    return f"{len(runs)} run director{'y' if len(runs) == 1 else 'ies'}"


def _looks_like_a_run(p: Path, runs: Sequence[Path]) -> str | None:
    """Why the folder ``p`` (no run.json) would be mistaken for a missing run, or None.

    It holds what a run directory holds (metrics.csv, checkpoints/, tensorboard/, a
    run.json being written), run directories of its own, or it is named like the run
    directories beside it (``seed-7`` next to ``seed-0`` ...).
    """
    for part in ("metrics.csv", "checkpoints", "tensorboard"):
        if (p / part).exists():
            return f"it holds {part} but no run.json"
    children = _visible_children(p)
    if any(c.name.startswith("run.json") for c in children):
        return "its run.json is not complete"
    if any(_is_run_dir_path(c) for c in children):
        return _FOLDER_OF_RUNS
    stems = {re.sub(r"[0-9]+", "N", r.name) for r in runs}
    if re.search(r"[0-9]", p.name) and re.sub(r"[0-9]+", "N", p.name) in stems:
        return "it is named like the runs beside it but has no run.json"
    return None


_FOLDER_OF_RUNS = "it is a folder of runs itself"


def run_folder_children(p: Path) -> list[Path]:
    """The run directories of a folder of runs, in natural order (``seed-2`` before
    ``seed-10``). Files beside them (``seeds.json``, a README) and hidden entries are
    ignored, and so are folders that hold nothing a run holds.

    Raises:
        BadLog: the folder holds, beside its runs, something that would be silently left
            out and mislead: a log of its own (metrics.csv, TensorBoard event files) or a
            folder that looks like a run without being a readable one (no run.json).
    """
    children = sorted(_visible_children(p), key=lambda c: natural_key(c.name))
    runs = [c for c in children if _is_run_dir_path(c)]
    for c in children:
        if c in runs:
            continue
        if c.is_file() and (c.name == "metrics.csv" or "tfevents" in c.name):
            raise BadLog(
                f"{p}: a folder of {_count_runs(runs)} that also holds the log "
                f"{c.name}; pass the runs you mean one by one, or move {c.name} out"
            )
        why = _looks_like_a_run(c, runs) if c.is_dir() else None
        if why:
            fix = ("pass it on its own" if why == _FOLDER_OF_RUNS
                   else "finish it (`replay record --resume`)")  # fmt: skip
            raise BadLog(
                f"{p}: a folder of {_count_runs(runs)}, but {c} is not one ({why}); "
                f"{fix}, move it out, or pass the runs you mean one by one"
            )
    return runs


def _load_run_folder(p: Path, source: str) -> list[RunLog]:
    from analysis.formats.run_dir import load_run_dir

    folder = p.name or p.resolve().name
    out = []
    for child in run_folder_children(p):
        try:
            run = load_run_dir(child)
        except ReplayError as e:
            message = f"{p}: run {child.name} of this folder of runs cannot be read: {e}"
            try:
                refusal = type(e)(message)
            except TypeError:  # an error type with arguments of its own
                refusal = BadLog(message)
            raise refusal from None
        run.name = f"{folder}/{child.name}"
        out.append(run)
    return out


def _is_tensorboard(p: Path, head: str | None) -> bool:
    from analysis.reading import tb

    if p.is_file():
        return "tfevents" in p.name
    return bool(tb.find_event_folders(p)) or (
        (p / "tensorboard").is_dir() and bool(tb.find_event_folders(p / "tensorboard"))
    )


def _load_tensorboard(p: Path, source: str) -> list[RunLog]:
    from analysis.reading.logs import load_tensorboard_runs

    return load_tensorboard_runs(p, source)


def _is_keras_csv(p: Path, head: str | None) -> bool:
    # Last in FORMATS: any file no other reader claimed. The CSV parser refuses one
    # without an 'epoch' column, naming every layout that is read (expected_layouts).
    return p.is_file() or (p / "metrics.csv").is_file()


def _load_keras_csv(p: Path, source: str) -> list[RunLog]:
    from analysis.reading.csvlog import csv_stem, load_csv_runs

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
def _format(name: str, claims, load) -> Format:
    layout = next(x for x in LAYOUTS if x.name == name)
    return Format(name, layout.describe, claims, load, layout.csv)


class _Lazy:
    """``analysis.formats.<module>.<function>``, the module imported on the first call:
    detection that stops at an earlier format (a run directory) never imports the other
    frameworks' readers."""

    def __init__(self, module: str, function: str) -> None:
        self.module, self.function = module, function

    def __call__(self, *args, **kwargs):
        module = importlib.import_module(f"analysis.formats.{self.module}")
        return getattr(module, self.function)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"analysis.formats.{self.module}.{self.function}"


def _reader(name: str, module: str) -> Format:
    """The format ``name`` whose ``claims`` and ``load`` are those of its own module."""
    return _format(name, _Lazy(module, "claims"), _Lazy(module, "load"))


#: The readers, in :data:`analysis.reading.layouts.LAYOUTS`'s order (detection tries them so).
FORMATS: list[Format] = [
    _format("run_dir", _is_run_dir, _load_run_dir),
    _format("run_folder", _is_run_folder, _load_run_folder),
    _reader("lightning", "lightning"),
    _reader("hf", "hf"),
    _reader("ultralytics", "ultralytics"),
    _reader("mlflow", "mlflow"),
    _reader("optuna", "optuna_study"),
    _reader("kerastuner", "kerastuner"),
    _reader("torch_tensorboard", "torch_tb"),
    _format("tensorboard", _is_tensorboard, _load_tensorboard),
    _reader("keras_history", "keras_history"),
    _format("csv", _is_keras_csv, _load_keras_csv),
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
        from analysis.reading import tb

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
    if not p.exists():
        from analysis.formats import optuna_study

        if optuna_study.is_study_spec(text):  # a storage URL, not a path
            return optuna_study.load(p, text)
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


def log_identity(source: str) -> tuple[object, ...]:
    """What a RunLog's ``source`` reads, whatever the spelling: the file (device and
    inode: symlinks, ``./`` and hard links are one) and the training of it (``#N``).

    A run directory is its metrics.csv (``RUN`` and ``RUN/metrics.csv`` read the same
    rows). A source that cannot be stat'ed is its own text.
    """
    p, training = Path(source), None
    m = _SELECT.fullmatch(source)
    if m is not None and not p.exists():
        p, training = Path(m.group(1)), int(m.group(2))
    if p.is_dir() and (p / "metrics.csv").is_file() and (p / "run.json").is_file():
        p = p / "metrics.csv"
    try:
        st = p.stat()
    except (OSError, ValueError):
        return (source,)
    return (st.st_dev, st.st_ino, training)


def load_all(specs: Sequence[str | os.PathLike[str]]) -> list[RunLog]:
    """Every training in the logs at ``specs``, each read once, named apart (:func:`unique_names`).

    A training reached again (the same path twice, another spelling of it, a symlink,
    ``LOG`` and ``LOG#1``, a folder of runs and one of its runs: :func:`log_identity`)
    is dropped, with a warning on the one kept: one log never counts as two runs.

    Raises:
        see :func:`load_logs`.
    """
    runs: list[RunLog] = []
    seen: dict[tuple[object, ...], RunLog] = {}
    for spec in specs:
        for run in load_logs(spec):
            key = log_identity(run.source)
            first = seen.get(key)
            if first is None:
                seen[key] = run
                runs.append(run)
                continue
            again = ("given twice" if run.source == first.source
                     else f"the same log as {first.source}")  # fmt: skip
            warning = f"{run.source}: {again}; read once"
            if warning not in first.warnings:
                first.warnings.append(warning)
    unique_names(runs)
    return runs


def load_run(spec: str | os.PathLike[str]) -> RunLog:
    """The one training in the log at ``spec``.

    Raises:
        AmbiguousLog: the log holds several trainings (name one as ``LOG#N``), or it is a
            folder of runs (name one of its run directories).
        LogNotFound, BadLog, BadManifest, UnsafePath: see :func:`load_logs`.
    """
    text = os.fspath(spec)
    folder = Path(text)
    if _is_run_folder(folder, None):
        raise AmbiguousLog(one_run_of_folder(folder))
    runs = load_logs(spec)
    if len(runs) > 1:
        raise AmbiguousLog(
            f"{text}: holds {len(runs)} trainings; name one as {text}#1 ... {text}#{len(runs)}"
        )
    return runs[0]


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder of run directories (read as one run each)."""
    return _is_run_folder(Path(path), None)


def one_run_of_folder(folder: Path) -> str:
    """The refusal for a folder of runs where one run is needed: it names one to pass.

    Raises:
        BadLog: see :func:`run_folder_children`.
    """
    runs = run_folder_children(folder)
    names = f"{runs[0].name} ... {runs[-1].name}" if len(runs) > 1 else runs[0].name
    return (
        f"{folder}: a folder of {len(runs)} run{'s' if len(runs) != 1 else ''} ({names}); "
        "this command reads one run: "
        f"pass one of them, e.g. {runs[0]}"
    )


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
