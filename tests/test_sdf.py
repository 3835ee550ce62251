"""SDF in and out (:mod:`sim.sdf`): the reader on commercial-style and OpenSTA files, the
fit to a netlist and its one-line refusals, any bytes in, and the round trip through
``write_sdf`` (ours read back, Icarus ``$sdf_annotate`` on the OSU018 cell models)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flipclock.defaults import RTL_DIR
from sim.delay import AnnotationError, DelayAnnotation, LibertyDelay, SdfDelay, annotate
from sim.design import read_library
from sim.reader import read_verilog
from sim.sdf import SdfError, parse_sdf, sdf_arcs, write_sdf

OSU = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
OSU_V = OSU.with_suffix(".v")
needs_osu = pytest.mark.skipif(not OSU.is_file(), reason="OSU018 Liberty file not installed")

SMALL_V = r"""
module top(a, b, c, y, z);
  input a, b, c;
  output y, z;
  wire n1;
  NAND2X1 \u1/g1  (.A(a), .B(b), .Y(n1));
  AOI21X1 u2 (.A(n1), .B(c), .C(a), .Y(y));
  INVX1 u3 (.A(n1), .Y(z));
endmodule
"""

# A commercial-style file: 100 ps units, min:typ:max triples, an escaped hierarchical
# instance, COND arcs, a non-zero INTERCONNECT and a PORT delay, comments.
SMALL_SDF = r"""
(DELAYFILE (SDFVERSION "3.0") (DESIGN "top") (VENDOR "x") (DIVIDER /)
 (TIMESCALE 100 ps)  // every number below is in units of 100 ps
 (CELL (CELLTYPE "top") (INSTANCE)
  (DELAY (ABSOLUTE
   (INTERCONNECT u1\/g1/Y u2/A (0.1:0.2:0.3) (0.4:0.5:0.6))
   (INTERCONNECT a u2/C (0:0:0)))))
 (CELL (CELLTYPE "NAND2X1") (INSTANCE u1\/g1)
  (DELAY (ABSOLUTE (IOPATH A Y (1:2:3) (4:5:6)) (IOPATH B Y (1) (2)))))
 (CELL (CELLTYPE "AOI21X1") (INSTANCE top/u2)
  (DELAY (ABSOLUTE
   (COND B==1'b1 (IOPATH A Y (1:1:1) (2:2:2)))
   (COND (B==1'b0 && C==1'b0) (IOPATH A Y (3:3:3) (1:1:1)))
   (IOPATH B Y (1::3) (1::3))
   (IOPATH C Y (2) (2))
   /* a PORT delay is a wire delay in front of the pin */
   (PORT C (0.5) (0.5)))))
 (CELL (CELLTYPE "INVX1") (INSTANCE u3)
  (DELAY (ABSOLUTE (IOPATH A Y (1.5) (0.5)))))
)
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not OSU.is_file():
        pytest.skip("OSU018 Liberty file not installed")
    d = tmp_path_factory.mktemp("small")
    (d / "top.v").write_text(SMALL_V)
    return read_verilog(d / "top.v", read_library(str(OSU)))


def _arcs(netlist, text: str, corner: str = "max"):  # type: ignore[no-untyped-def]
    return sdf_arcs(netlist, parse_sdf(text, corner=corner))


def test_header_corners_and_timescale() -> None:
    sdf = parse_sdf(SMALL_SDF, corner="min")
    assert (sdf.design, sdf.divider, sdf.corner) == ("top", "/", "min")
    assert sdf.timescale == pytest.approx(100e-12)
    nand = [a for a in sdf.arcs if a.instance == ("u1/g1",) and a.pin == "A"]
    assert [(a.rise, a.fall) for a in nand] == [(pytest.approx(1e-10), pytest.approx(4e-10))]
    typ = parse_sdf(SMALL_SDF.replace("(IOPATH B Y (1::3) (1::3))", ""), corner="typ")
    assert [a.rise for a in typ.arcs if a.pin == "A" and a.out == "Y"][0] == pytest.approx(2e-10)


@needs_osu
def test_small_netlist_cond_interconnect_port(small) -> None:  # type: ignore[no-untyped-def]
    exact, notes = _arcs(small, SMALL_SDF)
    u = 100e-12
    assert exact["\\u1/g1"]["Y"]["A"] == (pytest.approx(3 * u), pytest.approx(6 * u))
    assert exact["\\u1/g1"]["Y"]["B"] == (pytest.approx(1 * u), pytest.approx(2 * u))
    # AOI21 is negative unate: output rise comes from an input fall, so A's wire fall delay
    # (0.6) goes into the rise, its rise delay (0.3) into the fall; COND: the worst of both
    assert exact["u2"]["Y"]["A"] == (pytest.approx(3.6 * u), pytest.approx(2.3 * u))
    assert exact["u2"]["Y"]["C"] == (pytest.approx(2.5 * u), pytest.approx(2.5 * u))
    assert exact["u3"]["Y"]["A"] == (pytest.approx(1.5 * u), pytest.approx(0.5 * u))
    assert any("COND" in n and "1 arcs" in n for n in notes)
    assert any("wire delays" in n and "2 load pins" in n for n in notes)


@needs_osu
def test_design_name_of_another_top_is_a_note(small) -> None:  # type: ignore[no-untyped-def]
    """Tools write DESIGN inconsistently: a mismatch is noted, not refused."""
    exact, notes = _arcs(small, SMALL_SDF)
    assert not any("DESIGN" in n for n in notes)
    other, notes = _arcs(small, SMALL_SDF.replace('(DESIGN "top")', '(DESIGN "other")'))
    assert other == exact
    assert "DESIGN 'other' differs from the netlist's top module 'top' (instances and pins " \
           "match)" in notes


@needs_osu
def test_annotation_of_an_sdf_file(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "small.sdf"
    path.write_text(SMALL_SDF)
    ann = annotate(small, SdfDelay(path=str(path), tick_ps=10.0))
    assert ann.model.kind == "sdf" and ann.unit == "s" and ann.tick_label == "10 ps"
    assert ann.arcs["u2"]["Y"]["A"][:2] == (36, 23)
    assert ann.delays["u2"]["Y"] == (36, 30)  # the simulators' cell delay: worst arc per edge
    assert any("COND" in n for n in ann.notes)
    assert DelayAnnotation.from_json(ann.to_json()) == ann  # notes survive, hash checks
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    annotate(small, SdfDelay(path=str(path), sha256=digest))
    path.write_text(SMALL_SDF.replace("(1.5)", "(1.6)"))
    with pytest.raises(AnnotationError, match="has changed since the build read it"):
        annotate(small, SdfDelay(path=str(path), sha256=digest))


@needs_osu
@pytest.mark.parametrize(("edit", "message"), [
    (("u3)", "u9)"), "no instance 'u9'; give the SDF written for this netlist"),
    (('"INVX1"', '"BUFX2"'), "u3 is a INVX1 in the netlist, not a BUFX2"),
    (("(IOPATH C Y (2) (2))", ""), "no IOPATH C -> Y delays for instance u2"),
    (("(IOPATH C Y (2) (2))", "(IOPATH C Y (2) ())"), "no IOPATH C -> Y fall delay"),
    (("(IOPATH C Y (2) (2))", "(IOPATH C Y (2) (-2))"), "negative delay"),
    (("(IOPATH C Y (2) (2))", "(IOPATH C Y (2) (2))(IOPATH Z Y (1) (1))"),
     "cell AOI21X1 has no arc Z -> Y"),
    (("u2/C (0:0:0)", "u3/A (0:0:0)"), "joins pins on different nets"),
    (("(INSTANCE u3)", "(INSTANCE *)"), "INSTANCE * (wildcard) is not supported"),
    (("(ABSOLUTE (IOPATH A Y (1.5)", "(INCREMENT (IOPATH A Y (1.5)"),
     "INCREMENT delays are not supported"),
    (("(PORT C (0.5) (0.5))", "(DEVICE Y (1))"), "DEVICE is not supported"),
    (("(IOPATH C Y (2) (2))", "(IOPATH C Y ((2) (3)) (2))"), "pulse limits"),
    (("(IOPATH C Y (2) (2))", "(IOPATH C Y (1) (2) (3) (4))"), "4 delay values"),
    (("(TIMESCALE 100 ps)", "(TIMESCALE 3 parsecs)"), "TIMESCALE '3parsecs'"),
    (("(INTERCONNECT a u2/C (0:0:0))", "(INTERCONNECT u3/Y z (1))"),
     "wire delay into output port z is not supported"),
])
def test_refusals_are_one_line(small, edit: tuple[str, str], message: str  # type: ignore[no-untyped-def]
                               ) -> None:
    assert edit[0] in SMALL_SDF
    with pytest.raises(SdfError, match=re.escape(message)) as err:
        _arcs(small, SMALL_SDF.replace(edit[0], edit[1]))
    assert "\n" not in str(err.value)


def test_typ_missing_names_the_corner() -> None:
    with pytest.raises(SdfError, match=r"has no typ value; use --sdf-corner min or max"):
        parse_sdf("(DELAYFILE (CELL (CELLTYPE \"X\") (INSTANCE u) (DELAY (ABSOLUTE "
                  "(IOPATH A Y (0.1::0.2) (0.1::0.2))))))", corner="typ")


def test_zero_increment_is_accepted_and_timingcheck_skipped() -> None:
    sdf = parse_sdf("(DELAYFILE (CELL (CELLTYPE \"X\") (INSTANCE u) (DELAY (INCREMENT "
                    "(IOPATH A Y (0) (0:0:0)))) (TIMINGCHECK (SETUP D (posedge CK) (1)))))")
    assert sdf.arcs == [] and sdf.notes == ["timing checks skipped"]
    assert sdf.timescale == 1e-9  # the IEEE 1497 default


_VALID = SMALL_SDF.encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    st.text(alphabet='()":/\\ \n0123456789.-eE*ABCDELIOPTXY_', max_size=300).map(str.encode),
    st.tuples(st.integers(0, len(_VALID)), st.integers(0, 40), st.binary(max_size=8)).map(
        lambda t: _VALID[:t[0]] + t[2] + _VALID[t[0] + t[1]:]),
))
def test_any_bytes_give_a_result_or_one_line(data: bytes) -> None:
    for corner in ("min", "max"):
        try:
            sdf = parse_sdf(data, corner=corner)
        except SdfError as exc:
            assert "\n" not in str(exc) and str(exc)
            continue
        assert all(math.isfinite(a.rise) for a in sdf.arcs if a.rise is not None)


def test_deep_nesting_is_one_line() -> None:
    with pytest.raises(SdfError, match="not an SDF file"):
        parse_sdf(b"(" * 100_000 + b")" * 100_000)


@needs_osu
def test_write_sdf_reads_back_to_the_same_delays(tmp_path: Path) -> None:
    netlist = read_verilog(RTL_DIR / "booth8_osu018" / "gate.v", read_library(str(OSU)))
    ann = annotate(netlist, LibertyDelay(path=str(OSU), tick_ps=10.0))
    path = tmp_path / "delays.sdf"
    path.write_text(write_sdf(netlist, ann))
    back = annotate(netlist, SdfDelay(path=str(path), tick_ps=10.0))
    assert back.delays == ann.delays
    assert {c: {o: {p: a[:2] for p, a in ps.items()} for o, ps in os_.items()}
            for c, os_ in back.arcs.items()} == \
        {c: {o: {p: a[:2] for p, a in ps.items()} for o, ps in os_.items()}
         for c, os_ in ann.arcs.items()}
    text = path.read_text()
    assert "(TIMESCALE 1ns)" in text and "(INSTANCE)" not in text  # no empty top CELL


# --- Against the real tools --------------------------------------------------------------


def _icarus_products(folder: Path, sdf: Path, tmp: Path, vectors: int = 64) -> list[str]:
    """Icarus -gspecify on OSU018's own cell models with $sdf_annotate: settled products."""
    (tmp / "gate.v").write_text(re.sub(r"\bsigned\b\s*", "",
                                       (folder / "gate.v").read_text()))
    shutil.copyfile(sdf, tmp / "d.sdf")
    (tmp / "tb.v").write_text(f"""`timescale 1ps/1ps
module tb;
  reg [7:0] a, b; wire [15:0] p; integer i;
  booth dut(.a(a), .b(b), .p(p));
  initial begin
    $sdf_annotate("d.sdf", dut);
    for (i = 0; i < {vectors}; i = i + 1) begin
      a = i * 37 + 5; b = i * 91 + 3; #10000; $display("P %0d %0d %0d", a, b, p);
    end
    $finish;
  end
endmodule
""")
    subprocess.run(["iverilog", "-gspecify", "-o", "sim", "tb.v", "gate.v", str(OSU_V)],
                   cwd=tmp, check=True, capture_output=True)
    out = subprocess.run(["vvp", "sim"], cwd=tmp, check=True, capture_output=True, text=True)
    assert "SDF ERROR" not in out.stdout + out.stderr
    assert "SDF WARNING" not in out.stdout + out.stderr
    return [ln for ln in out.stdout.splitlines() if ln.startswith("P ")]


@pytest.mark.tools
@pytest.mark.sim
@needs_osu
def test_opensta_sdf_in_and_ours_out_on_icarus(tmp_path: Path) -> None:
    if shutil.which("sta") is None or shutil.which("iverilog") is None or not OSU_V.is_file():
        pytest.skip("OpenSTA, Icarus or the OSU018 Verilog cells are not installed")
    from sim.build import build_from_netlist
    from sim.design import NetlistBuild, load_design
    from sim.sta import critical_path, opensta_critical_path, opensta_write_sdf

    gate = RTL_DIR / "booth8_osu018" / "gate.v"
    sta_sdf = tmp_path / "sta.sdf"
    text = opensta_write_sdf(gate, OSU, "booth", sta_sdf)
    assert "(TIMESCALE 1ns)" in text and "INTERCONNECT" in text
    cfg = NetlistBuild(netlist=str(gate), liberty=str(OSU), delay_model="liberty", signed=True)
    timing = build_from_netlist(cfg, tmp_path / "b", sdf=SdfDelay(path=str(sta_sdf)),
                                write_sdf=True)
    assert timing["delay_model"]["kind"] == "sdf" and timing["hashes"]["sdf_sha256"]
    design = load_design(tmp_path / "b")
    exact = critical_path(design.netlist, design.annotation, exact=True).seconds
    sta = opensta_critical_path(gate, OSU, "booth")
    assert exact is not None and abs(exact - sta) <= 10e-12  # within one 10 ps tick
    # our delays.sdf and OpenSTA's give the same settled products on the cell models
    mine = _icarus_products(tmp_path / "b", tmp_path / "b" / "delays.sdf", _mk(tmp_path, "i1"))
    theirs = _icarus_products(tmp_path / "b", sta_sdf, _mk(tmp_path, "i2"))
    assert mine == theirs and len(mine) == 64
    for line in mine:
        _, a, b, p = line.split()
        sa, sb, sp = (int(x) - (1 << w) * (int(x) >> (w - 1)) for x, w in
                      ((a, 8), (b, 8), (p, 16)))
        assert sp == sa * sb


def _mk(base: Path, name: str) -> Path:
    (base / name).mkdir()
    return base / name


@pytest.mark.tools
@pytest.mark.sim
@needs_osu
def test_sdf_design_crosschecks_bit_exact_on_icarus(tmp_path: Path) -> None:
    if shutil.which("sta") is None or shutil.which("iverilog") is None:
        pytest.skip("OpenSTA or Icarus is not installed")
    from sim.build import build_from_netlist
    from sim.crosscheck import CrosscheckConfig, crosscheck
    from sim.design import NetlistBuild, load_design
    from sim.sta import opensta_write_sdf

    gate = RTL_DIR / "booth8_osu018" / "gate.v"
    opensta_write_sdf(gate, OSU, "booth", tmp_path / "sta.sdf")
    cfg = NetlistBuild(netlist=str(gate), liberty=str(OSU), delay_model="liberty", signed=True)
    build_from_netlist(cfg, tmp_path / "b", sdf=SdfDelay(path=str(tmp_path / "sta.sdf")))
    design = load_design(tmp_path / "b")
    xcfg = CrosscheckConfig(transitions=500, periods=3, seed=5, simulators=("icarus",),
                            semantics=("inertial",))
    runs = crosscheck(design.netlist, design.annotation, xcfg, tmp_path / "x",
                      log=lambda _m: None)
    checked = [r for r in runs if r.skipped is None]
    assert checked and all(r.mismatches == 0 for r in checked), \
        [r.first_mismatch for r in checked]
    assert checked[0].wrong_captures[0] > 0  # the shortest period does catch wrong products
