"""Shared pieces of the dialect modules: validation, versions, plain values.

Every dialect returns the result types of :mod:`replay.engine.policies`
(:class:`~replay.engine.policies.EarlyStoppingResult`,
:class:`~replay.engine.policies.PlateauResult`)
or a subclass with a few more fields, and raises :class:`~replay.engine.policies.PolicyError`
with the value received.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from replay.engine.policies import PolicyError, check_finite, check_int

__all__ = ["check_finite", "check_int", "check_number", "parse_version", "plain_values"]


def check_number(name: str, value: object) -> float:
    """``value`` as a float; NaN and +-inf allowed (a curve value, not a parameter)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(value)  # NumPy scalars
        except (TypeError, ValueError):
            raise PolicyError(f"{name} must be a number but got {value!r}.") from None
    return float(value)


def plain_values(values: Sequence[float | None]) -> list[float | None]:
    """The curve as Python floats (NaN and +-inf kept), ``None`` where not logged.

    Raises:
        PolicyError: an entry that is neither a number nor ``None``.
    """
    if isinstance(values, (str, bytes)):
        raise PolicyError(f"values must be a sequence of numbers but got {values!r}.")
    return [None if v is None else check_number("a curve value", v) for v in values]


def parse_version(text: str, *, name: str = "version") -> tuple[int, ...]:
    """``"2.15"`` / ``"8.3.60"`` as a tuple of ints.

    >>> parse_version("2.15.1")
    (2, 15, 1)

    Raises:
        PolicyError: not dotted integers.
    """
    if not isinstance(text, str):
        raise PolicyError(f"{name} must be a string such as '2.21' but got {text!r}.")
    parts = text.strip().split(".")
    if not all(p.isdigit() for p in parts) or not parts:
        raise PolicyError(f"{name} must be dotted integers such as '2.21' but got {text!r}.")
    return tuple(int(p) for p in parts)


def is_nan(x: float | None) -> bool:
    return x is not None and math.isnan(x)
