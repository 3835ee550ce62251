"""Error tables from the engine: exhaustive vs the reference simulator, sampling statistics,
previous-input distributions, shards (resume, foreign shards), Dask, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cells import DEFAULT_LIBRARY
from sim.engine import PrevWeights
from sim.errtable import TableConfig, build_tables, load_tables
from sim.netlist import Netlist
from sim.plan import PlanError
from sim.reader import read_verilog
from sim.tables import TableError, compress, signed_values
from sim.wavesim import simulate_transitions

W = 4
Delays = dict[str, dict[str, tuple[int, int]]]


@pytest.fixture(scope="module")
def booth4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Netlist, Delays]:
    """A 4-bit Booth multiplier with random integer rise/fall delays (1..3 ticks)."""
    import hw
    from sim.synth import synthesize

    path = tmp_path_factory.mktemp("booth4") / "gate.v"
    rtl = hw.to_verilog(hw.BoothMultiplier(width=W), name="booth")
    path.write_text(synthesize(rtl, "booth").verilog)
    netlist = read_verilog(path, DEFAULT_LIBRARY)
    rng = np.random.default_rng(11)
    delays = {c.name: {"Y": (int(rng.integers(1, 4)), int(rng.integers(1, 4)))}
              for c in netlist.cells}
    return netlist, delays


def _annotation(netlist: Netlist, delays: Delays):  # type: ignore[no-untyped-def]
    from sim.delay import UnitDelay, annotate

    ann = annotate(netlist, UnitDelay())
    return ann.with_overrides({c: d["Y"] for c, d in delays.items()})


def _reference_rows(netlist: Netlist, delays: Delays, periods: list[int],
                    semantics: str) -> dict[int, pd.DataFrame]:
    """Table I rows of all 2^16 transitions from the numpy reference simulator."""
    x = np.arange(1 << (4 * W))
    pa, pb, ca, cb = (x >> (3 * W)) & 15, (x >> (2 * W)) & 15, (x >> W) & 15, x & 15
    out = simulate_transitions(netlist, delays, {"a": pa, "b": pb}, {"a": ca, "b": cb},
                               max(periods), semantics=semantics)["p"]
    return {p: pd.DataFrame({"prev_a": pa, "prev_b": pb, "cur_a": ca, "cur_b": cb,
                             "output": out[p + 1]}) for p in periods}


@pytest.mark.parametrize("semantics", ["inertial", "transport"])
def test_exhaustive_equals_reference_compression(booth4, tmp_path: Path, semantics: str) -> None:  # type: ignore[no-untyped-def]
    netlist, delays = booth4
    ann = _annotation(netlist, delays)
    from sim.engine import TimingEngine

    cp = TimingEngine(netlist, ann, semantics=semantics).critical_path
    periods = sorted({cp // 3, cp // 2, (3 * cp) // 4, cp})
    tset = build_tables(netlist, ann, TableConfig(periods=tuple(periods), semantics=semantics,
                                                  shard_pairs=50), tmp_path, progress=False,
                        log=lambda _m: None)
    ref = _reference_rows(netlist, delays, periods, semantics)
    for p in periods:
        want = compress(ref[p], W)
        got = tset.tables[p]
        np.testing.assert_allclose(got.p_wrong, want.p_wrong)
        np.testing.assert_array_equal(got.offsets, want.offsets)
        np.testing.assert_array_equal(got.wrong_output, want.wrong_output)
        np.testing.assert_allclose(got.wrong_prob, want.wrong_prob)
    assert tset.tables[cp].p_wrong.max() == 0  # nothing is wrong at the critical path
    assert tset.tables[periods[0]].p_wrong.max() > 0
    # files: one compressed table per period, readable back
    back = load_tables(tmp_path)
    assert sorted(back) == periods
    np.testing.assert_allclose(back[periods[0]].p_wrong, tset.tables[periods[0]].p_wrong)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["netlist_hash"] == netlist.content_hash
    assert meta["semantics"] == semantics and meta["periods"] == periods
    assert (tmp_path / "error_rate.png").stat().st_size > 1000


def test_previous_input_distributions(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, delays = booth4
    ann = _annotation(netlist, delays)
    period = 6
    ref = _reference_rows(netlist, delays, [period], "inertial")[period]
    hist = np.random.default_rng(2).random(16)
    prev = PrevWeights("stationary_a", tuple(hist))
    tset = build_tables(netlist, ann, TableConfig(periods=(period,), prev=prev), tmp_path,
                        progress=False, log=lambda _m: None)
    held = ref[ref.prev_a == ref.cur_a]
    want = compress(held, W, weights=hist[held.prev_b.to_numpy()])
    np.testing.assert_allclose(tset.tables[period].p_wrong, want.p_wrong)
    np.testing.assert_allclose(tset.tables[period].wrong_prob, want.wrong_prob)


def test_sample_mode_within_confidence_of_exhaustive(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, delays = booth4
    ann = _annotation(netlist, delays)
    period = 6
    exact = build_tables(netlist, ann, TableConfig(periods=(period,)), tmp_path / "ex",
                         progress=False, log=lambda _m: None)
    sample = build_tables(netlist, ann, TableConfig(periods=(period,), mode="sample",
                                                    samples=400, seed=5),
                          tmp_path / "sa", progress=False, log=lambda _m: None)
    p_true = exact.tables[period].p_wrong.ravel()
    p_hat = sample.tables[period].p_wrong.ravel()
    from sim.errtable import wilson

    lo, hi = wilson(p_hat * 400, 400)
    inside = (p_true >= lo - 1e-12) & (p_true <= hi + 1e-12)
    assert inside.mean() > 0.9  # 95 % intervals: about 95 % of 256 pairs cover the truth
    s = sample.summary.iloc[0]
    assert s.ci_low <= exact.summary.iloc[0].error_rate <= s.ci_high
    full = pd.read_parquet(tmp_path / "sa" / f"full_T{period}.parquet")
    assert len(full) == 256 * 400
    assert (~full.correct).mean() == pytest.approx(p_hat.mean())


def test_wilson_bounds_are_exact_at_none_and_all_wrong() -> None:
    from sim.errtable import wilson

    n = np.array([3, 7, 400, 10**6, 2**32])
    lo, hi = wilson(np.zeros_like(n), n)
    assert (lo == 0.0).all() and (0 < hi).all() and (hi < 1).all()
    lo, hi = wilson(n, n, 0.99)
    assert (hi == 1.0).all() and (0 < lo).all() and (lo < 1).all()
    # in between the interval is strictly inside (0, 1) and holds the estimate
    lo, hi = wilson(n // 3, n)
    assert (0 < lo).all() and (lo <= (n // 3) / n).all() and ((n // 3) / n <= hi).all()
    assert (hi < 1).all()


def test_resume_and_foreign_shards(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, delays = booth4
    ann = _annotation(netlist, delays)
    cfg = TableConfig(periods=(5, 7), shard_pairs=32)
    build_tables(netlist, ann, cfg, tmp_path, progress=False, log=lambda _m: None)
    first = json.loads((tmp_path / "meta.json").read_text())["content_hash"]
    shards = sorted((tmp_path / "shards").glob("shard_*.npz"))
    assert len(shards) == 8
    for s in shards[::2]:  # as if killed after half of the shards
        s.unlink()
    logs: list[str] = []
    build_tables(netlist, ann, cfg, tmp_path, progress=False, log=logs.append)
    assert "4 of 8 shards to compute (4 resumed)" in logs[0]
    assert json.loads((tmp_path / "meta.json").read_text())["content_hash"] == first
    other = ann.with_overrides({netlist.cells[0].name: (9, 9)})
    with pytest.raises(TableError, match="belongs to a different netlist, delay annotation"):
        build_tables(netlist, other, cfg, tmp_path, progress=False, log=lambda _m: None)
    shards[1].write_bytes(b"garbage")
    with pytest.raises(TableError, match="is damaged"):
        build_tables(netlist, ann, cfg, tmp_path, progress=False, log=lambda _m: None)


def test_bad_periods(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, delays = booth4
    ann = _annotation(netlist, delays)
    with pytest.raises(PlanError, match="Clock periods must be positive"):
        TableConfig(periods=(0, 3))
    with pytest.raises(PlanError, match="is beyond the critical path"):
        build_tables(netlist, ann, TableConfig(periods=(10_000,)), tmp_path, progress=False)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_tables(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from distributed import Client, LocalCluster

    netlist, delays = booth4
    ann = _annotation(netlist, delays)
    cfg = TableConfig(periods=(5, 7), shard_pairs=64)
    build_tables(netlist, ann, cfg, tmp_path / "threads", progress=False, log=lambda _m: None)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        build_tables(netlist, ann, cfg, tmp_path / "dask", progress=False, client=client,
                     log=lambda _m: None)
    hashes = [json.loads((tmp_path / d / "meta.json").read_text())["content_hash"]
              for d in ("threads", "dask")]
    assert hashes[0] == hashes[1]


def test_signed_values() -> None:
    assert signed_values(2).tolist() == [0, 1, -2, -1]
