"""Training: the variants, their replicates, and the choice of alpha and rho on validation.

Variants (each trained ``models`` times, training seeds ``seed + m``; all on the training
split, see :mod:`.config`):

* **paper-faithful** (the headline): ``standard`` (4-bit QAT, conventional SGD, ``E``
  epochs), ``AS`` (the same with the L1 activation regularizer, alpha chosen below),
  ``standard+SAQ`` and ``AS+SAQ`` (SAQ, ``E // 2`` epochs: the paper's equal-cost rule; rho
  chosen below);
* **equal-epoch control**: ``standard (E/2)`` and ``AS (E/2)``, conventional training for
  the same ``E // 2`` epochs as the SAQ models (same passes over the data, same schedule;
  half the gradient evaluations of SAQ). SAQ minus these isolates SAQ from the shorter
  training;
* **warm-start control**: ``standard+FT`` / ``standard+SAQ FT`` (and the same for AS): the
  trained conventional model of the same replicate fine-tuned ``finetune_epochs`` epochs at
  ``finetune_lr``, conventionally / with SAQ (the chosen rho). Their difference is SAQ's
  effect at equal epochs from the same starting point.

Choices (on the validation split, replicate 0 only; the chosen grid models are replicate 0
of their variant):

1. **alpha** (:func:`match_alpha`): among the grid alphas whose AS model's validation
   accuracy is within ``match_tolerance`` of the standard model's, the sparsest (4-bit
   zeros); then ``match_refine`` bisection steps of the tolerance edge; when none is within
   the tolerance, the closest (the report says so).
2. **rho** (:func:`choose_rho`), for standard+SAQ and AS+SAQ separately: the grid value with
   the highest validation accuracy (the paper's rule: best fault-free accuracy) among the
   values that **train**: validation accuracy at least halfway from chance to the standard
   model's. A value that does not train is dropped (listed in the report); when none
   trains, the best is taken and the report says in bold that SAQ did not train.

Every model comes from the checkpoint cache when it was trained before.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nnmap.saq import FlatTrainConfig, FlatTrainResult, train_flat
from nnmap.sparsity import measure_sparsity

from .config import FlatStudyConfig
from .pool import StudyPool, worker_state

__all__ = ["CONTROLS", "PAPER_VARIANTS", "Fit", "TrainedModels", "choose_rho", "match_alpha",
           "train_all", "variant_labels"]

PAPER_VARIANTS = ("standard", "AS", "standard+SAQ", "AS+SAQ")
"""The paper-faithful variants (the headline), in plotting order."""

CONTROLS = ("standard (E/2)", "AS (E/2)", "standard+FT", "standard+SAQ FT", "AS+FT",
            "AS+SAQ FT")
"""The SAQ controls: equal epochs, then warm start (conventional vs SAQ fine-tuning)."""

Fit = Callable[[FlatTrainConfig], tuple[Any, float, float]]
"""Train (or load) one config: ``(result with .key, validation accuracy, sparsity %)``."""


def variant_labels(cfg: FlatStudyConfig) -> tuple[str, ...]:
    """The variants a study trains."""
    return PAPER_VARIANTS + (CONTROLS if cfg.controls else ())


@dataclass
class TrainedModels:
    """Per variant, the trained replicates (index ``m``), and how alpha and rho were chosen."""

    models: dict[str, list[FlatTrainResult]]
    selection: dict[str, Any]


def _train_job(tc_json: str, cache: str | None) -> dict[str, Any]:
    """Worker job: train (or load) one config, measure it on the validation split."""
    state = worker_state()
    split = state["split"]
    tc = FlatTrainConfig.from_json(tc_json)
    res = train_flat(tc, split, cache=cache, progress=False)
    acc, sp = measure_sparsity(res.net, split.test, batch_size=state["config"].eval_batch)
    return {"key": res.key, "accuracy": acc, "sparsity": sp.mean,
            "float_sparsity": sp.float_mean}


class _Trainer:
    """Trains configs in the pool and remembers their validation figures."""

    def __init__(self, pool: StudyPool, cache: str | None) -> None:
        self.pool, self.cache = pool, cache
        self.done: dict[str, dict[str, Any]] = {}

    def run(self, configs: Sequence[FlatTrainConfig]) -> None:
        todo = list(dict.fromkeys(c.to_json() for c in configs if c.to_json() not in self.done))
        # Longest jobs first, so the workers finish together.
        todo.sort(key=lambda j: -_cost(FlatTrainConfig.from_json(j)))
        for job, res in zip(todo, self.pool.map(_train_job, [(j, self.cache) for j in todo]),
                            strict=True):
            self.done[job] = res

    def get(self, config: FlatTrainConfig) -> dict[str, Any]:
        self.run([config])
        return self.done[config.to_json()]


def _cost(tc: FlatTrainConfig) -> float:
    return tc.epochs * (2.3 if tc.method == "saq" else 1.0)


class _Key:
    def __init__(self, key: str) -> None:
        self.key = key


def train_all(cfg: FlatStudyConfig, pool: StudyPool, cache: str | os.PathLike[str] | None,
              progress: bool = False) -> TrainedModels:
    """Train every variant and replicate (see the module docstring) in three waves of
    independent jobs; return them loaded from the cache."""
    cache_s = None if cache is None else str(cache)
    tr = _Trainer(pool, cache_s)
    seeds = cfg.train_seeds
    half = cfg.saq_epochs
    std = [cfg.train_config(seed=s) for s in seeds]
    wave1 = [*std, *(cfg.train_config(alpha=a) for a in cfg.alphas),
             *(cfg.train_config(method="saq", rho=r) for r in cfg.rhos)]
    if cfg.controls:
        wave1 += [cfg.train_config(seed=s, epochs=half) for s in seeds]
    tr.run(wave1)
    std_acc = tr.get(std[0])["accuracy"]

    def fit(tc: FlatTrainConfig) -> tuple[_Key, float, float]:
        r = tr.get(tc)
        return _Key(r["key"]), r["accuracy"], r["sparsity"]

    alpha, _, matched, alpha_rows = match_alpha(cfg, fit, std_acc)
    chance = 1.0 / _classes(pool)
    rho_std, std_rows = choose_rho(cfg, 0.0, tr.get, std_acc, chance)
    as_ = [cfg.train_config(alpha=alpha, seed=s) for s in seeds]
    std_saq = [cfg.train_config(method="saq", rho=rho_std, seed=s) for s in seeds]
    wave2 = [*as_, *std_saq, *(cfg.train_config(alpha=alpha, method="saq", rho=r)
                               for r in cfg.rhos)]
    if cfg.controls:
        wave2 += [cfg.train_config(alpha=alpha, seed=s, epochs=half) for s in seeds]
        wave2 += _finetunes(cfg, std, tr, 0.0, rho_std)
    tr.run(wave2)
    rho_as, as_rows = choose_rho(cfg, alpha, tr.get, std_acc, chance)
    as_saq = [cfg.train_config(alpha=alpha, method="saq", rho=rho_as, seed=s) for s in seeds]
    wave3 = list(as_saq)
    if cfg.controls:
        wave3 += _finetunes(cfg, as_, tr, alpha, rho_as)
    tr.run(wave3)

    plan: dict[str, list[FlatTrainConfig]] = {"standard": std, "AS": as_,
                                              "standard+SAQ": std_saq, "AS+SAQ": as_saq}
    if cfg.controls:
        plan["standard (E/2)"] = [cfg.train_config(seed=s, epochs=half) for s in seeds]
        plan["AS (E/2)"] = [cfg.train_config(alpha=alpha, seed=s, epochs=half) for s in seeds]
        for base, a, r, confs in (("standard", 0.0, rho_std, std), ("AS", alpha, rho_as, as_)):
            ft = _finetunes(cfg, confs, tr, a, r)
            plan[f"{base}+FT"] = ft[0::2]
            plan[f"{base}+SAQ FT"] = ft[1::2]
    split = worker_state()["split"]
    models = {label: [train_flat(tc, split, cache=cache, progress=progress) for tc in confs]
              for label, confs in plan.items()}
    selection = {"alpha": alpha, "matched": matched, "alpha_sweep": alpha_rows,
                 "rho": {"standard+SAQ": rho_std, "AS+SAQ": rho_as},
                 "rho_sweep": [{"model": "standard+SAQ", **r} for r in std_rows]
                 + [{"model": "AS+SAQ", **r} for r in as_rows],
                 "standard_val_accuracy": std_acc, "chance": chance,
                 "validation": {"images": cfg.val_size, "seed": cfg.split_seed}}
    return TrainedModels({k: models[k] for k in variant_labels(cfg)}, selection)


def _classes(pool: StudyPool) -> int:
    return len(worker_state()["split"].info.classes)


def _finetunes(cfg: FlatStudyConfig, bases: Sequence[FlatTrainConfig], tr: _Trainer,
               alpha: float, rho: float) -> list[FlatTrainConfig]:
    """Per replicate: conventional fine-tuning, then SAQ fine-tuning, from the base model."""
    out = []
    for base in bases:
        key = tr.get(base)["key"]
        for method in ("conventional", "saq"):
            out.append(cfg.train_config(alpha=alpha, method=method, rho=rho, seed=base.seed,
                                        epochs=cfg.finetune_epochs, lr=cfg.finetune_lr,
                                        init=key))
    return out


def choose_rho(cfg: FlatStudyConfig, alpha: float,
               measure: Callable[[FlatTrainConfig], dict[str, Any]], std_acc: float,
               chance: float) -> tuple[float, list[dict[str, Any]]]:
    """Step 2 (module docstring): ``(rho, rows)``; each row has ``rho``, ``accuracy``
    (validation), ``sparsity``, ``trains``, ``chosen``."""
    floor = chance + 0.5 * (std_acc - chance)
    rows = []
    for rho in cfg.rhos:
        r = measure(cfg.train_config(alpha=alpha, method="saq", rho=rho))
        rows.append({"rho": rho, "accuracy": r["accuracy"], "sparsity": r["sparsity"],
                     "trains": r["accuracy"] >= floor, "key": r["key"]})
    # When no radius trains (a tiny quick run), the best is taken and the report says so in
    # bold: the SAQ variants of such a run mean nothing.
    ok = [r for r in rows if r["trains"]] or rows
    best = max(ok, key=lambda r: r["accuracy"])
    for r in rows:
        r["chosen"] = r is best
    return float(best["rho"]), rows


def match_alpha(cfg: FlatStudyConfig, fit: Fit, std_acc: float
                ) -> tuple[float, Any, bool, list[dict[str, Any]]]:
    """Step 1: the sparsest alpha within the tolerance (grid, then bisection of the edge).

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
