"""Data sets from local files only: FashionMNIST, MNIST (IDX) and CIFAR-10 (python pickles).

Nothing is ever downloaded. A data set is looked for, in this order:

1. the ``data_dir`` argument (a folder holding the files, or a ``fashion-mnist/``,
   ``mnist/`` or ``cifar-10-batches-py/`` subfolder; torchvision's ``FashionMNIST/raw`` and
   ``MNIST/raw`` layouts work too) -- when given, nothing else is tried;
2. the folder named by the environment variable ``FLIPCLOCK_DATA`` (same layout);
3. for FashionMNIST, Debian's ``/usr/share/datasets/fashion-mnist`` (package
   ``dataset-fashion-mnist``);
4. for FashionMNIST, the subset embedded in the package (``nnmap/data/fmnist_subset.npz``,
   built by ``scripts/make_fmnist_subset.py``: the first 4000 training and first 1000 test
   images of the Debian files), with a warning. Ask for ``"fashion-mnist-subset"`` to get it
   on purpose.

IDX files may be gzipped (``*.gz``) or not.

Normalisation
-------------
``load_dataset`` returns ``float32`` images ``x = (pixel / 255 - mean) / std`` per channel,
with the fixed training-set statistics in :data:`NORMALIZATION` (the embedded subset uses the
full set's constants, so a model sees the same input scale whichever source was found).
``load_arrays`` returns the raw ``uint8`` pixels.

Fingerprint
-----------
``DatasetInfo.fingerprint`` is the SHA-256 of the list of ``role:sha256(file bytes)`` lines
of the files read (as stored, compressed or not). Checkpoint caches key on it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import TensorDataset

from .errors import NNMapError

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST",
    "NORMALIZATION",
    "DataError",
    "DataSplits",
    "DatasetInfo",
    "RawSplits",
    "load_arrays",
    "load_dataset",
    "normalize",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
EMBEDDED_SUBSET = Path(__file__).parent / "data" / "fmnist_subset.npz"
ENV_VAR = "FLIPCLOCK_DATA"

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
DIGITS = tuple(str(i) for i in range(10))
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")

#: ``name -> (mean, std)`` per channel, applied after ``pixel / 255``.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "fashion-mnist-subset": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

#: Accepted names and their canonical form.
DATASETS: dict[str, str] = {
    "fashion-mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
    "fashion-mnist-subset": "fashion-mnist-subset", "fmnist-subset": "fashion-mnist-subset",
    "mnist": "mnist",
    "cifar10": "cifar10", "cifar-10": "cifar10",
}

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_SUBFOLDERS = {
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
    "mnist": ("mnist", "MNIST/raw", "MNIST"),
    "cifar10": ("cifar-10-batches-py",),
}
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


class DataError(NNMapError):
    """A data set is missing or damaged (the message says where to put the files)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What was loaded and from where.

    Parameters
    ----------
    name:
        Canonical name: ``fashion-mnist``, ``fashion-mnist-subset``, ``mnist``, ``cifar10``.
    shape:
        ``(channels, height, width)`` of one image.
    classes:
        Class names, indexed by label.
    source:
        The folder (or embedded file) the images came from.
    fingerprint:
        SHA-256 over the files read (see the module docstring).
    n_train, n_test:
        Number of training and test images.
    mean, std:
        Per-channel normalisation constants (after ``pixel / 255``).
    """

    name: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    source: str
    fingerprint: str
    n_train: int
    n_test: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists)."""
        return asdict(self)


@dataclass(frozen=True)
class RawSplits:
    """``uint8`` images ``[N, C, H, W]`` and ``int64`` labels ``[N]`` of both splits."""

    x_train: npt.NDArray[np.uint8]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.uint8]
    y_test: npt.NDArray[np.int64]
    info: DatasetInfo


@dataclass(frozen=True)
class DataSplits:
    """Normalised ``float32`` tensors as ``TensorDataset(x, y)`` of both splits."""

    train: TensorDataset
    test: TensorDataset
    info: DatasetInfo


# --- public entry points -------------------------------------------------------------------
def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> DataSplits:
    """Load a data set as normalised tensors.

    Parameters
    ----------
    name:
        ``"fashion-mnist"``, ``"fashion-mnist-subset"``, ``"mnist"`` or ``"cifar10"``
        (aliases in :data:`DATASETS`).
    data_dir:
        Folder to read from; when ``None`` the search order of the module docstring applies.

    Returns
    -------
    DataSplits
        ``train`` and ``test`` as ``TensorDataset(float32 [N, C, H, W], int64 [N])`` and the
        :class:`DatasetInfo`.

    Raises
    ------
    DataError
        The files are not found or are damaged.
    """
    raw = load_arrays(name, data_dir)
    info = raw.info
    train = TensorDataset(normalize(raw.x_train, info), torch.from_numpy(raw.y_train))
    test = TensorDataset(normalize(raw.x_test, info), torch.from_numpy(raw.y_test))
    return DataSplits(train=train, test=test, info=info)


def load_arrays(name: str, data_dir: str | os.PathLike[str] | None = None) -> RawSplits:
    """Load a data set as raw ``uint8`` arrays (see :func:`load_dataset`)."""
    canon = DATASETS.get(name.lower())
    if canon is None:
        raise DataError(f"Unknown data set {name!r}; choose one of "
                        f"{', '.join(sorted(set(DATASETS.values())))}")
    if canon == "fashion-mnist-subset":
        return _load_subset()
    folders = _candidate_folders(canon, data_dir)
    if canon == "cifar10":
        for folder in folders:
            if all((folder / f).is_file() for f in (*_CIFAR_TRAIN, "test_batch")):
                return _load_cifar(folder)
    else:
        for folder in folders:
            files = _idx_files(folder)
            if files is not None:
                return _load_idx(canon, folder, files)
        if canon == "fashion-mnist" and data_dir is None and EMBEDDED_SUBSET.is_file():
            warnings.warn("FashionMNIST files not found; using the embedded subset (4000 train, "
                          "1000 test images). Install dataset-fashion-mnist for the full set.",
                          stacklevel=2)
            return _load_subset()
    raise DataError(_missing_message(canon, data_dir))


def normalize(x: npt.NDArray[np.uint8], info: DatasetInfo) -> torch.Tensor:
    """``float32 (x / 255 - mean) / std`` per channel, for ``uint8 [N, C, H, W]`` images."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(255.0)
    mean = torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1)
    return t.sub_(mean).div_(std)


# --- search --------------------------------------------------------------------------------
def _candidate_folders(canon: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    else:
        env = os.environ.get(ENV_VAR)
        if env:
            roots.append(Path(env))
    folders = [sub for root in roots for sub in
               (root, *(root / s for s in _SUBFOLDERS[canon]))]
    if canon == "fashion-mnist" and data_dir is None:
        folders.append(DEBIAN_FASHION_MNIST)
    return folders


def _idx_files(folder: Path) -> dict[str, Path] | None:
    found: dict[str, Path] = {}
    for role, stem in _IDX_FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            return None
    return found


def _missing_message(canon: str, data_dir: str | os.PathLike[str] | None) -> str:
    where = (f"in {str(data_dir)!r}" if data_dir is not None
             else f"in $FLIPCLOCK_DATA/{_SUBFOLDERS[canon][0]}/")
    if canon == "cifar10":
        return (f"CIFAR-10 not found: put the python batches (data_batch_1..5, test_batch) "
                f"{where} (cifar-10-python.tar.gz, extracted)")
    files = ", ".join(f"{s}.gz" for s in _IDX_FILES.values())
    hint = " or install Debian's dataset-fashion-mnist" if canon == "fashion-mnist" else ""
    return f"{canon} not found: put {files} {where}{hint}"


# --- readers -------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{str(path)!r} is not a valid gzip file ({exc}); "
                            "replace it with a fresh copy") from None
    return raw


def _parse_idx(path: Path, ndim: int) -> npt.NDArray[np.uint8]:
    data = _read_bytes(path)
    if len(data) < 4 + 4 * ndim or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != ndim:
        raise DataError(f"{str(path)!r} is not an unsigned-byte IDX file with {ndim} "
                        "dimension(s); replace it with a fresh copy")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{str(path)!r} is truncated ({body.size} of {int(np.prod(dims))} "
                        "bytes); replace it with a fresh copy")
    return body.reshape(dims).copy()  # frombuffer is read-only


def _fingerprint(files: Sequence[tuple[str, Path]]) -> str:
    lines = []
    for role, path in files:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        lines.append(f"{role}:{h.hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _load_idx(canon: str, folder: Path, files: dict[str, Path]) -> RawSplits:
    x_train = _parse_idx(files["train_images"], 3)[:, None]
    x_test = _parse_idx(files["test_images"], 3)[:, None]
    y_train = _parse_idx(files["train_labels"], 1).astype(np.int64)
    y_test = _parse_idx(files["test_labels"], 1).astype(np.int64)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DataError(f"Image and label files in {str(folder)!r} disagree on the number of "
                        "images; replace them with fresh copies")
    classes = FASHION_CLASSES if canon == "fashion-mnist" else DIGITS
    info = _info(canon, x_train, x_test, classes, str(folder),
                 _fingerprint(sorted(files.items())))
    return RawSplits(x_train, y_train, x_test, y_test, info)


def _info(canon: str, x_train: npt.NDArray[np.uint8], x_test: npt.NDArray[np.uint8],
          classes: tuple[str, ...], source: str, fingerprint: str) -> DatasetInfo:
    mean, std = NORMALIZATION[canon]
    c, h, w = x_train.shape[1:]
    return DatasetInfo(name=canon, shape=(int(c), int(h), int(w)), classes=classes,
                       source=source, fingerprint=fingerprint, n_train=len(x_train),
                       n_test=len(x_test), mean=mean, std=std)


def _load_subset() -> RawSplits:
    if not EMBEDDED_SUBSET.is_file():
        raise DataError(f"Embedded subset {str(EMBEDDED_SUBSET)!r} is missing; rebuild it with "
                        "`python scripts/make_fmnist_subset.py`")
    with np.load(EMBEDDED_SUBSET) as z:
        x_train, y_train = z["x_train"], z["y_train"].astype(np.int64)
        x_test, y_test = z["x_test"], z["y_test"].astype(np.int64)
    info = _info("fashion-mnist-subset", x_train, x_test, FASHION_CLASSES,
                 f"embedded:{EMBEDDED_SUBSET.name}",
                 _fingerprint([("subset", EMBEDDED_SUBSET)]))
    return RawSplits(x_train, y_train, x_test, y_test, info)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The CIFAR-10 batches are pickles: allow only what they need (numpy arrays)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(path: Path) -> dict[Any, Any]:
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{str(path)!r} is not a CIFAR-10 python batch ({exc}); "
                        "replace it with a fresh copy of cifar-10-python.tar.gz") from None
    if not isinstance(obj, dict):
        raise DataError(f"{str(path)!r} is not a CIFAR-10 python batch; replace it")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    d = _unpickle(path)
    try:
        x = np.asarray(d["data"], np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d["labels"], np.int64)
    except (KeyError, ValueError) as exc:
        raise DataError(f"{str(path)!r} lacks CIFAR-10 data or labels ({exc}); "
                        "replace it with a fresh copy") from None
    if len(x) != len(y):
        raise DataError(f"{str(path)!r} has {len(x)} images but {len(y)} labels; replace it")
    return x, y


def _load_cifar(folder: Path) -> RawSplits:
    parts = [_cifar_batch(folder / f) for f in _CIFAR_TRAIN]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = _cifar_batch(folder / "test_batch")
    names = [(f, folder / f) for f in (*_CIFAR_TRAIN, "test_batch")]
    info = _info("cifar10", x_train, x_test, CIFAR_CLASSES, str(folder), _fingerprint(names))
    return RawSplits(x_train, y_train, x_test, y_test, info)
