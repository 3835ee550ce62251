"""Sharpness-aware quantization (SAQ, Eq. 2-3) and the cached trainer of the FlatENN models.

SAQ step (Liu et al. 2021, as used by FlatENN)
-----------------------------------------------
Per mini-batch, :func:`saq_step`:

1. runs a forward/backward pass at the current weights and takes the gradient ``g`` of the
   loss with respect to the **quantized** weights ``Q_w(w)`` (the fake-quantized tensors the
   layers multiply with, :attr:`~nnmap.qat.QATNet.qweights`), not the float weights;
2. perturbs the quantized weights by ``eps = rho * g / ||g||_2`` (Eq. 3; one norm over all
   MAC-layer weights, as in SAM; biases and batch-norm parameters are not perturbed);
3. runs a second forward/backward pass at ``Q_w(w) + eps``; its gradient reaches the float
   weights through the straight-through estimator, and the optimiser (SGD with the L2 term
   ``lambda/2 ||w||^2`` of Eq. 2 as coupled weight decay) applies it.

The second pass runs inside :meth:`~nnmap.qat.QATNet.frozen_statistics`: batch norm still
normalises with the batch statistics, but its running mean/variance (and the activation
quantizers' moving ranges) are updated once per step, by the first pass only.

The loss of both passes is the cross-entropy plus, for activation-sparse models, the L1
activation penalty of :mod:`nnmap.sparsity` (same ``alpha`` with and without SAQ, as in the
paper). With ``rho = 0`` a SAQ step gives the same update as a conventional one, at twice the
cost -- which is why SAQ models train for half the epochs (:attr:`FlatTrainConfig.epochs`).

Trainer
-------
:func:`train_flat` trains a :class:`FlatTrainConfig` (conventional or SAQ, with or without
the activation regularizer) on the CPU or loads its checkpoint from the cache
(``<cache>/flatenn/<key>.pt``, keyed by the SHA-256 of the config, the data set's fingerprint
and :data:`CACHE_VERSION`; written atomically, with a ``.json`` beside it for people).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sim.config import Config

from .data import DataSplits, load_dataset
from .errors import NNMapError
from .models import build_model
from .qat import QATConfig, QATNet
from .sparsity import SparsityConfig, activation_l1
from .train import _augment, cache_dir, evaluate, read_checkpoint, write_checkpoint

__all__ = [
    "CACHE_VERSION",
    "FLAT_MODELS",
    "FlatTrainConfig",
    "FlatTrainResult",
    "SAQError",
    "StepStats",
    "conventional_step",
    "saq_step",
    "train_flat",
]

#: The models FlatENN trains: those :class:`~nnmap.qat.QATNet` runs (LeNet-5 and the ResNets).
FLAT_MODELS = ("lenet5", "resnet20", "resnet18")

#: Bumped when the trainer changes in a way that changes the weights of a config.
CACHE_VERSION = 1
_FORMAT = "flipclock-flatenn-checkpoint"


class SAQError(NNMapError):
    """A training setting is invalid (the message quotes it and names the fix)."""


@dataclass
class StepStats:
    """What one training step measured: ``loss`` (cross-entropy), ``reg`` (L1 penalty),
    ``correct`` (top-1 hits of the first pass), ``perturbed_loss`` and ``eps_norm`` (SAQ)."""

    loss: float
    reg: float
    correct: int
    perturbed_loss: float = float("nan")
    eps_norm: float = 0.0


def _loss(net: QATNet, x: torch.Tensor, y: torch.Tensor, sparsity: SparsityConfig
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    net.record = sparsity.active
    try:
        logits = net(x)
    finally:
        net.record = False
    ce = F.cross_entropy(logits, y)
    reg = activation_l1(net.acts, sparsity) if sparsity.active else torch.zeros(())
    net.acts = {}
    return ce, reg, logits


def conventional_step(net: QATNet, x: torch.Tensor, y: torch.Tensor,
                      opt: torch.optim.Optimizer, sparsity: SparsityConfig) -> StepStats:
    """One forward/backward/update at the fake-quantized weights."""
    net.train()
    ce, reg, logits = _loss(net, x, y, sparsity)
    opt.zero_grad(set_to_none=True)
    (ce + reg).backward()
    opt.step()
    return StepStats(float(ce.detach()), float(reg.detach()),
                     int((logits.argmax(1) == y).sum()))


def saq_step(net: QATNet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer,
             sparsity: SparsityConfig, rho: float) -> StepStats:
    """One SAQ step (see the module docstring): two passes, one update.

    Parameters
    ----------
    net:
        The network (put in ``train()`` mode).
    x, y:
        The mini-batch.
    opt:
        Optimiser over ``net``'s parameters (its weight decay is Eq. 2's L2 term).
    sparsity:
        The activation regularizer (inactive for standard models).
    rho:
        Radius of the perturbation of the quantized weights.
    """
    if not rho >= 0:
        raise SAQError(f"rho must be >= 0, not {rho!r}")
    net.train()
    ce, reg, logits = _loss(net, x, y, sparsity)
    names = list(net.qweights)
    grads = torch.autograd.grad(ce + reg, [net.qweights[n] for n in names])
    norm = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))  # type: ignore[arg-type]
    eps = {n: (rho / (float(norm) + 1e-12)) * g.detach() for n, g in zip(names, grads,
                                                                          strict=True)}
    opt.zero_grad(set_to_none=True)
    with net.frozen_statistics(), net.perturbed(eps):
        ce2, reg2, _ = _loss(net, x, y, sparsity)
        (ce2 + reg2).backward()
    opt.step()
    eps_norm = math.sqrt(sum(float((e ** 2).sum()) for e in eps.values()))
    return StepStats(float(ce.detach()), float(reg.detach()), int((logits.argmax(1) == y).sum()),
                     float(ce2.detach()), eps_norm)


# --- configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class FlatTrainConfig(Config):
    """Everything that determines a trained FlatENN model.

    Parameters
    ----------
    model, dataset:
        As in :class:`nnmap.train.TrainConfig`.
    epochs:
        Passes over the training set (give SAQ models half the conventional epochs).
    batch_size, lr, momentum, weight_decay, seed, schedule, augment:
        SGD settings as in :class:`nnmap.train.TrainConfig` (``weight_decay`` is Eq. 2's
        ``lambda``; ``schedule`` ``"cosine"`` or ``"constant"``).
    method:
        ``"conventional"`` or ``"saq"``.
    rho:
        SAQ radius (ignored by conventional training).
    qat:
        Bit widths (:class:`~nnmap.qat.QATConfig`).
    sparsity:
        The L1 activation regularizer (``alpha = 0``: a standard model).
    init:
        Warm start: the checkpoint key (:attr:`FlatTrainResult.key`) of a cached model of
        the same architecture whose weights and quantizer ranges training starts from;
        ``None``: a fresh model (seeded by ``seed``).
    """

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    schedule: str = "cosine"
    augment: bool | None = None
    method: str = "conventional"
    rho: float = 0.0
    qat: QATConfig = field(default_factory=QATConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    init: str | None = None

    FORMAT: ClassVar[str] = "nnmap.flat_train"

    def __post_init__(self) -> None:
        if self.model not in FLAT_MODELS:
            raise SAQError(f"Unknown model {self.model!r} for quantization-aware training; "
                           f"choose one of {', '.join(FLAT_MODELS)}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SAQError(f"{name} must be a positive integer, not {value!r}")
        if not self.lr > 0 or not 0 <= self.momentum < 1 or not self.weight_decay >= 0:
            raise SAQError(f"Need lr > 0, momentum in [0, 1) and weight_decay >= 0, not "
                           f"{self.lr!r}, {self.momentum!r}, {self.weight_decay!r}")
        if self.schedule not in ("cosine", "constant"):
            raise SAQError(f"schedule must be 'cosine' or 'constant', not {self.schedule!r}")
        if self.method not in ("conventional", "saq"):
            raise SAQError(f"method must be 'conventional' or 'saq', not {self.method!r}")
        if not self.rho >= 0:
            raise SAQError(f"rho must be >= 0, not {self.rho!r}")
        if self.init is not None and (not isinstance(self.init, str) or not self.init.isalnum()):
            raise SAQError(f"init must be a checkpoint key (hex digits) or None, not "
                           f"{self.init!r}")

    @property
    def augments(self) -> bool:
        """Whether training uses crops and flips (on for ``cifar10`` unless set)."""
        return self.dataset == "cifar10" if self.augment is None else self.augment

    def key_json(self) -> str:
        """The settings as canonical JSON without format and version: the input of the
        checkpoint key and the config stored in a checkpoint. Kept in this form so
        checkpoints trained before the :class:`~sim.config.Config` base stay valid (``init``
        is left out when ``None`` for the same reason)."""
        data = asdict(self)
        if data["init"] is None:
            del data["init"]
        return json.dumps(data, sort_keys=True)

    def with_(self, **changes: Any) -> FlatTrainConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class FlatTrainResult:
    """A trained :class:`~nnmap.qat.QATNet` (``eval()`` mode), its config and history.

    ``history`` has one dict per epoch: ``epoch``, ``loss``, ``reg``, ``train_acc``,
    ``test_acc``, ``seconds`` (and ``perturbed_loss`` for SAQ).
    """

    net: QATNet
    config: FlatTrainConfig
    dataset: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    from_cache: bool = False

    @property
    def test_accuracy(self) -> float:
        """Fault-free test accuracy after the last epoch."""
        return self.history[-1]["test_acc"] if self.history else float("nan")

    @property
    def key(self) -> str:
        """The checkpoint key (file stem), or ``""`` when not cached."""
        return self.checkpoint.stem if self.checkpoint is not None else ""


def checkpoint_key(config: FlatTrainConfig, fingerprint: str) -> str:
    """Content hash (24 hex digits) of a config and a data set fingerprint."""
    text = f"flatenn-{CACHE_VERSION}\n{config.key_json()}\n{fingerprint}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# --- training ------------------------------------------------------------------------------
def train_flat(config: FlatTrainConfig, data: DataSplits | None = None, *,
               cache: str | os.PathLike[str] | None = None,
               data_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
               progress: bool = True) -> FlatTrainResult:
    """Train ``config`` on the CPU, or load its cached checkpoint.

    Parameters
    ----------
    config:
        What to train.
    data:
        Pre-loaded data of ``config.dataset`` (loaded with ``data_dir`` when ``None``).
    cache:
        Cache folder (see :func:`nnmap.train.cache_dir`).
    data_dir:
        Where to look for the data set.
    use_cache:
        Read and write the checkpoint cache.
    progress:
        tqdm progress bars.
    """
    if data is None:
        data = load_dataset(config.dataset, data_dir)
    info = data.info
    ckpt = (cache_dir(cache) / "flatenn" / f"{checkpoint_key(config, info.fingerprint)}.pt")
    c, h, _ = info.shape
    if use_cache and ckpt.is_file():
        loaded = _load(ckpt, config, c, len(info.classes), h)
        if loaded is not None:
            return loaded
    torch.manual_seed(config.seed)
    net = QATNet(build_model(config.model, c, len(info.classes), h), config.qat)
    if config.init is not None:
        start = cache_dir(cache) / "flatenn" / f"{config.init}.pt"
        if not start.is_file():
            raise SAQError(f"The warm-start checkpoint {config.init!r} is not in the cache "
                           f"{str(start.parent)!r}; train that model first (same --cache)")
        payload = torch.load(start, map_location="cpu", weights_only=True)
        net.load_state_dict(payload["state_dict"])
    history = _fit(net, config, data, progress)
    net.eval()
    result = FlatTrainResult(net, config, info.to_dict(), history, ckpt if use_cache else None)
    if use_cache:
        _save(ckpt, result)
    return result


def _fit(net: QATNet, config: FlatTrainConfig, data: DataSplits,
         progress: bool) -> list[dict[str, float]]:
    x_all, y_all = data.train.tensors
    n = len(x_all)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    steps = (n + config.batch_size - 1) // config.batch_size
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps * config.epochs)
             if config.schedule == "cosine" else None)
    history: list[dict[str, float]] = []
    tag = f"{config.model} {config.method}" + (f" rho={config.rho:g}" if config.method == "saq"
                                               else "")
    if config.sparsity.active:
        tag += f" alpha={config.sparsity.alpha:g}"
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, "reg": 0.0, "perturbed_loss": 0.0}
        correct = 0
        bar = tqdm(range(steps), desc=f"{tag} epoch {epoch + 1}/{config.epochs}",
                   disable=not progress, leave=False)
        for step in bar:
            idx = perm[step * config.batch_size:(step + 1) * config.batch_size]
            x, y = x_all[idx], y_all[idx]
            if config.augments:
                x = _augment(x, gen)
            if config.method == "saq":
                st = saq_step(net, x, y, opt, config.sparsity, config.rho)
            else:
                st = conventional_step(net, x, y, opt, config.sparsity)
            if sched is not None:
                sched.step()
            if not math.isfinite(st.loss):
                raise SAQError(f"Training of {tag} diverged (loss {st.loss}) in epoch "
                               f"{epoch + 1}; lower lr or alpha")
            sums["loss"] += st.loss * len(y)
            sums["reg"] += st.reg * len(y)
            sums["perturbed_loss"] += st.perturbed_loss * len(y)
            correct += st.correct
            if step % 20 == 0:
                bar.set_postfix(loss=f"{st.loss:.3f}", reg=f"{st.reg:.3f}")
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": sums["loss"] / n, "reg": sums["reg"] / n,
               "train_acc": correct / n, "test_acc": evaluate(net, data.test),
               "seconds": seconds}
        if config.method == "saq":
            row["perturbed_loss"] = sums["perturbed_loss"] / n
        history.append(row)
    return history


def _save(path: Path, result: FlatTrainResult) -> None:
    write_checkpoint(path, _FORMAT, result.config.key_json(), result.dataset, result.history,
                     result.net.state_dict())


def _load(path: Path, config: FlatTrainConfig, in_channels: int, num_classes: int,
          image_size: int) -> FlatTrainResult | None:
    loaded = read_checkpoint(
        path, _FORMAT, config.key_json(),
        lambda: QATNet(build_model(config.model, in_channels, num_classes, image_size),
                       config.qat))
    if loaded is None:
        return None
    net, payload = loaded
    assert isinstance(net, QATNet)
    return FlatTrainResult(net, config, payload["dataset"], payload["history"], path, True)
