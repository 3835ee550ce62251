"""Golden = the design's own settled output: an unsigned netlist flipclock never built goes
through build netlist -> info -> crosscheck -> errtable -> stuckat (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from designs import array_multiplier

from flipclock.cli import main
from sim.design import load_design
from sim.engine import TimingEngine
from sim.errtable import load_tables
from sim.plan import default_timing

OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")


@pytest.fixture(scope="module")
def umul(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unsigned 4x4 array multiplier, built with --unsigned."""
    root = tmp_path_factory.mktemp("umul")
    src = root / "umul4.v"
    src.write_text(array_multiplier(4))
    assert main(["build", "netlist", "--netlist", str(src), "--liberty", str(OSU018),
                 "--unsigned", "--out", str(root / "d")]) == 0
    return root / "d"


@pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)
def test_settled_output_is_the_unsigned_product(umul: Path) -> None:
    d = load_design(umul)
    assert not d.operands().signed
    q = np.arange(256)
    assert (TimingEngine(d.netlist, d.annotation).settled(q) == (q >> 4) * (q & 15)).all()


@pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)
@pytest.mark.parametrize("mode", ["exhaustive", "sample"])
def test_errtable_zero_wrong_at_critical_path(umul: Path, tmp_path: Path, mode: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    d = load_design(umul)
    sem, per_pin = default_timing(d.annotation.model.kind)  # what errtable uses by default
    cp = TimingEngine(d.netlist, d.annotation, semantics=sem, per_pin=per_pin).critical_path
    args = ["errtable", str(umul), "--period", str(cp // 2), "--period", str(cp),
            "--out", str(tmp_path / "t"), "--json", "--mode", mode]
    if mode == "sample":
        args += ["--samples", "8"]
    assert main(args) == 0
    rows = {r["period"]: r for r in json.loads(capsys.readouterr().out)["summary"]}
    assert rows[cp]["error_rate"] == 0.0
    assert rows[cp // 2]["error_rate"] > 0.0  # the comparison can fail
    table = load_tables(tmp_path / "t")[cp // 2]
    assert not table.signed
    assert (table.exact() == np.multiply.outer(np.arange(16), np.arange(16))).all()
    assert table.wrong_output.min() >= 0  # unsigned outputs stay unsigned


@pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)
def test_variation_refuses_what_it_would_misread(umul: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v"
    assert main(["variation", str(umul), "--period", "100", "--sigma", "0.05", "--subticks",
                 "20", "--samples", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "supports signed multipliers" in err[0] and "unsigned" in err[0]
    assert not out.exists()


@pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)
def test_stuckat_against_fault_free_unsigned(umul: Path, tmp_path: Path) -> None:
    assert main(["stuckat", str(umul), "--out", str(tmp_path / "s"), "--json"]) == 0
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    # every fault of this irredundant array is visible; none is "wrong" without a fault
    assert meta["undetectable_faults"] < meta["faults"]
    assert meta["operands"]["signed"] is False


@pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)
@pytest.mark.sim
def test_crosscheck_unsigned_icarus(umul: Path, tmp_path: Path) -> None:
    assert main(["crosscheck", str(umul), "--transitions", "200", "--simulators", "icarus",
                 "--semantics", "inertial", "--out", str(tmp_path / "c"), "--json"]) == 0


@pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)
def test_bad_declarations_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    src = tmp_path / "umul4.v"
    src.write_text(array_multiplier(4))
    base = ["build", "netlist", "--netlist", str(src), "--liberty", str(OSU018)]
    cases = {
        (): "--signed",
        ("--unsigned", "--inputs", "a,x"): "no input port 'x'",
        ("--unsigned", "--output", "q"): "no output port 'q'",
        ("--unsigned", "--inputs", "a,b,c"): "no input port 'c'",
        ("--unsigned", "--inputs", "a"): "two or more operand ports",
        ("--unsigned", "--inputs", "a,p", "--output", "p"):
            "'p' is named both as an input (--inputs a,p) and as the output (--output p)",
    }
    for extra, needle in cases.items():
        out = tmp_path / f"o{len(extra)}"
        assert main([*base, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err
        assert not out.exists()


@pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)
def test_sequential_netlist_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    src = tmp_path / "reg.v"
    src.write_text("module reg1 (a, b, clk, p);\n input a; input b; input clk; output p;\n"
                   " wire d;\n AND2X1 g (.A(a), .B(b), .Y(d));\n"
                   " DFFPOSX1 r (.D(d), .CLK(clk), .Q(p));\nendmodule\n")
    assert main(["build", "netlist", "--netlist", str(src), "--liberty", str(OSU018),
                 "--unsigned", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "sequential" in err and "\n" not in err
    assert f"error: {src}: " in err  # the user's file, not the build's temporary copy
