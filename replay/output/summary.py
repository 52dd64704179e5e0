"""``replay show``: a plain summary of one log, or a line per run of a folder of runs."""

from __future__ import annotations

import math

from replay.engine.policies import PolicyError, resolve_mode

__all__ = ["render_folder_summary", "render_summary"]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.6g}"


def _object(value) -> dict:
    """A manifest field that should be an object; anything else counts as absent."""
    return value if isinstance(value, dict) else {}


def _aligned(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Header and rows as lines: the first column left-aligned, the others right-aligned,
    each as wide as its longest cell, two spaces apart.

    >>> _aligned(["metric", "best"], [["val_sparse_categorical_accuracy", "0.9"]])
    ['metric                           best', 'val_sparse_categorical_accuracy   0.9']
    """
    table = [headers, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    lines = []
    for r in table:
        cells = (
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        lines.append("  ".join(cells).rstrip())
    return lines


def lr_changes(rates: list[float | None]) -> list[tuple[int, float, float]]:
    """(epoch, previous rate, new rate) wherever a rate (as ``recorded_lr`` gives) changes."""
    changes = []
    prev = None
    for epoch, rate in enumerate(rates):
        if rate is None:
            continue
        if prev is not None and rate != prev:
            changes.append((epoch, prev, rate))
        prev = rate
    return changes


def _never_finite(run, facts, columns: list[str]) -> list[str]:
    """One ``note:`` line naming the metrics with a direction that are never finite, under the
    NaN rule of the framework that wrote the log (Keras's for Keras logs)."""
    from replay.engine.dialects import never_finite_note
    from replay.sweeping.dialect_sweep import FRAMEWORK_DIALECTS

    dialect = FRAMEWORK_DIALECTS.get(run.format, "keras")
    note = never_finite_note(run.name, {c: facts.values(c) for c in columns}, dialect)
    return [f"note: {note}"] if note else []


def render_summary(run) -> tuple[str, bool]:
    """Return (text, shadow mismatch?) for an :class:`analysis.reading.logs.RunLog`."""
    from replay.sweeping.lr_alignment import align_lr
    from replay.sweeping.run_facts import RunFacts, best_epoch, check_shadow, recorded_lr

    run = align_lr(run)  # a TensorBoard learning rate's epochs, where the log left them open
    facts = RunFacts.from_runlog(run)
    lines = [f"{run.name}  ({run.format}: {run.source})"]
    m = run.manifest or {}
    from analysis.reading.rundir import STALE, stopped_unmarked

    stale = f" ({STALE})" if stopped_unmarked(run.root, run.status) else ""
    lines.append(f"epochs: {run.n_epochs}   status: {run.status}{stale}")
    if run.status in ("running", "interrupted"):
        lines.append(
            f"note: the run is incomplete ({run.status}); its {run.n_epochs} committed epochs "
            "are valid and can be swept; "
            + (
                f"a fit from initial_epoch={run.n_epochs} with RecordCallback continues it."
                if _object(m.get("model"))
                else "`replay record --resume` continues it."
            )
        )
    lines.append("")
    rows, directed = [], []
    for column in facts.columns:
        values = facts.values(column)
        final = next((v for v in reversed(values) if v is not None), None)
        try:
            best_i = best_epoch(values, resolve_mode(column, "auto", run.directions))
            directed.append(column)
        except PolicyError:  # no direction known for this column (learning_rate, ...)
            best_i = None
        if best_i is None:
            rows.append([column, "", "", _fmt(final)])
        else:
            rows.append([column, str(best_i), _fmt(values[best_i]), _fmt(final)])
    lines.extend(_aligned(["metric", "best epoch", "best", "final"], rows))
    lines.extend(_never_finite(run, facts, directed))
    rates = recorded_lr(facts)
    if rates is not None:
        changes = lr_changes(rates)
        lines.append("")
        if changes:
            lines.append("learning-rate changes:")
            for epoch, old, new in changes:
                lines.append(f"  epoch {epoch}: {old:.6g} -> {new:.6g}")
        else:
            lines.append("learning rate: constant")
    if m:
        lines.append("")
        data = _object(m.get("data"))
        if data:
            sizes = _object(data.get("split"))
            origin = " ".join(str(data[k]) for k in ("kind", "origin") if data.get(k)) or "?"
            lines.append(
                f"data: {origin}, sha256 {str(data.get('sha256', '?'))[:16]}..."
                + (", split " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                           for k, v in sizes.items()) if sizes else "")
            )  # fmt: skip
        versions = _object(m.get("versions"))
        if versions:
            lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        config = _object(m.get("config"))
        if config:
            lines.append("config: " + ", ".join(f"{k}={v}" for k, v in config.items()))
        model = _object(m.get("model"))  # a run recorded by replay.keras.RecordCallback
        if model:
            lines.append("model: " + ", ".join(f"{k}={v}" for k, v in model.items()))
        if m.get("checkpoints_included") is False:
            lines.append("checkpoints: not included (the manifest keeps their sha256)")
    for w in run.warnings:
        lines.append(f"warning: {w}")
    mismatch = False
    if run.shadow:
        check = check_shadow(facts, run.shadow, run.shadow_epochs)
        lines.append("")
        lines.append(f"shadow callbacks: replay matches {check.matched}/{check.total} real "
                     "Keras decisions")  # fmt: skip
        for s in check.mismatches:
            lines.append(f"MISMATCH (a bug in callback-replay): {s}")
        mismatch = not check.ok
    return "\n".join(lines) + "\n", mismatch


def render_folder_summary(folder: str, runs) -> tuple[str, bool]:
    """Return (text, shadow mismatch?) for the runs of a folder of runs (``replay record
    --seeds``): a line per run (seed, epochs, status, the best epoch of the metric it
    would monitor), its warnings, and how to see one run or sweep them all."""
    from replay.sweeping.run_facts import RunFacts, best_epoch, check_shadow

    rows, notes, mismatch = [], [], False
    for run in runs:
        facts = RunFacts.from_runlog(run)
        seed = _object(_object(run.manifest).get("config")).get("seed")
        monitor = run.default_monitor if run.default_monitor in facts.metrics else None
        best = "-"
        if monitor is not None:
            values = facts.values(monitor)
            try:
                i = best_epoch(values, resolve_mode(monitor, "auto", run.directions))
            except PolicyError:
                i = None
            if i is not None:
                best = f"{monitor} {_fmt(values[i])} at epoch {i}"
        rows.append([run.name, "-" if seed is None else str(seed), str(run.n_epochs),
                     run.status, best])  # fmt: skip
        notes.extend(f"warning: {w}" for w in run.warnings)
        if run.shadow:
            check = check_shadow(facts, run.shadow, run.shadow_epochs)
            for s in check.mismatches:
                notes.append(f"MISMATCH (a bug in callback-replay): {run.name}: {s}")
            mismatch = mismatch or not check.ok
    lines = [f"{folder}: a folder of {len(runs)} run{'s' if len(runs) != 1 else ''}", ""]
    lines.extend(_aligned(["run", "seed", "epochs", "status", "best"], rows))
    lines.extend(["", *notes] if notes else [])
    lines.append("")
    lines.append(f"`replay show {runs[0].source}` shows one run; `replay sweep {folder}` "
                 "sweeps them together (mean regret across runs and its spread).")  # fmt: skip
    return "\n".join(lines) + "\n", mismatch
