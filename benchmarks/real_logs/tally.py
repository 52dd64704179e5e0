"""Run `replay sweep` and `replay show` over the real-world logs listed in MANIFEST.tsv.

The logs themselves are not in this repository: MANIFEST.tsv says where each came from
(repository, commit, path), and ``fetch.py`` copies them into ``logs/`` beside it (an
ignored folder), the default --root. One line per log: its local path, the two exit
codes, and the first ``Error:`` line (or, when both succeeded, the first
``warning:``/``note:`` line on stderr). A summary line counts ok / refused / crashed,
and the logs of the manifest that are not in --root.

    python benchmarks/real_logs/fetch.py
    python benchmarks/real_logs/tally.py
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TIMEOUT_S = 60
SWEEP_OPTS = ["--patience", "3..10", "--no-charts", "--format", "csv"]


def run(args: list[str]) -> tuple[str, str, str]:
    """Run ``python -m replay ARGS``; return (exit code or 'timeout', stderr, stdout)."""
    cmd = [sys.executable, "-m", "replay", *args]
    try:
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "timeout", "", ""
    return str(p.returncode), p.stderr, p.stdout


def first_line(text: str, prefixes: tuple[str, ...]) -> str:
    """The first line of TEXT that starts (case-insensitively) with one of PREFIXES."""
    for line in text.splitlines():
        if line.strip().lower().startswith(prefixes):
            return line.strip()
    return ""


def check(path: Path) -> tuple[str, str]:
    """Return (outcome, report line) for one log; outcome is ok, refused or crashed."""
    with tempfile.TemporaryDirectory() as out:
        sweep = run(["sweep", str(path), *SWEEP_OPTS, "--out", out])
    show = run(["show", str(path)])
    stderr = sweep[1] + show[1]
    if "Traceback (most recent call last)" in stderr or "timeout" in (sweep[0], show[0]):
        outcome = "crashed"
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        msg = first_line(stderr, ("error:",)) or (lines[-1] if lines else "timed out")
    elif sweep[0] == show[0] == "0":
        outcome, msg = "ok", first_line(stderr, ("warning:", "note:"))
    else:
        outcome, msg = "refused", first_line(stderr + sweep[2] + show[2], ("error:",))
    return outcome, f"sweep={sweep[0]} show={show[0]}\t{outcome}\t{msg}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=HERE / "logs", help="where fetch.py put them")
    ap.add_argument("--manifest", type=Path, default=HERE / "MANIFEST.tsv")
    args = ap.parse_args()

    if not args.root.is_dir():
        print(
            f"Error: {args.root}: no such folder; fetch the logs of the manifest first: "
            f"python {HERE.relative_to(REPO) / 'fetch.py'} --root {args.root}",
            file=sys.stderr,
        )
        return 2
    counts = {"ok": 0, "refused": 0, "crashed": 0}
    with args.manifest.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    missing = []
    for row in rows:
        path = args.root / row["local_path"]
        if not path.exists():
            missing.append(row["local_path"])
            continue
        outcome, line = check(path)
        counts[outcome] += 1
        print(f"{row['local_path']}\t{line}", flush=True)
    print(" / ".join(f"{k} {v}" for k, v in counts.items()), f"(of {sum(counts.values())})")
    if missing:
        print(f"not in {args.root}: {len(missing)} of {len(rows)} (run fetch.py): "
              + ", ".join(missing), file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
