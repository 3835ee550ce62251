"""Stuck-at faults: the engine's forced nets against the numpy reference simulator, the MSB
faults' exact damage, the ranked report and tables, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flipclock.cli import main
from sim.cells import DEFAULT_LIBRARY
from sim.delay import DelayAnnotation, UnitDelay, annotate
from sim.engine import TimingEngine
from sim.netlist import Netlist
from sim.plan import PlanError
from sim.reader import read_verilog
from sim.stuckat import (
    StuckAtConfig,
    fault_sites,
    fault_table,
    faulty_products,
    parse_faults,
    run_stuckat,
)
from sim.tables import CompressedTable, signed_values
from sim.wavesim import simulate_transitions

W = 4
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def booth4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Netlist, DelayAnnotation]:
    """A 4-bit Booth multiplier with unit delays."""
    import hw
    from sim.synth import synthesize

    path = tmp_path_factory.mktemp("booth4") / "gate.v"
    path.write_text(synthesize(hw.to_verilog(hw.BoothMultiplier(width=W), name="booth"),
                               "booth").verilog)
    netlist = read_verilog(path, DEFAULT_LIBRARY)
    return netlist, annotate(netlist, UnitDelay())


def _reference(netlist: Netlist, ann: DelayAnnotation, forced: dict[str, int]) -> np.ndarray:
    """Settled signed products of all pairs from the numpy reference simulator."""
    q = np.arange(1 << (2 * W))
    ops = {"a": q >> W, "b": q & ((1 << W) - 1)}
    cp = TimingEngine(netlist, ann).critical_path
    codes = simulate_transitions(netlist, ann.delays, ops, ops, cp, forced=forced)["p"][-1]
    return np.where(codes >= 1 << (2 * W - 1), codes - (1 << (2 * W)), codes)


def test_faults_match_the_reference_simulator(booth4) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    eng = TimingEngine(netlist, ann, threads=1)
    sites = fault_sites(eng)
    assert [s.net for s in sites[:2 * W]] == [*netlist.inputs["a"], *netlist.inputs["b"]]
    assert len(sites) == 2 * W + len(eng.plan.nodes)
    msb = netlist.outputs["p"][-1]
    rng = np.random.default_rng(3)
    internal = [sites[int(i)].net for i in rng.choice(np.arange(2 * W, len(sites)), 4,
                                                      replace=False)]
    for net in ["a[0]", "b[3]", msb, *internal]:
        for value in (0, 1):
            np.testing.assert_array_equal(faulty_products(eng, {net: value}),
                                          _reference(netlist, ann, {net: value}),
                                          err_msg=f"{net} SA{value}")
    v = signed_values(W)
    np.testing.assert_array_equal(faulty_products(eng), np.multiply.outer(v, v).ravel())


def test_msb_faults_flip_the_sign_bit_exactly(booth4) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    eng = TimingEngine(netlist, ann, threads=1)
    v = signed_values(W)
    exact = np.multiply.outer(v, v).ravel()
    msb = netlist.outputs["p"][-1]
    top = 1 << (2 * W - 1)
    sa0, sa1 = faulty_products(eng, {msb: 0}), faulty_products(eng, {msb: 1})
    neg = exact < 0  # 2 * 8 * 7 = 112 of the 256 pairs
    assert neg.sum() == 112
    np.testing.assert_array_equal(sa0, np.where(neg, exact + top, exact))
    np.testing.assert_array_equal(sa1, np.where(neg, exact, exact - top))
    table = fault_table(W, sa0, period=9, meta={"fault": {"net": msb, "value": 0}})
    assert table.p_wrong.sum() == 112 and set(np.unique(table.p_wrong)) == {0.0, 1.0}
    np.testing.assert_array_equal(table.wrong_output, sa0[neg])
    np.testing.assert_array_equal(table.wrong_prob, 1.0)


def test_campaign_report_and_tables(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    msb = netlist.outputs["p"][-1]
    cfg = StuckAtConfig(top=5, tables=((msb, 0), ("a[1]", 1)), tables_top=1)
    res = run_stuckat(netlist, ann, cfg, tmp_path, progress=False, log=lambda _m: None,
                      threads=2)
    df = pd.read_csv(tmp_path / "stuckat.csv")
    n_nets = 2 * W + len(TimingEngine(netlist, ann).plan.nodes)
    assert len(df) == 2 * n_nets == res.meta["faults"]
    assert df["rank"].tolist() == list(range(1, len(df) + 1))
    assert (np.diff(df.mean_abs_error) <= 0).all()
    row = df[(df.net == msb) & (df.fault == "SA0")].iloc[0]
    assert row.error_rate == pytest.approx(112 / 256)
    assert row.mean_abs_error == pytest.approx(112 * 128 / 256)
    assert row.max_abs_error == 128 and str(row.affected_bits) == str(2 * W - 1)
    assert row.driver != msb and row.cell_type.endswith(".Y")
    a0 = df[(df.net == "a[0]") & (df.fault == "SA1")].iloc[0]
    assert a0.cell_type == "input" and a0.error_rate > 0
    # equivalent faults share a class: every class's members have identical measures
    for _, g in df.groupby("equivalence_class"):
        assert g.error_rate.nunique() == 1 and g.mean_abs_error.nunique() == 1
        assert (g.equivalent_faults == len(g)).all()
    # tables: the requested ones and the best-ranked one, readable back
    best = (df.net[0], int(df.value[0]))
    assert set(res.tables) == {(msb, 0), ("a[1]", 1), best}
    back = CompressedTable.read(res.tables[msb, 0])
    assert back.p_wrong.sum() == 112 and back.meta["fault"] == {
        "net": msb, "value": 0, "driver": row.driver}
    report = (tmp_path / "report.md").read_text()
    assert report.count("\n| ") == 6 and f"`{df.net[0]}`" in report
    assert (tmp_path / "top_faults.png").stat().st_size > 5000
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["netlist_hash"] == netlist.content_hash and meta["tables"][0] == f"{msb}:0"


def test_bad_input(booth4, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    netlist, ann = booth4
    assert parse_faults("p[7]:0, x:y:SA1") == (("p[7]", 0), ("x:y", 1))
    for bad in ("p[7]", "p[7]:2", ":1"):
        with pytest.raises(PlanError, match="A fault is NET:0 or NET:1"):
            parse_faults(bad)
    with pytest.raises(PlanError, match="Rank by one of"):
        StuckAtConfig(rank_by="fun")
    with pytest.raises(PlanError, match="Stuck-at values are 0 and 1"):
        StuckAtConfig(values=(2,))
    with pytest.raises(PlanError, match="No net 'nope' to fault"):
        run_stuckat(netlist, ann, StuckAtConfig(nets=("nope",)), tmp_path, progress=False)


def test_cli_on_the_committed_booth8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    design = str(ROOT / "rtl" / "booth8")
    rc = main(["stuckat", design, "--nets", "p[15],b[0]", "--tables", "p[15]:1",
               "--out", str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["faults"] == 4 and len(out["top"]) == 4
    sa = {(r["net"], r["fault"]): r for r in out["top"]}
    neg = 2 * 128 * 127  # pairs with a negative product
    assert sa["p[15]", "SA0"]["error_rate"] == pytest.approx(neg / 65536)
    assert sa["p[15]", "SA1"]["error_rate"] == pytest.approx(1 - neg / 65536)
    assert Path(out["tables"]["p[15]:1"]).is_file()
    rc = main(["stuckat", design, "--nets", "nope", "--out", str(tmp_path)])
    assert rc == 2
    assert capsys.readouterr().err.strip() == (
        "flipclock: error: No net 'nope' to fault (primary input bits and cell outputs "
        "only); see the net column of stuckat.csv")
