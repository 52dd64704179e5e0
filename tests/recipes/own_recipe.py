"""A user-style model and its recipe for the proof tests of ``replay branch`` on a run of
one's own model (tests/test_branch_own_model.py): Dropout, BatchNormalization and two
random augmentation layers, on a small synthetic image task. ``plain_recipe`` trains on
arrays with Keras's ``shuffle=True`` (an order a fresh process cannot reproduce)."""

from __future__ import annotations

import numpy as np

N_TRAIN, N_VAL, N_TEST, SIDE = 192, 64, 64, 8


def _split(rng, n):
    x = rng.random((n, SIDE, SIDE, 1), dtype=np.float32)
    y = x[:, : SIDE // 2].mean(axis=(1, 2, 3)) > x[:, SIDE // 2 :].mean(axis=(1, 2, 3))
    return x, y.astype("int64")


def arrays():
    rng = np.random.default_rng(7)
    return _split(rng, N_TRAIN), _split(rng, N_VAL), _split(rng, N_TEST)


def build_model(learning_rate: float = 0.05):
    import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 1)),
            layers.RandomFlip("horizontal"),
            layers.RandomTranslation(0.1, 0.1),
            layers.Conv2D(4, 3),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(2, activation="softmax"),
        ],
        name="own_small",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def recipe():
    from replay.inputs import array_dataset
    from replay.recipe import Recipe

    (x, y), val, test = arrays()
    return Recipe(train=array_dataset(x, y, batch_size=32, seed=3), validation_data=val,
                  test_data=test, seed=3)  # fmt: skip


def plain_recipe():
    from replay.recipe import Recipe

    (x, y), val, test = arrays()
    return Recipe(train=(x, y), validation_data=val, test_data=test, seed=3)
