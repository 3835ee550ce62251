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

* :class:`VGG` -- plain conv(3x3)+BN+ReLU stacks with 2x2 max-pooling and an FC classifier
  (added for the hardening study): ``vgg_small`` (16-M-32-M-64-M, FC 128, for
  FashionMNIST), ``vgg11`` (CIFAR VGG-11, bias-free convolutions, one FC: 9,228,362
  parameters for 10 classes) and ``vgg16`` (CIFAR VGG-16, biased convolutions, FC
  4096-4096: 34,015,396 parameters for 100 classes), the networks of Ahmadilivani et al.
* :class:`AlexNetCifar` -- a CIFAR-size AlexNet (five 3x3 convolutions 64-192-384-256-256,
  three max-pools, FC 4096-4096); 23.3 M parameters for 10 classes (the hardening paper's
  AlexNet has 21.6 M and its exact layout is not published).

Layer names (``conv1``, ``fc1``, ``layer2.0.conv1``...) are the ``named_modules`` names;
the quantized network and the MAC counts reuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import NNMapError

__all__ = ["MODELS", "VGG", "AlexNetCifar", "BasicBlock", "LeNet5", "ModelError", "ResNet",
           "build_model"]


class ModelError(NNMapError):
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


class VGG(nn.Module):
    """VGG-style network: ``features`` (conv 3x3 + BN + ReLU, ``"M"`` = 2x2 max-pool), flatten,
    ``classifier`` (FC + ReLU + dropout per hidden width, then FC to the classes).

    Parameters
    ----------
    cfg:
        Output channels of each convolution, ``"M"`` for a max-pool.
    hidden:
        Widths of the hidden FC layers (empty: one FC from the features to the classes).
    in_channels, num_classes, image_size:
        Input channels, output classes and image height (= width).
    conv_bias:
        Whether the convolutions have a bias (they are followed by batch norm anyway).
    dropout:
        Dropout probability before each hidden FC layer (identity in ``eval()``).
    """

    def __init__(self, *, cfg: Sequence[int | str], hidden: Sequence[int] = (),
                 in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                 conv_bias: bool = False, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c, side = in_channels, image_size
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                side //= 2
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1, bias=conv_bias),
                           nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                c = int(v)
        if side < 1:
            raise ModelError(f"Images of {image_size!r} pixels are too small for {cfg.count('M')} "
                             "max-pools; use larger images")
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = []
        width = c * side * side
        for h in hidden:
            head += [nn.Dropout(dropout), nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        head.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        return self.classifier(x)  # type: ignore[no-any-return]


class AlexNetCifar(nn.Module):
    """AlexNet for small images: five 3x3 convolutions, three 2x2 max-pools, FC 4096-4096.

    Parameters
    ----------
    in_channels, num_classes, image_size:
        Input channels, output classes and image height (= width, at least 16).
    """

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        if image_size < 16:
            raise ModelError(f"AlexNet needs images of at least 16x16 pixels, not {image_size!r}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        side = ((image_size + 1) // 2) // 8
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * side * side, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        return self.classifier(x)  # type: ignore[no-any-return]


def _lenet5(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return LeNet5(in_channels=in_channels, num_classes=num_classes, image_size=image_size)


def _resnet20(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return ResNet(blocks=(3, 3, 3), widths=(16, 32, 64), shortcut="A",
                  in_channels=in_channels, num_classes=num_classes)


def _resnet18(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return ResNet(blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), shortcut="B",
                  in_channels=in_channels, num_classes=num_classes)


_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg_small(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return VGG(cfg=(16, "M", 32, "M", 64, "M"), hidden=(128,), in_channels=in_channels,
               num_classes=num_classes, image_size=image_size, dropout=0.0)


def _vgg11(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return VGG(cfg=_VGG11, in_channels=in_channels, num_classes=num_classes,
               image_size=image_size)


def _vgg16(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return VGG(cfg=_VGG16, hidden=(4096, 4096), in_channels=in_channels,
               num_classes=num_classes, image_size=image_size, conv_bias=True)


def _alexnet(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return AlexNetCifar(in_channels=in_channels, num_classes=num_classes, image_size=image_size)


#: Model factories by name: ``(in_channels, num_classes, image_size) -> nn.Module``.
MODELS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "lenet5": _lenet5,
    "resnet20": _resnet20,
    "resnet18": _resnet18,
    "vgg_small": _vgg_small,
    "vgg11": _vgg11,
    "vgg16": _vgg16,
    "alexnet": _alexnet,
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
