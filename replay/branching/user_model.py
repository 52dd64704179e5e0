"""``replay branch`` on a run of the user's own model (``replay.keras.RecordCallback``
with a recipe): the same tree, exactness check and commits as for ``replay record`` runs
(:mod:`replay.branching.branch`, :mod:`replay.branching.exactness`,
:mod:`replay.branching.recorder`),
with the model loaded from the checkpoints and everything else a fit needs from the
recorded recipe (:mod:`replay.recipe`).

A branch loads the parent's checkpoint of epoch ``k - 1`` (sha256-verified), feeds the
rows ``0 .. k-1`` to a fresh real ``ReduceLROnPlateau`` (the optimizer's rate set back
to the run's initial rate first) and trains epochs ``k ..`` in one ``model.fit`` over
the recipe's data with that callback live, the recipe's training source and the model's
seed generators set from ``(seed, epoch)`` at each epoch (:func:`replay.inputs.epoch_callback`).
The fork check re-trains epoch ``k`` and compares it with the recorded row, bit for bit;
when it differs, the refusal names the columns and the likely causes, in order.

TensorFlow or JAX (whichever Keras backend runs) is imported only by the functions that
train.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.errors import BadManifest
from analysis.reading.rundir import MANIFEST, METRICS_CSV, read_manifest
from replay.branching.branch import Job, Tree
from replay.branching.exactness import environment, same_value
from replay.branching.nodes import BranchRefused, Node, load_verified, setting_of
from replay.branching.recorder import BranchRecorder
from replay.mnist.record import Recorder
from replay.recipe import BadRecipe, Recipe, call_recipe, file_changed, split_name
from replay.recording.faults import Hooks
from replay.recording.run_writer import (
    SHADOW_EARLY_STOPPING,
    LivePlateau,
    RunWriter,
    Shadow,
    new_manifest,
    read_columns,
    read_rows,
    utc_now,
)

__all__ = ["UserConfig", "UserTree", "check_user_fork", "is_user_run", "load_user_root"]


@dataclasses.dataclass(frozen=True)
class UserConfig:
    """What a branch of a user's run needs besides the recipe's data (not in run.json:
    derived from its ``model``, ``recipe`` and ``determinism``)."""

    epochs: int
    learning_rate: float
    recipe: str
    seed: int = 0
    op_determinism: bool | None = None
    reduce_lr_on_plateau: dict[str, Any] | None = None


def is_user_run(manifest: dict[str, Any]) -> bool:
    """Whether run.json is a run of ``replay.keras.RecordCallback``."""
    from replay.keras import RECORDER

    model = manifest.get("model")
    return isinstance(model, dict) and model.get("recorder") == RECORDER


def user_config(path: Path, manifest: dict[str, Any], rows: int, recipe: str | None) -> UserConfig:
    """The :class:`UserConfig` of a complete user run (``recipe`` overrides the recorded).

    Raises:
        BranchRefused: recorded without a recipe and none given, or without its rate.
    """
    record = manifest.get("recipe")
    name = recipe or (record or {}).get("name")
    if not name:
        raise BranchRefused(
            f"{path}: recorded by RecordCallback without a recipe, so replay branch cannot "
            "train it again; record it with RecordCallback(..., recipe='train.py:function') "
            "and replay.keras.fit, or pass --recipe PATH:FUNCTION"
        )
    rate = manifest["model"].get("initial_learning_rate")
    if not isinstance(rate, float):
        raise BadManifest(f"{path / MANIFEST}: model.initial_learning_rate is missing")
    determinism = manifest.get("determinism") or {}
    seed = determinism.get("seed")
    return UserConfig(epochs=rows, learning_rate=rate, recipe=name,
                      seed=seed if isinstance(seed, int) else 0,
                      op_determinism=determinism.get("op_determinism"))  # fmt: skip


def load_recipe_data(config: UserConfig, root: Path | None = None,
                     echo: Callable[[str], None] | None = None) -> Recipe:  # fmt: skip
    """Import and call the run's recipe (a relative file is tried from the current
    directory, then from the run directory by run.json's ``recipe.file``); ``echo`` a
    note when its file changed since the recording.

    Raises:
        BadRecipe: not found, not importable, or not returning a Recipe.
    """
    spec = config.recipe
    manifest = read_manifest(root) if root is not None else {}
    record = manifest.get("recipe") or {}
    args = record.get("args") or {}
    try:
        made, path = call_recipe(spec, args=args)
    except BadRecipe:
        if root is None or record.get("name") != spec or not record.get("file"):
            raise
        _, fn = split_name(spec)
        made, path = call_recipe(f"{root / record['file']}:{fn}", args=args)
    if echo is not None and record.get("sha256") and file_changed(record, path):
        echo(
            f"note: the recipe's file {path} changed since the run was recorded (sha256 "
            "differs); the exactness check tells whether it still trains the same epochs"
        )
    return made


def load_user_root(path: Path, recipe: str | None = None) -> tuple[Node, UserConfig]:
    """The user's recorded run to branch, and its :class:`UserConfig`.

    Raises:
        BranchRefused: not complete, no checkpoints, no recipe.
    """
    manifest = read_manifest(path, resume=True)
    if manifest.get("checkpoints_included") is False:
        raise BranchRefused(f"{path}: was published without its checkpoints, so no epoch can "
                            "be re-trained")  # fmt: skip
    status = manifest.get("status")
    if status != "complete":
        raise BranchRefused(
            f"{path}: the run is {status} ({len(manifest['epochs'])} epochs); continue its fit "
            "(replay.keras.restore gives the model and initial_epoch) first"
        )
    rows = read_rows(path / METRICS_CSV, columns=None)
    if len(rows) != len(manifest["epochs"]):
        raise BadManifest(
            f"{path}: run.json lists {len(manifest['epochs'])} epochs but metrics.csv has "
            f"{len(rows)} rows; restore the run or re-record it"
        )
    return Node("", path, rows, manifest), user_config(path, manifest, len(rows), recipe)


def _seed(config: UserConfig) -> None:
    import keras

    keras.utils.set_random_seed(config.seed)
    if config.op_determinism and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _warm_up(model: Any, data: Any) -> None:
    """Build a reloaded model's compiled metrics (EarlyStopping's mode "auto" needs them)
    by evaluating one validation batch; weights and optimizer are untouched."""
    if data is None:
        return
    if isinstance(data, (tuple, list)):
        x, y, *weights = data
        model.evaluate(x[:1], y[:1], verbose=0)
    elif hasattr(data, "take"):
        model.evaluate(data.take(1), verbose=0)
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        model.evaluate(*data[0][:2], verbose=0)


def _fit(model: Any, recipe: Recipe, first: int, last: int, commit: Any) -> None:
    from replay.inputs import epoch_callback, is_reproducible

    ordered = is_reproducible(recipe.train)
    x, y = recipe.train if isinstance(recipe.train, tuple) else (recipe.train, None)
    model.fit(
        x,
        y,
        epochs=last,
        initial_epoch=first,
        validation_data=recipe.validation_data,
        shuffle=not ordered,  # arrays: as Keras trains them (an order no process can repeat)
        verbose=0,
        callbacks=[epoch_callback(recipe.train, seed=recipe.seed), *recipe.callbacks, commit],
        **recipe.fit_kwargs,
    )


class _Capture:
    """The writer of a fork check: keeps the epoch's logs instead of committing them."""

    def __init__(self) -> None:
        self.hooks = Hooks()
        self.logs: dict[str, Any] = {}
        self.rate = math.nan
        self.seconds = 0.0

    def commit(self, epoch: int, logs: dict[str, Any], rate: float, seconds: float) -> None:
        self.logs, self.rate, self.seconds = dict(logs), rate, seconds

    def _finished(self, epoch: int) -> bool:
        return False


def check_user_fork(parent: Node, fork: int, config: UserConfig, recipe: Recipe) -> dict[str, Any]:
    """Re-train epoch ``fork`` from ``parent``'s checkpoint of ``fork - 1`` under its
    recorded rate; return the check (``matched``, differing ``columns``, both rows)."""
    import keras

    from replay.keras import commit_callback

    info = parent.checkpoint(fork - 1)
    columns = read_columns(parent.path / METRICS_CSV)[1:-1]
    keras.backend.clear_session()
    _seed(config)
    model = load_verified(parent.path, info)
    _warm_up(model, recipe.validation_data)
    capture = _Capture()
    _fit(model, recipe, fork, fork + 1,
         commit_callback(capture, recipe.test_data, recipe.test_batch_size))  # fmt: skip
    retrained = {c: float(capture.logs.get(c, math.nan)) for c in columns[:-1]}
    retrained["learning_rate"] = capture.rate
    recorded = {c: parent.rows[fork][c] for c in columns}
    differ = [c for c in columns if not same_value(recorded[c], retrained[c])]
    keras.backend.clear_session()
    return {
        "parent": parent.ref,
        "epoch": fork,
        "parent_checkpoint_sha256": info.sha256,
        "matched": not differ,
        "columns": differ,
        "recorded": recorded,
        "retrained": retrained,
        "seconds": capture.seconds,
        "at": utc_now(),
        "environment": environment(),
    }


class _UserBase(Recorder):
    """A :class:`replay.mnist.record.Recorder` that trains the user's model over a recipe."""

    config: UserConfig
    data: Recipe

    def _prepare_inputs(self) -> None:
        _seed(self.config)

    def _refresh_manifest(self) -> None:
        pass  # config and command stay null: the recipe is in run.json's ``recipe``

    def _warm_up(self) -> None:
        _warm_up(self.model, self.data.validation_data)

    def _init_callbacks(self) -> None:
        import keras

        monitors = [(m, p) for m, p in SHADOW_EARLY_STOPPING if m in self.columns]
        self.shadows = [Shadow(keras, self.model, m, p) for m, p in monitors]
        params = self.config.reduce_lr_on_plateau
        self.plateau = (
            None
            if params is None
            else LivePlateau(keras, self.model, params, self.config.learning_rate)
        )

    def _fit(self, first: int) -> None:
        from replay.keras import commit_callback

        commit = commit_callback(self, self.data.test_data, self.data.test_batch_size)
        _fit(self.model, self.data, first, self.config.epochs, commit)

    def commit(self, epoch: int, logs: dict[str, Any], learning_rate: float,
               seconds: float) -> dict[str, float]:  # fmt: skip
        row = RunWriter.commit(self, epoch, logs, learning_rate, seconds)
        shown = "  ".join(f"{c} {row[c]:.4f}" for c in self.columns[1:-2][:6])
        self.echo(f"epoch {epoch + 1}/{self.config.epochs}  {shown}  "
                  f"lr {learning_rate:.3g}  {seconds:.1f}s")  # fmt: skip
        return row


class _UserBranch(BranchRecorder, _UserBase):
    """A branch of a user's run: ``replay.branching.recorder``'s branch recorder over a recipe."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.columns = read_columns(self.fork.parent.path / METRICS_CSV)

    def _base_manifest(self, argv: list[str]) -> dict[str, Any]:
        parent = self.fork.parent.manifest
        manifest = new_manifest(
            self.out,
            argv,
            model=parent["model"],
            recipe={**(parent.get("recipe") or {}), "name": self.config.recipe},
            input_order=parent.get("input_order"),
            determinism=parent.get("determinism"),
            columns=list(self.columns),
        )
        manifest.update(self.fork.manifest_fields())
        return manifest


def _causes(tree: UserTree) -> list[str]:
    """The likely causes of a drift, most likely first."""
    root = tree.root.manifest
    order = root.get("input_order") or {}
    made = tree.data
    from replay.inputs import is_reproducible

    if not is_reproducible(made.train) or not order.get("kind"):
        kind = order.get("type") or type(made.train).__name__
        first = (
            f"the input order is not derived from the epoch (the run trained on {kind}, "
            "whose shuffle=True order comes from process state): train from "
            "replay.inputs.array_dataset, shuffled or per_epoch through replay.keras.fit"
        )
    else:
        first = (
            f"the input order is not derived from the epoch ({order['kind']} needs "
            "replay.keras.fit, or shuffle=False and replay.inputs.epoch_callback)"
        )
    causes = [
        first,
        "randomness not derived from the seed (an unseeded augmentation or noise outside "
        "Keras seed generators, a tf.data shuffle without a seed, the recipe's own random "
        "draws)",
        "a callback with state among the recipe's callbacks (it restarts fresh in a branch)",
    ]
    det = root.get("determinism") or {}
    build = "another machine or library build"
    if det.get("backend") == "tensorflow" and not det.get("op_determinism"):
        build += " (TensorFlow op determinism was off when recording)"
    causes.append(build)
    return causes


class UserTree(Tree):
    """The tree of branches of a user's run (``self.data`` is its :class:`Recipe`)."""

    recorder_class = _UserBranch

    @classmethod
    def task_data(cls, root: Node, config: Any, data_arg: Any) -> Recipe:
        """A user's run trains on its recipe (imported and called in the job's process)."""
        return load_recipe_data(config, root.path)

    def _check_fork(self, parent: Node, fork: int) -> dict[str, Any]:
        return check_user_fork(parent, fork, self.config, self.data)

    def _drift_message(self, job: Job, diffs: str) -> str:
        causes = "; ".join(f"({i}) {c}" for i, c in enumerate(_causes(self), start=1))
        return (
            f"{job.parent.path}: re-training epoch {job.fork} from its checkpoint does not "
            f"reproduce the recorded row ({diffs}), so branches would not be exact. Likely "
            f"causes, in order: {causes}. Pass --allow-drift to branch anyway (marked "
            "drift: true)"
        )

    def _branch_config(self, out: Path, manifest: dict[str, Any]) -> UserConfig:
        setting = setting_of(out, manifest)
        return dataclasses.replace(self.config, reduce_lr_on_plateau=setting.plateau.params())
