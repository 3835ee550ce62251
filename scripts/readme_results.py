"""Keep the README's study figures equal to the committed reports under ``results/``.

The README marks every block it takes from a report::

    <!-- results: results/timing/headline.md -->
    ...the file's text, verbatim...
    <!-- /results -->

``results/claims.md`` gathers every study's ``claims.csv`` into one table (study, claim,
paper, ours, 95 % interval, what it spans, verdict); the README quotes it like any report.

``python scripts/readme_results.py`` rewrites ``results/claims.md`` and each block from its
file (atomically); ``--check`` only reports what differs and exits 1
(``tests/test_results.py`` runs the same check). A block naming a file that does not exist
is an error, never an empty block.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- results: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- /results -->)",
                   re.DOTALL)

__all__ = ["blocks", "claims_table", "sync"]

STUDIES = ("timing", "flatenn", "harden")


def claims_table(root: Path = ROOT) -> str:
    """Markdown of every study's ``claims.csv`` (in :data:`STUDIES` order, then the rest)."""
    folders = sorted((root / "results").glob("*/claims.csv"),
                     key=lambda p: (STUDIES.index(p.parent.name)
                                    if p.parent.name in STUDIES else len(STUDIES), p))
    lines = ["| study | claim | paper | ours (95 % CI) | models × trials | verdict |",
             "|---|---|---|---|---|---|"]
    for path in folders:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                span = (f"{row['models']} × {int(row['trials']) // max(int(row['models']), 1)}"
                        if row.get("models") and row.get("trials") else "")
                cells = [path.parent.name, row["statement"], row["paper"], row["ours"], span,
                         f"**{row['verdict']}**"]
                lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return ("Every paper claim with our figure and the 95 % interval its verdict is read "
            "from, gathered from each study's `claims.csv` (which also holds the interval's "
            "ends as numbers).\n\n" + "\n".join(lines) + "\n")


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def blocks(text: str) -> list[tuple[str, str]]:
    """``(path, body)`` of every results block in ``text``."""
    return [(m["path"], m["body"]) for m in BLOCK.finditer(text)]


def sync(readme: Path, root: Path = ROOT) -> tuple[str, list[str]]:
    """The README text with every block replaced by its file, and the paths that changed."""
    text = readme.read_text(encoding="utf-8")
    changed: list[str] = []

    def fill(m: re.Match[str]) -> str:
        src = root / m["path"]
        if not src.is_file():
            raise SystemExit(f"README block names {m['path']}, which does not exist; run "
                             "the study's nox session first or fix the path")
        body = src.read_text(encoding="utf-8").rstrip("\n") + "\n"
        if body != m["body"]:
            changed.append(m["path"])
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(fill, text), changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report differing blocks")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = p.parse_args(argv)
    claims = ROOT / "results" / "claims.md"
    table = claims_table()
    stale = not claims.is_file() or claims.read_text(encoding="utf-8") != table
    if args.check:
        if stale:
            print("results/claims.md differs from the studies' claims.csv; run "
                  "python scripts/readme_results.py")
    elif stale:
        _write(claims, table)
    new, changed = sync(args.readme)
    if args.check:
        for path in changed:
            print(f"README block of {path} differs from the file; run "
                  "python scripts/readme_results.py")
        return 1 if changed or stale else 0
    if changed:
        _write(args.readme, new)
    print(f"{len(changed)} README block(s) updated; results/claims.md "
          f"{'rewritten' if stale else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
