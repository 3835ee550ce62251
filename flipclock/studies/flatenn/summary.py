"""The study's numbers in one dict (``study.json``): accuracies, paired comparisons,
sparsity under faults, sharpness, claims. The report and the figures read only this and the
campaign summary table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from nnmap.data import DataSplits
from nnmap.landscape import correlation
from nnmap.sram_faults import WeightLayout

from .campaign import PAIRS
from .claims import PAPER, study_claims
from .config import LABELS, FlatStudyConfig

__all__ = ["row_at", "summarize_study"]


def row_at(df: Any, label: str, kind: str, rate: float) -> Any:
    """The campaign summary row of one model, kind and rate (rate 0: the fault-free row)."""
    if rate == 0:
        sel = df[(df.model == label) & (df.kind == "none")]
    else:
        sel = df[(df.model == label) & (df.kind == kind) & (np.isclose(df.rate, rate))]
    return sel.iloc[0] if len(sel) else None


def _pair(paired: Any, a: str, b: str, kind: str, rate: float) -> dict[str, float] | None:
    k = "none" if rate == 0 else kind
    sel = paired[(paired.a == a) & (paired.b == b) & (paired.kind == k)
                 & (np.isclose(paired.rate, rate))]
    if not len(sel):
        return None
    r = sel.iloc[0]
    return {"mean": 100 * float(r.diff_mean), "low": 100 * float(r.diff_low),
            "high": 100 * float(r.diff_high), "n": int(r.n)}


def _acc(df: Any, label: str, kind: str, rate: float) -> dict[str, float] | None:
    row = row_at(df, label, kind, rate)
    if row is None:
        return None
    return {"mean": float(row.accuracy_mean), "low": float(row.accuracy_low),
            "high": float(row.accuracy_high), "n": int(row.n),
            "sparsity": float(row.sparsity_mean)}


def _mean(d: Mapping[str, float] | None) -> float:
    return float("nan") if d is None else float(d["mean"])


def _index(coords: Sequence[float], value: float) -> int:
    return int(np.argmin(np.abs(np.asarray(coords) - value)))


def summarize_study(cfg: FlatStudyConfig, data: DataSplits, layout: WeightLayout,
                    fault_free: Mapping[str, Any], selection: Mapping[str, Any], df: Any,
                    paired: Any, land: Mapping[str, Any], bench: Mapping[str, float]
                    ) -> dict[str, Any]:
    """Everything the report says, as JSON-able data."""
    import torch

    top = cfg.max_rate
    rates = [0.0, *sorted(r for r in cfg.rates if r > 0)]
    comps = {f"{a} - {b}": {kind: {f"{r:g}": _pair(paired, a, b, kind, r) for r in rates}
                            for kind in cfg.kinds} for a, b in PAIRS}
    sparsity_faulty: dict[str, dict[str, float]] = {}
    for label in LABELS:
        sparsity_faulty[label] = {}
        for kind in cfg.kinds:
            row = row_at(df, label, kind, top)
            if row is not None:
                sparsity_faulty[label][kind] = float(row.sparsity_mean)
    accuracy = {label: {kind: {f"{r:g}": _acc(df, label, kind, r) for r in rates}
                        for kind in cfg.kinds} for label in LABELS}
    sharp = {k: v["sharpness"] for k, v in land["models"].items()}
    one = _index(land["coords_fault"], 1.0)
    fault_dir = {k: {kind: float(np.mean([c[one] - c[0] for c in curves]))
                     for kind, curves in v["fault_1d"].items()}
                 for k, v in land["models"].items()}
    drop = {label: float(np.mean([_mean(accuracy[label][kind]["0"])
                                  - _mean(accuracy[label][kind][f"{top:g}"])
                                  for kind in cfg.kinds])) for label in LABELS}
    corr = None
    if top > 0:
        corr = asdict(correlation([sharp[k]["mean"] for k in LABELS], [drop[k] for k in LABELS]))
    claims = study_claims(cfg, fault_free, comps, sharp)
    return {
        "config": cfg.to_dict(), "dataset": data.info.to_dict(), "layout": layout.to_dict(),
        "models": {k: {kk: vv for kk, vv in v.items() if kk != "history"} | {
            "epochs": len(v["history"])} for k, v in fault_free.items()},
        "selection": dict(selection), "accuracy": accuracy, "comparisons": comps,
        "sparsity_under_faults": sparsity_faulty, "sharpness": sharp,
        "fault_direction_loss_increase": fault_dir, "accuracy_drop_at_max_rate": drop,
        "sharpness_vs_drop_correlation": corr, "claims": [asdict(c) for c in claims],
        "benchmark": dict(bench), "paper": PAPER.get(cfg.model), "max_rate": top,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
