"""Clock and reset for the testbenches of ``sync``-domain designs (ports ``clk``, ``rst``).

Inputs are written at falling edges and outputs read there too, half a period away from
the rising edges where the design samples, so no read or write races a register update.
"""

from __future__ import annotations

from typing import Any

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

__all__ = ["CLOCK_PERIOD_PS", "start_clock"]

CLOCK_PERIOD_PS = 10_000
"""Default clock period (RTL designs have no delays, so any period works)."""


async def start_clock(dut: Any, period_ps: int = CLOCK_PERIOD_PS, reset_cycles: int = 2) -> None:
    """Start ``clk``, hold ``rst`` for ``reset_cycles`` rising edges, return at a falling edge."""
    dut.rst.value = 1
    Clock(dut.clk, period_ps, unit="ps").start(start_high=False)
    for _ in range(reset_cycles):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
