"""Designs flipclock never built, written by our own generators (:mod:`designs`): a ripple
and a Kogge-Stone adder and a three-operand multiply-accumulate ``a * b + c`` go through
build netlist -> info -> crosscheck -> errtable -> stuckat (issue 11).

The arithmetic function of each design appears in this file only, to check the generators
and the files the commands write; every command judges captures against the design's own
settled output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from designs import kogge_stone_adder, mac, ripple_adder

from flipclock.cli import main
from sim.delay import UnitDelay, annotate
from sim.design import load_design
from sim.engine import TimingEngine
from sim.errtable import load_tables
from sim.liberty import read_liberty
from sim.operands import Operands, settled_codes
from sim.reader import read_verilog
from sim.tables import TableError

OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")

pytestmark = pytest.mark.tools  # OSU018 cells (Debian qflow-tech-osu018; CI installs it)

# name -> (Verilog, --inputs, --output)
DESIGNS: dict[str, tuple[Callable[[], str], str, str]] = {
    "rip4": (lambda: ripple_adder(4), "a,b", "s"),
    "ks4": (lambda: kogge_stone_adder(4), "a,b", "s"),
    "rip12": (lambda: ripple_adder(12), "a,b", "s"),
    "mac": (lambda: mac(8, 16), "a,b,c", "p"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``built(name)``: the design folder of ``DESIGNS[name]`` (built once, --unsigned)."""
    root = tmp_path_factory.mktemp("designs")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            text, inputs, output = DESIGNS[name]
            src = root / f"{name}.v"
            src.write_text(text())
            assert main(["build", "netlist", "--netlist", str(src), "--liberty", str(OSU018),
                         "--inputs", inputs, "--output", output, "--unsigned", "--out",
                         str(root / name)]) == 0
            cache[name] = root / name
        return cache[name]

    return get


def _by_period(out: Path) -> tuple[int, dict[int, Any]]:
    """The critical path of an errtable run in ``out`` and its summary rows by period; the
    run's periods were given as fractions of it (``--period-frac ...,1``), so whatever
    semantics is the default, the last period is the critical path of that semantics."""
    meta = json.loads((out / "meta.json").read_text())
    rows = pd.read_csv(out / "summary.csv").set_index("period")
    cp = int(meta["critical_path_ticks"])
    assert rows.index.max() == cp
    return cp, {int(p): r for p, r in rows.iterrows()}


# --- the generators compute their functions ------------------------------------------------
@pytest.mark.parametrize("n", [2, 4, 5, 8, 12])
@pytest.mark.parametrize("kind", ["ripple", "kogge_stone"])
def test_adders_add(kind: str, n: int, tmp_path: Path) -> None:
    src = tmp_path / "add.v"
    src.write_text(ripple_adder(n) if kind == "ripple" else kogge_stone_adder(n))
    netlist = read_verilog(src, read_liberty(str(OSU018)))
    eng = TimingEngine(netlist, annotate(netlist, UnitDelay()), inputs=["a", "b"], outputs=["s"])
    rng = np.random.default_rng(n)
    a, b = rng.integers(0, 1 << n, (2, 4096))
    a[:2], b[:2] = (1 << n) - 1, (1, (1 << n) - 1)  # the carry out of every bit
    got = settled_codes(eng, Operands("a", "b", "s", signed=False), {"a": a, "b": b})
    assert (got == a + b).all()


def test_mac_multiplies_and_accumulates(tmp_path: Path) -> None:
    src = tmp_path / "mac.v"
    src.write_text(mac(8, 16))
    netlist = read_verilog(src, read_liberty(str(OSU018)))
    assert {k: len(v) for k, v in netlist.inputs.items()} == {"a": 8, "b": 8, "c": 16}
    eng = TimingEngine(netlist, annotate(netlist, UnitDelay()), inputs=["a", "b", "c"])
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 20000))
    c = rng.integers(0, 1 << 16, 20000)
    a[:3], b[:3], c[:3] = 255, 255, (0, 510, 65535)  # largest product; wrap-around
    got = settled_codes(eng, Operands.of(["a", "b", "c"], "p", False), {"a": a, "b": b, "c": c})
    assert (got == (a * b + c) % (1 << 16)).all()


def test_generators_refuse_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n >= 2, not 1"):
        ripple_adder(1)
    with pytest.raises(ValueError, match="n >= 2, not 0"):
        kogge_stone_adder(0)
    with pytest.raises(ValueError, match="acc >= 2n"):
        mac(8, 12)


# --- build -> info ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rip4", "ks4", "mac"])
def test_build_records_operands_and_info_reads_them(
        built: Callable[[str], Path], name: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = built(name)
    capsys.readouterr()
    assert main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    _, inputs, output = DESIGNS[name]
    assert info["operands"] == {"inputs": inputs.split(","), "output": output, "signed": False}
    assert info["critical_path"]["ticks"] > 0
    ops = load_design(folder).operands()
    assert ops.inputs == tuple(inputs.split(",")) and ops.pairs == (name != "mac")


# --- crosscheck --------------------------------------------------------------------------------
@pytest.mark.sim
@pytest.mark.parametrize("name", ["rip4", "ks4", "mac"])
def test_crosscheck_icarus(built: Callable[[str], Path], name: str, tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert main(["crosscheck", str(built(name)), "--transitions", "200", "--periods", "3",
                 "--simulators", "icarus", "--semantics", "inertial,transport", "--out",
                 str(out), "--json"]) == 0
    report = json.loads((out / "crosscheck.json").read_text())
    assert report["operands"]["inputs"] == DESIGNS[name][1].split(",")
    for run in report["runs"]:
        assert run["mismatches"] == 0, run["first_mismatch"]
        assert run["captures"] == run["transitions"] * len(run["periods"]) >= 600
        assert run["wrong_captures"][-1] == 0  # at the critical path
    if name == "mac":  # the sample is meaningful: the shortest period captures wrong sums
        assert all(run["wrong_captures"][0] > 0 for run in report["runs"])


@pytest.mark.sim
@pytest.mark.slow  # Verilator compiles the netlist (about 15 s)
def test_crosscheck_verilator_inertial(built: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert main(["crosscheck", str(built("ks4")), "--transitions", "200", "--periods", "3",
                 "--simulators", "verilator", "--semantics", "inertial", "--out", str(out),
                 "--json"]) == 0
    (run,) = json.loads((out / "crosscheck.json").read_text())["runs"]
    assert run["skipped"] is None and run["mismatches"] == 0 and run["captures"] == 648


# --- errtable ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rip4", "ks4"])
def test_adder_exhaustive_zero_wrong_at_critical_path(
        built: Callable[[str], Path], name: str, tmp_path: Path) -> None:
    out = tmp_path / "t"
    assert main(["errtable", str(built(name)), "--period-frac", "0.5,1", "--out", str(out),
                 "--json"]) == 0
    cp, rows = _by_period(out)
    low = min(rows)
    assert rows[cp]["error_rate"] == 0.0
    assert rows[low]["error_rate"] > 0.0  # the comparison can fail
    table = load_tables(out)[low]
    q = np.arange(16)
    assert (table.exact() == np.add.outer(q, q)).all()  # the settled output is the sum
    assert table.wrong_output.min() >= 0 and table.wrong_output.max() < 32


def test_mac_sampled_zero_wrong_at_critical_path(built: Callable[[str], Path],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "t"
    args = ["errtable", str(built("mac")), "--mode", "sample", "--samples", "20000", "--seed",
            "3", "--period-frac", "0.5,1", "--json"]
    assert main([*args, "--out", str(out)]) == 0
    cp, rows = _by_period(out)
    half = min(rows)
    assert rows[cp]["wrong_captures"] == 0 and rows[cp]["error_rate"] == 0
    assert 0 < rows[cp]["ci_high"] < 1e-3  # Wilson: no wrong of 20,000 is not 0 %
    assert rows[cp]["ci_low"] == 0  # exactly: not a rounding residue printed as 1e-19
    low = rows[half]
    assert low["wrong_captures"] > 0 and low["ci_low"] < low["error_rate"] < low["ci_high"]
    assert 0 < low["mean_abs_error"] <= low["max_abs_error"] < 1 << 16
    meta = json.loads((out / "meta.json").read_text())
    assert meta["table"] == "transitions" and meta["transitions_per_period"] == 20000
    assert meta["operands"] == {"inputs": ["a", "b", "c"], "output": "p", "signed": False}
    assert meta["operand_widths"] == {"a": 8, "b": 8, "c": 16}
    assert f"| {cp} | 0 |" in (out / "report.md").read_text()
    # every transition is stored; the settled output is the MAC's, and "correct" means equal
    full = pd.read_parquet(out / f"full_T{half}.parquet")
    assert len(full) == 20000
    assert (full.settled == (full.cur_a * full.cur_b + full.cur_c) % (1 << 16)).all()
    assert (full.correct == (full.output == full.settled)).all()
    assert int((~full.correct).sum()) == low["wrong_captures"]
    # seeded: a second run into another folder gives the same transitions and captures
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "meta.json").read_text())
    assert again["content_hash"] == meta["content_hash"]
    # a table reader (nnmap) is told what the folder holds, in one line
    with pytest.raises(TableError, match="sampled transitions"):
        load_tables(out)


def test_wide_adder_sampled(built: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "t"
    assert main(["errtable", str(built("rip12")), "--mode", "sample", "--samples", "5000",
                 "--period-frac", "0.33,1", "--out", str(out), "--json"]) == 0
    cp, rows = _by_period(out)
    assert rows[cp]["wrong_captures"] == 0 and rows[min(rows)]["wrong_captures"] > 0
    assert json.loads((out / "meta.json").read_text())["operand_widths"] == {"a": 12, "b": 12}


# --- stuck-at ------------------------------------------------------------------------------------
def test_stuckat_adder_over_all_pairs(built: Callable[[str], Path], tmp_path: Path) -> None:
    assert main(["stuckat", str(built("ks4")), "--out", str(tmp_path / "s"), "--json"]) == 0
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["pairs"] == 256 and "sampled" not in meta
    frame = pd.read_csv(tmp_path / "s" / "stuckat.csv")
    # the carry out s[4] stuck at 1 is wrong exactly when a + b < 16: 136 of 256 pairs
    row = frame[(frame.net == "s[4]") & (frame.fault == "SA1")].iloc[0]
    assert row.error_rate == 136 / 256 and row.max_abs_error == 16


def test_stuckat_mac_sampled(built: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert main(["stuckat", str(built("mac")), "--nets", "c[15],a[7],n0", "--out", str(out),
                 "--json"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sampled"]["vectors"] == 65536 and meta["pairs"] is None
    frame = pd.read_csv(out / "stuckat.csv").set_index(["net", "fault"])
    # c[15] stuck flips bit 15 of the sum whenever c[15] differs: half the vectors
    for fault in ("SA0", "SA1"):
        assert abs(frame.loc[("c[15]", fault), "error_rate"] - 0.5) < 0.02
        assert frame.loc[("c[15]", fault), "max_abs_error"] == 1 << 15
    assert "65536 random input vectors" in (out / "report.md").read_text()
    refused = tmp_path / "t"  # no tables over operand pairs to write
    assert main(["stuckat", str(built("mac")), "--tables-top", "1", "--out", str(refused)]) == 2
    assert not refused.exists()


# --- bad input: one line, nothing written ----------------------------------------------------
def test_bad_ports_are_one_line(built: Callable[[str], Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "mac.v"
    src.write_text(mac(8, 16))
    base = ["build", "netlist", "--netlist", str(src), "--liberty", str(OSU018), "--unsigned"]
    cases = {
        ("--inputs", "a,b,x"): "no input port 'x'",
        ("--inputs", "a,b,a"): "port 'a' twice",
        ("--inputs", "a,b"): "--inputs a,b,c",  # an input left out is named in the fix
        ("--inputs", "a,b,c", "--output", "q"): "no output port 'q'",
    }
    for i, (extra, needle) in enumerate(cases.items()):
        out = tmp_path / f"o{i}"
        assert main([*base, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err, err
        assert not out.exists()


@pytest.mark.parametrize("name", ["mac", "rip12"])
def test_exhaustive_names_sample_mode(built: Callable[[str], Path], name: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t"
    folder = built(name)
    capsys.readouterr()
    assert main(["errtable", str(folder), "--period", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--mode sample" in err and "\n" not in err, err
    assert not out.exists()


def test_variation_refuses_the_mac(built: Callable[[str], Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = built("mac")
    capsys.readouterr()
    assert main(["variation", str(folder), "--period", "100", "--sigma", "0.05", "--subticks",
                 "20", "--samples", "1", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert "signed multipliers" in err and "\n" not in err, err
