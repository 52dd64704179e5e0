"""Record your own Keras model with ``replay.keras.RecordCallback``, then sweep it.

A small CNN (not ``replay record``'s model) on the first 1,000 MNIST training samples
(so that it overfits within a few epochs and the sweep has stops to show), trained by an ordinary
``model.fit`` with a live ``ReduceLROnPlateau``; the callback writes the run directory
that ``replay sweep``, ``show`` and ``pick`` read. Then the run is swept with the
``replay sweep`` command::

    .venv/bin/python examples/own_model.py --epochs 8 --out runs/own-cnn
    .venv/bin/python examples/own_model.py --limit 1000 --epochs 2   # a quick look

To continue a stopped run: ``model, epoch = replay.keras.restore(out)``, then
``model.fit(..., initial_epoch=epoch, callbacks=[RecordCallback(out, ...)])``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

TRAIN_SAMPLES = 1000
"""Training samples used without --limit (validation and test: every sample)."""


def build_model():
    """A small CNN: 784 pixels in, 10 digit probabilities out."""
    import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((784,)),
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),  # no dropout: it overfits visibly
            layers.Dense(10, activation="softmax"),
        ],
        name="own_cnn",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/own-cnn"), help="run directory")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--limit", type=int, default=None, help="use the first N samples of each split"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from analysis.errors import ReplayError
    from replay.data import load_mnist
    from replay.keras import RecordCallback

    try:
        data = load_mnist()
        n = args.limit
        train = TRAIN_SAMPLES if n is None else n  # few samples: it overfits in a few epochs
        keras.utils.set_random_seed(0)
        model = build_model()
        model.fit(
            data.x_train[:train],
            data.y_train[:train],
            epochs=args.epochs,
            batch_size=32,
            validation_data=(data.x_val[:n], data.y_val[:n]),
            verbose=2,
            callbacks=[
                keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=2),
                RecordCallback(args.out, test_data=(data.x_test[:n], data.y_test[:n])),
            ],
        )
    except ReplayError as e:  # an existing run, bad data: one line, no traceback
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(f"recorded {args.out}; sweeping it:", flush=True)
    sweep = [sys.executable, "-m", "replay", "sweep", str(args.out), "--patience", "1..4"]
    sweep += ["--out", str(args.out.with_name(args.out.name + "-sweep")), "--force"]
    return subprocess.run(sweep).returncode


if __name__ == "__main__":
    sys.exit(main())
