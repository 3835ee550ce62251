"""Timing-error injection: exact substitution, rates, output distribution, seeds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from nnmap import (
    InjectionError,
    MacLayer,
    QuantConfig,
    TimingInjector,
    binomial_ci,
    build_model,
    chi2_sf,
    quantize,
    regulation_factor,
    seed_sweep,
    synthetic_table,
)
from sim.tables import CompressedTable, signed_values

torch.set_num_threads(1)

METHODS = ["thinning", "stratified"]
V = signed_values(8)
EXACT = np.multiply.outer(V, V).ravel()


def _flip(product: np.ndarray, mask: int) -> np.ndarray:
    """A 16-bit product with ``mask`` bits flipped, as a signed value."""
    raw = (product & 0xFFFF) ^ mask
    return np.where(raw >= 1 << 15, raw - (1 << 16), raw)


def _table(p: np.ndarray, outputs: Callable[[int], list[tuple[int, float]]] | None = None
           ) -> CompressedTable:
    """A table from ``p[code(a), code(b)]``; each error-prone pair gets ``outputs(pair)``
    (a list of (wrong output, conditional probability)) or the product with bit 14 flipped."""
    flat = p.ravel()
    offsets = np.zeros(65537, np.int64)
    outs: list[int] = []
    probs: list[float] = []
    for pair in np.flatnonzero(flat > 0):
        entries = outputs(int(pair)) if outputs else [(int(_flip(EXACT[pair], 0x4000)), 1.0)]
        outs += [o for o, _ in entries]
        probs += [flat[pair] * c for _, c in entries]
        offsets[pair + 1] = len(entries)
    return CompressedTable(width=8, period=10, p_wrong=p.astype(np.float64),
                           offsets=np.cumsum(offsets), wrong_output=np.array(outs, np.int64),
                           wrong_prob=np.array(probs), n_prev=np.full((256, 256), 256, np.int64))


def _layer(kind: str, w: torch.Tensor, shape: tuple[int, ...], stride: int = 1, pad: int = 0,
           port: str = "a") -> MacLayer:
    o = w.shape[0]
    return MacLayer("t", kind, w.to(torch.int8), torch.ones(o, dtype=torch.float64),
                    torch.zeros(o, dtype=torch.float64), 1.0, shape, stride, pad, port)


def _reference(x: np.ndarray, w: np.ndarray, stride: int, pad: int,
               substitute: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Explicit loops over every product; ``substitute(w, a)`` says which are replaced."""
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    ho, wo = (xp.shape[2] - kh) // stride + 1, (xp.shape[3] - kw) // stride + 1
    out = np.zeros((n, o, ho, wo), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            for ci in range(c):
                for ky in range(kh):
                    for kx in range(kw):
                        a = xp[:, ci, oy * stride + ky, ox * stride + kx][:, None]
                        wv = w[:, ci, ky, kx].astype(np.int64)[None, :]
                        prod = a * wv
                        out[:, :, oy, ox] += np.where(substitute(wv, a), _flip(prod, 0x4000),
                                                      prod)
    return out


# --- (a) every affected product is substituted ------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("kernel", "stride", "pad"), [(3, 1, 1), (3, 2, 1), (3, 1, 0),
                                                       (1, 2, 0), (5, 1, 2)])
@pytest.mark.parametrize("port", ["a", "b"])
def test_always_wrong_weight_is_always_substituted(method: str, kernel: int, stride: int,
                                                   pad: int, port: str) -> None:
    w0 = -3
    p = np.zeros((256, 256))
    if port == "a":
        p[w0 & 0xFF, :] = 1.0  # weight on a: every pair whose a is w0
    else:
        p[:, w0 & 0xFF] = 1.0
    g = torch.Generator().manual_seed(kernel + stride + 3 * pad)
    w = torch.randint(-5, 6, (3, 2, kernel, kernel), generator=g)
    x = torch.randint(-127, 128, (4, 2, 7, 7), generator=g).to(torch.int8)
    layer = _layer("conv", w, (2, 7, 7), stride, pad, port)
    acc = layer.accumulate(x)
    inj = TimingInjector(_table(p), 1.0, seed=0, method=method)
    inj(layer, x, acc)
    ref = _reference(x.numpy(), w.numpy(), stride, pad, lambda wv, a: np.broadcast_to(
        wv == w0, np.broadcast_shapes(wv.shape, a.shape)))
    np.testing.assert_array_equal(acc.numpy().astype(np.int64), ref)
    assert inj.stats["t"].substitutions == int((w.numpy() == w0).sum()) * 4 * ref[0, 0].size


@pytest.mark.parametrize("method", METHODS)
def test_port_orientation_matters(method: str) -> None:
    """A table whose row ``a = 5`` always errs hits weight 5 on port a, activation 5 on b."""
    p = np.zeros((256, 256))
    p[5, :] = 1.0
    x = torch.tensor([[5, 1, 2], [3, 5, 5]], dtype=torch.int8)
    w = torch.tensor([[5, 2, 3], [1, 1, 1]])
    def weight_is_5(wv: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(wv == 5, np.broadcast_shapes(wv.shape, a.shape))

    def activation_is_5(wv: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a == 5, np.broadcast_shapes(wv.shape, a.shape))

    for port, hit in (("a", weight_is_5), ("b", activation_is_5)):
        layer = _layer("linear", w, (3,), port=port)
        acc = layer.accumulate(x)
        TimingInjector(_table(p), 1.0, method=method)(layer, x, acc)
        ref = _reference(x.numpy()[:, :, None, None], w.numpy()[:, :, None, None], 1, 0, hit)
        np.testing.assert_array_equal(acc.numpy().astype(np.int64), ref[:, :, 0, 0])


@pytest.mark.parametrize("method", METHODS)
def test_substitution_is_uniform_over_positions(method: str) -> None:
    """One error-prone weight, r * p = 0.5: every output position (borders, padding and the
    stride lattice included) is hit at rate 0.5."""
    p = np.zeros((256, 256))
    p[7, :] = 1.0
    w = torch.zeros(2, 1, 3, 3, dtype=torch.int64)
    w[1, 0, 0, 2] = 7
    n = 3000
    x = torch.randint(-127, 128, (n, 1, 6, 6), generator=torch.Generator().manual_seed(5))
    layer = _layer("conv", w, (1, 6, 6), stride=2, pad=1)
    clean = layer.accumulate(x.to(torch.int8))
    acc = clean.clone()
    TimingInjector(_table(p), 0.5, seed=1, method=method)(layer, x.to(torch.int8), acc)
    hit = (acc != clean).numpy()
    assert not hit[:, 0].any()
    counts = hit[:, 1].sum(0)  # [3, 3] output positions
    for k in counts.ravel():
        lo, hi = binomial_ci(int(k), n, 0.9999)
        assert lo <= 0.5 <= hi, counts


@pytest.mark.parametrize("method", METHODS)
def test_small_chunks_give_the_same_substitutions(method: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Large layers are processed in chunks of weights; chunking must not change the result."""
    import nnmap.timing as timing

    monkeypatch.setattr(timing, "_CHUNK", 40)
    p = np.zeros((256, 256))
    p[2, :] = 1.0
    g = torch.Generator().manual_seed(4)
    w = torch.randint(0, 4, (4, 3, 3, 3), generator=g)
    x = torch.randint(-127, 128, (3, 3, 6, 6), generator=g).to(torch.int8)
    layer = _layer("conv", w, (3, 6, 6), 1, 1)
    acc = layer.accumulate(x)
    TimingInjector(_table(p), 1.0, method=method)(layer, x, acc)
    ref = _reference(x.numpy(), w.numpy(), 1, 1, lambda wv, a: np.broadcast_to(
        wv == 2, np.broadcast_shapes(wv.shape, a.shape)))
    np.testing.assert_array_equal(acc.numpy().astype(np.int64), ref)
    inj = TimingInjector(_table(np.full((256, 256), 0.2)), 0.5, seed=1, method=method)
    inj(layer, x, layer.accumulate(x))
    st = inj.stats["t"]
    lo, hi = binomial_ci(st.substitutions, st.products, 0.9999)
    assert lo <= 0.1 <= hi


# --- (b) substitution rates ------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_rate_with_constant_probability_is_binomial(method: str) -> None:
    p = np.full((256, 256), 0.2)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(-127, 128, (20, 4, 8, 8), generator=g).to(torch.int8)
    w = torch.randint(-127, 128, (6, 4, 3, 3), generator=g)
    layer = _layer("conv", w, (4, 8, 8), 1, 1)
    inj = TimingInjector(_table(p), 0.25, seed=4, method=method)
    inj(layer, x, layer.accumulate(x))
    st = inj.stats["t"]
    assert st.products == 20 * 64 * w.numel()
    lo, hi = binomial_ci(st.substitutions, st.products, 0.999)
    assert lo <= 0.05 <= hi


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("port", ["a", "b"])
def test_rate_per_operand_pair(method: str, port: str) -> None:
    """K = 1: each output is one product, so every (weight, activation) class is observable."""
    table = synthetic_table(seed=3, density=0.5, mean_p=0.3)
    r = 0.6
    weights = torch.tensor([[-128], [-3], [0], [1], [17], [90]])
    acts = np.array([-127, -1, 0, 2, 5, 64, 127])
    n = 6000
    codes = np.random.default_rng(0).integers(0, len(acts), n)
    x = torch.from_numpy(acts[codes][:, None]).to(torch.int8)
    layer = _layer("linear", weights, (1,), port=port)
    clean = layer.accumulate(x)
    acc = clean.clone()
    inj = TimingInjector(table, r, seed=11, method=method)
    inj(layer, x, acc)
    hit = (acc != clean).numpy()
    pw = inj.weight_probability(port)
    checked = 0
    for i, wv in enumerate(weights[:, 0].tolist()):
        for j, av in enumerate(acts):
            mask = codes == j
            k, m = int(hit[mask, i].sum()), int(mask.sum())
            expected = r * pw[wv & 0xFF, av & 0xFF]
            if expected == 0:
                assert k == 0
                continue
            lo, hi = binomial_ci(k, m, 1 - 1e-4)
            assert lo <= expected <= hi, (wv, av, k, m, expected)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("method", METHODS)
def test_total_matches_expected_substitutions(method: str) -> None:
    table = synthetic_table(seed=5, density=0.2, mean_p=0.2)
    g = torch.Generator().manual_seed(9)
    x = torch.randint(0, 128, (30, 3, 10, 10), generator=g).to(torch.int8)
    w = torch.randint(-127, 128, (5, 3, 3, 3), generator=g)
    layer = _layer("conv", w, (3, 10, 10), 2, 1)
    inj = TimingInjector(table, 0.3, seed=2, method=method)
    runs = 20
    for _ in range(runs):
        inj(layer, x, layer.accumulate(x))
    mean = runs * inj.expected_substitutions(layer, x)
    # a sum of independent Bernoullis: variance below the mean
    assert abs(inj.stats["t"].substitutions - mean) < 5 * np.sqrt(mean)


def test_expected_substitutions_by_brute_force() -> None:
    table = synthetic_table(seed=6, density=0.3, mean_p=0.2)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(-127, 128, (2, 2, 5, 5), generator=g).to(torch.int8)
    w = torch.randint(-127, 128, (3, 2, 3, 3), generator=g)
    layer = _layer("conv", w, (2, 5, 5), 1, 1, "b")
    total = 0.0
    xp = np.pad(x.numpy().astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    for n in range(2):
        for o in range(3):
            for oy in range(5):
                for ox in range(5):
                    for c in range(2):
                        for ky in range(3):
                            for kx in range(3):
                                a = xp[n, c, oy + ky, ox + kx] & 0xFF
                                total += table.p_wrong[a, int(w[o, c, ky, kx]) & 0xFF]
    inj = TimingInjector(table, 0.5)
    assert inj.expected_substitutions(layer, x) == pytest.approx(0.5 * total)


# --- (c) the wrong outputs follow the table --------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_wrong_outputs_follow_the_conditional_distribution(method: str) -> None:
    wv, av = 37, -90
    exact = wv * av
    entries = [(int(_flip(np.array(exact), m)), c)
               for m, c in ((0x8000, 0.1), (0x4000, 0.3), (0xC000, 0.45), (0x2000, 0.15))]
    p = np.zeros((256, 256))
    p[wv & 0xFF, av & 0xFF] = 0.5
    table = _table(p, lambda _: entries)
    n = 20000
    x = torch.full((n, 1), av, dtype=torch.int8)
    layer = _layer("linear", torch.tensor([[wv]]), (1,))
    acc = layer.accumulate(x)
    TimingInjector(table, 1.0, seed=3, method=method)(layer, x, acc)
    out = acc.numpy()[:, 0].astype(np.int64)
    wrong = out[out != exact]
    assert set(wrong) <= {o for o, _ in entries}
    lo, hi = binomial_ci(len(wrong), n, 0.9999)
    assert lo <= 0.5 <= hi
    observed = np.array([(wrong == o).sum() for o, _ in entries])
    expected = np.array([c for _, c in entries]) * len(wrong)
    stat = float(((observed - expected) ** 2 / expected).sum())
    assert chi2_sf(stat, len(entries) - 1) > 1e-3, (observed, expected)


# --- (d) seeds --------------------------------------------------------------------------------
def test_same_seed_same_result_and_reset() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28)
    x = torch.randn(16, 1, 28, 28)
    q = quantize(model, QuantConfig(), [(x, None)])
    table = synthetic_table(seed=1, density=0.5, mean_p=0.5)
    a = q(x, TimingInjector(table, 0.2, seed=7))
    b = q(x, TimingInjector(table, 0.2, seed=7))
    c = q(x, TimingInjector(table, 0.2, seed=8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    inj = TimingInjector(table, 0.2, seed=7)
    first = q(x, inj)
    inj.reset()
    assert torch.equal(q(x, inj), first) and torch.equal(first, a)
    assert not torch.equal(a, q(x))  # errors do change the logits
    assert set(inj.stats) == set(q.layers)


def test_no_errors_with_an_error_free_table() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28)
    x = torch.randn(8, 1, 28, 28)
    q = quantize(model, QuantConfig(), [(x, None)])
    inj = TimingInjector(_table(np.zeros((256, 256))), 1.0)
    assert torch.equal(q(x, inj), q(x))
    assert sum(s.substitutions for s in inj.stats.values()) == 0


def test_layer_selection() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28)
    x = torch.randn(8, 1, 28, 28)
    q = quantize(model, QuantConfig(), [(x, None)])
    inj = TimingInjector(_table(np.full((256, 256), 0.5)), 1.0, layers={"fc2"})
    q(x, inj)
    assert set(inj.stats) == {"fc2"} and inj.stats["fc2"].substitutions > 0


def test_seed_sweep_gives_a_confidence_interval() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, 28)
    x = torch.randn(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    q = quantize(model, QuantConfig(), [(x, None)])
    data = torch.utils.data.TensorDataset(x, y)
    sweep = seed_sweep(q, data, synthetic_table(seed=2, density=0.5, mean_p=0.5), "2sigma",
                       [0, 1, 2], batch_size=32)
    assert sweep.seeds == [0, 1, 2] and len(sweep.accuracies) == 3
    assert sweep.ci.low <= sweep.ci.mean <= sweep.ci.high and sweep.ci.n == 3
    assert sweep.regulation == 0.0227 and all(s > 0 for s in sweep.substitutions)


# --- errors a user can make ------------------------------------------------------------------
def test_regulation_factor() -> None:
    assert regulation_factor("1.5sigma") == 0.0668
    assert regulation_factor("2σ") == 0.0227
    assert regulation_factor(0.5) == 0.5 and regulation_factor("0.25") == 0.25
    assert regulation_factor(1) == 1.0
    for bad in (0, 1.5, -0.1):
        with pytest.raises(InjectionError, match=r"^Regulation factor must be in \(0, 1\], not"):
            regulation_factor(bad)
    with pytest.raises(InjectionError, match="is not a number; use a value in"):
        regulation_factor("fast")


def test_unusable_tables() -> None:
    t4 = CompressedTable(width=4, period=1, p_wrong=np.zeros((16, 16)),
                         offsets=np.zeros(257, np.int64), wrong_output=np.zeros(0, np.int64),
                         wrong_prob=np.zeros(0), n_prev=np.ones((16, 16), np.int64))
    with pytest.raises(InjectionError, match="needs an 8-bit table"):
        TimingInjector(t4, 0.5)
    bad = _table(np.full((256, 256), 0.1))
    bad.wrong_prob = bad.wrong_prob * 2
    with pytest.raises(InjectionError, match="do not add up to p_wrong"):
        TimingInjector(bad, 0.5)
    with pytest.raises(InjectionError, match="method must be"):
        TimingInjector(_table(np.zeros((256, 256))), 0.5, method="fast")
