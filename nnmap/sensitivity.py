"""Weight sensitivity ``|dL/dw|`` accumulated over the training set (Wu et al., III-C, Fig. 3).

The sensitivity of a weight is the magnitude of the loss gradient with respect to it: a
weight with a small ``|dL/dw|`` can be moved (error-aware quantization) at little cost, a
weight with a large one is distributed instead (function preserved exactly).

Definition used here: the float model in ``eval()`` mode (batch norm with its running
statistics, i.e. the function the INT8 network approximates) is run over the training
images in mini-batches; for every batch ``b`` the gradient of the batch's *mean*
cross-entropy is taken and ``|dL_b/dw|`` is accumulated; the sensitivity is the average
over batches. (The absolute value is taken per batch: the gradient of the whole training
loss of a converged model is close to zero and would rank nothing.)

Sensitivities are reported for the weights the INT8 network actually multiplies -- after
batch norm folding ``w' = k_o w`` -- so ``|dL/dw'| = |dL/dw| / |k_o|`` per output channel
(``k_o = 1`` for layers without batch norm). Layer names are the MAC layers' names.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset
from tqdm import tqdm

from sim.atomic import save_figure
from sim.config import Config

from .errors import NNMapError
from .quant import QuantizedNet

__all__ = [
    "SensitivityConfig",
    "SensitivityError",
    "plot_sensitivity",
    "sensitivity_digest",
    "top_fraction_mask",
    "weight_sensitivity",
]


class SensitivityError(NNMapError):
    """A sensitivity setting or input is invalid (the message names the fix)."""


@dataclass(frozen=True)
class SensitivityConfig(Config):
    """Settings of the sensitivity pass.

    Parameters
    ----------
    images:
        Training images to accumulate over (all when ``None``).
    batch_size:
        Images per gradient.
    """

    FORMAT: ClassVar[str] = "nnmap.sensitivity"

    images: int | None = None
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.images is not None and (not isinstance(self.images, int) or self.images < 1):
            raise SensitivityError(f"images must be a positive integer or None, not "
                                   f"{self.images!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise SensitivityError(f"batch_size must be a positive integer, not "
                                   f"{self.batch_size!r}")


def weight_sensitivity(model: nn.Module, qnet: QuantizedNet, data: TensorDataset,
                       config: SensitivityConfig | None = None, *,
                       progress: bool = False) -> dict[str, npt.NDArray[np.float64]]:
    """``|dL/dw'|`` of every weight of every MAC layer of ``qnet`` (see the module docstring).

    Parameters
    ----------
    model:
        The float model ``qnet`` was quantized from (its mode is restored afterwards).
    qnet:
        The INT8 network: its layer names and folded float weights fix the layout.
    data:
        The training set (``TensorDataset(x, y)``).
    config:
        Images and batch size.
    progress:
        Show a progress bar.

    Returns
    -------
    dict
        ``layer name -> float64`` array shaped like that layer's weight.
    """
    config = config or SensitivityConfig()
    modules = dict(model.named_modules())
    folded = qnet.float_weights()
    params: dict[str, nn.Parameter] = {}
    for name in qnet.layers:
        mod = modules.get(name)
        weight = getattr(mod, "weight", None)
        if not isinstance(weight, nn.Parameter) or weight.shape != folded[name].shape:
            raise SensitivityError(f"The float model has no weight matching INT8 layer {name!r}; "
                                   "pass the model the network was quantized from")
        params[name] = weight
    x_all, y_all = data.tensors
    n = len(x_all) if config.images is None else min(config.images, len(x_all))
    if n == 0:
        raise SensitivityError("No training images to accumulate sensitivities over")
    acc = {name: torch.zeros_like(p, dtype=torch.float64) for name, p in params.items()}
    was_training = model.training
    model.eval()
    batches = range(0, n, config.batch_size)
    try:
        for i in tqdm(batches, desc="sensitivity", disable=not progress, leave=False):
            xb, yb = x_all[i:min(i + config.batch_size, n)], y_all[i:min(i + config.batch_size, n)]
            loss = F.cross_entropy(model(xb), yb)
            grads = torch.autograd.grad(loss, list(params.values()))
            for name, g in zip(params, grads, strict=True):
                acc[name] += g.detach().double().abs()
    finally:
        model.train(was_training)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name, total in acc.items():
        raw = params[name].detach().double()
        k = _fold_factor(raw, folded[name])
        shape = (-1,) + (1,) * (raw.dim() - 1)
        out[name] = (total / len(batches) / k.view(shape)).numpy()
    return out


def _fold_factor(raw: torch.Tensor, folded: torch.Tensor) -> torch.Tensor:
    """``|k_o|`` with ``folded[o] = k_o * raw[o]`` (1 where a channel is all zero)."""
    r = raw.reshape(len(raw), -1).norm(dim=1)
    f = folded.reshape(len(folded), -1).norm(dim=1)
    return torch.where(r > 0, f / torch.clamp(r, min=1e-300), torch.ones_like(r)).clamp(min=1e-30)


def top_fraction_mask(sensitivity: Mapping[str, npt.NDArray[np.float64]],
                      fraction: float) -> dict[str, npt.NDArray[np.bool_]]:
    """The ``fraction`` most sensitive weights of the whole network (ties broken by order).

    Parameters
    ----------
    sensitivity:
        ``layer -> sensitivities`` (:func:`weight_sensitivity`).
    fraction:
        In ``[0, 1]``; ``round(fraction * total weights)`` weights are marked.
    """
    if not 0 <= fraction <= 1:
        raise SensitivityError(f"fraction must be in [0, 1], not {fraction!r}")
    names = list(sensitivity)
    flat = np.concatenate([np.asarray(sensitivity[k], np.float64).ravel() for k in names])
    k = int(round(fraction * flat.size))
    chosen = np.zeros(flat.size, bool)
    if k:
        chosen[np.argsort(-flat, kind="stable")[:k]] = True
    out: dict[str, npt.NDArray[np.bool_]] = {}
    start = 0
    for name in names:
        shape = np.shape(sensitivity[name])
        size = int(np.prod(shape))
        out[name] = chosen[start:start + size].reshape(shape)
        start += size
    return out


def sensitivity_digest(sensitivity: Mapping[str, npt.NDArray[np.float64]]) -> str:
    """SHA-256 of the sensitivities (recorded with results)."""
    h = hashlib.sha256()
    for name in sorted(sensitivity):
        h.update(name.encode())
        h.update(np.ascontiguousarray(sensitivity[name], np.float64).tobytes())
    return h.hexdigest()


def plot_sensitivity(sensitivity: Mapping[str, npt.NDArray[np.float64]],
                     path: str | os.PathLike[str], *, fraction: float | None = 0.01,
                     title: str = "Weight sensitivity") -> Path:
    """Fig. 3: histogram of ``|dL/dw|`` per layer (log axes), with the top-``fraction`` cut.

    Written atomically as a PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    flat = np.concatenate([np.asarray(v, np.float64).ravel() for v in sensitivity.values()])
    positive = flat[flat > 0]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if positive.size:
        bins = [float(b) for b in np.logspace(np.log10(positive.min()),
                                               np.log10(positive.max()), 60)]
        ax.hist([np.asarray(v, np.float64).ravel()[np.asarray(v).ravel() > 0]
                 for v in sensitivity.values()], bins=bins, stacked=True,
                label=list(sensitivity), log=True)
        ax.set_xscale("log")
        if fraction:
            k = int(round(fraction * flat.size))
            if k:
                cut = float(np.sort(flat)[::-1][k - 1])
                ax.axvline(cut, color="black", linestyle="--",
                           label=f"top {100 * fraction:g} % ({k} weights)")
    ax.set_xlabel(r"sensitivity $|\partial L / \partial w|$")
    ax.set_ylabel("weights")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return path
