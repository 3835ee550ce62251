"""Read a flat gate-level Verilog netlist into the :class:`~sim.netlist.Netlist` IR.

The parser is pyverilog, so any structural netlist loads: Yosys' ``write_verilog``
output, or a netlist from another synthesis tool together with its Liberty file.
Supported constructs are those of flat structural netlists: port and wire declarations
(scalar or vector), cell instances with named pin connections, and continuous assignments
whose both sides are bits, vectors, part-selects, concatenations or constants (aliases).
Anything behavioural is an error that names the construct.

Every malformed file -- binary, truncated, mis-typed, absurdly wide or deeply nested -- is
one :class:`~sim.netlist.NetlistError` line that names the file; the property-based tests
in ``tests/test_parsers_fuzz.py`` hold the reader to that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cells import CellLibrary
from .netlist import CONST0, CONST1, Cell, Netlist, NetlistError

__all__ = ["read_verilog"]

# A port, wire or constant wider than this is not a gate netlist's; refusing it keeps a
# typo such as ``[99999999:0]`` from allocating a bit list the size of the memory.
_MAX_BITS = 1 << 16
# Concatenations in netlists nest a level or two; the walk over them is recursive.
_MAX_DEPTH = 64
_PREPROCESS_TIMEOUT_S = 60

_PARSER: Any = None


def _parser() -> Any:
    """The pyverilog parser, built once per process and never written to disk.

    pyverilog's own constructor lets PLY write its LALR tables into a folder, and PLY writes
    them in place: processes sharing the folder race on one file.  The tables are built in
    memory instead (under a second) and PLY's warnings, which would break the one-line
    error contract, go nowhere.
    """
    global _PARSER
    if _PARSER is None:
        from ply.yacc import NullLogger, yacc
        from pyverilog.vparser.lexer import VerilogLexer
        from pyverilog.vparser.parser import VerilogParser

        class _InMemoryParser(VerilogParser):  # type: ignore[misc]
            def __init__(self) -> None:
                self.lexer = VerilogLexer(error_func=self._lexer_error_func)
                self.lexer.build()
                self.tokens = self.lexer.tokens
                self.parser = yacc(module=self, method="LALR", debug=False,
                                   write_tables=False, errorlog=NullLogger())

        _PARSER = _InMemoryParser()
    return _PARSER


def _read_text(path: Path, name: str) -> str:
    """The netlist's text; a binary or non-UTF-8 file is one error line naming ``name``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NetlistError(f"Cannot read netlist {name!r} ({exc.strerror}); check the "
                           "path and its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NetlistError(f"Netlist {name!r} is not a text file (byte {exc.start} is not "
                           "UTF-8); give the structural Verilog netlist") from None
    if "\x00" in text:
        raise NetlistError(f"Netlist {name!r} is not a text file (it holds NUL bytes); "
                           "give the structural Verilog netlist")
    return text


def _preprocess(path: Path, name: str) -> str:
    """Resolve `define/`include/`ifdef with Icarus' preprocessor (``iverilog -E``)."""
    iverilog = os.environ.get("PYVERILOG_IVERILOG") or shutil.which("iverilog")
    if iverilog is None:
        raise NetlistError(f"Netlist {name!r} uses ` directives, which need Icarus "
                           "Verilog's preprocessor: apt-get install iverilog")
    with tempfile.TemporaryDirectory(prefix="flipclock-pp-") as tmp:
        out = Path(tmp) / "pp.v"
        try:
            proc = subprocess.run([iverilog, "-E", "-o", str(out), str(path.resolve())],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=_PREPROCESS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise NetlistError(f"Preprocessing {name!r} took over "
                               f"{_PREPROCESS_TIMEOUT_S} s (an `include of a device or pipe?); "
                               "give a flat netlist") from None
        if proc.returncode != 0 or not out.is_file():
            detail = next((ln.strip() for ln in proc.stderr.splitlines() if ln.strip()),
                          f"exit status {proc.returncode}")
            detail = detail.replace(str(path.resolve()), name)
            raise NetlistError(f"Cannot preprocess {name!r}: {detail[:200]}; fix the "
                               "` directives")
        return _read_text(out, name)


def _parse(path: Path, name: str) -> Any:
    """pyverilog's AST of the file; any syntax error is one :class:`NetlistError` line."""
    from pyverilog.vparser.parser import ParseError

    text = _read_text(path, name)
    if "`" in text:
        text = _preprocess(path, name)
    parser = _parser()
    # the lexer object is reused: start each file at line 1 with no directives kept
    parser.lexer.reset_lineno()
    parser.lexer.directives = []
    try:
        return parser.parse(text, debug=0)
    except ParseError as exc:
        raise NetlistError(f"Cannot parse {name!r}: {_syntax_message(str(exc))}; give a "
                           "structural Verilog netlist") from None


def _syntax_message(raw: str) -> str:
    """pyverilog's ``' line:3: before: "x"'`` as ``syntax error at line 3 before 'x'``."""
    m = re.search(r"line:(\d+)(?: column:\d+)?: (.*)", raw, re.S)
    if m is None:
        return "syntax error at the end of the file"
    detail = " ".join(m.group(2).replace("before:", "before").split())
    return f"syntax error at line {m.group(1)} {detail[:80]}"


def _const_value(text: str) -> tuple[int, int]:
    """Width and value of a Verilog integer literal (``12``, ``4'b1010``, ``8'shff``)."""
    text = text.replace("_", "")
    if "'" in text and any(ch in "xXzZ?" for ch in text.split("'", 1)[1][1:]):
        raise NetlistError(f"Constant {text[:40]!r} has x/z bits; tie the net to 0 or 1")
    try:
        if "'" not in text:
            width, value = 32, int(text, 10)
        else:
            w, rest = text.split("'", 1)
            width = int(w, 10) if w else 32
            rest = rest.lower().removeprefix("s")
            base, digits = rest[:1], rest[1:]
            value = int(digits, {"b": 2, "o": 8, "d": 10, "h": 16}[base])
    except (ValueError, KeyError):
        raise NetlistError(f"Constant {text[:40]!r} is not a Verilog integer like 4'b1010; "
                           "fix the netlist") from None
    if not 0 < width <= _MAX_BITS:
        raise NetlistError(f"Constant {text[:40]!r} is {width} bits wide; gate netlists use "
                           f"1 to {_MAX_BITS} bits")
    return width, value


def _int(node: Any, what: str) -> int:
    """A constant number in the netlist (a bit index, a range bound, a repeat count)."""
    from pyverilog.vparser import ast

    if not isinstance(node, ast.IntConst):
        raise NetlistError(f"{what} must be a constant number, not a "
                           f"{type(node).__name__}; write the netlist with numbers only")
    return _const_value(str(node.value))[1]


def _range(node: Any, name: str) -> tuple[int, int]:
    """``(msb, lsb)`` of a declared width, refusing vectors no gate netlist has."""
    msb, lsb = _int(node.msb, f"The range of {name!r}"), _int(node.lsb, f"The range of {name!r}")
    if abs(msb - lsb) >= _MAX_BITS:
        raise NetlistError(f"{name!r} is declared [{msb}:{lsb}], wider than {_MAX_BITS} bits; "
                           "fix the declaration")
    return msb, lsb


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


def _const_bits(node: Any) -> list[str]:
    width, value = _const_value(str(node.value))
    return [CONST1 if (value >> i) & 1 else CONST0 for i in range(width)]


def _var_name(mod: _Module, node: Any) -> str:
    """The vector name of a bit- or part-select (``a`` of ``a[3]``)."""
    from pyverilog.vparser import ast

    if not isinstance(node.var, ast.Identifier):
        raise NetlistError(f"Select of a {type(node.var).__name__} in module {mod.name!r}: a "
                           "gate-level netlist selects bits of declared nets only")
    return str(node.var.name)


def _expr_bits(mod: _Module, node: Any, depth: int = 0) -> list[str]:
    """Bit nets (LSB first) of a connection expression."""
    from pyverilog.vparser import ast

    if depth > _MAX_DEPTH:
        raise NetlistError(f"Concatenations in module {mod.name!r} nest deeper than "
                           f"{_MAX_DEPTH} levels; flatten them")
    if isinstance(node, ast.Identifier):
        return mod.bits(node.name)
    if isinstance(node, ast.Pointer):
        return [f"{_var_name(mod, node)}[{_int(node.ptr, 'A bit index')}]"]
    if isinstance(node, ast.Partselect):
        name = _var_name(mod, node)
        msb, lsb = _int(node.msb, "A part-select bound"), _int(node.lsb, "A part-select bound")
        if abs(msb - lsb) >= _MAX_BITS:
            raise NetlistError(f"Part-select {name}[{msb}:{lsb}] is wider than {_MAX_BITS} "
                               "bits; fix the netlist")
        step = 1 if msb >= lsb else -1
        return [f"{name}[{i}]" for i in range(lsb, msb + step, step)]
    if isinstance(node, ast.IntConst):
        return _const_bits(node)
    if isinstance(node, ast.Concat):
        out: list[str] = []
        for part in reversed(node.list):
            out.extend(_expr_bits(mod, part, depth + 1))
            if len(out) > _MAX_BITS:
                break
        return _checked_width(mod, out)
    if isinstance(node, ast.Repeat):
        times = _int(node.times, "A repeat count")
        bits = _expr_bits(mod, node.value, depth + 1)
        if times * len(bits) > _MAX_BITS:
            return _checked_width(mod, bits * (_MAX_BITS // max(len(bits), 1) + 1))
        return bits * times
    raise NetlistError(
        f"Unsupported expression {type(node).__name__} in module {mod.name!r}: a gate-level "
        "netlist may only connect nets; synthesise behavioural code first"
    )


def _checked_width(mod: _Module, bits: list[str]) -> list[str]:
    if len(bits) > _MAX_BITS:
        raise NetlistError(f"An expression in module {mod.name!r} is wider than {_MAX_BITS} "
                           "bits; fix the netlist")
    return bits


def _collect(mod: _Module, items: Iterable) -> None:  # type: ignore[type-arg]
    from pyverilog.vparser import ast

    for item in items:
        if isinstance(item, ast.Decl):
            for d in item.list:
                if isinstance(d, ast.Input | ast.Output | ast.Inout | ast.Wire):
                    if d.width is not None:
                        mod.ranges[d.name] = _range(d.width, d.name)
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
                 *, top: str | None = None, name: str | None = None) -> Netlist:
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
    name:
        How error messages name the file (default: ``path``); a build reading its own copy
        of the user's netlist passes the user's path.

    Raises
    ------
    NetlistError
        For anything that is not a flat combinational netlist over ``library``.
    """
    path = Path(path)
    name = str(path) if name is None else name
    if not path.is_file():
        raise NetlistError(f"Netlist file {name!r} does not exist")
    tree = _parse(path, name)
    try:
        return _netlist(tree, library, top)
    except NetlistError as exc:
        raise NetlistError(f"{name}: {exc}") from None


def _netlist(tree: Any, library: CellLibrary, top: str | None) -> Netlist:
    """The :class:`Netlist` of module ``top`` (default: the last one) of a parsed file."""
    from pyverilog.vparser import ast

    modules = [d for d in tree.description.definitions if isinstance(d, ast.ModuleDef)]
    if not modules:
        raise NetlistError("No module in the file; give a structural Verilog netlist")
    chosen = modules[-1] if top is None else next((m for m in modules if m.name == top), None)
    if chosen is None:
        raise NetlistError(f"No module {top!r}; found {[m.name for m in modules][:10]}")
    mod = _Module(chosen.name)
    for port in chosen.portlist.ports:
        first = port.first if isinstance(port, ast.Ioport) else port
        mod.port_order.append(first.name)
        if isinstance(port, ast.Ioport):
            _collect(mod, [ast.Decl([port.first])])
            if port.first.width is not None:
                mod.ranges[port.first.name] = _range(port.first.width, port.first.name)
    _collect(mod, chosen.items)
    rep = _resolve(mod)

    def r(net: str) -> str:
        return rep.get(net, net)

    cells = [Cell(c.name, c.type, {p: r(n) for p, n in c.pins.items()}) for c in mod.cells]
    defined = {m.name for m in modules}
    for c in cells:
        if c.type not in library and c.type in defined:
            # a module of this file, not a library cell: the netlist is hierarchical
            raise NetlistError(
                f"Instance {c.name!r} is of module {c.type!r} defined in this file; the "
                f"netlist must be flat: yosys -p 'hierarchy -top {mod.name}; flatten; "
                "write_verilog -noattr flat.v'")
        if c.type not in library:
            raise NetlistError(f"Instance {c.name!r}: {library.unknown_cell_message(c.type)}")
    inputs = {n: mod.bits(n) for n in mod.port_order if mod.port_dirs.get(n) == "input"}
    outputs = {n: [r(b) for b in mod.bits(n)] for n in mod.port_order
               if mod.port_dirs.get(n) == "output"}
    # an output bit aliased to another output bit keeps its representative net name
    return Netlist(top=mod.name, inputs=inputs, outputs=outputs, cells=cells, library=library)
