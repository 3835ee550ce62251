# amaranth: UnusedElaboratable=no
"""Booth multipliers: exact products in Amaranth's simulator, validation, structure, RTL text.

The first line keeps Amaranth quiet about designs built only to inspect or reject them.
"""

from __future__ import annotations

import itertools
import random
import re

import pytest
from amaranth.sim import Simulator, SimulatorContext

from hw import (
    CPAS,
    TREES,
    BoothMultiplier,
    FaultySRAM,
    RegisteredMultiplier,
    design_from_name,
    to_verilog,
)

VARIANTS = list(itertools.product(TREES, CPAS))


def _corners(width: int) -> list[int]:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return [lo, lo + 1, -2, -1, 0, 1, 2, hi - 1, hi]


def _pairs(width: int, count: int, seed: int) -> list[tuple[int, int]]:
    """Corner-case pairs followed by ``count`` random ones."""
    rng = random.Random(seed)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    pairs = [(a, b) for a in _corners(width) for b in _corners(width)]
    pairs += [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(count)]
    return pairs


def _mismatches(dut: BoothMultiplier, pairs: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Apply every pair to the combinational ``dut``; return ``(a, b, p)`` where ``p != a * b``."""
    bad: list[tuple[int, int, int]] = []

    async def bench(ctx: SimulatorContext) -> None:
        for a, b in pairs:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            p = ctx.get(dut.p)
            if p != a * b:
                bad.append((a, b, p))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return bad


@pytest.mark.parametrize(("tree", "cpa"), VARIANTS)
def test_width4_exhaustive(tree: str, cpa: str) -> None:
    r = range(-8, 8)
    dut = BoothMultiplier(width=4, tree=tree, cpa=cpa)
    assert _mismatches(dut, list(itertools.product(r, r))) == []


@pytest.mark.parametrize(("tree", "cpa"), VARIANTS)
def test_width8_random(tree: str, cpa: str) -> None:
    dut = BoothMultiplier(width=8, tree=tree, cpa=cpa)
    assert _mismatches(dut, _pairs(8, 2000, seed=8)) == []


@pytest.mark.parametrize(
    ("width", "tree", "cpa"),
    [
        (6, "dadda", "ripple"),
        (10, "wallace", "kogge_stone"),
        (12, "array", "ripple"),
        (16, "dadda", "ripple"),
        (16, "wallace", "kogge_stone"),
    ],
)
def test_other_widths_random(width: int, tree: str, cpa: str) -> None:
    dut = BoothMultiplier(width=width, tree=tree, cpa=cpa)
    assert _mismatches(dut, _pairs(width, 300, seed=width)) == []


def test_defaults_and_properties() -> None:
    dut = BoothMultiplier()
    assert (dut.width, dut.tree, dut.cpa) == (8, "dadda", "ripple")
    assert len(dut.a) == len(dut.b) == 8 and len(dut.p) == 16
    assert dut.a.shape().signed and dut.b.shape().signed and dut.p.shape().signed
    reg = RegisteredMultiplier(width=6, tree="array", cpa="kogge_stone")
    assert (reg.width, reg.tree, reg.cpa) == (6, "array", "kogge_stone")
    assert TREES == ("array", "wallace", "dadda")
    assert CPAS == ("ripple", "kogge_stone")


def test_registered_two_edge_latency() -> None:
    dut = RegisteredMultiplier(width=8, tree="wallace", cpa="kogge_stone")
    stream = _pairs(8, 200, seed=2)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        assert ctx.get(dut.p) == 0  # reset value
        for a, b in stream + [(0, 0), (0, 0)]:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            await ctx.tick()
            seen.append(ctx.get(dut.p))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # Edge 1 launches the first pair, edge 2 captures its product; seen[k] follows edge k + 1.
    assert seen[0] == 0
    assert seen[1 : len(stream) + 1] == [a * b for a, b in stream]
    assert seen[-1] == 0


def test_registered_holds_between_changes() -> None:
    dut = RegisteredMultiplier(width=4)
    values: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        ctx.set(dut.a, -7)
        ctx.set(dut.b, 5)
        for _ in range(3):
            await ctx.tick()
            values.append(ctx.get(dut.p))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert values == [0, -35, -35]


@pytest.mark.parametrize("cls", [BoothMultiplier, RegisteredMultiplier])
@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        (
            {"width": 7},
            ValueError,
            "Multiplier width must be an even integer between 4 and 16, not 7",
        ),
        (
            {"width": 2},
            ValueError,
            "Multiplier width must be an even integer between 4 and 16, not 2",
        ),
        (
            {"width": 18},
            ValueError,
            "Multiplier width must be an even integer between 4 and 16, not 18",
        ),
        ({"width": "8"}, TypeError, "Multiplier width must be an integer, not '8'"),
        ({"width": 8.0}, TypeError, "Multiplier width must be an integer, not 8.0"),
        ({"width": True}, TypeError, "Multiplier width must be an integer, not True"),
        (
            {"tree": "foo"},
            ValueError,
            "Reduction tree must be one of 'array', 'wallace', 'dadda', not 'foo'",
        ),
        (
            {"cpa": "foo"},
            ValueError,
            "Final adder must be one of 'ripple', 'kogge_stone', not 'foo'",
        ),
        ({"cpa": "ks"}, ValueError, "Final adder must be one of 'ripple', 'kogge_stone', not 'ks'"),
    ],
)
def test_validation_messages(
    cls: type, kwargs: dict[str, object], exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=f"^{re.escape(message)}$"):
        cls(**kwargs)


def test_adder_counts_width8() -> None:
    counts = {
        (tree, cpa): BoothMultiplier(width=8, tree=tree, cpa=cpa).cell_counts
        for tree, cpa in VARIANTS
    }
    tree_cells = {
        tree: (counts[tree, "ripple"]["tree_full"], counts[tree, "ripple"]["tree_half"])
        for tree in TREES
    }
    # The three trees are structurally different ...
    assert len(set(tree_cells.values())) == 3
    # ... and Dadda, reducing lazily, needs fewer half adders and no more full adders than Wallace.
    assert tree_cells["dadda"][1] < tree_cells["wallace"][1]
    assert tree_cells["dadda"][0] <= tree_cells["wallace"][0]
    for tree in TREES:
        ripple, ks = counts[tree, "ripple"], counts[tree, "kogge_stone"]
        assert ripple["tree_full"] == ks["tree_full"] and ripple["tree_half"] == ks["tree_half"]
        assert ripple["cpa_full"] > 0 and ripple["prefix_black"] == 0
        assert ks["cpa_full"] == ks["cpa_half"] == 0 and ks["prefix_black"] > 0
        assert ks["prefix_grey"] > 0
    dadda = BoothMultiplier(width=8)
    cells = dadda.cell_counts
    assert dadda.adder_counts == {
        "full": cells["tree_full"] + cells["cpa_full"],
        "half": cells["tree_half"] + cells["cpa_half"],
    }


def _code_only(rtl: str) -> str:
    """Strip comments, attributes and ``@*`` sensitivity lists: what is left is expressions."""
    rtl = re.sub(r"/\*.*?\*/", "", rtl, flags=re.S)
    rtl = re.sub(r"\(\*.*?\*\)", "", rtl, flags=re.S)
    rtl = re.sub(r"//[^\n]*", "", rtl)
    return rtl.replace("@*", "")


@pytest.mark.parametrize(("tree", "cpa"), VARIANTS)
def test_rtl_has_explicit_structure(tree: str, cpa: str) -> None:
    rtl = to_verilog(BoothMultiplier(width=8, tree=tree, cpa=cpa), name="booth")
    code = _code_only(rtl)
    assert "*" not in code and "+" not in code
    assert re.search(r"\bmodule booth\(", rtl)
    assert re.search(r"\bwire (fa|ha)_c\d+_r\d+_\d+_s\b", rtl)
    if cpa == "ripple":
        assert re.search(r"\bwire cpa_(fa|ha)_c\d+_s\b", rtl)
    else:
        assert re.search(r"\bwire ks_g_l\d+_c\d+\b", rtl)


def test_registered_rtl() -> None:
    rtl = to_verilog(RegisteredMultiplier(), name="booth_reg")
    code = _code_only(rtl)
    assert "*" not in code and "+" not in code
    header = re.search(r"\bmodule booth_reg\(([^)]*)\)", rtl)
    assert header is not None
    assert sorted(header.group(1).replace(" ", "").split(",")) == ["a", "b", "clk", "p", "rst"]
    for reg in ("a_q", "b_q", "p"):
        assert re.search(rf"\b{reg} <=", rtl)


def test_to_verilog_is_deterministic() -> None:
    first = to_verilog(BoothMultiplier(width=6, tree="wallace"), name="booth")
    second = to_verilog(BoothMultiplier(width=6, tree="wallace"), name="booth")
    assert first == second
    assert "src =" not in first
    header = re.search(r"\bmodule booth\(([^)]*)\)", first)
    assert header is not None
    assert sorted(header.group(1).replace(" ", "").split(",")) == ["a", "b", "p"]


def test_design_from_name() -> None:
    booth = design_from_name("booth", width=6, tree="array")
    assert isinstance(booth, BoothMultiplier) and booth.width == 6 and booth.tree == "array"
    reg = design_from_name("booth_reg")
    assert isinstance(reg, RegisteredMultiplier) and reg.width == 8
    sram = design_from_name("sram", depth=16, width=4)
    assert isinstance(sram, FaultySRAM) and (sram.depth, sram.width) == (16, 4)
    message = "Unknown design 'foo'; choose one of 'booth', 'booth_reg', 'sram'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        design_from_name("foo")
    with pytest.raises(ValueError, match=re.escape("Multiplier width must be an even")):
        design_from_name("booth", width=5)
