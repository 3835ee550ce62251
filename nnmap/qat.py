"""Low-bit quantization-aware training (Jacob et al., CVPR 2018): fake quantization with an STE.

A :class:`QATNet` wraps one of the project's float models (:class:`~nnmap.models.LeNet5`,
:class:`~nnmap.models.ResNet` -- ``lenet5``, ``resnet20``, ``resnet18``) and runs it with
quantized weights and activations. The float weights stay the trainable parameters; every
forward pass quantizes them.

Scheme
------
* **Weights**, one scale per layer (per tensor): symmetric, narrow range, codes
  ``q in [-(2**(b-1) - 1), 2**(b-1) - 1]`` (``[-7, 7]`` at 4 bits), ``s_w = max|W| / (2**(b-1)
  - 1)`` taken from the current float weights (Jacob et al. use the weights' min/max; the
  narrow range keeps zero exact and the grid symmetric). A weight is stored as a ``b``-bit
  two's-complement word; a memory fault can produce ``-2**(b-1)``, which decodes normally.
* **Activations**, one scale per tensor: every ReLU output (and ResNet's average-pool output)
  is unsigned, codes ``0 .. 2**b - 1``, ``s = EMA(batch max) / (2**b - 1)`` -- Jacob et al.'s
  exponential moving average of the range, updated in training only (decay
  :attr:`QATConfig.ema_decay`, initialised by the first batch).
* **Network input**: signed, :attr:`QATConfig.input_bits` (8 by default, as accelerators keep
  the first layer's input at higher precision), EMA of ``max|x|``.
* **Bias**: an integer in units of ``s_in * s_w`` (Jacob's int32 bias).
* **Batch norm** (ResNet) is kept as a per-channel affine map after the accumulator -- in an
  integer accelerator it folds into the per-channel requantization multiplier and bias -- so
  the weights held in the weight buffer are the convolution weights themselves, independent
  of the batch-norm statistics. Jacob et al. fold BN into the weights instead; with faults
  injected into stored weights, not folding keeps "a fault in a stored weight" one well
  defined thing whatever the BN statistics.
* **STE**: the clipped straight-through estimator, gradient 1 inside the quantizer's range and
  0 outside. Scales are not trained.

Exactness at inference
----------------------
In ``eval()`` mode every MAC layer recovers the integer input codes ``q_a = round(a / s_a)``
(exact: ``a`` is ``s_a * q_a`` rounded once), computes the accumulator ``acc = sum q_a q_w``
with a float32 convolution on integer-valued tensors -- exact whatever the summation order as
long as ``fan_in * max|q_a| * max|q_w| < 2**24``, otherwise float64 is used -- and returns
``(acc + bias_code) * s_a * s_w``; the next layer's codes are ``clamp(round(y / s), 0,
2**b - 1)`` (ReLU and quantization fused). The accumulators are exact integers; the
requantization is a float32 multiply (an accelerator uses a fixed-point multiplier there --
faults in stored weights, the object of this module's users, act on the exact part). The
weight codes can be replaced (:meth:`QATNet.override_weights`) by faulty ones
read from the weight buffer (:mod:`nnmap.sram_faults`). In ``train()`` mode the same values are
computed in floating point from the fake-quantized tensors, so gradients flow through the STE.

Sparsity points
---------------
:attr:`QATNet.sparsity_points` are the quantized post-ReLU activations (LeNet-5: ``conv1``,
``conv2``, ``fc1``, ``fc2``; ResNet: the stem ``conv1``, every block's ``conv1`` and every
block output). They are where the activation regularizer of :mod:`nnmap.sparsity` acts and
where zeros are counted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from sim.config import Config

from .errors import NNMapError
from .models import BasicBlock, LeNet5, ResNet, build_model, option_a

__all__ = [
    "MIN_BITS",
    "MAX_BITS",
    "QATConfig",
    "QATError",
    "QATNet",
    "build_qat",
    "fake_quant",
    "qat_model",
]

MIN_BITS = 2
MAX_BITS = 8
_EXACT_F32 = 1 << 24


class QATError(NNMapError):
    """A quantization-aware-training setting or input is invalid (the message names the fix)."""


def _check_bits(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (
            MIN_BITS <= value <= MAX_BITS):
        raise QATError(f"Unsupported {name} {value!r}; choose an integer from {MIN_BITS} to "
                       f"{MAX_BITS} bits")


@dataclass(frozen=True)
class QATConfig(Config):
    """Settings of quantization-aware training.

    Parameters
    ----------
    weight_bits:
        Bits per weight (two's complement, narrow range), 2 to 8; the paper uses 4.
    act_bits:
        Bits per activation (unsigned), 2 to 8; the paper uses 4.
    input_bits:
        Bits of the signed network input, 2 to 8.
    ema_decay:
        Decay of the activation ranges' moving average, in ``[0, 1)``.
    """

    FORMAT: ClassVar[str] = "nnmap.qat"

    weight_bits: int = 4
    act_bits: int = 4
    input_bits: int = 8
    ema_decay: float = 0.99

    def __post_init__(self) -> None:
        _check_bits("weight bit width", self.weight_bits)
        _check_bits("activation bit width", self.act_bits)
        _check_bits("input bit width", self.input_bits)
        if not 0 <= self.ema_decay < 1:
            raise QATError(f"ema_decay must be in [0, 1), not {self.ema_decay!r}")

    @property
    def weight_qmax(self) -> int:
        """Largest weight code (``2**(b-1) - 1``)."""
        return (1 << (self.weight_bits - 1)) - 1


class _Meter(Protocol):
    # A meter may also have ``update_float(name, pre)``: it then sees every pre-activation
    # of a sparsity point before ReLU and quantization (float zeros, nnmap.sparsity).
    def update(self, name: str, q: torch.Tensor) -> None: ...


# --- fake quantization ---------------------------------------------------------------------
def fake_quant(x: torch.Tensor, scale: float, lo: int, hi: int) -> torch.Tensor:
    """``scale * clamp(round(x / scale), lo, hi)`` with the clipped straight-through gradient.

    The gradient is 1 where ``lo * scale <= x <= hi * scale`` and 0 elsewhere.
    """
    if not (x.requires_grad and torch.is_grad_enabled()):
        return torch.clamp(torch.round(x / scale), lo, hi) * scale
    xc = torch.clamp(x, lo * scale, hi * scale)
    q = torch.round(xc / scale) * scale
    return xc + (q - xc).detach()


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class _ActQuant(nn.Module):
    """Activation quantizer with Jacob et al.'s moving-average range."""

    running_max: torch.Tensor
    initialized: torch.Tensor

    def __init__(self, bits: int, signed: bool, decay: float):
        super().__init__()
        self.signed, self.decay = signed, decay
        self.qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        self.register_buffer("running_max", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.frozen = False

    @property
    def scale(self) -> float:
        """Current scale (real value of code 1)."""
        return max(float(self.running_max), 1e-8) / self.qmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.frozen:
            top = x.detach().abs().max() if self.signed else x.detach().max().clamp(min=0)
            with torch.no_grad():
                if bool(self.initialized):
                    self.running_max.mul_(self.decay).add_((1 - self.decay) * top)
                else:
                    self.running_max.copy_(top)
                    self.initialized.fill_(True)
        return fake_quant(x, self.scale, -self.qmax if self.signed else 0, self.qmax)


# --- the network ---------------------------------------------------------------------------
def _key(name: str) -> str:
    return name.replace(".", "__")


class QATNet(nn.Module):
    """A float model run with fake-quantized weights and activations (see the module doc).

    Parameters
    ----------
    model:
        A :class:`~nnmap.models.LeNet5` or :class:`~nnmap.models.ResNet` (trained or not); it
        becomes the submodule ``model`` and its parameters are the ones trained.
    config:
        Bit widths and range tracking.

    Members
    -------
    mac_names:
        MAC layers (convolutions, fully connected) in execution order, named as in the float
        model (``conv1``, ``layer2.0.shortcut.0``, ``fc``...).
    sparsity_points:
        Names of the quantized post-ReLU activations (see the module docstring).
    record:
        When true, each forward stores the float post-ReLU activations in :attr:`acts`
        (what the L1 regularizer penalises).
    meter:
        When set, ``meter.update(point, q)`` sees every quantized post-ReLU activation (and
        ``meter.update_float(point, y)``, when the meter has it, the pre-activation).
    qweights:
        After a float-path forward: the fake-quantized weights ``Q_w(w)`` per layer (graph
        tensors; SAQ takes its gradient with respect to them).
    used_weights:
        After a float-path forward: the weights the layers multiplied with (``Q_w(w)``, plus
        the perturbation inside :meth:`perturbed`).
    """

    def __init__(self, model: nn.Module, config: QATConfig | None = None):
        super().__init__()
        self.config = config or QATConfig()
        if not isinstance(model, LeNet5 | ResNet):
            raise QATError(f"Cannot run a {type(model).__name__} with quantization-aware "
                           "training; supported: LeNet5, ResNet (lenet5, resnet20, resnet18)")
        self.model = model
        named = dict(model.named_modules())
        self.mac_names = [n for n, m in named.items() if isinstance(m, nn.Conv2d | nn.Linear)]
        self._macs: dict[str, nn.Conv2d | nn.Linear] = {
            n: named[n] for n in self.mac_names}  # type: ignore[misc]
        if isinstance(model, LeNet5):
            self.sparsity_points = ["conv1", "conv2", "fc1", "fc2"]
            extra: list[str] = []
        else:
            blocks = [f"{s}.{i}" for s, stage in zip(model.stage_names, model.stages(),
                                                     strict=True) for i in range(len(stage))]
            self.sparsity_points = ["conv1"] + [p for b in blocks for p in (f"{b}.conv1", b)]
            extra = ["avgpool"]
        c = self.config
        self.quantizers = nn.ModuleDict({"input": _ActQuant(c.input_bits, True, c.ema_decay)})
        for point in (*self.sparsity_points, *extra):
            self.quantizers[_key(point)] = _ActQuant(c.act_bits, False, c.ema_decay)
        self.record = False
        self.acts: dict[str, torch.Tensor] = {}
        self.meter: _Meter | None = None
        self.qweights: dict[str, torch.Tensor] = {}
        self.used_weights: dict[str, torch.Tensor] = {}
        self._override: dict[str, torch.Tensor] | None = None
        self._perturb: Mapping[str, torch.Tensor] | None = None

    # -- weights ------------------------------------------------------------------------
    def weight_scale(self, name: str) -> float:
        """Scale of layer ``name``'s weight codes (from its current float weights)."""
        w = self._macs[name].weight.detach()
        return max(float(w.abs().max()), 1e-12) / self.config.weight_qmax

    def weight_codes(self) -> dict[str, torch.Tensor]:
        """``name -> int8`` weight codes (what the weight buffer stores), in execution order."""
        return {name: self.weight_codes_of(name).to(torch.int8) for name in self.mac_names}

    def weight_scales(self) -> dict[str, float]:
        """``name -> s_w`` for every MAC layer."""
        return {name: self.weight_scale(name) for name in self.mac_names}

    @contextlib.contextmanager
    def override_weights(self, codes: Mapping[str, torch.Tensor]) -> Iterator[None]:
        """Run ``eval()`` forwards with these integer weight codes (e.g. faulty ones).

        Scales and biases are unchanged (they live in registers outside the weight buffer).
        Codes must have the layers' shapes and fit ``weight_bits`` two's complement.
        """
        lo, hi = -(1 << (self.config.weight_bits - 1)), (1 << (self.config.weight_bits - 1)) - 1
        checked = {}
        for name, q in codes.items():
            if name not in self._macs:
                raise QATError(f"No MAC layer {name!r}; layers are {self.mac_names}")
            if tuple(q.shape) != tuple(self._macs[name].weight.shape):
                raise QATError(f"Codes for {name!r} have shape {tuple(q.shape)}, the layer "
                               f"{tuple(self._macs[name].weight.shape)}")
            if len(q) and (int(q.min()) < lo or int(q.max()) > hi):
                raise QATError(f"Codes for {name!r} leave the {self.config.weight_bits}-bit "
                               f"range [{lo}, {hi}]")
            checked[name] = q
        saved, self._override = self._override, checked
        try:
            yield
        finally:
            self._override = saved

    @contextlib.contextmanager
    def perturbed(self, eps: Mapping[str, torch.Tensor]) -> Iterator[None]:
        """Add ``eps[name]`` to the *quantized* weights of the layers named (SAQ, Eq. 3)."""
        saved, self._perturb = self._perturb, eps
        try:
            yield
        finally:
            self._perturb = saved

    @contextlib.contextmanager
    def frozen_statistics(self) -> Iterator[None]:
        """Forward passes inside change no running statistic (BN or activation ranges)."""
        bns = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in bns]
        quants = [m for m in self.modules() if isinstance(m, _ActQuant)]
        states = [q.frozen for q in quants]
        for q in quants:
            q.frozen = True
        try:
            yield
        finally:
            for q, state in zip(quants, states, strict=True):
                q.frozen = state
            with torch.no_grad():
                for m, buffers in zip(bns, saved, strict=True):
                    for k, v in m.named_buffers(recurse=False):
                        v.copy_(buffers[k])

    # -- building blocks ----------------------------------------------------------------
    # Activations travel as real values (``s * q``) in the float path and as integer codes
    # ``q`` in the integer path; ``_mac`` takes either and returns real pre-activations.
    @property
    def _integer(self) -> bool:
        return not self.training and self._perturb is None

    def _q(self, point: str) -> _ActQuant:
        quant = self.quantizers[_key(point)]
        assert isinstance(quant, _ActQuant)
        return quant

    def _quant(self, point: str, x: torch.Tensor) -> torch.Tensor:
        quant = self._q(point)
        if self._integer:
            lo = -quant.qmax if quant.signed else 0
            return torch.clamp(torch.round(x / quant.scale), lo, quant.qmax)
        return quant(x)  # type: ignore[no-any-return]

    def _deq(self, point: str, a: torch.Tensor) -> torch.Tensor:
        return a * self._q(point).scale if self._integer else a

    def _relu_q(self, point: str, y: torch.Tensor) -> torch.Tensor:
        update_float = getattr(self.meter, "update_float", None)
        if update_float is not None:
            update_float(point, y.detach())  # before the in-place quantization below
        if self._integer:
            quant = self._q(point)
            # relu and quantization fused: clamp(round(y / s), 0, qmax), in place.
            q = y.mul_(1.0 / quant.scale).round_().clamp_(0, quant.qmax)
        else:
            r = F.relu(y)
            if self.record:
                self.acts[point] = r
            q = self._quant(point, r)
        if self.meter is not None:
            self.meter.update(point, q.detach())
        return q

    def _mac(self, name: str, a: torch.Tensor, in_point: str) -> torch.Tensor:
        mod = self._macs[name]
        s_in = self._q(in_point).scale
        s_w = self.weight_scale(name)
        unit = s_in * s_w
        if self._integer:
            return self._integer_mac(name, mod, a, unit)
        qmax = self.config.weight_qmax
        wq = fake_quant(mod.weight, s_w, -qmax, qmax)
        self.qweights[name] = wq
        if self._perturb is not None and name in self._perturb:
            wq = wq + self._perturb[name]
        self.used_weights[name] = wq
        bias = None if mod.bias is None else _round_ste(mod.bias / unit) * unit
        if isinstance(mod, nn.Linear):
            return F.linear(a, wq, bias)
        return F.conv2d(a, wq, bias, mod.stride, mod.padding)

    def _integer_mac(self, name: str, mod: nn.Conv2d | nn.Linear, q_a: torch.Tensor,
                     unit: float) -> torch.Tensor:
        """``(sum q_a q_w + bias_code) * unit``, the accumulator exact (see the module doc)."""
        if self._override is not None and name in self._override:
            q_w = self._override[name]
        else:
            q_w = self.weight_codes_of(name)
        fan_in = mod.weight[0].numel()
        amax = max(float(q_a.abs().max()) if q_a.numel() else 0.0, 1.0)
        wmax = 1 << (self.config.weight_bits - 1)
        bias = (None if mod.bias is None
                else torch.round(mod.bias.detach().double() / unit))
        bmax = 0.0 if bias is None or not len(bias) else float(bias.abs().max())
        exact32 = fan_in * amax * wmax + bmax < _EXACT_F32
        dtype = torch.float32 if exact32 else torch.float64
        w = q_w.to(dtype)
        x = q_a.to(dtype)
        if isinstance(mod, nn.Linear):
            acc = F.linear(x, w)
        else:
            acc = F.conv2d(x, w, None, mod.stride, mod.padding)
        if bias is not None:
            acc.add_(bias.to(dtype).view(1, -1, *([1] * (acc.dim() - 2))))
        return acc.mul_(unit).to(torch.float32)

    def weight_codes_of(self, name: str) -> torch.Tensor:
        """Integer weight codes (float tensor) of layer ``name`` from its float weights."""
        qmax = self.config.weight_qmax
        w = self._macs[name].weight.detach()
        return torch.clamp(torch.round(w / self.weight_scale(name)), -qmax, qmax)

    # -- forward ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (float) of normalised images ``x``."""
        self.acts = {}
        self.qweights = {}
        self.used_weights = {}
        q = self._quant("input", x)
        if isinstance(self.model, LeNet5):
            return self._lenet(q)
        return self._resnet(q)

    def _lenet(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(self._relu_q("conv1", self._mac("conv1", x, "input")), 2)
        h = F.max_pool2d(self._relu_q("conv2", self._mac("conv2", h, "conv1")), 2)
        h = torch.flatten(h, 1)
        h = self._relu_q("fc1", self._mac("fc1", h, "conv2"))
        h = self._relu_q("fc2", self._mac("fc2", h, "fc1"))
        return self._mac("fc3", h, "fc2")

    def _resnet(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        assert isinstance(m, ResNet)
        h = self._relu_q("conv1", m.bn1(self._mac("conv1", x, "input")))
        prev = "conv1"
        for stage_name, stage in zip(m.stage_names, m.stages(), strict=True):
            for i, block in enumerate(stage):
                assert isinstance(block, BasicBlock)
                name = f"{stage_name}.{i}"
                t = self._relu_q(f"{name}.conv1",
                                 block.bn1(self._mac(f"{name}.conv1", h, prev)))
                y = block.bn2(self._mac(f"{name}.conv2", t, f"{name}.conv1"))
                if block.shortcut is not None:
                    sc = block.shortcut[1](self._mac(f"{name}.shortcut.0", h, prev))
                else:
                    sc = option_a(self._deq(prev, h), block.stride, block.pad_channels)
                h = self._relu_q(name, y + sc)
                prev = name
        pooled = torch.flatten(F.adaptive_avg_pool2d(self._deq(prev, h), 1), 1)
        return self._mac("fc", self._quant("avgpool", pooled), "avgpool")

    def extra_repr(self) -> str:
        c = self.config
        return f"weights {c.weight_bits} b, activations {c.act_bits} b, input {c.input_bits} b"


def qat_model(model: nn.Module, config: QATConfig | None = None) -> QATNet:
    """Wrap a float :class:`LeNet5` or :class:`ResNet` for quantization-aware training."""
    return QATNet(model, config)


def build_qat(name: str, in_channels: int, num_classes: int, image_size: int,
              config: QATConfig | None = None) -> QATNet:
    """A fresh :class:`QATNet` of the named model (see :func:`nnmap.models.build_model`)."""
    return QATNet(build_model(name, in_channels, num_classes, image_size), config)


def describe(net: QATNet) -> dict[str, Any]:
    """Layer shapes, weight scales and activation scales (JSON-able, for result files)."""
    return {
        "config": json.loads(net.config.to_json()),
        "layers": {n: list(net._macs[n].weight.shape) for n in net.mac_names},
        "weight_scales": net.weight_scales(),
        "activation_scales": {k.replace("__", "."): net._q(k.replace("__", ".")).scale
                              for k in net.quantizers},
    }
