"""The study's numbers (``study.json`` and the CSV tables): nested CIs over trained models x
trials for every accuracy, paired nested CIs for every difference, the largest difference
over rates, sparsity, sharpness, claims. The report, the headline and the figures read only
this.

All accuracies and differences are in percent / percentage points. A CI dict has ``mean``,
``low``, ``high`` (95 %), ``models``, ``trials`` (in all) and ``model_sd`` (SD of the
per-model means; NaN with one model: then the interval has no model variance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from flipclock.studies.base import Claim, verdict
from nnmap.stats import NestedCI, nested_ci, paired_nested_ci

from .claims import (
    COMPARISONS,
    PAPER,
    SPARSITY_GAP,
    Comparison,
    ci_claim,
    equivalence,
    shifted_claim,
)
from .config import FlatStudyConfig
from .training import PAPER_VARIANTS, variant_labels

__all__ = ["Records", "ci_dict", "comparisons", "kinds_for", "summarize_study"]

Key = tuple[str, str, str, float]


def ci_dict(ci: NestedCI, scale: float = 100.0) -> dict[str, Any]:
    """A :class:`~nnmap.stats.NestedCI` as a JSON-able dict, scaled (fractions -> %)."""
    return {"mean": scale * ci.mean, "low": scale * ci.low, "high": scale * ci.high,
            "models": ci.models, "trials": ci.trials, "model_sd": scale * ci.model_sd}


class Records:
    """The campaign's trials, indexed ``(variant, unit, kind, rate) -> m -> trial -> result``
    (rate 0 is the fault-free trial, kind ``"none"``)."""

    def __init__(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.by: dict[Key, dict[int, dict[int, Mapping[str, Any]]]] = {}
        for rec in records:
            p = rec["params"]
            key = (p["variant"], p["unit"], p["kind"], float(p["rate"]))
            self.by.setdefault(key, {}).setdefault(int(p["model"]), {})[int(p["trial"])] = \
                rec["result"]

    def cell(self, variant: str, unit: str, kind: str, rate: float
             ) -> dict[int, dict[int, Mapping[str, Any]]] | None:
        """Per model, per trial: the results of one point (rate 0: the fault-free one)."""
        return self.by.get((variant, unit, "none", 0.0) if rate == 0 else
                           (variant, unit, kind, float(rate)))

    def groups(self, variant: str, unit: str, kind: str, rate: float,
               metric: str = "accuracy") -> list[list[float]] | None:
        """``metric`` per model (outer) and trial (inner), or None when not measured."""
        cell = self.cell(variant, unit, kind, rate)
        if not cell:
            return None
        return [[float(cell[m][t][metric]) for t in sorted(cell[m])] for m in sorted(cell)]

    def paired(self, a: str, b: str, unit: str, kind: str, rate: float) -> NestedCI | None:
        """Paired nested CI of accuracy ``a - b`` (same replicate and trial: same map)."""
        ca, cb = self.cell(a, unit, kind, rate), self.cell(b, unit, kind, rate)
        if not ca or not cb:
            return None
        ms = sorted(set(ca) & set(cb))
        ga = [[float(ca[m][t]["accuracy"]) for t in sorted(set(ca[m]) & set(cb[m]))]
              for m in ms]
        gb = [[float(cb[m][t]["accuracy"]) for t in sorted(set(ca[m]) & set(cb[m]))]
              for m in ms]
        if not ms or not all(ga):
            return None
        return paired_nested_ci(ga, gb)


def comparisons(cfg: FlatStudyConfig) -> list[Comparison]:
    """The comparisons this study can read (controls only when trained)."""
    return [c for c in COMPARISONS if cfg.controls or c.role == "paper"]


def kinds_for(cfg: FlatStudyConfig, comp: Comparison) -> list[str]:
    """The fault kinds a comparison is read on."""
    if comp.role != "paper":
        return list(cfg.control_kinds)
    return list(cfg.kinds) if comp.all_kinds else [k for k in ("flip",) if k in cfg.kinds]


def _rates(cfg: FlatStudyConfig) -> list[float]:
    return [0.0, *sorted(r for r in cfg.rates if r > 0)]


def _accuracy_rows(cfg: FlatStudyConfig, rec: Records) -> list[dict[str, Any]]:
    rows = []
    for label in variant_labels(cfg):
        kinds = cfg.kinds if label in PAPER_VARIANTS else cfg.control_kinds
        for unit in cfg.units:
            for kind in kinds:
                for rate in _rates(cfg):
                    g = rec.groups(label, unit, kind, rate)
                    if g is None:
                        continue
                    sp = rec.groups(label, unit, kind, rate, "sparsity") or [[np.nan]]
                    fsp = rec.groups(label, unit, kind, rate, "float_sparsity") or [[np.nan]]
                    rows.append({"variant": label, "unit": unit, "kind": kind, "rate": rate,
                                 **ci_dict(nested_ci(g)),
                                 "sparsity": float(np.mean([np.mean(x) for x in sp])),
                                 "float_sparsity": float(np.mean([np.mean(x) for x in fsp]))})
    return rows


def _paired_rows(cfg: FlatStudyConfig, rec: Records) -> list[dict[str, Any]]:
    rows = []
    for comp in comparisons(cfg):
        for unit in cfg.units:
            for kind in kinds_for(cfg, comp):
                for rate in _rates(cfg):
                    ci = rec.paired(comp.a, comp.b, unit, kind, rate)
                    if ci is None:
                        continue
                    d = ci_dict(ci)
                    rows.append({"a": comp.a, "b": comp.b, "role": comp.role, "unit": unit,
                                 "kind": kind, "rate": rate, **d,
                                 "verdict": verdict(d["low"], d["high"],
                                                    expected_sign=comp.sign)})
    return rows


def _max_rows(cfg: FlatStudyConfig, paired: Sequence[Mapping[str, Any]]
              ) -> list[dict[str, Any]]:
    """Per comparison, unit and kind: the rate where the mean lies furthest on the claimed
    side (the paper's "up to"), its CI and verdict, and how many nonzero rates hold."""
    rows = []
    for comp in comparisons(cfg):
        for unit in cfg.units:
            for kind in kinds_for(cfg, comp):
                sel = [r for r in paired if r["a"] == comp.a and r["b"] == comp.b
                       and r["unit"] == unit and r["kind"] == kind]
                if not sel:
                    continue
                best = max(sel, key=lambda r: comp.sign * r["mean"])
                faulty = [r for r in sel if r["rate"] > 0]
                rows.append({**best, "rate_of_max": best["rate"], "sign": comp.sign,
                             "name": comp.name,
                             "holds_at": sum(r["verdict"] == "holds" for r in faulty),
                             "opposite_at": sum(r["verdict"] == "opposite" for r in faulty),
                             "of_rates": len(faulty)})
    return rows


def _per_model(ff: Mapping[str, Sequence[Mapping[str, Any]]], label: str, key: str
               ) -> list[float]:
    return [float(x[key]) for x in ff[label]]


def _test_cis(cfg: FlatStudyConfig, ff: Mapping[str, Sequence[Mapping[str, Any]]]
              ) -> dict[str, dict[str, Any]]:
    out = {}
    for label in variant_labels(cfg):
        entry = {}
        for key, scale in (("accuracy", 100.0), ("sparsity", 1.0), ("float_sparsity", 1.0)):
            entry[key] = ci_dict(nested_ci([[v] for v in _per_model(ff, label, key)]), scale)
        layers = ff[label][0]["per_layer"]
        entry["per_layer"] = {k: float(np.mean([x["per_layer"][k] for x in ff[label]]))
                              for k in layers}
        entry["float_per_layer"] = {k: float(np.mean([x["float_per_layer"][k]
                                                      for x in ff[label]])) for k in layers}
        out[label] = entry
    return out


def _paired_models(ff: Mapping[str, Sequence[Mapping[str, Any]]], a: str, b: str, key: str,
                   scale: float) -> dict[str, Any]:
    return ci_dict(paired_nested_ci([[v] for v in _per_model(ff, a, key)],
                                    [[v] for v in _per_model(ff, b, key)]), scale)


def _sharpness(land: Mapping[str, Any] | None) -> dict[str, Any]:
    if not land:
        return {}
    out: dict[str, Any] = {}
    for label, per_model in land["sharpness"].items():
        groups = [list(s["increases"]) for s in per_model]
        out[label] = {**ci_dict(nested_ci(groups), 1.0),
                      "base_loss": float(np.mean([s["base_loss"] for s in per_model])),
                      "radius": per_model[0]["radius"]}
    return out


def _sharp_diff(land: Mapping[str, Any], a: str, b: str) -> dict[str, Any]:
    sa, sb = land["sharpness"][a], land["sharpness"][b]
    return ci_dict(paired_nested_ci([list(s["increases"]) for s in sa],
                                    [list(s["increases"]) for s in sb]), 1.0)


def _pct(rate: float) -> str:
    return f"{100 * rate:g} %"


UNIT_NAMES = {"bit": "per bit", "weight": "per weight"}


def study_claims(cfg: FlatStudyConfig, ff: Mapping[str, Sequence[Mapping[str, Any]]],
                 max_rows: Sequence[Mapping[str, Any]], land: Mapping[str, Any] | None
                 ) -> list[Claim]:
    """Every claim beside our figure and its verdict (see :mod:`.claims`)."""
    paper = PAPER.get(cfg.model, {})
    sp = _paired_models(ff, "AS", "standard", "sparsity", 1.0)
    out = [shifted_claim(
        "AS sparsity well above standard (4-bit zeros, fault-free)",
        f"AS - standard >= {SPARSITY_GAP:g} pts (paper {paper.get('sparsity_standard', '?')}"
        f" -> {paper.get('sparsity_as', '?')} %)", sp, SPARSITY_GAP)]
    acc = _paired_models(ff, "AS", "standard", "accuracy", 100.0)
    tol = 100 * cfg.match_tolerance
    out.append(equivalence("standard and AS matched fault-free (test set)",
                           f"|AS - standard| <= {tol:g} %", acc, tol))
    for a, b, pkey in (("standard+SAQ", "standard", "standard+SAQ - standard"),
                       ("AS+SAQ", "AS", "AS+SAQ - AS")):
        at0 = paper.get(pkey, {}).get("flip", (None, None))[0]
        out.append(ci_claim(f"SAQ improves fault-free accuracy ({b})",
                            "n/a" if at0 is None else f"{at0:+.2f} pts",
                            _paired_models(ff, a, b, "accuracy", 100.0)))
    for r in max_rows:
        comp_key = f"{r['a']} - {r['b']}"
        pr = paper.get(comp_key, {}).get(r["kind"]) if r["role"] == "paper" else None
        ptxt = ("n/a" if pr is None else
                f"up to {pr[1]:+.2f} pts" + (" (0-5 %)" if pr[0] is not None else " at 5 %"))
        out.append(ci_claim(
            f"{r['name']} ({r['kind']}, {UNIT_NAMES[r['unit']]}; largest at "
            f"{_pct(r['rate_of_max'])})", ptxt, r, sign=int(r["sign"])))
    if land:
        for name, a, b in (("AS converges to a sharper minimum", "AS", "standard"),
                           ("SAQ flattens standard", "standard", "standard+SAQ"),
                           ("SAQ flattens AS", "AS", "AS+SAQ")):
            out.append(ci_claim(f"{name} (S(r) {a} - {b})", "sharper / flatter (Fig. 3)",
                                _sharp_diff(land, a, b), unit=""))
    return out


def summarize_study(cfg: FlatStudyConfig, data_info: Mapping[str, Any],
                    layout: Mapping[str, Any], selection: Mapping[str, Any],
                    model_info: Mapping[str, Any],
                    ff: Mapping[str, Sequence[Mapping[str, Any]]],
                    records: Sequence[Mapping[str, Any]], land: Mapping[str, Any] | None
                    ) -> dict[str, Any]:
    """Everything the report says, as JSON-able data (``ff``: per variant, per replicate,
    fault-free test accuracy and sparsity; ``model_info``: configs and keys)."""
    import torch

    rec = Records(records)
    acc_rows = _accuracy_rows(cfg, rec)
    paired = _paired_rows(cfg, rec)
    max_rows = _max_rows(cfg, paired)
    claims = study_claims(cfg, ff, max_rows, land)
    return {
        "config": cfg.to_dict(), "dataset": dict(data_info), "layout": dict(layout),
        "selection": dict(selection), "variants": dict(model_info),
        "test": _test_cis(cfg, ff), "fault_free": {k: list(v) for k, v in ff.items()},
        "accuracy": acc_rows, "paired": paired, "max_gain": max_rows,
        "sharpness": _sharpness(land),
        "sharpness_differences": {f"{a} - {b}": _sharp_diff(land, a, b) for a, b in
                                  (("AS", "standard"), ("standard", "standard+SAQ"),
                                   ("AS", "AS+SAQ"))} if land else {},
        "claims": [asdict(c) for c in claims], "paper": PAPER.get(cfg.model),
        "max_rate": cfg.max_rate, "torch": torch.__version__,
        "trial_images": None, "fault_free_test_images": data_info.get("n_test"),
    }
