"""Delay-variation tables: the sigma = 0 limit is the nominal table, one sample against the
numpy reference simulator, the Monte Carlo mean and its statistics, resume, previous-pair
sampling, the paper's regulation factors, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flipclock.cli import main
from sim.cells import DEFAULT_LIBRARY
from sim.delay import DelayAnnotation, UnitDelay, annotate
from sim.engine import TimingEngine
from sim.errtable import TableConfig, build_tables
from sim.netlist import Netlist
from sim.plan import PlanError
from sim.reader import read_verilog
from sim.tables import TableError, compress, regulate, regulation_factor
from sim.variation import (
    NOMINAL,
    VariationConfig,
    base_delays,
    build_variation,
    run_sample,
    sample_delays,
    t_quantile,
)
from sim.wavesim import simulate_transitions

W = 4
ROOT = Path(__file__).resolve().parent.parent
QUIET = {"progress": False, "log": lambda _m: None}


@pytest.fixture(scope="module")
def booth4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Netlist, DelayAnnotation]:
    """A 4-bit Booth multiplier with random rise/fall delays of 3..8 ticks."""
    import hw
    from sim.synth import synthesize

    path = tmp_path_factory.mktemp("booth4") / "gate.v"
    path.write_text(synthesize(hw.to_verilog(hw.BoothMultiplier(width=W), name="booth"),
                               "booth").verilog)
    netlist = read_verilog(path, DEFAULT_LIBRARY)
    rng = np.random.default_rng(11)
    ann = annotate(netlist, UnitDelay()).with_overrides(
        {c.name: (int(rng.integers(3, 9)), int(rng.integers(3, 9))) for c in netlist.cells})
    return netlist, ann


@pytest.fixture(scope="module")
def periods(booth4) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    cp = TimingEngine(*booth4).critical_path
    return (cp * 7 // 10, cp * 9 // 10, cp)


def test_sigma_zero_is_the_nominal_table(booth4, periods, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    nominal = build_tables(netlist, ann, TableConfig(periods=periods), tmp_path / "n", **QUIET)
    # 2 subticks: every delay and period doubled gives the same captures
    mc = build_variation(netlist, ann, VariationConfig(periods=periods, sigma=0.0, samples=2,
                                                       subticks=2), tmp_path / "v", **QUIET)
    for p in periods:
        a, b = mc.tables[p], nominal.tables[p]
        np.testing.assert_allclose(a.p_wrong, b.p_wrong, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(a.offsets, b.offsets)
        np.testing.assert_array_equal(a.wrong_output, b.wrong_output)
        np.testing.assert_allclose(a.wrong_prob, b.wrong_prob, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(mc.nominal[p], b.p_wrong)
    s = mc.summary.set_index("period")
    assert (s.mc_std == 0).all()
    np.testing.assert_allclose(s.mc_error_rate, s.nominal_error_rate)
    np.testing.assert_allclose(s.regulated_2sigma, s.nominal_error_rate * 0.0227)
    assert s.loc[periods[0], "mc_error_rate"] > 0


def test_one_sample_against_the_reference_simulator(booth4, periods) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    cfg = VariationConfig(periods=periods, sigma=0.15, sigma_global=0.05, seed=4)
    data = run_sample(netlist, ann, cfg, 2)
    eng = TimingEngine(netlist, ann)
    assert not np.array_equal(data["rise"], eng.rise)  # the delays did vary
    delays = {n.cell: {n.pin: (int(r), int(f))}
              for n, r, f in zip(eng.plan.nodes, data["rise"], data["fall"], strict=True)}
    x = np.arange(1 << (4 * W))
    m = (1 << W) - 1
    pa, pb, ca, cb = x >> (3 * W), (x >> (2 * W)) & m, (x >> W) & m, x & m
    out = simulate_transitions(netlist, delays, {"a": pa, "b": pb}, {"a": ca, "b": cb},
                               max(periods), semantics="inertial")["p"]
    for i, p in enumerate(sorted(periods)):
        want = compress(pd.DataFrame({"prev_a": pa, "prev_b": pb, "cur_a": ca, "cur_b": cb,
                                      "output": out[p + 1]}), W)
        np.testing.assert_allclose(data["nwrong"][:, i] / data["total"][0],
                                   want.p_wrong.ravel())
        rec = data["records"][data["records"][:, 1] == i]
        assert len(rec) == len(want.wrong_output)
    lay = eng.layout(1 << 20, overrides=(data["rise"], data["fall"]))
    assert data["critical_path"][0] == max(lay.hi[n] for n in eng.plan.out_nets)


def test_monte_carlo_mean_and_statistics(booth4, periods, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    cfg = VariationConfig(periods=periods, sigma=0.1, samples=4, seed=1)
    res = build_variation(netlist, ann, cfg, tmp_path, **QUIET)
    per = [run_sample(netlist, ann, cfg, s) for s in range(4)]
    for i, p in enumerate(sorted(periods)):
        ps = np.stack([d["nwrong"][:, i] / d["total"][0] for d in per])
        table = res.tables[p]
        np.testing.assert_allclose(table.p_wrong.ravel(), ps.mean(0), atol=1e-15)
        # every pair's wrong-output probabilities sum to its p_wrong
        sums = np.add.reduceat(np.r_[table.wrong_prob, 0], table.offsets[:-1])
        sums[np.diff(table.offsets) == 0] = 0
        np.testing.assert_allclose(sums, table.p_wrong.ravel(), atol=1e-12)
        st = pd.read_parquet(tmp_path / f"pair_stats_T{p}.parquet")
        np.testing.assert_allclose(st.p_std, ps.std(0, ddof=1), atol=1e-12)
        assert (st.ci_low <= st.p_wrong + 1e-15).all() and (st.p_wrong <= st.ci_high + 1e-15).all()
        assert (st.samples_with_errors == (ps > 0).sum(0)).all()
        rates = res.samples[res.samples.period == p].error_rate.to_numpy()
        np.testing.assert_allclose(rates, ps.mean(1))
    assert res.tables[periods[0]].meta["variation"]["sigma"] == 0.1
    assert res.tables[periods[0]].n_prev[0, 0] == 4 * 256
    back = pd.read_csv(tmp_path / "summary.csv")
    assert list(back.period) == sorted(periods)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["sigma"] == 0.1 and meta["samples"] == 4 and meta["seed"] == 1
    assert meta["netlist_hash"] == netlist.content_hash
    assert (tmp_path / "variation.png").stat().st_size > 5000


def test_resume_more_samples_and_foreign_shards(booth4, periods, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    cfg = VariationConfig(periods=periods, sigma=0.1, samples=3, prev_samples=8)
    build_variation(netlist, ann, cfg, tmp_path, **QUIET)
    first = json.loads((tmp_path / "meta.json").read_text())["content_hash"]
    (tmp_path / "shards" / "sample_00001.npz").unlink()  # as if killed
    logs: list[str] = []
    build_variation(netlist, ann, cfg, tmp_path, progress=False, log=logs.append)
    assert "1 of 4 samples to simulate (3 resumed)" in logs[0]
    assert json.loads((tmp_path / "meta.json").read_text())["content_hash"] == first
    more = VariationConfig(periods=periods, sigma=0.1, samples=5, prev_samples=8)
    logs.clear()
    build_variation(netlist, ann, more, tmp_path, progress=False, log=logs.append)
    assert "2 of 6 samples to simulate (4 resumed)" in logs[0]
    other = VariationConfig(periods=periods, sigma=0.2, samples=3, prev_samples=8)
    with pytest.raises(TableError, match="belongs to a different netlist, delay annotation "
                                         "or variation settings; use another --out"):
        build_variation(netlist, ann, other, tmp_path, **QUIET)
    build_variation(netlist, ann, other, tmp_path, force=True, **QUIET)
    (tmp_path / "shards" / "sample_00000.npz").write_bytes(b"garbage")
    with pytest.raises(TableError, match="is damaged"):
        build_variation(netlist, ann, other, tmp_path, **QUIET)


def test_previous_pair_sampling_estimates_the_same_chips(booth4, periods) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    exact = VariationConfig(periods=periods, sigma=0.1, seed=2)
    sampled = VariationConfig(periods=periods, sigma=0.1, seed=2, prev_samples=64)
    for s in (0, 1):
        a, b = run_sample(netlist, ann, exact, s), run_sample(netlist, ann, sampled, s)
        np.testing.assert_array_equal(a["rise"], b["rise"])  # the same chip
        p_true = a["nwrong"].sum(0) / a["total"][0] / 256
        p_hat = b["nwrong"].sum(0) / b["total"][0] / 256
        sd = np.sqrt(np.maximum(p_true * (1 - p_true), 1e-6) / (256 * 64))
        assert (np.abs(p_hat - p_true) < 5 * sd + 1e-9).all()


def test_sampled_delays(booth4) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    eng = TimingEngine(netlist, ann)
    r, f = base_delays(eng, ann)
    np.testing.assert_array_equal(r, eng.rise)
    cfg = VariationConfig(periods=(5,), sigma=0.1, subticks=10, seed=3)
    r0, f0, _ = sample_delays(r, f, cfg, NOMINAL)
    np.testing.assert_array_equal(r0, 10 * eng.rise)
    r1, f1, zg = sample_delays(r, f, cfg, 7)
    again = sample_delays(r, f, VariationConfig(periods=(9,), sigma=0.1, subticks=10, seed=3,
                                                samples=99, prev_samples=3), 7)
    np.testing.assert_array_equal(r1, again[0])  # a sample depends on seed and index only
    ratio = r1 / r0
    assert abs(ratio.mean() - 1) < 0.03 and 0.07 < ratio.std() < 0.13
    np.testing.assert_array_equal(np.sign(r1 - r0), np.sign(f1 - f0) * (f0 == r0)
                                  + np.sign(r1 - r0) * (f0 != r0))
    big = sample_delays(r, f, VariationConfig(periods=(5,), sigma=0.9, seed=3), 1)[0]
    assert big.min() == 1  # clipped at one tick
    glob = VariationConfig(periods=(5,), sigma=0.0, sigma_global=0.2, subticks=100, seed=3)
    rg, _, zg = sample_delays(r, f, glob, 0)
    np.testing.assert_allclose(rg / (100 * r), 1 + 0.2 * zg, atol=0.01)
    # exact centre: the unrounded unit delays (1 unit) are overridden, so ticks are kept
    np.testing.assert_array_equal(base_delays(eng, ann, "exact")[0], eng.rise)
    unit = annotate(netlist, UnitDelay())
    ue = TimingEngine(netlist, unit)
    np.testing.assert_array_equal(base_delays(ue, unit, "exact")[0], 1.0)


def test_regulation_factor_and_regulate(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert regulation_factor("1.5sigma") == 0.0668
    assert regulation_factor("2σ") == 0.0227 and regulation_factor("2 Sigma") == 0.0227
    assert regulation_factor("3sigma") == 0.00135  # the paper's "0.135 %"
    assert regulation_factor("2sigma", exact=True) == pytest.approx(0.5 * math.erfc(math.sqrt(2)))
    assert regulation_factor(0.5) == 0.5 and regulation_factor("0.25") == 0.25
    assert regulation_factor(1) == 1.0
    for bad in (0, 1.5, -0.1, float("nan")):
        with pytest.raises(TableError, match=r"^Regulation factor must be in \(0, 1\], not"):
            regulation_factor(bad)
    with pytest.raises(TableError, match="is not a number; use a value in"):
        regulation_factor("fast")
    netlist, ann = booth4
    cp = TimingEngine(netlist, ann).critical_path
    table = build_tables(netlist, ann, TableConfig(periods=(cp // 2,)), tmp_path,
                         **QUIET).tables[cp // 2]
    reg = regulate(table, "1.5sigma")
    np.testing.assert_allclose(reg.p_wrong, table.p_wrong * 0.0668)
    np.testing.assert_allclose(reg.wrong_prob, table.wrong_prob * 0.0668)
    np.testing.assert_array_equal(reg.wrong_output, table.wrong_output)
    assert reg.meta["regulation"] == 0.0668 and "regulation" not in table.meta
    assert regulate(reg, 0.5).meta["regulation"] == pytest.approx(0.0334)
    df = reg.to_frame()
    assert df.groupby(["a", "b"]).probability.sum().to_numpy() == pytest.approx(1.0)


def test_t_quantile() -> None:
    for df, want in ((1, 12.7062047), (2, 4.30265273), (3, 3.18244631), (4, 2.77644511),
                     (19, 2.09302405), (100, 1.98397152)):
        assert t_quantile(0.975, df) == pytest.approx(want, rel=1e-7)
    assert t_quantile(0.025, 5) == pytest.approx(-2.57058184, rel=1e-7)


def test_bad_settings(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    with pytest.raises(PlanError, match=r"sigma is a fraction of the nominal delay in \[0, 1\)"):
        VariationConfig(periods=(5,), sigma=5)
    with pytest.raises(PlanError, match="--prev-samples must be positive"):
        VariationConfig(periods=(5,), prev_samples=0)
    with pytest.raises(PlanError, match="Clock periods must be positive integers"):
        VariationConfig(periods=(0,))
    unit = annotate(netlist, UnitDelay())
    with pytest.raises(PlanError, match="is below the tick: no gate delay would change; use "
                                        "--subticks 20"):
        build_variation(netlist, unit, VariationConfig(periods=(5,), sigma=0.05), tmp_path,
                        **QUIET)


def test_cli_on_the_committed_booth8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    design = str(ROOT / "rtl" / "booth8")
    args = ["variation", design, "--period", "40", "--period", "46", "--sigma", "0.3",
            "--samples", "2", "--prev-samples", "1", "--out", str(tmp_path), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["period"] for r in out["summary"]] == [40, 46]
    assert sorted(p.name for p in tmp_path.glob("compressed_T*.parquet")) == [
        "compressed_T40.parquet", "compressed_T46.parquet"]
    assert main(["variation", design, "--period", "40", "--sigma", "0.05",
                 "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("flipclock: error: Delay variation of 0.05 x "
                                              "nominal is below the tick")


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_tables(booth4, periods, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from distributed import Client, LocalCluster

    netlist, ann = booth4
    cfg = VariationConfig(periods=periods, sigma=0.1, samples=3)
    build_variation(netlist, ann, cfg, tmp_path / "threads", **QUIET)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        build_variation(netlist, ann, cfg, tmp_path / "dask", client=client, **QUIET)
    hashes = [json.loads((tmp_path / d / "meta.json").read_text())["content_hash"]
              for d in ("threads", "dask")]
    assert hashes[0] == hashes[1]
