"""Load time of the log readers: a 100,000-epoch CSV and a 1,000-epoch TensorBoard dir.

Run: ``.venv/bin/python benchmarks/bench_readers.py``. Prints the best of five loads
for each size, and the time per epoch at a tenth of the size, so that a quadratic
blow-up shows as a per-epoch time that grows with the size.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.logs import load_csv, load_tensorboard  # noqa: E402
from analysis.tb import file_version_event, frame_record, scalar_event  # noqa: E402

COLUMNS = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
           "learning_rate"]


def write_csv(path: Path, n: int) -> None:
    lines = ["epoch," + ",".join(COLUMNS)]
    for e in range(n):
        lines.append(f"{e}," + ",".join(repr(1.0 / (e + k + 1)) for k in range(len(COLUMNS))))
    path.write_text("\n".join(lines) + "\n")


def write_tb(root: Path, n: int) -> None:
    folders = {"train": ["loss", "accuracy", "learning_rate"],
               "validation": ["loss", "accuracy"], "test": ["loss", "accuracy"]}
    for folder, metrics in folders.items():
        (root / folder).mkdir(parents=True)
        records = [frame_record(file_version_event())]
        for e in range(n):
            for k, m in enumerate(metrics):
                records.append(frame_record(scalar_event(f"epoch_{m}", 1.0 / (e + k + 1), e,
                                                         1000.0 + e)))
        (root / folder / "events.out.tfevents.1.bench.0.v2").write_bytes(b"".join(records))


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for n in (10_000, 100_000):
            f = d / f"log{n}.csv"
            write_csv(f, n)
            assert load_csv(f).n_epochs == n
            s = best_of(lambda f=f: load_csv(f))
            mb = f.stat().st_size / 1e6
            print(f"CSV  {n:>7,} epochs x {len(COLUMNS)} metrics ({mb:.1f} MB): "
                  f"{s * 1000:8.1f} ms  ({s / n * 1e6:.2f} us/epoch)")
        for n in (100, 1_000):
            root = d / f"tb{n}"
            write_tb(root, n)
            assert load_tensorboard(root).n_epochs == n
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
            s = best_of(lambda root=root: load_tensorboard(root))
            print(f"TB   {n:>7,} epochs x 7 scalars ({size / 1e6:.2f} MB):        "
                  f"{s * 1000:8.1f} ms  ({s / n * 1e6:.1f} us/epoch)")


if __name__ == "__main__":
    main()
