"""Metric names as Keras logs them: ``loss``, ``val_loss``, and our ``test_loss``.

Keras 2 and tf.keras wrote some names differently from Keras 3: ``acc`` / ``val_acc``
for accuracy (Keras < 2.3) and ``lr`` for the learning rate (tf.keras's
``ReduceLROnPlateau`` and ``LearningRateScheduler`` put ``logs["lr"]``; Keras 3 writes
``learning_rate``). :data:`ALIASES` maps the old names to the Keras 3 ones so that a
``--monitor val_accuracy`` finds a ``val_acc`` column and ``lr`` is read as the
learning rate, never as a metric.
"""

from __future__ import annotations

__all__ = [
    "ALIASES",
    "LR_NAMES",
    "SPLIT_PREFIXES",
    "base_name",
    "canonical",
    "find_column",
    "heldout_column",
    "is_accuracy",
    "lr_column",
]

SPLIT_PREFIXES = ("val_", "test_")

#: Old name -> Keras 3 name, compared after the split prefix.
ALIASES = {"acc": "accuracy", "lr": "learning_rate"}

#: Learning-rate columns, preferred first.
LR_NAMES = ("learning_rate", "lr")


def base_name(metric: str) -> str:
    """The metric without its split prefix.

    >>> base_name("val_accuracy"), base_name("test_loss"), base_name("loss")
    ('accuracy', 'loss', 'loss')
    """
    for prefix in SPLIT_PREFIXES:
        if metric.startswith(prefix):
            return metric[len(prefix) :]
    return metric


def canonical(metric: str) -> str:
    """The Keras 3 spelling of ``metric`` (split prefix kept).

    >>> canonical("val_acc"), canonical("lr"), canonical("val_loss")
    ('val_accuracy', 'learning_rate', 'val_loss')
    """
    base = base_name(metric)
    if base not in ALIASES:
        return metric
    return metric[: len(metric) - len(base)] + ALIASES[base]


def find_column(metric: str, columns) -> str | None:
    """The column of ``columns`` that holds ``metric``: itself, else its other spelling.

    >>> find_column("val_accuracy", ["val_acc", "loss"]), find_column("x", ["y"])
    ('val_acc', None)
    """
    columns = list(columns)
    if metric in columns:
        return metric
    want = canonical(metric)
    return next((c for c in columns if canonical(c) == want), None)


def heldout_column(monitor: str, columns, validation=frozenset()) -> str | None:
    """The held-out column matching ``monitor``: ``test_<metric>``, else
    ``val_<metric>`` (either Keras spelling, :func:`find_column`), else the monitor's own
    column where its framework computes it on validation data (``validation``:
    Ultralytics's ``metrics/*``, ``fitness``); None if there is none.

    >>> heldout_column("val_acc", ["val_accuracy", "test_accuracy"])
    'test_accuracy'
    >>> heldout_column("loss", ["loss", "val_loss"]), heldout_column("fitness", ["fitness"])
    ('val_loss', None)
    >>> heldout_column("fitness", ["fitness"], validation=frozenset({"fitness"}))
    'fitness'
    """
    columns = list(columns)
    base = base_name(monitor)
    for candidate in (f"test_{base}", f"val_{base}"):
        column = find_column(candidate, columns)
        if column is not None:
            return column
    column = find_column(monitor, columns)
    return column if column in validation else None


def lr_column(columns) -> str | None:
    """The learning-rate column of a log (``learning_rate``, else Keras 2's ``lr``), or None.

    >>> lr_column(["epoch_seconds", "lr", "loss"]), lr_column(["loss"])
    ('lr', None)
    """
    columns = list(columns)
    return next((n for n in LR_NAMES if n in columns), None)


def is_accuracy(metric: str | None) -> bool:
    """Whether ``metric`` is an accuracy (shown as a percentage): ``*accuracy``, ``acc``.

    >>> is_accuracy("val_acc"), is_accuracy("test_sparse_categorical_accuracy"), is_accuracy("loss")
    (True, True, False)
    """
    if not metric:
        return False
    return canonical(metric).endswith("accuracy")
