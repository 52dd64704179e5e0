"""Issue 10: replay/mnist/data.py works on every numpy pyproject allows (numpy>=1.26)."""

from __future__ import annotations

import ast
import io
import pickle
from pathlib import Path

import numpy as np

from replay.mnist.data import RestrictedUnpickler

DATA_PY = Path(__file__).resolve().parents[1] / "replay" / "mnist" / "data.py"


def test_data_imports_no_numpy_private_module():
    # numpy._core exists from NumPy 2 on, numpy.core is deprecated there: neither may be
    # imported while pyproject allows numpy 1.26.
    tree = ast.parse(DATA_PY.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in modules if m and m.startswith(("numpy._core", "numpy.core"))}


def test_pickles_naming_either_numpy_module_load():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.int64(3))
    raw = pickle.dumps(arrays, protocol=3)  # GLOBAL opcodes: "c<module>\n<name>\n"
    assert b"numpy._core.multiarray\n" in raw
    for module in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        data = raw.replace(b"numpy._core.multiarray\n", module + b"\n")
        loaded = RestrictedUnpickler(io.BytesIO(data)).load()
        assert loaded[0].tolist() == arrays[0].tolist() and loaded[1] == 3
