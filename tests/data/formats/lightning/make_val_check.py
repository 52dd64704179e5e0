"""Write ``val_check_interval/version_0/metrics.csv``: validation four times per epoch.

    python tests/data/formats/lightning/make_val_check.py

Written like ``make_fixtures.py lightning`` (its copy of Lightning's ``_ExperimentWriter.save``,
lightning 2.5: one ``{**metrics, "step": step}`` row per ``log_metrics`` call, header sorted),
with the rows lightning 2.5 logs for ``Trainer(val_check_interval=0.25,
log_every_n_steps=5)`` over 20 batches per epoch (``src/lightning/pytorch/loops/
training_epoch_loop.py``: validation runs in ``on_advance_end`` after batches 4, 9, 14 and
19 of each epoch, before ``_batches_that_stepped`` is incremented, so at global steps
``20 e + 4``, ...; ``fit_loop.on_advance_end`` logs the epoch's ``train_loss_epoch`` at the
step of its last batch):

- ``LearningRateMonitor(logging_interval="step")`` logs ``lr-SGD`` (no epoch key) at the
  start of every 5th batch; a ``StepLR(step_size=30)`` stepped per batch halves the rate
  every 30 steps, so it changes within epoch 1 (at step 30);
- ``self.log("train_loss", on_step=True, on_epoch=True)`` -> ``train_loss_step`` every 5
  steps, ``train_loss_epoch`` at each epoch's end;
- validation logs ``val_loss`` and ``val_acc``; ``EarlyStopping("val_loss", patience=3)``
  stops at the 13th check (the first of epoch 3, step 64), after which the epoch ends:
  epoch 3 has one check, its ``train_loss_epoch`` is logged at step 64;
- ``trainer.test()`` after fit logs at ``epoch = current_epoch`` = 4.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
STEPS, EVERY, CHECKS, BEST = 20, 5, 13, 9


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from make_fixtures import _lightning_save, curve, fresh

    val = curve(CHECKS, BEST, 0.30, 0.90, 0.02)
    acc = [round(0.95 - v / 3, 6) for v in val]
    rows: list[dict] = []
    check = 0
    for e in range(4):
        losses = []
        for b in range(STEPS):
            g = e * STEPS + b
            losses.append(round(1.0 / (1 + 0.3 * g) + 0.05, 6))
            if (g + 1) % EVERY == 0:
                rows.append({"lr-SGD": 0.1 * 0.5 ** (g // 30), "step": g})
                rows.append({"train_loss_step": losses[-1], "epoch": e, "step": g})
            if (b + 1) % EVERY == 0:
                rows.append({"val_acc": acc[check], "val_loss": val[check], "epoch": e, "step": g})
                check += 1
                if check == CHECKS:  # EarlyStopping: should_stop ends the epoch here
                    break
        rows.append(
            {"train_loss_epoch": round(sum(losses) / len(losses), 6), "epoch": e, "step": g}
        )
        if check == CHECKS:
            break
    rows.append({"test_acc": 0.84, "test_loss": 0.33, "epoch": 4, "step": g + 1})
    _lightning_save(fresh(HERE / "val_check_interval" / "version_0") / "metrics.csv", rows, True)


if __name__ == "__main__":
    main()
