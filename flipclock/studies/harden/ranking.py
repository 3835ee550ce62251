"""Eq. (1) validated by fault injection into each channel's weights (campaign ``rank``).

Two fault models per channel: Gaussian weight noise (the perturbation Eq. (1) is the
first-order bound of) and single float32 bit flips, stratified over the 32 bit positions.
The Spearman rank correlation of Eq. (1) with the measured top-1 mismatch, per layer and
pooled, says how well the cheap estimate orders the channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn

from nnmap.harden import layer_sites
from nnmap.vulnerability import spearman, to_rows
from sim.atomic import atomic_frame

from .trials import channel_trial
from .workspace import Workspace

__all__ = ["validate_ranking"]

KINDS = ("noise", "bitflip")


def _trials(ws: Workspace, base: nn.Module) -> list[dict[str, Any]]:
    cfg = ws.config
    params = ws.base_params(cfg.rank_samples)
    trials = []
    for site in layer_sites(base):
        if cfg.rank_scope == "conv" and site.kind != "conv":
            continue
        weight = base.get_submodule(site.name).weight
        assert isinstance(weight, torch.Tensor)
        sigma = cfg.rank_noise * float(weight.detach().std())
        for c in range(site.out_channels):
            for kind in KINDS:
                trial = {**params, "file": ws.files["baseline"], "layer": site.name,
                         "channel": c, "kind": kind, "trial": 0}
                if kind == "noise":
                    trial.update(draws=cfg.rank_noise_trials, sigma=sigma)
                trials.append(trial)
    return trials


def _correlations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    summary = []
    for kind in KINDS:
        for layer in [*layers, "all"]:
            sel = [r for r in rows if r["kind"] == kind and layer in (r["layer"], "all")]
            if len(sel) < 3:  # a rank correlation of fewer points says nothing
                continue
            rho = spearman([r["vulnerability"] for r in sel], [r["mismatch"] for r in sel])
            summary.append({"kind": kind, "layer": layer, "channels": len(sel),
                            "spearman": rho})
    return summary


def validate_ranking(ws: Workspace, base: nn.Module, vuln: Mapping[str, torch.Tensor]
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the ``rank`` campaign; return per-channel rows and per-layer correlations (also
    written to ``vulnerability.csv``, ``rank_validation.csv``, ``rank_correlation.csv``)."""
    records = ws.campaign("rank", _trials(ws, base), channel_trial, ["baseline"])
    rows = [{"layer": r["params"]["layer"], "channel": r["params"]["channel"],
             "kind": r["params"]["kind"], "mismatch": r["result"]["mismatch"],
             "vulnerability": float(vuln[r["params"]["layer"]][r["params"]["channel"]])}
            for r in records]
    summary = _correlations(rows)
    atomic_frame(pd.DataFrame(to_rows(vuln)), ws.out / "vulnerability.csv")
    atomic_frame(pd.DataFrame(rows), ws.out / "rank_validation.csv")
    atomic_frame(pd.DataFrame(summary), ws.out / "rank_correlation.csv")
    return rows, summary
