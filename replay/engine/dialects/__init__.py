"""Other frameworks' callbacks, replayed exactly: one module per dialect.

Each module is pure (plain floats in, a frozen dataclass out, no framework import) and
its docstring states the rules and the source files they come from:

- :mod:`replay.engine.dialects.tf_keras`: tf.keras 2.x ``EarlyStopping`` / ``ReduceLROnPlateau``;
- :mod:`replay.engine.dialects.torch`: ``torch.optim.lr_scheduler.ReduceLROnPlateau``;
- :mod:`replay.engine.dialects.lightning`: Lightning's ``EarlyStopping``;
- :mod:`replay.engine.dialects.hf`: Hugging Face ``EarlyStoppingCallback`` with the Trainer's
  ``best_metric``;
- :mod:`replay.engine.dialects.ultralytics`: Ultralytics's ``EarlyStopping`` on fitness, and
  its ``best.pt``;
- :mod:`replay.engine.dialects.model_checkpoint`: Keras 3 and Keras 2 ``ModelCheckpoint``.

The Keras 3 dialect is :mod:`replay.engine.policies` itself. :data:`DIALECTS` records, per
dialect, the callbacks it replays, the versions whose source it follows, and what it was
checked against; records of a sweep can carry a dialect's entry as it is (JSON-ready).
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["DIALECTS", "DIALECT_NAMES", "NAN_RULES", "never_finite_note"]

#: ``--dialect`` choices: ``keras`` (Keras 3, the default) and each framework's.
DIALECT_NAMES = ("keras", "tf-keras", "torch", "lightning", "hf", "ultralytics")

DIALECTS = MappingProxyType({
    "keras": {
        "framework": "keras",
        "callbacks": ["EarlyStopping", "ReduceLROnPlateau"],
        "versions": ">=3.15,<3.16",
        "module": "replay.engine.policies",
        "checked": "differential, real keras 3.15 (tests/test_keras_parity.py)",
    },
    "tf-keras": {
        "framework": "tf.keras / tf_keras",
        "callbacks": ["EarlyStopping", "ReduceLROnPlateau"],
        "versions": ">=2.6,<=2.21 (EarlyStopping rules change at 2.7, 2.11, 2.12, 2.16; "
                    "ReduceLROnPlateau cuts in float32 under NumPy 2)",
        "module": "replay.engine.dialects.tf_keras",
        "checked": "differential, real tf_keras 2.21 (tests/test_dialect_tf_keras.py); "
                   "older versions: table rows from their source",
    },
    "torch": {
        "framework": "torch",
        "callbacks": ["ReduceLROnPlateau"],
        "versions": ">=1.0,<=2.13",
        "module": "replay.engine.dialects.torch",
        "checked": "truth table by torch 2.13.0 (tests/data/dialects/torch_plateau.json)",
    },
    "lightning": {
        "framework": "lightning / pytorch_lightning",
        "callbacks": ["EarlyStopping"],
        "versions": ">=1.5,<=2.6",
        "module": "replay.engine.dialects.lightning",
        "checked": "truth table by lightning 2.6.6 "
                   "(tests/data/dialects/lightning_early_stopping.json)",
    },
    "hf": {
        "framework": "transformers",
        "callbacks": ["EarlyStoppingCallback"],
        "versions": ">=4.47,<=5.24 (era '4.47+'); >=4.0,<=4.46 (era 'legacy')",
        "module": "replay.engine.dialects.hf",
        "checked": "truth table by transformers 5.24.0 "
                   "(tests/data/dialects/hf_early_stopping.json); legacy: table rows",
    },
    "ultralytics": {
        "framework": "ultralytics",
        "callbacks": ["EarlyStopping"],
        "versions": ">=8.0,<=8.3.60 and YOLOv5 (era 'ties'); >=8.3.80,<=8.4.190 "
                    "(era 'strict')",
        "module": "replay.engine.dialects.ultralytics",
        "checked": "truth table by the EarlyStopping of the 8.3.0 and 8.4.190 wheels "
                   "(tests/data/dialects/ultralytics_early_stopping.json)",
    },
    "model-checkpoint": {
        "framework": "keras / tf_keras",
        "callbacks": ["ModelCheckpoint"],
        "versions": "keras >=3.11,<=3.15 (keras='3'); tf.keras >=2.6,<=2.21 (keras='2')",
        "module": "replay.engine.dialects.model_checkpoint",
        "checked": "differential, real keras 3.15 and tf_keras 2.21 "
                   "(tests/test_dialect_model_checkpoint.py)",
    },
})  # fmt: skip

#: What each dialect's callbacks do with a NaN (or +-inf) monitored value, in a phrase
#: (from each module's docstring, where the rule and its source are given in full).
NAN_RULES = MappingProxyType({
    "keras": "Keras 3 makes a first NaN the best and counts every later NaN as no "
             "improvement",
    "tf-keras": "tf.keras starts best at +-inf, so a NaN is never an improvement",
    "torch": "torch's ReduceLROnPlateau never finds a NaN better",
    "lightning": "Lightning's EarlyStopping (check_finite=True) stops at the first "
                 "non-finite value",
    "hf": "the Trainer's best_metric never becomes NaN (era 4.47+; legacy: the first "
          "evaluation is best whatever it is)",
    "ultralytics": "Ultralytics never makes a NaN fitness best (era ties; strict: while "
                   "best_fitness is 0 every epoch is best)",
    "model-checkpoint": "ModelCheckpoint never saves on a NaN after the first value "
                        "(Keras 3) or at all (best starting at +-inf)",
})  # fmt: skip


def never_finite_note(name: str, curves: dict, dialect: str = "keras") -> str | None:
    """One line naming the monitors of ``curves`` (``{metric: values}``) that are never
    finite (NaN or +-inf at every epoch logged: a diverged run), or None when each has
    a finite value or none logged.

    >>> print(never_finite_note("run", {"val_loss": [float("nan")] * 3}))  # doctest: +ELLIPSIS
    run: val_loss (NaN at each of its 3 epochs) is never finite: every decision on it ...
    """
    import math

    found: dict[str, tuple[int, list[str]]] = {}
    for metric, values in curves.items():
        logged = [float(v) for v in values if v is not None]
        if logged and not any(math.isfinite(v) for v in logged):
            kinds = {"NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf") for v in logged}
            found[metric] = (len(logged), sorted(kinds))
    if not found:
        return None
    parts = [f"{m} ({' or '.join(k)} at each of its {n} epochs)" for m, (n, k) in found.items()]
    one = len(parts) == 1
    rule = NAN_RULES.get(dialect, NAN_RULES["keras"])
    return (
        f"{name}: {', '.join(parts)} {'is' if one else 'are'} never finite: every decision "
        f"on {'it' if one else 'them'} is the framework's NaN rule, so 'best' and 'stop' "
        f"say nothing about the model ({rule})"
    )
