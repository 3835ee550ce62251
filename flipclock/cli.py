"""The ``flipclock`` command line: the single composition root that wires hw, sim and nnmap.

User errors print one line (``flipclock: error: ...``) and exit with status 2; bugs keep
their traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .args import Parser, int_range, positive_int, seed
from .errors import UserError, user_errors

__all__ = ["main"]

OSU018 = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"


def _studies() -> list[Any]:
    """The registered study modules (:mod:`flipclock.studies`), each adding a command group."""
    from .studies import load_studies

    return load_studies()


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="flipclock",
        description="Gate-level co-simulation of shortened clocks and memory faults "
        "for quantized neural networks.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_build(sub)
    _add_info(sub)

    _add_crosscheck(sub)
    _add_errtable(sub)

    for module in _studies():
        module.register(sub)

    _add_variation(sub)
    _add_stuckat(sub)

    d = sub.add_parser("demo", help="the main job end to end on the embedded default",
                       description="Build the default 8-bit Booth multiplier, cross-check the "
                       "timing engine against Icarus, build exhaustive error tables at five "
                       "clock periods, and run the network studies in --quick form on them.")
    d.add_argument("--out", type=Path, default=Path("out/demo"),
                   help="output folder (default out/demo)")
    d.add_argument("--transitions", type=positive_int, default=1000,
                   help="cross-check transitions (default 1000)")
    d.add_argument("--seed", type=seed, default=1, help="cross-check seed (default 1)")
    d.add_argument("--no-studies", action="store_true", help="skip the network studies")
    d.add_argument("--force", action="store_true",
                   help="write into an --out that flipclock did not make")
    d.add_argument("--table-samples", type=int_range(1, 4096), default=None, metavar="N",
                   help="sampled error tables with N previous pairs per current pair instead "
                   "of the exhaustive ones (a quick look)")
    return p


def _add_build(sub: Any) -> None:
    """``flipclock build booth|sram|netlist``: one sub-parser per design, each with only
    the flags that apply to it, so an irrelevant flag is refused by argparse."""
    import hw
    from sim.delay import DELAY_MODELS

    from .args import float_range, input_file, positive_int

    b = sub.add_parser(
        "build", help="generate RTL, gate netlist, delays and timing for a design",
        description="Generate a design from hw/: RTL Verilog (Amaranth), a Yosys gate-level "
        "netlist, per-gate delays and timing.json, written atomically into --out.")
    designs = b.add_subparsers(dest="design", metavar="DESIGN", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, type=Path,
                        help="output folder; one that flipclock made is replaced atomically")
    common.add_argument("--force", action="store_true",
                        help="replace --out even if flipclock did not make it (its files go)")
    common.add_argument("--json", action="store_true", help="print the summary as JSON")
    timing = argparse.ArgumentParser(add_help=False)
    timing.add_argument("--delay-model", default=None, choices=DELAY_MODELS,
                        help="default: unit, or liberty with --liberty")
    timing.add_argument("--liberty", type=input_file, default=None, metavar="FILE",
                        help=f"map to the cells of this Liberty file (e.g. {OSU018})")
    timing.add_argument("--tick-ps", type=float_range(0.1, 10_000), default=None,
                        help="liberty model: length of one delay tick in ps, 0.1..10000 "
                        "(default 10)")
    timing.add_argument("--ticks-per-tau", type=positive_int, default=None,
                        help="effort model: delay ticks per tau (default 4)")
    timing.add_argument("--write-sdf", action="store_true",
                        help="also write the delays as SDF (delays.sdf: one IOPATH per arc, "
                        "rise and fall, in ns)")

    booth = designs.add_parser("booth", parents=[common, timing], help="Booth multiplier",
                               description="A radix-4 Booth multiplier from hw/.")
    booth.add_argument("--width", type=positive_int, default=8,
                       help="operand width, even, 4..16 (default 8)")
    booth.add_argument("--tree", default="dadda", choices=hw.TREES,
                       help="partial-product reduction tree (default dadda)")
    booth.add_argument("--cpa", default="ripple", choices=hw.CPAS,
                       help="final carry-propagate adder (default ripple)")
    sram = designs.add_parser("sram", parents=[common], help="SRAM weight buffer",
                              description="The fault-injecting SRAM weight buffer from hw/.")
    sram.add_argument("--depth", type=positive_int, default=256,
                      help="number of words (default 256)")
    sram.add_argument("--width", type=positive_int, default=8, help="word width (default 8)")
    net = designs.add_parser("netlist", parents=[common, timing],
                             help="import a gate-level netlist",
                             description="Import a structural gate-level netlist (another "
                             "tool's synthesis result), with --liberty for its cells.")
    net.add_argument("--netlist", type=input_file, required=True, metavar="FILE",
                     help="structural Verilog file to import")
    net.add_argument("--top", default=None, help="top module (default: the last one)")
    net.add_argument("--sdf", type=input_file, default=None, metavar="FILE",
                     help="take the delays from this SDF file (e.g. OpenSTA write_sdf) instead "
                     "of a delay model; ticks of --tick-ps (default 10)")
    net.add_argument("--sdf-corner", default=None, choices=("min", "typ", "max"),
                     help="corner of the SDF's min:typ:max values (default max: timing errors "
                     "are late arrivals, what sign-off setup checks bound)")
    net.add_argument("--inputs", default="a,b", metavar="A,B[,C...]",
                     help="the operand input ports, every input of the netlist (default a,b; "
                     "designs with more than two operands run errtable in --mode sample)")
    net.add_argument("--output", default="p", metavar="P",
                     help="the output port (default p)")
    sign = net.add_mutually_exclusive_group()
    sign.add_argument("--signed", dest="signed", action="store_true", default=None,
                      help="operands and output are two's complement (this or --unsigned "
                      "is required when the netlist has the operand ports)")
    sign.add_argument("--unsigned", dest="signed", action="store_false",
                      help="operands and output are plain binary")


def _add_info(sub: Any) -> None:
    i = sub.add_parser("info", help="summarise a built design",
                       description="Cells by type, nets, logic depth, critical path, delay "
                       "model and hashes of a design folder written by `flipclock build`.")
    i.add_argument("folder", type=Path)
    i.add_argument("--json", action="store_true", help="print timing.json as JSON")


def _input_file(path: str, what: str) -> str:
    """The absolute path of a user's input file, checked readable text before any work."""
    from sim.design import read_input_text

    read_input_text(path, what)
    return str(Path(path).resolve())


def _build_config(args: argparse.Namespace) -> Any:
    """The build settings the flags name, every value checked before any work."""
    from sim.design import BoothBuild, NetlistBuild, SramBuild

    if args.design == "sram":
        return SramBuild(depth=args.depth, width=args.width)
    model = args.delay_model or ("liberty" if args.liberty else "unit")
    sdf = getattr(args, "sdf", None)
    if sdf is not None and args.delay_model is not None:
        raise UserError("--sdf gives the delays; drop --delay-model")
    if sdf is None and getattr(args, "sdf_corner", None) is not None:
        raise UserError("--sdf-corner picks a corner of an SDF file; add --sdf FILE or drop it")
    if args.tick_ps is not None and model != "liberty" and sdf is None:
        raise UserError("--tick-ps sets the tick of the liberty delay model; drop it or use "
                        "--delay-model liberty")
    if args.ticks_per_tau is not None and model != "effort":
        raise UserError("--ticks-per-tau applies to the effort delay model; drop it or use "
                        "--delay-model effort")
    kw: dict[str, Any] = {"delay_model": model}
    if args.liberty is not None:
        kw["liberty"] = _input_file(args.liberty, "Liberty file")
    if args.tick_ps is not None:
        kw["tick_ps"] = args.tick_ps
    if args.ticks_per_tau is not None:
        kw["ticks_per_tau"] = args.ticks_per_tau
    if args.design == "booth":
        return BoothBuild(width=args.width, tree=args.tree, cpa=args.cpa, **kw)
    netlist = _input_file(args.netlist, "Netlist file")
    inputs = tuple(x.strip() for x in args.inputs.split(","))
    if len(inputs) < 2 or not all(inputs):
        raise UserError(f"--inputs names two or more operand ports, e.g. a,b or a,b,c, not "
                        f"{args.inputs!r}")
    return NetlistBuild(netlist=netlist, top=args.top, inputs=inputs,
                        output=args.output.strip(), signed=args.signed, **kw)


def _build(args: argparse.Namespace) -> int:
    from .info import format_info
    from .rtlgen import build_design, check_design

    cfg = _build_config(args)
    check_design(cfg)  # a bad width, depth ... is one line before any file is touched
    sdf = None
    if getattr(args, "sdf", None) is not None:
        from sim.delay import SdfDelay

        sdf = SdfDelay(path=_input_file(args.sdf, "SDF file"), corner=args.sdf_corner or "max",
                       tick_ps=args.tick_ps or 10.0)
    info = build_design(cfg, args.out, force=args.force,  # checks --out first
                        sdf=sdf, write_sdf=getattr(args, "write_sdf", False))
    print(json.dumps(info, indent=2) if args.json
          else f"wrote {args.out}\n" + format_info(info))
    return 0


def _info(args: argparse.Namespace) -> int:
    from sim.design import load_timing

    from .info import format_info

    info = load_timing(args.folder)
    if info.get("design") != "sram":
        # Read the whole folder (netlist, delays): a summary of damaged files is a lie.
        from sim.design import load_design

        load_design(args.folder)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _add_crosscheck(sub: Any) -> None:
    """``flipclock crosscheck``: every value is checked by its argparse type."""
    from sim.plan import SEMANTICS
    from sim.runner import SIMULATORS

    from .args import choice_list, fraction, input_file, int_range, nonneg_int, positive_int, seed

    c = sub.add_parser(
        "crosscheck", help="prove the timing engine bit-exact against Icarus and Verilator",
        description="Run the same transitions through cocotb on Icarus and Verilator and "
        "through the timing engine, at periods from --low of the critical path up to it, and "
        "count every captured product that differs. Exit status 1 if any does.")
    c.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    c.add_argument("--transitions", type=int_range(1, 10_000_000), default=10_000,
                   help="random transitions, at most 10^7 (default 10000), plus --latest that "
                   "settle last")
    c.add_argument("--latest", type=nonneg_int, default=16,
                   help="extra transitions that settle last (default 16)")
    c.add_argument("--periods", type=positive_int, default=5,
                   help="number of capture periods (default 5)")
    c.add_argument("--low", type=fraction, default=0.6,
                   help="shortest period as a fraction of the critical path, in (0, 1] "
                   "(default 0.6)")
    c.add_argument("--seed", type=seed, default=0)
    c.add_argument("--simulators", type=choice_list(SIMULATORS), default=SIMULATORS,
                   help=f"comma list of {', '.join(SIMULATORS)} (default all)")
    c.add_argument("--semantics", type=choice_list(SEMANTICS), default=SEMANTICS,
                   help=f"comma list of {', '.join(SEMANTICS)} (default all; transport and "
                   "pathdelay on Icarus only)")
    c.add_argument("--per-pin", action=argparse.BooleanOptionalAction, default=None,
                   help="per-pin (arc) delays for inertial and transport (default: on for "
                   "Liberty and SDF delays, off otherwise; pathdelay always uses its arcs)")
    c.add_argument("--cell-models", type=input_file, default=None, metavar="CELLS.v",
                   help="pathdelay: the library's own Verilog cell models with specify "
                   "blocks (e.g. osu018_stdcells.v); default: models generated from the "
                   "cell functions, one primitive per output")
    c.add_argument("--out", type=Path, default=None,
                   help="folder for simulator builds and the report "
                   "(default out/crosscheck/DESIGN)")
    c.add_argument("--force", action="store_true",
                   help="write into --out even if flipclock did not make it")
    c.add_argument("--json", action="store_true", help="print the results as JSON")


def _add_errtable(sub: Any) -> None:
    """``flipclock errtable``; flags of the other mode default to None so that giving one
    is refused (:func:`_errtable`)."""
    import math

    from sim.plan import SEMANTICS

    from .args import float_list, input_file, int_range, positive_int, seed

    e = sub.add_parser(
        "errtable", help="error tables of a multiplier at shortened clock periods",
        description="Simulate a multiplier with the timing engine at shortened clock periods "
        "and write Tables I-III of Wu et al.: full rows (sampled, or chosen current pairs), the "
        "compressed table (per current pair, each wrong output with its probability) and the "
        "per-weight error probability, as Parquet (and CSV), with a summary and a plot. Work "
        "is split in shards written as they finish: run the same command again to resume.")
    e.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    e.add_argument("--period", type=positive_int, action="append", default=[],
                   help="capture period in ticks (repeat for several)")
    e.add_argument("--period-frac", type=float_list(0, math.inf, lo_open=True), default=(),
                   help="periods as fractions of the critical path, e.g. 0.6,0.7,0.8,0.9,1")
    e.add_argument("--mode", default="exhaustive", choices=["exhaustive", "sample"])
    e.add_argument("--samples", type=int_range(1, 1 << 22), default=None,
                   help="sample mode: previous pairs drawn per current pair, 1..4096 (default "
                   "64; beyond that, --mode exhaustive is exact and cheaper); for a design "
                   "without tables over operand pairs (more than two operands, or wider than "
                   "8 bits) the number of random transitions, up to 4194304 (default 65536)")
    e.add_argument("--seed", type=seed, default=None, help="sample mode: seed (default 0)")
    e.add_argument("--semantics", default=None, choices=SEMANTICS,
                   help="delay semantics (default: transport with per-pin arcs for Liberty "
                   "and SDF delays, the closest to OpenSTA (results/signoff); inertial "
                   "otherwise)")
    e.add_argument("--per-pin", action=argparse.BooleanOptionalAction, default=None,
                   help="per-pin (arc) delays (default: on for Liberty and SDF delays with "
                   "the default semantics, off otherwise; pathdelay always uses its arcs)")
    e.add_argument("--prev", type=input_file, default=None, metavar="FILE",
                   help="previous-input histogram (.npy or one-column .csv); uniform if absent")
    e.add_argument("--prev-kind", default=None,
                   choices=["joint", "stationary_a", "stationary_b"],
                   help="with --prev: joint (default): weights over all previous pairs; "
                   "stationary_a/b: that operand keeps its value and the histogram is over the "
                   "other one")
    e.add_argument("--full-pairs", default=None,
                   help="exhaustive: current pairs 'a,b;a,b' whose full Table I rows are stored")
    e.add_argument("--shard-pairs", type=int_range(1, 65536), default=2048,
                   help="current pairs per shard, 1..65536 (default 2048)")
    e.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run shards on a Dask cluster: a scheduler address, or 'local'")
    e.add_argument("--csv", action="store_true", help="also write CSV exports")
    e.add_argument("--force", action="store_true",
                   help="discard shards and tables of other settings found in --out (or "
                   "write into a folder flipclock did not make)")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    e.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_variation(sub: Any) -> None:
    """``flipclock variation``: every value is checked by its argparse type."""
    from sim.plan import SEMANTICS

    from .args import fraction, int_range, positive_int, seed

    v = sub.add_parser(
        "variation", help="Monte Carlo error tables under per-gate delay variation",
        description="Draw --samples chips with Gaussian per-gate delays (sigma as a fraction "
        "of the nominal delay), simulate each at the periods and average: a compressed table "
        "per period (usable like a nominal one, with regulation 1), per-pair CIs over samples, "
        "per-sample error rates and critical paths, a summary beside the paper's regulated "
        "nominal rates, and a plot. One shard per sample: run again to resume or add samples.")
    v.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    v.add_argument("--period", type=positive_int, action="append", default=[], required=True,
                   help="capture period in design ticks (repeat for several)")
    v.add_argument("--sigma", type=fraction, required=True,
                   help="per-gate delay standard deviation, fraction of nominal in [0, 1) "
                   "(0.05 = 5 percent)")
    v.add_argument("--sigma-global", type=fraction, default=0.0,
                   help="die-to-die standard deviation shared by all gates (default 0)")
    v.add_argument("--samples", type=positive_int, default=20,
                   help="Monte Carlo samples (default 20)")
    v.add_argument("--seed", type=seed, default=0)
    v.add_argument("--prev-samples", type=int_range(1, 65536), default=None, metavar="K",
                   help="K random previous pairs per current pair and sample, 1..65536 "
                   "(default: all)")
    v.add_argument("--subticks", type=int_range(1, 1000), default=1,
                   help="simulation ticks per design tick, to resolve small variation of short "
                   "delays (about 1/sigma for unit delays; 1..1000, default 1)")
    v.add_argument("--center", default="ticks", choices=["ticks", "exact"],
                   help="vary around the tick delays (default) or the unrounded delays")
    v.add_argument("--semantics", default="inertial", choices=SEMANTICS)
    v.add_argument("--no-nominal", action="store_true",
                   help="skip the nominal chip used for comparison")
    v.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="one task per sample on a Dask cluster: a scheduler address, or 'local'")
    v.add_argument("--force", action="store_true",
                   help="discard shards and tables of other settings found in --out (or "
                   "write into a folder flipclock did not make)")
    v.add_argument("--out", type=Path, required=True, help="output folder")
    v.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_stuckat(sub: Any) -> None:
    """``flipclock stuckat``: every value is checked by its argparse type."""
    from .args import nonneg_int, positive_int

    s = sub.add_parser(
        "stuckat", help="rank the stuck-at faults of a multiplier by the damage they do",
        description="Stick every net (input bits and cell outputs) at 0 and at 1, evaluate the "
        "settled products of all operand pairs, and write a ranked CSV, a Markdown report, a "
        "bar chart of the most damaging faults and, on request, their compressed tables.")
    s.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--force", action="store_true",
                   help="write into --out even if flipclock did not make it")
    s.add_argument("--top", type=positive_int, default=20,
                   help="faults in the report and the plot (default 20)")
    s.add_argument("--rank-by", default="mean_abs_error",
                   choices=["mean_abs_error", "error_rate", "max_abs_error"])
    s.add_argument("--nets", default=None, help="comma list of nets to fault (default: all)")
    s.add_argument("--tables", default="", metavar="NET:V,...",
                   help="write the compressed tables of these faults, e.g. 'p[15]:0,p[15]:1'")
    s.add_argument("--tables-top", type=nonneg_int, default=0, metavar="K",
                   help="also write the tables of the K best-ranked faults")
    s.add_argument("--json", action="store_true", help="print the top faults as JSON")


def _crosscheck(args: argparse.Namespace) -> int:
    from sim.atomic import check_output_path
    from sim.crosscheck import CrosscheckConfig, crosscheck, format_runs
    from sim.design import load_design

    cfg = CrosscheckConfig(  # checks the settings before anything is read or run
        transitions=args.transitions, periods=args.periods, low=args.low, seed=args.seed,
        simulators=tuple(args.simulators), semantics=tuple(args.semantics),
        per_pin=bool(args.per_pin), latest=args.latest,
        cell_models=None if args.cell_models is None else str(args.cell_models))
    if args.per_pin and set(cfg.semantics) == {"pathdelay"}:
        raise UserError("pathdelay already uses per-arc (per-pin) delays; drop --per-pin")
    if args.cell_models is not None and "pathdelay" not in cfg.semantics:
        raise UserError("--cell-models are the cell models of the pathdelay run; add "
                        "--semantics pathdelay or drop --cell-models")
    if args.out is not None:
        check_output_path(args.out, force=args.force)
    design = load_design(args.design)
    if args.per_pin is None:
        from dataclasses import replace

        from sim.plan import default_timing

        cfg = replace(cfg, per_pin=default_timing(design.annotation.model.kind)[1])
    out = args.out or Path("out") / "crosscheck" / design.name
    log = (lambda _m: None) if args.json else print
    log(f"crosscheck {design.folder} ({design.netlist.top}, "
        f"{design.annotation.model.kind} delays) -> {out}")
    runs = crosscheck(design.netlist, design.annotation, cfg, out, log=log, force=args.force,
                      title=str(design.folder), operands=design.operands())
    ok = all(r.passed for r in runs)
    if args.json:
        print((out / "crosscheck.json").read_text())
    else:
        print(format_runs(runs))
        glitches = sum(r.cell_model_glitches for r in runs)
        print(("PASS: engine is bit-exact with every simulator run" if not glitches else
               f"PASS: engine is bit-exact with every simulator run, except {glitches} "
               "captures that Icarus gives only with the library's multi-primitive cell "
               "models (zero-time glitches inside a cell; the same run on single-primitive "
               "models agrees)") if ok else
              "FAIL: the engine and a simulator disagree (see crosscheck.json)")
    return 0 if ok else 1


def _irrelevant(args: argparse.Namespace, flags: dict[str, str]) -> None:
    """Refuse flags (``{dest: why}``) that were given but do not apply."""
    for dest, why in flags.items():
        if getattr(args, dest) is not None:
            raise UserError(f"--{dest.replace('_', '-')} {why}")


def _full_pairs(text: str | None, width: int, signed: bool = True) -> tuple[int, ...]:
    """``--full-pairs 'a,b;a,b'`` as flat pair indices; operands must fit ``width`` bits."""
    from sim.tables import pair_index

    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    full: list[int] = []
    for item in (x.strip() for x in (text or "").split(";")):
        try:
            a, b = (int(v) for v in item.split(","))
        except ValueError:
            raise UserError(f"--full-pairs takes 'a,b;a,b' operands, not "
                            f"{item!r}") from None
        if not (lo <= a <= hi and lo <= b <= hi):
            raise UserError(f"--full-pairs operands of this {width}-bit design lie in "
                            f"{lo}..{hi}, not {item!r}")
        full.append(int(pair_index(a, b, width)))
    return tuple(full)


def _errtable(args: argparse.Namespace) -> int:
    from sim.atomic import check_output_path
    from sim.cluster import check_dask_address, dask_client
    from sim.design import load_design
    from sim.engine import PrevWeights, TimingEngine
    from sim.errtable import TableConfig, build_tables, multiplier_width, pair_width

    # every argument is checked before anything is written
    if args.mode == "exhaustive":
        _irrelevant(args, {"samples": "applies to --mode sample only",
                           "seed": "applies to --mode sample only"})
    else:
        _irrelevant(args, {"full_pairs": "applies to --mode exhaustive only"})
    if args.prev is None:
        _irrelevant(args, {"prev_kind": "applies with --prev FILE only"})
    if not args.period and not args.period_frac:
        raise UserError("Give at least one --period (ticks) or --period-frac")
    check_dask_address(args.dask)
    check_output_path(args.out, force=args.force, tables=True)
    from sim.histogram import read_prev_weights

    prev = (read_prev_weights(args.prev, args.prev_kind or "joint") if args.prev
            else PrevWeights())
    design = load_design(args.design)
    ops = design.operands()
    w = pair_width(design.netlist, ops)
    full: tuple[int, ...] = ()
    if w is None:  # more than two operands, or too wide: sampled transitions only
        if args.mode == "exhaustive":
            multiplier_width(design.netlist, ops)  # one line naming --mode sample
        if args.prev is not None:
            raise UserError(f"--prev weights previous operand pairs; {str(args.design)!r} "
                            f"({', '.join(ops.inputs)} -> {ops.p}) samples uniform "
                            "transitions: drop --prev")
        samples = args.samples or 1 << 16
    else:
        samples = args.samples or 64
        if samples > 4096:
            raise UserError(f"--samples draws previous pairs per current pair, 1..4096 for "
                            f"this two-operand design, not {samples}; use --mode exhaustive")
        # a shard holds every sampled transition of its pairs at once (~24 bytes each)
        if args.mode == "sample" and samples * args.shard_pairs > 1 << 24:
            raise UserError(f"--samples {samples} x --shard-pairs "
                            f"{args.shard_pairs} is more than 16,777,216 transitions per shard "
                            "(about 400 MB); lower --shard-pairs")
        prev.arrays(w)  # length, sign, NaN and an all-zero histogram: one line, now
        if args.full_pairs is not None:
            full = _full_pairs(args.full_pairs, w, ops.signed)
    periods = list(args.period)
    semantics, per_pin = _timing(args, design.annotation.model.kind)
    if args.period_frac:
        cp = TimingEngine(design.netlist, design.annotation, semantics=semantics,
                          per_pin=per_pin).critical_path
        periods += [max(1, round(f * cp)) for f in args.period_frac]
    cfg = TableConfig(periods=tuple(sorted(set(periods))), mode=args.mode,
                      semantics=semantics, per_pin=per_pin,
                      samples=samples, seed=args.seed or 0, prev=prev,
                      prev_source=args.prev or "uniform", shard_pairs=args.shard_pairs,
                      full_pairs=full, operands=ops)
    log = (lambda _m: None) if args.json else print
    with dask_client(args.dask) as client:
        tset = build_tables(design.netlist, design.annotation, cfg, args.out,
                            settings=design.settings(), client=client, force=args.force,
                            csv=args.csv, progress=not args.json, log=log)
    if args.json:
        print(json.dumps({"out": str(args.out), "summary": tset.summary.to_dict("records")},
                         indent=1))
    else:
        print(tset.summary.to_string(index=False))
        print(f"wrote {args.out}/: compressed_T*.parquet, weight_error_T*.csv, summary.csv, "
              "error_rate.png, meta.json" if tset.tables else f"wrote {args.out}/: "
              "summary.csv, report.md, error_rate.png, full_T*.parquet, meta.json")
    return 0


def _timing(args: argparse.Namespace, model_kind: str) -> tuple[Any, bool]:
    """``(semantics, per_pin)``: the user's, or the design's default (one line when the
    combination cannot run)."""
    from sim.plan import default_timing

    sem, per_pin = default_timing(model_kind)
    if args.semantics is not None and args.semantics != sem:
        sem, per_pin = args.semantics, False
    if args.per_pin is not None:
        per_pin = args.per_pin
    if per_pin and sem == "pathdelay":
        raise UserError("pathdelay already uses per-arc (per-pin) delays; drop --per-pin")
    return sem, per_pin


def _variation(args: argparse.Namespace) -> int:
    from sim.atomic import check_output_path
    from sim.cluster import check_dask_address, dask_client
    from sim.design import load_design
    from sim.variation import VariationConfig, build_variation

    cfg = VariationConfig(periods=tuple(sorted(set(args.period))), sigma=args.sigma,
                          sigma_global=args.sigma_global, samples=args.samples, seed=args.seed,
                          prev_samples=args.prev_samples, subticks=args.subticks,
                          semantics=args.semantics, center=args.center,
                          nominal=not args.no_nominal)
    check_dask_address(args.dask)
    check_output_path(args.out, force=args.force, tables=True)
    design = load_design(args.design)
    ops = design.operands()
    if not ops.signed or (ops.a, ops.b, ops.p) != ("a", "b", "p"):
        # Its tables and statistics still read outputs as signed products a*b of ports
        # a, b -> p; anything else would be silently misread.
        raise UserError("variation supports signed multipliers a, b -> p for now; "
                        f"{str(args.design)!r} is {'signed' if ops.signed else 'unsigned'} "
                        f"{ops.a}, {ops.b} -> {ops.p}")
    log = (lambda _m: None) if args.json else print
    with dask_client(args.dask) as client:
        res = build_variation(design.netlist, design.annotation, cfg, args.out,
                              settings=design.settings(), client=client, force=args.force,
                              progress=not args.json, log=log)
    if args.json:
        print(json.dumps({"out": str(args.out), "summary": res.summary.to_dict("records")},
                         indent=1))
    else:
        print(res.summary.to_string(index=False))
        print(f"wrote {args.out}/: compressed_T*.parquet, pair_stats_T*.parquet, samples.csv, "
              "summary.csv, variation.png, meta.json")
    return 0


def _stuckat(args: argparse.Namespace) -> int:
    from sim.atomic import check_output_path
    from sim.design import load_design
    from sim.stuckat import StuckAtConfig, parse_faults, run_stuckat

    nets = None
    if args.nets is not None:
        nets = tuple(n.strip() for n in args.nets.split(",") if n.strip())
        if not nets:
            raise UserError(f"--nets takes a comma list of net names, not {args.nets!r}")
    cfg = StuckAtConfig(nets=nets, rank_by=args.rank_by, top=args.top,
                        tables=parse_faults(args.tables), tables_top=args.tables_top)
    check_output_path(args.out, force=args.force)
    design = load_design(args.design)
    log = (lambda _m: None) if args.json else print
    res = run_stuckat(design.netlist, design.annotation, cfg, args.out,
                      settings=design.settings(), progress=not args.json, log=log,
                      force=args.force, operands=design.operands())
    if args.json:
        top = res.frame.head(args.top)
        print(json.dumps({"out": str(args.out), "faults": res.meta["faults"],
                          "undetectable_faults": res.meta["undetectable_faults"],
                          "top": json.loads(top.to_json(orient="records")),
                          "tables": {f"{n}:{v}": str(p) for (n, v), p in res.tables.items()}},
                         indent=1))
    else:
        print((args.out / "report.md").read_text())
        print(f"wrote {args.out}/: stuckat.csv, report.md, top_faults.png, meta.json"
              + (f", {len(res.tables)} tables in tables/" if res.tables else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
        elif args.command == "info":
            return _info(args)
        elif args.command == "demo":
            from .demo import run_demo

            run_demo(args.out, transitions=args.transitions, seed=args.seed,
                     studies=not args.no_studies, force=args.force,
                     table_samples=args.table_samples)
        elif args.command == "crosscheck":
            return _crosscheck(args)
        elif args.command == "errtable":
            return _errtable(args)
        elif args.command == "variation":
            return _variation(args)
        elif args.command == "stuckat":
            return _stuckat(args)
        elif hasattr(args, "func"):
            return int(args.func(args))
    except user_errors() as exc:
        # One line, always: a multi-line message is folded, never cut.
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"flipclock: error: {text or type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flipclock: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours, and no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
