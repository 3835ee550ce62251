"""The hardening-and-pruning study (Ahmadilivani et al., 2024) end to end, replicated over
``models`` independently trained baselines.

``run_study(HardenStudyConfig.for_model("lenet5", "fmnist"), out)``, for every training
seed (each model in its own work folder, :class:`.workspace.Workspace`):

1. trains the baseline (:mod:`nnmap.train`, cached) and measures it (Table I);
2. Eq. (1) channel vulnerability (:mod:`nnmap.vulnerability`), validated against
   per-channel fault injection (:mod:`.ranking`);
3. detection intervals and the hardened variants (:mod:`.variants`);
4. vulnerability vs L1 pruning, fine-tuned with every fine-tuning seed (Fig. 5), the Table II
   ratio search and the hardened pruned model (:mod:`.pruning`);
5. parameters, MACs, memory and measured execution time of every variant (:mod:`.analysis`);

then, over all models:

6. parameter bit-flip campaigns (resumable, Dask-capable): the BER sweep of every variant
   in float32 (``sweep``), the BER tolerance of every variant by bisection
   (:mod:`.bisection`), Fig. 3 and Fig. 4 at their BERs, an INT8-storage sweep (``int8``);
7. the claims (:mod:`.claims`), ``report.md``, ``headline.md``, CSVs and figures
   (:mod:`.report`), every interval a :func:`nnmap.stats.nested_ci` over models x trials.

BER choices made before looking at any result (the paper's own rules where it gives one):
Fig. 4 uses the highest swept BER at which the main hardened model's mean accuracy drop
(mean over models and repetitions) is below 5 percentage points (the paper: "the highest
BERs where the accuracy drop is not yet significant (lower than 5 %)"); Fig. 3 uses the
lowest swept BER at which the unprotected model (mean over models) has lost at least half
of its accuracy above chance ("the high BER" at which the paper's unprotected channels
fail).

Accuracy drops are in percentage points of the variant's own fault-free accuracy on the
evaluation subset (hardened models have the baseline's; pruned ones their own), with 95 %
intervals over models x repetitions (:func:`nnmap.stats.nested_ci`: Student-t over the model
means, so model-to-model variance is inside).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from nnmap.data import DATASETS, DataSplits, load_dataset
from nnmap.harden import layer_sites, profile_intervals
from nnmap.models import MODELS
from nnmap.train import evaluate, train
from nnmap.vulnerability import estimate_vulnerability
from sim.atomic import atomic_frame, atomic_json, output_folder

from .analysis import collapse_ber, costs, fmt_ber, nested_frame, tolerated, trial_rows
from .bisection import POINT_COLUMNS, Bisection, bisect_tolerances
from .claims import Evidence, check_claims
from .config import HardenStudyConfig, HardenStudyError, variant_name
from .pruning import compare_criteria, largest_ratios
from .ranking import validate_ranking
from .report import Results, write_report
from .trials import ber_trial
from .variants import build_hardened, build_hardened_pruned
from .workspace import Workspace

__all__ = ["HardenStudyResult", "check_study", "run_study"]


@dataclass
class HardenStudyResult:
    """Where the study wrote its files, and the headline numbers.

    Members
    -------
    out:
        The output folder (``report.md`` inside).
    summary:
        Headline numbers and claim verdicts (also in ``summary.json``).
    """

    out: Path
    summary: dict[str, Any] = field(default_factory=dict)

    def headline_lines(self) -> list[str]:
        """A few lines for a terminal or the demo report."""
        s = self.summary
        lines = [f"report: {self.out / 'report.md'}"]
        if "tolerance" in s:
            lines.append("BER tolerance (< 5 pt drop, bisected; geometric mean over models): "
                         + ", ".join(f"{k} {fmt_ber(v)}" for k, v in s["tolerance"].items()))
        lines += [f"{c['claim']}: {c['verdict']} ({c['ours']})" for c in s.get("claims", [])]
        return lines


def check_study(config: HardenStudyConfig, data_dir: str | None = None) -> DataSplits:
    """Everything that can be refused before work starts: the model and data set names,
    the data files, and whether the model can be hardened and pruned. Returns the data."""
    if config.model not in MODELS:
        raise HardenStudyError(f"Unknown model {config.model!r}; choose one of "
                               f"{', '.join(MODELS)}")
    if config.dataset.lower() not in DATASETS:
        raise HardenStudyError(f"Unknown data set {config.dataset!r}; choose one of "
                               f"{', '.join(sorted(set(DATASETS.values())))}")
    data = load_dataset(config.dataset, data_dir)
    from nnmap.models import build_model
    from nnmap.prune import l1_scores, prune_model

    shape = tuple(data.info.shape)
    probe = build_model(config.model, shape[0], len(data.info.classes), shape[1])
    layer_sites(probe)
    prune_model(probe, l1_scores(probe), conv_ratio=0.5, fc_ratio=0.5)
    return data


def run_study(config: HardenStudyConfig, out: str | os.PathLike[str], *,
              data_dir: str | None = None, cache: str | None = None, client: Any = None,
              force: bool = False, progress: bool = True,
              log: Callable[[str], None] | None = None,
              data: DataSplits | None = None) -> HardenStudyResult:
    """Run the whole study into folder ``out`` (resumable: run it again after a kill).

    Parameters
    ----------
    config:
        The study settings.
    out:
        Output folder (``report.md``, CSV, PNG, ``settings.json``, ``models/``,
        ``campaigns/``), claimed and locked for the run (:func:`sim.atomic.output_folder`).
    data_dir, cache:
        Data folder and checkpoint cache (see :mod:`nnmap.data`, :mod:`nnmap.train`).
    client:
        Optional ``distributed.Client`` for the fault campaigns.
    force:
        Write into a folder flipclock did not make, and discard campaign results of other
        settings found in ``out``.
    progress:
        tqdm progress bars.
    log:
        Called with one line per step (default: print).
    data:
        The data :func:`check_study` returned, when the caller has checked already.
    """
    if data is None:
        data = check_study(config, data_dir)
    say = log or (lambda line: print(line, flush=True))
    with output_folder(Path(out), force=force) as folder:
        wss = [Workspace(config, folder, data_dir=data_dir, cache=cache, client=client,
                         force=force, progress=progress, log=say, train_seed=s)
               for s in config.train_seeds]
        return _run(wss, data)


@dataclass
class ModelRun:
    """What the per-model steps produced for one trained model."""

    ws: Workspace
    train_config: Any
    checkpoint: str | None
    base_acc: float
    rank_rows: list[dict[str, Any]]
    rank_summary: list[dict[str, Any]]
    fig5: list[dict[str, Any]]
    table2: list[dict[str, Any]]
    chosen: dict[str, Any]
    costs: list[dict[str, Any]]


def _build_model(ws: Workspace, data: DataSplits) -> ModelRun:
    cfg, say, seed = ws.config, ws.log, ws.train_seed
    ws.fingerprint = data.info.fingerprint
    say(f"[model {seed}] baseline {cfg.model} on {data.info.name}")
    trained = train(cfg.train_config(seed), data, cache=ws.cache, progress=ws.progress)
    base = trained.model.eval()
    ws.save("baseline", base)
    base_acc = evaluate(base, data.test)
    say(f"[model {seed}] Eq. (1) vulnerability and its fault-injection validation")
    vuln = estimate_vulnerability(base, data.train, cfg.vulnerability(), progress=ws.progress)
    rank_rows, rank_summary = validate_ranking(ws, base, vuln)
    say(f"[model {seed}] detection intervals and hardened variants")
    intervals = profile_intervals(base, data.train, progress=ws.progress)
    build_hardened(ws, base, data.train, intervals, vuln)
    say(f"[model {seed}] vulnerability vs L1 pruning (Fig. 5) and Table II")
    fig5 = compare_criteria(ws, base, data, trained.config, vuln)
    chosen, table2 = largest_ratios(ws, base, data, trained.config, vuln, base_acc)
    build_hardened_pruned(ws, chosen.model, data.train)
    say(f"[model {seed}] overheads: parameters, MACs, memory, execution time")
    cost_rows = costs(ws, data, tuple(data.info.shape))
    pruned_acc = next(r["accuracy"] for r in cost_rows if r["variant"] == "pruned")
    chosen_ratios = {"train_seed": seed, "conv_ratio": chosen.config.conv_ratio,
                     "fc_ratio": chosen.config.fc_ratio, "accuracy": pruned_acc}
    return ModelRun(ws, trained.config,
                    str(trained.checkpoint) if trained.checkpoint else None, base_acc,
                    [{"train_seed": seed, **r} for r in rank_rows],
                    [{"train_seed": seed, **r} for r in rank_summary], fig5, table2,
                    chosen_ratios, cost_rows)


def _sweep_all(runs: list[ModelRun], kind: str, names: list[str], bers: list[float],
               reps: int, dtype: str = "float32") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for run in runs:
        ws = run.ws
        records = ws.campaign(kind, ws.ber_trials(names, bers, reps, dtype), ber_trial, names)
        rows += trial_rows(records, ws.train_seed)
    return rows


def _campaigns(runs: list[ModelRun]) -> dict[str, Any]:
    cfg, say = runs[0].ws.config, runs[0].ws.log
    names = cfg.sweep_variants
    say("[campaigns] float32 BER sweep")
    sweep_rows = _sweep_all(runs, "sweep", names, list(cfg.bers), cfg.repetitions)
    sweep = nested_frame(sweep_rows)
    say(f"[campaigns] BER tolerance by bisection (to a factor {cfg.bisect_factor:g})")
    bisections: list[Bisection] = []
    for run in runs:
        mine = [r for r in sweep_rows if r["train_seed"] == run.ws.train_seed]
        bisections += bisect_tolerances(run.ws, mine, names)
    tol = {n: tolerated(sweep, n) for n in names}
    fig3_ber = cfg.fig3_ber or collapse_ber(sweep, "baseline")
    fig4_ber = cfg.fig4_ber or tol[cfg.main_variant] or min(cfg.bers)
    fig3_names = [variant_name(k, r) for k in ("dup-noint", "tmr") for r in cfg.fig3_ratios]
    say("[campaigns] Fig. 3, Fig. 4, INT8")
    fig3_rows = (_sweep_all(runs, "fig3", fig3_names, [fig3_ber], cfg.repetitions)
                 if fig3_ber else [])
    fig4_names = [variant_name("hardened", r) for r in cfg.fig4_ratios]
    fig4_rows = _sweep_all(runs, "fig4", fig4_names, [fig4_ber], cfg.repetitions)
    int8_rows = _sweep_all(runs, "int8", ["baseline-int8", "hardened-int8"], list(cfg.bers),
                           cfg.int8_repetitions, "int8")
    out = runs[0].ws.root
    frames = {"sweep": sweep, "fig3": nested_frame(fig3_rows) if fig3_rows else None,
              "fig4": nested_frame(fig4_rows), "int8": nested_frame(int8_rows)}
    for name, frame in frames.items():
        if frame is not None:
            atomic_frame(frame, out / f"{name}.csv")
    atomic_frame(pd.DataFrame([b.row() for b in bisections]), out / "tolerance.csv")
    atomic_frame(pd.DataFrame([p for b in bisections for p in b.points],
                              columns=POINT_COLUMNS), out / "bisection_points.csv")
    return {**frames, "sweep_rows": sweep_rows, "fig3_rows": fig3_rows, "fig4_rows": fig4_rows,
            "bisections": bisections, "tolerated": tol, "fig3_ber": fig3_ber,
            "fig4_ber": fig4_ber}


def _run(wss: list[Workspace], data: DataSplits) -> HardenStudyResult:
    cfg, say = wss[0].config, wss[0].log
    t_start = time.perf_counter()
    threads = torch.get_num_threads()
    runs = []
    for ws in wss:
        torch.set_num_threads(threads)
        runs.append(_build_model(ws, data))
    c = _campaigns(runs)
    say("[report] claims, report, headline")
    out = wss[0].root
    fig5 = [r for run in runs for r in run.fig5]
    cost_rows = [r for run in runs for r in run.costs]
    rank_summary = [r for run in runs for r in run.rank_summary]
    atomic_frame(pd.DataFrame(fig5), out / "fig5.csv")
    atomic_frame(pd.DataFrame([r for run in runs for r in run.table2]), out / "table2_search.csv")
    atomic_frame(pd.DataFrame([run.chosen for run in runs]), out / "table2.csv")
    atomic_frame(pd.DataFrame(cost_rows), out / "overheads.csv")
    atomic_frame(pd.DataFrame(rank_summary), out / "rank_correlation.csv")
    atomic_frame(pd.DataFrame([{"train_seed": run.ws.train_seed, "accuracy": run.base_acc}
                               for run in runs]), out / "baseline.csv")
    ev = Evidence(cfg, [run.base_acc for run in runs], c["bisections"], c["sweep"],
                  c["sweep_rows"], c["fig3"], c["fig3_rows"], c["fig3_ber"], c["fig4"],
                  c["fig4_rows"], c["fig4_ber"], fig5, cost_rows, rank_summary)
    claims = check_claims(ev)
    seconds = time.perf_counter() - t_start
    tolerance = {n: ev.tolerance_ci(n) for n in cfg.sweep_variants}
    summary = {"baseline_accuracy": [run.base_acc for run in runs],
               "tolerance": {n: 10 ** ci.mean for n, ci in tolerance.items()},
               "fig3_ber": c["fig3_ber"], "fig4_ber": c["fig4_ber"],
               "claims": [{"claim": k.statement, "paper": k.paper, "ours": k.ours,
                           "verdict": k.verdict, "mean": k.mean, "low": k.low, "high": k.high,
                           "models": k.models, "trials": k.trials} for k in claims],
               "table2": [run.chosen for run in runs], "seconds": seconds}
    atomic_json(out / "summary.json", summary)
    write_report(Results(ev, claims, data.info, [run.checkpoint for run in runs],
                         [r for run in runs for r in run.rank_rows], c["int8"],
                         [r for run in runs for r in run.table2],
                         [run.chosen for run in runs], seconds), out, {
        "train_configs": [run.train_config.to_dict() for run in runs],
        "checkpoints": [run.checkpoint for run in runs], "dataset": data.info.to_dict(),
        "models": {f"model-{run.ws.train_seed}/{n}": {
            "file": str(Path(run.ws.files[n]).relative_to(out.resolve())),
            "state_sha256_20": run.ws.hashes[n]} for run in runs for n in run.ws.files},
        "finetune": [cfg.finetune(k).to_dict() for k in cfg.ft_seeds],
        "vulnerability": cfg.vulnerability().to_dict(),
        "fig3_ber": c["fig3_ber"], "fig4_ber": c["fig4_ber"], "torch": torch.__version__,
        "threads": threads, "python": platform.python_version(),
        "machine": platform.machine()})
    return HardenStudyResult(out, summary)
