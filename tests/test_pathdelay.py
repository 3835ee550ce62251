"""The ``pathdelay`` semantics: Verilog module path delays as sign-off gate-level simulation
applies them (Icarus ``-gspecify`` with ``$sdf_annotate``), and one critical-path number.

* the compiled kernel equals the numpy reference (:func:`sim.wavesim.apply_pathdelay`);
* the reference equals Icarus on a single cell driven by arbitrary pulse trains (so the
  rule holds for every input pattern, not only one launch);
* crosschecks of 10,000 transitions x 5 periods are bit-exact on the committed OSU018
  Booth multiplier and on unsigned array multipliers with generated cell models; with
  OSU018's own models every difference is traced to a zero-time glitch inside a cell;
* the two ways Icarus departs from the IEEE reading, each on a one-cell netlist.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from designs import array_multiplier

from flipclock.cli import main
from sim.crosscheck import CrosscheckConfig, crosscheck
from sim.design import load_design
from sim.engine import TimingEngine
from sim.wavesim import apply_pathdelay, simulate_transitions

OSU = Path("/usr/share/qflow/tech/osu018")
OSU_LIB, OSU_V = OSU / "osu018_stdcells.lib", OSU / "osu018_stdcells.v"
RTL = Path(__file__).resolve().parent.parent / "rtl"
needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None,
                                  reason="Icarus Verilog is not installed")


def _built_umul(factory: pytest.TempPathFactory, n: int) -> Path:
    """The unsigned n x n array multiplier in OSU018 cells, built with its Liberty delays."""
    root = factory.mktemp(f"umul{n}")
    (root / f"umul{n}.v").write_text(array_multiplier(n))
    assert main(["build", "netlist", "--netlist", str(root / f"umul{n}.v"), "--liberty",
                 str(OSU_LIB), "--unsigned", "--out", str(root / "d")]) == 0
    return root / "d"


@pytest.fixture(scope="module")
def umul(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unsigned 4x4 array multiplier."""
    return _built_umul(tmp_path_factory, 4)


def _arcs(design: object) -> dict[str, dict[str, dict[str, tuple[int, int]]]]:
    ann = design.annotation  # type: ignore[attr-defined]
    return {c: {o: {p: (a[0], a[1]) for p, a in pins.items()} for o, pins in outs.items()}
            for c, outs in ann.arcs.items()}


@pytest.mark.tools  # the committed OSU018 build reads nothing, the umul fixture the Liberty
@pytest.mark.parametrize("which", ["booth8_osu018", "umul"])
def test_kernel_equals_reference(which: str, umul: Path) -> None:
    d = load_design(RTL / which if which != "umul" else umul)
    w = len(d.netlist.inputs["a"])
    t = np.random.default_rng(7).integers(0, 1 << w, size=(300, 4))
    eng = TimingEngine(d.netlist, d.annotation, semantics="pathdelay", lane_words=4)
    cp = eng.critical_path
    got = eng.capture({"a": t[:, 0], "b": t[:, 1]}, {"a": t[:, 2], "b": t[:, 3]},
                      list(range(1, cp + 1)))["p"]
    ref = simulate_transitions(d.netlist, d.annotation.delays, {"a": t[:, 0], "b": t[:, 1]},
                               {"a": t[:, 2], "b": t[:, 3]}, cp, semantics="pathdelay",
                               arcs=_arcs(d))["p"][2:cp + 2].T
    assert (got == ref).all()
    # the semantics is its own: it differs from inertial on these glitchy netlists
    inertial = TimingEngine(d.netlist, d.annotation, lane_words=4).capture(
        {"a": t[:, 0], "b": t[:, 1]}, {"a": t[:, 2], "b": t[:, 3]}, list(range(1, cp + 1)))["p"]
    assert (inertial != got).any()
    # at the critical path every capture is the settled output
    assert (got[:, -1] == eng.settled((t[:, 2] << w) | t[:, 3])).all()


def _icarus(folder: Path, sources: dict[str, str]) -> str:
    for name, text in sources.items():
        (folder / name).write_text(text)
    subprocess.run(["iverilog", "-gspecify", "-o", "sim", *sources], cwd=folder, check=True,
                   capture_output=True)
    return subprocess.run(["vvp", "-n", "sim"], cwd=folder, check=True, capture_output=True,
                          text=True).stdout


_CELL = """`timescale 1ps/1ps
primitive fc_xo (y, a, b); output y; input a, b;
  table 0 0 : 0; 0 1 : 1; 1 0 : 1; 1 1 : 0; endtable
endprimitive
module XO (A, B, Y); input A, B; output Y;
  fc_xo g (Y, A, B);
  specify (A => Y) = (%d, %d); (B => Y) = (%d, %d); endspecify
endmodule
"""


@pytest.mark.sim
@needs_icarus
def test_reference_equals_icarus_on_pulse_trains(tmp_path: Path) -> None:
    """Arbitrary input waveforms (pulses narrower and wider than the delays, simultaneous
    changes) on one two-input cell: Icarus's output is the reference's, tick for tick."""
    rng = np.random.default_rng(3)
    h = 400  # ticks; index t of a waveform is tick t (the rule is shift-invariant)
    for trial in range(6):
        delays = [int(x) for x in rng.integers(1, 9, size=4)]
        waves = (rng.random((2, h)) < 0.12).cumsum(axis=1) % 2  # random change ticks
        waves[:, :20] = 0  # Icarus starts at x: its first (x -> 0) event ends by tick 8
        stim, prev = [], 0
        for t in range(20, h):
            if (waves[:, t] != waves[:, t - 1]).any():
                stim.append(f"    #{t - prev}; a = {waves[0, t]}; b = {waves[1, t]};")
                prev = t
        tb = ("`timescale 1ps/1ps\nmodule tb; reg a = 0, b = 0; wire y;\n  XO u (a, b, y);\n"
              '  initial $monitor("%0t %b", $time, y);\n  initial begin\n'
              + "\n".join(stim) + "\n    #20; $finish;\n  end\nendmodule\n")
        folder = tmp_path / str(trial)
        folder.mkdir()
        out = _icarus(folder, {"cell.v": _CELL % tuple(delays), "tb.v": tb})
        got = [(int(t), int(v)) for t, v in re.findall(r"^(\d+) ([01])$", out, re.M)
               if 20 <= int(t) < h]
        a, b = (w.astype(np.uint64)[:, None] for w in waves)
        y = apply_pathdelay(a ^ b, [a, b], [(delays[0], delays[1]), (delays[2], delays[3])])
        ref = [(t, int(y[t, 0])) for t in range(1, h) if y[t, 0] != y[t - 1, 0]]
        assert len(ref) > 10 and got == ref, (delays, got[:8], ref[:8])


@pytest.fixture(scope="module")
def umul6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unsigned 6x6 array multiplier."""
    return _built_umul(tmp_path_factory, 6)


@pytest.mark.sim
@pytest.mark.tools
@needs_icarus
@pytest.mark.parametrize("which,models", [("booth8_osu018", None), ("booth8_osu018", OSU_V),
                                          ("umul", None), ("umul", OSU_V),
                                          ("umul6", None), ("umul6", OSU_V)])
def test_crosscheck_bit_exact_on_icarus(which: str, models: Path | None, umul: Path,
                                        umul6: Path, tmp_path: Path) -> None:
    """10,000 transitions x 5 periods through cell instances, cell models with specify
    paths and the engine's arcs as SDF, on Icarus -gspecify. With generated models
    (one primitive per output) nothing differs; with OSU018's own, every difference is
    one the same run on generated models does not show (a zero-time glitch inside a
    multi-primitive cell model), and on the 6x6 multiplier with this seed there are some."""
    folder = {"umul": umul, "umul6": umul6}.get(which, RTL / which)
    d = load_design(folder)
    cfg = CrosscheckConfig(transitions=10_000, periods=5, seed=2, simulators=("icarus",),
                           semantics=("pathdelay",),
                           cell_models=None if models is None else str(models))
    runs = crosscheck(d.netlist, d.annotation, cfg, tmp_path / "x", log=lambda _m: None,
                      operands=d.operands())
    assert len(runs) == 1 and runs[0].skipped is None
    run = runs[0]
    assert run.captures >= 50_000 and run.passed, run.first_mismatch
    if models is None:
        assert run.mismatches == 0 and run.cell_model_glitches == 0
    if which == "umul6" and models is not None:
        assert run.mismatches == run.cell_model_glitches > 0
    assert run.wrong_captures[0] > 0 and run.wrong_captures[-1] == 0
    assert "$sdf_annotate" in (tmp_path / "x" / "icarus-pathdelay" / "top.v").read_text()


_OAI = """`timescale 1ps/1ps
module tb; reg a = 0, b = 1, c = 0; wire y;
  OAI21X1 u (.A(a), .B(b), .C(c), .Y(y));
  initial $monitor("%%0t %%b", $time, y);
  initial begin
    #16; %s
    #3; a = 1;
    #100; $finish;
  end
endmodule
"""


@pytest.mark.sim
@pytest.mark.tools
@needs_icarus
def test_icarus_departure_zero_time_glitch_in_a_cell_model(tmp_path: Path) -> None:
    """OSU018's OAI21X1 model is three primitives. When B falls and C rises in the same
    time step, Icarus evaluates them one delta at a time: with C first the output glitches
    low for zero time, which schedules a path-delay event (B's fall arc, 9) that later
    carries A's real fall early. The settled function never changes at 16, so the engine
    (and Icarus with B first) put the fall at 19 + 12 = 31."""
    cells = OSU_V.read_text().replace("`timescale 1ns/10ps", "`timescale 1ps/1ps")
    # path delays in ticks (1 ps): A fall 12, B fall 9, C fall 11
    cells = re.sub(r"(module OAI21X1.*?endmodule)", lambda m: re.sub(
        r"\(([ABC]) \*> Y\) = \(([^,]+), ([^)]+)\);",
        lambda p: f"({p.group(1)} *> Y) = (13, {dict(A=12, B=9, C=11)[p.group(1)]});",
        m.group(1)), cells, flags=re.S)
    falls = {}
    for order in ("c = 1; b = 0;", "b = 0; c = 1;"):
        folder = tmp_path / order[0]
        folder.mkdir()
        out = _icarus(folder, {"cells.v": cells, "tb.v": _OAI % order})
        falls[order[0]] = [int(t) for t, v in re.findall(r"^(\d+) ([01])$", out, re.M)
                           if v == "0" and int(t) > 0]
    assert falls == {"c": [25], "b": [31]}
    # the engine's rule on the settled function gives 31 whatever the order
    one, zero = np.uint64(1), np.uint64(0)
    h = 60
    a = np.array([[zero if t < 20 else one] for t in range(h)])  # index t = tick t - 1
    b = np.array([[one if t < 17 else zero] for t in range(h)])
    c = np.array([[zero if t < 17 else one] for t in range(h)])
    f = ~((a | b) & c) & one
    y = apply_pathdelay(f, [a, b, c], [(13, 12), (13, 9), (13, 11)])
    assert [t - 1 for t in range(1, h) if y[t, 0] != y[t - 1, 0]] == [31]


@pytest.mark.tools
def test_one_critical_path_number(umul: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """info, errtable and the engine agree on the critical path of the default semantics,
    and errtable finds nothing wrong there but finds wrong captures below it."""
    assert main(["info", str(umul)]) == 0
    info = capsys.readouterr().out
    ticks = int(re.search(r"critical\s+(\d+) ticks", info).group(1))  # type: ignore[union-attr]
    assert ", transport + per-pin" in info  # the default for Liberty delays
    d = load_design(umul)
    assert TimingEngine(d.netlist, d.annotation, semantics="transport",
                        per_pin=True).critical_path == ticks
    assert main(["errtable", str(umul), "--period-frac", "0.8,1", "--out",
                 str(tmp_path / "t"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["summary"]
    assert [r["period"] for r in rows] == [round(0.8 * ticks), ticks]
    assert rows[-1]["error_rate"] == 0.0 and rows[0]["error_rate"] > 0.0
    meta = json.loads((tmp_path / "t" / "meta.json").read_text())
    assert meta["critical_path_ticks"] == ticks


@pytest.mark.parametrize("argv,needle", [
    (["errtable", "{d}", "--period", "5", "--semantics", "pathdelay", "--per-pin", "--out",
      "{o}"], "already uses per-arc"),
    (["crosscheck", "{d}", "--semantics", "pathdelay", "--simulators", "verilator"],
     "Verilator runs only inertial"),
    (["variation", "{d}", "--period", "5", "--sigma", "0.1", "--semantics", "pathdelay",
      "--out", "{o}"], "use --semantics inertial or transport"),
])
def test_refusals_are_one_line(argv: list[str], needle: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(d=RTL / "booth8", o=tmp_path / "o") for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("sta") is None, reason="OpenSTA is not installed")
def test_default_semantics_settles_at_openstas_critical_path(tmp_path: Path) -> None:
    """6x6 unsigned array multiplier, all 2^24 transitions: with the default semantics the
    last wrong capture is one tick before OpenSTA's critical path on the same tick delays
    (the claim of ``results/signoff``)."""
    from sim.plan import default_timing
    from sim.sdf import write_sdf
    from sim.sta import opensta_critical_path

    (tmp_path / "u.v").write_text(array_multiplier(6))
    assert main(["build", "netlist", "--netlist", str(tmp_path / "u.v"), "--liberty",
                 str(OSU_LIB), "--unsigned", "--out", str(tmp_path / "d")]) == 0
    d = load_design(tmp_path / "d")
    (tmp_path / "t.sdf").write_text(write_sdf(d.netlist, d.annotation))
    sta = opensta_critical_path(tmp_path / "u.v", OSU_LIB, "umul", sdf=tmp_path / "t.sdf")
    sta_ticks = round(sta / (d.annotation.seconds_per_tick or 1))
    sem, per_pin = default_timing(d.annotation.model.kind)
    eng = TimingEngine(d.netlist, d.annotation, semantics=sem, per_pin=per_pin)
    periods = list(range(sta_ticks - 3, sta_ticks + 2))
    wrong = eng.exhaustive(periods).nwrong.sum(axis=0)
    assert [p for p, w in zip(periods, wrong, strict=True) if w > 0][-1] == sta_ticks - 1
    assert wrong[periods.index(sta_ticks)] == 0


@pytest.mark.tools
@needs_icarus
@pytest.mark.parametrize("edit,needle", [
    (("(A *> Y) = (tphlh$A$Y, tplhl$A$Y);", ""), "has no specify path A -> Y"),
    (("not (Y, I0_out);", "buf (Y, I0_out);"), "the Liberty function gives"),
])
def test_broken_cell_models_are_refused_before_anything_runs(
        edit: tuple[str, str], needle: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A model without an arc, or of another function, would make a difference that is
    not timing: refused in one line, nothing written."""
    text = OSU_V.read_text()
    i = text.index("module NAND2X1")
    j = text.index("endmodule", i)
    assert edit[0] in text[i:j]
    (tmp_path / "cells.v").write_text(text[:i] + text[i:j].replace(*edit) + text[j:])
    out = tmp_path / "x"
    assert main(["crosscheck", str(RTL / "booth8_osu018"), "--semantics", "pathdelay",
                 "--simulators", "icarus", "--cell-models", str(tmp_path / "cells.v"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "NAND2X1" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("extra,needle", [
    (["--semantics", "pathdelay", "--per-pin"], "already uses per-arc"),
    (["--semantics", "inertial", "--cell-models", str(OSU_V)], "add --semantics pathdelay"),
])
def test_crosscheck_flag_refusals(extra: list[str], needle: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    if not OSU_V.is_file():
        pytest.skip("OSU018 cell models are not installed")
    assert main(["crosscheck", str(RTL / "booth8"), *extra, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "x").exists()
