"""The FlatENN study end to end (:func:`run_study`): standard / activation-sparse (AS) x
conventional / SAQ 4-bit networks under SRAM weight faults, their loss landscapes, and a
report next to the paper's numbers (Malhotra & Gupta, FlatENN).

Steps, each cached or resumable so a killed run resumes: train the four models
(:mod:`.training`), run the fault campaigns (:mod:`.campaign`), the optional SAQ radius
ablation, the landscapes (:mod:`.landscapes`), then the summary (:mod:`.summary`), claims
(:mod:`.claims`), figures (:mod:`.figures`) and report (:mod:`.report`).

The caller owns the output folder (:func:`sim.atomic.output_folder` in the command), so
this module only writes into it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnmap.campaign import summarize
from nnmap.models import build_model
from nnmap.qat import QATNet
from nnmap.sparsity import measure_sparsity
from nnmap.sram_faults import SramGeometry, WeightLayout, bench_fault_trial
from sim.atomic import atomic_frame, atomic_text

from .campaign import Campaign, paired_differences, rho_ablation
from .config import FlatStudyConfig, load_study_data
from .figures import accuracy_figure, landscape_figures, sparsity_figure
from .landscapes import landscape_subset, landscapes, model_sharpness
from .report import build_report
from .summary import summarize_study
from .training import train_all

__all__ = ["FlatStudyResult", "run_study"]


@dataclass
class FlatStudyResult:
    """What :func:`run_study` produced: the summary dict (``study.json``) and the report."""

    summary: dict[str, Any]
    report: Path
    out: Path

    def headline_lines(self) -> list[str]:
        """A few lines for a console or demo summary."""
        s = self.summary
        lines = ["fault-free accuracy: " + ", ".join(
            f"{k} {100 * v['accuracy']:.2f} %" for k, v in s["models"].items()),
                 "sparsity: " + ", ".join(
            f"{k} {v['sparsity']:.1f} %" for k, v in s["models"].items())]
        lines += [f"{c['statement']}: {c['verdict']}" for c in s["claims"]]
        return [*lines, f"report: {self.report}"]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON-able: {type(obj).__name__}")


def study_layout(config: FlatStudyConfig, data: Any) -> WeightLayout:
    """The SRAM layout of the study's architecture (checked before anything is trained)."""
    geometry = SramGeometry.parse(config.sram) if config.sram else None
    c, h, _ = data.info.shape
    net = QATNet(build_model(config.model, c, len(data.info.classes), h),
                 config.train_config().qat)
    return WeightLayout.from_net(net, geometry)


def run_study(config: FlatStudyConfig, out: str | os.PathLike[str], *,
              data_dir: str | os.PathLike[str] | None = None,
              cache: str | os.PathLike[str] | None = None, client: Any = None,
              progress: bool = True, force: bool = False) -> FlatStudyResult:
    """Run the whole study into folder ``out`` (see the module docstring).

    Parameters
    ----------
    config:
        The study settings.
    out:
        Output folder (report, figures, CSV/JSON, the campaigns' JSONL).
    data_dir:
        Where to look for the data set.
    cache:
        Checkpoint cache folder (see :func:`nnmap.train.cache_dir`).
    client:
        Optional ``dask.distributed.Client`` for the campaigns.
    progress:
        tqdm progress bars.
    force:
        Discard a campaign of other settings found in ``out``.
    """
    out = Path(out)
    data = load_study_data(config, data_dir)
    layout = study_layout(config, data)
    trained = train_all(config, data, cache, progress)
    models = trained.models
    nets = {k: v.net for k, v in models.items()}
    fault_free = {}
    for label, net in nets.items():
        acc, sp = measure_sparsity(net, data.test, batch_size=config.eval_batch)
        fault_free[label] = {"accuracy": acc, "sparsity": sp.mean,
                             "sparsity_per_layer": sp.per_layer, "key": models[label].key,
                             "config": models[label].config.to_dict(),
                             "history": models[label].history}

    camp = Campaign(config, data, layout, out, data_dir, client, progress, force)
    records = camp.run(models)
    ablation: list[dict[str, Any]] = []
    if config.rho_ablation and trained.others:
        sub = landscape_subset(config, data)
        ablation = rho_ablation(camp, models, trained.others, records,
                                lambda net: model_sharpness(config, net, sub))
    df = summarize(records)
    atomic_frame(df, out / "campaign_summary.csv")
    paired = paired_differences(records)
    atomic_frame(paired, out / "paired_differences.csv")
    land = landscapes(config, nets, data, layout, out, progress)
    bench = bench_fault_trial(nets["standard"], layout, data.test, kind=config.kinds[0],
                              rate=config.max_rate, batch_size=config.eval_batch, verbose=False)
    summary = summarize_study(config, data, layout, fault_free, trained.selection, df, paired,
                              land, bench)
    summary["rho_ablation"] = ablation
    figs = out / "figs"
    sparsity_figure(config, df, fault_free, figs)
    accuracy_figure(config, df, figs)
    landscape_figures(config, land, figs)
    # NaN (a figure with no trials) is kept as JSON's NaN: study.json is read by Python.
    atomic_text(out / "study.json", json.dumps(summary, indent=1, sort_keys=True,
                                               default=_json_default) + "\n")
    report = build_report(config, summary, layout).write(out, {"layout": layout.to_dict()})
    return FlatStudyResult(summary, report, out)
