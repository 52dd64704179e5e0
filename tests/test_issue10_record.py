"""Issue 10: run.json keeps the data's provenance without the machine's absolute paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.mnist.record import (
    command_option,
    data_provenance,
)

ROOT = Path(__file__).resolve().parents[1]


def test_data_provenance_keeps_the_file_name_not_its_path():
    source = {"kind": "mnist.npz", "origin": "keras-cache",
              "path": "/home/someone/.keras/datasets/mnist.npz", "sha256": "ab",
              "content_sha256": "cd", "split": {"train": 50000}}  # fmt: skip
    assert data_provenance(source, 2000) == {
        "kind": "mnist.npz", "origin": "keras-cache", "file": "mnist.npz", "sha256": "ab",
        "content_sha256": "cd", "split": {"train": 50000}, "train_used": 2000,
    }  # fmt: skip
    assert data_provenance({"origin": "x", "path": None}, 1)["file"] is None


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("run", sorted((ROOT / "sample_logs").glob("*/run.json")), ids=str)
def test_sample_manifests_hold_no_absolute_paths(run):
    manifest = json.loads(run.read_text())
    assert [s for s in _strings(manifest) if s.startswith("/")] == []
    assert manifest["data"]["file"] == "mnist.pkl.gz" and "path" not in manifest["data"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [(["replay", "record", "--data", "m.npz", "--seed", "0"], "m.npz"),
     (["replay", "record", "--data"], None), (["replay", "record"], None), (None, None)],
)  # fmt: skip
def test_resume_finds_the_data_option_in_the_recorded_command(command, expected):
    assert command_option(command, "--data") == expected
