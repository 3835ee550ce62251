"""SDF (IEEE 1497 Standard Delay Format) in and out: delays from sign-off timers.

:func:`parse_sdf` reads the subset of SDF that describes a combinational gate-level
netlist, as OpenSTA's ``write_sdf`` and the commercial timers write it:

* the ``DELAYFILE`` header: ``DESIGN``, ``DIVIDER`` (``/`` by default) and ``TIMESCALE``
  (``1ns`` by default, as IEEE 1497 says); the other header entries are skipped;
* ``CELL`` blocks with ``CELLTYPE`` and ``INSTANCE`` (escaped identifiers, ``\\name`` or
  ``a\\/b``, and hierarchical paths split at the divider);
* ``DELAY (ABSOLUTE ...)`` with ``IOPATH`` (rise and fall; one, two, three, six or twelve
  delay values, each a single number or a ``min:typ:max`` triple, or ``()``), ``COND``
  and ``CONDELSE`` arcs (the worst over the conditions is taken: an input change may meet
  any of them), ``INTERCONNECT`` and ``PORT`` (wire delays in front of a load pin);
* ``DELAY (INCREMENT ...)`` only when every value in it is zero (then it changes nothing);
* ``TIMINGCHECK`` blocks are skipped (setup and hold checks of flip-flops say nothing
  about a combinational netlist).

Anything else (``DEVICE``, ``NETDELAY``, ``PATHPULSE``, ``INSTANCE *``, pulse limits in
a delay value, ``TIMINGENV`` ...) is refused by name.  Every byte string gives a
:class:`SdfFile` or one :class:`SdfError` line: the tokenizer and the tree builder are
loops, not recursion, so a deeply nested file cannot overflow the stack.

The maintained parser on PyPI, ``sdf-timing`` (chipsalliance, PLY-based), was looked at
and not used: its identifier rule has no ``$`` (every Yosys-generated name has one), its
errors are printed rather than raised, and PLY writes parser tables at run time.

:func:`write_sdf` writes a :class:`~sim.delay.DelayAnnotation`'s per-arc tick delays
back as SDF (one ``IOPATH`` per arc, rise and fall, exact decimals of ns), which
:func:`parse_sdf` reads back to the same tick delays and Icarus ``$sdf_annotate`` accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from .errors import SimError
from .netlist import Cell, Netlist
from .nldm import EDGES, cause_edges

__all__ = [
    "CORNERS",
    "DELAYS_SDF",
    "SdfArc",
    "SdfError",
    "SdfFile",
    "SdfWire",
    "parse_sdf",
    "read_sdf",
    "sdf_arcs",
    "sdf_timescale",
    "write_sdf",
]

DELAYS_SDF = "delays.sdf"
"""The file ``--write-sdf`` adds to a design folder."""

Corner = Literal["min", "typ", "max"]
CORNERS: tuple[str, ...] = ("min", "typ", "max")
"""Corners of a ``min:typ:max`` triple, in order (``--sdf-corner`` takes these)."""

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "fs": 1e-15}
_MAX_TEXT = 256 * 1024 * 1024  # an SDF larger than this is not a netlist's delay file


class SdfError(SimError, ValueError):
    """An SDF file cannot be read or does not fit the netlist (the message names the fix)."""


@dataclass(frozen=True)
class SdfArc:
    """One ``IOPATH`` of a cell instance, in seconds at the chosen corner.

    ``rise``/``fall`` are ``None`` where the file gives ``()`` for that edge; ``cond`` is
    the condition text of a ``COND`` arc (``"ELSE"`` for ``CONDELSE``), else ``None``.
    """

    instance: tuple[str, ...]
    cell_type: str | None
    pin: str
    out: str
    rise: float | None
    fall: float | None
    cond: str | None
    line: int


@dataclass(frozen=True)
class SdfWire:
    """A wire delay in front of load pin ``pin`` of ``instance`` (``INTERCONNECT`` from
    ``source``, or ``PORT`` with ``source`` ``None``), in seconds at the chosen corner.

    An ``instance`` of ``()`` means ``pin`` is a port of the top module.
    """

    source: tuple[str, ...] | None
    instance: tuple[str, ...]
    pin: str
    rise: float
    fall: float
    line: int


@dataclass(frozen=True)
class SdfFile:
    """What :func:`parse_sdf` found, delays already in seconds at one corner."""

    design: str | None
    divider: str
    timescale: float
    corner: str
    arcs: list[SdfArc] = field(default_factory=list)
    wires: list[SdfWire] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- Tokens and the tree -----------------------------------------------------------------


class _Atom(str):
    """An unquoted token, kept raw (escapes included) so paths can be split later."""

    line: int


class _Quoted(str):
    """A quoted string's contents."""


class _List(list):  # type: ignore[type-arg]
    """A parenthesised list; ``line`` is where it opens."""

    line: int = 0

    @property
    def head(self) -> str:
        return self[0].upper() if self and isinstance(self[0], _Atom) else ""


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+) | (?P<nl>\n) | (?P<lc>//[^\n]*) | (?P<bc>/\*.*?\*/)
  | (?P<open>\() | (?P<close>\)) | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<atom>(?:\\[^\n]|[^\s()"\\])+)
""", re.X | re.S)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SdfError(f"SDF line {line}: cannot read {text[pos:pos + 12]!r} (an unclosed "
                           "string or comment, or a stray backslash); fix or regenerate the "
                           "SDF file")
        kind = m.lastgroup or ""
        if kind not in ("space", "lc"):
            yield kind, m.group(), line
        line += m.group().count("\n")
        pos = m.end()


def _tree(text: str) -> _List:
    root = _List()
    stack = [root]
    for kind, tok, line in _tokens(text):
        if kind == "open":
            node = _List()
            node.line = line
            stack[-1].append(node)
            stack.append(node)
        elif kind == "close":
            if len(stack) == 1:
                raise SdfError(f"SDF line {line}: ')' closes nothing; fix or regenerate the "
                               "SDF file")
            stack.pop()
        elif kind == "str":
            stack[-1].append(_Quoted(tok[1:-1]))
        elif kind == "atom":
            atom = _Atom(tok)
            atom.line = line
            stack[-1].append(atom)
    if len(stack) > 1:
        raise SdfError(f"SDF ends inside the list opened on line {stack[-1].line}; the file "
                       "is truncated")
    return root


# --- Values ------------------------------------------------------------------------------


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw)


def _split_path(raw: str, divider: str) -> tuple[str, ...]:
    parts, cur, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            cur.append(raw[i + 1])
            i += 2
            continue
        if ch == divider:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return tuple(parts)


def _number(text: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SdfError(f"SDF line {line}: {text!r} is not a number; fix or regenerate the SDF "
                       "file") from None
    if not math.isfinite(value):
        raise SdfError(f"SDF line {line}: delay {text!r} is not finite; give finite delays")
    return value


def _value(node: object, corner: int, line: int) -> float | None:
    """One delay value ``()``, ``(v)`` or ``(min:typ:max)`` at ``corner``."""
    if not isinstance(node, _List):
        raise SdfError(f"SDF line {line}: expected a delay value in parentheses, not "
                       f"{str(node)!r}")
    if not node:
        return None
    if len(node) != 1 or not isinstance(node[0], _Atom):
        raise SdfError(f"SDF line {node.line}: pulse limits or several values in one delay "
                       "value are not supported; give one value or min:typ:max per edge")
    parts = node[0].split(":")
    if len(parts) == 1:
        return _number(parts[0], node.line)
    if len(parts) != 3:
        raise SdfError(f"SDF line {node.line}: {str(node[0])!r} is not a value or a "
                       "min:typ:max triple")
    text = parts[corner]
    if not text:
        have = [CORNERS[k] for k in range(3) if parts[k]]
        raise SdfError(f"SDF line {node.line}: ({node[0]}) has no {CORNERS[corner]} value; use "
                       f"--sdf-corner {' or '.join(have) or 'with a file that has values'}")
    return _number(text, node.line)


def _rise_fall(values: list[object], corner: int, line: int) -> tuple[float | None, float | None]:
    """Rise and fall of a delay list: 1 value for both; 2, 3, 6 or 12 (01 and 10 first)."""
    vals = [_value(v, corner, line) for v in values]
    if len(vals) == 1:
        return vals[0], vals[0]
    if len(vals) in (2, 3, 6, 12):
        return vals[0], vals[1]
    raise SdfError(f"SDF line {line}: {len(vals)} delay values; IEEE 1497 allows 1, 2, 3, 6 "
                   "or 12")


def sdf_timescale(node: _List) -> float:
    """Seconds per unit of a ``(TIMESCALE 100ps)`` or ``(TIMESCALE 1 ns)`` entry."""
    text = "".join(str(x) for x in node[1:] if isinstance(x, _Atom))
    m = re.fullmatch(r"([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|ns|ps|fs)", text)
    if m is None:
        raise SdfError(f"SDF line {node.line}: TIMESCALE {text!r} is not a number and a unit "
                       f"({', '.join(_UNITS)}); write e.g. (TIMESCALE 1ns)")
    value = float(m.group(1)) * _UNITS[m.group(2)]
    if not value > 0 or not math.isfinite(value):
        raise SdfError(f"SDF line {node.line}: TIMESCALE {text!r} must be > 0")
    return value


# --- The file ----------------------------------------------------------------------------


class _Reader:
    """Walks the tree of one DELAYFILE, collecting arcs and wires in seconds."""

    def __init__(self, corner: str) -> None:
        self.corner = CORNERS.index(corner)
        self.divider = "/"
        self.scale = 1e-9
        self.design: str | None = None
        self.arcs: list[SdfArc] = []
        self.wires: list[SdfWire] = []
        self.notes: list[str] = []

    def seconds(self, v: float | None) -> float | None:
        return None if v is None else v * self.scale

    def header(self, node: _List) -> None:
        head = node.head
        if head == "DIVIDER":
            if len(node) != 2 or str(node[1]) not in ("/", "."):
                raise SdfError(f"SDF line {node.line}: DIVIDER must be / or .")
            self.divider = str(node[1])
        elif head == "TIMESCALE":
            self.scale = sdf_timescale(node)
        elif head == "DESIGN" and len(node) > 1:
            self.design = str(node[1])

    def cell(self, node: _List) -> None:
        ctype: str | None = None
        inst: tuple[str, ...] | None = None
        for item in node[1:]:
            if not isinstance(item, _List):
                raise SdfError(f"SDF line {node.line}: unexpected {str(item)!r} in CELL")
            head = item.head
            if head == "CELLTYPE":
                ctype = str(item[1]) if len(item) > 1 else None
            elif head == "INSTANCE":
                if len(item) > 2:
                    raise SdfError(f"SDF line {item.line}: INSTANCE names one instance")
                raw = str(item[1]) if len(item) == 2 else ""
                if raw == "*":
                    raise SdfError(f"SDF line {item.line}: INSTANCE * (wildcard) is not "
                                   "supported; give one CELL per instance")
                inst = _split_path(raw, self.divider) if raw else ()
            elif head == "DELAY":
                if inst is None:
                    raise SdfError(f"SDF line {item.line}: DELAY before INSTANCE in CELL")
                self.delay(item, inst, ctype)
            elif head == "TIMINGCHECK":
                if "timing checks skipped" not in self.notes:
                    self.notes.append("timing checks skipped")
            else:
                raise SdfError(f"SDF line {item.line}: {head or 'this entry'} in CELL is not "
                               "supported; give DELAY with IOPATH, INTERCONNECT or PORT")

    def delay(self, node: _List, inst: tuple[str, ...], ctype: str | None) -> None:
        for item in node[1:]:
            head = item.head if isinstance(item, _List) else ""
            if head == "ABSOLUTE":
                for entry in item[1:]:
                    self.entry(entry, inst, ctype, None)
            elif head == "INCREMENT":
                mark = (len(self.arcs), len(self.wires))
                for entry in item[1:]:
                    self.entry(entry, inst, ctype, None)
                added = [(a.rise, a.fall) for a in self.arcs[mark[0]:]] + \
                    [(w.rise, w.fall) for w in self.wires[mark[1]:]]
                if any(v for pair in added for v in pair):
                    raise SdfError(f"SDF line {item.line}: INCREMENT delays are not supported; "
                                   "give ABSOLUTE delays")
                del self.arcs[mark[0]:], self.wires[mark[1]:]
            else:
                raise SdfError(f"SDF line {getattr(item, 'line', node.line)}: "
                               f"{head or str(item)!r} in DELAY is not supported; give "
                               "ABSOLUTE delays")

    def entry(self, node: object, inst: tuple[str, ...], ctype: str | None,
              cond: str | None) -> None:
        if not isinstance(node, _List):
            raise SdfError(f"SDF: unexpected {str(node)!r} in ABSOLUTE; give IOPATH, COND, "
                           "INTERCONNECT or PORT entries")
        head = node.head
        if head in ("COND", "CONDELSE"):
            if not node[1:] or not isinstance(node[-1], _List) or node[-1].head != "IOPATH":
                raise SdfError(f"SDF line {node.line}: {head} must end in an IOPATH")
            text = " ".join(str(x) for x in node[1:-1]) if head == "COND" else "ELSE"
            self.entry(node[-1], inst, ctype, text or "?")
        elif head == "IOPATH":
            self.iopath(node, inst, ctype, cond)
        elif head in ("INTERCONNECT", "PORT"):
            self.wire(node, inst)
        else:
            raise SdfError(f"SDF line {node.line}: {head or 'this entry'} is not supported; "
                           "give IOPATH, COND, INTERCONNECT or PORT")

    def _port(self, node: object, line: int) -> str:
        if isinstance(node, _List) and node.head in ("POSEDGE", "NEGEDGE") and len(node) == 2:
            node = node[1]  # an edge-qualified arc: the worst over edges is kept anyway
        if not isinstance(node, _Atom):
            raise SdfError(f"SDF line {line}: expected a port name, not {node!r}")
        return str(node)

    def iopath(self, node: _List, inst: tuple[str, ...], ctype: str | None,
               cond: str | None) -> None:
        values = [v for v in node[3:] if not (isinstance(v, _List) and v.head == "RETAIN")]
        if len(node) < 4 or not values:
            raise SdfError(f"SDF line {node.line}: IOPATH needs an input, an output and delays")
        pin = _unescape(self._port(node[1], node.line))
        out = _unescape(self._port(node[2], node.line))
        rise, fall = _rise_fall(values, self.corner, node.line)
        self.arcs.append(SdfArc(inst, ctype, pin, out, self.seconds(rise), self.seconds(fall),
                                cond, node.line))

    def wire(self, node: _List, inst: tuple[str, ...]) -> None:
        interconnect = node.head == "INTERCONNECT"
        n_ports = 2 if interconnect else 1
        if len(node) < n_ports + 2:
            raise SdfError(f"SDF line {node.line}: {node.head} needs its ports and delays")
        ports = [_split_path(self._port(p, node.line), self.divider)
                 for p in node[1:1 + n_ports]]
        rise, fall = _rise_fall(list(node[1 + n_ports:]), self.corner, node.line)
        load = inst + ports[-1]
        self.wires.append(SdfWire(inst + ports[0] if interconnect else None, load[:-1],
                                  load[-1], self.seconds(rise) or 0.0,
                                  self.seconds(fall) or 0.0, node.line))


def parse_sdf(data: str | bytes, *, corner: str = "max") -> SdfFile:
    """Read SDF text (or bytes) at one corner of its ``min:typ:max`` triples.

    Raises
    ------
    SdfError
        For anything that is not a DELAYFILE of the supported subset (see the module).
    """
    if corner not in CORNERS:
        raise SdfError(f"SDF corner must be one of {', '.join(CORNERS)}, not {corner!r}")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdfError(f"SDF is not text (byte {exc.start} is not UTF-8); give the SDF "
                           "file") from None
    if len(data) > _MAX_TEXT:
        raise SdfError("SDF file is larger than 256 MiB; give the delay file of one netlist")
    root = _tree(data)
    if len(root) != 1 or not isinstance(root[0], _List) or root[0].head != "DELAYFILE":
        raise SdfError("not an SDF file: it must hold one (DELAYFILE ...) list")
    reader = _Reader(corner)
    for node in root[0][1:]:
        if not isinstance(node, _List):
            raise SdfError(f"SDF: unexpected {str(node)!r} in DELAYFILE")
        if node.head == "CELL":
            reader.cell(node)
        else:
            reader.header(node)
    return SdfFile(reader.design, reader.divider, reader.scale, corner, reader.arcs,
                   reader.wires, reader.notes)


def read_sdf(path: str | Path, *, corner: str = "max") -> SdfFile:
    """:func:`parse_sdf` of a file; a missing or unreadable file is one :class:`SdfError`."""
    from .atomic import read_user_bytes

    p = Path(path)
    data = read_user_bytes(p, "SDF file", SdfError)
    try:
        return parse_sdf(data, corner=corner)
    except SdfError as exc:
        raise SdfError(f"{str(p)!r}: {exc}") from None


# --- Writing -----------------------------------------------------------------------------


def _escape(name: str) -> str:
    # SDF escapes each character outside [A-Za-z0-9_] with a backslash; bus bits keep [].
    return re.sub(r"([^A-Za-z0-9_\[\]])", r"\\\1", name)


def _ns_text(ticks: int, tick_s: float | None) -> str:
    """``ticks`` in ns as an exact decimal (unit and effort models: one tick = 1 ns)."""
    if tick_s is None:
        return str(ticks)
    value = Decimal(repr(tick_s)) * ticks / Decimal("1e-9")
    return format(value.normalize(), "f")


def write_sdf(netlist: Netlist, annotation: Any) -> str:
    """SDF text of an annotation's per-arc tick delays (one ``IOPATH`` per arc).

    Written in ``(TIMESCALE 1ns)``, the IEEE 1497 default, with exact decimals (a 10 ps
    tick: ``0.06`` for 6 ticks), as OpenSTA writes: Icarus ignores the SDF ``TIMESCALE``
    and reads the numbers in the cell models' own time unit (iverilog issue 947), which is
    1 ns for OSU018 and most libraries.  The unit and effort models have no physical time:
    one tick is written as 1 ns.  Cells without arcs get no ``CELL`` block (Icarus rejects
    an empty one).
    """
    annotation.check_matches(netlist)
    tick_s = annotation.seconds_per_tick

    def fmt(ticks: int) -> str:
        return _ns_text(ticks, tick_s)

    lines = ["(DELAYFILE", ' (SDFVERSION "3.0")', f' (DESIGN "{netlist.top}")',
             ' (PROGRAM "flipclock")', " (DIVIDER /)", " (TIMESCALE 1ns)"]
    for cell in netlist.cells:
        arcs = [(pin, out, a) for out, pins in annotation.arcs.get(cell.name, {}).items()
                for pin, a in pins.items()]
        if not arcs:
            continue
        inst = _escape(cell.name.removeprefix("\\"))  # the reader keeps Verilog's backslash
        lines += [" (CELL", f'  (CELLTYPE "{cell.type}")', f"  (INSTANCE {inst})",
                  "  (DELAY", "   (ABSOLUTE"]
        lines += [f"    (IOPATH {_escape(pin)} {_escape(out)} ({fmt(a[0])}) ({fmt(a[1])}))"
                  for pin, out, a in arcs]
        lines += ["   )", "  )", " )"]
    lines.append(")")
    return "\n".join(lines) + "\n"


# --- Fitting an SDF to a netlist ---------------------------------------------------------

Exact = dict[str, dict[str, dict[str, tuple[float, float]]]]


class _Names:
    """Instance paths and port bits of the SDF resolved against the netlist."""

    def __init__(self, netlist: Netlist, sdf: SdfFile) -> None:
        self.netlist = netlist
        self.by_name = {c.name: c for c in netlist.cells}
        self.tops = {netlist.top} | ({sdf.design} if sdf.design else set())

    def cell(self, path: tuple[str, ...], line: int) -> Cell:
        tries = [path] + ([path[1:]] if len(path) > 1 and path[0] in self.tops else [])
        for parts in tries:
            for sep in ("/", "."):
                name = sep.join(parts)
                # the Verilog reader keeps the backslash of an escaped identifier
                cell = self.by_name.get(name) or self.by_name.get("\\" + name)
                if cell is not None:
                    return cell
        raise SdfError(f"SDF line {line}: the netlist has no instance {'/'.join(path)!r}; "
                       "give the SDF written for this netlist")

    def port_net(self, name: str, line: int) -> str:
        m = re.fullmatch(r"(.+?)\[(\d+)\]", name)
        port, bit = (m.group(1), int(m.group(2))) if m else (name, 0)
        for ports in (self.netlist.inputs, self.netlist.outputs):
            if port in ports and bit < len(ports[port]):
                return ports[port][bit]
        raise SdfError(f"SDF line {line}: the netlist has no port bit {name!r}; give the SDF "
                       "written for this netlist")

    def pin_net(self, path: tuple[str, ...], line: int) -> str:
        if len(path) == 1:
            return self.port_net(path[0], line)
        cell = self.cell(path[:-1], line)
        if path[-1] not in cell.pins:
            raise SdfError(f"SDF line {line}: instance {cell.name} has no pin "
                           f"{path[-1]!r}; give the SDF written for this netlist")
        return str(cell.pins[path[-1]])


def _check_delay(value: float | None, what: str, line: int) -> None:
    if value is not None and value < 0:
        raise SdfError(f"SDF line {line}: {what} has a negative delay ({value:.6g} s); "
                       "negative delays are not supported, clamp them to 0 in the timer")


def sdf_arcs(netlist: Netlist, sdf: SdfFile) -> tuple[Exact, list[str]]:
    """Exact per-arc ``(rise, fall)`` delays in seconds for every cell of ``netlist``.

    An arc's delay is the worst of its ``IOPATH`` entries (the ``COND`` variants), plus
    the wire delay in front of its input pin (``INTERCONNECT``/``PORT``) for the input
    edge that causes each output edge.  Returns the arcs and notes for the annotation.
    """

    names = _Names(netlist, sdf)
    lib = netlist.library
    iopaths: dict[tuple[str, str, str], list[float | None]] = {}
    conds: set[tuple[str, str, str]] = set()
    for arc in sdf.arcs:
        cell = names.cell(arc.instance, arc.line)
        name, ctype, pins = cell.name, cell.type, cell.pins
        if arc.cell_type is not None and arc.cell_type != ctype:
            raise SdfError(f"SDF line {arc.line}: instance {name} is a {ctype} in the netlist, "
                           f"not a {arc.cell_type}; give the SDF written for this netlist")
        ct = lib[ctype]
        if arc.pin not in ct.inputs or arc.out not in ct.outputs:
            raise SdfError(f"SDF line {arc.line}: cell {ctype} has no arc {arc.pin} -> "
                           f"{arc.out}; give the SDF written for this netlist")
        _check_delay(arc.rise, f"IOPATH {arc.pin} -> {arc.out} of {name}", arc.line)
        _check_delay(arc.fall, f"IOPATH {arc.pin} -> {arc.out} of {name}", arc.line)
        if arc.out not in pins:
            continue  # an unconnected output has no net to time
        key = (name, arc.out, arc.pin)
        old = iopaths.get(key)
        if arc.cond is not None:
            conds.add(key)
        new: list[float | None] = [arc.rise, arc.fall]
        if old is not None:
            new = [max((v for v in (a, b) if v is not None), default=None)
                   for a, b in zip(old, new, strict=True)]
        iopaths[key] = new
    wire: dict[tuple[str, str], tuple[float, float]] = {}
    for w in sdf.wires:
        what = f"wire delay into {'/'.join(w.instance + (w.pin,))}"
        _check_delay(w.rise, what, w.line)
        _check_delay(w.fall, what, w.line)
        load_net = names.pin_net(w.instance + (w.pin,), w.line)
        if w.source is not None and names.pin_net(w.source, w.line) != load_net:
            raise SdfError(f"SDF line {w.line}: INTERCONNECT {'/'.join(w.source)} -> "
                           f"{'/'.join(w.instance + (w.pin,))} joins pins on different nets "
                           "of the netlist; give the SDF written for this netlist")
        if not w.instance:
            if w.rise or w.fall:
                raise SdfError(f"SDF line {w.line}: a wire delay into output port {w.pin} is "
                               "not supported (flipclock times cell arcs); fold it into the "
                               "driving cell's IOPATH")
            continue
        name = names.cell(w.instance, w.line).name
        if not (w.rise or w.fall):
            continue  # OpenSTA writes a zero INTERCONNECT for every pin without parasitics
        old_w = wire.get((name, w.pin), (0.0, 0.0))
        wire[(name, w.pin)] = (max(old_w[0], w.rise), max(old_w[1], w.fall))
    exact: Exact = {}
    senses: dict[tuple[str, str, str], str | None] = {}  # sense() evaluates a truth table
    for cell in netlist.cells:
        ct = lib[cell.type]
        exact[cell.name] = {}
        for out in (o for o in ct.outputs if o in cell.pins):
            exact[cell.name][out] = {}
            for pin in ct.inputs:
                if (cell.type, out, pin) not in senses:
                    senses[(cell.type, out, pin)] = ct.sense(out, pin)
                sense = senses[(cell.type, out, pin)]
                if sense is None:
                    continue
                got = iopaths.get((cell.name, out, pin))
                rise, fall = (None, None) if got is None else (got[0], got[1])
                if rise is None or fall is None:
                    edge = "delays" if got is None else \
                        "rise delay" if rise is None else "fall delay"
                    raise SdfError(f"SDF has no IOPATH {pin} -> {out} {edge} for instance "
                                   f"{cell.name} ({cell.type}); give an SDF with every arc of "
                                   "this netlist")
                wd = wire.get((cell.name, pin), (0.0, 0.0))
                rf = [(rise, fall)[k] + max(wd[EDGES.index(e)] for e in cause_edges(sense, edge))
                      for k, edge in enumerate(EDGES)]
                exact[cell.name][out][pin] = (rf[0], rf[1])
    notes = list(sdf.notes)
    if sdf.design and sdf.design != netlist.top:
        # a note, not a refusal: tools write DESIGN inconsistently (a wrapper's or the
        # synthesis run's name), and every instance and pin has been matched above
        notes.append(f"DESIGN {sdf.design!r} differs from the netlist's top module "
                     f"{netlist.top!r} (instances and pins match)")
    if conds:
        c, o, p = sorted(conds)[0]
        notes.append(f"COND arcs: the worst over the conditions taken for {len(conds)} arcs "
                     f"(e.g. {c} {p} -> {o})")
    if wire:
        notes.append(f"INTERCONNECT/PORT: wire delays added to the arcs of {len(wire)} load "
                     "pins (the causing input edge's delay)")
    return exact, notes
