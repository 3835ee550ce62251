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

from .build import BoothBuild, SramBuild, build_booth, build_sram

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


def build(cfg: BoothBuild | SramBuild, out: Path) -> None:
    if isinstance(cfg, SramBuild):
        build_sram(cfg, out)
    else:
        build_booth(cfg, out)


def write_defaults(root: Path = RTL_DIR, names: list[str] | None = None) -> None:
    for name in names or list(DEFAULT_DESIGNS):
        build(DEFAULT_DESIGNS[name], root / name)
        print(f"wrote {root / name}")


def _normalise(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".json" and path.name in ("timing.json", "build.json"):
        obj = json.loads(data)
        obj.pop("tools", None)
        return json.dumps(obj, sort_keys=True).encode()
    return data


def stale_files(root: Path = RTL_DIR, names: list[str] | None = None) -> list[str]:
    """Files under ``root`` that differ from a fresh build (missing and extra included)."""
    stale: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(DEFAULT_DESIGNS):
            fresh = Path(tmp) / name
            build(DEFAULT_DESIGNS[name], fresh)
            committed = root / name
            fresh_files = {p.name for p in fresh.iterdir()}
            old_files = {p.name for p in committed.iterdir()} if committed.is_dir() else set()
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
