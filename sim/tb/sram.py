"""cocotb testbench: the fault-injecting SRAM weight buffer (``hw.FaultySRAM``).

The design reads word ``addr`` at every rising edge into the ``rdata`` register as
``((stored & ~sa0) | sa1) ^ flip``; ``we`` writes ``wdata`` and ``fault_we`` loads the
stuck-at masks of word ``addr`` at the same edge.  The testbench writes inputs at a falling
edge and reads ``rdata`` at the next falling edge, one operation per cycle.

Memory contents (data and fault masks) survive from one cocotb test to the next, so every
test first sets the masks it relies on.

Config keys (JSON, see :mod:`sim.tb._io`):

``depth``, ``width`` (int)
    SRAM shape.
``data`` (list of ``depth`` ints)
    Words to write in :func:`write_read_all`, :func:`stuck_at` and :func:`read_flips`.
``stuck_sa0``, ``stuck_sa1`` (lists of ``depth`` ints)
    Fault masks for :func:`stuck_at`.
``flips`` (list of ``depth`` ints)
    Per-address read flip masks for :func:`read_flips`.
``fault_sa0``, ``fault_sa1`` (lists of ``depth`` ints)
    The fault map :func:`march` loads and then reads back.

Results (``.npz``, int64 arrays indexed by address):

* ``write_read``: ``read``;
* ``stuck_at``: ``read_data``, ``read_inverted`` (after writing ``~data``), ``read_repaired``
  (after clearing the masks);
* ``read_flips``: ``read_flipped``, ``read_again`` (same words, no flip);
* ``march``: ``read0`` (after writing all-0 words) and ``read1`` (after all-1 words).
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np

from . import _sram as mem
from ._io import save_results


def _assert_equal(what: str, got: np.ndarray, want: np.ndarray) -> None:
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{what}: {bad.size} words differ, first at address {bad[0]}: "
        f"read {int(got[bad[0]]):#x}, expected {int(want[bad[0]]):#x}"
    )


@cocotb.test()
async def write_read_all(dut: Any) -> None:
    """Fault-free: every address reads back what was written."""
    config = await mem.setup(dut)
    depth = int(config["depth"])
    data = np.asarray(config["data"], dtype=np.int64)
    await mem.clear_faults(dut, depth)
    await mem.write(dut, data.tolist())
    read = await mem.read(dut, depth)
    save_results("write_read", read=read)
    _assert_equal("read after write", read, data)


@cocotb.test()
async def stuck_at(dut: Any) -> None:
    """Stuck cells read their stuck value whatever is written; the stored word is kept."""
    config = await mem.setup(dut)
    depth, width = int(config["depth"]), int(config["width"])
    full = (1 << width) - 1
    data = np.asarray(config["data"], dtype=np.int64)
    sa0 = np.asarray(config["stuck_sa0"], dtype=np.int64)
    sa1 = np.asarray(config["stuck_sa1"], dtype=np.int64)
    await mem.load_faults(dut, sa0.tolist(), sa1.tolist())
    await mem.write(dut, data.tolist())
    read_data = await mem.read(dut, depth)
    await mem.write(dut, (data ^ full).tolist())
    read_inverted = await mem.read(dut, depth)
    await mem.clear_faults(dut, depth)
    read_repaired = await mem.read(dut, depth)
    save_results("stuck_at", read_data=read_data, read_inverted=read_inverted,
                 read_repaired=read_repaired)
    _assert_equal("stuck-at read", read_data, (data & ~sa0 | sa1) & full)
    _assert_equal("stuck-at read after writing ~data", read_inverted,
                  ((data ^ full) & ~sa0 | sa1) & full)
    _assert_equal("read after clearing the masks", read_repaired, data ^ full)


@cocotb.test()
async def read_flips(dut: Any) -> None:
    """A flip inverts only the flagged bits of its own read, never the stored word."""
    config = await mem.setup(dut)
    depth = int(config["depth"])
    data = np.asarray(config["data"], dtype=np.int64)
    flips = np.asarray(config["flips"], dtype=np.int64)
    await mem.clear_faults(dut, depth)
    await mem.write(dut, data.tolist())
    read_flipped = await mem.read(dut, depth, flips.tolist())
    read_again = await mem.read(dut, depth)
    save_results("read_flips", read_flipped=read_flipped, read_again=read_again)
    _assert_equal("flipped read", read_flipped, data ^ flips)
    _assert_equal("read after the flipped read", read_again, data)


@cocotb.test()
async def march(dut: Any) -> None:
    """Load a fault map, then write/read all-0 and all-1 words: the map shows through."""
    config = await mem.setup(dut)
    depth, width = int(config["depth"]), int(config["width"])
    full = (1 << width) - 1
    sa0 = np.asarray(config["fault_sa0"], dtype=np.int64)
    sa1 = np.asarray(config["fault_sa1"], dtype=np.int64)
    await mem.load_faults(dut, sa0.tolist(), sa1.tolist())
    await mem.write(dut, [0] * depth)
    read0 = await mem.read(dut, depth)
    await mem.write(dut, [full] * depth)
    read1 = await mem.read(dut, depth)
    save_results("march", read0=read0, read1=read1)
    _assert_equal("all-0 readback (stuck-at-1 cells)", read0, sa1)
    _assert_equal("all-1 readback (stuck-at-0 cells read 0)", read1, full & ~(sa0 & ~sa1))
