"""A model's ``.keras`` checkpoint in two steps: :func:`checkpoint_image` takes, on the
training thread at an epoch's end, what ``model.save`` would write (the model's config
and a copy of every variable it saves, in Keras's order); :meth:`Image.build` writes the
``.keras`` zip from that copy later, in the run writer's background committer, while the
next epoch trains and changes the variables.

The file holds what ``keras.saving.save_model`` writes at that moment (config.json,
metadata.json, model.weights.h5 with the same groups, datasets and attributes, and the
assets of layers that have any) and loads with ``keras.saving.load_model``. It is built
from Keras's private ``keras.src.saving.saving_lib`` (``model.save``'s own writer), whose
variable walk (``_save_state``) is fed a store that copies each value instead of writing
it; a Keras version whose walk needs more of the store than that is saved the plain way
(:func:`saved_now`), on the training thread.

Keras is imported only inside the functions that use it.
"""

from __future__ import annotations

import io
import shutil
import sys
import zipfile
from typing import Any

import numpy as np

__all__ = ["Image", "Walk", "checkpoint_image", "saved_now"]


class Image:
    """What one ``.keras`` file holds, taken at one moment; :meth:`build` gives its bytes.

    ``copies``: the copied value of each ``keras.Variable`` by ``id`` (what
    :meth:`replay.recording.run_writer.Board.snapshot` reuses for the histograms)."""

    def __init__(self, config: str, metadata: str, writes: list, assets: Any) -> None:
        self.config = config
        self.metadata = metadata
        self.writes = writes  # [(inner path, metadata, [(key, array), ...]), ...] in order
        self.assets = assets  # saving_lib.DiskIOStore holding the assets written, or None
        self.copies: dict[int, np.ndarray] = {}

    def build(self) -> bytes:
        """The ``.keras`` file's bytes, as ``saving_lib.save_model`` lays them out."""
        from keras.src.saving import saving_lib

        buffer = io.BytesIO()
        try:
            with zipfile.ZipFile(buffer, "w") as zf:
                with zf.open(saving_lib._METADATA_FILENAME, "w") as f:
                    f.write(self.metadata.encode())
                with zf.open(saving_lib._CONFIG_FILENAME, "w") as f:
                    f.write(self.config.encode())
                store = saving_lib.H5IOStore(saving_lib._VARS_FNAME_H5, archive=zf, mode="w")
                try:
                    for path, metadata, values in self.writes:
                        entry = store.make(path, metadata=metadata)
                        for key, value in values:
                            entry[key] = value
                finally:
                    store.close()
                if self.assets is not None:
                    self.assets.archive = zf
                    self.assets.close()
        finally:
            self.discard()
        return buffer.getvalue()

    def discard(self) -> None:
        """Remove the assets' temporary directory (:meth:`build` does it when done)."""
        if self.assets is not None and self.assets.tmp_dir:
            shutil.rmtree(self.assets.tmp_dir, ignore_errors=True)


def _copy_store(saving_lib: Any, backend: Any, image: Image, walk: list | None) -> Any:
    """A ``saving_lib.H5IOStore`` (``_save_state`` accepts no other) that records each
    ``make`` and copies each value set, opening no file. With ``walk`` (a list), each
    ``make`` called by ``_save_state`` also appends ``(path, metadata, saveable)`` to it."""

    class CopyStore(saving_lib.H5IOStore):
        def __init__(self) -> None:  # no h5 file: nothing is written here
            self.mode = "w"

        def __bool__(self) -> bool:
            return True

        def make(self, path: str, metadata: dict | None = None) -> CopyStore:
            image.writes.append((path, metadata, []))
            if walk is not None:  # called as saveable.save_own_variables(store.make(...))
                walk.append((path, metadata, sys._getframe(1).f_locals.get("saveable")))
            return self

        def __setitem__(self, key: str, value: Any) -> None:
            array = backend.convert_to_numpy(value)  # np.array(value): a copy
            if array is value or not array.flags.owndata:  # never a view of the variable
                array = array.copy()
            image.writes[-1][2].append((key, array))
            if not isinstance(value, np.ndarray):  # a variable (the optimizer gives arrays)
                image.copies[id(value)] = array

        def close(self) -> None:
            pass

    return CopyStore()


class _Pending:
    """Stands for the zip archive an asset store writes into until :meth:`Image.build`."""

    def __bool__(self) -> bool:
        return True


class Walk:
    """The saveables ``model.save`` visits (``_save_state``'s walk over every attribute of
    the model, its layers and optimizer: most of the cost of a save), found once and
    reused while the model's variables stay the same ones."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, dict | None, Any]] = []  # (path, metadata, saveable)
        self.key: tuple[int, ...] | None = None  # the ids of the variables it was found for


def _variables_key(model: Any) -> tuple[int, ...]:
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.variables) + list(getattr(optimizer, "variables", None) or [])
    return tuple(id(v) for v in variables)


def checkpoint_image(model: Any, walk: Walk | None = None) -> Image:
    """Take the ``.keras`` file of ``model`` as it is now (its config and a copy of every
    variable ``model.save`` writes); :meth:`Image.build` writes it, on any thread.
    ``walk``: kept by the caller between epochs of one fit (Keras's walk is then done
    only when the model's variables changed, as when the optimizer built its own)."""
    from keras.src import backend
    from keras.src.saving import saving_lib

    config, metadata = saving_lib._serialize_model_as_json(model)
    image = Image(config, metadata, [], None)
    key = _variables_key(model) if walk is not None else None
    if walk is not None and walk.key == key:  # no assets: none were written the first time
        store = _copy_store(saving_lib, backend, image, None)
        for path, meta, saveable in walk.steps:
            saveable.save_own_variables(store.make(path, meta))
        return image
    image.assets = saving_lib.DiskIOStore(saving_lib._ASSETS_DIRNAME, archive=_Pending(), mode="w")
    try:
        steps: list = []
        saving_lib._save_state(
            model,
            weights_store=_copy_store(saving_lib, backend, image, steps),
            assets_store=image.assets,
            inner_path="",
            visited_saveables=set(),
        )
    except (AttributeError, TypeError, NotImplementedError):
        image.discard()  # a walk that needs more of the store than the copy offers
        return saved_now(model)
    if walk is not None:
        # reusable when every saveable with variables was found and none has assets
        # (a lookup layer's vocabulary: the full walk then runs every epoch)
        usable = all(s is not None and not hasattr(s, "save_assets") for _, _, s in steps)
        walk.steps, walk.key = (steps, key) if usable else ([], None)
    return image


class _Saved(Image):
    """An image already written to bytes (the fallback of :func:`checkpoint_image`)."""

    def __init__(self, data: bytes) -> None:
        super().__init__("", "", [], None)
        self.data = data

    def build(self) -> bytes:
        return self.data


def saved_now(model: Any) -> Image:
    """The ``.keras`` file of ``model`` written now, on this thread (``model.save``)."""
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return _Saved(buffer.getvalue())
