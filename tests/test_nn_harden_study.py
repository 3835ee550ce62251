"""The hardening study end to end on a tiny configuration (two trained models): files,
numbers, intervals over models, bisected tolerances, resume, QUICK marking of the report and
the headline, the locked output folder, and one-line errors before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from flipclock.cli import main
from flipclock.studies.harden import HardenStudyConfig, HardenStudyError
from flipclock.studies.harden.study import run_study
from sim.atomic import MARKER
from sim.errors import OutputError

torch.set_num_threads(1)


def _tiny() -> HardenStudyConfig:
    return HardenStudyConfig.for_model(
        "lenet5", "fmnist", quick=True, epochs=1, bers=(1e-4, 1e-2), repetitions=2,
        int8_repetitions=1, fig3_ratios=(0.0, 1.0), fig4_ratios=(0.0, 0.15),
        prune_ratios=(0.5,), prune_grid=(0.5,), finetune_epochs=0, vuln_samples=100,
        eval_samples=100, rank_samples=50, rank_noise_trials=1, timing_repeats=1,
        prune_tolerance=1.0, models=2, finetune_seeds=2, bisect_factor=2.0)


def _lines(folder: Path) -> dict[str, int]:
    return {f"{p.parents[2].name}/{p.parent.name}": len(p.read_text().splitlines())
            for p in sorted(folder.glob("work/*/campaigns/*/results.jsonl"))}


@pytest.mark.slow
def test_tiny_study_end_to_end_and_resume(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIPCLOCK_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "study"
    config = _tiny()
    result = run_study(config, out, progress=False, log=lambda _: None)
    for name in ("report.md", "headline.md", "claims.csv", "manifest.json", "settings.json",
                 "summary.json", "sweep.csv", "fig3.csv", "fig4.csv", "int8.csv", "fig5.csv",
                 "table2.csv", "table2_search.csv", "overheads.csv", "tolerance.csv",
                 "bisection_points.csv", "rank_correlation.csv", "baseline.csv", "fig3.png",
                 "fig4.png", "fig5.png", "fig6.png", "fig7.png", "fig_sweep.png",
                 "fig_tolerance.png", "rank.png", MARKER, "work/model-0/vulnerability.csv",
                 "work/model-1/models/baseline.pt"):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.tmp*")), "temporary files left behind"
    report = (out / "report.md").read_text()
    assert report.startswith("# QUICK: ")
    assert report.splitlines()[2].startswith("QUICK run")
    head = (out / "headline.md").read_text().splitlines()
    assert head[0].startswith("#### QUICK: ") and head[2].startswith("QUICK run")
    assert sum(1 for ln in head if ln.startswith("| ")) <= 14  # header + at most 12 rows
    for heading in ("## Table I", "## Claims", "## Eq. (1)", "## Fig. 3", "## Fig. 4",
                    "## Fig. 5", "## Table II", "## Overheads and Fig. 7", "## INT8 storage"):
        assert heading in report
    sweep = pd.read_csv(out / "sweep.csv")
    assert set(sweep["variant"]) == {"baseline", "intervals-only", "hardened-0.15", "pruned",
                                     "hardened-pruned"}
    assert (sweep["n"] == 4).all() and (sweep["models"] == 2).all()  # 2 models x 2 trials
    # flips: BER x stored bits of the baseline (61,706 float32 numbers)
    base = sweep[(sweep["variant"] == "baseline") & (sweep["ber"] == 1e-2)].iloc[0]
    assert base["flips_mean"] == pytest.approx(1e-2 * 61_706 * 32, rel=0.001)
    assert base["accuracy_mean"] < 0.3  # 20k flips destroy an unprotected float network
    # the models are different networks with their own fault draws
    assert len(pd.read_csv(out / "baseline.csv")["accuracy"].unique()) == 2
    fig5 = pd.read_csv(out / "fig5.csv")
    assert len(fig5) == 2 * 2 * 2 and set(fig5["finetune_seed"]) == {0, 1}
    tol = pd.read_csv(out / "tolerance.csv")
    assert len(tol) == 2 * 5 and set(tol["train_seed"]) == {0, 1}
    closed = tol[tol["censored"].isna()]
    assert (closed["bracket_failing"] / closed["bracket_passing"] <= 2.0 + 1e-9).all()
    assert ((closed["bracket_passing"] <= closed["tolerance"])
            & (closed["tolerance"] <= closed["bracket_failing"])).all()
    points = pd.read_csv(out / "bisection_points.csv")
    assert ((points["drop_mean"] < 0.05) == points["passes"]).all()
    over = pd.read_csv(out / "overheads.csv")
    over = over[over["train_seed"] == 0].set_index("variant")
    assert over.loc["tmr-1", "macs"] == 3 * over.loc["baseline", "macs"]
    assert over.loc["hardened-pruned", "parameters"] < over.loc["hardened-0.15", "parameters"]
    settings = json.loads((out / "settings.json").read_text())
    assert settings["config"]["repetitions"] == 2
    assert HardenStudyConfig.from_dict(settings["config"]) == config
    assert set(settings["models"]) >= {f"model-{m}/{n}" for m in (0, 1) for n in (
        "baseline", "hardened-0.15", "tmr-1", "hardened-int8")}
    claims = {c["claim"]: c for c in result.summary["claims"]}
    prune = claims["vulnerability pruning beats L1 pruning at 50% (fine-tuned accuracy)"]
    assert prune["models"] == 2 and prune["trials"] == 4
    assert {c["verdict"] for c in claims.values()} <= {"holds", "opposite", "inconclusive"}
    csv = pd.read_csv(out / "claims.csv")
    assert len(csv) == len(claims) and set(csv["verdict"]) <= {"holds", "opposite",
                                                               "inconclusive"}
    assert result.headline_lines()[0].startswith("report: ")
    # a second run resumes: every trial is found, none is run again
    before = _lines(out)
    again = run_study(config, out, progress=False, log=lambda _: None)
    assert _lines(out) == before
    assert again.summary["tolerance"] == result.summary["tolerance"]


def test_config_json_round_trip() -> None:
    from nnmap.bitflip import BitFlipConfig
    from nnmap.harden import HardenConfig
    from nnmap.prune import FinetuneConfig, PruneConfig
    from nnmap.vulnerability import VulnerabilityConfig

    cfg = _tiny()
    assert HardenStudyConfig.from_json(cfg.to_json()) == cfg
    assert cfg.dataset == "fashion-mnist-subset" and cfg.quick and cfg.is_quick
    full = HardenStudyConfig()
    assert full.models >= 3 and full.finetune_seeds >= 2 and full.ratio == 0.15
    assert not full.is_quick and full.bisect_factor <= 1.1
    assert full.train_seeds == [0, 1, 2] and full.ft_seeds == [0, 1]
    h = HardenConfig(ratio=0.3, method="triplicate")
    assert HardenConfig.from_dict(h.to_dict()) == h
    p = PruneConfig("l1", 0.2, 0.4, FinetuneConfig(epochs=3))
    assert PruneConfig.from_json(p.to_json()) == p
    v = VulnerabilityConfig(samples=7)
    assert VulnerabilityConfig.from_json(v.to_json()) == v
    b = BitFlipConfig(1e-5, "int8")
    assert BitFlipConfig.from_dict(b.to_dict()) == b


@pytest.mark.parametrize(("changes", "message"), [
    ({"ratio": 1.2}, r"Hardening ratio must be in \[0, 1\]"),
    ({"ratio": float("nan")}, "Hardening ratio"),
    ({"bers": (float("inf"),)}, r"BER must be in \(0, 1\]"),
    ({"bers": ()}, "at least one BER"),
    ({"prune_ratios": (1.0,)}, r"Pruning ratios must be in \(0, 1\)"),
    ({"repetitions": 0}, "repetitions must be a positive integer"),
    ({"finetune_lr": float("inf")}, "finetune_lr must be a finite number"),
    ({"rank_scope": "fc"}, "rank_scope"),
    ({"models": 0}, "models must be a positive integer"),
    ({"finetune_seeds": 0}, "finetune_seeds must be a positive integer"),
    ({"finetune_samples": -1}, "finetune_samples must be an integer >= 0"),
    ({"bisect_factor": 1.0}, r"bisect_factor must be in \(1, 10\]"),
])
def test_bad_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(HardenStudyError, match=message):
        HardenStudyConfig(**changes)  # type: ignore[arg-type]


def test_bad_arguments_are_one_line_errors_before_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    cases = [(["--ratio", "1.5"], "--ratio"), (["--ratio", "nan"], "finite"),
             (["--ber", "0,1e-3"], "(0, 1]"), (["--ber", "2"], "(0, 1]"),
             (["--reps", "0"], "positive integer"), (["--seed", "-1"], "seed"),
             (["--prune-ratios", "0.5,1"], "(0, 1)"), (["--fig4-ber", "inf"], "finite"),
             (["--eval-samples", "-1"], ">= 0"), (["--dask", "nowhere"], "--dask"),
             (["--model", "nope"], "choose one of lenet5"),
             (["--dataset", "nope"], "choose one of"),
             (["--model", "resnet20"], "pruning supports plain chains only"),
             (["--models", "0"], "positive integer"),
             (["--finetune-seeds", "0"], "positive integer")]
    for extra, message in cases:
        out = tmp_path / "x"
        code = _main(["harden", "study", "--dataset", "fashion-mnist-subset", "--quick",
                      "--no-progress", "--out", str(out), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2, extra
        # argparse puts its usage above the one error line
        last = err.splitlines()[-1]
        assert "error: " in last and message in last and "Traceback" not in err, (extra, err)
        assert not out.exists(), f"{extra} left files behind"
    assert _main(["harden", "study", "--quick", "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err


def _main(argv: list[str]) -> int:
    """``flipclock`` as a shell runs it: argparse's exit is a return code too."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_output_folder_is_claimed(tmp_path: Path) -> None:
    # A folder of the user's is refused before any work; a locked one stops a second run.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    with pytest.raises(OutputError, match="not made by flipclock"):
        run_study(_tiny(), mine, progress=False, log=lambda _: None)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    from sim.atomic import output_folder

    with output_folder(tmp_path / "busy"), \
            pytest.raises(OutputError, match="Another flipclock run"):
        run_study(_tiny(), tmp_path / "busy", progress=False, log=lambda _: None)
