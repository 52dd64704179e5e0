"""Load time of the log readers: CSV logs and TensorBoard log directories.

Run: ``.venv/bin/python benchmarks/bench_readers.py``. Prints the best of several loads
for each size, and the time per epoch (or per event), so that a quadratic blow-up shows
as a per-unit time that grows with the size.

TensorBoard directories hold one event per scalar per epoch, each byte for byte as
Keras 3 writes it (float32 bytes in ``tensor_content``: ``scalar_event(..., keras3=True)``
of ``tests/tbevents.py``). The 100,000-event directory (20,000 epochs x 5 scalars,
``train/`` and ``validation/``) is read three ways, side by side:

- ``analysis.reading.tb.read_trainings``: the event reader alone (records -> events -> points);
- ``analysis.reading.logs.load_tensorboard``: the reader plus the RunLog frame and the
  learning-rate alignment (what ``replay sweep`` calls);
- ``tbparse`` (``SummaryReader(logdir).tensors``), when it is installed (it is not a
  dependency: ``.venv/bin/pip install tbparse``). tbparse imports TensorFlow (and so reads
  records with TensorFlow's C++ reader) whenever TensorFlow is installed, as it is here;
  its import time is not counted. It runs last, so that TensorFlow's import does not
  weigh on the other timings.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/tbevents.py: event builders without TF

from tbevents import file_version_event, frame_record, scalar_event  # noqa: E402

from analysis.reading import tb  # noqa: E402
from analysis.reading.logs import load_csv, load_tensorboard  # noqa: E402

COLUMNS = [
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "learning_rate",
]
SEVEN = {
    "train": ["loss", "accuracy", "learning_rate"],
    "validation": ["loss", "accuracy"],
    "test": ["loss", "accuracy"],
}
FIVE = {"train": ["loss", "accuracy", "learning_rate"], "validation": ["loss", "accuracy"]}


def write_csv(path: Path, n: int) -> None:
    lines = ["epoch," + ",".join(COLUMNS)]
    for e in range(n):
        lines.append(f"{e}," + ",".join(repr(1.0 / (e + k + 1)) for k in range(len(COLUMNS))))
    path.write_text("\n".join(lines) + "\n")


def write_tb(root: Path, n: int, folders: dict[str, list[str]] = SEVEN) -> int:
    """Write ``n`` epochs of Keras 3 scalars; return the number of scalar events."""
    events = 0
    for folder, metrics in folders.items():
        (root / folder).mkdir(parents=True)
        records = [frame_record(file_version_event())]
        for e in range(n):
            for k, m in enumerate(metrics):
                event = scalar_event(f"epoch_{m}", 1.0 / (e + k + 1), e, 1000.0 + e, keras3=True)
                records.append(frame_record(event))
                events += 1
        (root / folder / "events.out.tfevents.1.bench.0.v2").write_bytes(b"".join(records))
    return events


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def bench_csv(d: Path) -> None:
    for n in (10_000, 100_000):
        f = d / f"log{n}.csv"
        write_csv(f, n)
        assert load_csv(f).n_epochs == n
        s = best_of(lambda f=f: load_csv(f))
        mb = f.stat().st_size / 1e6
        import pandas  # the yardstick: a plain read of the same file

        base = best_of(lambda f=f: pandas.read_csv(f))
        print(
            f"CSV  {n:>7,} epochs x {len(COLUMNS)} metrics ({mb:.1f} MB): "
            f"{s * 1000:8.1f} ms  ({s / n * 1e6:.2f} us/epoch; {s / base:.1f}x "
            f"pandas.read_csv's {base * 1000:.1f} ms)"
        )


def bench_small_tb(d: Path) -> None:
    for n in (100, 1_000):
        root = d / f"tb{n}"
        write_tb(root, n)
        assert load_tensorboard(root).n_epochs == n
        s = best_of(lambda root=root: load_tensorboard(root))
        print(
            f"TB   {n:>7,} epochs x 7 scalars ({size_mb(root):.2f} MB):        "
            f"{s * 1000:8.1f} ms  ({s / n * 1e6:.1f} us/epoch)"
        )


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null (TensorFlow's start-up lines ignore logging)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def tbparse_reader() -> Callable[[str], int] | None:
    """``read(logdir) -> number of values`` with tbparse, or None when it is absent."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with quiet_stderr():
            from tbparse import SummaryReader
    except ImportError:
        return None

    def read(logdir: str) -> int:
        return len(SummaryReader(logdir).tensors)

    return read


def bench_100k_events(d: Path) -> None:
    root = d / "tb100k"
    n = 20_000
    events = write_tb(root, n, FIVE)
    assert events == 100_000
    print(
        f"\nTB   {events:,} events ({n:,} epochs x 5 scalars, train/ + validation/, "
        f"{size_mb(root):.1f} MB), best of 5 (tbparse: of 3):"
    )

    def report(label: str, s: float) -> None:
        print(f"  {label:<34} {s * 1000:8.1f} ms  ({s / events * 1e6:.2f} us/event)")

    (training,) = tb.read_trainings(root)
    assert sum(len(c) for c in training.columns.values()) == events
    report("analysis.reading.tb.read_trainings", best_of(lambda: tb.read_trainings(root)))
    assert load_tensorboard(root).n_epochs == n
    report("analysis.reading.logs.load_tensorboard", best_of(lambda: load_tensorboard(root)))
    read = tbparse_reader()
    if read is None:
        print("  tbparse: not installed (.venv/bin/pip install tbparse), not measured")
        return
    with quiet_stderr():
        assert read(str(root)) == events  # also the warm-up: TensorFlow's first calls
    report("tbparse SummaryReader(...).tensors", best_of(lambda: read(str(root)), 3))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        # Apart: load_tensorboard looks for a CSVLogger file beside a log (lr alignment).
        (d / "csv").mkdir()
        (d / "tb").mkdir()
        bench_csv(d / "csv")
        bench_small_tb(d / "tb")
        bench_100k_events(d / "tb")


if __name__ == "__main__":
    main()
