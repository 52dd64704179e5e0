"""Issue 21: the help is tested. Every command's ``--help`` lists only the options it
uses, each with the default the README's tables give for that command, and those
defaults are the ones the command applies (:class:`replay.sweeping.sweep.Grid`)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from replay.commands.cli import cli
from replay.engine.grid import GridError, parse_values
from replay.sweeping.sweep import Grid

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
README_FLAT = " ".join(README.split())  # a backticked `--executor local` may wrap
GRID_COMMANDS = ("sweep", "branch", "pick")


def _grid_table() -> dict[str, dict[str, str]]:
    """The README's grid table: option -> {command: its default cell}."""
    lines = README.splitlines()
    start = lines.index("| option | policy | sweep | branch | pick |")
    table = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        option = re.match(r"`(--[a-z-]+)", cells[0]).group(1)
        table[option] = dict(zip(GRID_COMMANDS, cells[2:], strict=True))
    return table


TABLE = _grid_table()


def _plain(text: str) -> str:
    """A default as text, without Markdown backticks or line breaks."""
    return " ".join(text.replace("`", "").split())


def _options(command: str) -> dict[str, click.Option]:
    """A command's options by their first long name (``--check-finite``, not ``-y``)."""
    params = cli.commands[command].params
    return {next(o for o in p.opts if o.startswith("--")): p
            for p in params if isinstance(p, click.Option) and p.name != "help"}  # fmt: skip


def _help_default(option: click.Option) -> str | None:
    """What an option's help says its default is (``Default: X.``), else None."""
    m = re.search(r"Default: (.*)\.$", option.help or "")
    return _plain(m.group(1)) if m else None


def test_the_grid_table_has_every_grid_option_of_each_command():
    assert len(TABLE) >= 30
    for command in GRID_COMMANDS:
        options = _options(command)
        for option, cells in TABLE.items():
            if cells[command] == "-":  # not an option of this command
                assert option not in options, f"{command} --help lists {option}"
            else:
                assert option in options, f"{command} --help lacks {option} (README table)"


@pytest.mark.parametrize("command", GRID_COMMANDS)
def test_each_grid_option_gives_the_readmes_default_for_its_command(command):
    """Each grid option's help ends with ``Default: X.``, X as in the README's column
    of that command (was: pick's help gave sweep's grids, branch's help "both for
    sweep, no for pick")."""
    options = _options(command)
    for option, cells in TABLE.items():
        if cells[command] == "-":
            continue
        said = _help_default(options[option])
        assert said is not None, f"{command} {option}: its help names no default"
        assert said == _plain(cells[command]), (command, option)


def test_no_help_text_describes_another_command():
    for command in GRID_COMMANDS:
        for name, option in _options(command).items():
            text = option.help or ""
            assert "for sweep" not in text and "for pick" not in text, (command, name)
            if command == "pick":  # one value each: no "grid", no range metavar
                assert " grid" not in text and "e.g. 3..10" not in text, name
                assert "RANGE" not in " ".join(option.get_help_record(click.Context(
                    cli.commands["pick"]))[0:1]), name  # fmt: skip


# The fields a None in Grid stands for (the dialect's default, applied where it is used).
NONE_MEANS = {"threshold": (0.0001,), "period": (1,)}
CHOICES = {"both": (False, True), "yes": (True,), "no": (False,), "on": (True,)}


def _given_value(option: click.Option, text: str):
    """The value a default's text names, as Grid holds it; None when the text names
    another option or the log (``--patience``, ``the log's ...``)."""
    token = text.split(" ")[0].rstrip(",;")
    if token.startswith("-") or token in ("the", "val_loss"):
        return None
    if token in CHOICES:
        return CHOICES[token]
    if option.name in ("policies", "threshold_mode"):
        return tuple(token.split(","))
    if option.name in ("dialect", "dialect_version", "mode"):
        return token
    rules = option.type.rules if hasattr(option.type, "rules") else {}
    try:
        return tuple(parse_values(token, option.opts[0], **rules))
    except GridError:
        raise AssertionError(f"{option.opts[0]}: default {text!r} is no value") from None


@pytest.mark.parametrize(
    "command, grid",
    [
        ("sweep", Grid.from_options()),
        ("branch", Grid.from_options(Grid(policies=("reduce_lr_on_plateau",)))),
        ("pick", Grid.for_pick()),
    ],
)
def test_the_defaults_the_help_gives_are_the_ones_applied(command, grid):
    checked = 0
    for option in _options(command).values():
        said = _help_default(option)
        if said is None or not hasattr(grid, option.name):
            continue
        value = _given_value(option, said)
        if value is None:
            continue
        applied = getattr(grid, option.name)
        if option.name == "dialect_version":  # tf-keras's, the first one named
            applied = Grid.from_options(dialect="tf-keras").dialect_version
        elif applied is None:
            applied = NONE_MEANS[option.name]
        assert value == applied, (command, option.opts[0], said, applied)
        checked += 1
    assert checked >= {"sweep": 24, "branch": 10, "pick": 24}[command], checked


def _in_readme(flag: str) -> bool:
    """``flag`` (``--epochs``, ``-y``) as a word of the README."""
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", README_FLAT) is not None


def _readme_says(option: str, default) -> bool:
    """The README shows ``option`` with ``default`` (`--epochs 30`, `--model mlp|cnn`)."""
    for value in re.findall(rf"`{re.escape(option)} ([^`]+)`", README_FLAT):
        first = value.split("|")[0].strip("\"'")
        try:
            if float(first) == float(default):
                return True
        except (TypeError, ValueError):
            if first == str(default):
                return True
    return False


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_option_of_every_command_is_in_the_readme_with_its_default(command):
    """Every option in ``--help`` appears in the README; one whose help shows a default
    (``[default: 30]``) appears with it (`--epochs 30`)."""
    for name, option in _options(command).items():
        assert any(_in_readme(flag) for flag in option.opts), f"{command} {name}"
        for flag in option.secondary_opts:  # --no-check-finite
            assert _in_readme(flag), f"{command} {flag}"
        if option.show_default and not option.is_flag and option.default is not None:
            assert _readme_says(name, option.default), f"{command} {name} {option.default}"


def _help_examples(command: click.Command) -> list[list[str]]:
    """The ``replay ...`` lines of a command's ``Examples:`` block, as argument lists."""
    import shlex

    text = re.sub(r"\\\n\s*", " ", (command.help or "").split("Examples:", 1)[-1])
    return [shlex.split(line.strip(), comments=True)[1:]
            for line in text.splitlines() if line.strip().startswith("replay ")]  # fmt: skip


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_help_example_parses(command):
    """Each example of ``replay CMD --help`` is a valid command line of CMD: its options
    exist and its values parse (nothing runs)."""
    examples = _help_examples(cli.commands[command])
    assert examples, f"{command} --help shows no example"
    for argv in examples:
        assert argv[0] == command, argv
        cli.commands[command].make_context(command, argv[1:])


def test_every_example_of_replay_help_parses():
    examples = _help_examples(cli)
    assert len(examples) >= 4
    for argv in examples:
        cli.commands[argv[0]].make_context(argv[0], argv[1:])
    with pytest.raises(click.NoSuchOption):  # the check can fail
        cli.commands["sweep"].make_context("sweep", ["RUN", "--no-such-option"])
