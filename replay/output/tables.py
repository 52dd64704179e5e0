"""Plain-text tables of the CLI's output (shared by the sweep table and the across-runs
tables)."""

from __future__ import annotations

__all__ = ["TABLE_ROWS", "fmt_number", "text_table"]

#: Rows a table shows before "... N more settings".
TABLE_ROWS = 12


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in
              enumerate(headers)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def fmt_number(v, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)
