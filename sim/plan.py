"""The timing engine's view of a netlist: nodes, delays, change windows and memory layout.

:class:`EnginePlan` flattens a :class:`~sim.netlist.Netlist` into *nodes* (one per connected
cell output, in topological order) over integer net indices. It depends on the netlist's
structure only, so the compiled kernel (:mod:`sim.kernel`) is built once per netlist;
delays, per-pin offsets, forced (stuck) nets and the horizon are run-time arrays
(:class:`Layout`), so a delay-variation sample or a stuck-at fault costs no recompilation.

Change windows
--------------
All primary inputs switch at tick 0 (previous operands before, current operands from 0 on).
A net can only change inside its window ``[lo, hi]``: for a node with output delays
``(R, F)`` and input pin offsets ``o_i``::

    lo = min_i(lo_i + o_i) + min(R, F)        hi = max_i(hi_i + o_i) + max(R, F)

over its non-constant inputs (an empty window, ``hi = lo - 1``, when it has none or is
forced). Before ``lo`` the net holds its settled previous value, after ``hi`` its final
value. Windows are clipped at the horizon (the largest capture period), since nothing later
can reach a capture.

Memory layout
-------------
Each net stores one entry (``L`` 64-bit words: one bit per transition) per tick of a
*stored range* ``[rlo, rhi]`` that covers its window, the tick ``lo - 1`` (its previous
value), and every tick a reader reads; entries outside the window repeat the previous or
final value. With that padding the kernel reads its inputs with plain pointer increments,
no clamping in the inner loops.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from .cells import Expr, parse_function
from .errors import SimError
from .netlist import CONST0, CONST1, Netlist

__all__ = ["SEMANTICS", "EnginePlan", "default_timing", "Layout", "Node", "PlanError", "Semantics",
           "per_pin_netlist"]

Semantics = Literal["inertial", "transport", "pathdelay"]
SEMANTICS: tuple[Semantics, ...] = get_args(Semantics)
"""Every delay semantics, in the order the CLI lists them."""
I32 = npt.NDArray[np.int32]

SIGNOFF_MODELS = ("liberty", "sdf")
"""Delay models with a delay per arc (Liberty tables, SDF)."""


def default_timing(model_kind: str) -> tuple[Semantics, bool]:
    """``(semantics, per_pin)`` a command uses when the user names none.

    For Liberty and SDF delays: ``transport`` with per-pin arcs, whose last wrong capture
    lands where OpenSTA puts the critical path (``results/signoff/report.md``, ``nox -s
    signoff``: one tick before OpenSTA's path on the same tick delays, on Liberty delays
    and on OpenSTA's SDF). Inertial with each cell's slowest arc does as well there, but
    charges a wire delay on one pin (SDF ``INTERCONNECT``/``PORT``) to every pin of the
    cell: 14 ticks late on such a 3-bit adder. Pathdelay (Icarus's gate-level simulation
    with SDF) settles 23-25 ticks early. For the unit and effort models (no arcs):
    ``inertial``, the semantics of the papers' tables.
    """
    return ("transport", True) if model_kind in SIGNOFF_MODELS else ("inertial", False)


class PlanError(SimError, ValueError):
    """The netlist, delays or settings cannot be simulated (message names the fix)."""


Delays = dict[str, dict[str, tuple[int, int]]]
Offsets = dict[str, dict[str, dict[str, int]]]


PIN_DELAY = "FC_PINDELAY"
"""Cell type of the delay elements :func:`per_pin_netlist` inserts before input pins."""


def per_pin_netlist(netlist: Netlist, annotation: Any) -> tuple[Netlist, Delays]:
    """The netlist with per-pin (pin-to-output) delays made explicit, and its delays.

    A cell output's ``(rise, fall)`` become those of its fastest arcs (``min`` over input
    pins of the arcs' rise, and of their fall); an input pin whose arcs are slower gets a
    delay element (cell :data:`PIN_DELAY`, ``y = a``) in front of it, with its own delay
    for a rising and a falling input: through a positive-unate pin an input rise makes the
    output rise, so the element's rise delay is ``rise_i - rise`` and its fall delay
    ``fall_i - fall``; through a negative-unate pin the two swap; a non-unate pin (either
    input edge makes either output edge) gets the larger of the two on both edges. So
    every unate arc keeps its own delay exactly (the largest over the cell's outputs when
    it has several). Every delay is at least one tick: when an element would need 0 on
    one edge and more on the other, the cell's output delays give a tick to every one of
    its elements (or, for a cell with a 1-tick delay, the element takes the larger delay
    on both edges). The delay elements follow the same semantics as every cell (inertial
    or transport), in the engine and in the simulator-ready Verilog alike, so per-pin
    delays need no special case anywhere.
    """
    from .cells import CellType
    from .netlist import Cell

    library = replace(netlist.library, name=f"{netlist.library.name}+pindelay",
                      cells={**netlist.library.cells,
                             PIN_DELAY: CellType(PIN_DELAY, ("A",), {"Y": "A"})})
    delays: Delays = {}
    cells: list[Cell] = []
    for cell in netlist.cells:
        ctype = netlist.library[cell.type]
        base: dict[str, tuple[int, int]] = {}
        need: dict[str, tuple[int, int]] = {}  # pin -> (input-rise, input-fall) element
        for out, (r0, f0) in annotation.delays[cell.name].items():
            arcs = annotation.arcs.get(cell.name, {}).get(out, {})
            if not arcs:
                base[out] = (int(r0), int(f0))
                continue
            r = min(int(a[0]) for a in arcs.values())
            f = min(int(a[1]) for a in arcs.values())
            base[out] = (r, f)
            for p, a in arcs.items():
                dr, df = int(a[0]) - r, int(a[1]) - f  # extra for an output rise, fall
                sense = ctype.sense(out, p)
                e = ((dr, df) if sense == "positive_unate" else
                     (df, dr) if sense == "negative_unate" else (max(dr, df),) * 2)
                old = need.get(p, (0, 0))
                need[p] = (max(old[0], e[0]), max(old[1], e[1]))
        live = {p: e for p, e in need.items() if cell.pins[p] not in (CONST0, CONST1)}
        if any((a == 0) != (b == 0) for a, b in live.values()):
            if all(min(d) >= 2 for d in base.values()):
                base = {o: (d[0] - 1, d[1] - 1) for o, d in base.items()}
                live = {p: (a + 1, b + 1) for p, (a, b) in live.items()}
            else:
                live = {p: (max(e),) * 2 for p, e in live.items()}
        delays[cell.name] = base
        pins = dict(cell.pins)
        for p, (er, ef) in sorted(live.items()):
            if er == ef == 0:
                continue
            name = f"{cell.name}__{p}_pindelay"
            net = f"{pins[p]}__{cell.name}_{p}"
            cells.append(Cell(name, PIN_DELAY, {"A": pins[p], "Y": net}))
            delays[name] = {"Y": (er, ef)}
            pins[p] = net
        cells.append(Cell(cell.name, cell.type, pins))
    return Netlist(netlist.top, dict(netlist.inputs), dict(netlist.outputs), cells,
                   library), delays


@dataclass(frozen=True)
class Node:
    """One connected cell output: ``out = f(ins)``."""

    cell: str
    cell_type: str
    pin: str
    out: int
    ins: tuple[int, ...]
    in_pins: tuple[str, ...]
    expr: Expr


@dataclass(frozen=True)
class Layout:
    """Run-time arrays for one set of delays, forced nets and horizon (see module doc)."""

    rise: I32
    fall: I32
    pin_offset: I32  # [nodes, max_inputs]
    force: npt.NDArray[np.uint8]  # per net: 0 free, 1 stuck at 0, 2 stuck at 1
    lo: I32
    hi: I32
    rlo: I32
    rhi: I32
    off: I32
    entries: int
    scratch: int
    horizon: int

    def evaluations(self) -> int:
        """Node-ticks computed per block (the window sizes): the engine's unit of work."""
        return int(np.maximum(self.hi - self.lo + 1, 0).sum())


class EnginePlan:
    """Nodes and nets of a netlist in the engine's order.

    Parameters
    ----------
    netlist:
        The gate netlist.
    inputs:
        Input ports in the order the kernel receives their bits (default: all, as declared).
    outputs:
        Output ports captured (default: all).
    """

    def __init__(self, netlist: Netlist, inputs: Sequence[str] | None = None,
                 outputs: Sequence[str] | None = None) -> None:
        self.netlist = netlist
        self.input_ports = list(inputs if inputs is not None else netlist.inputs)
        self.output_ports = list(outputs if outputs is not None else netlist.outputs)
        for port in self.input_ports:
            if port not in netlist.inputs:
                raise PlanError(f"Netlist {netlist.top!r} has no input port {port!r}; its "
                                f"inputs are {sorted(netlist.inputs)}")
        for port in self.output_ports:
            if port not in netlist.outputs:
                raise PlanError(f"Netlist {netlist.top!r} has no output port {port!r}; its "
                                f"outputs are {sorted(netlist.outputs)}")
        missing = set(netlist.inputs) - set(self.input_ports)
        if missing:
            raise PlanError(f"Input ports {sorted(missing)} of {netlist.top!r} are not driven "
                            "by the engine; list every input port")
        self.nets: list[str] = [CONST0, CONST1]
        self.index: dict[str, int] = {CONST0: 0, CONST1: 1}

        def idx(net: str) -> int:
            if net not in self.index:
                self.index[net] = len(self.nets)
                self.nets.append(net)
            return self.index[net]

        self.in_nets = [idx(n) for p in self.input_ports for n in netlist.inputs[p]]
        self.nodes: list[Node] = []
        exprs: dict[tuple[str, str], Expr] = {}
        for i in netlist.order:
            cell = netlist.cells[i]
            ctype = netlist.library[cell.type]
            for pin in ctype.outputs:
                if pin not in cell.pins:
                    continue
                key = (cell.type, pin)
                if key not in exprs:
                    exprs[key] = parse_function(ctype.functions[pin])
                ins = tuple(idx(cell.pins[p]) for p in ctype.inputs)
                self.nodes.append(Node(cell.name, cell.type, pin, idx(cell.pins[pin]), ins,
                                       ctype.inputs, exprs[key]))
        self.out_nets = [idx(n) for p in self.output_ports for n in netlist.outputs[p]]
        self.max_inputs = max((len(n.ins) for n in self.nodes), default=1)
        self.driver = {n.out: k for k, n in enumerate(self.nodes)}

    @property
    def structure_hash(self) -> str:
        """Hash of what the compiled kernel depends on (nodes, functions, net order)."""
        blob = json.dumps([self.in_nets, self.out_nets, len(self.nets),
                           [(n.out, n.ins, repr(n.expr)) for n in self.nodes]])
        return hashlib.sha256(blob.encode()).hexdigest()

    # --- delays -----------------------------------------------------------------------------
    def delays_from(self, delays: Mapping[str, Mapping[str, tuple[int, int]]],
                    ) -> tuple[I32, I32, I32]:
        """``(rise, fall, pin_offset)`` arrays over the nodes from per-cell delays.

        Pin offsets (transport shifts of input pins, a kernel feature) are all 0: per-pin
        delays are explicit delay cells (:func:`per_pin_netlist`).
        """
        n = len(self.nodes)
        rise = np.empty(n, np.int32)
        fall = np.empty(n, np.int32)
        offset = np.zeros((n, self.max_inputs), np.int32)
        for k, node in enumerate(self.nodes):
            try:
                r, f = delays[node.cell][node.pin]
            except KeyError:
                raise PlanError(f"No delay for cell {node.cell!r} pin {node.pin}; annotate "
                                "the netlist this engine was built for") from None
            rise[k], fall[k] = int(r), int(f)
        if n and (rise.min() < 1 or fall.min() < 1):
            k = int(np.argmin(np.minimum(rise, fall)))
            raise PlanError(f"Cell {self.nodes[k].cell!r} has a delay below 1 tick; the engine "
                            "needs every delay >= 1 tick (use a finer tick)")
        return rise, fall, offset

    def _last_use(self) -> npt.NDArray[np.int64]:
        """Per net, the index of the last node that reads it (captured outputs: the end)."""
        last = np.full(len(self.nets), -1, np.int64)
        for k, node in enumerate(self.nodes):
            for n in node.ins:
                last[n] = k
        end = len(self.nodes)
        last[list(self.out_nets)] = end
        last[[0, 1]] = end  # the constants are written once per block, before the nodes
        return last

    def _allocate(self, sizes: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
        """Arena offsets reusing the memory of nets no longer read (liveness), so the live
        waveforms stay in the CPU's caches; returns ``(offsets, total entries)``."""
        last = self._last_use()
        off = np.zeros(len(sizes), np.int64)
        free: list[tuple[int, int]] = []  # (offset, size), sorted by offset
        top = 0

        def alloc(size: int) -> int:
            nonlocal top
            for i, (o, sz) in enumerate(free):
                if sz >= size:
                    if sz == size:
                        free.pop(i)
                    else:
                        free[i] = (o + size, sz - size)
                    return o
            o = top
            top += size
            return o

        def release(o: int, size: int) -> None:
            i = bisect.bisect_left(free, (o, size))
            free.insert(i, (o, size))
            if i + 1 < len(free) and o + size == free[i + 1][0]:  # merge with the next block
                free[i] = (o, size + free.pop(i + 1)[1])
            if i > 0 and free[i - 1][0] + free[i - 1][1] == o:  # and with the previous one
                free[i - 1] = (free[i - 1][0], free[i - 1][1] + free.pop(i)[1])

        dying: dict[int, list[int]] = {}
        for n in range(len(sizes)):
            if 0 <= last[n] < len(self.nodes):
                dying.setdefault(int(last[n]), []).append(n)
        for n in [0, 1, *self.in_nets]:
            off[n] = alloc(int(sizes[n]))
        for k, node in enumerate(self.nodes):
            off[node.out] = alloc(int(sizes[node.out]))
            for n in dying.get(k, ()):
                release(int(off[n]), int(sizes[n]))
            if last[node.out] < 0:  # never read, not captured: its memory is free at once
                release(int(off[node.out]), int(sizes[node.out]))
        return off, top

    # --- windows and memory -----------------------------------------------------------------
    def layout(self, rise: I32, fall: I32, pin_offset: I32, horizon: int,
               forced: Mapping[str, int] | None = None) -> Layout:
        """Windows, stored ranges and arena offsets for these delays (see module doc)."""
        if horizon < 1:
            raise PlanError(f"Horizon must be at least 1 tick, not {horizon}")
        nn = len(self.nets)
        force = np.zeros(nn, np.uint8)
        force[0], force[1] = 1, 2
        for net, value in (forced or {}).items():
            if net not in self.index:
                raise PlanError(f"Cannot force net {net!r}: the netlist has no such net")
            if value not in (0, 1):
                raise PlanError(f"A forced net takes 0 or 1, not {value!r} (net {net!r})")
            force[self.index[net]] = 1 + value
        big = np.iinfo(np.int32).max // 4
        lo = np.full(nn, big, np.int64)
        hi = lo - 1
        for n in self.in_nets:
            if not force[n]:
                lo[n], hi[n] = 0, 0
        for k, node in enumerate(self.nodes):
            y = node.out
            if force[y]:
                continue
            live = [(node.ins[i], int(pin_offset[k, i])) for i in range(len(node.ins))
                    if hi[node.ins[i]] >= lo[node.ins[i]]]
            if not live:
                continue
            dmin, dmax = min(rise[k], fall[k]), max(rise[k], fall[k])
            lo[y] = min(lo[i] + o for i, o in live) + dmin
            hi[y] = min(max(hi[i] + o for i, o in live) + dmax, horizon)
            if lo[y] > hi[y]:
                hi[y] = lo[y] - 1
        # empty windows: anchor at tick 0 so lo - 1 = -1 is the stored "previous" entry
        empty = hi < lo
        lo[empty], hi[empty] = 0, -1
        rlo = lo - 1
        rhi = np.maximum(hi, lo - 1)
        for n in self.in_nets:  # the kernel writes ticks -1 and 0 of every input bit
            rhi[n] = max(rhi[n], 0)
        scratch = 1
        for k, node in enumerate(self.nodes):
            y = node.out
            if not force[y] and hi[y] >= lo[y]:
                scratch = max(scratch, int(hi[y] - lo[y]) + int(min(rise[k], fall[k])) + 1)
        sizes = rhi - rlo + 1
        off, entries = self._allocate(sizes)
        if entries > 2**31 - 1:
            raise PlanError("The waveforms of this netlist do not fit the engine's 32-bit "
                            "offsets; use a coarser tick or a smaller horizon")
        return Layout(rise=rise.astype(np.int32), fall=fall.astype(np.int32),
                      pin_offset=np.ascontiguousarray(pin_offset, np.int32), force=force,
                      lo=lo.astype(np.int32), hi=hi.astype(np.int32), rlo=rlo.astype(np.int32),
                      rhi=rhi.astype(np.int32), off=off.astype(np.int32), entries=entries,
                      scratch=int(scratch), horizon=int(horizon))
