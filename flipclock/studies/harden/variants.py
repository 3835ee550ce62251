"""The hardened variants of a trained network (:mod:`nnmap.harden`), saved for the campaigns.

* ``intervals-only`` -- EDAC layers, no duplication;
* ``hardened-R`` -- duplication + EDAC of ratio ``R`` (the main ratio and the Fig. 4 sweep);
* ``tmr-R`` -- triplication + voter (Fig. 3, and ``tmr-1``: every channel);
* ``dup-noint-R`` -- duplication + EDAC without detection intervals (Fig. 3);
* ``baseline-int8`` / ``hardened-int8`` -- INT8 storage (batch norm folded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from nnmap.bitflip import Int8Image
from nnmap.harden import HardenConfig, harden, profile_intervals

from .config import variant_name
from .workspace import Workspace

__all__ = ["build_hardened", "build_hardened_pruned"]

Intervals = Mapping[str, tuple[torch.Tensor, torch.Tensor]]


def build_hardened(ws: Workspace, base: nn.Module, train: Any, intervals: Intervals,
                   vuln: Mapping[str, torch.Tensor]) -> None:
    """Build and save every hardened variant of ``base`` the campaigns need."""
    cfg = ws.config
    d = cfg.disagree
    ws.save("intervals-only", harden(base, intervals, replace(HardenConfig.intervals_only(),
                                                              disagree=d)))
    for r in sorted({cfg.ratio, *cfg.fig4_ratios}):
        ws.save(variant_name("hardened", r),
                harden(base, intervals, HardenConfig(ratio=r, disagree=d), vuln))
    for r in sorted({*cfg.fig3_ratios, 1.0}):
        ws.save(variant_name("tmr", r), harden(base, intervals, HardenConfig.tmr(r), vuln))
    for r in cfg.fig3_ratios:
        ws.save(variant_name("dup-noint", r), harden(base, intervals, HardenConfig(
            ratio=r, intervals=False, disagree=d), vuln))
    # INT8 storage: fold BN, put every tensor on its int8 grid, then harden that model.
    base8 = Int8Image.prepare(base)
    ws.save("baseline-int8", base8)
    h8 = harden(base8, profile_intervals(base8, train), HardenConfig(ratio=cfg.ratio,
                                                                     disagree=d), vuln)
    Int8Image(h8, prepared=True)  # bounds rounded outward onto their int8 grid, in place
    ws.save("hardened-int8", h8)


def build_hardened_pruned(ws: Workspace, pruned: nn.Module, train: Any) -> None:
    """Save the pruned model and its hardened form (its own Eq. (1) and intervals)."""
    from nnmap.vulnerability import estimate_vulnerability

    cfg = ws.config
    vuln = estimate_vulnerability(pruned, train, cfg.vulnerability(), progress=ws.progress)
    intervals = profile_intervals(pruned, train, progress=ws.progress)
    ws.save("pruned", pruned)
    ws.save("hardened-pruned", harden(pruned, intervals, HardenConfig(
        ratio=cfg.ratio, disagree=cfg.disagree), vuln))
