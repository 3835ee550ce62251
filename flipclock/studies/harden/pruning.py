"""Fig. 5 (vulnerability vs L1 pruning at equal ratios, repeated over fine-tuning seeds) and
the Table II ratio search, for one trained model.

Fine-tuning runs on a seeded subset of the training set (``finetune_samples`` images; all
of them for ``0``): fine-tuning seed ``k`` picks the subset and the batch order, and both
criteria use the same ones, so their difference at one (model, seed) is paired.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nnmap.data import DataSplits
from nnmap.prune import PruneConfig, PruneResult, prune_and_finetune, search_ratios
from nnmap.train import TrainConfig
from sim.atomic import atomic_frame

from .workspace import Workspace

__all__ = ["compare_criteria", "finetune_data", "largest_ratios"]


def finetune_data(data: DataSplits, samples: int, seed: int) -> DataSplits:
    """``data`` with its training set cut to a seeded subset of ``samples`` images (``0`` or
    more than there are: all). The fingerprint names the subset, so fine-tuning caches of
    different subsets never mix."""
    x, y = data.train.tensors
    if samples <= 0 or samples >= len(x):
        return data
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:samples]
    idx = idx.sort().values
    tag = f"{data.info.fingerprint}:finetune-subset:{samples}:{seed}"
    info = dataclasses.replace(data.info, n_train=samples,
                               fingerprint=hashlib.sha256(tag.encode()).hexdigest())
    return DataSplits(TensorDataset(x[idx], y[idx]), data.test, info)


def compare_criteria(ws: Workspace, base: nn.Module, data: DataSplits, base_cfg: TrainConfig,
                     vuln: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Fig. 5: prune by each criterion at every ratio, fine-tune with every fine-tuning seed,
    measure on the whole test set (``fig5.csv`` in the model's work folder)."""
    cfg = ws.config
    rows = []
    for k in cfg.ft_seeds:
        ft_data = finetune_data(data, cfg.finetune_samples, k)
        for r in cfg.prune_ratios:
            for crit in ("vulnerability", "l1"):
                res = prune_and_finetune(base, ft_data, PruneConfig(crit, r, r, cfg.finetune(k)),
                                         base_cfg, scores=vuln, cache=ws.cache,
                                         progress=ws.progress)
                rows.append({"train_seed": ws.train_seed, "finetune_seed": k, "criterion": crit,
                             "ratio": r, "accuracy_pruned": res.accuracy_pruned,
                             "accuracy": res.accuracy,
                             "parameters": sum(int(p.numel()) for p in res.model.parameters()),
                             "cached": res.from_cache})
                ws.log(f"  Fig. 5 model {ws.train_seed} fine-tune seed {k}: {crit} {r:.0%}: "
                       f"{res.accuracy_pruned:.4f} -> {res.accuracy:.4f}")
    atomic_frame(pd.DataFrame(rows), ws.out / "fig5.csv")
    return rows


def largest_ratios(ws: Workspace, base: nn.Module, data: DataSplits, base_cfg: TrainConfig,
                   vuln: Mapping[str, torch.Tensor], base_acc: float
                   ) -> tuple[PruneResult, list[dict[str, Any]]]:
    """Table II: the largest ratios within the tolerance (first fine-tuning seed); the model
    and the search points (``table2_search.csv`` in the model's work folder)."""
    cfg = ws.config
    k = cfg.ft_seeds[0]
    chosen, points = search_ratios(base, finetune_data(data, cfg.finetune_samples, k), base_cfg,
                                   vuln, baseline_accuracy=base_acc,
                                   tolerance=cfg.prune_tolerance, grid=cfg.prune_grid,
                                   finetune_config=cfg.finetune(k), cache=ws.cache,
                                   progress=ws.progress, log=ws.log)
    points = [{"train_seed": ws.train_seed, **p} for p in points]
    atomic_frame(pd.DataFrame(points), ws.out / "table2_search.csv")
    return chosen, points
