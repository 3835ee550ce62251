"""The command line: builds, info, --json, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flipclock.defaults import OSU018
from sim.atomic import MARKER

ROOT = Path(__file__).resolve().parent.parent


def flipclock(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "flipclock", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False)


def flipclock_here(capsys: pytest.CaptureFixture[str], *args: str
                   ) -> subprocess.CompletedProcess[str]:
    """The same as :func:`flipclock`, in this process (fast: no interpreter start-up)."""
    from flipclock.cli import main

    try:
        rc = main(list(args))
    except SystemExit as exc:  # argparse refusing a flag
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), rc, out, err)


def assert_user_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback, nothing on stdout."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("flipclock: error: ")
    assert message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def assert_refused_by_argparse(proc: subprocess.CompletedProcess[str], message: str) -> None:
    """Refused while the flags are parsed, before any work: the same one line."""
    assert_user_error(proc, message)
    assert proc.stdout == ""


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
    assert names == [MARKER, "build.json", "delays.json", "gate.json", "gate.v", "rtl.v",
                     "rtl_reg.v", "sim_inertial.v", "sim_transport.v", "sim_zero.v",
                     "timing.json"]
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
        (["build", "booth", "--width", "7", "--out", "x"],
         "Multiplier width must be an even integer between 4 and 16, not 7"),
        (["build", "booth", "--width", "18", "--out", "x"],
         "Multiplier width must be an even integer between 4 and 16, not 18"),
        (["build", "booth", "--delay-model", "liberty", "--out", "x"],
         "--delay-model liberty needs --liberty FILE"),
        (["build", "booth", "--liberty", "/nonexistent.lib", "--out", "x"],
         "argument --liberty: '/nonexistent.lib' does not exist"),
        (["build", "booth", "--delay-model", "effort", "--liberty", OSU018, "--out", "x"],
         "The effort delay model needs the built-in gates"),
        (["build", "booth", "--tick-ps", "5", "--out", "x"],
         "--tick-ps sets the tick of the liberty delay model"),
        (["build", "booth", "--ticks-per-tau", "3", "--out", "x"],
         "--ticks-per-tau applies to the effort delay model"),
        (["build", "netlist", "--netlist", "/nonexistent.v", "--out", "x"],
         "argument --netlist: '/nonexistent.v' does not exist"),
        (["build", "sram", "--depth", "1", "--out", "x"],
         "SRAM depth must be an integer between 2"),
        (["info", "/nonexistent"], "is not a flipclock build (no build.json)"),
    ],
)
def test_bad_arguments(args: list[str], message: str, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_user_error(flipclock_here(capsys, *args), message)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "adder"], "invalid choice: 'adder'"),
        (["build", "booth", "--tree", "foo"], "invalid choice: 'foo'"),
        (["build", "booth", "--cpa", "carry_save"], "invalid choice: 'carry_save'"),
        (["build", "booth", "--delay-model", "magic"], "invalid choice: 'magic'"),
        # flags of another design are not flags of this one
        (["build", "booth", "--depth", "7"], "unrecognized arguments: --depth 7"),
        (["build", "booth", "--netlist", "x.v"], "unrecognized arguments: --netlist x.v"),
        (["build", "sram", "--liberty", "L"], "unrecognized arguments: --liberty L"),
        (["build", "sram", "--tree", "dadda"], "unrecognized arguments: --tree dadda"),
        (["build", "netlist"], "required: --netlist"),
        # values: finite and positive, checked before any work
        (["build", "booth", "--liberty", OSU018, "--tick-ps", "inf"], "--tick-ps"),
        (["build", "booth", "--liberty", OSU018, "--tick-ps", "nan"], "--tick-ps"),
        (["build", "booth", "--liberty", OSU018, "--tick-ps", "0"], "--tick-ps"),
        (["build", "booth", "--liberty", OSU018, "--tick-ps", "-10"], "--tick-ps"),
        (["build", "booth", "--delay-model", "effort", "--ticks-per-tau", "0"],
         "--ticks-per-tau"),
        (["build", "booth", "--width", "0"], "--width"),
        (["build", "sram", "--depth", "-1"], "--depth"),
    ],
)
def test_refused_before_work(args: list[str], message: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_refused_by_argparse(flipclock_here(capsys, *args, "--out", "x"), message)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_is_never_a_users(tmp_path: Path) -> None:
    """A folder flipclock did not make keeps its files unless --force; a marked one is
    replaced whole, with no temporary left beside it."""
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert_user_error(flipclock("build", "sram", "--out", str(user)),
                      "exists and was not made by flipclock")
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    assert (user / "notes.txt").read_text() == "keep me"
    assert_user_error(flipclock("build", "sram", "--out", str(user / "notes.txt")),
                      "is a file")
    for here in (".", ".."):
        assert_user_error(flipclock("build", "sram", "--out", here, cwd=user),
                          "is the current folder or above it")
    assert (user / "notes.txt").read_text() == "keep me"

    forced = flipclock("build", "sram", "--depth", "16", "--out", str(user), "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in user.iterdir()) == [MARKER, "build.json", "rtl.v",
                                                       "timing.json"]
    (user / "stray.txt").write_text("left by an earlier run")
    again = flipclock("build", "sram", "--depth", "32", "--out", str(user), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["bits"] == 32 * 8
    assert not (user / "stray.txt").exists()  # the marked folder was replaced whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_concurrent_builds_into_one_folder(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "sram"
    procs = [subprocess.Popen([sys.executable, "-m", "flipclock", "build", "sram", "--out",
                               str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    results = [(p.wait(), p.communicate()[1]) for p in procs]
    for rc, err in results:
        assert "Traceback" not in err
        assert rc == 0 or (rc == 2 and "Another flipclock run is writing into" in err), err
    assert any(rc == 0 for rc, _ in results)
    info = json.loads(flipclock("info", str(out), "--json").stdout)
    assert info["bits"] == 256 * 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sram"]


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_user_error(flipclock("build", "sram", "--out", str(blocker / "sub")),
                      "is a file, not a folder; choose another --out")


def test_liberty_without_needed_cells(tmp_path: Path) -> None:
    lib = tmp_path / "tiny.lib"
    lib.write_text('library(tiny) {\n  cell(BUFX1) {\n    area : 1;\n'
                   '    pin(A) { direction : input; capacitance : 0.01; }\n'
                   '    pin(Y) { direction : output; function : "A"; }\n  }\n}\n')
    proc = flipclock("build", "booth", "--liberty", str(lib), "--delay-model", "unit",
                     "--out", str(tmp_path / "x"))
    assert_user_error(proc, "Synthesis failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.lib"]


def test_binary_inputs_are_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(128, 256)))
    assert_user_error(flipclock("build", "booth", "--liberty", str(binary), "--out",
                                str(tmp_path / "x")), "is not text")
    assert_user_error(flipclock("build", "netlist", "--netlist", str(binary), "--out",
                                str(tmp_path / "x")), "is not text")
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
    for damage, message in (('{"design": ', "is corrupted"), ("", "is corrupted"),
                            ("{}", "is damaged ('design'"), ("[1, 2]", "not a JSON object")):
        (out / "timing.json").write_text(damage)
        assert_user_error(flipclock("info", str(out)), message)


def test_netlist_errors_name_the_users_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The build reads a temporary copy of the netlist; its errors name the user's file."""
    user = tmp_path / "mine.v"
    user.write_text("module top(a, y); input a; output y; wire w, v;\n"
                    "  NAND2 g1 (.A(a), .B(v), .Y(w));\n  INV g2 (.A(w), .Y(v));\n"
                    "  assign y = v;\nendmodule\n")
    out = str(tmp_path / "x")
    for extra, message in (([], "Combinational loop"), (["--top", "nosuch"], "No module")):
        proc = flipclock_here(capsys, "build", "netlist", "--netlist", str(user), *extra,
                              "--out", out)
        assert_user_error(proc, f"error: {user}: {message}")
        assert ".tmp" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.v"]


@pytest.mark.skipif(not Path(OSU018).is_file(), reason="OSU018 Liberty file not installed")
def test_tick_coarser_than_the_cells_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import re

    net = tmp_path / "n.v"
    net.write_text("module top(a, b, p); input a, b; output p; wire n;\n"
                   "  NAND2X1 g (.A(a), .B(b), .Y(n));\n  INVX1 h (.A(n), .Y(p));\nendmodule\n")
    args = ["build", "netlist", "--netlist", str(net), "--liberty", OSU018, "--unsigned"]
    proc = flipclock_here(capsys, *args, "--tick-ps", "10000", "--out", str(tmp_path / "x"))
    assert_user_error(proc, "would round to 0 ticks")
    assert not (tmp_path / "x").exists()
    m = re.search(r"shortest arc delay, ([\d.]+) ps.*give --tick-ps ([\d.]+) or less",
                  proc.stderr)
    assert m is not None, proc.stderr
    # the suggested tick builds, and the path is then at least one tick per cell
    ok = flipclock_here(capsys, *args, "--tick-ps", m.group(2), "--out", str(tmp_path / "y"))
    assert ok.returncode == 0, ok.stderr
    info = json.loads(flipclock_here(capsys, "info", str(tmp_path / "y"), "--json").stdout)
    assert info["critical_path"]["ticks"] >= 2


@pytest.mark.tools
def test_build_with_liberty_file_anywhere(tmp_path: Path) -> None:
    """A Liberty file outside the folders the bundled (WebAssembly) Yosys sees by itself."""
    lib = tmp_path / "my cells.lib"
    shutil.copyfile(OSU018, lib)
    out = tmp_path / "osu"
    proc = flipclock("build", "booth", "--liberty", str(lib), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["delay_model"]["kind"] == "liberty"
    assert info["config"]["liberty"] == str(lib)
    assert all(name.endswith(("X1", "X2", "X4", "X8")) for name in info["cells"])
    ns = info["critical_path"]["seconds"] * 1e9
    assert 1.0 < ns < 20.0  # a 0.18 um 8-bit multiplier: a few ns
