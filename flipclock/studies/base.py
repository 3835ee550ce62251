"""The small base every study stands on: config, resumable trials, claims, report.

* :class:`StudyConfig` -- a :class:`sim.config.Config` with a ``quick`` flag; stored with
  every result (``settings.json``).
* :func:`run_trials` -- a resumable Monte Carlo campaign (:func:`nnmap.campaign.run_campaign`)
  whose key includes :data:`CODE_VERSION`, so trials of older code are never reused.
* :class:`Claim` and :func:`verdict` -- a paper claim, our figure and a three-way verdict
  read from a confidence interval: ``holds``, ``opposite`` or ``inconclusive``.
* :func:`verdict_ci` -- the same verdict read from a :class:`nnmap.stats.MeanCI` (e.g. a
  :func:`nnmap.stats.nested_ci` over trained models and trials);
* :class:`Report` -- a Markdown report with provenance (command, commit, settings hash, wall
  time, threads), QUICK in its title and first line for quick runs, written atomically,
  and ``manifest.json``: the SHA-256 of every file the study left in its folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sim.atomic import atomic_json, atomic_text
from sim.config import Config

__all__ = [
    "CODE_VERSION",
    "Claim",
    "Report",
    "StudyConfig",
    "Verdict",
    "git_commit",
    "process_wall_s",
    "run_trials",
    "verdict",
    "verdict_ci",
    "write_manifest",
]

CODE_VERSION = "2"
"""Bump when a change alters what a trial computes: stored trials of older code are then
recomputed instead of reused."""

Verdict = Literal["holds", "opposite", "inconclusive"]


class StudyConfig(Config):
    """Base of study configs (frozen dataclasses). A subclass with a ``quick`` field marks
    quick runs; :attr:`is_quick` reads it."""

    @property
    def is_quick(self) -> bool:
        return bool(getattr(self, "quick", False))


def run_trials(trials: Sequence[Mapping[str, Any]],
               fn: Callable[[Mapping[str, Any]], Mapping[str, Any]], out: Path, *,
               settings: Mapping[str, Any], client: Any = None, progress: bool = True,
               desc: str = "trials", force: bool = False) -> list[dict[str, Any]]:
    """Run the trials that have no stored result in ``out`` (resumable), return them all.

    ``settings`` are everything else that shapes a result; the code version is added.
    """
    from nnmap.campaign import run_campaign

    keyed = {**dict(settings), "code_version": CODE_VERSION}
    return run_campaign(trials, fn, out, settings=keyed, client=client, progress=progress,
                        desc=desc, force=force)


def verdict(low: float, high: float, *, expected_sign: int = 1) -> Verdict:
    """Three-way verdict of a claim "the effect has sign ``expected_sign``" from its CI."""
    if expected_sign < 0:
        low, high = -high, -low
    if low > 0:
        return "holds"
    if high < 0:
        return "opposite"
    return "inconclusive"


def verdict_ci(ci: Any, *, expected_sign: int = 1) -> Verdict:
    """:func:`verdict` of a CI object with ``low`` and ``high`` (e.g. ``nested_ci(...)``).

    An "interval" of a single value (``n < 2``: one model measured once) has no width to
    read: it is ``inconclusive``, never ``holds``.
    """
    if getattr(ci, "n", 2) < 2:
        return "inconclusive"
    return verdict(ci.low, ci.high, expected_sign=expected_sign)


def process_wall_s() -> float | None:
    """Seconds since this process started (the wall time of a study run), if known."""
    try:
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())
    except Exception:  # psutil missing or /proc unreadable: the report says "unknown"
        return None


_NOT_HASHED = {"manifest.json", ".flipclock", ".flipclock.lock"}


def write_manifest(out: Path) -> Path:
    """Write ``out/manifest.json``: size and SHA-256 of every file under ``out``.

    A reader (and ``tests/test_results.py`` for the committed ``results/``) checks a report's
    files against it.
    """
    out = Path(out)
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if path.name in _NOT_HASHED or ".tmp" in path.name:
            continue
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        files[rel] = {"bytes": path.stat().st_size, "sha256": h.hexdigest()}
    return atomic_json(out / "manifest.json", {"format": "flipclock-manifest-1",
                                               "commit": git_commit(), "files": files})


@dataclass(frozen=True)
class Claim:
    """One paper claim beside our measurement.

    ``low``/``high`` (and ``mean``) are the interval the verdict was read from, in the unit
    ``ours`` states; ``models`` and ``trials`` say what it spans (``models >= 2``: model
    variance included). They go to ``claims.csv``.
    """

    statement: str
    paper: str
    ours: str
    verdict: Verdict
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    models: int | None = None
    trials: int | None = None

    @classmethod
    def from_ci(cls, statement: str, paper: str, ours: str, ci: Any, *,
                expected_sign: int = 1) -> Claim:
        """A claim whose verdict is read from ``ci`` (a :class:`nnmap.stats.NestedCI` or any
        object with ``mean``, ``low``, ``high``; ``models``/``trials`` when it has them)."""
        return cls(statement, paper, ours, verdict_ci(ci, expected_sign=expected_sign),
                   ci.mean, ci.low, ci.high, getattr(ci, "models", None),
                   getattr(ci, "trials", getattr(ci, "n", None)))


def git_commit(root: Path | None = None) -> str:
    """The commit of the code that ran (``+dirty`` when tracked files have changes), or
    'unknown'.

    ``results/`` and ``out/`` are outputs, not code: a full run rewrites its own committed
    ``results/<study>/`` while it runs, which must not mark the code as changed.
    """
    cwd = str(root or Path(__file__).resolve().parents[2])
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)results", ":(exclude)out"],
                               cwd=cwd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


@dataclass
class Report:
    """A study report under construction; :meth:`write` puts it on disk atomically."""

    title: str
    config: StudyConfig
    sections: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    command: str = field(default_factory=lambda: shlex.join(["flipclock", *sys.argv[1:]]))

    def add(self, markdown: str) -> None:
        """Append a block of Markdown (a section, a table, a figure link)."""
        self.sections.append(markdown.rstrip() + "\n")

    def add_claim(self, claim: Claim) -> None:
        self.claims.append(claim)

    def render(self) -> str:
        quick = self.config.is_quick
        title = f"QUICK: {self.title}" if quick else self.title
        settings = self.config.to_json()
        digest = hashlib.sha256(settings.encode()).hexdigest()[:16]
        lines = [f"# {title}", ""]
        if quick:
            lines += ["QUICK run: small sizes for a demo or a test; its numbers support no "
                      "claim.", ""]
        wall = process_wall_s()
        threads = _threads()
        lines += [f"- command: `{self.command}`", f"- commit: `{git_commit()}`",
                  f"- settings: `settings.json` (sha256 {digest})",
                  f"- wall time: {'unknown' if wall is None else f'{wall / 60:.1f} min'} on "
                  f"{os.cpu_count()} cores (main process: {threads} torch threads)",
                  "- files: `manifest.json` (SHA-256 of every file in this folder)", ""]
        if self.claims:
            lines += ["## Claims", "", "| claim | paper | ours | verdict |", "|---|---|---|---|"]
            lines += [f"| {c.statement} | {c.paper} | {c.ours} | {c.verdict} |"
                      for c in self.claims]
            lines.append("")
        # A blank line between blocks: a paragraph right after a table would join it.
        return "\n".join(lines) + "\n" + "\n".join(self.sections)

    def write(self, out: Path, extra_settings: Mapping[str, Any] | None = None) -> Path:
        """Write ``report.md``, ``settings.json`` (config plus ``extra_settings``) and, last,
        ``manifest.json`` over every file in ``out``."""
        out = Path(out)
        atomic_json(out / "settings.json",
                    {"config": json.loads(self.config.to_json()), "command": self.command,
                     "commit": git_commit(), **dict(extra_settings or {})})
        if self.claims:
            import csv
            import io

            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["statement", "paper", "ours", "verdict", "mean", "low", "high",
                        "models", "trials"])
            for c in self.claims:
                w.writerow([c.statement, c.paper, c.ours, c.verdict,
                            *("" if v is None else v
                              for v in (c.mean, c.low, c.high, c.models, c.trials))])
            atomic_text(out / "claims.csv", buf.getvalue())
        path = atomic_text(out / "report.md", self.render())
        write_manifest(out)
        return path


def _threads() -> int | str:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else "no"
