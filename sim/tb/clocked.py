"""cocotb testbench: a gate-level multiplier between clocked registers, at several periods.

The DUT is :func:`sim.writer.write_clocked_wrapper` around a netlist written with doubled
delays: one delay tick is 2 time units and a clock period of ``T`` ticks is ``2 T + 1``
units (high ``T + 1``, low ``T``), so the capture edge sees exactly the cell events of ticks
``<= T`` after the launch edge. Operands are written at falling edges; ``p_q`` is read at
falling edges, one cycle after the edge that captured it.

Config keys (JSON, see :mod:`sim.tb._io`):

``width`` (int)
    Operand width ``W``.
``a``, ``b`` (lists of int)
    Signed operands presented on consecutive cycles.
``periods`` (list of int)
    Clock periods in ticks; the whole stream runs once per period, after ``flush``
    cycles of a long period that settle the registers and the netlist.
``flush`` (int)
    Ticks of the settling cycle between periods (> the critical path).

Results: ``clocked.npz`` with ``a``, ``b`` (int64 ``[n]``), ``periods`` and ``captured``
(int64 ``[len(periods), n]``): the product register one cycle after each pair launched.
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import Timer

from ._io import load_config, save_results, to_signed

RESULTS = "clocked"


@cocotb.test()
async def clocked_stream(dut: Any) -> None:
    """Stream the pairs at every period; read the product register after each capture."""
    config = load_config()
    width = int(config["width"])
    mask = (1 << width) - 1
    a = np.asarray(config["a"], dtype=np.int64)
    b = np.asarray(config["b"], dtype=np.int64)
    periods = [int(t) for t in config["periods"]]
    flush = int(config["flush"])
    captured = np.empty((len(periods), len(a)), dtype=np.int64)
    n = len(a)

    def present(k: int) -> None:  # called at a falling edge: stable before the next rise
        dut.a_in.value = int(a[k]) & mask if k < n else 0
        dut.b_in.value = int(b[k]) & mask if k < n else 0

    dut.clk.value = 0
    dut.a_in.value = 0
    dut.b_in.value = 0
    await Timer(1, unit="ps")
    for i, period in enumerate(periods):
        for k in range(-2, n + 1):
            # a rising edge launches what was presented and captures the previous product;
            # cycles before the stream are long, to settle registers and netlist
            high, low = (flush + 1, flush) if k < 0 else (period + 1, period)
            dut.clk.value = 1
            await Timer(high, unit="ps")
            dut.clk.value = 0
            if k > 0:
                captured[i, k - 1] = to_signed(int(dut.p_q.value), 2 * width)
            if k == -1 or 0 <= k < n:
                present(k + 1)
            else:
                present(n)
            await Timer(low, unit="ps")
    save_results(RESULTS, a=a, b=b, periods=np.asarray(periods, dtype=np.int64),
                 captured=captured)
