"""The committed ``results/`` reports are intact, traceable, and the README quotes only them.

* every ``manifest.json`` matches its folder: each listed file has its SHA-256 (a file may be
  absent only when ``results/.gitignore`` leaves it out of git), and no report file is
  unlisted;
* every ``report.md`` names its command, a clean commit of this repository's history (the
  run was of committed code) and the hash of its ``settings.json``; a full report is not
  QUICK;
* every results block of the README equals its file (``scripts/readme_results.py``), and
  every number in the README's study sections appears in some file under ``results/``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
# Study reports (with a manifest); results/signoff has its own provenance line.
REPORTS = sorted(p for p in RESULTS.glob("*/report.md") if (p.parent / "manifest.json").exists())
NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")


def _ignored() -> list[str]:
    path = RESULTS / ".gitignore"
    if not path.is_file():
        return []
    return [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def _is_ignored(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p.lstrip("/")) or fnmatch.fnmatch(Path(rel).name, p)
               for p in patterns)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_there_are_reports() -> None:
    names = {p.parent.name for p in REPORTS}
    assert {"timing", "flatenn", "harden"} <= names, sorted(names)


@pytest.mark.parametrize("report", REPORTS, ids=[p.parent.name for p in REPORTS])
def test_manifest_matches_folder(report: Path) -> None:
    folder = report.parent
    manifest = json.loads((folder / "manifest.json").read_text())
    ignored = _ignored()
    for rel, entry in manifest["files"].items():
        path = folder / rel
        if not path.exists():
            assert _is_ignored(f"{folder.name}/{rel}", ignored), f"{rel} listed but missing"
            continue
        assert _sha256(path) == entry["sha256"], f"{folder.name}/{rel} changed since the run"
    listed = set(manifest["files"])
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and path.name != "manifest.json" and not path.name.startswith("."):
            assert rel in listed, f"{folder.name}/{rel} is not in the manifest"


@pytest.mark.parametrize("report", REPORTS, ids=[p.parent.name for p in REPORTS])
def test_report_is_traceable(report: Path) -> None:
    text = report.read_text()
    assert not text.startswith("# QUICK"), "a committed full report must not be a quick run"
    commit = re.search(r"^- commit: `([0-9a-f]{40})`$", text, re.MULTILINE)
    assert commit, "the report must name a clean commit (run the study on committed code)"
    known = subprocess.run(["git", "merge-base", "--is-ancestor", commit[1], "HEAD"],
                           cwd=ROOT, capture_output=True)
    assert known.returncode == 0, f"commit {commit[1]} is not in this history"
    assert re.search(r"^- command: `flipclock .+`$", text, re.MULTILINE)
    digest = re.search(r"settings\.json` \(sha256 ([0-9a-f]{16})\)", text)
    settings = json.loads((report.parent / "settings.json").read_text())
    # the report hashes the config's canonical JSON (sim.config.Config.to_json)
    config = json.dumps(settings["config"], indent=1, sort_keys=True, allow_nan=False)
    assert digest, "the report must name its settings' hash"
    assert hashlib.sha256(config.encode()).hexdigest()[:16] == digest[1], \
        "settings.json is not the settings the report was made with"


def test_readme_blocks_equal_their_files() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_results.py"),
                          "--check"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    text = (ROOT / "README.md").read_text()
    assert "<!-- results: results/timing/headline.md -->" in text


def _study_sections(readme: str) -> str:
    start = readme.index("## Network studies")
    end = readme.index("\n## ", start + 1)
    body = readme[start:end]
    body = re.sub(r"```.*?```", "", body, flags=re.DOTALL)  # commands, not figures
    body = re.sub(r"<!--.*?-->", "", body)
    return re.sub(r"`[^`]*`", "", body)  # option values and names


def _numbers(text: str) -> set[str]:
    return {m.replace("−", "-").lstrip("+") for m in NUMBER.findall(text)}


def test_readme_study_numbers_come_from_results() -> None:
    quoted = _numbers(_study_sections((ROOT / "README.md").read_text()))
    found: set[str] = set()
    for path in RESULTS.rglob("*"):
        if path.suffix in (".md", ".csv", ".json") and path.is_file():
            found |= _numbers(path.read_text(errors="replace"))
    missing = sorted(quoted - found, key=lambda s: (len(s), s))
    assert not missing, f"README study numbers not in results/: {missing}"


def test_git_commit_ignores_outputs_but_not_code(tmp_path: Path) -> None:
    """A full run rewrites its committed results/<study>/ as it runs: that is not a change of
    the code that ran. A changed code file is."""
    from flipclock.studies.base import git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results" / "s").mkdir(parents=True)
    (tmp_path / "results" / "s" / "report.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout.strip()
    (tmp_path / "results" / "s" / "report.md").write_text("new\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "+dirty"
