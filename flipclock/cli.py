"""The ``flipclock`` command line: the single composition root that wires hw, sim and nnmap.

User errors print one line (``flipclock: error: ...``) and exit with status 2; bugs keep
their traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import UserError, user_errors

__all__ = ["main"]

OSU018 = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    return value


def _studies() -> list[Any]:
    """The registered study modules (:mod:`flipclock.studies`), each adding a command group."""
    from .studies import load_studies

    return load_studies()


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

    c = sub.add_parser(
        "crosscheck", help="prove the timing engine bit-exact against Icarus and Verilator",
        description="Run the same transitions through cocotb on Icarus and Verilator and "
        "through the timing engine, at periods from --low of the critical path up to it, and "
        "count every captured product that differs. Exit status 1 if any does.")
    c.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    c.add_argument("--transitions", type=_positive_int, default=10_000,
                   help="random transitions (default 10000), plus --latest that settle last")
    c.add_argument("--latest", type=int, default=16,
                   help="extra transitions that settle last (default 16)")
    c.add_argument("--periods", type=_positive_int, default=5,
                   help="number of capture periods (default 5)")
    c.add_argument("--low", type=float, default=0.6,
                   help="shortest period as a fraction of the critical path (default 0.6)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--simulators", default="icarus,verilator",
                   help="comma list (default icarus,verilator)")
    c.add_argument("--semantics", default="inertial,transport",
                   help="comma list (default inertial,transport; transport on Icarus only)")
    c.add_argument("--per-pin", action="store_true", help="use per-pin (arc) delays")
    c.add_argument("--out", type=Path, default=None,
                   help="folder for simulator builds and the report "
                   "(default out/crosscheck/DESIGN)")
    c.add_argument("--json", action="store_true", help="print the results as JSON")

    e = sub.add_parser(
        "errtable", help="error tables of a multiplier at shortened clock periods",
        description="Simulate a multiplier with the timing engine at shortened clock periods "
        "and write Tables I-III of Wu et al.: full rows (sampled, or chosen current pairs), the "
        "compressed table (per current pair, each wrong output with its probability) and the "
        "per-weight error probability, as Parquet (and CSV), with a summary and a plot. Work "
        "is split in shards written as they finish: run the same command again to resume.")
    e.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    e.add_argument("--period", type=int, action="append", default=[],
                   help="capture period in ticks (repeat for several)")
    e.add_argument("--period-frac", default=None,
                   help="periods as fractions of the critical path, e.g. 0.6,0.7,0.8,0.9,1")
    e.add_argument("--mode", default="exhaustive", choices=["exhaustive", "sample"])
    e.add_argument("--samples", type=_positive_int, default=64,
                   help="sample mode: previous pairs drawn per current pair (default 64)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--semantics", default="inertial", choices=["inertial", "transport"])
    e.add_argument("--per-pin", action="store_true", help="use per-pin (arc) delays")
    e.add_argument("--prev", default=None, metavar="FILE",
                   help="previous-input histogram (.npy or one-column .csv); uniform if absent")
    e.add_argument("--prev-kind", default="joint",
                   choices=["joint", "stationary_a", "stationary_b"],
                   help="joint: weights over all previous pairs; stationary_a/b: that operand "
                   "keeps its value and the histogram is over the other one")
    e.add_argument("--full-pairs", default="",
                   help="exhaustive: current pairs 'a,b;a,b' whose full Table I rows are stored")
    e.add_argument("--shard-pairs", type=_positive_int, default=2048,
                   help="current pairs per shard (default 2048)")
    e.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run shards on a Dask cluster: a scheduler address, or 'local'")
    e.add_argument("--csv", action="store_true", help="also write CSV exports")
    e.add_argument("--force", action="store_true",
                   help="discard shards of other settings found in --out")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    e.add_argument("--json", action="store_true", help="print the summary as JSON")

    for module in _studies():
        module.register(sub)

    v = sub.add_parser(
        "variation", help="Monte Carlo error tables under per-gate delay variation",
        description="Draw --samples chips with Gaussian per-gate delays (sigma as a fraction "
        "of the nominal delay), simulate each at the periods and average: a compressed table "
        "per period (usable like a nominal one, with regulation 1), per-pair CIs over samples, "
        "per-sample error rates and critical paths, a summary beside the paper's regulated "
        "nominal rates, and a plot. One shard per sample: run again to resume or add samples.")
    v.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    v.add_argument("--period", type=int, action="append", default=[], required=True,
                   help="capture period in design ticks (repeat for several)")
    v.add_argument("--sigma", type=float, required=True,
                   help="per-gate delay standard deviation, fraction of nominal (0.05 = 5 %%)")
    v.add_argument("--sigma-global", type=float, default=0.0,
                   help="die-to-die standard deviation shared by all gates (default 0)")
    v.add_argument("--samples", type=_positive_int, default=20,
                   help="Monte Carlo samples (default 20)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--prev-samples", type=int, default=None, metavar="K",
                   help="K random previous pairs per current pair and sample (default: all)")
    v.add_argument("--subticks", type=int, default=1,
                   help="simulation ticks per design tick, to resolve small variation of short "
                   "delays (about 1/sigma for unit delays; default 1)")
    v.add_argument("--center", default="ticks", choices=["ticks", "exact"],
                   help="vary around the tick delays (default) or the unrounded delays")
    v.add_argument("--semantics", default="inertial", choices=["inertial", "transport"])
    v.add_argument("--no-nominal", action="store_true",
                   help="skip the nominal chip used for comparison")
    v.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="one task per sample on a Dask cluster: a scheduler address, or 'local'")
    v.add_argument("--force", action="store_true",
                   help="discard shards of other settings found in --out")
    v.add_argument("--out", type=Path, required=True, help="output folder")
    v.add_argument("--json", action="store_true", help="print the summary as JSON")

    s = sub.add_parser(
        "stuckat", help="rank the stuck-at faults of a multiplier by the damage they do",
        description="Stick every net (input bits and cell outputs) at 0 and at 1, evaluate the "
        "settled products of all operand pairs, and write a ranked CSV, a Markdown report, a "
        "bar chart of the most damaging faults and, on request, their compressed tables.")
    s.add_argument("design", type=Path, help="a build folder (flipclock build booth ...)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--top", type=_positive_int, default=20,
                   help="faults in the report and the plot (default 20)")
    s.add_argument("--rank-by", default="mean_abs_error",
                   choices=["mean_abs_error", "error_rate", "max_abs_error"])
    s.add_argument("--nets", default=None, help="comma list of nets to fault (default: all)")
    s.add_argument("--tables", default="", metavar="NET:V,...",
                   help="write the compressed tables of these faults, e.g. 'p[15]:0,p[15]:1'")
    s.add_argument("--tables-top", type=int, default=0, metavar="K",
                   help="also write the tables of the K best-ranked faults")
    s.add_argument("--json", action="store_true", help="print the top faults as JSON")

    d = sub.add_parser("demo", help="the main job end to end on the embedded default",
                       description="Build the default 8-bit Booth multiplier, cross-check the "
                       "timing engine against Icarus, build exhaustive error tables at five "
                       "clock periods, and run the network studies in --quick form on them.")
    d.add_argument("--out", type=Path, default=Path("out/demo"))
    d.add_argument("--transitions", type=_positive_int, default=1000,
                   help="cross-check transitions (default 1000)")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--no-studies", action="store_true", help="skip the network studies")
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


def _crosscheck(args: argparse.Namespace) -> int:
    from sim.crosscheck import CrosscheckConfig, crosscheck, format_runs

    from .design import load_design

    design = load_design(args.design)
    cfg = CrosscheckConfig(
        transitions=args.transitions, periods=args.periods, low=args.low, seed=args.seed,
        simulators=tuple(s.strip() for s in args.simulators.split(",") if s.strip()),
        semantics=tuple(s.strip() for s in args.semantics.split(",") if s.strip()),
        per_pin=args.per_pin, latest=args.latest)
    out = args.out or Path("out") / "crosscheck" / design.name
    log = (lambda _m: None) if args.json else print
    log(f"crosscheck {design.folder} ({design.netlist.top}, "
        f"{design.annotation.model.kind} delays) -> {out}")
    runs = crosscheck(design.netlist, design.annotation, cfg, out, log=log)
    table = format_runs(runs)
    (out / "report.md").write_text(f"# Crosscheck of {design.folder}\n\n{table}\n")
    ok = all(r.passed for r in runs)
    if args.json:
        print((out / "crosscheck.json").read_text())
    else:
        print(table)
        print("PASS: engine is bit-exact with every simulator run" if ok else
              "FAIL: the engine and a simulator disagree (see crosscheck.json)")
    return 0 if ok else 1


def _read_prev(path: str, kind: str) -> Any:
    import numpy as np

    from sim.engine import PrevWeights

    p = Path(path)
    if not p.is_file():
        raise UserError(f"Previous-input histogram {path!r} does not exist")
    try:
        data = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=1)
    except (OSError, ValueError) as exc:
        raise UserError(f"Cannot read previous-input histogram {path!r} ({exc}); give a .npy "
                        "array or a one-column CSV of weights") from None
    return PrevWeights(kind, tuple(float(x) for x in np.asarray(data, float).ravel()))


@contextlib.contextmanager
def _dask_client(address: str | None) -> Iterator[Any]:
    """A Dask client for ``--dask ADDRESS`` (``local`` starts a local cluster), or None."""
    if not address:
        yield None
        return
    from distributed import Client, LocalCluster

    try:
        client = (Client(LocalCluster(processes=True, threads_per_worker=1))
                  if address == "local" else Client(address, timeout=10))
    except OSError as exc:
        raise UserError(f"Cannot reach the Dask scheduler {address!r} ({exc}); check the "
                        "address or use --dask local") from None
    try:
        yield client
    finally:
        client.close()


def _errtable(args: argparse.Namespace) -> int:
    from sim.engine import PrevWeights, TimingEngine
    from sim.errtable import TableConfig, build_tables
    from sim.tables import pair_index

    from .design import load_design

    design = load_design(args.design)
    periods = list(args.period)
    if args.period_frac:
        cp = TimingEngine(design.netlist, design.annotation, semantics=args.semantics,
                          per_pin=args.per_pin).critical_path
        try:
            fracs = [float(x) for x in args.period_frac.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--period-frac takes numbers like 0.6,0.8,1, not "
                            f"{args.period_frac!r}") from None
        periods += [max(1, round(f * cp)) for f in fracs]
    if not periods:
        raise UserError("Give at least one --period (ticks) or --period-frac")
    w = len(design.netlist.inputs.get("a", []))
    full: list[int] = []
    for item in filter(None, (x.strip() for x in args.full_pairs.split(";"))):
        try:
            a, b = (int(v) for v in item.split(","))
        except ValueError:
            raise UserError(f"--full-pairs takes 'a,b;a,b' signed operands, not {item!r}") from None
        full.append(int(pair_index(a, b, w)))
    prev = _read_prev(args.prev, args.prev_kind) if args.prev else PrevWeights()
    cfg = TableConfig(periods=tuple(sorted(set(periods))), mode=args.mode,
                      semantics=args.semantics, per_pin=args.per_pin, samples=args.samples,
                      seed=args.seed, prev=prev, prev_source=args.prev or "uniform",
                      shard_pairs=args.shard_pairs, full_pairs=tuple(full))
    log = (lambda _m: None) if args.json else print
    with _dask_client(args.dask) as client:
        tset = build_tables(design.netlist, design.annotation, cfg, args.out,
                            settings=design.settings(), client=client, force=args.force,
                            csv=args.csv, progress=not args.json, log=log)
    if args.json:
        print(json.dumps({"out": str(args.out), "summary": tset.summary.to_dict("records")},
                         indent=1))
    else:
        print(tset.summary.to_string(index=False))
        print(f"wrote {args.out}/: compressed_T*.parquet, weight_error_T*.csv, summary.csv, "
              "error_rate.png, meta.json")
    return 0


def _variation(args: argparse.Namespace) -> int:
    from sim.variation import VariationConfig, build_variation

    from .design import load_design

    design = load_design(args.design)
    cfg = VariationConfig(periods=tuple(sorted(set(args.period))), sigma=args.sigma,
                          sigma_global=args.sigma_global, samples=args.samples, seed=args.seed,
                          prev_samples=args.prev_samples, subticks=args.subticks,
                          semantics=args.semantics, center=args.center,
                          nominal=not args.no_nominal)
    log = (lambda _m: None) if args.json else print
    with _dask_client(args.dask) as client:
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
    from sim.stuckat import StuckAtConfig, parse_faults, run_stuckat

    from .design import load_design

    design = load_design(args.design)
    nets = None
    if args.nets is not None:
        nets = tuple(n.strip() for n in args.nets.split(",") if n.strip())
    cfg = StuckAtConfig(nets=nets, rank_by=args.rank_by, top=args.top,
                        tables=parse_faults(args.tables), tables_top=args.tables_top)
    log = (lambda _m: None) if args.json else print
    res = run_stuckat(design.netlist, design.annotation, cfg, args.out,
                      settings=design.settings(), progress=not args.json, log=log)
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
            info = _build(args)
            print(json.dumps(info, indent=2) if args.json
                  else f"wrote {args.out}\n" + format_info(info))
        elif args.command == "info":
            info = _load_info(args.folder)
            print(json.dumps(info, indent=2) if args.json else format_info(info))
        elif args.command == "demo":
            from .demo import run_demo

            run_demo(args.out, transitions=args.transitions, seed=args.seed,
                     studies=not args.no_studies)
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
        print(f"flipclock: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flipclock: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
