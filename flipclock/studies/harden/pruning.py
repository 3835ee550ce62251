"""Fig. 5 (vulnerability vs L1 pruning at equal ratios) and the Table II ratio search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn

from nnmap.data import DataSplits
from nnmap.prune import PruneConfig, PruneResult, prune_and_finetune, search_ratios
from nnmap.train import TrainConfig
from sim.atomic import atomic_frame

from .workspace import Workspace

__all__ = ["compare_criteria", "largest_ratios"]


def compare_criteria(ws: Workspace, base: nn.Module, data: DataSplits, base_cfg: TrainConfig,
                     vuln: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Fig. 5: prune by each criterion at every ratio, fine-tune, measure (``fig5.csv``)."""
    cfg = ws.config
    rows = []
    for r in cfg.prune_ratios:
        for crit in ("vulnerability", "l1"):
            res = prune_and_finetune(base, data, PruneConfig(crit, r, r, cfg.finetune()),
                                     base_cfg, scores=vuln, cache=ws.cache,
                                     progress=ws.progress)
            rows.append({"criterion": crit, "ratio": r, "accuracy_pruned": res.accuracy_pruned,
                         "accuracy": res.accuracy,
                         "parameters": sum(int(p.numel()) for p in res.model.parameters()),
                         "cached": res.from_cache})
            ws.log(f"  Fig. 5: {crit} {r:.0%}: {res.accuracy_pruned:.4f} -> "
                   f"{res.accuracy:.4f}")
    atomic_frame(pd.DataFrame(rows), ws.out / "fig5.csv")
    return rows


def largest_ratios(ws: Workspace, base: nn.Module, data: DataSplits, base_cfg: TrainConfig,
                   vuln: Mapping[str, torch.Tensor], base_acc: float
                   ) -> tuple[PruneResult, list[dict[str, Any]]]:
    """Table II: the largest ratios within the tolerance; the model and the search points
    (``table2_search.csv``)."""
    cfg = ws.config
    chosen, points = search_ratios(base, data, base_cfg, vuln, baseline_accuracy=base_acc,
                                   tolerance=cfg.prune_tolerance, grid=cfg.prune_grid,
                                   finetune_config=cfg.finetune(), cache=ws.cache,
                                   progress=ws.progress, log=ws.log)
    atomic_frame(pd.DataFrame(points), ws.out / "table2_search.csv")
    return chosen, points
