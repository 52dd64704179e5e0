"""Fetch the logs listed in MANIFEST.tsv, each at its pinned commit, into logs/ beside it.

Each row names a public GitHub repository, a commit and a path in it (a file, a folder
such as a TensorBoard log directory, or ``folder/events.out.tfevents.*``: the files of a
folder that match a pattern); the path is copied to ``logs/LOCAL_PATH``.
Needs ``git`` and a network that reaches github.com: each repository is cloned once,
bare and without file contents (``--filter=blob:none``), into ``logs/.git-cache/``, and
only the blobs of the listed paths are fetched. ``--mirror DIR`` reads repositories
from local bare copies instead (``DIR/OWNER+NAME/repo``), with no network.

    python benchmarks/real_logs/fetch.py                 # then: tally.py
    python benchmarks/real_logs/fetch.py --only lightning/ --force

Logs already present are kept (``--force`` fetches them again). Exit 1 when some log
could not be fetched (each one is named on stderr).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE / "logs"


def git(git_dir: Path, *args: str) -> bytes:
    """``git --git-dir GIT_DIR ARGS`` (stdout bytes); raises CalledProcessError."""
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True
    ).stdout


def repository(repo: str, commit: str, root: Path, mirror: Path | None) -> Path:
    """A git directory that holds ``commit`` of ``repo``."""
    if mirror is not None:
        copy = mirror / repo.replace("/", "+") / "repo"
        return copy / ".git" if (copy / ".git").is_dir() else copy
    cache = root / ".git-cache" / (repo.replace("/", "+") + ".git")
    if not cache.is_dir():
        cache.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", "--filter=blob:none",
             f"https://github.com/{repo}.git", str(cache)],
            check=True, capture_output=True,
        )  # fmt: skip
    try:
        git(cache, "cat-file", "-e", f"{commit}^{{commit}}")
    except subprocess.CalledProcessError:  # a commit off the default branch (a PR ref)
        git(cache, "fetch", "--quiet", "--filter=blob:none", "origin", commit)
    return cache


def export(git_dir: Path, commit: str, path: str, dest: Path) -> int:
    """Copy ``path`` (a file, a folder, or ``folder/pattern`` for the files of a folder
    that match a glob pattern) at ``commit`` to ``dest``; return how many files."""
    pattern = None
    if any(c in path for c in "*?["):
        path, pattern = path.rsplit("/", 1)
    names = git(git_dir, "ls-tree", "-r", "--name-only", commit, "--", path).decode()
    files = [n for n in names.splitlines() if n]
    if pattern is not None:
        files = [n for n in files if fnmatch.fnmatchcase(n.rsplit("/", 1)[-1], pattern)]
    if not files:
        raise FileNotFoundError(f"{path} is not in {commit[:12]}")
    for name in files:
        target = dest if name == path else dest / Path(name).relative_to(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git(git_dir, "cat-file", "blob", f"{commit}:{name}"))
    return len(files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where the logs go")
    ap.add_argument("--manifest", type=Path, default=HERE / "MANIFEST.tsv")
    ap.add_argument("--mirror", type=Path, help="local bare copies: DIR/OWNER+NAME/repo")
    ap.add_argument("--only", default="", help="fetch the rows whose local_path starts so")
    ap.add_argument("--force", action="store_true", help="fetch logs already present again")
    args = ap.parse_args()
    with args.manifest.open(newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t")
                if r["local_path"].startswith(args.only)]  # fmt: skip
    failed = 0
    for row in rows:
        dest = args.root / row["local_path"]
        if dest.exists() and not args.force:
            continue
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        try:
            g = repository(row["repo"], row["commit"], args.root, args.mirror)
            n = export(g, row["commit"], row["path_in_repo"], dest)
        except (subprocess.CalledProcessError, OSError) as e:
            failed += 1
            detail = e.stderr.decode(errors="replace").strip() if hasattr(e, "stderr") else e
            print(f"{row['local_path']}: not fetched ({row['repo']}@{row['commit'][:12]}): "
                  f"{detail}", file=sys.stderr)  # fmt: skip
            continue
        print(f"{row['local_path']}\t{n} file(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
