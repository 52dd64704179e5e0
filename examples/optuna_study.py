"""A real Optuna study of the MNIST MLP, then what each pruner setting would have done.

A dozen trials over the learning rate and the width of the MLP, a few epochs each on a
``--limit`` subset, run without pruning (Optuna's ``NopPruner``); a Keras callback
reports each epoch's ``val_loss`` to the trial (``trial.report(val_loss, epoch)``), so the
storage holds every trial's whole curve. Then the study is swept with a median-pruner
grid by the ``replay sweep`` command::

    .venv/bin/python examples/optuna_study.py                       # sqlite:///runs/optuna-mnist.db
    .venv/bin/python examples/optuna_study.py --trials 4 --epochs 2 --limit 1000  # a quick look

Needs Optuna (``pip install 'callback-replay[optuna]'``) and the MNIST arrays that
``replay record`` reads.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def build_model(width: int, learning_rate: float):
    """The MLP of ``replay record`` with another width and learning rate."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="mlp",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def report_callback(trial):
    """A Keras callback that reports each epoch's val_loss to the Optuna trial (what
    ``optuna-integration``'s KerasPruningCallback does, without asking to prune)."""
    import keras

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            trial.report(float(logs["val_loss"]), epoch)

    return Report()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///runs/optuna-mnist.db")
    parser.add_argument("--study-name", default="mnist-mlp")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--limit", type=int, default=5000, help="first N samples per split")
    parser.add_argument("--out", type=Path, default=Path("out/optuna-mnist"))
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import optuna

    from analysis.errors import ReplayError
    from replay.mnist.data import load_mnist

    if args.storage.startswith("sqlite:///"):
        Path(args.storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    try:
        data = load_mnist()
    except ReplayError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    n = args.limit
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            storage=args.storage,
            study_name=args.study_name,
            direction="minimize",
            pruner=optuna.pruners.NopPruner(),
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
    except optuna.exceptions.DuplicatedStudyError:
        print(
            f"Error: {args.storage} already holds a study {args.study_name!r}; pass another "
            "--study-name or --storage",
            file=sys.stderr,
        )
        return 1

    def objective(trial):
        keras.utils.set_random_seed(trial.number)
        model = build_model(
            trial.suggest_categorical("width", [32, 64, 128, 256]),
            trial.suggest_float("learning_rate", 1e-4, 3e-2, log=True),
        )
        history = model.fit(
            data.x_train[:n],
            data.y_train[:n],
            epochs=args.epochs,
            batch_size=128,
            validation_data=(data.x_val[:n], data.y_val[:n]),
            verbose=0,
            callbacks=[report_callback(trial)],
        )
        return float(history.history["val_loss"][-1])

    study.optimize(objective, n_trials=args.trials)
    best = study.best_trial
    print(
        f"study {args.study_name} in {args.storage}: best trial #{best.number}, "
        f"val_loss {best.value:.4f}; sweeping the median pruner over it:",
        flush=True,
    )
    sweep = [
        sys.executable, "-m", "replay", "sweep", args.storage, "--study", args.study_name,
        "--policy", "median_pruner", "--n-startup-trials", "0..3", "--n-warmup-steps",
        f"0..{max(0, args.epochs - 2)}", "--out", str(args.out), "--force",
    ]  # fmt: skip
    return subprocess.run(sweep).returncode


if __name__ == "__main__":
    sys.exit(main())
