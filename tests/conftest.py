"""Helpers shared by several test files, as plain functions: ``from conftest import run``.

Plain functions, not fixtures: each takes arguments (a command line, a result, a path),
and ``f32`` is also called in ``parametrize`` tables at import time, where no fixture
reaches. pytest puts this folder on ``sys.path`` before it imports the test files
(its default "prepend" import mode), so ``import conftest`` is this module. Fixtures
stay in the files that use them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from replay.commands.cli import cli

# A 10-epoch Keras-like curve: val_loss is best at epoch 4, test_loss at epoch 3.
HEADER = "epoch,loss,val_loss,test_loss,learning_rate"
VAL = [0.50, 0.40, 0.35, 0.36, 0.34, 0.37, 0.38, 0.39, 0.40, 0.41]
TEST = [0.52, 0.41, 0.36, 0.35, 0.36, 0.38, 0.39, 0.40, 0.41, 0.43]


def f32(x: float) -> float:
    """``x`` as the float32 that Keras and TensorBoard store, back as a Python float."""
    return float(np.float32(x))


def run(*args, catch_exceptions: bool = False, **kwargs):
    """``replay ARGS...`` in-process (CliRunner); arguments may be paths or numbers.

    An exception raised inside the command propagates (the test fails with its traceback)
    unless ``catch_exceptions``; then it is left on ``result.exception`` for
    :func:`error_line` to reject.
    """
    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=catch_exceptions, **kwargs)


def error_line(result) -> str:
    """The one ``Error: ...`` line of a failed command; asserts exit 1 and no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def log_text(n: int = 10) -> str:
    """A CSVLogger file's text: the first ``n`` epochs of :data:`VAL` and :data:`TEST`."""
    rows = [HEADER] + [f"{e},{1.0 / (e + 1)!r},{VAL[e]!r},{TEST[e]!r},0.001" for e in range(n)]
    return "\n".join(rows) + "\n"


def write_log(path: Path, n: int = 10) -> Path:
    """Write :func:`log_text` to ``path``; return ``path``."""
    path.write_text(log_text(n))
    return path


def make_run(
    root: Path,
    n: int = 3,
    status: str = "complete",
    included: bool = True,
    paths: dict[int, str] | None = None,
    manifest_epochs: int | None = None,
    metrics: str | None = None,
) -> Path:
    """Write a small run directory as `replay record` would; return ``root``.

    Checkpoint ``e`` holds the bytes ``weights of epoch e`` at
    ``checkpoints/epoch-{e + 1:03d}.keras`` (``paths`` overrides, and is not written),
    with their sha256 and size in run.json. ``metrics`` is metrics.csv's text (default:
    ``epoch,loss,val_loss`` over ``n`` epochs).
    """
    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    if metrics is None:
        rows = "".join(f"{e},{1 / (e + 1)!r},{1.5 / (e + 1)!r}\n" for e in range(n))
        metrics = "epoch,loss,val_loss\n" + rows
    (root / "metrics.csv").write_text(metrics)
    entries = []
    for e in range(n if manifest_epochs is None else manifest_epochs):
        rel = (paths or {}).get(e, f"checkpoints/epoch-{e + 1:03d}.keras")
        blob = f"weights of epoch {e}".encode()
        if included and e not in (paths or {}):
            target = root / rel
            if not target.exists() and not target.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob)
        entries.append({"epoch": e, "checkpoint": rel, "sha256": hashlib.sha256(blob).hexdigest(),
                        "bytes": len(blob), "seconds": 0.5})  # fmt: skip
    manifest = {"schema_version": 1, "name": root.name, "status": status,
                "checkpoints_included": included, "epochs": entries,
                "shadow": [{"callback": "EarlyStopping", "stopped_epoch": None}]}  # fmt: skip
    (root / "run.json").write_text(json.dumps(manifest, indent=1))
    return root


def installed(module: str) -> bool:
    """Whether ``module`` is a real installed package, not a folder of that name that
    happens to lie on ``sys.path`` (a namespace package, e.g. a test fixture folder)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


@pytest.fixture
def figures(monkeypatch):
    """Every figure a chart function builds (listed), cleared (closed) after the test.

    Chart test modules use it for every test: ``pytestmark = pytest.mark.usefixtures("figures")``.
    """
    from analysis.charts import branches as branch_charts
    from analysis.charts import checkpoints as checkpoint_charts
    from analysis.charts import spread as spread_charts
    from analysis.charts import style as chart_style
    from analysis.charts import sweep as charts

    made = []
    real = chart_style.new_figure

    def tracking(*args, **kwargs):
        fig = real(*args, **kwargs)
        made.append(fig)
        return fig

    for module in (chart_style, charts, branch_charts, checkpoint_charts, spread_charts):
        monkeypatch.setattr(module, "new_figure", tracking)
    yield made
    for fig in made:
        fig.clear()


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance (2 CPUs) that ``--executor ray`` finds running, for one test
    module (tests/test_executor.py, tests/test_branch_own_model.py)."""
    import ray  # the dev extra installs it: a missing Ray fails here, never skips

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths are bounded
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp,
             logging_level=logging.ERROR)  # fmt: skip
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
