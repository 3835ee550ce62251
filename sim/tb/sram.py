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

from collections.abc import Sequence
from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from ._clock import start_clock
from ._io import load_config, save_results


async def _setup(dut: Any) -> dict[str, Any]:
    for name in ("addr", "we", "wdata", "flip", "fault_we", "fault_sa0", "fault_sa1"):
        getattr(dut, name).value = 0
    await start_clock(dut)
    return load_config()


async def _write(dut: Any, words: Sequence[int]) -> None:
    dut.we.value = 1
    for addr, word in enumerate(words):
        dut.addr.value = addr
        dut.wdata.value = word
        await FallingEdge(dut.clk)
    dut.we.value = 0


async def _load_faults(dut: Any, sa0: Sequence[int], sa1: Sequence[int]) -> None:
    dut.fault_we.value = 1
    for addr, (m0, m1) in enumerate(zip(sa0, sa1, strict=True)):
        dut.addr.value = addr
        dut.fault_sa0.value = m0
        dut.fault_sa1.value = m1
        await FallingEdge(dut.clk)
    dut.fault_we.value = 0


async def _clear_faults(dut: Any, depth: int) -> None:
    await _load_faults(dut, [0] * depth, [0] * depth)


async def _read(dut: Any, depth: int, flips: Sequence[int] | None = None) -> np.ndarray:
    out = np.empty(depth, dtype=np.int64)
    for addr in range(depth):
        dut.addr.value = addr
        dut.flip.value = 0 if flips is None else flips[addr]
        await FallingEdge(dut.clk)
        out[addr] = int(dut.rdata.value)
    dut.flip.value = 0
    return out


def _assert_equal(what: str, got: np.ndarray, want: np.ndarray) -> None:
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{what}: {bad.size} words differ, first at address {bad[0]}: "
        f"read {int(got[bad[0]]):#x}, expected {int(want[bad[0]]):#x}"
    )


@cocotb.test()
async def write_read_all(dut: Any) -> None:
    """Fault-free: every address reads back what was written."""
    config = await _setup(dut)
    depth = int(config["depth"])
    data = np.asarray(config["data"], dtype=np.int64)
    await _clear_faults(dut, depth)
    await _write(dut, data.tolist())
    read = await _read(dut, depth)
    save_results("write_read", read=read)
    _assert_equal("read after write", read, data)


@cocotb.test()
async def stuck_at(dut: Any) -> None:
    """Stuck cells read their stuck value whatever is written; the stored word is kept."""
    config = await _setup(dut)
    depth, width = int(config["depth"]), int(config["width"])
    full = (1 << width) - 1
    data = np.asarray(config["data"], dtype=np.int64)
    sa0 = np.asarray(config["stuck_sa0"], dtype=np.int64)
    sa1 = np.asarray(config["stuck_sa1"], dtype=np.int64)
    await _load_faults(dut, sa0.tolist(), sa1.tolist())
    await _write(dut, data.tolist())
    read_data = await _read(dut, depth)
    await _write(dut, (data ^ full).tolist())
    read_inverted = await _read(dut, depth)
    await _clear_faults(dut, depth)
    read_repaired = await _read(dut, depth)
    save_results("stuck_at", read_data=read_data, read_inverted=read_inverted,
                 read_repaired=read_repaired)
    _assert_equal("stuck-at read", read_data, (data & ~sa0 | sa1) & full)
    _assert_equal("stuck-at read after writing ~data", read_inverted,
                  ((data ^ full) & ~sa0 | sa1) & full)
    _assert_equal("read after clearing the masks", read_repaired, data ^ full)


@cocotb.test()
async def read_flips(dut: Any) -> None:
    """A flip inverts only the flagged bits of its own read, never the stored word."""
    config = await _setup(dut)
    depth = int(config["depth"])
    data = np.asarray(config["data"], dtype=np.int64)
    flips = np.asarray(config["flips"], dtype=np.int64)
    await _clear_faults(dut, depth)
    await _write(dut, data.tolist())
    read_flipped = await _read(dut, depth, flips.tolist())
    read_again = await _read(dut, depth)
    save_results("read_flips", read_flipped=read_flipped, read_again=read_again)
    _assert_equal("flipped read", read_flipped, data ^ flips)
    _assert_equal("read after the flipped read", read_again, data)


@cocotb.test()
async def march(dut: Any) -> None:
    """Load a fault map, then write/read all-0 and all-1 words: the map shows through."""
    config = await _setup(dut)
    depth, width = int(config["depth"]), int(config["width"])
    full = (1 << width) - 1
    sa0 = np.asarray(config["fault_sa0"], dtype=np.int64)
    sa1 = np.asarray(config["fault_sa1"], dtype=np.int64)
    await _load_faults(dut, sa0.tolist(), sa1.tolist())
    await _write(dut, [0] * depth)
    read0 = await _read(dut, depth)
    await _write(dut, [full] * depth)
    read1 = await _read(dut, depth)
    save_results("march", read0=read0, read1=read1)
    _assert_equal("all-0 readback (stuck-at-1 cells)", read0, sa1)
    _assert_equal("all-1 readback (stuck-at-0 cells read 0)", read1, full & ~(sa0 & ~sa1))
