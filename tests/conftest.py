"""Shared fixtures: designs as Verilog files, synthesised once per test session (per worker)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.cells import DEFAULT_LIBRARY
from sim.netlist import Netlist
from sim.reader import read_verilog

GateFactory = Callable[[str, str], tuple[Path, Netlist]]

# What the simulator and tool tests need. A developer without one sees those tests skipped
# with the reason; in CI (CI=true) a missing one stops the run before any test, so no skip
# can hide it.
REQUIRED_TOOLS = {
    "iverilog (Debian iverilog)": lambda: shutil.which("iverilog") is not None,
    "sta (Debian opensta)": lambda: shutil.which("sta") is not None,
    "OSU018 cells (Debian qflow-tech-osu018)": lambda: Path(
        "/usr/share/qflow/tech/osu018/osu018_stdcells.lib").is_file(),
    "FashionMNIST (Debian dataset-fashion-mnist)": lambda: Path(
        "/usr/share/datasets/fashion-mnist").is_dir(),
}


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        missing = [name for name, present in REQUIRED_TOOLS.items() if not present()]
        if missing:
            raise pytest.UsageError(f"CI lacks {', '.join(missing)}: install them "
                                    "(nox -s tests does, as root)")


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
