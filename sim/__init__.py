"""Netlists, delay models, static timing and simulators.

Data flows one way: ``sim`` reads what ``hw`` generated (Verilog text) and writes netlists,
delay annotations and simulation results; it never imports ``nnmap``.
"""

from __future__ import annotations

from .cells import DEFAULT_LIBRARY, CellLibrary, CellType, FunctionError, parse_function
from .delay import (
    AnnotationError,
    DelayAnnotation,
    DelayModel,
    EffortDelay,
    LibertyDelay,
    UnitDelay,
    annotate,
)
from .design import Design, DesignError, load_design
from .liberty import LibertyError, read_liberty
from .netlist import CONST0, CONST1, Cell, Netlist, NetlistError
from .reader import read_verilog
from .sta import TimingReport, critical_path, opensta_critical_path
from .synth import SynthError, synthesize
from .wavesim import find_latest_transitions, settle_times, simulate_transitions
from .writer import write_sim_verilog

__all__ = [
    "CONST0",
    "CONST1",
    "DEFAULT_LIBRARY",
    "AnnotationError",
    "Cell",
    "CellLibrary",
    "CellType",
    "DelayAnnotation",
    "DelayModel",
    "Design",
    "DesignError",
    "EffortDelay",
    "FunctionError",
    "LibertyDelay",
    "LibertyError",
    "Netlist",
    "NetlistError",
    "SynthError",
    "TimingReport",
    "UnitDelay",
    "annotate",
    "critical_path",
    "find_latest_transitions",
    "load_design",
    "opensta_critical_path",
    "parse_function",
    "read_liberty",
    "read_verilog",
    "settle_times",
    "simulate_transitions",
    "synthesize",
    "write_sim_verilog",
]
