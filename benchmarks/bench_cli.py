"""Start-up and the sample sweep, as a user meets them: medians of fresh processes.

Each command runs ``--repeat`` times (default 7) in a fresh process, alternating with
``python -c pass`` (the interpreter alone) so that a ratio to it holds across machines:

- ``python -c "import replay"`` and what it loaded (numpy, pandas, matplotlib must not be);
- ``replay --help``;
- ``replay sweep sample_logs/mnist-mlp --patience 3..10 --no-charts --format csv``;
- the same with its charts (``--out`` a fresh folder, table on stdout).

Targets (issue 17, on 2 cores): --help <= 0.15 s, the sample sweep without charts
<= 0.35 s, with charts <= 1.0 s, ``import replay`` without pandas, matplotlib or numpy.

    .venv/bin/python benchmarks/bench_cli.py [--repeat N] [--tree DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to time")
    opts = parser.parse_args()
    tree = opts.tree.resolve()
    py = sys.executable
    replay = [py, "-m", "replay"]
    loaded = subprocess.run(
        [py, "-c", "import sys, replay; print(' '.join(m for m in ('numpy', 'pandas', "
         "'matplotlib', 'tensorflow') if m in sys.modules) or 'none')"],
        cwd=tree, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "import replay": [py, "-c", "import replay"],
            "replay --help": [*replay, "--help"],
            "sweep, no charts": [*replay, "sweep", "sample_logs/mnist-mlp", "--patience",
                                 "3..10", "--no-charts", "--format", "csv"],
            "sweep with charts": [*replay, "sweep", "sample_logs/mnist-mlp", "--patience",
                                  "3..10", "--out", f"{tmp}/out-{{k}}"],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in cases}
        for k in range(opts.repeat):
            for name, args in cases.items():
                times[name].append(wall([a.replace("{k}", str(k)) for a in args], tree))
    base = statistics.median(times["python -c pass"])
    print(f"{tree}: medians of {opts.repeat} fresh processes ({sys.platform}, "
          f"python {sys.version.split()[0]})")  # fmt: skip
    print(f"import replay loads: {loaded}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:<20} {m:6.3f} s   {m / base:5.1f}x python -c pass")


if __name__ == "__main__":
    main()
