"""Byte-for-byte sameness of two checkouts' sweeps: every log under tests/data and
sample_logs, several option sets, stdout, stderr, exit code and the files of ``--out``.

    .venv/bin/python benchmarks/compare_sweeps.py OLD_TREE NEW_TREE

Each path under ``tests/data`` and ``sample_logs`` (files and folders, whether a log or
not: the errors are compared too) is swept under each option set of :data:`OPTION_SETS`
(and shown with ``replay show``), in-process (click's CliRunner), once per tree in a
fresh interpreter with ``PYTHONPATH`` set to that tree. Both trees read the same copy
of the logs, from the same working folder, so that the paths in the output agree.
Prints the number of cases compared and each one that differs; exits 1 if any does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OPTION_SETS: list[list[str]] = [
    ["sweep", "--no-charts", "--out", "{out}"],
    ["sweep", "--no-charts", "--patience", "3..10", "--format", "csv"],
    ["sweep", "--no-charts", "--format", "json"],
    ["sweep", "--no-charts", "--format", "csv", "--policy",
     "early_stopping,reduce_lr_on_plateau,prechelt,model_checkpoint"],
    ["sweep", "--no-charts", "--format", "json", "--policy", "reduce_lr_on_plateau",
     "--factor", "0.1,0.5", "--initial-lr", "1e-3", "--cooldown", "0,1"],
    ["sweep", "--no-charts", "--format", "csv", "--monitor", "val_accuracy", "--mode", "max",
     "--min-delta", "0,0.01", "--restore-best-weights", "yes"],
    ["sweep", "--no-charts", "--format", "csv", "--dialect", "tf-keras", "--policy",
     "early_stopping,model_checkpoint"],
    ["sweep", "--no-charts", "--out", "{out}", "--patience", "2..6"],
    ["show"],
]  # fmt: skip

DRIVER = r"""
import json, sys
from pathlib import Path
from click.testing import CliRunner
from replay.commands.cli import cli
cases = json.loads(Path(sys.argv[1]).read_text())
out = {}
for n, (key, args) in enumerate(cases.items()):
    outdir = Path(sys.argv[3]) / str(n)
    args = [a.replace("{out}", str(outdir)) for a in args]
    r = CliRunner().invoke(cli, args)
    files = {}
    if outdir.is_dir():
        for f in sorted(outdir.rglob("*")):
            if f.is_file() and f.suffix in (".csv", ".json", ".txt", ".md"):
                files[str(f.relative_to(outdir))] = f.read_text(errors="replace")
    out[key] = [r.exit_code, r.stdout, r.stderr, files,
                repr(r.exception) if r.exit_code not in (0, 1, 2, 3) else None]
Path(sys.argv[2]).write_text(json.dumps(out))
"""


def logs(root: Path) -> list[str]:
    found = []
    for top in ("sample_logs", "tests/data"):
        for p in sorted((root / top).rglob("*")):
            if p.suffix != ".py" and "__pycache__" not in p.parts:
                found.append(str(p.relative_to(root)))
    return found


def main() -> None:
    old, new = (Path(a).resolve() for a in sys.argv[1:3])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        for top in ("sample_logs", "tests/data"):
            shutil.copytree(old / top, work / top)
        cases = {}
        for path in logs(work):
            for opts in OPTION_SETS:
                cases[json.dumps([path, *opts])] = [opts[0], path, *opts[1:]]
        (Path(tmp) / "cases.json").write_text(json.dumps(cases))
        results = []
        for k, tree in enumerate((old, new)):
            dump = Path(tmp) / f"out{k}.json"
            shutil.rmtree(work / "out", ignore_errors=True)
            subprocess.run(
                [sys.executable, "-c", DRIVER, str(Path(tmp) / "cases.json"), str(dump), "out"],
                cwd=work, env={**os.environ, "PYTHONPATH": str(tree)}, check=True,
            )  # fmt: skip
            results.append(json.loads(dump.read_text()))
    a, b = results
    differ = [key for key in cases if a[key] != b[key]]
    codes = {}
    for key in cases:
        codes[a[key][0]] = codes.get(a[key][0], 0) + 1
    print(f"{len(cases)} cases ({len(logs(old))} paths x {len(OPTION_SETS)} option sets), "
          f"exit codes {dict(sorted(codes.items()))}: {len(differ)} differ")  # fmt: skip
    for key in differ[:20]:
        print("DIFFERS:", key)
        for name, x, y in zip(("exit", "stdout", "stderr", "files", "exception"), a[key], b[key],
                              strict=True):  # fmt: skip
            if x != y:
                x, y = str(x), str(y)
                pairs = enumerate(zip(x, y, strict=False))
                at = next((i for i, (c, d) in pairs if c != d), min(len(x), len(y)))
                print(f"  {name} from char {at}: {x[max(at - 80, 0) : at + 120]!r}\n"
                      f"  vs {y[max(at - 80, 0) : at + 120]!r}")  # fmt: skip
    crashed = [k for k in cases if b[k][4]]
    for key in crashed[:5]:
        print("CRASH (new tree):", key, b[key][4])
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
