"""The study's figures (PNG, written atomically): the BER sweeps, Figs. 3-7, and Eq. (1)
against fault injection."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.atomic import save_figure

from .analysis import row
from .config import DROP_LIMIT, variant_name

__all__ = ["plot_fig3", "plot_fig4", "plot_fig5", "plot_fig7", "plot_rank", "plot_sweep",
           "plot_tolerance"]


def _savefig(fig: Any, path: Path) -> None:
    fig.tight_layout()
    save_figure(fig, path)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sweep(frame: Any, names: Sequence[str], path: Path, title: str) -> None:
    """Accuracy drop against BER of the variants ``names`` (mean and 95 % CI)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name in names:
        rows = frame[frame["variant"] == name].sort_values("ber")
        if rows.empty:
            continue
        y = 100 * rows["drop_mean"]
        err = [100 * (rows["drop_mean"] - rows["drop_low"]),
               100 * (rows["drop_high"] - rows["drop_mean"])]
        ax.errorbar(rows["ber"], y, yerr=err, marker="o", capsize=3, label=name)
    ax.axhline(100 * DROP_LIMIT, color="grey", linestyle="--", linewidth=1, label="5 pt")
    ax.set_xscale("log")
    ax.set_xlabel("bit error rate")
    ax.set_ylabel("accuracy drop (percentage points)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _savefig(fig, path)


def plot_fig3(fig3: Any, costs: Mapping[str, Any], ratios: Sequence[float], ber: float,
               path: Path) -> None:
    """Fig. 3: duplication + EDAC against TMR, resilience and memory overhead."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.6, 4.0), dpi=120)
    base_mem = costs["baseline"]["memory_bytes"]
    for kind, label in (("dup-noint", "duplication + EDAC"), ("tmr", "triplication + voter")):
        rows = [row(fig3, variant_name(kind, r), ber) for r in ratios]
        a.errorbar([100 * r for r in ratios], [100 * x.drop_mean for x in rows],
                   yerr=[[100 * (x.drop_mean - x.drop_low) for x in rows],
                         [100 * (x.drop_high - x.drop_mean) for x in rows]],
                   marker="o", capsize=3, label=label)
        b.plot([100 * r for r in ratios],
               [100 * (costs[variant_name(kind, r)]["memory_bytes"] / base_mem - 1)
                for r in ratios],
               marker="o", label=label)
    a.set_title(f"(a) resilience, BER {ber:.0e}")
    a.set_ylabel("accuracy drop (pt)")
    b.set_title("(b) memory overhead")
    b.set_ylabel("memory overhead (%)")
    for ax in (a, b):
        ax.set_xlabel("channel hardening ratio (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _savefig(fig, path)


def plot_fig4(fig4: Any, costs: Mapping[str, Any], ratios: Sequence[float], ber: float,
               path: Path) -> None:
    """Fig. 4: accuracy drop and execution-time overhead against hardening ratio."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    rows = [row(fig4, variant_name("hardened", r), ber) for r in ratios]
    xs = [100 * r for r in ratios]
    ax.errorbar(xs, [100 * x.drop_mean for x in rows],
                yerr=[[100 * (x.drop_mean - x.drop_low) for x in rows],
                      [100 * (x.drop_high - x.drop_mean) for x in rows]],
                marker="o", capsize=3, color="C0", label="accuracy drop")
    ax.set_xlabel("channel hardening ratio (%)")
    ax.set_ylabel("accuracy drop (pt)", color="C0")
    ax2 = ax.twinx()
    ax2.plot(xs, [100 * (costs[variant_name("hardened", r)]["seconds_rel"] - 1) for r in ratios],
             marker="s", color="C1", label="execution time overhead")
    ax2.set_ylabel("execution time overhead vs baseline (%)", color="C1")
    ax.set_title(f"duplication + EDAC with detection intervals, BER {ber:.0e}")
    ax.grid(alpha=0.3)
    _savefig(fig, path)


def plot_fig5(fig5: Sequence[Mapping[str, Any]], base_acc: float, path: Path) -> None:
    """Fig. 5: accuracy after vulnerability and L1 pruning, before/after fine-tuning (mean
    over models x fine-tuning seeds; every point as a faint dot)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for i, (crit, label) in enumerate((("vulnerability", "vulnerability (Eq. 1)"),
                                       ("l1", "L1 norm"))):
        sel = [r for r in fig5 if r["criterion"] == crit]
        ratios = sorted({r["ratio"] for r in sel})
        for key, marker, style, what in (("accuracy", "o", "-", "fine-tuned"),
                                         ("accuracy_pruned", "x", ":", "before fine-tuning")):
            means = [100 * sum(r[key] for r in sel if r["ratio"] == q)
                     / sum(1 for r in sel if r["ratio"] == q) for q in ratios]
            ax.plot([100 * q for q in ratios], means, marker=marker, linestyle=style,
                    color=f"C{i}", label=f"{label}, {what}")
            ax.scatter([100 * r["ratio"] + (i - 0.5) for r in sel],
                       [100 * r[key] for r in sel], s=8, color=f"C{i}", alpha=0.35)
    ax.axhline(100 * base_acc, color="grey", linestyle="--", linewidth=1, label="unpruned")
    ax.set_xlabel("pruning ratio of every conv/FC layer (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _savefig(fig, path)


def plot_tolerance(bisections: Sequence[Any], names: Sequence[str], path: Path) -> None:
    """Bisected BER tolerance of every variant, one dot per model (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for i, name in enumerate(names):
        vals = [b.tolerance for b in bisections if b.variant == name]
        ax.scatter([i] * len(vals), vals, color=f"C{i}", s=25)
        if vals:
            geo = 10 ** (sum(math.log10(v) for v in vals) / len(vals))
            ax.hlines(geo, i - 0.3, i + 0.3, color=f"C{i}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylabel("largest BER with < 5 pt drop (bisected)")
    ax.set_title("BER tolerance per trained model (line: geometric mean)")
    ax.grid(alpha=0.3, axis="y")
    _savefig(fig, path)


def plot_fig7(costs: Sequence[Mapping[str, Any]], names: Sequence[str], path: Path) -> None:
    """Fig. 7: execution time of the variants ``names``."""
    plt = _plt()
    by = {r["variant"]: r for r in costs}
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    vals = [by[n]["seconds"] for n in names]
    ax.bar(range(len(names)), vals, color=[f"C{i}" for i in range(len(names))])
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylabel("CPU seconds per pass (1 thread)")
    ax.grid(alpha=0.3, axis="y")
    _savefig(fig, path)


def plot_rank(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Eq. (1) vulnerability against the measured mismatch, per fault kind."""
    plt = _plt()
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0), dpi=120)
    for ax, kind in zip(axes, ("noise", "bitflip"), strict=True):
        for i, layer in enumerate(layers):
            sel = [r for r in rows if r["kind"] == kind and r["layer"] == layer]
            ax.scatter([r["vulnerability"] for r in sel], [r["mismatch"] for r in sel],
                       s=10, color=f"C{i}", label=layer)
        ax.set_xscale("log")
        ax.set_xlabel("Eq. (1) vulnerability")
        ax.set_ylabel("top-1 mismatch rate")
        ax.set_title(f"{kind} in one channel's weights")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _savefig(fig, path)
