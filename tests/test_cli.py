"""CLI tests, in-process with CliRunner: exit codes and the exact ``Error: ...`` lines."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HEADER, error_line, log_text, make_run, run, write_log


@pytest.fixture
def log(tmp_path) -> Path:
    return write_log(tmp_path / "training.csv")


def test_sweep_writes_results_and_prints_table(log, tmp_path):
    out = tmp_path / "out"
    result = run("sweep", log, "--patience", "1..3", "--out", out, "--no-charts")
    assert result.exit_code == 0, result.output
    assert "EarlyStopping (18 settings, best first)" in result.stdout
    assert "oracle: best test_loss 0.35 at epoch 3" in result.stdout
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 18 + 9  # 3 patience x 3 min_delta x 2 restore; 3 factors x 3
    assert (out / "results.csv").read_text().splitlines()[0].startswith("run,source,policy,")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_sweep_formats_render_the_same_rows(log, tmp_path, fmt):
    result = run("sweep", log, "--patience", "2", "--policy", "early_stopping",
                 "--format", fmt, "--out", tmp_path / fmt, "--no-charts")  # fmt: skip
    assert result.exit_code == 0
    saved = (tmp_path / fmt / f"results.{fmt}").read_text()
    assert result.stdout == saved


def test_out_dir_not_empty_is_refused_and_untouched(log, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run("sweep", log, "--out", out, "--no-charts")
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: --out {out}: directory exists and is not empty; pass --force to overwrite "
        "its results, or choose another directory."
    )
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert run("sweep", log, "--out", out, "--no-charts", "--force").exit_code == 0
    assert (out / "keep.txt").read_text() == "mine"


def bad_inputs(tmp: Path):
    """(args, exact error line or a fragment) for every bad input the issue lists."""
    good = write_log(tmp / "good.csv")
    (tmp / "empty.csv").write_text("")
    (tmp / "header.csv").write_text(HEADER + "\n")
    (tmp / "words.csv").write_text(HEADER + "\n0,0.5,abc,0.4,0.001\n")
    (tmp / "custom.csv").write_text("epoch,val_custom\n0,1.0\n1,0.5\n")
    (tmp / "emptydir").mkdir()
    tb = tmp / "tb" / "validation"
    tb.mkdir(parents=True)
    (tb / "events.out.tfevents.1.host").write_bytes(b"\x00garbage that is not a record")
    rd = tmp / "rundir"
    rd.mkdir()
    (rd / "metrics.csv").write_text(good.read_text())
    (rd / "run.json").write_text('{"schema_version": 1, "name": ')
    esc = tmp / "escape"
    esc.mkdir()
    (esc / "metrics.csv").write_text(good.read_text())
    (esc / "run.json").write_text(json.dumps({
        "schema_version": 1, "name": "escape", "status": "complete",
        "epochs": [{"epoch": 0, "checkpoint": "../../etc/passwd", "sha256": "0" * 64,
                    "bytes": 1, "seconds": 1.0}],
    }))  # fmt: skip
    notdir = tmp / "afile"
    notdir.write_text("x")
    return [
        (["sweep", tmp / "nope.csv"], "nope.csv: no such file or directory; pass a run directory"),
        (["sweep", tmp / "emptydir"], "no recognizable log"),
        (["sweep", tmp / "empty.csv"], "empty"),
        (["sweep", tmp / "header.csv"], "no epochs"),
        (["sweep", tmp / "words.csv"], "'abc' is not a number"),
        (
            ["sweep", good, "--monitor", "val_los"],
            "Error: " + f"{good}: no metric 'val_los' (the log has: loss, val_loss, test_loss, "
            "learning_rate); did you mean 'val_loss'?",
        ),
        (
            ["sweep", tmp / "custom.csv", "--monitor", "val_custom"],
            "Error: cannot infer whether 'val_custom' should be minimized or maximized; "
            "pass mode='min' or mode='max' (--mode min|max).",
        ),
        (
            ["sweep", good, "--patience", "10..3"],
            "Error: --patience: range '10..3' runs backwards; write 3..10.",
        ),
        (
            ["sweep", good, "--patience", "3..x"],
            "Error: --patience: 'x' in '3..x' is not a number.",
        ),
        (
            ["sweep", good, "--patience", "1..9:0"],
            "Error: --patience: step in '1..9:0' must be positive.",
        ),
        (
            ["sweep", good, "--patience", "-1"],
            "Error: --patience: -1 is below the minimum 0 (in '-1').",
        ),
        (
            ["sweep", good, "--factor", "1"],
            "Error: --factor: 1 is out of range; a factor must be > 0 and < 1.",
        ),
        (
            ["sweep", good, "--factor", "0"],
            "Error: --factor: 0 is out of range; a factor must be > 0 and < 1.",
        ),
        (
            [
                "sweep",
                good,
                "--patience",
                "0..99",
                "--min-delta",
                "0..0.999:0.001",
                "--max-settings",
                "1000",
            ],
            "more than --max-settings 1,000",
        ),
        (["sweep", tmp / "tb"], "events.out.tfevents.1.host"),
        (["sweep", rd], "run.json"),
        (["sweep", esc], "checkpoint '../../etc/passwd' goes up with '..'"),
        (["sweep", good, "--out", notdir], f"Error: --out {notdir}: exists and is not a directory"),
        (["sweep", good, "--out", notdir / "sub"], f"{notdir} is not a directory"),
        (
            ["pick", good, "--patience", "1,2"],
            "Error: --patience: pick takes one value but got '1,2'.",
        ),
        (
            ["pick", good, "--policy", "reduce_lr_on_plateau,prechelt"],
            "pick chooses one checkpoint",
        ),
        (
            ["pick", good, "--restore-best-weights", "both"],
            "Error: --restore-best-weights: pick takes yes or no, not both.",
        ),
        (["pick", good, "--monitor", "val_loss,loss"], "pick takes one metric"),
        (
            ["pick", good, "--policy", "prechelt", "--gl-alpha", "1", "--up-strips", "2"],
            "pick takes one Prechelt criterion",
        ),
        (["show", tmp / "nope"], "nope: no such file or directory"),
    ]


def test_bad_input_gives_one_line_error_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = bad_inputs(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    failures = []
    for args, expected in cases:
        result = run(*args)
        line = error_line(result) if result.exit_code else ""
        ok = result.exit_code == 1 and (line == expected or expected in line)
        if not ok:
            failures.append((args, result.exit_code, line or result.output[-300:]))
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert failures == []
    assert after == before  # nothing written: no out/ directory, no results


def test_help_works_with_h_and_shows_examples():
    for args in (["-h"], ["sweep", "-h"], ["pick", "--help"], ["show", "-h"]):
        result = run(*args)
        assert result.exit_code == 0 and "Examples:" in result.output


def test_pick_prints_epoch_and_says_no_checkpoints_for_csv(log):
    result = run("pick", log, "--patience", "2", "--restore-best-weights", "yes")
    assert result.exit_code == 0, result.output
    assert "stopped at epoch 6" in result.stdout
    assert "you end with the weights of epoch 4" in result.stdout
    assert f"no checkpoint to hand over: {log}: a csv log has no checkpoints" in result.stdout


def test_show_summarizes_a_csv(log):
    result = run("show", log)
    assert result.exit_code == 0
    assert "epochs: 10" in result.stdout
    assert "learning rate: constant" in result.stdout
    # val_loss is best (0.34) at epoch 4
    assert any(ln.split()[:3] == ["val_loss", "4", "0.34"] for ln in result.stdout.splitlines())


@pytest.mark.parametrize("args", [["--help"], ["sweep", "--help"], ["show", "--help"],
                                  ["pick", "--help"]])  # fmt: skip
def test_analysis_commands_never_import_tensorflow(args, log, tmp_path):
    code = (
        "import sys\n"
        "from replay.commands.cli import cli\n"
        "try:\n"
        f"    cli({[str(a) for a in args]!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "bad = [m for m in ('tensorflow', 'keras', 'optuna') if m in sys.modules]\n"
        "print('IMPORTED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED []" in out.stdout


def test_sweep_show_pick_runs_never_import_tensorflow(log, tmp_path):
    code = (
        "import sys\n"
        "from replay.commands.cli import cli\n"
        "for args in ([{log!r}, '--out', {out!r}], ):\n"
        "    pass\n"
        "for args in (['sweep', {log!r}, '--out', {out!r}, '--no-charts',\n"
        "              '--tensorboard', {tb!r}],\n"
        "             ['show', {log!r}], ['pick', {log!r}, '--patience', '2']):\n"
        "    try:\n"
        "        cli(args)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "bad = [m for m in ('tensorflow', 'keras', 'optuna') if m in sys.modules]\n"
        "print('IMPORTED', bad)\n"
    ).format(log=str(log), out=str(tmp_path / "o"), tb=str(tmp_path / "o" / "tb"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "IMPORTED []" in out.stdout
    assert (tmp_path / "o" / "tb" / "0000").is_dir()  # the HParams experiment, TF-free


def test_sweep_show_pick_never_import_pandas_or_matplotlib(log, tmp_path):
    """Issue 17 section 5: reading a run directory or a CSVLogger file, sweeping it and
    writing its table, CSV and JSON need neither pandas nor matplotlib (RunLog holds
    numpy arrays; its DataFrames are built on first use)."""
    run_dir = Path(__file__).resolve().parents[1] / "sample_logs" / "mnist-mlp"
    code = (
        "import sys\n"
        "from replay.commands.cli import cli\n"
        "for args in (['sweep', {run!r}, '--out', {out!r}, '--no-charts'],\n"
        "             ['sweep', {log!r}, '--no-charts', '--format', 'json'],\n"
        "             ['sweep', {run!r}, {log!r}, '--no-charts', '--format', 'csv'],\n"
        "             ['show', {run!r}], ['pick', {run!r}, '--patience', '2']):\n"
        "    try:\n"
        "        cli(args)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "bad = [m for m in ('pandas', 'matplotlib') if m in sys.modules]\n"
        "print('IMPORTED', bad)\n"
    ).format(run=str(run_dir), log=str(log), out=str(tmp_path / "o"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "IMPORTED []" in out.stdout
    assert (tmp_path / "o" / "results.csv").is_file()


def test_python_dash_m_replay_works():
    out = subprocess.run([sys.executable, "-m", "replay", "--version"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert "callback-replay" in out.stdout


SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs" / "mnist-mlp"


def copy_sample(tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "mnist-mlp"
    shutil.copytree(SAMPLE, dest)
    return dest


def test_sweep_sample_checks_real_keras_decisions_and_draws_charts(tmp_path):
    out = tmp_path / "out"
    result = run("sweep", SAMPLE, "--patience", "3..10", "--out", out)
    assert result.exit_code == 0, result.output
    assert "mnist-mlp: replay matches 8/8 real Keras decisions" in result.stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["curves.png", "early_stopping.png", "lr_schedules.png", "tradeoff.png"]
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_shadow_mismatch_is_loud_and_exits_3(tmp_path):
    run_dir = copy_sample(tmp_path)
    manifest = json.loads((run_dir / "run.json").read_text())
    es = next(s for s in manifest["shadow"] if s["params"]["patience"] == 2)
    es["stopped_epoch"] = 7  # not what Keras decided
    (run_dir / "run.json").write_text(json.dumps(manifest))
    for args in (["sweep", run_dir, "--out", tmp_path / "o", "--no-charts"], ["show", run_dir]):
        result = run(*args)
        assert result.exit_code == 3
        assert "MISMATCH (a bug in callback-replay)" in result.output
        assert "replay matches 7/8 real Keras decisions" in result.output


def test_multi_run_sweep_aggregates(tmp_path, log):
    other = write_log(tmp_path / "second.csv", n=8)
    result = run("sweep", log, other, "--patience", "1,2", "--policy", "early_stopping",
                 "--out", tmp_path / "o", "--no-charts")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "== across runs (12 settings, best mean regret first) ==" in result.stdout
    header = next(
        ln for ln in result.stdout.splitlines() if ln.startswith("setting") and "runs" in ln
    )
    assert header.split() == ["setting", "runs", "regret", "mean", "[min,", "max]", "95%", "CI",
                              "of", "mean", "best", "in", "epochs", "mean", "censored"]  # fmt: skip


def fake_run_with_checkpoints(tmp_path: Path) -> Path:
    """A run directory of :func:`log_text`'s 10 epochs whose 'checkpoints' are plain bytes
    (``weights of epoch E``) with correct sha256s."""
    return make_run(tmp_path / "run", n=10, metrics=log_text())


def test_pick_verifies_and_copies_the_kept_checkpoint_never_overwriting(tmp_path):
    root = fake_run_with_checkpoints(tmp_path)
    dest = tmp_path / "best.keras"
    args = ["pick", root, "--patience", "2", "--restore-best-weights", "yes", "--copy", dest]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert f"checkpoint: {root / 'checkpoints' / 'epoch-005.keras'} (sha256 verified)" in (
        result.stdout
    )
    assert dest.read_bytes() == b"weights of epoch 4"
    again = run(*args)
    assert again.exit_code == 1
    assert error_line(again) == (
        f"Error: --copy {dest}: already exists; pick never overwrites a file."
    )
    assert dest.read_bytes() == b"weights of epoch 4"


def test_pick_refuses_a_tampered_checkpoint(tmp_path):
    root = fake_run_with_checkpoints(tmp_path)
    (root / "checkpoints" / "epoch-005.keras").write_bytes(b"weights of epoch X")
    result = run("pick", root, "--patience", "2", "--restore-best-weights", "yes")
    assert result.exit_code == 1
    assert "differs from run.json's" in error_line(result)


def test_show_draws_a_chart(tmp_path, log):
    chart = tmp_path / "curves.png"
    result = run("show", log, "--chart", chart)
    assert result.exit_code == 0, result.output
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_show_says_when_a_running_run_has_no_writer(tmp_path):
    """run.json says running, but no process holds the run's lock: show says it stopped."""
    root = make_run(tmp_path / "r", n=3, status="running")
    manifest = json.loads((root / "run.json").read_text())
    del manifest["shadow"]  # the fixture's stands for no real training
    (root / "run.json").write_text(json.dumps(manifest))
    result = run("show", root)
    assert result.exit_code == 0, result.stderr
    assert "epochs: 3   status: running (no process is writing it (it stopped without " in (
        result.stdout
    )
