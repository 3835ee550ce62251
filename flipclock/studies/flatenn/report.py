"""The Markdown report (``report.md``) on the study base's :class:`~flipclock.studies.base.Report`:
provenance and claims first (QUICK in the title of quick runs), then one section per
figure, the headline comparisons next to the paper's, the landscapes and the method notes.

Every function here reads the summary dict (:func:`.summary.summarize_study`) only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flipclock.studies.base import Claim, Report
from nnmap.sram_faults import WeightLayout

from .config import LABELS, FlatStudyConfig

__all__ = ["build_report"]

Summary = Mapping[str, Any]


def _fmt(d: Mapping[str, float] | None) -> str:
    if d is None:
        return "n/a"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def _range(comps: Mapping[str, Any], key: str, kind: str) -> str:
    vals = [v["mean"] for v in comps[key][kind].values() if v is not None]
    if not vals:
        return "n/a"
    return f"{min(vals):+.2f} .. {max(vals):+.2f}"


def _pct(rates: Any) -> str:
    return ", ".join(f"{100 * r:g} %" for r in rates)


def _rates(cfg: FlatStudyConfig) -> list[float]:
    return [0.0, *sorted(r for r in cfg.rates if r > 0)]


def _intro(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    d = s["dataset"]
    return [f"{cfg.weight_bits}-bit weights, {cfg.act_bits}-bit activations (QAT, Jacob et "
            f"al.); {d['n_train']} training / {d['n_test']} test images "
            f"(`{d['fingerprint'][:16]}`); conventional models {cfg.epochs} epochs, SAQ models "
            f"{cfg.saq_epochs}; fault rates {_pct(cfg.rates)}; {cfg.trials} trials per point; "
            f"fault seed {cfg.fault_seed}. All settings: `settings.json`; every number: "
            "`study.json`.", "",
            "Claim verdicts: paired 95 % CIs (same fault maps in both models); *holds* when "
            "the CI lies on the claimed side, *opposite* when it lies on the other side, "
            "*inconclusive* when it includes 0; sharpness orderings need disjoint CIs; the "
            "sparsity and matching thresholds are exact figures (holds / opposite)."]


def _models(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    m, sel = s["models"], s["selection"]
    lines = ["## Models", "",
             "| model | fault-free accuracy | sparsity | alpha | rho | epochs | checkpoint |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for label in LABELS:
        c = m[label]["config"]
        lines.append(f"| {label} | {100 * m[label]['accuracy']:.2f} % | "
                     f"{m[label]['sparsity']:.1f} % | {c['sparsity']['alpha']:g} | "
                     f"{c['rho']:g} | {c['epochs']} | `{m[label]['key']}` |")
    gap = 100 * (m["AS"]["accuracy"] - m["standard"]["accuracy"])
    lines += ["", "### How standard and AS were matched", "",
              f"The standard model is trained once. The AS model is the L1-regularized model "
              f"(Eq. 1, alpha_l = alpha / activations per image) with the highest sparsity among "
              f"alpha in {list(cfg.alphas)} (then {cfg.match_refine} bisection steps of the "
              f"tolerance edge) whose fault-free accuracy is within "
              f"{100 * cfg.match_tolerance:g} % of the standard model's. Chosen: alpha = "
              f"{sel['alpha']:g}, gap {gap:+.2f} % "
              + ("(matched)." if sel["matched"] else
                 "(**no alpha was within the tolerance; the closest was taken**)."),
              "", "| alpha | accuracy | sparsity | gap to standard | within tolerance |",
              "|---:|---:|---:|---:|---|"]
    for r in sel["alpha_sweep"]:
        lines.append(f"| {r['alpha']:g} | {100 * r['accuracy']:.2f} % | {r['sparsity']:.1f} % | "
                     f"{100 * r['gap']:+.2f} % | {'yes' if r['matched'] else 'no'} |")
    lines += ["", f"SAQ radius sweep (rho maximising fault-free accuracy, {cfg.saq_epochs} "
              "epochs each):", "", "| model | rho | accuracy | sparsity |", "|---|---:|---:|---:|"]
    for r in sel["rho_sweep"]:
        mark = " **(chosen)**" if sel["rho"][r["model"]] == r["rho"] else ""
        lines.append(f"| {r['model']} | {r['rho']:g}{mark} | {100 * r['accuracy']:.2f} % | "
                     f"{r['sparsity']:.1f} % |")
    return [*lines, "", "Selection of alpha and rho uses the test set, as in the paper."]


def _sparsity(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    m, top = s["models"], s["max_rate"]
    lines = ["## Activation sparsity (Fig. 2)", "", "![sparsity](figs/fig2_sparsity.png)", "",
             "| model | fault-free | " + " | ".join(f"{k} {100 * top:g} %" for k in cfg.kinds)
             + " |", "|---|---:|" + "---:|" * len(cfg.kinds)]
    for label in LABELS:
        lines.append(f"| {label} | {m[label]['sparsity']:.1f} % | " + " | ".join(
            f"{s['sparsity_under_faults'][label].get(k, float('nan')):.1f} %"
            for k in cfg.kinds) + " |")
    return [*lines, "", "Per layer (fault-free): " + "; ".join(
        f"{label}: " + ", ".join(f"{k} {v:.0f} %" for k, v in
                                 m[label]["sparsity_per_layer"].items()) for label in LABELS)]


def _accuracy(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    rates = _rates(cfg)
    head = " | ".join(f"{100 * r:g} %" for r in rates)
    lines = ["## Accuracy under SRAM weight faults (Fig. 4)", "",
             "![accuracy](figs/fig4_accuracy_vs_rate.png)", "",
             "Mean test accuracy with 95 % CI (Student t over trials):", ""]
    for kind in cfg.kinds:
        lines += [f"**{kind}**", "", f"| model | {head} |", "|---|" + "---:|" * len(rates)]
        for label in LABELS:
            cells = []
            for r in rates:
                a = s["accuracy"][label][kind][f"{r:g}"]
                cells.append("n/a" if a is None else f"{100 * a['mean']:.2f} "
                             f"[{100 * a['low']:.2f}, {100 * a['high']:.2f}]")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Paired differences (same fault maps in both models), percentage points, mean "
              "[95 % CI]:", "", f"| comparison | kind | {head} |",
              "|---|---|" + "---:|" * len(rates)]
    for key, per_kind in s["comparisons"].items():
        for kind in cfg.kinds:
            lines.append(f"| {key} | {kind} | " + " | ".join(
                _fmt(per_kind[kind][f"{r:g}"]) for r in rates) + " |")
    return lines


def _headline(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    paper, m, c = s["paper"], s["models"], s["comparisons"]
    top = s["max_rate"]
    t, at = f"{top:g}", f"at {100 * top:g} %"

    def p(key: str) -> Any:
        return paper.get(key, "n/a") if paper else "n/a"

    def paper_range(key: str, kind: str) -> str:
        pr = paper[key].get(kind) if paper else None
        return "n/a" if pr is None else f"{pr[0]:+.2f} .. {pr[1]:+.2f}"

    lines = ["## Headline comparisons: paper vs ours", "",
             f"Percentage points at the highest rate ({100 * top:g} %) unless a range is given "
             "(range = over all rates, 0 % included, as in the paper).", "",
             "| quantity | paper | ours |", "|---|---:|---:|",
             f"| sparsity standard -> AS | {p('sparsity_standard')} % -> {p('sparsity_as')} % | "
             f"{m['standard']['sparsity']:.1f} % -> {m['AS']['sparsity']:.1f} % |"]
    if "flip" in cfg.kinds:
        drop = m["AS"]["sparsity"] - s["sparsity_under_faults"]["AS"].get("flip", float("nan"))
        lines.append(f"| AS sparsity lost at the highest flip rate | "
                     f"{p('sparsity_drop_under_faults')} points | {drop:.1f} points |")
    for kind in cfg.kinds:
        flip = kind == "flip"
        lines += [f"| AS - standard, {kind}, range | {paper_range('as_minus_standard', kind)} | "
                  f"{_range(c, 'AS - standard', kind)} |",
                  f"| AS - standard, {kind}, {at} | "
                  f"{p('as_minus_standard_at_max') if flip else 'n/a'} | "
                  f"{_fmt(c['AS - standard'][kind].get(t))} |"]
    for key, name in (("saq_gain_standard", "standard+SAQ - standard"),
                      ("saq_gain_as", "AS+SAQ - AS")):
        lines += [f"| {name}, {kind}, range | {paper_range(key, kind)} | "
                  f"{_range(c, name, kind)} |" for kind in cfg.kinds]
    for kind in cfg.kinds:
        val = p("as_saq_minus_standard_at_max")
        flip = kind == "flip"
        lines += [f"| AS+SAQ - standard, {kind}, {at} | "
                  f"{val if flip and val not in (None, 'n/a') else 'n/a'} | "
                  f"{_fmt(c['AS+SAQ - standard'][kind].get(t))} |",
                  f"| AS+SAQ - standard+SAQ, {kind}, {at} | "
                  f"{p('as_saq_minus_standard_saq_at_max') if flip else 'n/a'} | "
                  f"{_fmt(c['AS+SAQ - standard+SAQ'][kind].get(t))} |"]
    if paper is None:
        lines += ["", f"(The paper has no numbers for {cfg.model}.)"]
    return lines


def _ablation(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    top = s["max_rate"]
    lines = ["### SAQ radius ablation (beyond the paper)", "",
             f"Every SAQ radius of the sweep at the highest rate ({100 * top:g} %), same fault "
             "maps; gain = paired accuracy difference to the conventionally trained model of "
             "the same kind (percentage points, 95 % CI); S(r) as below. The paper's rule picks "
             "the rho with the best fault-free accuracy (**chosen**).", "",
             "| model | rho | fault-free | S(r) | " + " | ".join(
                 f"{k}: accuracy / gain" for k in cfg.kinds) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(cfg.kinds)]
    for r in s["rho_ablation"]:
        cells = []
        for k in cfg.kinds:
            a = r[f"{k}_accuracy"]
            cells.append(("n/a" if a is None else f"{100 * a:.2f} %") + " / "
                         + _fmt(r[f"{k}_gain"]))
        ff = "n/a" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f} %"
        lines.append(f"| {r['model']} | {r['rho']:g}{' **(chosen)**' if r['chosen'] else ''}"
                     f" | {ff} | {r['sharpness']:.4f} | " + " | ".join(cells) + " |")
    return lines


def _landscapes(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    lc, top = cfg.landscape, s["max_rate"]
    lines = ["## Loss landscapes (Fig. 3)", "",
             "Around the quantized weights, filter-normalized random directions (Li et al.; "
             f"biases and batch norm excluded), cross-entropy on {lc.samples} training images.",
             "", "![1-D](figs/fig3_landscape_1d.png)", "",
             "![contour](figs/fig3_landscape_contour.png)", "",
             "![surface](figs/fig3_landscape_surface.png)", "",
             f"Sharpness S(r) = mean loss increase at radius r = {lc.radius:g} over "
             f"{lc.directions} directions x 2 signs (95 % CI); loss increase along sampled "
             f"fault directions at {100 * lc.fault_rate:g} % (t = 1, mean of "
             f"{lc.fault_samples} maps); mean accuracy drop at {100 * top:g} % (over kinds):",
             "", "| model | base loss | S(r) | " + " | ".join(
                 f"fault dir. {k}" for k in lc.fault_kinds)
             + f" | accuracy drop at {100 * top:g} % |",
             "|---|---:|---:|" + "---:|" * len(lc.fault_kinds) + "---:|"]
    for label in LABELS:
        sh = s["sharpness"][label]
        fd = s["fault_direction_loss_increase"][label]
        lines.append(f"| {label} | {sh['base_loss']:.4f} | {sh['mean']:.4f} "
                     f"[{sh['low']:.4f}, {sh['high']:.4f}] | " + " | ".join(
                         f"{fd[k]:.4f}" for k in lc.fault_kinds)
                     + f" | {100 * s['accuracy_drop_at_max_rate'][label]:.2f} % |")
    corr = s["sharpness_vs_drop_correlation"]
    if corr:
        lines += ["", f"Sharpness vs accuracy drop across the four models: Pearson r = "
                  f"{corr['pearson']:+.2f}, Spearman rho = {corr['spearman']:+.2f}, exact "
                  f"permutation p = {corr['p_value']:.2f} (n = 4: a trend, not evidence)."]
    lines += ["", "Fault directions (beyond the paper): loss along theta + t * delta, delta the "
              "weight change of a sampled fault map.", ""]
    return lines + [f"![{k}](figs/landscape_fault_{k}.png)" for k in lc.fault_kinds]


_NOTES = [
    "* Sparsity: percentage of zero *quantized* post-ReLU activations per layer, over all "
    "test images, averaged over layers. With 4-bit activations small positive values round "
    "to 0, so a standard model is already sparser than a float one.",
    "* Eq. (1) is used with both terms averaged over the batch, alpha_l = alpha / "
    "(activations of layer l per image).",
    "* SAQ: gradient w.r.t. the quantized weights, eps = rho g/||g||_2 over all MAC weights, "
    "second pass at Q(w) + eps with batch-norm and activation-range statistics frozen, SGD "
    "with weight decay; SAQ models train half the epochs.",
    "* Faults: every stored weight bit is faulty with probability = rate (Binomial count, "
    "uniform positions); stuck-at faults are masked where the bit already holds the stuck "
    "value; flips invert; biases and scales are not faulted. The four models see the same "
    "fault positions in the same trial.",
    "* Landscapes: loss (cross-entropy only) around the quantized weights, with activations "
    "quantized, filter-normalized directions (Li et al.), biases and batch norm excluded.",
]


def _notes(cfg: FlatStudyConfig, s: Summary, layout: WeightLayout) -> list[str]:
    b = s["benchmark"]
    return ["## Method notes", "",
            "* QAT (Jacob et al.): per-layer symmetric narrow-range weights (codes +-"
            f"{(1 << (cfg.weight_bits - 1)) - 1}), unsigned {cfg.act_bits}-bit activations "
            "with moving-average ranges, 8-bit input, int32 bias, clipped STE; batch norm "
            "(ResNet) stays a per-channel affine map after the accumulator, so the stored "
            "weights are the convolution weights. Inference (and every fault trial) runs the "
            "integer path: exact integer accumulators from the stored codes.", *_NOTES,
            "", "## SRAM weight buffer", "", layout.markdown(),
            f"Fault trial cost: clean inference {b['clean_s']:.3f} s, trial (sample + apply + "
            f"faulty inference + sparsity) {b['trial_s']:.3f} s, ratio {b['ratio']:.2f} "
            "(target <= 1.2).", "",
            "Files: `campaign/results.jsonl` (every trial), `campaign_summary.csv`, "
            "`paired_differences.csv`, `landscape.json`, `study.json`, `settings.json`."]


def build_report(cfg: FlatStudyConfig, s: Summary, layout: WeightLayout) -> Report:
    """The whole report, ready for :meth:`Report.write`."""
    report = Report(f"FlatENN study: {cfg.model} on {s['dataset']['name']}", cfg)
    for claim in s["claims"]:
        report.add_claim(Claim(**claim))
    sections: list[Callable[[FlatStudyConfig, Summary], list[str]]] = [
        _intro, _models, _sparsity, _accuracy, _headline]
    if s.get("rho_ablation"):
        sections.append(_ablation)
    sections.append(_landscapes)
    for section in sections:
        report.add("\n".join(section(cfg, s)) + "\n")
    report.add("\n".join(_notes(cfg, s, layout)) + "\n")
    return report
