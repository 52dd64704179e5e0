"""Start-up and the sample sweep, as a user meets them: medians of fresh processes.

Each command runs ``--repeat`` times (default 7) in a fresh process, alternating with
``python -c pass`` (the interpreter alone) so that a ratio to it holds across machines:

- ``python -c "import replay"`` and what it loaded (numpy, pandas, matplotlib must not be);
- ``replay --help``;
- ``replay sweep sample_logs/mnist-mlp --patience 3..10 --no-charts --format csv``;
- the same with its charts (``--out`` a fresh folder, table on stdout).

Targets (issue 17, on 2 cores): --help <= 0.15 s, the sample sweep without charts
<= 0.35 s, with charts <= 1.0 s, ``import replay`` without pandas, matplotlib or numpy.

    .venv/bin/python benchmarks/bench_cli.py [--repeat N] [--tree DIR [--tree DIR2]]

With two ``--tree`` checkouts (an older commit's worktree beside this one) the runs of
both alternate, so that the comparison holds on a busy machine. Each tree's code runs
from a neutral working folder with ``PYTHONPATH`` set to it (``python -m`` puts the
working folder first on ``sys.path``).

Bytecode: an installed package has its ``.pyc`` files; a checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (as some shells here set) compiles every module of the
project from source at each start (about 0.1 s for a sweep). So the runs write and use
a bytecode cache in a temporary folder (``PYTHONPYCACHEPREFIX``; the trees are left
untouched), warmed by one untimed run of each command; ``--no-bytecode`` times them
with the caller's environment as it is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(args: list[str], tree: Path, cwd: Path, env: dict[str, str]) -> float:
    env = {**env, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--tree", type=Path, action="append",
        help="a checkout to time (default: this one); give two to compare",
    )  # fmt: skip
    parser.add_argument("--no-bytecode", action="store_true",
                        help="no bytecode cache: time the environment as it is")  # fmt: skip
    opts = parser.parse_args()
    trees = [t.resolve() for t in (opts.tree or [ROOT])]
    py = sys.executable
    sample = str(ROOT / "sample_logs" / "mnist-mlp")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        if not opts.no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "import replay": [py, "-c", "import replay"],
            "replay --help": [py, "-m", "replay", "--help"],
            "sweep, no charts": [py, "-m", "replay", "sweep", sample, "--patience", "3..10",
                                 "--no-charts", "--format", "csv"],
            "sweep with charts": [py, "-m", "replay", "sweep", sample, "--patience", "3..10",
                                  "--out", f"{tmp}/out-{{tree}}-{{k}}"],
        }  # fmt: skip
        times = {(t, name): [] for t in range(len(trees)) for name in cases}
        for k in range(-1 if opts.no_bytecode else -2, opts.repeat):
            for t, tree in enumerate(trees):
                for name, args in cases.items():
                    argv = [a.replace("{k}", str(k)).replace("{tree}", str(t)) for a in args]
                    seconds = wall(argv, tree, work, env)
                    if k >= 0:  # k < 0: warm-up (bytecode cache, file system cache)
                        times[(t, name)].append(seconds)
        loaded = [
            subprocess.run(
                [py, "-c", "import sys, replay; print(' '.join(m for m in ('numpy', 'pandas', "
                 "'matplotlib', 'tensorflow') if m in sys.modules) or 'none')"],
                cwd=work, env={**env, "PYTHONPATH": str(tree)}, check=True,
                capture_output=True, text=True,
            ).stdout.strip()
            for tree in trees
        ]  # fmt: skip
    cache = "no bytecode cache" if opts.no_bytecode else "bytecode cached"
    print(f"medians of {opts.repeat} fresh processes, trees alternating ({sys.platform}, "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}, {cache}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")  # fmt: skip
    for t, tree in enumerate(trees):
        base = statistics.median(times[(t, "python -c pass")])
        print(f"{tree}  (import replay loads: {loaded[t]})")
        for name in cases:
            m = statistics.median(times[(t, name)])
            print(f"  {name:<20} {m:6.3f} s   {m / base:5.1f}x python -c pass")


if __name__ == "__main__":
    main()
