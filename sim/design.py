"""The design folder: what ``flipclock build`` writes, and the one loader that reads it.

A design folder holds one built design. Its format is owned here; :mod:`sim.build` writes
it and every command that works on a design reads it through :func:`load_design`, so a
missing, unreadable or damaged file is one line (:class:`DesignError`) wherever it is met.

================  ===========================================================
``build.json``    the build settings (a :class:`BoothBuild`, :class:`SramBuild` or
                  :class:`NetlistBuild`) and the tool versions
``rtl.v``         RTL Verilog of the combinational core (top ``booth``)
``rtl_reg.v``     RTL of the registered wrapper (top ``booth_reg``)
``gate.v``        gate-level netlist (Verilog), ``gate.json`` the same as Yosys JSON
``delays.json``   per-cell rise/fall delays in ticks (:class:`sim.delay.DelayAnnotation`)
``sim_zero.v``    simulator-ready netlist without delays
``sim_inertial.v`` / ``sim_transport.v``  simulator-ready netlists with delays
``timing.json``   cells by type, nets, logic depth, critical path, hashes, tool versions
``.flipclock``    the marker: flipclock made this folder and may replace it
================  ===========================================================

An SRAM build holds ``build.json``, ``rtl.v`` and ``timing.json`` only.

The operand ports of a gate-level design (:meth:`Design.operands`) come from its build: a
Booth build is ``a``, ``b`` -> ``p``, signed; an imported netlist declares them
(``--inputs``, ``--output``, ``--signed``/``--unsigned``, :class:`NetlistBuild` version 2).
Netlist builds of version 1 predate the declaration and read as the Booth defaults.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .config import Config, ConfigError
from .delay import DELAY_MODELS
from .errors import SimError

__all__ = [
    "BUILD_JSON",
    "DELAYS_JSON",
    "DELAY_MODELS",
    "GATE_JSON",
    "GATE_V",
    "RTL_REG_V",
    "RTL_V",
    "SIM_V",
    "TIMING_JSON",
    "BoothBuild",
    "BuildConfig",
    "Design",
    "DesignError",
    "NetlistBuild",
    "SramBuild",
    "load_build_config",
    "load_design",
    "load_timing",
    "read_input_text",
    "read_library",
]

BUILD_JSON = "build.json"
TIMING_JSON = "timing.json"
DELAYS_JSON = "delays.json"
GATE_V = "gate.v"
GATE_JSON = "gate.json"
RTL_V = "rtl.v"
RTL_REG_V = "rtl_reg.v"
SIM_V = {"zero": "sim_zero.v", "inertial": "sim_inertial.v", "transport": "sim_transport.v"}
"""Simulator-ready netlists by delay semantics (``zero``: no delays)."""



class DesignError(SimError, ValueError):
    """A design folder or build input is missing, unreadable or damaged (names the fix)."""


# --- Build settings (build.json) ---------------------------------------------------------


class _Build(Config):
    """Shared JSON form: the fields plus ``design``, the kind of build, for readers."""

    DESIGN: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "design": self.DESIGN}

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "design"}
        return super().from_dict(data)


def _check_timing_settings(delay_model: str, liberty: str | None, tick_ps: float,
                           ticks_per_tau: int) -> None:
    if delay_model not in DELAY_MODELS:
        raise DesignError(f"Unknown delay model {delay_model!r}; choose one of "
                          + ", ".join(map(repr, DELAY_MODELS)))
    if isinstance(tick_ps, bool) or not isinstance(tick_ps, int | float) \
            or not math.isfinite(tick_ps) or tick_ps <= 0:
        raise DesignError(f"tick_ps must be a finite number of picoseconds > 0, not {tick_ps!r}")
    if isinstance(ticks_per_tau, bool) or not isinstance(ticks_per_tau, int) or ticks_per_tau < 1:
        raise DesignError(f"ticks_per_tau must be a positive integer, not {ticks_per_tau!r}")
    if delay_model == "effort" and liberty is not None:
        raise DesignError("The effort delay model needs the built-in gates; drop --liberty "
                          "or use --delay-model liberty")
    if delay_model == "liberty" and liberty is None:
        raise DesignError("--delay-model liberty needs --liberty FILE (e.g. "
                          "/usr/share/qflow/tech/osu018/osu018_stdcells.lib)")


@dataclass(frozen=True)
class BoothBuild(_Build):
    """Settings of a multiplier build (``flipclock build booth``)."""

    FORMAT: ClassVar[str] = "flipclock.build.booth"
    DESIGN: ClassVar[str] = "booth"
    width: int = 8
    tree: str = "dadda"
    cpa: str = "ripple"
    delay_model: str = "unit"
    liberty: str | None = None
    tick_ps: float = 10.0
    ticks_per_tau: int = 4

    def __post_init__(self) -> None:
        _check_timing_settings(self.delay_model, self.liberty, self.tick_ps, self.ticks_per_tau)


@dataclass(frozen=True)
class SramBuild(_Build):
    """Settings of an SRAM weight-buffer build (``flipclock build sram``)."""

    FORMAT: ClassVar[str] = "flipclock.build.sram"
    DESIGN: ClassVar[str] = "sram"
    depth: int = 256
    width: int = 8


@dataclass(frozen=True)
class NetlistBuild(_Build):
    """Settings of an imported gate-level netlist (``flipclock build netlist``).

    ``inputs`` are the operand ports (two, or more for e.g. ``a * b + c``: such designs are
    sampled), ``output`` the output port, ``signed`` whether their values are two's
    complement (only how values are read: the correct output is always the netlist's own
    settled output).
    """

    FORMAT: ClassVar[str] = "flipclock.build.netlist"
    DESIGN: ClassVar[str] = "netlist"
    VERSION: ClassVar[int] = 2  # 2: inputs, output, signed
    netlist: str
    liberty: str | None = None
    top: str | None = None
    delay_model: str = "unit"
    tick_ps: float = 10.0
    ticks_per_tau: int = 4
    inputs: tuple[str, ...] = ("a", "b")
    output: str = "p"
    signed: bool | None = None

    def __post_init__(self) -> None:
        _check_timing_settings(self.delay_model, self.liberty, self.tick_ps, self.ticks_per_tau)
        if len(self.inputs) < 2 or not all(isinstance(x, str) and x for x in self.inputs):
            raise DesignError(f"--inputs names two or more operand ports (e.g. a,b or a,b,c), "
                              f"not {','.join(map(str, self.inputs))!r}")
        twice = [x for i, x in enumerate(self.inputs) if x in self.inputs[:i]]
        if twice:
            raise DesignError(f"--inputs names port {twice[0]!r} twice; name each operand "
                              "port once")
        if not isinstance(self.output, str) or not self.output:
            raise DesignError(f"--output names the output port, not {self.output!r}")
        if self.output in self.inputs:
            raise DesignError(f"Port {self.output!r} is named both as an input (--inputs "
                              f"{','.join(self.inputs)}) and as the output (--output "
                              f"{self.output}); the output is not an operand: drop it from "
                              "--inputs or name the output port with --output")

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        # version 1 folders predate the operand declaration: the Booth defaults apply
        if isinstance(data, dict) and data.get("version") == 1:
            data = {**data, "version": cls.VERSION, "signed": True}
        return super().from_dict(data)


BuildConfig = BoothBuild | SramBuild | NetlistBuild
_BUILDS: dict[str, type[BoothBuild] | type[SramBuild] | type[NetlistBuild]] = {
    c.DESIGN: c for c in (BoothBuild, SramBuild, NetlistBuild)
}


# --- Reading inputs ----------------------------------------------------------------------


def read_input_text(path: str | os.PathLike[str], what: str) -> str:
    """The text of a user's input file, or one line saying why it cannot be used.

    ``what`` names the file in the message (``"Liberty file"``, ``"netlist"``...).
    """
    from .atomic import read_user_bytes

    p = Path(path)
    data = read_user_bytes(p, what, DesignError)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DesignError(f"{what} {str(p)!r} is not text (byte {exc.start} is not UTF-8); "
                          "give the text file") from None


def read_library(liberty: str | None) -> Any:
    """The cell library of a build: the built-in gates, or the cells of a Liberty file."""
    from .cells import DEFAULT_LIBRARY

    if liberty is None:
        return DEFAULT_LIBRARY
    from .liberty import LibertyError, read_liberty

    read_input_text(liberty, "Liberty file")  # missing, unreadable or binary: one line
    try:
        return read_liberty(liberty)
    except LibertyError as exc:
        raise DesignError(str(exc)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DesignError(f"Cannot read Liberty file {liberty!r} ({exc}); give a valid "
                          "Liberty file") from None


def _read_json(path: Path) -> Any:
    text = read_input_text(path, "design file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DesignError(f"{str(path)!r} is corrupted ({exc}); rebuild the design with "
                          "`flipclock build`") from None


def load_build_config(folder: str | os.PathLike[str]) -> BuildConfig:
    """The build settings recorded in ``build.json`` of a design folder."""
    path = Path(folder) / BUILD_JSON
    if not path.is_file():
        raise DesignError(f"{str(folder)!r} is not a flipclock build (no {BUILD_JSON}); "
                          "create it with `flipclock build`")
    data = _read_json(path)
    cfg = data.get("config") if isinstance(data, dict) else None
    kind = cfg.get("design") if isinstance(cfg, dict) else None
    if not isinstance(kind, str) or kind not in _BUILDS:
        raise DesignError(f"{str(path)!r} names no known design ({kind!r}); rebuild the design "
                          "with `flipclock build`")
    try:
        return _BUILDS[kind].from_dict(cfg)
    except (ConfigError, DesignError) as exc:
        raise DesignError(f"{str(path)!r}: {exc}; rebuild the design") from None


# What `flipclock info` and the readers of timing.json rely on, by kind of build.
_TIMING_KEYS = {
    "sram": {"config": dict, "bits": int, "fault_mask_bits": int, "ports": dict,
             "hashes": dict},
    "gate": {"config": dict, "top": str, "cells": dict, "n_cells": int, "n_nets": int,
             "logic_depth": int, "critical_path": dict, "tick": dict, "delay_model": dict,
             "hashes": dict},
}


def load_timing(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``timing.json`` of a design folder, checked to hold what its readers use."""
    cfg = load_build_config(folder)
    path = Path(folder) / TIMING_JSON
    if not path.is_file():
        raise DesignError(f"{str(path)!r} is missing; rebuild the design with `flipclock build`")
    info = _read_json(path)
    if not isinstance(info, dict):
        raise DesignError(f"{str(path)!r} is damaged (not a JSON object); rebuild the design")
    keys = _TIMING_KEYS["sram" if isinstance(cfg, SramBuild) else "gate"]
    for key, kind in {"design": str, **keys}.items():
        if not isinstance(info.get(key), kind) or isinstance(info.get(key), bool):
            raise DesignError(f"{str(path)!r} is damaged ({key!r} is missing or not a "
                              f"{kind.__name__}); rebuild the design")
    try:
        type(cfg).from_dict(info["config"])
    except (ConfigError, DesignError) as exc:
        raise DesignError(f"{str(path)!r} is damaged ({exc}); rebuild the design") from None
    need = ("rtl_sha256",) if isinstance(cfg, SramBuild) else ("netlist", "delays")
    if any(not isinstance(info["hashes"].get(k), str) for k in need):
        raise DesignError(f"{str(path)!r} is damaged (hashes incomplete); rebuild the design")
    if not isinstance(cfg, SramBuild) and not isinstance(info["critical_path"].get("ticks"), int):
        raise DesignError(f"{str(path)!r} is damaged (no critical path); rebuild the design")
    return info


# --- The gate-level design ---------------------------------------------------------------


@dataclass
class Design:
    """A gate-level design: netlist, delay annotation, and its build settings."""

    folder: Path
    netlist: Any  # sim.netlist.Netlist
    annotation: Any  # sim.delay.DelayAnnotation
    info: dict[str, Any]
    config: BuildConfig | None = None

    @property
    def name(self) -> str:
        """The folder's name (``booth8``)."""
        return self.folder.name

    def operands(self) -> Any:
        """The operand ports and signedness (:class:`sim.operands.Operands`), checked
        against the netlist: one line if a declared port is missing or does not fit."""
        from .operands import Operands

        cfg = self.config
        if isinstance(cfg, NetlistBuild) and cfg.signed is None:
            raise DesignError(f"{str(self.folder)!r} has no operand ports a, b -> p (or was "
                              "built without them declared); rebuild it with --inputs A,B "
                              "--output P and --signed or --unsigned")
        ops = (Operands.of(cfg.inputs, cfg.output, bool(cfg.signed))
               if isinstance(cfg, NetlistBuild) else Operands())
        ops.ports(self.netlist)  # whether pair tables fit is each command's own check
        return ops

    def settings(self) -> dict[str, Any]:
        """What every result derived from this design records about it."""
        return {
            "design": str(self.folder),
            "netlist_hash": self.netlist.content_hash,
            "delays_hash": self.annotation.content_hash,
            "delay_model": self.annotation.model.to_dict(),
            "tick": self.annotation.tick_label,
            "tick_seconds": self.annotation.seconds_per_tick,
        }


def load_design(folder: str | os.PathLike[str]) -> Design:
    """Read ``gate.v``, ``delays.json`` and ``timing.json`` of a booth or netlist build.

    Every problem -- not a build, an SRAM build, a missing, binary or damaged file, delays
    of another netlist -- is a :class:`DesignError` naming the file and the fix.
    """
    from .delay import AnnotationError, DelayAnnotation
    from .netlist import NetlistError
    from .reader import read_verilog

    path = Path(folder)
    cfg = load_build_config(path)
    if isinstance(cfg, SramBuild):
        raise DesignError(f"{str(path)!r} is an SRAM build; this command needs a gate-level "
                          "multiplier (`flipclock build booth`)")
    for name in (GATE_V, DELAYS_JSON, TIMING_JSON):
        if not (path / name).is_file():
            raise DesignError(f"{str(path / name)!r} is missing; rebuild the design with "
                              "`flipclock build`")
    library = read_library(cfg.liberty)
    read_input_text(path / GATE_V, "netlist")  # binary or unreadable: one line
    delays = read_input_text(path / DELAYS_JSON, "delay file")
    info = load_timing(path)
    try:
        netlist = read_verilog(path / GATE_V, library)
        annotation = DelayAnnotation.from_json(delays)
        annotation.check_matches(netlist)
    except (NetlistError, AnnotationError) as exc:
        raise DesignError(f"{str(path)!r}: {exc}") from None
    return Design(path, netlist, annotation, info, cfg)
