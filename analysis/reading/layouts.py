"""The log layouts that are read, by name, with the phrase that names each in messages:
the one list that the detection step (:mod:`analysis.formats`) and the readers' error
messages (which name every layout, or the CSV ones) share, below both."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LAYOUTS", "Layout", "describe", "expected_layouts", "other_csv_layouts"]


@dataclass(frozen=True)
class Layout:
    """A log layout: its reader's name (``RunLog.format``), a phrase for messages, and
    whether it is a CSV layout (named when a CSV file matches none of them)."""

    name: str
    describe: str
    csv: bool = False


#: Every layout, in the order detection tries them.
LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "run_dir",
        "a run directory written by `replay record`",
        csv=False,
    ),
    Layout(
        "run_folder",
        "a folder of such run directories (runs/mlp/seed-0, runs/mlp/seed-1, ...)",
        csv=False,
    ),
    Layout(
        "lightning",
        "a Lightning CSVLogger metrics.csv (header with 'epoch' and 'step') or "
        "its version_N or lightning_logs folder",
        csv=True,
    ),
    Layout(
        "hf",
        "a Hugging Face trainer_state.json or its output folder",
        csv=False,
    ),
    Layout(
        "ultralytics",
        "an Ultralytics or YOLOv5 results.csv or its run folder",
        csv=True,
    ),
    Layout(
        "mlflow",
        "an MLflow file-store run, experiment or mlruns folder",
        csv=False,
    ),
    Layout(
        "optuna",
        "an Optuna study (sqlite:///study.db or another storage URL, or a journal file)",
        csv=False,
    ),
    Layout(
        "kerastuner",
        "a KerasTuner project (DIR/PROJECT with oracle.json and trial_*/trial.json)",
        csv=False,
    ),
    Layout(
        "torch_tensorboard",
        "a TensorBoard log directory written by PyTorch (Lightning's TensorBoardLogger, the "
        "Hugging Face Trainer, Ultralytics, a SummaryWriter script)",
        csv=False,
    ),
    Layout(
        "tensorboard",
        "a Keras TensorBoard log directory",
        csv=False,
    ),
    Layout(
        "keras_history",
        "a Keras History saved with pandas (header with 'loss', no 'epoch')",
        csv=True,
    ),
    Layout(
        "csv",
        "a Keras CSVLogger file (header 'epoch,...')",
        csv=True,
    ),
)


def describe(name: str) -> str:
    """The phrase naming the layout ``name``."""
    return next(layout.describe for layout in LAYOUTS if layout.name == name)


def expected_layouts() -> str:
    """Every layout read, as one phrase for messages."""
    return ", ".join(x.describe for x in LAYOUTS[:-1]) + " or " + LAYOUTS[-1].describe


def other_csv_layouts() -> str:
    """``" (also read: ...)"`` naming the CSV layouts besides Keras's, or ``""``."""
    others = [x.describe for x in LAYOUTS if x.csv and x.name != "csv"]
    return f" (also read: {', '.join(others)})" if others else ""
