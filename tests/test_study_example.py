"""Adding a study is one folder plus one registration: the example study in
``tests/example_study`` runs through the real CLI on the real base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flipclock.studies as studies
from flipclock.cli import main
from flipclock.studies.base import verdict


@pytest.fixture
def with_coin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(studies, "STUDIES", [*studies.STUDIES, "example_study"])


def test_registered_study_runs_and_resumes(with_coin: None, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "coin"
    assert main(["coin", "run", "--flips", "200", "--trials", "6", "--seed", "3", "--quick",
                 "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# QUICK: Is the coin fair?\n\nQUICK run")
    assert "| heads fraction differs from 1/2 | no |" in report
    settings = json.loads((out / "settings.json").read_text())
    assert settings["config"] == {"format": "example.coin", "version": 1, "flips": 200,
                                  "trials": 6, "seed": 3, "quick": True}
    lines = (out / "campaign" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6
    # Same command again: every trial is reused, the report is identical but for nothing.
    assert main(["coin", "run", "--flips", "200", "--trials", "6", "--seed", "3", "--quick",
                 "--out", str(out)]) == 0
    assert (out / "campaign" / "results.jsonl").read_text().splitlines() == lines
    assert (out / "report.md").read_text() == report


def test_registered_study_validates_before_work(with_coin: None, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["coin", "run", "--flips", "0", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "expected a positive integer, not '0'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_user_folder_is_not_taken(with_coin: None, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert main(["coin", "run", "--out", str(mine)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was not made by flipclock" in err[0]
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize(("low", "high", "sign", "expected"), [
    (0.1, 0.3, 1, "holds"), (-0.3, -0.1, 1, "opposite"), (-0.1, 0.1, 1, "inconclusive"),
    (-0.3, -0.1, -1, "holds"), (0.1, 0.3, -1, "opposite")])
def test_verdict_reads_the_ci(low: float, high: float, sign: int, expected: str) -> None:
    assert verdict(low, high, expected_sign=sign) == expected
