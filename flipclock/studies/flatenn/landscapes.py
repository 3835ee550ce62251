"""Step 5: loss landscapes of the four models, cached in ``out/landscape.json``.

1-D and 2-D slices along filter-normalized random directions, slices along fault
directions, and the sharpness figure ``S(r)`` (:mod:`nnmap.landscape`). The cache is keyed by
the landscape settings, the models' weight codes and the data, so a resumed run reuses it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import TensorDataset

from nnmap.data import DataSplits
from nnmap.landscape import (
    Sharpness,
    fault_direction,
    random_direction,
    sharpness,
    slice_1d,
    slice_2d,
)
from nnmap.qat import QATNet
from nnmap.sram_faults import WeightLayout
from sim.atomic import atomic_text

from .config import FlatStudyConfig

__all__ = ["landscape_subset", "landscapes", "model_sharpness"]


def landscape_subset(cfg: FlatStudyConfig, data: DataSplits) -> TensorDataset:
    """The training images the landscape losses average over (the first ``samples``)."""
    x, y = data.train.tensors
    return TensorDataset(x[:cfg.landscape.samples], y[:cfg.landscape.samples])


def model_sharpness(cfg: FlatStudyConfig, net: QATNet, sub: TensorDataset) -> Sharpness:
    """``S(r)`` of one network with the study's landscape settings."""
    lc = cfg.landscape
    return sharpness(net, sub, radius=lc.radius, directions=lc.directions, seed=lc.seed,
                     batch_size=lc.batch_size)


def _stamp(cfg: FlatStudyConfig, nets: Mapping[str, QATNet], data: DataSplits) -> str:
    codes = {k: hashlib.sha256(str(sorted((n, float(t.sum())) for n, t in
                                          net.weight_codes().items())).encode()).hexdigest()
             for k, net in nets.items()}
    text = cfg.landscape.to_json() + json.dumps(codes, sort_keys=True) + data.info.fingerprint
    return hashlib.sha256(text.encode()).hexdigest()


def landscapes(cfg: FlatStudyConfig, nets: Mapping[str, QATNet], data: DataSplits,
               layout: WeightLayout, out: Path, progress: bool) -> dict[str, Any]:
    """Every model's slices and sharpness; read from ``out/landscape.json`` when current."""
    lc = cfg.landscape
    cache_file = out / "landscape.json"
    stamp = _stamp(cfg, nets, data)
    if cache_file.is_file():
        try:
            old = json.loads(cache_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            old = {}  # damaged cache: recompute it
        if isinstance(old, dict) and old.get("stamp") == stamp:
            return old
    sub = landscape_subset(cfg, data)
    coords = np.linspace(-lc.span, lc.span, lc.points_1d).tolist()
    coords2 = np.linspace(-lc.span, lc.span, lc.points_2d).tolist()
    tcoords = np.linspace(0.0, lc.fault_span, max(3, lc.points_1d // 2)).tolist()
    result: dict[str, Any] = {"stamp": stamp, "coords_1d": coords, "coords_2d": coords2,
                              "coords_fault": tcoords, "models": {}}
    for label, net in nets.items():
        dirs = [random_direction(net, lc.seed + k) for k in range(lc.directions)]
        entry: dict[str, Any] = {
            "random_1d": [slice_1d(net, d, coords, sub, lc.batch_size)[0].tolist()
                          for d in dirs],
            "grid_2d": slice_2d(net, dirs[0], random_direction(net, lc.seed + 1000), coords2,
                                sub, lc.batch_size, progress).tolist(),
            "sharpness": model_sharpness(cfg, net, sub).to_dict(),
            "fault_1d": {},
        }
        for kind in lc.fault_kinds:
            entry["fault_1d"][kind] = [
                slice_1d(net, fault_direction(net, layout, kind, lc.fault_rate, lc.seed, t),
                         tcoords, sub, lc.batch_size)[0].tolist()
                for t in range(lc.fault_samples)]
        result["models"][label] = entry
    # Losses of far slices can overflow to inf; JSON with Infinity is what json reads back.
    atomic_text(cache_file, json.dumps(result) + "\n")
    return result
