"""The networks of the studies: LeNet-5, ResNet-20 (CIFAR) and ResNet-18 (CIFAR variant).

* :class:`LeNet5` -- 2 convolutions (6 and 16 filters, 5x5) and 3 fully connected layers
  (120, 84, classes), ReLU, 2x2 max-pooling, as in LeCun et al. and the timing-error paper.
  Images smaller than 32x32 are zero-padded by the first convolution (``padding=2`` for
  28x28), so MNIST-like and CIFAR inputs give the same 16x5x5 feature map.
* :class:`ResNet` -- He et al.'s basic-block ResNets with batch norm:
  ``resnet20`` is the CIFAR network of the original paper (3x3 stem, 3 stages x 3 blocks of
  16/32/64 channels, parameter-free "option A" shortcuts: stride-2 subsampling and zero
  channel padding), i.e. 19 convolutions + 1 FC; ``resnet18`` is the usual CIFAR variant of
  ImageNet's ResNet-18 (3x3 stem, no max-pool, 4 stages x 2 blocks of 64..512 channels,
  1x1-convolution "option B" shortcuts where the shape changes).

Layer names (``conv1``, ``fc1``, ``layer2.0.conv1``...) are the ``named_modules`` names;
the quantized network and the MAC counts reuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MODELS", "BasicBlock", "LeNet5", "ModelError", "ResNet", "build_model"]


class ModelError(ValueError):
    """An unknown model name or an impossible input shape (message names the fix)."""


class LeNet5(nn.Module):
    """LeNet-5: conv(6, 5x5) - pool - conv(16, 5x5) - pool - fc120 - fc84 - fc(classes).

    Parameters
    ----------
    in_channels:
        Image channels (1 for MNIST/FashionMNIST, 3 for CIFAR-10).
    num_classes:
        Output classes.
    image_size:
        Height = width of the input (28 or 32; at least 12).
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        if image_size < 12:
            raise ModelError(f"LeNet-5 needs images of at least 12x12 pixels, not {image_size!r}")
        pad = max(0, (32 - image_size) // 2)
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with 3x3 convolutions.

    Parameters
    ----------
    in_planes, planes:
        Input and output channels.
    stride:
        Stride of ``conv1`` (and of the shortcut).
    shortcut:
        ``"A"``: identity, or stride-2 subsampling with zero channel padding where the shape
        changes (no parameters); ``"B"``: a 1x1 convolution + batch norm where it changes.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad_channels = 0
        self.shortcut: nn.Sequential | None = None
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.pad_channels = planes - in_planes
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.residual(x))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The shortcut branch."""
        if self.shortcut is not None:
            return self.shortcut(x)  # type: ignore[no-any-return]
        return option_a(x, self.stride, self.pad_channels)


def option_a(x: torch.Tensor, stride: int, pad_channels: int) -> torch.Tensor:
    """Parameter-free shortcut: subsample by ``stride``, zero-pad channels on both sides."""
    if stride != 1:
        x = x[:, :, ::stride, ::stride]
    if pad_channels:
        half = pad_channels // 2
        x = F.pad(x, (0, 0, 0, 0, half, pad_channels - half))
    return x


class ResNet(nn.Module):
    """Basic-block ResNet for small images: 3x3 stem, stages, global average pool, FC.

    Parameters
    ----------
    blocks:
        Blocks per stage (``(3, 3, 3)`` for ResNet-20, ``(2, 2, 2, 2)`` for ResNet-18).
    widths:
        Channels per stage.
    shortcut:
        ``"A"`` or ``"B"`` (see :class:`BasicBlock`).
    in_channels, num_classes:
        Image channels and output classes.
    """

    def __init__(self, *, blocks: Sequence[int], widths: Sequence[int], shortcut: str,
                 in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        self.stage_names: list[str] = []
        for i, (n, planes) in enumerate(zip(blocks, widths, strict=True)):
            layers = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            self.stage_names.append(f"layer{i + 1}")
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def stages(self) -> list[nn.Sequential]:
        """The stages (``layer1``, ``layer2``, ...) in order."""
        return [getattr(self, n) for n in self.stage_names]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for stage in self.stages():
            x = stage(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)  # type: ignore[no-any-return]


def _lenet5(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return LeNet5(in_channels=in_channels, num_classes=num_classes, image_size=image_size)


def _resnet20(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return ResNet(blocks=(3, 3, 3), widths=(16, 32, 64), shortcut="A",
                  in_channels=in_channels, num_classes=num_classes)


def _resnet18(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return ResNet(blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), shortcut="B",
                  in_channels=in_channels, num_classes=num_classes)


#: Model factories by name: ``(in_channels, num_classes, image_size) -> nn.Module``.
MODELS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "lenet5": _lenet5,
    "resnet20": _resnet20,
    "resnet18": _resnet18,
}


def build_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """Build a fresh (randomly initialised) model by name.

    Parameters
    ----------
    name:
        ``"lenet5"``, ``"resnet20"`` or ``"resnet18"``.
    in_channels, num_classes, image_size:
        Input channels, output classes and image height (= width).

    Raises
    ------
    ModelError
        Unknown name, or an image too small for the model.
    """
    factory = MODELS.get(name.lower())
    if factory is None:
        raise ModelError(f"Unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    if image_size < 8:
        raise ModelError(f"Images must be at least 8x8 pixels, not {image_size!r}")
    return factory(in_channels, num_classes, image_size)
