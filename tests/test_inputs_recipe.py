"""replay.inputs (epoch orders from (seed, epoch)) and replay.recipe (naming, importing,
calling a recipe): the pieces a branch of your own model stands on."""

from __future__ import annotations

import numpy as np
import pytest

from replay.inputs import (
    BadInput,
    array_dataset,
    describe,
    epoch_order,
    generator_state,
    per_epoch,
    shuffled,
)
from replay.recipe import BadRecipe, Recipe, call_recipe, recipe_file, recipe_record

X = np.arange(10, dtype="float32").reshape(10, 1)
Y = np.arange(10) * 10


def batches(ds, epoch):
    ds.set_epoch(epoch)
    return [ds[i] for i in range(len(ds))]


def test_array_dataset_order_is_a_function_of_seed_and_epoch():
    ds = array_dataset(X, Y, batch_size=4, seed=5)
    assert len(ds) == 3  # 4 + 4 + 2
    first = batches(ds, 2)
    order = np.concatenate([x[:, 0] for x, _ in first]).astype(int)
    assert order.tolist() == epoch_order(5, 2, 10).tolist()
    assert all((y == 10 * x[:, 0]).all() for x, y in first)  # pairs stay together
    batches(ds, 7)  # another epoch in between changes nothing about epoch 2
    again = array_dataset(X, Y, batch_size=4, seed=5)  # a fresh process's dataset
    assert [b[0].tolist() for b in batches(again, 2)] == [b[0].tolist() for b in first]
    other = np.concatenate([x[:, 0] for x, _ in batches(ds, 3)]).astype(int)
    assert other.tolist() != order.tolist()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "array_dataset: batch_size must be at least 1 but got 0"),
        ({"seed": -1}, "array_dataset: seed must be in 0..2**32-1 but got -1"),
    ],
)
def test_array_dataset_refuses_bad_arguments(kwargs, message):
    with pytest.raises(BadInput) as e:
        array_dataset(X, Y, **kwargs)
    assert str(e.value) == message


def test_array_dataset_refuses_arrays_of_different_lengths():
    with pytest.raises(BadInput, match=r"inputs of different lengths \[9, 10\]"):
        array_dataset(X, Y[:9])


def test_shuffled_visits_a_pydatasets_batches_in_the_epoch_order():
    import keras

    class Numbered(keras.utils.PyDataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return np.full((1, 1), i, "float32"), np.zeros(1)

    ds = shuffled(Numbered(), seed=1)
    got = [int(x[0, 0]) for x, _ in batches(ds, 4)]
    assert got == epoch_order(1, 4, 6).tolist()
    assert describe(ds)["kind"] == "replay.inputs.shuffled"


def test_per_epoch_serves_fn_of_the_epoch():
    import tensorflow as tf

    def fn(epoch):
        return tf.data.Dataset.from_tensor_slices(np.arange(6) + 100 * epoch).batch(2)

    ds = per_epoch(fn)
    assert len(ds) == 3
    assert [b.tolist() for b in batches(ds, 1)] == [[100, 101], [102, 103], [104, 105]]
    assert [b.tolist() for b in batches(ds, 0)] == [[0, 1], [2, 3], [4, 5]]


def test_plain_arrays_are_not_an_epoch_order():
    assert describe((X, Y))["kind"] is None


def test_generator_state_depends_on_seed_epoch_and_index():
    states = {tuple(generator_state(s, e, i)) for s in (0, 1) for e in (0, 1) for i in (0, 1)}
    assert len(states) == 8
    assert generator_state(3, 2, 1) == generator_state(3, 2, 1)


def write_recipe(tmp_path, body):
    path = tmp_path / "train.py"
    path.write_text(body)
    return path


def test_call_recipe_imports_a_file_and_calls_it_with_args(tmp_path):
    path = write_recipe(tmp_path, (
        "from replay.recipe import Recipe\n"
        "def recipe(limit=None):\n"
        "    return Recipe(train=list(range(limit or 3)), seed=1)\n"
    ))  # fmt: skip
    made, found = call_recipe(f"{path}:recipe", args={"limit": 5})
    assert made.train == [0, 1, 2, 3, 4] and found == path.resolve()
    record = recipe_record(f"{path}:recipe", tmp_path / "run", {"limit": 5})
    assert record["file"] == "../train.py" and record["args"] == {"limit": 5}
    assert len(record["sha256"]) == 64


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nocolon", "recipe 'nocolon': expected module:function or path/to/train.py:function"),
        ("missing.py:f", "recipe 'missing.py:f': no file missing.py; pass --recipe PATH:FUNCTION"),
        ("no_such_module_x:f", "recipe 'no_such_module_x:f': no module no_such_module_x on the "
         "Python path; pass --recipe path/to/file.py:function"),
    ],
)  # fmt: skip
def test_recipe_names_that_cannot_be_found(spec, message, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadRecipe) as e:
        recipe_file(spec)
    assert str(e.value) == message


def test_a_recipe_that_returns_something_else_is_refused(tmp_path):
    path = write_recipe(tmp_path, "def recipe():\n    return 42\n")
    with pytest.raises(BadRecipe) as e:
        call_recipe(f"{path}:recipe")
    assert str(e.value) == f"recipe '{path}:recipe': returned int, not a replay.recipe.Recipe"
    with pytest.raises(BadRecipe, match="defines no function other"):
        call_recipe(f"{path}:other")


def test_recipe_args_must_be_json(tmp_path):
    path = write_recipe(tmp_path, "def recipe():\n    pass\n")
    with pytest.raises(BadRecipe, match="recipe_args must be JSON values"):
        recipe_record(f"{path}:recipe", tmp_path, {"x": np.float32(1)})


def test_recipe_refuses_fit_kwargs_it_sets_itself():
    with pytest.raises(BadRecipe) as e:
        Recipe(train=None, fit_kwargs={"shuffle": True, "epochs": 3})
    assert (
        str(e.value) == "Recipe: fit_kwargs cannot set epochs, shuffle; use the Recipe's own fields"
    )
