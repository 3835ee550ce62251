"""Confidence intervals and tail probabilities, in plain Python (no SciPy dependency).

* :func:`mean_ci` -- mean of repeated runs (different seeds) with a Student-t interval;
* :func:`nested_ci` -- mean over several trained models, each measured in several trials,
  with an interval that includes model-to-model variance (and :func:`paired_nested_ci` for
  paired differences);
* :func:`binomial_ci` -- Clopper-Pearson (exact) interval of a rate;
* :func:`chi2_sf` -- chi-square survival function (goodness-of-fit p-values).

The special functions (regularised incomplete beta and gamma) follow the continued fractions
and series of Numerical Recipes, ch. 6; they are accurate to ~1e-12, far below any
statistical resolution used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["MeanCI", "NestedCI", "binomial_ci", "chi2_sf", "mean_ci", "nested_ci",
           "paired_nested_ci", "t_quantile"]

_EPS = 1e-15
_TINY = 1e-300


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` values with a two-sided confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def half_width(self) -> float:
        """``(high - low) / 2``."""
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        return (f"{self.mean:.4f} ± {self.half_width:.4f} "
                f"({100 * self.confidence:g} % CI, n={self.n})")


def _betacf(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / (c if abs(c) > _TINY else _TINY)
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / (c if abs(c) > _TINY else _TINY)
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
           + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _invert(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """``x`` in ``[lo, hi]`` with ``f(x) = target`` for increasing ``f`` (bisection)."""
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, abs(mid)):
            break
    return (lo + hi) / 2


def t_cdf(t: float, df: float) -> float:
    """Student-t cumulative distribution function."""
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of the Student-t distribution with ``df`` degrees of freedom."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), not {p!r}")
    if p == 0.5:
        return 0.0
    hi = 1.0
    while t_cdf(hi, df) < max(p, 1 - p):
        hi *= 2
    q = _invert(lambda t: t_cdf(t, df), max(p, 1 - p), 0.0, hi)
    return q if p > 0.5 else -q


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence interval of repeated measurements.

    Parameters
    ----------
    values:
        One measurement per run (e.g. accuracy per seed); at least one.
    confidence:
        Two-sided level, e.g. ``0.95``.

    Returns
    -------
    MeanCI
        With ``low == high == mean`` for a single value.
    """
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return MeanCI(mean, mean, mean, 1, confidence)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_quantile(0.5 + confidence / 2, n - 1) * math.sqrt(var / n)
    return MeanCI(mean, mean - half, mean + half, n, confidence)


@dataclass(frozen=True)
class NestedCI(MeanCI):
    """A :class:`MeanCI` over ``models`` trained models with ``trials`` measurements in all.

    ``n`` (the degrees of freedom + 1) is the number of models when there are at least two:
    the interval then includes model-to-model variance. With one model it is the trials'
    interval and :attr:`model_variance` is False (a report must say so).
    """

    models: int
    trials: int
    model_sd: float
    """Standard deviation of the per-model means (NaN with one model)."""

    @property
    def model_variance(self) -> bool:
        """True when the interval includes model-to-model variance (two models or more)."""
        return self.models >= 2

    def __str__(self) -> str:
        over = (f"{self.models} models × {self.trials // max(self.models, 1)} trials"
                if self.model_variance else f"1 model, {self.trials} trials, no model variance")
        return f"{self.mean:.4f} ± {self.half_width:.4f} ({100 * self.confidence:g} % CI, {over})"


def nested_ci(groups: Sequence[Sequence[float]], confidence: float = 0.95) -> NestedCI:
    """Mean and interval of a measurement repeated over models (outer) and trials (inner).

    ``groups[m]`` holds model ``m``'s trials. The estimate is the mean of the model means; the
    interval is Student-t on the model means with ``models - 1`` degrees of freedom. For a
    balanced design this is the exact interval of the one-way random-effects model: the
    variance of a model mean is ``sigma_model^2 + sigma_trial^2 / trials``, so both sources
    are in it. With one model, the trials' own t interval (no model variance).
    """
    groups = [list(g) for g in groups]
    if not groups or any(not g for g in groups):
        raise ValueError("nested_ci needs at least one model, each with at least one trial")
    total = sum(len(g) for g in groups)
    if len(groups) == 1:
        ci = mean_ci(groups[0], confidence)
        return NestedCI(ci.mean, ci.low, ci.high, ci.n, confidence, 1, total, math.nan)
    means = [math.fsum(g) / len(g) for g in groups]
    ci = mean_ci(means, confidence)
    sd = math.sqrt(math.fsum((m - ci.mean) ** 2 for m in means) / (len(means) - 1))
    return NestedCI(ci.mean, ci.low, ci.high, ci.n, confidence, len(groups), total, sd)


def paired_nested_ci(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]],
                     confidence: float = 0.95) -> NestedCI:
    """:func:`nested_ci` of the paired differences ``a[m][t] - b[m][t]``.

    Pair the measurements that share randomness (the same fault map, the same model seed);
    the groups and their lengths must match.
    """
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b, strict=True)):
        raise ValueError("paired_nested_ci needs groups of equal shape")
    return nested_ci([[x - y for x, y in zip(ga, gb, strict=True)]
                      for ga, gb in zip(a, b, strict=True)], confidence)


def binomial_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) confidence interval of a rate ``k / n``."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"binomial_ci needs 0 <= k <= n and n > 0, not k={k!r}, n={n!r}")
    alpha = 1 - confidence
    # P(X >= k | p) = I_p(k, n - k + 1) and P(X <= k | p) = 1 - I_p(k + 1, n - k)
    low = 0.0 if k == 0 else _invert(lambda p: betainc(k, n - k + 1, p), alpha / 2, 0.0, 1.0)
    high = 1.0 if k == n else _invert(lambda p: betainc(k + 1, n - k, p), 1 - alpha / 2,
                                      0.0, 1.0)
    return low, high


def _gammainc_lower(a: float, x: float) -> float:
    """Regularised lower incomplete gamma ``P(a, x)``."""
    if x <= 0:
        return 0.0
    gln = math.lgamma(a)
    if x < a + 1:
        ap, total = a, 1.0 / a
        delta = total
        for _ in range(10000):
            ap += 1
            delta *= x / ap
            total += delta
            if abs(delta) < abs(total) * _EPS:
                break
        return total * math.exp(-x + a * math.log(x) - gln)
    b = x + 1 - a
    c, d = 1 / _TINY, 1 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > _TINY else _TINY)
        c = b + an / (c if abs(c) > _TINY else _TINY)
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return 1.0 - math.exp(-x + a * math.log(x) - gln) * h


def chi2_sf(x: float, df: int) -> float:
    """Survival function ``P(X > x)`` of a chi-square variable with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be at least 1, not {df!r}")
    return 1.0 - _gammainc_lower(df / 2, x / 2)
