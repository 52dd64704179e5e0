"""Pixel sameness of two checkouts' sweep charts: the PNGs of a few sweeps, decoded and
compared pixel for pixel (the files' bytes may differ: compression, metadata).

    .venv/bin/python benchmarks/compare_charts.py OLD_TREE NEW_TREE

Each sweep of :data:`SWEEPS` runs once per tree (``replay sweep ... --out DIR``) from the
same working folder, with ``PYTHONPATH`` set to the tree. Prints the number of images
compared and each one that differs (size or pixels); exits 1 if any does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SWEEPS: list[list[str]] = [
    ["sample_logs/mnist-mlp", "--patience", "3..10"],
    ["sample_logs/mnist-mlp-plateau"],
    ["sample_logs/mnist-mlp", "sample_logs/mnist-mlp-plateau", "--patience", "2..8"],
    ["sample_logs/mnist-mlp", "--policy", "model_checkpoint,early_stopping"],
    ["sample_logs/mnist-mlp", "--policy", "prechelt,reduce_lr_on_plateau",
     "--factor", "0.1,0.5", "--cooldown", "0,2"],
    ["tests/data/csvlogger_semicolon.csv", "--min-delta", "0,0.01"],
]  # fmt: skip


def main() -> None:
    trees = [Path(a).resolve() for a in sys.argv[1:3]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for top in ("sample_logs", "tests/data"):
            shutil.copytree(trees[0] / top, work / top)
        for k, tree in enumerate(trees):
            for i, args in enumerate(SWEEPS):
                subprocess.run(
                    [sys.executable, "-m", "replay", "sweep", *args, "--out", f"t{k}/s{i}"],
                    cwd=work, env={**os.environ, "PYTHONPATH": str(tree)}, check=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
        old = sorted(p.relative_to(work / "t0") for p in (work / "t0").rglob("*.png"))
        new = sorted(p.relative_to(work / "t1") for p in (work / "t1").rglob("*.png"))
        differ = [] if old == new else [f"image sets differ: {old} vs {new}"]
        same_bytes = 0
        for rel in old:
            if rel not in new:
                continue
            a, b = work / "t0" / rel, work / "t1" / rel
            same_bytes += a.read_bytes() == b.read_bytes()
            x, y = np.asarray(Image.open(a)), np.asarray(Image.open(b))
            if x.shape != y.shape:
                differ.append(f"{rel}: size {x.shape} vs {y.shape}")
            elif not np.array_equal(x, y):
                n = int((x != y).any(axis=-1).sum())
                differ.append(f"{rel}: {n} pixels differ")
    print(f"{len(old)} images of {len(SWEEPS)} sweeps compared pixel for pixel: "
          f"{len(differ)} differ ({same_bytes} also byte-identical)")  # fmt: skip
    for d in differ:
        print("DIFFERS:", d)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
