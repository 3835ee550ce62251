"""The Markdown report (``report.md``, on the study base's
:class:`~flipclock.studies.base.Report`: provenance and claims first, QUICK in the title and
first line of quick runs) and the headline (``headline.md``: one table, pasted verbatim into
the README).

Every function here reads the summary dict (:func:`.summary.summarize_study`) only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flipclock.studies.base import Claim, Report
from nnmap.sram_faults import WeightLayout
from nnmap.stats import t_quantile

from .claims import COMPARISONS, PAPER
from .config import FlatStudyConfig
from .summary import UNIT_NAMES, comparisons, kinds_for
from .training import PAPER_VARIANTS, variant_labels

__all__ = ["build_report", "headline_markdown"]

Summary = Mapping[str, Any]

QUICK_LINE = "QUICK run: small sizes for a demo or a test; its numbers support no claim."


def _ci(d: Mapping[str, Any] | None, digits: int = 2, sign: bool = True) -> str:
    if d is None:
        return "n/a"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{f.format(d['mean'])} [{f.format(d['low'])}, {f.format(d['high'])}]"


def _pct(rate: float) -> str:
    return f"{100 * rate:g} %"


def _rates(cfg: FlatStudyConfig) -> list[float]:
    return [0.0, *sorted(r for r in cfg.rates if r > 0)]


def _over(s: Summary) -> str:
    c = s["config"]
    if c["models"] < 2:
        return (f"1 model x {c['trials']} trials: **no model variance** in the intervals "
                "(quick run)")
    return f"{c['models']} trained models x {c['trials']} fault maps per model"


def _max_row(s: Summary, a: str, b: str, unit: str, kind: str) -> Mapping[str, Any] | None:
    for r in s["max_gain"]:
        if (r["a"], r["b"], r["unit"], r["kind"]) == (a, b, unit, kind):
            return r
    return None


def _max_cell(r: Mapping[str, Any] | None) -> str:
    if r is None:
        return "not measured"
    return f"{_ci(r)} at {_pct(r['rate_of_max'])}: {r['verdict']}"


def _claim(s: Summary, prefix: str) -> Mapping[str, Any] | None:
    return next((c for c in s["claims"] if c["statement"].startswith(prefix)), None)


def headline_markdown(cfg: FlatStudyConfig, s: Summary) -> str:
    """``headline.md``: title, one table (paper-faithful rows first, controls labelled),
    two sentences."""
    paper = PAPER.get(cfg.model, {})
    t = s["test"]
    units = list(cfg.units)
    kind = "flip" if "flip" in cfg.kinds else cfg.kinds[0]
    title = (f"FlatENN on {cfg.model} / {s['dataset']['name']} ({cfg.weight_bits}-bit): "
             "paper vs ours")
    lines = [f"#### {'QUICK: ' if cfg.quick else ''}{title}", ""]
    if cfg.quick:
        lines += [QUICK_LINE, ""]
    head = " | ".join(f"ours, rate {UNIT_NAMES[u]}: largest [95 % CI] at rate: verdict"
                      for u in units)
    lines += [f"| {kind} faults | paper | {head} |", "|---|---|" + "---|" * len(units)]
    sp = _claim(s, "AS sparsity well above standard")
    std_sp, as_sp = t["standard"]["sparsity"]["mean"], t["AS"]["sparsity"]["mean"]
    fstd, fas = t["standard"]["float_sparsity"]["mean"], t["AS"]["float_sparsity"]["mean"]
    same = ["fault-free, same"] * (len(units) - 1)
    lines.append(" | ".join([
        "| sparsity standard -> AS, 4-bit zeros (float zeros)",
        f"{paper.get('sparsity_standard', 'n/a')} -> {paper.get('sparsity_as', 'n/a')} %",
        f"{std_sp:.1f} -> {as_sp:.1f} % ({fstd:.1f} -> {fas:.1f} %): "
        f"{sp['verdict'] if sp else 'n/a'}", *same]) + " |")
    acc = " / ".join(f"{t[k]['accuracy']['mean']:.2f}" for k in PAPER_VARIANTS)
    lines.append(" | ".join(["| fault-free accuracy, standard / AS / standard+SAQ / AS+SAQ",
                             "n/a", f"{acc} %", *same]) + " |")
    ff = _claim(s, "SAQ improves fault-free accuracy (standard)")
    if ff:
        lines.append(" | ".join([
            "| standard+SAQ - standard, fault-free", ff["paper"],
            f"{ff['ours']}: {ff['verdict']}", *same]) + " |")
    for comp in COMPARISONS:
        if comp.role != "paper" and not cfg.controls:
            continue
        if kind not in kinds_for(cfg, comp):
            continue
        pr = paper.get(comp.key, {}).get(kind) if comp.role == "paper" else None
        ptxt = ("n/a (control)" if comp.role != "paper" else "n/a" if pr is None else
                f"up to {pr[1]:+.2f}" + (" (0-5 %)" if pr[0] is not None else " at 5 %"))
        label = comp.key if comp.role == "paper" else f"{comp.key} ({comp.role})"
        lines.append(" | ".join([f"| {label}", ptxt,
                                 *(_max_cell(_max_row(s, comp.a, comp.b, u, kind))
                                   for u in units)]) + " |")
    floor = next((r for r in s["accuracy"] if (r["variant"], r["unit"], r["kind"], r["rate"])
                  == ("standard", "bit", kind, cfg.max_rate)), None)
    floor_txt = "" if floor is None else (
        f" At {_pct(cfg.max_rate)} per bit the standard model keeps "
        f"{floor['mean']:.1f} % (chance {100 / len(s['dataset']['classes']):.0f} %).")
    lines += ["", f"Differences in percentage points of test accuracy, paired (same fault maps), "
              f"95 % CI over {_over(s)} (nested: model variance included); \"largest\" is the "
              f"rate of {', '.join(_pct(r) for r in _rates(cfg))} where our mean lies furthest "
              "on the claimed side, like the paper's \"up to\". Rate per stored bit: every "
              "stored bit is faulty with probability r; per stored weight: every "
              f"{cfg.weight_bits}-bit weight is faulty with probability r, in one uniform bit. "
              f"Paper-faithful models: SAQ for half the epochs ({cfg.saq_epochs} vs "
              f"{cfg.epochs}), alpha and rho chosen on a validation split of the training "
              "data; the controls are labelled." + floor_txt, ""]
    return "\n".join(lines)


def _intro(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    d = s["dataset"]
    sel = s["selection"]
    return [
        f"{cfg.weight_bits}-bit weights, {cfg.act_bits}-bit activations (QAT, Jacob et al.); "
        f"{d['name']}: {d['n_train']} training images, of which {sel['validation']['images']} "
        f"form the validation split (seeded permutation, seed {sel['validation']['seed']}), "
        f"so models train on {d['n_train'] - sel['validation']['images']}; {d['n_test']} test "
        f"images for fault-free accuracy and sparsity, the first {s['trial_images']} of them "
        f"in every fault trial. Every variant is trained {cfg.models} time(s) (training seeds "
        f"{', '.join(map(str, range(cfg.seed, cfg.seed + cfg.models)))}); conventional "
        f"models {cfg.epochs} epochs, paper-faithful SAQ models {cfg.saq_epochs}; fault "
        f"rates {', '.join(_pct(r) for r in cfg.rates)} under both rate definitions; "
        f"{cfg.trials} fault maps per model and point; fault seed {cfg.fault_seed}. All "
        "settings: `settings.json`; every number: `study.json`.", "",
        f"Every interval is a 95 % CI over {_over(s)}: the mean of the per-model means, "
        "Student t over the models (`nnmap.stats.nested_ci`; differences paired by model and "
        "fault map, `paired_nested_ci`)."
        + (f" With {cfg.models} models the t quantile is "
           f"{t_quantile(0.975, cfg.models - 1):.2f}: the intervals are wide where the models "
           "differ, which a single model would hide." if cfg.models > 1 else
           " **With one model the intervals hold no model-to-model variance.**"), "",
        "Verdicts (fixed before the runs): *holds* when the CI lies on the claimed side of 0, "
        "*opposite* when on the other side, *inconclusive* when it includes 0. A claim the "
        "paper states as \"up to X\" over its rates is read at the rate where our mean lies "
        "furthest on the claimed side (named in the claim); choosing the rate after the fact "
        "favours *holds*, so the per-rate verdicts are given below and the count of rates "
        "where a claim holds is beside the maximum.", "",
        "Reductions against the paper, for a full run of about 20 minutes on 2 cores: "
        f"{cfg.epochs} conventional epochs, {cfg.trials} fault maps per model and point "
        f"({cfg.models * cfg.trials} per point in all), fault trials on {s['trial_images']} "
        "test images, the SAQ controls on "
        f"{', '.join(cfg.control_kinds)} faults only, landscapes on {cfg.landscape.samples} "
        f"training images with {cfg.landscape.points_1d} / {cfg.landscape.points_2d} points "
        "per axis."]


def _definitions(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    lay = s["layout"]
    b = cfg.weight_bits
    return [
        "## Fault-rate definitions", "",
        f"The weight buffer stores {lay['weights']} weights of {b} bits ({lay['stored_bits']} "
        "stored bits; layout below). A fault map of rate r is drawn in one of two ways:", "",
        f"* **per stored bit** (`unit = bit`): each of the {lay['stored_bits']} stored bits is "
        "faulty independently with probability r (a Binomial number of distinct bits, "
        f"uniformly placed). A weight can hold several faulty bits (probability about "
        f"{b * (b - 1) // 2} r^2).",
        f"* **per stored weight** (`unit = weight`): each of the {lay['weights']} weights is "
        "faulty independently with probability r, and a faulty weight has exactly one faulty "
        f"bit, uniform among its {b} bits. Rate r per weight puts as many faulty cells in the "
        f"buffer as r / {b} per bit.", "",
        "Kinds: *flip* inverts the bit; *sa0* / *sa1* hold it at 0 / 1 (masked where the bit "
        "already has that value). Biases and scales live in registers and are not faulted. "
        "The paper says only that faults are \"distributed randomly and uniformly\" at rates "
        "1-5 %; it does not say per bit or per weight, so both are run and neither is "
        "preferred."]


def _selection(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    sel = s["selection"]
    lines = ["## Choice of alpha and rho (validation split, replicate 0)", "",
             f"The standard model's validation accuracy: {100 * sel['standard_val_accuracy']:.2f}"
             f" %. AS: among alpha in {list(cfg.alphas)}"
             + (f" (then {cfg.match_refine} bisection steps)" if cfg.match_refine else "")
             + f", the sparsest model within {100 * cfg.match_tolerance:g} % of it. Chosen: "
             f"alpha = {sel['alpha']:g} "
             + ("(matched)." if sel["matched"] else
                "(**no alpha was within the tolerance; the closest was taken**)."),
             "", "| alpha | validation accuracy | 4-bit zeros | gap to standard | within "
             "tolerance |", "|---:|---:|---:|---:|---|"]
    for r in sel["alpha_sweep"]:
        lines.append(f"| {r['alpha']:g} | {100 * r['accuracy']:.2f} % | {r['sparsity']:.1f} % "
                     f"| {100 * r['gap']:+.2f} % | {'yes' if r['matched'] else 'no'} |")
    if sel["matched"] and sel["alpha"] == max(r["alpha"] for r in sel["alpha_sweep"]):
        lines += ["", "The chosen alpha is the largest of the grid: the edge of the tolerance "
                  "lies above it, so a larger alpha might give a sparser AS model still within "
                  "the tolerance (extend `--alphas` to find it)."]
    floor = sel["chance"] + 0.5 * (sel["standard_val_accuracy"] - sel["chance"])
    lines += ["", f"SAQ radius grid {list(cfg.rhos)} ({cfg.saq_epochs} epochs each): the "
              "paper's rule (best fault-free accuracy), read on the validation split, among "
              f"the radii that train (validation accuracy >= {100 * floor:.1f} %, halfway "
              "from chance to the standard model; a radius that does not train is dropped):",
              "", "| model | rho | validation accuracy | trains | chosen |",
              "|---|---:|---:|---|---|"]
    for r in sel["rho_sweep"]:
        lines.append(f"| {r['model']} | {r['rho']:g} | {100 * r['accuracy']:.2f} % | "
                     f"{'yes' if r['trains'] else '**no (dropped)**'} | "
                     f"{'**chosen**' if r['chosen'] else ''} |")
    for model in ("standard+SAQ", "AS+SAQ"):
        if not any(r["trains"] for r in sel["rho_sweep"] if r["model"] == model):
            lines += ["", f"**No radius trained {model}: the best was taken; the {model} "
                      "results of this run mean nothing. Give smaller rhos.**"]
    return lines


def _models(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    lines = ["## Variants and fault-free test accuracy", "",
             f"Test accuracy and sparsity on all {s['fault_free_test_images']} test images, "
             f"95 % CI over the {cfg.models} replicate(s).", "",
             "| variant | role | training | alpha | rho | test accuracy (%) | 4-bit zeros (%) "
             "| float zeros (%) |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for label in variant_labels(cfg):
        v, t = s["variants"][label], s["test"][label]
        c = v["config"]
        how = (f"{c['method']}, {c['epochs']} ep, lr {c['lr']:g}"
               + (", warm start from the conventional model" if c.get("init") else ""))
        lines.append(f"| {label} | {v['role']} | {how} | {c['sparsity']['alpha']:g} | "
                     f"{c['rho']:g} | {_ci(t['accuracy'], sign=False)} | "
                     f"{_ci(t['sparsity'], 1, False)} | {_ci(t['float_sparsity'], 1, False)} |")
    lines += ["", "Controls: *equal epochs* -- the conventional model trained for the same "
              f"{cfg.saq_epochs} epochs as the paper-faithful SAQ model (same passes over the "
              "data and schedule, half SAQ's gradient evaluations), so SAQ minus it isolates "
              "SAQ from the shorter training; *warm start* -- the trained conventional model of "
              f"the same replicate fine-tuned {cfg.finetune_epochs} epoch(s) at lr "
              f"{cfg.finetune_lr:g}, conventionally (`+FT`) or with SAQ at the chosen rho "
              "(`+SAQ FT`); same start, same epochs."]
    return lines


def _sparsity(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    paper = PAPER.get(cfg.model, {})
    t = s["test"]
    lines = ["## Activation sparsity (Fig. 2)", "", "![sparsity](figs/fig2_sparsity.png)", "",
             "Counting rule: the outputs of the ReLUs after "
             + ", ".join(t["standard"]["per_layer"]) + " (before max pooling; the logits are "
             "not counted), per element, over all test images; per layer zeros / elements, "
             "then the unweighted mean over those layers. *4-bit zeros*: the quantized "
             f"{cfg.act_bits}-bit code is 0; *float zeros*: the ReLU output is exactly 0 "
             "(pre-activation <= 0, before quantization). The paper gives "
             f"{paper.get('sparsity_standard', 'n/a')} % (standard) and "
             f"{paper.get('sparsity_as', 'n/a')} % (AS) as \"the percentage of zero "
             "activations (averaged over all layers and test inputs)\"; it does not say "
             "whether zeros are counted before or after quantization, or which layers count.",
             "", "| variant | 4-bit zeros | float zeros | 4-bit per layer | float per layer |",
             "|---|---:|---:|---|---|"]
    for label in PAPER_VARIANTS:
        e = t[label]
        lines.append(f"| {label} | {e['sparsity']['mean']:.1f} % | "
                     f"{e['float_sparsity']['mean']:.1f} % | "
                     + ", ".join(f"{k} {v:.0f}" for k, v in e["per_layer"].items()) + " | "
                     + ", ".join(f"{k} {v:.0f}" for k, v in e["float_per_layer"].items())
                     + " |")
    kind = "flip" if "flip" in cfg.kinds else cfg.kinds[0]
    lines += ["", f"4-bit zeros under {kind} faults at {_pct(cfg.max_rate)} (trial images, mean "
              "over models and trials; the paper: AS loses "
              f"{paper.get('sparsity_drop_under_faults', 'n/a')} points at its highest rate):",
              "", "| variant | fault-free | " + " | ".join(
                  f"{_pct(cfg.max_rate)} {UNIT_NAMES[u]}" for u in cfg.units) + " |",
              "|---|---:|" + "---:|" * len(cfg.units)]
    acc = {(r["variant"], r["unit"], r["kind"], r["rate"]): r for r in s["accuracy"]}
    for label in PAPER_VARIANTS:
        base = acc.get((label, cfg.units[0], kind, 0.0))
        cells = [acc.get((label, u, kind, cfg.max_rate)) for u in cfg.units]
        lines.append(f"| {label} | {base['sparsity'] if base else float('nan'):.1f} % | "
                     + " | ".join("n/a" if c is None else f"{c['sparsity']:.1f} %"
                                  for c in cells) + " |")
    return lines


def _accuracy(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    rates = _rates(cfg)
    head = " | ".join(_pct(r) for r in rates)
    lines = ["## Accuracy under SRAM weight faults (Fig. 4)", "",
             "![accuracy](figs/fig4_accuracy_vs_rate.png)", "",
             f"Test accuracy (%) on the trial images, mean [95 % CI over {_over(s)}]; 0 % is "
             "the fault-free inference.", ""]
    acc = {(r["variant"], r["unit"], r["kind"], r["rate"]): r for r in s["accuracy"]}
    for unit in cfg.units:
        for kind in cfg.kinds:
            labels = [v for v in variant_labels(cfg)
                      if v in PAPER_VARIANTS or kind in cfg.control_kinds]
            lines += [f"**{kind}, rate {UNIT_NAMES[unit]}**", "", f"| variant | {head} |",
                      "|---|" + "---:|" * len(rates)]
            for label in labels:
                lines.append(f"| {label} | " + " | ".join(
                    _ci(acc.get((label, unit, kind, r)), 1, False) for r in rates) + " |")
            lines.append("")
    return lines


def _paired(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    rates = _rates(cfg)
    lines = ["## Paired differences per rate, and the largest over rates", "",
             "![controls](figs/controls.png)" if cfg.controls else "", "",
             "Percentage points, paired (same replicate, same fault map), mean [95 % CI]; "
             "a mark after the CI gives the verdict at that rate (+ holds, - opposite, "
             "blank inconclusive). The right-hand columns give the rate where our mean lies "
             "furthest on the claimed side (the paper's \"up to\" form) and at how many of "
             f"the {len(rates) - 1} nonzero rates the claim holds / is opposite.", ""]
    paired = {(r["a"], r["b"], r["unit"], r["kind"], r["rate"]): r for r in s["paired"]}
    mark = {"holds": " +", "opposite": " -", "inconclusive": ""}
    for unit in cfg.units:
        lines += [f"**rate {UNIT_NAMES[unit]}**", "",
                  "| a - b (claimed sign) | kind | " + " | ".join(_pct(r) for r in rates)
                  + " | largest [CI] at | holds / opposite at |",
                  "|---|---|" + "---:|" * len(rates) + "---|---|"]
        for comp in comparisons(cfg):
            for kind in kinds_for(cfg, comp):
                cells = []
                for r in rates:
                    p = paired.get((comp.a, comp.b, unit, kind, r))
                    cells.append("n/a" if p is None else _ci(p) + mark[p["verdict"]])
                m = _max_row(s, comp.a, comp.b, unit, kind)
                mx = "n/a" if m is None else f"{_ci(m)} at {_pct(m['rate_of_max'])}"
                ho = "n/a" if m is None else f"{m['holds_at']} / {m['opposite_at']}"
                role = "" if comp.role == "paper" else f" ({comp.role})"
                lines.append(f"| {comp.key} ({'+' if comp.sign > 0 else '-'}){role} | {kind} | "
                             + " | ".join(cells) + f" | {mx} | {ho} |")
        lines.append("")
    return lines


def _headline(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    return ["## Headline (`headline.md`)", "", headline_markdown(cfg, s)]


def _landscapes(cfg: FlatStudyConfig, s: Summary) -> list[str]:
    lc = cfg.landscape
    if not s["sharpness"]:
        return ["## Loss landscapes", "", "Not computed in this run (`landscapes = false`)."]
    lines = ["## Loss landscapes (Fig. 3) and sharpness", "",
             "Around the quantized weights of replicate 0, filter-normalized random "
             f"directions (Li et al.; biases and batch norm excluded), cross-entropy on "
             f"{lc.samples} training images.", "",
             "![1-D](figs/fig3_landscape_1d.png)", "",
             "![contour](figs/fig3_landscape_contour.png)", "",
             "![surface](figs/fig3_landscape_surface.png)", "",
             f"Sharpness S(r) = mean loss increase at radius r = {lc.radius:g} along "
             f"{lc.directions} directions x 2 signs, for every replicate; 95 % CI over "
             f"{_over(s).split(' x ')[0]} x the {2 * lc.directions} direction-sign values "
             "(differences paired by direction):", "",
             "| variant | base loss | S(r) |", "|---|---:|---:|"]
    for label in PAPER_VARIANTS:
        sh = s["sharpness"][label]
        lines.append(f"| {label} | {sh['base_loss']:.4f} | {_ci(sh, 4, False)} |")
    lines += ["", "| difference | S(r) [95 % CI] |", "|---|---:|"]
    for k, v in s["sharpness_differences"].items():
        lines.append(f"| {k} | {_ci(v, 4)} |")
    lines += ["", "Fault directions (beyond the paper): loss along theta + t * delta, delta the "
              f"weight change of a sampled fault map at {_pct(lc.fault_rate)} per bit.", ""]
    return lines + [f"![{k}](figs/landscape_fault_{k}.png)" for k in lc.fault_kinds]


_NOTES = [
    "* Eq. (1) is used with both terms averaged over the batch, alpha_l = alpha / "
    "(activations of layer l per image).",
    "* SAQ: gradient w.r.t. the quantized weights, eps = rho g/||g||_2 over all MAC weights, "
    "second pass at Q(w) + eps with batch-norm and activation-range statistics frozen, SGD "
    "with weight decay (cosine schedule).",
    "* Landscapes: loss (cross-entropy only) around the quantized weights, with activations "
    "quantized, filter-normalized directions (Li et al.), biases and batch norm excluded.",
]


def _notes(cfg: FlatStudyConfig, s: Summary, layout: WeightLayout) -> list[str]:
    return ["## Method notes", "",
            "* QAT (Jacob et al.): per-layer symmetric narrow-range weights (codes +-"
            f"{(1 << (cfg.weight_bits - 1)) - 1}), unsigned {cfg.act_bits}-bit activations "
            "with moving-average ranges, 8-bit input, int32 bias, clipped STE. Inference (and "
            "every fault trial) runs the integer path: exact integer accumulators from the "
            "stored codes.", *_NOTES,
            "", "## SRAM weight buffer", "", layout.markdown(),
            "Files: `headline.md`, `claims.csv`, `accuracy.csv` (every variant, unit, kind, "
            "rate), `paired.csv` (every paired difference and its verdict), `max_gain.csv`, "
            "`study.json` (everything), `landscape.json`, `campaign/m<m>-<unit>/results.jsonl` "
            "(every trial), `settings.json`, `manifest.json`."]


def build_report(cfg: FlatStudyConfig, s: Summary, layout: WeightLayout) -> Report:
    """The whole report, ready for :meth:`Report.write`."""
    report = Report(f"FlatENN study: {cfg.model} on {s['dataset']['name']}", cfg)
    for claim in s["claims"]:
        report.add_claim(Claim(**claim))
    sections: list[Callable[[FlatStudyConfig, Summary], list[str]]] = [
        _intro, _headline, _definitions, _selection, _models, _sparsity, _accuracy, _paired,
        _landscapes]
    for section in sections:
        report.add("\n".join(section(cfg, s)) + "\n")
    report.add("\n".join(_notes(cfg, s, layout)) + "\n")
    return report
