"""Campaign machinery: resume after a kill, settings guard, summary statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nnmap.campaign import CampaignError, run_campaign, summarize

CALLS: list[int] = []


def _trial(params: dict[str, Any]) -> dict[str, float]:
    CALLS.append(params["trial"])
    return {"acc": params["rate"] * 10 + params["trial"] % 3, "flips": params["trial"]}


def test_resume_runs_only_missing_trials(tmp_path: Path) -> None:
    trials = [{"rate": r, "trial": t} for r in (0.1, 0.2) for t in range(4)]
    settings = {"model": "x", "seed": 1}
    first = run_campaign(trials, _trial, tmp_path, settings=settings, progress=False)
    assert len(first) == 8
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    # as if killed while writing the last two trials: drop one, tear another
    (tmp_path / "results.jsonl").write_text("\n".join(lines[:6]) + "\n" + lines[6][:10])
    CALLS.clear()
    again = run_campaign(trials, _trial, tmp_path, settings=settings, progress=False)
    assert sorted(CALLS) == [2, 3]
    assert [r["result"] for r in again] == [r["result"] for r in first]
    with pytest.raises(CampaignError, match="holds a campaign with other settings"):
        run_campaign(trials, _trial, tmp_path, settings={"model": "y"}, progress=False)
    CALLS.clear()
    run_campaign(trials, _trial, tmp_path, settings={"model": "y"}, progress=False, force=True)
    assert len(CALLS) == 8
    assert json.loads((tmp_path / "campaign.json").read_text())["settings"] == {"model": "y"}


def test_summary_mean_and_interval(tmp_path: Path) -> None:
    trials = [{"rate": 0.5, "trial": t} for t in range(6)]
    recs = run_campaign(trials, _trial, tmp_path, settings={}, progress=False)
    df = summarize(recs)
    row = df.iloc[0]
    vals = [5 + t % 3 for t in range(6)]
    assert row.n == 6 and row.acc_mean == pytest.approx(sum(vals) / 6)
    assert row.acc_low < row.acc_mean < row.acc_high


def test_duplicate_trials_rejected(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="must be unique"):
        run_campaign([{"trial": 0}, {"trial": 0}], _trial, tmp_path, settings={},
                     progress=False)


def test_trials_of_older_code_are_not_reused(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A study's campaign key carries the code version: after a change that alters trials
    (a bump of CODE_VERSION), stored trials are refused by name, and --force recomputes."""
    from flipclock.studies import base

    trials = [{"rate": 0.1, "trial": t} for t in range(3)]
    base.run_trials(trials, _trial, tmp_path, settings={"m": 1}, progress=False)
    monkeypatch.setattr(base, "CODE_VERSION", base.CODE_VERSION + "-next")
    with pytest.raises(CampaignError, match="other flipclock code .*use --force"):
        base.run_trials(trials, _trial, tmp_path, settings={"m": 1}, progress=False)
    CALLS.clear()
    base.run_trials(trials, _trial, tmp_path, settings={"m": 1}, progress=False, force=True)
    assert sorted(CALLS) == [0, 1, 2]
