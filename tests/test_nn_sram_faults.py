"""SRAM weight faults: the documented word mapping, fault statistics, stuck-at masking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nnmap import binomial_ci, chi2_sf, load_dataset
from nnmap.qat import build_qat
from nnmap.sram_faults import (
    FAULT_KINDS,
    SramFaultError,
    SramGeometry,
    SramLayoutError,
    WeightLayout,
    bench_fault_trial,
    check_rate,
    fault_seed,
    run_fault_trial,
    sample_faults,
)

torch.set_num_threads(1)

LENET = {"conv1": (6, 1, 5, 5), "conv2": (16, 6, 5, 5), "fc1": (120, 400), "fc2": (84, 120),
         "fc3": (10, 84)}


@pytest.fixture(scope="module")
def layout() -> WeightLayout:
    return WeightLayout(LENET, 4, SramGeometry.fit(LENET, 4))


@pytest.fixture(scope="module")
def flat(layout: WeightLayout) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(-7, 8, layout.n_weights).astype(np.int8)


def test_mapping_of_weights_into_words() -> None:
    lay = WeightLayout({"a": (3, 2), "b": (5,)}, 4, SramGeometry(width=8, depth=4, banks=2))
    assert lay.slots == 2 and lay.n_words == 6 and lay.n_bits == 44
    assert [(s.first_word, s.words) for s in lay.spans] == [(0, 3), (3, 3)]
    codes = {"a": torch.tensor([[1, -1], [7, -7], [0, -8]], dtype=torch.int8),
             "b": torch.tensor([3, -2, 5, 4, -1], dtype=torch.int8)}
    words = lay.pack(codes)
    # slot 0 in the low nibble, two's complement: -1 = 0xF, -7 = 0x9, -8 = 0x8
    assert words.shape == (2, 4)
    assert words.reshape(-1).tolist() == [0xF1, 0x97, 0x80, 0xE3, 0x45, 0x0F, 0, 0]
    back = lay.unpack(words)
    assert all(torch.equal(back[k], codes[k]) for k in codes)
    bank, addr = lay.address(np.array([0, 3, 5]))
    assert bank.tolist() == [0, 0, 1] and addr.tolist() == [0, 3, 1]
    assert "| b | 5 | 5 | 3 | 3 |" in lay.markdown()


def test_fitted_geometry_holds_lenet_in_one_bank(layout: WeightLayout) -> None:
    g = layout.geometry
    assert (g.width, g.depth, g.banks) == (64, 4096, 1)
    assert layout.n_weights == 61470 and layout.n_words == 3843
    big = SramGeometry.fit({"w": (11_000_000,)}, 4)
    assert big.depth == 65536 and big.banks == 11
    assert SramGeometry.parse("8x256x3") == SramGeometry(8, 256, 3)


def test_layout_errors_are_one_line() -> None:
    with pytest.raises(SramLayoutError, match=r"^The model needs 30735 words of 8 bits \(61470 "
                                              r"4-bit weights\), but the SRAM 8x256 holds 256; "):
        WeightLayout(LENET, 4, SramGeometry(8, 256))
    with pytest.raises(SramLayoutError, match="6-bit weights do not fit 4-bit SRAM words"):
        WeightLayout(LENET, 6, SramGeometry(4, 256))
    with pytest.raises(SramLayoutError, match="must look like WIDTHxDEPTH"):
        SramGeometry.parse("64by4096")
    with pytest.raises(SramLayoutError, match="SRAM width must be an integer from 1 to 64"):
        SramGeometry(width=128)
    lay = WeightLayout({"a": (4,)}, 4, SramGeometry(8, 4))
    with pytest.raises(SramLayoutError, match=r"Weight layers \['x'\] do not match"):
        lay.flatten({"x": torch.zeros(4, dtype=torch.int8)})
    with pytest.raises(SramLayoutError, match="has weights of shape"):
        lay.flatten({"a": torch.zeros(5, dtype=torch.int8)})
    with pytest.raises(SramLayoutError, match="do not match the SRAM 8x4"):
        lay.unpack(np.zeros((2, 4), dtype=np.uint64))


@pytest.mark.parametrize("rate", [-0.01, 1.5, float("nan"), "lots"])
def test_fault_rate_outside_unit_interval_is_rejected(rate: object) -> None:
    with pytest.raises(SramFaultError, match="Fault rate must be"):
        check_rate(rate)


def test_observed_fault_rate_and_uniformity(layout: WeightLayout) -> None:
    """Faulty cells: rate within the exact CI, uniform over bit positions and layers."""
    rate, trials = 0.01, 20
    total = 0
    per_bit = np.zeros(4)
    per_layer = np.zeros(len(layout.spans))
    bounds = np.array([s.first_weight for s in layout.spans[1:]])
    for t in range(trials):
        fmap = sample_faults(layout, "flip", rate, fault_seed(7, "flip", rate, t))
        assert np.all(np.diff(fmap.positions) > 0), "distinct cells"
        total += fmap.n_faults
        widx, bit = np.divmod(fmap.positions, 4)
        per_bit += np.bincount(bit, minlength=4)
        per_layer += np.bincount(np.searchsorted(bounds, widx, side="right"),
                                 minlength=len(layout.spans))
    lo, hi = binomial_ci(total, trials * layout.n_bits, 0.999)
    assert lo <= rate <= hi, (total, lo, hi)
    expect_bit = np.full(4, total / 4)
    assert chi2_sf(float(((per_bit - expect_bit) ** 2 / expect_bit).sum()), 3) > 1e-3
    share = np.array([s.count for s in layout.spans]) / layout.n_weights
    expect = share * total
    assert chi2_sf(float(((per_layer - expect) ** 2 / expect).sum()), len(share) - 1) > 1e-3


def test_stuck_at_faults_are_masked_and_flips_invert(layout: WeightLayout,
                                                     flat: np.ndarray) -> None:
    for kind in FAULT_KINDS:
        fmap = sample_faults(layout, kind, 0.05, fault_seed(1, kind, 0.05, 0))
        faulty = fmap.apply(flat)
        widx, bit = np.divmod(fmap.positions, 4)
        before = (flat[widx].astype(np.int64) >> bit) & 1
        after = (faulty[widx].astype(np.int64) >> bit) & 1
        if kind == "flip":
            assert np.all(after == 1 - before)
            assert np.array_equal(fmap.apply(faulty), flat), "flipping twice restores"
        else:
            stuck = 0 if kind == "sa0" else 1
            assert np.all(after == stuck)
            masked = before == stuck
            assert 0 < masked.sum() < masked.size  # both masked and effective faults occur
        # only the faulty cells changed: the Hamming distance is the effective fault count
        diff = (flat.astype(np.int64) ^ faulty.astype(np.int64)) & 0xF
        hamming = int(sum(bin(int(v)).count("1") for v in diff[diff != 0]))
        assert hamming == fmap.changed_bits(flat)
        if kind != "flip":
            assert hamming == int((before != (0 if kind == "sa0" else 1)).sum())
        assert faulty.min() >= -8 and faulty.max() <= 7


def test_word_masks_give_the_same_faulty_weights_as_the_injector(layout: WeightLayout,
                                                                 flat: np.ndarray) -> None:
    """``((w & ~sa0) | sa1) ^ flip`` on packed words (the SRAM's read) == the torch side."""
    words = layout.pack_flat(flat)
    maps = {k: sample_faults(layout, k, 0.03, fault_seed(9, k, 0.03, 2)) for k in FAULT_KINDS}
    for kind, fmap in maps.items():
        m = fmap.word_masks()
        assert sum(bin(int(v)).count("1") for v in m[kind].reshape(-1) if v) == fmap.n_faults
        read = ((words & ~m["sa0"]) | m["sa1"]) ^ m["flip"]
        assert np.array_equal(layout.unpack_flat(read), fmap.apply(flat)), kind
    combo = {k: maps[k].word_masks()[k] for k in FAULT_KINDS}
    read = ((words & ~combo["sa0"]) | combo["sa1"]) ^ combo["flip"]
    seq = maps["flip"].apply(maps["sa1"].apply(maps["sa0"].apply(flat)))
    assert np.array_equal(layout.unpack_flat(read), seq)


def test_seeds_rates_and_extremes(layout: WeightLayout, flat: np.ndarray) -> None:
    a = sample_faults(layout, "sa1", 0.02, fault_seed(3, "sa1", 0.02, 4))
    b = sample_faults(layout, "sa1", 0.02, fault_seed(3, "sa1", 0.02, 4))
    c = sample_faults(layout, "sa1", 0.02, fault_seed(3, "sa1", 0.02, 5))
    assert np.array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, c.positions)
    assert sample_faults(layout, "flip", 0.0, 1).n_faults == 0
    full = sample_faults(layout, "flip", 1.0, 1)
    assert full.n_faults == layout.n_bits
    assert np.array_equal(full.apply(flat), (-flat.astype(np.int16) - 1).astype(np.int8))
    with pytest.raises(SramFaultError, match="Unknown fault kind 'sa2'"):
        sample_faults(layout, "sa2", 0.1, 1)


@pytest.mark.slow
def test_fault_trial_and_benchmark_on_a_network() -> None:
    torch.manual_seed(0)
    d = load_dataset("fashion-mnist-subset")
    net = build_qat("lenet5", 1, 10, 28)
    net.train()
    with torch.no_grad():
        net(d.train.tensors[0][:256])
    net.eval()
    lay = WeightLayout.from_net(net)
    test = torch.utils.data.TensorDataset(*(t[:300] for t in d.test.tensors))
    clean = run_fault_trial(net, lay, test, "none", 0.0, 0, 0, 100)
    assert clean["faults"] == 0 and 0 <= clean["sparsity"] <= 100
    hit = run_fault_trial(net, lay, test, "flip", 0.2, 0, 0, 100)
    assert hit["faults"] > 0.15 * lay.n_bits and hit["changed_bits"] == hit["faults"]
    assert run_fault_trial(net, lay, test, "flip", 0.2, 0, 0, 100) == hit  # seeded
    res = bench_fault_trial(net, lay, test, repeats=1, batch_size=100, verbose=True)
    assert res["clean_s"] > 0 and res["trial_s"] > 0


def test_layout_of_a_network_needs_its_own_layers(tmp_path: Path) -> None:
    lenet = build_qat("lenet5", 1, 10, 28)
    resnet = build_qat("resnet20", 3, 10, 32)
    lay = WeightLayout.from_net(lenet)
    with pytest.raises(SramLayoutError, match="do not match the layout"):
        lay.flatten(resnet.weight_codes())
