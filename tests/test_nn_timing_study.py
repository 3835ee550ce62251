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
from flipclock.studies.timing.claims import chosen_rows, claims
from nnmap import InjectionError, OperandStreams, check_table
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
    assert cfg.variants() == ("TError", "WD+EAQ", "EAQ", "WD+EAQ/uniform-acts",
                              "EAQ/uniform-acts")
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


def test_claims_follow_the_confidence_intervals():
    row = {"prev": "uniform", "design_prev": "uniform", "period": 32, "regulation": "2sigma",
           "N_baseline": 0.90, "N_TError_mean": 0.70, "N_TError_low": 0.68,
           "N_TError_high": 0.72, "N_EAQ_mean": 0.80, "N_EAQ_low": 0.78, "N_EAQ_high": 0.82,
           "N_WD+EAQ_mean": 0.81, "N_WD+EAQ_low": 0.79, "N_WD+EAQ_high": 0.83}
    milder = {**row, "period": 37, "N_TError_high": 0.95}  # no clear drop at T37
    assert chosen_rows([row, milder]) == (32, [32])
    verdicts = [c.verdict for c in claims([row, milder])]
    # a clear drop, EAQ clearly above TError, WD+EAQ and EAQ overlapping
    assert verdicts == ["holds", "holds", "inconclusive"]
    worse = {**row, "N_EAQ_mean": 0.60, "N_EAQ_low": 0.58, "N_EAQ_high": 0.62}
    assert [c.verdict for c in claims([worse])][1] == "opposite"
    assert claims([milder]) == []


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
    _fails([*base, "--table", t32, "--dataflow", "ws-markov", "--dataflow-samples", "4"], capsys,
           "--dataflow-sampling sample")
    _fails([*base, "--table", t32, "--design", str(BOOTH8)], capsys, "--design applies only")
    _fails([*base, "--build-tables", "--period", "32"], capsys, "needs --table")
    _fails([*base, "--table", t32, "--cache", t32], capsys, "--cache")
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
    _fails([*base, "--table", t32, "--checkpoint", str(tmp_path / "missing.pt")], capsys,
           "missing.pt' does not exist")
    _fails([*base, "--table", t32, "--no-train", "--cache", str(tmp_path / "cache")], capsys,
           "No cached checkpoint")
    junk = tmp_path / "junk.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, junk)
    _fails([*base, "--table", t32, "--checkpoint", str(junk)], capsys, "does not fit lenet5")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    _fails([*base, "--table", t32, "--checkpoint", str(tmp_path / "text.pt")], capsys,
           "cannot be read")
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
    assert _config(parse(["--quick", "--seeds", "2", "--out", "x"])).seeds == 2


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
            "--dataflow", "ws-markov", "--dataflow-samples", "4", "--act-dist", "both",
            "--cache", str(tmp_path / "cache"), "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| Model | Scenario | Error rate regulation | N_baseline | N_TError |" in printed
    for name in ("report.md", "table_v.md", "table_v.csv", "table_iv.md", "accuracy.png",
                 "sensitivity.png", "mitigation.csv", "streams.csv", "settings.json"):
        assert (out / name).is_file(), name
    rows = pd.read_csv(out / "table_v.csv")
    settings = json.loads((out / "settings.json").read_text())
    assert list(rows["scenario"].unique()) == [
        "T32", "T32 ws-markov", "T32 ws-markov, designed for uniform prev"]
    assert set(rows["regulation"]) == {"1.5sigma", "2sigma"}
    assert (rows["N_baseline"] == settings["quant"]["int8_accuracy"]).all()
    for key in ("N_TError", "N_WD+EAQ", "N_EAQ"):
        assert (rows[f"{key}_low"] <= rows[f"{key}_mean"] + 1e-12).all()
        assert (rows[f"{key}_mean"] <= rows[f"{key}_high"] + 1e-12).all()
    uni = rows[rows["scenario"] == "T32"]
    assert uni["N_WD+EAQ/uniform-acts_mean"].notna().all()
    assert (rows["MACs_baseline"] == 416520).all()  # LeNet-5 on 28x28 images
    mit = pd.read_csv(out / "mitigation.csv")
    wd = mit[(mit["scenario"] == "T32") & (mit["variant"] == "WD+EAQ")]
    assert int(uni["MACs_WD+EAQ"].iloc[0]) == int(wd["macs_after"].sum()) >= 416520
    assert (wd["expected_wrong_after"] <= wd["expected_wrong_before"] + 1e-9).all()
    # the cross scenario shares N_TError with the scenario injecting the same tables
    ws = rows[rows["scenario"] == "T32 ws-markov"].set_index("regulation")
    cross = rows[rows["scenario"].str.contains("designed for")].set_index("regulation")
    assert np.allclose(cross["N_TError_mean"], ws["N_TError_mean"])
    report = (out / "report.md").read_text()
    assert "## Previous-input assumption (dataflow)" in report and "Table IV" in report
    assert report.startswith("# QUICK: Timing-error study")
    assert report.splitlines()[2].startswith("QUICK run")
    assert settings["config"]["quick"] is True and (out / ".flipclock").is_file()
    runs = {p: len(p.read_text().splitlines()) for p in out.glob("campaigns/*/results.jsonl")}
    # variants x regulations x seeds + clean runs of the mitigated networks, per scenario
    assert sum(runs.values()) == (5 * 2 * 2 + 4) + (3 * 2 * 2 + 2) + (2 * 2 * 2 + 2)
    # a second run resumes: no new trials, same table
    assert main(argv) == 0
    assert {p: len(p.read_text().splitlines()) for p in runs} == runs
    assert pd.read_csv(out / "table_v.csv").equals(rows)


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
                 "--epochs", "1", "--test-images", "8", "--seeds", "2", "--regulation", "2sigma",
                 "--sens-images", "16", "--stream-images", "8", "--batch-size", "8",
                 "--cache", str(tmp_path / "cache"), "--no-progress", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "table_v.csv")
    assert len(rows) == 1
    assert int(rows["MACs_baseline"].iloc[0]) == 40_551_040  # the paper's 40.55M (Table VI)
    assert int(rows["MACs_WD+EAQ"].iloc[0]) >= 40_551_040
    assert rows["N_TError_mean"].notna().all() and rows["clean_EAQ"].notna().all()
    mit = pd.read_csv(out / "mitigation.csv")
    assert mit["layer"].nunique() == 20  # 19 convolutions + 1 FC
