"""Hugging Face ``transformers.EarlyStoppingCallback`` with the ``Trainer``'s ``best_metric``.

Sources: huggingface/transformers ``src/transformers/trainer_callback.py``
(``EarlyStoppingCallback.check_metric_value`` / ``on_evaluate``) and
``src/transformers/trainer.py`` (``_determine_best_metric`` from 4.47; before that the
"Determine the new best metric" block of ``_save_checkpoint``), read in 4.46.3, 4.47.0,
4.48.0 and 5.24.0. Checked against the real transformers 5.24.0 by the truth table
``tests/data/dialects/hf_early_stopping.json`` (``make_truth_tables.py``).

At each evaluation (one entry of the curve; ``None``: no evaluation that epoch):

1. The callback runs first (``on_evaluate`` is called inside ``evaluate``), against
   the ``best_metric`` of the *earlier* evaluations: the counter resets when
   ``best_metric`` is None (the first evaluation), or when the value is strictly
   better (NumPy ``np.greater`` / ``np.less`` on float64) *and*
   ``abs(value - best_metric) > early_stopping_threshold``; otherwise the counter
   grows, and training stops when it reaches ``early_stopping_patience``.
2. Then the Trainer moves ``best_metric`` on *every* strict improvement, however
   small: so an improvement below the threshold counts against patience yet becomes
   the reference the next evaluation must beat by the threshold.

   - ``era="4.47+"`` (transformers 4.47-5.24, ``_determine_best_metric``):
     ``best_metric`` starts at -inf (``greater_is_better``) or +inf, so a NaN never
     becomes best, and a NaN first evaluation leaves the next one to set it;
   - ``era="legacy"`` (4.x up to 4.46, in ``_save_checkpoint``): the first evaluation
     becomes ``best_metric`` whatever it is, NaN included, after which nothing
     improves on NaN and training stops ``patience`` evaluations later. (This
     assumes a checkpoint is saved at every evaluation, which
     ``load_best_model_at_end`` requires with matching strategies.)

``greater_is_better`` defaults as ``TrainingArguments`` does: False when
``metric_for_best_model`` ends in ``"loss"``, else True. With
``load_best_model_at_end`` you end with the evaluation that last set ``best_metric``,
else with the last one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from replay.engine.dialects._common import check_finite, check_int, plain_values
from replay.engine.policies import EarlyStoppingResult, PolicyError

__all__ = ["ERAS", "VERSIONS", "early_stopping", "greater_is_better_for"]

VERSIONS = {"4.47+": ">=4.47,<=5.24", "legacy": ">=4.0,<=4.46"}
ERAS = tuple(VERSIONS)


def greater_is_better_for(metric_for_best_model: str) -> bool:
    """``TrainingArguments``'s default: metrics ending in ``loss`` are minimized.

    >>> greater_is_better_for("eval_loss"), greater_is_better_for("accuracy")
    (False, True)
    """
    return not metric_for_best_model.endswith("loss")


def early_stopping(
    values: Sequence[float | None],
    *,
    early_stopping_patience: int = 1,
    early_stopping_threshold: float = 0.0,
    metric_for_best_model: str = "loss",
    greater_is_better: bool | None = None,
    load_best_model_at_end: bool = True,
    era: str = "4.47+",
) -> EarlyStoppingResult:
    """Replay ``EarlyStoppingCallback`` + ``Trainer`` over one value per evaluation.

    >>> early_stopping([1.0, 0.95, 0.92], early_stopping_threshold=0.1).stopped_epoch
    1
    >>> early_stopping([float("nan"), 1.0, 1.0], era="legacy").stopped_epoch
    1

    Raises:
        PolicyError: a parameter is invalid.
    """
    if era not in ERAS:
        raise PolicyError(f"era must be one of {', '.join(ERAS)} but got {era!r}.")
    patience = check_int("early_stopping_patience", early_stopping_patience)
    threshold = check_finite("early_stopping_threshold", early_stopping_threshold)
    if greater_is_better is None:
        greater_is_better = greater_is_better_for(metric_for_best_model)
    curve = plain_values(values)

    op = np.greater if greater_is_better else np.less
    best: float | None = None
    best_epoch: int | None = None
    counter = 0
    stopped: int | None = None
    with np.errstate(invalid="ignore"):
        for epoch, value in enumerate(curve):
            if value is None:
                continue
            # EarlyStoppingCallback.on_evaluate, against the earlier best_metric.
            if best is None or (op(value, best) and abs(value - best) > threshold):
                counter = 0
            else:
                counter += 1
            # Then the Trainer's best_metric.
            if era == "legacy":
                if best is None or op(value, best):
                    best, best_epoch = value, epoch
            else:
                if best is None:
                    best = -math.inf if greater_is_better else math.inf
                if op(value, best):
                    best, best_epoch = value, epoch
            if counter >= patience:
                stopped = epoch
                break
    last = stopped if stopped is not None else len(curve) - 1
    restored = bool(load_best_model_at_end) and best_epoch is not None
    return EarlyStoppingResult(
        stopped=stopped is not None,
        stopped_epoch=stopped,
        epochs_trained=last + 1,
        best_epoch=best_epoch,
        final_epoch=best_epoch if restored else (last if curve else None),
        restored=restored,
        censored=stopped is None,
    )
