"""The paper's numbers and claims, and our verdict on each (:class:`~flipclock.studies.base.Claim`).

Verdicts are read the same way throughout (:func:`~flipclock.studies.base.verdict`):

* paired accuracy differences: *holds* when the 95 % CI lies on the claimed side of 0,
  *opposite* when it lies on the other side, *inconclusive* when it includes 0;
* sharpness orderings: the same on the interval of the difference of two CIs (so *holds*
  needs disjoint CIs);
* the two threshold claims (sparsity gap, matched accuracy) are exact figures: *holds* or
  *opposite* (the figure lies on the wrong side of the threshold).

The criteria were fixed before the runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flipclock.studies.base import Claim, verdict

from .config import FlatStudyConfig

__all__ = ["PAPER", "study_claims"]

PAPER: dict[str, dict[str, Any]] = {
    "lenet5": {
        "max_rate": 0.05, "sparsity_standard": 43.0, "sparsity_as": 84.0,
        "sparsity_drop_under_faults": 4.0,
        "as_minus_standard": {"flip": (-2.40, -11.13)},
        "saq_gain_standard": {"flip": (0.35, 15.82), "sa0": (0.35, 5.18), "sa1": (0.35, 4.68)},
        "saq_gain_as": {"flip": (0.12, 19.50), "sa0": (0.12, 7.94), "sa1": (0.12, 7.63)},
        "as_saq_minus_standard_at_max": 8.37,
        "as_saq_minus_standard_saq_at_max": -7.45,
        "as_minus_standard_at_max": -11.13,
    },
    "resnet18": {
        "max_rate": 0.03, "sparsity_standard": 53.0, "sparsity_as": 75.0,
        "sparsity_drop_under_faults": 2.0,
        "as_minus_standard": {"flip": (-0.52, -8.00)},
        "saq_gain_standard": {"flip": (0.21, 12.48), "sa0": (0.21, 14.89), "sa1": (0.21, 14.92)},
        "saq_gain_as": {"flip": (0.04, 14.00), "sa0": (0.04, 12.59), "sa1": (0.04, 12.56)},
        "as_saq_minus_standard_at_max": None,
        "as_saq_minus_standard_saq_at_max": -6.49,
        "as_minus_standard_at_max": -8.00,
    },
}
"""The paper's numbers (FlatENN, arXiv v1), per model: percent or percentage points."""

SPARSITY_GAP = 10.0
"""Percentage points by which AS must be sparser than standard for "well above"."""


def _exact(value: float) -> Any:
    # A figure without uncertainty: its own zero-width interval.
    return verdict(value, value)


def study_claims(cfg: FlatStudyConfig, ff: Mapping[str, Any], comps: Mapping[str, Any],
                 sharp: Mapping[str, Any]) -> list[Claim]:
    """Every claim of the study beside our figure (``ff``: fault-free accuracy/sparsity per
    model; ``comps``: paired differences in points; ``sharp``: sharpness CIs per model)."""
    top = cfg.max_rate
    t = f"{top:g}"
    sp_gap = ff["AS"]["sparsity"] - ff["standard"]["sparsity"]
    out = [Claim("AS sparsity well above standard",
                 f"AS - standard >= {SPARSITY_GAP:g} points (paper: +41 LeNet-5, +22 ResNet-18)",
                 f"{ff['standard']['sparsity']:.1f} % -> {ff['AS']['sparsity']:.1f} % "
                 f"({sp_gap:+.1f} points)", _exact(sp_gap - SPARSITY_GAP + 1e-9))]
    acc_gap = 100 * (ff["AS"]["accuracy"] - ff["standard"]["accuracy"])
    tol = 100 * cfg.match_tolerance
    out.append(Claim("standard and AS matched fault-free", f"|AS - standard| <= {tol:g} %",
                     f"{acc_gap:+.2f} %", _exact(tol + 1e-9 - abs(acc_gap))))
    for name, (a, b), sign in [
            ("AS less fault tolerant than standard", ("AS", "standard"), -1),
            ("SAQ improves standard", ("standard+SAQ", "standard"), 1),
            ("SAQ improves AS", ("AS+SAQ", "AS"), 1),
            ("SAQ-AS beats conventional standard", ("AS+SAQ", "standard"), 1)]:
        for kind in cfg.kinds:
            d = comps[f"{a} - {b}"][kind].get(t)
            side = "below" if sign < 0 else "above"
            out.append(Claim(
                f"{name} ({kind}, {100 * top:g} %)",
                f"paired {a} - {b} accuracy, 95 % CI {side} 0",
                "not measured" if d is None else
                f"{d['mean']:+.2f} % [{d['low']:+.2f}, {d['high']:+.2f}]",
                "inconclusive" if d is None else
                verdict(d["low"], d["high"], expected_sign=sign)))
    for name, a, b in [("AS converges to a sharper minimum", "AS", "standard"),
                       ("SAQ flattens standard", "standard", "standard+SAQ"),
                       ("SAQ flattens AS", "AS", "AS+SAQ")]:
        sa, sb = sharp[a], sharp[b]
        out.append(Claim(
            name, f"sharpness S(r={cfg.landscape.radius:g}) of {a} above {b}, CIs disjoint",
            f"{sa['mean']:.4f} [{sa['low']:.4f}, {sa['high']:.4f}] vs "
            f"{sb['mean']:.4f} [{sb['low']:.4f}, {sb['high']:.4f}]",
            verdict(sa["low"] - sb["high"], sa["high"] - sb["low"])))
    return out
