"""The import contract (pyproject.toml, checked by `lint-imports` in make test) names
every module of replay/, so that none escapes the layers by being left out."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_replay_module_is_in_a_layer():
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    (block,) = re.findall(r"^layers = \[\n(.*?)^\]", text, flags=re.S | re.M)
    layers = re.findall(r'^    "([^"]+)",', block, flags=re.M)
    named = {m.strip() for layer in layers for m in layer.replace(":", "|").split("|")}
    modules = {f"replay.{p.stem}" if p.name != "__init__.py" else f"replay.{p.parent.name}"
               for p in (ROOT / "replay").glob("*.py") if p.name != "__init__.py"}  # fmt: skip
    modules |= {f"replay.{p.name}" for p in (ROOT / "replay").iterdir()
                if (p / "__init__.py").is_file()}  # fmt: skip
    assert modules - named == set(), "modules left out of the layers"
    assert named - modules == set(), "layers naming modules that do not exist"
