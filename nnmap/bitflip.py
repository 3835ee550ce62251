"""Random bit flips in stored parameters: IEEE-754 float32 words and INT8 codes.

Fault model (Ahmadilivani et al., Sec. III-A)
--------------------------------------------
Every *layer* that stores numbers used at inference is in the fault space: convolutions and
fully connected layers (weights, biases), batch norm (``weight``, ``bias``, ``running_mean``,
``running_var``) and the hardening's EDAC layers (their detection-interval bounds). A layer is
a module that directly owns floating-point parameters or buffers; integer buffers (batch
norm's step counter, the EDAC layer's channel index maps) are structure, not data, and stay
fault-free. For a bit error rate ``BER`` a layer of ``n`` stored bits gets ``k = BER * n``
flips at distinct bit positions drawn uniformly. ``BER * n`` is rarely an integer (LeNet-5's
first convolution holds 4,992 float32 bits: 5e-4 flips at BER 1e-7), so by default ``k`` is
``floor(BER * n)`` plus one with probability ``frac(BER * n)`` (``rounding="stochastic"``:
the expected count is exactly ``BER * n`` and an integral ``BER * n`` is used as is);
``rounding="nearest"`` rounds instead (and so never flips anything in a small layer at a low
BER).

Storage formats
---------------
``float32``
    The tensors' own IEEE-754 words (bit 31 sign, 30..23 exponent, 22..0 mantissa) are
    flipped in place through an ``int32`` view, so NaN and infinity arise as on hardware.
``int8``
    The weights as an INT8 accelerator stores them (:class:`Int8Image`): batch norm folded
    into the preceding convolution or FC layer (:func:`nnmap.quant.fold_batchnorm`, as
    :mod:`nnmap.quant` does), every tensor stored as symmetric two's-complement int8 codes
    ``q`` in ``[-127, 127]`` with ``value = scale * q`` -- one scale per output channel for
    weights of rank >= 2 and per tensor for vectors (biases, interval bounds). Flips hit the
    8-bit codes (``-128`` can arise); the float model computes with the dequantized values.
    The scales are a handful of words per layer held with the layer's configuration and are
    not in the fault space. Modules can ask for outward rounding of a tensor (attribute
    ``int8_rounding = {"lo": "floor", "hi": "ceil"}``): the EDAC layer does, so that storing
    its bounds in int8 only widens the detection intervals.

For the integer-exact network of :mod:`nnmap.quant`, :func:`flip_qnet` flips the int8 weight
codes of a :class:`~nnmap.quant.QuantizedNet` by the same rule (its int32 biases and
fixed-point multipliers are not flipped there).

Usage::

    gen = torch.Generator().manual_seed(seed)
    with inject(model, 1e-5, generator=gen) as report:   # restores the weights on exit
        acc = evaluate(model, test)
    report.flips          # {layer name: number of flipped bits}

Everything is vectorised: one draw of distinct positions per layer, one XOR per tensor.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from sim.config import Config

from .errors import NNMapError

__all__ = [
    "DTYPES",
    "BitFlipConfig",
    "FaultError",
    "FaultLayer",
    "FlipReport",
    "Int8Image",
    "check_ber",
    "draw_positions",
    "fault_space",
    "flip_count",
    "flip_float32",
    "flip_int8",
    "flip_qnet",
    "inject",
]

#: Bits per stored number of each storage format.
DTYPES: dict[str, int] = {"float32": 32, "int8": 8}
ROUNDING = ("stochastic", "nearest")


class FaultError(NNMapError):
    """A fault-injection setting is invalid (the message names the fix)."""


def check_ber(ber: float) -> float:
    """Return ``ber`` as a float if it lies in ``(0, 1]``, else raise :class:`FaultError`."""
    try:
        value = float(ber)
    except (TypeError, ValueError):
        raise FaultError(f"BER must be a number in (0, 1], not {ber!r}") from None
    if not 0.0 < value <= 1.0:
        raise FaultError(f"BER must be in (0, 1] (a fraction of bits, e.g. 1e-5), not {ber!r}")
    return value


@dataclass(frozen=True)
class BitFlipConfig(Config):
    """Settings of a parameter bit-flip campaign point.

    Parameters
    ----------
    ber:
        Bit error rate in ``(0, 1]``.
    dtype:
        ``"float32"`` or ``"int8"`` storage.
    rounding:
        ``"stochastic"`` (expected flips per layer exactly ``BER * bits``) or ``"nearest"``.
    """

    FORMAT: ClassVar[str] = "nnmap.bitflip"

    ber: float
    dtype: str = "float32"
    rounding: str = "stochastic"

    def __post_init__(self) -> None:
        check_ber(self.ber)
        if self.dtype not in DTYPES:
            raise FaultError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.rounding not in ROUNDING:
            raise FaultError(f"rounding must be 'stochastic' or 'nearest', not {self.rounding!r}")



@dataclass
class FaultLayer:
    """One layer of the fault space: the stored tensors of one module.

    Members
    -------
    name:
        The module's ``named_modules`` name.
    tensors:
        ``(attribute name, tensor)`` pairs, in a fixed order (the layer's bit address space
        is their concatenation).
    """

    name: str
    tensors: list[tuple[str, torch.Tensor]]

    def numel(self) -> int:
        """Stored numbers in the layer."""
        return sum(int(t.numel()) for _, t in self.tensors)

    def bits(self, dtype: str = "float32") -> int:
        """Stored bits in the layer for a storage format."""
        return self.numel() * DTYPES[dtype]


@dataclass
class FlipReport:
    """What :func:`inject` did: flipped bits per layer (layers without flips are omitted)."""

    flips: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All flipped bits."""
        return sum(self.flips.values())


def fault_space(model: nn.Module) -> list[FaultLayer]:
    """The layers of ``model`` holding floating-point parameters or buffers, in module order."""
    layers = []
    for name, module in model.named_modules():
        tensors = [(n, t) for n, t in [*module.named_parameters(recurse=False),
                                       *module.named_buffers(recurse=False)]
                   if t is not None and t.is_floating_point()]
        if tensors:
            layers.append(FaultLayer(name, tensors))
    return layers


def flip_count(ber: float, bits: int, generator: torch.Generator | None = None,
               rounding: str = "stochastic") -> int:
    """Number of flips for ``bits`` stored bits at ``ber`` (see the module docstring)."""
    expected = ber * bits
    if rounding == "nearest":
        return min(bits, int(math.floor(expected + 0.5)))
    whole = int(math.floor(expected))
    frac = expected - whole
    if frac > 0 and float(torch.rand((), generator=generator)) < frac:
        whole += 1
    return min(bits, whole)


def draw_positions(n: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` distinct integers drawn uniformly from ``[0, n)`` (``int64``, sorted)."""
    if not 0 <= k <= n:
        raise FaultError(f"Cannot draw {k} distinct positions out of {n}")
    if k == 0:
        return torch.zeros(0, dtype=torch.int64)
    if 2 * k > n:
        # Dense case: choose the positions that are *not* flipped, the rest are.
        keep = torch.ones(n, dtype=torch.bool)
        keep[draw_positions(n, n - k, generator)] = False
        return keep.nonzero().flatten()
    chosen = torch.unique(torch.randint(0, n, (k,), generator=generator))
    while len(chosen) < k:
        extra = torch.randint(0, n, (2 * (k - len(chosen)),), generator=generator)
        chosen = torch.unique(torch.cat([chosen, extra]))
    if len(chosen) > k:
        # unique() sorts, so a random subset (not the smallest ones) must be kept.
        chosen = chosen[torch.randperm(len(chosen), generator=generator)[:k]].sort().values
    return chosen


def _xor_masks(numel: int, positions: torch.Tensor, width: int) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """Element indices and their XOR masks (int64) for bit ``positions`` of a tensor."""
    element = torch.div(positions, width, rounding_mode="floor")
    bit = positions - element * width
    mask = torch.zeros(numel, dtype=torch.int64)
    # Positions are distinct, so summing distinct powers of two is a bitwise OR.
    mask.index_add_(0, element, torch.ones_like(bit) << bit)
    hit = torch.unique(element)
    return hit, mask[hit]


def flip_float32(tensor: torch.Tensor, positions: torch.Tensor) -> None:
    """Flip bits ``positions`` (``element * 32 + bit``) of a float32 tensor, in place."""
    if tensor.dtype != torch.float32 or not tensor.is_contiguous():
        raise FaultError(f"float32 flips need a contiguous float32 tensor, not {tensor.dtype}")
    if len(positions) == 0:
        return
    hit, mask = _xor_masks(tensor.numel(), positions, 32)
    words = tensor.data.view(-1).view(torch.int32)
    # Work in int64 and wrap back: bit 31 does not fit a positive int32 mask.
    new = (words[hit].to(torch.int64) & 0xFFFFFFFF) ^ mask
    new = torch.where(new >= 2**31, new - 2**32, new)
    words[hit] = new.to(torch.int32)


def flip_int8(codes: torch.Tensor, positions: torch.Tensor) -> None:
    """Flip bits ``positions`` (``element * 8 + bit``) of an int8 tensor, in place."""
    if codes.dtype != torch.int8 or not codes.is_contiguous():
        raise FaultError(f"int8 flips need a contiguous int8 tensor, not {codes.dtype}")
    if len(positions) == 0:
        return
    hit, mask = _xor_masks(codes.numel(), positions, 8)
    flat = codes.view(-1)
    new = (flat[hit].to(torch.int64) & 0xFF) ^ mask
    new = torch.where(new >= 128, new - 256, new)
    flat[hit] = new.to(torch.int8)


def _layer_positions(layer_bits: int, ber: float, generator: torch.Generator | None,
                     rounding: str) -> torch.Tensor:
    k = flip_count(ber, layer_bits, generator, rounding)
    return draw_positions(layer_bits, k, generator)


def _split(positions: torch.Tensor, sizes: list[int]) -> Iterator[tuple[int, torch.Tensor]]:
    """Per tensor of a layer: its index and the positions relative to its start."""
    start = 0
    for i, size in enumerate(sizes):
        sel = positions[(positions >= start) & (positions < start + size)]
        if len(sel):
            yield i, sel - start
        start += size


@contextmanager
def inject(model: nn.Module, ber: float, *, dtype: str = "float32",
           generator: torch.Generator | None = None, rounding: str = "stochastic",
           int8: Int8Image | None = None) -> Iterator[FlipReport]:
    """Flip parameter bits of ``model`` at ``ber`` for the duration of a ``with`` block.

    Parameters
    ----------
    model:
        The network (float32 tensors). For ``dtype="int8"``: ``image.model`` of the
        :class:`Int8Image` passed as ``int8``.
    ber:
        Bit error rate in ``(0, 1]``.
    dtype:
        ``"float32"`` or ``"int8"`` storage.
    generator:
        Source of randomness (seed it for reproducible trials).
    rounding:
        ``"stochastic"`` or ``"nearest"`` flip counts (see the module docstring).

    Yields
    ------
    FlipReport
        Flips per layer. The original values are restored when the block exits.

    Raises
    ------
    FaultError
        BER outside ``(0, 1]``, an unknown dtype or rounding, or a non-float32 model.
    """
    config = BitFlipConfig(ber, dtype, rounding)
    if config.dtype == "int8":
        if int8 is None or int8.model is not model:
            raise FaultError("dtype='int8' needs int8=Int8Image(...) of the model evaluated "
                             "(pass image.model as the model)")
        with int8.inject(config.ber, generator=generator, rounding=rounding) as report:
            yield report
        return
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    report = FlipReport()
    try:
        with torch.no_grad():
            for layer in fault_space(model):
                sizes = [t.numel() * 32 for _, t in layer.tensors]
                positions = _layer_positions(sum(sizes), config.ber, generator, rounding)
                if len(positions) == 0:
                    continue
                report.flips[layer.name] = len(positions)
                for i, rel in _split(positions, sizes):
                    tensor = layer.tensors[i][1]
                    if tensor.dtype != torch.float32:
                        raise FaultError(f"{layer.name}.{layer.tensors[i][0]} is "
                                         f"{tensor.dtype}; float32 flips need float32 models")
                    saved.append((tensor, tensor.detach().clone()))
                    flip_float32(tensor, rel)
        yield report
    finally:
        with torch.no_grad():
            for tensor, original in reversed(saved):
                tensor.copy_(original)


# --- INT8 storage ----------------------------------------------------------------------------
def _fold_all(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every batch norm that directly follows a convolution or FC layer
    folded into it (INT8 deployments store the folded weights)."""
    from .harden import layer_sites  # the conv/FC -> BN pairing lives with the graph walker

    folded = copy.deepcopy(model)
    for site in layer_sites(folded):
        if site.bn is None:
            continue
        layer = folded.get_submodule(site.name)
        bn = folded.get_submodule(site.bn)
        w, b = _fold(layer, bn)
        with torch.no_grad():
            layer.weight = nn.Parameter(w.clone())
            layer.bias = nn.Parameter(b.clone())
        _set_module(folded, site.bn, nn.Identity())
    return folded


def _fold(layer: nn.Module, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    from .quant import fold_batchnorm

    if isinstance(layer, nn.Conv2d):
        w, b = fold_batchnorm(layer, bn)  # type: ignore[arg-type]
        assert b is not None
        return w.float(), b.float()
    # Linear + BatchNorm1d: the same algebra on [O, K] weights.
    assert isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d)
    assert bn.running_var is not None and bn.running_mean is not None
    g = (bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)).detach()
    beta = (bn.bias if bn.bias is not None else torch.zeros_like(bn.running_var)).detach()
    inv = g / torch.sqrt(bn.running_var + bn.eps)
    w, b = getattr(layer, "weight"), getattr(layer, "bias")  # noqa: B009 - typed Tensors
    assert isinstance(w, torch.Tensor)
    bias = b.detach() if isinstance(b, torch.Tensor) else torch.zeros_like(inv)
    return w.detach() * inv[:, None], (bias - bn.running_mean) * inv + beta


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)


def _quantize(t: torch.Tensor, rounding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 codes and scale (per output channel for rank >= 2, else per tensor)."""
    x = t.detach().double()
    if x.dim() >= 2:
        top = x.reshape(len(x), -1).abs().amax(1)
        scale = torch.clamp(top, min=1e-30) / 127
        ratio = x / scale.view(-1, *([1] * (x.dim() - 1)))
    else:
        scale = torch.clamp(x.abs().max(), min=1e-30).reshape(1) / 127 if x.numel() else \
            torch.ones(1, dtype=torch.float64)
        ratio = x / scale
    # Values already on the grid (within float32 rounding of ``q * scale``) must not move
    # when rounded outward, so outward rounding forgives a thousandth of a step.
    if rounding == "floor":
        q = torch.floor(ratio + 1e-3)
    elif rounding == "ceil":
        q = torch.ceil(ratio - 1e-3)
    else:
        q = torch.round(ratio)
    q = torch.clamp(q, -127, 127).to(torch.int8)
    return q.contiguous(), scale


class Int8Image:
    """A model as stored by an INT8 accelerator: int8 codes + scales, and its float twin.

    Parameters
    ----------
    model:
        A float32 network.
    prepared:
        ``False`` (default): ``model`` is copied, batch norm folded and every tensor replaced by
        its dequantized int8 value (:attr:`model` is that copy). ``True``: ``model`` already is
        such a model (e.g. hardened after :meth:`prepare`) -- it is used as is and its values
        are re-coded (already on the int8 grid, they do not change).

    Members
    -------
    model:
        The float network computing with the dequantized values (evaluate this one).
    layers:
        The fault space: per layer the codes, scales and target tensors.
    """

    def __init__(self, model: nn.Module, *, prepared: bool = False):
        self.model = model if prepared else self.prepare(model)
        self.layers: list[tuple[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]] = []
        with torch.no_grad():
            for layer in fault_space(self.model):
                module = self.model.get_submodule(layer.name)
                rules = getattr(module, "int8_rounding", {})
                entries = []
                for attr, tensor in layer.tensors:
                    codes, scale = _quantize(tensor, rules.get(attr, "nearest"))
                    tensor.copy_(self._dequant(codes, scale, tensor))
                    entries.append((codes, scale, tensor))
                self.layers.append((layer.name, entries))

    @staticmethod
    def prepare(model: nn.Module) -> nn.Module:
        """A copy of ``model`` with batch norm folded and every tensor on its int8 grid."""
        folded = _fold_all(model)
        with torch.no_grad():
            for layer in fault_space(folded):
                module = folded.get_submodule(layer.name)
                rules = getattr(module, "int8_rounding", {})
                for attr, tensor in layer.tensors:
                    codes, scale = _quantize(tensor, rules.get(attr, "nearest"))
                    tensor.copy_(Int8Image._dequant(codes, scale, tensor))
        return folded

    @staticmethod
    def _dequant(codes: torch.Tensor, scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        shape = (-1, *([1] * (codes.dim() - 1))) if codes.dim() >= 2 else (-1,)
        s = scale.view(shape) if codes.dim() >= 2 else scale
        return (codes.double() * s).to(like.dtype)

    def bits(self) -> int:
        """Stored bits of the fault space."""
        return sum(int(c.numel()) * 8 for _, entries in self.layers for c, _, _ in entries)

    @contextmanager
    def inject(self, ber: float, *, generator: torch.Generator | None = None,
               rounding: str = "stochastic") -> Iterator[FlipReport]:
        """Flip int8 code bits at ``ber``; :attr:`model` computes with them inside the block."""
        config = BitFlipConfig(ber, "int8", rounding)
        saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        report = FlipReport()
        try:
            with torch.no_grad():
                for name, entries in self.layers:
                    sizes = [int(c.numel()) * 8 for c, _, _ in entries]
                    positions = _layer_positions(sum(sizes), config.ber, generator, rounding)
                    if len(positions) == 0:
                        continue
                    report.flips[name] = len(positions)
                    for i, rel in _split(positions, sizes):
                        codes, scale, tensor = entries[i]
                        saved.append((codes, codes.clone(), tensor, tensor.detach().clone()))
                        flip_int8(codes, rel)
                        tensor.copy_(self._dequant(codes, scale, tensor))
            yield report
        finally:
            with torch.no_grad():
                for codes, old_codes, tensor, old in reversed(saved):
                    codes.copy_(old_codes)
                    tensor.copy_(old)


def flip_qnet(qnet: Any, ber: float, *, generator: torch.Generator | None = None,
              rounding: str = "stochastic") -> dict[str, torch.Tensor]:
    """Flip the int8 weight codes of a :class:`~nnmap.quant.QuantizedNet` at ``ber``, in place.

    Each MAC layer is one layer of the fault space (``weight.numel() * 8`` bits).

    Returns
    -------
    dict
        ``layer name -> original int8 weights`` of the layers that were changed: assign them
        back (``qnet.layers[name].weight = original``) to undo.
    """
    ber = check_ber(ber)
    if rounding not in ROUNDING:
        raise FaultError(f"rounding must be 'stochastic' or 'nearest', not {rounding!r}")
    originals: dict[str, torch.Tensor] = {}
    for name, layer in qnet.layers.items():
        codes = layer.weight
        positions = _layer_positions(int(codes.numel()) * 8, ber, generator, rounding)
        if len(positions) == 0:
            continue
        originals[name] = codes.clone()
        new = codes.contiguous().clone()
        flip_int8(new, positions)
        layer.weight = new
    return originals
