"""Post-training INT8 quantization and the integer-exact forward pass.

Scheme
------
* **Symmetric INT8** everywhere, codes in ``[-127, 127]`` (``-128`` is left unused so that
  the range is symmetric; a memory fault may still produce it and the arithmetic handles it).
* **Weights**: ``w = s_w * q_w`` with ``s_w = max|W| / 127`` per tensor or per output
  channel (:attr:`QuantConfig.weights`), after **batch norm is folded** into the preceding
  convolution (``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var +
  eps) + beta``).
* **Activations**: one scale per tensor, ``s = range / 127``, with ``range`` the maximum or a
  percentile of ``|x|`` seen on a few calibration batches (:attr:`QuantConfig.activations`).
  The network input is signed; every ReLU output is non-negative, codes ``0 .. 127``.
* **MAC layers** (convolutions and fully connected layers, :class:`MacLayer`) compute the
  exact integer accumulator ``acc[o, j] = sum_k a[k, j] * w[o, k]`` of signed int8 operands
  -- the products the hardware multiplier forms (weight on port ``a`` and activation on port
  ``b`` by default, :attr:`QuantConfig.weight_port`) -- then add an int32 bias
  ``round(b / (s_in * s_w))``. Zero padding of convolutions feeds real zero activations to
  the multiplier and counts as MACs.
* **Requantization** to the next layer's int8 scale is fixed-point, as in integer-only
  accelerators: ``y = clamp(((acc + bias) * m + 2**(n-1)) >> n)`` with an integer multiplier
  ``m < 2**20`` per output channel and one shift ``n`` per layer (``m / 2**n ~ s_in * s_w /
  s_out``), i.e. rounding half up; ReLU is the lower clamp at 0. Accumulators are int32
  (``|acc + bias| < 2**31``), so ``(acc + bias) * m < 2**51`` and the whole computation is
  exact in float64, which is how it is carried out.
* **Max-pooling** acts on the codes (it commutes with the monotone quantizer). **Global
  average pooling** sums the codes exactly and requantizes the sum.
* **Residual adds** (ResNet) are done in the integer domain: the block output is
  ``clamp(((acc2 + b2) * m2 + sc * m_sc + 2**(n-1)) >> n, 0, 127)`` where ``acc2`` is the
  second convolution's accumulator, ``sc`` is the shortcut -- the block input's int8 codes
  (identity or option-A subsampling/zero channels), or the 1x1 projection's accumulator plus
  bias -- and ``m2``, ``m_sc`` are fixed-point multipliers to the block output scale with a
  common shift ``n``. One rounding, then the ReLU and the clamp.
* The **logits** are the last layer's accumulator plus bias, dequantized to float64.

Exactness: integer products and sums are computed with float32 convolutions/matmuls over
chunks of at most 1023 inputs (every partial sum is an integer below ``2**24``, so float32 is
exact whatever the summation order), the chunks summed in float64 (exact below ``2**53``).
Accumulators are therefore ``float64`` tensors holding integers. If
``torch.get_float32_matmul_precision()`` is not ``"highest"`` float64 is used throughout.
Activations between layers are ``int8`` tensors.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset
from tqdm import tqdm

from sim.config import Config

from .errors import NNMapError
from .models import BasicBlock, LeNet5, ResNet, option_a

__all__ = [
    "QMAX",
    "MacHook",
    "MacLayer",
    "QuantConfig",
    "QuantError",
    "QuantReport",
    "QuantizedNet",
    "fold_batchnorm",
    "quant_report",
    "quantize",
    "table_iv",
]

QMAX = 127
_EXACT_F32 = 1 << 24
_MAX_PRODUCT = 128 * 128
_M_BITS = 20

#: ``hook(layer, x, acc)``: called with a MAC layer, its int8 input and its exact accumulator
#: (``float64`` holding integers, before the bias), which it may change in place by adding
#: integers (timing-error injection).
MacHook = Callable[["MacLayer", torch.Tensor, torch.Tensor], None]


class QuantError(NNMapError):
    """A quantization setting or input is invalid (the message names the fix)."""


@dataclass(frozen=True)
class QuantConfig(Config):
    """Settings of post-training INT8 quantization.

    Parameters
    ----------
    weights:
        ``"per-channel"`` (one scale per output channel) or ``"per-tensor"``.
    activations:
        Calibration of activation ranges: ``"max"`` of ``|x|`` or ``"percentile"``.
    percentile:
        Percentile of ``|x|`` used by ``activations="percentile"``, in ``(0, 100]``.
    calib_batches:
        Number of batches of the calibration loader to observe.
    weight_port:
        Multiplier port carrying the weight: ``"a"`` (activation on ``b``) or ``"b"``.
    """

    FORMAT: ClassVar[str] = "nnmap.quant"

    weights: str = "per-channel"
    activations: str = "max"
    percentile: float = 99.99
    calib_batches: int = 8
    weight_port: str = "a"

    def __post_init__(self) -> None:
        if self.weights not in ("per-channel", "per-tensor"):
            raise QuantError(f"weights must be 'per-channel' or 'per-tensor', not "
                             f"{self.weights!r}")
        if self.activations not in ("max", "percentile"):
            raise QuantError(f"activations must be 'max' or 'percentile', not "
                             f"{self.activations!r}")
        if not 0 < self.percentile <= 100:
            raise QuantError(f"percentile must be in (0, 100], not {self.percentile!r}")
        if not isinstance(self.calib_batches, int) or self.calib_batches < 1:
            raise QuantError(f"calib_batches must be a positive integer, not "
                             f"{self.calib_batches!r}")
        if self.weight_port not in ("a", "b"):
            raise QuantError(f"weight_port must be 'a' or 'b', not {self.weight_port!r}")


# --- integer arithmetic --------------------------------------------------------------------
@dataclass
class MacLayer:
    """A convolution or fully connected layer in the integer domain.

    Members
    -------
    name:
        The float model's module name (``conv1``, ``layer2.0.conv1``, ``fc``...).
    kind:
        ``"conv"`` or ``"linear"``.
    weight:
        ``int8`` codes ``[O, C, kh, kw]`` or ``[O, K]``; edit them to study weight changes.
    w_scale:
        ``float64 [O]``: real weight = ``w_scale[o] * weight[o]``.
    bias:
        ``float64 [O]`` integers (int32 range) in units of ``in_scale * w_scale[o]``.
    in_scale:
        Scale of the int8 input.
    in_shape:
        ``(C, H, W)`` or ``(K,)`` of one input.
    stride, padding:
        Convolution geometry (zero padding).
    weight_port:
        Multiplier port of the weight (``"a"`` or ``"b"``).
    """

    name: str
    kind: str
    weight: torch.Tensor
    w_scale: torch.Tensor
    bias: torch.Tensor
    in_scale: float
    in_shape: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    weight_port: str = "a"

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width (``(1, 1)`` for a linear layer)."""
        if self.kind == "linear":
            return 1, 1
        _, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        return ((h + 2 * self.padding - kh) // self.stride + 1,
                (w + 2 * self.padding - kw) // self.stride + 1)

    @property
    def fan_in(self) -> int:
        """Products summed per output value (``C * kh * kw`` or ``K``)."""
        return int(self.weight[0].numel())

    def macs(self) -> int:
        """Multiplications for one input image."""
        ho, wo = self.out_hw
        return int(self.weight.numel()) * ho * wo

    def accumulate(self, x: torch.Tensor) -> torch.Tensor:
        """Exact accumulator ``[N, O, Ho, Wo]`` (or ``[N, O]``) of int8 input ``x``.

        ``float64`` holding the integers ``sum_k x[k] * weight[o, k]`` (no bias).
        """
        exact_f32 = torch.get_float32_matmul_precision() == "highest"
        dtype = torch.float32 if exact_f32 else torch.float64
        w = self.weight.to(dtype)
        xf = x.to(dtype)
        if self.kind == "linear":
            step = _EXACT_F32 // _MAX_PRODUCT if exact_f32 else self.fan_in
            acc: torch.Tensor | None = None
            for k in range(0, self.fan_in, step):
                part = (xf[:, k:k + step] @ w[:, k:k + step].T).double()
                acc = part if acc is None else acc + part
            assert acc is not None
            return acc
        c, kh, kw = self.weight.shape[1:]
        step = max(1, _EXACT_F32 // (_MAX_PRODUCT * kh * kw)) if exact_f32 else c
        if exact_f32 and kh * kw * _MAX_PRODUCT >= _EXACT_F32:
            raise QuantError(f"Kernel {kh}x{kw} of {self.name!r} is too large for exact "
                             "float32 accumulation; set torch.set_float32_matmul_precision")
        acc = None
        for i in range(0, c, step):
            part = F.conv2d(xf[:, i:i + step], w[:, i:i + step], stride=self.stride,
                            padding=self.padding).double()
            acc = part if acc is None else acc + part
        assert acc is not None
        return acc


def _fixed_point(multipliers: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], int]:
    """Integer multipliers ``m < 2**20`` (as float64) and one shift ``n``: ``m / 2**n ~ M``."""
    top = max(float(m.max()) for m in multipliers)
    shift = 1 if top <= 0 else min(62, max(1, math.floor(math.log2((1 << _M_BITS) / top))))
    return [torch.round(m.double() * 2.0**shift) for m in multipliers], shift


def _round_shift(v: torch.Tensor, shift: int) -> torch.Tensor:
    """``(v + 2**(n-1)) >> n`` of integers held in float64, in place (exact: ``|v| < 2**52``)."""
    return v.add_(2.0 ** (shift - 1)).mul_(2.0**-shift).floor_()


def _per_channel(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return t.view(1, -1, *([1] * (ndim - 2)))


def _quantize_weight(w: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    flat = w.detach().double().reshape(len(w), -1)
    top = flat.abs().amax(1) if per_channel else flat.abs().max().expand(len(w))
    scale = torch.clamp(top, min=1e-12) / QMAX
    q = torch.clamp(torch.round(flat / scale[:, None]), -QMAX, QMAX).to(torch.int8)
    return q.reshape(w.shape), scale


def _quantize_bias(b: torch.Tensor, unit: torch.Tensor, name: str) -> torch.Tensor:
    q = torch.round(b.double() / unit)
    if q.abs().max() >= 2**31:
        warnings.warn(f"Bias of {name!r} saturates the int32 range; clamped", stacklevel=4)
        q = torch.clamp(q, -(2**31) + 1, 2**31 - 1)
    return q


# --- calibration ---------------------------------------------------------------------------
class _Observers:
    """Range of ``|x|`` at each requantization point, over the calibration batches."""

    def __init__(self, config: QuantConfig):
        self.config = config
        self.top: dict[str, float] = {}
        self.samples: dict[str, list[np.ndarray]] = {}

    def update(self, point: str, x: torch.Tensor) -> None:
        a = x.detach().abs().reshape(-1)
        self.top[point] = max(self.top.get(point, 0.0), float(a.max()))
        if self.config.activations == "percentile":
            stride = max(1, a.numel() // (1 << 18))
            self.samples.setdefault(point, []).append(a[::stride].double().numpy())

    def scale(self, point: str) -> float:
        if point not in self.top:
            raise QuantError(f"No calibration data reached {point!r}; pass a non-empty "
                             "calibration loader")
        top = self.top[point]
        if self.config.activations == "percentile":
            top = float(np.percentile(np.concatenate(self.samples[point]),
                                      self.config.percentile))
        return max(top, 1e-8) / QMAX


# --- steps of the quantized program --------------------------------------------------------
class _Step:
    """One stage: a float forward used for calibration, and the integer forward."""

    def calibrate(self, x: torch.Tensor, obs: _Observers) -> torch.Tensor:
        raise NotImplementedError

    def finalize(self, in_scale: float, obs: _Observers, config: QuantConfig) -> float:
        return in_scale

    def run(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        raise NotImplementedError

    def mac_layers(self) -> list[MacLayer]:
        return []


class _InputStep(_Step):
    point = "input"

    def __init__(self) -> None:
        self.scale = 1.0

    def calibrate(self, x: torch.Tensor, obs: _Observers) -> torch.Tensor:
        obs.update(self.point, x)
        return x

    def finalize(self, in_scale: float, obs: _Observers, config: QuantConfig) -> float:
        self.scale = obs.scale(self.point)
        return self.scale

    def run(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        return torch.clamp(torch.round(q.double() / self.scale), -QMAX, QMAX).to(torch.int8)


class _Mac:
    """A float conv/linear (BN folded) that becomes a :class:`MacLayer` at ``finalize``."""

    def __init__(self, name: str, weight: torch.Tensor, bias: torch.Tensor | None,
                 stride: int = 1, padding: int = 0):
        self.name = name
        self.weight = weight.detach().double()
        self.bias = (torch.zeros(len(weight), dtype=torch.float64) if bias is None
                     else bias.detach().double())
        self.stride, self.padding = stride, padding
        self.in_shape: tuple[int, ...] = ()
        self.layer: MacLayer | None = None

    def float_forward(self, x: torch.Tensor) -> torch.Tensor:
        self.in_shape = tuple(x.shape[1:])
        if self.weight.dim() == 2:
            return F.linear(x.double(), self.weight, self.bias)
        return F.conv2d(x.double(), self.weight, self.bias, self.stride, self.padding)

    def finalize(self, in_scale: float, config: QuantConfig) -> MacLayer:
        q, w_scale = _quantize_weight(self.weight, config.weights == "per-channel")
        bias = _quantize_bias(self.bias, in_scale * w_scale, self.name)
        self.layer = MacLayer(
            name=self.name, kind="linear" if q.dim() == 2 else "conv", weight=q,
            w_scale=w_scale, bias=bias, in_scale=in_scale, in_shape=self.in_shape,
            stride=self.stride, padding=self.padding, weight_port=config.weight_port)
        return self.layer

    def acc_plus_bias(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        layer = self.layer
        assert layer is not None, "finalize() first"
        acc = layer.accumulate(q)
        if hook is not None:
            hook(layer, q, acc)
        return acc + _per_channel(layer.bias, acc.dim())


class _MacStep(_Step):
    """A MAC layer followed by requantization (optionally ReLU), or the logits."""

    def __init__(self, mac: _Mac, relu: bool, logits: bool = False):
        self.mac, self.relu, self.logits = mac, relu, logits
        self.multiplier = torch.ones(1, dtype=torch.float64)
        self.shift = 1
        self.out_scale = 1.0

    def calibrate(self, x: torch.Tensor, obs: _Observers) -> torch.Tensor:
        y = self.mac.float_forward(x)
        if self.relu:
            y = F.relu(y)
        if not self.logits:
            obs.update(self.mac.name, y)
        return y

    def finalize(self, in_scale: float, obs: _Observers, config: QuantConfig) -> float:
        layer = self.mac.finalize(in_scale, config)
        if self.logits:
            return in_scale
        self.out_scale = obs.scale(self.mac.name)
        (self.multiplier,), self.shift = _fixed_point([in_scale * layer.w_scale /
                                                       self.out_scale])
        return self.out_scale

    def run(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        v = self.mac.acc_plus_bias(q, hook)
        layer = self.mac.layer
        assert layer is not None
        if self.logits:
            return v.double() * _per_channel(layer.in_scale * layer.w_scale, v.dim())
        y = _round_shift(v.mul_(_per_channel(self.multiplier, v.dim())), self.shift)
        return y.clamp_(0 if self.relu else -QMAX, QMAX).to(torch.int8)

    def mac_layers(self) -> list[MacLayer]:
        return [self.mac.layer] if self.mac.layer is not None else []


class _MaxPoolStep(_Step):
    def __init__(self, kernel: int):
        self.kernel = kernel

    def calibrate(self, x: torch.Tensor, obs: _Observers) -> torch.Tensor:
        return F.max_pool2d(x, self.kernel)

    def run(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        return F.max_pool2d(q.to(torch.float32), self.kernel).to(torch.int8)


class _FlattenStep(_Step):
    def calibrate(self, x: torch.Tensor, obs: _Observers) -> torch.Tensor:
        return torch.flatten(x, 1)

    def run(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        return torch.flatten(q, 1)


class _AvgPoolStep(_Step):
    """Global average pooling of non-negative codes: exact sum, then requantization."""

    point = "avgpool"

    def __init__(self) -> None:
        self.in_scale = self.out_scale = 1.0

    def calibrate(self, x: torch.Tensor, obs: _Observers) -> torch.Tensor:
        y = x.mean((2, 3))
        obs.update(self.point, y)
        return y

    def finalize(self, in_scale: float, obs: _Observers, config: QuantConfig) -> float:
        self.in_scale, self.out_scale = in_scale, obs.scale(self.point)
        return self.out_scale

    def run(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        n = q.shape[2] * q.shape[3]
        (m,), shift = _fixed_point([torch.tensor([self.in_scale / (n * self.out_scale)])])
        y = _round_shift(q.double().sum((2, 3)) * m, shift)
        return y.clamp_(0, QMAX).to(torch.int8)


class _BlockStep(_Step):
    """A :class:`BasicBlock` with its residual add in the integer domain."""

    def __init__(self, name: str, block: BasicBlock):
        self.name = name
        self.conv1 = _MacStep(_Mac(f"{name}.conv1", *fold_batchnorm(block.conv1, block.bn1),
                                   stride=block.stride, padding=1), relu=True)
        self.conv2 = _Mac(f"{name}.conv2", *fold_batchnorm(block.conv2, block.bn2), padding=1)
        self.proj: _Mac | None = None
        if block.shortcut is not None:
            conv, bn = block.shortcut[0], block.shortcut[1]
            assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            self.proj = _Mac(f"{name}.shortcut.0", *fold_batchnorm(conv, bn),
                             stride=block.stride)
        self.stride, self.pad_channels = block.stride, block.pad_channels
        self.m2 = self.m_sc = torch.ones(1, dtype=torch.float64)
        self.shift = 1

    def calibrate(self, x: torch.Tensor, obs: _Observers) -> torch.Tensor:
        h = self.conv1.calibrate(x, obs)
        y = self.conv2.float_forward(h)
        sc = (self.proj.float_forward(x) if self.proj is not None
              else option_a(x.double(), self.stride, self.pad_channels))
        out = F.relu(y + sc)
        obs.update(self.name, out)
        return out

    def finalize(self, in_scale: float, obs: _Observers, config: QuantConfig) -> float:
        s_h = self.conv1.finalize(in_scale, obs, config)
        s_out = obs.scale(self.name)
        l2 = self.conv2.finalize(s_h, config)
        m2 = s_h * l2.w_scale / s_out
        if self.proj is not None:
            m_sc = in_scale * self.proj.finalize(in_scale, config).w_scale / s_out
        else:
            m_sc = torch.full_like(m2, in_scale / s_out)
        (self.m2, self.m_sc), self.shift = _fixed_point([m2, m_sc])
        return s_out

    def run(self, q: torch.Tensor, hook: MacHook | None) -> torch.Tensor:
        h = self.conv1.run(q, hook)
        v = self.conv2.acc_plus_bias(h, hook)
        sc = (self.proj.acc_plus_bias(q, hook) if self.proj is not None
              else option_a(q.double(), self.stride, self.pad_channels))
        total = v * _per_channel(self.m2, 4) + sc * _per_channel(self.m_sc, 4)
        return _round_shift(total, self.shift).clamp_(0, QMAX).to(torch.int8)

    def mac_layers(self) -> list[MacLayer]:
        macs = [*self.conv1.mac_layers(), self.conv2.layer]
        if self.proj is not None:
            macs.append(self.proj.layer)
        return [m for m in macs if m is not None]


# --- conversion ----------------------------------------------------------------------------
def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (float64, eval statistics)."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else None
    if bn is None:
        return w, b
    assert bn.running_var is not None and bn.running_mean is not None
    gamma = (bn.weight.detach().double() if bn.weight is not None
             else torch.ones_like(bn.running_var, dtype=torch.float64))
    beta = (bn.bias.detach().double() if bn.bias is not None
            else torch.zeros_like(gamma))
    k = gamma / torch.sqrt(bn.running_var.double() + bn.eps)
    base = b if b is not None else torch.zeros_like(k)
    return w * k.view(-1, 1, 1, 1), (base - bn.running_mean.double()) * k + beta


_CONVERTERS: dict[type[nn.Module], Callable[[Any], list[_Step]]] = {}


def _converter(cls: type[nn.Module]) -> Callable[[Callable[[Any], list[_Step]]],
                                                  Callable[[Any], list[_Step]]]:
    def register(fn: Callable[[Any], list[_Step]]) -> Callable[[Any], list[_Step]]:
        _CONVERTERS[cls] = fn
        return fn
    return register


@_converter(LeNet5)
def _lenet_steps(m: LeNet5) -> list[_Step]:
    def mac(name: str, mod: nn.Conv2d | nn.Linear) -> _Mac:
        if isinstance(mod, nn.Conv2d):
            pad = mod.padding[0] if isinstance(mod.padding, tuple) else 0
            return _Mac(name, mod.weight, mod.bias, mod.stride[0], int(pad))
        return _Mac(name, mod.weight, mod.bias)

    return [_InputStep(),
            _MacStep(mac("conv1", m.conv1), relu=True), _MaxPoolStep(2),
            _MacStep(mac("conv2", m.conv2), relu=True), _MaxPoolStep(2), _FlattenStep(),
            _MacStep(mac("fc1", m.fc1), relu=True), _MacStep(mac("fc2", m.fc2), relu=True),
            _MacStep(mac("fc3", m.fc3), relu=False, logits=True)]


@_converter(ResNet)
def _resnet_steps(m: ResNet) -> list[_Step]:
    steps: list[_Step] = [_InputStep(),
                          _MacStep(_Mac("conv1", *fold_batchnorm(m.conv1, m.bn1), padding=1),
                                   relu=True)]
    for stage_name, stage in zip(m.stage_names, m.stages(), strict=True):
        for i, block in enumerate(stage):
            assert isinstance(block, BasicBlock)
            steps.append(_BlockStep(f"{stage_name}.{i}", block))
    steps += [_AvgPoolStep(), _MacStep(_Mac("fc", m.fc.weight, m.fc.bias), relu=False,
                                       logits=True)]
    return steps


class QuantizedNet:
    """An INT8 network with an integer-exact forward pass (see the module docstring).

    Members
    -------
    config:
        The :class:`QuantConfig` used.
    layers:
        ``name -> MacLayer`` in execution order: every multiplication goes through one.
    input_scale:
        Scale of the int8 input codes.
    """

    def __init__(self, steps: list[_Step], config: QuantConfig):
        self._steps = steps
        self.config = config
        self.layers: dict[str, MacLayer] = {
            layer.name: layer for step in steps for layer in step.mac_layers()}
        first = steps[0]
        self.input_scale = first.scale if isinstance(first, _InputStep) else 1.0

    def __call__(self, x: torch.Tensor, hook: MacHook | None = None) -> torch.Tensor:
        """``float64`` logits of normalised float images ``x`` (``hook`` sees every layer)."""
        q: torch.Tensor = x
        with torch.no_grad():
            for step in self._steps:
                q = step.run(q, hook)
        return q

    forward = __call__

    def macs(self) -> dict[str, int]:
        """Multiplications per layer for one input image."""
        return {name: layer.macs() for name, layer in self.layers.items()}

    def float_weights(self) -> dict[str, torch.Tensor]:
        """``name -> float64`` weights each MAC layer was quantized from (batch norm folded).

        ``weight / w_scale`` (per output channel) are the real-valued codes that
        round-to-nearest turned into :attr:`MacLayer.weight`; error-aware quantization
        chooses between their two neighbouring levels.
        """
        return {m.name: m.weight.clone() for step in self._steps for m in _macs_of(step)
                if m.layer is not None}

    def accuracy(self, data: TensorDataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
                 hook: MacHook | None = None, *, batch_size: int = 1000,
                 progress: bool = False) -> float:
        """Top-1 accuracy on ``data`` (a ``TensorDataset`` or iterable of batches)."""
        if isinstance(data, TensorDataset):
            x, y = data.tensors
            batches: Iterable[tuple[torch.Tensor, torch.Tensor]] = (
                (x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size))
            total_batches: int | None = (len(x) + batch_size - 1) // batch_size
        else:
            batches, total_batches = data, None
        correct = total = 0
        for xb, yb in tqdm(batches, total=total_batches, desc="int8 inference",
                           disable=not progress, leave=False):
            correct += int((self(xb, hook).argmax(1) == yb).sum())
            total += len(yb)
        return correct / max(total, 1)


def _macs_of(obj: object) -> list[_Mac]:
    """The :class:`_Mac` objects of a step (nested steps included), in execution order."""
    if isinstance(obj, _Mac):
        return [obj]
    if isinstance(obj, _Step):
        return [m for v in vars(obj).values() for m in _macs_of(v)]
    return []


def quantize(model: nn.Module, config: QuantConfig | None = None,
             calib_loader: TensorDataset | Iterable[tuple[torch.Tensor, Any]] | None = None
             ) -> QuantizedNet:
    """Post-training INT8 quantization of a trained model.

    Parameters
    ----------
    model:
        A :class:`LeNet5` or :class:`ResNet` (batch norm is folded; the model is not changed).
    config:
        Quantization settings (defaults when ``None``).
    calib_loader:
        Calibration data: a ``TensorDataset`` (batches of 256) or an iterable of ``(x, y)``
        batches (``y`` is ignored and may be ``None``); the first ``config.calib_batches``
        batches are used.

    Returns
    -------
    QuantizedNet

    Raises
    ------
    QuantError
        Unsupported model or no calibration data.
    """
    config = config or QuantConfig()
    converter = _CONVERTERS.get(type(model))
    if converter is None:
        raise QuantError(f"Cannot quantize a {type(model).__name__}; supported: "
                         f"{', '.join(c.__name__ for c in _CONVERTERS)}")
    if calib_loader is None:
        raise QuantError("quantize() needs calibration data; pass calib_loader")
    was_training = model.training
    model.eval()
    steps = converter(model)
    obs = _Observers(config)
    if isinstance(calib_loader, TensorDataset):
        x_all = calib_loader.tensors[0]
        calib: Iterable[Any] = ((x_all[i:i + 256], None) for i in range(0, len(x_all), 256))
    else:
        calib = calib_loader
    with torch.no_grad():
        for i, (xb, _) in enumerate(calib):
            if i >= config.calib_batches:
                break
            h = xb.double()
            for step in steps:
                h = step.calibrate(h, obs)
    model.train(was_training)
    scale = 1.0
    for step in steps:
        scale = step.finalize(scale, obs, config)
    return QuantizedNet(steps, config)


# --- Table IV ------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantReport:
    """One row of Table IV: accuracy before and after INT8 quantization."""

    model: str
    dataset: str
    float_accuracy: float
    int8_accuracy: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def drop(self) -> float:
        """Accuracy lost to quantization (float minus INT8)."""
        return self.float_accuracy - self.int8_accuracy


def quant_report(model: nn.Module, qnet: QuantizedNet, test: TensorDataset, *,
                 model_name: str, dataset: str, batch_size: int = 1000) -> QuantReport:
    """Measure float and INT8 accuracy of the same network on ``test``."""
    from .train import evaluate

    return QuantReport(model_name, dataset, evaluate(model, test, batch_size=batch_size),
                       qnet.accuracy(test, batch_size=batch_size),
                       json.loads(qnet.config.to_json()))


def table_iv(rows: Sequence[QuantReport]) -> str:
    """Markdown table in the layout of the paper's Table IV."""
    lines = ["| Trained model | Accuracy | Accuracy after INT8 quantization |",
             "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.model} + {r.dataset} | {100 * r.float_accuracy:.2f}% | "
                     f"{100 * r.int8_accuracy:.2f}% |")
    return "\n".join(lines) + "\n"
