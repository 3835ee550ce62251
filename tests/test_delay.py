"""Delay models and annotations: unit, logical effort by hand, Liberty lookups, JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cells import DEFAULT_LIBRARY
from sim.delay import (
    AnnotationError,
    DelayAnnotation,
    EffortDelay,
    LibertyDelay,
    UnitDelay,
    annotate,
    delay_model_from_dict,
)
from sim.liberty import read_liberty
from sim.netlist import Cell, Netlist

OSU = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
needs_osu = pytest.mark.skipif(not OSU.is_file(), reason="OSU018 Liberty file not installed")


def fanout_netlist() -> Netlist:
    """INV u1 drives the A inputs of two NAND2s (u2, u3), each driving an output bit."""
    cells = [
        Cell("u1", "INV", {"A": "a", "Y": "n1"}),
        Cell("u2", "NAND2", {"A": "n1", "B": "b", "Y": "y[0]"}),
        Cell("u3", "NAND2", {"A": "n1", "B": "b", "Y": "y[1]"}),
    ]
    return Netlist(top="fan", inputs={"a": ["a"], "b": ["b"]}, outputs={"y": ["y[0]", "y[1]"]},
                   cells=cells, library=DEFAULT_LIBRARY)


def test_unit_model() -> None:
    ann = annotate(fanout_netlist(), UnitDelay())
    assert ann.unit == "unit" and ann.tick == 1.0 and ann.tick_label == "1 unit"
    assert ann.seconds_per_tick is None
    assert ann.delays == {"u1": {"Y": (1, 1)}, "u2": {"Y": (1, 1)}, "u3": {"Y": (1, 1)}}
    assert ann.arcs["u2"]["Y"] == {"A": (1, 1, 1.0, 1.0), "B": (1, 1, 1.0, 1.0)}


def test_effort_model_by_hand() -> None:
    ann = annotate(fanout_netlist(), EffortDelay())
    assert ann.unit == "tau" and ann.tick == 0.25 and ann.tick_label == "0.25 tau"
    # INV: g*h = summed fan-out logical effort = 2 * 4/3, p = 1 -> 11/3 tau = 14.67 ticks
    r, f, r_exact, f_exact = ann.arcs["u1"]["Y"]["A"]
    assert r_exact == f_exact == pytest.approx(2 * 4 / 3 + 1)
    assert (r, f) == (15, 15)
    assert ann.delays["u1"]["Y"] == (15, 15)
    # NAND2: one inverter load on the output bit (output_load=1) + p = 2 -> 3 tau = 12 ticks
    assert ann.arcs["u2"]["Y"]["B"] == (12, 12, 3.0, 3.0)
    bare = annotate(fanout_netlist(), EffortDelay(ticks_per_tau=1, output_load=0.0))
    assert bare.delays["u2"]["Y"] == (2, 2)
    assert bare.delays["u1"]["Y"] == (4, 4)  # 3.67 tau rounds to 4


def test_model_configs_round_trip() -> None:
    for model in (UnitDelay(), EffortDelay(ticks_per_tau=8, output_load=0.5),
                  LibertyDelay("x.lib", tick_ps=5.0, input_slew_ps=20.0, output_load_ff=3.0)):
        text = model.to_json()
        assert type(model).from_json(text) == model
        assert delay_model_from_dict(model.to_dict()) == model
    assert EffortDelay().to_dict() == {"kind": "effort", "ticks_per_tau": 4, "output_load": 1.0}
    with pytest.raises(AnnotationError, match="JSON holds a 'unit' delay model, not 'effort'"):
        EffortDelay.from_json(UnitDelay().to_json())
    with pytest.raises(AnnotationError, match=r"unknown delay model kind 'spice'; use one of"):
        delay_model_from_dict({"kind": "spice"})


def test_model_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"^ticks_per_tau must be a positive integer, not 0$"):
        EffortDelay(ticks_per_tau=0)
    with pytest.raises(ValueError, match=r"^tick_ps must be > 0, not -1\.0$"):
        LibertyDelay("x.lib", tick_ps=-1.0)


def test_annotation_json_round_trip_exact(tmp_path: Path) -> None:
    ann = annotate(fanout_netlist(), EffortDelay(ticks_per_tau=3))
    back = DelayAnnotation.from_json(ann.to_json())
    assert back == ann
    assert back.content_hash == ann.content_hash
    assert back.to_json() == ann.to_json()
    ann.write(tmp_path / "d.json")
    assert DelayAnnotation.read(tmp_path / "d.json") == ann


def test_annotation_tamper_and_format_errors() -> None:
    text = annotate(fanout_netlist(), UnitDelay()).to_json()
    with pytest.raises(AnnotationError, match="content hash does not match"):
        DelayAnnotation.from_json(text.replace('"u2": {"Y": [1, 1]}', '"u2": {"Y": [2, 1]}'))
    with pytest.raises(AnnotationError, match="not a flipclock delay annotation"):
        DelayAnnotation.from_json("{}")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"u2": {"Y": [1, 1]}', '"u2": {"Y": ["abc", 1]}'),  # not a number
        ('"u2": {"Y": [1, 1]}', '"u2": {"Y": [1.5, 1]}'),  # not a whole tick
        ('"u2": {"Y": [1, 1]}', '"u2": {"Y": [-1, 1]}'),  # negative
        ('"u2": {"Y": [1, 1]}', '"u2": {"Y": [1]}'),  # not a pair
        ('"u2": {"Y": [1, 1]}', '"u2": {"Y": null}'),
        ('"tick": 1.0', '"tick": "1"'),
        ('"tick": 1.0', '"tick": NaN'),
        ('"kind": "unit"', '"kind": 7'),
        ('"delays": {', '"delays": [], "x": {'),
    ],
)
def test_annotation_with_values_of_the_wrong_kind(old: str, new: str) -> None:
    """Any damage is one AnnotationError (a user error), never a TypeError or KeyError."""
    text = annotate(fanout_netlist(), UnitDelay()).to_json()
    assert old in text
    with pytest.raises(AnnotationError):
        DelayAnnotation.from_json(text.replace(old, new, 1))


def test_annotation_missing_entry_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="has no 'model' entry"):
        DelayAnnotation.from_json('{"format": "flipclock-delay-annotation", "version": 1}')
    path = tmp_path / "delays.json"
    path.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(AnnotationError, match="is not text"):
        DelayAnnotation.read(path)


def test_model_from_bad_dict() -> None:
    with pytest.raises(AnnotationError, match="tick_ps must be > 0"):
        delay_model_from_dict({"kind": "liberty", "path": "x.lib", "tick_ps": -1})
    with pytest.raises(AnnotationError, match="delay model 'liberty'"):
        delay_model_from_dict({"kind": "liberty"})  # no path
    with pytest.raises(AnnotationError, match="must be a JSON object"):
        delay_model_from_dict([1, 2])  # type: ignore[arg-type]


def test_check_matches_other_netlist() -> None:
    nl = fanout_netlist()
    ann = annotate(nl, UnitDelay())
    ann.check_matches(nl)
    other = Netlist(top="fan", inputs=nl.inputs, outputs=nl.outputs,
                    cells=nl.cells[:2] + [Cell("u3", "NOR2", {"A": "n1", "B": "b", "Y": "y[1]"})],
                    library=DEFAULT_LIBRARY)
    with pytest.raises(AnnotationError, match=r"^delay annotation is for netlist [0-9a-f]{12}, "
                                              r"not [0-9a-f]{12} \(fan\); re-run annotate\(\)"):
        ann.check_matches(other)


def test_with_overrides() -> None:
    ann = annotate(fanout_netlist(), EffortDelay())
    new = ann.with_overrides({"u2": (3, 7)})
    assert new.delays["u2"]["Y"] == (3, 7)
    assert new.arcs["u2"]["Y"]["A"] == (3, 7, 0.75, 1.75)
    assert new.overrides == {"u2": (3, 7)}
    assert ann.delays["u2"]["Y"] == (12, 12)  # the original is unchanged
    assert new.content_hash != ann.content_hash
    assert DelayAnnotation.from_json(new.to_json()) == new
    with pytest.raises(AnnotationError, match="cannot override cell 'u9'"):
        ann.with_overrides({"u9": (1, 1)})
    with pytest.raises(AnnotationError, match=r"override for 'u1' must be two integers >= 0, "
                                              r"not \(1, -2\)"):
        ann.with_overrides({"u1": (1, -2)})


@needs_osu
def test_effort_model_needs_logical_effort() -> None:
    lib = read_liberty(OSU)
    nl = Netlist(top="t", inputs={"a": ["a"]}, outputs={"y": ["y"]},
                 cells=[Cell("u1", "INVX1", {"A": "a", "Y": "y"})], library=lib)
    with pytest.raises(AnnotationError, match="^cell type INVX1 has no logical effort"):
        annotate(nl, EffortDelay())


@needs_osu
def test_liberty_model_needs_liberty_cells() -> None:
    with pytest.raises(AnnotationError, match="^cell INV is not in library 'osu018_stdcells'"):
        annotate(fanout_netlist(), LibertyDelay(str(OSU)))


@needs_osu
def test_liberty_model_by_table_lookup() -> None:
    """INVX1 -> two NAND2X1 A pins; slews and loads follow the tables step by step."""
    lib = read_liberty(OSU)
    cells = [
        Cell("u1", "INVX1", {"A": "a", "Y": "n1"}),
        Cell("u2", "NAND2X1", {"A": "n1", "B": "b", "Y": "y[0]"}),
        Cell("u3", "NAND2X1", {"A": "n1", "B": "b", "Y": "y[1]"}),
    ]
    nl = Netlist(top="fan", inputs={"a": ["a"], "b": ["b"]}, outputs={"y": ["y[0]", "y[1]"]},
                 cells=cells, library=lib)
    ann = annotate(nl, LibertyDelay(str(OSU), tick_ps=10.0, input_slew_ps=50.0,
                                    output_load_ff=10.0))
    assert ann.unit == "s" and ann.seconds_per_tick == pytest.approx(1e-11)
    (inv,) = lib["INVX1"].arcs[("A", "Y")]
    (nand,) = lib["NAND2X1"].arcs[("A", "Y")]
    cap_rise, cap_fall = lib["NAND2X1"].edge_capacitance["A"]
    slew_in = 0.05  # ns
    assert inv.cell_rise and inv.cell_fall and inv.rise_transition and inv.fall_transition
    inv_rise = inv.cell_rise(2 * cap_rise, slew_in)
    inv_fall = inv.cell_fall(2 * cap_fall, slew_in)
    r, f, r_exact, f_exact = ann.arcs["u1"]["Y"]["A"]
    assert r_exact == pytest.approx(inv_rise * 1e-9, rel=1e-12)
    assert f_exact == pytest.approx(inv_fall * 1e-9, rel=1e-12)
    assert (r, f) == (round(inv_rise * 100), round(inv_fall * 100))
    # NAND2 A is negative unate: its output rise is caused by n1 falling (INV fall slew)
    load = 0.010  # 10 fF in pF
    assert nand.cell_rise and nand.cell_fall
    n_rise = nand.cell_rise(load, inv.fall_transition(2 * cap_fall, slew_in))
    n_fall = nand.cell_fall(load, inv.rise_transition(2 * cap_rise, slew_in))
    assert ann.arcs["u2"]["Y"]["A"][2:] == pytest.approx((n_rise * 1e-9, n_fall * 1e-9),
                                                         rel=1e-12)
    assert ann.delays["u2"]["Y"] == tuple(
        max(ann.arcs["u2"]["Y"][p][k] for p in ("A", "B")) for k in range(2)
    )


@needs_osu
def test_tick_that_rounds_an_arc_to_zero_is_refused() -> None:
    """Found by the outside audit: a 10 ns tick timed every arc as 1 tick (30 ns path)."""
    lib = read_liberty(OSU)
    nl = Netlist(top="t", inputs={"a": ["a"]}, outputs={"y": ["y"]},
                 cells=[Cell("u1", "INVX1", {"A": "a", "Y": "n"}),
                        Cell("u2", "INVX1", {"A": "n", "Y": "y"})], library=lib)
    fine = annotate(nl, LibertyDelay(str(OSU), tick_ps=0.01))
    shortest = min(d for outs in fine.arcs.values() for pins in outs.values()
                   for arc in pins.values() for d in arc[2:])
    # just over twice the shortest arc: it is under half a tick
    with pytest.raises(AnnotationError) as err:
        annotate(nl, LibertyDelay(str(OSU), tick_ps=shortest * 2.01e12))
    assert f"shortest arc delay, {shortest * 1e12:.4g} ps" in str(err.value)
    assert f"give --tick-ps {shortest * 1e12:.4g} or less" in str(err.value)
    # just under twice it is over half a tick and rounds to one: accepted
    ann = annotate(nl, LibertyDelay(str(OSU), tick_ps=shortest * 1.99e12))
    assert min(a[k] for pins in ann.arcs.values() for arc in pins.values()
               for a in arc.values() for k in (0, 1)) == 1


@pytest.mark.tools
def test_liberty_arc_without_rise_tables_is_refused(tmp_path: Path) -> None:
    # Found by the outside audit: the delay silently became -inf, then a tick count.
    text = OSU.read_text().replace("cell_rise", "cell_rize").replace("rise_transition",
                                                                     "rise_transitio")
    (tmp_path / "norise.lib").write_text(text)
    lib = read_liberty(tmp_path / "norise.lib")
    nl = Netlist(top="t", inputs={"a": ["a"]}, outputs={"y": ["y"]},
                 cells=[Cell("u1", "INVX1", {"A": "a", "Y": "y"})], library=lib)
    with pytest.raises(AnnotationError, match="INVX1 has no rise delay and slew tables"):
        annotate(nl, LibertyDelay(str(tmp_path / "norise.lib")))
