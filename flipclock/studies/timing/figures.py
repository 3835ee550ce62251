"""The study's figure: accuracy of every network variant under timing errors."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.atomic import save_figure

__all__ = ["plot_accuracy"]


def plot_accuracy(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Bars of N_baseline, N_TError, N_WD+EAQ, N_EAQ (95 % CI): one panel per regulation,
    one group of bars per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    keys = [("N_TError", "N_TError"), ("N_WD+EAQ", "N_WD+EAQ"), ("N_EAQ", "N_EAQ"),
            ("N_WD+EAQ/uniform-acts", "N_WD+EAQ (uniform acts)"),
            ("N_EAQ/uniform-acts", "N_EAQ (uniform acts)")]
    keys = [k for k in keys if any(f"{k[0]}_mean" in r for r in rows)]
    regs = list(dict.fromkeys(r["regulation"] for r in rows))
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    fig, axes = plt.subplots(len(regs), 1, squeeze=False, sharex=True, dpi=120,
                             figsize=(max(6.4, 0.8 * len(scenarios) + 2), 2.8 * len(regs) + 1.2))
    width = 0.8 / (len(keys) + 1)
    xs = np.arange(len(scenarios))
    for ax, reg in zip(axes[:, 0], regs, strict=True):
        by = {r["scenario"]: r for r in rows if r["regulation"] == reg}

        def get(k: str, sc: str, by: Mapping[str, Mapping[str, Any]] = by) -> float:
            return 100 * float(by[sc].get(k, np.nan)) if sc in by else np.nan

        ax.bar(xs - 0.4 + width / 2, [get("N_baseline", sc) for sc in scenarios], width,
               label="N_baseline", color="grey")
        low = min([get("N_baseline", sc) for sc in scenarios])
        high = max([get("N_baseline", sc) for sc in scenarios])
        for j, (key, label) in enumerate(keys, start=1):
            m = np.array([get(f"{key}_mean", sc) for sc in scenarios])
            lo = np.array([get(f"{key}_low", sc) for sc in scenarios])
            hi = np.array([get(f"{key}_high", sc) for sc in scenarios])
            ax.bar(xs - 0.4 + width / 2 + j * width, m, width, label=label,
                   yerr=[np.nan_to_num(m - lo), np.nan_to_num(hi - m)], capsize=2)
            if np.isfinite(lo).any():
                low = min(low, float(np.nanmin(lo)))
                high = max(high, float(np.nanmax(hi)))
        ax.set_ylim(max(0.0, low - 5), min(100.0, high + 3))
        ax.set_ylabel(f"accuracy (%)\n{reg}")
        ax.grid(alpha=0.3, axis="y")
    axes[-1, 0].set_xticks(xs)
    axes[-1, 0].set_xticklabels([sc.replace(", designed for ", "\ndesigned for ")
                                 for sc in scenarios], fontsize=7, rotation=30, ha="right")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    top = 1 - 0.75 / fig.get_figheight()  # room for the title and the legend, in inches
    fig.suptitle("Accuracy under timing errors (mean, 95 % CI over seeds)",
                 y=1 - 0.08 / fig.get_figheight(), fontsize="medium", va="top")
    fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), fontsize="small",
               bbox_to_anchor=(0.5, 1 - 0.32 / fig.get_figheight()))
    fig.tight_layout(rect=(0, 0, 1, top))
    save_figure(fig, path)
    return path
