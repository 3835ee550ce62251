"""Local data loading: IDX (gzipped or not), CIFAR-10 pickles, embedded subset, errors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import nnmap.data as data_mod
from nnmap import DataError, load_arrays, load_dataset

torch.set_num_threads(1)


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def _fake_mnist(folder: Path, gz: bool, n_train: int = 20,
                n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, arr in arrays.items():
        _write_idx(folder / name, arr, gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_load_in_order(tmp_path: Path, gz: bool) -> None:
    arrays = _fake_mnist(tmp_path, gz)
    raw = load_arrays("mnist", tmp_path)
    assert raw.x_train.shape == (20, 1, 28, 28) and raw.x_train.dtype == np.uint8
    np.testing.assert_array_equal(raw.x_train[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(raw.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert raw.info.name == "mnist" and raw.info.shape == (1, 28, 28)
    assert raw.info.n_train == 20 and raw.info.n_test == 10
    assert len(raw.info.fingerprint) == 64 and raw.info.source == str(tmp_path)


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    _fake_mnist(tmp_path / "one", True)
    _fake_mnist(tmp_path / "two", True, n_train=21)
    a = load_arrays("mnist", tmp_path / "one").info.fingerprint
    assert a == load_arrays("mnist", tmp_path / "one").info.fingerprint
    assert a != load_arrays("mnist", tmp_path / "two").info.fingerprint


def test_normalisation_uses_fixed_constants(tmp_path: Path) -> None:
    _fake_mnist(tmp_path / "fashion-mnist", True)
    splits = load_dataset("fashion-mnist", tmp_path)  # found in the subfolder
    raw = load_arrays("fashion-mnist", tmp_path)
    x, y = splits.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    expected = (raw.x_train / 255.0 - 0.2860) / 0.3530
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_env_var_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_mnist(tmp_path / "mnist", False)
    monkeypatch.setenv("FLIPCLOCK_DATA", str(tmp_path))
    assert load_arrays("mnist").info.source == str(tmp_path / "mnist")


def test_missing_data_set_is_one_line_naming_the_place(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLIPCLOCK_DATA", raising=False)
    with pytest.raises(DataError) as err:
        load_arrays("mnist", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "t10k-images-idx3-ubyte.gz" in msg
    with pytest.raises(DataError, match=r"FLIPCLOCK_DATA/cifar-10-batches-py"):
        load_arrays("cifar10")
    with pytest.raises(DataError, match=r"Unknown data set 'imagenet'; choose one of"):
        load_arrays("imagenet")


def test_damaged_files_are_data_errors(tmp_path: Path) -> None:
    _fake_mnist(tmp_path, False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03" + b"\0" * 8)
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        load_arrays("mnist", tmp_path)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28)), False)
    raw = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(DataError, match="truncated"):
        load_arrays("mnist", tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_arrays("mnist", tmp_path)


def _fake_cifar(folder: Path, n: int = 6) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_cifar_pickles(tmp_path: Path) -> None:
    _fake_cifar(tmp_path / "cifar-10-batches-py")
    splits = load_dataset("cifar-10", tmp_path)
    x, y = splits.train.tensors
    assert x.shape == (30, 3, 32, 32) and len(y) == 30
    assert splits.info.classes[0] == "airplane" and splits.info.shape == (3, 32, 32)
    assert len(splits.test.tensors[0]) == 6


def test_cifar_loader_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _fake_cifar(folder)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Path("x"), b"labels": []}, f)
    with pytest.raises(DataError, match="is not a CIFAR-10 python batch"):
        load_arrays("cifar10", tmp_path)


def test_embedded_subset() -> None:
    raw = load_arrays("fashion-mnist-subset")
    assert raw.x_train.shape == (4000, 1, 28, 28) and raw.x_test.shape == (1000, 1, 28, 28)
    assert raw.info.name == "fashion-mnist-subset" and raw.info.source.startswith("embedded:")
    assert set(np.unique(raw.y_train)) == set(range(10))
    assert data_mod.EMBEDDED_SUBSET.stat().st_size <= 3_000_000


@pytest.mark.skipif(not (data_mod.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_subset_is_the_head_of_the_debian_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLIPCLOCK_DATA", raising=False)
    full = load_arrays("fashion-mnist")
    sub = load_arrays("fashion-mnist-subset")
    assert full.info.source == str(data_mod.DEBIAN_FASHION_MNIST)
    assert full.x_train.shape == (60000, 1, 28, 28) and full.x_test.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(sub.x_train, full.x_train[:4000])
    np.testing.assert_array_equal(sub.y_test, full.y_test[:1000])
    with np.load(data_mod.EMBEDDED_SUBSET) as z:
        assert str(z["source_fingerprint"]) == full.info.fingerprint


def test_fallback_to_subset_when_nothing_is_installed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLIPCLOCK_DATA", raising=False)
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.warns(UserWarning, match="embedded subset"):
        raw = load_arrays("fashion-mnist")
    assert raw.info.name == "fashion-mnist-subset"
