"""Structured pruning: bookkeeping of kept channels, equivalence with zeroed channels, L1
scores, fine-tuning cache, the Table II search and the errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnmap import TrainConfig, build_model, load_dataset, train
from nnmap.cost import model_cost
from nnmap.prune import (
    FinetuneConfig,
    PruneConfig,
    PruneError,
    _largest,
    l1_scores,
    prune_and_finetune,
    prune_model,
    search_ratios,
)

torch.set_num_threads(1)


def _zero_channels(model: nn.Module, kept: dict[str, list[int]]) -> nn.Module:
    """The unpruned model with every removed channel silenced (weights, bias, BN -> 0)."""
    import copy

    z = copy.deepcopy(model)
    modules = dict(z.named_modules())
    names = list(kept)
    with torch.no_grad():
        for name in names:
            layer = modules[name]
            drop = [c for c in range(layer.weight.shape[0]) if c not in kept[name]]
            layer.weight[drop] = 0
            if layer.bias is not None:
                layer.bias[drop] = 0
            # a batch norm right after a conv of vgg_small: features.k -> features.k+1
            parent, _, idx = name.rpartition(".")
            bn = modules.get(f"{parent}.{int(idx) + 1}") if idx.isdigit() else None
            if isinstance(bn, nn.BatchNorm2d):
                bn.weight[drop] = 0
                bn.bias[drop] = 0
    return z


@pytest.mark.parametrize("name", ["lenet5", "vgg_small"])
def test_pruned_model_equals_the_model_with_silenced_channels(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 1, 10, 28).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    scores = {n: torch.rand(m.weight.shape[0]) for n, m in model.named_modules()
              if isinstance(m, nn.Conv2d | nn.Linear)}
    pruned, kept = prune_model(model, scores, conv_ratio=0.5, fc_ratio=0.25)
    last = list(kept)[-1]
    for layer, idx in kept.items():
        c = len(scores[layer])
        if layer == last:
            assert idx == list(range(c))          # the classes are never pruned
            continue
        ratio = 0.5 if "conv" in layer or layer.startswith("features") else 0.25
        assert len(idx) == c - int(ratio * c)
        assert idx == sorted(idx)
        # the kept channels are the highest-scoring ones
        top = torch.sort(-scores[layer], stable=True).indices[:len(idx)].sort().values
        assert idx == top.tolist()
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), _zero_channels(model, kept)(x), rtol=1e-5,
                                   atol=1e-5)
    assert model_cost(pruned, (1, 28, 28)).parameters < model_cost(model, (1, 28, 28)).parameters
    again, same = prune_model(model, None, kept=kept)  # rebuild from the bookkeeping
    assert same == kept
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                 pruned.state_dict().values(), strict=True))


def test_lenet5_flatten_bookkeeping() -> None:
    model = build_model("lenet5", 1, 10, 28).eval()
    scores = {n: torch.arange(m.weight.shape[0], dtype=torch.float64)
              for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    pruned, kept = prune_model(model, scores, conv_ratio=0.25, fc_ratio=0.5)
    assert kept["conv2"] == list(range(4, 16))
    assert pruned.fc1.in_features == 12 * 25 and pruned.fc1.out_features == 60
    # fc1's inputs are conv2 channel c's 5x5 block: columns c*25 .. c*25+24
    torch.testing.assert_close(pruned.fc1.weight[:, :25], model.fc1.weight[60:, 100:125])


def test_l1_scores() -> None:
    conv = nn.Conv2d(1, 2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]], [[[3.0, 0.0], [0.0, 0.0]]]]))
    assert l1_scores(nn.Sequential(conv))["0"].tolist() == [3.5, 3.0]


def test_errors() -> None:
    with pytest.raises(PruneError, match="plain chains"):
        prune_model(build_model("resnet20", 3, 10, 32), None, conv_ratio=0.5)
    with pytest.raises(PruneError, match=r"conv_ratio must be in \[0, 1\)"):
        PruneConfig(conv_ratio=1.0)
    with pytest.raises(PruneError, match="criterion"):
        PruneConfig(criterion="random")


def test_largest_ratio_bisection() -> None:
    calls: list[float] = []

    def ok(r: float) -> bool:
        calls.append(r)
        return r <= 0.55

    assert _largest([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], ok) == 0.5
    assert len(calls) <= 4
    assert _largest([0.5, 0.9], lambda r: False) == 0.0


@pytest.mark.slow
def test_finetune_cache_and_table2_search(tmp_path: object) -> None:
    data = load_dataset("fashion-mnist-subset")
    cfg = TrainConfig(dataset="fashion-mnist-subset", epochs=1)
    base = train(cfg, data, cache=tmp_path, progress=False)  # type: ignore[arg-type]
    config = PruneConfig("l1", 0.5, 0.5, FinetuneConfig(epochs=1))
    first = prune_and_finetune(base.model, data, config, cfg, cache=tmp_path)  # type: ignore
    assert not first.from_cache and len(first.history) == 1
    second = prune_and_finetune(base.model, data, config, cfg, cache=tmp_path)  # type: ignore
    assert second.from_cache and second.accuracy == first.accuracy
    assert second.kept == first.kept
    # fine-tuning helps the pruned network recover
    assert first.accuracy > first.accuracy_pruned
    chosen, points = search_ratios(base.model, data, cfg, None, criterion="l1",
                                   tolerance=1.0, grid=(0.3, 0.6),
                                   finetune_config=FinetuneConfig(epochs=0),
                                   cache=tmp_path)  # type: ignore[arg-type]
    # tolerance 1.0 accepts everything: the largest FC, then conv ratio of the grid
    assert (chosen.config.fc_ratio, chosen.config.conv_ratio) == (0.6, 0.6)
    assert all(p["within"] for p in points)
