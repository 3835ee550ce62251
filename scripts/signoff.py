"""Last wrong capture per delay semantics against OpenSTA's critical path (issue 11).

An unsigned 6x6 array multiplier in OSU018 cells (``tests/designs.py``, a netlist
flipclock never built) is built twice: with its Liberty delays, and with the SDF OpenSTA
writes for it. For each semantics the engine runs every one of the 2**24 transitions at
every period near the critical path; the last period with a wrong capture, plus one tick,
is when the design really settles. OpenSTA times the same netlist (Liberty) and the same
SDF (``read_sdf``). Writes ``report.md`` and ``signoff.csv`` into the output folder.

Run: ``nox -s signoff`` (or ``python scripts/signoff.py --out results/signoff``).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from designs import array_multiplier  # noqa: E402

from sim.atomic import atomic_frame, atomic_text, output_folder  # noqa: E402
from sim.build import build_from_netlist  # noqa: E402
from sim.delay import SdfDelay  # noqa: E402
from sim.design import NetlistBuild, load_design  # noqa: E402
from sim.engine import TimingEngine  # noqa: E402
from sim.plan import Semantics, default_timing  # noqa: E402
from sim.sdf import write_sdf  # noqa: E402
from sim.sta import critical_path, opensta_critical_path, opensta_write_sdf  # noqa: E402

OSU = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
VARIANTS: list[tuple[Semantics, bool]] = [
    ("inertial", False), ("transport", False), ("inertial", True), ("transport", True),
    ("pathdelay", False)]


def main() -> int:
    """Build, time and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/signoff"))
    ap.add_argument("--n", type=int, default=6, help="operand width (default 6)")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    rows = []
    with output_folder(args.out, force=args.force):
        work = args.out / "work"
        work.mkdir(exist_ok=True)
        src = work / f"umul{args.n}.v"
        src.write_text(array_multiplier(args.n))
        sdf = work / f"umul{args.n}.sdf"
        opensta_write_sdf(src, OSU, "umul", sdf)
        # routing: a 50 ps wire in front of the A pin of every adder cell (OpenSTA writes
        # zero INTERCONNECT delays without parasitics)
        wires = work / f"umul{args.n}_wires.sdf"
        wires.write_text(re.sub(r"(\(INTERCONNECT \S+ (?:fa|ha)_\d+/A) \(0\.000000::0\.000000\)",
                                r"\1 (0.050000::0.050000)", sdf.read_text()))
        sdfs = {"liberty": None, "sdf": sdf, "sdf+wires": wires}
        sta = {k: opensta_critical_path(src, OSU, "umul", sdf=v) for k, v in sdfs.items()}
        cfg = NetlistBuild(netlist=str(src), liberty=str(OSU), delay_model="liberty",
                           signed=False)
        for kind, path in sdfs.items():
            build_from_netlist(cfg, work / kind, force=True,
                               sdf=None if path is None else SdfDelay(path=str(path)))
            d = load_design(work / kind)
            tick = d.annotation.seconds_per_tick or 1.0
            # OpenSTA on the delays the engine simulates: each arc rounded to its tick
            rounded = work / f"{kind}_ticks.sdf"
            rounded.write_text(write_sdf(d.netlist, d.annotation))
            sta_ticks = opensta_critical_path(src, OSU, "umul", sdf=rounded)
            exact = critical_path(d.netlist, d.annotation, exact=True).seconds or 0.0
            for sem, per_pin in VARIANTS:
                eng = TimingEngine(d.netlist, d.annotation, semantics=sem, per_pin=per_pin)
                cp = eng.critical_path
                periods = list(range(max(1, cp - 80), cp + 1))
                t0 = time.perf_counter()
                wrong = eng.exhaustive(periods).nwrong.sum(axis=0)
                last = max((p for p, w in zip(periods, wrong, strict=True) if w > 0),
                           default=0)
                settle_ps = (last + 1) * tick * 1e12
                rows.append({
                    "delays": kind, "semantics": sem + (" + per-pin" if per_pin else ""),
                    "default": (sem, per_pin) == default_timing(d.annotation.model.kind),
                    "engine_critical_path_ticks": cp, "last_wrong_period_ticks": last,
                    "settles_ps": round(settle_ps, 1),
                    "opensta_ps": round(sta[kind] * 1e12, 1),
                    "settles_minus_opensta_ticks": round(settle_ps / 1e12 / tick
                                                         - sta[kind] / tick, 2),
                    "flipclock_sta_exact_ps": round(exact * 1e12, 1),
                    "opensta_on_tick_delays_ps": round(sta_ticks * 1e12, 1),
                    "last_wrong_minus_opensta_on_tick_delays_ticks": round(
                        last - sta_ticks / tick, 2),
                    "seconds": round(time.perf_counter() - t0, 1)})
                print(rows[-1], flush=True)
            shutil.rmtree(work / kind)
            rounded.unlink()  # the builds are regenerated from the two inputs
        frame = pd.DataFrame(rows)
        atomic_frame(frame, args.out / "signoff.csv")
        hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
                  for p in (src, sdf, wires)}
        shown = frame.drop(columns=["seconds"])
        table = "\n".join(["| " + " | ".join(shown.columns) + " |",
                           "|" + "---|" * len(shown.columns),
                           *("| " + " | ".join(str(v) for v in r) + " |"
                             for r in shown.itertuples(index=False))])
        atomic_text(args.out / "report.md", "\n".join([
            f"# Last wrong capture per semantics vs OpenSTA ({args.n}x{args.n} unsigned "
            "array multiplier, OSU018)", "",
            f"Command: `python scripts/signoff.py --out {args.out}` (nox -s signoff); "
            f"commit {commit[:12]}; inputs {hashes}; exhaustive: all 2^{4 * args.n} "
            "transitions at every period from the critical path - 80 ticks up; 1 tick = "
            "10 ps.", "",
            "`settles` = (last period with a wrong capture + 1 tick); `opensta` = OpenSTA's "
            "critical path on the Liberty file (liberty rows) or on the same SDF "
            "(`read_sdf`, sdf rows; sdf+wires: OpenSTA's SDF with a 50 ps INTERCONNECT delay "
            "in front of the A pin of every adder cell); `flipclock_sta_exact` = flipclock's "
            "STA of the "
            "unrounded delays; `opensta_on_tick_delays` = OpenSTA on the SDF of the delays "
            "the engine simulates (each arc rounded to a 10 ps tick, `--write-sdf`).", "",
            table, ""]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
