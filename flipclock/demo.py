"""``flipclock demo``: the main job end to end on the embedded default design.

1. build the default 8-bit Booth multiplier (Dadda tree, ripple adder, unit delays);
2. show its gate counts, logic depth and critical path;
3. simulate shortened clocks on Icarus through cocotb: random transitions plus the ones
   that settle last (found with the reference waveform simulator), captured at periods
   from 50 % of the critical path up to it;
4. write the error rate per period as CSV, a PNG plot, a Markdown report and the settings.

Later capabilities (error tables, network studies) extend this module.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .build import BoothBuild, build_booth

__all__ = ["run_demo", "wilson_interval"]


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n`` (95 % by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _plot(rows: list[dict[str, Any]], critical: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    periods = [r["period_ticks"] for r in rows]
    rate = [100 * r["error_rate"] for r in rows]
    lo = [100 * (r["error_rate"] - r["ci_low"]) for r in rows]
    hi = [100 * (r["ci_high"] - r["error_rate"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.errorbar(periods, rate, yerr=[lo, hi], marker="o", capsize=3)
    ax.axvline(critical, color="grey", linestyle="--", label=f"STA critical path ({critical})")
    ax.set_xlabel("clock period (ticks)")
    ax.set_ylabel("wrong products captured (%)")
    ax.set_title("8-bit Booth multiplier, shortened clock (Icarus, inertial delays)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def run_demo(out: Path, *, transitions: int = 2000, seed: int = 1) -> dict[str, Any]:
    """Run the demo into folder ``out``; return the summary written to ``settings.json``."""
    from sim.delay import DelayAnnotation
    from sim.reader import read_verilog
    from sim.runner import run_cocotb
    from sim.wavesim import find_latest_transitions

    from .cli import format_info
    from .errors import UserError

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create {str(out)!r} ({exc.strerror}); choose another --out") \
            from None
    t_start = time.perf_counter()
    print("[1/4] building the 8-bit Booth multiplier (Dadda tree, ripple adder, unit delays)")
    design = out / "booth8"
    info = build_booth(BoothBuild(), design)
    print(format_info(info))

    from sim.cells import DEFAULT_LIBRARY

    netlist = read_verilog(design / "gate.v", DEFAULT_LIBRARY)
    ann = DelayAnnotation.read(design / "delays.json")
    ann.check_matches(netlist)
    critical = int(info["critical_path"]["ticks"])

    print("[2/4] searching transitions that settle last (reference waveform simulator)")
    latest, settle = find_latest_transitions(netlist, ann.delays, horizon=critical, seed=seed,
                                             batches=8, keep=4)
    print(f"      latest settling found: {int(settle[0])} ticks (critical path {critical})")
    rng = np.random.default_rng(seed)
    rand = rng.integers(0, 256, size=(transitions, 4))
    trans = np.concatenate([latest, rand]).astype(np.int64)
    signed = np.where(trans >= 128, trans - 256, trans)
    periods = sorted({max(1, round(critical * f)) for f in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)}
                     | {critical - 1, critical})

    print(f"[3/4] simulating {len(trans)} transitions x {len(periods)} clock periods on "
          "Icarus (cocotb)")
    t_sim = time.perf_counter()
    build = run_cocotb(
        "icarus", [design / "sim_inertial.v"], "booth", "sim.tb.timing",
        out / "sim_icarus", timing=True,
        config={"width": 8, "transitions": signed.tolist(), "periods": periods,
                "settle": critical + 8, "critical_path": critical},
    )
    sim_s = time.perf_counter() - t_sim
    res = np.load(build / "timing.npz")
    exact = (signed[:, 2] * signed[:, 3])[:, None]
    wrong = res["captured"] != exact

    print("[4/4] writing results")
    rows: list[dict[str, Any]] = []
    for k, period in enumerate(periods):
        n_wrong = int(wrong[:, k].sum())
        lo, hi = wilson_interval(n_wrong, len(trans))
        rows.append({"period_ticks": period, "period_fraction": round(period / critical, 4),
                     "transitions": len(trans), "wrong": n_wrong,
                     "error_rate": n_wrong / len(trans), "ci_low": lo, "ci_high": hi})
    header = list(rows[0])
    csv = ",".join(header) + "\n" + "".join(
        ",".join(str(r[h]) for h in header) + "\n" for r in rows)
    _atomic_write(out / "shortened_clock.csv", csv)
    _plot(rows, critical, out / "shortened_clock.png")
    settings = {
        "design": info["config"], "netlist_hash": info["hashes"]["netlist"],
        "delays_hash": info["hashes"]["delays"], "delay_model": info["delay_model"],
        "semantics": "inertial", "simulator": "icarus", "seed": seed,
        "random_transitions": transitions, "latest_transitions": latest.tolist(),
        "latest_settle_ticks": settle.tolist(), "periods": periods,
        "critical_path_ticks": critical, "simulation_seconds": round(sim_s, 2),
        "sampling": "captured(T) = settled output after all events at or before launch + T",
    }
    _atomic_write(out / "settings.json", json.dumps(settings, indent=2) + "\n")
    table = ["| period (ticks) | of critical path | wrong / transitions | error rate | 95 % CI |",
             "|---:|---:|---:|---:|---|"]
    for r in rows:
        table.append(f"| {r['period_ticks']} | {100 * r['period_fraction']:.0f} % | "
                     f"{r['wrong']} / {r['transitions']} | {100 * r['error_rate']:.2f} % | "
                     f"{100 * r['ci_low']:.2f}–{100 * r['ci_high']:.2f} % |")
    report = ["# flipclock demo: shortened clock on the 8-bit Booth multiplier", "",
              f"Netlist `{info['hashes']['netlist'][:16]}`: {info['n_cells']} cells, logic "
              f"depth {info['logic_depth']}, critical path {critical} ticks (unit delays).",
              f"{len(trans)} transitions ({transitions} random, seed {seed}, plus "
              f"{len(latest)} that settle last) simulated on Icarus through cocotb in "
              f"{sim_s:.1f} s.", "", *table, "", "![error rate](shortened_clock.png)", ""]
    _atomic_write(out / "report.md", "\n".join(report))
    print("\n".join(table))
    print(f"wrote {out}/report.md, shortened_clock.csv, shortened_clock.png, settings.json "
          f"({time.perf_counter() - t_start:.1f} s)")
    return settings
