"""Reproducible input order for ``model.fit``: each epoch's batches are a function of
``(seed, epoch)`` alone, so a fit stopped and continued, or re-run from any checkpoint
(``replay branch``), sees the same batches as the one that was recorded.

Keras's ``shuffle=True`` draws each epoch's order from random state that a fresh process
does not have; these sources draw it from ``numpy.random.default_rng([seed, epoch])``:

- :func:`array_dataset` ``(x, y, batch_size=..., seed=...)``: arrays, in a new
  permutation every epoch (``replay record``'s order);
- :func:`shuffled` ``(dataset, seed=...)``: a user's ``keras.utils.PyDataset``, its
  batches visited in a new permutation every epoch;
- :func:`per_epoch` ``(fn, steps=None)``: ``fn(epoch)`` returns that epoch's
  ``tf.data.Dataset`` (the pipeline seeds its own shuffles from the epoch).

Each is a ``keras.utils.PyDataset`` with ``set_epoch(epoch)``; the epoch is set by
:func:`epoch_callback` at the start of each epoch (``replay.keras.fit`` adds it, so does
``replay branch``), and read only by ``__getitem__``, which is pure given the epoch.
Pass them to ``fit`` with ``shuffle`` left alone (a PyDataset is never shuffled by Keras).

Keras is imported on first use, never by importing this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from analysis.errors import ReplayError

__all__ = [
    "array_dataset",
    "describe",
    "epoch_callback",
    "generator_state",
    "per_epoch",
    "shuffled",
]

_CLASSES: dict[str, type] = {}


class BadInput(ReplayError):
    """A data source that cannot give a reproducible order (bad sizes, no length, ...)."""


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which ``epoch`` visits ``n`` items: ``default_rng([seed, epoch])``."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def array_dataset(x: Any, y: Any = None, sample_weight: Any = None, *, batch_size: int = 32,
                  seed: int = 0) -> Any:  # fmt: skip
    """Arrays (or a dict/list of arrays for ``x``) in batches of ``batch_size``, in the
    order :func:`epoch_order` gives each epoch; the last batch may be smaller.

    Raises:
        BadInput: arrays of different lengths, no samples, a bad batch size or seed.
    """
    return _classes()["ArrayDataset"](x, y, sample_weight, batch_size=batch_size, seed=seed)


def shuffled(dataset: Any, *, seed: int = 0) -> Any:
    """A user's ``PyDataset`` whose batches each epoch visits in :func:`epoch_order`.

    Raises:
        BadInput: the dataset has no length (an infinite PyDataset).
    """
    return _classes()["ShuffledDataset"](dataset, seed=seed)


def per_epoch(fn: Callable[[int], Any], *, steps: int | None = None) -> Any:
    """``fn(epoch)`` -> that epoch's ``tf.data.Dataset`` of batches; ``steps`` batches an
    epoch (default: the dataset's cardinality, which must be known)."""
    return _classes()["EpochDatasets"](fn, steps=steps)


def describe(source: Any) -> dict[str, Any]:
    """run.json's ``input_order``: which reproducible source trains (``kind``, ``seed``,
    ``batches``), or ``{"kind": None, "type": ...}`` for anything else."""
    if hasattr(source, "describe_order"):
        return source.describe_order()
    return {"kind": None, "type": f"{type(source).__module__}.{type(source).__qualname__}"}


def is_reproducible(source: Any) -> bool:
    """Whether ``source`` is one of this module's epoch-ordered datasets."""
    return hasattr(source, "set_epoch") and hasattr(source, "describe_order")


def epoch_callback(*sources: Any, seed: int | None = None) -> Any:
    """A Keras callback that, at ``on_epoch_begin`` (before Keras starts that epoch's
    iterator), sets each epoch-ordered source's epoch (other sources are ignored) and,
    with ``seed``, the state of every seed generator of the model (Dropout, noise and
    augmentation layers) to :func:`generator_state` ``(seed, epoch, i)``: a ``.keras``
    checkpoint does not hold those states, so they are derived from the epoch instead."""
    return _classes()["EpochSync"]([s for s in sources if is_reproducible(s)], seed)


def generator_state(seed: int, epoch: int, index: int) -> list[int]:
    """The state of the model's ``index``-th seed generator at the start of ``epoch``."""
    start = np.random.default_rng([seed, epoch, index]).integers(1, 2**31 - 1)
    return [int(start), 0]


def seed_generator_states(model: Any) -> list[Any]:
    """The state variables of ``model``'s seed generators, in the model's order."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _length(a: Any) -> int:
    if isinstance(a, dict):
        lengths = {_length(v) for v in a.values()}
    elif isinstance(a, (list, tuple)):
        lengths = {_length(v) for v in a}
    else:
        return int(np.shape(a)[0])
    if len(lengths) != 1:
        raise BadInput(f"array_dataset: inputs of different lengths {sorted(lengths)}")
    return lengths.pop()


def _take(a: Any, index: np.ndarray) -> Any:
    if a is None:
        return None
    if isinstance(a, dict):
        return {k: _take(v, index) for k, v in a.items()}
    if isinstance(a, (list, tuple)):
        return type(a)(_take(v, index) for v in a)
    return np.asarray(a)[index]


def _classes() -> dict[str, type]:
    if _CLASSES:
        return _CLASSES
    import keras

    class ArrayDataset(keras.utils.PyDataset):
        """Arrays in a new, seed-and-epoch-derived permutation every epoch."""

        def __init__(self, x, y=None, sample_weight=None, *, batch_size=32, seed=0):
            super().__init__()
            if not (isinstance(batch_size, int) and batch_size >= 1):
                raise BadInput(f"array_dataset: batch_size must be at least 1 but got "
                               f"{batch_size!r}")  # fmt: skip
            if not (isinstance(seed, int) and 0 <= seed < 2**32):
                raise BadInput(f"array_dataset: seed must be in 0..2**32-1 but got {seed!r}")
            parts = [p for p in (x, y, sample_weight) if p is not None]
            n = _length(parts)
            if n == 0:
                raise BadInput("array_dataset: no samples")
            self.x, self.y, self.sample_weight = x, y, sample_weight
            self.n, self.batch_size, self.seed = n, batch_size, seed
            self.epoch = 0
            self._order = (None, None)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def order(self) -> np.ndarray:
            if self._order[0] != self.epoch:
                self._order = (self.epoch, epoch_order(self.seed, self.epoch, self.n))
            return self._order[1]

        def __len__(self) -> int:
            return math.ceil(self.n / self.batch_size)

        def __getitem__(self, i: int):
            index = self.order()[i * self.batch_size : (i + 1) * self.batch_size]
            batch = tuple(_take(p, index) for p in (self.x, self.y, self.sample_weight)
                          if p is not None)  # fmt: skip
            return batch if len(batch) > 1 else batch[0]

        def describe_order(self) -> dict[str, Any]:
            return {
                "kind": "replay.inputs.array_dataset",
                "seed": self.seed,
                "batch_size": self.batch_size,
                "samples": self.n,
                "order": "numpy.random.default_rng([seed, epoch]).permutation(samples)",
            }

    class ShuffledDataset(keras.utils.PyDataset):
        """A user's PyDataset, its batches in a seed-and-epoch-derived order."""

        def __init__(self, dataset, *, seed=0):
            super().__init__()
            try:
                n = len(dataset)
            except TypeError:
                raise BadInput(
                    f"shuffled: {type(dataset).__name__} has no length; pass a PyDataset with "
                    "__len__, or build each epoch's tf.data pipeline with per_epoch(fn)"
                ) from None
            if not (isinstance(seed, int) and 0 <= seed < 2**32):
                raise BadInput(f"shuffled: seed must be in 0..2**32-1 but got {seed!r}")
            self.dataset, self.n, self.seed, self.epoch = dataset, n, seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int):
            return self.dataset[int(epoch_order(self.seed, self.epoch, self.n)[i])]

        def describe_order(self) -> dict[str, Any]:
            inner = type(self.dataset)
            return {
                "kind": "replay.inputs.shuffled",
                "seed": self.seed,
                "batches": self.n,
                "dataset": f"{inner.__module__}.{inner.__qualname__}",
                "order": "numpy.random.default_rng([seed, epoch]).permutation(batches)",
            }

    class EpochDatasets(keras.utils.PyDataset):
        """``fn(epoch)``'s ``tf.data.Dataset``, served batch by batch in its order."""

        def __init__(self, fn, *, steps=None):
            super().__init__()
            self.fn, self.epoch, self._steps = fn, 0, steps
            self._it: Any = None
            self._at = (None, -1)  # (epoch, index of the last batch served)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __len__(self) -> int:
            if self._steps is None:
                n = int(self.fn(self.epoch).cardinality())
                if n < 0:
                    raise BadInput("per_epoch: the dataset's length is unknown (infinite or "
                                   "filtered); pass steps=N")  # fmt: skip
                self._steps = n
            return self._steps

        def __getitem__(self, i: int):
            epoch, last = self._at
            if epoch != self.epoch or i <= last or self._it is None:
                self._it, last = iter(self.fn(self.epoch)), -1
            for _ in range(i - last - 1):  # a skipped index (never in Keras's order)
                next(self._it)
            batch = next(self._it)
            self._at = (self.epoch, i)
            return keras.tree.map_structure(np.asarray, batch)

        def describe_order(self) -> dict[str, Any]:
            name = getattr(self.fn, "__qualname__", type(self.fn).__qualname__)
            return {"kind": "replay.inputs.per_epoch", "fn": name, "steps": self._steps}

    class EpochSync(keras.callbacks.Callback):
        """Sets the epoch of epoch-ordered sources at the start of each epoch."""

        def __init__(self, sources, seed=None):
            super().__init__()
            self.sources = list(sources)
            self.seed = seed

        def on_epoch_begin(self, epoch, logs=None):
            for source in self.sources:
                source.set_epoch(epoch)
            if self.seed is not None:
                for i, state in enumerate(seed_generator_states(self.model)):
                    state.assign(np.asarray(generator_state(self.seed, epoch, i), state.dtype))

    for cls in (ArrayDataset, ShuffledDataset, EpochDatasets, EpochSync):
        cls.__module__ = __name__
    _CLASSES.update(ArrayDataset=ArrayDataset, ShuffledDataset=ShuffledDataset,
                    EpochDatasets=EpochDatasets, EpochSync=EpochSync)  # fmt: skip
    return _CLASSES
