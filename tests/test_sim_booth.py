"""RTL Booth multipliers on real simulators: every operand pair, every variant, and the
registered wrapper, on Icarus and Verilator through cocotb (testbenches in ``sim/tb``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import hw
from sim.runner import SIMULATORS, Simulator, run_cocotb

WIDTH = 8
VARIANTS = list(itertools.product(hw.TREES, hw.CPAS))

pytestmark = pytest.mark.sim


def _all_pairs(width: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)
    a, b = np.meshgrid(values, values, indexing="ij")
    return a.ravel(), b.ravel()


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize(("tree", "cpa"), VARIANTS)
def test_booth_rtl_runner(
    sim: Simulator, tree: str, cpa: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """All 65,536 operand pairs give the exact signed product."""
    build = tmp_path_factory.mktemp(f"booth-rtl-{tree}-{cpa}-{sim}")
    rtl = build / "booth.v"
    rtl.write_text(hw.to_verilog(hw.BoothMultiplier(width=WIDTH, tree=tree, cpa=cpa),
                                 name="booth"))
    run_cocotb(sim, [rtl], "booth", "sim.tb.comb", build, config={"width": WIDTH})
    res = np.load(build / "comb.npz")
    a, b = _all_pairs(WIDTH)
    np.testing.assert_array_equal(res["a"], a)
    np.testing.assert_array_equal(res["b"], b)
    np.testing.assert_array_equal(res["p"], a * b)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_registered_runner(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The registered wrapper: p = a * b two rising edges after a, b are presented."""
    build = tmp_path_factory.mktemp(f"booth-reg-{sim}")
    rtl = build / "booth_reg.v"
    rtl.write_text(hw.to_verilog(hw.RegisteredMultiplier(width=WIDTH), name="booth_reg"))
    rng = np.random.default_rng(2024)
    lo, hi = -(1 << (WIDTH - 1)), 1 << (WIDTH - 1)
    corners = np.array([lo, lo + 1, -1, 0, 1, hi - 1], dtype=np.int64)
    ca, cb = np.meshgrid(corners, corners, indexing="ij")
    a = np.concatenate([ca.ravel(), rng.integers(lo, hi, size=2000)])
    b = np.concatenate([cb.ravel(), rng.integers(lo, hi, size=2000)])
    run_cocotb(sim, [rtl], "booth_reg", "sim.tb.registered", build,
               config={"width": WIDTH, "a": a.tolist(), "b": b.tolist()})
    res = np.load(build / "registered.npz")
    assert int(res["p_reset"]) == 0
    np.testing.assert_array_equal(res["p"], a * b)
