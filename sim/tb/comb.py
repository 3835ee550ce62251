"""cocotb testbench: a combinational multiplier-like module, operand pair by operand pair.

The DUT has ports ``a``, ``b`` (signed, ``width`` bits) and ``p`` (signed, ``2 * width``).
Each pair is written, the testbench waits ``step`` ticks (the design must have no delays, or
delays that settle within ``step``), and reads ``p``.  One cocotb step per pair is fast enough:
65,536 pairs take 1.6-3 s on Icarus and 0.6-2 s on Verilator (2-core machine), so no
multi-lane wrapper is needed.

Config keys (JSON, see :mod:`sim.tb._io`):

``width`` (int)
    Operand width ``W``.
``a``, ``b`` (lists of int, optional)
    Signed operand pairs to apply, in order; when both are absent every pair is applied,
    ``a`` in the outer loop, both from ``-2**(W-1)`` upwards.
``step`` (int, default 1)
    Ticks between writing a pair and reading ``p``.
``check_product`` (bool, default true)
    Also assert ``p`` against the expected output here (turn off for approximate designs).
``expected`` (list of int, optional)
    The expected output of each pair -- the design's own settled output from its
    zero-delay netlist; without it the signed product ``a * b`` is expected (the Booth
    multipliers' specification).

Results: ``comb.npz`` with int64 arrays ``a``, ``b``, ``p`` (``p`` read as signed).
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import Timer

from ._io import load_config, save_results, to_signed

RESULTS = "comb"


def operand_pairs(config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs the config asks for: the given lists, or all of them."""
    width = int(config["width"])
    if "a" in config or "b" in config:
        a = np.asarray(config["a"], dtype=np.int64)
        b = np.asarray(config["b"], dtype=np.int64)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"Config a and b must be equal-length lists, got {a.shape}, {b.shape}")
        return a, b
    values = np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)
    a, b = np.meshgrid(values, values, indexing="ij")
    return a.ravel(), b.ravel()


@cocotb.test()
async def comb_pairs(dut: Any) -> None:
    """Apply every configured pair and record ``p``."""
    config = load_config()
    width = int(config["width"])
    step = int(config.get("step", 1))
    a, b = operand_pairs(config)
    mask = (1 << width) - 1
    out_width = 2 * width
    p = np.empty_like(a)
    last_a = None
    for i, (ai, bi) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        if ai != last_a:
            dut.a.value = ai & mask
            last_a = ai
        dut.b.value = bi & mask
        await Timer(step, unit="ps")
        p[i] = to_signed(int(dut.p.value), out_width)
    save_results(RESULTS, a=a, b=b, p=p)
    if config.get("check_product", True):
        want = (np.asarray(config["expected"], dtype=np.int64) if "expected" in config
                else a * b)
        bad = np.flatnonzero(p != want)
        assert bad.size == 0, (
            f"{bad.size} of {a.size} outputs wrong, first: a={a[bad[0]]}, b={b[bad[0]]} "
            f"gave {p[bad[0]]}, expected {want[bad[0]]}"
        )
