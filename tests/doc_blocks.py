"""The fenced blocks of the project's Markdown files, and how tests/test_docs.py runs them.

A block's language says what it is: ``sh`` (commands to run), ``python`` (a snippet to
run) or ``text`` (a layout, or output: not run). A fence without a language is not
allowed, so that no command hides in a block nobody runs. An HTML comment on the line
just before the fence marks a block:

- ``<!-- notest: REASON -->``: not run (it trains for minutes, needs a cluster, starts a
  server); tests/test_docs.py counts these by reason;
- ``<!-- output -->``: a ``text`` block that is the output of the last command (or the
  printed output of the last Python block) run before it in the same file; its lines
  between ``...`` lines must appear, in order, in that output (whitespace runs compared
  as one space, so a paragraph may be wrapped differently).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("sh", "python", "text")
_MARKER = re.compile(r"^<!--\s*(notest|output)\s*(?::\s*(.*?))?\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text, and its marker."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: str | None = None  # "notest" or "output"
    reason: str | None = None  # the notest reason

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the Markdown file ``path``, in order.

    Raises:
        ValueError: a fence left open, a marker of unknown kind, or a notest without
            its reason.
    """
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("```"):
            i += 1
            continue
        lang = line[3:].strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{path.name}:{i + 1}: a fence left open")
        marker = reason = None
        before = lines[i - 1].strip() if i else ""
        if before.startswith("<!--"):
            m = _MARKER.match(before)
            if m is None:
                raise ValueError(f"{path.name}:{i}: unknown marker {before!r}")
            marker, reason = m.group(1), m.group(2)
            if marker == "notest" and not reason:
                raise ValueError(f"{path.name}:{i}: notest needs a reason")
        out.append(Block(path, i + 1, lang, "\n".join(lines[i + 1 : end]), marker, reason))
        i = end + 1
    return out


def commands(text: str) -> list[list[str]]:
    """The commands of a ``sh`` block as argument lists: ``\\``-continued lines joined,
    ``#`` comments and blank lines left out."""
    joined = re.sub(r"\\\n", " ", text)
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


def output_matches(expected: str, actual: str) -> str | None:
    """None when the chunks of ``expected`` between ``...`` lines appear in ``actual`` in
    order (whitespace runs compared as one space); else the first chunk that does not."""
    flat = " ".join(actual.split())
    chunks, current = [], []
    for line in expected.splitlines():
        if line.strip() == "...":
            chunks.append(current)
            current = []
        else:
            current.append(line)
    chunks.append(current)
    at = 0
    for chunk in chunks:
        want = " ".join(" ".join(chunk).split())
        if not want:
            continue
        found = flat.find(want, at)
        if found < 0:
            return want
        at = found + len(want)
    return None
