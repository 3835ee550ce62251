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

from ._io import save_results
from ._sram import clear_faults, load_faults, read, setup, write


@cocotb.test()
async def load_and_read(dut: Any) -> None:
    """Write the weight words, then per scenario load the masks and read with the flips."""
    config = await setup(dut)
    words = [int(w) for w in config["words"]]
    n = len(words)
    await clear_faults(dut, n)  # memory contents (masks included) survive tests
    await write(dut, words)
    results = {"clean": await read(dut, n, dtype=np.uint64)}
    for scenario in config["scenarios"]:
        await load_faults(dut, [int(m) for m in scenario["sa0"]],
                          [int(m) for m in scenario["sa1"]])
        results[str(scenario["name"])] = await read(
            dut, n, [int(f) for f in scenario["flip"]], dtype=np.uint64)
    save_results("sram_load", **results)
    want = np.array(words, dtype=np.uint64)
    bad = np.flatnonzero(results["clean"] != want)
    assert bad.size == 0, f"{bad.size} clean words differ, first at address {bad[0]}"
