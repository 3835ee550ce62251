"""Error tables under a dataflow's previous-input distribution (the engine side of issue 4).

The paper compresses Table I assuming a uniform previous operand pair. Given the operand
streams a network really feeds its multiplier (:class:`nnmap.dataflow.OperandStreams`,
measured on training images), this module builds, per MAC layer, the compressed table
under a weight-stationary dataflow -- the weight port keeps its value, the activation port
held the stream's previous activation:

``ws-marginal``
    the previous activation drawn from the layer's activation histogram, independently of
    the current one: :class:`sim.engine.PrevWeights` ``stationary_a`` (or ``_b``) handed to
    :func:`sim.errtable.build_tables` (resumable shards, ``meta.json``, summary, plot), in
    ``OUT/ws-marginal/<layer>/``;
``ws-markov``
    the previous activation drawn from ``P(prev | current)`` of the layer's streams (a
    first-order Markov model: neighbouring pixels are correlated). The previous-input law
    then depends on the current pair, which :class:`~sim.engine.PrevWeights` cannot express,
    so the transitions are simulated with :meth:`sim.engine.TimingEngine.capture` --
    exhaustively over the support of ``P(. | current)`` for every current pair, or
    ``samples`` draws per current pair -- and compressed here. Tables are cached in
    ``OUT/ws-markov/<layer>/compressed_T<period>.parquet``, keyed by netlist, delays, stream
    statistics and settings.

It lives in the study, not in ``sim`` or ``nnmap``: it is the one place where ``nnmap``
statistics meet the timing engine, and only this study needs it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .config import StudyError

__all__ = ["DATAFLOW_MODES", "build_dataflow_tables"]

DATAFLOW_MODES = ("ws-marginal", "ws-markov")
_W = 8
_N = 1 << _W
_CHUNK = 1 << 21  # transitions per engine call (memory)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def build_dataflow_tables(design: Any, streams: Any, periods: Sequence[int], out: Path, *,
                          mode: str, semantics: str = "inertial", per_pin: bool = False,
                          sampling: str = "exhaustive", samples: int = 64, seed: int = 0,
                          progress: bool = True, log: Callable[[str], None] = print,
                          ) -> dict[int, dict[str, Any]]:
    """Per-layer compressed tables of ``design`` under the streams' previous inputs.

    Parameters
    ----------
    design:
        A :class:`sim.design.Design` (netlist and delays of the multiplier).
    streams:
        :class:`nnmap.dataflow.OperandStreams` of the network.
    periods:
        Clock periods (ticks).
    out:
        Folder for the tables (``OUT/<mode>/<layer>/``).
    mode:
        ``"ws-marginal"`` or ``"ws-markov"`` (see the module docstring).
    semantics, per_pin:
        Engine delay semantics, as for the uniform table they are compared with.
    sampling:
        ``"exhaustive"`` (every previous activation with non-zero probability) or
        ``"sample"`` (``samples`` draws per current pair, seeded).

    Returns
    -------
    dict
        ``period -> {layer -> CompressedTable}``.
    """
    if mode not in DATAFLOW_MODES:
        raise StudyError(f"Unknown dataflow table mode {mode!r}; choose {DATAFLOW_MODES}")
    if semantics not in ("inertial", "transport") or sampling not in ("exhaustive", "sample"):
        raise StudyError(f"semantics must be inertial|transport and sampling exhaustive|sample, "
                         f"not {semantics!r} and {sampling!r}")
    periods = sorted({int(p) for p in periods})
    tables: dict[int, dict[str, Any]] = {p: {} for p in periods}
    layers = list(streams.hist)
    for i, name in enumerate(layers):
        folder = out / mode / _slug(name)
        log(f"[{i + 1}/{len(layers)}] {mode} error tables of layer {name} -> {folder}")
        if mode == "ws-marginal":
            built = _marginal(design, streams, name, periods, folder, semantics=semantics,
                              per_pin=per_pin, sampling=sampling, samples=samples, seed=seed,
                              progress=progress)
        else:
            built = _markov(design, streams, name, periods, folder, semantics=semantics,
                            per_pin=per_pin, sampling=sampling, samples=samples, seed=seed)
        for p in periods:
            tables[p][name] = built[p]
    return tables


def _marginal(design: Any, streams: Any, name: str, periods: list[int], folder: Path, *,
              semantics: Any, per_pin: bool, sampling: str, samples: int, seed: int,
              progress: bool) -> dict[int, Any]:
    from sim.engine import PrevWeights
    from sim.errtable import TableConfig, build_tables

    port = streams.weight_port[name]
    # integer counts, not a normalised histogram: the engine's sums of weights are then
    # exact and no probability exceeds 1 by a rounding error
    prev = PrevWeights(f"stationary_{port}", tuple(float(x) for x in streams.hist[name]))
    cfg = TableConfig(periods=tuple(periods), mode=sampling, semantics=semantics,
                      per_pin=per_pin, samples=samples, seed=seed, prev=prev,
                      prev_source=f"{streams.dataflow} stream of layer {name}")
    settings = {**design.settings(), "layer": name, "dataflow": streams.dataflow,
                "streams_digest": streams.digest(name), "weight_port": port}
    # force: stale shards of another histogram in our own folder are discarded, not an error
    tset = build_tables(design.netlist, design.annotation, cfg, folder, settings=settings,
                        progress=progress, force=True, log=lambda _m: None)
    return dict(tset.tables)


def _markov(design: Any, streams: Any, name: str, periods: list[int], folder: Path, *,
            semantics: Any, per_pin: bool, sampling: str, samples: int,
            seed: int) -> dict[int, Any]:
    from sim.tables import CompressedTable, TableError

    port = streams.weight_port[name]
    # integer weights [current, prev]: the stream's transition counts; a current code never
    # seen takes the activation histogram (it is never multiplied; its row keeps the table
    # defined). Probabilities are count sums divided once by the row total, so none exceeds 1.
    trans = streams.transitions[name].T
    seen = trans.sum(1) > 0
    weights = np.where(seen[:, None], trans, streams.hist[name][None, :])
    key = hashlib.sha256(json.dumps({
        "netlist": design.netlist.content_hash, "delays": design.annotation.content_hash,
        "streams": streams.digest(name), "periods": periods, "semantics": semantics,
        "per_pin": per_pin, "sampling": sampling, "samples": samples, "seed": seed,
        "port": port, "format": 1}, sort_keys=True).encode()).hexdigest()
    paths = {p: folder / f"compressed_T{p}.parquet" for p in periods}
    cached: dict[int, Any] = {}
    for p, path in paths.items():
        try:
            t = CompressedTable.read(path)
        except TableError:
            break  # missing or damaged: rebuild all periods
        if t.meta.get("cache_key") != key:
            break
        cached[p] = t
    if len(cached) == len(periods):
        return cached
    from sim.engine import TimingEngine

    eng = TimingEngine(design.netlist, design.annotation, semantics=semantics, per_pin=per_pin)
    rng = np.random.default_rng([seed, int(key[:8], 16)])
    acc = _Accumulator(len(periods))
    for w_code, cur, prev, weight in _transitions(weights, sampling, samples, rng):
        a, b = (w_code, cur) if port == "a" else (cur, w_code)
        pa, pb = (w_code, prev) if port == "a" else (prev, w_code)
        out = eng.capture({"a": pa, "b": pb}, {"a": a, "b": b}, periods)["p"]
        acc.add((a << _W) | b, out, weight, _exact(a, b))
    if sampling == "exhaustive":
        support, denom = (weights > 0).sum(1), weights.sum(1)
    else:
        support, denom = np.full(_N, samples), np.full(_N, float(samples))
    pair = np.arange(_N * _N)
    pair_denom = denom[pair & 0xFF] if port == "a" else denom[pair >> _W]
    n_prev = (np.broadcast_to(support[None, :], (_N, _N)) if port == "a"
              else np.broadcast_to(support[:, None], (_N, _N)))
    meta = {**design.settings(), "format_note": "flipclock dataflow table", "mode": sampling,
            "semantics": semantics, "per_pin": per_pin, "samples": samples, "seed": seed,
            "prev": {"kind": f"markov_stationary_{port}", "sha256": streams.digest(name),
                     "source": f"{streams.dataflow} stream of layer {name}"},
            "layer": name, "dataflow": streams.dataflow, "weight_port": port,
            "exact": sampling == "exhaustive", "cache_key": key}
    result = {}
    for i, p in enumerate(periods):
        table = acc.table(i, p, pair_denom, np.ascontiguousarray(n_prev, np.int64), meta)
        table.write(paths[p])
        result[p] = table
    return result


def _exact(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    va = np.where(a >= 128, a - 256, a)
    vb = np.where(b >= 128, b - 256, b)
    return np.asarray((va * vb) & 0xFFFF, np.int64)


def _transitions(weights: npt.NDArray[np.float64], sampling: str, samples: int,
                 rng: np.random.Generator) -> Iterator[tuple[npt.NDArray[Any], ...]]:
    """Chunks ``(weight code, current act, previous act, count)`` of transitions.

    ``weights[current, prev]`` are non-negative integers; sampled transitions count 1 each.
    """
    w_all = np.arange(_N, dtype=np.int64)
    if sampling == "sample":
        cum = np.cumsum(weights / weights.sum(1, keepdims=True), axis=1)
        cum[:, -1] = 1.0
        step = max(1, _CHUNK // (_N * samples))
        for c0 in range(0, _N, step):
            codes = range(c0, min(_N, c0 + step))
            cur = np.repeat(np.arange(c0, codes.stop, dtype=np.int64), _N * samples)
            w = np.tile(np.repeat(w_all, samples), len(codes))
            prev = np.concatenate([np.searchsorted(cum[c], rng.random(_N * samples),
                                                   side="right") for c in codes])
            yield w, cur, np.minimum(prev, _N - 1).astype(np.int64), np.ones(len(cur))
        return
    cur_list, prev_list = np.nonzero(weights > 0)
    count = weights[cur_list, prev_list]
    step = max(1, _CHUNK // _N)
    for s in range(0, len(cur_list), step):
        c, p, q = cur_list[s:s + step], prev_list[s:s + step], count[s:s + step]
        yield (np.tile(w_all, len(c)), np.repeat(c, _N).astype(np.int64),
               np.repeat(p, _N).astype(np.int64), np.repeat(q, _N))


class _Accumulator:
    """Wrong-capture probabilities and distinct wrong outputs, per period."""

    def __init__(self, n_periods: int):
        self.keys: list[list[npt.NDArray[np.int64]]] = [[] for _ in range(n_periods)]
        self.weights: list[list[npt.NDArray[np.float64]]] = [[] for _ in range(n_periods)]

    def add(self, pair: npt.NDArray[np.int64], out: npt.NDArray[np.int64],
            weight: npt.NDArray[Any], exact: npt.NDArray[np.int64]) -> None:
        for i in range(out.shape[1]):
            wrong = out[:, i] != exact
            signed = np.where(out[wrong, i] >= 1 << 15, out[wrong, i] - (1 << 16), out[wrong, i])
            key = pair[wrong] * (1 << 16) + (signed + (1 << 15))
            uniq, inv = np.unique(key, return_inverse=True)
            self.keys[i].append(uniq)
            self.weights[i].append(np.bincount(inv, weights=weight[wrong],
                                               minlength=len(uniq)).astype(np.float64))

    def table(self, i: int, period: int, denom: npt.NDArray[np.float64],
              n_prev: npt.NDArray[np.int64], meta: dict[str, Any]) -> Any:
        """The compressed table of period index ``i``; ``denom[pair]`` is the total weight
        of the pair's previous inputs."""
        from sim.tables import CompressedTable

        keys = np.concatenate(self.keys[i]) if self.keys[i] else np.zeros(0, np.int64)
        wts = np.concatenate(self.weights[i]) if self.weights[i] else np.zeros(0)
        uniq, inv = np.unique(keys, return_inverse=True)
        count = np.bincount(inv, weights=wts, minlength=len(uniq))
        pair = uniq >> 16
        offsets = np.zeros(_N * _N + 1, np.int64)
        np.cumsum(np.bincount(pair, minlength=_N * _N), out=offsets[1:])
        # integer counts sum exactly; one division each keeps every probability <= 1
        wrong = np.bincount(pair, weights=count, minlength=_N * _N)
        p_wrong = (wrong / denom).astype(np.float64)
        prob = (count / denom[pair]).astype(np.float64)
        return CompressedTable(width=_W, period=period, p_wrong=p_wrong.reshape(_N, _N),
                               offsets=offsets, wrong_output=(uniq & 0xFFFF) - (1 << 15),
                               wrong_prob=prob, n_prev=n_prev, meta={**meta, "period": period})
