"""Issue 21: the README and docs/*.md are tested. Every ``sh`` and ``python`` block runs,
top to bottom as a new user would follow them, in a fresh folder per file that holds
``sample_logs/``, ``examples/`` and the example inputs the commands name; every ``text``
block marked as output is compared with the output it shows. Blocks marked
``<!-- notest: REASON -->`` are counted by reason below (tests/doc_blocks.py).

``replay`` commands run in process (``tests/conftest.py``'s ``run``); ``python FILE``
runs this interpreter with the checkout on ``PYTHONPATH``. What trains is made tiny
(``--limit``, few epochs): the commands are the README's, the runs are not its 30-epoch
MNIST ones, so their numbers are not compared (the README's outputs are from
``sample_logs/``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import run
from doc_blocks import LANGUAGES, Block, blocks, commands, output_matches

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Why blocks are left out, and how many: a new exclusion has to be added here.
EXCLUDED = {
    "make demo trains MNIST for minutes, make test runs this suite itself": 1,
    "starts TensorBoard's server, which runs until stopped": 2,
    "the output of a Ray worker killed mid-training (tests/test_executor.py kills one)": 1,
    "the output for five full 30-epoch recordings (minutes of training each)": 1,
    "runs the whole suite and the benchmarks (minutes)": 1,
    "needs train.py saved and run with your data (tests/test_branch_own_model.py proves a "
    "recipe's branch)": 1,
}

# Example inputs the documented commands name, from the repository's own logs.
INPUTS = {
    "sample_logs": ROOT / "sample_logs",
    "examples": ROOT / "examples",
    "training.csv": ROOT / "sample_logs" / "mnist-mlp" / "metrics.csv",
    "lightning_logs": ROOT / "tests" / "data" / "formats" / "lightning" / "lightning_logs",
}

# What trains is made tiny: appended to the command (the last value of an option wins).
TINY_RECORD = ["--limit", "256", "--epochs", "3", "--quiet"]
TINY_EXAMPLE = ["--limit", "256", "--epochs", "3"]
SEEDS = {"0..4": "0..1"}  # two seeds stand for five


def _all_blocks() -> list[Block]:
    return [b for path in DOCS for b in blocks(path)]


def test_every_block_says_what_it_is():
    """A fence without a language (or with another one) would hide a command from the
    test; outputs are text blocks."""
    for b in _all_blocks():
        assert b.lang in LANGUAGES, f"{b.where}: ```{b.lang} (use one of {LANGUAGES})"
        if b.marker == "output":
            assert b.lang == "text", f"{b.where}: an output block is ```text"


def test_blocks_left_out_are_counted_by_reason():
    left_out = Counter(b.reason for b in _all_blocks() if b.marker == "notest")
    assert dict(left_out) == EXCLUDED
    runs = [b for b in _all_blocks() if b.lang in ("sh", "python") and b.marker != "notest"]
    assert len(runs) >= 10  # what the doc tests below run (the closing note of issue 21)


def _workspace(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for name, source in INPUTS.items():
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, work / name)
    return work


class _Session:
    """Runs one file's blocks in order in ``work``; keeps the last output."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.last_output: str | None = None
        self.namespace_extras: dict | None = None

    def shell(self, block: Block) -> None:
        for argv in commands(block.text):
            program, args = argv[0], argv[1:]
            if program in ("replay", ".venv/bin/replay"):
                self._replay(block, args)
            elif program in ("python", ".venv/bin/python"):
                self._python_file(block, args)
            else:
                raise AssertionError(
                    f"{block.where}: no way to run {program!r} here; run it in another way "
                    "or mark the block <!-- notest: REASON --> (and count it in EXCLUDED)"
                )

    def _replay(self, block: Block, args: list[str]) -> None:
        if args[:1] == ["record"]:
            args = [SEEDS.get(a, a) for a in args] + TINY_RECORD
        result = run(*args, catch_exceptions=True)
        shown = f"{block.where}: replay {' '.join(args)}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), shown
        assert result.exit_code == 0, shown
        assert "Traceback" not in result.output, shown
        self.last_output = result.output

    def _python_file(self, block: Block, args: list[str]) -> None:
        if args[:1] in (["examples/own_model.py"], ["examples/optuna_study.py"]):
            args = args + TINY_EXAMPLE
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([sys.executable, *args], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{block.where}: python {' '.join(args)}\n{output}"
        self.last_output = output

    def python(self, block: Block) -> None:
        namespace: dict = {"__name__": "__doc_block__"}
        if re.search(r"\b(model|x|y|x_val|y_val|x_test|y_test)\b", block.text):
            namespace.update(_keras_fixtures())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.text, block.where, "exec"), namespace)  # noqa: S102
        self.last_output = printed.getvalue()

    def output(self, block: Block) -> None:
        assert self.last_output is not None, f"{block.where}: output of no command"
        missing = output_matches(block.text, self.last_output)
        assert missing is None, (
            f"{block.where}: the output does not show\n{missing}\n--- it was:\n{self.last_output}"
        )


def _keras_fixtures() -> dict:
    """``model``, ``x``, ``y``, ``x_val``, ... as the README's snippets use them: a small
    compiled Keras model and random MNIST-shaped arrays (a few KB, trains in seconds)."""
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def data(n):
        return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    (x, y), (x_val, y_val), (x_test, y_test) = data(64), data(32), data(32)
    return {"model": model, "x": x, "y": y, "x_val": x_val, "y_val": y_val,
            "x_test": x_test, "y_test": y_test}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_the_documented_commands_and_snippets_run(path, tmp_path, monkeypatch):
    """Every sh and python block of ``path`` runs, in order, and every output block
    matches the output of what ran before it."""
    work = _workspace(tmp_path)
    monkeypatch.chdir(work)
    session = _Session(work)
    ran = compared = 0
    for block in blocks(path):
        if block.marker == "notest":
            continue
        if block.lang == "sh":
            session.shell(block)
            ran += 1
        elif block.lang == "python":
            session.python(block)
            ran += 1
        elif block.marker == "output":
            session.output(block)
            compared += 1
    kept = [b for b in blocks(path) if b.marker != "notest"]
    assert ran == len([b for b in kept if b.lang in ("sh", "python")])
    assert compared == len([b for b in kept if b.marker == "output"])


# ------------------------------------------------------------ the extractor itself


def test_blocks_are_read_with_their_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n\n<!-- notest: trains for hours -->\n```sh\nreplay record\n```\n\n"
        "```sh\nreplay sweep a \\\n    --patience 3  # a comment\n\nreplay show a\n```\n"
        "<!-- output -->\n```text\nline\n```\n```\nbare\n```\n"
    )
    found = blocks(page)
    assert [(b.line, b.lang, b.marker, b.reason) for b in found] == [
        (4, "sh", "notest", "trains for hours"),
        (8, "sh", None, None),
        (15, "text", "output", None),
        (18, "", None, None),
    ]
    assert commands(found[1].text) == [["replay", "sweep", "a", "--patience", "3"],
                                       ["replay", "show", "a"]]  # fmt: skip


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- notest -->\n```sh\nx\n```\n", "notest needs a reason"),
        ("<!-- skip: x -->\n```sh\nx\n```\n", "unknown marker"),
        ("```sh\nx\n", "a fence left open"),
    ],
)
def test_a_malformed_page_is_an_error(tmp_path, text, message):
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(ValueError, match=message):
        blocks(page)


def test_an_output_block_matches_the_stable_part_of_the_output():
    actual = "head\nrow 1\nrow 2\nrow 3\nA long paragraph that the page wraps.\ntail\n"
    assert (
        output_matches("head\nrow 1\n...\nrow 3\nA long paragraph\nthat the page wraps.", actual)
        is None
    )
    assert output_matches("row 3\n...\nhead", actual) == "head"  # order counts
    assert output_matches("head\nrow 2", actual) == "head row 2"  # no gap without ...
