"""The import contracts (pyproject.toml, checked by `lint-imports` in make test): the
stage contracts name every package and top-level module of replay/ and analysis/, and
the module-by-module contracts name every module (or a package that holds it), so that
none escapes the layers by being left out, and none names what does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> dict[str, set[str]]:
    """Each layers contract's name -> the modules its layers name."""
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    found = re.findall(r'^name = "([^"]+)"\ntype = "layers"\nlayers = \[\n(.*?)^\]', text,
                       flags=re.S | re.M)  # fmt: skip
    named = {}
    for name, block in found:
        layers = re.findall(r'^    "([^"]+)",', block, flags=re.M)
        named[name] = {m.strip() for layer in layers for m in layer.replace(":", "|").split("|")}
    return named


def _contract(package: str, kind: str) -> set[str]:
    matches = [m for name, m in _contracts().items()
               if name.startswith(package) and kind in name]  # fmt: skip
    assert len(matches) == 1, f"one {kind} contract for {package}"
    return matches[0]


def _exists(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return (path / "__init__.py").is_file() or path.with_suffix(".py").is_file()


@pytest.mark.parametrize("package", ["replay", "analysis"])
def test_every_stage_is_in_a_layer(package):
    top = ROOT / package
    children = {f"{package}.{p.stem}" for p in top.glob("*.py") if p.name != "__init__.py"}
    children |= {f"{package}.{p.name}" for p in top.iterdir() if (p / "__init__.py").is_file()}
    named = _contract(package, "stages")
    assert children - named == set(), "packages or modules left out of the stages"
    assert {m for m in named if not _exists(m)} == set(), "stages naming what does not exist"


@pytest.mark.parametrize("package", ["replay", "analysis"])
def test_every_module_is_in_a_layer(package):
    top = ROOT / package
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in top.rglob("*.py")
        if p.name != "__init__.py"
    }
    named = _contract(package, "module by module")

    def covered(module: str) -> bool:
        parts = module.split(".")
        return any(".".join(parts[:i]) in named for i in range(2, len(parts) + 1))

    assert {m for m in modules if not covered(m)} == set(), "modules left out of the layers"
    assert {m for m in named if not _exists(m)} == set(), "layers naming modules that do not exist"
