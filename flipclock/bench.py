"""Benchmarks (``nox -s bench``): figures printed and written to a CSV, never asserted.

Sections (``--only`` picks some; all by default), measured on the committed designs:

``sims``
    Shortened-clock throughput, transitions per second, of the timing engine, Icarus and
    Verilator (cocotb) on the same netlist, delays and transitions (inertial); the
    simulators' rate is the marginal one (two sample sizes, so their build time drops out),
    and the captured values of all three are compared.
``kyupy``
    The engine against kyupy's ``WaveSim`` (``sim.bench_kyupy``; needs ``pip install
    kyupy==0.0.5``, skipped with a note when absent).
``exhaustive``
    Wall time of the exhaustive 2^32-transition table of the 8-bit multiplier: one
    period, six periods in one pass, and the Liberty (OSU 0.18 um) netlist at one period;
    peak memory (max RSS of a child process running it).
``peak``
    Gate evaluations per second (one cell function on one 64-bit word of transitions, one
    tick) against the machine's measured peak of simple 64-bit operations (AVX2 AND/XOR
    chains on registers, all cores).
``nn``
    Error-injected INT8 LeNet-5 inference vs clean INT8 inference (``nnmap.bench``), and a
    4-bit LeNet-5 SRAM fault trial vs a clean inference (``flipclock flatenn bench``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.atomic import atomic_frame, atomic_json

__all__ = ["main", "peak_word_ops"]

SECTIONS = ("sims", "kyupy", "exhaustive", "peak", "nn")

_PEAK_C = r"""
#include <stdint.h>
typedef uint64_t V __attribute__((vector_size(32)));
/* 8 independent chains of 2 ops each per iteration: n iterations = 16 n vector ops. */
void peak(long n, V* out) {
  V a0 = out[0], a1 = out[1], a2 = out[2], a3 = out[3], a4 = out[4], a5 = out[5];
  V a6 = out[6], a7 = out[7], k = out[8], m = out[9];
  for (long i = 0; i < n; i++) {
    a0 = (a0 & k) ^ m; a1 = (a1 & k) ^ m; a2 = (a2 & k) ^ m; a3 = (a3 & k) ^ m;
    a4 = (a4 & k) ^ m; a5 = (a5 & k) ^ m; a6 = (a6 & k) ^ m; a7 = (a7 & k) ^ m;
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
                     "+x"(a6), "+x"(a7));
  }
  out[0] = a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}
"""


def peak_word_ops(seconds: float = 1.0, threads: int | None = None) -> float:
    """Measured peak of simple 64-bit operations per second (AVX2, all threads)."""
    from concurrent.futures import ThreadPoolExecutor

    from sim.engine import default_threads
    from sim.kernel import compile_kernel

    lib = compile_kernel(_PEAK_C)
    threads = threads or default_threads()
    n = 1 << 22
    bufs = [np.ones(40, np.uint64) for _ in range(threads)]

    def run(buf: np.ndarray) -> None:
        lib.peak(ctypes.c_long(n), buf.ctypes.data_as(ctypes.c_void_p))

    run(bufs[0])  # warm up
    reps = 0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        while time.perf_counter() - t0 < seconds:
            list(pool.map(run, bufs))
            reps += 1
    dt = time.perf_counter() - t0
    return reps * threads * n * 16 * 4 / dt  # 16 vector ops of 4 words per iteration


class _Bench:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: list[dict[str, Any]] = []

    def record(self, section: str, name: str, value: float, unit: str, note: str = "") -> None:
        self.rows.append({"section": section, "benchmark": name, "value": float(value),
                          "unit": unit, "note": note})
        print(f"{name:<52} {value:>16,.3f} {unit:<18} {note}", flush=True)

    def write(self) -> Path:
        path = self.out / "bench.csv"
        atomic_frame(pd.DataFrame(self.rows, columns=["section", "benchmark", "value", "unit",
                                                      "note"]), path)
        meta = {"machine": platform.processor() or platform.machine(),
                "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()}
        atomic_json(self.out / "bench_meta.json", meta)
        return path


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def _design(name: str) -> Any:
    from sim.design import load_design

    from .defaults import RTL_DIR

    return load_design(RTL_DIR / name)


def bench_sims(b: _Bench, n_small: int, n_large: int, seed: int) -> None:
    from sim.crosscheck import crosscheck_periods
    from sim.engine import TimingEngine
    from sim.runner import run_cocotb
    from sim.writer import write_sim_verilog

    d = _design("booth8")
    eng = TimingEngine(d.netlist, d.annotation, semantics="inertial")
    cp = eng.critical_path
    periods = crosscheck_periods(cp, 5)
    rng = np.random.default_rng(seed)
    trans = rng.integers(-128, 128, size=(n_large, 4))
    captured: dict[str, np.ndarray] = {}
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "dut.v"
        src.write_text(write_sim_verilog(d.netlist, d.annotation.delays, semantics="inertial"))
        for sim in ("icarus", "verilator"):
            secs = []
            for n in (n_small, n_large):
                build = Path(tmp) / f"{sim}-{n}"
                _, s = _timed(run_cocotb, sim, [src], d.netlist.top, "sim.tb.timing", build,
                              timing=True, config={"width": 8, "transitions":
                                                   trans[:n].tolist(), "periods": periods,
                                                   "settle": cp + 8})
                secs.append(s)
            captured[sim] = np.load(build / "timing.npz")["captured"]
            rates[sim] = (n_large - n_small) / max(secs[1] - secs[0], 1e-9)
            b.record("sims", f"{sim} (cocotb, inertial, {len(periods)} periods)", rates[sim],
                     "transitions/s", f"marginal over {n_small}->{n_large}; "
                     f"{secs[1]:.1f} s for {n_large} incl. build")
    big = 1 << 20
    tb = rng.integers(-128, 128, size=(big, 4))
    eng.capture({"a": tb[:1024, 0], "b": tb[:1024, 1]}, {"a": tb[:1024, 2], "b": tb[:1024, 3]},
                periods)
    _, s = _timed(eng.capture, {"a": tb[:, 0], "b": tb[:, 1]}, {"a": tb[:, 2], "b": tb[:, 3]},
                  periods)
    rates["engine"] = big / s
    b.record("sims", f"engine capture (inertial, {len(periods)} periods)", rates["engine"],
             "transitions/s", f"{big} random transitions, {eng.threads} threads, incl. packing")
    got = eng.capture({"a": trans[:, 0], "b": trans[:, 1]}, {"a": trans[:, 2], "b": trans[:, 3]},
                      periods)["p"]
    got = np.where(got >= 1 << 15, got - (1 << 16), got)
    agree = all(bool((captured[s] == got).all()) for s in captured)
    b.record("sims", "engine == icarus == verilator", float(agree), "bool",
             f"{n_large} transitions x {len(periods)} periods")
    pairs = np.arange(1024, dtype=np.int64)
    eng.exhaustive(periods, pairs=pairs[:16])
    _, s = _timed(eng.exhaustive, periods, pairs=pairs)
    rates["exhaustive"] = len(pairs) * (1 << 16) / s
    b.record("sims", f"engine exhaustive kernel ({len(periods)} periods)", rates["exhaustive"],
             "transitions/s", f"{len(pairs)} current pairs x 65536 previous, {eng.threads} threads")
    fastest = max(rates["icarus"], rates["verilator"])
    b.record("sims", "engine capture / faster simulator", rates["engine"] / fastest, "x",
             "random transitions through the Python API; target >= 1000")
    b.record("sims", "engine exhaustive / faster simulator", rates["exhaustive"] / fastest, "x",
             "the table builder's rate; target >= 1000")


def bench_kyupy(b: _Bench) -> None:
    try:
        import kyupy  # noqa: F401
    except ImportError:
        b.record("kyupy", "kyupy not installed", float("nan"), "",
                 "pip install kyupy==0.0.5 to run this section")
        return
    from sim import bench_kyupy as bk

    res = bk.bench_kyupy()
    for k, v in res.items():
        if isinstance(v, int | float):
            b.record("kyupy", str(k), float(v), "")


def _exhaustive_child(design: str, fracs: list[float], semantics: str) -> dict[str, Any]:
    """Run an exhaustive table in a child process: wall time and max RSS."""
    code = (
        "import json, resource, sys, time\n"
        "from flipclock.bench import _design\n"
        "from sim.engine import TimingEngine\n"
        f"d = _design({design!r})\n"
        f"eng = TimingEngine(d.netlist, d.annotation, semantics={semantics!r})\n"
        "cp = eng.critical_path\n"
        f"periods = sorted({{max(1, round(f * cp)) for f in {fracs!r}}})\n"
        "t = time.perf_counter()\n"
        "res = eng.exhaustive(periods)\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(json.dumps({'seconds': dt, 'rss': rss, 'periods': periods, 'threads': "
        "eng.threads, 'rate': (res.nwrong.sum(0) / 2**32).tolist()}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def bench_exhaustive(b: _Bench, liberty: bool) -> None:
    one = _exhaustive_child("booth8", [0.8], "inertial")
    b.record("exhaustive", "booth8 unit, 2^32 transitions, 1 period", one["seconds"], "s",
             f"period {one['periods']}, {one['threads']} threads; target <= 60")
    six = _exhaustive_child("booth8", [0.6, 0.7, 0.8, 0.9, 0.95, 1.0], "inertial")
    b.record("exhaustive", "booth8 unit, 2^32 transitions, 6 periods", six["seconds"], "s",
             f"periods {six['periods']}")
    b.record("exhaustive", "6 periods / 1 period", six["seconds"] / one["seconds"], "x",
             "target <= 1.5")
    b.record("exhaustive", "peak memory (max RSS, 6 periods)", six["rss"] / 2**30, "GiB",
             "target <= 4")
    if liberty:
        lib = _exhaustive_child("booth8_osu018", [0.8], "inertial")
        b.record("exhaustive", "booth8 OSU018 Liberty, 2^32, 1 period", lib["seconds"], "s",
                 f"period {lib['periods']} ticks of 10 ps; target <= 600")


def bench_peak(b: _Bench) -> None:
    from sim.engine import TimingEngine

    peak = peak_word_ops()
    b.record("peak", "machine peak, simple 64-bit ops (AVX2)", peak / 1e9, "Gop/s",
             "8 AND/XOR chains per thread on registers, all threads")
    d = _design("booth8")
    eng = TimingEngine(d.netlist, d.annotation, semantics="inertial")
    lay = eng.layout(eng.critical_path)
    pairs = np.arange(4096, dtype=np.int64)
    eng.exhaustive([eng.critical_path], pairs=pairs[:64])
    _, s = _timed(eng.exhaustive, [eng.critical_path], pairs=pairs)
    blocks = len(pairs) * (1 << 16) / (64 * eng.L)
    evals = blocks * lay.evaluations() * eng.L  # node-ticks x 64-bit words
    b.record("peak", "engine gate evaluations (64-bit words)", evals / s / 1e9, "Geval/s",
             f"{lay.evaluations()} node-ticks per block of {64 * eng.L} transitions")
    b.record("peak", "gate evaluations / peak ops", evals / s / peak, "fraction",
             "a gate evaluation costs 2-4 simple ops plus loads/stores")


def bench_nn(b: _Bench) -> None:
    try:
        from nnmap.bench import bench_timing_injection
    except ImportError as exc:
        b.record("nn", "nnmap benchmark unavailable", float("nan"), "", str(exc))
        return
    res = bench_timing_injection()
    for k, v in res.items():
        if isinstance(v, int | float):
            b.record("nn", str(k), float(v), "")
    from .studies.flatenn import bench_sram_trial

    trial = bench_sram_trial()
    b.record("nn", "SRAM fault trial / clean inference", trial["ratio"], "x",
             f"4-bit LeNet-5, 5 % bit flips, {trial['trial_s']:.3f} s vs {trial['clean_s']:.3f} s;"
             " target <= 1.2")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flipclock.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/bench"))
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma list of sections ({', '.join(SECTIONS)})")
    p.add_argument("--transitions", type=int, default=10_000,
                   help="simulator sample size (the marginal rate uses a fifth and this)")
    p.add_argument("--no-liberty", action="store_true",
                   help="skip the exhaustive Liberty table (about 10 minutes)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    b = _Bench(args.out)
    if "sims" in only:
        bench_sims(b, max(1, args.transitions // 5), args.transitions, args.seed)
    if "kyupy" in only:
        bench_kyupy(b)
    if "exhaustive" in only:
        bench_exhaustive(b, liberty=not args.no_liberty)
    if "peak" in only:
        bench_peak(b)
    if "nn" in only:
        bench_nn(b)
    print(f"wrote {b.write()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
