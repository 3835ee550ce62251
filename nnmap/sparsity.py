"""Activation sparsity: the L1 activation regularizer (Eq. 1) and zero-activation counts.

Regularizer
-----------
Eq. (1) of the FlatENN paper (after Georgiadis, CVPR 2019)::

    L_reg(x, w) = L_0(x, w) + sum_n sum_l alpha_l * ||x_{l,n}||_1

with ``x_{l,n}`` the activation map of layer ``l`` for image ``n`` of the batch. Here both
terms are averaged over the batch (``L_0`` is the mean cross-entropy, the penalty the mean
over images), so ``alpha_l`` means the same at every batch size; with a summed ``L_0`` this
is exactly Eq. (1). The activations are the float post-ReLU maps at the network's
:attr:`~nnmap.qat.QATNet.sparsity_points`, before quantization (through the clipped STE their
gradient is the same inside the range).

``alpha_l`` comes from :class:`SparsityConfig`: by default ``alpha_l = alpha / numel_l``
(``numel_l`` = activations of layer ``l`` per image), i.e. ``alpha`` times the mean absolute
activation of each layer, so a large early feature map does not drown the small fully
connected layers; ``per_layer`` overrides single layers, ``normalize="none"`` uses ``alpha``
as it is.

Sparsity
--------
The counting rule: at every sparsity point (:attr:`~nnmap.qat.QATNet.sparsity_points`;
LeNet-5: the outputs of the ReLUs after ``conv1``, ``conv2``, ``fc1``, ``fc2``, before max
pooling; the logits are not counted), per element, summed over the test inputs, zeros /
activations per layer; the network figure is the unweighted mean over those layers (the
paper: "averaged over all layers and test inputs", Fig. 2). Two kinds of zero are counted:

* **4-bit zeros** (:attr:`SparsityReport.per_layer`, :attr:`SparsityReport.mean`): the
  *quantized* activation code is 0 (a small positive value that rounds to 0 is a zero the
  hardware can skip);
* **float zeros** (:attr:`SparsityReport.float_per_layer`, :attr:`SparsityReport.float_mean`):
  the ReLU output is exactly 0, i.e. the pre-activation was <= 0, before quantization.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch.utils.data import TensorDataset

from sim.config import Config

from .errors import NNMapError
from .qat import QATNet

__all__ = [
    "SparsityConfig",
    "SparsityError",
    "SparsityMeter",
    "SparsityReport",
    "activation_l1",
    "measure_sparsity",
]


class SparsityError(NNMapError):
    """A sparsity setting is invalid (the message names the fix)."""


@dataclass(frozen=True)
class SparsityConfig(Config):
    """Per-layer constants ``alpha_l`` of the L1 activation regularizer.

    Parameters
    ----------
    alpha:
        Global strength (0 = standard training, no regularizer).
    normalize:
        ``"numel"``: ``alpha_l = alpha / numel_l``; ``"none"``: ``alpha_l = alpha``.
    per_layer:
        Explicit ``alpha_l`` for some layers (sparsity-point names), overriding the rule.
    """

    alpha: float = 0.0
    normalize: str = "numel"
    per_layer: dict[str, float] = field(default_factory=dict)

    FORMAT: ClassVar[str] = "nnmap.sparsity"

    def __post_init__(self) -> None:
        if not self.alpha >= 0:
            raise SparsityError(f"alpha must be >= 0, not {self.alpha!r}")
        if self.normalize not in ("numel", "none"):
            raise SparsityError(f"normalize must be 'numel' or 'none', not {self.normalize!r}")
        for k, v in self.per_layer.items():
            if not v >= 0:
                raise SparsityError(f"alpha of layer {k!r} must be >= 0, not {v!r}")

    @property
    def active(self) -> bool:
        """Whether the regularizer contributes anything."""
        return self.alpha > 0 or any(v > 0 for v in self.per_layer.values())

    def alpha_l(self, point: str, numel: int) -> float:
        """``alpha_l`` of sparsity point ``point`` with ``numel`` activations per image."""
        if point in self.per_layer:
            return float(self.per_layer[point])
        return self.alpha / numel if self.normalize == "numel" else self.alpha


def activation_l1(acts: Mapping[str, torch.Tensor], config: SparsityConfig) -> torch.Tensor:
    """``(1/N) sum_n sum_l alpha_l ||x_{l,n}||_1`` of recorded post-ReLU activations.

    Parameters
    ----------
    acts:
        ``point -> [N, ...]`` activations (:attr:`QATNet.acts` after a forward with
        ``record=True``).
    config:
        The ``alpha_l``.
    """
    total = torch.zeros(())
    for point, a in acts.items():
        per_image = a[0].numel()
        alpha = config.alpha_l(point, per_image)
        if alpha:
            total = total + alpha * a.abs().sum() / len(a)
    return total


class SparsityMeter:
    """Counts zeros of the quantized post-ReLU activations, per sparsity point.

    Attach it as :attr:`QATNet.meter`; :meth:`report` gives the percentages.
    """

    def __init__(self) -> None:
        self.zeros: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.float_zeros: dict[str, int] = {}

    def update(self, name: str, q: torch.Tensor) -> None:
        """Add the zeros of one batch of quantized activations of ``name``."""
        self.zeros[name] = self.zeros.get(name, 0) + q.numel() - int(torch.count_nonzero(q))
        self.total[name] = self.total.get(name, 0) + q.numel()

    def update_float(self, name: str, pre: torch.Tensor) -> None:
        """Add the float zeros (``pre <= 0``: ReLU gives exactly 0) of one batch of
        pre-activations of ``name``."""
        self.float_zeros[name] = self.float_zeros.get(name, 0) + int((pre <= 0).sum())

    def report(self) -> SparsityReport:
        """Per-layer and mean-over-layers zero percentages so far (4-bit and float)."""
        per = {k: 100.0 * self.zeros[k] / max(self.total[k], 1) for k in self.total}
        mean = sum(per.values()) / len(per) if per else float("nan")
        fper = {k: 100.0 * self.float_zeros[k] / max(self.total[k], 1)
                for k in self.total if k in self.float_zeros}
        fmean = sum(fper.values()) / len(fper) if fper else float("nan")
        return SparsityReport(per, mean, fper, fmean)


@dataclass(frozen=True)
class SparsityReport:
    """Zero activations in percent: 4-bit zeros ``per_layer`` and their ``mean`` (Fig. 2);
    float zeros (ReLU output exactly 0) ``float_per_layer`` and ``float_mean``."""

    per_layer: dict[str, float]
    mean: float
    float_per_layer: dict[str, float] = field(default_factory=dict)
    float_mean: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"per_layer": dict(self.per_layer), "mean": self.mean,
                "float_per_layer": dict(self.float_per_layer), "float_mean": self.float_mean}


def measure_sparsity(net: QATNet, data: TensorDataset | Iterable[tuple[torch.Tensor, Any]], *,
                     batch_size: int = 1000) -> tuple[float, SparsityReport]:
    """Accuracy and activation sparsity of ``net`` (in ``eval()`` mode) on ``data``.

    Returns
    -------
    (accuracy, SparsityReport)
    """
    meter = SparsityMeter()
    was_training, old = net.training, net.meter
    net.eval()
    net.meter = meter
    correct = total = 0
    try:
        with torch.no_grad():
            for x, y in _batches(data, batch_size):
                correct += int((net(x).argmax(1) == y).sum())
                total += len(y)
    finally:
        net.meter = old
        net.train(was_training)
    return correct / max(total, 1), meter.report()


def _batches(data: TensorDataset | Iterable[tuple[torch.Tensor, Any]],
             batch_size: int) -> Iterable[tuple[torch.Tensor, Any]]:
    if isinstance(data, TensorDataset):
        x, y = data.tensors
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
    else:
        yield from data
