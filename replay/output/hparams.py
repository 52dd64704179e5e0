"""A sweep as a TensorBoard HParams experiment, written without TensorFlow.

``replay sweep ... --tensorboard DIR`` writes one *session* per record (one setting
replayed on one run), so that TensorBoard's HParams dashboard shows the sweep as a table,
parallel coordinates and scatter plots::

    DIR/
      events.out.tfevents.<time>.replay-hparams   the experiment: every hyperparameter
                                                  (with its values) and every metric
      0000/events.out.tfevents.<time>.replay-hparams
      0001/...                                    one folder per session: its
                                                  hyperparameters, its metrics (step 0)
                                                  and "finished"

Hyperparameters: ``policy``, every parameter of the setting (``patience``,
``min_delta``, ``restore_best_weights``, ``factor``, ...; a parameter that is None for a
setting is left out of that session), ``run`` when the sweep has several runs,
``dialect`` for records replayed in another framework's dialect, and
``trial_params.NAME`` for the runs that are a study's trials (the trial's parameters).
Metrics (a value that is None is left out of that session): ``epochs_trained``,
``stopped_epoch``, ``kept_epoch`` (the record's ``final_epoch``), the held-out metric at
the kept epoch under its own name (``test_loss``, ...), ``regret``, and ``final_lr`` for
settings with a learning-rate schedule.

A pruner sweep over a study (``replay sweep STUDY --policy median_pruner ...
--tensorboard DIR``) is written the same way by :func:`write_pruner_experiment`: one
session per setting, its hyperparameters ``policy`` and the pruner's parameters, its
metrics :data:`PRUNER_METRICS` (steps trained, compute saved, trials pruned and
censored, the best trial found and its value where known, regret, whether the recorded
best survives, whether the setting reproduces the recorded pruning).

The stages: :func:`check_size` and :func:`check_dir` refuse before the sweep,
:func:`sessions` says what each session holds (plain values, no protobuf),
:func:`experiment_pb` and :func:`session_events` turn them into tensorboard's own
protobuf messages (``tensorboard.plugins.hparams``: ``summary_v2.hparams_pb``, the
``api_pb2`` / ``plugin_data_pb2`` messages; none of them reaches TensorFlow), and
:func:`write_experiment` frames them as TFRecords with the checksum the project's
reader uses (:func:`analysis.reading.tb.masked_crc32c`) and puts the folder in place in one
rename (or, with ``--force``, replaces the earlier experiment's entries). TensorBoard's
own ``EventFileWriter`` is not used: it opens files through
``tf.io.gfile``, which imports TensorFlow where it is installed.

A session is a folder that TensorBoard loads as a run of its own, so a sweep of more than
:data:`MAX_SESSIONS` settings is refused (:func:`check_size`) before any work.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shutil
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import ReplayError
from analysis.reading.tb import masked_crc32c
from analysis.results.records import (
    Oracle,
    Record,
    distinct_label,
    freeze,
)

__all__ = [
    "MAX_SESSIONS",
    "PRUNER_METRICS",
    "SUFFIX",
    "Session",
    "check_dir",
    "check_size",
    "describe",
    "experiment_pb",
    "pruner_sessions",
    "session_events",
    "session_names",
    "sessions",
    "write_experiment",
    "write_pruner_experiment",
]

#: The most sessions ``--tensorboard`` writes: each is a folder that TensorBoard loads
#: as a run (its Python loader takes about a minute for 10,000 of them, and the
#: dashboard's table and plots slow down long before that).
MAX_SESSIONS = 10_000

#: The suffix of every event file written here: what ``--force`` may replace.
SUFFIX = ".replay-hparams"
_SESSION_NAME = re.compile(r"\d{4,}")

#: The metrics, in the order the dashboard lists them: (tag, display name, description).
#: The held-out metric comes between kept_epoch and regret, under its own name.
_METRICS_BEFORE = (
    ("epochs_trained", "epochs trained", "epochs the setting would have trained"),
    ("stopped_epoch", "stopped epoch", "0-based epoch at whose end it stopped (none if never)"),
    ("kept_epoch", "kept epoch", "0-based epoch whose weights you end with (final_epoch)"),
)
_METRICS_AFTER = (
    ("regret", "regret", "held-out metric at the kept epoch minus its best; 0 is best"),
    ("final_lr", "final learning rate", "learning rate after the last epoch trained"),
)


#: A pruner sweep's metrics (``replay sweep STUDY --policy median_pruner ...
#: --tensorboard DIR``), in order: (tag, display name, description).
PRUNER_METRICS = (
    ("steps_trained", "steps trained",
     "reported steps the trials would have run (a lower bound when n_censored > 0)"),
    ("steps_saved_fraction", "compute saved",
     "1 - steps trained / steps recorded (an upper bound when n_censored > 0)"),
    ("n_pruned", "trials pruned", "trials the setting prunes"),
    ("n_censored", "trials censored",
     "trials pruned or running in the record that the setting lets run on: outcome unknown"),
    ("best_known", "best known", "1 when no censored trial might beat the best found, else 0"),
    ("best_trial", "best trial", "number of the best trial found (only when best known)"),
    ("best_value", "best value", "its final value (only when best known)"),
    ("regret", "regret", "best value found against the recorded best; 0 is best"),
    ("recorded_best_survives", "recorded best survives",
     "1 when the setting lets the recorded best trial complete, else 0"),
    ("reproduces_recorded", "reproduces recorded", "1 when its pruning is the recorded one"),
)  # fmt: skip


@dataclass(frozen=True)
class Session:
    """What one session holds: its folder name, its trial id (the dashboard's name for
    it: the folder's name, the run's when there are several, the policy and the
    setting's label), hyperparameters and metric values."""

    name: str
    trial_id: str
    hparams: dict[str, bool | float | str]
    metrics: dict[str, float]


# ----------------------------------------------------------------------------------
# Checks, before any work


def check_size(n_sessions: int) -> None:
    """Raise :class:`ReplayError` when a sweep of ``n_sessions`` settings (all runs
    together) is more than :data:`MAX_SESSIONS` for ``--tensorboard``."""
    if n_sessions > MAX_SESSIONS:
        raise ReplayError(
            f"--tensorboard: the sweep has {n_sessions:,} settings, more than the "
            f"{MAX_SESSIONS:,} sessions the HParams dashboard is written for (one folder "
            "each); narrow the grid (fewer values, one --policy) or leave out --tensorboard."
        )


def check_dir(path: Path, force: bool, out: Path | None = None, n_sessions: int = 0) -> None:
    """Refuse an unusable ``--tensorboard`` folder before any work, with the rules of
    ``--out``: a non-empty folder only with ``force``, a writable place to create it.

    With ``force``, what an earlier ``--tensorboard`` wrote there is replaced and
    anything else is kept, so a folder there that is not ours may not have the name of
    one of the ``n_sessions`` sessions. ``out`` (``--out``) may hold the folder but not
    be it or lie inside it.
    """
    from replay.output.writers import check_output_dir

    check_output_dir(path, "--tensorboard", force, "replace the experiment written there")
    if out is not None:
        here, there = path.resolve(), out.resolve()
        if here == there or here in there.parents:
            raise ReplayError(
                f"--tensorboard {path}: holds the --out directory {out}; give it a folder "
                "of its own (inside --out is fine)."
            )
    if path.is_dir():
        _check_names(path, session_names(n_sessions))


# ----------------------------------------------------------------------------------
# What to write


def _heldout(record: Mapping[str, Any], heldout_of: Mapping[tuple[str, str], str | None]):
    name = record.get("regret_metric") or heldout_of.get(
        (record["run"], record["params"].get("monitor"))
    )
    value = (record.get("final_metrics") or {}).get(name) if name else None
    return name, value


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def sessions(records: Iterable[Record], oracles: Sequence[Oracle] = ()) -> Iterator[Session]:
    """One :class:`Session` per record, in order, named ``0000``, ``0001``, ...
    (trial ids ``0000 early_stopping patience=3 no-restore``, ...).

    ``oracles`` (the sweep's) name the held-out metric of records that do not name it
    themselves (ReduceLROnPlateau's). Hyperparameters that are None, and metrics that
    are None or not finite, are left out of that session.
    """
    heldout_of = {(o["run"], o["monitor"]): o["heldout"] for o in oracles}
    records = list(records) if not isinstance(records, Sequence) else records
    names = session_names(len(records))
    several_runs = len({r["run"] for r in _runs_of(records)}) > 1
    seen: dict[str, dict[str, set]] = {}
    for rec in records:
        for k, v in rec["params"].items():
            seen.setdefault(rec["policy"], {}).setdefault(k, set()).add(freeze(v))
    differing = {p: [k for k, vs in by.items() if len(vs) > 1] for p, by in seen.items()}
    for i, rec in enumerate(records):
        hp: dict[str, Any] = {"run": rec["run"]} if several_runs else {}
        hp["policy"] = rec["policy"]
        hp.update(rec["params"])
        if rec.get("dialect"):
            hp["dialect"] = rec["dialect"]
        for k, v in (rec.get("trial_params") or {}).items():  # a study's trial (a run)
            hp[f"trial_params.{k}"] = v
        hp = {k: v for k, v in hp.items() if v is not None and _hparam_ok(v)}
        metrics = {
            "epochs_trained": rec.get("epochs_trained"),
            "stopped_epoch": rec.get("stopped_epoch"),
            "kept_epoch": rec.get("final_epoch"),
        }
        name, value = _heldout(rec, heldout_of)
        if name:
            metrics[name] = value
        metrics["regret"] = rec.get("regret")
        metrics["final_lr"] = rec.get("final_lr")
        kept = {k: f for k, v in metrics.items() if (f := _finite(v)) is not None}
        name = names[i]
        where = f"{rec['run']} " if several_runs else ""
        label = distinct_label(rec["policy"], rec["params"], differing[rec["policy"]])
        yield Session(name, f"{name} {where}{rec['policy']} {label}", hp, kept)


def pruner_sessions(records: Iterable[Mapping[str, Any]]) -> Iterator[Session]:
    """One :class:`Session` per pruner-sweep record
    (:class:`analysis.results.records.PrunerRecord`),
    in order, named ``0000``, ``0001``, ... (trial ids ``0000 median_pruner
    n_startup_trials=0 ...``: the record's ``setting``).

    Hyperparameters: ``policy`` and every parameter (None left out, as ``wrapped`` of a
    patient pruner that wraps none). Metrics: :data:`PRUNER_METRICS`, booleans as 1 or 0;
    a value that is None or not finite is left out of that session, and so are
    ``best_trial`` and ``best_value`` where ``best_known`` is false (a censored trial
    might have beaten them), as ``regret`` is.
    """
    records = list(records)
    for name, rec in zip(session_names(len(records)), records, strict=True):
        hp: dict[str, Any] = {"policy": rec["policy"], **rec["params"]}
        hp = {k: v for k, v in hp.items() if v is not None and _hparam_ok(v)}
        known = bool(rec["best_known"])
        metrics = {
            "steps_trained": rec["steps_trained"],
            "steps_saved_fraction": rec["steps_saved_fraction"],
            "n_pruned": rec["n_pruned"],
            "n_censored": len(rec["censored"]),
            "best_known": known,
            "best_trial": rec["best_trial"] if known else None,
            "best_value": rec["best_value"] if known else None,
            "regret": rec["regret"],
            "recorded_best_survives": rec["recorded_best_survives"],
            "reproduces_recorded": rec["reproduces_recorded"],
        }
        kept = {k: f for k, v in metrics.items()
                if (f := _finite(float(v) if isinstance(v, bool) else v)) is not None}  # fmt: skip
        yield Session(name, f"{name} {rec['setting']}", hp, kept)


def session_names(n: int) -> list[str]:
    """The folder names of ``n`` sessions: ``0000``, ``0001``, ... (wider past 9999)."""
    width = max(4, len(str(n - 1)))
    return [f"{i:0{width}d}" for i in range(n)]


def _runs_of(records: Sequence[Record]) -> Iterator[Mapping[str, Any]]:
    blocks = getattr(records, "blocks", None)
    if blocks is not None:  # replay.sweeping.blocks.Records: one head per block, no record built
        yield from (b.head for b in blocks)
    else:
        yield from records


def _hparam_ok(value: Any) -> bool:
    if isinstance(value, (bool, str)):
        return True
    return isinstance(value, (int, float)) and math.isfinite(value)


def _kinds(all_sessions: Sequence[Session]) -> dict[str, str]:
    """Each hyperparameter's type over all sessions: ``bool``, ``number`` or ``string``
    (a name whose values are of several types is written as strings)."""
    seen: dict[str, set[str]] = {}
    for s in all_sessions:
        for k, v in s.hparams.items():
            kind = "bool" if isinstance(v, bool) else "string" if isinstance(v, str) else "number"
            seen.setdefault(k, set()).add(kind)
    return {k: kinds.pop() if len(kinds) == 1 else "string" for k, kinds in seen.items()}


def _as_kind(value: Any, kind: str) -> bool | float | str:
    if kind == "string":
        return value if isinstance(value, str) else repr(value)
    return value if kind == "bool" else float(value)


def _typed(all_sessions: list[Session]) -> list[Session]:
    kinds = _kinds(all_sessions)
    return [
        Session(
            s.name, s.trial_id, {k: _as_kind(v, kinds[k]) for k, v in s.hparams.items()}, s.metrics
        )  # fmt: skip
        for s in all_sessions
    ]


# ----------------------------------------------------------------------------------
# Protobuf messages (tensorboard's own; no TensorFlow)

_DISCRETE_NUMBERS = 200  # more distinct values than this: an interval domain


def experiment_pb(
    all_sessions: Sequence[Session], metric_names: Sequence[str], created: float,
    labels: Sequence[tuple[str, str, str]] = _METRICS_BEFORE + _METRICS_AFTER,
):  # fmt: skip
    """The experiment summary (``summary_pb2.Summary``): every hyperparameter with its
    type and values (``differs`` where they vary), and every metric some session has,
    in ``metric_names``'s order (``labels``: (tag, display name, description) of the
    metrics; any other is a held-out metric at the kept epoch)."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    values: dict[str, dict[Any, None]] = {}
    for s in all_sessions:
        for k, v in s.hparams.items():
            values.setdefault(k, {})[v] = None
    infos = []
    types = {bool: api_pb2.DATA_TYPE_BOOL, float: api_pb2.DATA_TYPE_FLOAT64,
             str: api_pb2.DATA_TYPE_STRING}  # fmt: skip
    for name, seen in values.items():
        vals = sorted(seen, key=lambda v: (str(type(v)), v))
        info = api_pb2.HParamInfo(name=name, type=types[type(vals[0])], differs=len(vals) > 1)
        if isinstance(vals[0], float) and len(vals) > _DISCRETE_NUMBERS:
            info.domain_interval.min_value, info.domain_interval.max_value = vals[0], vals[-1]
        else:
            info.domain_discrete.extend(vals)
        infos.append(info)
    labels = {tag: (shown, about) for tag, shown, about in labels}
    present = {k for s in all_sessions for k in s.metrics}
    metrics = []
    for tag in metric_names:
        if tag not in present:
            continue
        shown, about = labels.get(tag, (f"{tag} (kept epoch)", f"{tag} at the kept epoch"))
        metrics.append(api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=shown,
                                          description=about))  # fmt: skip
    exp = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics, time_created_secs=created)
    data = plugin_data_pb2.HParamsPluginData(experiment=exp)
    return _summary(metadata.EXPERIMENT_TAG, metadata.create_summary_metadata(data))


def _summary(tag: str, summary_metadata, tensor=None):
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=summary_metadata, tensor=tensor or metadata.NULL_TENSOR)
    return summary


def session_events(session: Session, wall_time: float) -> list[bytes]:
    """The serialized events of one session's file: the file version, the session's
    start (its hyperparameters; a group of its own, named by its trial id), each metric as a float32
    scalar at step 0 (TensorBoard's data server reads no other), and its end (status success)."""
    from tensorboard.compat.proto import event_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    def event(summary) -> bytes:
        return event_pb2.Event(wall_time=wall_time, step=0, summary=summary).SerializeToString()

    shape = tensor_shape_pb2.TensorShapeProto()  # a scalar
    out = [event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString()]
    out.append(event(hparams_pb(session.hparams, trial_id=session.trial_id,
                                start_time_secs=wall_time)))  # fmt: skip
    for tag, value in session.metrics.items():
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, float_val=[value], tensor_shape=shape
        )
        out.append(event(_summary(tag, scalar_metadata.create_summary_metadata(tag, ""), tensor)))
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=wall_time)
    data = plugin_data_pb2.HParamsPluginData(session_end_info=end)
    out.append(
        event(_summary(metadata.SESSION_END_INFO_TAG, metadata.create_summary_metadata(data)))
    )
    return out


def _frame(data: bytes) -> bytes:
    """``data`` as one TFRecord (what :func:`analysis.reading.tb.read_records` undoes)."""
    header = struct.pack("<Q", len(data))
    return b"".join((header, struct.pack("<I", masked_crc32c(header)), data,
                     struct.pack("<I", masked_crc32c(data))))  # fmt: skip


def _write_events(folder: Path, events: Iterable[bytes], wall_time: float) -> None:
    folder.mkdir(exist_ok=True)
    with open(folder / f"events.out.tfevents.{int(wall_time)}{SUFFIX}", "wb") as f:
        f.write(b"".join(_frame(e) for e in events))


# ----------------------------------------------------------------------------------
# Writing the folder


def write_experiment(
    records: Iterable[Record], path: Path, *, oracles: Sequence[Oracle] = (),
    force: bool = False,
) -> int:  # fmt: skip
    """Write ``records`` (a sweep's) as an HParams experiment in ``path``; return the
    number of sessions written.

    Everything is written into a new folder beside ``path`` first; it then becomes
    ``path`` in one rename (``path`` absent or empty), or, with ``force`` in a
    non-empty ``path``, replaces what an earlier call wrote there (event files ending
    in :data:`SUFFIX` and session folders holding only such files), keeping the rest.

    Raises:
        ReplayError: too many sessions (:func:`check_size`), or with ``force`` a
            folder of ``path`` that is not ours has a session's name.
    """
    all_sessions = list(sessions(records, oracles))
    order = [m for m, _, _ in _METRICS_BEFORE]
    order += sorted({k for s in all_sessions for k in s.metrics} - {m for m, _, _ in
                    _METRICS_BEFORE + _METRICS_AFTER})  # fmt: skip
    order += [m for m, _, _ in _METRICS_AFTER]
    return _write_sessions(all_sessions, order, _METRICS_BEFORE + _METRICS_AFTER, Path(path))


def write_pruner_experiment(
    records: Iterable[Mapping[str, Any]], path: Path, *, force: bool = False
) -> int:
    """Write a pruner sweep's records (:class:`analysis.results.records.PrunerRecord`) as an
    HParams experiment in ``path`` (one session per setting: :func:`pruner_sessions`),
    as :func:`write_experiment` does; return the number of sessions.

    Raises:
        ReplayError: as :func:`write_experiment`.
    """
    order = [m for m, _, _ in PRUNER_METRICS]
    return _write_sessions(list(pruner_sessions(records)), order, PRUNER_METRICS, Path(path))


def _write_sessions(
    all_sessions: list[Session], order: list[str], labels: Sequence[tuple[str, str, str]],
    path: Path,
) -> int:  # fmt: skip
    """Write ``all_sessions`` (metrics listed in ``order``) into ``path``."""
    all_sessions = _typed(all_sessions)
    check_size(len(all_sessions))
    if path.is_dir():
        _check_names(path, session_names(len(all_sessions)))
    now = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_folder(path, "tmp")
    try:
        summary = experiment_pb(all_sessions, order, now, labels)
        _write_events(tmp, _experiment_events(summary, now), now)
        for s in all_sessions:
            _write_events(tmp / s.name, session_events(s, now), now)
        _put_in_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return len(all_sessions)


def _experiment_events(summary, wall_time: float) -> list[bytes]:
    """The serialized events of the experiment's file: the file version, the summary."""
    from tensorboard.compat.proto import event_pb2

    return [
        event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString(),
        event_pb2.Event(wall_time=wall_time, step=0, summary=summary).SerializeToString(),
    ]


def _ours(entry: Path) -> bool:
    """Whether ``entry`` of a --tensorboard folder was written here (and may be replaced)."""
    if entry.is_file():
        return entry.name.startswith("events.out.tfevents.") and entry.name.endswith(SUFFIX)
    return (entry.is_dir() and not entry.is_symlink() and bool(_SESSION_NAME.fullmatch(entry.name))
            and all(_ours(e) and e.is_file() for e in entry.iterdir()))  # fmt: skip


def _check_names(path: Path, names: list[str]) -> None:
    wanted = set(names)
    for entry in sorted(path.iterdir()):
        if entry.name in wanted and not _ours(entry):
            raise ReplayError(
                f"--tensorboard {path}: {entry.name} was not written by --tensorboard and a "
                "session of this sweep would take its name; move it, or choose another directory."
            )


def _new_folder(path: Path, kind: str) -> Path:
    """A new hidden folder beside ``path`` (created with the umask's permissions)."""
    while True:
        folder = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def _put_in_place(tmp: Path, path: Path) -> None:
    if not path.exists():
        tmp.rename(path)
        return
    if not any(path.iterdir()):
        path.rmdir()
        tmp.rename(path)
        return
    old = _new_folder(path, "old")
    try:
        for entry in list(path.iterdir()):
            if _ours(entry):
                entry.rename(old / entry.name)
        for entry in list(tmp.iterdir()):
            entry.rename(path / entry.name)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def describe(n_sessions: int, path: Path) -> str:
    """The line ``replay sweep`` prints after writing the experiment."""
    return (f"wrote an HParams experiment of {n_sessions:,} sessions to {path} "
            f"(tensorboard --logdir {path}, tab HPARAMS)")  # fmt: skip
