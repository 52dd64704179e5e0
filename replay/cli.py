"""The ``replay`` command line: thin commands over the library.

Library code raises :class:`analysis.errors.ReplayError` (of which
:class:`replay.policies.PolicyError` and :class:`replay.grid.GridError` are kinds);
only :class:`ReplayGroup` turns them into one-line ``Error: ...`` messages. The rules
about values (defaults, fallbacks between options, ranges) live in
:class:`replay.sweep.Grid`. Nothing here imports TensorFlow: ``replay record`` imports
it inside its own function.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from analysis.errors import ReplayError
from replay import __version__
from replay.grid import GridError, parse_values
from replay.study_cli import pop_study_options, run_pruner_sweep, show_study, study_options

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
SHADOW_MISMATCH_EXIT = 3


class ReplayGroup(click.Group):
    """A group whose commands turn the project's errors into one-line messages."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ReplayError as e:
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
    from analysis.records import POLICIES

    return POLICIES


def _sweep_policy_names() -> tuple[str, ...]:
    """sweep's policies: the callbacks' and Optuna's pruners (over a study)."""
    from replay.study_sweep import PRUNER_POLICIES

    return _policy_names() + PRUNER_POLICIES


class Range(click.ParamType):
    """A grid option's values as a tuple: ``3..10``, ``3..10:2``, ``0,0.001``, ``1,2,5..8``.

    Parsed by :func:`replay.grid.parse_values`. Its :class:`~replay.grid.GridError`
    passes through (a ReplayError: the one-line ``Error: --option: ...``, exit 1) instead
    of click's usage error. ``single`` (pick) takes exactly one value.
    """

    def __init__(self, *, integer=False, minimum=None, allow_none=False, single=False):
        self.name = "value" if single else "range"  # the metavar in --help
        self.single = single
        self.rules = {"integer": integer, "minimum": minimum, "allow_none": allow_none}

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):  # already converted
            return value
        option = param.opts[0] if param is not None else "value"
        values = parse_values(value, option, **self.rules)
        if self.single and len(values) != 1:
            raise GridError(f"{option}: pick takes one value but got {value!r}.")
        return tuple(values)


def _name_list(choices=None):
    """A click callback for a repeatable option whose values may also be comma lists.

    ``--policy a,b``, ``--policy a --policy b`` and ``--policy a,b --policy a`` all give
    ``("a", "b")`` (repeats dropped, first order kept); nothing given gives None.
    ``choices`` (a function returning the valid names) makes an unknown name an error.
    """

    def callback(ctx, param, values):
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


def _yes_no_both(ctx, param, value):
    return None if value is None else {"yes": (True,), "no": (False,), "both": (False, True)}[value]


def _grid_options(*, single: bool = False, pruners: bool = False):
    """The options of a :class:`replay.sweep.Grid`, named as its fields: ranges for
    sweep, one value each for pick (``single``)."""

    def grid(flag: str, help: str, **rules):  # a grid option: ranges, or one value
        return click.option(flag, type=Range(single=single, **rules), help=help)

    count, positive = {"integer": True, "minimum": 0}, {"integer": True, "minimum": 1}
    options = [
        click.option(
            "--policy",
            "policies",
            multiple=True,
            callback=_name_list(_sweep_policy_names if pruners else _policy_names),
            metavar="NAME[,NAME...]",
            help="Policies to replay: early_stopping, reduce_lr_on_plateau, prechelt, "
            "early_stopping+reduce_lr_on_plateau, model_checkpoint (comma-separated or "
            "repeated); over a study (sweep only): median_pruner, percentile_pruner, "
            "successive_halving_pruner, hyperband_pruner, threshold_pruner, patient_pruner. "
            "Default: early_stopping,reduce_lr_on_plateau.",
        ),
        click.option(
            "--monitor",
            "monitors",
            multiple=True,
            callback=_name_list(),
            metavar="METRIC[,METRIC...]",
            help="Metrics to monitor (comma-separated or repeated). Default: val_loss, or "
            "the one the log's trainer monitored (Hugging Face, Ultralytics).",
        ),
        click.option(
            "--mode",
            type=click.Choice(["auto", "min", "max"]),
            default="auto",
            show_default=True,
            help="Direction of the monitored metric; auto infers it from the name.",
        ),
        grid("--patience", "Patience grid, e.g. 3..10. Default: 0..10.", **count),
        grid("--min-delta", "EarlyStopping min_delta grid. Default: 0,0.0001,0.001."),
        grid("--baseline", "EarlyStopping baseline grid; 'none' allowed.", allow_none=True),
        grid("--start-from-epoch", "EarlyStopping start_from_epoch grid.", **count),
        click.option(
            "--restore-best-weights",
            type=click.Choice(["yes", "no", "both"]),
            callback=_yes_no_both,
            help="EarlyStopping restore_best_weights. Default: both for sweep, no for pick.",
        ),
        grid("--lr-patience", "ReduceLROnPlateau patience grid (default: --patience).", **count),
        grid(
            "--lr-min-delta",
            "ReduceLROnPlateau min_delta grid (default: --min-delta if given, else 1e-4).",
        ),
        grid("--factor", "ReduceLROnPlateau factor grid. Default: 0.1,0.2,0.5."),
        grid("--cooldown", "ReduceLROnPlateau cooldown grid. Default: 0.", **count),
        grid("--min-lr", "ReduceLROnPlateau min_lr grid. Default: 0.", minimum=0),
        click.option(
            "--initial-lr",
            type=float,
            help="Learning rate at epoch 0, needed only when the log has no learning_rate.",
        ),
        grid("--gl-alpha", "Prechelt GL alpha grid. Default: 1,2,5."),
        grid("--pq-alpha", "Prechelt PQ alpha grid. Default: 0.5,1,2."),
        grid("--up-strips", "Prechelt UP strips grid. Default: 2,3,4.", **positive),
        grid("--strip-length", "Prechelt training strip length. Default: 5.", **positive),
        click.option(
            "--save-best-only",
            type=click.Choice(["yes", "no", "both"]),
            callback=_yes_no_both,
            help="ModelCheckpoint save_best_only. Default: both for sweep, no (Keras's "
            "default) for pick.",
        ),
        grid(
            "--initial-value-threshold",
            "ModelCheckpoint initial_value_threshold grid; 'none' allowed. Default: none.",
            allow_none=True,
        ),
    ]

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _flag_tuple(ctx, param, value):
    return None if value is None else (value,)


def _dialect_options(*, single: bool = False):
    """``--dialect`` and the parameters only some dialects have (sweep and pick)."""

    def grid(flag: str, help: str, **rules):
        return click.option(flag, type=Range(single=single, **rules), help=help)

    options = [
        click.option(
            "--dialect",
            type=click.Choice(["keras", "tf-keras", "torch", "lightning", "hf", "ultralytics"]),
            help="Whose callbacks to replay. Default: keras (Keras 3); for a Lightning, Hugging "
            "Face or Ultralytics log, that framework's.",
        ),
        click.option(
            "--dialect-version",
            metavar="VERSION",
            help="tf-keras: 2.6..2.21 (default 2.21); hf: 4.47+ or legacy; ultralytics: "
            "strict or ties.",
        ),
        grid("--threshold", "torch ReduceLROnPlateau threshold grid. Default: 0.0001.", minimum=0),
        click.option(
            "--threshold-mode",
            multiple=True,
            callback=_name_list(lambda: ("rel", "abs")),
            metavar="rel|abs",
            help="torch ReduceLROnPlateau threshold_mode (rel, abs, or both). Default: rel.",
        ),
        grid("--eps", "torch ReduceLROnPlateau eps grid. Default: 1e-8.", minimum=0),
        click.option(
            "--check-finite/--no-check-finite",
            default=None,
            callback=_flag_tuple,
            help="lightning EarlyStopping check_finite. Default: on.",
        ),
        grid("--stopping-threshold", "lightning stopping_threshold grid.", allow_none=True),
        grid("--divergence-threshold", "lightning divergence_threshold grid.", allow_none=True),
        grid("--early-stopping-threshold", "hf early_stopping_threshold grid. Default: 0."),
        grid(
            "--period",
            "tf-keras ModelCheckpoint period (Keras 2: every period-th epoch). Default: 1.",
            integer=True,
            minimum=1,
        ),
    ]

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _choose_dialect(runs, grid, opts: dict, build) -> object:
    """``grid``, or ``build(**opts)`` in the framework's own dialect when --dialect was
    not given and every run is a log of one framework
    (:func:`replay.dialect_sweep.dialect_for_runs`); the notes go to stderr."""
    from replay.dialect_sweep import dialect_for_runs

    if opts.get("dialect") is not None:
        return grid
    monitors = tuple(m for run in runs for m in grid.monitors_of(run))
    dialect, notes = dialect_for_runs(runs, None, monitors)
    if dialect != "keras":
        try:
            grid = build(**{**opts, "dialect": dialect})
        except ReplayError as e:
            notes = [f"{e} (in the {dialect} dialect); replayed in the keras dialect instead."]
    for note in notes:
        click.echo(f"note: {note}", err=True)
    return grid


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
    from replay.report import check_output_dir

    check_output_dir(out, "--out", force, "overwrite its results")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@_grid_options(pruners=True)
@_dialect_options()
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
@click.option("--force", is_flag=True, help="Write into a non-empty --out or --tensorboard DIR.")
@click.option(
    "--tensorboard",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Also write the sweep as a TensorBoard HParams experiment: one session per "
    "(run, setting), up to 10,000. An empty or new DIR; with --force, replaces the "
    "experiment an earlier --tensorboard wrote there.",
)
@click.option(
    "--max-settings",
    type=click.IntRange(min=1),
    help="Refuse grids of more settings than this, and sweep those up to it whatever "
    "the memory estimate. Default: as many as fit in the available memory.",
)
@study_options
def sweep(runs, fmt, out, no_charts, force, tensorboard, max_settings, **opts):
    """Replay RUN(s) through every setting of a grid and show where each would stop.

    RUN is a run directory written by `replay record`, a Keras CSVLogger file, or a
    TensorBoard log directory. Several RUNs are swept and summarized together. An
    Optuna study (sqlite:///study.db) or a KerasTuner project is swept under Optuna's
    pruners with --policy median_pruner ... (README: Hyperparameter studies).
    Grid options take ranges: 3..10, 3..10:2, 0,0.001,0.01, 1,2,5..8.

    \b
    Examples:
      replay sweep sample_logs/mnist-mlp --patience 3..10
      replay sweep training.csv --monitor val_accuracy --min-delta 0,0.001 --format csv
      replay sweep logs/ --policy reduce_lr_on_plateau --factor 0.1,0.5 --initial-lr 1e-3
      replay sweep RUN --policy model_checkpoint --dialect tf-keras --period 3
      replay sweep RUN --patience 3..10 --tensorboard tb/sweep   # tensorboard --logdir tb/sweep
      replay sweep sqlite:///study.db --policy median_pruner --n-warmup-steps 0..5
    """
    from replay.report import atomic_text, render_table, write_csv, write_json
    from replay.sweep import Grid, check_shadow
    from replay.sweep import sweep as run_sweep

    runs, pruner_sweep = pop_study_options(runs, opts)
    if pruner_sweep is not None:  # an Optuna study or KerasTuner project under pruners
        return run_pruner_sweep(runs, pruner_sweep, fmt=fmt, out=out, no_charts=no_charts,
                                force=force, tensorboard=tensorboard)  # fmt: skip
    grid = Grid.from_options(**opts)
    loaded = _load_runs(runs, echo=False)  # warned below, with what the sweep adds
    _check_monitors(loaded, grid)
    grid = _choose_dialect(loaded, grid, opts, Grid.from_options)
    grid.check(max_settings=max_settings, runs=loaded)
    _check_out_dir(out, force, fmt)
    if tensorboard is not None:
        from replay import hparams

        hparams.check_size(grid.size() * len(loaded))
        hparams.check_dir(tensorboard, force, out, grid.size() * len(loaded))
    result = run_sweep(loaded, grid)
    for w in dict.fromkeys(w for facts in result.facts for w in facts.notes):
        click.echo(f"warning: {w}", err=True)

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

    # Each format is rendered once, streamed: to stdout, to its file, or to both.
    writers = {"json": write_json, "csv": write_csv}
    if fmt == "table":
        click.echo(render_table(result), nl=False)
    elif out is None:  # csv/json alone on stdout, for a pipe: no folder
        writers[fmt](result.records, sys.stdout)
    else:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_text(out / f"results.{fmt}") as f:
            writers[fmt](result.records, f, sys.stdout)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for line in shadow_lines:
        click.echo(line, err=fmt != "table")

    if out is not None or fmt == "table":
        out = _default_out(loaded) if out is None else out
        out.mkdir(parents=True, exist_ok=True)
        for kind, write in writers.items():
            if kind != fmt:
                with atomic_text(out / f"results.{kind}") as f:
                    write(result.records, f)
        written = ["results.json", "results.csv"]
        if len(loaded) > 1:  # across runs: one row per setting (docs/sweep-output.md)
            from replay.report import write_aggregate_files

            written += write_aggregate_files(result.records, out)
        if not no_charts:
            from replay.charting import chart_refusal, draw_sweep_charts

            refusal = chart_refusal(result)
            if refusal:
                click.echo(f"note: {refusal}", err=True)
            else:
                written += draw_sweep_charts(result, loaded, out)
        click.echo(f"wrote {', '.join(written)} to {out}", err=True)
    if tensorboard is not None:
        n = hparams.write_experiment(result.records, tensorboard, oracles=result.oracles,
                                     force=force)  # fmt: skip
        click.echo(hparams.describe(n, tensorboard), err=True)
    if mismatch:
        click.echo("Error: the replay disagrees with real Keras decisions (see above).", err=True)
        sys.exit(SHADOW_MISMATCH_EXIT)


def _check_monitors(runs, grid) -> None:
    from analysis.errors import missing_metric

    for run in runs:
        for monitor in grid.monitors_of(run):
            if not run.has(monitor):
                raise missing_metric(monitor, list(run.metrics.columns), run.source)


# ----------------------------------------------------------------------------------
# pick


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN")
@_grid_options(single=True)
@_dialect_options(single=True)
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
      replay pick runs/mnist-mlp --policy model_checkpoint --save-best-only yes
    """
    from analysis.errors import CheckpointUnavailable
    from analysis.logs import checkpoint_path
    from replay.sweep import Grid
    from replay.sweep import sweep as run_sweep

    grid = Grid.for_pick(**opts)
    if copy_to is not None and copy_to.exists():
        raise ReplayError(f"--copy {copy_to}: already exists; pick never overwrites a file.")
    from analysis.formats import load_run

    loaded = load_run(run)
    for w in loaded.warnings:
        click.echo(f"warning: {w}", err=True)
    _check_monitors([loaded], grid)
    grid = _choose_dialect([loaded], grid, opts, Grid.for_pick)
    result = run_sweep([loaded], grid)
    (record,) = result.records
    metric = record.get("regret_metric") or result.oracles[0]["heldout"]
    label = _describe_pick(record)
    final = record["final_epoch"]
    click.echo(f"{loaded.name}: {label}")
    if final is None and record.get("counterfactual_from") is not None:
        click.echo(
            f"no recorded curve ran this schedule from epoch {record['counterfactual_from']} "
            "on, so the epoch you would end with is unknown; `replay branch` trains it"
        )
        return
    if final is None and record.get("saved_epochs") is not None:
        click.echo("ModelCheckpoint saved no epoch, so there is no file to keep.")
        return
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
        path = checkpoint_path(_holder(loaded, record, final), final, verify=True)
    except CheckpointUnavailable as e:
        click.echo(f"no checkpoint to hand over: {e}")
        if copy_to is not None:
            raise ReplayError(f"--copy {copy_to}: nothing to copy; {e}") from None
        return
    click.echo(f"checkpoint: {path} (sha256 verified)")
    if copy_to is not None:
        _copy_new(path, copy_to)
        click.echo(f"copied to {copy_to}")


def _holder(run, record: dict, epoch: int):
    """The run directory holding ``epoch``'s checkpoint: the run, or the branch that
    answered the record (or the parent it forked from, for an epoch before its fork)."""
    from analysis.rundir import load_run_dir

    if not record.get("branch") or run.root is None:
        return run
    holder = load_run_dir(run.root / "branches" / record["branch"])
    while epoch not in holder.checkpoints and isinstance((holder.manifest or {}).get("parent"),
                                                         str):  # fmt: skip
        # "../.." or "../<id>" (validated): collapse lexically to name the path plainly
        holder = load_run_dir(os.path.normpath(holder.root / holder.manifest["parent"]))
    return holder


def _describe_pick(record: dict) -> str:
    from analysis.records import MODEL_CHECKPOINT, REDUCE_LR_ON_PLATEAU, record_label

    dialect = f" ({record['dialect']} dialect)" if record.get("dialect") else ""
    setting = (f"{record['policy']}{dialect} {record_label(record)} on "
               f"{record['params']['monitor']}")  # fmt: skip
    where = f" (branch {record['branch']})" if record.get("branch") else ""
    if record["policy"] == MODEL_CHECKPOINT:
        saved = ", ".join(map(str, record["saved_epochs"])) or "none"
        return f"{setting}: saves epochs {saved}; its file holds the last one saved."
    if record["policy"] == REDUCE_LR_ON_PLATEAU:
        cuts = ", ".join(map(str, record["reductions"])) or "none"
        if record["counterfactual_from"] is None:
            return f"{setting}: cuts after epochs {cuts}, exact to the end{where}."
        return (f"{setting}: cuts after epochs {cuts}; exact up to epoch "
                f"{record['counterfactual_from'] - 1}{where}.")  # fmt: skip
    if record.get("counterfactual_from") is not None:
        return (f"{setting}: had not stopped by epoch {record['counterfactual_from'] - 1}, "
                f"where no recorded curve ran its learning-rate schedule{where}.")  # fmt: skip
    if record["censored"]:
        why = (
            f"never stopped within the {record['epochs_trained']} recorded epochs (censored: "
            "the log ended before this setting would have stopped)"
        )
    else:
        why = f"stopped at epoch {record['stopped_epoch']}"
    best = record["best_epoch"]
    return f"{setting}: {why}; best epoch {best}{where}."


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
    An Optuna study or a KerasTuner project: its trials (state, steps, value, params).

    \b
    Examples:
      replay show sample_logs/mnist-mlp
      replay show training.csv --chart curves.png
    """
    from replay.summary import render_summary

    if chart is None and show_study(run):  # an Optuna study or KerasTuner project: its trials
        return
    if chart is not None and chart.exists() and chart.is_dir():
        raise ReplayError(f"--chart {chart}: is a directory; give a .png file path.")
    from analysis.formats import is_run_folder, one_run_of_folder

    if chart is not None and is_run_folder(run):
        raise ReplayError(f"--chart: {one_run_of_folder(Path(run))} to draw it.")
    loaded = _load_runs([run], echo=False)  # the summary lists the warnings, once
    if is_run_folder(run):
        from replay.summary import render_folder_summary

        text, mismatch = render_folder_summary(run, loaded)
        click.echo(text, nl=False)
        if mismatch:
            click.echo("Error: the replay disagrees with real Keras decisions (see above).",
                       err=True)  # fmt: skip
            sys.exit(SHADOW_MISMATCH_EXIT)
        return
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


def _add_branch_command() -> None:
    from replay.branch_cmd import make_command

    cli.add_command(make_command(_grid_options))


_add_branch_command()


def main() -> None:
    """Console-script entry point (``replay``)."""
    cli(prog_name="replay")
