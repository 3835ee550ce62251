"""cocotb testbench: the registered multiplier (``clk``, ``rst``; ``p = a * b`` two edges later).

Operands are written at falling edges (one pair per cycle, back to back) and ``p`` is read at
falling edges; the pair written at falling edge ``k`` is captured into the operand registers
at the next rising edge and its product into ``p`` at the one after, so it is read at falling
edge ``k + 2``.

Config keys (JSON, see :mod:`sim.tb._io`):

``width`` (int)
    Operand width ``W``.
``a``, ``b`` (lists of int)
    Signed operand pairs, in order.
``period`` (int, default 10000)
    Clock period in ticks.

Results: ``registered.npz`` with int64 ``a``, ``b`` and ``p`` (``p[i]`` read two edges after
pair ``i``), and ``p_reset`` (``p`` read right after reset, which must be 0).
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from ._clock import CLOCK_PERIOD_PS, start_clock
from ._io import load_config, save_results, to_signed

RESULTS = "registered"
LATENCY = 2
"""Rising edges from presenting ``a``, ``b`` to ``p == a * b``."""


@cocotb.test()
async def registered_products(dut: Any) -> None:
    """Stream the configured pairs through the pipeline, one per cycle."""
    config = load_config()
    width = int(config["width"])
    mask = (1 << width) - 1
    a = np.asarray(config["a"], dtype=np.int64)
    b = np.asarray(config["b"], dtype=np.int64)
    dut.a.value = 0
    dut.b.value = 0
    await start_clock(dut, int(config.get("period", CLOCK_PERIOD_PS)))
    p_reset = to_signed(int(dut.p.value), 2 * width)
    seen: list[int] = []
    for ai, bi in zip([*a.tolist(), *[0] * LATENCY], [*b.tolist(), *[0] * LATENCY], strict=True):
        dut.a.value = ai & mask
        dut.b.value = bi & mask
        await FallingEdge(dut.clk)
        seen.append(to_signed(int(dut.p.value), 2 * width))
    # seen[k] is read one falling edge after pair k was written, i.e. reflects pair k - 1.
    p = np.asarray(seen[LATENCY - 1 : LATENCY - 1 + len(a)], dtype=np.int64)
    save_results(RESULTS, a=a, b=b, p=p, p_reset=np.int64(p_reset))
    assert p_reset == 0, f"p is {p_reset} right after reset, not 0"
    bad = np.flatnonzero(p != a * b)
    assert bad.size == 0, (
        f"{bad.size} of {a.size} products wrong, first: {a[bad[0]]} * {b[bad[0]]} gave {p[bad[0]]}"
    )
