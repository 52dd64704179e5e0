"""Metric names as Keras logs them: ``loss``, ``val_loss``, and our ``test_loss``."""

from __future__ import annotations

__all__ = ["SPLIT_PREFIXES", "base_name"]

SPLIT_PREFIXES = ("val_", "test_")


def base_name(metric: str) -> str:
    """The metric without its split prefix.

    >>> base_name("val_accuracy"), base_name("test_loss"), base_name("loss")
    ('accuracy', 'loss', 'loss')
    """
    for prefix in SPLIT_PREFIXES:
        if metric.startswith(prefix):
            return metric[len(prefix) :]
    return metric
