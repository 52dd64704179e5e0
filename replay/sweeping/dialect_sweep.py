"""Sweeps in another framework's dialect (``--dialect``): the rules of
:mod:`replay.engine.dialects` applied to a :class:`replay.sweeping.sweep.Grid`.

Each dialect maps onto the sweep's policies: ``early_stopping`` is tf.keras's,
Lightning's, Hugging Face's or Ultralytics's EarlyStopping, ``reduce_lr_on_plateau``
tf.keras's or torch's ReduceLROnPlateau (:data:`DIALECT_POLICIES`). Their records are
ready-made (one per setting) and end with ``dialect`` and ``dialect_versions``; their
params are Keras's, in Keras's order (a parameter the framework lacks at the value that
means "off"), then the dialect's own (:data:`EXTRA_PARAMS`). Keras (the default) is
:mod:`replay.sweeping.sweep` itself and its records have neither field.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from analysis.results.records import (
    EARLY_STOPPING,
    MODEL_CHECKPOINT,
    REDUCE_LR_ON_PLATEAU,
)
from replay.engine.dialects import DIALECT_NAMES, DIALECTS
from replay.engine.grid import GridError
from replay.engine.policies import PolicyError

__all__ = [
    "DIALECT_NAMES",
    "DIALECT_POLICIES",
    "FRAMEWORK_DIALECTS",
    "check_dialect_options",
    "dialect_for_runs",
    "sweep_dialect_early_stopping",
    "sweep_dialect_plateau",
    "sweep_model_checkpoint",
]

KERAS = "keras"
#: The sweep policies each dialect has.
DIALECT_POLICIES = {
    "keras": None,  # all of them
    "tf-keras": (EARLY_STOPPING, REDUCE_LR_ON_PLATEAU),
    "torch": (REDUCE_LR_ON_PLATEAU,),
    "lightning": (EARLY_STOPPING,),
    "hf": (EARLY_STOPPING,),
    "ultralytics": (EARLY_STOPPING,),
}
#: Policies a dialect also has, replayed only when ``--policy`` names them.
DIALECT_EXTRA_POLICIES = {"tf-keras": (MODEL_CHECKPOINT,)}
#: The dialect a log of a framework's own format is replayed in without ``--dialect``.
FRAMEWORK_DIALECTS = {"lightning": "lightning", "hf": "hf", "ultralytics": "ultralytics"}
#: ``--dialect-version`` choices and default, where a dialect has versions that differ.
DIALECT_VERSIONS = {
    "tf-keras": ("2.6..2.21", "2.21"),
    "hf": (("4.47+", "legacy"), "4.47+"),
    "ultralytics": (("ties", "strict"), "strict"),
}
#: Grid fields (as options) that only some dialects have, and those dialects.
_OWN_OPTIONS = {
    "threshold": ("--threshold", ("torch",)),
    "threshold_mode": ("--threshold-mode", ("torch",)),
    "eps": ("--eps", ("torch",)),
    "check_finite": ("--check-finite", ("lightning",)),
    "stopping_threshold": ("--stopping-threshold", ("lightning",)),
    "divergence_threshold": ("--divergence-threshold", ("lightning",)),
    "early_stopping_threshold": ("--early-stopping-threshold", ("hf",)),
    "dialect_version": ("--dialect-version", tuple(DIALECT_VERSIONS)),
    "period": ("--period", ("tf-keras",)),
}
#: Keras options a dialect does not have, with what to use instead (or None).
_NOT_IN = {
    "torch": {"min_delta": "--threshold", "lr_min_delta": "--threshold"},
    "lightning": {"baseline": None, "start_from_epoch": None, "restore_best_weights": None},
    "hf": {"min_delta": "--early-stopping-threshold", "baseline": None,
           "start_from_epoch": None},
    "ultralytics": {"min_delta": None, "baseline": None, "start_from_epoch": None,
                    "restore_best_weights": None},
}  # fmt: skip
_FLAGS = {"min_delta": "--min-delta", "lr_min_delta": "--lr-min-delta", "baseline": "--baseline",
          "start_from_epoch": "--start-from-epoch",
          "restore_best_weights": "--restore-best-weights"}  # fmt: skip
#: Each dialect's own params, after Keras's, in its records.
EXTRA_PARAMS = {
    ("tf-keras", EARLY_STOPPING): ("version",),
    ("tf-keras", REDUCE_LR_ON_PLATEAU): ("numpy_major",),
    ("torch", REDUCE_LR_ON_PLATEAU): ("threshold_mode", "eps"),
    ("lightning", EARLY_STOPPING): ("check_finite", "stopping_threshold", "divergence_threshold"),
    ("hf", EARLY_STOPPING): ("era",),
    ("ultralytics", EARLY_STOPPING): ("era",),
}


def check_dialect_options(dialect: str, given: Mapping[str, object]) -> dict:
    """The grid fields ``given`` (options given, by field) become under ``dialect``:
    the dialect's policies when none are given, and its default version.

    Raises:
        GridError: an unknown dialect, a policy it does not have, or an option it does
            not take (one line, naming what it has).
    """
    if dialect not in DIALECT_NAMES:
        raise GridError(f"--dialect must be one of {', '.join(DIALECT_NAMES)} but got {dialect!r}.")
    changes = dict(given)
    for field, (flag, owners) in _OWN_OPTIONS.items():
        if given.get(field) is not None and dialect not in owners:
            raise GridError(f"{flag} is for --dialect {'/'.join(owners)}, not {dialect}.")
    for field, instead in _NOT_IN.get(dialect, {}).items():
        if given.get(field) is not None:
            hint = f"; use {instead}" if instead else ""
            raise GridError(f"{_FLAGS[field]}: the {dialect} dialect has no such parameter{hint}.")
    if DIALECT_POLICIES[dialect] is not None and not given.get("policies"):
        changes["policies"] = DIALECT_POLICIES[dialect]
    if dialect in DIALECT_VERSIONS and given.get("dialect_version") is None:
        changes["dialect_version"] = DIALECT_VERSIONS[dialect][1]
    changes["dialect"] = dialect
    return changes


def check_dialect(
    dialect: str, policies: tuple[str, ...], version: str | None, threshold_modes: tuple[str, ...]
) -> None:
    """Raise :class:`GridError` unless ``dialect`` is known, has each of ``policies``,
    and takes ``version`` (None: its default) and ``threshold_modes``."""
    if dialect not in DIALECT_NAMES:
        raise GridError(f"--dialect must be one of {', '.join(DIALECT_NAMES)} but got {dialect!r}.")
    has = DIALECT_POLICIES[dialect]
    if has is not None:
        has = has + DIALECT_EXTRA_POLICIES.get(dialect, ())
        for p in policies:
            if p not in has:
                raise GridError(f"--policy {p}: the {dialect} dialect has {', '.join(has)} only.")
    for mode in threshold_modes:
        if mode not in ("rel", "abs"):
            raise GridError(f"--threshold-mode: 'rel' or 'abs' but got {mode!r}.")
    if version is None:
        return
    if dialect not in DIALECT_VERSIONS:
        raise GridError(f"--dialect-version: the {dialect} dialect has no versions.")
    choices, _default = DIALECT_VERSIONS[dialect]
    if isinstance(choices, tuple) and version not in choices:
        raise GridError(
            f"--dialect-version: the {dialect} dialect has {', '.join(choices)} "
            f"but got {version!r}."
        )
    if dialect == "tf-keras":
        from replay.engine.dialects.tf_keras import check_version

        try:
            check_version(version)
        except (PolicyError, ValueError) as e:
            hint = ("; it takes one tf.keras version (2.6 to 2.21), not a range."
                    if ".." in version or "," in version else ".")  # fmt: skip
            raise GridError(f"--dialect-version: {str(e).rstrip('.')}{hint}") from None


def dialect_for_runs(runs, given: str | None, monitors: tuple[str, ...]) -> tuple[str, list[str]]:
    """The dialect to replay ``runs`` in, and notes: ``given``, else the framework's own
    when every run is a Lightning, Hugging Face or Ultralytics log of one framework
    (Ultralytics only on ``fitness``, the one metric its EarlyStopping watches), else
    ``keras``."""
    if given is not None:
        return given, []
    formats = {getattr(run, "format", None) for run in runs}
    if len(formats) != 1:
        return KERAS, []
    (fmt,) = formats
    dialect = FRAMEWORK_DIALECTS.get(fmt)
    if dialect is None:
        return KERAS, []
    if dialect == "ultralytics" and any(m != "fitness" for m in monitors):
        return KERAS, [
            "Ultralytics's EarlyStopping watches fitness only; other monitors are replayed "
            "in the keras dialect."
        ]
    return dialect, [
        f"{fmt} logs are replayed in the {dialect} dialect (its own callbacks); "
        "--dialect keras replays Keras's."
    ]


def _tail(dialect: str) -> dict:
    return {"dialect": dialect, "dialect_versions": DIALECTS[dialect]["versions"]}


def _keras_es_params(ctx, mode, min_delta, patience, baseline, restore, start) -> dict:
    return {"monitor": ctx.monitor, "mode": mode, "min_delta": min_delta,
            "patience": patience, "baseline": baseline, "restore_best_weights": restore,
            "start_from_epoch": start}  # fmt: skip


def _es_settings(grid, mode: str):
    """``(params, call)`` for each EarlyStopping setting of ``grid``'s dialect: the
    record's params (without monitor/mode) and the dialect function's arguments."""
    d = grid.dialect
    if d == "tf-keras":
        product = itertools.product(grid.min_delta, grid.patience, grid.baseline,
                                    grid.restore_best_weights, grid.start_from_epoch)  # fmt: skip
        for md, p, b, r, s in product:
            yield (
                (md, p, b, bool(r), s),
                {"version": grid.dialect_version},
                {
                    "min_delta": md,
                    "patience": p,
                    "baseline": b,
                    "restore_best_weights": r,
                    "start_from_epoch": s,
                    "version": grid.dialect_version,
                    "mode": mode,
                },
            )
    elif d == "lightning":
        product = itertools.product(grid.min_delta, grid.patience, grid.check_finite,
                                    grid.stopping_threshold, grid.divergence_threshold)  # fmt: skip
        for md, p, cf, st, dv in product:
            extra = {"check_finite": cf, "stopping_threshold": st, "divergence_threshold": dv}
            yield ((md, p, None, False, 0), extra,
                   {"min_delta": md, "patience": p, "mode": mode, **extra})  # fmt: skip
    elif d == "hf":
        for t, p, r in itertools.product(grid.early_stopping_threshold, grid.patience,
                                         grid.restore_best_weights):  # fmt: skip
            yield ((t, p, None, bool(r), 0), {"era": grid.dialect_version},
                   {"early_stopping_threshold": t, "early_stopping_patience": p,
                    "greater_is_better": mode == "max", "load_best_model_at_end": bool(r),
                    "era": grid.dialect_version})  # fmt: skip
    else:  # ultralytics: always ends with best.pt
        if mode != "max":
            raise PolicyError(
                "the ultralytics dialect's EarlyStopping maximizes fitness, so it takes a "
                "maximized monitor (mode max)."
            )
        for p in grid.patience:
            yield (
                (0.0, p, None, True, 0),
                {"era": grid.dialect_version},
                {"patience": p, "era": grid.dialect_version},
            )


def sweep_dialect_early_stopping(ctx, values, grid) -> list[dict]:
    """Every EarlyStopping setting of ``grid`` in its dialect, as ready-made records."""
    from replay.engine.dialects import hf, lightning, tf_keras, ultralytics

    func = {
        "tf-keras": tf_keras.early_stopping,
        "lightning": lightning.early_stopping,
        "hf": hf.early_stopping,
        "ultralytics": ultralytics.early_stopping,
    }[grid.dialect]
    mode = ctx.mode
    if grid.dialect == "tf-keras":  # tf.keras's own "auto"
        func = _with_monitor(func, ctx.monitor)
        if grid.mode == "auto" and not ctx.facts.directions.get(ctx.monitor):
            mode = tf_keras.early_stopping_mode(ctx.monitor, "auto", grid.dialect_version)
    out = []
    for keras_params, extra, call in _es_settings(grid, mode):
        r = func(values, **call)
        params = {**_keras_es_params(ctx, mode, *keras_params), **extra}
        record = ctx.stop_record(EARLY_STOPPING, params, r.stopped_epoch,
                                 r.epochs_trained - 1, r.best_epoch, r.final_epoch)  # fmt: skip
        out.append({**record, **_tail(grid.dialect)})
    return out


def _with_monitor(func, monitor: str):
    def call(values, **kw):
        return func(values, monitor=monitor, **kw)

    return call


def sweep_dialect_plateau(ctx, values, grid, initial, recorded, scale, min_lrs) -> list[dict]:
    """Every ReduceLROnPlateau setting of ``grid`` in its dialect (tf-keras, torch), as
    ready-made records; ``initial``, ``recorded``, ``scale`` and ``min_lrs`` as the Keras
    sweep finds them. Branches are not consulted: a schedule the run did not follow is unknown."""
    from replay.engine.dialects import tf_keras, torch
    from replay.engine.rates import counterfactual_from

    torch_dialect = grid.dialect == "torch"
    deltas = (grid.threshold or (1e-4,)) if torch_dialect else grid.lr_min_delta
    modes = grid.threshold_mode if torch_dialect else ("rel",)
    epss = grid.eps if torch_dialect else (1e-8,)
    mode = ctx.mode
    if not torch_dialect and grid.mode == "auto" and not ctx.facts.directions.get(ctx.monitor):
        mode = tf_keras.plateau_mode(ctx.monitor)  # tf.keras's own "auto"
    out = []
    for md, factor, patience, cooldown, min_lr, tmode, eps in itertools.product(
        deltas, grid.factor, grid.lr_patiences, grid.cooldown, min_lrs, modes, epss
    ):
        start = 1.0 if initial is None else initial
        if torch_dialect:
            r = torch.reduce_lr_on_plateau(
                values, initial_lr=start, mode=mode, factor=factor, patience=patience,
                threshold=md, threshold_mode=tmode, cooldown=cooldown, min_lr=min_lr, eps=eps,
            )  # fmt: skip
            extra = {"threshold_mode": tmode, "eps": eps}
        else:
            r = tf_keras.reduce_lr_on_plateau(
                values, initial_lr=start, monitor=ctx.monitor, mode=mode, factor=factor,
                patience=patience, min_delta=md, cooldown=cooldown, min_lr=min_lr,
            )  # fmt: skip
            extra = {"numpy_major": 2}
        as32 = [float(np.float32(v)) for v in r.lr]
        cf = counterfactual_from(as32, r.reductions, recorded)
        params = {"monitor": ctx.monitor, "mode": mode, "factor": factor,
                  "patience": patience, "min_delta": md, "cooldown": cooldown,
                  "min_lr": min_lr, "initial_lr": initial, **extra}  # fmt: skip
        out.append({
            **ctx.head(REDUCE_LR_ON_PLATEAU), "params": params, "lr_scale": scale,
            "lr": list(r.lr), "reductions": list(r.reductions), "final_lr": r.final_lr,
            "counterfactual_from": cf, **ctx.root_outcome(cf), **_tail(grid.dialect),
        })  # fmt: skip
    return out


def sweep_model_checkpoint(ctx, values, grid) -> list[dict]:
    """Every ModelCheckpoint setting of ``grid`` (:mod:`replay.engine.dialects.model_checkpoint`:
    Keras 3's rules, or Keras 2's in the tf-keras dialect, with ``period``) as ready-made
    records: the epochs saved, and the file you end with (the last one saved), its
    metrics and regret. Raises PolicyError for a bad parameter."""
    from replay.engine.dialects.model_checkpoint import VERSIONS, keras2_mode, model_checkpoint

    keras2 = grid.dialect == "tf-keras"
    mode = ctx.mode
    if keras2 and grid.mode == "auto" and not ctx.facts.directions.get(ctx.monitor):
        mode = keras2_mode(ctx.monitor, "auto")  # tf.keras's own "auto"
    out = []
    for save_best, threshold, period in itertools.product(
        grid.save_best_only, grid.initial_value_threshold, grid.period or (1,)
    ):
        r = model_checkpoint(
            values, monitor=ctx.monitor, save_best_only=bool(save_best), mode=mode,
            initial_value_threshold=threshold, period=period, keras="2" if keras2 else "3",
        )  # fmt: skip
        params = {"monitor": ctx.monitor, "mode": mode, "save_best_only": bool(save_best),
                  "initial_value_threshold": threshold}  # fmt: skip
        if keras2:
            params["period"] = period
        final = r.final_epoch
        record = {
            **ctx.head(MODEL_CHECKPOINT),
            "params": params,
            "saved_epochs": list(r.saved),
            "final_epoch": final,
            "checkpoint": None if final is None else ctx.facts.checkpoints.get(final),
            "final_metrics": {} if final is None else ctx.rows[final],
            "regret": None if final is None else ctx.regrets[final],
            "regret_metric": ctx.heldout,
        }
        if keras2:  # the versions of ModelCheckpoint's Keras 2 rules
            record.update(dialect=grid.dialect, dialect_versions=VERSIONS["2"])
        out.append(record)
    return out
