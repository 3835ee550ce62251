"""``flipclock info``: the human-readable summary of a design folder's ``timing.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["format_info"]


def _sram(info: dict[str, Any]) -> list[str]:
    cfg = info["config"]
    return [
        f"design      sram {cfg['depth']}x{cfg['width']} (behavioural memory macro)",
        f"bits        {info['bits']} data + {info['fault_mask_bits']} fault-mask",
        "ports       " + ", ".join(info["ports"]),
        f"rtl sha256  {info['hashes']['rtl_sha256'][:16]}",
    ]


def _critical(info: dict[str, Any]) -> list[str]:
    cp = info["critical_path"]
    tick = info.get("tick") or {}
    model = info.get("delay_model") or {}
    mname = model.get("kind", info["config"].get("delay_model"))
    lines = [f"delay model {mname}, 1 tick = {tick.get('label') or tick.get('seconds')}"]
    crit = f"critical    {cp['ticks']} ticks"
    if cp.get("seconds"):
        crit += f" = {cp['seconds'] * 1e9:.3f} ns"
    if cp.get("semantics"):
        crit += f", {cp['semantics']}"
    if info.get("critical_path_exact_s"):
        crit += f" (STA of the unrounded delays {info['critical_path_exact_s'] * 1e9:.3f} ns)"
    lines.append(crit)
    path = cp.get("path") or []
    if path:
        start = cp.get("start", path[0].get("net"))
        end = cp.get("end", path[-1].get("net"))
        ncells = sum(1 for step in path if step.get("cell"))
        lines.append(f"path        {start} -> {end} through {ncells} cells")
    return lines


def format_info(info: dict[str, Any]) -> str:
    """Summary of a ``timing.json`` (as :func:`sim.design.load_timing` returns it)."""
    if info["design"] == "sram":
        return "\n".join(_sram(info))
    cfg = info["config"]
    lines: list[str] = []
    lib = Path(cfg["liberty"]).name if cfg.get("liberty") else "fcgates (built-in)"
    if info["design"] == "netlist":
        lines.append(f"design      netlist {cfg['netlist']} (top {info['top']})")
    else:
        lines.append(f"design      booth {cfg['width']}-bit, tree={cfg['tree']}, "
                     f"cpa={cfg['cpa']}")
    if info.get("adders"):
        lines.append(f"adders      {info['adders'].get('full', 0)} full, "
                     f"{info['adders'].get('half', 0)} half")
    lines.append(f"library     {lib}")
    lines.append(f"cells       {info['n_cells']}  ("
                 + ", ".join(f"{k} {v}" for k, v in info["cells"].items()) + ")")
    lines.append(f"nets        {info['n_nets']}")
    lines.append(f"logic depth {info['logic_depth']}")
    lines += _critical(info)
    h = info["hashes"]
    lines.append(f"hashes      netlist {h['netlist'][:16]}, delays {h['delays'][:16]}"
                 + (f", rtl {h['rtl_sha256'][:16]}" if "rtl_sha256" in h else ""))
    return "\n".join(lines)
