"""Weight loss landscapes (Li et al., NeurIPS 2018) of quantized networks, and sharpness.

Directions
----------
The landscape of a :class:`~nnmap.qat.QATNet` is taken around its **quantized** weights
``theta = s_w * q`` (the point the hardware holds, which faults and SAQ's perturbation move):
``L(theta + a d1 + b d2)`` evaluated with the activations still quantized (the network in
``eval()`` mode, batch norm with its running statistics, nothing updated).

:func:`random_direction` draws a Gaussian direction for every MAC-layer weight and applies Li et
al.'s **filter normalization**: each filter ``d_f`` (one output channel of a convolution, one
row of a fully connected layer) is rescaled to the norm of the matching filter of ``theta``,
``d_f <- d_f / ||d_f|| * ||theta_f||``. Biases and batch-norm parameters are excluded (their
direction is zero). The raw Gaussian draws depend only on the seed and the layer shapes, so
models of one architecture are compared along the same random directions.

:func:`fault_direction` is the weight change a sampled fault map causes,
``delta = s_w * (q_faulty - q)`` (beyond the paper): ``t = 1`` is the faulty network, the
slice ``L(theta + t delta)`` shows how steep the landscape is where faults push it.

Loss
----
The mean cross-entropy (without the L1 activation penalty, so standard and activation-sparse
models are compared on the same objective) over a fixed subset of the training images.

Sharpness
---------
:func:`sharpness` turns "sharper minimum" into a number: the mean loss increase at radius
``r`` along ``K`` filter-normalized random directions, both signs,
``S(r) = mean_{k, +-} [L(theta +- r d_k) - L(theta)]``, with a 95 % CI over the ``2K``
values. :func:`correlation` relates it to measured fault tolerance across models.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset
from tqdm import tqdm

from sim.atomic import save_figure
from sim.config import Config

from .errors import NNMapError
from .qat import QATNet
from .sram_faults import WeightLayout, fault_seed, sample_faults
from .stats import mean_ci

__all__ = [
    "Correlation",
    "LandscapeConfig",
    "LandscapeError",
    "Sharpness",
    "correlation",
    "fault_direction",
    "loss_at",
    "plot_slices_1d",
    "plot_surface_2d",
    "quantized_weights",
    "random_direction",
    "sharpness",
    "slice_1d",
    "slice_2d",
]

Direction = dict[str, torch.Tensor]


class LandscapeError(NNMapError):
    """A landscape setting is invalid (the message names the fix)."""


@dataclass(frozen=True)
class LandscapeConfig(Config):
    """Settings of the landscape slices and the sharpness figure.

    Parameters
    ----------
    samples:
        Training images the loss is averaged over (the first ones).
    span:
        Slices run over ``[-span, span]`` (in units of the normalized direction).
    points_1d, points_2d:
        Grid points per axis.
    directions:
        Random directions for the sharpness figure (``K``).
    radius:
        Sharpness radius ``r``.
    fault_kinds, fault_rate, fault_samples, fault_span:
        Fault-direction slices: kinds, fault rate, maps per kind, ``t`` in ``[0, fault_span]``.
    seed:
        Seed of the random directions and fault maps.
    batch_size:
        Images per forward pass.
    """

    samples: int = 2000
    span: float = 1.0
    points_1d: int = 41
    points_2d: int = 17
    directions: int = 4
    radius: float = 0.25
    fault_kinds: tuple[str, ...] = ("flip", "sa0", "sa1")
    fault_rate: float = 0.01
    fault_samples: int = 2
    fault_span: float = 1.5
    seed: int = 0
    batch_size: int = 1000

    FORMAT: ClassVar[str] = "nnmap.landscape"

    def __post_init__(self) -> None:
        for name in ("samples", "points_1d", "points_2d", "directions", "fault_samples",
                     "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise LandscapeError(f"{name} must be a positive integer, not {v!r}")
        for name in ("span", "radius", "fault_span"):
            v = getattr(self, name)
            if not v > 0:
                raise LandscapeError(f"{name} must be positive, not {v!r}")
        if not 0 <= self.fault_rate <= 1:
            raise LandscapeError(f"fault_rate must be in [0, 1], not {self.fault_rate!r}")


def quantized_weights(net: QATNet) -> Direction:
    """``theta``: the dequantized weights ``s_w * q`` of every MAC layer."""
    return {n: net.weight_codes_of(n) * net.weight_scale(n) for n in net.mac_names}


def random_direction(net: QATNet, seed: int, *, normalize: bool = True) -> Direction:
    """A Gaussian direction over the MAC-layer weights, filter-normalized (see module doc).

    Parameters
    ----------
    net:
        The network (its quantized weights set the filter norms).
    seed:
        Seed of the Gaussian draws.
    normalize:
        Apply the filter normalization (``False`` gives the raw draws).
    """
    gen = torch.Generator().manual_seed(seed)
    theta = quantized_weights(net)
    out = {}
    for name in net.mac_names:
        w = theta[name]
        d = torch.randn(w.shape, generator=gen)
        if normalize:
            dn = d.reshape(len(d), -1).norm(dim=1)
            wn = w.reshape(len(w), -1).norm(dim=1)
            d = d * (wn / (dn + 1e-10)).view(-1, *([1] * (d.dim() - 1)))
        out[name] = d
    return out


def fault_direction(net: QATNet, layout: WeightLayout, kind: str, rate: float, seed: int,
                    trial: int = 0) -> Direction:
    """``s_w * (q_faulty - q)``: the weight change of one sampled fault map."""
    codes = net.weight_codes()
    flat = layout.flatten(codes)
    fmap = sample_faults(layout, kind, rate, fault_seed(seed, kind, rate, trial))
    faulty = layout.split(fmap.apply(flat))
    return {n: (faulty[n].float() - codes[n].float()) * net.weight_scale(n)
            for n in net.mac_names}


def _combine(dirs: Sequence[tuple[float, Direction]]) -> Direction:
    out: Direction = {}
    for coef, d in dirs:
        for n, t in d.items():
            out[n] = out[n] + coef * t if n in out else coef * t
    return out


def loss_at(net: QATNet, eps: Mapping[str, torch.Tensor], data: TensorDataset,
            batch_size: int = 1000) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` at ``theta + eps`` (nothing is updated)."""
    x, y = data.tensors
    was = net.training
    net.eval()
    loss = 0.0
    correct = 0
    try:
        with torch.no_grad(), net.perturbed(eps):
            for i in range(0, len(x), batch_size):
                logits = net(x[i:i + batch_size])
                loss += float(F.cross_entropy(logits, y[i:i + batch_size], reduction="sum"))
                correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    finally:
        net.train(was)
    return loss / len(x), correct / len(x)


def slice_1d(net: QATNet, direction: Direction, coords: Sequence[float], data: TensorDataset,
             batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy at ``theta + a * direction`` for every ``a`` in ``coords``."""
    res = [loss_at(net, _combine([(a, direction)]), data, batch_size) for a in coords]
    return np.array([r[0] for r in res]), np.array([r[1] for r in res])


def slice_2d(net: QATNet, d1: Direction, d2: Direction, coords: Sequence[float],
             data: TensorDataset, batch_size: int = 1000, progress: bool = False
             ) -> np.ndarray:
    """Loss ``[len(coords), len(coords)]`` at ``theta + a d1 + b d2`` (rows ``b``, cols ``a``)."""
    grid = np.empty((len(coords), len(coords)))
    cells = list(itertools.product(range(len(coords)), range(len(coords))))
    for j, i in tqdm(cells, desc="2-D landscape", disable=not progress, leave=False):
        grid[j, i] = loss_at(net, _combine([(coords[i], d1), (coords[j], d2)]), data,
                             batch_size)[0]
    return grid


@dataclass(frozen=True)
class Sharpness:
    """Mean loss increase at radius ``radius`` with a 95 % CI over directions and signs."""

    radius: float
    base_loss: float
    mean: float
    low: float
    high: float
    increases: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def sharpness(net: QATNet, data: TensorDataset, *, radius: float = 0.25, directions: int = 4,
              seed: int = 0, batch_size: int = 1000) -> Sharpness:
    """``S(r)``: mean of ``L(theta +- r d_k) - L(theta)`` over ``directions`` random ``d_k``."""
    base = loss_at(net, {}, data, batch_size)[0]
    inc = []
    for k in range(directions):
        d = random_direction(net, seed + k)
        for sign in (1.0, -1.0):
            inc.append(loss_at(net, _combine([(sign * radius, d)]), data, batch_size)[0] - base)
    ci = mean_ci(inc) if len(inc) > 1 else None
    return Sharpness(radius, base, float(np.mean(inc)), ci.low if ci else inc[0],
                     ci.high if ci else inc[0], inc)


@dataclass(frozen=True)
class Correlation:
    """Pearson ``r``, Spearman ``rho`` and the exact permutation p-value of ``r`` (n small)."""

    n: int
    pearson: float
    spearman: float
    p_value: float


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xs, ys = x - x.mean(), y - y.mean()
    den = math.sqrt(float((xs ** 2).sum() * (ys ** 2).sum()))
    return float((xs * ys).sum() / den) if den > 0 else float("nan")


def correlation(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Correlation of two short series; the p-value enumerates all permutations (n <= 8)."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if xa.shape != ya.shape or xa.size < 3:
        raise LandscapeError("correlation needs two series of equal length >= 3")
    r = _pearson(xa, ya)
    rho = _pearson(np.argsort(np.argsort(xa)).astype(float),
                   np.argsort(np.argsort(ya)).astype(float))
    if xa.size <= 8 and math.isfinite(r):
        perms = list(itertools.permutations(range(xa.size)))
        hits = sum(abs(_pearson(xa, ya[list(p)])) >= abs(r) - 1e-12 for p in perms)
        p = hits / len(perms)
    else:
        p = float("nan")
    return Correlation(int(xa.size), r, rho, p)


# --- plots ---------------------------------------------------------------------------------
def plot_slices_1d(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: Path,
                   *, title: str, xlabel: str) -> None:
    """One line per label: ``label -> (coords, losses)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_surface_2d(grids: Mapping[str, np.ndarray], coords: Sequence[float], contour: Path,
                    surface: Path, *, title: str) -> None:
    """Contour panels and 3-D surfaces of 2-D slices, one panel per model, common colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(grids)
    xs = np.asarray(coords)
    gx, gy = np.meshgrid(xs, xs)
    top = float(np.nanpercentile(np.concatenate([g.ravel() for g in grids.values()]), 95))
    low = float(min(np.nanmin(g) for g in grids.values()))
    levels = np.linspace(low, max(top, low + 1e-6), 20)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), dpi=120,
                             squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        cs = ax.contour(gx, gy, np.minimum(grids[name], top), levels=levels, cmap="viridis")
        ax.clabel(cs, fontsize=6, fmt="%.2f")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x (direction 1)")
        ax.set_ylabel("y (direction 2)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, contour)
    fig = plt.figure(figsize=(3.8 * len(names), 3.6), dpi=120)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1, projection="3d")
        ax.plot_surface(gx, gy, np.minimum(grids[name], top), cmap="viridis", linewidth=0,
                        antialiased=True)
        ax.set_zlim(low, top)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, surface)
