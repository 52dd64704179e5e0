"""A Keras ``History`` saved with pandas: ``pd.DataFrame(history.history).to_csv(path)``.

A common way to keep a training's metrics besides CSVLogger: ``model.fit`` returns a
``History`` whose ``history`` dict holds one list per metric, one value per epoch, in
epoch order (keras/src/callbacks/history.py appends in ``on_epoch_end``). Saved with
pandas, the file has no ``epoch`` column: row k is epoch k. With the default
``index=True`` the first column is pandas's index, whose header cell is empty (or
``Unnamed: 0`` after a round trip through ``read_csv``); its values are then the
epochs (and an index that goes back to 0, from ``pd.concat`` of several histories,
starts another training, as in a CSVLogger file).

Claimed only for a CSV file whose header has no ``epoch`` column and has a ``loss``
column (every Keras History has one); anything else goes on to the readers after this.
"""

from __future__ import annotations

import csv
from pathlib import Path

from analysis.reading.csvlog import csv_stem, read_text, runs_from_csv_text
from analysis.reading.logs import RunLog

__all__ = ["claims", "load"]

_INDEX_NAMES = ("", "Unnamed: 0")


def _names(line: str) -> tuple[str, list[str]]:
    """(separator, header names) of a header line: the separator giving the most names."""
    best = (",", [line.strip()])
    for sep in (",", ";", "\t"):
        try:
            names = [n.strip() for n in next(csv.reader([line], delimiter=sep))]
        except (csv.Error, StopIteration):
            continue
        if len(names) > len(best[1]):
            best = (sep, names)
    return best


def claims(p: Path, head: str | None) -> bool:
    if not p.is_file() or not head:
        return False
    _sep, names = _names(head)
    return "epoch" not in names and "loss" in names


def load(p: Path, source: str) -> list[RunLog]:
    """Read the file with an ``epoch`` column added: the index column, else row numbers.

    Raises:
        BadLog: as for a CSVLogger file (ragged rows, non-numeric cells, ...).
    """
    text = read_text(p)
    lines = text.splitlines(keepends=True)
    first = next(i for i, ln in enumerate(lines) if ln.strip())
    sep, names = _names(lines[first])
    if names[0] in _INDEX_NAMES:
        how = "its first column (pandas's index) as the epoch"
        lines[first] = "epoch" + lines[first].lstrip()[len(names[0]) :]
    else:
        how = "row k as epoch k (a History holds one row per epoch, in order)"
        row = 0
        for i in range(first, len(lines)):
            if not lines[i].strip():
                continue
            lines[i] = ("epoch" if i == first else str(row - 1)) + sep + lines[i]
            row += 1
    runs = runs_from_csv_text("".join(lines), p, source, csv_stem(p), "keras_history")
    note = (
        f"{p}: no 'epoch' column but a 'loss' column: read as a Keras History saved with "
        f"pandas, taking {how}"
    )
    for run in runs:
        run.warnings.insert(0, note)
    return runs
