"""The ``replay`` command line: thin commands over the library.

Library code raises :class:`analysis.errors.ReplayError` (of which
:class:`replay.engine.policies.PolicyError` and :class:`replay.engine.grid.GridError` are kinds);
only :class:`ReplayGroup` turns them into one-line ``Error: ...`` messages. The rules
about values (defaults, fallbacks between options, ranges) live in
:class:`replay.sweeping.sweep.Grid`. Nothing here imports TensorFlow: ``replay record`` imports
it inside its own function.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analysis.errors import ReplayError
from replay.commands.study import pop_study_options, run_pruner_sweep, show_study, study_options
from replay.engine.dialects import DIALECT_NAMES
from replay.engine.grid import GridError, parse_values
from replay.version import __version__

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


# ----------------------------------------------------------------------------------
# Grid options, shared by sweep (ranges) and pick (single values).


def _policy_names() -> tuple[str, ...]:
    from analysis.results.records import POLICIES

    return POLICIES


def _sweep_policy_names() -> tuple[str, ...]:
    """sweep's policies: the callbacks' and Optuna's pruners (over a study)."""
    from replay.engine.pruner_options import PRUNER_POLICIES

    return _policy_names() + PRUNER_POLICIES


class Range(click.ParamType):
    """A grid option's values as a tuple: ``3..10``, ``3..10:2``, ``0,0.001``, ``1,2,5..8``.

    Parsed by :func:`replay.engine.grid.parse_values`. Its :class:`~replay.engine.grid.GridError`
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


def _range(flag: str, single: bool) -> Range:
    """The values of grid option ``flag`` under the rules the API applies too
    (:data:`replay.api.options.GRID_OPTIONS`: integer, minimum, ``none`` allowed)."""
    from replay.api.options import GRID_OPTIONS

    rules = GRID_OPTIONS[flag[2:].replace("-", "_")]
    return Range(single=single, **{k: v for k, v in rules.items()
                                   if k in ("integer", "minimum", "allow_none")})  # fmt: skip


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


def _grid_options(command: str = "sweep"):
    """The options of a :class:`replay.sweeping.sweep.Grid`, named as its fields, as ``command``
    takes them: ranges with sweep's defaults (``sweep``, ``branch``), or one value each
    with pick's own (``pick``). ``branch`` lists only what its plan reads (EarlyStopping
    and ReduceLROnPlateau: no Prechelt, no ModelCheckpoint).

    Each help text ends with ``Default: ...``, the command's own, as in the README's
    grid table (tests/test_docs_help.py holds them to it and to :class:`Grid`).
    """
    single = command == "pick"
    if command not in ("sweep", "pick", "branch"):
        raise ValueError(f"command must be sweep, pick or branch but got {command!r}.")

    def grid(flag: str, what: str, sweep: str, pick: str | None = None):
        """A grid option: ranges (sweep, branch), or one value (pick)."""
        kind = "" if single else " grid"
        default = pick if single and pick is not None else sweep
        return click.option(
            flag, type=_range(flag, single), help=f"{what}{kind}. Default: {default}."
        )

    def choice(flag: str, what: str, sweep: str, pick: str):
        # pick still parses "both", to refuse it in one line (Grid.for_pick)
        return click.option(flag, type=click.Choice(["yes", "no", "both"]),
                            metavar="[yes|no]" if single else None, callback=_yes_no_both,
                            help=f"{what}. Default: {pick if single else sweep}.")  # fmt: skip

    policy_help = {
        "sweep": "Policies to replay: early_stopping, reduce_lr_on_plateau, prechelt, "
        "early_stopping+reduce_lr_on_plateau, model_checkpoint (comma-separated or "
        "repeated); over a study: median_pruner, percentile_pruner, "
        "successive_halving_pruner, hyperband_pruner, threshold_pruner, patient_pruner. "
        "Default: early_stopping,reduce_lr_on_plateau.",
        "pick": "The one policy to replay: early_stopping, reduce_lr_on_plateau, prechelt, "
        "early_stopping+reduce_lr_on_plateau or model_checkpoint. Default: early_stopping.",
        "branch": "reduce_lr_on_plateau, or early_stopping+reduce_lr_on_plateau (both "
        "callbacks in one fit: the product of the two grids). Default: reduce_lr_on_plateau.",
    }[command]
    monitor_help = {
        "sweep": "Metrics to monitor (comma-separated or repeated). Default: val_loss, or "
        "the one the log's trainer monitored (Hugging Face, Ultralytics).",
        "pick": "The metric to monitor. Default: val_loss, or the one the log's trainer "
        "monitored (Hugging Face, Ultralytics).",
        "branch": "Metrics to monitor (comma-separated or repeated). Default: val_loss.",
    }[command]
    options = [
        click.option(
            "--policy",
            "policies",
            multiple=True,
            callback=_name_list(_sweep_policy_names if command == "sweep" else _policy_names),
            metavar="NAME" if single else "NAME[,NAME...]",
            help=policy_help,
        ),
        click.option(
            "--monitor",
            "monitors",
            multiple=True,
            callback=_name_list(),
            metavar="METRIC" if single else "METRIC[,METRIC...]",
            help=monitor_help,
        ),
        click.option(
            "--mode",
            type=click.Choice(["auto", "min", "max"]),
            default="auto",
            help="Direction of the monitored metric; auto infers it from the name. Default: auto.",
        ),
        grid(
            "--patience",
            "EarlyStopping patience (and ReduceLROnPlateau's unless --lr-patience)",
            "0..10",
            "0 (10 for --policy reduce_lr_on_plateau alone)",
        ),  # fmt: skip
        grid(
            "--min-delta",
            "EarlyStopping min_delta (and ReduceLROnPlateau's unless --lr-min-delta)",
            "0,0.0001,0.001",
            "0",
        ),  # fmt: skip
        grid("--baseline", "EarlyStopping baseline; 'none' allowed", "none"),
        grid("--start-from-epoch", "EarlyStopping start_from_epoch", "0"),
        choice("--restore-best-weights", "EarlyStopping restore_best_weights", "both", "no"),
        grid(
            "--lr-patience",
            "ReduceLROnPlateau patience",
            "--patience",
            "10, or --patience where given (not with the combined policy)",
        ),  # fmt: skip
        grid("--lr-min-delta", "ReduceLROnPlateau min_delta", "--min-delta if given, else 1e-4"),
        grid("--factor", "ReduceLROnPlateau factor", "0.1,0.2,0.5", "0.1"),
        grid("--cooldown", "ReduceLROnPlateau cooldown", "0"),
        grid("--min-lr", "ReduceLROnPlateau min_lr", "0"),
    ]
    options.append(
        click.option(
            "--initial-lr",
            type=float,
            help="Learning rate at epoch 0, needed only when the log has no learning rate. "
            "Default: the log's first learning_rate (or lr)."
            if command != "branch"
            else "The run's learning rate at epoch 0 (a branch continues the recorded "
            "training: another rate is refused). Default: the run's.",
        )
    )
    if command != "branch":  # a branch's plan reads only the two Keras callbacks
        options += [
            grid(
                "--gl-alpha",
                "Prechelt GL alpha",
                "1,2,5",
                "2 (only the criterion given, else GL, is replayed)",
            ),  # fmt: skip
            grid("--pq-alpha", "Prechelt PQ alpha", "0.5,1,2", "1"),
            grid("--up-strips", "Prechelt UP strips", "2,3,4", "3"),
            grid("--strip-length", "Prechelt training strip length", "5"),
            choice(
                "--save-best-only", "ModelCheckpoint save_best_only", "both", "no (Keras's default)"
            ),  # fmt: skip
            grid(
                "--initial-value-threshold",
                "ModelCheckpoint initial_value_threshold; 'none' allowed",
                "none",
            ),  # fmt: skip
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

    def grid(flag: str, what: str, default: str):
        kind = "" if single else " grid"
        return click.option(flag, type=_range(flag, single),
                            help=f"{what}{kind}. Default: {default}.")  # fmt: skip

    options = [
        click.option(
            "--dialect",
            type=click.Choice(DIALECT_NAMES),
            help="Whose callbacks to replay. Default: keras (Keras 3); for a Lightning, Hugging "
            "Face or Ultralytics log, that framework's.",
        ),
        click.option(
            "--dialect-version",
            metavar="VERSION",
            help="One version of the dialect's framework, not a range: tf-keras: 2.6 to 2.21, "
            "e.g. 2.15; hf: 4.47+ or legacy; ultralytics: strict or ties. Default: 2.21; "
            "4.47+; strict.",
        ),
        grid("--threshold", "torch ReduceLROnPlateau threshold", "0.0001"),
        click.option(
            "--threshold-mode",
            multiple=True,
            callback=_name_list(lambda: ("rel", "abs")),
            metavar="rel|abs" if single else "rel|abs|rel,abs",
            help="torch ReduceLROnPlateau threshold_mode: "
            + ("rel or abs" if single else "rel, abs, or both (rel,abs)")
            + ". Default: rel.",
        ),
        grid("--eps", "torch ReduceLROnPlateau eps", "1e-8"),
        click.option(
            "--check-finite/--no-check-finite",
            default=None,
            callback=_flag_tuple,
            help="lightning EarlyStopping check_finite. Default: on.",
        ),
        grid("--stopping-threshold", "lightning stopping_threshold", "none"),
        grid("--divergence-threshold", "lightning divergence_threshold", "none"),  # fmt: skip
        grid("--early-stopping-threshold", "hf early_stopping_threshold", "0"),
        grid(
            "--period",
            "tf-keras ModelCheckpoint period (Keras 2: every period-th epoch)",
            "1",
        ),  # fmt: skip
    ]

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


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


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@_grid_options("sweep")
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
    "(run, setting), or per pruner setting over a study, up to 10,000. An empty or new "
    "DIR; with --force, replaces the "
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
    from replay import api
    from replay.output.writers import check_out_dir, default_out_dir

    runs, pruner_sweep = pop_study_options(runs, opts)
    if pruner_sweep is not None:  # an Optuna study or KerasTuner project under pruners
        return run_pruner_sweep(runs, pruner_sweep, fmt=fmt, out=out, no_charts=no_charts,
                                force=force, tensorboard=tensorboard)  # fmt: skip
    plan = api.plan_sweep(runs, max_settings=max_settings, **opts)
    for note in plan.dialect_notes:
        click.echo(f"note: {note}", err=True)
    check_out_dir(out, force, fmt)
    if tensorboard is not None:
        from replay.output import hparams

        hparams.check_size(plan.sessions)
        hparams.check_dir(tensorboard, force, out, plan.sessions)
    result = plan.run()
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)

    if fmt == "table":
        click.echo(result.table(), nl=False)
    elif out is None:  # csv/json alone on stdout, for a pipe: no folder
        from replay.output.writers import write_csv, write_json

        {"json": write_json, "csv": write_csv}[fmt](result.records, sys.stdout)
    for note in result.result.notes:
        click.echo(f"note: {note}", err=True)
    for line in result.shadow:
        click.echo(line, err=fmt != "table")

    if out is not None or fmt == "table":
        out = default_out_dir(plan.runs) if out is None else out
        refusal = None if no_charts else result.chart_refusal
        if refusal:
            click.echo(f"note: {refusal}", err=True)
        tee = (fmt, sys.stdout) if fmt != "table" else None
        # --out was checked before the sweep, under the user's --force
        written = result.save(out, charts=not no_charts, force=True, tee=tee)
        click.echo(f"wrote {', '.join(written)} to {out}", err=True)
    if tensorboard is not None:
        n = result.to_tensorboard(tensorboard, force=force)
        click.echo(hparams.describe(n, tensorboard), err=True)
    if result.mismatch:
        click.echo("Error: the replay disagrees with real Keras decisions (see above).", err=True)
        sys.exit(SHADOW_MISMATCH_EXIT)


# ----------------------------------------------------------------------------------
# pick


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN")
@_grid_options("pick")
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
    from replay import api

    if copy_to is not None and copy_to.exists():
        raise ReplayError(f"--copy {copy_to}: already exists; pick never overwrites a file.")
    answer = api.pick(run, **opts)
    for w in answer.warnings:
        click.echo(f"warning: {w}", err=True)
    for note in answer.dialect_notes:
        click.echo(f"note: {note}", err=True)
    for line in answer.lines:
        click.echo(line)
    if answer.final_epoch is None:
        return
    for note in answer.notes:
        click.echo(f"note: {note}", err=True)
    try:
        path = answer.checkpoint()
    except CheckpointUnavailable as e:
        click.echo(f"no checkpoint to hand over: {e}")
        if copy_to is not None:
            raise ReplayError(f"--copy {copy_to}: nothing to copy; {e}") from None
        return
    click.echo(f"checkpoint: {path} (sha256 verified)")
    if copy_to is not None:
        answer.copy_checkpoint(copy_to)
        click.echo(f"copied to {copy_to}")


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
    from analysis.formats import is_run_folder, one_run_of_folder
    from replay import api

    if chart is None and show_study(run):  # an Optuna study or KerasTuner project: its trials
        return
    if chart is not None and chart.exists() and chart.is_dir():
        raise ReplayError(f"--chart {chart}: is a directory; give a .png file path.")
    if chart is not None and is_run_folder(run):
        raise ReplayError(f"--chart: {one_run_of_folder(Path(run))} to draw it.")
    summary = api.show(run)
    if chart is not None and len(summary.runs) > 1:
        raise ReplayError(
            f"--chart: {run} holds {len(summary.runs)} trainings; name one as {run}#1 ... "
            f"{run}#{len(summary.runs)} to draw it."
        )
    click.echo(summary.text, nl=False)
    if chart is not None:
        from analysis.charts.sweep import save_figure

        save_figure(summary.figure(), chart)
        click.echo(f"wrote {chart}", err=True)
    if summary.mismatch:
        click.echo("Error: the replay disagrees with real Keras decisions (see above).", err=True)
        sys.exit(SHADOW_MISMATCH_EXIT)


def _add_record_command() -> None:
    from replay.commands.record import record

    cli.add_command(record)


_add_record_command()


def _add_branch_command() -> None:
    from replay.commands.branch import make_command

    cli.add_command(make_command(lambda: _grid_options("branch")))


_add_branch_command()


def main() -> None:
    """Console-script entry point (``replay``)."""
    cli(prog_name="replay")
