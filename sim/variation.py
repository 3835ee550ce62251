"""Statistical error tables of a multiplier under per-gate delay variation (Monte Carlo).

A nominal error table (:mod:`sim.errtable`) describes one chip whose every gate has exactly
its annotated delay. Real gates vary. This module draws ``samples`` chips, each with its own
delay per gate, simulates every one with the timing engine (the per-node ``overrides`` of
:meth:`~sim.engine.TimingEngine.exhaustive`, so no recompilation), and averages: the result
is the error table of a *randomly drawn chip*, in the same :class:`~sim.tables.CompressedTable`
format, so ``nnmap`` consumes it exactly like a nominal table.

Delay model
-----------
For Monte Carlo sample ``s`` (seeded by ``[seed, s]``, so a sample does not depend on the
others, on the execution order or on how many samples are asked for) every node ``k`` (a
cell output) gets the delays::

    d_k = max(1, floor(n_k * subticks * (1 + sigma_global * z_g + sigma * z_k) + 1/2))

for both its rise and its fall delay ``n_k`` (in design ticks), with ``z_g`` one standard
normal per sample (die-to-die variation, shared by all gates; 0 by default) and ``z_k`` one
per node (within-die variation, independent between gates; a gate's rise and fall move
together). By default (``center="ticks"``) ``n_k`` is the annotation's tick delay, so the
variation is centred on exactly the chip the nominal table describes: with ``sigma = 0``
the tables equal :mod:`sim.errtable`'s at any ``subticks`` (the engine's tick semantics are
invariant under scaling every delay and period), and a difference between the Monte Carlo
and the nominal table is the variation's alone. With ``center="exact"`` ``n_k`` is the
annotation's unrounded delay (its slowest arc's exact value over the tick): physically
truer, but the rounded nominal chip is then not the centre of the distribution (the
rounding of up to half a tick per gate shifts the critical path by about as much as a few
percent of variation does).

Rounding to integer ticks is the engine's resolution: a gate of ``n`` ticks changes only if
``n * subticks * sigma * |z|`` reaches half a tick. A unit-delay design (every ``n = 1``)
with ``sigma = 0.05`` would therefore never change; ``subticks`` divides each design tick
into that many simulation ticks (delays and periods are multiplied by it; the engine's work
grows about in proportion), and about ``1 / sigma`` subticks resolve the variation (20 for
5 %). A run whose variation cannot change any delay by more than a quarter tick at 1 sigma
is refused with that advice. The Gaussian is clipped at 1 tick (only relevant for
``sigma`` above ~0.3). Periods and the tables' ``period`` stay in design ticks.

Previous inputs
---------------
Per sample, every current pair is either simulated with *all* previous pairs
(``prev_samples=None``: exact per chip, ``2**(4W)`` transitions) or with ``prev_samples``
previous pairs drawn uniformly per current pair (seeded by ``[seed, s, 1]``; fresh draws for
every sample, so samples are independent estimates and the CI over samples is valid). The
previous-input distribution is uniform, the paper's assumption.

Statistics
----------
For each period and current pair, ``p_s`` is the probability of a wrong product of chip
``s``. The compressed table holds the mean over samples of ``p_s`` and of every wrong
output's probability (the marginal over chips); ``pair_stats_T*.parquet`` adds the standard
deviation over samples and a Student-t confidence interval of the mean (over samples: it
covers the chip-to-chip spread and, with ``prev_samples``, the sampling of previous pairs;
with all samples zero it degenerates to ``[0, 0]``). The per-sample overall error rate (mean
of ``p_s`` over uniform current pairs) and the per-sample critical path go to
``samples.csv`` and the plot. That critical path is the engine's bound on the latest output
change (:attr:`TimingEngine.critical_path <sim.engine.TimingEngine.critical_path>`: the
slower of rise and fall at every gate, no false-path analysis), so it can exceed the
edge-aware critical path of ``timing.json`` and is a pessimistic STA figure; whether a chip
really errs at a period is ``samples_with_errors``.

Relation to the paper's "regulation" (Wu et al., sections III-A and IV-A)
-------------------------------------------------------------------------
The paper builds one nominal table and multiplies every error probability by 0.0668
("1.5 sigma") or 0.0227 ("2 sigma"), the Gaussian tails ``P(Z > 1.5)`` and ``P(Z > 2)``
(:func:`~sim.tables.regulation_factor`, :func:`~sim.tables.regulate`). Read literally, it
assumes that with that probability a chip's path delay exceeds ``mean + k sigma`` -- and
that such a chip then errs exactly like the nominal table, while every other chip never
errs. These tables drop that assumption: each gate varies, paths sum their gates' delays
(so within-die variation partly averages out along a path, die-to-die variation
``sigma_global`` does not), each sampled chip errs according to its own simulated timing,
and the probability of an error is averaged over chips. The regulated nominal rates
appear beside the Monte Carlo rates in ``summary.csv`` and the plot, and the fraction of
sampled chips that produce any wrong product at a period (``samples_with_errors``) is the
simulated counterpart of the paper's tail probability. A Monte Carlo table already contains
the variation: use it with regulation 1 (never regulate it again).

What is stored (``OUT/``)
-------------------------
* ``compressed_T{period}.parquet`` -- the Monte Carlo mean table (:class:`CompressedTable`,
  ``meta["variation"]`` holds the settings, ``n_prev`` = samples x previous pairs);
* ``pair_stats_T{period}.parquet`` -- per current pair: mean, std and CI over samples, the
  number of samples with errors, and the nominal probability;
* ``samples.csv`` -- per sample and period: error rate, critical path (engine bound),
  delay statistics;
* ``summary.csv`` -- per period: nominal and regulated nominal rates, Monte Carlo mean with
  its CI, quantiles over samples, fraction of chips with any error and with a critical path
  (engine bound) above the period;
* ``variation.png`` -- per-sample error rates against the period, and the distribution of
  the per-sample critical path;
* ``meta.json`` -- every setting, design hashes, tool versions, content hash and the hash of
  every file written (:mod:`sim.manifest`; readers refuse damaged and stale tables);
* ``shards/sample_NNNNN.npz`` (one per Monte Carlo sample) and ``shards/nominal.npz``,
  written atomically as they finish: a killed run resumes, more ``samples`` later reuse the
  ones done, and a shard of other settings is an error (or discarded with ``force``).
  Samples run one after another on local threads, or as one Dask task each.

A run holds ``OUT`` (:func:`sim.atomic.output_folder`): a second run into it stops with one
line. Ctrl-C stops the engine's threads within one kernel call; finished samples are kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .atomic import atomic_frame, output_folder, save_figure
from .delay import DelayAnnotation
from .engine import TimingEngine, default_threads
from .errtable import load_shard, remove_stale, save_shard, tool_versions
from .manifest import write_meta
from .netlist import Netlist
from .plan import PlanError, Semantics
from .tables import CompressedTable, TableError, regulate, regulation_factor, signed_values

__all__ = [
    "VariationConfig",
    "VariationResult",
    "base_delays",
    "build_variation",
    "regulate",
    "regulation_factor",
    "run_sample",
    "sample_delays",
    "t_quantile",
]

SHARD_FORMAT = "flipclock-variation-shard-1"
NOMINAL = -1  #: sample index of the nominal (no variation) run
_NOMINAL_SEED = 2**32 - 1  # seed entropy of the nominal run's previous-pair draws
_CHUNK = 1 << 20  # transitions per engine call in prev-sample mode (memory)
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class VariationConfig:
    """Settings of a delay-variation run (recorded in ``meta.json`` and every table).

    Parameters
    ----------
    periods:
        Capture periods in design ticks (may exceed the nominal critical path: slow chips
        fail there too).
    sigma:
        Within-die standard deviation of every gate's delay, as a fraction of its nominal
        delay (independent per gate).
    sigma_global:
        Die-to-die standard deviation, a fraction shared by all gates of one sample.
    samples:
        Monte Carlo samples (chips).
    seed:
        Seed; sample ``s`` uses ``[seed, s]``.
    prev_samples:
        ``None``: every previous pair per current pair (exact per chip); ``K``: ``K``
        previous pairs drawn uniformly per current pair and sample.
    subticks:
        Simulation ticks per design tick (resolution of the drawn delays).
    semantics:
        Engine delay semantics.
    center:
        ``"ticks"``: vary around the annotation's tick delays; ``"exact"``: around its
        unrounded delays (module doc).
    nominal:
        Also simulate the nominal chip (same previous-pair method) for comparison.
    confidence:
        Level of the confidence intervals over samples.
    """

    periods: tuple[int, ...]
    sigma: float = 0.05
    sigma_global: float = 0.0
    samples: int = 20
    seed: int = 0
    prev_samples: int | None = None
    subticks: int = 1
    semantics: Semantics = "inertial"
    center: str = "ticks"
    nominal: bool = True
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not self.periods:
            raise PlanError("Give at least one --period")
        if any(int(p) != p or p <= 0 for p in self.periods):
            raise PlanError(f"Clock periods must be positive integers of design ticks, not "
                            f"{[p for p in self.periods if int(p) != p or p <= 0][0]}")
        for name in ("sigma", "sigma_global"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise PlanError(f"{name} is a fraction of the nominal delay in [0, 1), not {v!r}"
                                " (5 % is 0.05)")
        if self.samples < 1:
            raise PlanError(f"Give at least one Monte Carlo sample, not {self.samples}")
        if self.seed < 0:
            raise PlanError(f"The seed must be a non-negative integer, not {self.seed}")
        if self.prev_samples is not None and self.prev_samples < 1:
            raise PlanError(f"--prev-samples must be positive (or absent for all previous "
                            f"pairs), not {self.prev_samples}")
        if not 1 <= self.subticks <= 1000:
            raise PlanError(f"subticks must be in 1..1000, not {self.subticks}")
        if self.semantics not in ("inertial", "transport"):
            raise PlanError(f"variation varies cell delays under inertial or transport "
                            f"semantics, not {self.semantics!r}; use --semantics inertial or "
                            "transport")
        if self.center not in ("ticks", "exact"):
            raise PlanError(f"center must be 'ticks' or 'exact', not {self.center!r}")
        if not 0 < self.confidence < 1:
            raise PlanError(f"confidence must be in (0, 1), not {self.confidence}")

    @property
    def sim_periods(self) -> list[int]:
        """The sorted periods in simulation ticks."""
        return [p * self.subticks for p in sorted(set(self.periods))]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["periods"] = sorted(set(self.periods))
        return d

    def shard_dict(self) -> dict[str, Any]:
        """What one sample's shard depends on (not ``samples`` nor ``confidence``)."""
        d = self.to_dict()
        del d["samples"], d["confidence"], d["nominal"]
        return d


# --- delays -----------------------------------------------------------------------------------
def base_delays(engine: TimingEngine, annotation: DelayAnnotation, center: str = "ticks",
                ) -> tuple[F64, F64]:
    """Nominal ``(rise, fall)`` of every engine node in design ticks, the centre of the
    variation.

    ``center="ticks"``: the engine's tick delays. ``"exact"``: the slowest arc's exact
    delay over the tick; a node whose rounding would not give its tick delay (an override,
    a cell without arcs) keeps the tick delay.
    """
    rise = engine.rise.astype(np.float64)
    fall = engine.fall.astype(np.float64)
    if center == "ticks":
        return rise, fall
    for k, node in enumerate(engine.plan.nodes):
        arcs = annotation.arcs.get(node.cell, {}).get(node.pin, {})
        r = max((a[2] for a in arcs.values() if a[2] > -math.inf), default=None)
        f = max((a[3] for a in arcs.values() if a[3] > -math.inf), default=None)
        if r is not None:
            rise[k] = r / annotation.tick
        if f is not None:
            fall[k] = f / annotation.tick
    for base, ticks in ((rise, engine.rise), (fall, engine.fall)):
        off = _round_ticks(base) != ticks
        base[off] = ticks[off]
    return rise, fall


def _round_ticks(x: F64) -> npt.NDArray[np.int32]:
    return np.maximum(1, np.floor(x + 0.5)).astype(np.int32)


def sample_delays(base_rise: F64, base_fall: F64, config: VariationConfig, sample: int,
                  ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], float]:
    """Integer ``(rise, fall)`` simulation-tick delays of one sample, and its ``z_g``.

    ``sample = NOMINAL`` gives the nominal delays at the configured ``subticks``.
    """
    k = config.subticks
    if sample == NOMINAL:
        return _round_ticks(base_rise * k), _round_ticks(base_fall * k), 0.0
    rng = np.random.default_rng([config.seed, sample, 0])
    zg = float(rng.standard_normal())
    z = rng.standard_normal(len(base_rise))
    scale = 1.0 + config.sigma_global * zg + config.sigma * z
    return _round_ticks(base_rise * k * scale), _round_ticks(base_fall * k * scale), zg


def _check_resolution(base_rise: F64, base_fall: F64, config: VariationConfig) -> None:
    spread = math.hypot(config.sigma, config.sigma_global)
    if spread == 0 or not len(base_rise):
        return
    largest = float(max(base_rise.max(), base_fall.max()))
    if largest * config.subticks * spread < 0.25:
        need = math.ceil(1 / (spread * float(np.median(np.concatenate([base_rise,
                                                                        base_fall])))))
        raise PlanError(f"Delay variation of {spread:g} x nominal is below the tick: no gate "
                        f"delay would change; use --subticks {need} (about 1 / sigma)")


# --- one sample ---------------------------------------------------------------------------------
_ENGINES: dict[tuple[str, str, str, int], TimingEngine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(netlist: Netlist, annotation: DelayAnnotation, semantics: Semantics,
            threads: int) -> TimingEngine:
    key = (netlist.content_hash, annotation.content_hash, semantics, threads)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = TimingEngine(netlist, annotation, semantics=semantics,
                                         threads=threads)
        return _ENGINES[key]


def run_sample(netlist: Netlist, annotation: DelayAnnotation, config: VariationConfig,
               sample: int, *, threads: int = 1,
               progress: Callable[[int], None] | None = None) -> dict[str, npt.NDArray[Any]]:
    """Simulate one Monte Carlo sample (or ``NOMINAL``) at every period.

    Returns arrays ``nwrong [pairs, periods]`` (weight of wrong captures per current pair),
    ``records [k, 3]`` (pair, period index, unsigned output code), ``weights [k]``,
    ``total`` (previous-pair weight per current pair), the drawn ``rise``/``fall``
    (simulation ticks), the sample's ``critical_path`` (simulation ticks) and ``zg``.
    ``progress`` is called with the number of current pairs finished.
    """
    w = _multiplier_width(netlist)
    eng = _engine(netlist, annotation, config.semantics, threads)
    base_r, base_f = base_delays(eng, annotation, config.center)
    rise, fall, zg = sample_delays(base_r, base_f, config, sample)
    lay = eng.layout(1 << 20, overrides=(rise, fall))
    cp = int(max(lay.hi[n] for n in eng.plan.out_nets))
    periods = config.sim_periods
    if config.prev_samples is None:
        res = eng.exhaustive(periods, overrides=(rise, fall), progress=progress)
        data = {"nwrong": res.nwrong, "records": res.records, "weights": res.weights,
                "total": np.array([res.total])}
    else:
        entropy = [config.seed, _NOMINAL_SEED if sample == NOMINAL else sample, 1]
        data = _sampled(eng, w, periods, (rise, fall), np.random.default_rng(entropy),
                        config.prev_samples, progress)
    return {**data, "rise": rise, "fall": fall, "critical_path": np.array([cp]),
            "zg": np.array([zg])}


def _sampled(eng: TimingEngine, w: int, periods: list[int],
             overrides: tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]],
             rng: np.random.Generator, k: int,
             progress: Callable[[int], None] | None) -> dict[str, npt.NDArray[Any]]:
    """``k`` uniform previous pairs per current pair, in chunks of transitions."""
    n = 1 << (2 * w)
    mask = (1 << w) - 1
    q_all = rng.integers(0, n, n * k, dtype=np.int64)  # drawn at once: chunking-independent
    nwrong = np.zeros((n, len(periods)), np.float64)
    keys: list[npt.NDArray[np.int64]] = []  # (pair * periods + period index) * n + output
    step = max(1, _CHUNK // k)
    for start in range(0, n, step):
        pairs = np.arange(start, min(n, start + step), dtype=np.int64)
        cur = np.repeat(pairs, k)
        q = q_all[start * k:start * k + len(cur)]
        out = eng.capture({"a": q >> w, "b": q & mask}, {"a": cur >> w, "b": cur & mask},
                          periods, overrides=overrides)["p"]
        exact = eng.settled(cur)  # the design's own settled output, not an assumed a*b
        wrong = out != exact[:, None]
        nwrong[pairs] = wrong.reshape(len(pairs), k, len(periods)).sum(1)
        pi, ti = np.nonzero(wrong)
        keys.append((cur[pi] * len(periods) + ti) * n + out[pi, ti])
        if progress is not None:
            progress(len(pairs))
    uniq, counts = np.unique(np.concatenate(keys), return_counts=True)
    pair_period, code = np.divmod(uniq, n)
    pair, ti = np.divmod(pair_period, len(periods))
    return {"nwrong": nwrong, "records": np.stack([pair, ti, code], axis=1).astype(np.int64),
            "weights": counts.astype(np.float64), "total": np.array([float(k)])}


def _multiplier_width(netlist: Netlist) -> int:
    ins, outs = netlist.inputs, netlist.outputs
    if set(ins) != {"a", "b"} or list(outs) != ["p"] or len(ins["a"]) != len(ins["b"]) \
            or len(outs["p"]) != 2 * len(ins["a"]) or len(ins["a"]) > 8:
        raise PlanError(f"Variation tables need a multiplier netlist with inputs a, b (W <= 8 "
                        f"bits) and output p (2W bits); {netlist.top!r} has inputs "
                        f"{ {k: len(v) for k, v in ins.items()} } and outputs "
                        f"{ {k: len(v) for k, v in outs.items()} }")
    return len(ins["a"])


# --- shards -------------------------------------------------------------------------------------
def _shard_key(netlist: Netlist, annotation: DelayAnnotation, config: VariationConfig) -> str:
    blob = json.dumps({"netlist": netlist.content_hash, "delays": annotation.content_hash,
                       "config": config.shard_dict(), "format": SHARD_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _shard_path(out: Path, sample: int) -> Path:
    name = "nominal.npz" if sample == NOMINAL else f"sample_{sample:05d}.npz"
    return out / "shards" / name


def _save_shard(path: Path, key: str, data: dict[str, npt.NDArray[Any]]) -> None:
    save_shard(path, key, data)


def _load_shard(path: Path, key: str) -> dict[str, npt.NDArray[Any]]:
    return load_shard(path, key, "variation settings")


# --- statistics ----------------------------------------------------------------------------------
def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t distribution with integer ``df`` (exact series, bisection)."""
    if not 0 < p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df >= 1, not p={p!r}, df={df!r}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    target = 2 * p - 1  # P(|T| < t)
    lo, hi = 0.0, 1.0
    while _t_central(hi, df) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_central(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def _t_central(t: float, df: int) -> float:
    """``P(|T| < t)`` for integer ``df`` (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    s = math.sin(theta)
    if df % 2 == 0:
        term, acc = 1.0, 1.0
        for j in range(1, df // 2):
            term *= c2 * (2 * j - 1) / (2 * j)
            acc += term
        return s * acc
    if df == 1:
        return 2 * theta / math.pi
    term, acc = math.cos(theta), math.cos(theta)
    for j in range(1, (df - 1) // 2):
        term *= c2 * (2 * j) / (2 * j + 1)
        acc += term
    return 2 / math.pi * (theta + s * acc)


def _mean_ci(total: F64, total_sq: F64, n: int, confidence: float,
             ) -> tuple[F64, F64, F64, F64]:
    """Mean, sample std and Student-t interval from sums over ``n`` samples (elementwise)."""
    mean = total / n
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan, nan
    var = np.maximum(total_sq - n * mean * mean, 0) / (n - 1)
    sd = np.sqrt(var)
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return mean, sd, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1)


# --- assembling ----------------------------------------------------------------------------------
@dataclass
class VariationResult:
    """The tables of one variation run (see the module doc for the files)."""

    tables: dict[int, CompressedTable]
    pair_stats: dict[int, Any]  # period -> pandas.DataFrame
    samples: Any  # pandas.DataFrame
    summary: Any  # pandas.DataFrame
    meta: dict[str, Any]
    nominal: dict[int, F64] = field(default_factory=dict)  # period -> p_wrong [2^W, 2^W]


class _Accumulator:
    """Streaming sums over samples: per-pair moments and merged wrong-output weights."""

    def __init__(self, width: int, nper: int) -> None:
        n = 1 << (2 * width)
        self.width, self.nper, self.n = width, nper, n
        self.sum = np.zeros((nper, n))
        self.sum_sq = np.zeros((nper, n))
        self.with_errors = np.zeros((nper, n), np.int64)
        self.keys: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.vals: F64 = np.zeros(0, np.float64)
        self.count = 0

    def add(self, data: dict[str, npt.NDArray[Any]]) -> F64:
        """Add one sample; return its per-pair ``p [periods, pairs]``."""
        total = float(data["total"][0])
        p = (data["nwrong"] / total).T
        self.sum += p
        self.sum_sq += p * p
        self.with_errors += p > 0
        rec = data["records"]
        keys = (rec[:, 1] * self.n + rec[:, 0]) * self.n + rec[:, 2]
        keys = np.concatenate([self.keys, keys])
        uniq, inv = np.unique(keys, return_inverse=True)
        self.vals = np.bincount(inv, weights=np.concatenate([self.vals, data["weights"] / total]),
                                minlength=len(uniq)).astype(np.float64)
        self.keys = uniq.astype(np.int64)
        self.count += 1
        return np.asarray(p, np.float64)


def _assemble(width: int, config: VariationConfig, samples: Iterable[dict[str, Any]],
              nominal: dict[str, Any] | None, nominal_rise: npt.NDArray[np.int32],
              meta: dict[str, Any]) -> VariationResult:
    import pandas as pd

    periods = sorted(set(config.periods))
    nper, n = len(periods), 1 << width
    acc = _Accumulator(width, nper)
    rows = []
    per_sample = 0.0
    for s, data in enumerate(samples):
        p = acc.add(data)
        rise_ratio = data["rise"] / nominal_rise
        for i, period in enumerate(periods):
            rows.append({"sample": s, "period": period, "error_rate": float(p[i].mean()),
                         "critical_path_ticks": float(data["critical_path"][0]) / config.subticks,
                         "critical_path_over_period": bool(data["critical_path"][0]
                                                           > period * config.subticks),
                         "delay_ratio_mean": float(rise_ratio.mean()),
                         "delay_ratio_std": float(rise_ratio.std()),
                         "global_z": float(data["zg"][0])})
        per_sample = float(data["total"][0])
    s_frame = pd.DataFrame(rows)
    nom: dict[int, F64] = {}
    if nominal is not None:
        p_nom = (nominal["nwrong"] / float(nominal["total"][0])).T
        nom = {period: p_nom[i].reshape(n, n) for i, period in enumerate(periods)}
    tables, stats, summary = {}, {}, []
    v = signed_values(width)
    a_all, b_all = np.divmod(np.arange(n * n), n)
    for i, period in enumerate(periods):
        mean, sd, lo, hi = _mean_ci(acc.sum[i], acc.sum_sq[i], acc.count, config.confidence)
        table = _table(width, period, acc, i, mean, config, per_sample, meta)
        tables[period] = table
        stats[period] = pd.DataFrame({
            "a": v[a_all], "b": v[b_all], "p_wrong": mean, "p_std": sd, "ci_low": lo,
            "ci_high": hi, "samples_with_errors": acc.with_errors[i],
            **({"p_nominal": nom[period].ravel()} if nom else {})})
        rates = s_frame.loc[s_frame.period == period, "error_rate"].to_numpy()
        over = s_frame.loc[s_frame.period == period, "critical_path_over_period"].to_numpy()
        r_mean, r_sd, r_lo, r_hi = _mean_ci(np.array([rates.sum()]),
                                            np.array([(rates ** 2).sum()]), len(rates),
                                            config.confidence)
        errs = np.abs(table.wrong_output - np.repeat(table.exact().ravel(),
                                                     np.diff(table.offsets)))
        mag = float((errs * table.wrong_prob).sum() / max(table.p_wrong.sum(), 1e-300))
        row: dict[str, Any] = {"period": period}
        if nom:
            rate_nom = float(nom[period].mean())
            row.update(nominal_error_rate=rate_nom,
                       regulated_1_5sigma=rate_nom * regulation_factor("1.5sigma"),
                       regulated_2sigma=rate_nom * regulation_factor("2sigma"))
        row.update(mc_error_rate=float(r_mean[0]), mc_std=float(r_sd[0]),
                   ci_low=float(r_lo[0]), ci_high=float(r_hi[0]),
                   mc_min=float(rates.min()), mc_q05=float(np.quantile(rates, 0.05)),
                   mc_median=float(np.median(rates)), mc_q95=float(np.quantile(rates, 0.95)),
                   mc_max=float(rates.max()), samples_with_errors=float((rates > 0).mean()),
                   chips_critical_path_over_period=float(over.mean()),
                   pairs_with_errors=int((mean > 0).sum()), mean_abs_error=mag,
                   distinct_wrong_outputs=int(len(table.wrong_output)))
        summary.append(row)
    return VariationResult(tables, stats, s_frame, pd.DataFrame(summary), meta, nom)


def _table(width: int, period: int, acc: _Accumulator, i: int, mean: F64,
           config: VariationConfig, per_sample: float, meta: dict[str, Any]) -> CompressedTable:
    n = 1 << width
    nn = n * n
    lo_key, hi_key = i * nn * nn, (i + 1) * nn * nn
    sel = (acc.keys >= lo_key) & (acc.keys < hi_key)
    pair, code = np.divmod(acc.keys[sel] - lo_key, nn)
    half = nn // 2
    signed = np.where(code >= half, code - nn, code)
    order = np.lexsort((signed, pair))  # canonical: by pair, then signed output
    pair, signed, prob = pair[order], signed[order], acc.vals[sel][order] / acc.count
    offsets = np.zeros(nn + 1, np.int64)
    np.cumsum(np.bincount(pair, minlength=nn), out=offsets[1:])
    return CompressedTable(
        width=width, period=period, p_wrong=mean.reshape(n, n), offsets=offsets,
        wrong_output=signed.astype(np.int64), wrong_prob=prob,
        n_prev=np.full((n, n), int(round(per_sample)) * acc.count, np.int64),
        meta={**meta, "period": period, "exact": False, "confidence": config.confidence})


# --- the run -------------------------------------------------------------------------------------
def build_variation(netlist: Netlist, annotation: DelayAnnotation, config: VariationConfig,
                    out: str | os.PathLike[str], *, settings: dict[str, Any] | None = None,
                    progress: bool = True, client: Any = None, force: bool = False,
                    log: Callable[[str], None] = print) -> VariationResult:
    """Build (or resume) the Monte Carlo variation tables of ``netlist`` into ``out``.

    Parameters
    ----------
    settings:
        Extra facts to record (e.g. the design folder).
    client:
        A ``dask.distributed.Client``: one task per sample; local threads when ``None``.
    force:
        Discard shards of other settings found in ``out/shards`` instead of failing.
    """
    out = Path(out)
    w = _multiplier_width(netlist)
    eng = _engine(netlist, annotation, config.semantics, default_threads())
    base_r, base_f = base_delays(eng, annotation, config.center)
    _check_resolution(base_r, base_f, config)
    with output_folder(out, force=force, tables=True):
        return _build_locked(netlist, annotation, config, out, eng, w, settings=settings,
                             progress=progress, client=client, force=force, log=log)


def _build_locked(netlist: Netlist, annotation: DelayAnnotation, config: VariationConfig,
                  out: Path, eng: TimingEngine, w: int, *, settings: dict[str, Any] | None,
                  progress: bool, client: Any, force: bool,
                  log: Callable[[str], None]) -> VariationResult:
    """:func:`build_variation` once ``out`` is claimed."""
    base_r, base_f = base_delays(eng, annotation, config.center)
    key = _shard_key(netlist, annotation, config)
    wanted = list(range(config.samples)) + ([NOMINAL] if config.nominal else [])
    done = set()
    for s in wanted:
        path = _shard_path(out, s)
        if path.is_file():
            try:
                _load_shard(path, key)
                done.add(s)
            except TableError:
                if not force:
                    raise
                path.unlink()
    todo = [s for s in wanted if s not in done]
    t0 = time.perf_counter()
    if todo:
        per = 1 << (2 * w if config.prev_samples is None else 0)
        per *= config.prev_samples or 1
        log(f"variation: {len(todo)} of {len(wanted)} samples to simulate ({len(done)} "
            f"resumed), sigma {config.sigma:g}, periods {sorted(set(config.periods))}, "
            f"{per << (2 * w):,} transitions per sample at {config.subticks} subticks")
        _run(netlist, annotation, config, todo, out, key, client, progress, 1 << (2 * w))
    elapsed = time.perf_counter() - t0
    meta = {
        "format": "flipclock-variation", "netlist_hash": netlist.content_hash,
        "delays_hash": annotation.content_hash, "delay_model": annotation.model.to_dict(),
        "tick": annotation.tick_label, "tick_seconds": annotation.seconds_per_tick,
        "critical_path_ticks": eng.critical_path, "width": w, "mode": "variation",
        "variation": config.to_dict(), **config.to_dict(),
        "paper_regulation": {"1.5sigma": regulation_factor("1.5sigma"),
                             "2sigma": regulation_factor("2sigma")},
        "tools": tool_versions(), **(settings or {}),
    }
    result = _assemble(w, config, (_load_shard(_shard_path(out, s), key)
                                   for s in range(config.samples)),
                       _load_shard(_shard_path(out, NOMINAL), key) if config.nominal else None,
                       sample_delays(base_r, base_f, config, NOMINAL)[0], meta)
    # without meta.json the folder reads as unfinished until every file is in place
    (out / "meta.json").unlink(missing_ok=True)
    digest, files = _write_outputs(result, out)
    remove_stale(out, files)
    meta.update(content_hash=digest, compute_seconds=round(elapsed, 3),
                samples_resumed=len(done))
    write_meta(out, meta, files)
    return result


def _run(netlist: Netlist, annotation: DelayAnnotation, config: VariationConfig,
         todo: list[int], out: Path, key: str, client: Any, progress: bool,
         pairs: int) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(todo) * pairs, unit="pair", disable=not progress,
               desc="samples x current pairs", smoothing=0.05)
    lock = threading.Lock()

    def tick(k: int) -> None:
        with lock:
            bar.update(k)

    try:
        if client is not None:
            from distributed import as_completed

            futures = {client.submit(run_sample, netlist, annotation, config, s,
                                     pure=False): s for s in todo}
            try:
                for fut in as_completed(futures):
                    _save_shard(_shard_path(out, futures[fut]), key, fut.result())
                    tick(pairs)
            except BaseException:
                client.cancel(list(futures))
                raise
            return
        for s in todo:  # the engine runs each sample on every local thread
            data = run_sample(netlist, annotation, config, s, threads=default_threads(),
                              progress=tick)
            _save_shard(_shard_path(out, s), key, data)
    finally:
        bar.close()


# --- files ---------------------------------------------------------------------------------------
def _write_outputs(result: VariationResult, out: Path) -> tuple[str, list[str]]:
    """Write every result file; return the content hash of the tables and sample rates,
    and the names of the files."""
    h = hashlib.sha256()
    files: list[str] = []
    for period, table in sorted(result.tables.items()):
        table.write(out / f"compressed_T{period}.parquet")
        for arr in (table.p_wrong, table.offsets, table.wrong_output, table.wrong_prob):
            h.update(np.ascontiguousarray(arr).tobytes())
        atomic_frame(result.pair_stats[period], out / f"pair_stats_T{period}.parquet")
        files += [f"compressed_T{period}.parquet", f"pair_stats_T{period}.parquet"]
    h.update(result.samples["error_rate"].to_numpy().tobytes())
    atomic_frame(result.samples, out / "samples.csv")
    atomic_frame(result.summary, out / "summary.csv")
    plot_variation(result, out / "variation.png")
    return h.hexdigest(), [*files, "samples.csv", "summary.csv", "variation.png"]


def plot_variation(result: VariationResult, path: Path) -> None:
    """Per-sample error rates against the period (with the nominal and regulated nominal
    rates), and the distribution of the sampled chips' critical paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, summ, meta = result.samples, result.summary, result.meta
    rates = np.concatenate([s["error_rate"].to_numpy(), summ["mc_error_rate"].to_numpy(),
                            summ["regulated_2sigma"].to_numpy() if "regulated_2sigma" in summ
                            else np.zeros(0)]) * 100
    positive = rates[rates > 0]
    # zeros are drawn a decade below the smallest rate (few decades: fast, readable ticks)
    floor = 10.0 ** (math.floor(math.log10(positive.min())) - 1) if len(positive) else 1e-7
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    rng = np.random.default_rng(0)
    periods = summ["period"].to_numpy()
    step = float(np.min(np.diff(periods))) if len(periods) > 1 else 1.0
    x = s["period"].to_numpy() + rng.uniform(-0.06, 0.06, len(s)) * step
    ax.semilogy(x, np.maximum(s["error_rate"].to_numpy() * 100, floor), ".", alpha=0.5,
                color="tab:blue", label="Monte Carlo samples (chips)")
    ax.semilogy(periods, np.maximum(summ["mc_error_rate"] * 100, floor), "o-",
                color="tab:blue", label="Monte Carlo mean")
    if "ci_low" in summ and summ["ci_low"].notna().all():
        ax.fill_between(periods, np.maximum(summ["ci_low"] * 100, floor),
                        np.maximum(summ["ci_high"] * 100, floor), color="tab:blue", alpha=0.2,
                        label=f"{100 * meta.get('confidence', 0.95):g} % CI of the mean")
    if "nominal_error_rate" in summ:
        ax.semilogy(periods, np.maximum(summ["nominal_error_rate"] * 100, floor), "s--",
                    color="black", label="nominal chip")
        for col, style, lab in (("regulated_1_5sigma", ":", "nominal x 0.0668 (1.5 sigma)"),
                                ("regulated_2sigma", "-.", "nominal x 0.0227 (2 sigma)")):
            ax.semilogy(periods, np.maximum(summ[col] * 100, floor), style, color="grey",
                        label=lab)
    cp = meta.get("critical_path_ticks")
    if cp:
        ax.axvline(cp, color="red", alpha=0.4, label=f"nominal critical path ({cp}, engine "
                   "bound)")
    ax.set_xlabel(f"clock period (ticks of {meta.get('tick', '?')})")
    ax.set_ylabel(f"wrong products (%; 0 drawn at {floor:g})")
    ax.set_title(f"sigma {meta.get('sigma', 0):g} per gate"
                 + (f", {meta.get('sigma_global', 0):g} global" if meta.get("sigma_global")
                    else "") + f", {meta.get('samples')} samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    cps = s.drop_duplicates("sample")["critical_path_ticks"].to_numpy()
    bx.hist(cps, bins=min(30, max(5, len(cps) // 2)), color="tab:blue", alpha=0.7)
    for p in periods:
        bx.axvline(p, color="black", linestyle="--", alpha=0.6)
    if cp:
        bx.axvline(cp, color="red", alpha=0.6, label="nominal critical path")
        bx.legend(fontsize=7)
    bx.set_xlabel("critical path (engine bound) of a sampled chip, design ticks; "
                  "dashed: periods")
    bx.set_ylabel("samples")
    fig.tight_layout()
    save_figure(fig, path)
