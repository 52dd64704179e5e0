"""Range syntax for grid options: ``3..10``, ``3..10:2``, ``0,0.001,0.01``, ``1,2,5..8``.

Parsed without ``eval``; steps are decimal-exact (``0..0.3:0.1`` gives exactly
0, 0.1, 0.2, 0.3 as the floats those decimals name).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from analysis.errors import ReplayError

__all__ = ["GridError", "parse_values"]

_MAX_RANGE_ITEMS = 1_000_000


class GridError(ReplayError):
    """A grid option whose value cannot be parsed or is out of bounds."""


def _number(token: str, option: str, text: str, integer: bool) -> Decimal:
    try:
        value = Decimal(token)
    except InvalidOperation:
        raise GridError(f"{option}: {token!r} in {text!r} is not a number.") from None
    if not value.is_finite():
        raise GridError(f"{option}: {token!r} in {text!r} must be finite.")
    if integer and value != value.to_integral_value():
        raise GridError(f"{option}: {token!r} in {text!r} must be a whole number.")
    return value


def parse_values(
    text: str,
    option: str,
    *,
    integer: bool = False,
    minimum: float | None = None,
    allow_none: bool = False,
) -> list:
    """Parse a grid option into a sorted list of unique values (order of first appearance).

    ``integer`` gives ints, else floats; ``allow_none`` accepts the token ``none``
    (returned as ``None``). ``minimum`` bounds every value from below.

    >>> parse_values("1,2,5..8:2", "--patience", integer=True)
    [1, 2, 5, 7]

    Raises:
        GridError: naming the bad token and the option.
    """
    if text is None or not str(text).strip():
        raise GridError(f"{option}: empty value; give numbers like 3..10 or 0,0.001.")
    out: dict = {}  # insertion-ordered set: first appearance wins, O(1) per item
    floor = None if minimum is None else Decimal(str(minimum))
    for raw in str(text).split(","):
        token = raw.strip()
        if not token:
            raise GridError(f"{option}: empty item in {text!r}.")
        if allow_none and token.lower() == "none":
            items = [None]
        elif ".." in token:
            items = _expand(token, option, text, integer)
        else:
            items = [_number(token, option, text, integer)]
        for item in items:
            if item is not None:
                if floor is not None and item < floor:
                    raise GridError(
                        f"{option}: {_fmt(item, integer)} is below the minimum {minimum} "
                        f"(in {text!r})."
                    )
                item = int(item) if integer else float(item)
            out.setdefault(item, None)
    return list(out)


def _expand(token: str, option: str, text: str, integer: bool) -> Sequence[Decimal | int]:
    body, _, step_text = token.partition(":")
    start_text, _, stop_text = body.partition("..")
    if not start_text.strip() or not stop_text.strip():
        raise GridError(f"{option}: range {token!r} needs a start and a stop, like 3..10.")
    start = _number(start_text.strip(), option, text, integer)
    stop = _number(stop_text.strip(), option, text, integer)
    step = _number(step_text.strip(), option, text, integer) if step_text else Decimal(1)
    if step <= 0:
        raise GridError(f"{option}: step in {token!r} must be positive.")
    if stop < start:
        raise GridError(
            f"{option}: range {token!r} runs backwards; write {stop_text}..{start_text}."
        )
    count = int((stop - start) / step) + 1
    if count == 1 and stop != start:  # e.g. 0..0.01 with the default step 1: only 0
        hint = 1 if integer else ((stop - start) / 10).normalize()
        raise GridError(
            f"{option}: range {token!r} gives only its start {_fmt(start, integer)} "
            f"(its step is {_fmt(step, integer)}); give a step smaller than the range, "
            f"e.g. {start_text.strip()}..{stop_text.strip()}:{hint}."
        )
    if count > _MAX_RANGE_ITEMS:
        raise GridError(
            f"{option}: range {token!r} has {count:,} values, more than {_MAX_RANGE_ITEMS:,}."
        )
    if integer:  # plain ints: a million-value range costs a fraction of a second
        return range(int(start), int(start) + count * int(step), int(step))
    return [start + i * step for i in range(count)]


def _fmt(value: Decimal, integer: bool) -> str:
    return str(int(value)) if integer else str(value)
