"""Explicit one-bit arithmetic cells that keep their identity through synthesis.

Every cell is a handful of named 1-bit :class:`~amaranth.hdl.Signal` objects driven by bitwise
expressions (``&``, ``|``, ``^``, ``~``) only. Naming each output (``fa_c3_r1_0_s``) keeps the
adder structure readable in the generated RTL, and the ``keep`` attribute on every cell signal
makes Yosys preserve those nets through ``synth``/``abc``, so the gate-level netlist still has
one cluster of gates per cell and the timing engine can tell a Dadda tree from a Wallace tree.
Arithmetic operators (``+``, ``*``) are never used: Yosys would replace them with its own adder
architecture.

A missing bit is represented by ``None`` and means a constant 0: no cell is built for it. A cell
whose carry would leave the product (the top column) is built without its carry output, so no
kept net dangles; it still counts as a full or half adder.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, TypeAlias

from amaranth.hdl import Signal, Value

if TYPE_CHECKING:
    from amaranth.hdl._ast import Assign

__all__ = ["Bit", "Netlist"]

Bit: TypeAlias = Value | None
"""A 1-bit value, or ``None`` for a constant 0."""


class Netlist:
    """A flat list of named 1-bit cells, built once and emitted by ``elaborate``.

    Members
    -------
    stmts : list of Assign
        The combinational assignments driving every cell output, in creation order.
    counts : Counter of str
        How many cells of each kind were created, keyed ``"<group>_<cell>"``
        (for example ``"tree_full"``, ``"cpa_half"``, ``"prefix_black"``).
    """

    def __init__(self) -> None:
        self.stmts: list[Assign] = []
        self.counts: Counter[str] = Counter()
        self._names: set[str] = set()

    def wire(self, name: str, expr: Value) -> Signal:
        """Return a new 1-bit signal called ``name`` driven by ``expr``."""
        if name in self._names:
            raise AssertionError(f"duplicate cell signal name {name!r}")
        self._names.add(name)
        sig = Signal(name=name, attrs={"keep": 1})
        self.stmts.append(sig.eq(expr))
        return sig

    def full_adder(
        self, group: str, name: str, x: Value, y: Value, z: Value, *, carry: bool = True
    ) -> tuple[Signal, Signal | None]:
        """Build a full adder; return its ``(sum, carry)`` signals ``<name>_s`` and ``<name>_c``.

        With ``carry=False`` the carry output is not built and ``None`` is returned for it.
        """
        self.counts[f"{group}_full"] += 1
        s = self.wire(f"{name}_s", x ^ y ^ z)
        c = self.wire(f"{name}_c", (x & y) | (x & z) | (y & z)) if carry else None
        return s, c

    def half_adder(
        self, group: str, name: str, x: Value, y: Value, *, carry: bool = True
    ) -> tuple[Signal, Signal | None]:
        """Build a half adder; return its ``(sum, carry)`` signals ``<name>_s`` and ``<name>_c``.

        With ``carry=False`` the carry output is not built and ``None`` is returned for it.
        """
        self.counts[f"{group}_half"] += 1
        s = self.wire(f"{name}_s", x ^ y)
        c = self.wire(f"{name}_c", x & y) if carry else None
        return s, c

    def add_bits(
        self, group: str, name: str, bits: list[Value], *, carry: bool = True
    ) -> tuple[Bit, Bit]:
        """Add up to three bits of equal weight with the smallest cell; return ``(sum, carry)``.

        ``name`` is a format string whose ``{kind}`` field becomes ``fa`` or ``ha``.
        """
        if len(bits) == 3:
            return self.full_adder(group, name.format(kind="fa"), *bits, carry=carry)
        if len(bits) == 2:
            return self.half_adder(group, name.format(kind="ha"), *bits, carry=carry)
        if len(bits) == 1:
            return bits[0], None
        if not bits:
            return None, None
        raise AssertionError(f"cannot add {len(bits)} bits in one cell")
