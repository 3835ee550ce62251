"""Reading a previous-input histogram (``errtable --prev FILE``): a ``.npy`` array or a
one-column CSV of non-negative weights. Any file gives weights or one :class:`HistogramError`
line, never a traceback; the length is checked against the design by
:meth:`sim.engine.PrevWeights.arrays`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .engine import PrevWeights
from .errors import SimError

__all__ = ["HistogramError", "read_prev_weights"]


class HistogramError(SimError, ValueError):
    """A previous-input histogram file that cannot be used."""


def read_prev_weights(path: str | os.PathLike[str], kind: str) -> PrevWeights:
    """The histogram in ``path`` as :class:`PrevWeights` of ``kind``."""
    p = Path(path)
    hint = "give a .npy array or a one-column CSV of non-negative weights"
    if not p.is_file():
        raise HistogramError(f"Previous-input histogram {str(p)!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty CSV warns; it is refused below
            data = (np.load(p, allow_pickle=False) if p.suffix == ".npy"
                    else np.loadtxt(p, delimiter=",", ndmin=1))
        arr = np.asarray(data, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 -- numpy's parsers raise many types on bad bytes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HistogramError(f"Cannot read previous-input histogram {str(p)!r} ({first}); "
                             f"{hint}") from None
    if arr.ndim > 1 and sum(d > 1 for d in arr.shape) > 1:
        raise HistogramError(f"Previous-input histogram {str(p)!r} has shape {arr.shape}; "
                             f"{hint}")
    arr = arr.ravel()
    if arr.size == 0:
        raise HistogramError(f"Previous-input histogram {str(p)!r} is empty; {hint}")
    if not np.isfinite(arr).all() or (arr < 0).any() or arr.sum() <= 0:
        raise HistogramError(f"Previous-input histogram {str(p)!r} must hold finite, "
                             "non-negative weights that are not all zero")
    return PrevWeights(kind, tuple(float(x) for x in arr))
