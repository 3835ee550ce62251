"""The fault-injecting SRAM buffer on Icarus and Verilator (testbench ``sim/tb/sram.py``)."""

from __future__ import annotations

import numpy as np
import pytest

import hw
from sim.runner import SIMULATORS, Simulator, run_cocotb

DEPTH, WIDTH = 256, 8
FULL = (1 << WIDTH) - 1

pytestmark = pytest.mark.sim


def _masks(rng: np.random.Generator, density: float) -> np.ndarray:
    """Random per-word masks with each bit set with probability ``density``."""
    bits = rng.random((DEPTH, WIDTH)) < density
    return (bits * (1 << np.arange(WIDTH))).sum(axis=1).astype(np.int64)


def _config(seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {
        "depth": DEPTH,
        "width": WIDTH,
        "data": rng.integers(0, FULL + 1, size=DEPTH).tolist(),
        "stuck_sa0": _masks(rng, 0.2).tolist(),
        "stuck_sa1": _masks(rng, 0.2).tolist(),
        "flips": _masks(rng, 0.3).tolist(),
        "fault_sa0": _masks(rng, 0.05).tolist(),
        "fault_sa1": _masks(rng, 0.05).tolist(),
    }


@pytest.mark.parametrize("sim", SIMULATORS)
def test_sram_runner(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Write/read, stuck-at, read flips and a march fault-map readback."""
    build = tmp_path_factory.mktemp(f"sram-{sim}")
    rtl = build / "sram.v"
    rtl.write_text(hw.to_verilog(hw.FaultySRAM(depth=DEPTH, width=WIDTH), name="sram"))
    config = _config(seed=7)
    run_cocotb(sim, [rtl], "sram", "sim.tb.sram", build, config=config)
    data = np.asarray(config["data"])
    sa0, sa1 = np.asarray(config["stuck_sa0"]), np.asarray(config["stuck_sa1"])
    assert (sa0 & sa1).any(), "the seed should give some bits with both faults (SA1 wins)"

    np.testing.assert_array_equal(np.load(build / "write_read.npz")["read"], data)

    stuck = np.load(build / "stuck_at.npz")
    np.testing.assert_array_equal(stuck["read_data"], (data & ~sa0 | sa1) & FULL)
    inverted = data ^ FULL
    np.testing.assert_array_equal(stuck["read_inverted"], (inverted & ~sa0 | sa1) & FULL)
    stuck_bits = sa0 | sa1  # these bits ignored the second write ...
    np.testing.assert_array_equal((stuck["read_data"] ^ stuck["read_inverted"]) & stuck_bits, 0)
    np.testing.assert_array_equal(stuck["read_repaired"], inverted)  # ... but the cells kept it

    flips = np.load(build / "read_flips.npz")
    np.testing.assert_array_equal(flips["read_flipped"] ^ data, np.asarray(config["flips"]))
    np.testing.assert_array_equal(flips["read_again"], data)

    march = np.load(build / "march.npz")
    fault_sa0, fault_sa1 = np.asarray(config["fault_sa0"]), np.asarray(config["fault_sa1"])
    found_sa1 = march["read0"]  # a 1 read where 0 was written
    found_sa0 = ~march["read1"] & FULL  # a 0 read where 1 was written
    np.testing.assert_array_equal(found_sa1, fault_sa1)
    np.testing.assert_array_equal(found_sa0, fault_sa0 & ~fault_sa1)
