"""The kyupy benchmark's file writers (kyupy itself is benchmark-only and never imported here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.bench_kyupy import _lut16, kyupy_sdf, kyupy_verilog, live_cells, load_design
from sim.cells import DEFAULT_LIBRARY

ROOT = Path(__file__).resolve().parents[1]
OSU = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")


def test_importing_the_benchmark_does_not_import_kyupy() -> None:
    code = "import sys, sim.bench_kyupy; sys.exit('kyupy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_lut16_matches_kyupy_primitive_tables() -> None:
    lib = DEFAULT_LIBRARY
    # kyupy.sim: AND2 = 0b1000_1000_1000_1000, INV1 = ~0b1010_1010_1010_1010, XOR2 = 0x6666
    assert _lut16(lib["AND2"].truth_table("Y"), 2) == 0x8888
    assert _lut16(lib["INV"].truth_table("Y"), 1) == 0x5555
    assert _lut16(lib["XOR2"].truth_table("Y"), 2) == 0x6666


def test_booth8_variant_and_sdf_carry_every_cell_and_delay() -> None:
    netlist, ann = load_design(ROOT / "rtl" / "booth8")
    text, tlib = kyupy_verilog(netlist)
    assert len(re.findall(r"^\s+\w+ u\d+ \(", text, re.M)) == len(netlist.cells)
    assert set(re.findall(r"^(\w+) input", tlib, re.M)) == {c.type for c in netlist.cells}
    sdf = kyupy_sdf(netlist, ann)
    npaths = sum(len(netlist.library[c.type].inputs) for c in netlist.cells)
    assert len(re.findall(r"\(IOPATH \w+ Y \(1:1:1\) \(1:1:1\)\)", sdf)) == npaths


@pytest.mark.skipif(not OSU.is_file(), reason="OSU018 Liberty file not installed")
def test_dangling_cells_are_left_out_and_rise_fall_written() -> None:
    netlist, ann = load_design(ROOT / "rtl" / "booth8_osu018")
    keep = live_cells(netlist)
    assert 0 < len(keep) < len(netlist.cells)  # Yosys left unread cells in this netlist
    sdf = kyupy_sdf(netlist, ann)
    assert sdf.count("(INSTANCE ") == len(keep)
    k = keep[0]
    cell = netlist.cells[k]
    r, f = ann.delays[cell.name]["Y"]
    assert f"(INSTANCE u{k}) (DELAY (ABSOLUTE\n  (IOPATH {netlist.library[cell.type].inputs[0]} " \
           f"Y ({r}:{r}:{r}) ({f}:{f}:{f}))" in sdf
