"""Gate-level Booth netlists on Icarus and Verilator: zero delay (every pair exact) and unit
delays with inertial semantics, captured at shortened clock periods per the sampling
convention of :mod:`sim.runner`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sim.engine import TimingEngine
from sim.netlist import Netlist
from sim.runner import SIMULATORS, Simulator, run_cocotb
from sim.wavesim import find_latest_transitions
from sim.writer import write_sim_verilog

WIDTH = 8
N_RANDOM_TRANSITIONS = 10_000
SETTLE_MARGIN = 10

pytestmark = pytest.mark.sim

Transition = tuple[int, int, int, int]
GateFactory = Callable[[str, str], tuple[Path, Netlist]]  # the ``booth_gate`` fixture


def critical_path_transitions(netlist: Netlist) -> tuple[list[Transition], int]:
    """Transitions ``(prev_a, prev_b, cur_a, cur_b)`` (signed) that settle last, and that tick.

    The reference waveform simulator searches about a million random transitions for those
    whose product settles last. With unit delays nothing settles later than the logic depth;
    for the ripple adder the search reaches it (the structural critical path is sensitised),
    for Kogge-Stone the longest path found is one tick shorter: the 23-tick structural path is
    false -- the exhaustive engine run over all 2^32 transitions finds none wrong at 22.
    """
    depth = netlist.logic_depth()
    found, settle = find_latest_transitions(netlist, _unit_delays(netlist), horizon=depth,
                                            seed=3, keep=4)
    half = 1 << (WIDTH - 1)
    signed = np.where(found >= half, found - 2 * half, found)
    latest = int(settle[0])
    return [tuple(int(v) for v in row) for row, s in zip(signed, settle, strict=True)
            if s == latest], latest


def _unit_delays(netlist: Netlist) -> dict[str, dict[str, tuple[int, int]]]:
    return {c.name: {"Y": (1, 1)} for c in netlist.cells}


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cpa", ["ripple", "kogge_stone"])
def test_gate_zero_delay_runner(
    sim: Simulator, cpa: str, booth_gate: GateFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The zero-delay gate netlist gives the exact product for all 65,536 pairs."""
    _, netlist = booth_gate("dadda", cpa)
    build = tmp_path_factory.mktemp(f"gate0-dadda-{cpa}-{sim}")
    src = build / "booth_gate0.v"
    src.write_text(write_sim_verilog(netlist))
    run_cocotb(sim, [src], netlist.top, "sim.tb.comb", build, config={"width": WIDTH})
    res = np.load(build / "comb.npz")
    assert res["p"].size == 1 << (2 * WIDTH)
    np.testing.assert_array_equal(res["p"], res["a"] * res["b"])


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cpa", ["ripple", "kogge_stone"])
def test_gate_delay_runner(
    sim: Simulator, cpa: str, booth_gate: GateFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Unit delays, inertial: never wrong at period >= critical path, wrong when shorter."""
    _, netlist = booth_gate("dadda", cpa)
    depth = netlist.logic_depth()  # the critical path, in ticks, with unit delays
    build = tmp_path_factory.mktemp(f"gate-unit-dadda-{cpa}-{sim}")
    src = build / "booth_gate_unit.v"
    src.write_text(write_sim_verilog(netlist, _unit_delays(netlist), semantics="inertial"))

    rng = np.random.default_rng(12345)
    lo, hi = -(1 << (WIDTH - 1)), 1 << (WIDTH - 1)
    random = rng.integers(lo, hi, size=(N_RANDOM_TRANSITIONS, 4))
    latest_found, latest = critical_path_transitions(netlist)
    assert latest == (depth if cpa == "ripple" else depth - 1), latest
    extra = np.asarray(latest_found, dtype=np.int64).reshape(-1, 4)
    transitions = np.concatenate([random, extra])
    shortened = [int(0.6 * depth), int(0.8 * depth)]  # random transitions already fail here
    periods = sorted({*shortened, latest - 1, depth - 1, depth, depth + 1, 2 * depth})
    run_cocotb(sim, [src], netlist.top, "sim.tb.timing", build, timing=True, config={
        "width": WIDTH,
        "transitions": transitions.tolist(),
        "periods": periods,
        "settle": depth + SETTLE_MARGIN,
        "critical_path": depth,
    })
    res = np.load(build / "timing.npz")
    captured = res["captured"]
    assert captured.shape == (len(transitions), len(periods))
    np.testing.assert_array_equal(res["launch"], transitions[:, 0] * transitions[:, 1])
    wrong = captured != (transitions[:, 2] * transitions[:, 3])[:, None]
    safe = np.asarray(periods) >= depth
    assert not wrong[:, safe].any(), f"wrong products at periods >= {depth}"
    for period in shortened:
        k = periods.index(period)
        assert wrong[:N_RANDOM_TRANSITIONS, k].any(), f"nothing wrong at period {period}"
    assert len(extra) > 0
    assert wrong[N_RANDOM_TRANSITIONS:, periods.index(latest - 1)].all(), (
        f"a transition settling at {latest} ticks is not wrong at period {latest - 1}"
    )
    # the fast timing engine captures exactly what the simulator captured
    engine = TimingEngine(netlist, _unit_delays(netlist), semantics="inertial")
    got = engine.capture({"a": transitions[:, 0], "b": transitions[:, 1]},
                         {"a": transitions[:, 2], "b": transitions[:, 3]}, periods)["p"]
    got = np.where(got >= 1 << (2 * WIDTH - 1), got - (1 << (2 * WIDTH)), got)
    np.testing.assert_array_equal(got, captured)
