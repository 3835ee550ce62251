"""BER tolerance by bisection: the largest BER at which a variant stays within
:data:`~.config.DROP_LIMIT` (5 points) of its own fault-free accuracy, per trained model.

The rule, fixed before any result is seen:

1. **Bracket from the grid.** On the model's BER sweep, a grid point *passes* when the mean
   accuracy drop over its repetitions is below 5 points. The bracket is the last passing
   point before the first failing one (a pass above a failure is not used: the drop is
   taken to rise with the BER).
2. **Bisection in log10(BER).** The bracket's geometric midpoint is measured with the
   sweep's number of repetitions (fresh fault draws) and replaces the passing or the failing
   end by the same rule (the mean drop over the repetitions; a point whose 95 % interval
   over the repetitions contains 5 points is counted as *noisy* and reported), until the
   bracket is narrower than ``bisect_factor`` (1.1: 10 %). The tolerance is the bracket's
   geometric midpoint.
3. **Edges.** A variant that fails already at the lowest grid BER is probed a decade lower,
   up to three decades; one that passes at the highest grid BER is *censored*: its
   tolerance is at least that BER (so a ratio computed from it is a lower bound).

All open brackets of all variants of a model advance together, one campaign per step
(``campaigns/bisect-<step>/``), resumable like every campaign.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from nnmap.stats import mean_ci
from sim.atomic import atomic_frame

from .config import DROP_LIMIT
from .trials import ber_trial
from .workspace import Workspace

__all__ = ["POINT_COLUMNS", "Bisection", "Measure", "bisect", "bisect_tolerances",
           "grid_bracket", "per_model_means", "start"]

MAX_STEPS = 16
"""Bisection steps at most per bracket (a decade to a factor 1.1 takes 5)."""
DECADES_BELOW = 3
"""Decades probed below the grid for a variant that fails at its lowest BER."""
POINT_COLUMNS = ["train_seed", "variant", "step", "ber", "drop_mean", "drop_low", "drop_high",
                 "n", "passes", "noisy"]


@dataclass
class Bisection:
    """The bracket of one (model, variant) and how it was found."""

    train_seed: int
    variant: str
    passing: float | None
    failing: float | None
    grid_passing: float | None
    grid_failing: float | None
    probes_below: int = 0
    steps: int = 0
    noisy: int = 0
    points: list[dict[str, Any]] = field(default_factory=list)

    @property
    def censored(self) -> str:
        """``"above"`` (passes at every BER tried), ``"below"`` (fails at every BER tried)
        or ``""``."""
        if self.failing is None:
            return "above"
        if self.passing is None:
            return "below"
        return ""

    @property
    def tolerance(self) -> float:
        """The geometric midpoint of the bracket (the open end's BER when censored)."""
        if self.passing is None:
            assert self.failing is not None
            return self.failing
        if self.failing is None:
            return self.passing
        return math.sqrt(self.passing * self.failing)

    def open(self, factor: float) -> bool:
        """True while another step is needed."""
        if self.failing is None:
            return False
        if self.passing is None:
            return self.probes_below < DECADES_BELOW
        return self.failing / self.passing > factor * (1 + 1e-12) and self.steps < MAX_STEPS

    def next_ber(self) -> float:
        """The BER to measure next."""
        assert self.failing is not None
        if self.passing is None:
            return self.failing / 10
        return math.sqrt(self.passing * self.failing)

    def row(self) -> dict[str, Any]:
        """A row of ``tolerance.csv``."""
        return {"train_seed": self.train_seed, "variant": self.variant,
                "tolerance": self.tolerance, "log10_tolerance": math.log10(self.tolerance),
                "bracket_passing": self.passing, "bracket_failing": self.failing,
                "grid_passing": self.grid_passing, "grid_failing": self.grid_failing,
                "steps": self.steps, "noisy_points": self.noisy, "censored": self.censored}


def per_model_means(rows: Sequence[Mapping[str, Any]], variant: str) -> list[tuple[float, float]]:
    """``(ber, mean drop)`` of one variant's trial rows (one model), sorted by BER."""
    by: dict[float, list[float]] = {}
    for r in rows:
        if r["variant"] == variant:
            by.setdefault(float(r["ber"]), []).append(float(r["drop"]))
    return [(b, sum(v) / len(v)) for b, v in sorted(by.items())]


def grid_bracket(points: Sequence[tuple[float, float]], limit: float = DROP_LIMIT
                 ) -> tuple[float | None, float | None]:
    """``(last passing, first failing)`` BER of ``(ber, mean drop)`` points sorted by BER
    (``None`` where there is none)."""
    passing = None
    for ber, drop in points:
        if drop >= limit:
            return passing, ber
        passing = ber
    return passing, None


Measure = Callable[[int, Mapping[str, float]], Mapping[str, Sequence[float]]]
"""``measure(step, {variant: ber})`` -> ``{variant: drops of the repetitions}``."""


def bisect(state: Sequence[Bisection], factor: float, measure: Measure) -> int:
    """Advance every open bracket of ``state`` together until all are closed; returns the
    number of steps (calls of ``measure``)."""
    step = 0
    while True:
        todo = [b for b in state if b.open(factor)]
        if not todo:
            return step
        step += 1
        bers = {b.variant: b.next_ber() for b in todo}
        drops = measure(step, bers)
        for b in todo:
            ci = mean_ci(list(drops[b.variant]))
            ber = bers[b.variant]
            passes = ci.mean < DROP_LIMIT
            noisy = ci.low < DROP_LIMIT <= ci.high
            b.points.append({"train_seed": b.train_seed, "variant": b.variant, "step": step,
                             "ber": ber, "drop_mean": ci.mean, "drop_low": ci.low,
                             "drop_high": ci.high, "n": ci.n, "passes": passes,
                             "noisy": noisy})
            b.noisy += int(noisy)
            if b.passing is None:
                b.probes_below += 1
            else:
                b.steps += 1
            if passes:
                b.passing = ber
            else:
                b.failing = ber


def start(train_seed: int, sweep_rows: Sequence[Mapping[str, Any]], names: Sequence[str]
          ) -> list[Bisection]:
    """The grid brackets of one model's variants ``names`` from its sweep trial rows."""
    state = []
    for name in names:
        lo, hi = grid_bracket(per_model_means(sweep_rows, name))
        state.append(Bisection(train_seed, name, lo, hi, lo, hi))
    return state


def bisect_tolerances(ws: Workspace, sweep_rows: Sequence[Mapping[str, Any]],
                      names: Sequence[str]) -> list[Bisection]:
    """Bisect the BER tolerance of every variant in ``names`` on one model; writes
    ``bisection.csv`` (every point measured) to the model's work folder."""
    cfg = ws.config
    state = start(ws.train_seed, sweep_rows, names)
    base = ws.base_params(cfg.eval_samples)

    def measure(step: int, bers: Mapping[str, float]) -> dict[str, list[float]]:
        trials = [{**base, "variant": name, "file": ws.files[name], "dtype": "float32",
                   "ber": ber, "trial": t}
                  for name, ber in bers.items() for t in range(cfg.repetitions)]
        records = ws.campaign(f"bisect-{step}", trials, ber_trial, list(bers))
        return {name: [float(r["result"]["drop"]) for r in records
                       if r["params"]["variant"] == name] for name in bers}

    bisect(state, cfg.bisect_factor, measure)
    atomic_frame(pd.DataFrame([p for b in state for p in b.points], columns=POINT_COLUMNS),
                 ws.out / "bisection.csv")
    return state
