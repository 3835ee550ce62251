"""Load a built design folder (``flipclock build``) as the objects ``sim`` works on."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = ["Design", "load_design"]


@dataclass
class Design:
    """A gate-level design: netlist, delay annotation, and its build settings."""

    folder: Path
    netlist: Any  # sim.netlist.Netlist
    annotation: Any  # sim.delay.DelayAnnotation
    info: dict[str, Any]

    @property
    def name(self) -> str:
        return self.folder.name

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
    """Read ``gate.v``, ``delays.json`` and ``timing.json`` of a booth or netlist build."""
    from sim.delay import AnnotationError, DelayAnnotation
    from sim.netlist import NetlistError
    from sim.reader import read_verilog

    from .build import SramBuild, _library, load_build_config

    path = Path(folder)
    cfg = load_build_config(path)
    if isinstance(cfg, SramBuild):
        raise UserError(f"{str(path)!r} is an SRAM build; this command needs a gate-level "
                        "multiplier (`flipclock build booth`)")
    for name in ("gate.v", "delays.json", "timing.json"):
        if not (path / name).is_file():
            raise UserError(f"{str(path / name)!r} is missing; rebuild with `flipclock build`")
    library = _library(cfg.liberty)
    try:
        netlist = read_verilog(path / "gate.v", library)
        annotation = DelayAnnotation.read(path / "delays.json")
        annotation.check_matches(netlist)
        info = json.loads((path / "timing.json").read_text())
    except (NetlistError, AnnotationError) as exc:
        raise UserError(f"{str(path)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{str(path / 'timing.json')!r} is corrupted ({exc}); rebuild the "
                        "design") from None
    return Design(path, netlist, annotation, info)
