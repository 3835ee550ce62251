"""Proof of the engine: the same transitions through cocotb on Icarus and Verilator.

:func:`crosscheck` writes the netlist with its delays as simulator-ready Verilog
(:func:`sim.writer.write_sim_verilog`), runs the capture testbench :mod:`sim.tb.timing`
(one launch per transition, reads at every period under the sampling convention of
:mod:`sim.runner`), runs the :class:`~sim.engine.TimingEngine` on the same transitions
and periods, and counts every captured product that differs. The check passes only when
nothing differs.

Transitions are uniform random operand pairs (signed or unsigned, as the design declares)
plus the ones the engine finds to settle last (they exercise the longest sensitised paths,
where semantics differ most). The correct value of a capture is the design's own settled
output (the engine's zero-delay value, :mod:`sim.operands`); the testbench checks its
launches against it, never against an assumed product.
Periods run evenly from ``low`` (60 %) of the critical path up to it.

The run holds its folder (:func:`sim.atomic.output_folder`): a second crosscheck into it
stops with one line. ``crosscheck.json`` and ``report.md`` are written atomically.

Transport semantics run on Icarus only: Verilator's ``--timing`` build of the
transport netlist (thousands of ``always ... <= #d`` processes) exhausts memory.

``pathdelay`` runs on Icarus only (Verilator has no path delays or SDF, by its
maintainers' choice) the way sign-off gate-level simulation does: cell instances, cell
models with ``specify`` paths and ``$sdf_annotate`` of the engine's arc delays
(:mod:`sim.specify`). By default the cell models are generated (one primitive per output);
``cell_models`` uses the library's own Verilog models instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .atomic import atomic_json, atomic_text, output_folder
from .delay import DelayAnnotation
from .engine import TimingEngine
from .errors import SimError
from .netlist import Netlist
from .operands import Operands, settled_codes, to_value
from .plan import SEMANTICS, PlanError, Semantics, per_pin_netlist
from .runner import SIMULATORS, Simulator, run_cocotb
from .specify import write_specify_sources
from .writer import write_sim_verilog

__all__ = ["CrosscheckConfig", "CrosscheckRun", "crosscheck", "crosscheck_periods",
           "latest_transitions"]


@dataclass(frozen=True)
class CrosscheckConfig:
    """What to compare.

    Parameters
    ----------
    transitions:
        Random transitions (plus ``latest`` that settle last).
    periods:
        Number of capture periods, evenly from ``low`` of the critical path up to it.
    low:
        Shortest period as a fraction of the critical path.
    seed:
        Seed of the random transitions.
    simulators, semantics:
        Which runs; transport is skipped on Verilator (module docstring).
    per_pin:
        Use per-pin (pin-to-output) delays (inertial and transport; pathdelay always uses
        its arcs).
    cell_models:
        The library's own Verilog cell models for the pathdelay run (default: generated).
    latest:
        Extra transitions: those that settle last among a random search by the engine.
    """

    transitions: int = 10_000
    periods: int = 5
    low: float = 0.6
    seed: int = 0
    simulators: tuple[Simulator, ...] = SIMULATORS
    semantics: tuple[Semantics, ...] = ("inertial", "transport")
    per_pin: bool = False
    latest: int = 16
    cell_models: str | None = None

    def __post_init__(self) -> None:
        if self.transitions < 1 or self.periods < 1:
            raise PlanError("Crosscheck needs at least one transition and one period")
        if self.latest < 0:
            raise PlanError(f"--latest takes an integer >= 0, not {self.latest}")
        if not 0 < self.low <= 1:  # also refuses NaN
            raise PlanError(f"--low takes a fraction in (0, 1], not {self.low}")
        if not self.simulators:
            raise PlanError(f"Name at least one simulator; choose from {list(SIMULATORS)}")
        if not self.semantics:
            raise PlanError(f"Name at least one semantics: {', '.join(SEMANTICS)}")
        for s in self.simulators:
            if s not in SIMULATORS:
                raise PlanError(f"Unknown simulator {s!r}; choose from {list(SIMULATORS)}")
        for sem in self.semantics:
            if sem not in SEMANTICS:
                raise PlanError(f"Unknown semantics {sem!r}; choose {', '.join(SEMANTICS)}")
        if set(self.simulators) == {"verilator"} and "inertial" not in self.semantics:
            # every run would be skipped, and a check of nothing must not say PASS
            raise PlanError("Verilator runs only inertial netlists (transport exhausts its "
                            "memory, and it has no path delays); add --simulators icarus "
                            "or --semantics inertial")
        if self.latest > 1_000_000:
            raise PlanError(f"--latest takes at most 1000000 transitions, not {self.latest}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CrosscheckRun:
    """One simulator x semantics comparison."""

    simulator: str
    semantics: str
    transitions: int
    periods: list[int]
    captures: int
    mismatches: int
    simulator_seconds: float
    engine_seconds: float
    first_mismatch: dict[str, Any] | None = None
    skipped: str | None = None
    wrong_captures: list[int] = field(default_factory=list)
    cell_model_glitches: int = 0

    @property
    def passed(self) -> bool:
        """Nothing differs, except (pathdelay on the library's own cell models) captures
        that cell models of one primitive per output, same netlist and SDF, give as the
        engine does: those come from zero-time glitches inside the library's models."""
        return self.skipped is not None or self.mismatches == self.cell_model_glitches


def crosscheck_periods(critical_path: int, n: int, low: float = 0.6) -> list[int]:
    """``n`` distinct periods evenly from ``ceil(low * critical_path)`` to the critical path."""
    first = max(1, math.ceil(low * critical_path))
    vals = np.linspace(first, critical_path, n).round().astype(int)
    return sorted({int(v) for v in vals})


def _draw(rng: np.random.Generator, widths: Sequence[int], n: int, signed: bool
          ) -> npt.NDArray[np.int64]:
    """``[n, 2N]`` uniform values of the N operand ports: previous, then current."""
    if len(set(widths)) == 1:  # one draw: the transitions two-operand runs always had
        lo = -(1 << (widths[0] - 1)) if signed else 0
        return rng.integers(lo, lo + (1 << widths[0]), size=(n, 2 * len(widths)))
    cols = []
    for w in [*widths, *widths]:
        lo = -(1 << (w - 1)) if signed else 0
        cols.append(rng.integers(lo, lo + (1 << w), size=n, dtype=np.int64))
    return np.stack(cols, axis=1)


def _split(t: npt.NDArray[np.int64], ops: Operands
           ) -> tuple[dict[str, npt.NDArray[np.int64]], dict[str, npt.NDArray[np.int64]]]:
    """Previous and current values by port of ``[n, 2N]`` transitions."""
    k = len(ops.inputs)
    return ({x: t[:, i] for i, x in enumerate(ops.inputs)},
            {x: t[:, k + i] for i, x in enumerate(ops.inputs)})


def latest_transitions(engine: TimingEngine, k: int, *, seed: int, search: int = 1 << 16,
                       ops: Operands | None = None) -> npt.NDArray[np.int64]:
    """``[k, 2N]`` transitions (previous values of the N operand ports, then current; for
    two operands ``(prev_a, prev_b, cur_a, cur_b)``) whose output settles last."""
    ops = ops or Operands()
    if k <= 0:
        return np.zeros((0, 2 * len(ops.inputs)), np.int64)
    widths = [len(engine.netlist.inputs[x]) for x in ops.inputs]
    rng = np.random.default_rng(seed + 1)
    t = _draw(rng, widths, search, ops.signed)
    cp = engine.critical_path
    periods = list(range(1, cp + 1))
    out = engine.capture(*_split(t, ops), periods)[ops.p]
    final = out[:, -1:]
    differs = out != final
    last = np.where(differs.any(1), cp - np.argmax(differs[:, ::-1], axis=1), 0)
    return t[np.argsort(-last, kind="stable")[:k]]


def crosscheck(netlist: Netlist, annotation: DelayAnnotation, config: CrosscheckConfig,
               work: str | Path, *, log: Callable[[str], None] = print, force: bool = False,
               title: str | None = None, operands: Operands | None = None,
               ) -> list[CrosscheckRun]:
    """Run every requested comparison; results per simulator and semantics.

    ``work`` (claimed for the run; ``force`` writes into a folder flipclock did not make)
    receives the simulator build folders, ``crosscheck.json`` and ``report.md`` (headed
    ``title``). ``operands`` names the ports and their signedness (default ``a``, ``b``
    -> ``p``, signed).
    """
    work = Path(work)
    if config.cell_models is not None and "pathdelay" in config.semantics \
            and "icarus" in config.simulators:
        from .specify import check_cell_models

        check_cell_models(netlist, config.cell_models)  # before anything is run or written
    ops = operands or Operands()
    ops.ports(netlist)  # any number of operand ports, of any widths
    with output_folder(work, force=force):
        runs = _compare(netlist, annotation, config, work, log, ops)
        atomic_json(work / "crosscheck.json", {
            "config": config.to_dict(), "netlist_hash": netlist.content_hash,
            "delays_hash": annotation.content_hash, "delay_model": annotation.model.to_dict(),
            "operands": ops.to_dict(), "runs": [asdict(r) for r in runs]})
        atomic_text(work / "report.md", f"# Crosscheck of {title or netlist.top}\n\n"
                    f"{format_runs(runs)}\n")
    return runs


def _compare(netlist: Netlist, annotation: DelayAnnotation, config: CrosscheckConfig,
             work: Path, log: Callable[[str], None], ops: Operands) -> list[CrosscheckRun]:
    widths = [len(netlist.inputs[x]) for x in ops.inputs]
    w = widths[0]
    out_w = len(netlist.outputs[ops.p])
    rng = np.random.default_rng(config.seed)
    random = _draw(rng, widths, config.transitions, ops.signed)
    runs: list[CrosscheckRun] = []
    sim_netlist, delays = (per_pin_netlist(netlist, annotation) if config.per_pin
                           else (netlist, annotation.delays))
    for sem in config.semantics:
        per_pin = config.per_pin and sem != "pathdelay"
        engine = TimingEngine(netlist, annotation, semantics=sem, per_pin=per_pin,
                              inputs=list(ops.inputs), outputs=[ops.p])
        cp = engine.critical_path
        periods = crosscheck_periods(cp, config.periods, config.low)
        trans = np.concatenate([random, latest_transitions(engine, config.latest,
                                                           seed=config.seed, ops=ops)])
        t0 = time.perf_counter()
        eng = engine.capture(*_split(trans, ops), periods)[ops.p]
        eng_s = time.perf_counter() - t0
        eng = to_value(eng, out_w, ops.signed)
        # the correct values: the design's own settled outputs, previous and current
        settled = np.stack([to_value(settled_codes(engine, ops, v), out_w, ops.signed)
                            for v in _split(trans, ops)], axis=1)
        wrong = [int(x) for x in (eng != settled[:, 1:]).sum(0)]
        for sim in config.simulators:
            skip = _skip(sim, sem)
            if skip:
                runs.append(CrosscheckRun(sim, sem, len(trans), periods, 0, 0, 0.0, eng_s,
                                          skipped=skip))
                continue
            tb = {"width": w, "widths": widths, "periods": periods, "settle": cp + 10,
                  "inputs": list(ops.inputs), "output": ops.p, "out_width": out_w,
                  "signed": ops.signed}
            log(f"  {sim}, {sem}: {len(trans)} transitions x {len(periods)} periods ...")
            t0 = time.perf_counter()
            got = _simulate(sim, sem, engine, work / f"{sim}-{sem}", tb, trans, settled,
                            config.cell_models, sim_netlist, delays, netlist.top)
            sim_s = time.perf_counter() - t0
            diff = np.argwhere(got != eng)
            glitches = 0
            if len(diff) and sem == "pathdelay" and config.cell_models is not None:
                # Same netlist and SDF, cell models of one primitive per output: where
                # they agree with the engine, the library's multi-primitive model made
                # the difference (a zero-time glitch inside a cell, :mod:`sim.specify`).
                rows = np.unique(diff[:, 0])
                gen = _simulate(sim, sem, engine, work / f"{sim}-{sem}-generated", tb,
                                trans[rows], settled[rows], None, sim_netlist, delays,
                                netlist.top)
                at = {int(r): k for k, r in enumerate(rows)}
                alone = np.array([gen[at[int(i)], j] != eng[i, j] for i, j in diff])
                glitches = int((~alone).sum())
                diff = np.concatenate([diff[alone], diff[~alone]])  # unexplained first
            first = None
            if len(diff):
                i, j = (int(x) for x in diff[0])
                first = {"transition": trans[i].tolist(), "period": periods[j],
                         "simulator": int(got[i, j]), "engine": int(eng[i, j])}
            mism = int((got != eng).sum())
            runs.append(CrosscheckRun(sim, sem, len(trans), periods, int(got.size), mism,
                                      sim_s, eng_s, first, wrong_captures=wrong,
                                      cell_model_glitches=glitches))
            note = f", {glitches} from zero-time glitches in the cell models" if glitches else ""
            log(f"    {'ok' if runs[-1].passed else 'MISMATCH'}: {mism} of {got.size} "
                f"captures differ{note} ({sim_s:.1f} s {sim}, {eng_s:.3f} s engine)")
    return runs


def _simulate(sim: Simulator, sem: str, engine: TimingEngine, build: Path,
              tb: dict[str, Any], trans: npt.NDArray[np.int64],
              settled: npt.NDArray[np.int64], models: str | None, sim_netlist: Netlist,
              delays: Any, top: str) -> npt.NDArray[np.int64]:
    """Captures ``[transitions, periods]`` of one simulator run of the testbench."""
    build.mkdir(parents=True, exist_ok=True)
    if sem == "pathdelay":
        sources, top = write_specify_sources(engine, build, models=models)
    else:
        sources = [atomic_text(build / "dut.v", write_sim_verilog(
            sim_netlist, delays, semantics="transport" if sem == "transport" else "inertial"))]
    run_cocotb(sim, sources, top, "sim.tb.timing", build, timing=True,
               specify=sem == "pathdelay", config={
                   **tb, "transitions": trans.tolist(), "settled": settled.tolist()})
    if sem == "pathdelay":  # an arc Icarus could not annotate keeps the model's own delay
        log = (build / "sim.log").read_text(errors="replace")
        bad = [ln for ln in log.splitlines() if "SDF ERROR" in ln or "SDF WARNING" in ln]
        if bad:
            raise SimError(f"Icarus did not apply every SDF delay ({len(bad)} messages, "
                           f"first: {bad[0].strip()[:160]}); see {build / 'sim.log'}")
    return np.asarray(np.load(build / "timing.npz")["captured"], np.int64)


def _skip(sim: str, sem: str) -> str | None:
    """Why ``sim`` cannot run ``sem`` (``None`` when it can)."""
    if sim == "verilator" and sem == "transport":
        return "transport netlists exhaust Verilator's memory; transport is checked on Icarus"
    if sim == "verilator" and sem == "pathdelay":
        return "Verilator has no path delays or SDF; pathdelay is checked on Icarus"
    return None


def format_runs(runs: Sequence[CrosscheckRun]) -> str:
    """Markdown table of crosscheck runs."""
    lines = ["| simulator | semantics | transitions | periods | captures | mismatches | "
             "simulator s | engine s |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for r in runs:
        if r.skipped:
            lines.append(f"| {r.simulator} | {r.semantics} | – | – | – | skipped | – | – |")
            continue
        lines.append(f"| {r.simulator} | {r.semantics} | {r.transitions} | "
                     f"{', '.join(map(str, r.periods))} | {r.captures} | {r.mismatches}"
                     + (f" ({r.cell_model_glitches} cell-model glitches)"
                        if r.cell_model_glitches else "")
                     + f" | {r.simulator_seconds:.1f} | {r.engine_seconds:.3f} |")
    return "\n".join(lines)
