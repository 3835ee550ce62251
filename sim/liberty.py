"""Read a Liberty (``.lib``) file into a :class:`~sim.cells.CellLibrary`.

Two layers:

* :func:`parse_liberty` turns Liberty text into a tree of :class:`Group` objects: groups
  ``name (args) { ... }``, simple attributes ``name : value ;`` and complex attributes
  ``name (v1, v2, ...) ;``, with ``/* */`` and ``//`` comments and ``\\`` line
  continuations.  It knows nothing of what the names mean.
* :func:`read_liberty` reads the combinational cells of a library from that tree: input
  pin capacitances, output functions and, per ``(related_pin, output)``, the NLDM timing
  arcs (``cell_rise``, ``cell_fall``, ``rise_transition``, ``fall_transition``).

Each NLDM table is stored as a :class:`LookupTable` over (output load capacitance, input
slew), whatever the order of the template's ``variable_1``/``variable_2``; lookups
interpolate bilinearly and extrapolate linearly beyond the table's last index points,
as OpenSTA does (``Table2::findValue``).  Values stay in the library's units; the units
(seconds per time unit, farads per capacitance unit) are recorded on the library.

Sequential cells (``ff``, ``latch``, ``statetable`` groups) and cells with tristate,
inout, bus or no outputs are not read; they are listed in
:attr:`CellLibrary.skipped <sim.cells.CellLibrary.skipped>` with the reason, so a
netlist that uses one gets a precise message.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .cells import CellLibrary, CellType, FunctionError
from .nldm import LibertyError, LookupTable, TimingArc

__all__ = [
    "Group",
    "LibertyError",
    "LookupTable",
    "TimingArc",
    "parse_liberty",
    "read_liberty",
]




# --- Syntax -------------------------------------------------------------------------------


@dataclass
class Group:
    """One Liberty group: ``kind (args) { simple; complex; groups }``."""

    kind: str
    args: list[str]
    line: int
    simple: dict[str, str] = field(default_factory=dict)
    complex: dict[str, list[str]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)

    def find(self, kind: str) -> list[Group]:
        """Sub-groups of the given kind, in file order."""
        return [g for g in self.groups if g.kind == kind]

    @property
    def name(self) -> str:
        return self.args[0] if self.args else ""


_TOKEN = re.compile(
    r"""
    (?P<cont>\\[ \t]*\r?\n)
  | (?P<nl>\n)
  | (?P<ws>[^\S\n]+)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.|\\\n)*")
  | (?P<open>/\*|")
  | (?P<punct>[(){};:,])
  | (?P<word>[^\s(){};:,"/]+|/)
    """,
    re.S | re.X,
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "string" | "punct" | "word"
    text: str
    line: int  # physical line (for messages)
    logical: int  # logical line: continuations do not start a new one


def _tokenize(text: str, source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    line = logical = 1
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        assert m is not None  # the word pattern takes any other character
        kind = m.lastgroup or ""
        if kind == "open":
            what = "comment" if m.group() == "/*" else "string"
            raise LibertyError(f"{source}:{line}: unterminated {what}; fix the Liberty syntax")
        chunk = m.group()
        if kind == "string":
            value = chunk[1:-1].replace("\\\r\n", "").replace("\\\n", "")
            toks.append(_Tok("string", value, line, logical))
        elif kind in ("punct", "word"):
            toks.append(_Tok(kind, chunk, line, logical))
        newlines = chunk.count("\n")
        line += newlines
        if kind in ("nl", "comment"):
            logical += newlines
        pos = m.end()
    return toks


# Real libraries nest five groups deep (library, cell, pin, timing, table); the limit keeps
# a hostile file from exhausting Python's recursion in this recursive-descent parser.
_MAX_DEPTH = 32


class _Parser:
    def __init__(self, toks: list[_Tok], source: str) -> None:
        self.toks = toks
        self.pos = 0
        self.source = source
        self.depth = 0

    def peek(self, k: int = 0) -> _Tok | None:
        i = self.pos + k
        return self.toks[i] if i < len(self.toks) else None

    def error(self, message: str, tok: _Tok | None = None) -> LibertyError:
        tok = tok or self.peek() or (self.toks[-1] if self.toks else None)
        line = tok.line if tok else 1
        return LibertyError(f"{self.source}:{line}: {message}; fix the Liberty syntax")

    def expect(self, text: str) -> _Tok:
        tok = self.peek()
        if tok is None or tok.kind != "punct" or tok.text != text:
            found = "end of file" if tok is None else repr(tok.text)
            raise self.error(f"expected {text!r}, found {found}", tok)
        self.pos += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.text == text

    def parse_file(self) -> Group:
        groups: list[Group] = []
        while self.peek() is not None:
            item = self.statement(Group("", [], 0))
            if item is not None:
                groups.append(item)
        if not groups:
            raise LibertyError(f"{self.source}: no library group found; is this a Liberty file?")
        if len(groups) > 1 or groups[0].kind != "library":
            raise self.error("expected a single top-level 'library (name) { ... }' group",
                             self.toks[0])
        return groups[0]

    def body(self, group: Group) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"groups nest deeper than {_MAX_DEPTH} levels")
        while not self.at("}"):
            if self.peek() is None:
                raise self.error(f"group {group.kind!r} opened on line {group.line} is not "
                                 "closed with '}'")
            sub = self.statement(group)
            if sub is not None:
                group.groups.append(sub)
        self.expect("}")
        self.depth -= 1

    def statement(self, parent: Group) -> Group | None:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "punct" and tok.text == ";":  # stray ';' is harmless
            self.pos += 1
            return None
        if tok.kind == "punct":
            raise self.error(f"expected an attribute or group name, found {tok.text!r}", tok)
        self.pos += 1
        name = tok.text
        if self.at(":"):
            colon = self.expect(":")
            parts: list[str] = []
            while True:
                nxt = self.peek()
                if nxt is None or nxt.logical != colon.logical:
                    break
                if nxt.kind == "punct" and nxt.text in ";}":
                    break
                parts.append(nxt.text)
                self.pos += 1
            if not parts:
                raise self.error(f"attribute {name!r} has no value", colon)
            if self.at(";"):
                self.pos += 1
            parent.simple[name] = " ".join(parts)
            return None
        if self.at("("):
            args = self.arguments()
            if self.at("{"):
                self.expect("{")
                group = Group(name, args, tok.line)
                self.body(group)
                return group
            if self.at(";"):
                self.pos += 1
            parent.complex[name] = args
            return None
        nxt = self.peek()
        found = "end of file" if nxt is None else repr(nxt.text)
        raise self.error(f"expected ':' or '(' after {name!r}, found {found}", nxt or tok)

    def arguments(self) -> list[str]:
        self.expect("(")
        args: list[str] = []
        current: list[str] = []
        while not self.at(")"):
            tok = self.peek()
            if tok is None:
                raise self.error("unclosed '(' in argument list")
            self.pos += 1
            if tok.kind == "punct" and tok.text == ",":
                args.append("".join(current))
                current = []
            elif tok.kind == "punct" and tok.text in "{};":
                raise self.error(f"unexpected {tok.text!r} in argument list", tok)
            else:
                current.append(tok.text)  # bus ranges such as A[3:0] arrive in pieces
        self.expect(")")
        if current or args:
            args.append("".join(current))
        return args


def parse_liberty(text: str, *, source: str = "<string>") -> Group:
    """Parse Liberty text into its top-level ``library`` :class:`Group`.

    Raises
    ------
    LibertyError
        On a syntax error; the message gives ``source:line``.
    """
    return _Parser(_tokenize(text, source), source).parse_file()


# --- Library ------------------------------------------------------------------------------

_SEQUENTIAL = ("ff", "latch", "ff_bank", "latch_bank", "statetable")
_COMBINATIONAL_TYPES = ("combinational", "combinational_rise", "combinational_fall")
_SENSES = ("positive_unate", "negative_unate", "non_unate")
_LOAD = "total_output_net_capacitance"
_SLEW = "input_net_transition"
# truth tables enumerate 2**inputs assignments; standard cells have at most six inputs
_MAX_INPUTS = 12
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "fs": 1e-15}
_CAP_UNITS = {"f": 1.0, "mf": 1e-3, "uf": 1e-6, "nf": 1e-9, "pf": 1e-12, "ff": 1e-15}


@dataclass(frozen=True)
class _Template:
    variables: tuple[str, ...]
    indices: tuple[tuple[float, ...] | None, ...]


def _clip(text: object, limit: int = 60) -> str:
    """``repr`` of a value cut to ``limit`` characters: messages stay one short line."""
    r = repr(text)
    return r if len(r) <= limit else r[:limit] + "..."


def _number(text: str, where: str, what: str) -> float:
    """A finite number from an attribute value; NaN or inf would poison every delay."""
    try:
        value = float(text)
    except ValueError:
        raise LibertyError(f"{where}: {what} {_clip(text)} is not a number; fix the "
                           "Liberty file") from None
    if not math.isfinite(value):
        raise LibertyError(f"{where}: {what} {_clip(text)} is not finite; fix the Liberty file")
    return value


def _floats(text: str, where: str) -> tuple[float, ...]:
    values = tuple(_number(x, where, "value") for x in text.replace(",", " ").split())
    if not values:
        raise LibertyError(f"{where}: an index or values list is empty; fix the Liberty file")
    return values


def _first(args: list[str], where: str, what: str) -> str:
    """The one argument of a complex attribute such as ``index_1 ("...")``."""
    if len(args) != 1:
        raise LibertyError(f"{where}: {what} takes one quoted list of numbers, not "
                           f"{len(args)} arguments; fix the Liberty file")
    return args[0]


def _time_unit(lib: Group, source: str) -> float:
    text = lib.simple.get("time_unit", "1ns").strip().lower()
    m = re.fullmatch(r"([0-9.eE+-]*)\s*([a-z]+)", text)
    if m is None or m.group(2) not in _TIME_UNITS:
        raise LibertyError(f"{source}: time_unit {_clip(text)} is not like '1ns' or '10ps'")
    scale = _number(m.group(1) or "1", source, "time_unit")
    if scale <= 0:
        raise LibertyError(f"{source}: time_unit {_clip(text)} must be positive, like '1ns'")
    return scale * _TIME_UNITS[m.group(2)]


def _cap_unit(lib: Group, source: str) -> float:
    args = lib.complex.get("capacitive_load_unit", ["1", "pf"])
    if len(args) != 2 or args[1].strip().lower() not in _CAP_UNITS:
        raise LibertyError(f"{source}: capacitive_load_unit {_clip(args)} is not like (1, pf)")
    scale = _number(args[0], source, "capacitive_load_unit")
    if scale <= 0:
        raise LibertyError(f"{source}: capacitive_load_unit {_clip(args)} must be positive, "
                           "like (1, pf)")
    return scale * _CAP_UNITS[args[1].strip().lower()]


def _templates(lib: Group) -> dict[str, _Template]:
    out: dict[str, _Template] = {}
    for g in lib.find("lu_table_template"):
        variables = tuple(g.simple[f"variable_{k}"] for k in (1, 2, 3)
                          if f"variable_{k}" in g.simple)
        where = f"template {g.name}"
        indices = tuple(
            _floats(_first(g.complex[f"index_{k}"], where, f"index_{k}"), where)
            if f"index_{k}" in g.complex else None
            for k in range(1, len(variables) + 1)
        )
        out[g.name] = _Template(variables, indices)
    return out


def _table(g: Group, templates: dict[str, _Template], where: str) -> LookupTable:
    if "values" not in g.complex:
        raise LibertyError(f"{where}: table {g.kind} has no values")
    rows = [_floats(r, where) for r in g.complex["values"]]
    if not rows:
        raise LibertyError(f"{where}: table {g.kind} has an empty values list")
    tname = g.name
    if tname == "scalar" or not tname:
        return LookupTable((0.0,), (0.0,), (rows[0][:1],))
    if tname not in templates:
        raise LibertyError(f"{where}: table {g.kind} uses undefined template {tname!r}")
    tmpl = templates[tname]
    axes: list[tuple[float, ...]] = []
    for k, var in enumerate(tmpl.variables, start=1):
        key = f"index_{k}"
        axis = (_floats(_first(g.complex[key], where, key), where) if key in g.complex
                else tmpl.indices[k - 1])
        if axis is None:
            raise LibertyError(f"{where}: table {g.kind} has no {key}")
        if var not in (_LOAD, _SLEW):
            raise LibertyError(f"{where}: table {g.kind} depends on {var!r}; only "
                               f"{_LOAD} and {_SLEW} are supported")
        axes.append(axis)
    if not axes:
        raise LibertyError(f"{where}: template {tname!r} of table {g.kind} has no variables")
    if len(axes) == 1:
        values = list(rows[0]) if len(rows) == 1 else [r[0] for r in rows]
        if tmpl.variables[0] == _LOAD:
            return LookupTable(axes[0], (0.0,), tuple((v,) for v in values))
        return LookupTable((0.0,), axes[0], (tuple(values),))
    if len(axes) != 2:
        raise LibertyError(f"{where}: table {g.kind} has {len(axes)} variables; NLDM tables "
                           "have one or two")
    grid = tuple(tuple(r) for r in rows)  # grid[i][j]: index_1[i], index_2[j]
    if len(grid) != len(axes[0]) or any(len(r) != len(axes[1]) for r in grid):
        raise LibertyError(f"{where}: table {g.kind} has {len(grid)} rows of "
                           f"{sorted({len(r) for r in grid})} values for a "
                           f"{len(axes[0])}x{len(axes[1])} index; fix the Liberty file")
    if tmpl.variables[0] == _LOAD:
        return LookupTable(axes[0], axes[1], grid)
    transposed = tuple(tuple(grid[i][j] for i in range(len(axes[0])))
                       for j in range(len(axes[1])))
    return LookupTable(axes[1], axes[0], transposed)


def _pins(cell: Group) -> Iterator[tuple[str, Group]]:
    for g in cell.find("pin"):
        for name in g.args:
            yield name, g


def _skip_reason(cell: Group) -> str | None:
    if any(cell.find(kind) for kind in _SEQUENTIAL):
        return "sequential"
    if cell.find("bus") or cell.find("bundle"):
        return "a bus or bundle cell"
    dirs = {name: g.simple.get("direction", "") for name, g in _pins(cell)}
    if "inout" in dirs.values():
        return "a cell with inout pins"
    outputs = [g for _, g in _pins(cell) if g.simple.get("direction") == "output"]
    if not outputs:
        return "a cell without outputs"
    if any("three_state" in g.simple for g in outputs):
        return "tristate"
    if sum(d == "input" for d in dirs.values()) > _MAX_INPUTS:
        return f"a cell with more than {_MAX_INPUTS} inputs"
    return None


def _arcs(out: str, pin: Group, templates: dict[str, _Template],
          where: str) -> list[TimingArc]:
    arcs: list[TimingArc] = []
    for t in pin.find("timing"):
        ttype = t.simple.get("timing_type", "combinational")
        if ttype not in _COMBINATIONAL_TYPES:
            continue
        related = t.simple.get("related_pin", "").split()
        if not related:
            raise LibertyError(f"{where}: a timing group of pin {out} has no related_pin")
        sense = t.simple.get("timing_sense", "non_unate")
        if sense not in _SENSES:
            raise LibertyError(f"{where}: timing_sense {sense!r} is not one of {_SENSES}")
        try:
            tables = {k: _table(t.find(k)[0], templates, where) if t.find(k) else None
                      for k in ("cell_rise", "cell_fall", "rise_transition", "fall_transition")}
        except LibertyError as exc:
            if str(exc).startswith(where):
                raise
            raise LibertyError(f"{where}: {exc}; fix the Liberty file") from None
        for rp in related:
            arcs.append(TimingArc(related_pin=rp, output=out, sense=sense,  # type: ignore[arg-type]
                                  timing_type=ttype, **tables))
    return arcs


def _cell(cell: Group, templates: dict[str, _Template], source: str) -> CellType:
    name = cell.name
    where = f"{source}: cell {name}"
    inputs: list[str] = []
    functions: dict[str, str] = {}
    caps: dict[str, float] = {}
    edge_caps: dict[str, tuple[float, float]] = {}
    arcs: dict[tuple[str, str], list[TimingArc]] = {}
    for pin, g in _pins(cell):
        direction = g.simple.get("direction", "")
        if direction not in ("input", "output"):
            continue
        if pin in edge_caps:
            raise LibertyError(f"{where}: pin {pin} is declared twice; fix the Liberty file")
        cap = _number(g.simple.get("capacitance", "0"), where, f"pin {pin} capacitance")
        rise = _number(g.simple.get("rise_capacitance", str(cap)), where,
                       f"pin {pin} rise_capacitance")
        fall = _number(g.simple.get("fall_capacitance", str(cap)), where,
                       f"pin {pin} fall_capacitance")
        if "capacitance" not in g.simple:
            cap = max(rise, fall)
        edge_caps[pin] = (rise, fall)
        if direction == "input":
            inputs.append(pin)
            caps[pin] = cap
            continue
        if "function" not in g.simple:
            raise LibertyError(f"Liberty cell {name} output pin {pin} has no function; "
                               "give it a function or remove the cell from the library")
        functions[pin] = g.simple["function"]
        for arc in _arcs(pin, g, templates, where):
            arcs.setdefault((arc.related_pin, pin), []).append(arc)
    for related, out in arcs:
        if related not in inputs:
            raise LibertyError(f"{where}: a timing arc of pin {out} has related_pin "
                               f"{_clip(related)}, which is not an input of the cell; fix "
                               "the Liberty file")
    try:
        return CellType(
            name=name, inputs=tuple(inputs), functions=functions, capacitance=caps,
            edge_capacitance=edge_caps, arcs={k: tuple(v) for k, v in arcs.items()},
        )
    except FunctionError as exc:
        raise LibertyError(f"{where}: {exc}") from None


def _read_text(path: str) -> str:
    """The file's text; a binary file is refused (Liberty is text, any 8-bit encoding)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LibertyError(f"Cannot read Liberty file {path!r} ({exc.strerror}); check the "
                           "path and its permissions") from None
    if b"\x00" in data:
        raise LibertyError(f"{path} is not a text file (it holds NUL bytes); give the .lib "
                           "Liberty file, not a compiled or compressed one")
    # comments in vendor libraries are sometimes Latin-1; names and numbers are ASCII
    return data.decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> CellLibrary:
    source = path
    lib = parse_liberty(_read_text(path), source=source)
    templates = _templates(lib)
    cells: dict[str, CellType] = {}
    skipped: dict[str, str] = {}
    for group in lib.find("cell"):
        reason = _skip_reason(group)
        if reason is not None:
            skipped[group.name] = reason
            continue
        cells[group.name] = _cell(group, templates, source)
    return CellLibrary(
        name=lib.name, cells=cells, source=source,
        time_unit=_time_unit(lib, source), capacitance_unit=_cap_unit(lib, source),
        skipped=skipped,
    )


def read_liberty(path: str | os.PathLike[str]) -> CellLibrary:
    """Read the combinational cells of a Liberty file.

    Parameters
    ----------
    path:
        The ``.lib`` file.  Reads are cached per path and modification time.

    Returns
    -------
    CellLibrary
        Cells with inputs, functions, pin capacitances and timing arcs; ``source`` is the
        resolved path, ``time_unit``/``capacitance_unit`` in seconds/farads, and
        ``skipped`` names the sequential, tristate and other cells left out.

    Raises
    ------
    LibertyError
        For a missing file, a syntax error (with its line), or an unusable cell.
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise LibertyError(f"Liberty file {str(path)!r} does not exist; check the path")
    st = p.stat()
    return _read_cached(str(p), st.st_mtime_ns, st.st_size)
