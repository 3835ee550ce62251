"""Liberty parser and reader: syntax, OSU018 cells, NLDM lookup, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.liberty import LibertyError, LookupTable, parse_liberty, read_liberty

OSU = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
needs_osu = pytest.mark.skipif(not OSU.is_file(), reason="OSU018 Liberty file not installed")

SMALL = r"""
/* a tiny library */
library (tiny) {
  time_unit : "1ps" ;
  capacitive_load_unit (1, ff);
  // the table variables are swapped here on purpose
  lu_table_template (swapped) {
    variable_1 : input_net_transition;
    variable_2 : total_output_net_capacitance;
    index_1 ("0, 1");
    index_2 ("0, 10, 20");
  }
  cell (NAND) {
    pin (A, B) { direction : input; capacitance : 2.0; rise_capacitance : 2.5; }
    pin (Y) {
      direction : output;
      function : "!(A \
                   B)";
      timing () {
        related_pin : "A B";
        timing_sense : negative_unate;
        cell_rise (swapped) {
          values ("1, 2, 3", \
                  "11, 12, 13");
        }
        cell_fall (scalar) { values ("7"); }
      }
    }
  }
  cell (DFF) {
    ff (IQ, IQN) { next_state : "D"; clocked_on : "CK"; }
    pin (D) { direction : input; }
    pin (CK) { direction : input; clock : true; }
    pin (Q) { direction : output; function : "IQ"; }
  }
}
"""


def test_parse_groups_attributes_comments_continuations() -> None:
    lib = parse_liberty(SMALL)
    assert lib.kind == "library" and lib.name == "tiny"
    assert lib.simple["time_unit"] == "1ps"
    assert lib.complex["capacitive_load_unit"] == ["1", "ff"]
    cell = lib.find("cell")[0]
    assert cell.name == "NAND"
    assert cell.find("pin")[0].args == ["A", "B"]
    timing = cell.find("pin")[1].find("timing")[0]
    assert timing.simple["related_pin"] == "A B"
    assert timing.find("cell_rise")[0].complex["values"] == ["1, 2, 3", "11, 12, 13"]


def test_read_small_library(tmp_path: Path) -> None:
    path = tmp_path / "tiny.lib"
    path.write_text(SMALL)
    lib = read_liberty(path)
    assert lib.name == "tiny" and lib.source == str(path.resolve())
    assert lib.time_unit == pytest.approx(1e-12) and lib.capacitance_unit == pytest.approx(1e-15)
    assert set(lib.cells) == {"NAND"} and lib.skipped == {"DFF": "sequential"}
    nand = lib["NAND"]
    assert nand.inputs == ("A", "B")
    assert nand.evaluate("Y", {"A": 1, "B": 1}) == 0
    assert nand.capacitance == {"A": 2.0, "B": 2.0}
    assert nand.edge_capacitance["A"] == (2.5, 2.0)
    (arc,) = nand.arcs[("B", "Y")]
    assert arc.sense == "negative_unate"
    assert arc.cell_rise is not None and arc.cell_fall is not None
    # swapped template: index_1 is the slew, index_2 the load -> stored transposed
    assert arc.cell_rise.loads == (0.0, 10.0, 20.0) and arc.cell_rise.slews == (0.0, 1.0)
    assert arc.cell_rise(10.0, 1.0) == pytest.approx(12.0)
    assert arc.cell_rise(15.0, 0.5) == pytest.approx(7.5)
    assert arc.cell_fall(123.0, 4.0) == 7.0
    assert arc.rise_transition is None


@needs_osu
def test_osu_cells_and_units() -> None:
    lib = read_liberty(OSU)
    assert lib.name == "osu018_stdcells"
    assert len(lib.cells) == 26
    assert lib.skipped == {
        "DFFNEGX1": "sequential", "DFFPOSX1": "sequential", "DFFSR": "sequential",
        "LATCH": "sequential", "TBUFX1": "tristate", "TBUFX2": "tristate",
    }
    assert lib.time_unit == pytest.approx(1e-9)
    assert lib.capacitance_unit == pytest.approx(1e-12)
    and2 = lib["AND2X1"]
    assert and2.functions == {"Y": "(A B)"}
    assert and2.capacitance["A"] == 0.0129077
    assert and2.edge_capacitance["A"] == (0.0129077, 0.0128842)
    assert and2.truth_table("Y") == 0b1000
    assert lib["FAX1"].outputs == ("YC", "YS")
    assert lib["XOR2X1"].arcs[("A", "Y")][0].sense == "non_unate"


@needs_osu
def test_osu_interpolation_by_hand() -> None:
    arc = read_liberty(OSU)["AND2X1"].arcs[("A", "Y")][0]
    table = arc.cell_rise
    assert table is not None
    assert table.loads == (0.005, 0.0125, 0.025, 0.075, 0.15)
    assert table.slews == (0.06, 0.18, 0.42, 0.6, 1.2)
    assert table(0.025, 0.42) == pytest.approx(0.116541, abs=1e-12)  # grid point
    # load 0.01 is 2/3 of the way 0.005 -> 0.0125; slew 0.1 is 1/3 of 0.06 -> 0.18
    expected = (1 / 3 * 2 / 3 * 0.06367 + 2 / 3 * 2 / 3 * 0.078318
                + 1 / 3 * 1 / 3 * 0.070461 + 2 / 3 * 1 / 3 * 0.085985)
    assert table(0.01, 0.1) == pytest.approx(expected, rel=1e-12)
    assert table(0.01, 0.1) == pytest.approx(0.0758937, abs=1e-7)
    # below the first slew point: linear extrapolation along the first segment
    assert table(0.005, 0.0) == pytest.approx(1.5 * 0.06367 - 0.5 * 0.070461, rel=1e-12)


def test_lookup_table_extrapolates_beyond_both_ends() -> None:
    t = LookupTable(loads=(1.0, 2.0), slews=(0.0, 1.0), values=((0.0, 1.0), (10.0, 11.0)))
    assert t(3.0, 0.0) == pytest.approx(20.0)
    assert t(0.0, 2.0) == pytest.approx(-8.0)
    assert t(1.5, 0.5) == pytest.approx(5.5)


def test_missing_file() -> None:
    with pytest.raises(LibertyError,
                       match=r"^Liberty file 'nope.lib' does not exist; check the path$"):
        read_liberty("nope.lib")


def test_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.lib"
    path.write_text("library (x) {\n  time_unit : \"1ns\";\n  cell (A) {\n    pin (Y) {{\n")
    with pytest.raises(LibertyError, match=r"bad\.lib:4: expected an attribute or group "
                                           r"name, found '\{'; fix the Liberty syntax$"):
        read_liberty(path)


def test_unclosed_group_and_comment() -> None:
    with pytest.raises(LibertyError, match=r"<string>:1: group 'library' opened on line 1 "
                                           "is not closed"):
        parse_liberty("library (x) { a : 1;")
    with pytest.raises(LibertyError, match=r"<string>:2: unterminated comment"):
        parse_liberty("library (x) {\n /* never closed\n}")


def test_cell_without_function(tmp_path: Path) -> None:
    path = tmp_path / "nofunc.lib"
    path.write_text("library (x) { cell (BUF) { pin (A) { direction : input; }\n"
                    "pin (Y) { direction : output; } } }\n")
    with pytest.raises(LibertyError, match=r"^Liberty cell BUF output pin Y has no function; "
                                           "give it a function or remove the cell"):
        read_liberty(path)


@needs_osu
def test_skipped_cell_message() -> None:
    lib = read_liberty(OSU)
    assert lib.unknown_cell_message("DFFPOSX1") == (
        "cell DFFPOSX1 is sequential; timing netlists must be combinational: pass the "
        "combinational core without its registers"
    )
    assert lib.unknown_cell_message("TBUFX1").startswith("cell TBUFX1 is tristate")
    assert "not in library 'osu018_stdcells'" in lib.unknown_cell_message("FOO")
