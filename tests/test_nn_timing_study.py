"""The timing-error study (``flipclock/studies/timing``): settings, table checks, one-line
CLI errors before any work, dataflow tables against the engine, end-to-end runs."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from flipclock.cli import main
from flipclock.studies.timing import QUICK, StudyError, TimingStudyConfig
from flipclock.studies.timing.claims import aggregate, choose_period, claims
from nnmap import InjectionError, OperandStreams, check_table
from nnmap.stats import nested_ci, paired_nested_ci
from sim.config import ConfigError
from sim.tables import CompressedTable

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
BOOTH8 = ROOT / "rtl" / "booth8"


def _empty_table(width: int = 8, meta: dict | None = None) -> CompressedTable:
    n = 1 << width
    return CompressedTable(width=width, period=30, p_wrong=np.zeros((n, n)),
                           offsets=np.zeros(n * n + 1, np.int64),
                           wrong_output=np.zeros(0, np.int64), wrong_prob=np.zeros(0),
                           n_prev=np.ones((n, n), np.int64), meta=meta or {})


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sampled table of the committed 8-bit Booth netlist at period 32."""
    out = tmp_path_factory.mktemp("tables")
    assert main(["errtable", str(BOOTH8), "--mode", "sample", "--samples", "4",
                 "--period", "32", "--out", str(out), "--json"]) == 0
    return out


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    """A user error: exit status 2 and the message on the last line of stderr (argparse
    errors print the usage above it)."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refuses a bad value before main's body runs
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "error:" in err[-1], err
    assert match in err[-1], err[-1]


# --- settings and table checks --------------------------------------------------------------------
def test_config_round_trip_and_validation():
    cfg = TimingStudyConfig(regulations=("1.5sigma", "0.5"), act_dists=("layer", "uniform"),
                            seeds=7, test_images=100)
    assert TimingStudyConfig.from_json(cfg.to_json()) == cfg
    # the paper's (uniform) Table III is the headline WD+EAQ / EAQ; measured ones are extras
    assert cfg.variants() == ("TError", "WD+EAQ", "EAQ", "WD+EAQ/measured-acts",
                              "EAQ/measured-acts")
    assert cfg.variants(extras=False) == ("TError", "WD+EAQ", "EAQ")
    assert TimingStudyConfig().act_dists == ("uniform", "layer")
    assert TimingStudyConfig(act_dists=("layer",)).variants() == (
        "TError", "WD+EAQ/measured-acts", "EAQ/measured-acts")
    assert TimingStudyConfig().models == 3 and TimingStudyConfig().other_port == "b"
    assert TimingStudyConfig(train_seed=4).train_config(2).seed == 6
    with pytest.raises(StudyError, match="models"):
        TimingStudyConfig(models=0)
    with pytest.raises(StudyError, match="target_drop"):
        TimingStudyConfig(target_drop=float("nan"))
    with pytest.raises(StudyError, match="add it"):
        TimingStudyConfig(regulations=("2sigma",))
    with pytest.raises(InjectionError, match=r"\(0, 1\]"):
        TimingStudyConfig(regulations=("1.5",))
    with pytest.raises(InjectionError, match=r"\(0, 1\]"):
        TimingStudyConfig(regulations=("0",))
    with pytest.raises(StudyError, match="act_dists"):
        TimingStudyConfig(act_dists=("gauss",))
    with pytest.raises(StudyError, match="wd_fraction"):
        TimingStudyConfig(wd_fraction=float("nan"))
    with pytest.raises(StudyError, match="Unknown data set 'imagenet'; choose one of .*cifar10"):
        TimingStudyConfig(dataset="imagenet")
    with pytest.raises(ValueError, match="Unknown model 'alexnet9'; choose one of .*lenet5"):
        TimingStudyConfig(model="alexnet9")
    with pytest.raises(ConfigError, match="seedz"):
        TimingStudyConfig.from_json('{"seedz": 3}')
    # quick changes no trial: the campaign key of a quick and a full run with equal sizes match
    assert TimingStudyConfig(quick=True).trial_settings() == TimingStudyConfig().trial_settings()
    # nor does the number of models (each model's campaign carries its own training seed)
    assert TimingStudyConfig(models=5).trial_settings() == TimingStudyConfig().trial_settings()
    assert TimingStudyConfig(quick=True).is_quick and not cfg.is_quick


def test_check_table_rejects_other_widths_semantics_and_double_regulation():
    check_table(_empty_table(), regulations=("1.5sigma",))
    with pytest.raises(InjectionError, match="4-bit operands but the network is INT8"):
        check_table(_empty_table(4))
    with pytest.raises(InjectionError, match="signed"):
        check_table(_empty_table(meta={"signed": False}))
    with pytest.raises(InjectionError, match="already includes regulation"):
        check_table(_empty_table(meta={"regulation": 0.0668}), regulations=("2sigma",))
    check_table(_empty_table(meta={"regulation": 0.0668}), regulations=("1",))
    with pytest.raises(InjectionError, match="delay variation"):
        check_table(_empty_table(meta={"variation": {"sigma": 0.05}}), regulations=("2sigma",))
    big = _empty_table()
    big.offsets[1:] = 1
    big.wrong_output = np.array([1 << 16])
    big.wrong_prob = np.array([0.1])
    big.p_wrong[0, 0] = 0.1
    with pytest.raises(InjectionError, match="16-bit product range"):
        check_table(big)


def _trials(acc: dict[str, dict[int, list[float]]], *, period: int, reg: str = "1.5sigma",
            port: str = "a") -> list[dict]:
    """Trial rows of one period: ``acc[variant][model] = accuracies by seed``."""
    return [{"model": m, "port": port, "scenario": f"T{period}", "period": period,
             "prev": "uniform", "design_prev": "uniform", "variant": v, "regulation": reg,
             "trial": i, "accuracy": a, "substitutions": 10, "products": 1000}
            for v, by in acc.items() for m, accs in by.items() for i, a in enumerate(accs)]


def test_intervals_span_models_and_pair_by_model_and_seed():
    cfg = TimingStudyConfig(act_dists=("uniform",), regulations=("1.5sigma",))
    base = {(0, "a"): 0.90, (1, "a"): 0.88, (2, "a"): 0.91}
    te = {0: [0.80, 0.82], 1: [0.70, 0.71], 2: [0.85, 0.83]}
    eaq = {0: [0.85, 0.86], 1: [0.80, 0.79], 2: [0.88, 0.88]}
    wd = {0: [0.86, 0.88], 1: [0.82, 0.83], 2: [0.89, 0.90]}
    rows = aggregate(_trials({"TError": te, "EAQ": eaq, "WD+EAQ": wd}, period=36), base, cfg)
    assert len(rows) == 1 and rows[0]["role"] == "headline"
    r = rows[0]
    want = nested_ci([te[m] for m in (0, 1, 2)])
    assert (r["N_TError_mean"], r["N_TError_low"], r["N_TError_high"]) == pytest.approx(
        (want.mean, want.low, want.high))
    assert r["N_TError_models"] == 3 and r["N_TError_trials"] == 6
    # the interval holds the model-to-model spread: wider than the seeds' alone
    assert r["N_TError_high"] - r["N_TError_low"] > 0.05
    gap = paired_nested_ci([eaq[m] for m in (0, 1, 2)], [te[m] for m in (0, 1, 2)])
    assert (r["gap_EAQ_low"], r["gap_EAQ_high"]) == pytest.approx((gap.low, gap.high))
    drop = nested_ci([[base[(m, "a")] - a for a in te[m]] for m in (0, 1, 2)])
    assert r["drop_mean"] == pytest.approx(drop.mean)
    assert r["wrong_rate_TError_mean"] == pytest.approx(0.01)


def test_period_rule_reads_terror_only_and_claims_follow_the_intervals():
    cfg = TimingStudyConfig(act_dists=("uniform",), regulations=("1.5sigma",), target_drop=0.045)
    base = {(m, "a"): 0.90 for m in range(3)}
    trials = []
    for period, te_acc in ((34, 0.80), (35, 0.86), (36, 0.88), (37, 0.899)):
        te = {m: [te_acc - 0.002 * m, te_acc - 0.002 * m - 0.001] for m in range(3)}
        eaq = {m: [a + 0.02 for a in v] for m, v in te.items()}
        wd = {m: [a + 0.03 for a in v] for m, v in te.items()}
        trials += _trials({"TError": te, "EAQ": eaq, "WD+EAQ": wd}, period=period)
    chosen, drops = choose_period(trials, base, cfg)
    # drops: 34 -> 10.25, 35 -> 4.25, 36 -> 2.25, 37 -> 0.35 points: T35 is closest to 4.5
    assert chosen == 35 and drops[35] == pytest.approx(0.0425)
    assert drops[34] == pytest.approx(0.1025) and drops[37] == pytest.approx(0.0035)
    # the rule ignores the mitigations: any change to them leaves the choice alone
    moved = [dict(t, accuracy=0.1) if t["variant"] != "TError" else t for t in trials]
    assert choose_period(moved, base, cfg)[0] == 35
    # a tie goes to the longer period (drops 0.5 and 0.25, exact in binary, target between)
    exact = (_trials({"TError": {0: [0.5, 0.5]}}, period=40)
             + _trials({"TError": {0: [0.75, 0.75]}}, period=41))
    tie = TimingStudyConfig(act_dists=("uniform",), regulations=("1.5sigma",),
                            target_drop=0.375)
    assert choose_period(exact, {(0, "a"): 1.0}, tie) == (41, {40: 0.5, 41: 0.25})
    rows = aggregate(trials, base, cfg)
    got = {c.statement: c for c in claims(rows, chosen, cfg)}
    assert got["timing errors cost accuracy (T35, 1.5sigma)"].verdict == "holds"
    assert got["EAQ beats TError (T35, 1.5sigma)"].verdict == "holds"
    assert got["WD+EAQ beats EAQ (T35, 1.5sigma)"].verdict == "holds"
    assert got["WD+EAQ recovers most (> 50 %) of the drop (T35, 1.5sigma)"].verdict == "holds"
    assert got["EAQ beats TError (T35, 1.5sigma)"].models == 3
    # EAQ below TError on both models: opposite; mixed signs across models: inconclusive
    worse = [dict(t, accuracy=t["accuracy"] - 0.05) if t["variant"] == "EAQ" else t
             for t in trials]
    got = {c.statement: c.verdict for c in claims(aggregate(worse, base, cfg), 35, cfg)}
    assert got["EAQ beats TError (T35, 1.5sigma)"] == "opposite"
    mixed = [dict(t, accuracy=t["accuracy"] - (0.04 if t["model"] == 1 else 0))
             if t["variant"] == "EAQ" else t for t in trials]
    got = {c.statement: c.verdict for c in claims(aggregate(mixed, base, cfg), 35, cfg)}
    assert got["EAQ beats TError (T35, 1.5sigma)"] == "inconclusive"
    # one model: a ratio has no interval, the recovery claim is inconclusive
    one = [t for t in trials if t["model"] == 0]
    got = {c.statement: c.verdict for c in claims(aggregate(one, base, cfg), 35, cfg)}
    assert got["WD+EAQ recovers most (> 50 %) of the drop (T35, 1.5sigma)"] == "inconclusive"
    assert claims(rows, None, cfg) == []


# --- one-line errors of the command -------------------------------------------------------------
def test_cli_rejects_bad_input_in_one_line_before_any_work(tmp_path, capsys, table_dir):
    out = tmp_path / "o"
    base = ["nn", "timing-study", "--dataset", "fashion-mnist-subset", "--out", str(out)]
    t32 = str(table_dir / "compressed_T32.parquet")
    numbers = [("--regulation", "1.5", "(0, 1]"), ("--regulation", "-0.1", "(0, 1]"),
               ("--regulation", "nan", "(0, 1]"), ("--wd-fraction", "nan", "finite"),
               ("--wd-fraction", "2", "fraction"), ("--seeds", "0", "positive"),
               ("--epochs", "-1", "positive"), ("--period", "0", "positive"),
               ("--seed", "-1", "seed"), ("--test-images", "inf", "integer"),
               ("--threads", "0", "from 1 to 256")]
    for flag, value, match in numbers:
        _fails([*base, "--table", t32, flag, value], capsys, match)
    _fails([*base, "--table", t32, "--model", "lenet6"], capsys, "Unknown model 'lenet6'")
    _fails([*base, "--table", t32, "--dataset", "imagenet"], capsys, "Unknown data set")
    # flags that do not apply
    _fails([*base, "--table", t32, "--dataflow-period", "32"], capsys, "add --dataflow")
    _fails([*base, "--table", t32, "--dataflow", "ws-markov", "--dataflow-sampling",
            "exhaustive", "--dataflow-samples", "4"], capsys, "--dataflow-sampling sample")
    _fails([*base, "--table", t32, "--design", str(BOOTH8)], capsys, "--design applies only")
    _fails([*base, "--build-tables", "--period", "32"], capsys, "needs --table")
    _fails([*base, "--table", t32, "--cache", t32], capsys, "--cache")
    _fails([*base, "--table", t32, "--work", t32], capsys, "--work")
    _fails([*base, "--table", t32, "--regulation", "2sigma"], capsys, "add --regulation 1.5sigma")
    _fails([*base, "--table", str(table_dir), "--period-range", "40:30"], capsys, "LO:HI")
    _fails([*base, "--table", t32, "--checkpoint", t32], capsys, "add --models 1")
    # tables
    bad = tmp_path / "compressed_T30.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    _fails([*base, "--table", str(bad)], capsys, "corrupted")
    four = tmp_path / "four" / "compressed_T30.parquet"
    four.parent.mkdir()
    _empty_table(4, {"width": 4}).write(four)
    _fails([*base, "--table", str(four)], capsys, "4-bit operands")
    _fails([*base, "--table", str(table_dir)], capsys, "choose --period")
    _fails([*base, "--table", str(table_dir), "--period", "29"], capsys, "No table for period 29")
    _fails([*base, "--table", str(tmp_path / "nope")], capsys, "does not exist")
    _fails([*base, "--table", t32, "--dataflow", "ws-markov", "--dataflow-period", "37"],
           capsys, "--dataflow-period 37 is not among the studied periods [32]")
    # checkpoints
    _fails([*base, "--table", t32, "--models", "1", "--checkpoint",
            str(tmp_path / "missing.pt")], capsys, "missing.pt' does not exist")
    _fails([*base, "--table", t32, "--no-train", "--cache", str(tmp_path / "cache")], capsys,
           "No cached checkpoint")
    junk = tmp_path / "junk.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, junk)
    _fails([*base, "--table", t32, "--models", "1", "--checkpoint", str(junk)], capsys,
           "does not fit lenet5")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    _fails([*base, "--table", t32, "--models", "1", "--checkpoint", str(tmp_path / "text.pt")],
           capsys, "cannot be read")
    # an output folder that is a file, or a folder of the user's
    _fails([*base[:-1], str(four), "--table", t32], capsys, "is a file")
    _fails([*base[:-1], str(four.parent), "--table", t32], capsys, "holds error tables")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    _fails([*base[:-1], str(mine), "--table", t32], capsys, "not made by flipclock")
    assert not out.exists()  # every refusal came before any work


def test_quick_presets_reach_the_config():
    """The study's own parser (what quick_demo uses): --quick fills what is not given."""
    from flipclock.studies.timing import parse
    from flipclock.studies.timing.command import _config

    args = parse(["--quick", "--dataset", "fashion-mnist-subset", "--out", "x"])
    cfg = _config(args)
    assert cfg.quick and cfg.epochs == QUICK["epochs"] and cfg.seeds == QUICK["seeds"]
    assert cfg.models == QUICK["models"] == 1
    assert _config(parse(["--quick", "--seeds", "2", "--out", "x"])).seeds == 2
    full = _config(parse(["--out", "x"]))
    assert full.models == 3 and not full.quick and full.act_dists == ("uniform", "layer")


# --- dataflow tables against the engine --------------------------------------------------------
def test_markov_tables_match_the_engine_for_independent_streams(tmp_path):
    """With P(prev | current) equal to the marginal, the Markov builder must reproduce the
    engine's exhaustive weight-stationary table (PrevWeights stationary_a)."""
    from flipclock.studies.timing.dataflow_tables import build_dataflow_tables
    from sim.design import load_design
    from sim.engine import PrevWeights, TimingEngine

    h = np.zeros(256)
    h[[0, 3, 77, 200]] = [5.0, 2.0, 1.0, 2.0]
    streams = OperandStreams({"fc": h}, {"fc": np.outer(h, h)}, {"fc": "a"})
    design = load_design(BOOTH8)
    periods = [28, 32]
    built = build_dataflow_tables(design, streams, periods, tmp_path, mode="ws-markov",
                                  sampling="exhaustive", log=lambda _m: None, progress=False)
    eng = TimingEngine(design.netlist, design.annotation)
    rng = np.random.default_rng(0)
    pairs = np.unique(np.concatenate([rng.integers(0, 65536, 200),
                                      (np.arange(256) << 8) | 3, (np.arange(256) << 8) | 200]))
    ref = eng.exhaustive(periods, pairs=pairs, prev=PrevWeights("stationary_a", tuple(h)))
    for i, p in enumerate(periods):
        table = built[p]["fc"]
        assert np.allclose(table.p_wrong.ravel()[pairs], ref.nwrong[:, i] / ref.total)
        sel = ref.records[:, 1] == i
        rec = ref.records[sel]
        signed = np.where(rec[:, 2] >= 1 << 15, rec[:, 2] - (1 << 16), rec[:, 2])
        want = {(int(a), int(o)): w / ref.total
                for a, o, w in zip(rec[:, 0], signed, ref.weights[sel], strict=True)}
        got = {}
        for q in pairs:
            lo, hi = table.offsets[q], table.offsets[q + 1]
            for o, w in zip(table.wrong_output[lo:hi], table.wrong_prob[lo:hi], strict=True):
                got[(int(q), int(o))] = w
        assert got.keys() == want.keys()
        assert np.allclose([got[k] for k in want], list(want.values()))
        assert table.p_wrong.sum() > 0 and table.p_wrong.max() <= 1
    # cached: a second call reads the files back
    again = build_dataflow_tables(design, streams, periods, tmp_path, mode="ws-markov",
                                  sampling="exhaustive", log=lambda _m: None, progress=False)
    assert np.allclose(again[32]["fc"].p_wrong, built[32]["fc"].p_wrong, rtol=0, atol=1e-15)


# --- end to end ---------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_study_end_to_end_and_resume(tmp_path, table_dir, capsys):
    out = tmp_path / "study"
    argv = ["nn", "timing-study", "--dataset", "fashion-mnist-subset", "--quick",
            "--table", str(table_dir), "--period", "32", "--epochs", "1",
            "--test-images", "200", "--seeds", "2", "--sens-images", "500",
            "--dataflow", "ws-markov", "--dataflow-samples", "4",
            "--cache", str(tmp_path / "cache"), "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "\n#### QUICK: Timing-error study" in printed
    for name in ("headline.md", "report.md", "summary.csv", "trials.csv", "claims.csv",
                 "table_iv.md", "accuracy.png", "sensitivity.png", "mitigation.csv",
                 "settings.json", "manifest.json"):
        assert (out / name).is_file(), name
    # campaigns, caches and tables stay out of the results folder
    work = tmp_path / "study.work"
    assert (work / "model-0" / "campaigns").is_dir() and not (out / "campaigns").exists()
    assert not list(out.rglob("*.parquet")) and not list(out.rglob("*.npz"))
    settings = json.loads((out / "settings.json").read_text())
    assert settings["chosen_period"] == 32 and settings["config"]["models"] == 1
    assert settings["config"]["act_dists"] == ["uniform", "layer"]
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["role"]) == {
        "headline", "extra: measured-activation Table III", "extra: weight on port b",
        "extra: dataflow ws-markov",
        "extra: dataflow ws-markov, mitigation designed for uniform prev"}
    head = summary[summary["role"] == "headline"]
    assert set(head["variant"]) == {"TError", "WD+EAQ", "EAQ"}
    assert set(head["table_iii"].fillna("")) == {"", "uniform activations (paper)"}
    assert set(summary["regulation"]) == {"1.5sigma", "2sigma"}
    assert (summary["models"] == 1).all() and (summary["trials"] == 2).all()
    assert (summary["baseline_mean"] == settings["models"]["0"]["quant"]["int8_accuracy"]).all()
    for col in ("accuracy", "wrong_rate"):
        ok = summary[f"{col}_mean"].notna()
        assert (summary.loc[ok, f"{col}_low"] <= summary.loc[ok, f"{col}_mean"] + 1e-12).all()
        assert (summary.loc[ok, f"{col}_mean"] <= summary.loc[ok, f"{col}_high"] + 1e-12).all()
    # the dataflow row designed for uniform prev shares N_TError with the dataflow row
    ws = summary[summary["prev"] == "ws-markov"]
    te = ws[ws["variant"] == "TError"].set_index(["design_prev", "regulation"])["accuracy_mean"]
    assert np.allclose(te.loc["uniform"], te.loc["ws-markov"])
    mit = pd.read_csv(out / "mitigation.csv")
    wd = mit[(mit["scenario"] == "T32") & (mit["variant"] == "WD+EAQ")]
    assert int(wd["macs"].sum()) == 416520 <= int(wd["macs_after"].sum())  # LeNet-5, 28x28
    assert (wd["expected_wrong_after"] <= wd["expected_wrong_before"] + 1e-9).all()
    report = (out / "report.md").read_text()
    assert report.startswith("# QUICK: Timing-error study")
    assert report.splitlines()[2].startswith("QUICK run")
    assert "no model variance" in report and "## Operating point (pre-registered rule)" in report
    # the rule is stated before any mitigation number
    assert report.index("## Operating point") < report.index("## Table V")
    headline = (out / "headline.md").read_text().splitlines()
    assert headline[0].startswith("#### QUICK:") and headline[2].startswith("QUICK run")
    assert settings["config"]["quick"] is True and (out / ".flipclock").is_file()
    runs = {p: len(p.read_text().splitlines()) for p in work.glob("model-0/campaigns/*/"
                                                                   "results.jsonl")}
    # clean runs of the mitigated networks + variants x regulations x seeds, per scenario:
    # T32, measured-acts, port b, ws-markov, ws-markov designed for uniform prev
    assert sum(runs.values()) == 14 + 10 + 14 + 14 + 10
    # a second run resumes: no new trials, the same numbers
    assert main(argv) == 0
    assert {p: len(p.read_text().splitlines()) for p in runs} == runs
    assert pd.read_csv(out / "summary.csv").equals(summary)


def _cifar_batches(folder: Path, n: int = 8) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


@pytest.mark.slow
def test_resnet20_smoke_on_generated_cifar(tmp_path, table_dir):
    _cifar_batches(tmp_path / "cifar-10-batches-py")
    out = tmp_path / "study"
    assert main(["nn", "timing-study", "--model", "resnet20", "--dataset", "cifar10",
                 "--data-dir", str(tmp_path), "--table", str(table_dir / "compressed_T32.parquet"),
                 "--epochs", "1", "--test-images", "8", "--seeds", "2", "--models", "1",
                 "--regulation", "1.5sigma", "--act-dist", "uniform", "--no-port-compare",
                 "--sens-images", "16", "--stream-images", "8", "--batch-size", "8",
                 "--cache", str(tmp_path / "cache"), "--no-progress", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "summary.csv")
    assert len(rows) == 3 and set(rows["role"]) == {"headline"}
    assert rows["accuracy_mean"].notna().all()
    assert rows.loc[rows["variant"] != "TError", "clean_accuracy_mean"].notna().all()
    mit = pd.read_csv(out / "mitigation.csv")
    assert mit["layer"].nunique() == 20  # 19 convolutions + 1 FC
    wd = mit[mit["variant"] == "WD+EAQ"]
    assert int(wd["macs"].sum()) == 40_551_040  # the paper's 40.55M (Table VI)
    assert int(wd["macs_after"].sum()) >= 40_551_040
