"""The FlatENN study end to end (tiny), its resume, and the CLI's one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from flipclock.cli import main
from nnmap.flatenn import LABELS, FlatStudyConfig, FlatStudyError, _match_alpha, run_study
from nnmap.landscape import LandscapeConfig
from nnmap.qat import QATError
from nnmap.sram_faults import SramFaultError

torch.set_num_threads(1)


def _tiny(**changes: object) -> FlatStudyConfig:
    base = dict(model="lenet5", dataset="fashion-mnist-subset", epochs=2, batch_size=32,
                alphas=(0.05, 0.3), match_refine=0, rhos=(0.05, 0.2), rates=(0.0, 0.05), trials=3,
                train_limit=1000, test_limit=200,
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
    for f in ("report.md", "study.json", "campaign_summary.csv", "paired_differences.csv",
              "landscape.json", "figs/fig2_sparsity.png", "figs/fig4_accuracy_vs_rate.png",
              "figs/fig3_landscape_1d.png", "figs/fig3_landscape_contour.png",
              "figs/fig3_landscape_surface.png", "figs/landscape_fault_flip.png"):
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
    assert "### SAQ radius ablation (beyond the paper)" in (out / "report.md").read_text()
    faulty = [r["result"] for r in recs if r["params"]["kind"] == "flip"]
    assert all(r["faults"] > 0 for r in faulty)
    report = (out / "report.md").read_text()
    for heading in ("## Activation sparsity (Fig. 2)", "## Accuracy under SRAM weight faults",
                    "## Headline comparisons: paper vs ours", "## Claims",
                    "## Loss landscapes (Fig. 3)", "## SRAM weight buffer",
                    "How standard and AS were matched"):
        assert heading in report, heading
    assert "| sparsity standard -> AS | 43.0 % -> 84.0 % |" in report
    verdicts = {c["verdict"] for c in s["claims"]}
    assert verdicts <= {"holds", "does not hold", "does not hold (significant opposite)",
                        "inconclusive (95 % CI includes 0)", "inconclusive (95 % CIs overlap)"}
    assert res.headline_lines()[-1].startswith("report: ")

    # the trial function travels to Dask workers by pickle and reloads from the checkpoints
    import pickle

    from nnmap import flatenn

    fn = flatenn.FaultTrial({k: str(cache / "flatenn" / f"{v['key']}.pt")
                             for k, v in s["models"].items()}, cfg.to_json(), None,
                            cfg.fault_seed, None)
    flatenn._LOADED.clear()
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
    alpha, res, matched, rows = _match_alpha(cfg, fit, 0.9)
    assert trained == [0.04, 0.1, 0.4, 0.0632, 0.0503]
    assert (alpha, res.key, matched) == (0.0503, "k0.0503", True)
    assert [r["alpha"] for r in rows] == sorted(trained)
    trained.clear()
    alpha, _, matched, _ = _match_alpha(_tiny(alphas=(0.2, 0.4), match_refine=1), fit, 0.9)
    assert trained == [0.2, 0.4, 0.1] and (alpha, matched) == (0.1, False)  # closest gap


def test_study_config_checks_and_presets() -> None:
    with pytest.raises(SramFaultError, match=r"Fault rate must be in \[0, 1\]"):
        FlatStudyConfig(rates=(0.0, 1.5))
    with pytest.raises(QATError, match="Unsupported weight bit width 12"):
        FlatStudyConfig(weight_bits=12)
    with pytest.raises(FlatStudyError, match="Unknown data set 'imagenet'"):
        FlatStudyConfig(dataset="imagenet")
    with pytest.raises(SramFaultError, match="Unknown fault kind 'sa2'"):
        FlatStudyConfig(kinds=("sa2",))
    r18 = FlatStudyConfig.for_model("resnet18", "cifar10")
    assert max(r18.rates) == 0.03 and r18.trials >= 30
    lenet = FlatStudyConfig.for_model("lenet5", "fmnist")
    assert max(lenet.rates) == 0.05 and lenet.trials >= 30 and lenet.saq_epochs * 2 == \
        lenet.epochs
    assert FlatStudyConfig.from_json(lenet.to_json()) == lenet




@pytest.mark.parametrize(("args", "message"), [
    (["--rates", "0,0.01,1.5"], "Fault rate must be in [0, 1]"),
    (["--weight-bits", "12"], "Unsupported weight bit width 12"),
    (["--dataset", "fashion-mnist-subset", "--sram", "8x256"],
     "The model needs 30735 words of 8 bits"),
    (["--dataset", "cifar10", "--data-dir", "{tmp}"], "CIFAR-10"),
])
def test_cli_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = main(["flatenn", "study", *args, "--out", str(tmp_path / "o"), "--quick",
                 "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flipclock: error: "), err
    assert message in lines[0], lines[0]
    assert not (tmp_path / "cache").exists(), "nothing was trained"
