"""NLDM timing data: lookup tables and combinational arcs, as a Liberty file gives them.

Its own module so that both the cell model (:mod:`sim.cells`, which stores arcs) and the
Liberty reader (:mod:`sim.liberty`, which builds them) can use it without importing each
other.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import SimError

__all__ = ["EDGES", "Edge", "LibertyError", "LookupTable", "Sense", "TimingArc", "cause_edges"]

Sense = Literal["positive_unate", "negative_unate", "non_unate"]
Edge = Literal["rise", "fall"]
EDGES: tuple[Edge, Edge] = ("rise", "fall")


def cause_edges(sense: str, edge: Edge) -> tuple[Edge, ...]:
    """Input edges that can cause an output ``edge`` through an arc of this sense."""
    if sense == "positive_unate":
        return (edge,)
    if sense == "negative_unate":
        return ("fall",) if edge == "rise" else ("rise",)
    return EDGES

class LibertyError(SimError, ValueError):
    """The Liberty file is missing, malformed, or describes a cell we cannot use."""


def _segment(axis: Sequence[float], x: float) -> tuple[int, float]:
    """Lower index of the axis segment used for ``x`` and the fraction along it
    (outside the axis: the end segment, a fraction < 0 or > 1: linear extrapolation)."""
    i = min(max(bisect_right(axis, x) - 1, 0), len(axis) - 2)
    lo, hi = axis[i], axis[i + 1]
    return i, (x - lo) / (hi - lo)


@dataclass(frozen=True)
class LookupTable:
    """An NLDM table over (output load capacitance, input slew), library units.

    ``values[i][j]`` is the value at ``loads[i]``, ``slews[j]``.  An axis with one point
    means the table does not depend on that variable.
    """

    loads: tuple[float, ...]
    slews: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.loads) or any(
            len(row) != len(self.slews) for row in self.values
        ):
            raise LibertyError(
                f"table values are {len(self.values)}x{len(self.values[0]) if self.values else 0}"
                f" but its indices are {len(self.loads)}x{len(self.slews)}"
            )
        for axis in (self.loads, self.slews):
            if any(b <= a for a, b in zip(axis, axis[1:], strict=False)):
                raise LibertyError(f"table index {list(axis)} is not strictly increasing")

    def __call__(self, load: float, slew: float) -> float:
        """Bilinear interpolation, linear extrapolation outside the table (as OpenSTA)."""
        if len(self.loads) == 1 and len(self.slews) == 1:
            return self.values[0][0]
        if len(self.loads) == 1:
            j, t = _segment(self.slews, slew)
            row = self.values[0]
            return (1 - t) * row[j] + t * row[j + 1]
        i, u = _segment(self.loads, load)
        if len(self.slews) == 1:
            return (1 - u) * self.values[i][0] + u * self.values[i + 1][0]
        j, t = _segment(self.slews, slew)
        v = self.values
        return ((1 - u) * (1 - t) * v[i][j] + u * (1 - t) * v[i + 1][j]
                + (1 - u) * t * v[i][j + 1] + u * t * v[i + 1][j + 1])


@dataclass(frozen=True)
class TimingArc:
    """A combinational timing arc ``related_pin -> output`` with its NLDM tables.

    A table is ``None`` where the library gives none for that output edge (for example a
    ``combinational_rise`` arc has no fall tables).
    """

    related_pin: str
    output: str
    sense: Sense
    cell_rise: LookupTable | None
    cell_fall: LookupTable | None
    rise_transition: LookupTable | None
    fall_transition: LookupTable | None
    timing_type: str = "combinational"

    def delay_table(self, edge: str) -> LookupTable | None:
        """``cell_rise`` for ``edge == "rise"``, ``cell_fall`` for ``"fall"``."""
        return self.cell_rise if edge == "rise" else self.cell_fall

    def slew_table(self, edge: str) -> LookupTable | None:
        """``rise_transition`` or ``fall_transition``."""
        return self.rise_transition if edge == "rise" else self.fall_transition
