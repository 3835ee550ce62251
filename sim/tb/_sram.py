"""Drivers of ``hw.FaultySRAM`` shared by the SRAM testbenches.

Inputs change at a falling edge and ``rdata`` is read at the next falling edge: one write,
mask load or read per cycle (see :mod:`sim.tb.sram` for the port semantics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from cocotb.triggers import FallingEdge

from ._clock import start_clock
from ._io import load_config


async def setup(dut: Any) -> dict[str, Any]:
    """Drive every input to 0, start the clock and return the test's config."""
    for name in ("addr", "we", "wdata", "flip", "fault_we", "fault_sa0", "fault_sa1"):
        getattr(dut, name).value = 0
    await start_clock(dut)
    return load_config()


async def write(dut: Any, words: Sequence[int]) -> None:
    """Write ``words`` to addresses ``0 .. len(words) - 1``."""
    dut.we.value = 1
    for addr, word in enumerate(words):
        dut.addr.value = addr
        dut.wdata.value = word
        await FallingEdge(dut.clk)
    dut.we.value = 0


async def load_faults(dut: Any, sa0: Sequence[int], sa1: Sequence[int]) -> None:
    """Load the stuck-at masks of addresses ``0 .. len(sa0) - 1``."""
    dut.fault_we.value = 1
    for addr, (m0, m1) in enumerate(zip(sa0, sa1, strict=True)):
        dut.addr.value = addr
        dut.fault_sa0.value = m0
        dut.fault_sa1.value = m1
        await FallingEdge(dut.clk)
    dut.fault_we.value = 0
    dut.fault_sa0.value = 0
    dut.fault_sa1.value = 0


async def clear_faults(dut: Any, depth: int) -> None:
    """Clear the stuck-at masks of the first ``depth`` addresses."""
    await load_faults(dut, [0] * depth, [0] * depth)


async def read(dut: Any, depth: int, flips: Sequence[int] | None = None,
               dtype: type = np.int64) -> np.ndarray:
    """Read addresses ``0 .. depth - 1``, with per-address read ``flips`` if given."""
    out: np.ndarray = np.empty(depth, dtype=dtype)
    for addr in range(depth):
        dut.addr.value = addr
        dut.flip.value = 0 if flips is None else flips[addr]
        await FallingEdge(dut.clk)
        out[addr] = dtype(int(dut.rdata.value))
    dut.flip.value = 0
    return out
