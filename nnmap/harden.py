"""Model-level hardening: duplicated vulnerable channels and EDAC layers (Ahmadilivani et al.).

A trained CNN is rewritten so that it detects and corrects faulty output values itself:

1. **Channel duplication** -- in every convolution and FC layer the ``ratio`` most vulnerable
   output channels (Eq. (1), :mod:`nnmap.vulnerability`; ``ceil(ratio * C)`` per layer) get a
   second copy: the layer computes ``C + D`` channels, the copies last. A batch norm that
   directly follows the layer is duplicated with it (its parameters are stored, and faulty,
   too), so the checks below see the normalised values. All output neurons of the last layer
   are duplicated (``protect_last``).
2. **EDAC layer** (:class:`EDAC`) after each such layer (and its batch norm), before the
   activation. It returns the ``C`` original channels, checked element by element:

   * NaN -> 0 on every channel (a float32 overflow must not poison the network); for the
     interval checks below a NaN counts as outside (so a NaN copy loses to a valid one);
   * per-channel *detection intervals* ``[lo_c, hi_c]``: the minimum and maximum of the
     channel on the training set (:func:`profile_intervals`); they are EDAC parameters and
     are stored (and faulty) like weights.

   Duplicated channels, copies ``a`` (original) and ``b`` (duplicate) -- Fig. 2 of the paper:

   * **A** the copies agree -> ``a`` (agreement: ``|a - b| <= rtol * (min(|a|, |b|) + hi -
     lo)``, so infinities and NaN never agree; float kernels may round a layer with extra
     output channels differently by an ulp, and a flip that moves a value by less than
     ``rtol`` of the channel's range is harmless);
   * **B** they differ, one lies inside its interval and the other outside -> the one inside;
   * **C** they differ and both lie outside -> 0;
   * **D'** they differ and both lie inside (the case the paper leaves open) -> the *smaller*
     of the two by default (``disagree="min"``: the paper's voter rule on a three-way
     disagreement; after ReLU the smaller value is the one that propagates less), or their
     mean or 0.

   Non-duplicated channels (the paper's cases D and E):

   * **D** inside the interval -> passed;
   * **E** outside -> 0 (``intervals=False`` passes them instead: Fig. 3's "duplication +
     EDAC without detection intervals").
3. **Baselines**: triplication + majority voter (:class:`Voter`, ``method="triplicate"``):
   the ``ratio`` most vulnerable channels (all of the last layer) computed three times; the
   voter outputs a value two copies agree on, else the minimum of the three (the paper's
   rule); NaN -> 0 as in EDAC so that the two methods differ only in redundancy. *Detection
   intervals only*: :meth:`HardenConfig.intervals_only` (no duplication at all).

The hardened network is a copy of the model whose conv/FC modules are replaced by
:class:`HardenedSite` (layer with extra channels -> batch norm -> guard) and whose folded-in
batch norms become ``nn.Identity``; its ``forward`` is the original one, so any model that
``torch.fx`` can trace and that contains only Conv2d (``groups=1``), Linear and batch norm
directly after them (plus parameter-free layers) can be hardened. Other layer types with
parameters are refused by name (:class:`HardenError`).

The hardened model computes the baseline's outputs on fault-free data up to float rounding
of the extra channels, and exactly the same classifications unless a test activation leaves
its training-set interval in a non-duplicated channel; the study measures both.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import TensorDataset
from tqdm import tqdm

from sim.config import Config

from .errors import NNMapError

__all__ = [
    "DISAGREE",
    "EDAC",
    "METHODS",
    "HardenConfig",
    "HardenError",
    "HardenedSite",
    "LayerSite",
    "Voter",
    "harden",
    "hardened_channels",
    "layer_sites",
    "n_hardened",
    "profile_intervals",
    "state_digest",
]

METHODS = ("duplicate", "triplicate")
DISAGREE = ("min", "mean", "zero")
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


class HardenError(NNMapError):
    """The model or a hardening setting cannot be used (the message names the fix)."""


@dataclass(frozen=True)
class HardenConfig(Config):
    """Settings of the hardening.

    Parameters
    ----------
    ratio:
        Fraction of the output channels of every conv/FC layer to protect, in ``[0, 1]``.
    method:
        ``"duplicate"`` (duplication + EDAC) or ``"triplicate"`` (triplication + voter).
    intervals:
        Duplication: zero non-duplicated values outside their detection interval (case E).
    protect_last:
        Protect all output neurons of the last layer whatever ``ratio``.
    disagree:
        Two different in-interval copies: ``"min"``, ``"mean"`` or ``"zero"``.
    rtol:
        Relative tolerance of copy agreement (see the module docstring).
    """

    FORMAT: ClassVar[str] = "nnmap.harden"

    ratio: float = 0.15
    method: str = "duplicate"
    intervals: bool = True
    protect_last: bool = True
    disagree: str = "min"
    rtol: float = 1e-4

    def __post_init__(self) -> None:
        try:
            ratio = float(self.ratio)
        except (TypeError, ValueError):
            ratio = float("nan")
        if not 0.0 <= ratio <= 1.0:
            raise HardenError(f"Hardening ratio must be in [0, 1] (0.15 = 15 % of the "
                              f"channels), not {self.ratio!r}")
        if self.method not in METHODS:
            raise HardenError(f"method must be 'duplicate' or 'triplicate', not {self.method!r}")
        if self.disagree not in DISAGREE:
            raise HardenError(f"disagree must be one of {', '.join(DISAGREE)}, not "
                              f"{self.disagree!r}")
        if not self.rtol >= 0:
            raise HardenError(f"rtol must be >= 0, not {self.rtol!r}")

    @classmethod
    def intervals_only(cls) -> HardenConfig:
        """The detection-intervals-only baseline: EDAC layers, no duplication anywhere."""
        return cls(ratio=0.0, protect_last=False)

    @classmethod
    def tmr(cls, ratio: float = 1.0) -> HardenConfig:
        """Triplication + majority voter of ``ratio`` of the channels (all by default)."""
        return cls(ratio=ratio, method="triplicate")



# --- the graph -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSite:
    """A convolution or FC layer of a model, with the batch norm folded into its check.

    Members
    -------
    name:
        Module name of the Conv2d / Linear.
    kind:
        ``"conv"`` or ``"linear"``.
    out_channels:
        Output channels (neurons).
    bn:
        Module name of a batch norm that directly and only follows it, else ``None``.
    last:
        Whether it is the last conv/FC layer (the classifier).
    """

    name: str
    kind: str
    out_channels: int
    bn: str | None
    last: bool


def _check_supported(model: nn.Module) -> None:
    allowed = (nn.Conv2d, nn.Linear, *_BN, HardenedSite, EDAC, Voter)
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and (module.groups != 1
                                              or module.padding_mode != "zeros"):
            raise HardenError(f"Layer {name!r} is a grouped or non-zero-padded Conv2d, which the "
                              "hardening does not support; use groups=1 and zero padding")
        if isinstance(module, allowed) or any(True for _ in module.children()):
            continue
        owns = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        if owns:
            raise HardenError(f"Layer {name!r} of type {type(module).__name__} is not supported "
                              "by the hardening; supported layers with parameters are Conv2d, "
                              "Linear and BatchNorm1d/2d directly after them")


def _trace(model: nn.Module) -> Any:
    import torch.fx

    try:
        return torch.fx.symbolic_trace(model)
    except Exception as exc:  # tracing failures come in many types; the user needs one line
        raise HardenError(f"Cannot trace {type(model).__name__} with torch.fx ({exc}); the "
                          "hardening needs a forward pass without data-dependent control "
                          "flow") from None


def layer_sites(model: nn.Module) -> list[LayerSite]:
    """The conv/FC layers of ``model`` in execution order, with their batch norms.

    Raises
    ------
    HardenError
        A layer type with parameters that the hardening does not support (named), a batch
        norm that does not directly follow a conv/FC layer, a layer called twice, or a
        model that ``torch.fx`` cannot trace.
    """
    _check_supported(model)
    gm = _trace(model)
    sites: list[dict[str, Any]] = []
    seen: set[str] = set()
    paired_bn: set[str] = set()
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        module = gm.get_submodule(node.target)
        if not isinstance(module, nn.Conv2d | nn.Linear):
            continue
        if node.target in seen:
            raise HardenError(f"Layer {node.target!r} is called more than once in forward(); "
                              "the hardening needs one call per layer")
        seen.add(node.target)
        bn = None
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_module" and isinstance(
                gm.get_submodule(users[0].target), _BN):
            bn = str(users[0].target)
            paired_bn.add(bn)
        kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
        out = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        sites.append({"name": str(node.target), "kind": kind, "out_channels": int(out),
                      "bn": bn})
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), _BN) \
                and node.target not in paired_bn:
            raise HardenError(f"Batch norm {node.target!r} does not directly follow a "
                              "convolution or FC layer; the hardening cannot protect it")
    if not sites:
        raise HardenError(f"{type(model).__name__} has no Conv2d or Linear layer to harden")
    return [LayerSite(last=(i == len(sites) - 1), **s) for i, s in enumerate(sites)]


# --- detection intervals -------------------------------------------------------------------
def _batches(data: TensorDataset | torch.Tensor, batch_size: int) -> Iterable[torch.Tensor]:
    x = data.tensors[0] if isinstance(data, TensorDataset) else data
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size]


def _channel_reduce(t: torch.Tensor, op: str) -> torch.Tensor:
    dims = [d for d in range(t.dim()) if d != 1]
    return t.amin(dim=dims) if op == "min" else t.amax(dim=dims)


def profile_intervals(model: nn.Module, data: TensorDataset | torch.Tensor, *,
                      batch_size: int = 1000, progress: bool = False
                      ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel minimum and maximum of every conv/FC output (after its batch norm).

    Parameters
    ----------
    model:
        The fault-free network.
    data:
        Profiling images (the training set): a ``TensorDataset`` or an image tensor.
    batch_size:
        Images per forward pass.

    Returns
    -------
    dict
        ``site name -> (lo [C], hi [C])`` (float32).
    """
    sites = layer_sites(model)
    found: dict[str, list[torch.Tensor]] = {}
    handles = []
    for site in sites:
        target = model.get_submodule(site.bn or site.name)

        def hook(_m: nn.Module, _i: Any, out: torch.Tensor, name: str = site.name) -> None:
            lo, hi = _channel_reduce(out.detach(), "min"), _channel_reduce(out.detach(), "max")
            if name in found:
                found[name] = [torch.minimum(found[name][0], lo), torch.maximum(found[name][1], hi)]
            else:
                found[name] = [lo, hi]

        handles.append(target.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            total = None
            if isinstance(data, TensorDataset):
                total = (len(data.tensors[0]) + batch_size - 1) // batch_size
            for xb in tqdm(_batches(data, batch_size), total=total, desc="profiling intervals",
                           disable=not progress, leave=False):
                model(xb)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not found:
        raise HardenError("No profiling data: pass the training images")
    return {n: (lo.float(), hi.float()) for n, (lo, hi) in found.items()}


# --- the modules ---------------------------------------------------------------------------
def _view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, *([1] * (like.dim() - 2)))


def _nan_to_zero(z: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(z, nan=0.0, posinf=math.inf, neginf=-math.inf)


class EDAC(nn.Module):
    """Error detection and correction of a layer's ``C`` channels plus ``D`` duplicates.

    Parameters
    ----------
    lo, hi:
        Detection interval of each of the ``C`` channels.
    duplicated:
        Indices (``D``) of the duplicated channels; the input's channels ``C..C+D-1`` are
        their copies, in this order.
    intervals:
        Zero non-duplicated values outside their interval (case E).
    disagree:
        ``"min"``, ``"mean"`` or ``"zero"`` for two different in-interval copies.
    rtol:
        Agreement tolerance.

    Members
    -------
    lo, hi:
        Buffers (float32, in the fault space).
    duplicated:
        Buffer (int64, structure: not in the fault space).
    """

    #: Int8 storage rounds the bounds outward (see :class:`nnmap.bitflip.Int8Image`).
    int8_rounding = {"lo": "floor", "hi": "ceil"}

    lo: torch.Tensor
    hi: torch.Tensor
    duplicated: torch.Tensor

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, duplicated: torch.Tensor, *,
                 intervals: bool = True, disagree: str = "min", rtol: float = 1e-4):
        super().__init__()
        if lo.shape != hi.shape or lo.dim() != 1:
            raise HardenError("EDAC needs 1-D lo and hi of equal length")
        if disagree not in DISAGREE:
            raise HardenError(f"disagree must be one of {', '.join(DISAGREE)}, not {disagree!r}")
        self.register_buffer("lo", lo.detach().float().clone())
        self.register_buffer("hi", hi.detach().float().clone())
        self.register_buffer("duplicated", duplicated.detach().long().clone())
        self.intervals = intervals
        self.disagree = disagree
        self.rtol = rtol

    def extra_repr(self) -> str:
        return (f"channels={self.lo.numel()}, duplicated={self.duplicated.numel()}, "
                f"intervals={self.intervals}, disagree={self.disagree!r}")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = self.lo.numel()
        lo, hi = _view(self.lo, z), _view(self.hi, z)
        d = self.duplicated.numel()
        if d:
            idx = self.duplicated
            lo_all = torch.cat([lo, lo[:, idx]], 1)
            hi_all = torch.cat([hi, hi[:, idx]], 1)
        else:
            lo_all, hi_all = lo, hi
        # One test covers both checks: NaN fails it too (NaN != NaN), so NaN -> 0 and
        # out-of-interval -> 0 are a single pass over the contiguous layer output.
        inside = torch.clamp(z, lo_all, hi_all) == z
        if self.intervals:
            checked = torch.where(inside, z, 0.0)
        else:
            checked = torch.nan_to_num(z, nan=0.0, posinf=math.inf, neginf=-math.inf)
        out = checked[:, :c]
        if not d:
            return out
        # The copies as computed. NaN needs no replacing here: it is outside every interval
        # and never agrees, so a NaN copy is never selected (both NaN -> case C -> 0).
        a, b = z[:, idx], z[:, c:]
        in_a, in_b = inside[:, idx], inside[:, c:]
        # Agreement within rtol of the smaller magnitude plus the channel's interval width:
        # an infinite copy never agrees with a finite one (inf <= finite is false).
        width = hi_all[:, c:] - lo_all[:, c:]
        agree = (a - b).abs() <= self.rtol * (torch.minimum(a.abs(), b.abs()) + width)
        if self.disagree == "min":
            both = torch.minimum(a, b)
        elif self.disagree == "mean":
            both = 0.5 * a + 0.5 * b
        else:
            both = torch.zeros_like(a)
        # D' (both inside, different) / B (a inside) / B (b inside) / C (both outside -> 0)
        fixed = torch.where(in_a, torch.where(in_b, both, a), torch.where(in_b, b, 0.0))
        fixed = torch.where(agree, a, fixed)  # A: the copies agree
        out[:, idx] = fixed
        return out


class Voter(nn.Module):
    """Majority voter over ``C`` channels plus two copies of ``D`` of them (TMR baseline).

    A value two of the three copies agree on (same tolerance rule as :class:`EDAC`, with
    absolute floor ``atol``) wins; three different values give their minimum. NaN -> 0
    first. Non-triplicated channels pass unchanged.
    """

    triplicated: torch.Tensor

    def __init__(self, channels: int, triplicated: torch.Tensor, *, rtol: float = 1e-4,
                 atol: float = 1e-6):
        super().__init__()
        self.channels = channels
        self.register_buffer("triplicated", triplicated.detach().long().clone())
        self.rtol = rtol
        self.atol = atol

    def extra_repr(self) -> str:
        return f"channels={self.channels}, triplicated={self.triplicated.numel()}"

    def _close(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        tol = self.rtol * torch.maximum(x.abs(), y.abs()) + self.atol
        return ((x - y).abs() <= tol) & torch.isfinite(x) & torch.isfinite(y)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c, d = self.channels, self.triplicated.numel()
        z = _nan_to_zero(z)
        main = z[:, :c]
        if d == 0:
            return main
        a = main[:, self.triplicated]
        b, e = z[:, c:c + d], z[:, c + d:c + 2 * d]
        ab, ae, be = self._close(a, b), self._close(a, e), self._close(b, e)
        voted = torch.where(ab | ae, a, torch.where(be, b, torch.minimum(torch.minimum(a, b), e)))
        return main.index_copy(1, self.triplicated, voted)


class HardenedSite(nn.Module):
    """``guard(bn(layer(x)))``: a conv/FC layer with extra channel copies and its check.

    Members
    -------
    layer:
        The Conv2d / Linear with ``C + copies * D`` outputs.
    bn:
        Its batch norm (same channels) or ``nn.Identity``.
    guard:
        :class:`EDAC` or :class:`Voter`.
    """

    def __init__(self, layer: nn.Module, bn: nn.Module | None, guard: nn.Module):
        super().__init__()
        self.layer = layer
        self.bn = bn if bn is not None else nn.Identity()
        self.guard = guard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.guard(self.bn(self.layer(x)))  # type: ignore[no-any-return]


def _tensor(module: nn.Module, name: str) -> torch.Tensor | None:
    """A parameter or buffer of ``module`` (typed for mypy)."""
    t = getattr(module, name, None)
    return t if isinstance(t, torch.Tensor) else None


def _expand_layer(layer: nn.Module, idx: torch.Tensor, copies: int) -> nn.Module:
    new = copy.deepcopy(layer)
    w, b = _tensor(layer, "weight"), _tensor(layer, "bias")
    assert w is not None
    with torch.no_grad():
        new.weight = nn.Parameter(torch.cat([w.detach()] + [w.detach()[idx]] * copies).clone())
        if b is not None:
            new.bias = nn.Parameter(torch.cat([b.detach()] + [b.detach()[idx]] * copies).clone())
    total = int(new.weight.shape[0])
    if isinstance(new, nn.Conv2d):
        new.out_channels = total
    else:
        new.out_features = total  # type: ignore[assignment]
    return new


def _expand_bn(bn: nn.Module, idx: torch.Tensor, copies: int) -> nn.Module:
    new = copy.deepcopy(bn)
    with torch.no_grad():
        for name in ("weight", "bias"):
            t = getattr(bn, name)
            if t is not None:
                setattr(new, name, nn.Parameter(torch.cat([t.detach()] + [t.detach()[idx]]
                                                          * copies).clone()))
        for name in ("running_mean", "running_var"):
            t = getattr(bn, name)
            if t is not None:
                setattr(new, name, torch.cat([t] + [t[idx]] * copies).clone())
    new.num_features = int(bn.num_features) + copies * int(idx.numel())  # type: ignore
    return new


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)


def n_hardened(channels: int, ratio: float) -> int:
    """Channels protected in a layer of ``channels`` outputs: ``ceil(ratio * channels)``."""
    return min(channels, int(math.ceil(ratio * channels - 1e-9)))


def hardened_channels(sites: list[LayerSite], config: HardenConfig,
                      vulnerability: Mapping[str, torch.Tensor] | None
                      ) -> dict[str, torch.Tensor]:
    """Indices of the protected channels per site: the most vulnerable first, then by index."""
    chosen: dict[str, torch.Tensor] = {}
    for site in sites:
        c = site.out_channels
        k = c if site.last and config.protect_last else n_hardened(c, config.ratio)
        if k in (0, c):
            chosen[site.name] = torch.arange(k)
            continue
        if vulnerability is None or site.name not in vulnerability:
            raise HardenError(f"Hardening {config.ratio:.0%} of {site.name!r} needs its channel "
                              "vulnerability (nnmap.vulnerability.channel_vulnerability)")
        v = torch.as_tensor(vulnerability[site.name], dtype=torch.float64)
        if v.numel() != c:
            raise HardenError(f"Vulnerability of {site.name!r} has {v.numel()} entries for "
                              f"{c} channels; recompute it for this model")
        # Stable sort: equal vulnerabilities keep index order, so the choice is reproducible.
        order = torch.sort(-v, stable=True).indices
        chosen[site.name] = order[:k].sort().values
    return chosen


def harden(model: nn.Module, intervals: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
           config: HardenConfig | None = None,
           vulnerability: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A hardened copy of ``model`` (the model is not changed).

    Parameters
    ----------
    model:
        The trained network.
    intervals:
        Detection intervals from :func:`profile_intervals` (used by EDAC; ignored by TMR).
    config:
        Hardening settings (defaults: 15 % duplication + EDAC).
    vulnerability:
        ``site name -> [C]`` Eq. (1) values (needed unless every layer is fully or not at
        all protected).

    Returns
    -------
    nn.Module
        The hardened network (``eval()`` mode); ``.hardening`` records the config and the
        protected channels per layer.
    """
    config = config or HardenConfig()
    sites = layer_sites(model)
    chosen = hardened_channels(sites, config, vulnerability)
    new = copy.deepcopy(model).eval()
    copies = 1 if config.method == "duplicate" else 2
    for site in sites:
        idx = chosen[site.name]
        layer = _expand_layer(new.get_submodule(site.name), idx, copies)
        bn = _expand_bn(new.get_submodule(site.bn), idx, copies) if site.bn else None
        guard: nn.Module
        if config.method == "duplicate":
            if site.name not in intervals:
                raise HardenError(f"No detection interval for {site.name!r}; profile the model "
                                  "with profile_intervals() first")
            lo, hi = intervals[site.name]
            if lo.numel() != site.out_channels:
                raise HardenError(f"Interval of {site.name!r} has {lo.numel()} channels, the "
                                  f"layer {site.out_channels}; profile this model")
            guard = EDAC(lo, hi, idx, intervals=config.intervals, disagree=config.disagree,
                         rtol=config.rtol)
        else:
            guard = Voter(site.out_channels, idx, rtol=config.rtol)
        _set_module(new, site.name, HardenedSite(layer, bn, guard))
        if site.bn:
            _set_module(new, site.bn, nn.Identity())
    new.hardening = {  # type: ignore[assignment]
        "config": config.to_dict(),
        "channels": {s.name: [int(i) for i in chosen[s.name]] for s in sites},
        "out_channels": {s.name: s.out_channels for s in sites},
    }
    return new.eval()


# --- identity ----------------------------------------------------------------------------
def state_digest(model: nn.Module) -> str:
    """SHA-256 (hex) of a model's state: names and bytes of every tensor, in name order.

    Two models with equal weights, buffers and names have equal digests, whatever their
    Python identity; campaigns and caches key on it.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
