"""INT8 quantization: integer exactness, BN folding, requantization, accuracy vs float."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnmap import (
    MacLayer,
    QuantConfig,
    QuantError,
    TrainConfig,
    build_model,
    evaluate,
    load_dataset,
    quant_report,
    quantize,
    table_iv,
    train,
)
from nnmap.quant import _fixed_point, _round_shift, fold_batchnorm

torch.set_num_threads(1)


def _conv_reference(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Explicit int64 loops: the accumulator as the hardware forms it."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, ho, wo), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            patch = xp[:, :, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]
            for ci in range(c):
                for ky in range(kh):
                    for kx in range(kw):
                        out[:, :, oy, ox] += (patch[:, ci, ky, kx][:, None]
                                              * w[:, ci, ky, kx].astype(np.int64)[None, :])
    return out


def _layer(kind: str, w: torch.Tensor, shape: tuple[int, ...], stride: int = 1,
           pad: int = 0) -> MacLayer:
    o = w.shape[0]
    return MacLayer("t", kind, w, torch.ones(o, dtype=torch.float64),
                    torch.zeros(o, dtype=torch.float64), 1.0, shape, stride, pad)


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_conv_accumulator_is_exact(stride: int, pad: int) -> None:
    g = torch.Generator().manual_seed(stride * 10 + pad)
    x = torch.randint(-128, 128, (3, 5, 9, 9), generator=g).to(torch.int8)
    w = torch.randint(-128, 128, (4, 5, 3, 3), generator=g).to(torch.int8)
    acc = _layer("conv", w, (5, 9, 9), stride, pad).accumulate(x)
    ref = _conv_reference(x.numpy(), w.numpy(), stride, pad)
    assert acc.dtype == torch.float64
    np.testing.assert_array_equal(acc.numpy().astype(np.int64), ref)


def test_worst_case_sums_are_exact_beyond_float32() -> None:
    """K = 4608 products of (-128) * (-128) = 75.5 M > 2**24: chunking keeps it exact."""
    x = torch.full((2, 512, 3, 3), -128, dtype=torch.int8)
    x[1, :, 1, 1] = 127
    w = torch.full((3, 512, 3, 3), -128, dtype=torch.int8)
    w[2, 7, 0, 0] = 1
    acc = _layer("conv", w, (512, 3, 3), 1, 0).accumulate(x)
    ref = _conv_reference(x.numpy(), w.numpy(), 1, 0)
    np.testing.assert_array_equal(acc.numpy().astype(np.int64), ref)
    assert ref.max() > 2**24
    xl = torch.randint(-128, 128, (4, 3000), generator=torch.Generator().manual_seed(1))
    wl = torch.randint(-128, 128, (5, 3000), generator=torch.Generator().manual_seed(2))
    lin = _layer("linear", wl.to(torch.int8), (3000,)).accumulate(xl.to(torch.int8))
    np.testing.assert_array_equal(lin.numpy().astype(np.int64),
                                  xl.numpy().astype(np.int64) @ wl.numpy().astype(np.int64).T)


def test_macs_of_lenet5() -> None:
    q = quantize(build_model("lenet5", 1, 10, 28), QuantConfig(calib_batches=1),
                 [(torch.randn(4, 1, 28, 28), None)])
    assert q.macs() == {"conv1": 117600, "conv2": 240000, "fc1": 48000, "fc2": 10080,
                        "fc3": 840}


def test_fixed_point_requantization_rounds_half_up() -> None:
    (m,), shift = _fixed_point([torch.tensor([0.3, 0.001, 1.7], dtype=torch.float64)])
    assert (m < 2**20).all() and shift >= 1
    v = torch.tensor([[1000.0, -77777.0, 3.0]], dtype=torch.float64)
    got = _round_shift(v * m, shift)
    exact = np.floor(v.numpy() * m.numpy() / 2.0**shift + 0.5)
    np.testing.assert_array_equal(got.numpy(), exact)
    assert np.allclose(got.numpy(), np.floor(v.numpy() * [0.3, 0.001, 1.7] + 0.5), atol=1)


def test_batchnorm_folding() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    bn = nn.BatchNorm2d(4)
    assert bn.running_mean is not None and bn.running_var is not None
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 3, 6, 6)
    w, b = fold_batchnorm(conv, bn)
    folded = F.conv2d(x.double(), w, b, padding=1)
    torch.testing.assert_close(folded, bn(conv(x)).double(), rtol=1e-5, atol=1e-5)


def test_config_round_trip_and_errors() -> None:
    cfg = QuantConfig(weights="per-tensor", activations="percentile", percentile=99.9,
                      weight_port="b")
    assert QuantConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(QuantError, match="^weight_port must be 'a' or 'b', not 'c'$"):
        QuantConfig(weight_port="c")
    with pytest.raises(QuantError, match="weights must be 'per-channel' or 'per-tensor'"):
        QuantConfig(weights="per-row")
    with pytest.raises(QuantError, match="Cannot quantize a Sequential"):
        quantize(nn.Sequential(nn.Linear(2, 2)), None, [(torch.randn(1, 2), None)])
    with pytest.raises(QuantError, match="needs calibration data"):
        quantize(build_model("lenet5", 1, 10, 28))


def _warm_bn(model: nn.Module, shape: tuple[int, ...]) -> None:
    """Give batch-norm layers non-trivial running statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(*shape) * 2 + 0.5)
    model.eval()


@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_resnets_quantize_close_to_float(name: str) -> None:
    torch.manual_seed(0)
    size = 32 if name == "resnet20" else 16
    model = build_model(name, 3, 10, size)
    _warm_bn(model, (16, 3, size, size))
    x = torch.randn(16, 3, size, size)
    seen: list[str] = []
    q = quantize(model, QuantConfig(calib_batches=2), [(x[:8], None), (x[8:], None)])
    logits = q(x, hook=lambda layer, xq, acc: seen.append(layer.name))
    with torch.no_grad():
        ref = model(x).double()
    rel = float((logits - ref).norm() / ref.norm())
    assert rel < 0.1, rel
    n_conv = 19 if name == "resnet20" else 20
    assert len(q.layers) == n_conv + 1 and seen == list(q.layers)
    assert all(layer.weight.dtype == torch.int8 for layer in q.layers.values())
    if name == "resnet20":
        assert 40_000_000 < sum(q.macs().values()) < 42_000_000  # ~41 M MACs per image


def test_hook_sees_int8_input_and_exact_accumulator() -> None:
    torch.manual_seed(1)
    model = build_model("lenet5", 1, 10, 28)
    x = torch.randn(4, 1, 28, 28)
    q = quantize(model, QuantConfig(weight_port="b"), [(x, None)])

    def hook(layer: MacLayer, xq: torch.Tensor, acc: torch.Tensor) -> None:
        assert xq.dtype == torch.int8 and layer.weight_port == "b"
        assert torch.equal(acc, layer.accumulate(xq))
        if layer.name != "conv1":
            assert int(xq.min()) >= 0  # ReLU outputs are 0..127
    q(x, hook)


@pytest.fixture(scope="module")
def trained_lenet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data = load_dataset("fashion-mnist-subset")
    cfg = TrainConfig(model="lenet5", dataset="fashion-mnist-subset", epochs=3, batch_size=64)
    result = train(cfg, data, cache=tmp_path_factory.mktemp("cache"), progress=False)
    return result.model, data


@pytest.mark.parametrize("cfg", [QuantConfig(), QuantConfig(weights="per-tensor"),
                                 QuantConfig(activations="percentile", percentile=99.99)])
def test_int8_lenet_matches_float(trained_lenet, cfg: QuantConfig) -> None:  # type: ignore[no-untyped-def]
    model, data = trained_lenet
    q = quantize(model, cfg, data.train)
    x = data.test.tensors[0][:500]
    with torch.no_grad():
        logits, ref = q(x), model(x).double()
    assert float((logits - ref).norm() / ref.norm()) < 0.05
    assert float((logits.argmax(1) == ref.argmax(1)).double().mean()) > 0.97
    float_acc = evaluate(model, data.test)
    int8_acc = evaluate(q, data.test)
    assert float_acc > 0.75
    assert abs(float_acc - int8_acc) <= 0.01
    assert q.accuracy(data.test) == int8_acc


def test_table_iv(trained_lenet) -> None:  # type: ignore[no-untyped-def]
    model, data = trained_lenet
    q = quantize(model, QuantConfig(), data.train)
    row = quant_report(model, q, data.test, model_name="LeNet-5", dataset="FashionMNIST")
    assert row.drop == pytest.approx(row.float_accuracy - row.int8_accuracy)
    text = table_iv([row])
    assert text.splitlines()[0] == ("| Trained model | Accuracy | Accuracy after INT8 "
                                    "quantization |")
    assert f"| LeNet-5 + FashionMNIST | {100 * row.float_accuracy:.2f}% |" in text
