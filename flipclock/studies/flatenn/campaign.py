"""Step 4: the Monte Carlo fault campaigns (resumable, Dask-capable) and their pairing.

Every model x fault kind x fault rate x trial samples a fault map in the SRAM weight buffer
and runs the integer inference with the faulty weights (:func:`nnmap.sram_faults.
run_fault_trial`). The fault positions of a trial depend on (seed, kind, rate, trial) only,
so the four models (same layout) see the same faults: differences between models are
paired (:func:`paired_differences`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flipclock.studies.base import run_trials
from nnmap.data import DataSplits
from nnmap.models import build_model
from nnmap.qat import QATNet
from nnmap.saq import FlatTrainConfig, FlatTrainResult
from nnmap.sram_faults import SramGeometry, WeightLayout, run_fault_trial
from nnmap.stats import mean_ci

from .config import FlatStudyConfig, FlatStudyError, load_study_data

__all__ = ["PAIRS", "FaultTrial", "Campaign", "paired_differences", "rho_ablation"]

PAIRS = (("AS", "standard"), ("standard+SAQ", "standard"), ("AS+SAQ", "AS"),
         ("AS+SAQ", "standard"), ("AS+SAQ", "standard+SAQ"))
"""The paired comparisons ``a - b`` the report reads."""

# Per process: models and data loaded once from the checkpoints, by FaultTrial key. A Dask
# worker keeps them between trials instead of reloading for each.
_LOADED: dict[str, tuple[dict[str, QATNet], DataSplits, WeightLayout, int]] = {}


@dataclass(frozen=True)
class FaultTrial:
    """The campaign's trial function: ``params -> {accuracy, sparsity, faults, ...}``.

    Small and picklable (checkpoint paths, not tensors), so a Dask worker loads the models
    and the data once from the files and keeps them.

    ``params``: ``model`` (a label), ``kind`` (``"none"`` at rate 0), ``rate``, ``trial``.
    """

    checkpoints: dict[str, str]
    config_json: str
    data_dir: str | None
    fault_seed: int
    sram: str | None

    @property
    def key(self) -> str:
        """Identity of the loaded state in this process."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def _state(self) -> tuple[dict[str, QATNet], DataSplits, WeightLayout, int]:
        if self.key not in _LOADED:
            import torch

            cfg = FlatStudyConfig.from_json(self.config_json)
            data = load_study_data(cfg, self.data_dir)
            c, h, _ = data.info.shape
            nets = {}
            for label, path in self.checkpoints.items():
                payload = torch.load(path, map_location="cpu", weights_only=True)
                tcfg = FlatTrainConfig.from_json(payload["config"])
                net = QATNet(build_model(tcfg.model, c, len(data.info.classes), h), tcfg.qat)
                net.load_state_dict(payload["state_dict"])
                nets[label] = net.eval()
            geometry = SramGeometry.parse(self.sram) if self.sram else None
            layout = WeightLayout.from_net(next(iter(nets.values())), geometry)
            _LOADED[self.key] = (nets, data, layout, cfg.eval_batch)
        return _LOADED[self.key]

    def preload(self, nets: Mapping[str, QATNet], data: DataSplits, layout: WeightLayout,
                eval_batch: int) -> None:
        """Hand already loaded models and data to this process's trials."""
        _LOADED[self.key] = (dict(nets), data, layout, eval_batch)

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Any]:
        nets, data, layout, batch = self._state()
        return run_fault_trial(nets[params["model"]], layout, data.test, str(params["kind"]),
                               float(params["rate"]), self.fault_seed, int(params["trial"]),
                               batch)


@dataclass
class Campaign:
    """What every campaign of one study shares: settings, data, layout, where, how."""

    cfg: FlatStudyConfig
    data: DataSplits
    layout: WeightLayout
    out: Path
    data_dir: str | os.PathLike[str] | None = None
    client: Any = None
    progress: bool = True
    force: bool = False

    def run(self, models: Mapping[str, FlatTrainResult], *,
            rates: Sequence[float] | None = None, folder: str = "campaign"
            ) -> list[dict[str, Any]]:
        """Every trial of ``models`` (one fault-free trial each), resumed from ``folder``."""
        cfg = self.cfg
        if any(v.checkpoint is None for v in models.values()):
            raise FlatStudyError("The campaign needs cached checkpoints; do not disable the "
                                 "cache")
        fn = FaultTrial({k: str(v.checkpoint) for k, v in models.items()}, cfg.to_json(),
                        None if self.data_dir is None else str(self.data_dir), cfg.fault_seed,
                        cfg.sram)
        fn.preload({k: v.net for k, v in models.items()}, self.data, self.layout,
                   cfg.eval_batch)
        trials = []
        for label in models:
            trials.append({"model": label, "kind": "none", "rate": 0.0, "trial": 0})
            for kind in cfg.kinds:
                for rate in (cfg.rates if rates is None else rates):
                    if rate > 0:
                        trials += [{"model": label, "kind": kind, "rate": float(rate),
                                    "trial": t} for t in range(cfg.trials)]
        settings = {"study": "flatenn", "models": {k: v.key for k, v in models.items()},
                    "data": self.data.info.fingerprint, "fault_seed": cfg.fault_seed,
                    "layout": self.layout.to_dict(), "eval_batch": cfg.eval_batch,
                    "fault_model": "uniform i.i.d. stored weight bits; sa masked; flip inverts"}
        return run_trials(trials, fn, self.out / folder, settings=settings, client=self.client,
                          progress=self.progress, desc=f"fault trials ({folder})",
                          force=self.force)


def paired_differences(records: Sequence[Mapping[str, Any]]) -> Any:
    """Paired accuracy differences of :data:`PAIRS` (same fault maps), mean and 95 % CI,
    as a DataFrame ``a, b, kind, rate, n, diff_mean, diff_low, diff_high``."""
    import pandas as pd

    by: dict[tuple[str, float, int], dict[str, float]] = {}
    for rec in records:
        p = rec["params"]
        by.setdefault((p["kind"], p["rate"], p["trial"]), {})[p["model"]] = \
            rec["result"]["accuracy"]
    groups: dict[tuple[str, str, str, float], list[float]] = {}
    for (kind, rate, _), accs in by.items():
        for a, b in PAIRS:
            if a in accs and b in accs:
                groups.setdefault((a, b, kind, rate), []).append(accs[a] - accs[b])
    rows = []
    for (a, b, kind, rate), diffs in sorted(groups.items()):
        row = {"a": a, "b": b, "kind": kind, "rate": rate, "n": len(diffs),
               "diff_mean": float(np.mean(diffs))}
        if len(diffs) > 1:
            ci = mean_ci(diffs)
            row["diff_low"], row["diff_high"] = ci.low, ci.high
        else:
            row["diff_low"] = row["diff_high"] = diffs[0]
        rows.append(row)
    return pd.DataFrame(rows, columns=["a", "b", "kind", "rate", "n", "diff_mean", "diff_low",
                                       "diff_high"])


def rho_ablation(camp: Campaign, models: Mapping[str, FlatTrainResult],
                 others: Mapping[str, FlatTrainResult], records: Sequence[Mapping[str, Any]],
                 sharpness_of: Any) -> list[dict[str, Any]]:
    """Beyond the paper: every SAQ radius at the highest fault rate, paired with conventional.

    The models of the rho sweep that were not chosen get the same trials (same fault maps)
    at the highest rate; each row gives fault-free accuracy, sharpness (``sharpness_of(net)``
    -> :class:`nnmap.landscape.Sharpness`), accuracy at the highest rate and the paired
    difference to its conventionally trained counterpart, per kind.
    """
    cfg = camp.cfg
    top = cfg.max_rate
    extra = camp.run(others, rates=[top], folder="campaign_rho_ablation")
    acc: dict[tuple[str, str, int], float] = {}
    for rec in [*records, *extra]:
        p = rec["params"]
        if p["kind"] == "none" or np.isclose(p["rate"], top):
            acc[(p["model"], p["kind"], p["trial"])] = rec["result"]["accuracy"]
    chosen = {k: v.config.rho for k, v in models.items() if v.config.method == "saq"}
    everyone = {**{f"{k} rho={r:g}": models[k] for k, r in chosen.items()}, **others}
    rows = []
    for name, res in sorted(everyone.items(), key=lambda kv: (kv[0].split(" rho=")[0],
                                                              kv[1].config.rho)):
        label = name.split(" rho=")[0]
        key = label if name not in others else name
        base = "standard" if label == "standard+SAQ" else "AS"
        sh = sharpness_of(res.net)
        row: dict[str, Any] = {"model": label, "rho": res.config.rho,
                               "chosen": name not in others,
                               "accuracy": acc.get((key, "none", 0)), "sharpness": sh.mean,
                               "sharpness_low": sh.low, "sharpness_high": sh.high}
        for kind in cfg.kinds:
            mine = [acc[(key, kind, t)] for t in range(cfg.trials) if (key, kind, t) in acc]
            diffs = [acc[(key, kind, t)] - acc[(base, kind, t)] for t in range(cfg.trials)
                     if (key, kind, t) in acc and (base, kind, t) in acc]
            row[f"{kind}_accuracy"] = float(np.mean(mine)) if mine else None
            if len(diffs) > 1:
                ci = mean_ci(diffs)
                row[f"{kind}_gain"] = {"mean": 100 * ci.mean, "low": 100 * ci.low,
                                       "high": 100 * ci.high, "n": len(diffs)}
            else:
                row[f"{kind}_gain"] = None
        rows.append(row)
    return rows
