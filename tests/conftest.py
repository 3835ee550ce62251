"""Shared fixtures: designs as Verilog files, synthesised once per test session (per worker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sim.cells import DEFAULT_LIBRARY
from sim.netlist import Netlist
from sim.reader import read_verilog

GateFactory = Callable[[str, str], tuple[Path, Netlist]]


@pytest.fixture(scope="session")
def booth_gate(tmp_path_factory: pytest.TempPathFactory) -> GateFactory:
    """``booth_gate(tree, cpa)`` -> (gate netlist file, Netlist) of the 8-bit Booth multiplier.

    Synthesis runs once per variant and session (worker); the netlist's top module is ``booth``.
    """
    import hw
    from sim.synth import synthesize

    cache: dict[tuple[str, str], tuple[Path, Netlist]] = {}

    def get(tree: str, cpa: str) -> tuple[Path, Netlist]:
        if (tree, cpa) not in cache:
            rtl = hw.to_verilog(hw.BoothMultiplier(width=8, tree=tree, cpa=cpa), name="booth")
            path = tmp_path_factory.mktemp(f"gate-{tree}-{cpa}") / "booth_gate.v"
            path.write_text(synthesize(rtl, "booth").verilog)
            cache[tree, cpa] = path, read_verilog(path, DEFAULT_LIBRARY)
        return cache[tree, cpa]

    return get
