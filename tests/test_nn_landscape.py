"""Loss landscapes: filter normalization, BN/bias excluded, slices, sharpness, correlation."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from nnmap import load_dataset
from nnmap.landscape import (
    LandscapeConfig,
    LandscapeError,
    correlation,
    fault_direction,
    loss_at,
    plot_slices_1d,
    plot_surface_2d,
    quantized_weights,
    random_direction,
    sharpness,
    slice_1d,
    slice_2d,
)
from nnmap.qat import QATNet, build_qat
from nnmap.sram_faults import WeightLayout

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data() -> TensorDataset:
    d = load_dataset("fashion-mnist-subset")
    x, y = d.train.tensors
    return TensorDataset(x[:200], y[:200])


def _net(name: str, x: torch.Tensor, seed: int = 0) -> QATNet:
    torch.manual_seed(seed)
    net = build_qat(name, x.shape[1], 10, x.shape[2])
    net.train()
    with torch.no_grad():
        net(x)
    return net.eval()


def test_filter_normalization_matches_the_quantized_filters(data: TensorDataset) -> None:
    net = _net("lenet5", data.tensors[0])
    theta = quantized_weights(net)
    d = random_direction(net, seed=4)
    assert list(d) == net.mac_names  # weights only: biases have no direction
    for name, t in d.items():
        dn = t.reshape(len(t), -1).norm(dim=1)
        wn = theta[name].reshape(len(t), -1).norm(dim=1)
        np.testing.assert_allclose(dn.numpy(), wn.numpy(), rtol=1e-5)
    raw = random_direction(net, seed=4, normalize=False)
    assert not np.allclose(raw["fc1"].reshape(120, -1).norm(dim=1).numpy(),
                           theta["fc1"].reshape(120, -1).norm(dim=1).numpy(), rtol=1e-2)
    other = _net("lenet5", data.tensors[0], seed=1)
    raw_other = random_direction(other, seed=4, normalize=False)
    assert all(torch.equal(raw[k], raw_other[k]) for k in raw)  # same draws for every model


def test_resnet_directions_exclude_batch_norm_and_change_nothing() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    y = torch.randint(0, 10, (8,))
    net = _net("resnet20", x)
    before = copy.deepcopy(net.state_dict())
    d = random_direction(net, seed=0)
    assert set(d) == set(net.mac_names)
    assert not any("bn" in k for k in d)
    losses, accs = slice_1d(net, d, [-0.5, 0.0, 0.5], TensorDataset(x, y), batch_size=4)
    assert losses.shape == (3,) and np.all(np.isfinite(losses))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed while evaluating the landscape"


@pytest.mark.slow
def test_slices_and_sharpness(data: TensorDataset, tmp_path: Path) -> None:
    net = _net("lenet5", data.tensors[0])
    base, _ = loss_at(net, {}, data)
    d1, d2 = random_direction(net, 0), random_direction(net, 1)
    losses, _ = slice_1d(net, d1, [-0.5, 0.0, 0.5], data)
    assert losses[1] == pytest.approx(base, rel=1e-6)
    grid = slice_2d(net, d1, d2, [-0.5, 0.0, 0.5], data)
    assert grid.shape == (3, 3) and grid[1, 1] == pytest.approx(base, rel=1e-6)
    assert grid[1, 0] == pytest.approx(losses[0], rel=1e-5)  # row b = 0, column a = -0.5
    sh = sharpness(net, data, radius=0.5, directions=2, seed=0)
    manual = []
    for k in range(2):
        dk = random_direction(net, k)
        for sign in (1, -1):
            manual.append(loss_at(net, {n: sign * 0.5 * t for n, t in dk.items()}, data)[0]
                          - base)
    assert sh.mean == pytest.approx(float(np.mean(manual)), rel=1e-5)
    assert sh.low <= sh.mean <= sh.high and len(sh.increases) == 4
    plot_slices_1d({"a": ([-0.5, 0, 0.5], losses.tolist())}, tmp_path / "s.png", title="t",
                   xlabel="x")
    plot_surface_2d({"a": grid, "b": grid + 1}, [-0.5, 0, 0.5], tmp_path / "c.png",
                    tmp_path / "s3.png", title="t")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("s.png", "c.png", "s3.png"))


def test_fault_direction_is_the_faulty_weight_change(data: TensorDataset) -> None:
    net = _net("lenet5", data.tensors[0])
    layout = WeightLayout.from_net(net)
    delta = fault_direction(net, layout, "sa1", 0.01, seed=3)
    theta = quantized_weights(net)
    nonzero = sum(int((t != 0).sum()) for t in delta.values())
    assert 0 < nonzero <= 0.04 * layout.n_weights
    for name, t in delta.items():
        steps = (theta[name] + t) / net.weight_scale(name)
        assert torch.allclose(steps, steps.round(), atol=1e-4)  # faulty weights on the grid
    faulty_loss, _ = loss_at(net, delta, data)
    assert np.isfinite(faulty_loss)


def test_correlation_and_config() -> None:
    c = correlation([1, 2, 3, 4], [2, 4, 6, 8])
    assert c.pearson == pytest.approx(1) and c.spearman == pytest.approx(1)
    assert c.p_value == pytest.approx(2 / 24)  # identity and reversal reach |r| = 1
    assert correlation([1, 2, 3, 4], [4, 3, 2, 1]).pearson == pytest.approx(-1)
    with pytest.raises(LandscapeError, match="equal length >= 3"):
        correlation([1, 2], [1, 2])
    cfg = LandscapeConfig(points_2d=5, fault_kinds=("flip",))
    assert LandscapeConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(LandscapeError, match="radius must be positive"):
        LandscapeConfig(radius=0)
