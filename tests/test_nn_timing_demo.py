"""The demo runs its timing study on the error tables it has just built (issue 12, item 5)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from flipclock.cli import main
from flipclock.demo import study_demo
from flipclock.studies.timing import quick_demo
from flipclock.studies.timing.tables import table_digest
from sim.tables import CompressedTable

torch.set_num_threads(1)
BOOTH8 = Path(__file__).resolve().parents[1] / "rtl" / "booth8"


def test_demo_hands_its_tables_to_studies_that_take_them(tmp_path):
    seen: dict[str, tuple] = {}

    def with_tables(out: Path, tables: Path | None = None) -> list[str]:
        seen["timing"] = (out, tables)
        return ["t"]

    def without(out: Path) -> list[str]:
        seen["other"] = (out,)
        return ["o"]

    assert study_demo(SimpleNamespace(quick_demo=with_tables), tmp_path / "a",
                      tmp_path / "tables") == ["t"]
    assert study_demo(SimpleNamespace(quick_demo=without), tmp_path / "b",
                      tmp_path / "tables") == ["o"]
    assert seen == {"timing": (tmp_path / "a", tmp_path / "tables"),
                    "other": (tmp_path / "b",)}


@pytest.mark.slow
def test_quick_demo_runs_on_the_given_table_folder(tmp_path):
    """quick_demo(out, tables=FOLDER): every period of FOLDER, no table of its own; the
    report's command, settings and hashes name that folder's tables."""
    tables = tmp_path / "tables"
    assert main(["errtable", str(BOOTH8), "--mode", "sample", "--samples", "2",
                 "--period", "30", "--period", "36", "--out", str(tables), "--json"]) == 0
    out = tmp_path / "timing"
    lines = quick_demo(out, tables=tables)
    assert f"on the tables in {tables}" in lines[0] and "QUICK" in lines[0]
    settings = json.loads((out / "settings.json").read_text())
    assert sorted(settings["tables"]) == ["30", "36"]
    for p in (30, 36):
        path = tables / f"compressed_T{p}.parquet"
        entry = settings["tables"][str(p)]
        assert entry["source"] == str(path)
        assert entry["sha256"] == table_digest(CompressedTable.read(path))
    # the study built no uniform table of its own (only the per-layer dataflow ones)
    work = tmp_path / "timing.work"
    assert not (work / "tables").exists() and not list(out.rglob("*.parquet"))
    report = (out / "report.md").read_text()
    assert f"--table {tables}" in report and "--period 30 --period 36" in report
    assert report.startswith("# QUICK: ")
    assert (out / "headline.md").read_text().startswith("#### QUICK: ")
