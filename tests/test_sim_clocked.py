"""Gate-level multiplier between real clocked registers, on Icarus and Verilator.

The netlist (unit delays, inertial) sits between operand registers that launch at a rising
edge and a product register that captures at the next
(:func:`sim.writer.write_clocked_wrapper`).
A stream of 3,000 random pairs at a clock period equal to the critical path never captures
a wrong product. Then, at shortened periods, every third cycle launches a transition from a
settled state (its previous pair was held for a cycle): what the product register captures
must be exactly what the timing engine predicts, and the transitions that settle last are
wrong one tick below the critical path. Back-to-back streams at shortened periods start
from unsettled states, which the engine's tables do not model: those are only counted.
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
from sim.writer import write_clocked_wrapper, write_sim_verilog

pytestmark = pytest.mark.sim
WIDTH = 8
N_STREAM = 3000
N_HELD = 500

GateFactory = Callable[[str, str], tuple[Path, Netlist]]


@pytest.mark.parametrize("sim", SIMULATORS)
def test_clocked_gate_level_runner(sim: Simulator, booth_gate: GateFactory,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    _, netlist = booth_gate("dadda", "ripple")
    unit = {c.name: {"Y": (1, 1)} for c in netlist.cells}
    doubled = {c.name: {"Y": (2, 2)} for c in netlist.cells}
    engine = TimingEngine(netlist, unit, semantics="inertial")
    cp = engine.critical_path
    build = tmp_path_factory.mktemp(f"clocked-{sim}")
    core = build / "core.v"
    core.write_text(write_sim_verilog(netlist, doubled, semantics="inertial"))
    wrapper = build / "clocked.v"
    wrapper.write_text(write_clocked_wrapper(netlist))

    rng = np.random.default_rng(21)
    half = 1 << (WIDTH - 1)
    stream = rng.integers(-half, half, size=(N_STREAM, 2))
    latest, settle = find_latest_transitions(netlist, unit, horizon=cp, seed=3, keep=4)
    latest = np.where(latest >= half, latest - 2 * half, latest)
    held = np.concatenate([rng.integers(-half, half, size=(N_HELD, 4)), latest])
    triples = np.stack([held[:, :2], held[:, :2], held[:, 2:]], axis=1).reshape(-1, 2)
    pairs = np.concatenate([stream, triples])
    periods = [cp, cp - 1, int(0.8 * cp), int(0.6 * cp)]
    run_cocotb(sim, [core, wrapper], "clocked", "sim.tb.clocked", build, timing=True,
               config={"width": WIDTH, "a": pairs[:, 0].tolist(), "b": pairs[:, 1].tolist(),
                       "periods": periods, "flush": cp + 4})
    captured = np.load(build / "clocked.npz")["captured"]
    exact = pairs[:, 0] * pairs[:, 1]

    assert (captured[0] == exact).all(), "wrong products at a period equal to the critical path"
    launch = N_STREAM + 3 * np.arange(len(held)) + 2  # the cycles launching a held transition
    predicted = engine.capture({"a": held[:, 0], "b": held[:, 1]},
                               {"a": held[:, 2], "b": held[:, 3]}, periods)["p"]
    predicted = np.where(predicted >= 1 << (2 * WIDTH - 1), predicted - (1 << (2 * WIDTH)),
                         predicted)
    np.testing.assert_array_equal(captured[:, launch].T, predicted)
    assert int(settle[0]) == cp
    assert (captured[1, launch[-len(latest):]] != exact[launch[-len(latest):]]).any(), (
        "the transitions that settle last are all right one tick below the critical path")
    for i in (2, 3):  # back-to-back streaming at shortened periods does produce errors
        assert (captured[i, :N_STREAM] != exact[:N_STREAM]).sum() > 0
