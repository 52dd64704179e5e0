"""The names of the pruner policies and of their options (light: the CLI builds its
options from them without loading the pruners, numpy or the study readers)."""

from __future__ import annotations

from replay.engine.grid import parse_values

__all__ = ["OPTIONS", "PRUNER_POLICIES", "parse_auto"]

MEDIAN, PERCENTILE = "median_pruner", "percentile_pruner"
SUCCESSIVE_HALVING, HYPERBAND = "successive_halving_pruner", "hyperband_pruner"
THRESHOLD, PATIENT = "threshold_pruner", "patient_pruner"
PRUNER_POLICIES = (MEDIAN, PERCENTILE, SUCCESSIVE_HALVING, HYPERBAND, THRESHOLD, PATIENT)

#: Option name (as on the command line) of each parameter.
OPTIONS = {
    "n_startup_trials": "--n-startup-trials",
    "n_warmup_steps": "--n-warmup-steps",
    "interval_steps": "--interval-steps",
    "n_min_trials": "--n-min-trials",
    "percentile": "--percentile",
    "min_resource": "--min-resource",
    "max_resource": "--max-resource",
    "reduction_factor": "--reduction-factor",
    "min_early_stopping_rate": "--min-early-stopping-rate",
    "bootstrap_count": "--bootstrap-count",
    "lower": "--lower",
    "upper": "--upper",
    "patience": "--patience",
    "min_delta": "--min-delta",
    "wrapped": "--wrapped",
}


def parse_auto(text: str, option: str, *, minimum: int = 1) -> tuple:
    """Integers (ranges as elsewhere) and the word ``auto``: ``auto,1..3``."""
    items = [t.strip() for t in str(text).split(",")]
    auto = any(t.lower() == "auto" for t in items)
    rest = ",".join(t for t in items if t.lower() != "auto")
    values = parse_values(rest, option, integer=True, minimum=minimum) if rest else []
    return (("auto",) if auto else ()) + tuple(values)
