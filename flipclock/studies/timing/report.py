"""The study's files: Table V (Markdown and CSV), the mitigation table, the report.

:func:`write_results` writes every result file of a finished run atomically into ``OUT``;
``report.md`` and ``settings.json`` come from :class:`flipclock.studies.base.Report`
(provenance, QUICK labelling, the claims table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.atomic import atomic_frame, atomic_text

from ..base import Report
from .claims import chosen_period, ci_text, claims, pct
from .figures import plot_accuracy

__all__ = ["RESULT_FILES", "dataflow_comparison", "mitigation_md", "table_v", "write_results"]

#: The files a finished run leaves in ``OUT`` (besides ``campaigns/`` and built tables).
RESULT_FILES = ("report.md", "table_v.md", "table_v.csv", "table_iv.md", "accuracy.png",
                "sensitivity.png", "mitigation.csv", "streams.csv", "settings.json")


def _macs(n: Any) -> str:
    return "" if n is None else f"{n / 1e6:.2f}M"


def _yes(v: Any) -> str:
    return "" if v is None else ("yes" if v else "**no**")


def table_v(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table in the layout of the paper's Table V (plus the scenario columns)."""
    extra = any("N_WD+EAQ/uniform-acts_mean" in r for r in rows)
    head = ("| Model | Scenario | Error rate regulation | N_baseline | N_TError | N_WD+EAQ | "
            "N_EAQ |")
    sep = "|---|---|---|---:|---:|---:|---:|"
    if extra:
        head += " N_WD+EAQ (uniform acts) | N_EAQ (uniform acts) |"
        sep += "---:|---:|"
    head += " #MACs N_baseline / N_TError / N_EAQ | #MACs N_WD+EAQ |"
    sep += "---:|---:|"
    lines = [head, sep]
    for r in rows:
        line = (f"| {r['model']} + {r['dataset']} | {r['scenario']} | {r['regulation']} "
                f"(r={r['r']:g}) | {pct(r['N_baseline'])} | {ci_text(r, 'N_TError')} | "
                f"{ci_text(r, 'N_WD+EAQ')} | {ci_text(r, 'N_EAQ')} |")
        if extra:
            line += (f" {ci_text(r, 'N_WD+EAQ/uniform-acts')} | "
                     f"{ci_text(r, 'N_EAQ/uniform-acts')} |")
        line += f" {_macs(r['MACs_baseline'])} | {_macs(r.get('MACs_WD+EAQ'))} |"
        lines.append(line)
    seen: set[str] = set()
    notes = []
    for r in rows:
        if ("clean_WD+EAQ" not in r and "clean_EAQ" not in r) or r["scenario"] in seen:
            continue
        seen.add(r["scenario"])
        notes.append(f"- {r['scenario']}: without errors N_WD+EAQ = "
                     f"{pct(r.get('clean_WD+EAQ'))}, N_EAQ = {pct(r.get('clean_EAQ'))} "
                     f"(baseline {pct(r['N_baseline'])}); distributed weights "
                     f"{r.get('distributed_WD+EAQ', '')}, EAQ-moved weights "
                     f"{r.get('eaq_changed_EAQ', '')}")
    if notes:
        lines += ["", "Clean accuracy of the mitigated networks (no timing errors):", *notes]
    return "\n".join(lines) + "\n"


def dataflow_comparison(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: per period and regulation, accuracies under each previous-input model
    ('' when every period was studied under one model only)."""
    groups: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["period"], r["regulation"]), []).append(r)
    if not any(len({x["prev"] for x in g}) > 1 for g in groups.values()):
        return ""
    lines = ["| period | regulation | errors injected with | mitigation designed with | "
             "wrong-product rate (TError) | N_TError | N_WD+EAQ | N_EAQ |",
             "|---:|---|---|---|---:|---:|---:|---:|"]
    for (period, reg), g in sorted(groups.items()):
        if len({x["prev"] for x in g}) < 2:
            continue
        for r in g:
            rate = r.get("N_TError_wrong_rate")
            lines.append(f"| {period} | {reg} | {r['prev']} | {r['design_prev']} | "
                         f"{'' if rate is None else f'{rate:.2e}'} | {ci_text(r, 'N_TError')} | "
                         f"{ci_text(r, 'N_WD+EAQ')} | {ci_text(r, 'N_EAQ')} |")
    return "\n".join(lines) + "\n"


def mitigation_md(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: per scenario and variant, the per-layer mitigation rows summed."""
    agg: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        a = agg.setdefault((r["scenario"], r["variant"]), dict.fromkeys(
            ("distributed", "eaq_changed", "macs", "macs_after", "before", "after"), 0.0))
        for key, col in (("distributed", "distributed"), ("eaq_changed", "eaq_changed"),
                         ("macs", "macs"), ("macs_after", "macs_after"),
                         ("before", "expected_wrong_before"), ("after", "expected_wrong_after")):
            a[key] += r[col]
    lines = ["| scenario | variant | distributed | EAQ-moved | MACs | MACs after | "
             "expected wrong/image before | after |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (sc, v), a in agg.items():
        lines.append(f"| {sc} | {v} | {a['distributed']:.0f} | {a['eaq_changed']:.0f} | "
                     f"{a['macs']:.0f} | {a['macs_after']:.0f} | {a['before']:.1f} | "
                     f"{a['after']:.1f} |")
    return "\n".join(lines)


def _shape_md(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = ["Claim: N_TError < N_EAQ <= N_WD+EAQ <= N_baseline, WD+EAQ recovering most of the "
             "drop (recovered = (N_WD+EAQ - N_TError) / (N_baseline - N_TError)).", "",
             "| scenario | regulation | TError clearly below baseline | shape holds (means) | "
             "recovered |", "|---|---|---|---|---:|"]
    for r in rows:
        rec = r.get("recovered")
        lines.append(f"| {r['scenario']} | {r['regulation']} | "
                     f"{_yes(r.get('terror_clearly_below'))} | {_yes(r.get('shape_holds'))}"
                     f"{r.get('shape_detail', '')} | "
                     f"{'' if rec is None else f'{100 * rec:.0f} %'} |")
    return "\n".join(lines)


def write_results(out: Path, *, config: Any, quant: Any, rows: list[dict[str, Any]],
                  mitigation: list[dict[str, Any]], settings: Mapping[str, Any]) -> list[Path]:
    """Write Table V, the mitigation table, the figure, ``report.md`` and ``settings.json``
    (``settings``: facts, hashes and seeds beside the config); return the paths."""
    import pandas as pd

    from nnmap.quant import table_iv

    files = [atomic_frame(pd.DataFrame(rows), out / "table_v.csv"),
             atomic_frame(pd.DataFrame(mitigation), out / "mitigation.csv"),
             atomic_text(out / "table_v.md", table_v(rows)),
             plot_accuracy(rows, out / "accuracy.png")]
    report = Report(f"Timing-error study: {quant.model} + {quant.dataset}", config)
    for claim in claims(rows):
        report.add_claim(claim)
    report.add("Wu et al., section IV, on flipclock's error tables. Accuracy is top-1 on "
               f"{settings.get('test_images')} test images; with errors, mean ± half width of "
               f"the Student-t 95 % CI over {config.seeds} seeds. A claim's verdict compares "
               "the two CIs (no overlap: holds or opposite).")
    report.add("## Table IV: accuracy before and after INT8 quantization\n\n"
               + table_iv([quant]))
    report.add("## Table V\n\n" + table_v(rows) + "\n![accuracy](accuracy.png)")
    report.add("## Paper's shape\n\n" + _shape_md(rows))
    report.add(chosen_period(rows))
    comp = dataflow_comparison(rows)
    if comp:
        report.add("## Previous-input assumption (dataflow)\n\nAccuracy predicted for the same "
                   "network and period when the compressed table assumes uniform previous "
                   "operands (the paper) or the operand streams of a weight-stationary "
                   "dataflow.\n\n" + comp)
    report.add("## Mitigation\n\nPer layer in `mitigation.csv`; expected wrong products per "
               "image at regulation 1 (multiply by r).\n\n" + mitigation_md(mitigation)
               + "\n\n![sensitivity](sensitivity.png)\n\nSettings, hashes and seeds: "
               "`settings.json`; every run: `campaigns/*/results.jsonl`.")
    files.append(report.write(out, extra_settings=settings))
    files.append(out / "settings.json")
    return files
