"""Benchmarks (``nox -s bench``): figures printed and written to a CSV, never asserted.

Measured on the committed default design (8-bit Booth, Dadda tree, ripple adder):

* synthesis wall time (built-in gates and OSU 0.18 um cells);
* shortened-clock simulation throughput, transitions per second, on Icarus and on
  Verilator through cocotb (inertial delays, several capture periods per transition);
* the reference numpy waveform simulator's throughput on the same netlist.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    import hw
    from sim.cells import DEFAULT_LIBRARY
    from sim.delay import DelayAnnotation
    from sim.reader import read_verilog
    from sim.runner import run_cocotb
    from sim.sta import critical_path
    from sim.synth import synthesize
    from sim.wavesim import simulate_transitions

    from .defaults import OSU018, RTL_DIR

    p = argparse.ArgumentParser(prog="python -m flipclock.bench", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("out/bench"))
    p.add_argument("--transitions", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []

    def record(name: str, value: float, unit: str, note: str = "") -> None:
        rows.append({"benchmark": name, "value": round(value, 4), "unit": unit, "note": note})
        print(f"{name:<44} {value:>14,.2f} {unit:<16} {note}")

    rtl = hw.to_verilog(hw.BoothMultiplier(), name="booth")
    _, s = _timed(synthesize, rtl, "booth")
    record("synthesis booth8 (fcgates)", s, "s")
    if Path(OSU018).is_file():
        _, s = _timed(synthesize, rtl, "booth", liberty=OSU018)
        record("synthesis booth8 (OSU018, abc)", s, "s")

    design = RTL_DIR / "booth8"
    netlist = read_verilog(design / "gate.v", DEFAULT_LIBRARY)
    ann = DelayAnnotation.read(design / "delays.json")
    crit = critical_path(netlist, ann).ticks
    rng = np.random.default_rng(args.seed)
    n = args.transitions
    trans = rng.integers(-128, 128, size=(n, 4))
    periods = sorted({max(1, round(crit * f)) for f in (0.6, 0.7, 0.8, 0.9, 1.0)})
    config = {"width": 8, "transitions": trans.tolist(), "periods": periods,
              "settle": crit + 8, "critical_path": crit}
    captured: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sim_name in ("icarus", "verilator"):
            t = time.perf_counter()
            build = run_cocotb(sim_name, [design / "sim_inertial.v"], "booth", "sim.tb.timing",
                               Path(tmp) / sim_name, timing=True, config=config)
            total = time.perf_counter() - t
            captured[sim_name] = np.load(build / "timing.npz")["captured"]
            record(f"{sim_name} shortened clock (build + run)", n / total, "transitions/s",
                   f"{n} transitions x {len(periods)} periods in {total:.1f} s")
    same = bool((captured["icarus"] == captured["verilator"]).all())
    record("icarus == verilator captures", float(same), "bool", "bit-exact agreement")
    big = 1 << 16
    ub = rng.integers(0, 256, size=(big, 4))
    _, s = _timed(simulate_transitions, netlist, ann.delays, {"a": ub[:, 0], "b": ub[:, 1]},
                  {"a": ub[:, 2], "b": ub[:, 3]}, crit)
    record("numpy reference waveform sim (transport)", big / s, "transitions/s",
           f"{big} transitions, all {crit + 2} ticks")
    path = args.out / "bench.csv"
    tmp_path = path.with_name(".bench.csv.tmp")
    with open(tmp_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["benchmark", "value", "unit", "note"])
        w.writeheader()
        w.writerows(rows)
        f.write(f"# machine: {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} cpus, python {platform.python_version()}\n")
    os.replace(tmp_path, path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
