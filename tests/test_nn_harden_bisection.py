"""BER tolerance by bisection (flipclock.studies.harden.bisection): the grid bracket, the
bisection to a factor, the edges (below the grid, above it) and noisy crossings, on
synthetic drop curves whose true threshold is known."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pytest

from flipclock.studies.harden.bisection import (
    Bisection,
    bisect,
    grid_bracket,
    per_model_means,
    start,
)
from flipclock.studies.harden.config import DROP_LIMIT

GRID = (1e-7, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2, 1e-1)


def _step_curve(threshold: float) -> Callable[[float], float]:
    """A drop of 0 below ``threshold``, 20 points at and above it."""
    return lambda ber: 0.0 if ber < threshold else 0.2


def _sweep_rows(curves: Mapping[str, Callable[[float], float]], reps: int = 3
                ) -> list[dict[str, object]]:
    return [{"train_seed": 0, "variant": name, "ber": b, "trial": t, "drop": curve(b)}
            for name, curve in curves.items() for b in GRID for t in range(reps)]


def _measure(curves: Mapping[str, Callable[[float], float]], reps: int = 4,
             calls: list[dict[str, float]] | None = None
             ) -> Callable[[int, Mapping[str, float]], dict[str, list[float]]]:
    def measure(step: int, bers: Mapping[str, float]) -> dict[str, list[float]]:
        if calls is not None:
            calls.append(dict(bers))
        return {n: [curves[n](b)] * reps for n, b in bers.items()}
    return measure


def test_grid_bracket_is_last_pass_before_first_failure() -> None:
    pts = [(1e-6, 0.0), (1e-5, 0.01), (1e-4, 0.06), (1e-3, 0.01), (1e-2, 0.5)]
    assert grid_bracket(pts) == (1e-5, 1e-4)  # the pass at 1e-3 above a failure is not used
    assert grid_bracket([(1e-6, 0.2), (1e-5, 0.3)]) == (None, 1e-6)
    assert grid_bracket([(1e-6, 0.0), (1e-5, 0.0)]) == (1e-5, None)
    assert grid_bracket([(1e-6, DROP_LIMIT)]) == (None, 1e-6)  # exactly 5 pt fails


def test_per_model_means_average_the_repetitions() -> None:
    rows = [{"variant": "a", "ber": 1e-5, "drop": d} for d in (0.0, 0.1)]
    rows += [{"variant": "b", "ber": 1e-5, "drop": 1.0}]
    assert per_model_means(rows, "a") == [(1e-5, pytest.approx(0.05))]


@pytest.mark.parametrize("factor", [1.1, 1.5])
def test_bisection_brackets_the_true_threshold_to_the_factor(factor: float) -> None:
    curves = {"baseline": _step_curve(2.2e-6), "hardened": _step_curve(4.7e-4)}
    state = start(0, _sweep_rows(curves), list(curves))
    assert (state[0].grid_passing, state[0].grid_failing) == (1e-6, 1e-5)
    assert (state[1].grid_passing, state[1].grid_failing) == (3e-4, 1e-3)
    calls: list[dict[str, float]] = []
    steps = bisect(state, factor, _measure(curves, calls=calls))
    for b, thr in zip(state, (2.2e-6, 4.7e-4), strict=True):
        assert b.passing is not None and b.failing is not None
        assert b.passing < thr <= b.failing
        assert b.failing / b.passing <= factor * (1 + 1e-9)
        assert thr / factor <= b.tolerance <= thr * factor
        assert not b.censored and b.noisy == 0
        assert len(b.points) == b.steps
    # a decade to a factor 1.1 takes ceil(log2(1 / log10(1.1))) = 5 halvings of log10(BER)
    need = math.ceil(math.log2(math.log10(10) / math.log10(factor)))
    assert state[0].steps == need
    assert steps == max(b.steps for b in state)
    # both brackets advance in the same steps (one campaign per step)
    assert set(calls[0]) == {"baseline", "hardened"}


def test_a_variant_failing_at_the_lowest_grid_ber_is_probed_below() -> None:
    curves = {"weak": _step_curve(3e-9)}
    state = start(0, _sweep_rows(curves), ["weak"])
    assert state[0].passing is None
    bisect(state, 1.1, _measure(curves))
    b = state[0]
    assert b.probes_below == 2 and b.passing is not None and b.failing is not None
    assert b.passing < 3e-9 <= b.failing and not b.censored


def test_edges_are_censored_not_extrapolated() -> None:
    curves = {"dead": _step_curve(1e-15), "immortal": _step_curve(10.0)}
    state = start(0, _sweep_rows(curves), list(curves))
    calls: list[dict[str, float]] = []
    bisect(state, 1.1, _measure(curves, calls=calls))
    dead, immortal = state
    assert dead.censored == "below" and dead.passing is None
    assert dead.probes_below == 3 and dead.tolerance == pytest.approx(1e-10)
    assert immortal.censored == "above" and immortal.tolerance == max(GRID)
    assert all("immortal" not in c for c in calls)
    assert immortal.row()["censored"] == "above"


def test_noisy_crossings_are_decided_on_the_mean_and_counted() -> None:
    b = Bisection(0, "v", 1e-5, 1e-4, 1e-5, 1e-4)
    # mean 4.5 pt with a wide interval: passes, and is noisy
    bisect([b], 9.0, lambda step, bers: {"v": [0.0, 0.09, 0.0, 0.09]})
    assert b.passing == pytest.approx(math.sqrt(1e-9)) and b.noisy == 1
    c = Bisection(0, "v", 1e-5, 1e-4, 1e-5, 1e-4)
    bisect([c], 9.0, lambda step, bers: {"v": [0.05, 0.05]})  # exactly 5 pt: fails
    assert c.failing == pytest.approx(math.sqrt(1e-9)) and c.noisy == 0
