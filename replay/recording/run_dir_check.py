"""The one check of the directory a recording goes into, made before anything is trained
or written: ``replay record`` (a run, or ``--seeds``' folder of runs) and
``replay.keras.RecordCallback`` refuse, in one line each, a directory that cannot receive
their run. What each refuses, and in which words, is its :class:`OutRules`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from analysis.reading.rundir import MANIFEST
from replay.recording.run_writer import RunExists

__all__ = ["OutRules", "check_out"]


@dataclasses.dataclass(frozen=True)
class OutRules:
    """What a command says of a directory it will not record into (``{out}`` in a message
    is the directory): ``run`` of one holding a run (run.json), ``other`` of one holding
    anything else; None takes such a directory (a run to continue or overwrite, a folder
    of runs). ``file_hint`` follows "OUT exists and is not a directory"."""

    run: str | None
    other: str | None
    file_hint: str = ""


def check_out(out: Path, rules: OutRules) -> None:
    """Refuse ``out`` if it is a file, lies under a file, or is a directory that ``rules``
    refuse; a new or empty directory is always taken.

    Raises:
        RunExists: one line naming ``out`` and what to do instead.

    >>> check_out(Path("no/such/run"), OutRules(run=None, other=None))
    """
    if out.exists() and not out.is_dir():
        raise RunExists(f"{out} exists and is not a directory{rules.file_hint}")
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise RunExists(f"{out}: {parent} is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    message = rules.run if (out / MANIFEST).is_file() else rules.other
    if message is not None:
        raise RunExists(message.format(out=out))
