"""Weight distribution, error-aware quantization, sensitivities and operand streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from nnmap import (
    LayerInjector,
    MacLayer,
    MitigationConfig,
    MitigationError,
    SensitivityConfig,
    TimingInjector,
    best_split,
    build_model,
    eaq_codes,
    layer_weight_error,
    mitigate,
    operand_streams,
    quantize,
    synthetic_table,
    top_fraction_mask,
    weight_sensitivity,
)
from sim.tables import CompressedTable, signed_values

torch.set_num_threads(1)
V = signed_values(8)
EXACT = np.multiply.outer(V, V).ravel()


def _p(values: dict[int, float]) -> np.ndarray:
    """Table III indexed by unsigned code from ``{signed weight: probability}``."""
    p = np.zeros(256)
    for w, prob in values.items():
        p[w & 0xFF] = prob
    return p


def _table(p_weight: dict[int, float], port: str = "a") -> CompressedTable:
    """A table where weight ``w`` errs with probability ``p_weight[w]`` for every activation
    (the wrong product has bit 14 flipped)."""
    p = np.zeros((256, 256))
    for w, prob in p_weight.items():
        if port == "a":
            p[w & 0xFF, :] = prob
        else:
            p[:, w & 0xFF] = prob
    flat = p.ravel()
    offsets = np.zeros(65537, np.int64)
    pairs = np.flatnonzero(flat > 0)
    offsets[pairs + 1] = 1
    raw = (EXACT[pairs] & 0xFFFF) ^ 0x4000
    wrong = np.where(raw >= 1 << 15, raw - (1 << 16), raw)
    return CompressedTable(width=8, period=10, p_wrong=p, offsets=np.cumsum(offsets),
                           wrong_output=wrong.astype(np.int64), wrong_prob=flat[pairs],
                           n_prev=np.full((256, 256), 65536, np.int64))


# --- EAQ on a hand-made table -------------------------------------------------------------------
def test_eaq_picks_the_neighbour_with_lower_error_probability():
    p = _p({2: 0.5, 3: 0.1, 5: 0.2, 6: 0.2, -2: 0.4, -1: 0.05, 4: 0.9, 127: 0.9, -127: 0.9})
    x = np.array([2.3, 2.7, 5.2, 5.8, -1.6, 4.0, 126.9, 127.0, -127.4, 7.2, 0.4])
    got = eaq_codes(x, p)
    assert got.dtype == np.int8
    # 2.3: p(3)=0.1 < p(2)=0.5 -> 3 (not the nearest); 2.7 -> 3 (nearest and lower)
    # 5.2 / 5.8: tie -> nearest; -1.6: p(-1) < p(-2) -> -1; 4.0 exactly on a level -> 4
    # 126.9: p(126)=0 < p(127) -> 126; 127.0 on the level; -127.4: below -127 clamps
    # 7.2: both zero -> nearest 7; 0.4: p(0)=p(1)=0 -> nearest 0
    assert got.tolist() == [3, 3, 5, 6, -1, 4, 126, 127, -127, 7, 0]


def test_eaq_never_moves_more_than_one_level():
    rng = np.random.default_rng(0)
    x = rng.uniform(-127, 127, 5000)
    p = rng.random(256)
    got = eaq_codes(x, p).astype(float)
    assert np.all(np.abs(got - x) < 1)
    lo, hi = np.floor(x), np.floor(x) + 1
    p_val = lambda q: p[q.astype(int) & 0xFF]  # noqa: E731
    assert np.all(p_val(got) <= np.minimum(p_val(lo), p_val(hi)) + 0)


def test_eaq_checks_the_table_length():
    with pytest.raises(MitigationError, match="256 entries"):
        eaq_codes([1.0], np.zeros(10))


# --- WD pairs -------------------------------------------------------------------------------------
def test_best_split_is_the_brute_force_minimum():
    rng = np.random.default_rng(1)
    p = rng.random(256) * (rng.random(256) < 0.3)
    w1, w2, cost = best_split(p)
    pv = lambda q: p[q & 0xFF]  # noqa: E731
    for w in range(-128, 128):
        i = w + 128
        cands = [(a, w - a) for a in range(-127, 128)
                 if a != 0 and w - a != 0 and -127 <= w - a <= 127]
        if not cands:
            assert np.isinf(cost[i])
            continue
        best = min(pv(a) + pv(b) for a, b in cands)
        assert cost[i] == pytest.approx(best)
        assert w1[i] + w2[i] == w and w1[i] != 0 and w2[i] != 0
        assert -127 <= w2[i] <= w1[i] <= 127
        assert pv(w1[i]) + pv(w2[i]) == pytest.approx(best)


def test_best_split_prefers_the_most_balanced_pair_on_a_tie():
    w1, w2, cost = best_split(_p({9: 0.5}))
    assert (w1[9 + 128], w2[9 + 128], cost[9 + 128]) == (5, 4, 0.0)
    w1, w2, cost = best_split(_p({-1: 0.3, 1: 0.2, 2: 0.2, -2: 0.2}))
    # -1 = q1 + q2 avoiding +-1, +-2 at zero cost: the most balanced is (3, -4)
    assert (w1[-1 + 128], w2[-1 + 128], cost[-1 + 128]) == (3, -4, 0.0)


# --- networks --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lenet() -> tuple[torch.nn.Module, object, TensorDataset]:
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28).eval()
    x = torch.randn(96, 1, 28, 28)
    y = torch.randint(0, 10, (96,))
    data = TensorDataset(x, y)
    return model, quantize(model, None, data), data


@pytest.fixture(scope="module")
def resnet() -> tuple[torch.nn.Module, object, TensorDataset]:
    torch.manual_seed(1)
    model = build_model("resnet20", 3, 10, 32)
    for m in model.modules():  # non-trivial batch norm so that folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.2, 0.2)
            m.weight.data.uniform_(0.5, 1.5)
    model.eval()
    x = torch.randn(12, 3, 32, 32)
    data = TensorDataset(x, torch.randint(0, 10, (12,)))
    return model, quantize(model, None, data), data


def _all_sensitive(qnet) -> dict[str, np.ndarray]:
    return {k: np.ones(tuple(v.weight.shape)) for k, v in qnet.layers.items()}


@pytest.mark.parametrize("net", ["lenet", "resnet"])
def test_weight_distribution_preserves_the_function_exactly(net, request):
    model, qnet, data = request.getfixturevalue(net)
    table = synthetic_table(seed=3, density=0.3)
    wd = mitigate(qnet, table, MitigationConfig(wd_fraction=1.0, eaq=False,
                                                act_dist="uniform"),
                  sensitivity=_all_sensitive(qnet))
    assert sum(wd.distributed().values()) > 100
    x = data.tensors[0][:8]
    assert torch.equal(wd(x), qnet(x))  # clean logits identical (integer domain)
    # the copy carries w1 and the original network is untouched
    changed = sum(int((wd.layers[k].weight != qnet.layers[k].weight).sum()) for k in qnet.layers)
    assert changed == sum(wd.distributed().values())


def test_mac_bookkeeping_and_the_injector_sees_both_products(lenet):
    _, qnet, data = lenet
    table = _table({w: 0.4 for w in range(-126, 127, 3)})  # multiples of 3 err
    wd = mitigate(qnet, table, MitigationConfig(wd_fraction=0.05, eaq=False,
                                                act_dist="uniform"),
                  sensitivity=_all_sensitive(qnet) | {"fc1": np.zeros((120, 400))})
    base = qnet.macs()
    for name, layer in qnet.layers.items():
        ho, wo = layer.out_hw
        assert wd.macs()[name] == base[name] + wd.distributed()[name] * ho * wo
    assert wd.distributed()["fc1"] == 0 and sum(wd.distributed().values()) > 500
    inj = TimingInjector(table, 1.0, seed=0)
    n = 10
    wd(data.tensors[0][:n], inj)
    assert {k: s.products for k, s in inj.stats.items()} == {
        k: n * m for k, m in wd.macs().items()}


def test_distribution_removes_the_errors_of_an_error_prone_weight(lenet):
    _, qnet, data = lenet
    codes = qnet.layers["conv2"].weight.flatten()
    w = int(codes[codes.abs() > 8][0])  # a weight present in conv2
    table = _table({w: 1.0})
    x = data.tensors[0][:6]
    sens = {k: np.zeros(tuple(v.weight.shape)) for k, v in qnet.layers.items()}
    sens["conv2"] = (qnet.layers["conv2"].weight == w).double().numpy() + 1e-9
    k = int((qnet.layers["conv2"].weight == w).sum())
    frac = k / sum(v.size for v in sens.values())
    wd = mitigate(qnet, table, MitigationConfig(wd_fraction=frac, eaq=False,
                                                act_dist="uniform"), sensitivity=sens)
    assert wd.distributed()["conv2"] == k
    before = TimingInjector(table, 1.0, seed=0, layers=["conv2"])
    qnet(x, before)
    after = TimingInjector(table, 1.0, seed=0, layers=["conv2"])
    out = wd(x, after)
    assert before.stats["conv2"].substitutions == k * 6 * 100  # every product of w errs
    assert after.stats["conv2"].substitutions == 0
    assert torch.equal(out, qnet(x))
    rep = {r.layer: r for r in wd.layers_report}["conv2"]
    assert rep.expected_wrong_before == pytest.approx(k * 100)
    assert rep.expected_wrong_after == pytest.approx(0.0)


def test_eaq_network_uses_eaq_codes_of_the_float_weights(lenet):
    _, qnet, data = lenet
    table = synthetic_table(seed=5, density=0.2)
    hists = operand_streams(qnet, data, images=32).hist
    eaq = mitigate(qnet, table, MitigationConfig(wd_fraction=0.0), hists=hists)
    p = layer_weight_error(qnet, table, hists, "layer")
    floats = qnet.float_weights()
    moved = 0
    for name, layer in qnet.layers.items():
        scale = layer.w_scale.view(-1, *([1] * (layer.weight.dim() - 1)))
        want = eaq_codes((floats[name] / scale).numpy(), p[name])
        assert np.array_equal(eaq.layers[name].weight.numpy(), want)
        moved += int((eaq.layers[name].weight != layer.weight).sum())
    assert moved == eaq.summary()["eaq_changed"] > 0
    assert eaq.macs() == qnet.macs()
    # layer histogram vs uniform: a ReLU layer's Table III ignores negative activations
    h = hists["fc1"] / hists["fc1"].sum()
    assert h[128:].sum() == 0
    assert np.allclose(p["fc1"], table.p_wrong @ h)


def test_mitigate_refuses_edited_networks_and_missing_inputs(lenet):
    _, qnet, data = lenet
    table = synthetic_table(seed=6)
    with pytest.raises(MitigationError, match="sensitivit"):
        mitigate(qnet, table, MitigationConfig(act_dist="uniform"))
    with pytest.raises(MitigationError, match="activation histogram"):
        mitigate(qnet, table, MitigationConfig(wd_fraction=0))
    import copy

    edited = copy.deepcopy(qnet)
    edited.layers["fc3"].weight[0, 0] = edited.layers["fc3"].weight[0, 0] ^ 0x40
    with pytest.raises(MitigationError, match="nearest levels"):
        mitigate(edited, table, MitigationConfig(wd_fraction=0, act_dist="uniform"))
    with pytest.raises(MitigationError, match="wd_fraction"):
        MitigationConfig(wd_fraction=1.5)
    cfg = MitigationConfig(wd_fraction=0.02, act_dist="uniform")
    assert MitigationConfig.from_json(cfg.to_json()) == cfg and cfg.label == "WD+EAQ"


# --- sensitivities --------------------------------------------------------------------------------
def test_sensitivity_is_the_mean_absolute_batch_gradient(lenet):
    model, qnet, data = lenet
    sens = weight_sensitivity(model, qnet, data, SensitivityConfig(batch_size=32))
    x, y = data.tensors
    want = torch.zeros_like(model.fc2.weight, dtype=torch.float64)
    for i in range(0, 96, 32):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
        want += model.fc2.weight.grad.double().abs()
    assert np.allclose(sens["fc2"], (want / 3).numpy())
    assert set(sens) == set(qnet.layers)
    top = top_fraction_mask(sens, 0.01)
    total = sum(v.size for v in sens.values())
    assert sum(int(m.sum()) for m in top.values()) == round(0.01 * total)
    cut = min(sens[k][m].min() for k, m in top.items() if m.any())
    assert all(sens[k][~m].max() <= cut for k, m in top.items() if (~m).any())


def test_sensitivity_refers_to_the_batchnorm_folded_weights(resnet):
    model, qnet, data = resnet
    sens = weight_sensitivity(model, qnet, data, SensitivityConfig(batch_size=12))
    x, y = data.tensors
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    bn = model.bn1
    k = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().abs()
    want = model.conv1.weight.grad.double().abs() / k.view(-1, 1, 1, 1)
    assert np.allclose(sens["conv1"], want.numpy(), rtol=1e-5)


# --- operand streams ------------------------------------------------------------------------------
def test_operand_streams_of_a_convolution_and_a_linear_layer():
    w = torch.ones(2, 1, 2, 2, dtype=torch.int8)
    conv = MacLayer("c", "conv", w, torch.ones(2, dtype=torch.float64),
                    torch.zeros(2, dtype=torch.float64), 1.0, (1, 3, 3), stride=1, padding=0)
    x = torch.tensor([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]], dtype=torch.int8)

    class Net:
        layers = {"c": conv}

        def __call__(self, xb, hook):
            q = xb.to(torch.int8)
            hook(conv, q, conv.accumulate(q))

    st = operand_streams(Net(), TensorDataset(x.float(), torch.zeros(1)), images=None)
    # tap (0,0) streams 1,2,4,5; (0,1) 2,3,5,6; (1,0) 4,5,7,8; (1,1) 5,6,8,9
    pairs = [(1, 2), (2, 4), (4, 5), (2, 3), (3, 5), (5, 6), (4, 5), (5, 7), (7, 8), (5, 6),
             (6, 8), (8, 9)]
    want = np.zeros((256, 256))
    for a, b in pairs:
        want[a, b] += 1
    assert np.array_equal(st.transitions["c"], want)
    hist = np.bincount([1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9], minlength=256) * 2
    assert np.array_equal(st.hist["c"], hist)
    cond = st.conditional("c")
    assert np.allclose(cond.sum(1), 1) and cond[5, 4] == pytest.approx(2 / 3)
    assert np.allclose(cond[200], st.marginal("c"))  # unseen current code -> marginal

    fc = MacLayer("f", "linear", torch.ones(3, 2, dtype=torch.int8),
                  torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 1.0,
                  (2,))

    class Fc:
        layers = {"f": fc}

        def __call__(self, xb, hook):
            q = xb.to(torch.int8)
            hook(fc, q, fc.accumulate(q))

    xs = torch.tensor([[0, -1], [3, -1], [3, 2]], dtype=torch.float32)
    st = operand_streams(Fc(), TensorDataset(xs, torch.zeros(3)), images=None)
    want = np.zeros((256, 256))
    for a, b in [(0, 3), (3, 3), (255, 255), (255, 2)]:  # feature streams run over images
        want[a, b] += 1
    assert np.array_equal(st.transitions["f"], want)
    assert st.hist["f"][255] == 2 * 3 and st.summary()[0]["negative_fraction"] == pytest.approx(
        1 / 3)


def test_layer_injector_uses_each_layers_own_table(lenet):
    _, qnet, data = lenet
    quiet = _table({})
    loud = synthetic_table(seed=7, density=0.5, mean_p=0.3)
    tables = {k: (loud if k == "fc1" else quiet) for k in qnet.layers}
    inj = LayerInjector(tables, 1.0, seed=3)
    qnet(data.tensors[0][:4], inj)
    assert inj.stats["fc1"].substitutions > 0
    assert all(s.substitutions == 0 for k, s in inj.stats.items() if k != "fc1")
    first = inj.stats["fc1"].substitutions
    inj.reset(3)
    qnet(data.tensors[0][:4], inj)
    assert inj.stats["fc1"].substitutions == first  # reset restarts the same streams
