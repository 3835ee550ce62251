"""FlatENN fault-rate definitions (per stored bit, per stored weight), fault-map streams,
float and 4-bit zero counts, and the warm start of a fine-tuned model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from nnmap import chi2_sf
from nnmap.qat import build_qat
from nnmap.saq import FlatTrainConfig, SAQError, train_flat
from nnmap.sparsity import SparsityMeter, measure_sparsity
from nnmap.sram_faults import (
    SramFaultError,
    SramGeometry,
    WeightLayout,
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


def test_per_weight_rate_faults_one_uniform_bit_of_each_faulty_weight(layout: WeightLayout
                                                                      ) -> None:
    p = 0.02
    counts = np.zeros(4)
    n_faulty = []
    for trial in range(40):
        fmap = sample_faults(layout, "flip", p, fault_seed(0, "flip", p, trial, unit="weight"),
                             unit="weight")
        weights, bit = np.divmod(fmap.positions, 4)
        assert len(np.unique(weights)) == len(weights)  # one faulty bit per faulty weight
        assert np.all(np.diff(fmap.positions) > 0)
        counts += np.bincount(bit, minlength=4)
        n_faulty.append(len(weights))
    # the number of faulty weights is Binomial(n_weights, p): mean and spread
    n = layout.n_weights
    assert abs(np.mean(n_faulty) - n * p) < 4 * np.sqrt(n * p * (1 - p) / 40)
    # which bit: uniform over the 4 bits (chi-square goodness of fit)
    expect = counts.sum() / 4
    assert chi2_sf(float(((counts - expect) ** 2 / expect).sum()), 3) > 1e-3
    # per bit at the same nominal rate: 4x as many faulty cells, some weights hit twice
    per_bit = [sample_faults(layout, "flip", p, fault_seed(0, "flip", p, t), unit="bit")
               for t in range(40)]
    assert abs(np.mean([f.n_faults for f in per_bit]) - 4 * n * p) < 4 * np.sqrt(
        4 * n * p / 40)
    doubles = sum(len(f.positions) - len(np.unique(f.positions // 4)) for f in per_bit)
    assert doubles > 0


def test_fault_seeds_separate_units_and_streams_and_keep_the_old_maps() -> None:
    old = np.random.SeedSequence([7, 0, int(round(0.01 * 1e9)), 3])
    assert fault_seed(7, "flip", 0.01, 3).entropy == old.entropy
    assert fault_seed(7, "flip", 0.01, 3).spawn_key == old.spawn_key
    draws = {(u, s): np.random.default_rng(fault_seed(7, "flip", 0.01, 3, unit=u, stream=s))
             .integers(1 << 30) for u in ("bit", "weight") for s in (0, 1)}
    assert len(set(draws.values())) == 4
    with pytest.raises(SramFaultError, match="Unknown fault-rate unit 'byte'"):
        fault_seed(7, "flip", 0.01, 3, unit="byte")
    with pytest.raises(SramFaultError, match="Stream must be a non-negative integer"):
        fault_seed(7, "flip", 0.01, 3, stream=-1)


def test_trials_of_one_stream_share_maps_across_models(layout: WeightLayout) -> None:
    torch.manual_seed(0)
    a = build_qat("lenet5", 1, 10, 28).eval()
    b = build_qat("lenet5", 1, 10, 28).eval()
    x = torch.randn(20, 1, 28, 28)
    test = TensorDataset(x, torch.zeros(20, dtype=torch.long))
    ra = run_fault_trial(a, layout, test, "sa1", 0.03, 5, 2, unit="weight", stream=1)
    rb = run_fault_trial(b, layout, test, "sa1", 0.03, 5, 2, unit="weight", stream=1)
    rc = run_fault_trial(a, layout, test, "sa1", 0.03, 5, 2, unit="weight", stream=2)
    assert ra["faults"] == rb["faults"] != rc["faults"]
    assert 0 <= ra["float_sparsity"] <= ra["sparsity"] <= 100
    assert ra["changed_bits"] <= ra["faults"]  # stuck-at faults on equal bits are masked


def test_float_zeros_are_relu_zeros_and_never_exceed_4bit_zeros() -> None:
    torch.manual_seed(1)
    net = build_qat("lenet5", 1, 10, 28)
    x = torch.randn(64, 1, 28, 28)
    net.train()
    with torch.no_grad():
        net(x)  # the activation ranges
    net.eval()
    # the float path (eval, perturbation {}) records the float post-ReLU maps: count them
    meter = SparsityMeter()
    net.meter, net.record = meter, True
    with torch.no_grad(), net.perturbed({}):
        net(x)
    acts = dict(net.acts)
    net.meter, net.record = None, False
    rep = meter.report()
    for point, a in acts.items():
        assert rep.float_per_layer[point] == pytest.approx(100 * float((a == 0).float().mean()))
        assert rep.float_per_layer[point] <= rep.per_layer[point]
    assert rep.float_mean == pytest.approx(np.mean(list(rep.float_per_layer.values())))
    # the integer path counts the same float zeros (pre-activations <= 0), to rounding
    _, integer = measure_sparsity(net, TensorDataset(x, torch.zeros(64, dtype=torch.long)))
    assert integer.float_mean == pytest.approx(rep.float_mean, abs=0.5)
    assert integer.float_mean < integer.mean


def test_warm_start_starts_from_the_cached_model(tmp_path: Path) -> None:
    from nnmap.data import load_dataset

    data = load_dataset("fashion-mnist-subset")
    small = TensorDataset(*(t[:256] for t in data.train.tensors))
    from nnmap.data import DataSplits

    d = DataSplits(small, TensorDataset(*(t[:64] for t in data.test.tensors)), data.info)
    base = train_flat(FlatTrainConfig(epochs=1, batch_size=64), d, cache=tmp_path,
                      progress=False)
    cfg = FlatTrainConfig(epochs=1, batch_size=64, lr=1e-9, init=base.key)
    ft = train_flat(cfg, d, cache=tmp_path, progress=False)
    # a vanishing learning rate: the fine-tuned weights are the start's (momentum SGD moves
    # them by ~lr), so the start was loaded, not a fresh model
    for (n, p), q in zip(base.net.state_dict().items(), ft.net.state_dict().values(),
                         strict=True):
        if p.dtype.is_floating_point and "running" not in n:
            assert torch.allclose(p, q, atol=1e-5), n
    assert ft.key != base.key and cfg.key_json() != FlatTrainConfig(
        epochs=1, batch_size=64, lr=1e-9).key_json()
    assert '"init"' not in FlatTrainConfig().key_json()  # old checkpoint keys unchanged
    with pytest.raises(SAQError, match="not in the cache"):
        train_flat(FlatTrainConfig(epochs=1, init="0123abcd"), d, cache=tmp_path,
                   progress=False)
