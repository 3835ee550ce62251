"""Confidence intervals and tail probabilities against textbook values."""

from __future__ import annotations

import math

import pytest

from nnmap import binomial_ci, chi2_sf, mean_ci
from nnmap.stats import t_quantile


@pytest.mark.parametrize(("df", "value"), [(1, 12.7062), (4, 2.7764), (9, 2.2622), (30, 2.0423),
                                           (1000, 1.9623)])
def test_t_quantile(df: int, value: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-value, abs=1e-4)


def test_mean_ci() -> None:
    ci = mean_ci([0.50, 0.52, 0.49, 0.51])
    assert ci.mean == pytest.approx(0.505)
    # s = 0.01291, t(0.975, 3) = 3.1824
    assert ci.half_width == pytest.approx(3.1824 * 0.012910 / 2, rel=1e-3)
    one = mean_ci([0.7])
    assert one.low == one.high == 0.7
    with pytest.raises(ValueError, match="at least one value"):
        mean_ci([])


def test_binomial_ci_clopper_pearson() -> None:
    lo, hi = binomial_ci(5, 100)
    assert lo == pytest.approx(0.016432, abs=1e-5) and hi == pytest.approx(0.112835, abs=1e-5)
    assert binomial_ci(0, 100)[0] == 0.0
    assert binomial_ci(0, 100)[1] == pytest.approx(0.036217, abs=1e-5)
    assert binomial_ci(100, 100)[1] == 1.0


@pytest.mark.parametrize(("x", "df"), [(3.8415, 1), (18.307, 10), (124.342, 100)])
def test_chi2_sf_at_the_5_percent_points(x: float, df: int) -> None:
    assert chi2_sf(x, df) == pytest.approx(0.05, abs=1e-4)


def test_nested_ci_includes_model_variance() -> None:
    """Three models that disagree far more than their trials do: the interval is the models'
    t interval (2 degrees of freedom), much wider than the pooled trials' interval."""
    from nnmap.stats import mean_ci, nested_ci

    groups = [[0.50, 0.52, 0.51], [0.58, 0.57, 0.59], [0.55, 0.55, 0.56]]
    ci = nested_ci(groups)
    means = [sum(g) / 3 for g in groups]
    assert ci.models == 3 and ci.trials == 9 and ci.model_variance
    assert math.isclose(ci.mean, sum(means) / 3)
    assert (ci.low, ci.high) == pytest.approx((mean_ci(means).low, mean_ci(means).high))
    pooled = mean_ci([v for g in groups for v in g])
    assert ci.half_width > 2 * pooled.half_width
    one = nested_ci(groups[:1])
    assert not one.model_variance and "no model variance" in str(one)


def test_paired_nested_ci_pairs_within_models() -> None:
    from nnmap.stats import paired_nested_ci

    a = [[0.9, 0.8], [0.7, 0.6], [0.5, 0.4]]
    b = [[0.8, 0.7], [0.6, 0.5], [0.4, 0.3]]
    d = paired_nested_ci(a, b)
    assert d.mean == pytest.approx(0.1) and d.half_width == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        paired_nested_ci(a, b[:2])


def test_a_single_value_supports_no_verdict() -> None:
    """One model measured once gives low == high: not evidence for a claim."""
    from flipclock.studies.base import Claim, verdict_ci
    from nnmap.stats import nested_ci

    assert verdict_ci(nested_ci([[75.0]])) == "inconclusive"
    assert verdict_ci(nested_ci([[75.0], [80.0], [78.0]])) == "holds"
    assert Claim.from_ci("x", "p", "o", nested_ci([[-3.0]])).verdict == "inconclusive"
