"""Benchmark of the timing engine against kyupy's ``WaveSim`` (CPU), with a bit-for-bit check.

kyupy (https://pypi.org/project/kyupy/, version 0.0.5) is a *benchmark-only* dependency:
nothing else in flipclock imports it, and this module imports it only inside the functions
that need it (``pip install kyupy==0.0.5 numba``; without numba kyupy falls back to pure
Python and is ~1000x slower).

What is compared
----------------
The same netlist (a kyupy-readable Verilog variant written from the parsed
:class:`~sim.netlist.Netlist`: scalar ports ``<port>_<bit>``, nets ``n<k>``, instances
``u<k>``; every cell keeps its type and pins), the same delays (an SDF file written from the
:class:`~sim.delay.DelayAnnotation`: one ``IOPATH`` per input pin carrying the cell's
``(rise, fall)`` ticks, 1 SDF time unit = 1 tick, which is exactly what the engine uses with
``per_pin=False``), the same random transitions (previous operands settled, current ones
launched at tick 0), and the output words captured at every requested period.

kyupy picks a cell's Boolean function by the *prefix* of its type name (``AND2``, ``OAI21X1``
...). Every kyupy op's 16-entry truth table is checked against flipclock's cell function
and, where the prefix gives no function (OSU ``MUX2X1``, an *inverting* mux) or the wrong
one, replaced by the right table (the kernel evaluates any table; ``lut_fixed`` counts them).

Sampling: kyupy's capture at time ``t`` counts the edges strictly before ``t``; flipclock's
value captured at period ``T`` is the settled value at tick ``T`` after every update at or
before ``T``. So kyupy samples at ``T + 0.5``.

Semantics (read from ``kyupy/wave_sim.py``, ``_wave_eval``)
-----------------------------------------------------------
kyupy shifts every input edge by the arc delay for the output edge it would cause
(``delays[line, input edge, output edge]``), merges the inputs in time order and toggles the
output where the function changes, with a *pulse filter*: a new output edge at ``t`` whose
distance to the last kept output edge is ``<= thresh`` (``thresh`` = the delay of the arc
that caused it) deletes that last edge instead (unless it is the first edge, or the same
input's next edge would come earlier). So a gate of delay ``d`` swallows output pulses of
width ``<= d``. That is neither of the engine's semantics: ``transport`` passes every pulse,
and ``inertial`` (Verilog ``assign #d``) passes pulses of width ``>= d``. With unit delays
(where the engine's two semantics coincide) kyupy removes every 1-tick pulse at a gate
output that the engine keeps; the captures differ at intermediate periods and agree once
settled.

To check the plumbing (netlist, SDF, stimuli, sampling) bit for bit anyway, the benchmark
also runs ``kyupy-nofilter``: kyupy's own kernel compiled from its own source with the single
token ``thresh`` in the filter condition replaced by ``0`` (zero-width pulses are still
removed). With rise == fall delays that is exactly transport, ``y(t) = f(t - d)``, and it
matches the engine's ``transport`` bit for bit. With rise != fall the delay models differ:
the engine delays the cell's *function* waveform ``f`` (output-referred: ``y(t)`` is the OR
or AND of ``f`` over ``t-max(R,F) .. t-min(R,F)``), kyupy delays each *input edge* by the
delay of the output edge it causes (input-referred, SDF IOPATH style). Two input changes
that cancel in ``f`` (e.g. both inputs of an XNOR toggling at the same tick) then reach the
output ``|R - F|`` ticks apart and make a glitch that ``f`` never had.
:func:`explain_gates` measures this gate by gate (each cell's kyupy output vs the engine's
rule applied to kyupy's own input waveforms) and prints examples.

Throughput: ``transitions/s`` of kyupy counts its propagation (``c_prop``) alone (the
figure most favourable to kyupy) and, separately, the whole job (stimulus, ``s_to_c``,
``c_prop``, capture at every period with kyupy's ``wave_capture_cpu`` in a compiled loop).
kyupy 0.0.5's CPU ``WaveSim`` is single-threaded (``numba.njit`` without ``parallel``), so the
fair engine figure is ``threads=1``; the all-threads figure is reported as well. One-time
costs (numba JIT, kernel build, parsing) are measured and reported separately; numba
compiles once per process, so ``*_jit_compiled`` says whether the figure includes it.

Run ``python -m sim.bench_kyupy [--design rtl/booth8] [-n N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .cells import DEFAULT_LIBRARY, CellLibrary
from .delay import DelayAnnotation
from .netlist import CONST0, CONST1, Netlist

__all__ = ["bench_kyupy", "explain_gates", "kyupy_sdf", "kyupy_verilog", "live_cells",
           "load_design", "main"]

I64 = npt.NDArray[np.int64]


# --- design files ----------------------------------------------------------------------------
def load_design(design_dir: str | os.PathLike[str]) -> tuple[Netlist, DelayAnnotation]:
    """``gate.v`` and ``delays.json`` of a committed design folder (library from
    ``build.json``: its Liberty file, or the built-in ``fcgates``)."""
    from .liberty import read_liberty
    from .reader import read_verilog

    folder = Path(design_dir)
    library: CellLibrary = DEFAULT_LIBRARY
    build = folder / "build.json"
    if build.is_file():
        lib_path = json.loads(build.read_text()).get("config", {}).get("liberty")
        if lib_path:
            library = read_liberty(lib_path)
    netlist = read_verilog(folder / "gate.v", library)
    return netlist, DelayAnnotation.read(folder / "delays.json")


def _single_output(netlist: Netlist, cell_type: str) -> str:
    ctype = netlist.library[cell_type]
    if len(ctype.outputs) != 1 or len(ctype.inputs) > 4:
        raise ValueError(f"Cell type {cell_type} has {len(ctype.outputs)} outputs and "
                         f"{len(ctype.inputs)} inputs; kyupy ops have 1 output and <= 4 inputs")
    return ctype.outputs[0]


def live_cells(netlist: Netlist) -> list[int]:
    """Indices of the cells in the fan-in cone of the outputs. kyupy's scheduler walks back
    from the outputs and visits a net only after all its readers, so a cell whose output
    nobody reads (Yosys leaves a few) would cut off the whole cone behind it."""
    driver = netlist.driver
    todo = [b for bits in netlist.outputs.values() for b in bits]
    live: set[int] = set()
    while todo:
        net = todo.pop()
        if net not in driver or driver[net][0] in live:
            continue
        k = driver[net][0]
        live.add(k)
        cell = netlist.cells[k]
        todo.extend(cell.pins[p] for p in netlist.library[cell.type].inputs if p in cell.pins)
    return sorted(live)


def kyupy_verilog(netlist: Netlist) -> tuple[str, str]:
    """A Verilog variant of ``netlist`` that kyupy's parser reads, and the kyupy technology
    library text for its cell types (pins in flipclock's truth-table order). Only the
    :func:`live_cells` are written (instance ``u<k>`` is ``netlist.cells[k]``)."""
    keep = live_cells(netlist)
    names: dict[str, str] = {}
    assigns: list[str] = []
    ports: list[str] = []
    decls: list[str] = []
    for port, bits in netlist.inputs.items():
        for i, net in enumerate(bits):
            names[net] = f"{port}_{i}"
            ports.append(f"{port}_{i}")
            decls.append(f"  input {port}_{i};")
    driven = {net for k in keep for pin, net in netlist.cells[k].pins.items()
              if pin not in netlist.library[netlist.cells[k].type].inputs}

    def name(net: str) -> str:
        if net == CONST0:
            return "1'b0"
        if net == CONST1:
            return "1'b1"
        if net not in names:
            names[net] = f"n{len(names)}"
        return names[net]

    for port, bits in netlist.outputs.items():
        for i, net in enumerate(bits):
            pname = f"{port}_{i}"
            ports.append(pname)
            decls.append(f"  output {pname};")
            if net in driven and net not in names:
                names[net] = pname  # the driving cell writes the port directly
            else:
                assigns.append(f"  assign {pname} = {name(net)};")
    body: list[str] = []
    for k in keep:
        cell = netlist.cells[k]
        _single_output(netlist, cell.type)
        pins = ", ".join(f".{pin}({name(net)})" for pin, net in cell.pins.items())
        body.append(f"  {cell.type} u{k} ({pins});")
    portset = set(ports)
    wires = [f"  wire {v};" for v in names.values() if v not in portset]
    text = (f"module top({', '.join(ports)});\n" + "\n".join(decls + wires + body + assigns)
            + "\nendmodule\n")
    lib: list[str] = []
    for ctype_name in sorted({netlist.cells[k].type for k in keep}):
        ctype = netlist.library[ctype_name]
        out = _single_output(netlist, ctype_name)
        ins = ",".join(ctype.inputs)
        lib.append(f"{ctype_name} input({ins}) output({out}) {out}=CELL({ins}) ;")
    return text, "\n".join(lib) + "\n"


def kyupy_sdf(netlist: Netlist, annotation: DelayAnnotation) -> str:
    """SDF with one IOPATH per input pin of instance ``u<k>``: the cell's (rise, fall) ticks."""
    lines = ['(DELAYFILE', '(SDFVERSION "3.0")', '(DESIGN "top")', '(TIMESCALE 1ns)']
    for k in live_cells(netlist):
        cell = netlist.cells[k]
        out = _single_output(netlist, cell.type)
        if cell.name not in annotation.delays or out not in annotation.delays[cell.name]:
            continue  # an unconnected output has no delay and no reader
        r, f = annotation.delays[cell.name][out]
        lines.append(f'(CELL (CELLTYPE "{cell.type}") (INSTANCE u{k}) (DELAY (ABSOLUTE')
        for pin in netlist.library[cell.type].inputs:
            lines.append(f'  (IOPATH {pin} {out} ({r}:{r}:{r}) ({f}:{f}:{f}))')
        lines.append(')))')
    lines.append(')')
    return "\n".join(lines) + "\n"


# --- kyupy side ------------------------------------------------------------------------------
def _lut16(truth_table: int, nin: int) -> int:
    """kyupy's 16-bit op table (bit ``k``: inputs ``k``; unused inputs are tied to 0)."""
    mask = (1 << nin) - 1
    return sum(((truth_table >> (k & mask)) & 1) << k for k in range(16))


_KERNELS: dict[str, Callable[..., Any]] = {}


def _capture_kernel() -> Callable[..., Any]:
    """A compiled loop over outputs, transitions and sample times around kyupy's own
    ``wave_capture_cpu`` (its ``c_to_s`` calls it from a Python loop per transition)."""
    if "capture" not in _KERNELS:
        import numba
        from kyupy.wave_sim import wave_capture_cpu

        @numba.njit(cache=False)  # type: ignore[misc]
        def capture(c: Any, locs: Any, caps: Any, times: Any, nsims: int, bit0: int,
                    out: Any, ovl: Any) -> None:
            for j in range(len(locs)):
                for v in range(nsims):
                    for k in range(len(times)):
                        r = wave_capture_cpu(c, locs[j], caps[j], v, times[k], 0.0, 1)
                        out[v, k] |= np.int64(r[5]) << (bit0 + j)
                        ovl[v] |= r[7]

        _KERNELS["capture"] = capture
    return _KERNELS["capture"]


def _nofilter_kernel() -> Callable[..., Any]:
    """kyupy's ``level_eval_cpu`` compiled from kyupy's source with the pulse-filter
    threshold ``(current_t - previous_t) > thresh`` replaced by ``> 0`` (transport)."""
    if "nofilter" not in _KERNELS:
        import numba
        from kyupy import wave_sim

        src = inspect.getsource(wave_sim._wave_eval)
        old = "(current_t - previous_t) > thresh"
        if src.count(old) != 1:
            raise RuntimeError("kyupy's _wave_eval changed; the no-filter variant needs 0.0.5")
        ns: dict[str, Any] = dict(vars(wave_sim))
        exec(src.replace(old, "(current_t - previous_t) > 0"), ns)  # noqa: S102
        ns["wave_eval_cpu"] = numba.njit(ns["_wave_eval"])
        lsrc = inspect.getsource(wave_sim.level_eval_cpu.py_func)
        lsrc = "\n".join(ln for ln in lsrc.splitlines() if not ln.startswith("@"))
        exec(lsrc, ns)  # noqa: S102
        _KERNELS["nofilter"] = numba.njit(ns["level_eval_cpu"])
    return _KERNELS["nofilter"]


class KyupyRun:
    """kyupy circuit, delays and a ``WaveSim`` of ``batch`` parallel transitions."""

    def __init__(self, netlist: Netlist, annotation: DelayAnnotation, *, batch: int = 4096,
                 c_caps: int = 16, workdir: str | os.PathLike[str] | None = None) -> None:
        from kyupy import sdf, verilog
        from kyupy import sim as ksim
        from kyupy.techlib import TechLib
        from kyupy.wave_sim import WaveSim

        t0 = time.perf_counter()
        self.netlist = netlist
        vtext, libtext = kyupy_verilog(netlist)
        sdftext = kyupy_sdf(netlist, annotation)
        if workdir is not None:  # the files kyupy reads, for inspection
            Path(workdir, "kyupy.v").write_text(vtext)
            Path(workdir, "kyupy.sdf").write_text(sdftext)
            Path(workdir, "kyupy.tlib").write_text(libtext)
        tlib = TechLib(libtext)
        circuit = verilog.parse(vtext, tlib=tlib)
        delays = sdf.parse(sdftext).iopaths(circuit, tlib)[1]  # min:typ:max are equal
        # cells whose type kyupy cannot name get a generic kind of their arity (table below)
        known = [p for p in ksim.kind_prefixes]
        self.generic_kinds: dict[str, int] = {}
        line_cell: dict[int, str] = {}
        keep = live_cells(netlist)
        self.dropped_cells = len(netlist.cells) - len(keep)
        for k in keep:
            cell = netlist.cells[k]
            node = circuit.cells[f"u{k}"]
            line_cell[node.outs[0].index] = cell.type
            if not any(node.kind.lower().startswith(p) for p in known):
                self.generic_kinds[cell.type] = self.generic_kinds.get(cell.type, 0) + 1
                node.kind = ("BUF", "AND2", "AND3", "AND4")[max(len(node.ins), 1) - 1]
        self.circuit, self.tlib = circuit, tlib
        self.parse_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.c_caps = c_caps
        self.batch = batch
        self.ws = WaveSim(circuit, delays, sims=batch, c_caps=c_caps, c_reuse=True,
                          strip_forks=True)
        self.lut_fixed = 0
        for op in self.ws.ops:
            ctype_name = line_cell.get(int(op[1]))
            if ctype_name is None:
                continue
            ctype = netlist.library[ctype_name]
            lut = _lut16(ctype.truth_table(ctype.outputs[0]), len(ctype.inputs))
            if int(op[0]) & 0xFFFF != lut:
                op[0] = lut
                self.lut_fixed += 1
        self.build_s = time.perf_counter() - t0
        self.s_index = {node.name: i for i, node in enumerate(circuit.s_nodes)}

    def _prop(self, sims: int, variant: str) -> None:
        ws = self.ws
        if variant == "kyupy":
            ws.c_prop(sims=sims)
            return
        level = _nofilter_kernel()
        for start, stop in zip(ws.level_starts, ws.level_stops, strict=True):
            level(ws.ops, start, stop, ws.c, ws.c_locs, ws.c_caps, ws.e, ws.abuf, 0, sims,
                  ws.delays, ws.simctl_int, ws.simctl_float, 1, 0)

    def run(self, prev: Mapping[str, I64], cur: Mapping[str, I64], periods: Sequence[int],
            variant: str = "kyupy") -> tuple[dict[str, I64], int, float, float]:
        """Captured output words ``{port: int64 [n, len(periods)]}``, the number of
        transitions with a waveform overflow, and seconds spent in propagation and in all."""
        nl, ws = self.netlist, self.ws
        n = len(next(iter(cur.values())))
        times = np.asarray(periods, np.float32) + np.float32(0.5)
        capture = _capture_kernel()
        outs = {p: np.zeros((n, len(periods)), np.int64) for p in nl.outputs}
        ovl = np.zeros(n, np.int64)
        prop_s = 0.0
        t_all = time.perf_counter()
        for b0 in range(0, n, self.batch):
            nb = min(self.batch, n - b0)
            for port, bits in nl.inputs.items():
                pv = np.asarray(prev[port], np.int64)[b0:b0 + nb]
                cv = np.asarray(cur[port], np.int64)[b0:b0 + nb]
                for i in range(len(bits)):
                    s = self.s_index[f"{port}_{i}"]
                    ws.s[0, s, :nb] = (pv >> i) & 1
                    ws.s[1, s, :nb] = 0.0
                    ws.s[2, s, :nb] = (cv >> i) & 1
            ws.s_to_c()
            t0 = time.perf_counter()
            self._prop(nb, variant)
            prop_s += time.perf_counter() - t0
            for port, bits in nl.outputs.items():
                sl = np.array([self.s_index[f"{port}_{i}"] for i in range(len(bits))])
                locs = ws.c_locs[ws.ppo_offset + sl].astype(np.int64)
                caps = ws.c_caps[ws.ppo_offset + sl].astype(np.int64)
                capture(ws.c, locs, caps, times, nb, 0, outs[port][b0:b0 + nb],
                        ovl[b0:b0 + nb])
        return outs, int((ovl != 0).sum()), prop_s, time.perf_counter() - t_all


# --- the benchmark ---------------------------------------------------------------------------
def _cold_build_s(netlist: Netlist) -> float:
    """Seconds to compile the engine's kernel for this library from scratch (what the first
    ever run pays; later runs load it from the cache in milliseconds)."""
    import shutil
    import subprocess

    from .engine import _library_functions
    from .kernel import CFLAGS, LANE_WORDS, generate_source

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "cc"
    funcs, _ = _library_functions(netlist.library)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "kernel.c")
        src.write_text(generate_source(funcs, LANE_WORDS))
        t0 = time.perf_counter()
        subprocess.run([cc, *CFLAGS, "-o", str(Path(tmp, "k.so")), str(src)], check=True,
                       capture_output=True)
        return time.perf_counter() - t0


def _spread(xs: Sequence[float]) -> dict[str, float]:
    a = np.asarray(xs, float)
    return {"best": float(a.max()), "median": float(np.median(a)), "worst": float(a.min())}


def bench_kyupy(design_dir: str | os.PathLike[str] = "rtl/booth8", n: int = 32768,
                periods: Sequence[int] | None = None, seed: int = 1, *, repeats: int = 3,
                batch: int = 4096, c_caps: int = 16, threads: int | None = None,
                variants: Sequence[str] = ("kyupy", "kyupy-nofilter"),
                workdir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Throughput and captured values of flipclock's engine vs kyupy ``WaveSim`` (CPU).

    ``periods`` default to every ``k``-th tick from 1 to the critical path (+ 1), ``k`` the
    smallest step giving at most 48 periods (every tick for the unit-delay booth8).
    ``threads`` is the engine's all-threads figure (default: the CPUs this process may use).
    Throughputs are transitions per second over ``repeats`` runs (best, median, worst).
    Mismatch counts are captured output words that differ, per kyupy variant and engine
    semantics, over all periods and over the settled periods (``>= critical path``) alone.
    """
    from .engine import TimingEngine, default_threads

    netlist, annotation = load_design(design_dir)
    threads = threads or default_threads()
    res: dict[str, Any] = {"design": str(design_dir), "n": n, "seed": seed,
                           "repeats": repeats, "tick": annotation.tick_label,
                           "cpus": len(os.sched_getaffinity(0)),
                           "loadavg_start": os.getloadavg()[0]}
    rf = [rf for outs in annotation.delays.values() for rf in outs.values()]
    res["cells"] = len(netlist.cells)
    res["rise_ne_fall_cells"] = sum(r != f for r, f in rf)

    # engine one-time cost: kernel build (from the disk cache, and cold in a fresh cache)
    t0 = time.perf_counter()
    engines = {sem: TimingEngine(netlist, annotation, semantics=sem, threads=1)  # type: ignore[arg-type]
               for sem in ("transport", "inertial")}
    res["engine_setup_s"] = time.perf_counter() - t0
    res["engine_cold_build_s"] = _cold_build_s(netlist)
    crit = engines["transport"].critical_path
    res["critical_path_ticks"] = crit
    if periods is None:  # every tick up to the settled value, at most ~48 periods
        periods = list(range(1, crit + 2, -(-(crit + 1) // 48)))
        if periods[-1] < crit:
            periods.append(crit)
    periods = list(periods)
    res["periods"] = [periods[0], periods[-1], len(periods)]
    settled = np.asarray(periods) >= crit

    rng = np.random.default_rng(seed)
    ports = engines["transport"].plan.input_ports
    prev = {p: rng.integers(0, 1 << len(netlist.inputs[p]), n) for p in ports}
    cur = {p: rng.integers(0, 1 << len(netlist.inputs[p]), n) for p in ports}

    # kyupy one-time costs: parse + WaveSim build, numba JIT (first call on a tiny batch)
    kr = KyupyRun(netlist, annotation, batch=batch, c_caps=c_caps, workdir=workdir)
    res["kyupy_parse_s"], res["kyupy_build_s"] = kr.parse_s, kr.build_s
    res["kyupy_generic_kinds"], res["kyupy_lut_fixed"] = kr.generic_kinds, kr.lut_fixed
    res["kyupy_ops"], res["kyupy_dropped_dangling_cells"] = len(kr.ws.ops), kr.dropped_cells
    tiny = {p: v[:64] for p, v in prev.items()}, {p: v[:64] for p, v in cur.items()}
    from kyupy import wave_sim

    for variant in variants:
        fresh = (not wave_sim.level_eval_cpu.signatures if variant == "kyupy"
                 else "nofilter" not in _KERNELS)
        t0 = time.perf_counter()
        kr.run(*tiny, periods[:1], variant)
        res[f"{variant}_jit_s"] = time.perf_counter() - t0
        res[f"{variant}_jit_compiled"] = fresh  # False: compiled earlier in this process

    # reference captures (engine), then throughput of each
    ref = {sem: e.capture(prev, cur, periods) for sem, e in engines.items()}
    eng_all = TimingEngine(netlist, annotation, semantics="transport", threads=threads)
    for label, eng in (("engine_1thread", engines["transport"]),
                       (f"engine_{threads}threads", eng_all)):
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            eng.capture(prev, cur, periods)
            rates.append(n / (time.perf_counter() - t0))
        res[f"{label}_tps"] = _spread(rates)
        rates = []
        for _ in range(repeats):  # one period: the kernel without the per-period unpacking
            t0 = time.perf_counter()
            eng.capture(prev, cur, [crit])
            rates.append(n / (time.perf_counter() - t0))
        res[f"{label}_1period_tps"] = _spread(rates)
    res["engine_threads_all"] = threads

    for variant in variants:
        # waveform capacity: grow until no output waveform overflows
        while True:
            outs, novl, _, _ = kr.run(prev, cur, periods, variant)
            if novl == 0 or kr.c_caps >= 1024:
                break
            kr = KyupyRun(netlist, annotation, batch=batch, c_caps=2 * kr.c_caps)
        res[f"{variant}_c_caps"], res[f"{variant}_overflows"] = kr.c_caps, novl
        prop_rates, all_rates = [], []
        for _ in range(repeats):
            _, _, prop_s, all_s = kr.run(prev, cur, periods, variant)
            prop_rates.append(n / prop_s)
            all_rates.append(n / all_s)
        if variant == "kyupy":  # kyupy's own capture (a Python loop over transitions)
            nb = min(n, batch)
            t0 = time.perf_counter()
            kr.ws.c_to_s(time=float(crit) + 0.5)
            res["kyupy_own_c_to_s_tps_per_period"] = nb / (time.perf_counter() - t0)
        res[f"{variant}_prop_tps"] = _spread(prop_rates)
        res[f"{variant}_full_tps"] = _spread(all_rates)
        for sem, r in ref.items():
            diff = np.zeros((n, len(periods)), bool)
            for port in netlist.outputs:
                diff |= r[port] != outs[port]
            res[f"mismatch_{variant}_vs_{sem}"] = int(diff.sum())
            res[f"mismatch_{variant}_vs_{sem}_settled"] = int(diff[:, settled].sum())
            res[f"mismatch_{variant}_vs_{sem}_transitions"] = int(diff.any(axis=1).sum())
        res["captures_compared"] = n * len(periods)
        c0 = np.zeros(len(periods), np.int64)
        for port in netlist.outputs:
            c0 += (ref["transport"][port] != outs[port]).sum(axis=0)
        res[f"mismatch_{variant}_vs_transport_by_period"] = c0.tolist()

    res["loadavg_end"] = os.getloadavg()[0]
    fair = res["engine_1thread_tps"]["best"]
    for variant in variants:
        res[f"ratio_engine1_vs_{variant}_prop"] = fair / res[f"{variant}_prop_tps"]["best"]
        res[f"ratio_engine1_vs_{variant}_full"] = fair / res[f"{variant}_full_tps"]["best"]
        res[f"ratio_engine{threads}_vs_{variant}_prop"] = (
            res[f"engine_{threads}threads_tps"]["best"] / res[f"{variant}_prop_tps"]["best"])
    return res


def explain_gates(design_dir: str | os.PathLike[str] = "rtl/booth8_osu018",
                  variant: str = "kyupy-nofilter", n: int = 256, seed: int = 5,
                  examples: int = 3) -> dict[str, Any]:
    """Gate-local semantics check: for every cell and transition, kyupy's output waveform
    vs the engine's ``transport`` rule applied to the function of kyupy's *own* input
    waveforms at that cell (tick by tick). Returns the number of differing (cell,
    transition) pairs, the most frequent (cell type, rise, fall), and a few examples as
    edge ticks; this isolates where the two delay models differ from error propagation."""
    from collections import Counter

    from kyupy.wave_sim import WaveSim

    netlist, annotation = load_design(design_dir)
    rng = np.random.default_rng(seed)
    prev = {p: rng.integers(0, 1 << len(b), n) for p, b in netlist.inputs.items()}
    cur = {p: rng.integers(0, 1 << len(b), n) for p, b in netlist.inputs.items()}
    caps = 64
    kr = KyupyRun(netlist, annotation, batch=n, c_caps=caps)
    ws = WaveSim(kr.circuit, kr.ws.delays[0], sims=n, c_caps=caps, c_reuse=False,
                 strip_forks=True)  # every line keeps its waveform
    ws.ops[:, 0] = kr.ws.ops[:, 0]
    kr.ws = ws
    _, novl, _, _ = kr.run(prev, cur, [1], variant)
    horizon = _critical_path(netlist, annotation) + 2

    def ticks(line: int) -> npt.NDArray[np.uint8]:  # [n, horizon + 1]; index i: tick i - 1
        loc, cap = int(ws.c_locs[line]), int(ws.c_caps[line])
        e = ws.c[loc:loc + cap, :n].astype(np.float64)
        valid = ~(np.cumsum(e >= 2.0 ** 126, axis=0) > 0)
        t = np.arange(-1, horizon)[None, None, :] + 0.5
        cnt = ((e[:, :, None] < t) & valid[:, :, None]).sum(axis=0)
        return (cnt & 1).astype(np.uint8)

    def transport(f: npt.NDArray[np.uint8], r: int, fl: int) -> npt.NDArray[np.uint8]:
        h = f.shape[1]

        def shift(d: int) -> npt.NDArray[np.uint8]:
            o = np.empty_like(f)
            o[:, :d] = f[:, :1]
            o[:, d:] = f[:, :h - d]
            return o

        acc = shift(min(r, fl))
        for d in range(min(r, fl) + 1, max(r, fl) + 1):
            acc = (acc | shift(d)) if r < fl else (acc & shift(d))
        return acc

    def edges(w: npt.NDArray[np.uint8]) -> str:
        return f"init {int(w[0])}, edges at ticks {[int(c) for c in np.flatnonzero(np.diff(w))]}"

    bad, total = 0, 0
    kinds: Counter[tuple[str, int, int]] = Counter()
    shown: list[str] = []
    for k in live_cells(netlist):
        cell = netlist.cells[k]
        ctype = netlist.library[cell.type]
        out = ctype.outputs[0]
        node = kr.circuit.cells[f"u{k}"]
        r, fl = annotation.delays[cell.name][out]
        ins = [ticks(node.ins[i].index) for i in range(len(ctype.inputs))]
        y = ticks(node.outs[0].index)
        idx = sum((w.astype(np.int64) << i for i, w in enumerate(ins)), np.zeros_like(y, np.int64))
        f = ((ctype.truth_table(out) >> idx) & 1).astype(np.uint8)
        yt = transport(f, r, fl)
        diff = (yt != y).any(axis=1)
        total += n
        if diff.any():
            bad += int(diff.sum())
            kinds[cell.type, r, fl] += int(diff.sum())
            if len(shown) < examples:
                j = int(np.flatnonzero(diff)[0])
                lines = [f"{cell.name} {cell.type} rise={r} fall={fl}"]
                lines += [f"  in {p}: {edges(w[j])}" for p, w in zip(ctype.inputs, ins,
                                                                     strict=True)]
                lines += [f"  f(in): {edges(f[j])}", f"  {variant} out: {edges(y[j])}",
                          f"  transport out: {edges(yt[j])}"]
                shown.append("\n".join(lines))
    return {"design": str(design_dir), "variant": variant, "overflows": novl,
            "gate_transitions": total, "differing": bad,
            "by_type_rise_fall": kinds.most_common(8), "examples": shown}


def _critical_path(netlist: Netlist, annotation: DelayAnnotation) -> int:
    from .engine import TimingEngine

    return TimingEngine(netlist, annotation, semantics="transport", threads=1).critical_path


def _print(res: Mapping[str, Any]) -> None:
    for k, v in res.items():
        if isinstance(v, dict) and set(v) == {"best", "median", "worst"}:
            print(f"{k:48s} best {v['best']:12,.0f}  median {v['median']:12,.0f}  "
                  f"worst {v['worst']:12,.0f}")
        elif isinstance(v, float):
            print(f"{k:48s} {v:.3f}")
        else:
            print(f"{k:48s} {v}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.bench_kyupy", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--design", action="append", help="design folder (repeatable; "
                    "default rtl/booth8 and rtl/booth8_osu018)")
    ap.add_argument("-n", type=int, default=32768, help="random transitions")
    ap.add_argument("--periods", type=str, default=None,
                    help="comma-separated periods in ticks (default 1..critical path+1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4096, help="kyupy parallel sims per batch")
    ap.add_argument("--threads", type=int, default=None, help="engine all-threads figure")
    ap.add_argument("--json", type=str, default=None, help="also write the figures here")
    ap.add_argument("--explain", action="store_true",
                    help="also run the gate-local semantics check (explain_gates)")
    ap.add_argument("--keep", type=str, default=None,
                    help="folder to write the kyupy Verilog/SDF/techlib files into")
    args = ap.parse_args(argv)
    periods = [int(x) for x in args.periods.split(",")] if args.periods else None
    out = []
    for design in args.design or ["rtl/booth8", "rtl/booth8_osu018"]:
        res = bench_kyupy(design, n=args.n, periods=periods, seed=args.seed,
                          repeats=args.repeats, batch=args.batch, threads=args.threads,
                          workdir=args.keep)
        _print(res)
        print()
        out.append(res)
        if args.explain:
            for variant in ("kyupy", "kyupy-nofilter"):
                ex = explain_gates(design, variant)
                for key in ("variant", "overflows", "gate_transitions", "differing",
                            "by_type_rise_fall"):
                    print(f"explain {key:40s} {ex[key]}")
                for text in ex["examples"]:
                    print(text)
                print()
                out.append(ex)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
