"""``report.md`` and ``headline.md`` of the hardening study: figures, then one Markdown section
per result, on the shared :class:`~flipclock.studies.base.Report` (title, QUICK marking,
provenance, claims table, ``settings.json``, ``claims.csv``, ``manifest.json``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flipclock.studies.base import Claim, Report
from sim.atomic import atomic_text

from .analysis import fmt_ci, row, single
from .claims import Evidence
from .config import variant_name
from .figures import (
    plot_fig3,
    plot_fig4,
    plot_fig5,
    plot_fig7,
    plot_rank,
    plot_sweep,
    plot_tolerance,
)

__all__ = ["EQ1", "Results", "headline", "mean_costs", "write_report"]

EQ1 = (r"V_{l,c} = \frac{1}{N}\sum_{n=1}^{N} \frac{1}{K}\sum_{i=1}^{K} "
       r"\frac{\sum_{w\in W_{l,c}} \left(\partial\,(y_t - y_i)/\partial w\right)^2}"
       r"{(y_t - y_i)^2}")


@dataclass(frozen=True)
class Results:
    """Everything the report shows: the evidence of the claims and the rest."""

    ev: Evidence
    claims: Sequence[Claim]
    data_info: Any
    checkpoints: Sequence[str | None]
    rank_rows: Sequence[Mapping[str, Any]]
    int8: Any
    table2: Sequence[Mapping[str, Any]]
    chosen: Sequence[Mapping[str, Any]]
    seconds: float


def mean_costs(costs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every numeric cost column of every variant, averaged over the models."""
    frame = pd.DataFrame(list(costs)).drop(columns=["train_seed"], errors="ignore")
    means = frame.groupby("variant", sort=False).mean(numeric_only=True)
    return {str(k): {"variant": k, **v} for k, v in means.to_dict("index").items()}


def _ci(r: Any, metric: str = "drop") -> str:
    mean, hi = getattr(r, f"{metric}_mean"), getattr(r, f"{metric}_high")
    return f"{100 * mean:.2f} ± {100 * (hi - mean):.2f}"


def _sweep_table(frame: Any, names: Sequence[str], bers: Sequence[float]) -> list[str]:
    lines = ["| BER | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for b in bers:
        cells = ["-" if (r := row(frame, n, b)) is None else _ci(r) for n in names]
        lines.append(f"| {b:.0e} | " + " | ".join(cells) + " |")
    return lines


def _span(ev: Evidence) -> str:
    n = len(ev.seeds)
    return (f"{n} trained models" if n >= 2 else
            "1 trained model (no model variance in any interval)")


def _figures(res: Results, out: Path) -> None:
    ev, cfg = res.ev, res.ev.config
    cost = mean_costs(ev.costs)
    names = cfg.sweep_variants
    plot_sweep(ev.sweep, names, out / "fig_sweep.png", "float32 parameter bit flips")
    plot_sweep(ev.sweep, ["baseline", cfg.main_variant, "hardened-pruned"], out / "fig6.png",
               "Fig. 6: hardened vs hardened pruned")
    if ev.fig3 is not None and ev.fig3_ber is not None:
        plot_fig3(ev.fig3, cost, cfg.fig3_ratios, ev.fig3_ber, out / "fig3.png")
    plot_fig4(ev.fig4, cost, cfg.fig4_ratios, ev.fig4_ber, out / "fig4.png")
    plot_fig5(ev.fig5, sum(ev.base_accs) / len(ev.base_accs), out / "fig5.png")
    plot_fig7(list(cost.values()), [*names, "tmr-1"], out / "fig7.png")
    plot_sweep(res.int8, ["baseline-int8", "hardened-int8"], out / "fig_int8.png",
               "INT8-stored parameter bit flips")
    plot_tolerance(ev.bisections, names, out / "fig_tolerance.png")
    if res.rank_rows:
        plot_rank(res.rank_rows, out / "rank.png")


def _settings_table(cfg: Any, n_eval: int, n_train: int) -> list[str]:
    ft_n = cfg.finetune_samples or n_train
    seeds = ", ".join(map(str, cfg.train_seeds))
    rows = [("trained models (seeds)", "1", f"{cfg.models} ({seeds})"),
            ("fine-tuning seeds per model and point", "1", str(cfg.finetune_seeds)),
            ("repetitions per float32 BER point", "1000", str(cfg.repetitions)),
            ("repetitions per INT8 point", "-", str(cfg.int8_repetitions)),
            ("test images per fault trial", "all", f"{n_eval} (seeded subset)"),
            ("fine-tuning", "10 epochs, SGD lr 1e-3, whole training set",
             f"{cfg.finetune_epochs} epochs, SGD lr {cfg.finetune_lr:g}, {ft_n} images"),
            ("Fig. 5 pruning ratios", "several", ", ".join(f"{r:.0%}" for r in cfg.prune_ratios)),
            ("Table II search grid", "extensive", ", ".join(f"{r:.0%}" for r in cfg.prune_grid)),
            ("Fig. 3 / Fig. 4 hardening ratios", "0-100 % / 0-50 %",
             ", ".join(f"{r:.0%}" for r in cfg.fig3_ratios) + " / "
             + ", ".join(f"{r:.0%}" for r in cfg.fig4_ratios)),
            ("baseline training", "pre-trained CIFAR models",
             f"{cfg.model}, {cfg.epochs} epochs"),
            ("BER tolerance", "grid", f"bisection in log10(BER) to a factor {cfg.bisect_factor:g}")]
    return ["| setting | paper | this run |", "|---|---|---|",
            *[f"| {a} | {b} | {c} |" for a, b, c in rows]]


def _intro(res: Results) -> list[str]:
    ev, cfg, info = res.ev, res.ev.config, res.data_info
    cost = mean_costs(ev.costs)["baseline"]
    n_eval = cfg.eval_samples or info.n_test
    acc = single(ev.base_accs)
    ckpts = ", ".join(f"`{Path(c).name}`" if c else "not cached" for c in res.checkpoints)
    # The leading blank line keeps this paragraph out of the claims table above it.
    return [
        "", "Reproduction of Ahmadilivani et al., *Cost-Effective Fault Tolerance for CNNs Using "
        "Parameter Vulnerability Based Hardening and Pruning* (2024) with flipclock's "
        "`nnmap` (`flipclock harden study`), replicated over "
        f"{_span(ev)}. Every interval is a 95 % interval over the models (Student-t over the "
        "model means, `nnmap.stats.nested_ci`), of their trials where there are trials; "
        "pruning comparisons are paired per model and fine-tuning seed "
        "(`paired_nested_ci`). A verdict is *holds* when the interval lies on the claimed "
        "side of zero, *opposite* on the other side, *inconclusive* when it contains zero.",
        "", "Headline numbers: `headline.md`. Settings, lighter than the paper's where the "
        "budget (about 20 minutes on 2 cores) required it:", "",
        *_settings_table(cfg, n_eval, info.n_train), "",
        f"Data `{info.fingerprint[:16]}` ({info.n_train} train / {info.n_test} test images); "
        f"checkpoints {ckpts}. Fault-free accuracies on the whole test set, times (CPU, one "
        f"thread, best of {cfg.timing_repeats}) on {cfg.timing_samples or info.n_test} test "
        "images; "
        f"fault trials on {n_eval} test images (seed {cfg.seed}, the same for every model). "
        f"Study time {res.seconds / 60:.1f} min.", "",
        "## Table I: baseline", "",
        "| CNN | Dataset | Accuracy (95 % CI over models) | #parameters | #MACs | Execution "
        f"time over {cfg.timing_samples or info.n_test} test images |",
        "|---|---|---:|---:|---:|---:|",
        f"| {cfg.model} | {info.name} | {fmt_ci(acc, 100)} % | {int(cost['parameters']):,} | "
        f"{int(cost['macs']):,} | {cost['seconds']:.3f} s (CPU time, mean over models) |"]


def _eq1(res: Results) -> list[str]:
    cfg = res.ev.config
    md = ["## Eq. (1): channel vulnerability", "",
          "Reconstructed (the equation was lost from our copy of the paper) from its text, "
          "from HarDNN's gain heuristic (Mahmoud et al., arXiv 2002.09786, after Sakr et "
          "al.'s mismatch bound) and the authors' published code; `t` is the top class of "
          "input `n`, `W_{l,c}` the weights of output channel `c` of layer `l`:", "",
          f"$$ {EQ1} $$", "",
          f"averaged over N = {cfg.vuln_samples} training images (terms with y_i = y_t, "
          "i != t, use a denominator of 1). See `nnmap/vulnerability.py`.", "",
          f"Validation against fault injection into each channel's weights ({cfg.rank_scope} "
          f"layers) on {cfg.rank_samples} test images (`work/model-*/rank_validation.csv`): "
          f"*noise* = {cfg.rank_noise_trials} Gaussian perturbations of standard deviation "
          f"{cfg.rank_noise} x the layer's weight standard deviation (the perturbation Eq. (1) "
          "bounds to first order); *bitflip* = one float32 bit flip per bit position 0..31 at "
          "a random weight of the channel (the paper's fault model, stratified). Metric: "
          "top-1 mismatch rate with the fault-free network. Spearman rank correlation of "
          "Eq. (1) with the measured mismatch, mean [95 % CI] over the models "
          "(`rank_correlation.csv`):", "",
          "| Layer | channels | Spearman (noise) | Spearman (bit flip) |", "|---|---:|---:|---:|"]
    summary = res.ev.rank_summary
    for layer in dict.fromkeys(r["layer"] for r in summary):
        cells = []
        channels = 0
        for kind in ("noise", "bitflip"):
            vals = [r["spearman"] for r in summary if r["layer"] == layer and r["kind"] == kind
                    and not math.isnan(r["spearman"])]
            channels = max([channels] + [r["channels"] for r in summary if r["layer"] == layer
                                         and r["kind"] == kind])
            cells.append(fmt_ci(single(vals), digits=3) if vals else "-")
        md.append(f"| {layer} | {channels} | " + " | ".join(cells) + " |")
    return md + ["", "(`all` pools every validated channel: meaningful for bit flips, which "
                 "are the same fault in every layer; the noise level is per layer.)", "",
                 "![Eq. (1) vs fault injection](rank.png)"]


def _sweep(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    names = cfg.sweep_variants
    return [
        "## Fault model", "",
        "Every layer that stores numbers (conv, FC, batch norm, and the EDAC layers' "
        "detection-interval bounds) gets BER x (its stored bits) flips at distinct uniform "
        "positions (stochastic rounding of the count, so the expectation is exact); float32 "
        "words or INT8 codes (`nnmap/bitflip.py`). Each model draws its own faults.", "",
        "## BER sweep (float32): accuracy drop in percentage points, mean ± 95 % CI over "
        f"models x {cfg.repetitions} repetitions", "",
        *_sweep_table(ev.sweep, names, cfg.bers), "",
        f"Variants: `intervals-only` = EDAC layers, no duplication; `{cfg.main_variant}` = "
        f"{cfg.ratio:.0%} duplication + EDAC (all output neurons of the last layer "
        "duplicated); `pruned` = the Table II "
        f"model of each seed; `hardened-pruned` = it with {cfg.ratio:.0%} duplication + EDAC.",
        "", "![BER sweep](fig_sweep.png)", "", *_tolerance(res), "",
        "## Fig. 6: hardened vs hardened pruned", "", "![Fig. 6](fig6.png)"]


def _tolerance(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    names = cfg.sweep_variants
    md = ["## BER tolerance by bisection", "",
          "The largest BER at which a variant's accuracy stays within 5 points of its own "
          "fault-free accuracy, per model: bracketed by the sweep (last passing, first "
          "failing grid BER: mean drop over the repetitions < 5 pt), then bisected in "
          f"log10(BER) with {cfg.repetitions} fresh repetitions per point until the bracket is "
          f"narrower than a factor {cfg.bisect_factor:g}; a point passes on the mean drop over "
          "its repetitions, and a point whose 95 % interval contains 5 pt is counted as "
          "*noisy*. The tolerance is the bracket's geometric midpoint (`tolerance.csv`, every "
          "point in `bisection_points.csv`). Across models: geometric mean and the 95 % "
          "interval of log10(tolerance).", "",
          "| variant | " + " | ".join(f"model {s}" for s in ev.seeds)
          + " | geometric mean [95 % CI] | noisy points |",
          "|---|" + "---:|" * (len(ev.seeds) + 2)]
    for n in names:
        tol = ev.tolerance(n)
        cells = [("≥ " if tol[s].censored == "above" else "< " if tol[s].censored == "below"
                  else "") + f"{tol[s].tolerance:.3g}" for s in ev.seeds]
        ci = ev.tolerance_ci(n)
        md.append(f"| {n} | " + " | ".join(cells) + f" | {10 ** ci.mean:.3g} "
                  f"[{10 ** ci.low:.3g}, {10 ** ci.high:.3g}] | "
                  f"{sum(tol[s].noisy for s in ev.seeds)} |")
    ratio = ev.log_ratio_ci(cfg.main_variant, "baseline")
    md += ["", f"Tolerance ratio {cfg.main_variant} / baseline (the paper's \"orders of "
           f"magnitude\"): {10 ** ratio.mean:.3g}x [{10 ** ratio.low:.3g}, "
           f"{10 ** ratio.high:.3g}] (95 % CI of the per-model log10 ratio over "
           f"{ratio.models} model(s)).", "", "![BER tolerance](fig_tolerance.png)"]
    return md


def _fig3(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    if ev.fig3 is None or ev.fig3_ber is None:
        return []
    cost = mean_costs(ev.costs)
    rule = "given" if cfg.fig3_ber else ("lowest swept BER at which the unprotected model "
                                         "lost half of its accuracy above chance (mean over "
                                         "models)")
    md = [f"## Fig. 3: duplication + EDAC vs triplication + voter at BER {ev.fig3_ber:.0e}",
          "", "Detection intervals are not used for non-duplicated channels here (the "
          f"paper's Fig. 3). BER rule: {rule}. Drops: mean ± 95 % CI over models x "
          "repetitions; memory: mean over models.", "",
          "| Hardening ratio | dup + EDAC drop (pt) | TMR drop (pt) | dup memory overhead | "
          "TMR memory overhead |", "|---:|---:|---:|---:|---:|"]
    bm = cost["baseline"]["memory_bytes"]
    for r in cfg.fig3_ratios:
        dup, tmr = variant_name("dup-noint", r), variant_name("tmr", r)
        md.append(f"| {r:.0%} | {_ci(row(ev.fig3, dup, ev.fig3_ber))} | "
                  f"{_ci(row(ev.fig3, tmr, ev.fig3_ber))} | "
                  f"+{100 * (cost[dup]['memory_bytes'] / bm - 1):.1f} % | "
                  f"+{100 * (cost[tmr]['memory_bytes'] / bm - 1):.1f} % |")
    return [*md, "", "![Fig. 3](fig3.png)"]


def _fig4(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    cost = mean_costs(ev.costs)
    rule = "given" if cfg.fig4_ber else (f"highest swept BER at which the {cfg.ratio:.0%}-"
                                         "hardened model drops < 5 pt (mean over models)")
    md = [f"## Fig. 4: selective duplication + EDAC at BER {ev.fig4_ber:.0e}", "",
          f"BER rule: {rule}.", "",
          "| Hardening ratio | accuracy drop (pt) | parameters | execution time vs baseline |",
          "|---:|---:|---:|---:|"]
    for r in cfg.fig4_ratios:
        name = variant_name("hardened", r)
        c = cost[name]
        md.append(f"| {r:.0%} | {_ci(row(ev.fig4, name, ev.fig4_ber))} | "
                  f"{int(c['parameters']):,} | {100 * (c['seconds_rel'] - 1):+.1f} % |")
    return [*md, "", "![Fig. 4](fig4.png)"]


def _fig5(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    acc = single(ev.base_accs)
    md = ["## Fig. 5: vulnerability-based vs L1-norm pruning", "",
          f"Every conv and hidden FC layer pruned by the ratio, then fine-tuned "
          f"{cfg.finetune_epochs} epochs (SGD, lr {cfg.finetune_lr:g}, momentum 0.9) on "
          f"{cfg.finetune_samples or res.data_info.n_train} training images chosen by the "
          f"fine-tuning seed ({', '.join(map(str, cfg.ft_seeds))}); both criteria share the "
          "model, the seed, the images and the batch order, so their difference is paired. "
          f"Unpruned: {fmt_ci(acc, 100)} %. Accuracies: mean over models x fine-tuning seeds; "
          "the difference: `paired_nested_ci` (outer: training seed, inner: fine-tuning "
          "seed). Every (model, seed) point: `fig5.csv`.", "",
          "| Ratio | vulnerability: pruned -> fine-tuned | L1: pruned -> fine-tuned | "
          "vulnerability - L1 after fine-tuning (pt) | before fine-tuning (pt) | per model "
          "and seed (pt) |", "|---:|---:|---:|---:|---:|---|"]
    for r in cfg.prune_ratios:
        sel = [x for x in ev.fig5 if x["ratio"] == r]
        ci, ci0 = ev.pruning_ci(r), ev.pruning_ci(r, "accuracy_pruned")
        if ci is None or ci0 is None:
            continue

        def mean(crit: str, key: str, sel: list[Mapping[str, Any]] = sel) -> float:
            vals = [100 * x[key] for x in sel if x["criterion"] == crit]
            return sum(vals) / len(vals)

        by = {(x["train_seed"], x["finetune_seed"], x["criterion"]): x["accuracy"] for x in sel}
        each = ", ".join(f"{100 * (by[s, k, 'vulnerability'] - by[s, k, 'l1']):+.1f}"
                         for s in ev.seeds for k in cfg.ft_seeds
                         if (s, k, "l1") in by and (s, k, "vulnerability") in by)
        md.append(f"| {r:.0%} | {mean('vulnerability', 'accuracy_pruned'):.2f} -> "
                  f"{mean('vulnerability', 'accuracy'):.2f} % | {mean('l1', 'accuracy_pruned'):.2f}"
                  f" -> {mean('l1', 'accuracy'):.2f} % | {fmt_ci(ci)} | {fmt_ci(ci0)} | {each} |")
    return [*md, "", "![Fig. 5](fig5.png)"]


def _table2(res: Results) -> list[str]:
    cfg = res.ev.config
    cost = {(r["train_seed"], r["variant"]): r for r in res.ev.costs}
    md = [f"## Table II: largest pruning ratios within {100 * cfg.prune_tolerance:g} point of "
          "the baseline", "",
          f"Per model (first fine-tuning seed, search by bisection over the grid "
          f"{', '.join(f'{r:.0%}' for r in cfg.prune_grid)}: FC ratio first with conv 0, then "
          "conv ratio; every point in `table2_search.csv`).", "",
          "| CNN | model | CONV ratio | FC ratio | Accuracy | #params pruned / baseline | #MACs "
          "pruned / baseline | Execution time pruned / baseline |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t2 in res.chosen:
        pr = cost[t2["train_seed"], "pruned"]
        md.append(f"| {cfg.model} | {t2['train_seed']} | {t2['conv_ratio'] or 0:.0%} | "
                  f"{t2['fc_ratio'] or 0:.0%} | {100 * pr['accuracy']:.2f} % | "
                  f"{pr['parameters_rel']:.4f} | {pr['macs_rel']:.4f} | "
                  f"{pr['seconds_rel']:.3f} |")
    return md


def _overheads(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    main = cfg.main_variant
    md = ["## Overheads and Fig. 7", "",
          "Mean over the models (`overheads.csv` has every model):", "",
          "| Variant | fault-free accuracy | parameters | stored numbers | memory | MACs | "
          "time (s) | time vs baseline |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {c['variant']} | {100 * c['accuracy']:.2f} % | {int(c['parameters']):,} | "
           f"{int(c['stored']):,} | {c['memory_bytes'] / 1024:.1f} KiB | {int(c['macs']):,} | "
           f"{c['seconds']:.3f} | {100 * (c['seconds_rel'] - 1):+.1f} % |"
           for c in mean_costs(ev.costs).values()]
    t_h = ev.cost_ratio_ci(main, "baseline", "seconds")
    t_hp = ev.cost_ratio_ci("hardened-pruned", main, "seconds")
    p_hp = ev.cost_ratio_ci("hardened-pruned", main, "parameters")
    return [*md, "",
            f"Per model, 95 % CI over models: {main} vs baseline time {fmt_ci(t_h, digits=1)} "
            f"%; hardened-pruned vs {main}: time {fmt_ci(t_hp, digits=1)} %, parameters "
            f"{fmt_ci(p_hp, digits=1)} %. Times are the best of {cfg.timing_repeats} passes over "
            f"{cfg.timing_samples or res.data_info.n_test} test images in CPU seconds on one "
            "thread of a shared machine (not a GPU as in the paper): "
            "expect noise of several percent.", "", "![Fig. 7](fig7.png)"]


def _int8(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    n_eval = cfg.eval_samples or res.data_info.n_test
    clean = {n: row(res.int8, n, cfg.bers[0]) for n in ("baseline-int8", "hardened-int8")}
    float_clean = row(ev.sweep, "baseline", cfg.bers[0]).clean_accuracy_mean
    return ["## INT8 storage", "",
            "Batch norm folded, weights int8 per output channel, vectors int8 per tensor, EDAC "
            "bounds rounded outward; flips in the int8 codes. Accuracy drop (pt), mean ± 95 % "
            f"CI over models x {cfg.int8_repetitions} repetitions:", "",
            f"Fault-free accuracy on the {n_eval} evaluation images: " + ", ".join(
                f"{n} {100 * r.clean_accuracy_mean:.2f} %" for n, r in clean.items()
                if r is not None) + f" (float32 baseline: {100 * float_clean:.2f} %).", "",
            *_sweep_table(res.int8, ["baseline-int8", "hardened-int8"], cfg.bers), "",
            "![INT8](fig_int8.png)"]


FILES = ("## Files\n\n`headline.md` (the headline table), `claims.csv` (each claim's interval), "
         "`sweep.csv`, `fig3.csv`, `fig4.csv`, `int8.csv` (nested mean and 95 % CI over models x "
         "trials per point), `tolerance.csv` (bisected tolerance per model and variant), "
         "`bisection_points.csv`, `fig5.csv` (every model x fine-tuning seed x criterion x "
         "ratio), `table2.csv`, `table2_search.csv`, `overheads.csv`, `rank_correlation.csv`, "
         "`baseline.csv`, `settings.json`, `summary.json`. `work/model-<seed>/` (not committed: "
         "`models/*.pt`, every variant; `campaigns/*/results.jsonl`, every trial; per-model "
         "CSVs) is the resumable state.")


def headline(res: Results) -> str:
    """``headline.md``: a title, one table of the headline numbers with their 95 % CIs and
    verdicts, and two sentences; QUICK in the title and first line of a quick run."""
    ev, cfg, info = res.ev, res.ev.config, res.data_info
    main = cfg.main_variant
    verdicts = {c.statement: c.verdict for c in res.claims}

    def verdict(prefix: str) -> str:
        return next((v for k, v in verdicts.items() if k.startswith(prefix)), "")

    def tol(name: str) -> str:
        ci = ev.tolerance_ci(name)
        return f"{10 ** ci.mean:.2e} [{10 ** ci.low:.2e}, {10 ** ci.high:.2e}]"

    ratio = ev.log_ratio_ci(main, "baseline")
    acc = single(ev.base_accs)
    t_h = ev.cost_ratio_ci(main, "baseline", "seconds")
    t_hp = ev.cost_ratio_ci("hardened-pruned", main, "seconds")
    p_hp = ev.cost_ratio_ci("hardened-pruned", main, "parameters")
    rows = [("baseline accuracy (%)", fmt_ci(acc, 100), "-", ""),
            ("BER tolerance, baseline", tol("baseline"), "-", ""),
            (f"BER tolerance, {cfg.ratio:.0%} duplication + EDAC", tol(main), "-", ""),
            ("BER tolerance, hardened-pruned", tol("hardened-pruned"), "-", ""),
            (f"tolerance ratio {cfg.ratio:.0%}-hardened / baseline",
             f"{10 ** ratio.mean:.3g}x [{10 ** ratio.low:.3g}, {10 ** ratio.high:.3g}]",
             "orders of magnitude", verdict(f"{cfg.ratio:.0%}-hardened model tolerates"))]
    for r in cfg.prune_ratios:
        ci = ev.pruning_ci(r)
        if ci is not None:
            rows.append((f"vulnerability - L1 pruning at {r:.0%}, fine-tuned (pt)", fmt_ci(ci),
                         "vulnerability better", verdict(f"vulnerability pruning beats L1 "
                                                         f"pruning at {r:.0%}")))
    rows += [(f"time, {cfg.ratio:.0%}-hardened vs baseline (%)", fmt_ci(t_h, digits=1),
              "+12 %", ""),
             ("time, hardened-pruned vs hardened (%)", fmt_ci(t_hp, digits=1), "up to -24 %",
              verdict("hardened-pruned runs faster")),
             ("parameters, hardened-pruned vs hardened (%)", fmt_ci(p_hp, digits=1), "fewer",
              verdict("hardened-pruned has fewer"))]
    quick = cfg.is_quick
    title = (f"{'QUICK: ' if quick else ''}Hardening and pruning (Ahmadilivani et al.): "
             f"{cfg.model} on {info.name}, {len(ev.seeds)} trained model(s) x "
             f"{cfg.finetune_seeds} fine-tuning seed(s)")
    lines = [f"#### {title}", ""]
    if quick:
        lines += ["QUICK run: small sizes for a demo or a test; its numbers support no claim.",
                  ""]
    lines += ["| quantity | ours: mean [95 % CI] | paper | verdict |", "|---|---|---|---|",
              *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows], "",
              f"Intervals are over {len(ev.seeds)} trained model(s) (Student-t over the model "
              f"means) of {cfg.repetitions} fault repetitions per BER point or "
              f"{cfg.finetune_seeds} paired fine-tuning seeds; BER tolerance = largest BER "
              f"with < 5 pt accuracy drop, bisected in log10(BER) to a factor "
              f"{cfg.bisect_factor:g} (geometric mean over models). Lighter than the paper: "
              f"{cfg.repetitions} instead of 1000 repetitions, {cfg.eval_samples or 'all'} "
              f"test images per trial, fine-tuning {cfg.finetune_epochs} epochs on "
              f"{cfg.finetune_samples or 'all'} images instead of 10 on all; LeNet-5 on "
              "Fashion-MNIST instead of the paper's CIFAR networks."]
    return "\n".join(lines) + "\n"


def write_report(res: Results, out: Path, extra_settings: Mapping[str, Any]) -> Path:
    """Draw the figures, write ``headline.md``, then ``report.md``, ``settings.json`` and the
    manifest (last) into ``out``."""
    _figures(res, out)
    atomic_text(out / "headline.md", headline(res))
    cfg = res.ev.config
    report = Report(f"Vulnerability-based hardening and pruning: {cfg.model} on "
                    f"{res.data_info.name}", cfg)
    for claim in res.claims:
        report.add_claim(claim)
    for section in (_intro, _eq1, _sweep, _fig3, _fig4, _fig5, _table2, _overheads, _int8):
        lines = section(res)
        if lines:
            report.add("\n".join(lines) + "\n")
    report.add(FILES)
    return report.write(out, extra_settings)
