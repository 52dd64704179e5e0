"""Which epoch a TensorBoard learning rate belongs to, and aligning it.

Keras's ``TensorBoard`` callback writes the learning rate at the end of each epoch,
after the callbacks listed before it in ``callbacks=[...]`` have run:

- Keras 3 writes ``epoch_learning_rate``, read from the optimizer in TensorBoard's own
  ``on_epoch_end`` (``TensorBoard._collect_learning_rate``). With ``ReduceLROnPlateau``
  listed *before* ``TensorBoard``, a cut at the end of epoch e already shows at step e:
  step e holds the rate of epoch e+1 (:data:`AFTER`). With it listed after, step e
  holds the rate in effect during epoch e (:data:`DURING`).
- Keras 2 and tf.keras write ``lr`` / ``epoch_lr``: ``logs["lr"]``, which
  ``ReduceLROnPlateau`` sets *before* it cuts (and ``LearningRateScheduler`` to the rate
  it set at the start of the epoch): the rate during epoch e in either order.

:func:`read_order` decides from the log itself, strongest evidence first: the tag
(``lr``); a CSVLogger file of the same training whose learning-rate column shows the
rate of each epoch; a change between steps 0 and 1 (a ``ReduceLROnPlateau`` cut at the
end of epoch 0 is impossible: the first epoch always improves on the initial best,
so under :data:`DURING` such a change cannot be a cut). Otherwise the reading is
ambiguous and :data:`DEFAULT_ORDER` is used; ``replay.sweeping.lr_alignment`` can still decide
it from the ReduceLROnPlateau settings that reproduce the cuts.

Every value is compared as float32, the precision TensorBoard stores.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from analysis.reading.runlog import RunLog

__all__ = [
    "AFTER",
    "DEFAULT_ORDER",
    "DURING",
    "LrReading",
    "aligned",
    "changes",
    "describe_order",
    "order_from_rates",
    "read_order",
    "with_reading",
]

#: Step e holds the rate in effect during epoch e.
DURING = "during"
#: Step e holds the rate after epoch e's callbacks cut it: the rate of epoch e+1.
AFTER = "after"
#: The reading used when the log cannot tell: the values as written.
DEFAULT_ORDER = DURING

_ORDER_WORDS = {
    DURING: "the rate in effect during epoch e",
    AFTER: "the rate after epoch e's cut, i.e. of epoch e+1 (ReduceLROnPlateau listed before "
    "TensorBoard)",
}


@dataclass(frozen=True)
class LrReading:
    """How a TensorBoard learning-rate column was aligned to epochs.

    ``written``: the values as TensorBoard stored them (step e; None = not logged);
    ``where``: the log directory; ``order``: :data:`DURING` or :data:`AFTER`;
    ``evidence``: what decided it (``"constant"``, ``"tag"``, ``"csv"``,
    ``"first-epoch"``, ``"settings"``, ``"default"``); ``note``: the line added to the
    run's warnings (None when the rate never changes: both readings then agree).
    """

    column: str
    written: tuple[float | None, ...]
    where: str
    order: str
    evidence: str
    note: str | None = None

    @property
    def decided(self) -> bool:
        """False when the log could not tell and :data:`DEFAULT_ORDER` was used."""
        return self.evidence != "default"

    def decide(self, order: str, evidence: str, why: str | None) -> LrReading:
        """This column read under ``order``, with a note giving ``why`` (None: no note)."""
        note = None
        if why is not None:
            note = f"{self.where}: {self.column} at step e read as {describe_order(order)}: {why}"
            last = self.written[-1] if self.written else None
            if order == AFTER:
                note += "; aligned to the epoch each rate was in effect"
                if last is not None:
                    note += f" (the rate after the last epoch, {last:g}, is no epoch's)"
        return dataclasses.replace(self, order=order, evidence=evidence, note=note)


def describe_order(order: str) -> str:
    """What step e holds under ``order``, in words for messages."""
    return _ORDER_WORDS[order]


def _f32(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return float(np.float32(v))


def changes(written: Sequence[float | None]) -> list[int]:
    """Steps k >= 1 whose value differs (as float32) from step k-1's, both logged.

    >>> changes([0.1, 0.1, 0.05, None, 0.05, 0.025])
    [2, 5]
    """
    out = []
    for k in range(1, len(written)):
        a, b = _f32(written[k - 1]), _f32(written[k])
        if a is not None and b is not None and a != b:
            out.append(k)
    return out


def aligned(written: Sequence[float | None], order: str) -> list[float | None]:
    """The rate in effect during each epoch, from the values as written under ``order``.

    Under :data:`AFTER`, epoch 0 ran at step 0's rate (no cut can end epoch 0) and
    epoch e >= 1 at step e-1's; the last step (the rate after the last epoch) is not
    an epoch's rate.

    >>> aligned([0.1, 0.05, 0.025], "after")
    [0.1, 0.1, 0.05]
    """
    if order == DURING or not written:
        return list(written)
    if order != AFTER:
        raise ValueError(f"order must be {DURING!r} or {AFTER!r} but got {order!r}.")
    return [written[0], *written[:-1]]


def order_from_rates(written: Sequence[float | None], rates: Sequence[float | None]) -> str | None:
    """The order under which ``written`` (step e) equals ``rates`` (epoch e's rate).

    ``rates`` is a learning-rate column known to hold each epoch's rate (a CSVLogger's
    ``learning_rate`` or ``lr``). None when neither order fits, or when nothing tells
    them apart (no change where both are logged).

    >>> order_from_rates([0.1, 0.05, 0.05], [0.1, 0.1, 0.05])
    'after'
    """
    w = [_f32(v) for v in written]
    r = [_f32(v) for v in rates]
    fits = []
    for order in (DURING, AFTER):
        a = aligned(w, order)
        pairs = [(x, y) for x, y in zip(a, r, strict=False) if x is not None and y is not None]
        if pairs and all(x == y for x, y in pairs):
            fits.append((order, pairs))
    if len(fits) != 1:
        return None
    return fits[0][0]


def read_order(
    column: str,
    written: Sequence[float | None],
    source: str,
    csv_rates: Sequence[float | None] | None = None,
    csv_name: str | None = None,
) -> LrReading:
    """Decide which epoch each value of a TensorBoard learning-rate column belongs to.

    ``csv_rates``: the learning-rate column of a CSVLogger file of the same training
    (``csv_name``), if one was found beside the log.
    """
    written = tuple(written)
    moves = changes(written)
    start = LrReading(column, written, source, DEFAULT_ORDER, "default")
    if not moves:
        return start.decide(DEFAULT_ORDER, "constant", None)
    if column == "lr":
        return start.decide(
            DURING, "tag", "Keras 2 / tf.keras log logs['lr'], set before ReduceLROnPlateau cuts"
        )
    if csv_rates is not None:
        order = order_from_rates(written, csv_rates)
        if order is not None:
            return start.decide(
                order, "csv", f"the learning rate of {csv_name} (same training) shows it"
            )
    if moves[0] == 1:
        return start.decide(
            AFTER,
            "first-epoch",
            "it changes between steps 0 and 1, which a "
            "ReduceLROnPlateau cut can only do when TensorBoard logs the rate "
            "after the cut (the first epoch always improves on the initial "
            "best)",
        )
    return start.decide(
        DEFAULT_ORDER,
        "default",
        "ambiguous, the log does not tell the "
        "callback order (the default reading; a CSVLogger file of this "
        "training beside the log would decide it)",
    )


def with_reading(run: RunLog, reading: LrReading) -> RunLog:
    """``run`` with its learning-rate column aligned by ``reading`` (a new RunLog).

    The note of the run's previous reading, if any, is replaced by ``reading.note``.
    """
    j = run.columns.index(reading.column)
    table = run.table.copy()
    absent = run.absent.copy()
    values = aligned(list(reading.written), reading.order)
    table[:, j] = [math.nan if v is None else v for v in values]
    absent[:, j] = [v is None for v in values]
    warnings = [w for w in run.warnings if run.lr_reading is None or w != run.lr_reading.note]
    if reading.note is not None:
        warnings.append(reading.note)
    return dataclasses.replace(
        run, table=table, absent=absent, warnings=warnings, lr_reading=reading
    )
