"""SAQ: two passes per step, perturbation of the quantized weights, one BN update; trainer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from nnmap import DataSplits, load_dataset
from nnmap.qat import QATConfig, QATNet, build_qat
from nnmap.saq import (
    FlatTrainConfig,
    SAQError,
    checkpoint_key,
    conventional_step,
    saq_step,
    train_flat,
)
from nnmap.sparsity import SparsityConfig, activation_l1
from sim.config import ConfigError

torch.set_num_threads(1)

RHO = 0.05


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_dataset("fashion-mnist-subset")
    x, y = d.train.tensors
    return x[:64], y[:64]


def _net(name: str, x: torch.Tensor, seed: int = 0) -> QATNet:
    torch.manual_seed(seed)
    net = build_qat(name, x.shape[1], 10, x.shape[2], QATConfig())
    net.train()
    with torch.no_grad():
        net(x)  # initialise the activation ranges
    return net


def _opt(net: QATNet) -> torch.optim.Optimizer:
    return torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


def test_saq_step_perturbs_the_quantized_weights_and_updates_once(
        batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = batch
    sparsity = SparsityConfig(alpha=0.1)
    net = _net("lenet5", x)
    ref = copy.deepcopy(net)
    calls: list[bool] = []
    net.register_forward_pre_hook(lambda m, a: calls.append(m.training))
    seen: list[dict[str, torch.Tensor]] = []
    original = net.perturbed

    def spy(eps: Any) -> Any:
        seen.append({k: v.clone() for k, v in eps.items()})
        return original(eps)

    net.perturbed = spy  # type: ignore[method-assign]
    w_before = {n: net.weight_codes_of(n) * net.weight_scale(n) for n in net.mac_names}
    stats = saq_step(net, x, y, _opt(net), sparsity, RHO)
    assert calls == [True, True], "one step = two training-mode passes"
    assert len(seen) == 1

    # Reference by hand: gradient w.r.t. the quantized weights, eps = rho g / ||g||.
    ref_opt = _opt(ref)
    ref.record = True
    ce = F.cross_entropy(ref(x), y)
    loss = ce + activation_l1(ref.acts, sparsity)
    names = list(ref.qweights)
    assert names == ref.mac_names
    grads = torch.autograd.grad(loss, [ref.qweights[n] for n in names])
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))  # type: ignore[arg-type]
    eps = {n: RHO * g / norm for n, g in zip(names, grads, strict=True)}
    for n in names:
        np.testing.assert_allclose(seen[0][n].numpy(), eps[n].numpy(), rtol=1e-5, atol=1e-9)
    assert stats.eps_norm == pytest.approx(RHO, rel=1e-5)
    # Pass 2 multiplied with Q(w) + eps: the quantized weights perturbed, not re-quantized.
    for n in names:
        np.testing.assert_allclose(net.used_weights[n].detach().numpy(),
                                   (w_before[n] + eps[n]).numpy(), rtol=1e-5, atol=1e-7)
        off_grid = net.used_weights[n].detach() / net.weight_scale(n)
        assert float((off_grid - off_grid.round()).abs().max()) > 1e-3
    # ... and the update is SGD (with weight decay) on the second pass's gradient.
    ref_opt.zero_grad()
    with ref.frozen_statistics(), ref.perturbed(eps):
        ref.record = True
        loss2 = F.cross_entropy(ref(x), y) + activation_l1(ref.acts, sparsity)
        loss2.backward()
    ref_opt.step()
    for (n, p), (_, q) in zip(net.named_parameters(), ref.named_parameters(), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5,
                                   atol=1e-7, err_msg=n)
    ce2 = float(loss2.detach() - activation_l1(ref.acts, sparsity).detach())
    assert stats.perturbed_loss == pytest.approx(ce2, rel=1e-5)
    assert stats.perturbed_loss > stats.loss  # the perturbation is an ascent direction


def test_batch_norm_statistics_are_updated_once(batch: tuple[torch.Tensor, torch.Tensor]
                                                ) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    net = _net("resnet20", x)
    once, twice = copy.deepcopy(net), copy.deepcopy(net)
    with torch.no_grad():
        once(x)
        twice(x)
        twice(x)
    saq_step(net, x, y, _opt(net), SparsityConfig(), 0.1)
    bn = net.model.bn1
    assert int(bn.num_batches_tracked) == int(once.model.bn1.num_batches_tracked)
    for name, buf in net.named_buffers():
        ref = dict(once.named_buffers())[name]
        assert torch.equal(buf, ref), f"{name} was not updated exactly once"
    assert not torch.equal(dict(twice.named_buffers())["model.bn1.running_mean"],
                           bn.running_mean), "a second update would have been visible"


def test_rho_zero_is_the_conventional_step(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = batch
    a = _net("lenet5", x, seed=5)
    b = copy.deepcopy(a)
    saq_step(a, x, y, _opt(a), SparsityConfig(alpha=0.05), 0.0)
    conventional_step(b, x, y, _opt(b), SparsityConfig(alpha=0.05))
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5,
                                   atol=1e-8, err_msg=n)
    with pytest.raises(SAQError, match="rho must be >= 0"):
        saq_step(a, x, y, _opt(a), SparsityConfig(), -1.0)


def test_config_round_trip_and_errors() -> None:
    cfg = FlatTrainConfig(method="saq", rho=0.1, epochs=3, qat=QATConfig(weight_bits=3),
                          sparsity=SparsityConfig(alpha=0.2, per_layer={"fc1": 0.01}))
    assert FlatTrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(SAQError, match="method must be 'conventional' or 'saq', not 'sam'"):
        FlatTrainConfig(method="sam")
    with pytest.raises(SAQError, match="Unknown model 'vgg99'"):
        FlatTrainConfig(model="vgg99")
    with pytest.raises(ConfigError, match="unknown FlatTrainConfig settings: lr_max"):
        FlatTrainConfig.from_json('{"lr_max": 1}')
    # The checkpoint key reads the legacy form (no format, no version): old caches stay valid.
    legacy = json.loads(cfg.key_json())
    assert "format" not in legacy and FlatTrainConfig.from_dict(legacy) == cfg
    assert checkpoint_key(cfg, "fp") == checkpoint_key(FlatTrainConfig.from_json(cfg.to_json()),
                                                       "fp")


@pytest.mark.slow
def test_trainer_caches_and_saq_trains(tmp_path: Path) -> None:
    d = load_dataset("fashion-mnist-subset")
    x, y = d.train.tensors
    xt, yt = d.test.tensors
    small = DataSplits(TensorDataset(x[:1500], y[:1500]), TensorDataset(xt[:300], yt[:300]),
                       d.info)
    base = FlatTrainConfig(dataset="fashion-mnist-subset", epochs=2, batch_size=32)
    first = train_flat(base, small, cache=tmp_path, progress=False)
    assert not first.from_cache and first.checkpoint is not None
    assert first.test_accuracy > 0.5
    again = train_flat(base, small, cache=tmp_path, progress=False)
    assert again.from_cache and again.history == first.history
    for k, v in first.net.state_dict().items():
        assert torch.equal(v, again.net.state_dict()[k]), k
    saq = train_flat(base.with_(method="saq", rho=0.05, epochs=1), small, cache=tmp_path,
                     progress=False)
    assert saq.checkpoint != first.checkpoint
    h = saq.history[0]
    assert h["perturbed_loss"] > h["loss"] and saq.test_accuracy > 0.3
