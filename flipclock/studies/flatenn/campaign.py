"""The Monte Carlo fault campaigns (resumable, run in the worker pool) and their pairing.

Every variant x model replicate ``m`` x fault-rate unit x kind x rate x trial samples a
fault map in the SRAM weight buffer and runs the integer inference with the faulty weights
on the trial images (:func:`nnmap.sram_faults.run_fault_trial`). The map depends on
``(fault_seed, kind, rate, trial, unit, m)`` only (the replicate is the map's ``stream``),
so the variants of one replicate see the same faults in the same trial -- differences
between variants are paired -- and the replicates see independent maps.

The trials of one replicate and unit form one campaign folder ``campaign/m<m>-<unit>``
(a shard: the pool runs shards side by side; each resumes on its own).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flipclock.studies.base import run_trials
from nnmap.data import DataSplits
from nnmap.models import build_model
from nnmap.qat import QATNet
from nnmap.saq import FlatTrainConfig, FlatTrainResult
from nnmap.sram_faults import SramGeometry, WeightLayout, run_fault_trial

from .config import FlatStudyConfig, FlatStudyError, load_study_data, trial_images
from .pool import StudyPool
from .training import PAPER_VARIANTS

__all__ = ["Campaign", "FaultTrial", "merge", "model_key", "shard_trials"]

# Per process: models and data loaded once from the checkpoints, by FaultTrial key.
_LOADED: dict[str, tuple[dict[str, QATNet], Any, WeightLayout, FlatStudyConfig]] = {}


def model_key(label: str, m: int) -> str:
    """The campaign's name of replicate ``m`` of variant ``label``."""
    return f"{label}#{m}"


@dataclass(frozen=True)
class FaultTrial:
    """The campaign's trial function: ``params -> {accuracy, sparsity, faults, ...}``.

    Small and picklable (checkpoint paths, not tensors), so a worker process loads the
    models and the data once from the files and keeps them.

    ``params``: ``variant``, ``model`` (replicate ``m``), ``unit``, ``kind`` (``"none"`` at
    rate 0), ``rate``, ``trial``.
    """

    checkpoints: dict[str, str]
    config_json: str
    data_dir: str | None

    @property
    def key(self) -> str:
        """Identity of the loaded state in this process."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def _state(self) -> tuple[dict[str, QATNet], Any, WeightLayout, FlatStudyConfig]:
        if self.key not in _LOADED:
            import torch

            cfg = FlatStudyConfig.from_json(self.config_json)
            data = load_study_data(cfg, self.data_dir)
            c, h, _ = data.info.shape
            nets = {}
            for name, path in self.checkpoints.items():
                payload = torch.load(path, map_location="cpu", weights_only=True)
                tcfg = FlatTrainConfig.from_json(payload["config"])
                net = QATNet(build_model(tcfg.model, c, len(data.info.classes), h), tcfg.qat)
                net.load_state_dict(payload["state_dict"])
                nets[name] = net.eval()
            geometry = SramGeometry.parse(cfg.sram) if cfg.sram else None
            layout = WeightLayout.from_net(next(iter(nets.values())), geometry)
            _LOADED[self.key] = (nets, trial_images(cfg, data), layout, cfg)
        return _LOADED[self.key]

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Any]:
        nets, test, layout, cfg = self._state()
        m = int(params["model"])
        return run_fault_trial(nets[model_key(str(params["variant"]), m)], layout, test,
                               str(params["kind"]), float(params["rate"]), cfg.fault_seed,
                               int(params["trial"]), cfg.eval_batch, unit=str(params["unit"]),
                               stream=m)


def shard_trials(cfg: FlatStudyConfig, labels: Sequence[str], m: int, unit: str
                 ) -> list[dict[str, Any]]:
    """The trials of replicate ``m`` and ``unit``: one fault-free trial per variant, then
    every kind (controls: ``control_kinds``) x nonzero rate x trial."""
    out: list[dict[str, Any]] = []
    for label in labels:
        base = {"variant": label, "model": m, "unit": unit}
        out.append({**base, "kind": "none", "rate": 0.0, "trial": 0})
        kinds = cfg.kinds if label in PAPER_VARIANTS else cfg.control_kinds
        for kind in kinds:
            for rate in cfg.rates:
                if rate > 0:
                    out += [{**base, "kind": kind, "rate": float(rate), "trial": t}
                            for t in range(cfg.trials)]
    return out


def _shard_job(fn: FaultTrial, trials: list[dict[str, Any]], folder: str,
               settings: dict[str, Any], force: bool) -> list[dict[str, Any]]:
    return run_trials(trials, fn, Path(folder), settings=settings, progress=False,
                      desc=f"fault trials ({Path(folder).name})", force=force)


@dataclass
class Campaign:
    """What the campaigns of one study share: settings, data, layout, where, how."""

    cfg: FlatStudyConfig
    data: DataSplits
    layout: WeightLayout
    out: Path
    data_dir: str | os.PathLike[str] | None = None
    force: bool = False

    def run(self, models: Mapping[str, Sequence[FlatTrainResult]], pool: StudyPool
            ) -> list[dict[str, Any]]:
        """Every trial of every variant and replicate, resumed from ``out/campaign``."""
        return merge(pool.run(self.jobs(models)))

    def jobs(self, models: Mapping[str, Sequence[FlatTrainResult]]
             ) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
        """The shards as pool jobs (:meth:`StudyPool.run`); :func:`merge` their results."""
        cfg = self.cfg
        if any(r.checkpoint is None for rs in models.values() for r in rs):
            raise FlatStudyError("The campaign needs cached checkpoints; do not disable the "
                                 "cache")
        n_images = len(trial_images(cfg, self.data))
        jobs = []
        for m in range(cfg.models):
            ckpts = {model_key(k, m): str(v[m].checkpoint) for k, v in models.items()}
            fn = FaultTrial(ckpts, cfg.to_json(),
                            None if self.data_dir is None else str(self.data_dir))
            for unit in cfg.units:
                settings = {"study": "flatenn", "models": {model_key(k, m): v[m].key
                                                           for k, v in models.items()},
                            "data": self.data.info.fingerprint, "trial_images": n_images,
                            "fault_seed": cfg.fault_seed, "unit": unit, "stream": m,
                            "layout": self.layout.to_dict(), "eval_batch": cfg.eval_batch,
                            "fault_model": f"uniform i.i.d. per stored {unit}; sa masked; "
                                           "flip inverts"}
                jobs.append((_shard_job, (fn, shard_trials(cfg, list(models), m, unit),
                                          str(self.out / "campaign" / f"m{m}-{unit}"),
                                          settings, self.force)))
        return jobs


def merge(shards: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The records of all shards, in one list."""
    return [rec for shard in shards for rec in shard]
