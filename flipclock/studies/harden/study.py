"""The hardening-and-pruning study (Ahmadilivani et al., 2024) end to end.

``run_study(HardenStudyConfig.for_model("lenet5", "fmnist"), out)``:

1. trains the baseline (:mod:`nnmap.train`, cached) and measures it (Table I);
2. Eq. (1) channel vulnerability (:mod:`nnmap.vulnerability`), validated against
   per-channel fault injection (:mod:`.ranking`);
3. detection intervals and the hardened variants (:mod:`.variants`);
4. vulnerability vs L1 pruning with fine-tuning (Fig. 5), the Table II ratio search and the
   hardened pruned model (:mod:`.pruning`);
5. parameter bit-flip campaigns (resumable, Dask-capable): the BER sweep of every variant
   in float32 (``sweep``), Fig. 3 and Fig. 4 at their BERs, an INT8-storage sweep (``int8``);
6. parameters, MACs, memory and measured execution time of every variant (:mod:`.analysis`);
7. the claims (:mod:`.claims`) and ``report.md`` with its tables and figures (:mod:`.report`).

BER choices made before looking at any result (the paper's own rules where it gives one):
Fig. 4 uses the highest swept BER at which the main hardened model's mean accuracy drop is
below 5 percentage points (the paper: "the highest BERs where the accuracy drop is not yet
significant (lower than 5 %)"); Fig. 3 uses the lowest swept BER at which the unprotected
model has lost at least half of its accuracy above chance ("the high BER" at which the
paper's unprotected channels fail).

Accuracy drops are in percentage points of the variant's own fault-free accuracy on the
evaluation subset (hardened models have the baseline's; pruned ones their own), with 95 %
Student-t intervals over the repetitions.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nnmap.campaign import summarize
from nnmap.data import DATASETS, DataSplits, load_dataset
from nnmap.harden import layer_sites, profile_intervals
from nnmap.models import MODELS
from nnmap.train import evaluate, train
from nnmap.vulnerability import estimate_vulnerability
from sim.atomic import atomic_frame, atomic_json, output_folder

from .analysis import collapse_ber, costs, fmt_ber, tolerated
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
        if "tolerated" in s:
            lines.append("highest BER with < 5 pt drop: " + ", ".join(
                f"{k} {fmt_ber(v)}" for k, v in s["tolerated"].items()))
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
        ws = Workspace(config, folder, data_dir=data_dir, cache=cache, client=client,
                       force=force, progress=progress, log=say)
        return _run(ws, data)


def _campaigns(ws: Workspace) -> dict[str, Any]:
    cfg = ws.config
    names = cfg.sweep_variants
    sweep = summarize(ws.campaign("sweep", ws.ber_trials(names, cfg.bers, cfg.repetitions),
                                  ber_trial, names))
    tol = {n: tolerated(sweep, n) for n in names}
    fig3_ber = cfg.fig3_ber or collapse_ber(sweep, "baseline")
    fig4_ber = cfg.fig4_ber or tol[cfg.main_variant] or min(cfg.bers)
    fig3_names = [variant_name(k, r) for k in ("dup-noint", "tmr") for r in cfg.fig3_ratios]
    fig3 = summarize(ws.campaign("fig3", ws.ber_trials(fig3_names, [fig3_ber], cfg.repetitions),
                                 ber_trial, fig3_names)) if fig3_ber else None
    fig4_names = [variant_name("hardened", r) for r in cfg.fig4_ratios]
    fig4 = summarize(ws.campaign("fig4", ws.ber_trials(fig4_names, [fig4_ber], cfg.repetitions),
                                 ber_trial, fig4_names))
    int8_names = ["baseline-int8", "hardened-int8"]
    int8 = summarize(ws.campaign("int8", ws.ber_trials(int8_names, cfg.bers,
                                                       cfg.int8_repetitions, "int8"),
                                 ber_trial, int8_names))
    for name, frame in (("sweep", sweep), ("fig3", fig3), ("fig4", fig4), ("int8", int8)):
        if frame is not None:
            atomic_frame(frame, ws.out / f"{name}.csv")
    return {"sweep": sweep, "tolerated": tol, "fig3": fig3, "fig3_ber": fig3_ber,
            "fig4": fig4, "fig4_ber": fig4_ber, "int8": int8}


def _run(ws: Workspace, data: DataSplits) -> HardenStudyResult:
    cfg, say = ws.config, ws.log
    t_start = time.perf_counter()
    ws.fingerprint = data.info.fingerprint
    say(f"[1/7] baseline {cfg.model} on {data.info.name}")
    trained = train(cfg.train_config(), data, cache=ws.cache, progress=ws.progress)
    base = trained.model.eval()
    ws.save("baseline", base)
    base_acc = evaluate(base, data.test)

    say("[2/7] Eq. (1) vulnerability and its fault-injection validation")
    vuln = estimate_vulnerability(base, data.train, cfg.vulnerability(), progress=ws.progress)
    rank_rows, rank_summary = validate_ranking(ws, base, vuln)

    say("[3/7] detection intervals and hardened variants")
    intervals = profile_intervals(base, data.train, progress=ws.progress)
    build_hardened(ws, base, data.train, intervals, vuln)

    say("[4/7] vulnerability vs L1 pruning (Fig. 5) and Table II")
    fig5 = compare_criteria(ws, base, data, trained.config, vuln)
    chosen, table2 = largest_ratios(ws, base, data, trained.config, vuln, base_acc)
    build_hardened_pruned(ws, chosen.model, data.train)

    say("[5/7] parameter bit-flip campaigns")
    c = _campaigns(ws)

    say("[6/7] overheads: parameters, MACs, memory, execution time")
    cost_rows = costs(ws, data, tuple(data.info.shape))

    say("[7/7] report")
    ev = Evidence(cfg, base_acc, c["tolerated"], c["sweep"], c["fig3"], c["fig3_ber"],
                  c["fig4"], c["fig4_ber"], fig5, cost_rows, rank_summary)
    claims = check_claims(ev)
    pruned_acc = next(r["accuracy"] for r in cost_rows if r["variant"] == "pruned")
    chosen_ratios = {"conv_ratio": chosen.config.conv_ratio, "fc_ratio": chosen.config.fc_ratio,
                     "accuracy": pruned_acc}
    seconds = time.perf_counter() - t_start
    summary = {"baseline_accuracy": base_acc, "tolerated": c["tolerated"],
               "fig3_ber": c["fig3_ber"], "fig4_ber": c["fig4_ber"],
               "claims": [{"claim": k.statement, "paper": k.paper, "ours": k.ours,
                           "verdict": k.verdict} for k in claims],
               "table2": chosen_ratios, "seconds": seconds}
    checkpoint = str(trained.checkpoint) if trained.checkpoint else None
    write_report(Results(ev, claims, data.info, checkpoint, rank_rows, c["int8"], table2,
                         chosen_ratios, seconds), ws.out, {
        "train_config": trained.config.to_dict(),
        "checkpoint": checkpoint, "dataset": data.info.to_dict(),
        "models": {n: {"file": ws.files[n], "state_sha256_20": ws.hashes[n]} for n in ws.files},
        "finetune": cfg.finetune().to_dict(), "vulnerability": cfg.vulnerability().to_dict(),
        "fig3_ber": c["fig3_ber"], "fig4_ber": c["fig4_ber"], "torch": torch.__version__,
        "threads": torch.get_num_threads(), "python": platform.python_version(),
        "machine": platform.machine()})
    atomic_json(ws.out / "summary.json", summary)
    return HardenStudyResult(ws.out, summary)
