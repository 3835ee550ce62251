"""The study's figure: headline accuracy against the clock period, one panel per regulation."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.atomic import save_figure

__all__ = ["plot_accuracy"]

_CURVES = (("N_baseline", "N_baseline (no errors)", "grey"), ("N_TError", "N_TError", "C3"),
           ("N_EAQ", "N_EAQ", "C0"), ("N_WD+EAQ", "N_WD+EAQ", "C2"))


def plot_accuracy(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *,
                  chosen: int | None = None, quick: bool = False) -> Path:
    """Headline rows: mean and 95 % CI band (models x seeds) of each variant against the
    period; the chosen period marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    head = [r for r in rows if r["role"] == "headline"]
    regs = list(dict.fromkeys(r["regulation"] for r in head))
    fig, axes = plt.subplots(1, max(1, len(regs)), squeeze=False, sharey=True, dpi=120,
                             figsize=(4.2 * max(1, len(regs)) + 0.6, 3.6))
    for ax, reg in zip(axes[0], regs, strict=False):
        sel = sorted((r for r in head if r["regulation"] == reg), key=lambda r: r["period"])
        x = np.array([r["period"] for r in sel])
        for key, label, color in _CURVES:
            if not all(f"{key}_mean" in r for r in sel):
                continue
            m = np.array([100 * r[f"{key}_mean"] for r in sel])
            lo = np.array([100 * r[f"{key}_low"] for r in sel])
            hi = np.array([100 * r[f"{key}_high"] for r in sel])
            ax.plot(x, m, marker="o", ms=3, label=label, color=color)
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
        if chosen is not None:
            ax.axvline(chosen, color="k", ls=":", lw=1, label=f"chosen T{chosen}")
        ax.set_title(reg, fontsize="medium")
        ax.set_xlabel("clock period (ticks)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize="small")
    fig.suptitle(("QUICK: " if quick else "") + "Headline accuracy under timing errors "
                 "(mean, 95 % CI over models × seeds)", fontsize="medium")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, path)
    return path
