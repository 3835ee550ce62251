"""``report.md`` of the hardening study: figures, then one Markdown section per result, on
the shared :class:`~flipclock.studies.base.Report` (title, QUICK marking, provenance, claims
table, ``settings.json``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flipclock.studies.base import Claim, Report

from .analysis import by_variant, fmt_ber, row
from .claims import Evidence
from .config import variant_name
from .figures import plot_fig3, plot_fig4, plot_fig5, plot_fig7, plot_rank, plot_sweep

__all__ = ["EQ1", "Results", "write_report"]

EQ1 = (r"V_{l,c} = \frac{1}{N}\sum_{n=1}^{N} \frac{1}{K}\sum_{i=1}^{K} "
       r"\frac{\sum_{w\in W_{l,c}} \left(\partial\,(y_t - y_i)/\partial w\right)^2}"
       r"{(y_t - y_i)^2}")


@dataclass(frozen=True)
class Results:
    """Everything the report shows: the evidence of the claims and the rest."""

    ev: Evidence
    claims: Sequence[Claim]
    data_info: Any
    checkpoint: str | None
    rank_rows: Sequence[Mapping[str, Any]]
    int8: Any
    table2: Sequence[Mapping[str, Any]]
    chosen: Mapping[str, Any]
    seconds: float


def _ci(r: Any, metric: str = "drop") -> str:
    mean, hi = getattr(r, f"{metric}_mean"), getattr(r, f"{metric}_high")
    return f"{100 * mean:.2f} ± {100 * (hi - mean):.2f}"


def _sweep_table(frame: Any, names: Sequence[str], bers: Sequence[float]) -> list[str]:
    lines = ["| BER | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for b in bers:
        cells = ["-" if (r := row(frame, n, b)) is None else _ci(r) for n in names]
        lines.append(f"| {b:.0e} | " + " | ".join(cells) + " |")
    return lines


def _figures(res: Results, out: Path) -> None:
    ev, cfg = res.ev, res.ev.config
    cost = by_variant(ev.costs)
    names = cfg.sweep_variants
    plot_sweep(ev.sweep, names, out / "fig_sweep.png", "float32 parameter bit flips")
    plot_sweep(ev.sweep, ["baseline", cfg.main_variant, "hardened-pruned"], out / "fig6.png",
               "Fig. 6: hardened vs hardened pruned")
    if ev.fig3 is not None and ev.fig3_ber is not None:
        plot_fig3(ev.fig3, cost, cfg.fig3_ratios, ev.fig3_ber, out / "fig3.png")
    plot_fig4(ev.fig4, cost, cfg.fig4_ratios, ev.fig4_ber, out / "fig4.png")
    plot_fig5(ev.fig5, ev.base_acc, out / "fig5.png")
    plot_fig7(ev.costs, names, out / "fig7.png")
    plot_sweep(res.int8, ["baseline-int8", "hardened-int8"], out / "fig_int8.png",
               "INT8-stored parameter bit flips")
    if res.rank_rows:
        plot_rank(res.rank_rows, out / "rank.png")


def _intro(res: Results) -> list[str]:
    ev, cfg, info = res.ev, res.ev.config, res.data_info
    base = by_variant(ev.costs)["baseline"]
    n_eval = cfg.eval_samples or info.n_test
    ckpt = Path(res.checkpoint).name if res.checkpoint else "not cached"
    # The leading blank line keeps this paragraph out of the claims table above it.
    return [
        "", "Reproduction of Ahmadilivani et al., *Cost-Effective Fault Tolerance for CNNs Using "
        "Parameter Vulnerability Based Hardening and Pruning* (2024) with flipclock's "
        "`nnmap` (`flipclock harden study`).", "",
        f"Baseline: {cfg.model}, {cfg.epochs} epochs (checkpoint `{ckpt}`), data "
        f"`{info.fingerprint[:16]}` ({info.n_train} train / {info.n_test} test images). Fault "
        f"trials: {cfg.repetitions} repetitions per float32 point, {cfg.int8_repetitions} per "
        f"INT8 point, each on {n_eval} test images (seeded subset, seed {cfg.seed}); "
        "fault-free accuracies and times on the whole test set. Campaign time "
        f"{res.seconds / 60:.1f} min.", "",
        "## Table I: baseline", "",
        "| CNN | Dataset | Accuracy | #parameters | #MACs | Execution time over the test set |",
        "|---|---|---:|---:|---:|---:|",
        f"| {cfg.model} | {info.name} | {100 * ev.base_acc:.2f} % | {base['parameters']:,} | "
        f"{base['macs']:,} | {base['seconds']:.3f} s (CPU time, 1 thread) |"]


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
          "Validation against fault injection into each channel's weights on "
          f"{cfg.rank_samples} test images (`rank_validation.csv`): *noise* = "
          f"{cfg.rank_noise_trials} Gaussian perturbations of standard deviation "
          f"{cfg.rank_noise} x the layer's weight standard deviation (the perturbation Eq. (1) "
          "bounds to first order); *bitflip* = one float32 bit flip per bit position 0..31 at "
          "a random weight of the channel (the paper's fault model, stratified). Metric: "
          "top-1 mismatch rate with the fault-free network. Spearman rank correlation of "
          "Eq. (1) with the measured mismatch:", "",
          "| Layer | channels | Spearman (noise) | Spearman (bit flip) |", "|---|---:|---:|---:|"]
    summary = res.ev.rank_summary
    for layer in dict.fromkeys(r["layer"] for r in summary):
        got = {r["kind"]: r for r in summary if r["layer"] == layer}
        cells = [f"{got[k]['spearman']:.3f}" if k in got else "-" for k in ("noise", "bitflip")]
        md.append(f"| {layer} | {next(iter(got.values()))['channels']} | "
                  + " | ".join(cells) + " |")
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
        "words or INT8 codes (`nnmap/bitflip.py`).", "",
        "## BER sweep (float32): accuracy drop in percentage points, mean ± 95 % CI", "",
        *_sweep_table(ev.sweep, names, cfg.bers), "",
        "Highest swept BER tolerated (mean drop < 5 pt there and below): " + ", ".join(
            f"{n} {fmt_ber(ev.tolerated.get(n))}" for n in names) + ".", "",
        f"Variants: `intervals-only` = EDAC layers, no duplication; `{cfg.main_variant}` = "
        f"{cfg.ratio:.0%} duplication + EDAC (all output neurons of the last layer "
        "duplicated); `tmr-1` = every channel triplicated + voter; `pruned` = Table II "
        f"model; `hardened-pruned` = it with {cfg.ratio:.0%} duplication + EDAC.", "",
        "![BER sweep](fig_sweep.png)", "",
        "## Fig. 6: hardened vs hardened pruned", "", "![Fig. 6](fig6.png)"]


def _fig3(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    if ev.fig3 is None or ev.fig3_ber is None:
        return []
    cost = by_variant(ev.costs)
    rule = "given" if cfg.fig3_ber else ("lowest swept BER at which the unprotected model "
                                         "lost half of its accuracy above chance")
    md = [f"## Fig. 3: duplication + EDAC vs triplication + voter at BER {ev.fig3_ber:.0e}",
          "", "Detection intervals are not used for non-duplicated channels here (the "
          f"paper's Fig. 3). BER rule: {rule}.", "",
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
    cost = by_variant(ev.costs)
    rule = "given" if cfg.fig4_ber else (f"highest swept BER at which the {cfg.ratio:.0%}-"
                                         "hardened model drops < 5 pt")
    md = [f"## Fig. 4: selective duplication + EDAC at BER {ev.fig4_ber:.0e}", "",
          f"BER rule: {rule}.", "",
          "| Hardening ratio | accuracy drop (pt) | parameters | execution time vs baseline |",
          "|---:|---:|---:|---:|"]
    for r in cfg.fig4_ratios:
        name = variant_name("hardened", r)
        c = cost[name]
        md.append(f"| {r:.0%} | {_ci(row(ev.fig4, name, ev.fig4_ber))} | {c['parameters']:,} | "
                  f"{100 * (c['seconds_rel'] - 1):+.1f} % |")
    return [*md, "", "![Fig. 4](fig4.png)"]


def _fig5(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    md = ["## Fig. 5: vulnerability-based vs L1-norm pruning", "",
          f"Every conv and hidden FC layer pruned by the ratio, then fine-tuned "
          f"{cfg.finetune_epochs} epochs (SGD, lr {cfg.finetune_lr:g}, momentum 0.9). "
          f"Unpruned: {100 * ev.base_acc:.2f} %.", "",
          "| Ratio | vulnerability: pruned -> fine-tuned | L1: pruned -> fine-tuned | "
          "difference after fine-tuning |", "|---:|---:|---:|---:|"]
    by = {(r["criterion"], r["ratio"]): r for r in ev.fig5}
    for r in cfg.prune_ratios:
        v, l1 = by.get(("vulnerability", r)), by.get(("l1", r))
        if v and l1:
            md.append(f"| {r:.0%} | {100 * v['accuracy_pruned']:.2f} -> {100 * v['accuracy']:.2f}"
                      f" % | {100 * l1['accuracy_pruned']:.2f} -> {100 * l1['accuracy']:.2f} % "
                      f"| {100 * (v['accuracy'] - l1['accuracy']):+.2f} pt |")
    return [*md, "", "![Fig. 5](fig5.png)"]


def _table2(res: Results) -> list[str]:
    cfg = res.ev.config
    pr = by_variant(res.ev.costs)["pruned"]
    t2 = res.chosen
    md = [f"## Table II: largest pruning ratios within {100 * cfg.prune_tolerance:g} point of "
          "the baseline", "",
          "| CNN | CONV ratio | FC ratio | Accuracy | #params pruned / baseline | #MACs "
          "pruned / baseline | Execution time pruned / baseline |",
          "|---|---:|---:|---:|---:|---:|---:|",
          f"| {cfg.model} | {t2['conv_ratio'] or 0:.0%} | {t2['fc_ratio'] or 0:.0%} | "
          f"{100 * pr['accuracy']:.2f} % | {pr['parameters_rel']:.4f} | {pr['macs_rel']:.4f} "
          f"| {pr['seconds_rel']:.3f} |", "",
          "Search (bisection over the grid: FC ratio first with conv 0, then conv ratio):", "",
          "| conv | FC | accuracy | within |", "|---:|---:|---:|---|"]
    md += [f"| {p['conv_ratio']:.0%} | {p['fc_ratio']:.0%} | {100 * p['accuracy']:.2f} % | "
           f"{'yes' if p['within'] else 'no'} |" for p in res.table2]
    return md


def _overheads(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    cost = by_variant(ev.costs)
    hp, main, base = cost["hardened-pruned"], cost[cfg.main_variant], cost["baseline"]
    md = ["## Overheads and Fig. 7", "",
          "| Variant | fault-free accuracy | parameters | stored numbers | memory | MACs | "
          "time (s) | time vs baseline |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {c['variant']} | {100 * c['accuracy']:.2f} % | {c['parameters']:,} | "
           f"{c['stored']:,} | {c['memory_bytes'] / 1024:.1f} KiB | {c['macs']:,} | "
           f"{c['seconds']:.3f} | {100 * (c['seconds_rel'] - 1):+.1f} % |" for c in ev.costs]
    return [*md, "",
            f"Hardened pruned vs hardened: parameters "
            f"{hp['parameters'] / main['parameters']:.3f}x, MACs {hp['macs'] / main['macs']:.3f}x,"
            f" time {hp['seconds'] / main['seconds']:.3f}x; vs the unprotected baseline: memory "
            f"{hp['memory_bytes'] / base['memory_bytes']:.3f}x, time "
            f"{hp['seconds'] / base['seconds']:.3f}x. Times are the best of "
            f"{cfg.timing_repeats} passes over the test set in CPU seconds on one thread of a "
            "shared machine (not a GPU as in the paper): expect noise of several percent.", "",
            "![Fig. 7](fig7.png)"]


def _int8(res: Results) -> list[str]:
    ev, cfg = res.ev, res.ev.config
    n_eval = cfg.eval_samples or res.data_info.n_test
    clean = {n: row(res.int8, n, cfg.bers[0]) for n in ("baseline-int8", "hardened-int8")}
    float_clean = row(ev.sweep, "baseline", cfg.bers[0]).clean_accuracy_mean
    return ["## INT8 storage", "",
            "Batch norm folded, weights int8 per output channel, vectors int8 per tensor, EDAC "
            "bounds rounded outward; flips in the int8 codes. Accuracy drop (pt):", "",
            f"Fault-free accuracy on the {n_eval} evaluation images: " + ", ".join(
                f"{n} {100 * r.clean_accuracy_mean:.2f} %" for n, r in clean.items()
                if r is not None) + f" (float32 baseline: {100 * float_clean:.2f} %).", "",
            *_sweep_table(res.int8, ["baseline-int8", "hardened-int8"], cfg.bers), "",
            "![INT8](fig_int8.png)"]


FILES = ("## Files\n\n`sweep.csv`, `fig3.csv`, `fig4.csv`, `int8.csv` (campaign summaries: "
         "mean and 95 % CI per point), `campaigns/*/results.jsonl` (every trial), `fig5.csv`, "
         "`table2_search.csv`, `overheads.csv`, `vulnerability.csv`, `rank_validation.csv`, "
         "`rank_correlation.csv`, `models/*.pt` (every variant, `torch.load`), "
         "`settings.json`, `summary.json`.")


def write_report(res: Results, out: Path, extra_settings: Mapping[str, Any]) -> Path:
    """Draw the figures and write ``report.md`` and ``settings.json`` into ``out``."""
    _figures(res, out)
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
