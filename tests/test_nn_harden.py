"""Hardening: EDAC cases A-E of the paper's Fig. 2, the TMR voter, fault-free equivalence,
graph checks and the errors a user can cause."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nnmap import TrainConfig, build_model, evaluate, load_dataset, train
from nnmap.cost import CostError, model_cost, time_inference
from nnmap.harden import (
    EDAC,
    HardenConfig,
    HardenedSite,
    HardenError,
    Voter,
    harden,
    hardened_channels,
    layer_sites,
    n_hardened,
    profile_intervals,
    state_digest,
)
from nnmap.vulnerability import estimate_vulnerability, layer_input, network_tail

torch.set_num_threads(1)
NAN, INF = math.nan, math.inf


def _edac(main: list[float], copies: list[float], dup: list[int], **kw: object) -> list[float]:
    """EDAC over FC-shaped input: channels ``main`` then ``copies`` of channels ``dup``."""
    n = len(main)
    edac = EDAC(torch.full((n,), -1.0), torch.full((n,), 2.0), torch.tensor(dup, dtype=torch.long),
                **kw)  # type: ignore[arg-type]
    z = torch.tensor([main + copies])
    return edac(z)[0].tolist()  # type: ignore[no-any-return]


def test_edac_case_a_equal_copies_pass_even_outside_the_interval() -> None:
    # Both copies agree: the value is the layer's true output, whatever the interval says.
    assert _edac([1.5, 7.0], [1.5, 7.0], [0, 1]) == [1.5, 7.0]
    # Agreement within rtol of the channel scale (an ulp-level kernel difference).
    out = _edac([1.0], [1.0 + 1e-7], [0])
    assert out == [1.0]


def test_edac_case_b_the_copy_inside_its_interval_wins() -> None:
    assert _edac([50.0], [1.25], [0]) == [1.25]     # original faulty (above hi)
    assert _edac([0.5], [-30.0], [0]) == [0.5]      # duplicate faulty (below lo)
    assert _edac([INF], [0.75], [0]) == [0.75]      # overflow in one copy
    assert _edac([NAN], [0.75], [0]) == [0.75]      # NaN counts as outside


def test_edac_case_c_both_copies_outside_gives_zero() -> None:
    assert _edac([50.0], [-40.0], [0]) == [0.0]
    assert _edac([NAN], [INF], [0]) == [0.0]


def test_edac_two_different_in_interval_copies_follow_the_rule() -> None:
    assert _edac([1.5], [0.5], [0]) == [0.5]                      # default: the smaller
    assert _edac([1.5], [0.5], [0], disagree="mean") == [1.0]
    assert _edac([1.5], [0.5], [0], disagree="zero") == [0.0]


def test_edac_case_d_and_e_non_duplicated_channels() -> None:
    # Channel 0 duplicated (copies agree); channels 1, 2 not: inside passes (D), outside -> 0 (E)
    assert _edac([1.0, 1.75, 5.0], [1.0], [0]) == [1.0, 1.75, 0.0]
    assert _edac([1.0, -3.0, NAN], [], []) == [1.0, 0.0, 0.0]
    # Without detection intervals (the paper's Fig. 3): passed unchanged, NaN still -> 0.
    assert _edac([1.0, -3.0, NAN], [], [], intervals=False) == [1.0, -3.0, 0.0]


def test_edac_works_per_element_of_conv_feature_maps() -> None:
    edac = EDAC(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0]), torch.tensor([1]))
    z = torch.zeros(1, 3, 2, 2)
    z[0, 0] = torch.tensor([[0.5, 3.0], [-0.5, NAN]])   # channel 0: not duplicated
    z[0, 1] = torch.tensor([[1.0, 9.0], [2.0, 3.0]])    # channel 1 ...
    z[0, 2] = torch.tensor([[1.0, 2.0], [8.0, 1.0]])    # ... and its copy
    out = edac(z)
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0].tolist() == [[0.5, 0.0], [-0.5, 0.0]]
    assert out[0, 1].tolist() == [[1.0, 2.0], [2.0, 1.0]]  # A, B, B, D' (min)


def test_voter_majority_and_minimum_on_three_way_disagreement() -> None:
    voter = Voter(2, torch.tensor([0, 1]))
    z = torch.tensor([[1.0, 5.0,   # originals
                       1.0, 6.0,   # first copies
                       9.0, 7.0]])  # second copies
    assert voter(z)[0].tolist() == [1.0, 5.0]     # channel 0: majority 1; channel 1: min
    z = torch.tensor([[NAN, 3.0, 2.0, 3.0, 2.0, 3.0]])
    assert voter(z)[0].tolist() == [2.0, 3.0]     # the two agreeing copies outvote a NaN
    partial = Voter(3, torch.tensor([1]))
    assert partial(torch.tensor([[4.0, 1.0, -2.0, 8.0, 1.0]]))[0].tolist() == [4.0, 1.0, -2.0]


def test_hardening_ratio_and_bad_input_errors() -> None:
    assert n_hardened(16, 0.15) == 3 and n_hardened(6, 0.15) == 1 and n_hardened(6, 0.0) == 0
    with pytest.raises(HardenError, match=r"Hardening ratio must be in \[0, 1\].*1.5"):
        HardenConfig(ratio=1.5)
    with pytest.raises(HardenError, match="must be in"):
        HardenConfig(ratio=-0.1)

    class WithNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(self.fc(x))  # type: ignore[no-any-return]

    with pytest.raises(HardenError, match=r"'norm' of type LayerNorm is not supported"):
        layer_sites(WithNorm())
    with pytest.raises(HardenError, match="grouped"):
        layer_sites(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)))


def test_channel_choice_follows_vulnerability() -> None:
    sites = layer_sites(build_model("lenet5", 1, 10, 28))
    vuln = {s.name: torch.arange(s.out_channels, dtype=torch.float64) for s in sites}
    chosen = hardened_channels(sites, HardenConfig(ratio=0.15), vuln)
    assert chosen["conv2"].tolist() == [13, 14, 15]     # the 3 most vulnerable of 16
    assert chosen["fc3"].tolist() == list(range(10))    # last layer: all outputs
    with pytest.raises(HardenError, match="needs its channel vulnerability"):
        hardened_channels(sites, HardenConfig(ratio=0.15), None)


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, object]:
    data = load_dataset("fashion-mnist-subset")
    model = train(TrainConfig(dataset="fashion-mnist-subset", epochs=1), data,
                  progress=False).model
    return model, data


@pytest.mark.slow
def test_hardened_models_keep_the_fault_free_accuracy(trained: tuple[nn.Module, object]) -> None:
    model, data = trained
    x = data.train.tensors[0][:1500]  # type: ignore[attr-defined]
    intervals = profile_intervals(model, x)
    vuln = estimate_vulnerability(model, data.train)  # type: ignore[attr-defined]
    with torch.no_grad():
        ref = model(x)
    for config in (HardenConfig(), HardenConfig(ratio=1.0), HardenConfig.intervals_only(),
                   HardenConfig.tmr(), HardenConfig.tmr(0.15), HardenConfig(intervals=False)):
        hard = harden(model, intervals, config, vuln)
        with torch.no_grad():
            out = hard(x)
        # Activations of the profiled images lie in their intervals: same logits up to the
        # float rounding of layers with extra output channels, identical classifications.
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        assert torch.equal(out.argmax(1), ref.argmax(1)), config
        y = data.train.tensors[1][:1500]  # type: ignore[attr-defined]
        assert evaluate(hard, TensorDataset(x, y)) == evaluate(model, TensorDataset(x, y))
    hard = harden(model, intervals, HardenConfig(), vuln)
    assert isinstance(hard.conv2, HardenedSite) and hard.conv2.layer.out_channels == 19
    assert hard.hardening["channels"]["fc3"] == list(range(10))  # type: ignore[index]
    cost, base = model_cost(hard, (1, 28, 28)), model_cost(model, (1, 28, 28))
    assert base.macs == 416_520 and base.parameters == 61_706
    assert cost.macs > base.macs and cost.stored == cost.parameters + 2 * (6 + 16 + 120 + 84 + 10)


def test_batch_norm_is_duplicated_with_its_convolution() -> None:
    torch.manual_seed(0)
    model = build_model("vgg_small", 1, 10, 28).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(64, 1, 28, 28)
    sites = layer_sites(model)
    assert [s.bn for s in sites] == ["features.1", "features.5", "features.9", None, None]
    vuln = {s.name: torch.rand(s.out_channels) for s in sites}
    hard = harden(model, profile_intervals(model, x), HardenConfig(ratio=0.5), vuln)
    assert isinstance(hard.features[1], nn.Identity)
    assert hard.features[0].bn.num_features == 16 + 8
    with torch.no_grad():
        torch.testing.assert_close(hard(x), model(x), rtol=1e-4, atol=1e-4)


# --- Eq. (1) ---------------------------------------------------------------------------------
class _TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 2)
        self.fc2 = nn.Linear(2, 3)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
            self.fc1.bias.copy_(torch.tensor([0.5, 0.0]))
            self.fc2.weight.copy_(torch.tensor([[2.0, 1.0], [0.0, -1.0], [1.0, 3.0]]))
            self.fc2.bias.copy_(torch.tensor([0.0, 1.0, -2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))  # type: ignore[no-any-return]


def test_eq1_on_a_hand_checkable_network() -> None:
    from nnmap.vulnerability import channel_vulnerability

    # x = (1, 1): h = (3.5, -0.5), y = (6.5, 1.5, 0.0), top class t = 0, K = 3.
    x = torch.tensor([[1.0, 1.0]])
    v = channel_vulnerability(_TwoLayer(), x)
    h2, x2 = 3.5**2 + 0.5**2, 2.0
    # fc2, neuron c: d(y_t - y_i)/dW2[c] = (delta_ct - delta_ci) h
    expect_fc2 = [(h2 / 5.0**2 + h2 / 6.5**2) / 3, h2 / 5.0**2 / 3, h2 / 6.5**2 / 3]
    # fc1, neuron c: d(y_t - y_i)/dW1[c] = (W2[t, c] - W2[i, c]) x
    w2 = [[2.0, 1.0], [0.0, -1.0], [1.0, 3.0]]
    expect_fc1 = [sum((w2[0][c] - w2[i][c]) ** 2 * x2 / m**2 for i, m in ((1, 5.0), (2, 6.5))) / 3
                  for c in range(2)]
    torch.testing.assert_close(v["fc2"], torch.tensor(expect_fc2, dtype=torch.float64))
    torch.testing.assert_close(v["fc1"], torch.tensor(expect_fc1, dtype=torch.float64))
    # averaged over inputs: two copies of the same input give the same value
    v2 = channel_vulnerability(_TwoLayer(), x.repeat(2, 1), batch_size=1)
    torch.testing.assert_close(v2["fc1"], v["fc1"])


def test_eq1_conv_per_sample_gradients_match_autograd() -> None:
    from nnmap.vulnerability import channel_vulnerability

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.ReLU(inplace=True),
                          nn.Flatten(), nn.Linear(3 * 4 * 4, 4)).eval()
    x = torch.randn(5, 2, 7, 7)
    got = channel_vulnerability(model, x, batch_size=2)["0"]
    conv = model[0]
    expect = torch.zeros(3, dtype=torch.float64)
    for n in range(len(x)):  # one backward pass per sample and class: the definition
        y = model(x[n:n + 1])[0]
        t = int(y.argmax())
        margins = y.detach()
        for i in range(4):
            if i == t:
                continue
            (g,) = torch.autograd.grad(y[t] - y[i], conv.weight, retain_graph=True)
            expect += g.double().pow(2).flatten(1).sum(1) / float(margins[t] - margins[i]) ** 2 / 4
    torch.testing.assert_close(got, expect / len(x), rtol=1e-4, atol=0)


def test_spearman_and_ranks() -> None:
    from nnmap.vulnerability import rank, spearman

    assert rank([3.0, 1.0, 2.0, 2.0]).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_state_digest_follows_the_weights_only() -> None:
    model = build_model("lenet5", 1, 10, 28)
    twin = copy.deepcopy(model)
    assert state_digest(twin) == state_digest(model)
    with torch.no_grad():
        next(twin.parameters()).view(-1)[0] += 1e-3
    assert state_digest(twin) != state_digest(model)


def test_time_inference_is_positive_cpu_time() -> None:
    model = build_model("lenet5", 1, 10, 28)
    x = torch.randn(64, 1, 28, 28)
    assert time_inference(model, x, repeats=1) > 0
    with pytest.raises(CostError, match="at least one repeat"):
        time_inference(model, x, repeats=0)


def test_network_tail_matches_the_whole_network() -> None:
    # Running the tail on the layer's recorded input gives the whole network's output.
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28).eval()
    x = torch.randn(16, 1, 28, 28)
    for site in layer_sites(model)[1:]:
        tail = network_tail(model, site.name)
        assert tail is not None
        with torch.no_grad():
            got = tail(layer_input(model, site.name, x))
            assert torch.allclose(got, model(x), atol=1e-5), site.name
