"""The paper's claims read off the Table V rows: the shape, the chosen period, verdicts.

Wu et al. claim ``N_TError < N_EAQ <= N_WD+EAQ <= N_baseline`` with weight distribution
recovering most of the drop. :func:`shape` judges a row on its means; :func:`claims` gives
the three-way verdicts of :func:`flipclock.studies.base.verdict` at the period that
:func:`chosen_period` picks by a rule that ignores the mitigations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..base import Claim, verdict

__all__ = ["ci_text", "chosen_period", "chosen_rows", "claims", "pct", "shape", "share_terror"]


def pct(v: float | None) -> str:
    """A fraction as a percentage with two decimals ('' for None/NaN)."""
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.2f}%"


def ci_text(row: Mapping[str, Any], key: str) -> str:
    """``mean ± half width`` of ``key``'s 95 % CI in percent ('' when not measured)."""
    if f"{key}_mean" not in row:
        return ""
    m, lo, hi = row[f"{key}_mean"], row[f"{key}_low"], row[f"{key}_high"]
    return f"{100 * m:.2f} ± {100 * (hi - lo) / 2:.2f}%"


def shape(row: Mapping[str, Any]) -> dict[str, Any]:
    """The paper's shape N_TError < N_EAQ <= N_WD+EAQ <= N_baseline on this row's means."""
    need = ("N_TError_mean", "N_EAQ_mean", "N_WD+EAQ_mean")
    if not all(k in row for k in need):
        return {}
    base, te = row["N_baseline"], row["N_TError_mean"]
    eaq, wd = row["N_EAQ_mean"], row["N_WD+EAQ_mean"]
    checks = {"TError<EAQ": te < eaq, "EAQ<=WD+EAQ": eaq <= wd, "WD+EAQ<=baseline": wd <= base}
    drop = base - te
    failed = [k for k, ok in checks.items() if not ok]
    return {"terror_clearly_below": row["N_TError_high"] < base,
            "shape_holds": not failed,
            "shape_detail": "" if not failed else f" (fails: {', '.join(failed)})",
            "recovered": (wd - te) / drop if drop > 0 else None}


def share_terror(rows: list[dict[str, Any]]) -> None:
    """Rows without their own N_TError (mitigation designed with other tables) take it from
    the scenario injecting the same tables at the same regulation (in place)."""
    own = {(r["period"], r["prev"], r["regulation"]): r for r in rows
           if "N_TError_mean" in r and r["design_prev"] == r["prev"]}
    for r in rows:
        src = own.get((r["period"], r["prev"], r["regulation"]))
        if "N_TError_mean" in r or src is None:
            continue
        for k in ("mean", "low", "high", "wrong_rate"):
            if f"N_TError_{k}" in src:
                r[f"N_TError_{k}"] = src[f"N_TError_{k}"]
        r["N_TError_from"] = src["scenario"]
        r.update(shape(r))


def _uniform_by_period(rows: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    per: dict[int, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["prev"] == "uniform" and r["design_prev"] == "uniform" and "N_TError_high" in r:
            per.setdefault(int(r["period"]), []).append(r)
    return per


def chosen_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[int | None, list[int]]:
    """The chosen period (None if none qualifies) and every qualifying period.

    Rule: among the scenarios with the paper's uniform previous inputs, the *longest* clock
    period at which N_TError is clearly below N_baseline (the upper end of its 95 % CI below
    the baseline) at every regulation -- the mildest shortening that visibly hurts.
    """
    per = _uniform_by_period(rows)
    ok = sorted(p for p, rs in per.items() if all(x["N_TError_high"] < x["N_baseline"]
                                                  for x in rs))
    return (max(ok) if ok else None), ok


def chosen_period(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: the period the shape is judged at, and the shape there."""
    per = _uniform_by_period(rows)
    best, ok = chosen_rows(rows)
    head = ["## Chosen period", "",
            "Rule (fixed before looking at the mitigations): the longest period whose N_TError "
            "is clearly below N_baseline (upper end of the 95 % CI below it) at every "
            "regulation."]
    if best is None:
        return "\n".join([*head, "", "No studied period qualifies: no clear accuracy drop.", ""])
    lines = []
    for r in per[best]:
        rec = r.get("recovered")
        lines.append(f"- T{best}, {r['regulation']}: N_TError {ci_text(r, 'N_TError')} < "
                     f"N_EAQ {ci_text(r, 'N_EAQ')} <= N_WD+EAQ {ci_text(r, 'N_WD+EAQ')} <= "
                     f"N_baseline {pct(r['N_baseline'])}: "
                     f"{'holds' if r.get('shape_holds') else 'does not hold'}"
                     f"{r.get('shape_detail', '')}; WD+EAQ recovers "
                     f"{'' if rec is None else f'{100 * rec:.0f} %'} of the drop.")
    others = sorted(set(per) - {best})
    return "\n".join([*head, "", f"Chosen: **T{best}** (qualifying: "
                      f"{', '.join(f'T{p}' for p in ok)}; other periods studied: "
                      f"{', '.join(f'T{p}' for p in others) or 'none'}).", "", *lines, ""])


def _gap(row: Mapping[str, Any], high: str, low: str) -> tuple[float, float]:
    """A conservative interval of ``high - low`` from the two variants' own CIs (no pairing:
    the runs of different networks share no randomness)."""
    return (row[f"{high}_low"] - row[f"{low}_high"], row[f"{high}_high"] - row[f"{low}_low"])


def claims(rows: Sequence[Mapping[str, Any]]) -> list[Claim]:
    """Verdicts of the paper's claims at the chosen period, one set per regulation."""
    best, _ = chosen_rows(rows)
    if best is None:
        return []
    out = []
    for r in _uniform_by_period(rows)[best]:
        where = f"T{best}, {r['regulation']}"
        base = r["N_baseline"]
        drop = (base - r["N_TError_high"], base - r["N_TError_low"])
        out.append(Claim(f"timing errors cost accuracy ({where})", "N_TError < N_baseline",
                         f"{ci_text(r, 'N_TError')} vs {pct(base)}", verdict(*drop)))
        for high, low in (("N_EAQ", "N_TError"), ("N_WD+EAQ", "N_EAQ")):
            if f"{high}_mean" in r and f"{low}_mean" in r:
                out.append(Claim(f"{high[2:]} beats {low[2:]} ({where})", f"{low} < {high}",
                                 f"{ci_text(r, high)} vs {ci_text(r, low)}",
                                 verdict(*_gap(r, high, low))))
    return out
