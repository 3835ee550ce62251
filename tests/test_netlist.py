"""Netlist IR, the pyverilog reader, the Yosys flow and the simulator-ready writer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sim.cells import DEFAULT_LIBRARY, FunctionError, parse_function
from sim.netlist import CONST0, Cell, Netlist, NetlistError
from sim.reader import read_verilog
from sim.wavesim import settle_times, simulate_transitions
from sim.writer import write_sim_verilog

HEAD = "module top(a, b, y);\n  input [1:0] a;\n  input [1:0] b;\n  output [1:0] y;\n"


def _read(tmp_path: Path, body: str) -> Netlist:
    f = tmp_path / "n.v"
    f.write_text(HEAD + body + "endmodule\n")
    return read_verilog(f, DEFAULT_LIBRARY)


def test_reader_aliases_constants_and_ports(tmp_path: Path) -> None:
    n = _read(tmp_path, """  wire w, v;
  XOR2 g1 (.A(a[0]), .B(b[0]), .Y(w));
  NAND2 g2 (.A(w), .B(a[1]), .Y(v));
  assign y = {v, 1'b0};
""")
    assert n.inputs == {"a": ["a[0]", "a[1]"], "b": ["b[0]", "b[1]"]}
    assert n.outputs["y"] == [CONST0, "v"]
    assert n.cell_counts() == {"NAND2": 1, "XOR2": 1}
    assert n.logic_depth() == 2
    assert [n.cells[i].name for i in n.order] == ["g1", "g2"]


def test_content_hash_ignores_cell_order(tmp_path: Path) -> None:
    a = _read(tmp_path, "  wire w;\n  INV g1 (.A(a[0]), .Y(w));\n  INV g2 (.A(w), .Y(y[0]));\n"
              "  assign y[1] = b[1];\n")
    b = _read(tmp_path, "  wire w;\n  INV g2 (.A(w), .Y(y[0]));\n  INV g1 (.A(a[0]), .Y(w));\n"
              "  assign y[1] = b[1];\n")
    c = _read(tmp_path, "  wire w;\n  INV g2 (.A(w), .Y(y[0]));\n  BUF g1 (.A(a[0]), .Y(w));\n"
              "  assign y[1] = b[1];\n")
    assert a.content_hash == b.content_hash != c.content_hash


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  wire w, v;\n  INV g1 (.A(v), .Y(w));\n  INV g2 (.A(w), .Y(v));\n"
         "  assign y = {w, v};\n",
         "Combinational loop through 2 cells (e.g. 'g1'); timing netlists must be acyclic: "
         "cut the loop with a register"),
        ("  wire w, u;\n  INV g1 (.A(u), .Y(w));\n  assign y = {w, w};\n",
         "Net 'u' (pin A of 'g1') is read but never driven; connect it to a driver or a "
         "constant"),
        ("  wire w;\n  INV g1 (.A(a[0]), .Y(w));\n  INV g2 (.A(a[1]), .Y(w));\n"
         "  assign y = {w, w};\n",
         "Net 'w' is driven by both 'g1' and 'g2'; a net must have exactly one driver"),
        ("  wire w;\n  FOO3 g1 (.A(a[0]), .Y(w));\n  assign y = {w, w};\n",
         "Instance 'g1': cell FOO3 is not in library 'fcgates'; pass the Liberty file of "
         "the cells this netlist was mapped to"),
        ("  INV g1 (.A(a[0]), .Y(y[0]));\n",
         "Output y[1] is connected to net 'y[1]', which is never driven"),
        ("  reg r;\n  assign y = {a[0], a[1]};\n",
         "Register 'r' in 'top': timing netlists are combinational; pass the combinational core"),
    ],
    ids=["loop", "undriven", "two-drivers", "unknown-cell", "undriven-output", "register"],
)
def test_reader_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(NetlistError, match=re.escape(message)):
        _read(tmp_path, body)


def test_reader_missing_and_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(NetlistError, match="does not exist"):
        read_verilog(tmp_path / "nope.v", DEFAULT_LIBRARY)
    bad = tmp_path / "bad.v"
    bad.write_text("module top(a); input a; INV g1 (.A(a) .Y(); endmodule\n")
    with pytest.raises(NetlistError, match=r"^Cannot parse"):
        read_verilog(bad, DEFAULT_LIBRARY)


def test_hierarchical_netlist_says_flatten(tmp_path: Path) -> None:
    f = tmp_path / "hier.v"
    f.write_text("module half(x, z); input x; output z; INV g (.A(x), .Y(z)); endmodule\n"
                 "module top(a, y); input a; output y; half u1 (.x(a), .z(y)); endmodule\n")
    with pytest.raises(NetlistError, match=re.escape(
            "Instance 'u1' is of module 'half' defined in this file; the netlist must be "
            "flat: yosys -p 'hierarchy -top top; flatten; write_verilog -noattr flat.v'")):
        read_verilog(f, DEFAULT_LIBRARY)


def test_errors_name_the_given_file_name(tmp_path: Path) -> None:
    """A build reads its own copy of the user's netlist; errors name the user's file."""
    copy = tmp_path / "copy.v"
    copy.write_text(HEAD + "  INV g1 (.A(a[0]), .Y(y[0]));\nendmodule\n")
    with pytest.raises(NetlistError, match=r"^users\.v: Output y\[1\]"):
        read_verilog(copy, DEFAULT_LIBRARY, name="users.v")
    with pytest.raises(NetlistError, match=r"^users\.v: No module 'nosuch'"):
        read_verilog(copy, DEFAULT_LIBRARY, top="nosuch", name="users.v")
    copy.write_text("module top(a); input a; INV g1 (.A(a) .Y(); endmodule\n")
    with pytest.raises(NetlistError, match=r"^Cannot parse 'users\.v'") as err:
        read_verilog(copy, DEFAULT_LIBRARY, name="users.v")
    assert str(copy) not in str(err.value)


def test_function_parser() -> None:
    assert parse_function("(A B)") == ("and", ("pin", "A"), ("pin", "B"))
    assert parse_function("!(A+B)") == ("not", ("or", ("pin", "A"), ("pin", "B")))
    assert parse_function("A'") == ("not", ("pin", "A"))
    with pytest.raises(FunctionError, match="Unexpected end"):
        parse_function("(A B")
    mux = DEFAULT_LIBRARY["MUX2"]
    assert [mux.evaluate("Y", {"A": a, "B": b, "S": s}) for s in (0, 1) for a in (0, 1)
            for b in (0, 1)] == [0, 0, 1, 1, 0, 1, 0, 1]
    assert mux.sense("Y", "S") == "non_unate"
    assert DEFAULT_LIBRARY["NAND2"].sense("Y", "A") == "negative_unate"


def test_writer_statements(tmp_path: Path) -> None:
    n = _read(tmp_path, "  wire w;\n  XOR2 g1 (.A(a[0]), .B(b[0]), .Y(w));\n"
              "  INV g2 (.A(w), .Y(y[0]));\n  assign y[1] = 1'b1;\n")
    delays = {"g1": {"Y": (3, 2)}, "g2": {"Y": (1, 1)}}
    inertial = write_sim_verilog(n, delays)
    assert "  assign #(3, 2) n0 = (4'b0110 >> {b[0], a[0]});\n" in inertial
    assert "  assign #1 n1 = ~n0;\n" in inertial
    assert "  assign y[0] = n1;\n" in inertial
    transport = write_sim_verilog(n, delays, semantics="transport")
    # rise 3 > fall 2: the AND of the function delayed by 2 and by 3 ticks
    assert "  always @(a[0] or b[0]) n0_d0 <= #2 (4'b0110 >> {b[0], a[0]});\n" in transport
    assert "  always @(n0_d0) n0_d1 <= #1 n0_d0;\n" in transport
    assert "  assign n0 = n0_d0 & n0_d1;\n" in transport
    assert "  always @(n0) n1 <= #1 ~n0;\n" in transport
    zero = write_sim_verilog(n)
    assert "#" not in zero.split("module")[1]
    assert "assign y[1] = 1'b1;" in zero
    with pytest.raises(ValueError, match="Semantics must be 'inertial' or 'transport', not 'x'"):
        write_sim_verilog(n, delays, semantics="x")  # type: ignore[arg-type]


def test_wavesim_transport_settling(tmp_path: Path) -> None:
    # y0 = ~(a0 ^ b0) through 2 cells of 3 and 1 ticks
    n = _read(tmp_path, "  wire w;\n  XOR2 g1 (.A(a[0]), .B(b[0]), .Y(w));\n"
              "  INV g2 (.A(w), .Y(y[0]));\n  assign y[1] = b[1];\n")
    delays = {"g1": {"Y": (3, 3)}, "g2": {"Y": (1, 1)}}
    prev = {"a": np.array([0, 0, 1]), "b": np.array([0, 0, 2])}
    cur = {"a": np.array([1, 0, 1]), "b": np.array([0, 2, 2])}
    y = simulate_transitions(n, delays, prev, cur, horizon=6)["y"]
    # transition 0: y0 1 -> 0 at t = 4; transition 1: y1 0 -> 1 at t = 0 (a wire)
    assert y[:, 0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert y[:, 1].tolist() == [1, 3, 3, 3, 3, 3, 3, 3]
    assert settle_times(y).tolist() == [4, 0, -1]


def test_netlist_rejects_unconnected_input_pin() -> None:
    with pytest.raises(NetlistError, match=re.escape(
            "Input pin 'B' of cell 'g' (AND2) is unconnected")):
        Netlist("t", {"a": ["a[0]"]}, {"y": ["w"]},
                [Cell("g", "AND2", {"A": "a[0]", "Y": "w"})], DEFAULT_LIBRARY)


@pytest.mark.tools
def test_sequential_liberty_cell_is_named(tmp_path: Path) -> None:
    from flipclock.defaults import OSU018
    from sim.liberty import read_liberty

    f = tmp_path / "seq.v"
    f.write_text("module top(d, clk, q); input d, clk; output q;\n"
                 "  DFFPOSX1 r (.D(d), .CLK(clk), .Q(q));\nendmodule\n")
    with pytest.raises(NetlistError, match=re.escape(
            "Instance 'r': cell DFFPOSX1 is sequential; timing netlists must be combinational")):
        read_verilog(f, read_liberty(OSU018))


def test_reader_writes_no_parser_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser's tables live in memory: concurrent readers share no temporary files."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr("sim.reader._PARSER", None)  # build the parser here, not earlier
    n = _read(tmp_path, "  INV g1 (.A(a[0]), .Y(y[0]));\n  INV g2 (.A(a[1]), .Y(y[1]));\n")
    assert len(n.cells) == 2
    assert list(scratch.iterdir()) == []


def test_reader_syntax_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "n.v"
    f.write_text(HEAD + "  INV g1 (.A(a[0]) .Y(y[0]));\nendmodule\n")
    with pytest.raises(NetlistError, match=r'syntax error at line 5 before "\."') as info:
        read_verilog(f, DEFAULT_LIBRARY)
    assert "\n" not in str(info.value)


@pytest.mark.tools
def test_reader_preprocesses_directives(tmp_path: Path) -> None:
    """A netlist with ` directives goes through Icarus' preprocessor first."""
    f = tmp_path / "n.v"
    f.write_text("`timescale 1ns/1ps\n`define GATE INV\n" + HEAD
                 + "  `GATE g1 (.A(a[0]), .Y(y[0]));\n  `GATE g2 (.A(a[1]), .Y(y[1]));\n"
                 + "endmodule\n")
    assert [c.type for c in read_verilog(f, DEFAULT_LIBRARY).cells] == ["INV", "INV"]


@pytest.mark.parametrize(("body", "message"), [
    ("  wire [99999999:0] w;\n", "wider than 65536 bits"),
    ("  assign y = {70000{1'b0}};\n", "wider than 65536 bits"),
    ("  assign y = 2'bx1;\n", "has x/z bits"),
    ("  INV g1 (.A(a[b]), .Y(y[0]));\n", "A bit index must be a constant number"),
    ("  assign y = " + "{" * 100 + "a" + "}" * 100 + ";\n", "nest deeper than 64 levels"),
], ids=["wide-wire", "wide-repeat", "x-bits", "variable-index", "deep-concat"])
def test_reader_refuses_absurd_constructs(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(NetlistError, match=re.escape(message)):
        _read(tmp_path, body)
