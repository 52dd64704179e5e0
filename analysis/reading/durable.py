"""Writes that a crash cannot leave half done, and the lock that says a run directory is
being written: the file-system side of :mod:`analysis.reading.rundir` (which re-exports all of
it), with no knowledge of the format."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "WRITER_WAIT",
    "atomic_file",
    "atomic_write",
    "fsync_dir",
    "fsync_file",
    "has_writer",
    "lock_for_writing",
    "temporary_path",
]


def temporary_path(path: Path) -> Path:
    """Where :func:`atomic_write` stages ``path``: ``.NAME.tmp`` beside it."""
    return path.with_name(f".{path.name}.tmp")


def fsync_file(path: Path) -> None:
    """Flush a file's contents to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, text: bool = True) -> Iterator[IO[Any]]:
    """A file that replaces ``path`` in one step when the block ends well.

    Written to :func:`temporary_path` (text as UTF-8, newlines as written), fsynced and
    ``os.replace``\\ d onto ``path``, then the folder is fsynced: a reader (or a crash)
    sees the old file or the new one, never a part. Removed if the block fails.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, "w", encoding="utf-8", newline="") if text else open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step.

    The data goes to :func:`temporary_path`, is fsynced and ``os.replace``\\ d onto
    ``path``, and the folder is fsynced: a reader (or a crash) sees the old file or
    the new one, never a part. A new file's mode follows the umask, as for ``open``.
    The temporary file is removed if writing fails.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, text=False) as f:
        f.write(raw)


WRITER_WAIT = 5.0
"""Seconds a writer waits for shared holders of the lock (readers' probes) to leave."""


def lock_for_writing(root: Path) -> int | None:
    """Take the run directory's write lock (an exclusive flock on ``root``) and return its
    descriptor (closing it releases the lock), or None where another writer holds it.

    Readers probe for a writer (:func:`has_writer`) with a shared lock held for an
    instant, which also makes a writer's exclusive try fail. So a writer that fails looks
    again with a shared try of its own: it succeeds where only probes hold the lock
    (a writer holds it exclusive), and the writer tries again, up to
    :data:`WRITER_WAIT` seconds; a probe never makes a writer fail.
    """
    fd = os.open(root, os.O_RDONLY)
    deadline, pause = time.monotonic() + WRITER_WAIT, 0.0002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if has_writer(root) or time.monotonic() > deadline:
            os.close(fd)
            return None
        time.sleep(pause)
        pause = min(2 * pause, 0.01)


def has_writer(root: Path) -> bool:
    """Whether a process holds the run directory's write lock (``replay record``, a
    ``RecordCallback`` fit, ``replay branch``): a run whose run.json says ``running``
    while none does stopped without marking itself (Ctrl-C outside the commit, a crash,
    ``kill -9``). The probe takes a shared lock and drops it at once (a writer starting
    at that instant waits for it: :func:`lock_for_writing`)."""
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
