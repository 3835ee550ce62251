"""The study's figures (PNG, written atomically into ``out/figs``): Fig. 2 (sparsity),
Fig. 3 (landscapes), Fig. 4 (accuracy vs fault rate with 95 % CI bands)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnmap.landscape import plot_slices_1d, plot_surface_2d
from sim.atomic import save_figure

from .config import LABELS, FlatStudyConfig
from .summary import row_at

__all__ = ["FIGURES", "accuracy_figure", "landscape_figures", "sparsity_figure"]

STYLE = {"standard": ("tab:blue", "--"), "AS": ("tab:red", "--"),
         "standard+SAQ": ("tab:blue", "-"), "AS+SAQ": ("tab:red", "-")}
KIND_NAMES = {"flip": "bit-flip", "sa0": "stuck-at-0", "sa1": "stuck-at-1"}
FIGURES = ("fig2_sparsity.png", "fig4_accuracy_vs_rate.png", "fig3_landscape_1d.png",
           "fig3_landscape_contour.png", "fig3_landscape_surface.png")
"""Figure files every study writes (plus ``landscape_fault_<kind>.png`` per kind)."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sparsity_figure(cfg: FlatStudyConfig, df: Any, ff: Mapping[str, Any], figs: Path) -> Path:
    """Fig. 2: sparsity, fault-free and at the highest rate of every kind."""
    plt = _pyplot()
    top = cfg.max_rate
    groups = ["fault-free", *([f"{k} {100 * top:g} %" for k in cfg.kinds] if top > 0 else [])]
    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=120)
    width = 0.8 / len(groups)
    for gi, group in enumerate(groups):
        vals = []
        for label in LABELS:
            if gi == 0:
                vals.append(ff[label]["sparsity"])
            else:
                row = row_at(df, label, cfg.kinds[gi - 1], top)
                vals.append(float(row.sparsity_mean) if row is not None else np.nan)
        pos = np.arange(len(LABELS)) + (gi - (len(groups) - 1) / 2) * width
        bars = ax.bar(pos, vals, width, label=group)
        if gi == 0:
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(np.arange(len(LABELS)), LABELS)
    ax.set_ylabel("zero activations (%), mean over layers")
    ax.set_title(f"{cfg.model}: activation sparsity (Fig. 2)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, figs / "fig2_sparsity.png")


def accuracy_figure(cfg: FlatStudyConfig, df: Any, figs: Path) -> Path:
    """Fig. 4: accuracy vs fault rate per kind, 95 % CI bands."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(cfg.kinds), figsize=(4.6 * len(cfg.kinds), 4.0), dpi=120,
                             squeeze=False)
    for ax, kind in zip(axes[0], cfg.kinds, strict=True):
        for label in LABELS:
            rows = [r for r in (row_at(df, label, kind, rate) for rate in sorted(cfg.rates))
                    if r is not None]
            xs = [100 * (0.0 if r.kind == "none" else r.rate) for r in rows]
            color, ls = STYLE[label]
            ax.plot(xs, [100 * r.accuracy_mean for r in rows], ls, color=color, marker="o",
                    ms=3, label=label)
            ax.fill_between(xs, [100 * r.accuracy_low for r in rows],
                            [100 * r.accuracy_high for r in rows], color=color, alpha=0.15)
        ax.set_title(f"{cfg.model}: {KIND_NAMES.get(kind, kind)} faults")
        ax.set_xlabel("fault rate (% of stored weight bits)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, figs / "fig4_accuracy_vs_rate.png")


def landscape_figures(cfg: FlatStudyConfig, land: Mapping[str, Any], figs: Path) -> None:
    """Fig. 3 (1-D slice, contour, surface) and one fault-direction slice per kind."""
    models = land["models"]
    plot_slices_1d({k: (land["coords_1d"], v["random_1d"][0]) for k, v in models.items()},
                   figs / "fig3_landscape_1d.png", xlabel="alpha (filter-normalized direction)",
                   title=f"{cfg.model}: 1-D loss landscape around the quantized weights")
    plot_surface_2d({k: np.asarray(v["grid_2d"]) for k, v in models.items()},
                    land["coords_2d"], figs / "fig3_landscape_contour.png",
                    figs / "fig3_landscape_surface.png",
                    title=f"{cfg.model}: 2-D loss landscape (filter-normalized directions)")
    for kind in next(iter(models.values()))["fault_1d"]:
        plot_slices_1d({k: (land["coords_fault"], np.mean(v["fault_1d"][kind], axis=0))
                        for k, v in models.items()},
                       figs / f"landscape_fault_{kind}.png",
                       xlabel=f"t (theta + t * delta; t = 1 is the {kind} fault map at "
                              f"{100 * cfg.landscape.fault_rate:g} %)",
                       title=f"{cfg.model}: loss along {kind} fault directions")
