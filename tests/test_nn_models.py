"""The three networks: shapes, layer counts, factory errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnmap import ModelError, build_model
from nnmap.models import LeNet5

torch.set_num_threads(1)


def _count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize(("name", "channels", "size"), [
    ("lenet5", 1, 28), ("lenet5", 3, 32), ("resnet20", 3, 32), ("resnet20", 1, 28),
    ("resnet18", 3, 32),
])
def test_output_shape(name: str, channels: int, size: int) -> None:
    model = build_model(name, channels, 10, size)
    assert model(torch.randn(2, channels, size, size)).shape == (2, 10)


def test_lenet5_matches_the_paper() -> None:
    for channels, size in ((1, 28), (3, 32)):
        m = build_model("lenet5", channels, 10, size)
        assert isinstance(m, LeNet5)
        assert _count(m, nn.Conv2d) == 2 and _count(m, nn.Linear) == 3
        assert m.fc1.in_features == 16 * 5 * 5  # 28x28 is padded to the 32x32 geometry
        assert [m.conv1.out_channels, m.conv2.out_channels] == [6, 16]
        assert [m.fc1.out_features, m.fc2.out_features] == [120, 84]


def test_resnet20_has_19_convolutions_and_one_fc() -> None:
    m = build_model("resnet20", 3, 10, 32)
    assert _count(m, nn.Conv2d) == 19 and _count(m, nn.Linear) == 1
    assert _count(m, nn.BatchNorm2d) == 19
    widths = sorted({c.out_channels for c in m.modules() if isinstance(c, nn.Conv2d)})
    assert widths == [16, 32, 64]
    assert 269_000 < sum(p.numel() for p in m.parameters()) < 271_000  # He et al.: 0.27 M


def test_resnet18_cifar_variant() -> None:
    m = build_model("resnet18", 3, 10, 32)
    assert isinstance(m.conv1, nn.Conv2d)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert _count(m, nn.MaxPool2d) == 0
    assert _count(m, nn.Conv2d) == 20  # stem + 16 in blocks + 3 projection shortcuts
    assert 11_000_000 < sum(p.numel() for p in m.parameters()) < 11_300_000


def test_factory_errors() -> None:
    with pytest.raises(ModelError, match=r"^Unknown model 'vgg'; choose one of alexnet, lenet5, "
                                         r"resnet18, resnet20, vgg11, vgg16, vgg_small$"):
        build_model("vgg", 3, 10, 32)
    with pytest.raises(ModelError, match="at least"):
        build_model("lenet5", 1, 10, 10)
