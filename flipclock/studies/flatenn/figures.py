"""The study's figures (PNG, written atomically into ``out/figs``): Fig. 2 (sparsity),
Fig. 3 (landscapes), Fig. 4 (accuracy vs fault rate, both rate definitions, 95 % CI bands
over models x trials) and the SAQ controls (paired differences vs rate)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnmap.landscape import plot_slices_1d, plot_surface_2d
from sim.atomic import save_figure

from .config import FlatStudyConfig
from .summary import UNIT_NAMES, comparisons
from .training import PAPER_VARIANTS

__all__ = ["FIGURES", "accuracy_figure", "control_figure", "landscape_figures",
           "sparsity_figure"]

STYLE = {"standard": ("tab:blue", "--"), "AS": ("tab:red", "--"),
         "standard+SAQ": ("tab:blue", "-"), "AS+SAQ": ("tab:red", "-")}
KIND_NAMES = {"flip": "bit-flip", "sa0": "stuck-at-0", "sa1": "stuck-at-1"}
FIGURES = ("fig2_sparsity.png", "fig4_accuracy_vs_rate.png")
"""Figure files every study writes (plus ``controls.png`` with the controls and the
``fig3_*`` / ``landscape_fault_<kind>.png`` landscape figures when those are computed)."""

Summary = Mapping[str, Any]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _acc_row(s: Summary, label: str, unit: str, kind: str, rate: float) -> Any:
    for r in s["accuracy"]:
        if (r["variant"], r["unit"], r["kind"], r["rate"]) == (label, unit, kind, rate):
            return r
    return None


def sparsity_figure(cfg: FlatStudyConfig, s: Summary, figs: Path) -> Path:
    """Fig. 2: float and 4-bit zeros fault-free (test set, CI over models) and 4-bit zeros
    at the highest bit-flip rate of each unit."""
    plt = _pyplot()
    top = cfg.max_rate
    kind = "flip" if "flip" in cfg.kinds else cfg.kinds[0]
    groups: list[tuple[str, list[float], list[float] | None]] = []
    for key, name in (("float_sparsity", "float zeros"), ("sparsity", "4-bit zeros")):
        cis = [s["test"][k][key] for k in PAPER_VARIANTS]
        groups.append((f"{name}, fault-free", [c["mean"] for c in cis],
                       [c["mean"] - c["low"] for c in cis]))
    for unit in cfg.units:
        vals = []
        for label in PAPER_VARIANTS:
            r = _acc_row(s, label, unit, kind, top)
            vals.append(np.nan if r is None else r["sparsity"])
        groups.append((f"4-bit zeros, {kind} {100 * top:g} % {UNIT_NAMES[unit]}", vals, None))
    fig, ax = plt.subplots(figsize=(8.5, 4.2), dpi=120)
    width = 0.8 / len(groups)
    for gi, (name, vals, err) in enumerate(groups):
        pos = np.arange(len(PAPER_VARIANTS)) + (gi - (len(groups) - 1) / 2) * width
        bars = ax.bar(pos, vals, width, yerr=err, capsize=2, label=name)
        if gi < 2:
            ax.bar_label(bars, fmt="%.1f", fontsize=6)
    ax.set_xticks(np.arange(len(PAPER_VARIANTS)), PAPER_VARIANTS)
    ax.set_ylabel("zero activations (%), mean over layers")
    ax.set_title(f"{cfg.model}: activation sparsity (Fig. 2)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, figs / "fig2_sparsity.png")


def accuracy_figure(cfg: FlatStudyConfig, s: Summary, figs: Path) -> Path:
    """Fig. 4: accuracy vs fault rate, one row per rate definition, one column per kind."""
    plt = _pyplot()
    rates = [0.0, *sorted(r for r in cfg.rates if r > 0)]
    fig, axes = plt.subplots(len(cfg.units), len(cfg.kinds),
                             figsize=(4.4 * len(cfg.kinds), 3.6 * len(cfg.units)), dpi=120,
                             squeeze=False)
    for ui, unit in enumerate(cfg.units):
        for ki, kind in enumerate(cfg.kinds):
            ax = axes[ui][ki]
            for label in PAPER_VARIANTS:
                rows = [r for r in (_acc_row(s, label, unit, kind, x) for x in rates)
                        if r is not None]
                xs = [100 * r["rate"] for r in rows]
                color, ls = STYLE[label]
                ax.plot(xs, [r["mean"] for r in rows], ls, color=color, marker="o", ms=3,
                        label=label)
                ax.fill_between(xs, [r["low"] for r in rows], [r["high"] for r in rows],
                                color=color, alpha=0.15)
            ax.set_title(f"{KIND_NAMES.get(kind, kind)}, rate {UNIT_NAMES[unit]}", fontsize=9)
            ax.set_xlabel(f"fault rate (% of stored {unit}s)")
            ax.set_ylabel("test accuracy (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"{cfg.model}: accuracy under SRAM weight faults (Fig. 4; 95 % CI over "
                 f"{cfg.models} models x {cfg.trials} trials)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, figs / "fig4_accuracy_vs_rate.png")


def control_figure(cfg: FlatStudyConfig, s: Summary, figs: Path) -> Path:
    """SAQ gains vs rate: paper-faithful, equal-epoch and warm-start (control kinds)."""
    plt = _pyplot()
    kind = cfg.control_kinds[0]
    comps = [c for c in comparisons(cfg) if c.sign > 0 and c.key != "AS+SAQ - standard"]
    fig, axes = plt.subplots(1, len(cfg.units), figsize=(6.0 * len(cfg.units), 4.2), dpi=120,
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ui, unit in enumerate(cfg.units):
        ax = axes[0][ui]
        for ci, comp in enumerate(comps):
            rows = sorted((r for r in s["paired"] if r["a"] == comp.a and r["b"] == comp.b
                           and r["unit"] == unit and r["kind"] == kind),
                          key=lambda r: r["rate"])
            xs = [100 * r["rate"] for r in rows]
            color = colors[ci % len(colors)]
            ax.plot(xs, [r["mean"] for r in rows], marker="o", ms=3, color=color,
                    ls="-" if comp.role == "paper" else "--",
                    label=f"{comp.a} - {comp.b}")
            ax.fill_between(xs, [r["low"] for r in rows], [r["high"] for r in rows],
                            color=color, alpha=0.12)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"SAQ gains, {KIND_NAMES.get(kind, kind)}, rate {UNIT_NAMES[unit]}",
                     fontsize=9)
        ax.set_xlabel(f"fault rate (% of stored {unit}s)")
        ax.set_ylabel("paired accuracy difference (points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, figs / "controls.png")


def landscape_figures(cfg: FlatStudyConfig, land: Mapping[str, Any], figs: Path) -> None:
    """Fig. 3 (1-D slice, contour, surface) and one fault-direction slice per kind
    (replicate 0 of each paper-faithful variant)."""
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
                              f"{100 * cfg.landscape.fault_rate:g} % per bit)",
                       title=f"{cfg.model}: loss along {kind} fault directions")
