"""``flipclock demo``: the main job end to end on the embedded default.

1. build the default 8-bit Booth multiplier (Dadda tree, ripple adder, unit delays);
2. cross-check the timing engine against Icarus through cocotb (inertial and transport
   delays, random transitions plus the ones that settle last, five periods from 60 % of
   the critical path up to it);
3. build the exhaustive error tables (all 2^32 previous x current operand pairs) at five
   periods with the engine, and plot the error rate;
4. run every network study that is installed in its ``--quick`` form (timing errors with
   weight distribution and error-aware quantization -- on the tables of step 3, passed to
   its ``quick_demo(out, tables=...)``; FlatENN SRAM faults; vulnerability-based hardening);
5. write ``report.md`` linking every result.

Each step writes its own folder under ``--out``; the error tables resume if interrupted.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

from sim.atomic import atomic_text, check_output_path, output_folder
from sim.design import BoothBuild, load_design

from .errors import UserError
from .info import format_info
from .rtlgen import build_design
from .studies import load_studies

__all__ = ["run_demo", "study_demo"]


def run_demo(out: Path, *, transitions: int = 1000, seed: int = 1,
             studies: bool = True, force: bool = False,
             table_samples: int | None = None) -> dict[str, Any]:
    """Run the demo into folder ``out``; return the summary written to ``settings.json``.

    ``table_samples`` builds sampled tables (that many previous pairs per current pair)
    instead of the exhaustive ones: a quick look, and what the README test runs.
    """
    if transitions < 1:
        raise UserError(f"--transitions must be a positive integer, not {transitions}")
    if table_samples is not None and table_samples < 1:
        raise UserError(f"--table-samples must be a positive integer, not {table_samples}")
    check_output_path(Path(out), force=force)
    with output_folder(Path(out), force=force) as folder:
        return _run(folder, transitions, seed, studies, table_samples)


def study_demo(mod: Any, out: Path, tables: Path) -> list[str]:
    """Run ``mod.quick_demo`` into ``out``; a study whose ``quick_demo`` takes ``tables``
    (the timing study) gets the demo's error-table folder, so it runs on those tables."""
    if "tables" in inspect.signature(mod.quick_demo).parameters:
        return list(mod.quick_demo(out, tables=tables))
    return list(mod.quick_demo(out))


def _run(out: Path, transitions: int, seed: int, studies: bool,
         table_samples: int | None) -> dict[str, Any]:
    from sim.crosscheck import CrosscheckConfig, crosscheck, format_runs
    from sim.errtable import TableConfig, build_tables

    t_start = time.perf_counter()
    # Every registered study with a quick form (flipclock.studies): one step each.
    quick = [m for m in load_studies() if hasattr(m, "quick_demo")] if studies else []
    steps = 3 + len(quick)
    print(f"[1/{steps}] building the 8-bit Booth multiplier (Dadda tree, ripple adder, unit "
          "delays)", flush=True)
    info = build_design(BoothBuild(), out / "booth8")
    print(format_info(info))
    design = load_design(out / "booth8")
    critical = int(info["critical_path"]["ticks"])

    print(f"[2/{steps}] cross-checking the timing engine against Icarus (cocotb): "
          f"{transitions} random transitions + 16 that settle last", flush=True)
    cfg = CrosscheckConfig(transitions=transitions, periods=5, seed=seed,
                           simulators=("icarus",), semantics=("inertial", "transport"))
    runs = crosscheck(design.netlist, design.annotation, cfg, out / "crosscheck")
    xc_table = format_runs(runs)
    if not all(r.passed for r in runs):
        raise UserError(f"The engine disagrees with Icarus (see {out / 'crosscheck'}); "
                        "please report this")
    print(xc_table)

    fracs = (0.6, 0.7, 0.8, 0.9, 1.0)
    periods = tuple(sorted({max(1, round(f * critical)) for f in fracs}))
    if table_samples is None:
        kind = "Exhaustive error tables (2^32 transitions per period)"
        tcfg = TableConfig(periods=periods)
    else:
        kind = (f"Sampled error tables ({table_samples} previous pairs per current pair, "
                f"seed {seed})")
        tcfg = TableConfig(periods=periods, mode="sample", samples=table_samples, seed=seed)
    print(f"[3/{steps}] {kind[0].lower() + kind[1:]}, periods {list(periods)} (timing engine)",
          flush=True)
    t0 = time.perf_counter()
    tset = build_tables(design.netlist, design.annotation, tcfg, out / "tables",
                        settings=design.settings())
    table_s = time.perf_counter() - t0
    print(tset.summary.to_string(index=False))

    results: list[tuple[str, str, list[str]]] = []
    for k, mod in enumerate(quick, start=4):
        title = getattr(mod, "TITLE", mod.NAME)
        folder = mod.__name__.rpartition(".")[2]
        print(f"[{k}/{steps}] {title} (--quick)", flush=True)
        lines = study_demo(mod, out / folder, out / "tables")
        for line in lines:
            print(f"      {line}")
        results.append((title, folder, lines))

    summary_rows = ["| period (ticks) | of critical path | wrong products | pairs with errors |",
                    "|---:|---:|---:|---:|"]
    for r in tset.summary.itertuples():
        summary_rows.append(f"| {r.period} | {100 * r.period / critical:.0f} % | "
                            f"{100 * r.error_rate:.4f} % | {r.pairs_with_errors} |")
    report = [
        "# flipclock demo", "",
        f"Design: 8-bit signed radix-4 Booth multiplier, {info['n_cells']} cells, logic depth "
        f"{info['logic_depth']}, critical path {critical} ticks (unit delays); netlist "
        f"`{design.netlist.content_hash[:16]}`.", "",
        "## Engine cross-check (cocotb on Icarus)", "", xc_table, "",
        f"## {kind}", "",
        f"Built in {table_s:.1f} s ([tables/](tables/), [summary](tables/summary.csv)).", "",
        *summary_rows, "", "![error rate](tables/error_rate.png)", "",
    ]
    for title, folder, lines in results:
        report += [f"## {title}", "", *(f"- {line}" for line in lines), "",
                   f"Full report: [{folder}/]({folder}/)", ""]
    settings = {"design": info["config"], **design.settings(), "seed": seed,
                "crosscheck_transitions": transitions, "periods": list(periods),
                "critical_path_ticks": critical, "table_seconds": round(table_s, 2),
                "table_samples": table_samples,
                "studies": [f for _, f, _ in results],
                "seconds": round(time.perf_counter() - t_start, 1)}
    atomic_text(out / "settings.json", json.dumps(settings, indent=2) + "\n")
    atomic_text(out / "report.md", "\n".join(report))
    print(f"wrote {out}/report.md ({settings['seconds']} s)")
    return settings
