"""Training: config JSON, determinism, content-hash checkpoint cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from nnmap import ConfigError, DataSplits, TrainConfig, evaluate, load_dataset, train
from nnmap.train import _augment, cache_dir, checkpoint_key
from sim.config import ConfigError as SimConfigError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small() -> DataSplits:
    """2000 training and 200 test images of the embedded subset."""
    d = load_dataset("fashion-mnist-subset")
    x, y = d.train.tensors
    xt, yt = d.test.tensors
    return DataSplits(TensorDataset(x[:2000], y[:2000]), TensorDataset(xt[:200], yt[:200]), d.info)


CFG = TrainConfig(model="lenet5", dataset="fashion-mnist-subset", epochs=2, batch_size=32)


def test_config_json_round_trip() -> None:
    cfg = replace(CFG, optimizer="adam", augment=True, lr=1e-3)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(SimConfigError, match=r"unknown TrainConfig settings: lr_max"):
        TrainConfig.from_json('{"lr_max": 1}')


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "vgg"}, "Unknown model 'vgg'; choose one of alexnet, lenet5, resnet18, "
                      "resnet20, vgg11, vgg16, vgg_small"),
    ({"epochs": 0}, "epochs must be a positive integer, not 0"),
    ({"optimizer": "rmsprop"}, "optimizer must be 'sgd' or 'adam', not 'rmsprop'"),
    ({"lr": -1.0}, "lr must be positive, not -1.0"),
    ({"schedule": "step"}, "schedule must be 'cosine' or 'constant', not 'step'"),
])
def test_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**kwargs)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_checkpoint_key_depends_on_config_and_data() -> None:
    k = checkpoint_key(CFG, "f" * 64)
    assert k == checkpoint_key(TrainConfig.from_json(CFG.to_json()), "f" * 64)
    assert k != checkpoint_key(replace(CFG, seed=1), "f" * 64)
    assert k != checkpoint_key(CFG, "e" * 64)


def test_cache_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIPCLOCK_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("FLIPCLOCK_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "flipclock"


def test_training_is_seeded_and_cached(small: DataSplits, tmp_path: Path) -> None:
    first = train(CFG, small, cache=tmp_path, progress=False)
    assert not first.from_cache and first.checkpoint is not None and first.checkpoint.is_file()
    assert first.checkpoint.with_suffix(".json").is_file()
    assert not list(first.checkpoint.parent.glob(".*tmp"))  # atomic: no leftovers
    again = train(CFG, small, cache=tmp_path, progress=False)
    assert again.from_cache and again.history == first.history
    fresh = train(CFG, small, use_cache=False, progress=False)
    for (name, a), b in zip(first.model.state_dict().items(), fresh.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    acc = evaluate(again.model, small.test)
    assert acc == pytest.approx(first.test_accuracy)
    assert acc > 0.5  # two epochs on 2000 images already learn something


def test_damaged_checkpoint_is_retrained(small: DataSplits, tmp_path: Path) -> None:
    first = train(CFG, small, cache=tmp_path, progress=False)
    assert first.checkpoint is not None
    first.checkpoint.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="Ignoring unreadable checkpoint"):
        again = train(CFG, small, cache=tmp_path, progress=False)
    assert not again.from_cache and again.history[0]["loss"] == first.history[0]["loss"]


def test_data_must_match_config(small: DataSplits) -> None:
    with pytest.raises(ConfigError, match="config.dataset is 'mnist'"):
        train(replace(CFG, dataset="mnist"), small, use_cache=False, progress=False)


def test_augmentation_keeps_shape_and_is_seeded() -> None:
    x = torch.randn(8, 3, 32, 32)
    a = _augment(x, torch.Generator().manual_seed(3))
    b = _augment(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    # every output image is a shifted (possibly mirrored) window of the zero-padded input
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(8):
        windows = [padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(a[i], w) or torch.equal(a[i], w.flip(2)) for w in windows)
