"""Issue 10: doctests run with the suite; `make` and `replay record` print nothing of
other tools' before our own output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_suite_collects_the_packages_doctests(pytestconfig):
    assert {"replay", "analysis"} <= set(pytestconfig.getini("testpaths"))
    assert pytestconfig.option.doctestmodules


def test_make_filters_setuptools_editable_install_warning():
    makefile = (ROOT / "Makefile").read_text()
    (line,) = [ln for ln in makefile.splitlines() if "pip install" in ln and " -e " in ln]
    assert 'PYTHONWARNINGS="ignore:Editable installation"' in line


@pytest.mark.slow
def test_record_prints_no_tensorflow_start_up_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run(
        [sys.executable, "-m", "replay", "record", "--out", str(tmp_path / "run"),
         "--limit", "256", "--epochs", "1", "--quiet"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Recording {tmp_path / 'run'}\n")
    noise = [ln for ln in out.stderr.splitlines()
             if re.match(r"[IWE]\d{4} |WARNING: All log messages", ln)]  # fmt: skip
    assert noise == []
