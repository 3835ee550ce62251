"""A synchronous single-port SRAM weight buffer with permanent and transient fault injection.

Three memories of the same shape hold the data words and, per word, a stuck-at-0 and a
stuck-at-1 mask. A read returns ``((stored & ~sa0) | sa1) ^ flip``:

* stuck-at faults are permanent cell defects: they act on every read, whatever was written, and
  writes never change them (the stored word is kept, the fault hides it);
* ``flip`` is a transient upset of one read only: it never reaches the stored word.

The memories are read through asynchronous read ports and the fault logic sits in front of the
read-data register, so ``rdata`` is a plain register output (its timing does not depend on the
fault masks) and the read is still synchronous at the component's boundary. Every word of every
memory is initialised to 0, which the Verilog back-end writes out word by word: a 65536 x 64
buffer gives about 7 MB of RTL and takes some 25 s to convert.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .errors import HWError, HWTypeError

__all__ = ["FaultySRAM"]

_MAX_DEPTH = 65536
_MAX_WIDTH = 64


def _check_int(what: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HWTypeError(f"SRAM {what} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise HWError(f"SRAM {what} must be an integer between {lo} and {hi}, not {value!r}")


class FaultySRAM(wiring.Component):
    """Synchronous single-port SRAM with stuck-at and bit-flip fault injection.

    Every ``sync`` clock edge performs one read of word ``addr``; its value appears on ``rdata``
    after that edge and reads ``((stored & ~sa0) | sa1) ^ flip``, with ``flip`` sampled at the
    same edge. If ``we`` is high at the edge, ``wdata`` is written to word ``addr``; if
    ``fault_we`` is high, ``fault_sa0`` and ``fault_sa1`` replace the fault masks of word
    ``addr``. A read at the edge that writes the same word returns the old contents and old
    masks (read-first).

    A bit set in both masks reads 1: stuck-at-1 wins. Masks start at 0 (fault free) when the
    simulation starts; like the data words they are memory contents, so the ``sync`` reset does
    not clear them (write zero masks to repair a word). The reset clears ``rdata`` only.

    When ``depth`` is not a power of two, addresses at or above ``depth`` ignore writes and read
    as 0 (before ``flip`` is applied).

    Parameters
    ----------
    depth : int
        Number of words, from 2 to 65536.
    width : int
        Word width in bits, from 1 to 64.

    Members
    -------
    addr : In(range(depth))
        Word address for the read, the write and the fault-mask write.
    we : In(1)
        Write enable for ``wdata``.
    wdata : In(width)
        Data to write.
    rdata : Out(width)
        Registered read data, reset to 0.
    flip : In(width)
        Bits to invert in this edge's read only.
    fault_we : In(1)
        Write enable for the fault masks of word ``addr``.
    fault_sa0 : In(width)
        New stuck-at-0 mask.
    fault_sa1 : In(width)
        New stuck-at-1 mask.

    Raises
    ------
    TypeError
        If ``depth`` or ``width`` is not an integer.
    ValueError
        If ``depth`` or ``width`` is out of range.
    """

    def __init__(self, *, depth: int = 256, width: int = 8) -> None:
        _check_int("depth", depth, 2, _MAX_DEPTH)
        _check_int("width", width, 1, _MAX_WIDTH)
        self._depth, self._width = depth, width
        super().__init__(
            {
                "addr": In(range(depth)),
                "we": In(1),
                "wdata": In(width),
                "rdata": Out(width),
                "flip": In(width),
                "fault_we": In(1),
                "fault_sa0": In(width),
                "fault_sa1": In(width),
            }
        )

    @property
    def depth(self) -> int:
        """Number of words."""
        return self._depth

    @property
    def width(self) -> int:
        """Word width in bits."""
        return self._width

    def elaborate(self, platform: object) -> Module:
        m = Module()
        shape = unsigned(self._width)
        # Only a depth that is not a power of two leaves addresses without a word.
        full = self._depth & (self._depth - 1) == 0
        in_range = Const(1, 1) if full else self.addr < self._depth

        words = {}
        for name, data, enable in (
            ("data", self.wdata, self.we),
            ("sa0", self.fault_sa0, self.fault_we),
            ("sa1", self.fault_sa1, self.fault_we),
        ):
            mem = m.submodules[name] = Memory(shape=shape, depth=self._depth, init=[])
            write = mem.write_port()
            read = mem.read_port(domain="comb")
            m.d.comb += [
                write.addr.eq(self.addr),
                write.data.eq(data),
                write.en.eq(enable & in_range),
                read.addr.eq(self.addr),
            ]
            words[name] = read.data

        faulty = (words["data"] & ~words["sa0"]) | words["sa1"]
        m.d.sync += self.rdata.eq((faulty if full else Mux(in_range, faulty, 0)) ^ self.flip)
        return m
