"""Build ``nnmap/data/fmnist_subset.npz``: the embedded FashionMNIST subset.

It holds the **first 4000 training images and the first 1000 test images** (file order) of
the official FashionMNIST IDX files, with their labels, as ``uint8`` arrays
``x_train [4000, 1, 28, 28]``, ``y_train [4000]``, ``x_test [1000, 1, 28, 28]``,
``y_test [1000]``, compressed (``np.savez_compressed``), plus ``source_fingerprint`` (the
full set's :class:`nnmap.DatasetInfo` fingerprint) and ``n_train``/``n_test``.

Usage::

    python scripts/make_fmnist_subset.py [--data-dir /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from nnmap.data import DEBIAN_FASHION_MNIST, EMBEDDED_SUBSET, load_arrays

N_TRAIN = 4000
N_TEST = 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=DEBIAN_FASHION_MNIST)
    p.add_argument("--out", type=Path, default=EMBEDDED_SUBSET)
    args = p.parse_args(argv)
    raw = load_arrays("fashion-mnist", args.data_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.stem}.tmp.npz")
    np.savez_compressed(
        tmp,
        x_train=raw.x_train[:N_TRAIN], y_train=raw.y_train[:N_TRAIN].astype(np.uint8),
        x_test=raw.x_test[:N_TEST], y_test=raw.y_test[:N_TEST].astype(np.uint8),
        source_fingerprint=np.array(raw.info.fingerprint),
        n_train=np.array(N_TRAIN), n_test=np.array(N_TEST),
    )
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): first {N_TRAIN} train "
          f"and first {N_TEST} test images of {raw.info.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
