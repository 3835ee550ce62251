"""The default designs committed under ``rtl/``, and their freshness check.

``python -m flipclock.defaults --write`` (``nox -s rtl``) regenerates them;
``--check`` rebuilds into a temporary folder and lists every file that differs from the
committed one (tool versions in the JSON files are ignored, everything else must match
byte for byte).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from sim.atomic import MARKER
from sim.design import BoothBuild, SramBuild

from .rtlgen import build_design

__all__ = ["DEFAULT_DESIGNS", "OSU018", "RTL_DIR", "stale_files", "write_defaults"]

OSU018 = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"
RTL_DIR = Path(__file__).resolve().parent.parent / "rtl"

DEFAULT_DESIGNS: dict[str, BoothBuild | SramBuild] = {
    "booth8": BoothBuild(width=8, tree="dadda", cpa="ripple", delay_model="unit"),
    "booth8_ks": BoothBuild(width=8, tree="dadda", cpa="kogge_stone", delay_model="unit"),
    "booth8_osu018": BoothBuild(width=8, tree="dadda", cpa="ripple", delay_model="liberty",
                                liberty=OSU018, tick_ps=10.0),
    "sram256x8": SramBuild(depth=256, width=8),
}


def write_defaults(root: Path = RTL_DIR, names: list[str] | None = None) -> None:
    """Rebuild the default designs into ``root`` (``rtl/``), replacing what is there.

    ``force``: these folders are the project's own, committed (with their marker) and
    regenerated here, whatever a checkout did to them.
    """
    for name in names or list(DEFAULT_DESIGNS):
        build_design(DEFAULT_DESIGNS[name], root / name, force=True)
        print(f"wrote {root / name}")


def _normalise(path: Path) -> bytes:
    """The bytes that must match; tool versions in the JSON files may differ."""
    data = path.read_bytes()
    if path.suffix == ".json" and path.name in ("timing.json", "build.json"):
        obj = json.loads(data)
        obj.pop("tools", None)
        return json.dumps(obj, sort_keys=True).encode()
    return data


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != f"{MARKER}.lock"}


def stale_files(root: Path = RTL_DIR, names: list[str] | None = None) -> list[str]:
    """Files under ``root`` that differ from a fresh build (missing and extra included;
    the folder's lock file, which a run leaves behind, is not part of the design)."""
    stale: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(DEFAULT_DESIGNS):
            fresh = Path(tmp) / name
            build_design(DEFAULT_DESIGNS[name], fresh)
            committed = root / name
            fresh_files = _files(fresh)
            old_files = _files(committed) if committed.is_dir() else set()
            for f in sorted(fresh_files | old_files):
                if f not in old_files or f not in fresh_files:
                    stale.append(f"{name}/{f}")
                elif _normalise(fresh / f) != _normalise(committed / f):
                    stale.append(f"{name}/{f}")
    return stale


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m flipclock.defaults", description=__doc__)
    p.add_argument("--write", action="store_true", help="regenerate rtl/")
    p.add_argument("--check", action="store_true", help="list stale files, exit 1 if any")
    p.add_argument("names", nargs="*", help=f"designs (default all: {', '.join(DEFAULT_DESIGNS)})")
    args = p.parse_args()
    if args.write:
        write_defaults(names=args.names or None)
    if args.check or not args.write:
        stale = stale_files(names=args.names or None)
        for s in stale:
            print(f"stale: rtl/{s}")
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
