"""Structured channel pruning by vulnerability (Eq. (1)) or L1 norm, with fine-tuning.

Ahmadilivani et al., Sec. IV: remove the *least vulnerable* output channels of the conv
layers and neurons of the FC layers (Eq. (1), :mod:`nnmap.vulnerability`), fine-tune briefly
(10 epochs of SGD, learning rate 1e-3), and compare with the conventional L1-norm criterion
(smallest ``sum |w|`` of a channel's weights removed first) at the same ratios. Separate
ratios for conv and FC layers; the last layer (the classes) is never pruned.

* :func:`prune_model` -- the surgery: a layer keeps ``C - floor(ratio * C)`` channels (at
  least one), the highest-scoring ones, in their original order; the batch norm after it
  and the matching inputs of the next conv/FC layer are cut with it (through ReLU,
  pooling, dropout and flatten: a convolution's channel ``c`` feeds FC inputs
  ``c*S .. c*S+S-1``, ``S`` = spatial positions). Plain chains only: a layer whose output
  reaches an addition or concatenation (ResNet) is refused with a one-line error.
* :func:`finetune` -- :mod:`nnmap.train`'s training loop on the pruned model (constant
  learning rate).
* :func:`prune_and_finetune` -- both, cached like trained checkpoints (content hash of the
  base weights, the kept channels, the fine-tuning config and the data fingerprint).
* :func:`search_ratios` -- Table II: the largest FC ratio and then the largest conv ratio of
  a grid whose fine-tuned test accuracy stays within ``tolerance`` (1 percentage point) of
  the unpruned model, by bisection on each grid (accuracy assumed to fall with the ratio).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from sim.atomic import atomic_write
from sim.config import Config

from .cost import model_cost
from .data import DataSplits
from .errors import NNMapError
from .harden import (
    HardenError,
    LayerSite,
    _set_module,
    _trace,
    layer_sites,
    state_digest,
)
from .train import TrainConfig, cache_dir, evaluate

__all__ = [
    "CRITERIA",
    "FinetuneConfig",
    "PruneConfig",
    "PruneError",
    "PruneResult",
    "finetune",
    "l1_scores",
    "prune_and_finetune",
    "prune_model",
    "pruning_summary",
    "search_ratios",
]

CRITERIA = ("vulnerability", "l1")
PRUNE_CACHE_VERSION = 1

_PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.MaxPool2d, nn.AvgPool2d,
                 nn.AdaptiveAvgPool2d, nn.Dropout, nn.Identity, nn.Flatten)
_PASS_FUNCTIONS = {"relu", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "flatten",
                   "dropout", "relu6", "leaky_relu"}
_PASS_METHODS = {"relu", "flatten", "view", "reshape"}


class PruneError(NNMapError):
    """A pruning setting or model cannot be used (the message names the fix)."""


@dataclass(frozen=True)
class FinetuneConfig(Config):
    """Fine-tuning after pruning (the paper: 10 epochs of SGD with learning rate 1e-3).

    Parameters
    ----------
    epochs, lr, momentum, weight_decay, batch_size, seed:
        As in :class:`~nnmap.train.TrainConfig` (constant learning rate).
    """

    FORMAT: ClassVar[str] = "nnmap.finetune"

    epochs: int = 10
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise PruneError(f"Fine-tuning epochs must be an integer >= 0, not {self.epochs!r}")
        if not (isinstance(self.lr, int | float) and 0 < self.lr < math.inf):
            raise PruneError(f"Fine-tuning lr must be a finite number > 0, not {self.lr!r}")


@dataclass(frozen=True)
class PruneConfig(Config):
    """One pruning point.

    Parameters
    ----------
    criterion:
        ``"vulnerability"`` (Eq. (1)) or ``"l1"``.
    conv_ratio, fc_ratio:
        Fraction of the channels removed from every conv layer / hidden FC layer, in ``[0, 1)``.
    finetune:
        Fine-tuning settings.
    """

    FORMAT: ClassVar[str] = "nnmap.prune"

    criterion: str = "vulnerability"
    conv_ratio: float = 0.0
    fc_ratio: float = 0.0
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise PruneError(f"Pruning criterion must be 'vulnerability' or 'l1', not "
                             f"{self.criterion!r}")
        for name in ("conv_ratio", "fc_ratio"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v < 1.0):
                raise PruneError(f"{name} must be in [0, 1), not {v!r}")



@dataclass
class PruneResult:
    """A pruned, fine-tuned network.

    Members
    -------
    model:
        The network (``eval()``).
    config:
        What was done.
    kept:
        ``layer name -> kept output channels`` (indices into the unpruned layer).
    accuracy_pruned:
        Test accuracy right after pruning, before fine-tuning.
    accuracy:
        Test accuracy after fine-tuning.
    history:
        Fine-tuning epochs (:func:`nnmap.train` history format).
    from_cache:
        Loaded from the cache instead of fine-tuned.
    """

    model: nn.Module
    config: PruneConfig
    kept: dict[str, list[int]]
    accuracy_pruned: float
    accuracy: float
    history: list[dict[str, float]]
    from_cache: bool = False


# --- scores --------------------------------------------------------------------------------
def l1_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    """``layer -> [C]``: L1 norm of each output channel's weights (conv and FC layers)."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            out[name] = m.weight.detach().abs().reshape(m.weight.shape[0], -1).sum(1).double()
    return out


# --- surgery -------------------------------------------------------------------------------
def _consumers(model: nn.Module, sites: list[LayerSite]) -> dict[str, str]:
    """``site -> the next conv/FC layer its output feeds`` through per-channel operations."""
    gm = _trace(model)
    by_target = {s.name: s for s in sites}
    nodes = {n.target: n for n in gm.graph.nodes if n.op == "call_module"}
    result: dict[str, str] = {}
    for site in sites:
        if site.last:
            continue
        node = nodes[site.bn or site.name]
        while True:
            users = [u for u in node.users if not (u.op == "call_method" and u.target == "size")]
            if len(users) != 1:
                raise PruneError(f"The output of {site.name!r} feeds {len(users)} operations; "
                                 "pruning supports plain chains only (no residual branches)")
            node = users[0]
            if node.op == "call_module" and node.target in by_target:
                result[site.name] = str(node.target)
                break
            if not _passes(gm, node):
                what = node.target if node.op != "call_function" else node.target.__name__
                raise PruneError(f"The output of {site.name!r} reaches {what!r}, which channel "
                                 "pruning cannot follow; plain conv/FC chains only")
    return result


def _passes(gm: Any, node: Any) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), _PASS_MODULES)
    if node.op == "call_function":
        return getattr(node.target, "__name__", "") in _PASS_FUNCTIONS
    if node.op == "call_method":
        return node.target in _PASS_METHODS
    return False


def _n_keep(channels: int, ratio: float) -> int:
    return max(1, channels - int(ratio * channels + 1e-9))


def prune_model(model: nn.Module, scores: Mapping[str, torch.Tensor] | None, *,
                conv_ratio: float = 0.0, fc_ratio: float = 0.0,
                kept: Mapping[str, Sequence[int]] | None = None
                ) -> tuple[nn.Module, dict[str, list[int]]]:
    """A structurally pruned copy of ``model``.

    Parameters
    ----------
    model:
        A plain conv/FC chain (LeNet-5, VGG, AlexNet).
    scores:
        ``layer -> [C]`` importance (Eq. (1) or :func:`l1_scores`): the lowest are removed.
    conv_ratio, fc_ratio:
        Fraction of channels removed per conv layer / hidden FC layer.
    kept:
        Explicit kept channels per layer instead of ``scores`` and ratios (rebuilding a
        cached result).

    Returns
    -------
    (nn.Module, dict)
        The pruned network and the kept channels of every conv/FC layer.
    """
    try:
        sites = layer_sites(model)
    except HardenError as exc:
        raise PruneError(str(exc)) from None
    feeds = _consumers(model, sites)
    keep: dict[str, torch.Tensor] = {}
    for site in sites:
        c = site.out_channels
        if kept is not None:
            keep[site.name] = torch.as_tensor(list(kept[site.name]), dtype=torch.long)
            continue
        ratio = 0.0 if site.last else (conv_ratio if site.kind == "conv" else fc_ratio)
        n = _n_keep(c, ratio)
        if n == c:
            keep[site.name] = torch.arange(c)
            continue
        if scores is None or site.name not in scores:
            raise PruneError(f"No pruning score for {site.name!r}")
        s = torch.as_tensor(scores[site.name], dtype=torch.float64)
        keep[site.name] = torch.sort(-s, stable=True).indices[:n].sort().values
    new = copy.deepcopy(model)
    inputs: dict[str, tuple[torch.Tensor, int]] = {}
    for site in sites:
        if site.name in feeds:
            inputs[feeds[site.name]] = (keep[site.name], site.out_channels)
    for site in sites:
        old = new.get_submodule(site.name)
        _set_module(new, site.name, _cut(old, site.name, keep[site.name], inputs.get(site.name)))
        if site.bn:
            _set_module(new, site.bn, _cut_bn(new.get_submodule(site.bn), keep[site.name]))
    return new.eval(), {k: [int(i) for i in v] for k, v in keep.items()}


def _cut(layer: nn.Module, name: str, out_idx: torch.Tensor,
         feed: tuple[torch.Tensor, int] | None) -> nn.Module:
    weight, bias = getattr(layer, "weight"), getattr(layer, "bias")  # noqa: B009
    assert isinstance(weight, torch.Tensor)
    w = weight.detach()[out_idx]
    if feed is not None:
        in_idx, producer_channels = feed
        fan = w.shape[1]
        if isinstance(layer, nn.Linear) and fan != producer_channels:
            if fan % producer_channels:
                raise PruneError(f"{name!r} has {fan} inputs, not a multiple of the "
                                 f"{producer_channels} channels feeding it")
            spatial = fan // producer_channels
            in_idx = (in_idx[:, None] * spatial + torch.arange(spatial)).flatten()
        w = w[:, in_idx]
    new: nn.Module
    if isinstance(layer, nn.Conv2d):
        new = nn.Conv2d(w.shape[1], w.shape[0], layer.kernel_size,  # type: ignore[arg-type]
                        stride=layer.stride, padding=layer.padding,  # type: ignore[arg-type]
                        dilation=layer.dilation, bias=bias is not None)  # type: ignore[arg-type]
    else:
        new = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        new.weight = nn.Parameter(w.clone())
        if isinstance(bias, torch.Tensor):
            new.bias = nn.Parameter(bias.detach()[out_idx].clone())
    return new


def _cut_bn(bn: nn.Module, idx: torch.Tensor) -> nn.Module:
    assert isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d)
    new = type(bn)(len(idx), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                   track_running_stats=bn.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            src = getattr(bn, name)
            if src is not None:
                getattr(new, name).copy_(src.detach()[idx])
    return new


# --- fine-tuning ---------------------------------------------------------------------------
def finetune(model: nn.Module, data: DataSplits, config: FinetuneConfig,
             base: TrainConfig, *, progress: bool = False) -> list[dict[str, float]]:
    """Fine-tune ``model`` in place with :mod:`nnmap.train`'s loop; returns the epoch history.

    ``base`` is the config that trained the unpruned model (its data augmentation and
    optimiser are kept; epochs, learning rate, momentum, weight decay, batch size and seed
    come from ``config``; the learning rate is constant).
    """
    from .train import _fit  # the one training loop of nnmap; reused, not duplicated

    if config.epochs == 0:
        return []
    tc = dataclasses.replace(base, epochs=config.epochs, lr=config.lr,
                             momentum=config.momentum, weight_decay=config.weight_decay,
                             batch_size=config.batch_size, seed=config.seed, optimizer="sgd",
                             schedule="constant")
    torch.manual_seed(config.seed)
    history = _fit(model, tc, data, progress)
    model.eval()
    return history


def prune_and_finetune(model: nn.Module, data: DataSplits, config: PruneConfig,
                       base: TrainConfig, *, scores: Mapping[str, torch.Tensor] | None = None,
                       cache: str | os.PathLike[str] | None = None, use_cache: bool = True,
                       progress: bool = False) -> PruneResult:
    """Prune ``model`` by ``config`` and fine-tune it (or load the cached result).

    Parameters
    ----------
    model:
        The trained unpruned network.
    data:
        Training and test data.
    config:
        Criterion, ratios and fine-tuning.
    base:
        The :class:`~nnmap.train.TrainConfig` that trained ``model``.
    scores:
        Importance per layer for ``criterion="vulnerability"`` (Eq. (1) values); L1 scores
        are computed here.
    cache:
        Cache folder (see :func:`nnmap.train.cache_dir`); entries go to ``pruned/``.
    """
    if config.criterion == "l1":
        scores = l1_scores(model)
    elif scores is None and (config.conv_ratio or config.fc_ratio):
        raise PruneError("Vulnerability pruning needs the Eq. (1) scores "
                         "(nnmap.vulnerability.estimate_vulnerability)")
    pruned, kept = prune_model(model, scores, conv_ratio=config.conv_ratio,
                               fc_ratio=config.fc_ratio)
    key_text = json.dumps({"v": PRUNE_CACHE_VERSION, "base": state_digest(model),
                           "kept": kept, "finetune": config.finetune.to_dict(),
                           "train": json.loads(base.to_json()),
                           "data": data.info.fingerprint}, sort_keys=True)
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    path = cache_dir(cache) / "pruned" / f"{key}.pt"
    if use_cache and path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            pruned.load_state_dict(payload["state_dict"])
            return PruneResult(pruned.eval(), config, kept, payload["accuracy_pruned"],
                               payload["accuracy"], payload["history"], True)
        except Exception:  # a damaged cache entry is recomputed, never fatal
            pass
    acc0 = evaluate(pruned, data.test)
    history = finetune(pruned, data, config.finetune, base, progress=progress)
    acc = evaluate(pruned, data.test)
    if use_cache:
        payload = {"state_dict": pruned.state_dict(), "accuracy_pruned": acc0,
                   "accuracy": acc, "history": history, "config": config.to_dict(),
                   "kept": kept}
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return PruneResult(pruned, config, kept, acc0, acc, history, False)


# --- Table II --------------------------------------------------------------------------------
def _largest(grid: Sequence[float], ok: Callable[[float], bool]) -> float:
    """Largest grid value with ``ok`` true, by bisection (``ok`` falls once with the value)."""
    values = sorted(set(grid))
    lo, hi = -1, len(values)  # values[lo] passes (or none), values[hi] fails (or none)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(values[mid]):
            lo = mid
        else:
            hi = mid
    return values[lo] if lo >= 0 else 0.0


def search_ratios(model: nn.Module, data: DataSplits, base: TrainConfig,
                  scores: Mapping[str, torch.Tensor] | None, *,
                  criterion: str = "vulnerability", baseline_accuracy: float | None = None,
                  tolerance: float = 0.01, grid: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5,
                                                                    0.6, 0.7, 0.8, 0.9),
                  finetune_config: FinetuneConfig | None = None,
                  cache: str | os.PathLike[str] | None = None, progress: bool = False,
                  log: Callable[[str], None] | None = None) -> tuple[PruneResult,
                                                                     list[dict[str, Any]]]:
    """Table II: the largest FC ratio, then conv ratio, keeping accuracy within ``tolerance``.

    Returns
    -------
    (PruneResult, list)
        The chosen fine-tuned model and every point evaluated (criterion, ratios, accuracy).
    """
    ft = finetune_config or FinetuneConfig()
    ref = evaluate(model, data.test) if baseline_accuracy is None else baseline_accuracy
    tried: dict[tuple[float, float], PruneResult] = {}
    points: list[dict[str, Any]] = []

    def run(conv: float, fc: float) -> PruneResult:
        if (conv, fc) not in tried:
            res = prune_and_finetune(model, data, PruneConfig(criterion, conv, fc, ft), base,
                                     scores=scores, cache=cache, progress=progress)
            tried[conv, fc] = res
            points.append({"criterion": criterion, "conv_ratio": conv, "fc_ratio": fc,
                           "accuracy": res.accuracy, "accuracy_pruned": res.accuracy_pruned,
                           "within": res.accuracy >= ref - tolerance})
            if log:
                log(f"Table II search: conv {conv:.0%} fc {fc:.0%} -> {res.accuracy:.4f} "
                    f"(limit {ref - tolerance:.4f})")
        return tried[conv, fc]

    fc_best = _largest(grid, lambda r: run(0.0, r).accuracy >= ref - tolerance)
    conv_best = _largest(grid, lambda r: run(r, fc_best).accuracy >= ref - tolerance)
    if conv_best == 0.0 and fc_best == 0.0:
        return run(0.0, 0.0), points
    return run(conv_best, fc_best), points


def pruning_summary(result: PruneResult, input_shape: tuple[int, ...],
                    base_cost: Any) -> dict[str, Any]:
    """Row of Table II: ratios, accuracy and cost relative to the unpruned model."""
    cost = model_cost(result.model, input_shape)
    return {"criterion": result.config.criterion, "conv_ratio": result.config.conv_ratio,
            "fc_ratio": result.config.fc_ratio, "accuracy": result.accuracy,
            "parameters": cost.parameters, "macs": cost.macs,
            "parameters_rel": cost.parameters / base_cost.parameters,
            "macs_rel": cost.macs / base_cost.macs}

