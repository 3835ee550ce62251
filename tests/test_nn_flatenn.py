"""The FlatENN study end to end (tiny, two replicates), its resume, its choices and the CLI's
errors. The statistics and claims are in ``test_nn_flatenn_stats.py``, the fault-rate
definitions and sparsity counts in ``test_nn_flatenn_faults.py``."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from flipclock.cli import main
from flipclock.studies.flatenn.campaign import _LOADED, FaultTrial, model_key
from flipclock.studies.flatenn.config import FlatStudyConfig, FlatStudyError, training_split
from flipclock.studies.flatenn.study import run_study
from flipclock.studies.flatenn.training import (
    CONTROLS,
    PAPER_VARIANTS,
    choose_rho,
    match_alpha,
)
from nnmap.data import load_dataset
from nnmap.landscape import LandscapeConfig
from nnmap.qat import QATError
from nnmap.saq import SAQError
from nnmap.sram_faults import SramFaultError
from sim.config import ConfigError

torch.set_num_threads(1)


def _tiny(**changes: object) -> FlatStudyConfig:
    base = dict(model="lenet5", dataset="fashion-mnist-subset", epochs=2, batch_size=32,
                models=2, alphas=(0.05, 0.3), rhos=(0.02, 0.5), rates=(0.0, 0.01, 0.05),
                trials=2, train_limit=3000, test_limit=200, val_size=300, trial_images=150,
                quick=True, landscape=LandscapeConfig(samples=100, points_1d=5, points_2d=3,
                                                      directions=2, fault_samples=1))
    base.update(changes)
    return FlatStudyConfig(**base)  # type: ignore[arg-type]


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted((out / "campaign").glob("*/results.jsonl"))
            for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_tiny_study_end_to_end_and_resume(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    cfg = _tiny()
    res = run_study(cfg, out, cache=cache, progress=False)
    s = res.summary
    for f in ("report.md", "headline.md", "study.json", "settings.json", "claims.csv",
              "accuracy.csv", "paired.csv", "max_gain.csv", "landscape.json", "manifest.json",
              "figs/fig2_sparsity.png", "figs/fig4_accuracy_vs_rate.png", "figs/controls.png",
              "figs/fig3_landscape_1d.png", "figs/fig3_landscape_contour.png",
              "figs/fig3_landscape_surface.png", "figs/landscape_fault_flip.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    # campaigns: one folder per replicate and unit; paper variants on every kind, the
    # controls on flip only; one fault-free trial per variant
    recs = _records(out)
    per_shard = len(PAPER_VARIANTS) * (1 + 3 * 2 * 2) + len(CONTROLS) * (1 + 1 * 2 * 2)
    assert sorted(p.name for p in (out / "campaign").iterdir()) == [
        "m0-bit", "m0-weight", "m1-bit", "m1-weight"]
    assert len(recs) == 4 * per_shard
    # pairing: the variants of one replicate see the same map; replicates see other maps
    faults: dict[tuple[Any, ...], set[int]] = {}
    for r in recs:
        p = r["params"]
        if p["kind"] != "none":
            key = (p["model"], p["unit"], p["kind"], p["rate"], p["trial"])
            faults.setdefault(key, set()).add(r["result"]["faults"])
    assert all(len(v) == 1 for v in faults.values())
    assert faults[(0, "bit", "flip", 0.05, 0)] != faults[(1, "bit", "flip", 0.05, 0)]
    # per weight, rate r puts about r * weights faulty cells; per bit about r * 4 * weights
    stored = recs[-1]["result"]["stored_bits"]
    bit = next(iter(faults[(0, "bit", "flip", 0.05, 0)]))
    wgt = next(iter(faults[(0, "weight", "flip", 0.05, 0)]))
    assert abs(bit - 0.05 * stored) < 5 * (0.05 * stored) ** 0.5
    assert abs(wgt - 0.05 * stored / 4) < 5 * (0.05 * stored / 4) ** 0.5
    # replicates: training seeds 0 and 1; alpha and rho chosen on the validation split
    v = s["variants"]
    assert v["standard"]["seeds"] == [0, 1] and len(set(v["AS"]["keys"])) == 2
    sel = s["selection"]
    assert sel["validation"] == {"images": 300, "seed": 0}
    sweep = sel["alpha_sweep"]
    matched = [r for r in sweep if r["matched"]]
    chosen = (max(matched, key=lambda r: r["sparsity"]) if matched
              else min(sweep, key=lambda r: abs(r["gap"])))
    assert sel["alpha"] == chosen["alpha"] and v["AS"]["keys"][0] == chosen["key"]
    assert v["AS+SAQ"]["config"]["sparsity"]["alpha"] == sel["alpha"]
    for label in ("standard+SAQ", "AS+SAQ"):
        rows = [r for r in sel["rho_sweep"] if r["model"] == label]
        ok = [r for r in rows if r["trains"]] or rows
        best = max(ok, key=lambda r: r["accuracy"])
        assert sel["rho"][label] == best["rho"] and v[label]["keys"][0] == best["key"]
        assert v[label]["config"]["epochs"] == cfg.saq_epochs == 1
    # the 0.5 radius does not train on this cut: dropped, and the report lists it
    assert not any(r["trains"] for r in sel["rho_sweep"] if r["rho"] == 0.5)
    # controls: equal epochs (conventional, E/2) and warm start from the replicate's model
    assert v["standard (E/2)"]["config"]["method"] == "conventional"
    assert v["standard (E/2)"]["config"]["epochs"] == cfg.saq_epochs
    for base in ("standard", "AS"):
        for ft, method in ((f"{base}+FT", "conventional"), (f"{base}+SAQ FT", "saq")):
            c = v[ft]["config"]
            assert (c["method"], c["epochs"], c["lr"]) == (method, 1, cfg.finetune_lr)
            assert c["init"] == v[base]["keys"][0]
    # one fault-free trial per variant, replicate and unit, with no fault
    none = [r for r in recs if r["params"]["kind"] == "none"]
    assert len(none) == 2 * 2 * (len(PAPER_VARIANTS) + len(CONTROLS))
    assert all(r["result"]["faults"] == 0 and r["params"]["rate"] == 0 for r in none)
    # every CI is over the two models
    assert all(r["models"] == 2 for r in s["accuracy"] + s["paired"])
    assert {c["verdict"] for c in s["claims"]} <= {"holds", "opposite", "inconclusive"}
    with open(out / "claims.csv") as fh:
        claim_rows = list(csv.DictReader(fh))
    assert len(claim_rows) == len(s["claims"]) and all(r["models"] == "2" for r in claim_rows)
    # QUICK in the title and first line of the report and of the headline
    report = (out / "report.md").read_text().splitlines()
    assert report[0] == "# QUICK: FlatENN study: lenet5 on fashion-mnist-subset"
    assert report[2].startswith("QUICK run")
    head = (out / "headline.md").read_text().splitlines()
    assert head[0].startswith("#### QUICK: FlatENN") and head[2].startswith("QUICK run")
    table = [ln for ln in head if ln.startswith("|")]
    assert len(table) <= 14  # header, rule and at most 12 rows
    text = (out / "report.md").read_text()
    for heading in ("## Fault-rate definitions", "## Choice of alpha and rho",
                    "**no (dropped)**", "## Activation sparsity (Fig. 2)", "Counting rule",
                    "float zeros", "## Paired differences per rate, and the largest over rates",
                    "## Loss landscapes (Fig. 3) and sharpness", "## SRAM weight buffer",
                    "per stored weight", "## Claims"):
        assert heading in text, heading
    assert FlatStudyConfig.from_json(json.dumps(
        json.loads((out / "settings.json").read_text())["config"])) == cfg

    # the trial function travels to a worker by pickle and reloads from the checkpoints
    fn = FaultTrial({model_key(k, 1): str(cache / "flatenn" / f"{v[k]['keys'][1]}.pt")
                     for k in v}, cfg.to_json(), None)
    _LOADED.clear()
    rec = next(r for r in recs if r["params"]["kind"] == "sa1" and r["params"]["model"] == 1
               and r["params"]["unit"] == "weight" and r["params"]["trial"] == 1)
    assert pickle.loads(pickle.dumps(fn))(rec["params"]) == rec["result"]

    # resume: nothing is retrained, no trial runs again, more trials are only added
    before = (out / "campaign" / "m0-bit" / "results.jsonl").read_text()
    again = run_study(_tiny(trials=3), out, cache=cache, progress=False)
    after = (out / "campaign" / "m0-bit" / "results.jsonl").read_text()
    assert after.startswith(before)
    assert len(after.splitlines()) == len(PAPER_VARIANTS) * (1 + 3 * 2 * 3) + len(
        CONTROLS) * (1 + 2 * 3)
    assert again.summary["variants"]["AS"]["keys"] == v["AS"]["keys"]


def test_alpha_matching_bisects_the_tolerance_edge() -> None:
    """Grid, then geometric bisection between the last matched and first unmatched alpha."""
    trained: list[float] = []

    class _Res:
        def __init__(self, alpha: float) -> None:
            self.key = f"k{alpha}"

    def fit(tc: Any) -> tuple[_Res, float, float]:
        alpha = tc.sparsity.alpha
        trained.append(alpha)
        return _Res(alpha), 0.9 - 0.09 * alpha, 70 + 10 * alpha  # within 0.5 % up to 0.0556

    cfg = _tiny(alphas=(0.04, 0.1, 0.4), match_refine=2)
    alpha, res, matched, rows = match_alpha(cfg, fit, 0.9)
    assert trained == [0.04, 0.1, 0.4, 0.0632, 0.0503]
    assert (alpha, res.key, matched) == (0.0503, "k0.0503", True)
    assert [r["alpha"] for r in rows] == sorted(trained)
    trained.clear()
    alpha, _, matched, _ = match_alpha(_tiny(alphas=(0.2, 0.4), match_refine=1), fit, 0.9)
    assert trained == [0.2, 0.4, 0.1] and (alpha, matched) == (0.1, False)  # closest gap


def test_rho_choice_drops_radii_that_do_not_train() -> None:
    accs = {0.02: 0.80, 0.05: 0.84, 0.1: 0.86, 0.5: 0.30}

    def measure(tc: Any) -> dict[str, Any]:
        return {"accuracy": accs[tc.rho], "sparsity": 50.0, "key": f"k{tc.rho}"}

    cfg = _tiny(rhos=(0.02, 0.05, 0.1, 0.5))
    # halfway from chance (10 %) to the standard's 88 %: 49 %
    rho, rows = choose_rho(cfg, 0.0, measure, 0.88, 0.1)
    assert rho == 0.1 and [r["trains"] for r in rows] == [True, True, True, False]
    assert [r["chosen"] for r in rows] == [False, False, True, False]
    accs[0.5] = 0.95  # the best radius is kept when it trains
    assert choose_rho(cfg, 0.0, measure, 0.88, 0.1)[0] == 0.5
    for k in accs:
        accs[k] = 0.2  # none trains: the best is still taken, every row says it did not train
    accs[0.05] = 0.25
    rho, rows = choose_rho(cfg, 0.0, measure, 0.88, 0.1)
    assert rho == 0.05 and not any(r["trains"] for r in rows)


def test_validation_split_is_carved_from_training_data_only() -> None:
    cfg = _tiny(train_limit=None, test_limit=None, val_size=500)
    data = load_dataset("fashion-mnist-subset")
    split = training_split(cfg, data)
    x, _ = data.train.tensors
    xt, _ = split.train.tensors
    xv, _ = split.test.tensors
    assert len(xv) == 500 and len(xt) == len(x) - 500
    # disjoint pieces of the training set (rows compared as bytes), none of the test set
    rows = {t.numpy().tobytes() for t in x}
    val = {t.numpy().tobytes() for t in xv}
    assert val <= rows and not val & {t.numpy().tobytes() for t in xt}
    assert not val & {t.numpy().tobytes() for t in data.test.tensors[0]}
    again = training_split(cfg, data)
    assert torch.equal(again.test.tensors[0], xv)  # seeded
    other = training_split(_tiny(train_limit=None, val_size=500, split_seed=1), data)
    assert not torch.equal(other.test.tensors[0], xv)
    assert other.info.fingerprint != split.info.fingerprint
    with pytest.raises(FlatStudyError, match="leaves no training images"):
        training_split(_tiny(val_size=len(x)), data)


def test_study_config_checks_presets_and_round_trip() -> None:
    with pytest.raises(SramFaultError, match=r"Fault rate must be in \[0, 1\]"):
        FlatStudyConfig(rates=(0.0, 1.5))
    with pytest.raises(QATError, match="Unsupported weight bit width 12"):
        FlatStudyConfig(weight_bits=12)
    with pytest.raises(FlatStudyError, match="Unknown data set 'imagenet'"):
        FlatStudyConfig(dataset="imagenet")
    with pytest.raises(SramFaultError, match="Unknown fault kind 'sa2'"):
        FlatStudyConfig(kinds=("sa2",))
    with pytest.raises(SramFaultError, match="Unknown fault-rate unit 'byte'"):
        FlatStudyConfig(units=("byte",))
    with pytest.raises(FlatStudyError, match="control_kinds"):
        FlatStudyConfig(kinds=("sa0",))
    with pytest.raises(SAQError, match="Unknown model 'vgg11'"):
        FlatStudyConfig(model="vgg11")
    with pytest.raises(FlatStudyError, match="alphas must be finite numbers > 0"):
        FlatStudyConfig(alphas=(float("nan"),))
    with pytest.raises(FlatStudyError, match="rhos must be finite numbers > 0"):
        FlatStudyConfig(rhos=(0.0, 0.05))
    with pytest.raises(FlatStudyError, match="models must be a positive integer"):
        FlatStudyConfig(models=0)
    full = FlatStudyConfig.for_model("lenet5", "fmnist")
    assert full.models == 3 and not full.is_quick and full.units == ("bit", "weight")
    assert max(full.rates) == 0.05 and min(r for r in full.rates if r > 0) <= 0.0025
    assert full.saq_epochs * 2 == full.epochs and full.controls
    assert FlatStudyConfig.from_json(full.to_json()) == full
    quick = FlatStudyConfig.for_model("lenet5", "fmnist", quick=True, train_limit=600)
    assert quick.is_quick and quick.val_size == 120  # a fifth of a small cut
    assert FlatStudyConfig.from_json(quick.to_json()) == quick
    data = json.loads(full.to_json())
    assert data["format"] == "flipclock.study.flatenn" and data["val_size"] == 5000
    data["trails"] = 3
    with pytest.raises(ConfigError, match="unknown FlatStudyConfig settings: trails"):
        FlatStudyConfig.from_dict(data)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses a value before the command runs
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--rates", "0,0.01,1.5"], "argument --rates: each value must lie in [0, 1], not 1.5"),
    (["--rates", "nan"], "argument --rates: expected a finite number, not 'nan'"),
    (["--trials", "-2"], "argument --trials: expected a positive integer, not '-2'"),
    (["--models", "0"], "argument --models: expected a positive integer, not '0'"),
    (["--threads", "0"], "argument --threads: expected a positive integer, not '0'"),
    (["--seed", "-1"], "argument --seed: a seed is an integer from 0"),
    (["--alphas", "0,0.1"], "argument --alphas: each value must lie in (0, inf]"),
    (["--rhos", "0,0.1"], "argument --rhos: each value must lie in (0, inf]"),
    (["--kinds", "flip,sa2"], "argument --kinds: unknown 'sa2'; choose from flip, sa0, sa1"),
    (["--units", "bit,byte"], "argument --units: unknown 'byte'; choose from bit, weight"),
    (["--model", "vgg11"], "argument --model: unknown model 'vgg11'; choose from lenet5, "
                           "resnet20, resnet18"),
    (["--dataset", "imagenet"], "argument --dataset: unknown data set 'imagenet'; choose from"),
    (["--weight-bits", "12"], "Unsupported weight bit width 12"),
    (["--dataset", "fashion-mnist-subset", "--sram", "8x256"],
     "The model needs 30735 words of 8 bits"),
    (["--dataset", "fashion-mnist-subset", "--train-limit", "100", "--val-size", "100"],
     "val_size 100 leaves no training images"),
    (["--dataset", "cifar10", "--data-dir", "{tmp}"], "CIFAR-10"),
    (["--cache", "{tmp}/afile"], "is a file; give a folder"),
])
def test_cli_bad_input_is_refused_before_work(args: list[str], message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    argv = ["flatenn", "study", "--out", str(tmp_path / "o"), "--quick", *args]
    if "--cache" not in args:
        argv += ["--cache", str(tmp_path / "cache")]
    code, err = _run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error: " in last and message in last, err
    if "argument" not in message:
        assert len(err.strip().splitlines()) == 1, err  # a user error is one line
    assert not (tmp_path / "cache").exists(), "nothing was trained"
    assert not (tmp_path / "o").exists(), "nothing was written"


def test_cli_bench_refuses_zero_repeats(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["flatenn", "bench", "--repeats", "0"], capsys)
    assert code == 2 and "argument --repeats: expected a positive integer, not '0'" in err


def test_cli_refuses_a_foreign_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("keep me")
    code, err = _run(["flatenn", "study", "--out", str(tmp_path / "o"), "--quick", "--cache",
                      str(tmp_path / "cache")], capsys)
    assert code == 2 and "was not made by flipclock" in err and len(err.splitlines()) == 1
    assert (tmp_path / "o" / "mine.txt").read_text() == "keep me"
    assert not (tmp_path / "cache").exists()
