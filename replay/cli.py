"""The ``replay`` command line: thin commands over the library.

Library code raises :class:`analysis.errors.ReplayError` (and
:class:`replay.policies.PolicyError`); only this module turns them into one-line
``Error: ...`` messages. Nothing here imports TensorFlow: ``replay record`` imports
it inside its own function.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import click

from analysis.errors import ReplayError
from replay import __version__
from replay.policies import PolicyError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
SHADOW_MISMATCH_EXIT = 3


class ReplayGroup(click.Group):
    """A group whose commands turn the project's errors into one-line messages."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ReplayError, PolicyError) as e:
            raise click.ClickException(str(e)) from None
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(1)


@click.group(cls=ReplayGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="callback-replay")
def cli() -> None:
    """Train once, then replay the recorded metrics through exact re-implementations
    of Keras's EarlyStopping and ReduceLROnPlateau under whole grids of settings.

    \b
    Examples:
      replay record --out runs/mnist-mlp          # train MNIST once, log everything
      replay sweep runs/mnist-mlp --patience 3..10
      replay pick runs/mnist-mlp --patience 5 --restore-best-weights yes
      replay show sample_logs/mnist-mlp
    """


def _load_runs(paths, *, echo: bool = True):
    """Every training in every log of ``paths``, with names that tell them apart.

    A log that holds several trainings gives several runs (``LOG#N`` picks one).
    """
    from analysis.formats import load_logs, unique_names

    runs = [run for p in paths for run in load_logs(p)]
    unique_names(runs)
    if echo:
        for w in dict.fromkeys(w for run in runs for w in run.warnings):
            click.echo(f"warning: {w}", err=True)
    return runs


# ----------------------------------------------------------------------------------
# Grid options, shared by sweep (ranges) and pick (single values).


def _policy_names() -> tuple[str, ...]:
    from replay.sweep import POLICIES

    return POLICIES


def _name_list(choices=None):
    """A click callback for a repeatable option whose values may also be comma lists.

    ``--policy a,b``, ``--policy a --policy b`` and ``--policy a,b --policy a`` all give
    ``("a", "b")`` (repeats dropped, first order kept); nothing given gives None.
    ``choices`` (a function returning the valid names) makes an unknown name an error.
    """

    def callback(ctx, param, values):
        from replay.grid import GridError

        option = param.opts[0]
        valid = choices() if choices is not None and values else None
        names: dict[str, None] = {}  # an ordered set
        for text in values:
            for item in text.split(","):
                name = item.strip()
                if not name:
                    raise GridError(f"{option}: empty item in {text!r}.")
                if valid is not None and name not in valid:
                    raise GridError(f"{option}: {name!r} is not one of {', '.join(valid)}.")
                names[name] = None
        return tuple(names) or None

    return callback


def _grid_options(func):
    options = [
        click.option(
            "--policy",
            "policies",
            multiple=True,
            callback=_name_list(_policy_names),
            metavar="NAME[,NAME...]",
            help="Policies to replay: early_stopping, reduce_lr_on_plateau, prechelt "
            "(comma-separated or repeated). Default: early_stopping,reduce_lr_on_plateau.",
        ),
        click.option(
            "--monitor",
            multiple=True,
            callback=_name_list(),
            metavar="METRIC[,METRIC...]",
            help="Metrics to monitor (comma-separated or repeated). Default: val_loss.",
        ),
        click.option(
            "--mode",
            type=click.Choice(["auto", "min", "max"]),
            default="auto",
            show_default=True,
            help="Direction of the monitored metric; auto infers it from the name.",
        ),
        click.option("--patience", help="Patience grid, e.g. 3..10. Default: 0..10."),
        click.option("--min-delta", help="EarlyStopping min_delta grid. Default: 0,0.0001,0.001."),
        click.option("--baseline", help="EarlyStopping baseline grid; 'none' allowed."),
        click.option("--start-from-epoch", help="EarlyStopping start_from_epoch grid."),
        click.option(
            "--restore-best-weights",
            type=click.Choice(["yes", "no", "both"]),
            help="EarlyStopping restore_best_weights. Default: both for sweep, no for pick.",
        ),
        click.option(
            "--lr-patience", help="ReduceLROnPlateau patience grid (default: --patience)."
        ),
        click.option(
            "--lr-min-delta",
            help="ReduceLROnPlateau min_delta grid (default: --min-delta if given, else 1e-4).",
        ),
        click.option("--factor", help="ReduceLROnPlateau factor grid. Default: 0.1,0.2,0.5."),
        click.option("--cooldown", help="ReduceLROnPlateau cooldown grid. Default: 0."),
        click.option("--min-lr", help="ReduceLROnPlateau min_lr grid. Default: 0."),
        click.option(
            "--initial-lr",
            type=float,
            help="Learning rate at epoch 0, needed only when the log has no learning_rate.",
        ),
        click.option("--gl-alpha", help="Prechelt GL alpha grid. Default: 1,2,5."),
        click.option("--pq-alpha", help="Prechelt PQ alpha grid. Default: 0.5,1,2."),
        click.option("--up-strips", help="Prechelt UP strips grid. Default: 2,3,4."),
        click.option("--strip-length", help="Prechelt training strip length. Default: 5."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


_GRID_KEYS = (
    "policies", "monitor", "mode", "patience", "min_delta", "baseline", "start_from_epoch",
    "restore_best_weights", "lr_patience", "lr_min_delta", "factor", "cooldown", "min_lr",
    "initial_lr", "gl_alpha", "pq_alpha", "up_strips", "strip_length",
)  # fmt: skip


def _build_grid(opts: dict, *, single: bool = False):
    """Turn the grid options into a :class:`replay.sweep.Grid` (defaults filled in)."""
    from replay.grid import GridError, parse_values
    from replay.sweep import DEFAULT_GRID, Grid

    def values(key, option, **kw):
        text = opts.get(key)
        if text is None:
            return None
        vals = parse_values(text, option, **kw)
        if single and len(vals) != 1:
            raise GridError(f"{option}: pick takes one value but got {text!r}.")
        return tuple(vals)

    nonneg = {"integer": True, "minimum": 0}
    changes: dict = {
        "patience": values("patience", "--patience", **nonneg),
        "min_delta": values("min_delta", "--min-delta"),
        "baseline": values("baseline", "--baseline", allow_none=True),
        "start_from_epoch": values("start_from_epoch", "--start-from-epoch", **nonneg),
        "lr_patience": values("lr_patience", "--lr-patience", **nonneg),
        "lr_min_delta": values("lr_min_delta", "--lr-min-delta"),
        "factor": values("factor", "--factor"),
        "cooldown": values("cooldown", "--cooldown", **nonneg),
        "min_lr": values("min_lr", "--min-lr", minimum=0),
        "gl_alpha": values("gl_alpha", "--gl-alpha"),
        "pq_alpha": values("pq_alpha", "--pq-alpha"),
        "up_strips": values("up_strips", "--up-strips", integer=True, minimum=1),
        "strip_length": values("strip_length", "--strip-length", integer=True, minimum=1),
    }
    if changes["lr_min_delta"] is None and changes["min_delta"] is not None:
        changes["lr_min_delta"] = changes["min_delta"]
    for f in changes["factor"] or ():
        if not 0 < f < 1:
            raise GridError(f"--factor: {f:g} is out of range; a factor must be > 0 and < 1.")
    monitors = opts.get("monitor")
    if monitors:
        if single and len(monitors) != 1:
            raise GridError(f"--monitor: pick takes one metric but got {','.join(monitors)!r}.")
        changes["monitors"] = monitors
    else:
        changes["monitors"] = ()  # each run's default: val_loss, or its framework's own
    restore = opts.get("restore_best_weights")
    if single and restore == "both":
        raise GridError("--restore-best-weights: pick takes yes or no, not both.")
    if restore is not None:
        changes["restore_best_weights"] = {
            "yes": (True,), "no": (False,), "both": (False, True)
        }[restore]  # fmt: skip
    if opts.get("policies"):
        changes["policies"] = opts["policies"]
    initial = opts.get("initial_lr")
    if initial is not None and not (math.isfinite(initial) and initial > 0):
        raise GridError(f"--initial-lr must be a positive number but got {initial}.")
    changes["initial_lr"] = initial
    changes["mode"] = opts.get("mode") or "auto"
    base = DEFAULT_GRID
    if single:
        # pick: Keras's defaults wherever an option was not given.
        base = Grid(
            policies=("early_stopping",),
            patience=(0,),
            min_delta=(0.0,),
            restore_best_weights=(False,),
            lr_min_delta=(1e-4,),
            factor=(0.1,),
            gl_alpha=(2.0,),
            pq_alpha=(1.0,),
            up_strips=(3,),
        )
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def _format_option(func):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help="Output format on stdout; all three render the same rows.",
    )(func)


# ----------------------------------------------------------------------------------
# sweep


DEFAULT_OUT_ROOT = Path("out")


def _default_out(runs) -> Path:
    """Create and return a new folder ``out/sweep-<name>-<UTC time>`` for a sweep's results.

    If that name is taken (two sweeps of one log in the same second), the next free one
    of ``...-2``, ``...-3``, ... : ``mkdir`` without ``exist_ok`` either creates the folder
    or fails, atomically, so two processes never end up in the same folder.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = runs[0].name if len(runs) == 1 else f"{runs[0].name}-and-{len(runs) - 1}-more"
    base = f"sweep-{name}-{stamp}".replace(os.sep, "_")
    DEFAULT_OUT_ROOT.mkdir(parents=True, exist_ok=True)
    path, n = DEFAULT_OUT_ROOT / base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = DEFAULT_OUT_ROOT / f"{base}-{n}"


def _check_out_dir(out: Path | None, force: bool, fmt: str = "table") -> None:
    """Refuse an unusable output directory before any work (and before writing).

    Without ``--out``, a table's results go to a new folder under ``out/`` (which must be
    a writable directory or creatable), and csv/json output, meant for a pipe, writes
    no folder at all.
    """
    if out is None:
        where = DEFAULT_OUT_ROOT if DEFAULT_OUT_ROOT.exists() else Path(".")
        if fmt == "table" and not (where.is_dir() and os.access(where, os.W_OK | os.X_OK)):
            raise ReplayError(
                f"cannot create the default results folder in {where.resolve()}; pass --out DIR."
            )
        return
    if out.exists() and not out.is_dir():
        raise ReplayError(f"--out {out}: exists and is not a directory; choose another path.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ReplayError(
            f"--out {out}: directory exists and is not empty; pass --force to overwrite "
            "its results, or choose another directory."
        )
    parent = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise ReplayError(f"--out {out}: {parent} is not a directory; choose another path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReplayError(f"--out {out}: {parent} is not writable; choose another directory.")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@_grid_options
@_format_option
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    help="Directory for results.json, results.csv and the charts. Default: a new folder "
    "out/sweep-<name>-<UTC time> (suffixed -2, -3, ... if taken) with --format table; "
    "no folder with --format csv or json (they are for a pipe) unless --out is given.",
)
@click.option("--no-charts", is_flag=True, help="Skip the PNG charts.")
@click.option("--force", is_flag=True, help="Write into a non-empty --out directory.")
@click.option(
    "--max-settings",
    type=click.IntRange(min=1),
    default=10_000_000,
    show_default=True,
    help="Refuse grids larger than this.",
)
def sweep(runs, fmt, out, no_charts, force, max_settings, **opts):
    """Replay RUN(s) through every setting of a grid and show where each would stop.

    RUN is a run directory written by `replay record`, a Keras CSVLogger file, or a
    TensorBoard log directory. Several RUNs are swept and summarized together.
    Grid options take ranges: 3..10, 3..10:2, 0,0.001,0.01, 1,2,5..8.

    \b
    Examples:
      replay sweep sample_logs/mnist-mlp --patience 3..10
      replay sweep training.csv --monitor val_accuracy --min-delta 0,0.001 --format csv
      replay sweep logs/ --policy reduce_lr_on_plateau --factor 0.1,0.5 --initial-lr 1e-3
    """
    from replay.report import render_csv, render_json, render_table
    from replay.sweep import check_shadow
    from replay.sweep import sweep as run_sweep

    grid = _build_grid(opts)
    loaded = _load_runs(runs)
    _check_monitors(loaded, grid)
    grid.check(max_settings=max_settings, runs=loaded)
    _check_out_dir(out, force, fmt)
    result = run_sweep(loaded, grid)

    shadow_lines, mismatch = [], False
    for run, facts in zip(loaded, result.facts, strict=True):
        if run.shadow:
            check = check_shadow(facts, run.shadow, run.shadow_epochs)
            if check.total:
                shadow_lines.append(
                    f"{run.name}: replay matches {check.matched}/{check.total} real Keras decisions"
                )
            if not check.ok:
                mismatch = True
                for m in check.mismatches:
                    shadow_lines.append(f"MISMATCH (a bug in callback-replay): {m}")

    if fmt == "table":
        click.echo(render_table(result), nl=False)
    elif fmt == "csv":
        click.echo(render_csv(result.records), nl=False)
    else:
        click.echo(render_json(result.records), nl=False)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for line in shadow_lines:
        click.echo(line, err=fmt != "table")

    if out is not None or fmt == "table":  # csv/json alone on stdout: no folder
        out = _default_out(loaded) if out is None else out
        out.mkdir(parents=True, exist_ok=True)
        _write_text(out / "results.json", render_json(result.records))
        _write_text(out / "results.csv", render_csv(result.records))
        written = ["results.json", "results.csv"]
        if not no_charts:
            from replay.charting import draw_sweep_charts

            written += draw_sweep_charts(result, loaded, out)
        click.echo(f"wrote {', '.join(written)} to {out}", err=True)
    if mismatch:
        click.echo("Error: the replay disagrees with real Keras decisions (see above).", err=True)
        sys.exit(SHADOW_MISMATCH_EXIT)


def _check_monitors(runs, grid) -> None:
    from analysis.errors import missing_metric

    for run in runs:
        for monitor in grid.monitors_of(run):
            if not run.has(monitor):
                raise missing_metric(monitor, list(run.metrics.columns), run.source)


def _write_text(path: Path, text: str) -> None:
    from analysis.rundir import atomic_write

    atomic_write(path, text)


# ----------------------------------------------------------------------------------
# pick


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN")
@_grid_options
@click.option(
    "--copy",
    "copy_to",
    type=click.Path(path_type=Path),
    help="Copy the kept checkpoint here (never overwrites).",
)
def pick(run, copy_to, **opts):
    """Say which epoch (and checkpoint) one setting would have left you with.

    Every option takes a single value; unset ones take Keras's defaults
    (EarlyStopping: patience 0, min_delta 0, no restore).

    \b
    Examples:
      replay pick runs/mnist-mlp --patience 5 --restore-best-weights yes
      replay pick runs/mnist-mlp --policy prechelt --gl-alpha 2 --copy best.keras
    """
    from analysis.errors import CheckpointUnavailable
    from analysis.logs import checkpoint_path
    from replay.sweep import sweep as run_sweep

    grid = _build_grid(opts, single=True)
    if len(grid.policies) != 1 or grid.policies[0] == "reduce_lr_on_plateau":
        raise ReplayError(
            "pick chooses a checkpoint, so it takes one stopping policy: "
            "--policy early_stopping or --policy prechelt."
        )
    if grid.policies[0] == "prechelt":
        given = [k for k in ("gl_alpha", "pq_alpha", "up_strips") if opts.get(k) is not None]
        if len(given) > 1:
            raise ReplayError("pick takes one Prechelt criterion: --gl-alpha, --pq-alpha or "
                              "--up-strips, not several.")  # fmt: skip
        keep = given[0] if given else "gl_alpha"
        grid = _only(grid, keep)
    if copy_to is not None and copy_to.exists():
        raise ReplayError(f"--copy {copy_to}: already exists; pick never overwrites a file.")
    from analysis.formats import load_run

    loaded = load_run(run)
    for w in loaded.warnings:
        click.echo(f"warning: {w}", err=True)
    _check_monitors([loaded], grid)
    result = run_sweep([loaded], grid)
    (record,) = result.records
    metric = record["regret_metric"]
    label = _describe_pick(record)
    final = record["final_epoch"]
    click.echo(f"{loaded.name}: {label}")
    if final is None:
        click.echo("the log has no epochs to keep.")
        return
    click.echo(f"you end with the weights of epoch {final} (epoch {final + 1} in Keras's 1-based "
               "messages and checkpoint names)")  # fmt: skip
    if record["regret"] is not None:
        click.echo(f"regret on {metric}: {record['regret']:.6g} (0 = the best recorded epoch)")
    for k, v in record["final_metrics"].items():
        click.echo(f"  {k:<16} {'-' if v is None else repr(v)}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    try:
        path = checkpoint_path(loaded, final, verify=True)
    except CheckpointUnavailable as e:
        click.echo(f"no checkpoint to hand over: {e}")
        if copy_to is not None:
            raise ReplayError(f"--copy {copy_to}: nothing to copy; {e}") from None
        return
    click.echo(f"checkpoint: {path} (sha256 verified)")
    if copy_to is not None:
        _copy_new(path, copy_to)
        click.echo(f"copied to {copy_to}")


def _only(grid, keep: str):
    empty = {k: () for k in ("gl_alpha", "pq_alpha", "up_strips") if k != keep}
    return replace(grid, **empty)


def _describe_pick(record: dict) -> str:
    from replay.report import setting_label

    setting = f"{record['policy']} {setting_label(record)} on {record['params']['monitor']}"
    if record["censored"]:
        why = (
            f"never stopped within the {record['epochs_trained']} recorded epochs (censored: "
            "the log ended before this setting would have stopped)"
        )
    else:
        why = f"stopped at epoch {record['stopped_epoch']}"
    best = record["best_epoch"]
    return f"{setting}: {why}; best epoch {best}."


def _copy_new(src: Path, dest: Path) -> None:
    """Copy without ever overwriting: the destination is created exclusively."""
    import shutil

    if dest.parent and not dest.parent.exists():
        raise ReplayError(f"--copy {dest}: directory {dest.parent} does not exist.")
    try:
        with open(src, "rb") as fin, open(dest, "xb") as fout:
            shutil.copyfileobj(fin, fout)
    except FileExistsError:
        raise ReplayError(f"--copy {dest}: already exists; pick never overwrites a file.") from None


# ----------------------------------------------------------------------------------
# show


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN")
@click.option("--chart", type=click.Path(path_type=Path), help="Draw the curves to this PNG.")
def show(run, chart):
    """Summarize a log: format, epochs, status, best epochs, LR changes, provenance.

    \b
    Examples:
      replay show sample_logs/mnist-mlp
      replay show training.csv --chart curves.png
    """
    from replay.summary import render_summary

    if chart is not None and chart.exists() and chart.is_dir():
        raise ReplayError(f"--chart {chart}: is a directory; give a .png file path.")
    loaded = _load_runs([run], echo=False)  # the summary lists the warnings, once
    if chart is not None and len(loaded) > 1:
        raise ReplayError(
            f"--chart: {run} holds {len(loaded)} trainings; name one as {run}#1 ... "
            f"{run}#{len(loaded)} to draw it."
        )
    mismatch = False
    for k, one in enumerate(loaded):
        text, bad = render_summary(one)
        click.echo(("\n" if k else "") + text, nl=False)
        mismatch = mismatch or bad
    if chart is not None:
        from replay.charting import draw_run_chart

        draw_run_chart(loaded[0], chart)
        click.echo(f"wrote {chart}", err=True)
    if mismatch:
        click.echo("Error: the replay disagrees with real Keras decisions (see above).", err=True)
        sys.exit(SHADOW_MISMATCH_EXIT)


def _add_record_command() -> None:
    from replay.record_cmd import record

    cli.add_command(record)


_add_record_command()


def main() -> None:
    """Console-script entry point (``replay``)."""
    cli(prog_name="replay")
