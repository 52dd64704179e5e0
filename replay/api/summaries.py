"""``replay.show``: the summary of a log."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis.errors import ReplayError
from replay.api.loading import load

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.reading.logs import RunLog

__all__ = ["Summary", "show"]


@dataclass
class Summary:
    """``replay show``: a plain summary of a log (or a line per run of a folder of runs)."""

    runs: list[RunLog]
    text: str
    #: Whether the replay disagrees with a real Keras decision recorded in the run.
    mismatch: bool

    def figure(self) -> Figure:
        """The recorded curves of the log (one training) as a matplotlib Figure."""
        from replay.output.charting import run_figure

        if len(self.runs) != 1:
            raise ReplayError(
                f"{len(self.runs)} trainings; name one as LOG#1 ... LOG#{len(self.runs)} "
                "to draw it."
            )
        return run_figure(self.runs[0])

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.text)}</pre>"


def show(source: Any) -> Summary:
    """Summarize a log: format, epochs, status, best epochs, LR changes, provenance.

    Raises:
        ReplayError: a missing or unreadable log.
    """
    from analysis.formats import is_run_folder
    from replay.output.summary import render_folder_summary, render_summary

    runs = load(source)
    if isinstance(source, (str, os.PathLike)) and is_run_folder(source):
        text, mismatch = render_folder_summary(str(source), runs)
        return Summary(runs, text, mismatch)
    texts, mismatch = [], False
    for k, one in enumerate(runs):
        text, bad = render_summary(one)
        texts.append(("\n" if k else "") + text)
        mismatch = mismatch or bad
    return Summary(runs, "".join(texts), mismatch)
