"""Amaranth hardware designs: Booth multipliers and a fault-injecting SRAM weight buffer."""

from __future__ import annotations

from ._booth import CPAS, TREES, BoothMultiplier, RegisteredMultiplier
from ._sram import FaultySRAM
from ._verilog import DESIGNS, design_from_name, to_verilog

__all__ = [
    "CPAS",
    "DESIGNS",
    "TREES",
    "BoothMultiplier",
    "FaultySRAM",
    "RegisteredMultiplier",
    "design_from_name",
    "to_verilog",
]
