"""The paper's claims beside our measurements, each with a three-way verdict read from a
95 % interval over the trained models (x trials or fine-tuning seeds where there are some).

``holds`` when the interval lies on the claimed side of zero, ``opposite`` when it lies on
the other side, ``inconclusive`` when it contains zero (:func:`flipclock.studies.base.verdict`).
"Similar" claims (duplication + EDAC ~ TMR) are read against an equivalence margin instead:
holds when the interval lies inside ``[-margin, margin]``, opposite when it lies outside.
Every interval is a :func:`nnmap.stats.nested_ci` / :func:`~nnmap.stats.paired_nested_ci`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flipclock.studies.base import Claim, Verdict
from nnmap.stats import NestedCI, nested_ci, paired_nested_ci

from .analysis import fmt_ber, fmt_ci, single
from .bisection import Bisection
from .config import HardenStudyConfig

__all__ = ["EQUIVALENCE_PT", "Evidence", "check_claims", "equivalence", "shifted"]

EQUIVALENCE_PT = 2.0
"""Margin (percentage points) within which two accuracy drops count as "similar"."""


@dataclass(frozen=True)
class Evidence:
    """The measurements the claims are read from (every model's)."""

    config: HardenStudyConfig
    base_accs: Sequence[float]
    bisections: Sequence[Bisection]
    sweep: Any
    sweep_rows: Sequence[Mapping[str, Any]]
    fig3: Any
    fig3_rows: Sequence[Mapping[str, Any]]
    fig3_ber: float | None
    fig4: Any
    fig4_rows: Sequence[Mapping[str, Any]]
    fig4_ber: float
    fig5: Sequence[Mapping[str, Any]]
    costs: Sequence[Mapping[str, Any]]
    rank_summary: Sequence[Mapping[str, Any]]

    @property
    def seeds(self) -> list[int]:
        """The training seeds, in order."""
        return sorted({b.train_seed for b in self.bisections} or {self.config.train_seed})

    def tolerance(self, name: str) -> dict[int, Bisection]:
        """The bisected tolerance of ``name`` per training seed."""
        return {b.train_seed: b for b in self.bisections if b.variant == name}

    def tolerance_ci(self, name: str) -> NestedCI:
        """Interval over models of ``log10`` of the bisected tolerance of ``name``."""
        tol = self.tolerance(name)
        return single([math.log10(tol[s].tolerance) for s in self.seeds])

    def log_ratio_ci(self, a: str, b: str) -> NestedCI:
        """Interval over models of ``log10(tolerance(a) / tolerance(b))`` (paired by model)."""
        ta, tb = self.tolerance(a), self.tolerance(b)
        return single([math.log10(ta[s].tolerance / tb[s].tolerance) for s in self.seeds])

    def cost(self, name: str, key: str) -> list[float]:
        """``key`` of variant ``name`` per model."""
        by = {(r["train_seed"], r["variant"]): r for r in self.costs}
        return [float(by[s, name][key]) for s in self.seeds]

    def cost_ratio_ci(self, a: str, b: str, key: str) -> NestedCI:
        """Interval over models of ``key(a) / key(b) - 1``, in percent."""
        return single([100 * (x / y - 1) for x, y in zip(self.cost(a, key), self.cost(b, key),
                                                          strict=True)])

    def drops(self, rows: Sequence[Mapping[str, Any]], name: str, ber: float
              ) -> list[list[float]]:
        """Per model, the drops of ``name`` at ``ber`` in trial order (percentage points)."""
        out = []
        for s in self.seeds:
            sel = sorted((r for r in rows if r["train_seed"] == s and r["variant"] == name
                          and r["ber"] == ber), key=lambda r: r["trial"])
            out.append([100 * float(r["drop"]) for r in sel])
        return out

    def pruning_ci(self, ratio: float, key: str = "accuracy") -> NestedCI | None:
        """Paired interval of vulnerability - L1 accuracy (points) at ``ratio``: outer the
        training seed, inner the fine-tuning seed."""
        by = {(r["train_seed"], r["finetune_seed"], r["criterion"]): r for r in self.fig5
              if r["ratio"] == ratio}
        seeds = sorted({k for (_, k, _) in by})
        try:
            a = [[100 * by[s, k, "vulnerability"][key] for k in seeds] for s in self.seeds]
            b = [[100 * by[s, k, "l1"][key] for k in seeds] for s in self.seeds]
        except KeyError:
            return None
        return paired_nested_ci(a, b)


def shifted(ci: NestedCI, by: float) -> NestedCI:
    """``ci`` minus a constant (e.g. a claimed factor's log10)."""
    return dataclasses.replace(ci, mean=ci.mean - by, low=ci.low - by, high=ci.high - by)


def equivalence(ci: Any, margin: float) -> Verdict:
    """``holds`` if the interval lies inside ``[-margin, margin]``, ``opposite`` if it lies
    wholly outside, else ``inconclusive``."""
    if -margin < ci.low and ci.high < margin:
        return "holds"
    if ci.low > margin or ci.high < -margin:
        return "opposite"
    return "inconclusive"


def _span(ci: NestedCI) -> str:
    return (f"{ci.models} models" if ci.models >= 2 else "1 model, no model variance")


def _ratio_text(ci: NestedCI) -> str:
    return (f"{10 ** ci.mean:.3g}x [{10 ** ci.low:.3g}, {10 ** ci.high:.3g}] "
            f"({_span(ci)})")


def _tolerance(ev: Evidence) -> list[Claim]:
    main = ev.config.main_variant
    ci = ev.log_ratio_ci(main, "baseline")
    per = ev.tolerance("baseline"), ev.tolerance(main)
    cens = sorted({b.censored for t in per for b in t.values() if b.censored})
    note = f"; censored {', '.join(cens)} (a bound)" if cens else ""
    tb, th = ev.tolerance_ci("baseline"), ev.tolerance_ci(main)
    ours = (f"tolerance ratio {_ratio_text(ci)}: baseline {fmt_ber(10 ** tb.mean)}, "
            f"hardened {fmt_ber(10 ** th.mean)}{note}")
    return [Claim.from_ci(f"{ev.config.ratio:.0%}-hardened model tolerates a higher BER than "
                          "the baseline (< 5 pt drop)", "Sec. V, Fig. 6", ours, ci),
            Claim.from_ci(f"{ev.config.ratio:.0%}-hardened model tolerates at least 10x the "
                          "baseline's BER (orders of magnitude)", "Sec. V",
                          f"log10 ratio - 1: {fmt_ci(shifted(ci, 1.0))}", shifted(ci, 1.0))]


def _pruning(ev: Evidence) -> list[Claim]:
    claims = []
    for r in ev.config.prune_ratios:
        ci = ev.pruning_ci(r)
        if ci is None:
            continue
        before = ev.pruning_ci(r, "accuracy_pruned")
        extra = f"; before fine-tuning {fmt_ci(before)} pt" if before is not None else ""
        claims.append(Claim.from_ci(
            f"vulnerability pruning beats L1 pruning at {r:.0%} (fine-tuned accuracy)",
            "Fig. 5", f"{fmt_ci(ci)} pt ({ci.models} models x "
            f"{ci.trials // max(ci.models, 1)} fine-tuning seeds, paired){extra}", ci))
    return claims


def _pruned_resilience(ev: Evidence) -> Claim:
    ci = ev.log_ratio_ci("hardened-pruned", ev.config.main_variant)
    return Claim.from_ci("hardened-pruned tolerates a higher BER than hardened", "Fig. 6",
                         f"tolerance ratio {_ratio_text(ci)}", ci)


def _costs(ev: Evidence) -> list[Claim]:
    main = ev.config.main_variant
    t = ev.cost_ratio_ci("hardened-pruned", main, "seconds")
    p = ev.cost_ratio_ci("hardened-pruned", main, "parameters")
    m = ev.cost_ratio_ci("hardened-pruned", main, "macs")
    tmr = ev.cost_ratio_ci("tmr-1", main, "seconds")
    return [
        Claim.from_ci("hardened-pruned runs faster than hardened", "Fig. 7 (up to 24 %)",
                      f"time {fmt_ci(t, digits=1)} %; parameters {fmt_ci(p, digits=1)} %, "
                      f"MACs {fmt_ci(m, digits=1)} % ({_span(t)})", t, expected_sign=-1),
        Claim.from_ci("hardened-pruned has fewer parameters than hardened", "Table II",
                      f"{fmt_ci(p, digits=1)} %", p, expected_sign=-1),
        Claim.from_ci("triplication + voter runs slower than 15 % duplication + EDAC",
                      "Fig. 7", f"tmr-1 vs {main}: time {fmt_ci(tmr, digits=1)} %", tmr)]


def _duplication(ev: Evidence) -> Claim | None:
    cfg = ev.config
    if cfg.ratio == 0 or 0.0 not in cfg.fig4_ratios or cfg.ratio not in cfg.fig4_ratios:
        return None
    a = ev.drops(ev.fig4_rows, "hardened-0", ev.fig4_ber)
    b = ev.drops(ev.fig4_rows, cfg.main_variant, ev.fig4_ber)
    if any(not g for g in a + b):
        return None
    ci = paired_nested_ci(a, b)
    return Claim.from_ci(f"{cfg.ratio:.0%} duplication lowers the drop of 0 % (detection "
                         "intervals only)", "Fig. 4",
                         f"BER {fmt_ber(ev.fig4_ber)}: drop(0 %) - drop({cfg.ratio:.0%}) "
                         f"{fmt_ci(ci)} pt", ci)


def _tmr(ev: Evidence) -> Claim | None:
    if ev.fig3_ber is None or not ev.fig3_rows or 1.0 not in ev.config.fig3_ratios:
        return None
    a = ev.drops(ev.fig3_rows, "dup-noint-1", ev.fig3_ber)
    b = ev.drops(ev.fig3_rows, "tmr-1", ev.fig3_ber)
    if any(not g for g in a + b):
        return None
    ci = paired_nested_ci(a, b)
    mem = ev.cost_ratio_ci("dup-noint-1", "baseline", "memory_bytes")
    mem_t = ev.cost_ratio_ci("tmr-1", "baseline", "memory_bytes")
    return Claim(f"full duplication + EDAC as resilient as TMR (drops within "
                 f"{EQUIVALENCE_PT:g} pt)", "Fig. 3",
                 f"BER {fmt_ber(ev.fig3_ber)}: drop difference {fmt_ci(ci)} pt; memory "
                 f"+{mem.mean:.0f} % vs +{mem_t.mean:.0f} %",
                 equivalence(ci, EQUIVALENCE_PT), ci.mean, ci.low, ci.high, ci.models,
                 ci.trials)


def _exact(ev: Evidence) -> Claim:
    base = {r["train_seed"]: r["accuracy"] for r in ev.costs if r["variant"] == "baseline"}
    pruned = {r["train_seed"]: r["accuracy"] for r in ev.costs if r["variant"] == "pruned"}
    differ = sorted({r["variant"] for r in ev.costs
                     if r["variant"] not in ("pruned", "hardened-pruned")
                     and r["accuracy"] != base[r["train_seed"]]}
                    | {"hardened-pruned" for r in ev.costs if r["variant"] == "hardened-pruned"
                       and r["accuracy"] != pruned[r["train_seed"]]})
    verdict: Verdict = "holds" if not differ else "opposite"
    return Claim("hardened models keep the fault-free accuracy exactly", "Sec. III",
                 f"all equal on {len(base)} models" if not differ
                 else "differs: " + ", ".join(differ), verdict)


def _ranking(ev: Evidence) -> list[Claim]:
    claims = []
    for kind in ("noise", "bitflip"):
        per_model = []
        for s in ev.seeds:
            rhos = [r["spearman"] for r in ev.rank_summary if r["kind"] == kind
                    and r["train_seed"] == s and r["layer"] != "all"
                    and not math.isnan(r["spearman"])]
            if rhos:
                per_model.append(sum(rhos) / len(rhos))
        if len(per_model) == len(ev.seeds):
            ci = nested_ci([[v] for v in per_model])
            claims.append(Claim.from_ci(
                f"Eq. (1) ranks channels like {kind} fault injection (Spearman > 0)",
                "Sec. III-A", f"mean per-layer Spearman {fmt_ci(ci)}", ci))
    return claims


def check_claims(ev: Evidence) -> list[Claim]:
    """Every claim the measurements can speak to, in report order."""
    found = [*_tolerance(ev), *_pruning(ev), _pruned_resilience(ev), *_costs(ev),
             _duplication(ev), _tmr(ev), _exact(ev), *_ranking(ev)]
    return [c for c in found if c is not None]


