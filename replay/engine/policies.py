"""Exact, side-effect-free re-implementations of training callbacks.

Each policy takes the per-epoch values of one metric (a float, ``nan`` allowed, or
``None`` for "not logged that epoch") and returns a frozen dataclass. Nothing here
imports Keras or touches a model.

The default dialect reproduces Keras 3.15 (``keras.callbacks.EarlyStopping`` and
``keras.callbacks.ReduceLROnPlateau``) decision for decision:

Improvement (``MonitorCallback._is_improvement``)
    ``monitor_op(current - d, reference)`` where ``d = abs(min_delta)``, negated in
    ``min`` mode, and ``monitor_op`` is a strict ``<`` (min) or ``>`` (max). The
    subtraction happens on Python floats (float64); the comparison happens in
    TensorFlow on float32 tensors, whose CPU kernels flush subnormal numbers to
    zero. So two values that differ only beyond float32 precision compare equal,
    and ``1e-45 < 3e-45`` is false. A reference of ``None`` is always beaten (so a
    NaN first value becomes ``best``); NaN is never an improvement after that.
    Values outside float32's range (|v| > 3.4e38) make Keras raise; here they
    become +-inf, which is what a float32 can hold.

Mode
    ``min`` or ``max``; ``auto`` is ``min`` for ``loss``/``val_loss`` and otherwise the
    direction of the metric named (see :data:`MAX_METRICS` / :data:`MIN_METRICS`),
    after stripping a ``val_`` or ``test_`` prefix. An unknown name in ``auto`` mode,
    or an unknown mode string, raises :class:`PolicyError` (Keras only warns about an
    unknown mode and falls back to ``auto``; we refuse).

EarlyStopping
    An epoch with no value, or with ``epoch < start_from_epoch``, is skipped. With
    ``restore_best_weights`` the first monitored epoch is snapshotted. ``wait += 1``
    comes before the test. On improvement, ``best`` and ``best_epoch`` update, and
    ``wait`` resets only if the value also beats ``baseline`` (when one is set).
    Otherwise training stops when ``wait >= patience and epoch > 0`` (so patience 0
    and 1 behave the same). You end with ``best_epoch``'s weights when
    ``restore_best_weights`` and a snapshot exists (Keras 3 restores at the end of
    training whether or not it stopped), else with the last trained epoch's.

ReduceLROnPlateau
    Each epoch with a value: if in cooldown, decrement the counter and reset
    ``wait``; then an improvement sets ``best`` and resets ``wait``; else, if not in
    cooldown, ``wait += 1`` and when ``wait >= patience`` the rate is cut provided
    ``old_lr > float32(min_lr)``: ``new = max(old_lr * factor, min_lr)`` in float64,
    stored as float32 (the optimizer's variable); after a cut the cooldown counter
    is set to ``cooldown`` and ``wait`` to 0. Without a cut nothing is reset. So
    ``cooldown=1`` has no effect.

Prechelt (1998), "Early Stopping - But When?"
    GL, PQ and UP stopping criteria over validation and training *errors*; see
    :func:`prechelt`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.errors import ReplayError
from analysis.names import base_name
from replay.engine.rates import float32_array

__all__ = [
    "MAX_METRICS",
    "MIN_METRICS",
    "Curve",
    "EarlyStoppingResult",
    "EarlyStoppingTrace",
    "PlateauResult",
    "PlateauTrace",
    "PolicyError",
    "PrecheltResult",
    "early_stopping",
    "prechelt",
    "reduce_lr_on_plateau",
    "resolve_mode",
]


class PolicyError(ReplayError, ValueError):
    """A policy parameter that is invalid (the message shows the value received).

    A :class:`~analysis.errors.ReplayError` (the CLI reports it on one line) and, as
    Keras's own checks raise, a ``ValueError``.
    """


# Keras metric names and their direction (``Metric._direction``), plus the usual
# aliases. Looked up after stripping ``val_`` / ``test_``.
MAX_METRICS = frozenset(
    {
        "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
        "sparse_categorical_accuracy", "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy", "auc", "prc", "precision", "recall",
        "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity",
        "specificity_at_sensitivity", "f1_score", "fbeta_score", "iou", "mean_iou",
        "binary_iou", "one_hot_iou", "one_hot_mean_iou", "io_u", "mean_io_u",
        "binary_io_u", "one_hot_io_u", "one_hot_mean_io_u", "r2_score",
        "cosine_similarity", "pearson_correlation", "concordance_correlation",
    }
)  # fmt: skip
MIN_METRICS = frozenset(
    {
        "loss", "mean_squared_error", "mse", "mean_absolute_error", "mae",
        "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error",
        "msle", "root_mean_squared_error", "rmse", "hinge", "squared_hinge",
        "categorical_hinge", "crossentropy", "binary_crossentropy",
        "categorical_crossentropy", "sparse_categorical_crossentropy",
        "binary_focal_crossentropy", "categorical_focal_crossentropy",
        "kl_divergence", "kld", "kullback_leibler_divergence", "poisson",
        "log_cosh", "logcosh", "log_cosh_error",
    }
)  # fmt: skip

_MODES = ("auto", "min", "max")


def resolve_mode(
    monitor: str, mode: str = "auto", directions: Mapping[str, str] | None = None
) -> str:
    """Return ``"min"`` or ``"max"`` for ``monitor`` under ``mode``.

    In ``auto`` mode, ``directions`` (the log's own framework's directions by column,
    e.g. Ultralytics's ``metrics/*`` are maximized) is consulted before Keras's table.

    >>> resolve_mode("val_accuracy"), resolve_mode("fitness", directions={"fitness": "max"})
    ('max', 'max')

    Raises:
        PolicyError: unknown mode, or ``auto`` for a metric whose direction is unknown.
    """
    if mode not in _MODES:
        raise PolicyError(
            f"mode must be one of auto, min, max but got {mode!r} "
            "(Keras would warn and fall back to auto; callback-replay refuses)."
        )
    if mode != "auto":
        return mode
    if directions and monitor in directions:  # the log's own framework knows
        return directions[monitor]
    name = base_name(monitor)
    if name in MIN_METRICS:
        return "min"
    if name in MAX_METRICS:
        return "max"
    raise PolicyError(
        f"cannot infer whether {monitor!r} should be minimized or maximized; "
        "pass mode='min' or mode='max' (--mode min|max)."
    )


def _as_array(values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Return (float64 values with NaN where missing, boolean "logged" mask)."""
    logged = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    arr = np.fromiter(
        (math.nan if v is None else v for v in values), dtype=np.float64, count=len(values)
    )
    return arr, logged


def check_int(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PolicyError(f"{name} must be an integer but got {value!r}.")
    if value < minimum:
        qualifier = "negative" if minimum == 0 else f"less than {minimum}"
        raise PolicyError(f"{name} cannot be {qualifier} but got {value}.")
    return int(value)


def check_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise PolicyError(f"{name} must be a number but got {value!r}.")
    if not math.isfinite(value):
        raise PolicyError(f"{name} must be finite but got {value}.")
    return float(value)


class Curve:
    """One metric's values, converted once for every policy that reads them.

    ``values`` is float64 with NaN where not logged, ``logged`` says which epochs
    have a value, and ``plain`` holds each value as TensorFlow compares it (float32,
    subnormals flushed to zero). A sweep builds one Curve per (run, metric) and
    hands it to every trace instead of the raw sequence.
    """

    __slots__ = ("logged", "plain", "values")

    def __init__(self, values: Sequence[float | None]):
        arr, logged = _as_array(values)
        self.values = arr
        self.logged = logged.tolist()
        self.plain = float32_array(arr).tolist()

    def __len__(self) -> int:
        return len(self.logged)


def as_curve(values: Sequence[float | None] | Curve) -> Curve:
    """``values`` as a :class:`Curve` (itself when it already is one)."""
    return values if isinstance(values, Curve) else Curve(values)


class Improvement:
    """``MonitorCallback._is_improvement`` over a whole curve, float32 semantics.

    ``beats(i, j)`` says whether epoch ``i``'s value improves on epoch ``j``'s.
    """

    def __init__(self, curve: Curve, mode: str, min_delta: float):
        d = abs(min_delta)
        signed = -d if mode == "min" else d
        self.mode = mode
        with np.errstate(invalid="ignore"):
            self.shifted = float32_array(curve.values - signed).tolist()
        self.plain = curve.plain

    def beats_value(self, i: int, reference: float) -> bool:
        if self.mode == "min":
            return self.shifted[i] < reference
        return self.shifted[i] > reference

    def beats(self, i: int, j: int) -> bool:
        return self.beats_value(i, self.plain[j])


# ----------------------------------------------------------------------------------
# EarlyStopping


@dataclass(frozen=True)
class EarlyStoppingResult:
    """What ``EarlyStopping`` would have done over a recorded curve.

    ``stopped_epoch`` is 0-based and ``None`` when the policy never stopped.
    ``final_epoch`` is the epoch whose weights you end with (``None`` for an empty
    curve). ``censored`` means the log ended before the policy stopped, so the log
    cannot say when (or whether) it would have stopped.
    """

    stopped: bool
    stopped_epoch: int | None
    epochs_trained: int
    best_epoch: int | None
    final_epoch: int | None
    restored: bool
    censored: bool


class EarlyStoppingTrace:
    """The patience-independent part of ``EarlyStopping`` over one curve.

    Whether an epoch improves on ``best`` does not depend on ``patience`` or
    ``restore_best_weights``, so a sweep computes this trace once per
    (curve, mode, min_delta, baseline, start_from_epoch) and then answers every
    patience with :meth:`decide` in O(log n).
    """

    def __init__(
        self,
        values: Sequence[float | None] | Curve,
        *,
        mode: str,
        min_delta: float = 0.0,
        baseline: float | None = None,
        start_from_epoch: int = 0,
    ):
        if mode not in ("min", "max"):
            raise PolicyError(f"mode must be 'min' or 'max' here but got {mode!r}.")
        min_delta = check_finite("min_delta", min_delta)
        if baseline is not None:
            baseline = check_finite("baseline", baseline)
        start_from_epoch = check_int("start_from_epoch", start_from_epoch)
        curve = as_curve(values)
        logged = curve.logged
        imp = Improvement(curve, mode, min_delta)
        if baseline is not None:
            base_ref = float(float32_array(np.array([baseline]))[0])

        self.n_epochs = len(curve)
        # Epochs at which Keras could stop (monitored, not improved, epoch > 0),
        # with the running maximum of their ``wait`` for bisection.
        self._candidates: list[int] = []
        self._max_wait: list[int] = []
        # best_epoch as Keras holds it after each epoch (None before any monitored epoch).
        self._best_at: list[int | None] = []
        best: int | None = None
        wait = 0
        running_max = -1
        for epoch in range(self.n_epochs):
            if logged[epoch] and epoch >= start_from_epoch:
                wait += 1
                if best is None or imp.beats(epoch, best):
                    best = epoch
                    if baseline is None or imp.beats_value(epoch, base_ref):
                        wait = 0
                elif epoch > 0:
                    running_max = max(running_max, wait)
                    self._candidates.append(epoch)
                    self._max_wait.append(running_max)
            self._best_at.append(best)

    def stop_point(self, patience: int) -> tuple[int | None, int, int | None]:
        """(stopped epoch or None, last trained epoch, best epoch then) for ``patience``.

        The hot path of a sweep: no validation, no allocation beyond the tuple.
        """
        k = bisect.bisect_left(self._max_wait, patience)
        if k < len(self._candidates):
            last = self._candidates[k]
            return last, last, self._best_at[last]
        last = self.n_epochs - 1
        return None, last, self._best_at[last] if last >= 0 else None

    def decide(self, patience: int = 0, restore_best_weights: bool = False) -> EarlyStoppingResult:
        """Return the outcome for one ``patience`` / ``restore_best_weights``."""
        patience = check_int("patience", patience)
        if self.n_epochs == 0:
            return EarlyStoppingResult(False, None, 0, None, None, False, True)
        stop, last, best = self.stop_point(patience)
        restored = bool(restore_best_weights) and best is not None
        return EarlyStoppingResult(
            stopped=stop is not None,
            stopped_epoch=stop,
            epochs_trained=last + 1,
            best_epoch=best,
            final_epoch=best if restored else last,
            restored=restored,
            censored=stop is None,
        )


def early_stopping(
    values: Sequence[float | None],
    *,
    monitor: str = "val_loss",
    min_delta: float = 0.0,
    patience: int = 0,
    mode: str = "auto",
    baseline: float | None = None,
    restore_best_weights: bool = False,
    start_from_epoch: int = 0,
) -> EarlyStoppingResult:
    """Replay ``keras.callbacks.EarlyStopping`` over per-epoch ``values``.

    >>> early_stopping([0.5, 0.4, 0.45, 0.46], patience=2).stopped_epoch
    3

    Raises:
        PolicyError: a parameter is invalid, or the mode cannot be inferred.
    """
    trace = EarlyStoppingTrace(
        values,
        mode=resolve_mode(monitor, mode),
        min_delta=min_delta,
        baseline=baseline,
        start_from_epoch=start_from_epoch,
    )
    return trace.decide(patience, restore_best_weights)


# ----------------------------------------------------------------------------------
# ReduceLROnPlateau


@dataclass(frozen=True)
class PlateauResult:
    """What ``ReduceLROnPlateau`` would have done over a recorded curve.

    ``lr[e]`` is the learning rate in effect during epoch ``e`` (each a float32
    value held in a Python float); ``reductions`` are the epochs at whose end the
    rate was cut; ``final_lr`` is the rate after the last epoch's decision.
    """

    lr: tuple[float, ...]
    reductions: tuple[int, ...]
    final_lr: float


def check_plateau(
    factor: object, patience: object, cooldown: object, *, framework: str = "Keras"
) -> tuple[float, int, int]:
    """The checked ``(factor, patience, cooldown)`` of a ReduceLROnPlateau.

    >>> check_plateau(0.5, 2, 0)
    (0.5, 2, 0)

    Raises:
        PolicyError: ``factor`` not in (0, 1) (``framework`` names whose rule ``< 1`` is),
            a patience or cooldown that is not a non-negative integer.
    """
    factor = check_finite("factor", factor)
    if factor >= 1.0:
        raise PolicyError(f"factor must be < 1.0 (as in {framework}) but got {factor}.")
    if factor <= 0.0:
        raise PolicyError(f"factor must be > 0 but got {factor}.")
    return factor, check_int("patience", patience), check_int("cooldown", cooldown)


def check_rates(initial_lr: object, min_lr: object) -> tuple[float, float]:
    """The checked ``(initial_lr, min_lr)`` of a ReduceLROnPlateau: finite, the initial
    rate > 0, the floor >= 0.

    >>> check_rates(1e-3, 0)
    (0.001, 0.0)

    Raises:
        PolicyError: either is not finite, ``min_lr`` < 0 or ``initial_lr`` <= 0.
    """
    min_lr = check_finite("min_lr", min_lr)
    if min_lr < 0:
        raise PolicyError(f"min_lr cannot be negative but got {min_lr}.")
    initial_lr = check_finite("initial_lr", initial_lr)
    if initial_lr <= 0:
        raise PolicyError(f"initial_lr must be > 0 but got {initial_lr}.")
    return initial_lr, min_lr


class PlateauTrace:
    """The improvement flags of ``ReduceLROnPlateau`` over one curve.

    ``best`` changes only on improvement, never because of the learning rate, so
    the flags depend only on (curve, mode, min_delta); :meth:`decide` runs the
    cheap integer state machine for each (factor, patience, cooldown, min_lr).
    """

    def __init__(
        self, values: Sequence[float | None] | Curve, *, mode: str, min_delta: float = 1e-4
    ):
        if mode not in ("min", "max"):
            raise PolicyError(f"mode must be 'min' or 'max' here but got {mode!r}.")
        min_delta = check_finite("min_delta", min_delta)
        curve = as_curve(values)
        imp = Improvement(curve, mode, min_delta)
        # Per epoch: None (not logged: Keras does nothing), True (improved), False.
        flags: list[bool | None] = []
        best: int | None = None
        for epoch, logged in enumerate(curve.logged):
            if not logged:
                flags.append(None)
            elif best is None or imp.beats(epoch, best):
                best = epoch
                flags.append(True)
            else:
                flags.append(False)
        self.flags = tuple(flags)

    def decide(
        self,
        *,
        initial_lr: float,
        factor: float = 0.1,
        patience: int = 10,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> PlateauResult:
        """Return the schedule for one setting."""
        factor, patience, cooldown = check_plateau(factor, patience, cooldown)
        initial_lr, min_lr = check_rates(initial_lr, min_lr)

        lr = float(np.float32(initial_lr))
        min_lr32 = float(np.float32(min_lr))
        rates: list[float] = []
        reductions: list[int] = []
        wait = 0
        cooldown_counter = 0
        for epoch, improved in enumerate(self.flags):
            rates.append(lr)
            if improved is None:
                continue
            if cooldown_counter > 0:
                cooldown_counter -= 1
                wait = 0
            if improved:
                wait = 0
            elif cooldown_counter <= 0:
                wait += 1
                if wait >= patience and lr > min_lr32:
                    lr = float(np.float32(max(lr * factor, min_lr)))
                    reductions.append(epoch)
                    cooldown_counter = cooldown
                    wait = 0
        return PlateauResult(lr=tuple(rates), reductions=tuple(reductions), final_lr=lr)


def reduce_lr_on_plateau(
    values: Sequence[float | None],
    *,
    initial_lr: float,
    monitor: str = "val_loss",
    factor: float = 0.1,
    patience: int = 10,
    min_delta: float = 1e-4,
    mode: str = "auto",
    cooldown: int = 0,
    min_lr: float = 0.0,
) -> PlateauResult:
    """Replay ``keras.callbacks.ReduceLROnPlateau`` over per-epoch ``values``.

    >>> reduce_lr_on_plateau([1.0, 1.0, 1.0], initial_lr=0.1, patience=1, factor=0.5).reductions
    (1, 2)

    Raises:
        PolicyError: a parameter is invalid, or the mode cannot be inferred.
    """
    trace = PlateauTrace(values, mode=resolve_mode(monitor, mode), min_delta=min_delta)
    return trace.decide(
        initial_lr=initial_lr, factor=factor, patience=patience, cooldown=cooldown, min_lr=min_lr
    )


# ----------------------------------------------------------------------------------
# Prechelt's criteria


@dataclass(frozen=True)
class PrecheltResult:
    """Outcome of one of Prechelt's stopping criteria.

    ``final_epoch`` is the epoch with the lowest validation error up to the stop
    (or up to the end of the log, when the criterion never fired: ``censored``).
    """

    criterion: str
    stopped: bool
    stopped_epoch: int | None
    epochs_trained: int
    best_epoch: int | None
    final_epoch: int | None
    censored: bool


class PrecheltTrace:
    """Generalization loss, training progress and strip-end rises over one curve pair.

    Epochs with a missing or NaN validation error are ignored for ``E_opt`` and
    never trigger a stop; a strip with a missing or NaN training error has no
    progress value. Division by zero follows the limits: GL = 0 when
    ``E_va == E_opt == 0``, +inf when only ``E_opt`` is 0; likewise for P_k, and
    ``GL / P_k`` is +inf when ``P_k`` is 0 and GL > 0 (0 when GL is 0).
    """

    def __init__(
        self,
        val_errors: Sequence[float | None],
        train_errors: Sequence[float | None] | None = None,
        *,
        strip_length: int = 5,
    ):
        k = check_int("strip_length", strip_length, minimum=1)
        n = len(val_errors)
        if train_errors is not None and len(train_errors) != n:
            raise PolicyError(
                f"train and validation errors must have the same length but got "
                f"{len(train_errors)} and {n}."
            )
        va = [math.nan if v is None else float(v) for v in val_errors]
        tr = (
            None
            if train_errors is None
            else [math.nan if v is None else float(v) for v in train_errors]
        )
        self.n_epochs = n
        self.strip_length = k
        self.gl: list[float] = []
        self.best_at: list[int | None] = []
        best: int | None = None
        for t, e in enumerate(va):
            if not math.isnan(e) and (best is None or e < va[best]):
                best = t
            self.best_at.append(best)
            if math.isnan(e) or best is None:
                self.gl.append(math.nan)
            else:
                self.gl.append(100.0 * _ratio_minus_one(e, va[best]))
        # Strip ends: epochs t (0-based) with (t + 1) % k == 0.
        self.strip_ends = list(range(k - 1, n, k))
        self.progress: dict[int, float] = {}
        if tr is not None:
            for t in self.strip_ends:
                strip = tr[t - k + 1 : t + 1]
                if any(math.isnan(x) for x in strip):
                    self.progress[t] = math.nan
                else:
                    self.progress[t] = 1000.0 * _ratio_minus_one(sum(strip), k * min(strip))
        self.va = va

    def _result(self, criterion: str, stop: int | None) -> PrecheltResult:
        n = self.n_epochs
        last = stop if stop is not None else n - 1
        best = self.best_at[last] if n else None
        return PrecheltResult(
            criterion=criterion,
            stopped=stop is not None,
            stopped_epoch=stop,
            epochs_trained=last + 1 if n else 0,
            best_epoch=best,
            final_epoch=best if best is not None else (last if n else None),
            censored=stop is None,
        )

    def gl_alpha(self, alpha: float) -> PrecheltResult:
        """GL_alpha: stop after the first epoch with GL(t) > alpha."""
        alpha = check_finite("gl_alpha", alpha)
        stop = next((t for t, g in enumerate(self.gl) if g > alpha), None)
        return self._result(f"GL{alpha:g}", stop)

    def pq_alpha(self, alpha: float) -> PrecheltResult:
        """PQ_alpha: stop after the first end-of-strip epoch with GL(t) / P_k(t) > alpha."""
        alpha = check_finite("pq_alpha", alpha)
        if not self.progress and self.strip_ends:
            raise PolicyError("the PQ criterion needs training errors; none were given.")
        stop = None
        for t in self.strip_ends:
            g, p = self.gl[t], self.progress[t]
            if math.isnan(g) or math.isnan(p):
                continue
            quotient = g / p if p != 0 else (math.inf if g > 0 else 0.0)
            if quotient > alpha:
                stop = t
                break
        return self._result(f"PQ{alpha:g}", stop)

    def up_s(self, strips: int) -> PrecheltResult:
        """UP_s: stop after the validation error rose at ``strips`` successive strip ends."""
        s = check_int("up_strips", strips, minimum=1)
        k = self.strip_length
        run = 0
        stop = None
        for t in self.strip_ends:
            prev = t - k
            rose = prev >= 0 and self.va[t] > self.va[prev]
            run = run + 1 if rose else 0
            if run >= s:
                stop = t
                break
        return self._result(f"UP{s}", stop)


def _ratio_minus_one(num: float, den: float) -> float:
    if den == 0:
        return 0.0 if num == 0 else math.inf
    return num / den - 1.0


def prechelt(
    val_errors: Sequence[float | None],
    train_errors: Sequence[float | None] | None = None,
    *,
    criterion: str,
    alpha: float | None = None,
    strips: int | None = None,
    strip_length: int = 5,
    monitor: str = "val_loss",
    mode: str = "auto",
) -> PrecheltResult:
    """Apply one of Prechelt's criteria: ``"gl"`` (needs ``alpha``), ``"pq"``
    (``alpha``, needs ``train_errors``) or ``"up"`` (``strips``).

    The criteria are defined for errors (lower is better). A maximized metric such
    as accuracy is refused: convert it to an error first (``1 - accuracy``).

    >>> prechelt([0.5, 0.4, 0.5], criterion="gl", alpha=5).stopped_epoch
    2

    Raises:
        PolicyError: a maximized metric, an unknown criterion, or a bad parameter.
    """
    if resolve_mode(monitor, mode) != "min":
        raise PolicyError(
            f"Prechelt's criteria are defined for errors (lower is better) but {monitor!r} "
            "is maximized; convert it to an error first (1 - accuracy)."
        )
    trace = PrecheltTrace(val_errors, train_errors, strip_length=strip_length)
    if criterion == "gl":
        if alpha is None:
            raise PolicyError("the GL criterion needs alpha but got None.")
        return trace.gl_alpha(alpha)
    if criterion == "pq":
        if alpha is None:
            raise PolicyError("the PQ criterion needs alpha but got None.")
        if train_errors is None:
            raise PolicyError("the PQ criterion needs training errors; none were given.")
        return trace.pq_alpha(alpha)
    if criterion == "up":
        if strips is None:
            raise PolicyError("the UP criterion needs strips but got None.")
        return trace.up_s(strips)
    raise PolicyError(f"criterion must be one of gl, pq, up but got {criterion!r}.")
