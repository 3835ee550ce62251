"""The hardening study's claims read from intervals over trained models: the pruning
comparison is paired per (model, fine-tuning seed), the tolerance ratio is over models, and
each verdict has three outcomes."""

from __future__ import annotations

import math
import random

import pytest

from flipclock.studies.harden.bisection import Bisection
from flipclock.studies.harden.claims import Evidence, _pruning, _tolerance, equivalence, shifted
from flipclock.studies.harden.config import HardenStudyConfig
from nnmap.stats import nested_ci


def _bis(seed: int, name: str, tol: float) -> Bisection:
    return Bisection(seed, name, tol / 1.02, tol * 1.02, None, None)


def _evidence(fig5: list[dict[str, object]], tolerances: dict[str, list[float]]
              ) -> Evidence:
    cfg = HardenStudyConfig(prune_ratios=(0.5,), models=len(next(iter(tolerances.values()))))
    bis = [_bis(s, n, t) for n, ts in tolerances.items() for s, t in enumerate(ts)]
    return Evidence(cfg, [0.9] * cfg.models, bis, None, [], None, [], None, None, [], 1e-4,
                    fig5, [], [])


def _fig5(diff: list[list[float]], level: list[float]) -> list[dict[str, object]]:
    """Accuracy of L1 = the model's level (+ a seed effect), vulnerability = L1 + diff."""
    rows: list[dict[str, object]] = []
    for s, (ds, lv) in enumerate(zip(diff, level, strict=True)):
        for k, d in enumerate(ds):
            l1 = lv + 0.003 * k
            for crit, acc in (("l1", l1), ("vulnerability", l1 + d / 100)):
                rows.append({"train_seed": s, "finetune_seed": k, "criterion": crit,
                             "ratio": 0.5, "accuracy": acc, "accuracy_pruned": acc - 0.1})
    return rows


TOL = {"baseline": [1e-5, 1e-5, 1e-5], "hardened-0.15": [1e-3, 1e-3, 1e-3]}


def test_pruning_difference_is_paired_so_model_levels_cancel() -> None:
    # Models differ by 10 points in level, vulnerability is 1 +- 0.1 points better in each
    # (model, seed): the paired interval excludes 0 although the levels vary a lot.
    diff = [[1.0, 1.1], [0.9, 1.0], [1.05, 0.95]]
    ev = _evidence(_fig5(diff, [0.80, 0.90, 0.85]), TOL)
    ci = ev.pruning_ci(0.5)
    assert ci is not None and ci.models == 3 and ci.trials == 6
    assert ci.mean == pytest.approx(1.0)
    assert 0 < ci.low < 1.0 < ci.high < 2.0
    claim = _pruning(ev)[0]
    assert claim.verdict == "holds" and claim.models == 3 and claim.trials == 6
    negative = _evidence(_fig5([[-d for d in ds] for ds in diff], [0.8, 0.9, 0.85]), TOL)
    assert _pruning(negative)[0].verdict == "opposite"


def test_pruning_sign_that_flips_with_the_training_seed_is_inconclusive() -> None:
    # The finding: -0.9 ... +2.8 points over 3 training x 2 fine-tuning seeds.
    diff = [[-0.9, -0.5], [2.8, 2.1], [0.3, -0.2]]
    claim = _pruning(_evidence(_fig5(diff, [0.8, 0.8, 0.8]), TOL))[0]
    assert claim.verdict == "inconclusive"
    assert claim.low is not None and claim.high is not None and claim.low < 0 < claim.high
    # the interval is the one over model means of the per-model mean differences
    means = [sum(d) / len(d) for d in diff]
    ref = nested_ci([[m] for m in means])
    assert (claim.low, claim.high) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_tolerance_ratio_is_an_interval_over_models() -> None:
    rng = random.Random(3)
    tol = {"baseline": [10 ** (-5 + rng.uniform(-0.1, 0.1)) for _ in range(3)],
           "hardened-0.15": [10 ** (-3 + rng.uniform(-0.1, 0.1)) for _ in range(3)]}
    ev = _evidence(_fig5([[1.0]] * 3, [0.8] * 3), tol)
    ci = ev.log_ratio_ci("hardened-0.15", "baseline")
    expect = [math.log10(h / b) for h, b in zip(tol["hardened-0.15"], tol["baseline"],
                                                strict=True)]
    assert ci.mean == pytest.approx(sum(expect) / 3) and ci.models == 3
    more, tenfold = _tolerance(ev)
    assert more.verdict == "holds" and tenfold.verdict == "holds"
    # a factor of about 3 only: higher (holds) but not 10x (opposite)
    tol3 = {"baseline": [1e-5, 1.1e-5, 0.9e-5], "hardened-0.15": [3e-5, 3.2e-5, 2.9e-5]}
    more, tenfold = _tolerance(_evidence(_fig5([[1.0]] * 3, [0.8] * 3), tol3))
    assert more.verdict == "holds" and tenfold.verdict == "opposite"
    # one model says 100x, another 0.5x: inconclusive
    mixed = {"baseline": [1e-5, 1e-5, 1e-5], "hardened-0.15": [1e-3, 5e-6, 1e-4]}
    more, _ = _tolerance(_evidence(_fig5([[1.0]] * 3, [0.8] * 3), mixed))
    assert more.verdict == "inconclusive"


def test_one_model_has_no_model_variance() -> None:
    ev = _evidence(_fig5([[1.0, 1.2]], [0.8]), {"baseline": [1e-5], "hardened-0.15": [1e-3]})
    ci = ev.pruning_ci(0.5)
    assert ci is not None and not ci.model_variance and ci.models == 1 and ci.trials == 2


def test_equivalence_and_shift() -> None:
    ci = nested_ci([[0.5], [1.0], [0.8]])
    assert equivalence(ci, 2.0) == "holds"
    assert equivalence(shifted(ci, -5.0), 2.0) == "opposite"
    assert equivalence(nested_ci([[0.0], [3.0], [1.0]]), 2.0) == "inconclusive"
    moved = shifted(ci, 1.0)
    assert (moved.mean, moved.low, moved.high) == pytest.approx(
        (ci.mean - 1, ci.low - 1, ci.high - 1))
