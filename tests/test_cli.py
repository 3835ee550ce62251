"""The command line: builds, info, --json, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flipclock.defaults import OSU018

ROOT = Path(__file__).resolve().parent.parent


def flipclock(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "flipclock", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False)


def assert_user_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback, nothing on stdout."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("flipclock: error: ")
    assert message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def booth8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "booth8"
    proc = flipclock("build", "booth", "--width", "8", "--tree", "dadda", "--cpa", "ripple",
                     "--delay-model", "unit", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "critical" in proc.stdout
    return out


def test_build_writes_every_file(booth8: Path) -> None:
    names = sorted(p.name for p in booth8.iterdir())
    assert names == ["build.json", "delays.json", "gate.json", "gate.v", "rtl.v", "rtl_reg.v",
                     "sim_inertial.v", "sim_transport.v", "sim_zero.v", "timing.json"]
    # nothing temporary left beside the output folder
    assert [p.name for p in booth8.parent.iterdir()] == ["booth8"]


def test_info_text_and_json(booth8: Path) -> None:
    text = flipclock("info", str(booth8))
    assert text.returncode == 0, text.stderr
    for key in ("cells", "nets", "logic depth", "critical", "delay model", "hashes"):
        assert key in text.stdout
    info = json.loads(flipclock("info", str(booth8), "--json").stdout)
    assert info["design"] == "booth"
    assert info["n_cells"] == sum(info["cells"].values())
    # unit delays: the critical path is the logic depth
    assert info["critical_path"]["ticks"] == info["logic_depth"]
    assert len(info["hashes"]["netlist"]) == 64


def test_rebuild_is_deterministic(booth8: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert flipclock("build", "booth", "--out", str(again)).returncode == 0
    for name in ("rtl.v", "gate.v", "delays.json", "sim_inertial.v"):
        assert (again / name).read_bytes() == (booth8 / name).read_bytes(), name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "adder", "--out", "x"], "Unknown design 'adder'"),
        (["build", "booth", "--width", "7", "--out", "x"],
         "Multiplier width must be an even integer between 4 and 16, not 7"),
        (["build", "booth", "--width", "18", "--out", "x"],
         "Multiplier width must be an even integer between 4 and 16, not 18"),
        (["build", "booth", "--tree", "foo", "--out", "x"],
         "Reduction tree must be one of 'array', 'wallace', 'dadda', not 'foo'"),
        (["build", "booth", "--delay-model", "magic", "--out", "x"],
         "Unknown delay model 'magic'"),
        (["build", "booth", "--delay-model", "liberty", "--out", "x"],
         "--delay-model liberty needs --liberty FILE"),
        (["build", "booth", "--liberty", "/nonexistent.lib", "--out", "x"],
         "Liberty file '/nonexistent.lib' does not exist"),
        (["build", "netlist", "--out", "x"], "needs --netlist FILE"),
        (["build", "booth", "--delay-model", "effort", "--ticks-per-tau", "0", "--out", "x"],
         "ticks_per_tau must be"),
        (["info", "/nonexistent"], "is not a flipclock build (no build.json)"),
    ],
)
def test_bad_arguments(args: list[str], message: str, tmp_path: Path) -> None:
    assert_user_error(flipclock(*args, cwd=tmp_path), message)
    assert not (tmp_path / "x").exists()


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_user_error(flipclock("build", "booth", "--out", str(blocker / "sub")),
                      "choose a writable --out folder")


def test_liberty_without_needed_cells(tmp_path: Path) -> None:
    lib = tmp_path / "tiny.lib"
    lib.write_text('library(tiny) {\n  cell(BUFX1) {\n    area : 1;\n'
                   '    pin(A) { direction : input; capacitance : 0.01; }\n'
                   '    pin(Y) { direction : output; function : "A"; }\n  }\n}\n')
    proc = flipclock("build", "booth", "--liberty", str(lib), "--delay-model", "unit",
                     "--out", str(tmp_path / "x"))
    assert_user_error(proc, "Synthesis failed")
    assert not (tmp_path / "x").exists()


def test_import_netlist_with_loop_and_corrupt_info(tmp_path: Path) -> None:
    loop = tmp_path / "loop.v"
    loop.write_text("module top(a, y); input a; output y; wire w, v;\n"
                    "  NAND2 g1 (.A(a), .B(v), .Y(w));\n  INV g2 (.A(w), .Y(v));\n"
                    "  assign y = v;\nendmodule\n")
    assert_user_error(flipclock("build", "netlist", "--netlist", str(loop), "--out",
                                str(tmp_path / "x")), "Combinational loop through 2 cells")
    assert not (tmp_path / "x").exists()
    undriven = tmp_path / "undriven.v"
    undriven.write_text("module top(a, y); input a; output y; wire u;\n"
                        "  NAND2 g1 (.A(a), .B(u), .Y(y));\nendmodule\n")
    assert_user_error(flipclock("build", "netlist", "--netlist", str(undriven), "--out",
                                str(tmp_path / "x")),
                      "Net 'u' (pin B of 'g1') is read but never driven")
    good = tmp_path / "good.v"
    good.write_text("module top(a, y); input a; output y; wire w;\n"
                    "  INV g1 (.A(a), .Y(w));\n  INV g2 (.A(w), .Y(y));\nendmodule\n")
    out = tmp_path / "good"
    assert flipclock("build", "netlist", "--netlist", str(good), "--out", str(out)).returncode == 0
    info = json.loads(flipclock("info", str(out), "--json").stdout)
    assert info["critical_path"]["ticks"] == 2
    (out / "timing.json").write_text('{"design": ')
    assert_user_error(flipclock("info", str(out)), "is corrupted")


@pytest.mark.tools
def test_build_with_liberty_file(tmp_path: Path) -> None:
    out = tmp_path / "osu"
    proc = flipclock("build", "booth", "--liberty", OSU018, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["delay_model"]["kind"] == "liberty"
    assert all(name.endswith(("X1", "X2", "X4", "X8")) for name in info["cells"])
    ns = info["critical_path"]["seconds"] * 1e9
    assert 1.0 < ns < 20.0  # a 0.18 um 8-bit multiplier: a few ns
