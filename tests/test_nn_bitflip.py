"""Parameter bit flips: exact bit arithmetic, flip counts per layer, fault space, restore,
INT8 storage, and the BER errors."""

from __future__ import annotations

import struct

import pytest
import torch
from torch import nn

from nnmap import QuantConfig, build_model, load_dataset, quantize
from nnmap.bitflip import (
    FaultError,
    Int8Image,
    check_ber,
    draw_positions,
    fault_space,
    flip_count,
    flip_float32,
    flip_int8,
    flip_qnet,
    inject,
)
from nnmap.harden import HardenConfig, harden, profile_intervals

torch.set_num_threads(1)


def _bits(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


def test_float32_flips_are_ieee754_bit_flips() -> None:
    t = torch.tensor([1.0, -2.5, 0.15625, 3.0])
    flip_float32(t, torch.tensor([31, 32 + 30, 64 + 0, 96 + 22, 96 + 23]))
    assert t[0].item() == -1.0                                      # sign bit
    assert _bits(t[1].item()) == _bits(-2.5) ^ (1 << 30)            # exponent MSB
    assert 0 < abs(t[1].item()) < 1e-38  # -2.5 has exponent bit 30 set: clearing it -> tiny
    assert _bits(t[2].item()) == _bits(0.15625) ^ 1                 # mantissa LSB
    assert _bits(t[3].item()) == _bits(3.0) ^ ((1 << 22) | (1 << 23))  # two bits, one word
    nan = torch.tensor([1.5])
    flip_float32(nan, torch.tensor([30]))  # 1.5 = 0x3FC00000 -> 0x7FC00000 is NaN
    assert torch.isnan(nan).all()


def test_int8_flips_are_twos_complement_bit_flips() -> None:
    q = torch.tensor([5, -1, 127, 0], dtype=torch.int8)
    flip_int8(q, torch.tensor([0, 8 + 7, 16 + 7, 24 + 7]))
    assert q.tolist() == [4, 127, -1, -128]


def test_flip_counts_are_ber_times_bits() -> None:
    assert flip_count(0.01, 3200, rounding="nearest") == 32
    assert flip_count(0.01, 3200) == 32          # integral BER x bits: exact
    assert flip_count(1e-7, 4992, rounding="nearest") == 0
    gen = torch.Generator().manual_seed(0)
    draws = [flip_count(1e-4, 4992, gen) for _ in range(4000)]  # expectation 0.4992
    assert set(draws) <= {0, 1}
    assert abs(sum(draws) / len(draws) - 0.4992) < 0.03
    assert flip_count(1.0, 77) == 77


def test_positions_are_distinct_and_uniform() -> None:
    gen = torch.Generator().manual_seed(1)
    for n, k in ((1000, 10), (1000, 600), (64, 64), (50, 0)):
        p = draw_positions(n, k, gen)
        assert len(p) == k and len(torch.unique(p)) == k and (p >= 0).all() and (p < n).all()
    hits = torch.zeros(10)
    for _ in range(2000):
        hits[draw_positions(10, 3, gen)] += 1
    assert hits.min() > 500 and hits.max() < 700  # 600 expected each


def test_fault_space_covers_conv_fc_bn_and_edac() -> None:
    model = build_model("vgg_small", 1, 10, 28).eval()
    names = {layer.name for layer in fault_space(model)}
    assert {"features.0", "features.1", "classifier.1", "classifier.3"} <= names
    assert "features.2" not in names  # ReLU: nothing stored
    bn = next(layer for layer in fault_space(model) if layer.name == "features.1")
    assert [a for a, _ in bn.tensors] == ["weight", "bias", "running_mean", "running_var"]
    x = torch.randn(32, 1, 28, 28)
    hard = harden(model, profile_intervals(model, x), HardenConfig.intervals_only())
    edac = [layer for layer in fault_space(hard) if layer.name.endswith("guard")]
    assert len(edac) == 5 and all([a for a, _ in e.tensors] == ["lo", "hi"] for e in edac)


def test_inject_flips_ber_times_bits_per_layer_and_restores() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ber = 1e-3
    with inject(model, ber, generator=torch.Generator().manual_seed(3),
                rounding="nearest") as report:
        for layer in fault_space(model):
            bits = layer.bits()
            assert report.flips.get(layer.name, 0) == int(ber * bits + 0.5), layer.name
            # every flip changed one bit: count differing bits of the layer's words
            changed = 0
            for attr, t in layer.tensors:
                old = before[f"{layer.name}.{attr}"].view(torch.int32)
                diff = (t.detach().view(torch.int32) ^ old).view(-1)
                changed += sum(bin(int(v) & 0xFFFFFFFF).count("1") for v in diff[diff != 0])
            assert changed == report.flips.get(layer.name, 0)
    for k, v in model.state_dict().items():
        assert torch.equal(v.view(torch.int32) if v.is_floating_point() else v,
                           before[k].view(torch.int32) if v.is_floating_point() else before[k])
    with inject(model, ber, generator=torch.Generator().manual_seed(3)) as a:
        first = model.conv1.weight.clone()
    with inject(model, ber, generator=torch.Generator().manual_seed(3)) as b:
        assert torch.equal(model.conv1.weight, first)  # same seed, same faults
    assert a.flips == b.flips


@pytest.mark.parametrize("ber", [0.0, -1e-3, 1.5, float("nan")])
def test_ber_outside_0_1_is_a_one_line_error(ber: float) -> None:
    model = build_model("lenet5", 1, 10, 28)
    with pytest.raises(FaultError, match=r"BER must be in \(0, 1\]"):
        with inject(model, ber):
            pass
    with pytest.raises(FaultError, match="BER must be"):
        check_ber(ber)


def test_int8_image_stores_codes_and_flips_them() -> None:
    torch.manual_seed(0)
    model = build_model("vgg_small", 1, 10, 28).eval()
    image = Int8Image(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in image.model.modules())  # folded
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(image.model(x), model(x), rtol=0.1, atol=0.05)
    n_bits = image.bits()
    assert n_bits == 8 * sum(layer.numel() for layer in fault_space(image.model))
    snapshot = {k: v.clone() for k, v in image.model.state_dict().items()}
    with inject(image.model, 0.01, dtype="int8", int8=image,
                generator=torch.Generator().manual_seed(0)) as report:
        assert report.total == pytest.approx(0.01 * n_bits, rel=0.05)
        changed = sum(int((v != snapshot[k]).sum()) for k, v in image.model.state_dict().items())
        assert 0 < changed <= report.total
        # values stay on the int8 grid: at most 255 steps of their scale away
        w = image.model.features[0].weight
        assert w.abs().max() <= 128 / 127 * snapshot["features.0.weight"].abs().amax() + 1e-6
    for k, v in image.model.state_dict().items():
        assert torch.equal(v, snapshot[k])
    with pytest.raises(FaultError, match="int8=Int8Image"):
        with inject(model, 0.01, dtype="int8"):
            pass


def test_flip_qnet_reuses_the_integer_network() -> None:
    data = load_dataset("fashion-mnist-subset")
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28).eval()
    qnet = quantize(model, QuantConfig(calib_batches=1), data.train)
    weights = {n: layer.weight.clone() for n, layer in qnet.layers.items()}
    originals = flip_qnet(qnet, 0.01, generator=torch.Generator().manual_seed(0),
                          rounding="nearest")
    for name, layer in qnet.layers.items():
        diff = (layer.weight.view(torch.uint8) ^ weights[name].view(torch.uint8)).view(-1)
        flipped = sum(bin(int(v)).count("1") for v in diff[diff != 0])
        assert flipped == int(0.01 * weights[name].numel() * 8 + 0.5)
        if name in originals:
            assert torch.equal(originals[name], weights[name])
