# amaranth: UnusedElaboratable=no
"""FaultySRAM: synchronous reads, stuck-at and bit-flip semantics, validation, RTL ports.

The first line keeps Amaranth quiet about designs built only to inspect or reject them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator, SimulatorContext

from hw import FaultySRAM, to_verilog

Bench = Callable[[SimulatorContext], Awaitable[None]]


def _simulator(dut: FaultySRAM) -> tuple[Simulator, Signal]:
    """Return a simulator for ``dut`` with a running clock, and the domain's reset signal."""
    top = Module()
    top.domains.sync = domain = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-6)
    return sim, domain.rst


def _run(dut: FaultySRAM, bench: Bench) -> None:
    sim, _ = _simulator(dut)
    sim.add_testbench(bench)
    sim.run()


async def _write(ctx: SimulatorContext, dut: FaultySRAM, addr: int, data: int) -> None:
    ctx.set(dut.addr, addr)
    ctx.set(dut.wdata, data)
    ctx.set(dut.we, 1)
    await ctx.tick()
    ctx.set(dut.we, 0)


async def _faults(ctx: SimulatorContext, dut: FaultySRAM, addr: int, sa0: int, sa1: int) -> None:
    ctx.set(dut.addr, addr)
    ctx.set(dut.fault_sa0, sa0)
    ctx.set(dut.fault_sa1, sa1)
    ctx.set(dut.fault_we, 1)
    await ctx.tick()
    ctx.set(dut.fault_we, 0)


async def _read(ctx: SimulatorContext, dut: FaultySRAM, addr: int, flip: int = 0) -> int:
    ctx.set(dut.addr, addr)
    ctx.set(dut.flip, flip)
    await ctx.tick()
    ctx.set(dut.flip, 0)
    return int(ctx.get(dut.rdata))


def test_write_then_read() -> None:
    dut = FaultySRAM(depth=16, width=8)
    words = {0: 0x12, 5: 0xA5, 15: 0xFF, 7: 0x00}
    got: dict[int, int] = {}

    async def bench(ctx: SimulatorContext) -> None:
        assert ctx.get(dut.rdata) == 0
        for addr, data in words.items():
            await _write(ctx, dut, addr, data)
        for addr in [*words, 3]:
            got[addr] = await _read(ctx, dut, addr)

    _run(dut, bench)
    assert got == {**words, 3: 0}


def test_read_is_registered() -> None:
    dut = FaultySRAM(depth=4, width=8)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        await _write(ctx, dut, 1, 0x11)
        await _write(ctx, dut, 2, 0x22)
        assert await _read(ctx, dut, 1) == 0x11
        ctx.set(dut.addr, 2)
        seen.append(ctx.get(dut.rdata))  # address changed, no edge yet
        await ctx.tick()
        seen.append(ctx.get(dut.rdata))

    _run(dut, bench)
    assert seen == [0x11, 0x22]


def test_read_during_write_returns_old_word() -> None:
    dut = FaultySRAM(depth=8, width=8)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        await _write(ctx, dut, 3, 0x5A)
        await _write(ctx, dut, 3, 0xC3)  # this edge also reads word 3
        seen.append(ctx.get(dut.rdata))
        seen.append(await _read(ctx, dut, 3))

    _run(dut, bench)
    assert seen == [0x5A, 0xC3]


def test_stuck_at_faults_ignore_writes() -> None:
    dut = FaultySRAM(depth=8, width=8)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        await _faults(ctx, dut, 6, sa0=0x03, sa1=0x30)
        for data in (0xFF, 0x00, 0x5A):
            await _write(ctx, dut, 6, data)
            seen.append(await _read(ctx, dut, 6))
        await _write(ctx, dut, 5, 0xFF)  # a fault-free neighbour
        seen.append(await _read(ctx, dut, 5))
        await _faults(ctx, dut, 6, sa0=0, sa1=0)  # repair: the stored word was kept
        seen.append(await _read(ctx, dut, 6))

    _run(dut, bench)
    assert seen == [0xFC, 0x30, 0x78, 0xFF, 0x5A]


def test_stuck_at_one_wins() -> None:
    dut = FaultySRAM(depth=4, width=8)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        await _faults(ctx, dut, 2, sa0=0x0F, sa1=0x3C)
        for data in (0x00, 0xFF):
            await _write(ctx, dut, 2, data)
            seen.append(await _read(ctx, dut, 2))

    _run(dut, bench)
    # bits 2-3: both masks set -> 1; bits 0-1: SA0 only -> 0; bits 4-5: SA1 only -> 1.
    assert seen == [0x3C, 0xF0 | 0x3C]


def test_flip_affects_only_that_read() -> None:
    dut = FaultySRAM(depth=4, width=8)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        await _write(ctx, dut, 1, 0x0F)
        seen.append(await _read(ctx, dut, 1, flip=0x81))
        seen.append(await _read(ctx, dut, 1))
        # A flip during a write edge corrupts that edge's read only, not the word written.
        ctx.set(dut.flip, 0xFF)
        await _write(ctx, dut, 2, 0x42)
        ctx.set(dut.flip, 0)
        seen.append(await _read(ctx, dut, 2))

    _run(dut, bench)
    assert seen == [0x8E, 0x0F, 0x42]


def test_flip_applies_after_stuck_at() -> None:
    dut = FaultySRAM(depth=4, width=4)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        await _faults(ctx, dut, 0, sa0=0b0001, sa1=0b1000)
        await _write(ctx, dut, 0, 0b0111)
        seen.append(await _read(ctx, dut, 0, flip=0b1001))

    _run(dut, bench)
    assert seen == [((0b0111 & ~0b0001) | 0b1000) ^ 0b1001]


def test_reset_clears_rdata_not_memory() -> None:
    dut = FaultySRAM(depth=4, width=8)
    seen: list[int] = []

    sim, rst = _simulator(dut)

    async def bench(ctx: SimulatorContext) -> None:
        await _faults(ctx, dut, 1, sa0=0, sa1=0x80)
        await _write(ctx, dut, 1, 0x01)
        seen.append(await _read(ctx, dut, 1))
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        seen.append(ctx.get(dut.rdata))
        seen.append(await _read(ctx, dut, 1))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [0x81, 0x00, 0x81]


def test_depth_not_power_of_two() -> None:
    dut = FaultySRAM(depth=5, width=8)
    seen: list[int] = []

    async def bench(ctx: SimulatorContext) -> None:
        await _write(ctx, dut, 4, 0x44)
        await _write(ctx, dut, 6, 0x66)  # no such word: ignored
        seen.append(await _read(ctx, dut, 4))
        seen.append(await _read(ctx, dut, 6))
        seen.append(await _read(ctx, dut, 7, flip=0x01))

    _run(dut, bench)
    assert seen == [0x44, 0x00, 0x01]


def test_wide_words() -> None:
    dut = FaultySRAM(depth=2, width=64)
    seen: list[int] = []
    full = (1 << 64) - 1

    async def bench(ctx: SimulatorContext) -> None:
        await _write(ctx, dut, 1, full)
        await _faults(ctx, dut, 1, sa0=1 << 63, sa1=0)
        seen.append(await _read(ctx, dut, 1, flip=1))

    _run(dut, bench)
    assert seen == [full ^ (1 << 63) ^ 1]


@pytest.mark.parametrize(("depth", "bits"), [(2, 1), (5, 3), (256, 8), (257, 9), (65536, 16)])
def test_port_shapes(depth: int, bits: int) -> None:
    dut = FaultySRAM(depth=depth, width=12)
    assert (dut.depth, dut.width) == (depth, 12)
    assert len(dut.addr) == bits
    for port in (dut.wdata, dut.rdata, dut.flip, dut.fault_sa0, dut.fault_sa1):
        assert len(port) == 12 and not port.shape().signed
    assert len(dut.we) == len(dut.fault_we) == 1


def test_defaults() -> None:
    dut = FaultySRAM()
    assert (dut.depth, dut.width, len(dut.addr)) == (256, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"depth": 1}, ValueError, "SRAM depth must be an integer between 2 and 65536, not 1"),
        (
            {"depth": 65537},
            ValueError,
            "SRAM depth must be an integer between 2 and 65536, not 65537",
        ),
        ({"depth": "256"}, TypeError, "SRAM depth must be an integer, not '256'"),
        ({"depth": True}, TypeError, "SRAM depth must be an integer, not True"),
        ({"width": 0}, ValueError, "SRAM width must be an integer between 1 and 64, not 0"),
        ({"width": 65}, ValueError, "SRAM width must be an integer between 1 and 64, not 65"),
        ({"width": 8.0}, TypeError, "SRAM width must be an integer, not 8.0"),
    ],
)
def test_validation_messages(kwargs: dict[str, object], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=f"^{re.escape(message)}$"):
        FaultySRAM(**kwargs)  # type: ignore[arg-type]


def test_rtl_ports_and_determinism() -> None:
    first = to_verilog(FaultySRAM(depth=16, width=4), name="sram")
    assert first == to_verilog(FaultySRAM(depth=16, width=4), name="sram")
    header = re.search(r"\bmodule sram\(([^)]*)\)", first)
    assert header is not None
    ports = sorted(header.group(1).replace(" ", "").split(","))
    assert ports == sorted(
        ["addr", "we", "wdata", "rdata", "flip", "fault_we", "fault_sa0", "fault_sa1", "clk", "rst"]
    )
    for memory in ("data", "sa0", "sa1"):
        assert re.search(rf"\breg \[3:0\] {memory} \[15:0\];", first)
