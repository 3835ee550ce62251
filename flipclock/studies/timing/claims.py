"""Intervals over models x seeds, the pre-registered period rule, and the claims' verdicts.

Every accuracy is a :func:`nnmap.stats.nested_ci` over the trained models (outer) and the
injection seeds (inner): the interval is Student-t over the per-model means, so model-to-model
variance is in it. Differences between variants are :func:`nnmap.stats.paired_nested_ci`
of the runs that share the model and the injection seed index. (The seed is the same, but
two different networks draw their errors for different products, so the injection
randomness is not shared product by product; with two models or more the paired interval
equals the nested interval of the per-model differences of means, which keeps the model
variance.)

Period rule (:func:`choose_period`, fixed before any mitigation is looked at, and reading
N_TError only): among the headline periods (uniform previous inputs, the headline weight
port), the period whose TError drop ``N_baseline - N_TError`` at ``rule_regulation``
(1.5 sigma), averaged over models and seeds, is closest to ``target_drop`` (4.5 points,
between the paper's LeNet-5 drops of 3.82 and 5.14 points); a tie goes to the longer period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nnmap.stats import NestedCI, nested_ci, paired_nested_ci

from ..base import Claim
from .config import PAPER_DROPS, TimingStudyConfig

__all__ = ["Key", "add_port_gaps", "aggregate", "choose_period", "ci_text", "claims", "pct",
           "port_claims", "regulation_factor_of", "role_of", "rule_text"]

Key = tuple[str, str, str, int, str]
"""A row of the tables: ``(port, prev, design_prev, period, regulation)``."""

_STATS = ("mean", "low", "high")


def pct(v: float | None) -> str:
    """A fraction as a percentage with two decimals ('' for None/NaN)."""
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.2f}%"


def ci_text(row: Mapping[str, Any], key: str, *, signed: bool = False) -> str:
    """``mean ± half width`` of ``key``'s 95 % CI in percent ('' when not measured)."""
    if f"{key}_mean" not in row or row[f"{key}_mean"] is None:
        return ""
    m, lo, hi = row[f"{key}_mean"], row[f"{key}_low"], row[f"{key}_high"]
    sign = "+" if signed and m >= 0 else ""
    return f"{sign}{100 * m:.2f} ± {100 * (hi - lo) / 2:.2f}"


def _put(row: dict[str, Any], key: str, ci: NestedCI) -> None:
    row[f"{key}_mean"], row[f"{key}_low"], row[f"{key}_high"] = ci.mean, ci.low, ci.high
    row[f"{key}_models"], row[f"{key}_trials"] = ci.models, ci.trials


def role_of(port: str, prev: str, design_prev: str, head_port: str) -> str:
    """The label of a row: ``headline`` or which extra it is."""
    if port != head_port:
        return f"extra: weight on port {port}"
    if prev != "uniform":
        return (f"extra: dataflow {prev}" if design_prev == prev
                else f"extra: dataflow {prev}, mitigation designed for uniform prev")
    return "headline"


def _groups(trials: Sequence[Mapping[str, Any]], models: Sequence[int],
            metric: str = "accuracy") -> list[list[float]] | None:
    """Per model (in ``models`` order) the metric of its trials, sorted by trial index;
    None when a model has none."""
    by: dict[int, dict[int, float]] = {}
    for t in trials:
        by.setdefault(t["model"], {})[int(t["trial"])] = float(t[metric])
    if any(m not in by for m in models):
        return None
    return [[by[m][i] for i in sorted(by[m])] for m in models]


def _select(trials: Sequence[Mapping[str, Any]], **match: Any) -> list[Mapping[str, Any]]:
    return [t for t in trials if all(t.get(k) == v for k, v in match.items())]


def aggregate(trials: Sequence[Mapping[str, Any]], baselines: Mapping[tuple[int, str], float],
              config: TimingStudyConfig) -> list[dict[str, Any]]:
    """One row per ``(port, prev, design_prev, period, regulation)`` with every variant's
    nested CI, the drop, the paired gaps and the clean accuracies (see module docstring).

    ``N_TError`` of a row comes from the trials injecting the same tables on the same port
    (whatever the mitigation was designed with).
    """
    keys: dict[Key, list[Mapping[str, Any]]] = {}
    for t in trials:
        if t["regulation"] == "none":
            continue
        k = (t["port"], t["prev"], t["design_prev"], int(t["period"]), t["regulation"])
        keys.setdefault(k, []).append(t)
    order = {r: i for i, r in enumerate(config.regulations)}
    rows = []
    def rank(k: Key) -> tuple[Any, ...]:
        head = role_of(k[0], k[1], k[2], config.weight_port) == "headline"
        return (not head, k[0], k[1], k[2], k[3], order.get(k[4], 99))

    for k in sorted(keys, key=rank):
        port, prev, design_prev, period, reg = k
        own = keys[k]
        models = sorted({t["model"] for t in own})
        row: dict[str, Any] = {
            "role": role_of(port, prev, design_prev, config.weight_port), "weight_port": port,
            "prev": prev, "design_prev": design_prev, "period": period, "regulation": reg,
            "r": regulation_factor_of(reg), "scenario": own[0]["scenario"],
            "models": len(models)}
        base = [[baselines[(m, port)]] for m in models]
        _put(row, "N_baseline", nested_ci(base))
        te = _groups(_select(trials, port=port, prev=prev, period=period, regulation=reg,
                             variant="TError"), models)
        variants = list(dict.fromkeys(t["variant"] for t in own))
        if te is not None and "TError" not in variants:
            variants.insert(0, "TError")
        for v in variants:
            g = te if v == "TError" else _groups([t for t in own if t["variant"] == v], models)
            if g is None:
                continue
            _put(row, f"N_{v}", nested_ci(g))
            src = (_select(trials, port=port, prev=prev, period=period, regulation=reg,
                           variant="TError") if v == "TError"
                   else [t for t in own if t["variant"] == v])
            rates = [dict(t, rate=t["substitutions"] / max(t["products"], 1)) for t in src
                     if "products" in t]
            rg = _groups(rates, models, "rate") if rates else None
            if rg is not None:
                _put(row, f"wrong_rate_{v}", nested_ci(rg))
            clean = _groups(_select(trials, port=port, prev=prev, design_prev=design_prev,
                                    period=period, regulation="none", variant=v), models)
            if clean is not None:
                _put(row, f"clean_{v}", nested_ci(clean))
            if v != "TError" and te is not None and _same_shape(g, te):
                _put(row, f"gap_{v}", paired_nested_ci(g, te))
        if te is not None:
            _put(row, "drop", nested_ci([[b[0] - a for a in g] for b, g in zip(base, te,
                                                                                strict=True)]))
        wd, eaq = (_groups([t for t in own if t["variant"] == v], models)
                   for v in ("WD+EAQ", "EAQ"))
        if wd is not None and eaq is not None and _same_shape(wd, eaq):
            _put(row, "gap_WD+EAQ_vs_EAQ", paired_nested_ci(wd, eaq))
        if wd is not None and te is not None:
            drops = [b[0] - float(np.mean(g)) for b, g in zip(base, te, strict=True)]
            if all(d > 0 for d in drops):
                rec = [[(float(np.mean(w)) - float(np.mean(g))) / d]
                       for w, g, d in zip(wd, te, drops, strict=True)]
                _put(row, "recovered", nested_ci(rec))
        rows.append(row)
    return rows


def regulation_factor_of(reg: str) -> float:
    """The regulation factor of a regulation name (NaN for the clean runs)."""
    from nnmap.timing import regulation_factor

    return float("nan") if reg == "none" else regulation_factor(reg)


def _same_shape(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b, strict=True))


# --- the period rule ----------------------------------------------------------------------------
def rule_text(config: TimingStudyConfig) -> str:
    """The period rule in words (written into the report before any mitigation result)."""
    return (f"Among the headline periods (uniform Table III, uniform previous inputs, weight "
            f"on port {config.weight_port}), choose the period whose TError drop "
            f"(N_baseline - N_TError) at {config.rule_regulation}, averaged over the trained "
            f"models and injection seeds, is closest to {100 * config.target_drop:g} points "
            "(the paper's LeNet-5 drops at 1.5 sigma are "
            + " and ".join(f"{100 * v:.2f} ({k})" for k, v in PAPER_DROPS.items())
            + "); a tie goes to the longer period. The rule reads N_TError only, and is fixed "
            "in code (`claims.choose_period`) before any mitigation is run at that period.")


def choose_period(trials: Sequence[Mapping[str, Any]],
                  baselines: Mapping[tuple[int, str], float], config: TimingStudyConfig
                  ) -> tuple[int | None, dict[int, float]]:
    """The period the rule picks (see :func:`rule_text`) and the mean drop of every headline
    period at the rule's regulation. Only TError trials are read."""
    per: dict[int, dict[int, list[float]]] = {}
    for t in trials:
        if (t["variant"] == "TError" and t["port"] == config.weight_port
                and t["prev"] == "uniform" and t["regulation"] == config.rule_regulation):
            per.setdefault(int(t["period"]), {}).setdefault(t["model"], []).append(
                baselines[(t["model"], t["port"])] - float(t["accuracy"]))
    drops = {p: float(np.mean([np.mean(v) for v in by.values()])) for p, by in sorted(per.items())}
    if not drops:
        return None, drops
    best = min(drops, key=lambda p: (abs(drops[p] - config.target_drop), -p))
    return best, drops


# --- claims -------------------------------------------------------------------------------------
def _ci(row: Mapping[str, Any], key: str) -> NestedCI | None:
    if f"{key}_mean" not in row:
        return None
    return NestedCI(row[f"{key}_mean"], row[f"{key}_low"], row[f"{key}_high"],
                    row[f"{key}_models"], 0.95, row[f"{key}_models"], row[f"{key}_trials"],
                    float("nan"))


def claims(rows: Sequence[Mapping[str, Any]], chosen: int | None,
           config: TimingStudyConfig) -> list[Claim]:
    """The paper's claims at the chosen period (headline rows), one set per regulation, and
    the weight-port comparison."""
    if chosen is None:
        return []
    out: list[Claim] = []
    head = [r for r in rows if r["role"] == "headline" and r["period"] == chosen]
    for r in head:
        where = f"T{chosen}, {r['regulation']}"
        for key, statement, paper, text in (
                ("drop", f"timing errors cost accuracy ({where})", "N_TError < N_baseline",
                 f"drop {ci_text(r, 'drop')} points"),
                ("gap_EAQ", f"EAQ beats TError ({where})", "N_TError < N_EAQ",
                 f"N_EAQ - N_TError {ci_text(r, 'gap_EAQ', signed=True)} points"),
                ("gap_WD+EAQ_vs_EAQ", f"WD+EAQ beats EAQ ({where})", "N_EAQ < N_WD+EAQ",
                 f"N_WD+EAQ - N_EAQ {ci_text(r, 'gap_WD+EAQ_vs_EAQ', signed=True)} points")):
            ci = _ci(r, key)
            if ci is not None:
                out.append(Claim.from_ci(statement, paper, text, ci))
        if "N_WD+EAQ_mean" in r:
            out.append(_recovered_claim(r, where))
    out += port_claims(rows, chosen, config)
    return out


def _recovered_claim(r: Mapping[str, Any], where: str) -> Claim:
    """"WD+EAQ recovers most of the drop": the per-model ratios' interval minus 50 %; judged
    only where the drop itself is clear (its interval above 0) and spans two models or more
    (a ratio has no interval within one model)."""
    statement = f"WD+EAQ recovers most (> 50 %) of the drop ({where})"
    paper = "82-93 % at 1.5σ, 55-93 % at 2σ (Table V)"
    rec, drop = _ci(r, "recovered"), _ci(r, "drop")
    if drop is None or drop.low <= 0 or rec is None:
        return Claim(statement, paper, "no clear drop to recover", "inconclusive")
    text = f"{100 * rec.mean:.0f} % [{100 * rec.low:.0f}, {100 * rec.high:.0f}] %"
    if rec.models < 2:
        return Claim(statement, paper, f"{100 * rec.mean:.0f} % (one model: no interval)",
                     "inconclusive", rec.mean, None, None, rec.models, rec.trials)
    shifted = NestedCI(rec.mean - 0.5, rec.low - 0.5, rec.high - 0.5, rec.n, 0.95, rec.models,
                       rec.trials, rec.model_sd)
    c = Claim.from_ci(statement, paper, text, shifted)
    return Claim(c.statement, c.paper, c.ours, c.verdict, rec.mean, rec.low, rec.high,
                 rec.models, rec.trials)


def port_claims(rows: Sequence[Mapping[str, Any]], chosen: int,
                config: TimingStudyConfig) -> list[Claim]:
    """Weight on the headline port vs the other port at the chosen period: N_TError paired
    by model and seed (ours; the paper does not say which port holds the weight)."""
    head = {r["regulation"]: r for r in rows
            if r["role"] == "headline" and r["period"] == chosen}
    other = {r["regulation"]: r for r in rows
             if r["weight_port"] == config.other_port and r["prev"] == "uniform"
             and r["period"] == chosen}
    out = []
    for reg in head:
        o = other.get(reg)
        ci = None if o is None else _ci(o, "port_gap")
        if o is None or ci is None:
            continue
        out.append(Claim.from_ci(
            f"weight on port {config.weight_port} beats port {config.other_port} "
            f"(T{chosen}, {reg}, N_TError)", "not studied (no port stated)",
            f"N_TError port {config.weight_port} - port {config.other_port} "
            f"{ci_text(o, 'port_gap', signed=True)} points", ci))
    return out


def add_port_gaps(rows: list[dict[str, Any]], trials: Sequence[Mapping[str, Any]],
                  config: TimingStudyConfig) -> None:
    """On the other port's rows: ``port_gap`` = N_TError(headline port) - N_TError(other),
    paired by model and seed (in place)."""
    for r in rows:
        if r["weight_port"] != config.other_port or r["prev"] != "uniform":
            continue
        sel = dict(prev="uniform", period=r["period"], regulation=r["regulation"],
                   variant="TError")
        mine = _select(trials, port=r["weight_port"], **sel)
        models = sorted({t["model"] for t in mine})
        a = _groups(_select(trials, port=config.weight_port, **sel), models)
        b = _groups(mine, models)
        if a is not None and b is not None and _same_shape(a, b):
            _put(r, "port_gap", paired_nested_ci(a, b))
