"""`replay branch` on a run of your own model (RecordCallback + a recipe), TensorFlow.

A user-style model (tests/recipes/own_recipe.py: RandomFlip, RandomTranslation,
BatchNormalization, Dropout) on a small synthetic task is recorded twice from the same
seed through ``replay.keras.fit``: ``constant`` at a constant rate, and ``plateau`` with
a live ``ReduceLROnPlateau(factor=0.5, patience=1)``, which cuts the rate at the end of
epoch 2. Branching ``constant`` for that setting must give ``plateau``'s metrics.csv in
every column but epoch_seconds, bit for bit, and the sweep then answers the setting with
``counterfactual_from: null``. A run trained on plain arrays with ``shuffle=True`` is
refused, with the cause named.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import error_line, run

from analysis.reading.rundir import read_manifest
from replay.recording.run_writer import read_rows

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).parent / "recipes"
RECIPE = f"{RECIPES / 'own_recipe.py'}:recipe"
PLAIN = f"{RECIPES / 'own_recipe.py'}:plain_recipe"
EPOCHS = 6
SETTING = ["--factor", "0.5", "--lr-patience", "1"]


def _recipes():
    sys.path.insert(0, str(RECIPES))
    try:
        import own_recipe
    finally:
        sys.path.remove(str(RECIPES))
    return own_recipe


def record(out: Path, live: bool = False, plain: bool = False, recipe: str = "recipe",
           epochs: int = EPOCHS, min_delta: float = 1e-4) -> Path:  # fmt: skip
    """Record ``out`` in this process, from seed 0 with op determinism (as a user would),
    through ``own_recipe``'s function ``recipe``; ``live``: with a live
    ``ReduceLROnPlateau(factor=0.5, patience=1, min_delta=min_delta)``."""
    import keras
    import tensorflow as tf

    from replay.keras import RecordCallback, fit

    own = _recipes()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    model = own.build_model()
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=min_delta)
    live_cb = [plateau] if live else []
    if plain:
        (x, y), val, test = own.arrays()
        callback = RecordCallback(out, test_data=test, recipe=PLAIN)
        model.fit(x, y, batch_size=32, epochs=epochs, validation_data=val, shuffle=True,
                  verbose=0, callbacks=[callback])  # fmt: skip
    else:
        name = f"{RECIPES / 'own_recipe.py'}:{recipe}"
        callback = RecordCallback(out, recipe=name, histograms=not live)
        made = getattr(own, recipe)()
        fit(model, made, epochs=epochs, verbose=0, callbacks=[*live_cb, callback])
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("own")
    return {"constant": record(base / "constant"), "plateau": record(base / "plateau", True)}


def _without_seconds(path: Path) -> list[dict[str, float]]:
    rows = read_rows(path / "metrics.csv", columns=None)
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows]


def test_recorded_run_names_its_recipe_and_input_order(runs):
    manifest = read_manifest(runs["constant"])
    assert manifest["recipe"]["name"] == RECIPE
    assert len(manifest["recipe"]["sha256"]) == 64
    assert manifest["input_order"]["kind"] == "replay.inputs.array_dataset"
    assert manifest["input_order"]["seed"] == 3
    assert manifest["determinism"] == {
        "seed": 3,
        "backend": "tensorflow",
        "op_determinism": True,
        "seed_generators": "replay.inputs.generator_state(seed, epoch, index)",
    }
    rates = [r["learning_rate"] for r in read_rows(runs["plateau"] / "metrics.csv", columns=None)]
    assert rates[3] == rates[0] / 2  # the live callback cut the rate at the end of epoch 2


def _tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return {
        v.tag
        for p in (run_dir / "tensorboard" / "train").glob("events.*")
        for e in EventFileLoader(str(p)).Load()
        for v in e.summary.value
    }


def test_histograms_can_be_left_out(runs):
    with_histograms, without = _tags(runs["constant"]), _tags(runs["plateau"])
    assert {"epoch_loss", "epoch_learning_rate"} <= with_histograms & without
    assert any(t.endswith("/histogram") for t in with_histograms)
    assert not any(t.endswith("/histogram") for t in without)  # histograms=False


@pytest.fixture(scope="module")
def branched(runs, tmp_path_factory) -> tuple[Path, str]:
    """``constant`` branched in-process for SETTING: (the run's copy, the command's output)."""
    root = tmp_path_factory.mktemp("local") / "constant"
    shutil.copytree(runs["constant"], root)
    result = run("branch", root, *SETTING, "-y")
    assert result.exit_code == 0, result.output
    return root, result.output


def test_branch_equals_the_run_recorded_with_the_setting_live(runs, branched):
    root, output = branched
    assert "exact: epoch 3 re-trained equals the run's row, bit for bit" in output
    (branch,) = [p for p in (root / "branches").iterdir() if p.is_dir()]
    assert branch.name == "b001-e03-lr0.025"
    assert _without_seconds(branch) == _without_seconds(runs["plateau"])
    manifest = read_manifest(branch)
    assert manifest["fork_epoch"] == 3 and manifest["drift"] is False
    assert manifest["recipe"]["name"] == RECIPE

    swept = run("sweep", root, "--policy", "reduce_lr_on_plateau", *SETTING[:2],
                "--patience", "1", "--format", "json")  # fmt: skip
    assert swept.exit_code == 0, swept.output
    (record,) = json.loads(swept.stdout)
    assert record["counterfactual_from"] is None


def test_recipe_override_and_changed_file_note(runs, tmp_path):
    root = tmp_path / "constant"
    shutil.copytree(runs["constant"], root)
    moved = tmp_path / "moved_recipe.py"
    moved.write_text((RECIPES / "own_recipe.py").read_text() + "\n# edited\n")
    result = run("branch", root, *SETTING, "-y", "--max-epochs", "2", "--recipe",
                 f"{moved}:recipe")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: the recipe's file" in result.output and "changed" in result.output
    assert "exact: epoch 3 re-trained equals the run's row, bit for bit" in result.output


def test_plain_shuffle_is_refused_with_its_cause(tmp_path):
    root = record(tmp_path / "plain", plain=True)
    assert read_manifest(root)["input_order"] is None
    # min_delta 10: nothing improves after epoch 0, so the rate is cut at the end of epoch 1
    result = run("branch", root, "--factor", "0.5", "--lr-patience", "1", "--lr-min-delta",
                 "10", "-y", catch_exceptions=True)  # fmt: skip
    line = error_line(result)
    assert line.startswith(
        f"Error: {root}: re-training epoch 2 from its checkpoint does not reproduce the "
        "recorded row ("
    )
    assert "Likely causes, in order: (1) the input order is not derived from the epoch" in line
    assert "(4) another machine or library build" in line
    assert line.endswith("Pass --allow-drift to branch anyway (marked drift: true)")
    assert not [p for p in (root / "branches").iterdir() if p.is_dir()]

    drifting = run("branch", root, "--factor", "0.5", "--lr-patience", "1", "--lr-min-delta",
                   "10", "-y", "--allow-drift", "--max-epochs", "2")  # fmt: skip
    assert drifting.exit_code == 0, drifting.output
    assert "DRIFT at epoch 2" in drifting.output and "going on (--allow-drift)" in drifting.output
    (branch,) = [p for p in (root / "branches").iterdir() if p.is_dir()]
    assert read_manifest(branch)["drift"] is True


def test_branch_is_exact_on_jax_too(tmp_path):
    """The same proof under ``KERAS_BACKEND=jax``, in a subprocess (the backend is chosen
    when Keras is first imported)."""
    import os
    import subprocess

    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(Path(__file__).parents[1])}  # fmt: skip
    script = RECIPES / "jax_proof.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "4"], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "exact: epoch" in done.stdout and "bit for bit" in done.stdout
    root = tmp_path / "constant"
    assert read_manifest(root)["determinism"]["backend"] == "jax"
    (branch,) = [p for p in (root / "branches").iterdir() if p.is_dir()]
    assert _without_seconds(branch) == _without_seconds(tmp_path / "plateau")
    rates = [r["learning_rate"] for r in read_rows(branch / "metrics.csv", columns=None)]
    assert len(set(rates)) > 1  # the branch really runs under another schedule


def test_max_epochs_then_resume_gives_the_same_branch(runs, tmp_path):
    root = tmp_path / "constant"
    shutil.copytree(runs["constant"], root)
    cut = run("branch", root, *SETTING, "-y", "--max-epochs", "2")  # the check + 1 epoch
    assert cut.exit_code == 0, cut.output
    assert "--max-epochs is spent: b001-e03-lr0.025 stops after epoch 3" in cut.output
    branch = root / "branches" / "b001-e03-lr0.025"
    assert read_manifest(branch)["status"] == "interrupted"
    resumed = run("branch", root, *SETTING, "-y", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "found, interrupted, 4 epochs" in resumed.output
    assert read_manifest(branch)["status"] == "complete"
    assert _without_seconds(branch) == _without_seconds(runs["plateau"])


def test_branch_on_ray_equals_the_local_branch(runs, branched, ray_instance, tmp_path):
    """``--executor ray`` trains the branch of a user's run in a Ray worker (the recipe
    imported there from its file): the same metrics.csv as the in-process branch."""
    root = tmp_path / "constant"
    shutil.copytree(runs["constant"], root)
    result = run("branch", root, *SETTING, "-y", "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert "exact: epoch 3 re-trained equals the run's row, bit for bit" in result.output
    (branch,) = [p for p in (root / "branches").iterdir() if p.is_dir()]
    local = branched[0] / "branches" / branch.name
    assert (
        read_rows(branch / "metrics.csv", columns=None)[:3]
        == read_rows(runs["constant"] / "metrics.csv", columns=None)[:3]
    )  # the parent's rows, copied as recorded
    assert _without_seconds(branch) == _without_seconds(local)
    assert read_manifest(branch)["drift"] is False


@pytest.mark.parametrize("source", ["shuffled", "per_epoch"])
def test_branch_of_a_shuffled_or_per_epoch_source_equals_the_live_run(source, tmp_path):
    """The proof of the array_dataset runs above for ``replay.inputs.shuffled`` (a user's
    PyDataset) and ``per_epoch`` (a tf.data pipeline per epoch), shorter: min_delta 10
    makes no epoch after the first an improvement, so the live rate is cut at the end of
    epoch 1 and the branch forks at epoch 2."""
    kind = {"shuffled": "replay.inputs.shuffled", "per_epoch": "replay.inputs.per_epoch"}
    recipe, epochs = f"{source}_recipe", 4
    constant = record(tmp_path / "constant", recipe=recipe, epochs=epochs)
    live = record(tmp_path / "live", True, recipe=recipe, epochs=epochs, min_delta=10)
    assert read_manifest(constant)["input_order"]["kind"] == kind[source]
    result = run("branch", constant, "--factor", "0.5", "--lr-patience", "1", "--lr-min-delta",
                 "10", "-y")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "exact: epoch 2 re-trained equals the run's row, bit for bit" in result.output
    (branch,) = [p for p in (constant / "branches").iterdir() if p.is_dir()]
    assert read_manifest(branch)["fork_epoch"] == 2
    rates = [r["learning_rate"] for r in read_rows(live / "metrics.csv", columns=None)]
    assert rates[2] == rates[0] / 2  # the live callback cut the rate at the end of epoch 1
    assert _without_seconds(branch) == _without_seconds(live)
