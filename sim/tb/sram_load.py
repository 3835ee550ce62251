"""cocotb testbench: a network's weight words in ``hw.FaultySRAM`` with fault maps, read back.

The design reads word ``addr`` at every rising edge into ``rdata`` as
``((stored & ~sa0) | sa1) ^ flip`` (see :mod:`sim.tb.sram`). This testbench writes the words
once, then for every scenario loads that scenario's stuck-at masks into every used word and
reads every used word back with the scenario's flip mask on the read, as a weight fetch would.
Words at or above ``len(words)`` are neither written nor read.

Config keys (JSON, see :mod:`sim.tb._io`):

``words`` (list of ints)
    The buffer contents at addresses ``0 .. len(words) - 1`` (up to 64-bit words).
``scenarios`` (list of objects)
    ``name`` and ``sa0``, ``sa1``, ``flip`` (lists of ``len(words)`` ints).

Results: ``sram_load.npz`` with ``uint64`` arrays ``clean`` (read before any fault) and one
array per scenario name (the read-back words).
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from ._clock import start_clock
from ._io import load_config, save_results


async def _read_all(dut: Any, n: int, flips: list[int] | None) -> np.ndarray:
    out = np.zeros(n, dtype=np.uint64)
    for addr in range(n):
        dut.addr.value = addr
        dut.flip.value = 0 if flips is None else flips[addr]
        await FallingEdge(dut.clk)
        out[addr] = np.uint64(int(dut.rdata.value))
    dut.flip.value = 0
    return out


@cocotb.test()
async def load_and_read(dut: Any) -> None:
    """Write the weight words, then per scenario load the masks and read with the flips."""
    for name in ("addr", "we", "wdata", "flip", "fault_we", "fault_sa0", "fault_sa1"):
        getattr(dut, name).value = 0
    await start_clock(dut)
    config = load_config()
    words = [int(w) for w in config["words"]]
    n = len(words)
    dut.fault_we.value = 1  # start from fault-free words (memory contents survive tests)
    dut.we.value = 1
    for addr, word in enumerate(words):
        dut.addr.value = addr
        dut.wdata.value = word
        await FallingEdge(dut.clk)
    dut.we.value = 0
    dut.fault_we.value = 0
    results = {"clean": await _read_all(dut, n, None)}
    for scenario in config["scenarios"]:
        dut.fault_we.value = 1
        for addr in range(n):
            dut.addr.value = addr
            dut.fault_sa0.value = int(scenario["sa0"][addr])
            dut.fault_sa1.value = int(scenario["sa1"][addr])
            await FallingEdge(dut.clk)
        dut.fault_we.value = 0
        dut.fault_sa0.value = 0
        dut.fault_sa1.value = 0
        results[str(scenario["name"])] = await _read_all(
            dut, n, [int(f) for f in scenario["flip"]])
    save_results("sram_load", **results)
    want = np.array(words, dtype=np.uint64)
    bad = np.flatnonzero(results["clean"] != want)
    assert bad.size == 0, f"{bad.size} clean words differ, first at address {bad[0]}"
