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


def shuffled_recipe():
    """The training arrays as a user's own ``PyDataset`` of fixed batches (batch ``i`` is
    always the same samples), visited in ``replay.inputs.shuffled``'s epoch order."""
    import keras

    from replay.inputs import shuffled
    from replay.recipe import Recipe

    class Batches(keras.utils.PyDataset):
        def __init__(self, x, y, size):
            super().__init__()
            self.x, self.y, self.size = x, y, size

        def __len__(self):
            return -(-len(self.x) // self.size)

        def __getitem__(self, i):
            part = slice(i * self.size, (i + 1) * self.size)
            return self.x[part], self.y[part]

    (x, y), val, test = arrays()
    return Recipe(train=shuffled(Batches(x, y, 32), seed=3), validation_data=val,
                  test_data=test, seed=3)  # fmt: skip


def per_epoch_recipe():
    """A ``tf.data`` pipeline built per epoch by ``replay.inputs.per_epoch``: the samples
    in an order drawn from the epoch alone (not from TensorFlow's global seed), batched."""
    import tensorflow as tf

    from replay.inputs import per_epoch
    from replay.recipe import Recipe

    (x, y), val, test = arrays()

    def epoch_data(epoch):
        order = np.random.default_rng([11, epoch]).permutation(len(x))
        return tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(32)

    return Recipe(train=per_epoch(epoch_data), validation_data=val, test_data=test, seed=3)
