"""Record your own Keras model with ``replay.keras.RecordCallback``, sweep it, branch it.

A small CNN (not ``replay record``'s model) on the first 1,000 MNIST training samples
(so that it overfits within a few epochs and the sweep has stops to show), trained through a
recipe (``recipe`` below: the data in an order derived from (seed, epoch), validation
and test data) by ``replay.keras.fit``; the callback writes the run directory that
``replay sweep``, ``show``, ``pick`` and ``branch`` read. Then the run is swept::

    .venv/bin/python examples/own_model.py --epochs 8 --out runs/own-cnn
    .venv/bin/python examples/own_model.py --limit 1000 --epochs 2   # a quick look
    .venv/bin/python examples/own_model.py --out runs/own-cnn-plateau \
        --reduce-lr-on-plateau "factor=0.5,patience=1"                 # a live callback

and branched: re-trained from its checkpoints for a ReduceLROnPlateau setting, bit for
bit the run that setting would have recorded (its metrics.csv equals the one
``--reduce-lr-on-plateau "factor=0.5,patience=1"`` records from the same seed)::

    .venv/bin/python -m replay branch runs/own-cnn --factor 0.5 --lr-patience 1 -y
    .venv/bin/python -m replay sweep runs/own-cnn --policy reduce_lr_on_plateau \
        --factor 0.5 --patience 1     # counterfactual_from: null, an exact answer

To continue a stopped run: ``model, epoch = replay.keras.restore(out)``, then
``replay.keras.fit(model, recipe(), epochs=..., initial_epoch=epoch,
callbacks=[RecordCallback(out, recipe=...)])``.
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


def recipe(limit: int | None = None):
    """What a fit of this model needs besides the model (``replay branch`` calls it again
    with the ``limit`` run.json records): MNIST's first ``limit`` samples of each split,
    the training ones in an order derived from (seed, epoch)."""
    from replay.inputs import array_dataset
    from replay.mnist.data import load_mnist
    from replay.recipe import Recipe

    data, n = load_mnist(), limit
    train = TRAIN_SAMPLES if n is None else n  # few samples: it overfits in a few epochs
    return Recipe(
        train=array_dataset(data.x_train[:train], data.y_train[:train], batch_size=32, seed=0),
        validation_data=(data.x_val[:n], data.y_val[:n]),
        test_data=(data.x_test[:n], data.y_test[:n]),
        seed=0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/own-cnn"), help="run directory")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--limit", type=int, default=None, help="use the first N samples of each split"
    )
    parser.add_argument(
        "--reduce-lr-on-plateau",
        metavar="SPEC",
        default=None,
        help='a live ReduceLROnPlateau, as replay record takes it: "factor=0.5,patience=1"',
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from analysis.errors import ReplayError
    from replay.keras import RecordCallback, fit
    from replay.mnist.config import parse_plateau

    try:
        live = []
        if args.reduce_lr_on_plateau is not None:
            params = parse_plateau(args.reduce_lr_on_plateau)
            live = [keras.callbacks.ReduceLROnPlateau(**params)]
        made = recipe(args.limit)
        keras.utils.set_random_seed(0)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()  # bit for bit on TensorFlow
        model = build_model()
        recorder = RecordCallback(
            args.out, recipe=f"{__file__}:recipe", recipe_args={"limit": args.limit}
        )
        # the live callback before the recorder: the checkpoint holds the cut rate
        fit(model, made, epochs=args.epochs, verbose=2, callbacks=[*live, recorder])
    except ReplayError as e:  # an existing run, bad data: one line, no traceback
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(f"recorded {args.out}; sweeping it:", flush=True)
    sweep = [sys.executable, "-m", "replay", "sweep", str(args.out), "--patience", "1..4"]
    sweep += ["--out", str(args.out.with_name(args.out.name + "-sweep")), "--force"]
    return subprocess.run(sweep).returncode


if __name__ == "__main__":
    sys.exit(main())
