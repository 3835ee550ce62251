"""4-bit QAT: fake quantization and STE, exact integer inference, weight-code overrides."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from nnmap import load_dataset
from nnmap.qat import QATConfig, QATError, QATNet, build_qat, fake_quant

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_dataset("fashion-mnist-subset").train.tensors[0][:96]


def _calibrated(name: str, x: torch.Tensor, seed: int = 0, **kw: int) -> QATNet:
    """A fresh network whose activation ranges have seen ``x`` once (train-mode forward)."""
    torch.manual_seed(seed)
    c, h = x.shape[1], x.shape[2]
    net = build_qat(name, c, 10, h, QATConfig(**kw))
    net.train()
    with torch.no_grad():
        net(x)
    return net.eval()


class _Recorder:
    def __init__(self) -> None:
        self.codes: dict[str, torch.Tensor] = {}

    def update(self, name: str, q: torch.Tensor) -> None:
        self.codes[name] = q.clone()


def test_bit_widths_are_checked_in_one_line() -> None:
    with pytest.raises(QATError, match=r"^Unsupported weight bit width 1; choose an integer "
                                       r"from 2 to 8 bits$"):
        QATConfig(weight_bits=1)
    with pytest.raises(QATError, match="Unsupported activation bit width 12"):
        QATConfig(act_bits=12)
    with pytest.raises(QATError, match="Unsupported input bit width 4.5"):
        QATConfig(input_bits=4.5)  # type: ignore[arg-type]
    cfg = QATConfig(weight_bits=3, act_bits=5)
    assert QATConfig.from_json(cfg.to_json()) == cfg and cfg.weight_qmax == 3
    with pytest.raises(QATError, match="Cannot run a Sequential"):
        QATNet(nn.Sequential(nn.Linear(2, 2)))


def test_fake_quant_values_and_clipped_ste() -> None:
    x = torch.tensor([-2.0, -0.74, -0.26, 0.0, 0.24, 0.76, 1.2], requires_grad=True)
    y = fake_quant(x, 0.5, -1, 2)
    assert y.tolist() == [-0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad is not None
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # 0 outside [-0.5, 1.0]
    x2 = torch.tensor([1.5], requires_grad=True)
    fake_quant(x2, 0.5, -1, 2).sum().backward()
    assert x2.grad is not None and x2.grad.item() == 0.0


def test_weight_codes_are_4_bit_and_match_the_fake_quantized_weights(
        images: torch.Tensor) -> None:
    net = _calibrated("lenet5", images)
    codes = net.weight_codes()
    assert list(codes) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    net.train()
    with torch.no_grad(), net.frozen_statistics():
        net(images[:4])
    for name, q in codes.items():
        assert q.dtype == torch.int8 and int(q.abs().max()) == 7  # max|w| maps to code 7
        np.testing.assert_allclose(net.qweights[name].numpy(),
                                   (q.float() * net.weight_scale(name)).numpy(), rtol=1e-6)


def _conv_int64(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))  # n c ho wo kh kw
    return np.einsum("nchwij,ocij->nohw", win, w)


def _requant(acc: np.ndarray, bias: np.ndarray, unit: float) -> np.ndarray:
    """``(acc + bias) * unit`` with the float32 operations of the integer path."""
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    return (acc.astype(np.float32) + bias.astype(np.float32).reshape(shape)) * np.float32(unit)


def _relu_codes(y: np.ndarray, scale: float, qmax: int) -> np.ndarray:
    return np.clip(np.round(y * np.float32(1.0 / scale)), 0, qmax)


def test_integer_inference_is_exact(images: torch.Tensor) -> None:
    """Every activation code and the logits equal an independent int64 LeNet-5."""
    net = _calibrated("lenet5", images)
    rec = _Recorder()
    net.meter = rec
    x = images[:32]
    with torch.no_grad():
        logits = net(x).numpy()
    net.meter = None
    codes = {n: c.numpy().astype(np.int64) for n, c in net.weight_codes().items()}
    scale = {p: net._q(p).scale for p in ("input", "conv1", "conv2", "fc1", "fc2")}
    m = net.model
    q = np.clip(np.round(x.numpy() / np.float32(scale["input"])), -127, 127).astype(np.int64)
    prev = "input"
    h = q
    for name, mod in (("conv1", m.conv1), ("conv2", m.conv2)):
        unit = scale[prev] * net.weight_scale(name)
        acc = _conv_int64(h, codes[name], mod.padding[0])  # type: ignore[index]
        bias = np.round(mod.bias.detach().double().numpy() / unit)  # type: ignore[union-attr]
        c = _relu_codes(_requant(acc, bias, unit), scale[name], 15)
        np.testing.assert_array_equal(c, rec.codes[name].numpy(), err_msg=name)
        h = c.reshape(c.shape[0], c.shape[1], c.shape[2] // 2, 2, c.shape[3] // 2, 2).max(
            axis=(3, 5)).astype(np.int64)
        prev = name
    h = h.reshape(len(h), -1)
    for name, mod in (("fc1", m.fc1), ("fc2", m.fc2), ("fc3", m.fc3)):
        unit = scale[prev] * net.weight_scale(name)
        acc = h @ codes[name].T
        assert acc.dtype == np.int64
        y = _requant(acc, np.round(mod.bias.detach().double().numpy() / unit), unit)
        if name == "fc3":
            np.testing.assert_array_equal(y, logits)
        else:
            h = _relu_codes(y, scale[name], 15).astype(np.int64)
            np.testing.assert_array_equal(h, rec.codes[name].numpy(), err_msg=name)
            prev = name
    assert all(0 <= int(c.min()) and int(c.max()) <= 15 for c in rec.codes.values())


def test_float_training_path_agrees_with_integer_path(images: torch.Tensor) -> None:
    """The STE (float) formulation computes the same network up to float rounding."""
    net = _calibrated("lenet5", images)
    x = images[32:96]
    with torch.no_grad():
        integer = net(x)
        with net.perturbed({}):  # float path, nothing updated
            floating = net(x)
    assert (integer.argmax(1) == floating.argmax(1)).float().mean() >= 0.97
    assert float((integer - floating).abs().mean()) < 0.05 * float(integer.abs().mean())


def test_override_weights_feeds_the_integer_path(images: torch.Tensor) -> None:
    net = _calibrated("lenet5", images)
    x = images[:16]
    codes = net.weight_codes()
    with torch.no_grad():
        clean = net(x)
        with net.override_weights(codes):
            same = net(x)
        broken = dict(codes, fc3=torch.zeros_like(codes["fc3"]))
        with net.override_weights(broken):
            zeroed = net(x)
        after = net(x)
    assert torch.equal(clean, same) and torch.equal(clean, after)
    bias = net.model.fc3.bias.detach()  # type: ignore[union-attr]
    np.testing.assert_allclose(zeroed.numpy(), np.broadcast_to(zeroed[0].numpy(), zeroed.shape))
    assert torch.allclose(zeroed[0], bias, atol=0.02)  # only the (quantized) bias is left
    with pytest.raises(QATError, match=r"leave the 4-bit range \[-8, 7\]"):
        with net.override_weights(dict(codes, fc3=codes["fc3"] * 0 + 8)):
            pass
    with pytest.raises(QATError, match="have shape"):
        with net.override_weights({"fc3": codes["fc2"]}):
            pass
    with pytest.raises(QATError, match="No MAC layer 'fc9'"):
        with net.override_weights({"fc9": codes["fc3"]}):
            pass
    with net.override_weights(dict(codes, conv1=codes["conv1"] * 0 - 8)):  # -8 is storable
        pass


def test_activation_ranges_follow_the_moving_average(images: torch.Tensor) -> None:
    torch.manual_seed(1)
    net = build_qat("lenet5", 1, 10, 28, QATConfig(ema_decay=0.5))
    net.train()
    with torch.no_grad():
        net(images[:32])
        first = float(net._q("input").running_max)
        assert first == pytest.approx(float(images[:32].abs().max()))
        net(images[32:64] * 3)
    second = float(net._q("input").running_max)
    assert second == pytest.approx(0.5 * first + 0.5 * float((images[32:64] * 3).abs().max()),
                                   rel=1e-5)
    net.eval()
    with torch.no_grad():
        net(images[:8] * 10)  # eval never moves the ranges
    assert float(net._q("input").running_max) == second


def test_resnet20_runs_with_batch_norm_in_both_paths() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    net = build_qat("resnet20", 3, 10, 32)
    assert len(net.sparsity_points) == 1 + 9 * 2
    assert "layer2.0.conv1" in net.mac_names and "fc" in net.mac_names
    net.train()
    out = net(x)
    out.sum().backward()
    assert net.model.conv1.weight.grad is not None
    net.eval()
    with torch.no_grad():
        integer = net(x)
        with net.perturbed({}):
            floating = net(x)
    assert integer.shape == (8, 10)
    assert float((integer - floating).abs().max()) < 0.1 * float(integer.abs().max()) + 1e-3
