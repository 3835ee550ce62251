"""Atomic result files: written to a temporary file beside the target, then renamed.

A killed run never leaves a half-written report, table or figure behind. Used by ``sim``,
``nnmap`` and the CLI alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _tmp(path: Path) -> Path:
    # Keep the suffix last: pandas and matplotlib pick the format from it.
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_frame(frame: Any, path: Path) -> None:
    """Write a pandas DataFrame atomically: CSV for ``*.csv``, else Parquet (no index)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    if path.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure atomically, close it and return ``path``."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
