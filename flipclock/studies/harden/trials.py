"""The study's two trial functions, run by :func:`flipclock.studies.base.run_trials`.

They live at module level and take plain parameter dicts, so Dask workers can import and
call them. Each worker process keeps what every trial of a campaign shares (the evaluation
images, the loaded variants, their fault-free predictions) in a small cache keyed by file
and modification time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from nnmap.bitflip import Int8Image, flip_float32, inject
from nnmap.campaign import trial_key
from nnmap.data import load_dataset
from nnmap.vulnerability import layer_input, network_tail

__all__ = ["ber_trial", "channel_trial", "trial_seed"]

_CACHE: dict[Any, Any] = {}


def trial_seed(params: Mapping[str, Any]) -> int:
    """A 63-bit seed from a trial's parameters (file locations excluded, so a moved output
    folder draws the same faults)."""
    key = trial_key({k: v for k, v in params.items() if k not in ("file", "data_dir")})
    return int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)


def _eval_data(dataset: str, data_dir: str | None, n: int, seed: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded subset of ``n`` test images (all of them for ``n = 0``)."""
    key = ("data", dataset, data_dir, n, seed)
    if key not in _CACHE:
        x, y = load_dataset(dataset, data_dir).test.tensors
        if 0 < n < len(x):
            idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
            x, y = x[idx.sort().values], y[idx.sort().values]
        _CACHE[key] = (x, y)
    return _CACHE[key]  # type: ignore[no-any-return]


def _load_variant(file: str, dtype: str) -> tuple[nn.Module, Int8Image | None]:
    # The modification time is part of the key: a study re-run in the same process (tests,
    # the demo) may rewrite a variant.
    key = ("model", file, dtype, os.stat(file).st_mtime_ns)
    if key not in _CACHE:
        model = torch.load(file, map_location="cpu", weights_only=False).eval()
        image = Int8Image(model, prepared=True) if dtype == "int8" else None
        _CACHE[key] = (model, image)
    return _CACHE[key]  # type: ignore[no-any-return]


def _predict(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             batch_size: int = 250) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(1)
                          for i in range(0, len(x), batch_size)])


def _data(params: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
    x, y = _eval_data(params["dataset"], params.get("data_dir"), params["eval_samples"],
                      params["seed"])
    return x, y, (params["dataset"], params["eval_samples"], params["seed"])


def _clean(file: str, dtype: str, x: torch.Tensor, y: torch.Tensor, dkey: Any
           ) -> tuple[float, torch.Tensor]:
    """Fault-free accuracy and predictions of a saved variant (cached)."""
    key = ("clean", file, dtype, dkey, os.stat(file).st_mtime_ns)
    if key not in _CACHE:
        model, _ = _load_variant(file, dtype)
        pred = _predict(model, x)
        _CACHE[key] = (float((pred == y).float().mean()), pred)
    return _CACHE[key]  # type: ignore[no-any-return]


def ber_trial(params: Mapping[str, Any]) -> dict[str, float]:
    """One fault-injection trial: flip parameter bits of a saved variant at ``ber``.

    ``params``: ``variant``, ``file`` (a ``torch.save``-d model), ``dtype``, ``ber``,
    ``trial``, ``seed``, ``dataset``, ``data_dir``, ``eval_samples``. Returns the accuracy,
    the variant's fault-free accuracy, the drop and the number of flipped bits.
    """
    torch.set_num_threads(1)
    x, y, dkey = _data(params)
    clean, _ = _clean(params["file"], params["dtype"], x, y, dkey)
    model, image = _load_variant(params["file"], params["dtype"])
    gen = torch.Generator().manual_seed(trial_seed(params))
    with inject(model, params["ber"], dtype=params["dtype"], generator=gen,
                int8=image) as report:
        acc = float((_predict(model, x) == y).float().mean())
    return {"accuracy": acc, "clean_accuracy": clean, "drop": clean - acc,
            "flips": report.total}


def _tail(params: Mapping[str, Any], model: nn.Module, x: torch.Tensor, dkey: Any
          ) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    # Faults in layer L leave everything before it alone: run only the tail of the network
    # on L's cached fault-free input (the same operations on the same values).
    file, layer = params["file"], params["layer"]
    key = ("tail", file, layer, dkey, os.stat(file).st_mtime_ns)
    if key not in _CACHE:
        tail = network_tail(model, layer)
        _CACHE[key] = (tail, layer_input(model, layer, x)) if tail else (model, x)
    return _CACHE[key]  # type: ignore[no-any-return]


def channel_trial(params: Mapping[str, Any]) -> dict[str, float]:
    """Faults in one output channel's weights; the mean top-1 mismatch with the clean run.

    ``params``: ``file``, ``layer``, ``channel``, ``kind`` (``"noise"``: ``draws`` Gaussian
    perturbations of standard deviation ``sigma``; ``"bitflip"``: one flip per bit position
    0..31, each at a random weight of the channel), ``seed``, data keys as
    :func:`ber_trial`.
    """
    torch.set_num_threads(1)
    x, y, dkey = _data(params)
    _, clean_pred = _clean(params["file"], "float32", x, y, dkey)
    model, _ = _load_variant(params["file"], "float32")
    run, inputs = _tail(params, model, x, dkey)
    weight = model.get_submodule(params["layer"]).weight
    assert isinstance(weight, torch.Tensor)
    row = weight.data[params["channel"]]
    original = row.clone()
    gen = torch.Generator().manual_seed(trial_seed(params))
    mismatches = []
    try:
        if params["kind"] == "noise":
            for _ in range(params["draws"]):
                row.copy_(original + params["sigma"] * torch.randn(original.shape,
                                                                   generator=gen))
                mismatches.append(float((_predict(run, inputs) != clean_pred).float().mean()))
                row.copy_(original)
        else:
            flat = row.view(-1)
            for bit in range(32):
                element = int(torch.randint(0, flat.numel(), (1,), generator=gen))
                flip_float32(flat[element:element + 1], torch.tensor([bit]))
                mismatches.append(float((_predict(run, inputs) != clean_pred).float().mean()))
                row.copy_(original)
    finally:
        row.copy_(original)
    return {"mismatch": sum(mismatches) / len(mismatches)}
