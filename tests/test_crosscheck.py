"""The timing engine against Icarus and Verilator on the committed Liberty design (a CI-sized
sample of ``flipclock crosscheck``: both simulators inertial, Icarus transport, per-pin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipclock.defaults import RTL_DIR
from sim.crosscheck import CrosscheckConfig, crosscheck, crosscheck_periods
from sim.design import load_design

pytestmark = [pytest.mark.sim, pytest.mark.tools]


def test_periods_span_sixty_percent_to_critical_path() -> None:
    assert crosscheck_periods(46, 5) == [28, 32, 37, 42, 46]
    assert crosscheck_periods(10, 5, 0.6) == [6, 7, 8, 9, 10]


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_liberty_design_bit_exact(sim: str, tmp_path: Path) -> None:
    design = load_design(RTL_DIR / "booth8_osu018")
    cfg = CrosscheckConfig(transitions=2000, periods=5, seed=3, simulators=(sim,),  # type: ignore[arg-type]
                           semantics=("inertial", "transport"))
    runs = crosscheck(design.netlist, design.annotation, cfg, tmp_path, log=lambda _m: None)
    checked = [r for r in runs if r.skipped is None]
    assert [(r.simulator, r.semantics) for r in checked] == (
        [("icarus", "inertial"), ("icarus", "transport")] if sim == "icarus"
        else [("verilator", "inertial")])
    for r in checked:
        assert r.captures == 2016 * 5
        assert r.mismatches == 0, r.first_mismatch
        # the sample is meaningful: the shortest period captures wrong products
        assert r.wrong_captures[0] > 0
        assert r.wrong_captures[-1] == 0  # none at the critical path


def test_unit_transport_and_per_pin_on_icarus(tmp_path: Path) -> None:
    for name, per_pin in (("booth8", False), ("booth8_osu018", True)):
        design = load_design(RTL_DIR / name)
        cfg = CrosscheckConfig(transitions=1000, periods=5, seed=4, simulators=("icarus",),
                               semantics=("transport", "inertial") if per_pin else ("transport",),
                               per_pin=per_pin)
        runs = crosscheck(design.netlist, design.annotation, cfg, tmp_path / name,
                          log=lambda _m: None)
        assert runs and all(r.mismatches == 0 for r in runs), [r.first_mismatch for r in runs]
