"""Seeded CPU training with checkpoints cached by content hash.

A :class:`TrainConfig` fixes everything that shapes the weights (model, data set, epochs,
optimiser, seed...). The checkpoint of a run is stored as ``<cache>/checkpoints/<key>.pt``
where ``key`` is the SHA-256 of the config's JSON, the data set's fingerprint and
:data:`CACHE_VERSION`; a second run with the same config and data loads it instead of
training. A ``<key>.json`` beside it records the config, data set and per-epoch history for a
person to read. Both are written atomically (temporary file, then ``os.replace``).

Cache folder: the ``cache_dir`` argument, else ``$FLIPCLOCK_CACHE``, else
``~/.cache/flipclock``.

Determinism: the model is initialised after ``torch.manual_seed(seed)`` and the data order
and augmentation come from a ``torch.Generator`` seeded with ``seed``, so a run is repeatable
on one machine and thread count (float reductions may differ across thread counts; the cache
key ignores that). ``torch.set_num_threads`` is the caller's business.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset
from tqdm import tqdm

from sim.atomic import atomic_text, atomic_write
from sim.config import Config

from .data import DataSplits, load_dataset
from .errors import NNMapError
from .models import MODELS, build_model

__all__ = [
    "CACHE_VERSION",
    "ConfigError",
    "TrainConfig",
    "TrainResult",
    "cache_dir",
    "checkpoint_key",
    "evaluate",
    "train",
]

#: Bumped when training code changes in a way that changes the weights of a config.
CACHE_VERSION = 1
CHECKPOINT_FORMAT = "flipclock-checkpoint"


class ConfigError(NNMapError):
    """A configuration value is invalid (the message quotes it and names the fix)."""


@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything that determines a trained model.

    Parameters
    ----------
    model:
        ``"lenet5"``, ``"resnet20"`` or ``"resnet18"``.
    dataset:
        ``"fashion-mnist"``, ``"fashion-mnist-subset"``, ``"mnist"`` or ``"cifar10"``.
    epochs:
        Passes over the training set.
    batch_size:
        Images per step.
    lr:
        Peak learning rate.
    momentum:
        SGD momentum (``beta1`` for Adam).
    weight_decay:
        L2 penalty (coupled, as in ``torch.optim.SGD``/``Adam``).
    seed:
        Seeds initialisation, data order and augmentation.
    optimizer:
        ``"sgd"`` (Nesterov off) or ``"adam"``.
    schedule:
        ``"cosine"`` (per-step cosine decay to 0) or ``"constant"``.
    augment:
        Random 4-pixel-padded crops and horizontal flips (the paper's CIFAR-10 training);
        ``None`` means on for ``cifar10`` and off otherwise.
    """

    FORMAT: ClassVar[str] = "nnmap.train"

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    optimizer: str = "sgd"
    schedule: str = "cosine"
    augment: bool | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"Unknown model {self.model!r}; choose one of "
                              f"{', '.join(sorted(MODELS))}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, not {self.lr!r}")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ConfigError(f"momentum must be in [0, 1) and weight_decay >= 0, not "
                              f"{self.momentum!r} and {self.weight_decay!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"optimizer must be 'sgd' or 'adam', not {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be 'cosine' or 'constant', not {self.schedule!r}")

    @property
    def augments(self) -> bool:
        """Whether training uses crops and flips (resolves ``augment=None``)."""
        return self.dataset == "cifar10" if self.augment is None else self.augment


@dataclass
class TrainResult:
    """A trained model and where it came from.

    Parameters
    ----------
    model:
        The network, in ``eval()`` mode, on the CPU.
    config:
        The config that produced it.
    dataset:
        ``DatasetInfo.to_dict()`` of the training data.
    history:
        One dict per epoch: ``epoch``, ``loss``, ``train_acc``, ``test_acc``, ``seconds``.
    checkpoint:
        The cached checkpoint file.
    from_cache:
        Whether the checkpoint was loaded instead of trained.
    """

    model: nn.Module
    config: TrainConfig
    dataset: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    from_cache: bool = False

    @property
    def test_accuracy(self) -> float:
        """Test accuracy after the last epoch."""
        return self.history[-1]["test_acc"] if self.history else float("nan")


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``path``, else ``$FLIPCLOCK_CACHE``, else ``~/.cache/flipclock``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("FLIPCLOCK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "flipclock"


def checkpoint_key(config: TrainConfig, fingerprint: str) -> str:
    """Content hash (24 hex digits) of a config and a data set fingerprint."""
    text = f"{CACHE_VERSION}\n{config.to_json()}\n{fingerprint}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def train(
    config: TrainConfig,
    data: DataSplits | None = None,
    *,
    cache: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train ``config`` on the CPU, or load its cached checkpoint.

    Parameters
    ----------
    config:
        What to train.
    data:
        Pre-loaded data (must be ``config.dataset``); loaded with ``data_dir`` when ``None``.
    cache:
        Cache folder (see :func:`cache_dir`).
    data_dir:
        Where to look for the data set when ``data`` is ``None``.
    use_cache:
        Read and write the checkpoint cache.
    progress:
        Show a tqdm progress bar per epoch.

    Returns
    -------
    TrainResult
    """
    if data is None:
        data = load_dataset(config.dataset, data_dir)
    elif config.dataset not in (data.info.name, *_aliases(data.info.name)):
        raise ConfigError(f"config.dataset is {config.dataset!r} but the data given is "
                          f"{data.info.name!r}; pass matching data or none")
    info = data.info
    ckpt = cache_dir(cache) / "checkpoints" / f"{checkpoint_key(config, info.fingerprint)}.pt"
    c, h, _ = info.shape
    if use_cache and ckpt.is_file():
        loaded = _load_checkpoint(ckpt, config, c, len(info.classes), h)
        if loaded is not None:
            return loaded
    torch.manual_seed(config.seed)
    model = build_model(config.model, c, len(info.classes), h)
    history = _fit(model, config, data, progress)
    model.eval()
    result = TrainResult(model, config, info.to_dict(), history, ckpt if use_cache else None)
    if use_cache:
        _save_checkpoint(ckpt, result)
    return result


def evaluate(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    data: TensorDataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    batch_size: int = 1000,
) -> float:
    """Top-1 accuracy of ``model`` (in ``eval()`` mode, no gradients) on ``data``.

    Parameters
    ----------
    model:
        An ``nn.Module`` (its train/eval mode is restored afterwards) or any callable
        returning logits, such as a :class:`~nnmap.quant.QuantizedNet`.
    data:
        A ``TensorDataset(x, y)`` or any iterable of ``(x, y)`` batches (a ``DataLoader``).
    batch_size:
        Batch size when ``data`` is a ``TensorDataset``.
    """
    module = model if isinstance(model, nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in _batches(data, batch_size):
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    if module is not None:
        module.train(was_training)
    return correct / max(total, 1)


# --- internals -----------------------------------------------------------------------------
def _aliases(name: str) -> tuple[str, ...]:
    from .data import DATASETS

    return tuple(k for k, v in DATASETS.items() if v == name)


def _batches(data: TensorDataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
             batch_size: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, TensorDataset):
        x, y = data.tensors
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
    else:
        yield from data


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crops of the 4-pixel zero-padded image and random horizontal flips."""
    n, c, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                 rows, cols]
    flip = torch.rand(n, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr,
                                betas=(config.momentum, 0.999), weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def _fit(model: nn.Module, config: TrainConfig, data: DataSplits,
         progress: bool) -> list[dict[str, float]]:
    x_all, y_all = data.train.tensors
    n = len(x_all)
    gen = torch.Generator().manual_seed(config.seed)
    opt = _optimizer(model, config)
    steps_per_epoch = (n + config.batch_size - 1) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps)
             if config.schedule == "cosine" else None)
    history: list[dict[str, float]] = []
    for epoch in range(config.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        correct = 0
        bar = tqdm(range(steps_per_epoch), desc=f"{config.model} epoch {epoch + 1}/"
                   f"{config.epochs}", disable=not progress, leave=False)
        for step in bar:
            idx = perm[step * config.batch_size:(step + 1) * config.batch_size]
            x, y = x_all[idx], y_all[idx]
            if config.augments:
                x = _augment(x, gen)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        seconds = time.perf_counter() - t0
        test_acc = evaluate(model, data.test)
        history.append({"epoch": epoch + 1, "loss": loss_sum / n, "train_acc": correct / n,
                        "test_acc": test_acc, "seconds": seconds})
    return history


def write_checkpoint(path: Path, fmt: str, config_json: str, dataset: Any,
                     history: Any, state_dict: dict[str, Any]) -> None:
    """Write a training checkpoint atomically, with a readable JSON side file (no tensors)."""
    payload = {"format": fmt, "version": CACHE_VERSION, "config": config_json,
               "dataset": dataset, "history": history, "state_dict": state_dict}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    meta["config"] = json.loads(config_json)
    atomic_text(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")


def read_checkpoint(path: Path, fmt: str, config_json: str,
                    build: Callable[[], nn.Module]) -> tuple[nn.Module, dict[str, Any]] | None:
    """Load a checkpoint written by :func:`write_checkpoint` into ``build()``'s module.

    Returns ``(module, payload)``, or None (with a warning) when the file is damaged or was
    written for other settings: a cache entry is rebuilt, never fatal.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != fmt or payload["config"] != config_json:
            raise ValueError("not a checkpoint of this config")
        module = build()
        module.load_state_dict(payload["state_dict"])
    except Exception as exc:
        warnings.warn(f"Ignoring unreadable checkpoint {str(path)!r} ({exc}); retraining",
                      stacklevel=3)
        return None
    module.eval()
    return module, payload


def _save_checkpoint(path: Path, result: TrainResult) -> None:
    write_checkpoint(path, CHECKPOINT_FORMAT, result.config.to_json(), result.dataset,
                     result.history, result.model.state_dict())


def _load_checkpoint(path: Path, config: TrainConfig, in_channels: int, num_classes: int,
                     image_size: int) -> TrainResult | None:
    loaded = read_checkpoint(path, CHECKPOINT_FORMAT, config.to_json(),
                             lambda: build_model(config.model, in_channels, num_classes,
                                                 image_size))
    if loaded is None:
        return None
    model, payload = loaded
    return TrainResult(model, config, payload["dataset"], payload["history"], path, True)
