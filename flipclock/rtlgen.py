"""Where ``hw`` meets ``sim.build``: RTL text from the Amaranth designs, then the build.

``sim`` never imports ``hw``; this small piece of the composition root makes the RTL a
build needs and hands it to :mod:`sim.build`, which writes the design folder.
"""

from __future__ import annotations

import os
from typing import Any

from sim.build import (
    BoothRTL,
    build_booth,
    build_from_netlist,
    build_sram,
    check_build_output,
)
from sim.design import BoothBuild, BuildConfig, NetlistBuild, SramBuild

__all__ = ["booth_rtl", "build_design", "check_design", "sram_rtl"]


def check_design(cfg: BuildConfig) -> Any:
    """The ``hw`` component of a booth or SRAM build (raises :class:`hw.errors.HWError`
    for a bad width, tree, depth ...), cheap enough to call before any work."""
    import hw

    if isinstance(cfg, BoothBuild):
        return hw.design_from_name("booth", width=cfg.width, tree=cfg.tree, cpa=cfg.cpa)
    if isinstance(cfg, SramBuild):
        return hw.design_from_name("sram", depth=cfg.depth, width=cfg.width)
    return None


def booth_rtl(cfg: BoothBuild) -> BoothRTL:
    """RTL of the multiplier core (top ``booth``) and its registered wrapper."""
    import hw

    core = check_design(cfg)
    reg = hw.design_from_name("booth_reg", width=cfg.width, tree=cfg.tree, cpa=cfg.cpa)
    return BoothRTL(core=hw.to_verilog(core, name="booth"),
                    registered=hw.to_verilog(reg, name="booth_reg"),
                    adders=dict(getattr(core, "adder_counts", {})))


def sram_rtl(cfg: SramBuild) -> str:
    """RTL of the SRAM weight buffer (top ``sram``)."""
    import hw

    return hw.to_verilog(check_design(cfg), name="sram")


def build_design(cfg: BuildConfig, out: str | os.PathLike[str], *,
                 force: bool = False, sdf: Any = None, write_sdf: bool = False) -> dict[str, Any]:
    """Build any design into folder ``out``; return its ``timing.json`` contents.

    ``out`` is checked first, so a bad folder is refused before the RTL is generated.
    ``sdf`` (a :class:`sim.delay.SdfDelay`, netlist builds) and ``write_sdf`` go to
    :func:`sim.build.build_from_netlist` / :func:`sim.build.build_booth`.
    """
    check_build_output(out, force=force)
    if isinstance(cfg, BoothBuild):
        return build_booth(cfg, booth_rtl(cfg), out, force=force, write_sdf=write_sdf)
    if isinstance(cfg, SramBuild):
        return build_sram(cfg, sram_rtl(cfg), out, force=force)
    assert isinstance(cfg, NetlistBuild)
    return build_from_netlist(cfg, out, force=force, sdf=sdf, write_sdf=write_sdf)
