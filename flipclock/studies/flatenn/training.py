"""Steps 1-3 of the study: the four models and the sweeps that chose them.

1. **Standard model**: 4-bit QAT, conventional SGD, ``epochs`` epochs.
2. **AS model, matched** (:func:`match_alpha`): the L1 activation regularizer for every
   ``alpha``; among those within ``match_tolerance`` of the standard model's fault-free
   accuracy, the sparsest; then the tolerance edge is refined by bisection. When none is
   within the tolerance, the closest is taken and the report says so. This is how the
   paper's "standard and AS within 0.5 %" is met: by choosing the regularizer strength, not
   by changing the standard model.
3. **SAQ models**: for standard and AS (same ``alpha``) every ``rho`` is trained for
   ``epochs // 2`` epochs (the same cost as conventional training); the ``rho`` with the
   highest fault-free accuracy is kept (the paper's rule). Steps 2 and 3 select on the test
   set, as the paper does.

Every model comes from the checkpoint cache when it was trained before.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnmap.data import DataSplits
from nnmap.saq import FlatTrainConfig, FlatTrainResult, train_flat
from nnmap.sparsity import measure_sparsity

from .config import FlatStudyConfig

__all__ = ["Fit", "TrainedModels", "match_alpha", "train_all"]

Fit = Callable[[FlatTrainConfig], tuple[Any, float, float]]
"""Train (or load) one config: ``(result, fault-free accuracy, mean sparsity %)``."""


@dataclass
class TrainedModels:
    """The four models, how they were chosen, and the SAQ models of the other radii."""

    models: dict[str, FlatTrainResult]
    selection: dict[str, Any]
    others: dict[str, FlatTrainResult]


def train_all(cfg: FlatStudyConfig, data: DataSplits, cache: str | os.PathLike[str] | None,
              progress: bool) -> TrainedModels:
    """Steps 1-3 (see the module docstring)."""
    def fit(tc: FlatTrainConfig) -> tuple[FlatTrainResult, float, float]:
        res = train_flat(tc, data, cache=cache, progress=progress)
        acc, sp = measure_sparsity(res.net, data.test, batch_size=cfg.eval_batch)
        return res, acc, sp.mean

    std, std_acc, _ = fit(cfg.train_config())
    chosen_alpha, as_res, matched, alpha_rows = match_alpha(cfg, fit, std_acc)
    rho_rows = []
    saq: dict[str, tuple[float, float, FlatTrainResult]] = {}
    sweep: dict[str, FlatTrainResult] = {}
    for label, alpha in (("standard+SAQ", 0.0), ("AS+SAQ", chosen_alpha)):
        for rho in cfg.rhos:
            res, acc, sp = fit(cfg.train_config(alpha=alpha, method="saq", rho=rho))
            rho_rows.append({"model": label, "rho": rho, "accuracy": acc, "sparsity": sp,
                             "key": res.key})
            sweep[f"{label} rho={rho:g}"] = res
            if label not in saq or acc > saq[label][1]:
                saq[label] = (rho, acc, res)
    models = {"standard": std, "AS": as_res, "standard+SAQ": saq["standard+SAQ"][2],
              "AS+SAQ": saq["AS+SAQ"][2]}
    selection = {"alpha": chosen_alpha, "matched": matched,
                 "alpha_sweep": alpha_rows, "rho_sweep": rho_rows,
                 "rho": {k: v[0] for k, v in saq.items()}}
    chosen = {f"{k} rho={v[0]:g}" for k, v in saq.items()}
    return TrainedModels(models, selection,
                         {k: v for k, v in sweep.items() if k not in chosen})


def match_alpha(cfg: FlatStudyConfig, fit: Fit, std_acc: float
                ) -> tuple[float, Any, bool, list[dict[str, Any]]]:
    """Step 2: the sparsest alpha within the tolerance (grid, then bisection of the edge).

    After the grid, ``match_refine`` extra alphas are tried, each halfway (geometrically; from
    0 arithmetically) between the largest matched alpha and the smallest unmatched one above
    it, so the edge of the tolerance is found to a resolution the grid alone does not give.
    Returns ``(alpha, result, matched, rows)``; when nothing matches, the closest alpha.
    """
    rows: list[dict[str, Any]] = []
    results: dict[float, Any] = {}

    def trial(alpha: float) -> None:
        res, acc, sp = fit(cfg.train_config(alpha=alpha))
        gap = acc - std_acc
        rows.append({"alpha": alpha, "accuracy": acc, "sparsity": sp, "gap": gap,
                     "matched": abs(gap) <= cfg.match_tolerance + 1e-12, "key": res.key})
        results[alpha] = res

    for alpha in cfg.alphas:
        trial(alpha)
    for _ in range(cfg.match_refine):
        ok = [r["alpha"] for r in rows if r["matched"]]
        lo = max(ok, default=0.0)
        above = [r["alpha"] for r in rows if not r["matched"] and r["alpha"] > lo]
        if not above:
            break
        hi = min(above)
        alpha = float(f"{(math.sqrt(lo * hi) if lo > 0 else hi / 2):.3g}")
        if alpha in results or alpha <= lo or alpha >= hi:
            break
        trial(alpha)
    rows.sort(key=lambda r: r["alpha"])
    matched = [r for r in rows if r["matched"]]
    best = (max(matched, key=lambda r: r["sparsity"]) if matched
            else min(rows, key=lambda r: abs(r["gap"])))
    return best["alpha"], results[best["alpha"]], bool(matched), rows
