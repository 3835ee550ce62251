"""Loss landscapes and sharpness, as pool jobs; cached in ``out/landscape.json``.

Replicate 0 of each paper-faithful variant gets the slices (1-D and 2-D along
filter-normalized random directions, 1-D along fault directions); every replicate of
those variants gets the sharpness figure ``S(r)`` (:mod:`nnmap.landscape`), so sharpness
orderings are read with model variance. The directions are drawn from the same seeds for
every model (paired by direction). The cache is keyed by the landscape settings and the
models' checkpoint keys, so a resumed run reuses it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import TensorDataset

from nnmap.landscape import (
    Sharpness,
    fault_direction,
    random_direction,
    sharpness,
    slice_1d,
    slice_2d,
)
from nnmap.qat import QATNet
from nnmap.saq import FlatTrainResult
from nnmap.sram_faults import SramGeometry, WeightLayout
from sim.atomic import atomic_text

from .config import FlatStudyConfig
from .pool import load_net, worker_state
from .training import PAPER_VARIANTS

__all__ = ["collect", "coords", "landscape_jobs", "landscape_subset", "model_sharpness"]

Job = tuple[Callable[..., Any], tuple[Any, ...]]


def landscape_subset(cfg: FlatStudyConfig, train: TensorDataset) -> TensorDataset:
    """The training images the landscape losses average over (the first ``samples``)."""
    x, y = train.tensors
    return TensorDataset(x[:cfg.landscape.samples], y[:cfg.landscape.samples])


def model_sharpness(cfg: FlatStudyConfig, net: QATNet, sub: TensorDataset) -> Sharpness:
    """``S(r)`` of one network with the study's landscape settings."""
    lc = cfg.landscape
    return sharpness(net, sub, radius=lc.radius, directions=lc.directions, seed=lc.seed,
                     batch_size=lc.batch_size)


def coords(cfg: FlatStudyConfig) -> dict[str, list[float]]:
    """The slice coordinates: ``coords_1d``, ``coords_2d``, ``coords_fault``."""
    lc = cfg.landscape
    return {"coords_1d": np.linspace(-lc.span, lc.span, lc.points_1d).tolist(),
            "coords_2d": np.linspace(-lc.span, lc.span, lc.points_2d).tolist(),
            "coords_fault": np.linspace(0.0, lc.fault_span, max(3, lc.points_1d // 2)).tolist()}


def _landscape_job(path: str, full: bool) -> dict[str, Any]:
    """Worker job: sharpness of one model, and its slices when ``full``."""
    state = worker_state()
    cfg: FlatStudyConfig = state["config"]
    lc = cfg.landscape
    net = load_net(path)
    sub = landscape_subset(cfg, state["split"].train)
    entry: dict[str, Any] = {"sharpness": model_sharpness(cfg, net, sub).to_dict()}
    if not full:
        return entry
    c = coords(cfg)
    geometry = SramGeometry.parse(cfg.sram) if cfg.sram else None
    layout = WeightLayout.from_net(net, geometry)
    dirs = [random_direction(net, lc.seed + k) for k in range(lc.directions)]
    entry["random_1d"] = [slice_1d(net, d, c["coords_1d"], sub, lc.batch_size)[0].tolist()
                          for d in dirs]
    entry["grid_2d"] = slice_2d(net, dirs[0], random_direction(net, lc.seed + 1000),
                                c["coords_2d"], sub, lc.batch_size).tolist()
    entry["fault_1d"] = {
        kind: [slice_1d(net, fault_direction(net, layout, kind, lc.fault_rate, lc.seed, t),
                        c["coords_fault"], sub, lc.batch_size)[0].tolist()
               for t in range(lc.fault_samples)] for kind in lc.fault_kinds}
    return entry


def _stamp(cfg: FlatStudyConfig, models: Mapping[str, Sequence[FlatTrainResult]]) -> str:
    keys = {k: [r.key for r in v] for k, v in models.items() if k in PAPER_VARIANTS}
    text = cfg.landscape.to_json() + json.dumps(keys, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(out: Path, stamp: str) -> dict[str, Any] | None:
    cache_file = out / "landscape.json"
    if cache_file.is_file():
        try:
            old = json.loads(cache_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None  # damaged cache: recompute it
        if isinstance(old, dict) and old.get("stamp") == stamp:
            return old
    return None


def landscape_jobs(cfg: FlatStudyConfig, models: Mapping[str, Sequence[FlatTrainResult]],
                   out: Path) -> list[Job]:
    """The jobs still to run (none when ``out/landscape.json`` is current or landscapes are
    off): the full one of replicate 0 first, then the sharpness of the others."""
    if not cfg.landscapes or _cached(out, _stamp(cfg, models)) is not None:
        return []
    jobs: list[Job] = []
    for full in (True, False):
        for label in PAPER_VARIANTS:
            for m, res in enumerate(models[label]):
                if (m == 0) == full:
                    jobs.append((_landscape_job, (str(res.checkpoint), full)))
    return jobs


def collect(cfg: FlatStudyConfig, models: Mapping[str, Sequence[FlatTrainResult]], out: Path,
            results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The landscape data (``results`` of :func:`landscape_jobs`, in order, or the cache),
    written to ``out/landscape.json``; ``None`` when landscapes are off."""
    if not cfg.landscapes:
        return None
    stamp = _stamp(cfg, models)
    old = _cached(out, stamp)
    if old is not None:
        return old
    it = iter(results)
    full = {label: next(it) for label in PAPER_VARIANTS}
    rest = {label: [next(it) for _ in models[label][1:]] for label in PAPER_VARIANTS}
    result: dict[str, Any] = {"stamp": stamp, **coords(cfg), "models": full,
                              "sharpness": {label: [full[label]["sharpness"]] + [
                                  e["sharpness"] for e in rest[label]]
                                  for label in PAPER_VARIANTS}}
    # Losses of far slices can overflow to inf; JSON with Infinity is what json reads back.
    atomic_text(out / "landscape.json", json.dumps(result) + "\n")
    return result
