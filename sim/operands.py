"""Operand ports of a combinational design, and its golden (settled) outputs.

The correct value of a capture is what the design itself settles to for the current inputs
-- the zero-delay evaluation of the same netlist -- never an assumed arithmetic function.
:func:`settled_outputs` computes it with the timing engine: a transition whose previous
and current inputs are equal launches no event, so the captured value at any period is the
settled output (the engine initialises every net to its zero-delay value). One engine call
covers all ``2**(2W)`` pairs of an 8-bit design in milliseconds.

:class:`Operands` names the operand input buses (two, or more for a design such as
``a * b + c``), the output bus and their signedness.
Signedness is used only to *interpret* values: error magnitudes, the order of outputs in
tables, and what ``nnmap`` may assume about the operands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import SimError

__all__ = ["Operands", "OperandsError", "code_values", "golden_table", "settled_codes",
           "settled_outputs", "to_value"]

BOOTH = ("a", "b", "p")
"""Ports of the multipliers flipclock builds (signed Booth)."""


class OperandsError(SimError, ValueError):
    """Declared operand ports do not fit the netlist (the message names the fix)."""


@dataclass(frozen=True)
class Operands:
    """The operand buses of a combinational design: two or more input ports, one output.

    Parameters
    ----------
    a, b:
        Names of the first two operand input buses (a two-operand table's ``(a, b)`` pairs).
    p:
        Name of the output bus.
    signed:
        Whether operands and output are two's complement (used to interpret values only).
    more:
        Further operand input buses (e.g. the accumulator ``c`` of ``a * b + c``). Such a
        design has no table over operand pairs; it is sampled (:mod:`sim.errtable`).
    """

    a: str = "a"
    b: str = "b"
    p: str = "p"
    signed: bool = True
    more: tuple[str, ...] = ()

    @classmethod
    def of(cls, inputs: Sequence[str], output: str = "p", signed: bool = True) -> Operands:
        """Operands from a list of two or more input port names."""
        if len(inputs) < 2:
            raise OperandsError(f"--inputs names at least two operand ports (e.g. a,b), not "
                                f"{','.join(inputs)!r}")
        return cls(inputs[0], inputs[1], output, signed, tuple(inputs[2:]))

    @property
    def inputs(self) -> tuple[str, ...]:
        """The operand ports, in table order."""
        return (self.a, self.b, *self.more)

    @property
    def pairs(self) -> bool:
        """Whether the design has exactly two operands (tables over operand pairs)."""
        return not self.more

    def to_dict(self) -> dict[str, Any]:
        """What result files record about the operands."""
        return {"inputs": list(self.inputs), "output": self.p, "signed": self.signed}

    def ports(self, netlist: Any) -> tuple[dict[str, int], int]:
        """Width of every operand port (in order) and of the output of ``netlist``; one
        line if a port is missing or named twice, or the netlist has other inputs or
        outputs."""
        ins = {k: len(v) for k, v in netlist.inputs.items()}
        outs = {k: len(v) for k, v in netlist.outputs.items()}
        missing = [x for x in self.inputs if x not in ins]
        if missing or self.p not in outs:
            name = missing[0] if missing else self.p
            raise OperandsError(
                f"{netlist.top!r} has no {'input' if missing else 'output'} port {name!r} "
                f"(inputs {ins}, outputs {outs}); name its ports with --inputs A,B[,C...] "
                "--output P")
        twice = sorted({x for x in self.inputs if self.inputs.count(x) > 1})
        if twice:
            raise OperandsError(f"--inputs names port {twice[0]!r} twice; name each operand "
                                "port once")
        extra = sorted(set(ins) - set(self.inputs))
        if extra:
            raise OperandsError(
                f"{netlist.top!r} has inputs {ins} but only {', '.join(self.inputs)} are "
                f"declared operands; name every input port: --inputs "
                f"{','.join([*self.inputs, *extra])}")
        if len(outs) != 1:
            raise OperandsError(f"{netlist.top!r} has outputs {outs}; tables capture one "
                                f"output bus ({self.p!r}): give a design with one output")
        if outs[self.p] > 62:
            raise OperandsError(f"Output {self.p!r} has {outs[self.p]} bits; at most 62 are "
                                "supported")
        return {x: ins[x] for x in self.inputs}, outs[self.p]

    def check(self, netlist: Any) -> tuple[int, int]:
        """Operand and output width of a two-operand ``netlist`` (tables over operand
        pairs); one line if the ports do not fit (:meth:`ports`), there are more than two
        operands, or the two have unequal widths."""
        widths, out_bits = self.ports(netlist)
        if self.more:
            raise OperandsError(
                f"{netlist.top!r} has {len(widths)} operands ({', '.join(self.inputs)}); "
                "tables over all operand pairs take two: use --mode sample")
        if widths[self.a] != widths[self.b]:
            raise OperandsError(f"Operands {self.a!r} ({widths[self.a]} bits) and {self.b!r} "
                                f"({widths[self.b]} bits) have unequal widths; tables over "
                                "operand pairs need equal widths: use --mode sample")
        return widths[self.a], out_bits


def code_values(width: int, signed: bool) -> npt.NDArray[np.int64]:
    """The value of every unsigned code ``0 .. 2**width - 1`` (two's complement if
    ``signed``)."""
    codes = np.arange(1 << width, dtype=np.int64)
    if not signed:
        return codes
    return np.where(codes >= 1 << (width - 1), codes - (1 << width), codes)


def to_value(codes: npt.ArrayLike, width: int, signed: bool) -> npt.NDArray[np.int64]:
    """Output codes (unsigned, ``width`` bits) as values."""
    c = np.asarray(codes, np.int64) & ((1 << width) - 1)
    if not signed:
        return c
    return np.where(c >= 1 << (width - 1), c - (1 << width), c)


def settled_outputs(engine: Any, ops: Operands, a: npt.ArrayLike, b: npt.ArrayLike, *,
                    forced: Mapping[str, int] | None = None) -> npt.NDArray[np.int64]:
    """Unsigned output codes the design settles to for operand codes ``a``, ``b``.

    ``engine`` is a :class:`~sim.engine.TimingEngine` of the design; ``forced`` nets (a
    stuck-at fault) are held as in the timing run, so the reference is the faulty design's
    own settled output when asked for.
    """
    cur = {ops.a: np.asarray(a, np.int64), ops.b: np.asarray(b, np.int64)}
    # no input changes: the value captured one tick later is the zero-delay value
    return np.asarray(engine.capture(cur, cur, [1], forced=forced)[ops.p][:, 0], np.int64)


def golden_table(engine: Any, ops: Operands, width: int, *,
                 forced: Mapping[str, int] | None = None) -> npt.NDArray[np.int64]:
    """Settled output code of every flat pair ``code(a) << W | code(b)`` (``int64
    [2**(2W)]``)."""
    q = np.arange(1 << (2 * width), dtype=np.int64)
    return settled_outputs(engine, ops, q >> width, q & ((1 << width) - 1), forced=forced)


def settled_codes(engine: Any, ops: Operands, values: Mapping[str, npt.ArrayLike], *,
                  forced: Mapping[str, int] | None = None) -> npt.NDArray[np.int64]:
    """Unsigned output codes the design settles to for operand codes ``values`` (one
    array per port of ``ops.inputs``), with ``forced`` nets held as in the timing run."""
    cur = {x: np.asarray(values[x], np.int64) for x in ops.inputs}
    return np.asarray(engine.capture(cur, cur, [1], forced=forced)[ops.p][:, 0], np.int64)
