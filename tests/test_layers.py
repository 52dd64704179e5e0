"""The import contracts (pyproject.toml, checked by `lint-imports` in make test) name
every module of replay/ and analysis/, so that none escapes the layers by being left
out, and name none that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _layered() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    blocks = re.findall(r"^layers = \[\n(.*?)^\]", text, flags=re.S | re.M)
    assert len(blocks) == 2, "one layers contract for replay, one for analysis"
    layers = [m for b in blocks for m in re.findall(r'^    "([^"]+)",', b, flags=re.M)]
    return {m.strip() for layer in layers for m in layer.replace(":", "|").split("|")}


@pytest.mark.parametrize("package", ["replay", "analysis"])
def test_every_module_is_in_a_layer(package):
    top = ROOT / package
    modules = {f"{package}.{p.stem}" for p in top.glob("*.py") if p.name != "__init__.py"}
    modules |= {f"{package}.{p.name}" for p in top.iterdir() if (p / "__init__.py").is_file()}
    named = {m for m in _layered() if m.split(".")[0] == package}
    assert modules - named == set(), "modules left out of the layers"
    assert named - modules == set(), "layers naming modules that do not exist"
