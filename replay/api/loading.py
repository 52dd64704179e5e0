"""``replay.load``: logs from paths, a Keras History, a dict of lists or a DataFrame."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.errors import ReplayError

if TYPE_CHECKING:  # pragma: no cover
    from analysis.reading.logs import RunLog

__all__ = ["load"]


def load(source: Any, *more: Any, name: str | None = None) -> list[RunLog]:
    """Every training in ``source`` (and ``more``), as :class:`~analysis.reading.logs.RunLog`
    objects with names that tell them apart.

    ``source`` is a path of any log the CLI reads (``LOG#N`` picks one training of a log
    that holds several), a list of paths (a log given twice is read once, with a
    warning; logs read from paths come first), a Keras ``History`` (what ``model.fit``
    returns), its ``history`` dict (one list of values per metric, one value per
    epoch), a pandas DataFrame (epochs as rows; an ``epoch`` column, if any, is the
    epoch), or RunLogs already loaded. ``name`` names an in-memory log
    (default ``history``).

    Raises:
        ReplayError: a path that is missing or not a log, a malformed log, an object
            of another kind.
    """
    from analysis.formats import load_all, unique_names
    from analysis.reading.logs import RunLog

    items = _flattened((source, *more))
    paths = [i for i in items if isinstance(i, (str, os.PathLike))]
    runs = load_all(paths) if paths else []  # a log given twice is read once, with a warning
    for item in items:
        if isinstance(item, RunLog):
            runs.append(item)
        elif not isinstance(item, (str, os.PathLike)):
            runs.append(_in_memory(item, name or "history"))
    unique_names(runs)
    return runs


def _flattened(items: tuple) -> list:
    out: list = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_flattened(tuple(item)))
        else:
            out.append(item)
    return out


def _in_memory(obj: Any, name: str) -> RunLog:
    """A History, a dict of lists or a DataFrame as a RunLog (read as a CSVLogger file
    with those columns would be)."""
    columns = _columns_of(obj)
    if columns is None:
        raise ReplayError(
            f"cannot read a {type(obj).__name__} as a log; give a path, a Keras History, "
            "its history dict (metric -> list of values per epoch) or a pandas DataFrame."
        )
    if not columns:
        raise ReplayError(f"{name}: the log has no metrics.")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in columns.items())
        raise ReplayError(
            f"{name}: metrics of different lengths ({sizes}); give one value per epoch each."
        )
    return _run_from_columns(columns, name)


def _columns_of(obj: Any) -> dict[str, list] | None:
    history = getattr(obj, "history", None)
    if isinstance(history, Mapping) and not isinstance(obj, Mapping):  # a Keras History
        epochs = getattr(obj, "epoch", None)
        columns = {str(k): list(v) for k, v in history.items()}
        if epochs and len(epochs) == len(next(iter(columns.values()), [])):
            return {"epoch": list(epochs), **columns}
        return columns
    if isinstance(obj, Mapping):
        try:
            return {str(k): list(v) for k, v in obj.items()}
        except TypeError:
            raise ReplayError(
                "a history dict maps each metric to a list of values, one per epoch."
            ) from None
    if type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "columns"):
        if not hasattr(obj, "to_dict"):
            return None
        return {str(k): list(v) for k, v in obj.to_dict(orient="list").items()}
    return None


def _run_from_columns(columns: dict[str, list], name: str) -> RunLog:
    import csv
    import io
    import math

    from analysis.reading.csvlog import runs_from_csv_text

    n = len(next(iter(columns.values())))
    if "epoch" not in columns:
        columns = {"epoch": list(range(n)), **columns}

    def cell(v: Any) -> str:
        if v is None:
            return ""
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ReplayError(
                f"{name}: {v!r} is not a number; a log holds one number per metric and epoch."
            ) from None
        if math.isfinite(f) and f == int(f) and isinstance(v, int):
            return str(int(v))
        return repr(f)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for i in range(n):
        writer.writerow(cell(values[i]) for values in columns.values())
    (run,) = runs_from_csv_text(buf.getvalue(), Path(name), name, name, "keras_history")[:1]
    return run
