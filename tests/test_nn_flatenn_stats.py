"""FlatENN statistics: nested and paired CIs over models x trials from campaign records, the
largest difference over rates, and the three-way claims read from them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from flipclock.studies.flatenn.claims import COMPARISONS, equivalence, shifted_claim
from flipclock.studies.flatenn.config import FlatStudyConfig
from flipclock.studies.flatenn.summary import (
    Records,
    _accuracy_rows,
    _max_rows,
    _paired_rows,
    study_claims,
)
from nnmap.stats import nested_ci, paired_nested_ci


def _cfg(**changes: Any) -> FlatStudyConfig:
    base: dict[str, Any] = dict(dataset="fashion-mnist-subset", models=3, trials=4,
                                rates=(0.0, 0.01, 0.05), kinds=("flip",), units=("bit",),
                                controls=False, quick=True)
    base.update(changes)
    return FlatStudyConfig(**base)


def _synthetic(cfg: FlatStudyConfig, effect: dict[str, dict[float, float]], seed: int = 0
               ) -> tuple[list[dict[str, Any]], dict[tuple[str, int, float, int], float]]:
    """Records with accuracy = base(model, rate, trial) + effect[variant][rate]: the paired
    difference of two variants is exactly the difference of their effects."""
    rng = np.random.default_rng(seed)
    base = {(m, r, t): 0.8 - 4 * r + 0.05 * rng.standard_normal()
            for m in range(cfg.models) for r in cfg.rates for t in range(cfg.trials)}
    acc, recs = {}, []
    for v, eff in effect.items():
        for m in range(cfg.models):
            model_shift = 0.02 * rng.standard_normal()  # a model-to-model difference
            for r in cfg.rates:
                for t in (range(cfg.trials) if r > 0 else [0]):
                    a = base[(m, r, t)] + eff[r] + model_shift
                    acc[(v, m, r, t)] = a
                    recs.append({"params": {"variant": v, "model": m, "unit": "bit",
                                            "kind": "flip" if r > 0 else "none", "rate": r,
                                            "trial": t},
                                 "result": {"accuracy": a, "sparsity": 50.0,
                                            "float_sparsity": 40.0}})
    return recs, acc


EFFECT = {"standard": {0.0: 0.0, 0.01: 0.0, 0.05: 0.0},
          "AS": {0.0: 0.0, 0.01: -0.03, 0.05: -0.10},
          "standard+SAQ": {0.0: 0.0, 0.01: 0.02, 0.05: 0.01},
          "AS+SAQ": {0.0: 0.0, 0.01: 0.0, 0.05: -0.02}}


def test_cis_are_nested_over_models_and_paired_by_map() -> None:
    cfg = _cfg()
    recs, acc = _synthetic(cfg, EFFECT)
    rec = Records(recs)
    rows = {(r["variant"], r["rate"]): r for r in _accuracy_rows(cfg, rec)}
    want = nested_ci([[acc[("AS", m, 0.05, t)] for t in range(4)] for m in range(3)])
    got = rows[("AS", 0.05)]
    assert (got["models"], got["trials"]) == (3, 12)
    assert got["mean"] == pytest.approx(100 * want.mean)
    assert (got["low"], got["high"]) == pytest.approx((100 * want.low, 100 * want.high))
    assert rows[("AS", 0.0)]["trials"] == 3  # fault-free: one inference per model
    # paired: same model and trial; the base noise cancels, the model shifts do not
    p = rec.paired("AS", "standard", "bit", "flip", 0.05)
    assert p is not None
    want = paired_nested_ci([[acc[("AS", m, 0.05, t)] for t in range(4)] for m in range(3)],
                            [[acc[("standard", m, 0.05, t)] for t in range(4)]
                             for m in range(3)])
    assert (p.mean, p.low, p.high, p.models) == pytest.approx(
        (want.mean, want.low, want.high, 3))
    assert p.mean == pytest.approx(-0.10, abs=0.05)
    # a variant without trials has no paired difference
    assert rec.paired("AS", "nothing", "bit", "flip", 0.05) is None


def test_largest_difference_over_rates_and_its_verdicts() -> None:
    cfg = _cfg()
    recs, _ = _synthetic(cfg, {k: {r: 10 * v for r, v in e.items()} for k, e in EFFECT.items()})
    rec = Records(recs)
    paired = _paired_rows(cfg, rec)
    maxes = {(r["a"], r["b"]): r for r in _max_rows(cfg, paired)}
    # AS - standard is claimed negative: the largest is the most negative, at 5 %
    m = maxes[("AS", "standard")]
    assert m["rate_of_max"] == 0.05 and m["mean"] == pytest.approx(-100, abs=25)
    assert m["verdict"] == "holds" and (m["holds_at"], m["of_rates"]) == (2, 2)
    # standard+SAQ - standard is claimed positive: largest at 1 %
    m = maxes[("standard+SAQ", "standard")]
    assert m["rate_of_max"] == 0.01 and m["verdict"] == "holds"
    # AS+SAQ - standard is claimed positive; every faulty rate is below 0
    m = maxes[("AS+SAQ", "standard")]
    assert m["opposite_at"] >= 1 and m["rate_of_max"] in (0.0, 0.01)
    # the claims read these rows, with the rate in the statement and model counts in the CSV
    ff = {k: [{"accuracy": 0.8, "sparsity": 40.0 + (30 if "AS" in k else 0) + m}
              for m in range(3)] for k in EFFECT}
    claims = {c.statement: c for c in study_claims(cfg, ff, list(maxes.values()), None)}
    c = claims["AS less fault tolerant than standard (flip, per bit; largest at 5 %)"]
    assert c.verdict == "holds" and c.models == 3 and c.paper == "up to -11.13 pts (0-5 %)"
    assert claims["AS sparsity well above standard (4-bit zeros, fault-free)"].verdict == "holds"
    # equal accuracies: the matched claim's CI is [0, 0], inside the tolerance
    assert claims["standard and AS matched fault-free (test set)"].verdict == "holds"
    assert all(c.verdict in ("holds", "opposite", "inconclusive") for c in claims.values())


def test_controls_are_compared_on_their_kinds_only() -> None:
    cfg = _cfg(controls=True, kinds=("flip", "sa0"), control_kinds=("flip",))
    effect = {k: {r: 0.0 for r in cfg.rates} for k in
              ("standard", "AS", "standard+SAQ", "AS+SAQ", "standard (E/2)", "AS (E/2)",
               "standard+FT", "standard+SAQ FT", "AS+FT", "AS+SAQ FT")}
    effect["standard+SAQ FT"] = {0.0: 0.0, 0.01: 0.3, 0.05: 0.3}
    recs, _ = _synthetic(cfg, effect)
    paired = _paired_rows(cfg, Records(recs))
    roles = {(r["a"], r["b"]): r["role"] for r in paired}
    assert roles[("standard+SAQ FT", "standard+FT")] == "control: warm start"
    assert roles[("standard+SAQ", "standard (E/2)")] == "control: equal epochs"
    assert {r["kind"] for r in paired if r["role"] != "paper"} <= {"flip", "none"}
    assert len({(c.a, c.b) for c in COMPARISONS}) == len(COMPARISONS)
    warm = [r for r in _max_rows(cfg, paired) if r["a"] == "standard+SAQ FT"]
    assert len(warm) == 1 and warm[0]["verdict"] == "holds"


def test_threshold_and_equivalence_claims_are_three_way() -> None:
    def ci(mean: float, half: float) -> dict[str, Any]:
        return {"mean": mean, "low": mean - half, "high": mean + half, "models": 3,
                "trials": 3}

    assert shifted_claim("s", "p", ci(30, 5), 10).verdict == "holds"
    assert shifted_claim("s", "p", ci(5, 2), 10).verdict == "opposite"
    assert shifted_claim("s", "p", ci(10, 3), 10).verdict == "inconclusive"
    assert equivalence("m", "p", ci(0.1, 0.2), 0.5).verdict == "holds"
    assert equivalence("m", "p", ci(-2.0, 0.5), 0.5).verdict == "opposite"
    assert equivalence("m", "p", ci(0.3, 1.0), 0.5).verdict == "inconclusive"
    c = shifted_claim("s", "p", ci(30, 5), 10)
    assert (c.mean, c.low, c.high, c.models) == (30, 25, 35, 3)  # the CSV keeps the figure
