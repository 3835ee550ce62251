"""The compiled timing engine against the numpy reference simulator (no HDL simulator here:
the engine-vs-Icarus/Verilator proof is in test_crosscheck.py and test_sim_gate.py)."""

from __future__ import annotations

import numpy as np
import pytest

from flipclock.defaults import RTL_DIR
from sim.design import load_design
from sim.engine import PrevWeights, TimingEngine
from sim.plan import PlanError, per_pin_netlist
from sim.wavesim import simulate_transitions

Delays = dict[str, dict[str, tuple[int, int]]]


@pytest.fixture(scope="module")
def booth8():  # type: ignore[no-untyped-def]
    return load_design(RTL_DIR / "booth8")


def _random_delays(netlist, rng: np.random.Generator, lo: int, hi: int) -> Delays:  # type: ignore[no-untyped-def]
    return {c.name: {"Y": (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))}
            for c in netlist.cells}


def _compare(netlist, delays: Delays, semantics: str, rng: np.random.Generator,  # type: ignore[no-untyped-def]
             n: int = 400, forced: dict[str, int] | None = None) -> int:
    eng = TimingEngine(netlist, delays, semantics=semantics)  # type: ignore[arg-type]
    horizon = eng.critical_path
    periods = list(range(1, horizon + 1, max(1, horizon // 50)))
    t = rng.integers(0, 256, size=(n, 4))
    prev, cur = {"a": t[:, 0], "b": t[:, 1]}, {"a": t[:, 2], "b": t[:, 3]}
    got = eng.capture(prev, cur, periods, forced=forced)["p"]
    ref = simulate_transitions(netlist, delays, prev, cur, horizon, semantics=semantics,
                               forced=forced)["p"]
    np.testing.assert_array_equal(got, ref[np.asarray(periods) + 1].T)
    return int((got != got[:, -1:]).sum())  # captures that differ from the settled value


@pytest.mark.parametrize("semantics", ["inertial", "transport"])
@pytest.mark.parametrize(("lo", "hi"), [(1, 2), (1, 5), (6, 30)])
def test_engine_equals_reference(booth8, semantics: str, lo: int, hi: int) -> None:  # type: ignore[no-untyped-def]
    """Equal and unequal rise/fall delays, short and long windows (both window algorithms)."""
    rng = np.random.default_rng(lo * 100 + hi)
    delays = _random_delays(booth8.netlist, rng, lo, hi)
    unsettled = _compare(booth8.netlist, delays, semantics, rng)
    assert unsettled > 0  # the periods do cut into the transitions


def test_inertial_and_transport_differ(booth8) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    delays = _random_delays(booth8.netlist, rng, 1, 6)
    t = rng.integers(0, 256, size=(500, 4))
    engines = [TimingEngine(booth8.netlist, delays, semantics=s)  # type: ignore[arg-type]
               for s in ("inertial", "transport")]
    horizon = max(e.critical_path for e in engines)
    outs = [e.capture({"a": t[:, 0], "b": t[:, 1]}, {"a": t[:, 2], "b": t[:, 3]},
                      list(range(1, horizon + 1)))["p"] for e in engines]
    assert (outs[0] != outs[1]).any()
    np.testing.assert_array_equal(outs[0][:, -1], outs[1][:, -1])  # same settled products


def test_forced_nets_match_reference(booth8) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(8)
    delays = _random_delays(booth8.netlist, rng, 1, 4)
    nets = sorted(booth8.netlist.driver)[::97][:3]
    forced = {nets[0]: 1, nets[1]: 0, "a[3]": 1}
    _compare(booth8.netlist, delays, "inertial", rng, forced=forced)


def test_per_pin_netlist_adds_delay_cells() -> None:
    osu = load_design(RTL_DIR / "booth8_osu018")
    netlist, delays = per_pin_netlist(osu.netlist, osu.annotation)
    added = [c for c in netlist.cells if c.type == "FC_PINDELAY"]
    assert added and len(netlist.cells) == len(osu.netlist.cells) + len(added)
    for c in added:
        assert delays[c.name]["Y"][0] >= 1
    eng = TimingEngine(osu.netlist, osu.annotation, per_pin=True)
    assert eng.critical_path > 0


def test_per_pin_netlist_keeps_every_unate_arc_exact() -> None:
    """Through a pin delay element and the cell, each unate arc has its own rise and fall
    delay (single-output cells; a non-unate pin takes the larger on both edges)."""
    osu = load_design(RTL_DIR / "booth8_osu018")
    netlist, delays = per_pin_netlist(osu.netlist, osu.annotation)
    checked = 0
    for cell in osu.netlist.cells:
        ctype = osu.netlist.library[cell.type]
        if len(ctype.outputs) != 1:
            continue
        out = ctype.outputs[0]
        for pin, arc in osu.annotation.arcs[cell.name][out].items():
            sense = ctype.sense(out, pin)
            er, ef = delays.get(f"{cell.name}__{pin}_pindelay", {"Y": (0, 0)})["Y"]
            r, f = delays[cell.name][out]
            if sense == "positive_unate":
                assert (er + r, ef + f) == (arc[0], arc[1])
            elif sense == "negative_unate":
                assert (ef + r, er + f) == (arc[0], arc[1])
            else:
                assert er + r >= arc[0] and ef + f >= arc[1]
            checked += 1
    assert checked > 500


def test_exhaustive_equals_capture_of_all_previous_pairs(booth8) -> None:  # type: ignore[no-untyped-def]
    eng = TimingEngine(booth8.netlist, booth8.annotation, semantics="inertial")
    periods = [20, 30, 45]
    pairs = np.array([255, 40000, 65535])
    q = np.arange(1 << 16)
    hist = np.random.default_rng(1).random(256)
    for prev in (PrevWeights(), PrevWeights("stationary_b", tuple(hist))):
        res = eng.exhaustive(periods, pairs=pairs, prev=prev)
        for i, c in enumerate(pairs):
            ca, cb = c >> 8, c & 255
            out = eng.capture({"a": q >> 8, "b": q & 255},
                              {"a": np.full(q.size, ca), "b": np.full(q.size, cb)}, periods)["p"]
            exact = ((ca - 256 * (ca >= 128)) * (cb - 256 * (cb >= 128))) & 0xFFFF
            w = np.ones(q.size) if prev.kind == "uniform" else \
                np.where(q & 255 == cb, hist[q >> 8], 0.0)
            wrong = (out != exact) & (w[:, None] > 0)
            np.testing.assert_allclose(res.nwrong[i], (wrong * w[:, None]).sum(0))
            for k in range(len(periods)):
                sel = (res.records[:, 0] == c) & (res.records[:, 1] == k)
                vals = np.unique(out[wrong[:, k], k])
                np.testing.assert_array_equal(res.records[sel, 2], vals)
        assert res.nwrong[:, 2].sum() == 0 or periods[2] < eng.critical_path


def test_bad_settings(booth8) -> None:  # type: ignore[no-untyped-def]
    eng = TimingEngine(booth8.netlist, booth8.annotation)
    with pytest.raises(PlanError, match="Clock periods must be positive"):
        eng.capture({"a": [0], "b": [0]}, {"a": [1], "b": [1]}, [0])
    with pytest.raises(PlanError, match="Cannot force net 'nope'"):
        eng.capture({"a": [0], "b": [0]}, {"a": [1], "b": [1]}, [5], forced={"nope": 1})
    with pytest.raises(PlanError, match="Semantics must be"):
        TimingEngine(booth8.netlist, booth8.annotation, semantics="x")  # type: ignore[arg-type]
    with pytest.raises(PlanError, match="joint previous-input histogram"):
        eng.exhaustive([5], pairs=[0], prev=PrevWeights("joint", (1.0, 2.0)))
    bad = {c.name: {"Y": (0, 1)} for c in booth8.netlist.cells}
    with pytest.raises(PlanError, match="delay below 1 tick"):
        TimingEngine(booth8.netlist, bad)
