"""Operand ports of a two-operand combinational design, and its golden (settled) outputs.

The correct value of a capture is what the design itself settles to for the current inputs
-- the zero-delay evaluation of the same netlist -- never an assumed arithmetic function.
:func:`settled_outputs` computes it with the timing engine: a transition whose previous
and current inputs are equal launches no event, so the captured value at any period is the
settled output (the engine initialises every net to its zero-delay value). One engine call
covers all ``2**(2W)`` pairs of an 8-bit design in milliseconds.

:class:`Operands` names the two operand input buses, the output bus and their signedness.
Signedness is used only to *interpret* values: error magnitudes, the order of outputs in
tables, and what ``nnmap`` may assume about the operands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import SimError

__all__ = ["Operands", "OperandsError", "code_values", "settled_outputs", "to_value"]

BOOTH = ("a", "b", "p")
"""Ports of the multipliers flipclock builds (signed Booth)."""


class OperandsError(SimError, ValueError):
    """Declared operand ports do not fit the netlist (the message names the fix)."""


@dataclass(frozen=True)
class Operands:
    """The operand buses of a two-operand combinational design.

    Parameters
    ----------
    a, b:
        Names of the two operand input buses (the table's ``(a, b)`` pairs).
    p:
        Name of the output bus.
    signed:
        Whether operands and output are two's complement (used to interpret values only).
    """

    a: str = "a"
    b: str = "b"
    p: str = "p"
    signed: bool = True

    @property
    def inputs(self) -> tuple[str, str]:
        """The two operand ports, in table order."""
        return (self.a, self.b)

    def to_dict(self) -> dict[str, Any]:
        """What result files record about the operands."""
        return {"inputs": [self.a, self.b], "output": self.p, "signed": self.signed}

    def check(self, netlist: Any) -> tuple[int, int]:
        """Operand and output width of ``netlist`` under these ports; one line if they do
        not exist, have unequal widths, or the netlist has other inputs or outputs."""
        ins = {k: len(v) for k, v in netlist.inputs.items()}
        outs = {k: len(v) for k, v in netlist.outputs.items()}
        missing = [x for x in (self.a, self.b) if x not in ins]
        if missing or self.p not in outs:
            name = missing[0] if missing else self.p
            raise OperandsError(
                f"{netlist.top!r} has no {'input' if missing else 'output'} port {name!r} "
                f"(inputs {ins}, outputs {outs}); name its ports with --inputs A,B --output P")
        if self.a == self.b:
            raise OperandsError(f"--inputs needs two different ports, not {self.a!r} twice")
        extra = sorted(set(ins) - {self.a, self.b})
        if extra:
            raise OperandsError(
                f"{netlist.top!r} has {len(ins)} inputs {ins}; tables take two operands "
                f"({self.a}, {self.b}): designs with more operands are not supported yet")
        if len(outs) != 1:
            raise OperandsError(f"{netlist.top!r} has outputs {outs}; tables capture one "
                                f"output bus ({self.p!r}): give a design with one output")
        if ins[self.a] != ins[self.b]:
            raise OperandsError(f"Operands {self.a!r} ({ins[self.a]} bits) and {self.b!r} "
                                f"({ins[self.b]} bits) must have equal widths")
        if outs[self.p] > 62:
            raise OperandsError(f"Output {self.p!r} has {outs[self.p]} bits; at most 62 are "
                                "supported")
        return ins[self.a], outs[self.p]


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
