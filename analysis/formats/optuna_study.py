"""Optuna studies read from their storage, through Optuna itself (the ``[optuna]`` extra).

A storage is named by an RDB URL Optuna accepts (``sqlite:///study.db``,
``postgresql://...``) or by a journal file (``JournalFileBackend``: a file whose lines
are Optuna's JSON operations). ``SPEC#study=NAME`` (or the CLI's ``--study NAME``) picks
one study; it may be left out when the storage holds one study.

Each trial is read with its intermediate values (the curve the pruners saw, steps in
increasing order), state, final value, parameters and times. A multi-objective study is
refused: Optuna's pruners do not support it.

Optuna is imported inside the functions only: nothing here costs an import of it until
a study is read.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from analysis.errors import BadLog, LogNotFound
from analysis.formats.studylog import StudyLog, StudyTrial

__all__ = ["claims", "is_study_spec", "load", "load_study", "split_spec"]

_URL = re.compile(r"[a-z][a-z0-9+]*://", re.IGNORECASE)
_STUDY = re.compile(r"(.*)#study=(.+)")


def split_spec(spec: str) -> tuple[str, str | None]:
    """``(storage, study name or None)`` of ``STORAGE#study=NAME``."""
    m = _STUDY.fullmatch(spec)
    return (m.group(1), m.group(2)) if m else (spec, None)


def _is_journal(p: Path) -> bool:
    """A file whose first line is an Optuna journal operation (JSON with ``op_code``)."""
    try:
        with open(p, "rb") as f:
            first = f.readline(65536)
        return isinstance(json.loads(first), dict) and "op_code" in json.loads(first)
    except (OSError, ValueError):
        return False


def is_study_spec(spec: str) -> bool:
    """Whether ``spec`` names an Optuna storage (an RDB URL, or a journal file)."""
    storage, _ = split_spec(spec)
    if _URL.match(storage):
        return True
    p = Path(storage)
    return p.is_file() and _is_journal(p)


def claims(p: Path, head: str | None) -> bool:
    """Detection: an Optuna journal file (RDB URLs are not paths: see is_study_spec)."""
    return p.is_file() and head is not None and '"op_code"' in head and _is_journal(p)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise BadLog(
            "reading an Optuna study needs Optuna; install it with "
            "pip install 'callback-replay[optuna]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def _storage(optuna, storage: str):
    if _URL.match(storage):
        if storage.lower().startswith("sqlite:///"):
            path = Path(storage[len("sqlite:///") :])
            if not path.is_file():
                raise LogNotFound(
                    f"{storage}: no such database file {path}; pass the sqlite:/// URL of an "
                    "existing study"
                )
        try:
            return optuna.storages.RDBStorage(storage, skip_compatibility_check=False)
        except Exception as e:  # SQLAlchemy's and Optuna's many errors: one line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BadLog(f"{storage}: cannot be opened as an Optuna storage ({first})") from None
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        return JournalStorage(JournalFileBackend(storage))
    except Exception as e:
        raise BadLog(f"{storage}: cannot be read as an Optuna journal file ({e})") from None


def _iso(when) -> str | None:
    return None if when is None else when.isoformat()


def load_study(spec: str, study: str | None = None) -> StudyLog:
    """The study at ``spec`` (``STORAGE`` or ``STORAGE#study=NAME``); ``study`` names it
    when the storage holds several.

    Raises:
        LogNotFound: no such file, or no study of that name (the message lists them).
        AmbiguousLog: several studies and none named.
        BadLog: not an Optuna storage, a multi-objective study, Optuna not installed.
    """
    from analysis.errors import AmbiguousLog

    storage_name, named = split_spec(spec)
    study = study if study is not None else named
    optuna = _optuna()
    storage = _storage(optuna, storage_name)
    summaries = storage.get_all_studies()
    names = [s.study_name for s in summaries]
    if not names:
        raise LogNotFound(f"{storage_name}: holds no Optuna study")
    if study is None:
        if len(names) > 1:
            raise AmbiguousLog(
                f"{storage_name}: holds {len(names)} studies ({', '.join(names)}); "
                "pick one with --study NAME"
            )
        study = names[0]
    if study not in names:
        raise LogNotFound(f"{storage_name}: no study named {study!r}; it holds {', '.join(names)}")
    summary = summaries[names.index(study)]
    if len(summary.directions) != 1:
        raise BadLog(
            f"{storage_name}: study {study!r} is multi-objective "
            f"({len(summary.directions)} objectives); Optuna's pruners do not support it"
        )
    direction = summary.directions[0].name.lower()
    if direction not in ("minimize", "maximize"):
        raise BadLog(f"{storage_name}: study {study!r} has no direction set")
    study_id = storage.get_study_id_from_name(study)
    frozen = storage.get_all_trials(study_id, deepcopy=False)
    trials = []
    for t in sorted(frozen, key=lambda t: t.number):
        steps = tuple(sorted(t.intermediate_values))
        value = t.value if t.state.name == "COMPLETE" else None
        trials.append(
            StudyTrial(
                number=t.number,
                state=t.state.name.lower(),
                steps=steps,
                values=tuple(float(t.intermediate_values[s]) for s in steps),
                value=None if value is None else float(value),
                params=dict(t.params),
                start=_iso(t.datetime_start),
                end=_iso(t.datetime_complete),
            )
        )
    warnings = []
    if any(t.value is not None and math.isnan(t.value) for t in trials):
        warnings.append(f"{storage_name}: a complete trial's value is NaN")
    return StudyLog(
        name=study,
        source=spec if named or study is None else f"{storage_name}#study={study}",
        format="optuna",
        direction=direction,
        metric="objective",
        trials=trials,
        warnings=warnings,
    )


def load(p: Path, source: str) -> list:
    """Detection's reader: each trial of the one study in a journal file as a RunLog."""
    study = load_study(source)
    runs = study.runs()
    for run in runs:
        run.warnings.extend(study.warnings)
    return runs
