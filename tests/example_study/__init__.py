"""A tiny study that shows what adding a study takes: this folder plus one registration.

``flipclock coin run --flips 50 --trials 8 --out DIR [--quick]`` tosses a seeded coin
``flips`` times per trial and checks the claim "the coin is fair" against the CI of the
heads fraction. It uses every piece of the base: a :class:`StudyConfig`, resumable
:func:`run_trials`, a :class:`Claim` with a three-way :func:`verdict`, and a :class:`Report`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from flipclock.args import positive_int, seed
from flipclock.studies.base import Claim, Report, StudyConfig, run_trials, verdict
from sim.atomic import output_folder

NAME = "coin"


@dataclass(frozen=True)
class CoinConfig(StudyConfig):
    FORMAT: ClassVar[str] = "example.coin"

    flips: int = 100
    trials: int = 8
    seed: int = 0
    quick: bool = False


def toss(params: Mapping[str, Any]) -> dict[str, float]:
    """One trial: the heads fraction of ``flips`` seeded tosses (importable, for Dask)."""
    import numpy as np

    rng = np.random.default_rng([params["seed"], params["trial"]])
    return {"heads": float(rng.integers(0, 2, params["flips"]).mean())}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(NAME, help="example study: is a seeded coin fair?")
    sub = p.add_subparsers(dest="coin_command", required=True)
    r = sub.add_parser("run", help="toss, summarise, report")
    r.add_argument("--flips", type=positive_int, default=100)
    r.add_argument("--trials", type=positive_int, default=8)
    r.add_argument("--seed", type=seed, default=0)
    r.add_argument("--quick", action="store_true")
    r.add_argument("--out", type=Path, required=True)
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nnmap.stats import mean_ci

    cfg = CoinConfig(flips=args.flips, trials=args.trials, seed=args.seed, quick=args.quick)
    with output_folder(args.out) as out:
        trials = [{"flips": cfg.flips, "seed": cfg.seed, "trial": t} for t in range(cfg.trials)]
        records = run_trials(trials, toss, out / "campaign", settings={"config": cfg.to_dict()},
                             progress=False)
        ci = mean_ci([r["result"]["heads"] for r in records])
        report = Report("Is the coin fair?", cfg)
        report.add_claim(Claim("heads fraction differs from 1/2", "no", f"{ci.mean:.3f} "
                               f"[{ci.low:.3f}, {ci.high:.3f}]",
                               verdict(ci.low - 0.5, ci.high - 0.5)))
        report.add(f"{len(records)} trials of {cfg.flips} flips.")
        report.write(out)
    print(f"wrote {out}/report.md")
    return 0
