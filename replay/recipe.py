"""A recipe: the Python function that gives a fit of the user's own model what it needs
besides the model, so that ``replay branch`` can train the run again.

A recipe is named ``module:function`` (an importable module) or
``path/to/train.py:function`` (a file). Called with no arguments, the function returns a
:class:`Recipe` (or a dict of its fields)::

    from replay.inputs import array_dataset
    from replay.recipe import Recipe

    def recipe():
        (x, y), (x_val, y_val), (x_test, y_test) = my_data()
        return Recipe(train=array_dataset(x, y, batch_size=128, seed=0),
                      validation_data=(x_val, y_val), test_data=(x_test, y_test), seed=0)

``replay.keras.RecordCallback(out, recipe="train.py:recipe")`` records the name and the
sha256 of its file in run.json (``recipe``); ``replay branch RUN`` imports it again
(``--recipe`` overrides the recorded name) and says so when the file changed.

Importing this module imports neither Keras nor TensorFlow (the recipe's own module may).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.errors import ReplayError

__all__ = ["BadRecipe", "Recipe", "call_recipe", "recipe_file", "recipe_record"]


class BadRecipe(ReplayError):
    """A recipe name that cannot be found, imported or called, or returns the wrong thing."""


@dataclasses.dataclass
class Recipe:
    """What a fit needs besides the model.

    ``train``: the training batches, one of :mod:`replay.inputs`'s epoch-ordered sources
    (anything else trains, but a branch of it is refused as not reproducible);
    ``validation_data``: ``(x, y)`` arrays or a dataset; ``test_data``: held-out data
    evaluated after each epoch into ``test_*`` columns; ``callbacks``: the user's own
    callbacks that belong to training (not the ReduceLROnPlateau being tuned);
    ``seed``: the seed of the randomness inside the model (Dropout, augmentation
    layers: their seed generators are set from ``(seed, epoch)`` at each epoch);
    ``fit_kwargs``: ``fit``'s other arguments (``class_weight``, ``validation_freq``...).
    """

    train: Any
    validation_data: Any = None
    test_data: Any = None
    callbacks: Sequence[Any] = ()
    seed: int = 0
    fit_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    test_batch_size: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            raise BadRecipe(f"Recipe: seed must be in 0..2**32-1 but got {self.seed!r}")
        reserved = {"x", "y", "epochs", "initial_epoch", "callbacks", "validation_data",
                    "shuffle"} & set(self.fit_kwargs)  # fmt: skip
        if reserved:
            raise BadRecipe(f"Recipe: fit_kwargs cannot set {', '.join(sorted(reserved))}; "
                            "use the Recipe's own fields")  # fmt: skip


def split_name(spec: str) -> tuple[str, str]:
    where, colon, name = str(spec).rpartition(":")
    if not colon or not where or not name.isidentifier():
        raise BadRecipe(f"recipe {spec!r}: expected module:function or path/to/train.py:function")
    return where, name


def recipe_file(spec: str, base: Path | None = None) -> Path:
    """The file that defines ``spec``'s module (found without importing it).

    ``base``: a directory to try a relative ``path/to/train.py`` against after the
    current one. Raises :class:`BadRecipe` when no such file or module exists.
    """
    where, _ = split_name(spec)
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where)
        for candidate in (path, *(() if base is None or path.is_absolute() else (base / path,))):
            if candidate.is_file():
                return candidate.resolve()
        raise BadRecipe(f"recipe {spec!r}: no file {where}; pass --recipe PATH:FUNCTION")
    try:
        found = importlib.util.find_spec(where)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise BadRecipe(f"recipe {spec!r}: no module {where} on the Python path; pass "
                        "--recipe path/to/file.py:function")  # fmt: skip
    return Path(found.origin).resolve()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recipe_record(spec: str, run: Path, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """run.json's ``recipe``: the name as given, its file (relative to the run directory
    when it is a path), the file's sha256, and ``args``: the keyword arguments it is
    called with (JSON values: e.g. ``{"limit": 1000}``).

    Raises:
        BadRecipe: no such file or module, or ``args`` that JSON cannot hold.
    """
    import json

    path = recipe_file(spec)
    where, _ = split_name(spec)
    is_path = where.endswith(".py") or "/" in where
    rel = os.path.relpath(path, run.resolve()) if is_path else None
    args = dict(args or {})
    try:
        if json.loads(json.dumps(args, allow_nan=False)) != args:
            raise ValueError("changed by a JSON round trip")
    except (TypeError, ValueError) as e:
        raise BadRecipe(
            f"recipe_args must be JSON values (numbers, strings, lists) ({e})"
        ) from None
    return {"name": str(spec), "file": rel, "sha256": _sha256(path), "args": args}


def _import(spec: str, path: Path) -> Any:
    where, name = split_name(spec)
    if where.endswith(".py") or "/" in where:
        module_name = f"_replay_recipe_{_sha256(path)[:12]}"
        module = sys.modules.get(module_name)
        if module is None:
            loader = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.path.insert(0, str(path.parent))  # its own imports, as when run as a script
            try:
                sys.modules[module_name] = module
                loader.loader.exec_module(module)
            except Exception as e:
                sys.modules.pop(module_name, None)
                raise BadRecipe(f"recipe {spec!r}: importing {path} failed ({type(e).__name__}:"
                                f" {e})") from None  # fmt: skip
            finally:
                sys.path.remove(str(path.parent))
    else:
        try:
            module = importlib.import_module(where)
        except Exception as e:
            raise BadRecipe(f"recipe {spec!r}: importing {where} failed ({type(e).__name__}: "
                            f"{e})") from None  # fmt: skip
    fn = getattr(module, name, None)
    if not callable(fn):
        raise BadRecipe(f"recipe {spec!r}: {path} defines no function {name}")
    return fn


def call_recipe(spec: str, base: Path | None = None,
                args: dict[str, Any] | None = None) -> tuple[Recipe, Path]:  # fmt: skip
    """Import ``spec``'s function, call it with ``args``, return its :class:`Recipe` and
    its file.

    Raises:
        BadRecipe: not found, not importable, or it returns something else.
    """
    path = recipe_file(spec, base)
    fn = _import(spec, path)
    try:
        made = fn(**(args or {}))
    except TypeError as e:
        raise BadRecipe(f"recipe {spec!r}: cannot be called with {args or {}} ({e})") from None
    if isinstance(made, dict):
        try:
            made = Recipe(**made)
        except TypeError as e:
            raise BadRecipe(f"recipe {spec!r}: returned a dict that is no Recipe ({e})") from None
    if not isinstance(made, Recipe):
        raise BadRecipe(f"recipe {spec!r}: returned {type(made).__name__}, not a "
                        "replay.recipe.Recipe")  # fmt: skip
    return made, path


def file_changed(record: dict[str, Any], path: Path) -> bool:
    """Whether ``path`` no longer has the sha256 run.json's ``recipe`` recorded."""
    return record.get("sha256") != _sha256(path)
