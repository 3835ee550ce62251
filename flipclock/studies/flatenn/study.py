"""The FlatENN study end to end (:func:`run_study`): standard / activation-sparse (AS) x
conventional / SAQ 4-bit networks (plus the SAQ controls), each trained ``models`` times,
under SRAM weight faults counted per bit and per weight; loss landscapes; a report and a
headline next to the paper's numbers (Malhotra & Gupta, FlatENN).

Steps, each cached or resumable so a killed run resumes: train every variant and replicate
(:mod:`.training`); then, side by side in the worker pool, the fault campaigns
(:mod:`.campaign`), the landscapes (:mod:`.landscapes`) and the fault-free test
measurements; then the summary (:mod:`.summary`), figures (:mod:`.figures`), headline and
report (:mod:`.report`). ``Report.write`` runs last: its ``manifest.json`` hashes every file.

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

from nnmap.models import build_model
from nnmap.qat import QATNet
from nnmap.sparsity import measure_sparsity
from nnmap.sram_faults import SramGeometry, WeightLayout
from sim.atomic import atomic_frame, atomic_text

from .campaign import Campaign, merge
from .config import FlatStudyConfig, load_study_data, trial_images
from .figures import accuracy_figure, control_figure, landscape_figures, sparsity_figure
from .landscapes import collect, landscape_jobs
from .pool import StudyPool, load_net, worker_state
from .report import build_report, headline_markdown
from .summary import summarize_study
from .training import PAPER_VARIANTS, train_all

__all__ = ["FlatStudyResult", "run_study", "study_layout"]


@dataclass
class FlatStudyResult:
    """What :func:`run_study` produced: the summary dict (``study.json``) and the report."""

    summary: dict[str, Any]
    report: Path
    out: Path

    def headline_lines(self) -> list[str]:
        """A few lines for a console or demo summary."""
        s = self.summary
        lines = ["fault-free test accuracy: " + ", ".join(
            f"{k} {v['accuracy']['mean']:.2f} %" for k, v in s["test"].items()
            if k in PAPER_VARIANTS),
                 "4-bit sparsity: " + ", ".join(
            f"{k} {v['sparsity']['mean']:.1f} %" for k, v in s["test"].items()
            if k in PAPER_VARIANTS)]
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


def _fault_free_job(path: str) -> dict[str, Any]:
    """Worker job: fault-free accuracy and sparsity of one model on the whole test set."""
    state = worker_state()
    acc, sp = measure_sparsity(load_net(path), state["data"].test,
                               batch_size=state["config"].eval_batch)
    return {"accuracy": acc, "sparsity": sp.mean, "float_sparsity": sp.float_mean,
            "per_layer": sp.per_layer, "float_per_layer": sp.float_per_layer}


def _role(label: str) -> str:
    if label in PAPER_VARIANTS:
        return "paper"
    return "control: equal epochs" if "(E/2)" in label else "control: warm start"


def run_study(config: FlatStudyConfig, out: str | os.PathLike[str], *,
              data_dir: str | os.PathLike[str] | None = None,
              cache: str | os.PathLike[str] | None = None, workers: int = 1,
              progress: bool = True, force: bool = False) -> FlatStudyResult:
    """Run the whole study into folder ``out`` (see the module docstring).

    Parameters
    ----------
    config:
        The study settings.
    out:
        Output folder (report, headline, figures, CSV/JSON, the campaigns' JSONL).
    data_dir:
        Where to look for the data set.
    cache:
        Checkpoint cache folder (see :func:`nnmap.train.cache_dir`).
    workers:
        Worker processes (one torch thread each; 1: everything in this process).
    progress:
        Progress messages (one line per step).
    force:
        Discard campaigns of other settings found in ``out``.
    """
    out = Path(out)
    data = load_study_data(config, data_dir)
    layout = study_layout(config, data)
    say = print if progress else (lambda *a, **k: None)
    with StudyPool(config.to_json(), data_dir, workers) as pool:
        say(f"flatenn: training {config.models} replicate(s) of each variant ...", flush=True)
        trained = train_all(config, pool, cache)
        models = trained.models
        camp = Campaign(config, data, layout, out, data_dir, force)
        cjobs = camp.jobs(models)
        ljobs = landscape_jobs(config, models, out)
        fjobs = [(_fault_free_job, (str(r.checkpoint),)) for rs in models.values() for r in rs]
        say(f"flatenn: {len(cjobs)} campaign shards, {len(ljobs)} landscape jobs, "
            f"{len(fjobs)} test evaluations ...", flush=True)
        results = pool.run([*cjobs, *ljobs, *fjobs])
    records = merge(results[:len(cjobs)])
    land = collect(config, models, out, results[len(cjobs):len(cjobs) + len(ljobs)])
    it = iter(results[len(cjobs) + len(ljobs):])
    ff = {label: [next(it) for _ in rs] for label, rs in models.items()}
    model_info = {label: {"role": _role(label), "config": rs[0].config.to_dict(),
                          "seeds": [r.config.seed for r in rs], "keys": [r.key for r in rs],
                          "epochs_run": [len(r.history) for r in rs]}
                  for label, rs in models.items()}
    summary = summarize_study(config, data.info.to_dict(), layout.to_dict(), trained.selection,
                              model_info, ff, records, land)
    summary["trial_images"] = len(trial_images(config, data))
    for name in ("accuracy", "paired", "max_gain"):
        import pandas as pd

        atomic_frame(pd.DataFrame(summary[name]), out / f"{name}.csv")
    figs = out / "figs"
    sparsity_figure(config, summary, figs)
    accuracy_figure(config, summary, figs)
    if config.controls:
        control_figure(config, summary, figs)
    if land:
        landscape_figures(config, land, figs)
    # NaN (a figure with no trials) is kept as JSON's NaN: study.json is read by Python.
    atomic_text(out / "study.json", json.dumps(summary, indent=1, sort_keys=True,
                                               default=_json_default) + "\n")
    atomic_text(out / "headline.md", headline_markdown(config, summary))
    report = build_report(config, summary, layout).write(out, {"layout": layout.to_dict()})
    return FlatStudyResult(summary, report, out)
