"""Testbench side of the runner's data exchange: read the JSON config, write ``.npz`` results.

:func:`sim.runner.run_cocotb` writes the configuration to ``<build dir>/tb_config.json`` and
names it in the ``FLIPCLOCK_TB_CONFIG`` environment variable; results go next to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..runner import CONFIG_ENV

__all__ = ["load_config", "result_path", "save_results", "to_signed", "to_unsigned"]


def _config_path() -> Path:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(
            f"{CONFIG_ENV} is not set; run this testbench through sim.runner.run_cocotb"
        )
    return Path(path)


def load_config() -> dict[str, Any]:
    """The configuration :func:`sim.runner.run_cocotb` was given."""
    config: dict[str, Any] = json.loads(_config_path().read_text())
    return config


def result_path(name: str) -> Path:
    """``<build dir>/<name>.npz``, where the caller looks for the results called ``name``."""
    return _config_path().parent / f"{name}.npz"


def save_results(name: str, **arrays: ArrayLike) -> Path:
    """Write ``arrays`` to :func:`result_path` ``(name)`` and return that path."""
    path = result_path(name)
    payload: dict[str, Any] = {key: np.asarray(value) for key, value in arrays.items()}
    np.savez(path, **payload)
    return path


def to_unsigned(value: int, width: int) -> int:
    """The ``width``-bit two's-complement pattern of ``value`` (what is written to a port)."""
    return value & ((1 << width) - 1)


def to_signed(value: int, width: int) -> int:
    """The signed value of the ``width``-bit pattern ``value``."""
    return value - (1 << width) if value >> (width - 1) & 1 else value
