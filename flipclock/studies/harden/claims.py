"""The paper's claims beside our measurements, each with a three-way verdict.

``holds`` when our numbers support the claim, ``opposite`` when they contradict it, and
``inconclusive`` when they neither support nor contradict it (mixed results, or nothing
to compare, e.g. no swept BER that the baseline tolerates).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flipclock.studies.base import Claim, Verdict

from .analysis import by_variant, fmt_ber, row
from .config import HardenStudyConfig

__all__ = ["Evidence", "check_claims"]


@dataclass(frozen=True)
class Evidence:
    """The measurements the claims are read from."""

    config: HardenStudyConfig
    base_acc: float
    tolerated: Mapping[str, float | None]
    sweep: Any
    fig3: Any
    fig3_ber: float | None
    fig4: Any
    fig4_ber: float
    fig5: Sequence[Mapping[str, Any]]
    costs: Sequence[Mapping[str, Any]]
    rank_summary: Sequence[Mapping[str, Any]]


def _verdict(holds: bool | None) -> Verdict:
    if holds is None:
        return "inconclusive"
    return "holds" if holds else "opposite"


def _tolerance(ev: Evidence) -> Claim:
    cfg = ev.config
    tb, th = ev.tolerated.get("baseline"), ev.tolerated.get(cfg.main_variant)
    lowest = min(cfg.bers)
    holds: bool | None
    if tb is not None and th is not None:
        holds = th >= 10 * tb * (1 - 1e-9)
        ours = (f"baseline tolerates BER {fmt_ber(tb)}, {cfg.ratio:.0%}-hardened "
                f"{fmt_ber(th)} ({th / tb:.0f}x)")
    elif tb is None:
        # The baseline fails even at the lowest BER: the factor is only bounded below.
        holds = None if th is None or th < 10 * lowest * (1 - 1e-9) else True
        ours = (f"baseline drops >= 5 pt already at the lowest swept BER {fmt_ber(lowest)}, "
                f"hardened tolerates {fmt_ber(th)}")
    else:
        holds = False
        ours = f"baseline tolerates {fmt_ber(tb)}, hardened none"
    return Claim("hardened model within 5 points at >= 10x the baseline's BER", "Fig. 6",
                 ours, _verdict(holds))


def _pruning(ev: Evidence) -> Claim:
    by = {(r["criterion"], r["ratio"]): r for r in ev.fig5}
    wins = [(r, by["vulnerability", r]["accuracy"] - by["l1", r]["accuracy"],
             by["vulnerability", r]["accuracy_pruned"] - by["l1", r]["accuracy_pruned"])
            for r in ev.config.prune_ratios if ("vulnerability", r) in by and ("l1", r) in by]
    holds = (None if not wins else True if all(d > 0 for _, d, _ in wins)
             else False if all(d < 0 for _, d, _ in wins) else None)
    return Claim("vulnerability pruning beats L1 pruning at equal ratio", "Fig. 5",
                 "fine-tuned (before fine-tuning): " + ", ".join(
                     f"{r:.0%}: {100 * d:+.2f} ({100 * d0:+.2f}) pt" for r, d, d0 in wins),
                 _verdict(holds))


def _cost(ev: Evidence) -> Claim:
    cost = by_variant(ev.costs)
    hp, hh = cost["hardened-pruned"], cost[ev.config.main_variant]
    cheaper = {k: hp[k] < hh[k] for k in ("parameters", "macs", "memory_bytes", "seconds")}
    holds = True if all(cheaper.values()) else False if not any(cheaper.values()) else None
    return Claim("hardened-pruned costs less than hardened", "Table II, Fig. 7",
                 ", ".join(f"{k} {hp[k] / hh[k]:.2f}x" for k in cheaper), _verdict(holds))


def _exact(ev: Evidence) -> Claim:
    cost = by_variant(ev.costs)
    differ = [r["variant"] for r in ev.costs if r["variant"] not in ("pruned", "hardened-pruned")
              and r["accuracy"] != ev.base_acc]
    if cost["hardened-pruned"]["accuracy"] != cost["pruned"]["accuracy"]:
        differ.append("hardened-pruned")
    return Claim("hardened models keep the fault-free accuracy exactly", "Sec. III",
                 "all equal" if not differ else "differs: " + ", ".join(differ),
                 _verdict(not differ))


def _tmr(ev: Evidence) -> Claim | None:
    if ev.fig3 is None or ev.fig3_ber is None:
        return None
    d1, t1 = row(ev.fig3, "dup-noint-1", ev.fig3_ber), row(ev.fig3, "tmr-1", ev.fig3_ber)
    if d1 is None or t1 is None:
        return None
    cost = by_variant(ev.costs)
    base_mem = cost["baseline"]["memory_bytes"]
    mem = cost["dup-noint-1"]["memory_bytes"] / base_mem - 1 if "dup-noint-1" in cost \
        else math.nan
    mem_t = cost["tmr-1"]["memory_bytes"] / base_mem - 1
    close = abs(d1.drop_mean - t1.drop_mean) <= max(0.01, 2 * max(
        d1.drop_high - d1.drop_mean, t1.drop_high - t1.drop_mean))
    return Claim("full duplication + EDAC ~ TMR resilience at about half the overhead",
                 "Fig. 3",
                 f"BER {fmt_ber(ev.fig3_ber)}: drop {100 * d1.drop_mean:.2f} vs "
                 f"{100 * t1.drop_mean:.2f} pt, memory +{100 * mem:.0f} % vs "
                 f"+{100 * mem_t:.0f} %", _verdict(bool(close and mem < 0.6 * mem_t)))


def _pruned_resilience(ev: Evidence) -> Claim | None:
    # Compare where it matters: the tolerated BER, and the mean drop difference over the
    # BERs where the hardened model is neither intact nor dead (drop 0.5 .. 50 pt).
    main = ev.config.main_variant
    diffs, transition = [], []
    for b in ev.config.bers:
        a, p = row(ev.sweep, main, b), row(ev.sweep, "hardened-pruned", b)
        if a is not None and p is not None:
            diffs.append((b, p.drop_mean - a.drop_mean))
            if 0.005 <= a.drop_mean <= 0.5:
                transition.append(p.drop_mean - a.drop_mean)
    if not diffs:
        return None
    th, t_hp = ev.tolerated.get(main), ev.tolerated.get("hardened-pruned")
    tol_ok = th is None or (t_hp is not None and t_hp >= th)
    holds = tol_ok and (not transition or statistics.mean(transition) <= 0)
    return Claim("hardened-pruned at least as resilient as hardened", "Fig. 6",
                 f"tolerated {fmt_ber(t_hp)} vs {fmt_ber(th)}; drop difference " + ", ".join(
                     f"{fmt_ber(b)}: {100 * d:+.2f} pt" for b, d in diffs if abs(d) >= 0.0005),
                 _verdict(holds))


def _duplication(ev: Evidence) -> Claim | None:
    cfg = ev.config
    r0, rm = row(ev.fig4, "hardened-0", ev.fig4_ber), row(ev.fig4, cfg.main_variant,
                                                          ev.fig4_ber)
    if r0 is None or rm is None or cfg.ratio == 0:
        return None
    return Claim(f"{cfg.ratio:.0%} duplication improves on 0 % (detection intervals)",
                 "Fig. 4", f"BER {fmt_ber(ev.fig4_ber)}: {100 * r0.drop_mean:.2f} -> "
                 f"{100 * rm.drop_mean:.2f} pt", _verdict(bool(rm.drop_mean < r0.drop_mean)))


def _ranking(ev: Evidence) -> list[Claim]:
    per_layer = [r for r in ev.rank_summary if r["layer"] != "all"]
    claims = []
    for kind in ("noise", "bitflip"):
        rhos = [r["spearman"] for r in per_layer if r["kind"] == kind
                and not math.isnan(r["spearman"])]
        if rhos:
            mean = statistics.mean(rhos)
            claims.append(Claim(
                f"Eq. (1) ranks channels like {kind} fault injection", "Sec. III-A",
                "Spearman per layer " + ", ".join(f"{r['layer']} {r['spearman']:.2f}"
                                                  for r in per_layer if r["kind"] == kind),
                _verdict(True if mean > 0.5 else False if mean < 0 else None)))
    return claims


def check_claims(ev: Evidence) -> list[Claim]:
    """Every claim the measurements can speak to, in report order."""
    found = [_tolerance(ev), _pruning(ev), _cost(ev), _exact(ev), _tmr(ev),
             _pruned_resilience(ev), _duplication(ev), *_ranking(ev)]
    return [c for c in found if c is not None]
