"""Error tables of a multiplier at shortened clock periods (Tables I-III of Wu et al.).

:func:`build_tables` runs the timing engine over current operand pairs in *shards*
(contiguous ranges of the flat pair index), each written atomically to
``OUT/shards/`` as soon as it is done, so a killed run resumes where it stopped and gives
the identical result. Shards run on local threads or on a Dask distributed cluster.

Modes
-----
``exhaustive``
    Every previous pair for every current pair (``2**32`` transitions for 8-bit
    operands), weighted by the previous-input distribution
    (:class:`~sim.engine.PrevWeights`). Probabilities are exact.
``sample``
    ``samples`` previous pairs drawn per current pair from the distribution (seeded per
    shard, so the result does not depend on the execution order); every probability
    gets a Wilson score interval.

Designs without tables over operand pairs
-----------------------------------------
More than two operands (``a * b + c``), operands of unequal widths or wider than 8 bits, or
an output wider than ``2W``: :func:`pair_width` is ``None`` and only ``sample`` mode runs
(exhaustive mode is one line naming ``--mode sample``). :func:`build_sampled` then draws
``samples`` random transitions in all (every operand port uniform, previous and current
independent, seeded per shard of :data:`SAMPLE_CHUNK`) and writes the error rate per
period with a Wilson interval, the mean and largest error magnitude, ``report.md`` and
every transition as ``full_T{period}.parquet``; there are no per-pair tables.

What is stored (``OUT/``)
-------------------------
* ``compressed_T{period}.parquet`` -- Table II (:class:`~sim.tables.CompressedTable`):
  per current pair the correct output and each distinct wrong output with probability
  (and CI);
* ``weight_error_T{period}.csv`` -- Table III: per weight value the probability of a
  wrong product, with the weight on port ``a`` and on port ``b``, activations uniform;
* ``full_T{period}.parquet`` -- Table I rows: all sampled transitions (sample mode) or,
  in exhaustive mode, every previous pair of the current pairs named by ``full_pairs``
  (all ``2**32`` rows are not stored: the compressed table is the sufficient statistic
  for a given previous-input distribution, and a run with another distribution is a new
  table);
* ``summary.csv`` and ``error_rate.png`` -- error rate per period;
* ``meta.json`` -- every setting (netlist and delay hashes, delay model, semantics,
  periods, tick, previous-input distribution, sample counts, seed, tool versions), the
  content hash of the tables, and the hash of every file written (:mod:`sim.manifest`):
  :func:`load_tables` and :meth:`~sim.tables.CompressedTable.read` refuse a damaged file
  and a file of a period the run did not write.

A run holds ``OUT`` (:func:`sim.atomic.output_folder`): a second run into the same folder
stops with one line. Ctrl-C stops the shard workers within one kernel call; the shards
finished so far are kept and the next run resumes from them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .atomic import atomic_frame, atomic_text, atomic_write, output_folder, save_figure
from .delay import DelayAnnotation
from .engine import PrevWeights, TimingEngine, default_threads
from .manifest import ManifestError, verify_folder, write_meta
from .netlist import Netlist
from .operands import Operands, settled_codes, to_value
from .plan import PlanError, Semantics
from .tables import CompressedTable, TableError, operand_values
from .workers import completed

__all__ = ["SAMPLE_CHUNK", "TableConfig", "TableSet", "build_sampled", "build_tables",
           "load_tables", "multiplier_width", "pair_width", "remove_stale", "wilson"]

SHARD_FORMAT = "flipclock-errtable-shard-1"


def wilson(k: npt.ArrayLike, n: npt.ArrayLike, confidence: float = 0.95,
           ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Wilson score interval of binomial proportions ``k / n`` (elementwise)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    k = np.asarray(k, np.float64)
    n = np.maximum(np.asarray(n, np.float64), 1e-300)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(np.maximum(p * (1 - p) / n + z * z / (4 * n * n), 0)) / denom
    # the bounds are exactly 0 at k = 0 and exactly 1 at k = n; centre -/+ half leaves a
    # rounding residue there (1e-19) that reports would print as a rate
    lo = np.where(k <= 0, 0.0, np.clip(centre - half, 0, 1))
    hi = np.where(k >= n, 1.0, np.clip(centre + half, 0, 1))
    return lo, hi


@dataclass(frozen=True)
class TableConfig:
    """Settings of an error-table run (recorded in ``meta.json`` and every file).

    Parameters
    ----------
    periods:
        Capture periods in ticks (all computed in one pass).
    mode:
        ``"exhaustive"`` or ``"sample"``.
    semantics:
        Engine delay semantics.
    per_pin:
        Use per-pin delays.
    samples:
        Sample mode: previous pairs drawn per current pair.
    seed:
        Sample mode: seed (each shard uses ``[seed, shard]``).
    prev:
        Previous-input distribution.
    prev_source:
        Where the distribution came from (a file name), for the record.
    shard_pairs:
        Current pairs per shard.
    full_pairs:
        Exhaustive mode: flat indices of current pairs whose full Table I rows are stored.
    confidence:
        Level of the confidence intervals.
    operands:
        The operand and output ports and their signedness. A capture is wrong when it
        differs from the design's own settled output (:mod:`sim.operands`).
    """

    periods: tuple[int, ...]
    mode: str = "exhaustive"
    semantics: Semantics = "inertial"
    per_pin: bool = False
    samples: int = 64
    seed: int = 0
    prev: PrevWeights = field(default_factory=PrevWeights)
    prev_source: str = "uniform"
    shard_pairs: int = 2048
    full_pairs: tuple[int, ...] = ()
    confidence: float = 0.95
    operands: Operands = field(default_factory=Operands)

    def __post_init__(self) -> None:
        if not self.periods:
            raise PlanError("Give at least one --period")
        if any(p <= 0 for p in self.periods):
            raise PlanError(f"Clock periods must be positive numbers of ticks, not "
                            f"{[p for p in self.periods if p <= 0][0]}")
        if self.mode not in ("exhaustive", "sample"):
            raise PlanError(f"Mode must be 'exhaustive' or 'sample', not {self.mode!r}")
        if self.samples < 1 or self.shard_pairs < 1:
            raise PlanError("samples and shard_pairs must be positive")
        if not 0 < self.confidence < 1:
            raise PlanError(f"confidence must be in (0, 1), not {self.confidence}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        weights = d.pop("prev")["weights"]
        d["periods"] = sorted(set(self.periods))
        d["prev"] = {"kind": self.prev.kind, "source": self.prev_source,
                     "sha256": _hash_array(np.asarray(weights or (), np.float64))}
        if not self.operands.more:  # two-operand settings (and shard keys) as before
            d["operands"].pop("more")
        return d


def _hash_array(a: npt.NDArray[Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in ("flipclock", "pandas", "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


# --- shards ------------------------------------------------------------------------------
_ENGINES: dict[tuple[Any, ...], TimingEngine] = {}
_GOLDEN: dict[tuple[Any, ...], npt.NDArray[np.int64]] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(netlist: Netlist, annotation: DelayAnnotation, semantics: Semantics,
            per_pin: bool, ops: Operands | None = None) -> TimingEngine:
    """One engine per worker process and design (the kernel build is cached on disk)."""
    ops = ops or Operands()
    key = (netlist.content_hash, annotation.content_hash, semantics, per_pin, ops.inputs,
           ops.p)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = TimingEngine(netlist, annotation, semantics=semantics,
                                         per_pin=per_pin, threads=1, inputs=list(ops.inputs),
                                         outputs=[ops.p])
        return _ENGINES[key]


def golden_codes(eng: TimingEngine, w: int) -> npt.NDArray[np.int64]:
    """Settled output code of every flat pair (cached per engine): the reference every
    capture is judged against."""
    key = (id(eng), w)
    with _ENGINES_LOCK:
        cached = _GOLDEN.get(key)
    if cached is None:
        cached = eng.settled(np.arange(1 << (2 * w), dtype=np.int64))
        with _ENGINES_LOCK:
            _GOLDEN[key] = cached
    return cached


def run_shard(netlist: Netlist, annotation: DelayAnnotation, config: TableConfig,
              shard: int, pairs: npt.NDArray[np.int64], *,
              stop: threading.Event | None = None) -> dict[str, npt.NDArray[Any]]:
    """Compute one shard: current pairs ``pairs`` (flat indices), every period.

    Returns arrays ``nwrong [pairs, periods]`` (weight of wrong captures), ``records
    [k, 3]`` (pair, period index, output code), ``weights [k]`` and, in sample mode, the
    sampled transitions ``rows [n, 4]`` (unsigned codes) with their ``outputs [n, P]``.
    A design without pair tables (:func:`pair_width`) samples transitions instead:
    ``pairs`` are then the indices of the shard's transitions
    (:func:`_transition_shard`). Setting ``stop`` abandons the shard with
    :class:`~sim.workers.Stopped`.
    """
    ops = config.operands
    eng = _engine(netlist, annotation, config.semantics, config.per_pin, ops)
    periods = sorted(set(config.periods))
    if pair_width(netlist, ops) is None:
        return _transition_shard(eng, config, shard, pairs, periods, stop)
    w = len(netlist.inputs[ops.a])
    golden = golden_codes(eng, w)
    if config.mode == "exhaustive":
        res = eng.exhaustive(periods, pairs=pairs, prev=config.prev, golden=golden, stop=stop)
        return {"pairs": pairs, "nwrong": res.nwrong, "records": res.records,
                "weights": res.weights, "total": np.array([res.total])}
    rng = np.random.default_rng([config.seed, shard])
    k = config.samples
    cur = np.repeat(pairs, k)
    ca, cb = cur >> w, cur & ((1 << w) - 1)
    pa, pb = _draw_prev(rng, config.prev, ca, cb, w)
    out = eng.capture({ops.a: pa, ops.b: pb}, {ops.a: ca, ops.b: cb}, periods,
                      stop=stop)[ops.p]
    wrong = out != golden[cur][:, None]
    nwrong = wrong.reshape(len(pairs), k, len(periods)).sum(1).astype(np.float64)
    pi, ti = np.nonzero(wrong)
    rec = np.stack([cur[pi], ti, out[pi, ti]], axis=1)
    if len(rec):
        rec, counts = np.unique(rec, axis=0, return_counts=True)
    else:
        rec, counts = rec.reshape(0, 3), np.zeros(0, np.int64)
    return {"pairs": pairs, "nwrong": nwrong, "records": rec.astype(np.int64),
            "weights": counts.astype(np.float64), "total": np.array([float(k)]),
            "rows": np.stack([pa, pb, ca, cb], axis=1).astype(np.int32),
            "outputs": out.astype(np.int32)}


def _draw_prev(rng: np.random.Generator, prev: PrevWeights, ca: npt.NDArray[np.int64],
               cb: npt.NDArray[np.int64], w: int) -> tuple[npt.NDArray[np.int64],
                                                          npt.NDArray[np.int64]]:
    n = len(ca)
    m = (1 << w) - 1
    if prev.kind == "uniform":
        q = rng.integers(0, 1 << (2 * w), n)
        return q >> w, q & m
    _, weights = prev.arrays(w)
    p = weights / weights.sum()
    if prev.kind == "joint":
        q = rng.choice(len(p), size=n, p=p)
        return q >> w, q & m
    other = rng.choice(len(p), size=n, p=p)
    return (ca, other) if prev.kind == "stationary_a" else (other, cb)


def _shard_key(netlist: Netlist, annotation: DelayAnnotation, config: TableConfig) -> str:
    blob = json.dumps({"netlist": netlist.content_hash, "delays": annotation.content_hash,
                       "config": config.to_dict(), "format": SHARD_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def save_shard(path: Path, key: str, data: dict[str, npt.NDArray[Any]]) -> None:
    """Write one shard's arrays with its settings key, atomically (uncompressed: shards
    are scratch, and compressing them would cost more than the kernel saves)."""
    payload: dict[str, Any] = {"key": np.array(key), **data}
    atomic_write(path, lambda tmp: np.savez(tmp, **payload))


def load_shard(path: Path, key: str, what: str = "settings") -> dict[str, npt.NDArray[Any]]:
    """Read a shard written by :func:`save_shard`; damaged or foreign shards are errors."""
    try:
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # numpy raises several types for damaged archives
        raise TableError(f"Shard {str(path)!r} is damaged ({exc}); delete it and run "
                         "again to recompute it") from None
    if str(data.pop("key", "")) != key:
        raise TableError(f"Shard {str(path)!r} belongs to a different netlist, delay "
                         f"annotation or {what}; use another --out folder or --force")
    return data


# --- assembling the tables ------------------------------------------------------------------
@dataclass
class TableSet:
    """The tables of one run: per period a :class:`CompressedTable`, and a summary."""

    tables: dict[int, CompressedTable]
    summary: Any  # pandas.DataFrame
    meta: dict[str, Any]
    full: dict[int, Any] = field(default_factory=dict)  # period -> DataFrame (Table I)


def _assemble(width: int, periods: list[int], shards: Iterable[dict[str, npt.NDArray[Any]]],
              config: TableConfig, meta: dict[str, Any], golden: npt.NDArray[np.int64],
              out_bits: int) -> TableSet:
    import pandas as pd

    signed = config.operands.signed
    gold = to_value(golden, out_bits, signed)
    n = 1 << width
    nwrong = np.zeros((n * n, len(periods)))
    covered = np.zeros(n * n, bool)
    recs, ws = [], []
    total = None
    rows, outs = [], []
    for data in shards:
        nwrong[data["pairs"]] = data["nwrong"]
        covered[data["pairs"]] = True
        recs.append(data["records"])
        ws.append(data["weights"])
        total = float(data["total"][0])
        if "rows" in data:
            rows.append(data["rows"])
            outs.append(data["outputs"])
    if not covered.all() or total is None:
        raise TableError("Some current pairs have no shard; run again to complete the table")
    rec = np.concatenate(recs) if recs else np.zeros((0, 3), np.int64)
    wts = np.concatenate(ws) if ws else np.zeros(0)
    rec = rec.copy()
    rec[:, 2] = to_value(rec[:, 2], out_bits, signed)
    order = np.lexsort((rec[:, 2], rec[:, 1], rec[:, 0]))  # canonical: by output value
    rec, wts = rec[order], wts[order]
    exact_mode = config.mode == "exhaustive"
    n_prev = np.full((n, n), int(round(total)) if not exact_mode else _support(config, width),
                     np.int64)
    tables: dict[int, CompressedTable] = {}
    summary = []
    for i, period in enumerate(periods):
        sel = rec[:, 1] == i
        pairs_i = rec[sel, 0]
        offsets = np.zeros(n * n + 1, np.int64)
        np.cumsum(np.bincount(pairs_i, minlength=n * n), out=offsets[1:])
        codes = rec[sel, 2]
        table = CompressedTable(
            width=width, period=period,
            p_wrong=(nwrong[:, i] / total).reshape(n, n), offsets=offsets,
            wrong_output=codes,
            wrong_prob=wts[sel] / total, n_prev=n_prev,
            meta={**meta, "period": period, "exact": exact_mode},
            golden=gold.reshape(n, n), signed=signed)
        tables[period] = table
        p = table.p_wrong
        errs = np.abs(table.wrong_output - np.repeat(table.exact().ravel(), np.diff(offsets)))
        mag = float((errs * table.wrong_prob).sum() / max(p.sum(), 1e-300)) if len(errs) else 0.0
        row = {"period": period, "error_rate": float(p.mean()),
               "pairs_with_errors": int((p > 0).sum()), "max_pair_error": float(p.max()),
               "distinct_wrong_outputs": int(len(codes)), "mean_abs_error": mag}
        if not exact_mode:
            k = nwrong[:, i].sum()
            lo, hi = wilson(k, total * n * n, config.confidence)
            row.update(ci_low=float(lo), ci_high=float(hi))
        summary.append(row)
    full: dict[int, Any] = {}
    if rows:
        r = np.concatenate(rows).astype(np.int64)
        o = np.concatenate(outs)
        v = operand_values(width, signed)
        ref = golden[(r[:, 2] << width) | r[:, 3]]
        for i, period in enumerate(periods):
            codes = o[:, i].astype(np.int64)
            full[period] = pd.DataFrame({
                "prev_a": v[r[:, 0]], "prev_b": v[r[:, 1]], "cur_a": v[r[:, 2]],
                "cur_b": v[r[:, 3]], "output": to_value(codes, out_bits, signed),
                "correct": codes == ref})
    return TableSet(tables, pd.DataFrame(summary), meta, full)


def _support(config: TableConfig, width: int) -> int:
    """Previous pairs with non-zero weight per current pair (exhaustive mode)."""
    if config.prev.kind == "uniform":
        return 1 << (2 * width)
    return int(np.count_nonzero(config.prev.arrays(width)[1]))


# --- the run --------------------------------------------------------------------------------
def build_tables(netlist: Netlist, annotation: DelayAnnotation, config: TableConfig,
                 out: str | os.PathLike[str], *, settings: dict[str, Any] | None = None,
                 progress: bool = True, client: Any = None, force: bool = False,
                 csv: bool = False, log: Callable[[str], None] = print) -> TableSet:
    """Build (or resume) the error tables of ``netlist`` into folder ``out``.

    Parameters
    ----------
    settings:
        Extra facts to record (e.g. the design folder).
    client:
        A ``dask.distributed.Client`` to run shards on; local threads when ``None``.
    force:
        Discard shards of other settings found in ``out/shards`` instead of failing.
    csv:
        Also write CSV exports of the compressed and full tables.
    """
    out = Path(out)
    periods = sorted(set(int(p) for p in config.periods))
    ops = config.operands
    if config.mode == "sample" and pair_width(netlist, ops) is None:
        return build_sampled(netlist, annotation, config, out, settings=settings,
                             progress=progress, client=client, force=force, csv=csv, log=log)
    w = multiplier_width(netlist, ops)  # exhaustive without pair tables: names --mode sample
    out_bits = len(netlist.outputs[ops.p])
    eng = _engine(netlist, annotation, config.semantics, config.per_pin, ops)
    golden = golden_codes(eng, w)
    horizon_cp = eng.critical_path
    if max(periods) > horizon_cp:
        raise PlanError(f"Period {max(periods)} is beyond the critical path ({horizon_cp} "
                        "ticks), where no capture can be wrong; use periods up to "
                        f"{horizon_cp}")
    with output_folder(out, force=force, tables=True):
        key = _shard_key(netlist, annotation, config)
        n_pairs = 1 << (2 * w)
        shards, paths, done, todo = _plan_shards(out, n_pairs, config.shard_pairs, key, force)
        t0 = time.perf_counter()
        if todo:
            log(f"{config.mode} table: {len(todo)} of {len(shards)} shards to compute "
                f"({len(done)} resumed), periods {periods}")
            _run(netlist, annotation, config, todo, paths, key, client, progress)
        elapsed = time.perf_counter() - t0
        meta = {
            "format": "flipclock-errtable", "netlist_hash": netlist.content_hash,
            "delays_hash": annotation.content_hash, "delay_model": annotation.model.to_dict(),
            "tick": annotation.tick_label, "tick_seconds": annotation.seconds_per_tick,
            "critical_path_ticks": horizon_cp, "width": w, **config.to_dict(),
            "transitions_per_period": (n_pairs * (n_pairs if config.mode == "exhaustive"
                                                  else config.samples)),
            "tools": tool_versions(), **(settings or {}),
        }
        tset = _assemble(w, periods, (load_shard(paths[i], key) for i, _ in shards), config,
                         meta, golden, out_bits)
        if config.full_pairs and config.mode == "exhaustive":
            tset.full = _full_rows(eng, ops, w, periods, config.full_pairs, golden)
        # without meta.json the folder reads as unfinished until every file is in place
        (out / "meta.json").unlink(missing_ok=True)
        digest, files = _write_outputs(tset, out, csv=csv)
        remove_stale(out, files)
        meta.update(content_hash=digest, compute_seconds=round(elapsed, 3))
        write_meta(out, meta, files)
    return tset


_Shards = list[tuple[int, npt.NDArray[np.int64]]]


def _plan_shards(out: Path, n: int, size: int, key: str, force: bool,
                 ) -> tuple[_Shards, dict[int, Path], set[int], _Shards]:
    """Items ``0 .. n-1`` in shards of ``size``: ``(shards, paths, done, todo)``, where
    ``done`` are the shards already computed with these settings (:func:`_resumable`)."""
    bounds = [*range(0, n, size), n]
    shards = [(i, np.arange(bounds[i], bounds[i + 1], dtype=np.int64))
              for i in range(len(bounds) - 1)]
    paths = {i: out / "shards" / f"shard_{i:05d}.npz" for i, _ in shards}
    done = _resumable(paths, key, force)
    return shards, paths, done, [(i, p) for i, p in shards if i not in done]


def _resumable(paths: dict[int, Path], key: str, force: bool) -> set[int]:
    """Shards already computed with these settings; with ``force`` others are deleted."""
    done: set[int] = set()
    for i, path in paths.items():
        if path.is_file():
            try:
                load_shard(path, key)
                done.add(i)
            except TableError:
                if not force:
                    raise
                path.unlink()
    return done


_RESULT_FILES = ("compressed_T*.parquet", "compressed_T*.csv", "weight_error_T*.csv",
                 "full_T*.parquet", "full_T*.csv", "pair_stats_T*.parquet", "report.md")


def remove_stale(out: Path, keep: Sequence[str]) -> None:
    """Delete per-period result files in ``out`` that this run did not write (tables of
    other periods or settings left by an earlier run); ``out`` is a folder flipclock
    claimed, so these files are its own."""
    for pattern in _RESULT_FILES:
        for path in out.glob(pattern):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def _run(netlist: Netlist, annotation: DelayAnnotation, config: TableConfig,
         todo: list[tuple[int, npt.NDArray[np.int64]]], paths: dict[int, Path], key: str,
         client: Any, progress: bool, unit: str = "pair", desc: str = "current pairs") -> None:
    from tqdm import tqdm

    bar = tqdm(total=sum(len(p) for _, p in todo), unit=unit, disable=not progress,
               desc=desc, smoothing=0.05)
    try:
        if client is not None:
            from distributed import as_completed

            futures = {client.submit(run_shard, netlist, annotation, config, i, p,
                                     pure=False): i for i, p in todo}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    data = fut.result()
                    save_shard(paths[i], key, data)
                    bar.update(len(data["pairs"]))
            except BaseException:
                client.cancel(list(futures))
                raise
            return
        # threads share one compiled kernel; each shard runs single-threaded in C, and
        # Ctrl-C stops them within one kernel call (sim.workers)
        items = [(netlist, annotation, config, i, p) for i, p in todo]
        with contextlib.closing(completed(run_shard, items, default_threads())) as results:
            for k, data in results:
                save_shard(paths[todo[k][0]], key, data)
                bar.update(len(data["pairs"]))
    finally:
        bar.close()


def _full_rows(eng: TimingEngine, ops: Operands, w: int, periods: list[int],
               pairs: Sequence[int], golden: npt.NDArray[np.int64]) -> dict[int, Any]:
    """Table I rows: every previous pair of the chosen current pairs."""
    import pandas as pd

    v = operand_values(w, ops.signed)
    bits = len(eng.netlist.outputs[ops.p])
    q = np.arange(1 << (2 * w), dtype=np.int64)
    frames: dict[int, list[Any]] = {p: [] for p in periods}
    for c in pairs:
        ca, cb = int(c) >> w, int(c) & ((1 << w) - 1)
        out = eng.capture({ops.a: q >> w, ops.b: q & ((1 << w) - 1)},
                          {ops.a: np.full(len(q), ca), ops.b: np.full(len(q), cb)},
                          periods)[ops.p]
        for i, p in enumerate(periods):
            codes = out[:, i]
            frames[p].append(pd.DataFrame({
                "prev_a": v[q >> w], "prev_b": v[q & ((1 << w) - 1)], "cur_a": v[ca],
                "cur_b": v[cb], "output": to_value(codes, bits, ops.signed),
                "correct": codes == golden[int(c)]}))
    return {p: pd.concat(f, ignore_index=True) for p, f in frames.items()}


def _write_outputs(tset: TableSet, out: Path, *, csv: bool) -> tuple[str, list[str]]:
    """Write every table file; return the content hash of the tables and the file names."""
    import pyarrow as pa

    h = hashlib.sha256()
    files: list[str] = []
    meta_blob = json.dumps(tset.meta, sort_keys=True).encode()
    for period, table in sorted(tset.tables.items()):
        table.write(out / f"compressed_T{period}.parquet", csv=csv)
        files += [f"compressed_T{period}.parquet"] + ([f"compressed_T{period}.csv"] if csv else [])
        for arr in (table.p_wrong, table.offsets, table.wrong_output, table.wrong_prob):
            h.update(np.ascontiguousarray(arr).tobytes())
        atomic_frame(weight_error_frame(table), out / f"weight_error_T{period}.csv")
        files.append(f"weight_error_T{period}.csv")
    for period, df in tset.full.items():
        t = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(
            {b"flipclock.meta": meta_blob})
        atomic_write(out / f"full_T{period}.parquet", functools.partial(_write_parquet, t))
        files.append(f"full_T{period}.parquet")
        if csv:
            atomic_frame(df, out / f"full_T{period}.csv")
            files.append(f"full_T{period}.csv")
    atomic_frame(tset.summary, out / "summary.csv")
    plot_error_rates(tset, out / "error_rate.png")
    return h.hexdigest(), [*files, "summary.csv", "error_rate.png"]


def _write_parquet(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def weight_error_frame(table: CompressedTable) -> Any:
    """Table III for both operand roles, uniform activations, with Wilson CIs (sample)."""
    import pandas as pd

    v = table.values()
    df = pd.DataFrame({"weight": v})
    for port in ("a", "b"):
        p = table.weight_error_probability(port)
        df[f"p_error_weight_on_{port}"] = p
        if not table.meta.get("exact", True):
            trials = (table.n_prev if port == "a" else table.n_prev.T).sum(1)
            lo, hi = wilson(p * trials, trials, table.meta.get("confidence", 0.95))
            df[f"ci_low_{port}"] = lo
            df[f"ci_high_{port}"] = hi
    return df.iloc[np.argsort(v, kind="stable")].reset_index(drop=True)


def plot_error_rates(tset: TableSet, path: Path) -> None:
    """Error rate (uniform current and previous pairs) against the clock period."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = tset.summary
    cp = tset.meta.get("critical_path_ticks")
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    period = s["period"].to_numpy()
    rate = s["error_rate"].to_numpy() * 100
    pos = rate > 0
    ax.semilogy(period[pos], rate[pos], marker="o", label="wrong products")
    if "ci_low" in s:
        lo = s["ci_low"].to_numpy() * 100
        ax.fill_between(period[pos], np.maximum(lo[pos], rate[pos] / 10), s["ci_high"][pos] * 100,
                        alpha=0.25, label=f"{int(100 * tset.meta.get('confidence', 0.95))} % CI")
    if (~pos).any():  # a log axis has no zero: mark the periods where nothing was wrong
        floor = rate[pos].min() / 10 if pos.any() else 1e-6
        ax.semilogy(period[~pos], np.full((~pos).sum(), floor), marker="v", linestyle="none",
                    color="tab:green", label="no wrong product")
    if cp:
        ax.axvline(cp, color="grey", linestyle="--", label=f"critical path ({cp} ticks)")
    ax.set_xlabel(f"clock period (ticks of {tset.meta.get('tick', '?')})")
    ax.set_ylabel("wrong products (%)")
    ax.set_title(f"{tset.meta.get('mode', '')} error table, {tset.meta.get('semantics', '')} "
                 "delays")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


# --- designs without pair tables: sampled transitions ----------------------------------------
SAMPLE_CHUNK = 1 << 16
"""Transitions per shard when a design is sampled by transitions (:func:`build_sampled`)."""


def _draw_transitions(rng: np.random.Generator, widths: Sequence[int], n: int
                      ) -> npt.NDArray[np.int64]:
    """``[n, 2N]`` uniform unsigned codes: previous inputs of the N ports, then current."""
    cols = [rng.integers(0, 1 << w, n, dtype=np.int64) for _ in range(2) for w in widths]
    return np.stack(cols, axis=1)


def _transition_shard(eng: TimingEngine, config: TableConfig, shard: int,
                      index: npt.NDArray[np.int64], periods: list[int],
                      stop: threading.Event | None) -> dict[str, npt.NDArray[Any]]:
    """``len(index)`` random transitions (seeded ``[seed, shard]``, so the result does not
    depend on the execution order): their codes ``rows [n, 2N]``, captured ``outputs
    [n, P]`` and the settled output of the current inputs, ``golden [n]``."""
    ops = config.operands
    widths = [len(eng.netlist.inputs[x]) for x in ops.inputs]
    rows = _draw_transitions(np.random.default_rng([config.seed, shard]), widths, len(index))
    k = len(widths)
    prev = {x: rows[:, i] for i, x in enumerate(ops.inputs)}
    cur = {x: rows[:, k + i] for i, x in enumerate(ops.inputs)}
    out = eng.capture(prev, cur, periods, stop=stop)[ops.p]
    golden = settled_codes(eng, ops, cur)
    return {"pairs": index, "rows": rows, "outputs": out.astype(np.int64), "golden": golden}


def build_sampled(netlist: Netlist, annotation: DelayAnnotation, config: TableConfig,
                  out: str | os.PathLike[str], *, settings: dict[str, Any] | None = None,
                  progress: bool = True, client: Any = None, force: bool = False,
                  csv: bool = False, log: Callable[[str], None] = print) -> TableSet:
    """Error rates of a design without tables over operand pairs, from ``config.samples``
    random transitions (every operand port uniform, previous and current independent).

    A capture is wrong when it differs from the design's own settled output for the
    current inputs. Writes ``summary.csv`` (per period: wrong captures, error rate with a
    Wilson interval, mean and largest ``|captured - settled|`` of the wrong ones, values
    read as ``config.operands.signed`` says), ``report.md``, ``error_rate.png``,
    ``full_T{period}.parquet`` (every transition: operands, captured and settled output)
    and ``meta.json``. Shards of :data:`SAMPLE_CHUNK` transitions resume like those of
    :func:`build_tables`; the returned :class:`TableSet` has no per-pair tables.
    """
    out = Path(out)
    periods = sorted(set(int(p) for p in config.periods))
    ops = config.operands
    if config.mode != "sample":
        multiplier_width(netlist, ops)  # one line naming --mode sample
    if config.prev.kind != "uniform" or config.full_pairs:
        raise PlanError("A design without tables over operand pairs samples uniform "
                        "transitions: drop --prev and --full-pairs")
    widths, out_bits = ops.ports(netlist)
    eng = _engine(netlist, annotation, config.semantics, config.per_pin, ops)
    cp = eng.critical_path
    if max(periods) > cp:
        raise PlanError(f"Period {max(periods)} is beyond the critical path ({cp} ticks), "
                        f"where no capture can be wrong; use periods up to {cp}")
    with output_folder(out, force=force, tables=True):
        key = _shard_key(netlist, annotation, config)
        shards, paths, done, todo = _plan_shards(out, config.samples, SAMPLE_CHUNK, key,
                                                 force)
        t0 = time.perf_counter()
        if todo:
            log(f"sampled transitions: {len(todo)} of {len(shards)} shards to compute "
                f"({len(done)} resumed), periods {periods}")
            _run(netlist, annotation, config, todo, paths, key, client, progress,
                 unit="transition", desc="transitions")
        elapsed = time.perf_counter() - t0
        data = [load_shard(paths[i], key) for i, _ in shards]
        rows = np.concatenate([d["rows"] for d in data])
        outs = np.concatenate([d["outputs"] for d in data])
        golden = np.concatenate([d["golden"] for d in data])
        meta = {
            "format": "flipclock-errtable", "table": "transitions",
            "netlist_hash": netlist.content_hash, "delays_hash": annotation.content_hash,
            "delay_model": annotation.model.to_dict(), "tick": annotation.tick_label,
            "tick_seconds": annotation.seconds_per_tick, "critical_path_ticks": cp,
            "operand_widths": widths, "output_width": out_bits, **config.to_dict(),
            "operands": ops.to_dict(),  # the form crosscheck and stuckat record
            "transitions_per_period": int(config.samples), "tools": tool_versions(),
            **(settings or {}),
        }
        tset = _sampled_tables(ops, widths, out_bits, periods, rows, outs, golden, config,
                               meta)
        (out / "meta.json").unlink(missing_ok=True)  # unfinished until every file is in
        files = []
        for period, df in tset.full.items():
            atomic_frame(df, out / f"full_T{period}.parquet")
            files.append(f"full_T{period}.parquet")
            if csv:
                atomic_frame(df, out / f"full_T{period}.csv")
                files.append(f"full_T{period}.csv")
        atomic_frame(tset.summary, out / "summary.csv")
        plot_error_rates(tset, out / "error_rate.png")
        atomic_text(out / "report.md", format_sampled_report(tset))
        files += ["summary.csv", "error_rate.png", "report.md"]
        remove_stale(out, files)
        h = hashlib.sha256()
        for arr in (rows, outs, golden):
            h.update(np.ascontiguousarray(arr).tobytes())
        meta.update(content_hash=h.hexdigest(), compute_seconds=round(elapsed, 3))
        tset.meta = write_meta(out, meta, files)
    return tset


def _sampled_tables(ops: Operands, widths: Mapping[str, int], out_bits: int,
                    periods: list[int], rows: npt.NDArray[np.int64],
                    outs: npt.NDArray[np.int64], golden: npt.NDArray[np.int64],
                    config: TableConfig, meta: dict[str, Any]) -> TableSet:
    """Summary per period and every transition as a frame (values read by signedness)."""
    import pandas as pd

    k = len(ops.inputs)
    n = len(rows)
    ref = to_value(golden, out_bits, ops.signed)
    cols: dict[str, Any] = {}
    for j, when in enumerate(("prev", "cur")):
        for i, x in enumerate(ops.inputs):
            cols[f"{when}_{x}"] = to_value(rows[:, j * k + i], widths[x], ops.signed)
    summary, full = [], {}
    for i, period in enumerate(periods):
        got = to_value(outs[:, i], out_bits, ops.signed)
        wrong = got != ref
        err = np.abs(got - ref)[wrong]
        nw = int(wrong.sum())
        lo, hi = wilson(nw, n, config.confidence)
        summary.append({"period": period, "transitions": n, "wrong_captures": nw,
                        "error_rate": nw / n, "ci_low": float(lo), "ci_high": float(hi),
                        "distinct_wrong_outputs": int(len(np.unique(got[wrong]))),
                        "mean_abs_error": float(err.mean()) if nw else 0.0,
                        "max_abs_error": int(err.max()) if nw else 0})
        full[period] = pd.DataFrame({**cols, "output": got, "settled": ref,
                                     "correct": ~wrong})
    return TableSet({}, pd.DataFrame(summary), meta, full)


def format_sampled_report(tset: TableSet) -> str:
    """Markdown report of a run over sampled transitions."""
    m = tset.meta
    ops = m["operands"]
    ports = ", ".join(f"{x} ({w} bits)" for x, w in m["operand_widths"].items())
    kind = "signed" if ops["signed"] else "unsigned"
    lines = [f"# Sampled error rates of {m.get('design', m['netlist_hash'][:12])}", "",
             f"{m['transitions_per_period']} random transitions (every operand uniform, "
             f"previous and current independent, seed {m['seed']}) of {ports} -> "
             f"{ops['output']} ({m['output_width']} bits), {kind} values; {m['semantics']} "
             f"delays{' per pin' if m['per_pin'] else ''}, critical path "
             f"{m['critical_path_ticks']} ticks of {m['tick']}.", "",
             "A capture is wrong when it differs from the design's own settled output for "
             f"the current inputs. Intervals: Wilson, {100 * m['confidence']:g} %.", "",
             "| period | wrong captures | error rate | CI low | CI high | mean abs error "
             "(wrong) | max abs error |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in tset.summary.itertuples():
        lines.append(f"| {r.period} | {r.wrong_captures} | {r.error_rate:.6f} | "
                     f"{r.ci_low:.6f} | {r.ci_high:.6f} | {r.mean_abs_error:.1f} | "
                     f"{r.max_abs_error} |")
    return "\n".join(lines) + "\n"


def multiplier_width(netlist: Netlist, ops: Operands | None = None) -> int:
    """Operand width of a two-operand netlist (ports of ``ops``, default ``a``, ``b`` of
    W <= 8 bits and one output ``p`` of at most 2W bits); anything else is one line naming
    what the netlist has."""
    ops = ops or Operands()
    w, out_bits = ops.check(netlist)
    if out_bits > 2 * w:
        raise PlanError(f"Tables over operand pairs need an output of at most 2W bits; "
                        f"{ops.p!r} has {out_bits} for {w}-bit operands: use --mode sample")
    if w > 8:
        raise PlanError(f"Tables over all operand pairs cover operands up to 8 bits; this "
                        f"design has {w}: use --mode sample")
    return w


def pair_width(netlist: Netlist, ops: Operands) -> int | None:
    """Operand width of a design with tables over operand pairs (two equal operands of at
    most 8 bits, an output of at most 2W bits), or ``None`` for a design that is sampled
    by transitions; ports that do not fit the netlist are one line
    (:meth:`~sim.operands.Operands.ports`)."""
    widths, out_bits = ops.ports(netlist)
    w = widths[ops.a]
    if ops.more or widths[ops.b] != w or w > 8 or out_bits > 2 * w:
        return None
    return w


def load_tables(folder: str | os.PathLike[str]) -> dict[int, CompressedTable]:
    """Every ``compressed_T*.parquet`` of a table folder, by period (or the one file given).

    The folder's ``meta.json`` must match its own hash, every file it lists must match
    its recorded hash, and a table it does not list (stale) is refused.
    """
    folder = Path(folder)
    if folder.is_file():
        t = CompressedTable.read(folder)
        return {t.period: t}
    files = sorted(folder.glob("compressed_T*.parquet"))
    if not files and (folder / "meta.json").is_file():
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {}
        if isinstance(meta, dict) and meta.get("table") == "transitions":
            raise TableError(f"{str(folder)!r} holds sampled transitions of "
                             f"{meta.get('operands', {}).get('inputs', '?')}, not tables over "
                             "operand pairs; build tables of a two-operand design")
    if not files:
        raise TableError(f"No compressed tables in {str(folder)!r}; build them with "
                         "`flipclock errtable`")
    try:
        verify_folder(folder, "compressed_T*.parquet")
    except ManifestError as exc:
        raise TableError(str(exc)) from None
    return {t.period: t for t in (CompressedTable.read(f) for f in files)}
