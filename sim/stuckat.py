"""Stuck-at faults of a multiplier: how much every single stuck net damages the products.

For every net of the netlist -- each primary input bit and each cell output -- and each
stuck value (SA0, SA1), the faulty multiplier is evaluated on all ``2**(2W)`` operand pairs
(65,536 for 8 bits) and compared with the fault-free design's own settled output. A design
without tables over operand pairs (more than two operands such as ``a * b + c``, or wider
than 8 bits; :func:`sim.errtable.pair_width`) is evaluated on :data:`SAMPLE_VECTORS`
random input vectors instead (seed :data:`SAMPLE_SEED`, recorded in ``meta.json``), and
writes no per-fault tables.

Evaluation
----------
The values are the static, settled ones: the timing engine runs each fault once over all
pairs as transitions with ``prev = cur`` (nothing switches, so every net holds the value
the forced netlist settles to) captured at period 1 with ``forced={net: value}``; delays
play no part. One engine call per fault, threads over faults. The fault-free run must
reproduce the exact products, or the netlist is not a signed multiplier.

Measures (per fault, operand pairs uniform)
-------------------------------------------
``error_rate``
    Fraction of pairs with a wrong product.
``mean_abs_error``
    Mean ``|faulty - exact|`` over *all* pairs: the expected damage of one multiplication,
    frequency and magnitude together (the default ranking).
``mean_abs_error_when_wrong``, ``max_abs_error``
    Magnitude of the wrong products.
``affected_bits``
    Output bits of ``p`` that differ from the exact product for at least one pair.
``equivalence_class``, ``equivalent_faults``
    Faults with the identical faulty function (e.g. an inverter's input SA0 and output SA1)
    share a class, named by its best-ranked member.

What is stored (``OUT/``)
-------------------------
* ``stuckat.csv`` -- every fault, ranked;
* ``report.md`` -- summary and the ``top`` most damaging faults (Markdown table);
* ``top_faults.png`` -- bar chart of the ``top`` faults (at most 20);
* ``tables/stuckat_<net>_SA<v>.parquet`` -- on request only (``tables``, ``tables_top``): the
  fault's :class:`~sim.tables.CompressedTable`, every pair's wrong product with probability
  1 (``p_wrong`` is 0 or 1; ``period`` is the critical path: the values are settled);
* ``meta.json`` -- settings, design hashes, counts, tool versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .atomic import atomic_frame, atomic_text, output_folder, save_figure
from .delay import DelayAnnotation
from .engine import TimingEngine, default_threads
from .errtable import tool_versions
from .manifest import META, write_meta
from .netlist import Netlist
from .operands import Operands, settled_codes, to_value
from .plan import PlanError
from .tables import CompressedTable
from .workers import check, completed

__all__ = [
    "FaultSite",
    "StuckAtConfig",
    "StuckAtResult",
    "fault_sites",
    "fault_table",
    "faulty_products",
    "parse_faults",
    "run_stuckat",
]

RANK_BY = ("mean_abs_error", "error_rate", "max_abs_error")
SAMPLE_VECTORS = 1 << 16
"""Random input vectors of a design without tables over operand pairs."""
SAMPLE_SEED = 0
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FaultSite:
    """A net that can be stuck: a primary input bit or a cell output."""

    net: str
    driver: str  #: cell instance, or the input port bit
    cell_type: str  #: cell type and pin (``XOR2.Y``), or ``input``


@dataclass(frozen=True)
class StuckAtConfig:
    """Settings of a stuck-at campaign (recorded in ``meta.json``).

    Parameters
    ----------
    nets:
        Nets to fault; ``None`` for every input bit and cell output.
    values:
        Stuck values to try.
    rank_by:
        Ranking measure: ``"mean_abs_error"``, ``"error_rate"`` or ``"max_abs_error"``.
    top:
        Faults in the report and the plot (the plot shows at most 20).
    tables:
        ``(net, value)`` faults whose compressed table is written.
    tables_top:
        Also write the tables of the ``tables_top`` best-ranked faults.
    """

    nets: tuple[str, ...] | None = None
    values: tuple[int, ...] = (0, 1)
    rank_by: str = "mean_abs_error"
    top: int = 20
    tables: tuple[tuple[str, int], ...] = ()
    tables_top: int = 0

    def __post_init__(self) -> None:
        if not self.values or any(v not in (0, 1) for v in self.values):
            raise PlanError(f"Stuck-at values are 0 and 1, not {list(self.values)}")
        if self.rank_by not in RANK_BY:
            raise PlanError(f"Rank by one of {', '.join(RANK_BY)}, not {self.rank_by!r}")
        if self.top < 1 or self.tables_top < 0:
            raise PlanError(f"--top must be positive and --tables-top non-negative, not "
                            f"{self.top} and {self.tables_top}")
        if self.nets is not None and not self.nets:
            raise PlanError("Give at least one net to fault, or none for all")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tables"] = [f"{n}:{v}" for n, v in self.tables]
        return d


def parse_faults(text: str) -> tuple[tuple[str, int], ...]:
    """``"NET:0,NET:SA1"`` -> ``(("NET", 0), ("NET", 1))`` (the net name may contain ``:``)."""
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        net, sep, value = item.rpartition(":")
        v = value.strip().upper().removeprefix("SA")
        if not sep or not net or v not in ("0", "1"):
            raise PlanError(f"A fault is NET:0 or NET:1 (or NET:SA0), not {item!r}")
        out.append((net, int(v)))
    return tuple(out)


# --- evaluation ------------------------------------------------------------------------------
def fault_sites(engine: TimingEngine) -> list[FaultSite]:
    """Every primary input bit, then every cell output in topological order."""
    plan = engine.plan
    sites = [FaultSite(plan.nets[n], plan.nets[n], "input") for n in plan.in_nets]
    sites += [FaultSite(plan.nets[node.out], node.cell, f"{node.cell_type}.{node.pin}")
              for node in plan.nodes]
    return sites


def faulty_products(engine: TimingEngine, forced: Mapping[str, int] | None = None, *,
                    signed: bool = True) -> I64:
    """Settled output value of every pair (flat index ``code(a) << W | code(b)`` of the
    engine's two operand ports) with ``forced`` nets stuck; without ``forced`` it is the
    fault-free reference, the design's own settled output."""
    out = engine.plan.output_ports[0]
    codes = engine.settled(np.arange(1 << (2 * _width(engine)), dtype=np.int64),
                           forced=forced)
    return to_value(codes, len(engine.netlist.outputs[out]), signed)


def _width(engine: TimingEngine) -> int:
    return len(engine.netlist.inputs[engine.plan.input_ports[0]])


def _sample_vectors(netlist: Netlist, ops: Operands) -> dict[str, I64] | None:
    """Random operand codes of a design without tables over operand pairs, else ``None``
    (every pair is evaluated)."""
    from .errtable import pair_width

    if pair_width(netlist, ops) is not None:
        return None
    rng = np.random.default_rng(SAMPLE_SEED)
    widths, _ = ops.ports(netlist)
    return {x: rng.integers(0, 1 << w, SAMPLE_VECTORS, dtype=np.int64)
            for x, w in widths.items()}


def _outputs(engine: TimingEngine, ops: Operands, vectors: Mapping[str, I64] | None,
             forced: Mapping[str, int] | None = None) -> I64:
    """Settled output values of every pair (``vectors is None``) or of ``vectors``."""
    if vectors is None:
        return faulty_products(engine, forced, signed=ops.signed)
    codes = settled_codes(engine, ops, vectors, forced=forced)
    return to_value(codes, len(engine.netlist.outputs[ops.p]), ops.signed)


def _bit_ranges(mask: int, nbits: int) -> str:
    """``0b1011101`` -> ``"0,2-4,6"``."""
    bits = [b for b in range(nbits) if (mask >> b) & 1]
    parts: list[str] = []
    i = 0
    while i < len(bits):
        j = i
        while j + 1 < len(bits) and bits[j + 1] == bits[j] + 1:
            j += 1
        parts.append(str(bits[i]) if i == j else f"{bits[i]}-{bits[j]}")
        i = j + 1
    return ",".join(parts)


def _measure(faulty: I64, exact: I64, out_bits: int) -> dict[str, Any]:
    err = faulty - exact
    wrong = err != 0
    mag = np.abs(err)
    omask = (1 << out_bits) - 1
    flips = np.bitwise_or.reduce((faulty ^ exact) & omask) if len(err) else 0
    return {"error_rate": float(wrong.mean()), "mean_abs_error": float(mag.mean()),
            "mean_abs_error_when_wrong": float(mag[wrong].mean()) if wrong.any() else 0.0,
            "max_abs_error": int(mag.max()), "mean_error": float(err.mean()),
            "affected_bits": _bit_ranges(int(flips), out_bits),
            "n_affected_bits": int(bin(int(flips)).count("1")),
            "_hash": hashlib.sha1(faulty.tobytes()).hexdigest()}


# --- tables ------------------------------------------------------------------------------------
def fault_table(width: int, faulty: I64, *, period: int,
                meta: Mapping[str, Any] | None = None, golden: I64 | None = None,
                signed: bool = True) -> CompressedTable:
    """The compressed table of a static fault: each wrong pair's output with probability 1.

    ``golden`` is the fault-free settled output value of every pair (the signed product
    when ``None``); ``signed`` says how values are read."""
    n = 1 << width
    if golden is None:
        v = np.arange(n, dtype=np.int64)
        v = np.where(v >= n // 2, v - n, v)
        golden = np.multiply.outer(v, v).ravel()
    wrong = faulty != golden
    offsets = np.zeros(n * n + 1, np.int64)
    np.cumsum(wrong, out=offsets[1:])
    return CompressedTable(width=width, period=period,
                           p_wrong=wrong.astype(np.float64).reshape(n, n), offsets=offsets,
                           wrong_output=faulty[wrong].astype(np.int64),
                           wrong_prob=np.ones(int(wrong.sum())), n_prev=np.ones((n, n), np.int64),
                           meta={**(meta or {}), "period": period, "exact": True},
                           golden=np.asarray(golden, np.int64).reshape(n, n), signed=signed)


def _file_name(net: str, value: int, taken: set[str]) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", net).strip("_") or "net"
    name = f"stuckat_{safe}_SA{value}.parquet"
    if name in taken:
        name = f"stuckat_{safe}_{hashlib.sha1(net.encode()).hexdigest()[:8]}_SA{value}.parquet"
    taken.add(name)
    return name


# --- the campaign ------------------------------------------------------------------------------
@dataclass
class StuckAtResult:
    """Ranked faults (``frame``, a pandas DataFrame), written tables and the run's meta."""

    frame: Any
    tables: dict[tuple[str, int], Path]
    meta: dict[str, Any]


def run_stuckat(netlist: Netlist, annotation: DelayAnnotation, config: StuckAtConfig,
                out: str | os.PathLike[str], *, settings: dict[str, Any] | None = None,
                progress: bool = True, log: Callable[[str], None] = print,
                threads: int | None = None, force: bool = False,
                operands: Operands | None = None) -> StuckAtResult:
    """Evaluate every stuck-at fault of ``netlist`` and write the report into ``out``.

    A fault's output is compared with the fault-free design's own settled output;
    ``operands`` names the ports and their signedness (default ``a``, ``b`` -> ``p``,
    signed).

    ``annotation`` only builds the engine (static values do not depend on delays);
    ``threads`` evaluate faults in parallel (default :func:`~sim.engine.default_threads`).
    ``out`` is claimed for the run (:func:`sim.atomic.output_folder`; ``force`` writes into
    a folder flipclock did not make). Ctrl-C stops within one fault.
    """
    from tqdm import tqdm

    out = Path(out)
    ops = operands or Operands()
    vectors = _sample_vectors(netlist, ops)  # ports: one line before any work
    if vectors is not None and (config.tables or config.tables_top):
        raise PlanError(f"{netlist.top!r} ({', '.join(ops.inputs)} -> {ops.p}) has no tables "
                        "over operand pairs (it is sampled); drop --tables and --tables-top")
    out_bits = len(netlist.outputs[ops.p])
    eng = TimingEngine(netlist, annotation, threads=1, inputs=list(ops.inputs),
                       outputs=[ops.p])
    sites = fault_sites(eng)
    by_net = {s.net: s for s in sites}
    chosen = sites if config.nets is None else [_site(by_net, n) for n in config.nets]
    for net, _ in config.tables:
        _site(by_net, net)
    exact = _outputs(eng, ops, vectors)  # the fault-free settled outputs
    with output_folder(out, force=force):
        faults = [(s, v) for s in chosen for v in config.values]
        log(f"stuck-at: {len(faults)} faults on {len(chosen)} nets, {len(exact)} "
            f"{'operand pairs' if vectors is None else 'random input vectors'} each")
        t0 = time.perf_counter()

        def one(site: FaultSite, value: int, *, stop: threading.Event) -> dict[str, Any]:
            check(stop)
            return _measure(_outputs(eng, ops, vectors, {site.net: value}), exact, out_bits)

        rows: list[dict[str, Any]] = [{} for _ in faults]
        with tqdm(total=len(faults), unit="fault", disable=not progress,
                  desc="stuck-at faults") as bar:
            with contextlib.closing(completed(one, faults,
                                              threads or default_threads())) as results:
                for i, row in results:
                    rows[i] = row
                    bar.update(1)
        elapsed = time.perf_counter() - t0
        sampled = None if vectors is None else {
            "vectors": len(exact), "seed": SAMPLE_SEED,
            "operand_widths": {x: len(netlist.inputs[x]) for x in ops.inputs}}
        return _finish(netlist, annotation, config, out, eng, ops, chosen, faults, rows,
                       elapsed, settings, exact, sampled)


def _finish(netlist: Netlist, annotation: DelayAnnotation, config: StuckAtConfig, out: Path,
            eng: TimingEngine, ops: Operands, chosen: list[FaultSite],
            faults: list[tuple[FaultSite, int]], rows: list[dict[str, Any]], elapsed: float,
            settings: dict[str, Any] | None, exact: I64,
            sampled: dict[str, Any] | None) -> StuckAtResult:
    """Rank the measured faults and write every file of the run; ``sampled`` describes the
    random input vectors of a design without pair tables (``None``: all pairs)."""
    import pandas as pd

    w = _width(eng)
    frame = _rank(pd.DataFrame([{"net": s.net, "driver": s.driver, "cell_type": s.cell_type,
                                 "fault": f"SA{v}", "value": v, **r}
                                for (s, v), r in zip(faults, rows, strict=True)]), config)
    meta = {"format": "flipclock-stuckat", "netlist_hash": netlist.content_hash,
            "delays_hash": annotation.content_hash,
            # a sampled design has neither one operand width nor all pairs
            "width": None if sampled else w, "pairs": None if sampled else len(exact),
            "operands": ops.to_dict(), **({"sampled": sampled} if sampled else {}),
            **config.to_dict(), "faults": len(faults), "nets_faulted": len(chosen),
            "undetectable_faults": int((frame.error_rate == 0).sum()),
            "equivalence_classes": int(frame.equivalence_class.nunique()),
            "critical_path_ticks": eng.critical_path, "compute_seconds": round(elapsed, 3),
            "tools": tool_versions(), **(settings or {})}
    (out / META).unlink(missing_ok=True)  # the folder reads as unfinished until the end
    tables = _write_tables(eng, ops, w, frame, config, out, meta, exact)
    _write_report(frame, config, out, meta, tables)
    return StuckAtResult(frame, tables, meta)


def _site(by_net: Mapping[str, FaultSite], net: str) -> FaultSite:
    if net not in by_net:
        raise PlanError(f"No net {net!r} to fault (primary input bits and cell outputs only); "
                        "see the net column of stuckat.csv")
    return by_net[net]


def _rank(frame: Any, config: StuckAtConfig) -> Any:
    frame["_order"] = np.arange(len(frame))
    keys = [config.rank_by, *(k for k in ("mean_abs_error", "error_rate") if k != config.rank_by)]
    frame = frame.sort_values([*keys, "_order"], ascending=[False] * len(keys) + [True],
                              kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    first = frame.groupby("_hash", sort=False)["net"].transform("first")
    first_fault = frame.groupby("_hash", sort=False)["fault"].transform("first")
    frame["equivalence_class"] = first + ":" + first_fault
    frame["equivalent_faults"] = frame.groupby("_hash")["net"].transform("size")
    return frame.drop(columns=["_order", "_hash"])


def _write_tables(eng: TimingEngine, ops: Operands, w: int, frame: Any, config: StuckAtConfig,
                  out: Path, meta: dict[str, Any], exact: I64) -> dict[tuple[str, int], Path]:
    wanted = list(config.tables)
    top = frame.head(config.tables_top)
    wanted += [(n, int(v)) for n, v in zip(top.net, top.value, strict=True)
               if (n, int(v)) not in wanted]
    folder = out / "tables"
    if not wanted:
        if folder.is_dir():  # tables of an earlier run into this (claimed) folder
            shutil.rmtree(folder)
        return {}
    (folder / META).unlink(missing_ok=True)
    taken: set[str] = set()
    written: dict[tuple[str, int], Path] = {}
    drivers = dict(zip(frame.net, frame.driver, strict=False))
    base: dict[str, Any] = {k: meta[k] for k in ("netlist_hash", "delays_hash", "design", "tick")
                            if k in meta}
    for net, value in wanted:
        faulty = faulty_products(eng, {net: value}, signed=ops.signed)
        table = fault_table(w, faulty, period=int(meta["critical_path_ticks"]), meta={
            **base, "mode": "stuck-at", "fault": {"net": net, "value": value,
                                                  "driver": drivers.get(net, net)}},
            golden=exact, signed=ops.signed)
        written[net, value] = table.write(folder / _file_name(net, value, taken))
    for stale in folder.glob("*.parquet"):
        if stale.name not in taken:
            stale.unlink()
    write_meta(folder, {"format": "flipclock-stuckat", **base, "tables": {
        p.name: f"{n}:{v}" for (n, v), p in written.items()}}, taken)
    return written


def _write_report(frame: Any, config: StuckAtConfig, out: Path, meta: dict[str, Any],
                  tables: Mapping[tuple[str, int], Path]) -> None:
    atomic_frame(frame, out / "stuckat.csv")
    atomic_text(out / "report.md", format_report(frame, config.top, meta))
    plot_top(frame, out / "top_faults.png", min(config.top, 20), config.rank_by)
    files = ["stuckat.csv", "report.md", "top_faults.png",
             *(f"tables/{p.name}" for p in tables.values())]
    write_meta(out, meta, files)


def format_report(frame: Any, top: int, meta: Mapping[str, Any]) -> str:
    """Markdown report: counts and the ``top`` most damaging faults."""
    head = frame.head(top)
    kind = "signed" if meta.get("operands", {}).get("signed", True) else "unsigned"
    sampled = meta.get("sampled")
    over = (f"all {meta['pairs']} operand pairs ({meta['width']}-bit {kind} operands)"
            if not sampled else
            f"{sampled['vectors']} random input vectors (seed {sampled['seed']}) of "
            + ", ".join(f"{x} ({w} bits)" for x, w in sampled["operand_widths"].items())
            + f", {kind} values")
    lines = [f"# Stuck-at faults of {meta.get('design', meta['netlist_hash'][:12])}", "",
             f"{meta['faults']} faults ({meta['nets_faulted']} nets x "
             f"{len(meta['values'])} values) over {over}, static settled values against the "
             "fault-free design's own. "
             f"Faults that never change a product: {meta['undetectable_faults']}; "
             f"{meta['equivalence_classes']} distinct faulty functions. Ranked by "
             f"{meta['rank_by']}.", "",
             "| rank | net | driver | cell | fault | error rate | mean abs error | "
             "max abs error | affected bits of p | equivalent faults |",
             "|---:|---|---|---|---|---:|---:|---:|---|---:|"]
    for r in head.itertuples():
        lines.append(f"| {r.rank} | `{r.net}` | `{r.driver}` | {r.cell_type} | {r.fault} | "
                     f"{r.error_rate:.4f} | {r.mean_abs_error:.1f} | {r.max_abs_error} | "
                     f"{r.affected_bits or '-'} | {r.equivalent_faults} |")
    return "\n".join(lines) + "\n"


def plot_top(frame: Any, path: Path, k: int, rank_by: str) -> None:
    """Bar chart of the ``k`` best-ranked faults: mean |error| and error rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = frame.head(k).iloc[::-1]
    labels = [f"{n} {f} ({c})" for n, f, c in zip(head.net, head.fault, head.cell_type,
                                                    strict=True)]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 0.32 * len(head) + 1.6), dpi=120,
                                 sharey=True)
    pos = np.arange(len(head))
    ax.barh(pos, head.mean_abs_error, color="tab:red")
    ax.set_xlabel("mean |faulty - exact| over all pairs")
    bx.barh(pos, head.error_rate * 100, color="tab:blue")
    bx.set_xlabel("wrong products (%)")
    ax.set_yticks(pos, labels, fontsize=7, parse_math=False)  # net names may hold '$'
    fig.suptitle(f"{len(head)} most damaging stuck-at faults (ranked by {rank_by})")
    fig.tight_layout()
    save_figure(fig, path)
