"""benchmarks/real_logs/tally.py and fetch.py (issue 21 item 11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "benchmarks" / "real_logs"


def _py(*args, cwd=REPO):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_tally_says_the_folder_is_missing_and_how_to_fetch(tmp_path):
    p = _py(TOOLS / "tally.py", "--root", tmp_path / "nowhere")
    assert p.returncode != 0
    assert "no such folder" in p.stderr and "fetch.py" in p.stderr
    assert "ok 0" not in p.stdout


def test_default_root_is_beside_the_manifest_and_ignored():
    text = (TOOLS / "tally.py").read_text() + (TOOLS / "fetch.py").read_text()
    assert "/work/" not in text
    assert "/benchmarks/real_logs/logs/" in (REPO / ".gitignore").read_text().splitlines()


def test_no_absolute_path_of_one_machine_in_the_fuzz_run():
    assert "/work/" not in (REPO / "tests/data/fuzz/run/run.json").read_text()


@pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True).returncode,
                    reason="git is not installed")  # fmt: skip
def test_fetch_copies_the_pinned_file_and_folder(tmp_path):
    work = tmp_path / "work"
    (work / "logs" / "version_0").mkdir(parents=True)
    (work / "logs" / "version_0" / "metrics.csv").write_text("epoch,step,val_loss\n0,9,0.5\n")
    (work / "logs" / "version_0" / "events.out.tfevents.1").write_bytes(b"\x00\x01")

    def git(*a):
        return subprocess.run(["git", "-C", str(work), *a], check=True, capture_output=True,
                              text=True).stdout.strip()  # fmt: skip

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "logs")
    commit = git("rev-parse", "HEAD")
    (work / "logs" / "version_0" / "metrics.csv").write_text("changed later\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "later")
    mirror = tmp_path / "mirror" / "someone+logs"
    mirror.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirror / "repo")], check=True)
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text(
        "local_path\tformat\trepo\tpath_in_repo\tcommit\tnotes\n"
        f"a/metrics.csv\tlightning\tsomeone/logs\tlogs/version_0/metrics.csv\t{commit}\t\n"
        f"b/version_0\ttensorboard\tsomeone/logs\tlogs/version_0\t{commit}\t\n"
    )
    root = tmp_path / "root"
    p = _py(TOOLS / "fetch.py", "--root", root, "--manifest", manifest,
            "--mirror", tmp_path / "mirror")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert (root / "a/metrics.csv").read_text() == "epoch,step,val_loss\n0,9,0.5\n"
    assert (root / "b/version_0/events.out.tfevents.1").read_bytes() == b"\x00\x01"
