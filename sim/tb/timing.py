"""cocotb testbench: capture a delay-annotated netlist's output at shortened clock periods.

For each transition ``(prev_a, prev_b, cur_a, cur_b)`` (or, for N operand ports, the N
previous values then the N current ones) the testbench follows the sampling
convention of :mod:`sim.runner`: it writes the previous operands and waits ``settle`` ticks;
the launch is ``t0 = now``, where it reads ``p`` (the value before ``t0``'s updates, which
must be the settled previous product) and writes the current operands; then for every period
``T`` (increasing) it waits until ``t0 + T``, enters the read-only phase and reads ``p``.
A final one-tick ``Timer`` leaves the read-only phase before the next transition's writes.

Config keys (JSON, see :mod:`sim.tb._io`):

``width`` (int)
    Operand width ``W`` (``p`` has ``2 * W`` bits, read as signed).
``widths`` (list of int, optional)
    Width of each operand port (default ``W`` for each).
``transitions`` (list of ``[prev_a, prev_b, cur_a, cur_b]``, signed ints)
    The transitions, in order: ``2 N`` values each for N operand ports.
``periods`` (list of int)
    Capture periods in ticks, positive and strictly increasing.
``settle`` (int)
    Ticks the previous operands are held; must exceed the critical path (the launch-time
    read checks that it did).
``critical_path`` (int, optional)
    If given, also assert here that every capture at a period ``>= critical_path`` is the
    exact product.
``inputs``, ``output``, ``out_width``, ``signed`` (optional)
    Operand port names (default ``a``, ``b``; any number), output port name (default
    ``p``), output width (default ``2 * W``) and whether values are two's complement
    (default true).
``settled`` (list of ``[prev, cur]`` output values; required beyond two operands)
    The design's own settled output for the previous and current operands of each
    transition (from the zero-delay netlist); when given, the launch check and the
    critical-path check use it instead of the signed product.

Results: ``timing.npz`` with ``transitions`` (int64 ``[n, 2N]``), ``periods`` (``[k]``),
``captured`` (int64 ``[n, k]``: ``p`` captured at each period) and ``launch`` (``[n]``: ``p`` at
each launch).
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, Timer

from ..runner import capture_times
from ._io import load_config, save_results, to_signed

RESULTS = "timing"


@cocotb.test()
async def capture_periods(dut: Any) -> None:
    """Launch every transition once and capture ``p`` at every period."""
    config = load_config()
    width = int(config["width"])
    out_width = int(config.get("out_width", 2 * width))
    ports = [getattr(dut, n) for n in config.get("inputs", ("a", "b"))]
    masks = [(1 << int(w)) - 1 for w in config.get("widths", [width] * len(ports))]
    if len(masks) != len(ports):
        raise ValueError(f"Config has {len(ports)} inputs but {len(masks)} widths")
    nports = len(ports)
    if nports != 2 and config.get("settled") is None:
        raise ValueError("Config needs 'settled' for a design of more than two operands")
    out = getattr(dut, config.get("output", "p"))
    signed = bool(config.get("signed", True))

    def read(value: int) -> int:
        return to_signed(value, out_width) if signed else value
    transitions = np.asarray(config["transitions"], dtype=np.int64).reshape(-1, 2 * nports)
    periods = [int(t) for t in config["periods"]]
    settle = int(config["settle"])
    offsets = capture_times(0, periods)  # validates the periods
    if settle <= 0:
        raise ValueError(f"Config settle must be a positive number of ticks, not {settle!r}")
    captured = np.empty((len(transitions), len(periods)), dtype=np.int64)
    launch = np.empty(len(transitions), dtype=np.int64)
    for i, row in enumerate(transitions.tolist()):
        for port, mask, value in zip(ports, masks, row[:nports], strict=True):
            port.value = value & mask
        await Timer(settle, unit="ps")
        launch[i] = read(int(out.value))  # before t0's updates
        for port, mask, value in zip(ports, masks, row[nports:], strict=True):
            port.value = value & mask
        elapsed = 0
        for k, offset in enumerate(offsets):
            await Timer(offset - elapsed, unit="ps")
            await ReadOnly()
            captured[i, k] = read(int(out.value))
            elapsed = offset
        await Timer(1, unit="ps")
    save_results(RESULTS, transitions=transitions, periods=np.asarray(periods, dtype=np.int64),
                 captured=captured, launch=launch)

    if config.get("settled") is not None:
        settled = np.asarray(config["settled"], dtype=np.int64).reshape(-1, 2)
        prev, cur = settled[:, 0], settled[:, 1]
    else:
        prev = transitions[:, 0] * transitions[:, 1]
        cur = transitions[:, 2] * transitions[:, 3]
    bad = np.flatnonzero(launch != prev)
    assert bad.size == 0, (
        f"{bad.size} launches did not start from the settled previous product (settle={settle} "
        f"too short?), first: transition {transitions[bad[0]].tolist()} read {launch[bad[0]]}"
    )
    if config.get("critical_path") is not None:
        safe = np.asarray(periods) >= int(config["critical_path"])
        exact = cur[:, None]
        late = captured[:, safe]
        wrong = np.argwhere(late != exact)
        assert wrong.size == 0, (
            f"{len(wrong)} captures at periods >= the critical path are wrong, first: "
            f"transition {transitions[wrong[0, 0]].tolist()} at period "
            f"{np.asarray(periods)[safe][wrong[0, 1]]} gave {late[wrong[0, 0], wrong[0, 1]]}"
        )
