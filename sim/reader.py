"""Read a flat gate-level Verilog netlist into the :class:`~sim.netlist.Netlist` IR.

The parser is pyverilog, so any structural netlist loads: Yosys' ``write_verilog``
output, or a netlist from another synthesis tool together with its Liberty file.
Supported constructs are those of flat structural netlists: port and wire declarations
(scalar or vector), cell instances with named pin connections, and continuous assignments
whose both sides are bits, vectors, part-selects, concatenations or constants (aliases).
Anything behavioural is an error that names the construct.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .cells import CellLibrary
from .netlist import CONST0, CONST1, Cell, Netlist, NetlistError

__all__ = ["read_verilog"]


_PARSER = None


def _parse(path: Path):  # type: ignore[no-untyped-def]
    from pyverilog.vparser.parser import VerilogParser
    from pyverilog.vparser.preprocessor import preprocess

    global _PARSER
    with tempfile.TemporaryDirectory() as tmp:
        # Icarus' preprocessor resolves `define/`include/`timescale for netlists of any tool
        text = preprocess([str(path)], output=os.path.join(tmp, "pp.v"))
    if _PARSER is None:
        # PLY caches its LALR tables in a folder; keep them out of the user's working folder
        tables = Path(tempfile.gettempdir()) / "flipclock-pyverilog-tables"
        _PARSER = VerilogParser(outputdir=str(tables), debug=False)
    return _PARSER.parse(text, debug=0)


class _Module:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ranges: dict[str, tuple[int, int]] = {}  # vector name -> (msb, lsb)
        self.port_dirs: dict[str, str] = {}
        self.port_order: list[str] = []
        self.cells: list[Cell] = []
        self.aliases: list[tuple[str, str]] = []  # (lhs bit, rhs bit)

    def bits(self, name: str) -> list[str]:
        """Bit nets of a declared name, LSB first."""
        if name not in self.ranges:
            return [name]
        msb, lsb = self.ranges[name]
        step = 1 if msb >= lsb else -1
        idx = range(lsb, msb + step, step)
        return [f"{name}[{i}]" for i in idx]


def _const_bits(node) -> list[str]:  # type: ignore[no-untyped-def]
    text = str(node.value).replace("_", "")
    if "'" not in text:
        width, value = 32, int(text)
    else:
        w, rest = text.split("'", 1)
        width = int(w) if w else 32
        base = rest[0].lower()
        if base == "s":
            rest = rest[1:]
            base = rest[0].lower()
        digits = rest[1:]
        if any(ch in "xXzZ?" for ch in digits):
            raise NetlistError(f"Constant {text!r} has x/z bits; tie the net to 0 or 1")
        value = int(digits, {"b": 2, "o": 8, "d": 10, "h": 16}[base])
    return [CONST1 if (value >> i) & 1 else CONST0 for i in range(width)]


def _expr_bits(mod: _Module, node) -> list[str]:  # type: ignore[no-untyped-def]
    """Bit nets (LSB first) of a connection expression."""
    from pyverilog.vparser import ast

    if isinstance(node, ast.Identifier):
        return mod.bits(node.name)
    if isinstance(node, ast.Pointer):
        return [f"{node.var.name}[{int(node.ptr.value)}]"]
    if isinstance(node, ast.Partselect):
        msb, lsb = int(node.msb.value), int(node.lsb.value)
        step = 1 if msb >= lsb else -1
        return [f"{node.var.name}[{i}]" for i in range(lsb, msb + step, step)]
    if isinstance(node, ast.IntConst):
        return _const_bits(node)
    if isinstance(node, ast.Concat):
        out: list[str] = []
        for part in reversed(node.list):
            out.extend(_expr_bits(mod, part))
        return out
    if isinstance(node, ast.Repeat):
        return _expr_bits(mod, node.value) * int(node.times.value)
    raise NetlistError(
        f"Unsupported expression {type(node).__name__} in module {mod.name!r}: a gate-level "
        "netlist may only connect nets; synthesise behavioural code first"
    )


def _collect(mod: _Module, items: Iterable) -> None:  # type: ignore[type-arg]
    from pyverilog.vparser import ast

    for item in items:
        if isinstance(item, ast.Decl):
            for d in item.list:
                if isinstance(d, ast.Input | ast.Output | ast.Inout | ast.Wire):
                    if d.width is not None:
                        mod.ranges[d.name] = (int(d.width.msb.value), int(d.width.lsb.value))
                    if isinstance(d, ast.Inout):
                        raise NetlistError(f"Inout port {d.name!r} is not supported")
                    if isinstance(d, ast.Input | ast.Output):
                        mod.port_dirs[d.name] = "input" if isinstance(d, ast.Input) else "output"
                elif isinstance(d, ast.Reg):
                    raise NetlistError(
                        f"Register {d.name!r} in {mod.name!r}: timing netlists are "
                        "combinational; pass the combinational core"
                    )
        elif isinstance(item, ast.InstanceList):
            for inst in item.instances:
                pins: dict[str, str] = {}
                for port in inst.portlist:
                    if port.portname is None:
                        raise NetlistError(
                            f"Instance {inst.name!r} uses positional connections; "
                            "write the netlist with named pins (.A(net))"
                        )
                    if port.argname is None:
                        continue
                    bits = _expr_bits(mod, port.argname)
                    if len(bits) != 1:
                        raise NetlistError(
                            f"Pin {port.portname} of {inst.name!r} connects {len(bits)} bits; "
                            "cell pins are single-bit"
                        )
                    pins[port.portname] = bits[0]
                mod.cells.append(Cell(name=inst.name, type=inst.module, pins=pins))
        elif isinstance(item, ast.Assign):
            lhs = _expr_bits(mod, item.left.var)
            rhs = _expr_bits(mod, item.right.var)
            rhs = (rhs + [CONST0] * len(lhs))[: len(lhs)]
            mod.aliases.extend(zip(lhs, rhs, strict=True))
        elif isinstance(item, ast.Pragma | ast.Parameter | ast.Localparam):
            continue
        else:
            raise NetlistError(
                f"Unsupported construct {type(item).__name__} in module {mod.name!r}: "
                "a gate-level netlist holds declarations, cell instances and assigns only"
            )


def _resolve(mod: _Module) -> dict[str, str]:
    """Map every aliased net to its representative (a driven net, a port input, or a const)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    inputs = {b for n, d in mod.port_dirs.items() if d == "input" for b in mod.bits(n)}
    driven = {net for c in mod.cells for net in c.pins.values()}  # over-approximation

    def rank(x: str) -> int:
        if x in (CONST0, CONST1):
            return 0
        if x in inputs:
            return 1
        return 2 if x in driven else 3

    for lhs, rhs in mod.aliases:
        a, b = find(lhs), find(rhs)
        if a == b:
            continue
        if rank(a) < rank(b):
            a, b = b, a
        parent[a] = b
    return {x: find(x) for x in parent}


def read_verilog(path: str | os.PathLike[str], library: CellLibrary,
                 *, top: str | None = None) -> Netlist:
    """Read a structural gate-level Verilog file.

    Parameters
    ----------
    path:
        The netlist file.
    library:
        Cell library defining every instantiated cell type (the default ``fcgates`` or one
        read from a Liberty file with :func:`sim.liberty.read_liberty`).
    top:
        Module to read; default: the only module, or the last one in the file.

    Raises
    ------
    NetlistError
        For anything that is not a flat combinational netlist over ``library``.
    """
    path = Path(path)
    if not path.is_file():
        raise NetlistError(f"Netlist file {str(path)!r} does not exist")
    from pyverilog.vparser import ast

    try:
        tree = _parse(path)
    except Exception as exc:  # pyverilog raises bare ParseError/OSError types
        raise NetlistError(f"Cannot parse {str(path)!r}: {exc}".splitlines()[0]) from exc
    modules = [d for d in tree.description.definitions if isinstance(d, ast.ModuleDef)]
    if not modules:
        raise NetlistError(f"No module in {str(path)!r}")
    chosen = modules[-1] if top is None else next((m for m in modules if m.name == top), None)
    if chosen is None:
        raise NetlistError(f"No module {top!r} in {str(path)!r}; found {[m.name for m in modules]}")
    mod = _Module(chosen.name)
    for port in chosen.portlist.ports:
        first = port.first if isinstance(port, ast.Ioport) else port
        mod.port_order.append(first.name)
        if isinstance(port, ast.Ioport):
            _collect(mod, [ast.Decl([port.first])])
            if port.first.width is not None:
                mod.ranges[port.first.name] = (int(port.first.width.msb.value),
                                               int(port.first.width.lsb.value))
    _collect(mod, chosen.items)
    rep = _resolve(mod)

    def r(net: str) -> str:
        return rep.get(net, net)

    cells = [Cell(c.name, c.type, {p: r(n) for p, n in c.pins.items()}) for c in mod.cells]
    for c in cells:
        if c.type not in library:
            raise NetlistError(f"Instance {c.name!r}: {library.unknown_cell_message(c.type)}")
    inputs = {n: mod.bits(n) for n in mod.port_order if mod.port_dirs.get(n) == "input"}
    outputs = {n: [r(b) for b in mod.bits(n)] for n in mod.port_order
               if mod.port_dirs.get(n) == "output"}
    # an output bit aliased to another output bit keeps its representative net name
    return Netlist(top=mod.name, inputs=inputs, outputs=outputs, cells=cells, library=library)
