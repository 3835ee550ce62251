# amaranth: UnusedElaboratable=no
"""RTL Verilog generation and design lookup by name.

The first line stops Amaranth from blaming :func:`design_from_name` for designs that its callers
build and never elaborate (or that fail validation): the factory is not where the mistake is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amaranth.back import verilog
from amaranth.lib import wiring

from ._booth import BoothMultiplier, RegisteredMultiplier
from ._sram import FaultySRAM
from .errors import HWError

__all__ = ["DESIGNS", "design_from_name", "to_verilog"]

DESIGNS: dict[str, Callable[..., wiring.Component]] = {
    "booth": BoothMultiplier,
    "booth_reg": RegisteredMultiplier,
    "sram": FaultySRAM,
}
"""Design names accepted by :func:`design_from_name`, mapped to their component classes."""


def to_verilog(component: wiring.Component, *, name: str) -> str:
    """Return the RTL Verilog of ``component`` as a module called ``name``.

    Source locations are left out (``emit_src=False``), so the text depends only on the design
    and two calls give identical output. Top-level ports keep the component's port names, plus
    ``clk`` and ``rst`` for designs with a ``sync`` domain.
    """
    return verilog.convert(component, name=name, emit_src=False)


def design_from_name(kind: str, **params: Any) -> wiring.Component:
    """Build the design called ``kind`` (see :data:`DESIGNS`) with keyword ``params``.

    Raises
    ------
    ValueError
        If ``kind`` is not a known design name; the constructors raise their own
        ``TypeError``/``ValueError`` for bad ``params``.
    """
    if not isinstance(kind, str) or kind not in DESIGNS:
        choices = ", ".join(map(repr, DESIGNS))
        raise HWError(f"Unknown design {kind!r}; choose one of {choices}")
    return DESIGNS[kind](**params)
