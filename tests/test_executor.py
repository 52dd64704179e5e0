"""`--executor ray`: seeds and branches as Ray tasks, bit for bit the in-process runs.

One local Ray instance (2 CPUs) serves the module. Two seeds are recorded through it
and in-process (``--limit 500 --epochs 8``, as tests/test_branch.py); seed 0 is then
branched for ``RLROP(factor=0.5, patience=1)`` with min_delta 1e-4 and 0.005, which
gives a first-level branch at epoch 6 and a sub-branch of it at epoch 7 (a task that
may start only once its parent's has returned), in-process and on Ray. Faults: a Ray
worker killed mid-epoch leaves its run resumable; the driver names the job and the
command that resumes it, exits non-zero, and that command completes the run
identically.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import error_line, run

from replay.recording.run_writer import (
    COLUMNS,
    read_rows,
)

pytestmark = pytest.mark.slow

TINY = ["--limit", "500", "--epochs", "8", "--quiet"]
SETTING = ["--factor", "0.5", "--lr-patience", "1", "--lr-min-delta", "0.0001,0.005"]
BRANCHES = ["b001-e06-lr0.0005", "b002-e07-lr0.00025"]


def values(run_dir: Path) -> list[list[float]]:
    """metrics.csv rows without epoch_seconds (the one column that is wall time)."""
    return [[row[c] for c in COLUMNS[:-1]] for row in read_rows(run_dir / "metrics.csv")]


def ok(result):
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


@pytest.fixture(scope="module")
def seeds(ray_instance, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seeds")
    shown_epochs = [a for a in TINY if a != "--quiet"]
    local = ok(run("record", "--seeds", "0..1", "--out", root / "local", *shown_epochs)).stdout
    epochs = int(TINY[TINY.index("--epochs") + 1])
    for seed in (0, 1):  # in process, each epoch's line as it is committed, by seed
        shown = [
            ln.split()[3] for ln in local.splitlines() if ln.startswith(f"[seed {seed}] epoch ")
        ]
        assert shown == [f"{e}/{epochs}" for e in range(1, epochs + 1)], local
    on_ray = ok(run("record", "--seeds", "0..1", "--out", root / "ray", *TINY,
                    "--executor", "ray"))  # fmt: skip
    lines = on_ray.stdout.splitlines()
    assert lines[0] == f"Recording 2 seeds into {root / 'ray'} (ray executor)"
    assert sorted(ln.split(" ", 2)[1] for ln in lines[1:]) == ["0]", "1]"]  # one line a seed
    return {"local": root / "local", "ray": root / "ray"}


def test_seeds_on_ray_are_the_in_process_runs_bit_for_bit(seeds):
    for seed in (0, 1):
        local, remote = seeds["local"] / f"seed-{seed}", seeds["ray"] / f"seed-{seed}"
        assert values(remote) == values(local)
        m = json.loads((remote / "run.json").read_text())
        assert m["status"] == "complete" and m["config"]["seed"] == seed
    assert values(seeds["ray"] / "seed-0") != values(seeds["ray"] / "seed-1")
    assert sorted(p.name for p in seeds["ray"].iterdir()) == ["seed-0", "seed-1"]


@pytest.fixture(scope="module")
def local_tree(seeds, tmp_path_factory) -> Path:
    """Seed 0 branched in-process (the reference of the Ray branches)."""
    local = tmp_path_factory.mktemp("tree") / "local"
    shutil.copytree(seeds["local"] / "seed-0", local)
    ok(run("branch", local, *SETTING, "-y"))
    return local


def test_branches_on_ray_are_the_in_process_branches_bit_for_bit(seeds, local_tree, tmp_path):
    local, remote = local_tree, tmp_path / "ray"
    shutil.copytree(seeds["local"] / "seed-0", remote)
    result = ok(run("branch", remote, *SETTING, "-y", "--executor", "ray"))
    for bid in BRANCHES:
        assert values(remote / "branches" / bid) == values(local / "branches" / bid)
        assert f"] {bid} (fork at epoch" in result.stdout
    sub = json.loads((remote / "branches" / BRANCHES[1] / "run.json").read_text())
    assert sub["parent"] == f"../{BRANCHES[0]}" and sub["exactness"]["matched"] is True
    # exactness.json is the driver's: both checks, each once, as in-process
    checks = [json.loads((d / "branches" / "exactness.json").read_text())["checks"]
              for d in (local, remote)]  # fmt: skip
    assert (
        [(c["parent"], c["epoch"]) for c in checks[1]]
        == [(c["parent"], c["epoch"]) for c in checks[0]]
        == [("../..", 6), (f"../{BRANCHES[0]}", 7)]
    )
    assert "2 settings: 0 answered by the recorded run, 2 by branches, exactly" in result.stdout


def test_a_killed_seed_is_reported_with_its_resume_command(ray_instance, seeds, tmp_path,
                                                           monkeypatch):  # fmt: skip
    out = tmp_path / "mlp"
    monkeypatch.setenv("REPLAY_TEST_HOOK", "in_fit@1:kill")  # a SIGKILL of the worker mid-epoch
    monkeypatch.setenv("REPLAY_TEST_HOOK_JOB", "seed-1")
    args = ["record", "--seeds", "0,1", "--out", out, "--limit", "500", "--epochs", "3",
            "--executor", "ray"]  # fmt: skip
    result = run(*args)
    assert error_line(result) == (
        "Error: 1 of 2 seed jobs failed (seeds 1); "
        f"`replay record --seeds 0,1 --out {out} --limit 500 --epochs 3 --executor ray "
        "--resume` resumes them all"
    )
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("[seed 1] FAILED")]
    command = f"replay record --out {out / 'seed-1'} --resume --epochs 3"
    assert line.endswith(f"; resume it with: {command}") and "worker died" in line
    assert f"[seed 0] {out / 'seed-0'}: complete, 3 epochs" in result.stdout
    killed = json.loads((out / "seed-1" / "run.json").read_text())
    # Epoch 0 is committed by the background committer while epoch 1 trains (issue 18): the
    # kill may come before, inside or after that commit; resume takes the run as it is.
    rows = (
        read_rows(out / "seed-1" / "metrics.csv")
        if (out / "seed-1" / "metrics.csv").exists()
        else []
    )
    assert killed["status"] == "running" and len(killed["epochs"]) <= len(rows) <= 1
    monkeypatch.delenv("REPLAY_TEST_HOOK")
    ok(run(*shlex.split(command)[1:]))  # the command the report gave
    assert values(out / "seed-1") == values(seeds["local"] / "seed-1")[:3]
    again = ok(run(*args, "--resume"))  # every seed: the complete ones are left as they are
    assert "(0 trained now)" in again.stdout and "FAILED" not in again.stderr


def test_a_killed_branch_is_reported_and_resumes_to_the_same_tree(
    ray_instance, seeds, local_tree, tmp_path, monkeypatch
):
    remote = tmp_path / "ray"
    shutil.copytree(seeds["local"] / "seed-0", remote)
    monkeypatch.setenv("REPLAY_TEST_HOOK", "after_manifest@6:kill")  # epoch 6 committed
    monkeypatch.setenv("REPLAY_TEST_HOOK_JOB", BRANCHES[0])
    result = run("branch", remote, *SETTING, "-y", "--executor", "ray")
    again = f"replay branch {remote} {shlex.join(SETTING)} -y --executor ray --resume"
    assert error_line(result) == (
        f"Error: 1 branch job failed (each branch keeps its committed epochs); `{again}` resumes it"
    )
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("FAILED: ")]
    assert line.startswith(f"FAILED: branch {BRANCHES[0]} (fork at epoch 6 of the run, lr 0.0005)")
    assert line.endswith(f"; resume it with: {again}")
    killed = json.loads((remote / "branches" / BRANCHES[0] / "run.json").read_text())
    assert killed["status"] == "running" and [e["epoch"] for e in killed["epochs"]] == [6]
    assert not (remote / "branches" / BRANCHES[1]).exists()  # its parent never finished
    monkeypatch.delenv("REPLAY_TEST_HOOK")
    resumed = ok(run(*shlex.split(again)[1:]))
    assert f"{BRANCHES[0]} (fork at epoch 6 of the run, lr 0.0005, 2 settings): found" in (
        resumed.stdout
    )
    for bid in BRANCHES:
        assert values(remote / "branches" / bid) == values(local_tree / "branches" / bid)


def test_ctrl_c_on_ray_is_an_interrupt_with_exit_status_130(ray_instance, tmp_path, monkeypatch):
    """Ctrl-C while the driver waits on Ray stops waiting and says to resume; the command
    exits 130, as an interrupted run in process does."""
    import signal
    import time

    from replay.recording import executor

    def ctrl_c(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, ctrl_c)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    began = time.monotonic()
    try:
        with pytest.raises(executor.JobsInterrupted, match="rerun the same command with --resume"):
            executor.RayExecutor().run([executor.Job("sleepy", time.sleep, (3,))])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - began < 2.5  # it did not wait for the job

    def interrupted(self, jobs, on_done=None):
        raise executor.JobsInterrupted("the jobs still running were stopped")

    monkeypatch.setattr(executor.RayExecutor, "run", interrupted)
    result = run("record", "--seeds", "0,1", "--out", tmp_path / "mlp", "--executor", "ray",
                 *TINY, catch_exceptions=True)  # fmt: skip
    assert result.exit_code == 130
    assert result.stderr.strip() == "Interrupted: the jobs still running were stopped"


def test_ray_needs_absolute_paths_and_local_stays_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("record", "--seeds", "0..1", "--out", "runs/mlp", "--executor", "ray",
                 catch_exceptions=True)  # fmt: skip
    assert error_line(result) == (
        "Error: --out runs/mlp: --executor ray needs an absolute path on a filesystem every "
        "Ray worker can see (a shared filesystem); pass one"
    )
    result = run("branch", "runs/mlp", "--executor", "ray", "-y", catch_exceptions=True)
    assert error_line(result).startswith("Error: RUN runs/mlp: --executor ray needs an absolute")
    assert not (tmp_path / "runs").exists()
    result = run("record", "--seeds", "0,1", "--seed", "2", "--out", "x", catch_exceptions=True)
    assert error_line(result) == (
        "Error: --seed and --seeds cannot be used together (--seeds 3 records one seed)"
    )
    result = run("record", "--out", "x", "--address", "auto", catch_exceptions=True)
    assert error_line(result) == "Error: --address is for --executor ray (the cluster to run on)"
    from replay.recording.executor import LocalExecutor, make_executor

    assert isinstance(make_executor("local"), LocalExecutor)
    help_text = run("record", "--help").stdout
    assert "--executor [local|ray]" in help_text and "[default: local]" in help_text


def test_a_folder_of_seeds_is_refused_without_force_or_resume(tmp_path):
    (tmp_path / "mlp" / "seed-0").mkdir(parents=True)
    (tmp_path / "mlp" / "seed-0" / "x").write_text("")
    result = run("record", "--seeds", "0..1", "--out", tmp_path / "mlp", catch_exceptions=True)
    assert error_line(result) == (
        f"Error: {tmp_path / 'mlp'} already holds runs; pass --force to overwrite its seeds, "
        "or --resume to continue them"
    )
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "run.json").write_text("{}")
    result = run("record", "--seeds", "0", "--out", tmp_path / "one", "--force",
                 catch_exceptions=True)  # fmt: skip
    assert error_line(result) == (
        f"Error: {tmp_path / 'one'} holds a single run (run.json), not a folder of seeds; "
        "pass another --out"
    )


def test_importing_the_executor_imports_no_ray_or_tensorflow():
    import subprocess
    import sys

    code = ("import sys, replay.commands.cli, replay.recording.executor, replay.mnist.seeds; "
            "print(sorted(m for m in ('ray', 'tensorflow') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _UnreachableRay:
    """A Ray whose ``init`` warns (as Ray Client does on a timeout), then cannot connect."""

    calls = 0

    @staticmethod
    def is_initialized() -> bool:
        return False

    @classmethod
    def init(cls, **options):
        import warnings

        cls.calls += 1
        warnings.warn("Ray Client connection timed out.", UserWarning, stacklevel=2)
        raise ConnectionError("ray client connection timeout")


def test_an_unreachable_cluster_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import warnings

    import replay.recording.executor

    monkeypatch.setattr(replay.recording.executor, "_import_ray", lambda: _UnreachableRay)
    out = tmp_path / "mlp"
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = run("record", "--seeds", "0..1", "--out", out, "--executor", "ray",
                     "--address", "ray://head:1", catch_exceptions=True)  # fmt: skip
    assert error_line(result) == (
        "Error: --executor ray: cannot start or reach ray://head:1 (ConnectionError: ray "
        "client connection timeout); check --address (a running cluster's, e.g. "
        "ray://head:10001), or leave it out to start a local Ray instance"
    )
    assert _UnreachableRay.calls == 1 and result.stdout == ""  # refused before the header
    assert not out.exists()
    assert not [w for w in shown if "timed out" in str(w.message)]


def test_ctrl_c_in_process_names_the_command_that_resumes_every_seed(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "mlp"
    argv = ["record", "--seeds", "0..1", "--out", str(out), "--limit", "300", "--epochs", "3",
            "--quiet"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_TEST_HOOK")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", REPLAY_TEST_HOOK="after_manifest@0:interrupt")
    done = subprocess.run([sys.executable, "-m", "replay", *argv], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert (
        f"Interrupted: {out / 'seed-0'} keeps 1 committed epoch(s); continue "
        f"every seed with: replay {shlex.join(argv)} --resume\n"
    ) in done.stderr, done.stderr[-2000:]
    assert not (out / "seed-1").exists()


def test_branching_on_an_unreachable_cluster_writes_no_branches(seeds, tmp_path, monkeypatch):
    import replay.recording.executor

    monkeypatch.setattr(replay.recording.executor, "_import_ray", lambda: _UnreachableRay)
    root = tmp_path / "seed-0"
    shutil.copytree(seeds["local"] / "seed-0", root)
    result = run("branch", root, *SETTING, "-y", "--executor", "ray", "--address",
                 "ray://head:1", catch_exceptions=True)  # fmt: skip
    assert error_line(result).startswith("Error: --executor ray: cannot start or reach ray://")
    assert not (root / "branches").exists()
