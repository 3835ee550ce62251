"""The study's files: ``headline.md``, Table V over every period, the extras, the report.

:func:`write_results` writes every result file of a finished run atomically into ``OUT``;
``report.md``, ``settings.json``, ``claims.csv`` and (last) ``manifest.json`` come from
:class:`flipclock.studies.base.Report` (provenance, QUICK labelling, the claims table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.atomic import atomic_frame, atomic_text

from ..base import Claim, Report
from .claims import ci_text, claims, rule_text
from .config import PAPER_DROPS, TimingStudyConfig
from .figures import plot_accuracy

__all__ = ["RESULT_FILES", "headline_md", "summary_frame", "table_v", "write_results"]

#: The files a finished run leaves in ``OUT`` (campaigns and caches live in ``--work``).
RESULT_FILES = ("headline.md", "report.md", "summary.csv", "trials.csv", "claims.csv",
                "table_iv.md", "mitigation.csv", "accuracy.png", "sensitivity.png",
                "settings.json", "manifest.json")

_PAPER = {  # Table V, LeNet-5: (MNIST, CIFAR-10) per regulation
    "1.5sigma": {"N_baseline": (98.31, 73.16), "N_TError": (94.49, 68.02),
                 "N_WD+EAQ": (98.03, 72.23), "N_EAQ": (97.86, 71.95)},
    "2sigma": {"N_baseline": (98.31, 73.16), "N_TError": (97.02, 70.56),
               "N_WD+EAQ": (98.22, 72.73), "N_EAQ": (98.02, 72.31)},
}


def _quick_line(config: TimingStudyConfig) -> list[str]:
    return (["QUICK run: small sizes for a demo or a test; its numbers support no claim.", ""]
            if config.is_quick else [])


def _over(rows: Sequence[Mapping[str, Any]], key: str = "N_TError") -> str:
    """What the intervals span, in words."""
    r = next((r for r in rows if f"{key}_models" in r), None)
    if r is None:
        return ""
    m, t = r[f"{key}_models"], r[f"{key}_trials"]
    if m < 2:
        return f"1 model × {t} injection seeds (no model variance in the interval)"
    return f"{m} trained models × {t // m} injection seeds"


def _paper(reg: str, key: str) -> str:
    v = _PAPER.get(reg, {}).get(key)
    return "" if v is None else f"{v[0]:.2f} / {v[1]:.2f}"


def table_v(rows: Sequence[Mapping[str, Any]], chosen: int | None) -> str:
    """Markdown: the headline at every period and regulation (Table V's columns)."""
    lines = ["| period | regulation | wrong products (TError) | N_baseline | N_TError | drop | "
             "N_EAQ | N_WD+EAQ | WD+EAQ recovers |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["role"] != "headline":
            continue
        rate = r.get("wrong_rate_TError_mean")
        # a ratio over a drop whose interval reaches 0 means nothing: shown as "-"
        rec = r.get("recovered_mean") if r.get("drop_low", 0) > 0 else None
        mark = " **(chosen)**" if r["period"] == chosen else ""
        lines.append(
            f"| T{r['period']}{mark} | {r['regulation']} | "
            f"{'' if rate is None else f'{rate:.2e}'} | {ci_text(r, 'N_baseline')} | "
            f"{ci_text(r, 'N_TError')} | {ci_text(r, 'drop')} | {ci_text(r, 'N_EAQ')} | "
            f"{ci_text(r, 'N_WD+EAQ')} | {'-' if rec is None else f'{100 * rec:.0f} %'} |")
    return "\n".join(lines) + "\n"


def extras_md(rows: Sequence[Mapping[str, Any]], chosen: int | None) -> str:
    """Markdown: every labelled extra beside the headline row of its period."""
    lines = ["| row | regulation | wrong products (TError) | N_TError | N_EAQ | N_WD+EAQ | "
             "EAQ, measured-activation Table III (extra) | WD+EAQ, measured-activation "
             "Table III (extra) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    periods = {r["period"] for r in rows if r["role"] != "headline"} | (
        {chosen} if chosen is not None else set())
    for r in rows:
        if r["period"] not in periods:
            continue
        if r["role"] == "headline" and "N_EAQ/measured-acts_mean" not in r and \
                r["period"] != chosen:
            continue
        rate = r.get("wrong_rate_TError_mean")
        lines.append(
            f"| T{r['period']} {r['role']} | {r['regulation']} | "
            f"{'' if rate is None else f'{rate:.2e}'} | {ci_text(r, 'N_TError')} | "
            f"{ci_text(r, 'N_EAQ')} | {ci_text(r, 'N_WD+EAQ')} | "
            f"{ci_text(r, 'N_EAQ/measured-acts')} | {ci_text(r, 'N_WD+EAQ/measured-acts')} |")
    return "\n".join(lines) + "\n"


def summary_frame(rows: Sequence[Mapping[str, Any]]) -> Any:
    """``summary.csv``: one row per table row and variant, every number with its interval
    and a ``role`` column (``headline`` or which extra)."""
    import pandas as pd

    out = []
    for r in rows:
        for v in ("TError", "EAQ", "WD+EAQ", "EAQ/measured-acts", "WD+EAQ/measured-acts"):
            if f"N_{v}_mean" not in r:
                continue
            role = r["role"]
            if v.endswith("/measured-acts"):
                role = "extra: measured-activation Table III" + (
                    "" if role == "headline" else f"; {role.removeprefix('extra: ')}")
            rec: dict[str, Any] = {
                "role": role, "weight_port": r["weight_port"], "prev": r["prev"],
                "design_prev": r["design_prev"], "period": r["period"],
                "regulation": r["regulation"], "r": r["r"], "variant": v,
                "table_iii": ("" if v == "TError" else "measured activations"
                              if v.endswith("/measured-acts") else "uniform activations (paper)")}
            for key, col in ((f"N_{v}", "accuracy"), ("N_baseline", "baseline"),
                             (f"wrong_rate_{v}", "wrong_rate"), (f"clean_{v}", "clean_accuracy"),
                             (f"gap_{v}", "minus_TError"), ("drop", "TError_drop")):
                for s in ("mean", "low", "high"):
                    rec[f"{col}_{s}"] = r.get(f"{key}_{s}")
            rec["models"] = r.get(f"N_{v}_models")
            rec["trials"] = r.get(f"N_{v}_trials")
            out.append(rec)
    return pd.DataFrame(out)


def _find(rows: Sequence[Mapping[str, Any]], chosen: int, reg: str,
          role: str = "headline") -> Mapping[str, Any] | None:
    return next((r for r in rows if r["role"] == role and r["period"] == chosen
                 and r["regulation"] == reg), None)


def headline_md(rows: Sequence[Mapping[str, Any]], chosen: int | None,
                claim_list: Sequence[Claim], config: TimingStudyConfig, title: str,
                dataset: str | None = None) -> str:
    """The block README pastes: a title, one table (<= 12 rows), one or two sentences."""
    quick = config.is_quick
    lines = [f"#### {'QUICK: ' if quick else ''}{title}", "", *_quick_line(config)]
    if chosen is None:
        return "\n".join([*lines, "No period studied under the headline configuration.", ""])
    verdicts = {c.statement: c.verdict for c in claim_list}
    lines += [f"| at the chosen period T{chosen} | ours (95 % CI) | paper LeNet-5 "
              "(MNIST / CIFAR-10) | verdict |", "|---|---:|---:|---|"]
    first = _find(rows, chosen, config.regulations[0])
    if first is not None:
        lines.append(f"| N_baseline (INT8, no errors) | {ci_text(first, 'N_baseline')} % | "
                     f"{_paper(config.regulations[0], 'N_baseline')} % | |")
    for reg in config.regulations:
        r = _find(rows, chosen, reg)
        if r is None:
            continue
        where = f"T{chosen}, {reg}"
        p = _PAPER.get(reg, {})
        drop_p = "" if not p else " / ".join(
            f"{b - t:.2f}" for b, t in zip(p["N_baseline"], p["N_TError"], strict=True))
        lines += [
            f"| {reg}: N_TError | {ci_text(r, 'N_TError')} % | {_paper(reg, 'N_TError')} % | |",
            f"| {reg}: drop N_baseline - N_TError | {ci_text(r, 'drop')} pts | {drop_p} pts | "
            f"{verdicts.get(f'timing errors cost accuracy ({where})', '')} |",
            f"| {reg}: N_EAQ (uniform Table III) | {ci_text(r, 'N_EAQ')} % | "
            f"{_paper(reg, 'N_EAQ')} % | EAQ > TError: "
            f"{verdicts.get(f'EAQ beats TError ({where})', '')} |",
            f"| {reg}: N_WD+EAQ (uniform Table III) | {ci_text(r, 'N_WD+EAQ')} % | "
            f"{_paper(reg, 'N_WD+EAQ')} % | WD+EAQ > EAQ: "
            f"{verdicts.get(f'WD+EAQ beats EAQ ({where})', '')}; recovers > 50 %: "
            f"{verdicts.get(f'WD+EAQ recovers most (> 50 %) of the drop ({where})', '')} |"]
    o = _find(rows, chosen, config.rule_regulation,
              role=f"extra: weight on port {config.other_port}")
    if o is not None:
        v = verdicts.get(f"weight on port {config.weight_port} beats port {config.other_port} "
                         f"(T{chosen}, {config.rule_regulation}, N_TError)", "")
        lines.append(f"| extra, weight on port {config.other_port} (Booth-recoded): "
                     f"N_TError at {config.rule_regulation} | {ci_text(o, 'N_TError')} % | "
                     f"not studied | port {config.weight_port} better: {v} |")
    from .study import MODEL_NAMES

    span = _over(rows)
    model = MODEL_NAMES.get(config.model, config.model)
    lines += ["", f"Headline = the paper-faithful configuration: INT8 {model} on "
              f"{dataset or config.dataset}, Table III from uniform activations, error tables "
              f"with uniform previous inputs, weight on port {config.weight_port}; T{chosen} "
              f"chosen by the pre-registered rule (TError drop at {config.rule_regulation} "
              f"closest to {100 * config.target_drop:g} points). Intervals: {span}; "
              "verdicts are read from them (holds / opposite / inconclusive)."
              + (" QUICK: not a result." if quick else ""), ""]
    return "\n".join(lines)


def _table_iv(runs: Sequence[Any]) -> str:
    lines = ["| training seed | Trained model | Accuracy | Accuracy after INT8 quantization |",
             "|---:|---|---:|---:|"]
    for run in runs:
        q = run.quant
        lines.append(f"| {run.seed} | {q.model} + {q.dataset} | {100 * q.float_accuracy:.2f}% | "
                     f"{100 * q.int8_accuracy:.2f}% |")
    return "\n".join(lines) + "\n"


def _rule_md(config: TimingStudyConfig, chosen: int | None, drops: Mapping[int, float]) -> str:
    lines = ["## Operating point (pre-registered rule)", "", rule_text(config), "",
             "| period | mean TError drop at " + config.rule_regulation + " (points) | "
             "distance to target |", "|---:|---:|---:|"]
    for p, d in drops.items():
        mark = " **chosen**" if p == chosen else ""
        lines.append(f"| T{p}{mark} | {100 * d:.2f} | {100 * abs(d - config.target_drop):.2f} |")
    return "\n".join(lines) + "\n"


def _mitigation_md(mitigation: Sequence[Mapping[str, Any]], chosen: int | None) -> str:
    agg: dict[tuple[str, str, str], dict[str, float]] = {}
    models: dict[tuple[str, str, str], set[int]] = {}
    for r in mitigation:
        if r["period"] != chosen:
            continue
        k = (r["scenario"], r["port"], r["variant"])
        a = agg.setdefault(k, dict.fromkeys(("distributed", "eaq_changed", "macs", "macs_after",
                                              "before", "after"), 0.0))
        models.setdefault(k, set()).add(r["model"])
        for key, col in (("distributed", "distributed"), ("eaq_changed", "eaq_changed"),
                         ("macs", "macs"), ("macs_after", "macs_after"),
                         ("before", "expected_wrong_before"), ("after", "expected_wrong_after")):
            a[key] += r[col]
    lines = ["| scenario | port | variant | distributed | EAQ-moved | MACs | MACs after | "
             "expected wrong/image before | after |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for (sc, port, v), a in agg.items():
        n = len(models[(sc, port, v)])
        lines.append(f"| {sc} | {port} | {v} | {a['distributed'] / n:.0f} | "
                     f"{a['eaq_changed'] / n:.0f} | {a['macs'] / n:.0f} | "
                     f"{a['macs_after'] / n:.0f} | {a['before'] / n:.1f} | {a['after'] / n:.1f} |")
    return "\n".join(lines)


def _ports_md(findings: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
              chosen: int | None, config: TimingStudyConfig) -> str:
    if chosen is None or not findings:
        return ""
    lines = [f"## Which port should hold the weight (T{chosen})", "",
             "Port b is the Booth-recoded port of the multiplier. Table counts are read off "
             "the error table; expected wrong products per image (regulation 1) and the zero "
             "weight's share of them are per trained network (mean over models, 95 % CI over "
             "models; activation histograms of training images).", "",
             "| weight on | weight codes (of 255) that ever err with activations >= 0 | "
             "expected wrong products / image | share carried by weight 0 | "
             "wrong-product rate (TError, "
             f"{config.rule_regulation}) | N_TError ({config.rule_regulation}) |",
             "|---|---:|---:|---:|---:|---:|"]
    for f in findings:
        r = next((x for x in rows if x["weight_port"] == f["port"] and x["prev"] == "uniform"
                  and x["period"] == chosen and x["regulation"] == config.rule_regulation),
                 None)
        rate = "" if r is None or "wrong_rate_TError_mean" not in r else (
            f"{r['wrong_rate_TError_mean']:.2e} [{r['wrong_rate_TError_low']:.2e}, "
            f"{r['wrong_rate_TError_high']:.2e}]")

        def rng(key: str, scale: float = 1.0, fmt: str = ".1f", f: Mapping[str, Any] = f) -> str:
            if f"{key}_mean" not in f:
                return ""
            return (f"{scale * f[f'{key}_mean']:{fmt}} [{scale * f[f'{key}_low']:{fmt}}, "
                    f"{scale * f[f'{key}_high']:{fmt}}]")

        lines.append(f"| port {f['port']} | {f['codes_erring']} | {rng('expected_wrong')} | "
                     f"{rng('zero_share', 100, '.0f')} % | {rate} | "
                     f"{'' if r is None else ci_text(r, 'N_TError')} % |")
    return "\n".join(lines) + "\n"


def _designer_md(rows: Sequence[Mapping[str, Any]], chosen: int | None,
                 config: TimingStudyConfig) -> str:
    """The port recommendation, read from the port-gap intervals (no number typed in)."""
    if chosen is None:
        return ""
    gaps = [r for r in rows if r["weight_port"] == config.other_port and r["prev"] == "uniform"
            and r["period"] == chosen and "port_gap_low" in r]
    if not gaps:
        return ""
    if all(r["port_gap_low"] > 0 for r in gaps):
        best, why = config.weight_port, "higher"
    elif all(r["port_gap_high"] < 0 for r in gaps):
        best, why = config.other_port, "higher"
    else:
        return ("Weight port: the N_TError intervals of the two mappings overlap at some "
                "regulation; no recommendation from these runs.\n")
    other = config.other_port if best == config.weight_port else config.weight_port
    return (f"**A designer should put the weight on port {best}** (and the activations on "
            f"port {other}): at T{chosen} N_TError is {why} at every regulation, with the "
            f"paired interval (same models and seeds) excluding zero; the wrong-product rates "
            f"above show why.\n")


def write_results(out: Path, *, config: TimingStudyConfig, data: Any, rows: list[dict[str, Any]],
                  drops: Mapping[int, float], findings: Sequence[Mapping[str, Any]],
                  settings: Mapping[str, Any], title: str,
                  command: str | None = None) -> list[Path]:
    """Write every result file of the run (see :data:`RESULT_FILES`); return the paths.
    ``command``: the command line to record (default: this process's)."""
    import pandas as pd

    chosen = data.chosen
    claim_list = claims(rows, chosen, config)
    files = [atomic_frame(summary_frame(rows), out / "summary.csv"),
             atomic_frame(pd.DataFrame(data.trials), out / "trials.csv"),
             atomic_frame(pd.DataFrame(data.mitigation), out / "mitigation.csv"),
             atomic_text(out / "table_iv.md", _table_iv(data.runs)),
             plot_accuracy(rows, out / "accuracy.png", chosen=chosen,
                           quick=config.is_quick),
             data.runs[0].plot_sensitivity(out / "sensitivity.png"),
             atomic_text(out / "headline.md",
                         headline_md(rows, chosen, claim_list, config, title,
                                     (settings.get("dataset") or {}).get("name")))]
    report = Report(title, config) if command is None else Report(title, config,
                                                                    command=command)
    for claim in claim_list:
        report.add_claim(claim)
    span = _over(rows)
    report.add("Wu et al., section IV, on flipclock's error tables of the committed 8-bit Booth "
               f"multiplier. Accuracy is top-1 on {settings.get('test_images')} test images, in "
               f"percent; every interval is a 95 % CI over {span} (nested: Student-t over the "
               "per-model means, so model-to-model variance is in it). Differences between "
               "variants pair the runs of the same model and injection seed index (the "
               "networks differ, so the errors hit different products: the pairing is by model "
               "and seed, not product by product). A claim's verdict is read from its interval: "
               "holds (excludes 0 on the paper's side), opposite, or inconclusive.")
    dataflow = any(r["prev"] != "uniform" for r in rows)
    report.add(f"Sizes (reduced to fit the full run in about 20 minutes on 2 cores): "
               f"{config.models} trained models, {config.seeds} injection seeds each, the first "
               f"{settings.get('test_images')} test images, {config.epochs} training epochs; "
               f"data set {(settings.get('dataset') or {}).get('name', config.dataset)} "
               "(the paper: one model each of MNIST and CIFAR-10 "
               "LeNet-5, the full test sets, seed count not stated). "
               + ("" if dataflow else "Dataflow extras are not in this run (add --dataflow "
                  "ws-markov or ws-marginal)."))
    report.add("**Headline** = the paper-faithful configuration: Table III designed with "
               "uniform activations (\"each weight has an even chance to be multiplied by each "
               "input number\"), error tables compressed over uniform previous inputs, weight "
               f"on port {config.weight_port}. Everything labelled *extra* is not the paper's "
               "configuration: Table III from measured activation histograms, the weight on "
               "the other port, tables under a dataflow's previous inputs.")
    report.add("## Table IV: accuracy before and after INT8 quantization\n\n"
               + _table_iv(data.runs))
    report.add(_rule_md(config, chosen, drops))
    report.add("## Table V, headline, every period and regulation\n\n"
               "Accuracies and the drop in percent (mean ± half width); wrong products = "
               "substituted products / all products (mean over models and seeds); WD+EAQ "
               "recovers = (N_WD+EAQ - N_TError) / (N_baseline - N_TError), mean of the "
               "per-model ratios, shown where the drop's interval is above 0.\n\n"
               + table_v(rows, chosen) + "\n![accuracy](accuracy.png)")
    report.add(f"## Extras beside the headline (T{chosen})\n\nEach row is labelled; only "
               "`headline` rows are the paper's configuration.\n\n" + extras_md(rows, chosen))
    report.add(_ports_md(findings, rows, chosen, config) + "\n"
               + _designer_md(rows, chosen, config))
    report.add("## Mitigation at the chosen period\n\nMean over models; per layer and model "
               "in `mitigation.csv`. Expected wrong products per image at regulation 1 "
               "(multiply by r).\n\n" + _mitigation_md(data.mitigation, chosen)
               + "\n\n![sensitivity](sensitivity.png)\n\nEvery trial: `trials.csv`; every "
               "number with its interval: `summary.csv`; settings, table hashes and seeds: "
               "`settings.json`.")
    if config.is_quick:
        report.add("QUICK: " + ("one model: the intervals have no model variance."
                                if config.models < 2 else "small sizes."))
    files.append(report.write(out, extra_settings={**settings, "chosen_period": chosen,
                                                   "rule": rule_text(config),
                                                   "rule_drops": {str(k): v for k, v in
                                                                  drops.items()},
                                                   "paper_drops": PAPER_DROPS,
                                                   "weight_codes": list(findings)}))
    files += [out / "settings.json", out / "manifest.json"]
    return files
