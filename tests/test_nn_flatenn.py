"""The FlatENN study wing end to end (tiny), its resume, its claims, and the CLI's errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from flipclock.cli import main
from flipclock.studies.flatenn.campaign import _LOADED, FaultTrial
from flipclock.studies.flatenn.claims import study_claims
from flipclock.studies.flatenn.config import LABELS, FlatStudyConfig, FlatStudyError
from flipclock.studies.flatenn.study import run_study
from flipclock.studies.flatenn.training import match_alpha
from nnmap.landscape import LandscapeConfig
from nnmap.qat import QATError
from nnmap.saq import SAQError
from nnmap.sram_faults import SramFaultError
from sim.config import ConfigError

torch.set_num_threads(1)


def _tiny(**changes: object) -> FlatStudyConfig:
    base = dict(model="lenet5", dataset="fashion-mnist-subset", epochs=2, batch_size=32,
                alphas=(0.05, 0.3), match_refine=0, rhos=(0.05, 0.2), rates=(0.0, 0.05), trials=3,
                train_limit=1000, test_limit=200, quick=True,
                landscape=LandscapeConfig(samples=200, points_1d=5, points_2d=3,
                                          directions=2, fault_samples=1))
    base.update(changes)
    return FlatStudyConfig(**base)  # type: ignore[arg-type]


@pytest.mark.slow
def test_tiny_study_end_to_end_and_resume(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    cfg = _tiny()
    res = run_study(cfg, out, cache=cache, progress=False)
    s = res.summary
    for f in ("report.md", "study.json", "settings.json", "campaign_summary.csv",
              "paired_differences.csv", "landscape.json", "figs/fig2_sparsity.png",
              "figs/fig4_accuracy_vs_rate.png", "figs/fig3_landscape_1d.png",
              "figs/fig3_landscape_contour.png", "figs/fig3_landscape_surface.png",
              "figs/landscape_fault_flip.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    lines = (out / "campaign" / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(LABELS) * (1 + 3 * 3)
    # the AS model is the sparsest alpha within 0.5 %, or the closest one (reported)
    sweep = s["selection"]["alpha_sweep"]
    matched = [r for r in sweep if r["matched"]]
    chosen = s["selection"]["alpha"]
    if matched:
        assert chosen == max(matched, key=lambda r: r["sparsity"])["alpha"]
    else:
        assert chosen == min(sweep, key=lambda r: abs(r["gap"]))["alpha"]
    assert s["models"]["AS"]["config"]["sparsity"]["alpha"] == chosen
    assert s["models"]["AS+SAQ"]["config"]["sparsity"]["alpha"] == chosen
    assert s["models"]["standard+SAQ"]["config"]["epochs"] == cfg.saq_epochs == 1
    assert s["models"]["standard+SAQ"]["config"]["method"] == "saq"
    # fault-free trial == the model's own fault-free accuracy
    recs = [json.loads(line) for line in lines]
    for label in LABELS:
        ff = [r for r in recs if r["params"]["model"] == label and r["params"]["kind"] == "none"]
        assert ff[0]["result"]["accuracy"] == pytest.approx(s["models"][label]["accuracy"])
    # rho ablation: the unchosen SAQ models at the highest rate, paired with conventional
    abl = s["rho_ablation"]
    assert len(abl) == 4 and sum(r["chosen"] for r in abl) == 2
    assert {r["rho"] for r in abl} == {0.05, 0.2}
    abl_lines = (out / "campaign_rho_ablation" / "results.jsonl").read_text().splitlines()
    assert len(abl_lines) == 2 * (1 + 3 * 3)
    assert all(r["flip_gain"] is not None and r["flip_gain"]["n"] == 3 for r in abl)
    faulty = [r["result"] for r in recs if r["params"]["kind"] == "flip"]
    assert all(r["faults"] > 0 for r in faulty)
    report = (out / "report.md").read_text()
    first = report.splitlines()
    assert first[0] == "# QUICK: FlatENN study: lenet5 on fashion-mnist-subset"
    assert first[2].startswith("QUICK run")
    for heading in ("### SAQ radius ablation (beyond the paper)",
                    "## Activation sparsity (Fig. 2)", "## Accuracy under SRAM weight faults",
                    "## Headline comparisons: paper vs ours", "## Claims",
                    "## Loss landscapes (Fig. 3)", "## SRAM weight buffer",
                    "How standard and AS were matched"):
        assert heading in report, heading
    assert "| sparsity standard -> AS | 43.0 % -> 84.0 % |" in report
    assert {c["verdict"] for c in s["claims"]} <= {"holds", "opposite", "inconclusive"}
    assert FlatStudyConfig.from_json(json.dumps(
        json.loads((out / "settings.json").read_text())["config"])) == cfg
    assert res.headline_lines()[-1].startswith("report: ")

    # the trial function travels to Dask workers by pickle and reloads from the checkpoints
    fn = FaultTrial({k: str(cache / "flatenn" / f"{v['key']}.pt")
                     for k, v in s["models"].items()}, cfg.to_json(), None, cfg.fault_seed, None)
    _LOADED.clear()
    rec = next(r for r in recs if r["params"]["kind"] == "sa1" and r["params"]["trial"] == 2)
    assert pickle.loads(pickle.dumps(fn))(rec["params"]) == rec["result"]

    # resume: nothing is retrained, no trial runs again, more trials are only added
    before = (out / "campaign" / "results.jsonl").read_text()
    again = run_study(_tiny(trials=4), out, cache=cache, progress=False)
    after = (out / "campaign" / "results.jsonl").read_text()
    assert after.startswith(before)
    assert len(after.splitlines()) == len(LABELS) * (1 + 3 * 4)
    assert again.summary["models"]["AS"]["key"] == s["models"]["AS"]["key"]


def test_alpha_matching_bisects_the_tolerance_edge() -> None:
    """Grid, then geometric bisection between the last matched and first unmatched alpha."""
    trained: list[float] = []

    class _Res:
        def __init__(self, alpha: float) -> None:
            self.key = f"k{alpha}"

    def fit(tc: object) -> tuple[_Res, float, float]:
        alpha = tc.sparsity.alpha  # type: ignore[attr-defined]
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


def test_study_config_checks_presets_and_round_trip() -> None:
    with pytest.raises(SramFaultError, match=r"Fault rate must be in \[0, 1\]"):
        FlatStudyConfig(rates=(0.0, 1.5))
    with pytest.raises(QATError, match="Unsupported weight bit width 12"):
        FlatStudyConfig(weight_bits=12)
    with pytest.raises(FlatStudyError, match="Unknown data set 'imagenet'"):
        FlatStudyConfig(dataset="imagenet")
    with pytest.raises(SramFaultError, match="Unknown fault kind 'sa2'"):
        FlatStudyConfig(kinds=("sa2",))
    with pytest.raises(SAQError, match="Unknown model 'vgg11'"):
        FlatStudyConfig(model="vgg11")
    with pytest.raises(FlatStudyError, match="alphas must be finite numbers > 0"):
        FlatStudyConfig(alphas=(float("nan"),))
    r18 = FlatStudyConfig.for_model("resnet18", "cifar10")
    assert max(r18.rates) == 0.03 and r18.trials >= 30 and not r18.is_quick
    lenet = FlatStudyConfig.for_model("lenet5", "fmnist")
    assert max(lenet.rates) == 0.05 and lenet.trials >= 30 and lenet.saq_epochs * 2 == \
        lenet.epochs
    assert FlatStudyConfig.from_json(lenet.to_json()) == lenet
    quick = FlatStudyConfig.for_model("lenet5", "fmnist", quick=True)
    assert quick.is_quick and FlatStudyConfig.from_json(quick.to_json()) == quick
    data = json.loads(lenet.to_json())
    assert data["format"] == "flipclock.study.flatenn" and data["landscape"]["samples"] == 2000
    data["trails"] = 3
    with pytest.raises(ConfigError, match="unknown FlatStudyConfig settings: trails"):
        FlatStudyConfig.from_dict(data)


def _ci(mean: float, half: float) -> dict[str, float]:
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": 5}


def test_claims_read_the_confidence_intervals() -> None:
    cfg = _tiny(kinds=("flip",))
    ff = {"standard": {"accuracy": 0.900, "sparsity": 40.0},
          "AS": {"accuracy": 0.897, "sparsity": 80.0}}
    comps = {"AS - standard": {"flip": {"0.05": _ci(-3.0, 1.0)}},   # below 0: holds
             "standard+SAQ - standard": {"flip": {"0.05": _ci(-2.0, 1.0)}},  # opposite
             "AS+SAQ - AS": {"flip": {"0.05": _ci(0.5, 1.0)}},  # includes 0
             "AS+SAQ - standard": {"flip": {}}}  # not measured
    sharp = {"standard": _ci(0.10, 0.01), "AS": _ci(0.30, 0.01),
             "standard+SAQ": _ci(0.11, 0.05), "AS+SAQ": _ci(0.50, 0.01)}
    got = {c.statement: c.verdict for c in study_claims(cfg, ff, comps, sharp)}
    assert got == {
        "AS sparsity well above standard": "holds",
        "standard and AS matched fault-free": "holds",
        "AS less fault tolerant than standard (flip, 5 %)": "holds",
        "SAQ improves standard (flip, 5 %)": "opposite",
        "SAQ improves AS (flip, 5 %)": "inconclusive",
        "SAQ-AS beats conventional standard (flip, 5 %)": "inconclusive",
        "AS converges to a sharper minimum": "holds",
        "SAQ flattens standard": "inconclusive",  # CIs overlap
        "SAQ flattens AS": "opposite",
    }
    ff["AS"]["accuracy"] = 0.880  # 2 % apart: not matched
    ff["AS"]["sparsity"] = 45.0  # 5 points: not "well above"
    got = {c.statement: c.verdict for c in study_claims(cfg, ff, comps, sharp)}
    assert got["standard and AS matched fault-free"] == "opposite"
    assert got["AS sparsity well above standard"] == "opposite"


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
    (["--threads", "0"], "argument --threads: expected a positive integer, not '0'"),
    (["--seed", "-1"], "argument --seed: a seed is an integer from 0"),
    (["--alphas", "0,0.1"], "argument --alphas: each value must lie in (0, inf]"),
    (["--kinds", "flip,sa2"], "argument --kinds: unknown 'sa2'; choose from flip, sa0, sa1"),
    (["--model", "vgg11"], "argument --model: unknown model 'vgg11'; choose from lenet5, "
                           "resnet20, resnet18"),
    (["--dataset", "imagenet"], "argument --dataset: unknown data set 'imagenet'; choose from"),
    (["--weight-bits", "12"], "Unsupported weight bit width 12"),
    (["--dataset", "fashion-mnist-subset", "--sram", "8x256"],
     "The model needs 30735 words of 8 bits"),
    (["--dataset", "cifar10", "--data-dir", "{tmp}"], "CIFAR-10"),
    (["--dask", "not-an-address"], "--dask takes 'local' or a scheduler address"),
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
