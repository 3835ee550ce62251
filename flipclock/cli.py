"""The ``flipclock`` command line: the single composition root that wires hw, sim and nnmap.

User errors print one line (``flipclock: error: ...``) and exit with status 2; bugs keep
their traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = ["main"]

OSU018 = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flipclock",
        description="Gate-level co-simulation of shortened clocks and memory faults "
        "for quantized neural networks.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    b = sub.add_parser(
        "build", help="generate RTL, gate netlist, delays and timing for a design",
        description="Generate a design from hw/: RTL Verilog (Amaranth), a Yosys gate-level "
        "netlist, per-gate delays and timing.json, written atomically into --out.",
    )
    b.add_argument("design", help="'booth' (multiplier), 'sram' (weight buffer) or 'netlist' "
                   "(import a gate-level netlist given with --netlist)")
    b.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    b.add_argument("--width", type=_positive_int, default=8,
                   help="booth: operand width (even, 4..16); sram: word width (default 8)")
    b.add_argument("--tree", default="dadda", help="booth reduction tree: array|wallace|dadda")
    b.add_argument("--cpa", default="ripple", help="booth final adder: ripple|kogge_stone")
    b.add_argument("--delay-model", default=None,
                   help="unit | effort | liberty (default: unit, or liberty with --liberty)")
    b.add_argument("--liberty", default=None,
                   help=f"map to the cells of this Liberty file (e.g. {OSU018})")
    b.add_argument("--tick-ps", type=float, default=10.0,
                   help="liberty model: length of one delay tick in ps (default 10)")
    b.add_argument("--ticks-per-tau", type=_positive_int, default=4,
                   help="effort model: delay ticks per tau (default 4)")
    b.add_argument("--depth", type=_positive_int, default=256, help="sram: number of words")
    b.add_argument("--netlist", default=None,
                   help="netlist: structural Verilog file to import (with --liberty for its cells)")
    b.add_argument("--top", default=None, help="netlist: top module (default: the last one)")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")

    i = sub.add_parser("info", help="summarise a built design",
                       description="Cells by type, nets, logic depth, critical path, delay "
                       "model and hashes of a design folder written by `flipclock build`.")
    i.add_argument("folder", type=Path)
    i.add_argument("--json", action="store_true", help="print timing.json as JSON")

    d = sub.add_parser("demo", help="the main job end to end on the embedded default",
                       description="Build the default 8-bit Booth multiplier, show its timing, "
                       "and simulate shortened clocks on Icarus through cocotb.")
    d.add_argument("--out", type=Path, default=Path("out/demo"))
    d.add_argument("--transitions", type=_positive_int, default=2000)
    d.add_argument("--seed", type=int, default=1)
    return p


def _build(args: argparse.Namespace) -> dict[str, Any]:
    from .build import (
        BoothBuild,
        NetlistBuild,
        SramBuild,
        build_booth,
        build_from_netlist,
        build_sram,
    )

    if args.design == "booth":
        model = args.delay_model or ("liberty" if args.liberty else "unit")
        liberty = str(Path(args.liberty).resolve()) if args.liberty else None
        if liberty is not None and not Path(liberty).is_file():
            raise UserError(f"Liberty file {args.liberty!r} does not exist")
        cfg = BoothBuild(width=args.width, tree=args.tree, cpa=args.cpa, delay_model=model,
                         liberty=liberty, tick_ps=args.tick_ps,
                         ticks_per_tau=args.ticks_per_tau)
        return build_booth(cfg, args.out)
    if args.design == "sram":
        return build_sram(SramBuild(depth=args.depth, width=args.width), args.out)
    if args.design == "netlist":
        if args.netlist is None:
            raise UserError("`flipclock build netlist` needs --netlist FILE")
        model = args.delay_model or ("liberty" if args.liberty else "unit")
        liberty = str(Path(args.liberty).resolve()) if args.liberty else None
        if liberty is not None and not Path(liberty).is_file():
            raise UserError(f"Liberty file {args.liberty!r} does not exist")
        return build_from_netlist(
            NetlistBuild(netlist=str(Path(args.netlist).resolve()), liberty=liberty,
                         top=args.top, delay_model=model, tick_ps=args.tick_ps,
                         ticks_per_tau=args.ticks_per_tau), args.out)
    raise UserError(f"Unknown design {args.design!r}; choose 'booth', 'sram' or 'netlist'")


def _load_info(folder: Path) -> dict[str, Any]:
    from .build import load_build_config

    load_build_config(folder)  # checks it is a build folder
    path = folder / "timing.json"
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"{str(path)!r} is missing; rebuild with `flipclock build`") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{str(path)!r} is corrupted ({exc}); rebuild the design") from None


def format_info(info: dict[str, Any]) -> str:
    """Human-readable summary of a ``timing.json``."""
    cfg = info["config"]
    lines: list[str] = []
    if info["design"] == "sram":
        lines.append(f"design      sram {cfg['depth']}x{cfg['width']} (behavioural memory macro)")
        lines.append(f"bits        {info['bits']} data + {info['fault_mask_bits']} fault-mask")
        lines.append("ports       " + ", ".join(info["ports"]))
        lines.append(f"rtl sha256  {info['hashes']['rtl_sha256'][:16]}")
        return "\n".join(lines)
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
    cp = info["critical_path"]
    tick = info.get("tick", {})
    model = info.get("delay_model") or {}
    mname = model.get("kind", cfg.get("delay_model"))
    lines.append(f"delay model {mname}, 1 tick = {tick.get('label') or tick.get('seconds')}")
    crit = f"critical    {cp['ticks']} ticks"
    if cp.get("seconds"):
        crit += f" = {cp['seconds'] * 1e9:.3f} ns"
    if info.get("critical_path_exact_s"):
        crit += f" (unrounded {info['critical_path_exact_s'] * 1e9:.3f} ns)"
    lines.append(crit)
    path = cp.get("path", [])
    if path:
        start = cp.get("start", path[0].get("net"))
        end = cp.get("end", path[-1].get("net"))
        ncells = sum(1 for step in path if step.get("cell"))
        lines.append(f"path        {start} -> {end} through {ncells} cells")
    h = info["hashes"]
    lines.append(f"hashes      netlist {h['netlist'][:16]}, delays {h['delays'][:16]}"
                 + (f", rtl {h['rtl_sha256'][:16]}" if "rtl_sha256" in h else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            info = _build(args)
            print(json.dumps(info, indent=2) if args.json
                  else f"wrote {args.out}\n" + format_info(info))
        elif args.command == "info":
            info = _load_info(args.folder)
            print(json.dumps(info, indent=2) if args.json else format_info(info))
        elif args.command == "demo":
            from .demo import run_demo

            run_demo(args.out, transitions=args.transitions, seed=args.seed)
    except UserError as exc:
        print(f"flipclock: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flipclock: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
