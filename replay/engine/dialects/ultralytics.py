"""Ultralytics ``EarlyStopping`` on ``fitness``, and the ``best.pt`` it leaves you with.

Sources: ultralytics ``ultralytics/utils/torch_utils.py`` (``EarlyStopping``) and
``ultralytics/engine/trainer.py`` (``_do_train``: ``self.stopper(epoch + 1,
self.fitness)``; ``validate``: the trainer's ``best_fitness``; ``save_model``: ``best.pt``
when ``best_fitness == fitness``), read in the wheels of 8.0.230, 8.1.0, 8.2.0, 8.3.0,
8.3.30, 8.3.60, 8.3.80, 8.3.100, 8.3.200, 8.4.0, 8.4.50, 8.4.100 and 8.4.190 (and
YOLOv5's ``utils/torch_utils.py`` / ``train.py``). The stopper's code of each era was
run on generated curves by ``make_truth_tables.py``
(``tests/data/dialects/ultralytics_early_stopping.json``).

``fitness`` is the weighted mAP (or top-1/top-5 accuracy) of each validation, maximized;
the stopper keeps ``best_fitness`` (0.0 at first) and ``best_epoch`` (0 at first), and
the trainer passes 1-based epochs (``epoch + 1``; YOLOv5's ``train.py`` passes 0-based
epochs, ``first_epoch=0``). At each epoch with a fitness (``None``: validation skipped,
the stopper returns at once):

- ``era="ties"`` (YOLOv5, ultralytics 8.0-8.3.60): ``fitness >= best_fitness`` makes the
  epoch best, so a tie moves ``best_epoch`` forward (a plateau never stops), and NaN
  is never best;
- ``era="strict"`` (ultralytics 8.3.80-8.4.190): ``fitness > best_fitness or
  best_fitness == 0``: a best fitness of 0 means "none yet", so while it is 0 every
  epoch becomes best, even a lower or NaN one (after a NaN best nothing improves).

Then ``delta = epoch - best_epoch`` and the run stops when ``delta >= patience``;
``patience=0`` means never (``patience or inf``).

The file you end with is ``best.pt``: written whenever the trainer's ``best_fitness``
equals the epoch's fitness after the update ``if not best_fitness or best_fitness <
fitness`` (8.4.50 and before, and YOLOv5 with ``fi > best_fitness`` from 0.0) or
``if best_fitness is None or best_fitness < fitness`` (8.4.100 and later). So a tie
rewrites ``best.pt`` with the later epoch, and a NaN fitness never writes it; when no
``best.pt`` was written you are left with ``last.pt``, the last epoch. (8.4's "NaN
recovery", which reloads ``last.pt`` and repeats an epoch whose loss or fitness is NaN,
is not modelled: its ``results.csv`` rows are the repeated epochs.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from replay.engine.dialects._common import check_int, plain_values
from replay.engine.policies import EarlyStoppingResult, PolicyError

__all__ = ["ERAS", "TRAINER_BEST", "VERSIONS", "early_stopping"]

VERSIONS = {"ties": ">=8.0,<=8.3.60 (and YOLOv5)", "strict": ">=8.3.80,<=8.4.190"}
ERAS = tuple(VERSIONS)
# How the trainer updates its own best_fitness (which decides best.pt).
TRAINER_BEST = {
    "falsy": "not best_fitness or best_fitness < fitness (<=8.4.50)",
    "none": "best_fitness is None or best_fitness < fitness (>=8.4.100)",
    "yolov5": "fi > best_fitness, best_fitness starting at 0.0 (YOLOv5 train.py)",
}


def early_stopping(
    fitness: Sequence[float | None],
    *,
    patience: int = 100,
    era: str = "strict",
    trainer_best: str = "none",
    first_epoch: int = 1,
) -> EarlyStoppingResult:
    """Replay Ultralytics's ``EarlyStopping`` over per-epoch ``fitness``.

    ``best_epoch`` is the stopper's best epoch (0-based; ``None`` before any);
    ``final_epoch`` the epoch of ``best.pt`` (or the last one when none was written).

    >>> early_stopping([0.5, 0.5, 0.5], patience=1, era="ties").stopped
    False
    >>> early_stopping([0.5, 0.5, 0.5], patience=1, era="strict").stopped_epoch
    1

    Raises:
        PolicyError: a parameter is invalid.
    """
    if era not in ERAS:
        raise PolicyError(f"era must be one of {', '.join(ERAS)} but got {era!r}.")
    if trainer_best not in TRAINER_BEST:
        raise PolicyError(
            f"trainer_best must be one of {', '.join(TRAINER_BEST)} but got {trainer_best!r}."
        )
    patience = check_int("patience", patience)
    first_epoch = check_int("first_epoch", first_epoch)
    if first_epoch > 1:
        raise PolicyError(f"first_epoch must be 0 or 1 but got {first_epoch}.")
    curve = plain_values(fitness)
    limit = patience or math.inf

    best_fitness = 0.0
    best_epoch = 0  # in the stopper's numbering
    stopper_best: int | None = None
    trainer: float | None = 0.0 if trainer_best == "yolov5" else None
    kept: int | None = None
    stopped: int | None = None
    for index, value in enumerate(curve):
        if value is None:
            continue
        trainer = _trainer_update(trainer, value, trainer_best)
        if trainer == value:  # save_model: best.pt
            kept = index
        epoch = index + first_epoch
        if era == "ties":
            improved = value >= best_fitness
        else:
            improved = value > best_fitness or best_fitness == 0
        if improved:
            best_epoch, best_fitness, stopper_best = epoch, value, index
        if epoch - best_epoch >= limit:
            stopped = index
            break
    last = stopped if stopped is not None else len(curve) - 1
    restored = kept is not None
    return EarlyStoppingResult(
        stopped=stopped is not None,
        stopped_epoch=stopped,
        epochs_trained=last + 1,
        best_epoch=stopper_best,
        final_epoch=kept if restored else (last if curve else None),
        restored=restored,
        censored=stopped is None,
    )


def _trainer_update(best: float | None, value: float, rule: str) -> float | None:
    if rule == "falsy":
        return value if (not best or best < value) else best
    if rule == "none":
        return value if (best is None or best < value) else best
    return value if value > best else best  # yolov5: best starts at 0.0
