"""TensorBoard logs written by PyTorch tools (``torch.utils.tensorboard.SummaryWriter``).

Keras writes ``epoch_*`` tags at step = epoch into ``train/`` and ``validation/``
(:mod:`analysis.reading.tb`); PyTorch tools write any tag at a step of their own into one
folder. Each event file is read with :mod:`analysis.reading.tb`'s stages (``read_records`` ->
``parse_events`` -> ``scalar_points``), its points rebuilt into the log that tool writes
beside it, and that log's reader does the rest, so a TensorBoard log and the CSV/JSON
log of the same training read alike:

- **PyTorch Lightning** ``TensorBoardLogger`` (``lightning_logs/version_N/``; tags
  ``epoch`` or ``hp_metric``, or an ``hparams.yaml`` beside): ``LoggerConnector.
  log_metrics`` writes each row's ``epoch`` as a scalar at the row's step
  (``src/lightning/pytorch/trainer/connectors/logger_connector/logger_connector.py``),
  so the points of one step, with the ``epoch`` written there, are one metrics.csv row;
  the learning-rate monitor's points (no ``epoch`` at their step) are its rows. The
  rows go through :mod:`analysis.formats.lightning` (``*_step`` series left out,
  ``*_epoch`` read, rows after the fit cut). ``hp_metric`` is the logger's
  placeholder (``-1`` at step 0), never an epoch's value: left out.
- **Hugging Face Trainer** ``TensorBoardCallback`` (``runs/<date>_<host>/``; tags
  ``train/*``, ``eval/*``; ``src/transformers/integrations/integration_utils.py``):
  ``on_log`` rewrites each ``log_history`` entry as ``train/<key>`` / ``eval/<key>`` at
  ``state.global_step``, so the points of one step rebuild the entries of
  trainer_state.json (``eval/*`` -> ``eval_*``, ``train/epoch`` -> ``epoch``) and
  :mod:`analysis.formats.hf` reads them (evaluations are the rows, ``train/loss``
  averaged per interval). The summary entry at the end of training
  (``train/train_runtime`` ...) ends the training, as it does in the JSON.
- **Ultralytics** (``runs/<task>/train*/``; ``callbacks/tensorboard.py``): the same tags
  as the columns of results.csv, at step = epoch + 1 (YOLOv8 and later) or = epoch
  (YOLOv5, ``utils/loggers/__init__.py``); the final validation of ``best.pt`` writes
  ``metrics/*`` once more at the last step: the epoch's own value (the first) is kept.
  Rows go through :mod:`analysis.formats.ultralytics`.
- **Any other SummaryWriter script** (``Loss/train``, ``Loss/val``, any names): one
  row per step at which some tag has a point, in step order, with a note saying how
  the steps looked (0-based, 1-based, or spaced); ``add_scalars`` sub-folders
  (``loss_validation/`` holding tag ``loss``) read as tag ``loss/validation``. Names
  become Keras names where they say train/val/test (``Loss/train`` -> ``loss``,
  ``Loss/val`` -> ``val_loss``, ``Accuracy/test`` -> ``test_accuracy``); others keep
  their name and need ``--monitor``/``--mode``.

Files with no scalar (Hugging Face's args-only and ``_hparams_`` files, empty 88-byte
files, graphs and images) are skipped. Each event file with scalars is one training
(each launch of a script, each Trainer, opens its own); add_scalars sub-folder files
join the training whose file began last before them. Several ``version_N`` or
``runs/<name>`` folders are several runs.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from analysis.errors import BadLog, LogNotFound
from analysis.formats import hf, lightning, ultralytics
from analysis.formats._util import CsvTable, frame
from analysis.reading import tb
from analysis.reading.logs import RunLog

__all__ = ["claims", "load", "tool_of"]

_VERSION = re.compile(r"version_[0-9]+")
_ULTRALYTICS = ("metrics/mAP", "train/box_loss", "val/box_loss", "lr/pg", "metrics/accuracy_top",
                "train/cls_loss", "x/lr", "metrics/precision")  # fmt: skip
_HF = ("train/epoch", "eval/", "train/learning_rate", "train/loss", "train/train_runtime")


@dataclass
class _File:
    """One event file: its points per tag, in the order read: ``[(step, wall, value)]``."""

    path: Path
    points: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    damage: str | None = None

    @property
    def first_wall(self) -> float:
        return min((p[1] for ps in self.points.values() for p in ps), default=0.0)


@functools.lru_cache(maxsize=64)
def _read(path: Path, size: int, mtime: float) -> _File:
    out = _File(path)
    try:
        for tag, step, wall, value in tb.scalar_points(tb.parse_events(tb.read_records(path))):
            if value is not None:
                out.points.setdefault(tag, []).append((step, wall, value))
    except tb.DamagedFile as e:
        out.damage = str(e)
    return out


def _file(path: Path) -> _File:
    st = path.stat()
    return _read(path, st.st_size, st.st_mtime)


def _events(d: Path) -> list[Path]:
    try:
        return sorted(p for p in d.iterdir() if "tfevents" in p.name and p.is_file())
    except OSError:
        return []


def _subdirs(d: Path) -> list[Path]:
    """Sub-folders in natural order (``version_2`` before ``version_10``)."""
    try:
        found = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted(found, key=lambda p: [int(t) if t.isdigit() else t
                                        for t in re.split(r"([0-9]+)", p.name)])  # fmt: skip


def _run_dirs(p: Path) -> list[Path]:
    """The folders of ``p`` that hold one run each: ``p`` itself when it holds event
    files, else its sub-folders that do (``version_N``, ``runs/<name>``)."""
    if _events(p):
        return [p]
    return [d for d in _subdirs(p) if _events(d) or any(_events(s) for s in _subdirs(d))]


def _is_keras(d: Path, files: list[_File]) -> bool:
    """Keras's layout: train/ or validation/ folders, or epoch_* tags, or TF1's flat
    ``loss`` (read by :mod:`analysis.reading.tb`)."""
    if any((d / f).is_dir() and _events(d / f) for f in ("train", "validation")):
        return True
    tags = {t for f in files for t in f.points}
    flat = {t for f in files if f.path.parent == d for t in f.points}
    return any(t.startswith("epoch_") for t in tags) or ("loss" in flat and tool_of(d, tags) == "")


def tool_of(d: Path, tags: set[str]) -> str:
    """``lightning``, ``hf``, ``ultralytics`` or ``""`` (a plain script) for the tags of
    a run folder."""
    if any(t.startswith(_ULTRALYTICS) for t in tags):
        return "ultralytics"
    if any(t.startswith(_HF) for t in tags):
        return "hf"
    if "epoch" in tags or "hp_metric" in tags or (d / "hparams.yaml").is_file():
        return "lightning"
    if _VERSION.fullmatch(d.name):
        return "lightning"
    return ""


def _metrics(f: _File) -> bool:
    """Whether a file holds a scalar besides Lightning's ``hp_metric`` placeholder."""
    return any(t != "hp_metric" for t in f.points)


def _trainings(d: Path) -> list[list[_File]]:
    """The event files of a run folder with scalars, one list per training (its main file
    first, then add_scalars sub-folder files)."""
    main = [f for f in map(_file, _events(d)) if _metrics(f)]
    main.sort(key=lambda f: f.first_wall)
    nested = [s for s in _subdirs(d) for s in (s, *_subdirs(s))]
    subs = [f for s in nested for f in map(_file, _events(s)) if _metrics(f)]
    if not main and subs:
        if all(_scalars_key(f, d, t) for f in subs for t in f.points):
            return [sorted(subs, key=lambda f: f.first_wall)]  # add_scalars' folders only
        return [[f] for f in sorted(subs, key=lambda f: f.first_wall)]  # runs nested once
    groups = [[f] for f in main]
    for f in subs:
        owner = [g for g in groups if g[0].first_wall <= f.first_wall + 1.0] or groups[:1]
        owner[-1].append(f)
    return groups


def _scalars_key(f: _File, d: Path, tag: str) -> str | None:
    """The key of an ``add_scalars`` file: torch writes ``<d>/<tag>_<key>/``, tensorboardX
    ``<d>/<tag>/<key>/``, each holding ``tag``; None for a file elsewhere."""
    rel = f.path.parent.relative_to(d).as_posix()
    for sep in ("_", "/"):
        if rel.startswith(tag.replace("/", "_") + sep):
            return rel[len(tag) + 1 :]
    return None


def claims(p: Path, head: str | None) -> bool:
    """A folder (or event file) of PyTorch-written TensorBoard events, not Keras's: some
    run folder holds a metric and no Keras tag, or only Lightning's traces (``hp_metric``,
    hparams.yaml) so that its refusal names what is missing."""
    if p.is_file():
        return "tfevents" in p.name and not _is_keras(p.parent, [_file(p)])
    lightning_traces = False
    for d in _run_dirs(p):
        files = [_file(f) for f in _events(d)]
        if _is_keras(d, files):
            return False
        if any(_metrics(f) for g in _trainings(d) for f in g):
            return True
        lightning_traces |= (d / "hparams.yaml").is_file() or any(
            "hp_metric" in f.points for f in files
        )
    return lightning_traces


def load(p: Path, source: str) -> list[RunLog]:
    """Every training of the PyTorch-written TensorBoard log at ``p``.

    Raises:
        LogNotFound: no event file.
        BadLog: event files without any scalar.
    """
    if p.is_file():
        groups, base, dirs = [[_file(p)]], p.parent, [p.parent]
    else:
        dirs = _run_dirs(p)
    if not dirs:
        raise LogNotFound(f"{p}: no TensorBoard event files (events.out.tfevents.*) in it")
    runs: list[RunLog] = []
    empty: list[str] = []
    for d in dirs:
        if not p.is_file():
            groups, base = _trainings(d), d
        if not groups:
            empty.append(d.name)
            continue
        evaluations = [g for g in groups if _evaluate_only(g)]
        if evaluations and len(evaluations) < len(groups):
            groups = [g for g in groups if g not in evaluations]
            empty.extend(f"{d.name}/{g[0].path.name} (trainer.evaluate())" for g in evaluations)
        name = base.name or base.resolve().name
        src = source if d == p or p.is_file() else f"{source.rstrip('/')}/{d.name}"
        for k, files in enumerate(groups, 1):
            suffix = f"#{k}" if len(groups) > 1 else ""
            runs.extend(_one(files, base, src + suffix, name + suffix, len(groups)))
    if not runs:
        raise BadLog(
            f"{p}: event files, but none holds a metric (only graphs, hyperparameters, "
            "images, text or Lightning's hp_metric placeholder: a run that logged nothing, "
            "or only test()); nothing to replay"
        )
    if empty:
        shown = ", ".join(empty[:6]) + (", ..." if len(empty) > 6 else "")
        for run in runs:
            run.warnings.insert(0, (
                f"{p}: left out {len(empty)} folder(s) or file(s) that hold no training "
                f"({shown}: only hyperparameters, Lightning's hp_metric placeholder, or "
                "one trainer.evaluate())"
            ))  # fmt: skip
    return runs


def _evaluate_only(files: list[_File]) -> bool:
    """A Hugging Face file that ``trainer.evaluate()`` alone wrote: ``eval/*`` (and the
    ``train/epoch`` of its log entry) at one step, no training value."""
    tags = {t for f in files for t in f.points}
    steps = {s for f in files for pts in f.points.values() for s, _, _ in pts}
    return (
        any(t.startswith("eval/") for t in tags)
        and tags <= {t for t in tags if t.startswith("eval/")} | {"train/epoch"}
        and len(steps) == 1
    )


def _one(files: list[_File], d: Path, source: str, name: str, n: int) -> list[RunLog]:
    tags = {t for f in files for t in f.points}
    tool = tool_of(d, tags)
    path = files[0].path
    notes = [
        f"{f.path}: damaged ({f.damage}); kept the points before it" for f in files if f.damage
    ]
    if n > 1:
        notes.append(
            f"{d}: holds {n} trainings (one event file each, in the order they began); this "
            f"is {name.rsplit('#', 1)[-1]}, {path.name}"
        )
    if tool == "lightning":
        runs = _lightning(path, files[0], source, name)
        said = "PyTorch Lightning TensorBoardLogger events (rows rebuilt as metrics.csv rows)"
    elif tool == "hf":
        runs = [_hf(path, files[0], source, name)]
        said = "Hugging Face Trainer TensorBoard events (entries rebuilt as log_history)"
    elif tool == "ultralytics":
        runs = [_ultralytics(path, files[0], source, name)]
        said = "Ultralytics TensorBoard events (the columns of results.csv)"
    else:
        runs = [_plain(path, files, d, source, name)]
        said = "SummaryWriter events (one row per step)"
    for run in runs:
        run.warnings[:0] = [*notes, f"{path}: read as {said}"]
    return runs


# --------------------------------------------------------------------------- tools


def _cell(v: float | int | None) -> str:
    return "" if v is None else repr(v)


def _by_step(f: _File, skip=()) -> dict[int, dict[str, float]]:
    """``{step: {tag: value}}`` (a repeated point at a step: the last one read)."""
    out: dict[int, dict[str, float]] = {}
    for tag, pts in f.points.items():
        if tag in skip:
            continue
        for step, _, v in pts:
            out.setdefault(step, {})[tag] = v
    return out


_EVAL_STEP = re.compile(r".+_step/epoch_[0-9]+")


def _lightning(path: Path, f: _File, source: str, name: str) -> list[RunLog]:
    # Lightning 1.0-1.2 wrote on_step validation values as "<name>_step/epoch_<N>" at the
    # validation batch's index: no step of the fit, never an epoch's value.
    eval_steps = sorted(t for t in f.points if _EVAL_STEP.fullmatch(t))
    rows = _by_step(f, skip=("hp_metric", *eval_steps))
    tags = sorted({t for r in rows.values() for t in r} - {"epoch"})
    header = ["epoch", "step", *tags]
    table = CsvTable(header, [], [])
    for i, step in enumerate(sorted(rows)):
        r = rows[step]
        epoch = r.get("epoch")
        table.rows.append(
            [_cell(None if epoch is None else int(epoch)), str(step)]
            + [_cell(r.get(t)) for t in tags]
        )
        table.lines.append(i + 1)
    if not tags:
        raise BadLog(f"{path}: Lightning TensorBoard events with no metric but epoch/hp_metric")
    runs = lightning._load_file(path, source, name, table)
    if eval_steps:
        shown = ", ".join(eval_steps[:3]) + (", ..." if len(eval_steps) > 3 else "")
        for run in runs:
            run.warnings.insert(0, (
                f"{path}: left out {len(eval_steps)} per-step validation series ({shown}): "
                "old Lightning wrote them at the validation batch's index, not a step of "
                "the fit"
            ))  # fmt: skip
    return runs


def _hf(path: Path, f: _File, source: str, name: str) -> RunLog:
    history: list[dict] = []
    for step, r in sorted(_by_step(f).items()):
        entry: dict = {"step": step}
        evals = {k: v for k, v in r.items() if k.startswith("eval/")}
        train = {k: v for k, v in r.items() if not k.startswith("eval/")}
        epoch = train.pop("train/epoch", None)
        if epoch is not None:
            entry["epoch"] = epoch
        summary = {k[6:]: v for k, v in train.items() if k.startswith("train/train_")}
        for k in summary:
            train.pop("train/" + k)
        if evals:
            history.append({**entry, **{"eval_" + k[5:]: v for k, v in evals.items()}})
        plain = {k.split("/", 1)[-1]: v for k, v in train.items()}
        if plain:
            history.append({**entry, **plain})
        if summary:
            history.append({**entry, **summary})
    return hf._load_file(path, source, name, [], {"log_history": history})


def _ultralytics(path: Path, f: _File, source: str, name: str) -> RunLog:
    tags = sorted(f.points)
    warnings = []
    rows: dict[int, dict[str, float]] = {}
    per_batch, repeated = set(), set()
    for t in tags:
        validation = t.startswith(("metrics/", "val/"))
        counts: dict[int, int] = {}
        for step, _, v in f.points[t]:
            counts[step] = counts.get(step, 0) + 1
            if counts[step] > 1 and validation:  # best.pt's final validation, last step
                repeated.add(t)
                continue
            rows.setdefault(step, {})[t] = v  # training: the last point of the step
        if not validation and max(counts.values()) > 2:
            per_batch.add(t)
    if per_batch:
        warnings.append(
            f"{path}: {', '.join(sorted(per_batch))} written at every batch at the epoch's "
            "step (ultralytics 8.0's on_batch_end, the running mean of the epoch's loss); "
            "kept the last point of each step, the epoch's mean as results.csv holds it"
        )
    if repeated:
        warnings.append(
            f"{path}: {', '.join(sorted(repeated))} written twice at the last step (the "
            "final validation of best.pt after training); kept the epoch's own value"
        )
    table = CsvTable(["epoch", *tags], [], [])
    for i, step in enumerate(sorted(rows)):
        table.rows.append([str(step)] + [_cell(rows[step].get(t)) for t in tags])
        table.lines.append(i + 1)
    run = ultralytics._load_file(path, source, name, table)
    run.warnings[:0] = warnings
    return run


# --------------------------------------------------------------------------- plain scripts

_SPLIT = {"train": "", "training": "", "val": "val_", "valid": "val_", "validation": "val_",
          "eval": "val_", "test": "test_"}  # fmt: skip


def _plain_name(tag: str) -> str:
    """Keras's name for a script's tag where it says train/val/test, else the tag.

    >>> [_plain_name(t) for t in ["Loss/train", "Loss/val", "Accuracy/test", "val/acc", "x"]]
    ['loss', 'val_loss', 'test_accuracy', 'val_acc', 'x']
    >>> _plain_name("Loss/Val_Epoch")
    'val_loss'
    """
    parts = re.split(r"[/_]", re.sub(r"[_ ]epoch$", "", tag, flags=re.IGNORECASE), maxsplit=1)
    if len(parts) == 2:
        a, b = parts
        if b.lower() in _SPLIT and "/" in tag:
            return _SPLIT[b.lower()] + a.lower()
        if a.lower() in _SPLIT and "/" in tag:
            return _SPLIT[a.lower()] + b.lower()
    return tag


def _plain(path: Path, files: list[_File], d: Path, source: str, name: str) -> RunLog:
    points: dict[str, dict[int, float]] = {}
    for f in files:
        sub = f.path.parent
        for tag, pts in f.points.items():
            if sub != d:  # add_scalars: <logdir>/<main>_<key>/ holds tag <main>
                tag = f"{tag}/{_scalars_key(f, d, tag) or sub.name}"
            col = points.setdefault(tag, {})
            for step, _, v in pts:
                col[step] = v
    steps = sorted({s for col in points.values() for s in col})
    if not steps:
        raise BadLog(f"{path}: no scalar points; nothing to replay")
    warnings = []
    gaps = {b - a for a, b in itertools.pairwise(steps)}
    if steps[0] in (0, 1) and gaps <= {1}:
        how = f"{steps[0]}-based (steps {steps[0]} to {steps[-1]})"
    else:
        how = f"spaced (steps {steps[0]}, {steps[1] if len(steps) > 1 else ''}... {steps[-1]})"
    warnings.append(
        f"{path}: a SummaryWriter script's scalars: each of the {len(steps)} steps is one "
        f"row, read as an epoch; the steps look {how}; directions come from the names "
        "(else pass --mode) and the monitor from --monitor"
    )
    tags = sorted(points)
    renamed = {t: _plain_name(t) for t in tags}
    if len(set(renamed.values())) < len(tags):
        renamed = {t: t for t in tags}
    shown = ", ".join(f"{a} -> {b}" for a, b in renamed.items() if a != b)
    if shown:
        warnings.append(f"{path}: read the tags as Keras names: {shown}")
    import numpy as np

    index = {s: i for i, s in enumerate(steps)}
    values = np.full((len(steps), len(tags)), np.nan)
    absent = np.ones((len(steps), len(tags)), dtype=bool)
    for j, t in enumerate(tags):
        for s, v in points[t].items():
            values[index[s], j], absent[index[s], j] = v, False
    columns = [renamed[t] for t in tags]
    table, missing = frame(path, columns, np.arange(len(steps)), values, absent, warnings)
    return RunLog(name, source, "tensorboard", columns, table, missing, warnings=warnings)
