"""Netlist IR: a flat, bit-level, combinational gate netlist.

Every net is a string: a port bit (``"a[3]"``), an internal wire (``"_042_"``), or one of
the two constants :data:`CONST0` / :data:`CONST1`.  Every cell instance drives one or more
nets through its output pins.  The IR is what every other part of ``sim`` works on: delay
models, static timing, the simulator-ready Verilog writer, and (later) the fast timing
engine.  It is checked once, at construction (:meth:`Netlist.check`): a net driven twice,
a net read but never driven, and a combinational loop are errors that name the net.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from .cells import CellLibrary
from .errors import SimError

__all__ = ["CONST0", "CONST1", "Cell", "Netlist", "NetlistError"]

CONST0 = "1'b0"
CONST1 = "1'b1"


class NetlistError(SimError, ValueError):
    """The netlist is malformed (the message names the net or cell and the fix)."""


@dataclass(frozen=True)
class Cell:
    """One cell instance: ``pins`` maps every pin (inputs and outputs) to a net."""

    name: str
    type: str
    pins: Mapping[str, str]


@dataclass
class Netlist:
    """A flat combinational netlist over a :class:`~sim.cells.CellLibrary`.

    Parameters
    ----------
    top:
        Module name.
    inputs, outputs:
        Port name -> list of bit nets, least significant bit first.
    cells:
        Cell instances, in any order.
    library:
        The cells' types.
    """

    top: str
    inputs: dict[str, list[str]]
    outputs: dict[str, list[str]]
    cells: list[Cell]
    library: CellLibrary
    _checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.check()

    # --- structure ----------------------------------------------------------------------
    @cached_property
    def driver(self) -> dict[str, tuple[int, str]]:
        """Net -> (cell index, output pin) of its driving cell."""
        drv: dict[str, tuple[int, str]] = {}
        for i, cell in enumerate(self.cells):
            ctype = self.library[cell.type]
            for pin in ctype.outputs:
                net = cell.pins.get(pin)
                if net is None:
                    continue
                if net in drv:
                    other = self.cells[drv[net][0]].name
                    raise NetlistError(
                        f"Net {net!r} is driven by both {other!r} and {cell.name!r}; "
                        "a net must have exactly one driver"
                    )
                drv[net] = (i, pin)
        return drv

    @cached_property
    def input_nets(self) -> set[str]:
        return {n for bits in self.inputs.values() for n in bits}

    @cached_property
    def fanout(self) -> dict[str, list[tuple[int, str]]]:
        """Net -> list of (cell index, input pin) that read it."""
        fo: dict[str, list[tuple[int, str]]] = {}
        for i, cell in enumerate(self.cells):
            for pin in self.library[cell.type].inputs:
                fo.setdefault(cell.pins[pin], []).append((i, pin))
        return fo

    @cached_property
    def order(self) -> list[int]:
        """Cell indices in topological order (drivers before readers)."""
        drv = self.driver
        indeg = [0] * len(self.cells)
        readers: dict[int, list[int]] = {}
        for i, cell in enumerate(self.cells):
            srcs = {drv[cell.pins[p]][0] for p in self.library[cell.type].inputs
                    if cell.pins[p] in drv}
            indeg[i] = len(srcs)
            for s in srcs:
                readers.setdefault(s, []).append(i)
        ready = [i for i, d in enumerate(indeg) if d == 0]
        out: list[int] = []
        while ready:
            i = ready.pop()
            out.append(i)
            for r in readers.get(i, ()):
                indeg[r] -= 1
                if indeg[r] == 0:
                    ready.append(r)
        if len(out) != len(self.cells):
            stuck = sorted(self.cells[i].name for i, d in enumerate(indeg) if d > 0)
            raise NetlistError(
                f"Combinational loop through {len(stuck)} cells (e.g. {stuck[0]!r}); "
                "timing netlists must be acyclic: cut the loop with a register"
            )
        return out

    def check(self) -> None:
        """Check pins, drivers and loops; raise :class:`NetlistError` on the first problem."""
        for cell in self.cells:
            if cell.type not in self.library:
                raise NetlistError(
                    f"Cell {cell.name!r} has type {cell.type!r}, which library "
                    f"{self.library.name!r} does not define; synthesise to that library "
                    "or pass the Liberty file that defines it"
                )
            ctype = self.library[cell.type]
            for pin in ctype.inputs:
                if pin not in cell.pins:
                    raise NetlistError(
                        f"Input pin {pin!r} of cell {cell.name!r} ({cell.type}) is unconnected"
                    )
            extra = set(cell.pins) - set(ctype.inputs) - set(ctype.outputs)
            if extra:
                raise NetlistError(
                    f"Cell {cell.name!r} ({cell.type}) has no pin {sorted(extra)[0]!r}"
                )
        drv = self.driver
        known = drv.keys() | self.input_nets | {CONST0, CONST1}
        for net in self.input_nets:
            if net in drv:
                raise NetlistError(f"Input port bit {net!r} is also driven by a cell")
        for cell in self.cells:
            for pin in self.library[cell.type].inputs:
                if cell.pins[pin] not in known:
                    raise NetlistError(
                        f"Net {cell.pins[pin]!r} (pin {pin} of {cell.name!r}) is read but "
                        "never driven; connect it to a driver or a constant"
                    )
        for port, bits in self.outputs.items():
            for k, net in enumerate(bits):
                if net not in known:
                    raise NetlistError(
                        f"Output {port}[{k}] is connected to net {net!r}, which is never driven"
                    )
        _ = self.order  # raises on loops
        self._checked = True

    # --- derived figures ----------------------------------------------------------------
    def cell_counts(self) -> dict[str, int]:
        """Cell type -> number of instances, sorted by type name."""
        return dict(sorted(Counter(c.type for c in self.cells).items()))

    @property
    def nets(self) -> set[str]:
        """All nets (port bits, internal wires and constants in use)."""
        nets = set(self.input_nets)
        for cell in self.cells:
            nets.update(cell.pins.values())
        for bits in self.outputs.values():
            nets.update(bits)
        return nets

    def logic_depth(self) -> int:
        """Largest number of cells on any input-to-output path."""
        depth: dict[str, int] = {}
        for i in self.order:
            cell = self.cells[i]
            ctype = self.library[cell.type]
            d = 1 + max((depth.get(cell.pins[p], 0) for p in ctype.inputs), default=0)
            for pin in ctype.outputs:
                if pin in cell.pins:
                    depth[cell.pins[pin]] = d
        return max((depth.get(n, 0) for bits in self.outputs.values() for n in bits), default=0)

    def to_dict(self) -> dict[str, object]:
        """A canonical JSON-able form (used for hashing and caching)."""
        return {
            "top": self.top,
            "library": self.library.name,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "cells": [
                {"name": c.name, "type": c.type, "pins": dict(sorted(c.pins.items()))}
                for c in sorted(self.cells, key=lambda c: c.name)
            ],
        }

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical form: equal for equal netlists, whatever the file."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def port_bits(self, names: Iterable[str]) -> list[str]:
        """Concatenate the bit nets of several ports (inputs or outputs)."""
        out: list[str] = []
        for name in names:
            bits = self.inputs.get(name) or self.outputs.get(name)
            if bits is None:
                raise NetlistError(f"Netlist {self.top!r} has no port {name!r}")
            out.extend(bits)
        return out


def netlist_from_mapping(
    top: str,
    inputs: Mapping[str, list[str]],
    outputs: Mapping[str, list[str]],
    cells: Iterable[Cell],
    library: CellLibrary,
) -> Netlist:
    """Build and check a :class:`Netlist` (convenience for readers)."""
    return Netlist(top=top, inputs=dict(inputs), outputs=dict(outputs), cells=list(cells),
                   library=library)
