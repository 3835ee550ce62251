"""Cell types: pins, Boolean function, and the default gate library.

A :class:`CellType` knows its input and output pins and, for every output, the Boolean
function of the inputs, parsed from a Liberty-style function string (``"(A B)"``,
``"!(A+B)"``, ``"(A^B)"``, ``"(S B)+(!S A)"``).  From the function we derive a truth table,
a Verilog expression for the simulator-ready netlist writer, and the unateness of each
input pin (what STA calls the timing sense).

The default library (:data:`DEFAULT_LIBRARY`, named ``fcgates``) is a small set of
generic gates that Yosys' internal gate cells (``$_AND_``, ``$_MUX_``, ...) map onto
one-to-one, so the full/half-adder structure of the Amaranth design survives into the
netlist.  Each gate also carries its logical effort ``g`` and parasitic delay ``p`` (in
units of tau, for a minimum-size gate, after Sutherland, Sproull & Harris, *Logical
Effort*, 1999) for the ``effort`` delay model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import SimError
from .nldm import Sense, TimingArc

__all__ = [
    "DEFAULT_LIBRARY",
    "CellLibrary",
    "CellType",
    "FunctionError",
    "parse_function",
    "Sense",
]



class FunctionError(SimError, ValueError):
    """A Liberty function string could not be parsed."""


# --- Boolean function parsing -------------------------------------------------------------
# Grammar (Liberty): or := xor ('+'|'|' xor)* ; xor := and ('^' and)* ;
# and := unary (('*'|'&'|' ') unary)* ; unary := ('!' unary) | primary ("'")* ;
# primary := PIN | '0' | '1' | '(' or ')'

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_\[\]]*|[01]|[()!'+|^*&])")

# Real cell functions have a few dozen tokens and nest a few levels; the limits keep a
# hostile Liberty file from exhausting the recursion of the parser and of the evaluators
# that walk the tree (a left-deep chain of N operators is N levels deep).
_MAX_TOKENS = 400
_MAX_DEPTH = 64

Expr = tuple  # ("pin", name) | ("const", v) | ("not", e) | ("and"|"or"|"xor", e1, e2)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos].isspace():
            # whitespace between two operands means AND; keep one marker
            while pos < len(text) and text[pos].isspace():
                pos += 1
            tokens.append(" ")
            continue
        m = _TOKEN.match(text, pos)
        if not m:
            raise FunctionError(f"Cannot parse cell function {_clip(text)} at "
                                f"{_clip(text[pos:])}; use pins, 0, 1, ( ) ! ' + | ^ * &")
        tokens.append(m.group(1))
        pos = m.end()
        if len(tokens) > _MAX_TOKENS:
            raise FunctionError(f"Cell function {_clip(text)} has more than {_MAX_TOKENS} "
                                "tokens; write the cell's function in a simpler form")
    # drop blanks that are not between two operands
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if tok == " ":
            prev = out[-1] if out else None
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            ends_operand = prev is not None and (prev not in "(!+|^*&" or prev == "'")
            starts_operand = nxt is not None and nxt not in ")+|^*&' "
            if ends_operand and starts_operand:
                out.append("*")
            continue
        out.append(tok)
    return out


def _clip(text: str, limit: int = 60) -> str:
    """``repr`` of ``text`` cut to ``limit`` characters: messages stay one short line."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = _clip(text)
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise FunctionError(f"Unexpected end of cell function {self.text}")
        self.pos += 1
        return tok

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise FunctionError(f"Cell function {self.text} nests deeper than {_MAX_DEPTH} "
                                "levels; write it in a flatter form")

    def parse(self) -> Expr:
        e = self.parse_or()
        if self.peek() is not None:
            raise FunctionError(f"Unexpected {self.peek()!r} in cell function {self.text}")
        return e

    def parse_or(self) -> Expr:
        e = self.parse_xor()
        while self.peek() in ("+", "|"):
            self.take()
            e = ("or", e, self.parse_xor())
        return e

    def parse_xor(self) -> Expr:
        e = self.parse_and()
        while self.peek() == "^":
            self.take()
            e = ("xor", e, self.parse_and())
        return e

    def parse_and(self) -> Expr:
        e = self.parse_unary()
        while self.peek() in ("*", "&"):
            self.take()
            e = ("and", e, self.parse_unary())
        return e

    def parse_unary(self) -> Expr:
        if self.peek() == "!":
            self.take()
            self.enter()
            e = ("not", self.parse_unary())
            self.depth -= 1
            return e
        e = self.parse_primary()
        while self.peek() == "'":
            self.take()
            e = ("not", e)
        return e

    def parse_primary(self) -> Expr:
        tok = self.take()
        if tok == "(":
            self.enter()
            e = self.parse_or()
            self.depth -= 1
            if self.take() != ")":
                raise FunctionError(f"Missing ')' in cell function {self.text}")
            return e
        if tok in ("0", "1"):
            return ("const", int(tok))
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\[\]]*", tok):
            return ("pin", tok)
        raise FunctionError(f"Unexpected {tok!r} in cell function {self.text}")


def parse_function(text: str) -> Expr:
    """Parse a Liberty ``function`` string into a small expression tree."""
    return _Parser(text).parse()


def _pins_of(e: Expr) -> set[str]:
    if e[0] == "pin":
        return {e[1]}
    if e[0] == "const":
        return set()
    return set().union(*(_pins_of(x) for x in e[1:]))


def _eval(e: Expr, env: Mapping[str, int]) -> int:
    kind = e[0]
    if kind == "pin":
        return env[e[1]]
    if kind == "const":
        return int(e[1])
    if kind == "not":
        return 1 - _eval(e[1], env)
    a, b = _eval(e[1], env), _eval(e[2], env)
    if kind == "and":
        return a & b
    if kind == "or":
        return a | b
    return a ^ b


def _verilog(e: Expr, names: Mapping[str, str]) -> str:
    kind = e[0]
    if kind == "pin":
        return names[e[1]]
    if kind == "const":
        return f"1'b{e[1]}"
    if kind == "not":
        return f"~{_verilog(e[1], names)}"
    op = {"and": "&", "or": "|", "xor": "^"}[kind]
    return f"({_verilog(e[1], names)} {op} {_verilog(e[2], names)})"


# --- Cell types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CellType:
    """A combinational library cell.

    Parameters
    ----------
    name:
        Cell name as instantiated in netlists (``AND2``, ``NAND2X1``...).
    inputs:
        Input pin names, in a fixed order (truth-table bit order: ``inputs[0]`` is bit 0).
    functions:
        Output pin name -> Liberty function string.
    effort, parasitic:
        Logical effort per input pin and parasitic delay (tau), for the ``effort`` model.
    capacitance:
        Input pin capacitance (library units), for the ``liberty`` model.
    edge_capacitance:
        Pin -> ``(rise, fall)`` capacitance (library units) for every pin that has one,
        outputs included (Liberty ``rise_capacitance``/``fall_capacitance``, falling back
        to ``capacitance``); empty for the built-in gates.
    arcs:
        ``(input pin, output pin)`` -> the Liberty timing arcs between them (usually one;
        several when the library gives conditional arcs); empty for the built-in gates.
    """

    name: str
    inputs: tuple[str, ...]
    functions: Mapping[str, str]
    effort: Mapping[str, float] = field(default_factory=dict)
    parasitic: float = 0.0
    capacitance: Mapping[str, float] = field(default_factory=dict)
    edge_capacitance: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    arcs: Mapping[tuple[str, str], tuple[TimingArc, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for out, text in self.functions.items():
            unknown = _pins_of(parse_function(text)) - set(self.inputs)
            if unknown:
                raise FunctionError(
                    f"Cell {self.name!r} output {out!r} uses unknown pins {sorted(unknown)}"
                )

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.functions)

    def truth_table(self, output: str) -> int:
        """Truth table of ``output`` as an integer: bit ``k`` is the value for input
        assignment ``k`` (bit ``i`` of ``k`` is the value of ``inputs[i]``)."""
        expr = parse_function(self.functions[output])
        table = 0
        for k in range(1 << len(self.inputs)):
            env = {p: (k >> i) & 1 for i, p in enumerate(self.inputs)}
            table |= _eval(expr, env) << k
        return table

    def evaluate(self, output: str, values: Mapping[str, int]) -> int:
        """Value of ``output`` for 0/1 input ``values``."""
        return _eval(parse_function(self.functions[output]), values)

    def verilog_expr(self, output: str, nets: Mapping[str, str]) -> str:
        """Verilog expression of ``output`` with input pins replaced by ``nets``."""
        return _verilog(parse_function(self.functions[output]), nets)

    def sense(self, output: str, pin: str) -> Sense | None:
        """Unateness of ``output`` in ``pin`` (``None`` if the output ignores the pin)."""
        tt = self.truth_table(output)
        i = self.inputs.index(pin)
        rises = falls = False
        for k in range(1 << len(self.inputs)):
            if (k >> i) & 1:
                continue
            lo, hi = (tt >> k) & 1, (tt >> (k | (1 << i))) & 1
            rises |= hi > lo
            falls |= hi < lo
        if rises and falls:
            return "non_unate"
        if rises:
            return "positive_unate"
        if falls:
            return "negative_unate"
        return None


@dataclass(frozen=True)
class CellLibrary:
    """A named set of combinational cells.

    Parameters
    ----------
    name:
        Library name (``fcgates``, or the Liberty ``library`` group's name).
    cells:
        Cell name -> combinational cell type.
    source:
        Path of the Liberty file, or ``"builtin"``.
    time_unit, capacitance_unit:
        Seconds and farads per library unit (Liberty ``time_unit`` and
        ``capacitive_load_unit``); ``None`` for the built-in gates, which have no units.
    skipped:
        Cells of the source library left out of ``cells`` -> why (``"sequential"``,
        ``"tristate"``...), so that a netlist using one gets a precise error
        (:meth:`unknown_cell_message`).
    """

    name: str
    cells: Mapping[str, CellType]
    source: str = "builtin"
    time_unit: float | None = None
    capacitance_unit: float | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.cells

    def __getitem__(self, name: str) -> CellType:
        return self.cells[name]

    def unknown_cell_message(self, name: str) -> str:
        """One-line message for a netlist cell type this library does not provide."""
        reason = self.skipped.get(name)
        if reason == "sequential":
            return (f"cell {name} is sequential; timing netlists must be combinational: "
                    "pass the combinational core without its registers")
        if reason is not None:
            return (f"cell {name} is {reason}, which timing netlists do not support; "
                    "synthesise without it")
        return (f"cell {name} is not in library {self.name!r}; pass the Liberty file of the "
                "cells this netlist was mapped to")


def _gate(name: str, func: str, g: dict[str, float], p: float) -> CellType:
    pins = tuple(g)
    return CellType(name=name, inputs=pins, functions={"Y": func}, effort=g, parasitic=p)


# Logical effort g per input and parasitic delay p (tau) for minimum-size static CMOS gates
# (Logical Effort, Table 4.1 and 4.2, with gamma = 2).  AND/OR/ANDN/ORN/BUF are modelled as
# the inverting gate plus an output inverter: g of the first stage, p of both stages.
_GATES: tuple[CellType, ...] = (
    _gate("BUF", "A", {"A": 1.0}, 2.0),
    _gate("INV", "!A", {"A": 1.0}, 1.0),
    _gate("NAND2", "!(A B)", {"A": 4 / 3, "B": 4 / 3}, 2.0),
    _gate("NOR2", "!(A+B)", {"A": 5 / 3, "B": 5 / 3}, 2.0),
    _gate("AND2", "(A B)", {"A": 4 / 3, "B": 4 / 3}, 3.0),
    _gate("OR2", "(A+B)", {"A": 5 / 3, "B": 5 / 3}, 3.0),
    _gate("XOR2", "(A^B)", {"A": 4.0, "B": 4.0}, 4.0),
    _gate("XNOR2", "!(A^B)", {"A": 4.0, "B": 4.0}, 4.0),
    _gate("ANDN2", "(A !B)", {"A": 4 / 3, "B": 4 / 3}, 3.0),
    _gate("ORN2", "(A+!B)", {"A": 5 / 3, "B": 5 / 3}, 3.0),
    _gate("MUX2", "(S B)+(!S A)", {"A": 2.0, "B": 2.0, "S": 2.0}, 4.0),
    _gate("NMUX2", "!((S B)+(!S A))", {"A": 2.0, "B": 2.0, "S": 2.0}, 4.0),
    _gate("AOI21", "!((A B)+C)", {"A": 2.0, "B": 2.0, "C": 5 / 3}, 3.0),
    _gate("OAI21", "!((A+B) C)", {"A": 5 / 3, "B": 5 / 3, "C": 2.0}, 3.0),
    _gate("AOI22", "!((A B)+(C D))", {"A": 2.0, "B": 2.0, "C": 2.0, "D": 2.0}, 4.0),
    _gate("OAI22", "!((A+B) (C+D))", {"A": 2.0, "B": 2.0, "C": 2.0, "D": 2.0}, 4.0),
)

DEFAULT_LIBRARY = CellLibrary(name="fcgates", cells={c.name: c for c in _GATES})
"""The built-in generic gate library (``fcgates``)."""

# Yosys internal gate cell -> (fcgates cell, pin map yosys->fcgates). Used by the synthesis
# flow to write the techmap file.
YOSYS_GATE_MAP: dict[str, tuple[str, dict[str, str]]] = {
    "$_BUF_": ("BUF", {"A": "A"}),
    "$_NOT_": ("INV", {"A": "A"}),
    "$_AND_": ("AND2", {"A": "A", "B": "B"}),
    "$_NAND_": ("NAND2", {"A": "A", "B": "B"}),
    "$_OR_": ("OR2", {"A": "A", "B": "B"}),
    "$_NOR_": ("NOR2", {"A": "A", "B": "B"}),
    "$_XOR_": ("XOR2", {"A": "A", "B": "B"}),
    "$_XNOR_": ("XNOR2", {"A": "A", "B": "B"}),
    "$_ANDNOT_": ("ANDN2", {"A": "A", "B": "B"}),
    "$_ORNOT_": ("ORN2", {"A": "A", "B": "B"}),
    "$_MUX_": ("MUX2", {"A": "A", "B": "B", "S": "S"}),
    "$_NMUX_": ("NMUX2", {"A": "A", "B": "B", "S": "S"}),
    "$_AOI3_": ("AOI21", {"A": "A", "B": "B", "C": "C"}),
    "$_OAI3_": ("OAI21", {"A": "A", "B": "B", "C": "C"}),
    "$_AOI4_": ("AOI22", {"A": "A", "B": "B", "C": "C", "D": "D"}),
    "$_OAI4_": ("OAI22", {"A": "A", "B": "B", "C": "C", "D": "D"}),
}
