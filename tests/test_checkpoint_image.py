"""replay.recording.checkpoint_image: a model's ``.keras`` file taken at an epoch's end and built
later, while training goes on, equals what ``model.save`` writes at that moment."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from replay.recording.checkpoint_image import Walk, checkpoint_image, saved_now


def _model(lookup: bool = False):
    import keras

    keras.utils.set_random_seed(1)
    if lookup:  # a layer with assets (its vocabulary) besides variables
        inputs = keras.Input((1,), dtype="int64")
        x = keras.layers.IntegerLookup(vocabulary=[1, 2, 3], output_mode="one_hot")(inputs)
    else:
        inputs = keras.Input((3,))
        x = keras.layers.BatchNormalization()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(4)(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _fit(model, lookup: bool = False) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 4, (16, 1)) if lookup else rng.random((16, 3), "float32")
    model.fit(x, rng.integers(0, 2, 16), batch_size=8, epochs=1, verbose=0)


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


@pytest.mark.parametrize("lookup", [False, True])
def test_image_taken_now_and_built_later_is_model_save_of_that_moment(lookup, tmp_path):
    import keras

    model = _model(lookup)
    _fit(model, lookup)
    walk = Walk()
    for epoch in range(3):
        image = checkpoint_image(model, walk)
        expected = _members(saved_now(model).build())
        _fit(model, lookup)  # training goes on before the file is built
        got = _members(image.build())
        assert list(got) == list(expected)
        for name in got:
            if name != "metadata.json":  # holds the time it was taken
                assert got[name] == expected[name], f"epoch {epoch}: {name} differs"
        assert bool(walk.steps) is not lookup  # a layer with assets: Keras's walk each time
    path = tmp_path / "m.keras"
    path.write_bytes(checkpoint_image(model, walk).build())
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(model.variables + model.optimizer.variables,
                    loaded.variables + loaded.optimizer.variables, strict=True):  # fmt: skip
        assert np.array_equal(np.asarray(a), np.asarray(b)), a.path


def test_image_copies_feed_the_histograms_and_a_new_variable_renews_the_walk():
    from replay.recording.run_writer import Board

    model = _model()
    walk = Walk()
    image = checkpoint_image(model, walk)  # before any training: no optimizer variables yet
    before = walk.key
    _fit(model)
    image = checkpoint_image(model, walk)
    assert walk.key != before  # the optimizer built its variables: Keras's walk again
    board = Board.__new__(Board)
    board.histograms = True
    named = dict(board.snapshot(model, image.copies))
    kernel = model.layers[-1].kernel
    tag = kernel.path.replace(":", "_") + "/histogram"
    assert named[tag] is image.copies[id(kernel)]
    assert np.array_equal(named[tag], np.asarray(kernel))
