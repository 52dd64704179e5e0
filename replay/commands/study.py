"""The command-line side of studies: the pruner options of ``replay sweep``, the pruner
sweep it runs, and ``replay show`` of a study. Kept out of cli.py so that the commands
there only call in; nothing here imports Optuna (the Optuna reader does, when a study is
read from a storage).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analysis.errors import ReplayError
from replay.engine.grid import GridError, parse_values
from replay.engine.pruner_options import OPTIONS, PRUNER_POLICIES, parse_auto

__all__ = ["pop_study_options", "run_pruner_sweep", "show_study", "study_options"]

#: The parameters only the pruners take (--patience and --min-delta are shared with
#: EarlyStopping's options and read from there).
_OWN = [k for k in OPTIONS if k not in ("patience", "min_delta")]


class _Values(click.ParamType):
    name = "range"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        option = param.opts[0] if param is not None else "value"
        if self.kind == "auto":
            return parse_auto(value, option)
        if self.kind == "count":
            return tuple(parse_values(value, option, integer=True, minimum=0))
        if self.kind == "positive":
            return tuple(parse_values(value, option, integer=True, minimum=1))
        if self.kind == "bound":
            return tuple(parse_values(value, option, allow_none=True))
        if self.kind == "names":
            names = []
            for item in str(value).split(","):
                name = item.strip()
                names.append(None if name.lower() == "none" else name)
            return tuple(dict.fromkeys(names))
        return tuple(parse_values(value, option))


def study_options(func):
    """The options of pruner sweeps (``--policy median_pruner`` ...) and ``--study``."""
    options = [
        click.option(
            "--study",
            metavar="NAME",
            help="Optuna: the study to read from a storage that holds several.",
        ),
        click.option(
            "--recorded-pruner",
            metavar="SETTING",
            help="Pruner sweeps: the setting the study ran with, as the table names it "
            "(e.g. 'median_pruner n_startup_trials=5 n_warmup_steps=0 interval_steps=1 "
            "n_min_trials=1'); says whether it reproduces the recorded pruning.",
        ),
        click.option("--n-startup-trials", type=_Values("count"),
                      help="median/percentile_pruner n_startup_trials grid. Default: 5."),
        click.option("--n-warmup-steps", type=_Values("count"),
                     help="median/percentile/threshold_pruner n_warmup_steps grid. Default: 0."),
        click.option("--interval-steps", type=_Values("positive"),
                     help="median/percentile/threshold_pruner interval_steps grid. Default: 1."),
        click.option("--n-min-trials", type=_Values("positive"),
                     help="median/percentile_pruner n_min_trials grid. Default: 1."),
        click.option("--percentile", type=_Values("float"),
                     help="percentile_pruner percentile grid. Default: 25,50,75."),
        click.option("--min-resource", type=_Values("auto"),
                     help="successive_halving/hyperband_pruner min_resource grid ('auto' "
                     "allowed for successive halving). Default: auto / 1."),
        click.option("--max-resource", type=_Values("auto"),
                     help="hyperband_pruner max_resource grid ('auto' allowed). Default: auto."),
        click.option("--reduction-factor", type=_Values("positive"),
                     help="successive_halving/hyperband_pruner reduction_factor grid. "
                     "Default: 4 / 3."),
        click.option("--min-early-stopping-rate", type=_Values("count"),
                     help="successive_halving_pruner min_early_stopping_rate grid. Default: 0."),
        click.option("--bootstrap-count", type=_Values("count"),
                     help="successive_halving/hyperband_pruner bootstrap_count grid. Default: 0."),
        click.option("--lower", type=_Values("bound"),
                     help="threshold_pruner lower grid; 'none' allowed."),
        click.option("--upper", type=_Values("bound"),
                     help="threshold_pruner upper grid; 'none' allowed."),
        click.option("--wrapped", type=_Values("names"), metavar="NAME[,NAME...]",
                     help="patient_pruner's wrapped pruner(s): none or a pruner policy name "
                     "(its parameters from their options). Default: none."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def pop_study_options(runs: tuple, opts: dict) -> tuple[tuple, dict | None]:
    """Take the study options out of ``opts`` (the other sweeps' options stay).

    Returns ``(runs, study)``: ``study`` is the pruner sweep's options when a pruner
    policy was chosen, else None (then ``--study NAME`` is folded into each run as
    ``RUN#study=NAME``, for the EarlyStopping sweeps over a study's trials).
    """
    own = {k: opts.pop(k, None) for k in _OWN}
    study, recorded = opts.pop("study", None), opts.pop("recorded_pruner", None)
    policies = opts.get("policies") or ()
    pruners = [p for p in policies if p in PRUNER_POLICIES]
    if not pruners:
        given = [OPTIONS[k] for k, v in own.items() if v is not None]
        if given or recorded is not None:
            flag = given[0] if given else "--recorded-pruner"
            raise GridError(
                f"{flag}: a pruner option; pass --policy with one of {', '.join(PRUNER_POLICIES)}."
            )
        if study is not None:
            runs = tuple(f"{r}#study={study}" for r in runs)
        return runs, None
    if len(pruners) != len(policies):
        others = [p for p in policies if p not in PRUNER_POLICIES]
        raise GridError(
            f"--policy: pruners ({', '.join(pruners)}) and callbacks ({', '.join(others)}) "
            "cannot be swept together; run one sweep for each."
        )
    return runs, {
        "policies": tuple(pruners),
        "study": study,
        "recorded_pruner": recorded,
        "patience": opts.get("patience"),
        "min_delta": opts.get("min_delta"),
        **own,
    }


def run_pruner_sweep(runs, study_opts: dict, *, fmt, out, no_charts, force, tensorboard):
    """``replay sweep STUDY --policy median_pruner ...``: the pruner sweep, printed and
    written as the other sweeps are (:meth:`PrunerSweep.save`: results.json, results.csv,
    a chart per pruner)."""
    from replay.api.studies import PrunerSweep
    from replay.output.writers import check_out_dir, default_out_dir
    from replay.sweeping.study_sweep import load_study, pruner_grid, sweep_study, to_csv, to_json

    if len(runs) != 1:
        raise ReplayError(f"a pruner sweep reads one study; got {len(runs)} logs.")
    opts = dict(study_opts)
    policies, study_name = opts.pop("policies"), opts.pop("study")
    recorded = opts.pop("recorded_pruner")
    grid = pruner_grid(policies, **opts)
    check_out_dir(out, force, fmt)
    if tensorboard is not None:
        from replay.output import hparams

        hparams.check_size(grid.size())
        hparams.check_dir(tensorboard, force, out, grid.size())
    study = load_study(runs[0], study_name)
    for w in study.warnings:
        click.echo(f"warning: {w}", err=True)
    result = PrunerSweep(sweep_study(study, grid, recorded_pruner=recorded))
    if fmt == "table":
        click.echo(result.table(), nl=False)
    elif out is None:  # csv/json alone on stdout, for a pipe: no folder
        sys.stdout.write({"json": to_json, "csv": to_csv}[fmt](result.records))
    if out is not None or fmt == "table":
        out = default_out_dir([study]) if out is None else out
        tee = (fmt, sys.stdout) if fmt != "table" else None
        # --out was checked before the sweep, under the user's --force
        written = result.save(out, charts=not no_charts, force=True, tee=tee)
        click.echo(f"wrote {', '.join(written)} to {out}", err=True)
    if tensorboard is not None:
        n = result.to_tensorboard(tensorboard, force=force)
        click.echo(hparams.describe(n, tensorboard), err=True)


def is_study(spec: str) -> bool:
    from analysis.formats import kerastuner, optuna_study

    return optuna_study.is_study_spec(spec) or len(kerastuner.project_dirs(Path(spec))) == 1


def show_study(spec: str) -> bool:
    """``replay show STUDY``: list the trials; False when ``spec`` is no study."""
    if not is_study(spec):
        return False
    from replay.sweeping.study_sweep import load_study, render_trials

    click.echo(render_trials(load_study(spec)), nl=False)
    return True
