"""The FlatENN study's settings (:class:`FlatStudyConfig`) and the data cuts they name.

Every setting that shapes a result is a field, so the JSON form (``settings.json``, via
:class:`flipclock.studies.base.StudyConfig`) reproduces a run. Validation happens on
construction and on reading, with one-line messages that name the fix.

Data cuts (:func:`load_study_data`, :func:`training_split`, :func:`trial_images`):

* the **training split** is the training set minus a **validation split** of ``val_size``
  images drawn by a seeded permutation (``split_seed``) of the training set; every model is
  trained on the training split only, and alpha and rho are chosen on the validation split;
* the **test set** is never used for a choice: fault-free accuracy and sparsity are measured
  on all of it, fault trials on its first ``trial_images`` images (the same images for every
  model and trial).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from flipclock.errors import UserError
from flipclock.studies.base import StudyConfig
from nnmap.data import DATASETS, DataSplits, load_dataset
from nnmap.landscape import LandscapeConfig
from nnmap.qat import QATConfig
from nnmap.saq import FlatTrainConfig
from nnmap.sparsity import SparsityConfig
from nnmap.sram_faults import (
    FAULT_KINDS,
    FAULT_UNITS,
    SramFaultError,
    SramGeometry,
    check_rate,
    check_unit,
)

__all__ = ["FlatStudyConfig", "FlatStudyError", "load_study_data", "trial_images",
           "training_split"]


class FlatStudyError(UserError, ValueError):
    """A study setting is invalid (the message names the fix)."""


def _positive(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        what = "a positive integer or None" if optional else "a positive integer"
        raise FlatStudyError(f"{name} must be {what}, not {value!r}")


def _full_landscape() -> LandscapeConfig:
    # Reduced from the module defaults (2000 images, 41 / 17 points) to fit the full run's
    # time budget; the report states these settings.
    return LandscapeConfig(samples=1000, points_1d=21, points_2d=9, directions=4,
                           fault_samples=1)


@dataclass(frozen=True)
class FlatStudyConfig(StudyConfig):
    """Everything that shapes a study's results.

    Parameters
    ----------
    model, dataset:
        Network (``lenet5``, ``resnet20``, ``resnet18``) and data set (``fashion-mnist``,
        ``cifar10``...; aliases such as ``fmnist`` accepted).
    epochs:
        Conventional training epochs ``E`` (paper-faithful SAQ models get ``E // 2``: the same
        number of gradient evaluations).
    batch_size, lr, momentum, weight_decay:
        SGD settings shared by all models (cosine schedule).
    seed, models:
        Training seeds ``seed, seed + 1, ..., seed + models - 1``: every variant is trained
        ``models`` times (replicates); CIs are over models x trials.
    val_size, split_seed:
        Size and seed of the validation split carved from the training set (alpha and rho
        are chosen on it, never on the test set).
    weight_bits, act_bits:
        Bit widths (the paper: 4 and 4).
    alphas:
        Candidate L1 strengths for the AS model (chosen on the validation split).
    match_tolerance:
        Largest allowed validation-accuracy gap standard vs AS (fraction).
    match_refine:
        Extra alphas tried by bisecting the edge of the tolerance.
    rhos:
        Candidate SAQ radii (a value whose model does not train is dropped, see
        :mod:`.training`).
    kinds, units, rates, trials:
        Fault kinds, fault-rate definitions (``bit``: per stored bit, ``weight``: per
        stored weight; :mod:`nnmap.sram_faults`), fault rates (fractions) and Monte Carlo
        trials per model and point.
    fault_seed:
        Seed of the fault maps (maps differ between model replicates and are shared by the
        variants of one replicate, so variant differences are paired).
    trial_images:
        Test images per fault trial (the first ones; ``None``: all).
    controls, control_kinds:
        Train and fault the SAQ controls (equal epochs, warm start), on these kinds.
    finetune_epochs, finetune_lr:
        The warm-start control: epochs and learning rate of the fine-tuning (conventional
        and SAQ alike) started from the trained conventional model.
    sram:
        Weight-buffer geometry ``"WIDTHxDEPTH[xBANKS]"``; ``None`` fits one to the model.
    train_limit, test_limit:
        Use only the first images of each set (``None``: all).
    landscapes, landscape:
        Compute the loss landscapes (seed-0 models; sharpness of every model), and how.
    eval_batch:
        Images per inference batch.
    quick:
        A small run for demos and tests: the report says QUICK and supports no claim.
    """

    FORMAT: ClassVar[str] = "flipclock.study.flatenn"

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    models: int = 3
    val_size: int = 5000
    split_seed: int = 0
    weight_bits: int = 4
    act_bits: int = 4
    alphas: tuple[float, ...] = (0.03, 0.06, 0.12, 0.24, 0.48)
    match_tolerance: float = 0.005
    match_refine: int = 0
    rhos: tuple[float, ...] = (0.02, 0.05, 0.1)
    kinds: tuple[str, ...] = FAULT_KINDS
    units: tuple[str, ...] = FAULT_UNITS
    rates: tuple[float, ...] = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05)
    trials: int = 4
    fault_seed: int = 0
    trial_images: int | None = 2000
    controls: bool = True
    control_kinds: tuple[str, ...] = ("flip",)
    finetune_epochs: int = 1
    finetune_lr: float = 0.005
    sram: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    landscapes: bool = True
    landscape: LandscapeConfig = field(default_factory=_full_landscape)
    eval_batch: int = 1000
    quick: bool = False

    def __post_init__(self) -> None:
        QATConfig(weight_bits=self.weight_bits, act_bits=self.act_bits)  # validates the bits
        if self.dataset.lower() not in DATASETS:
            raise FlatStudyError(f"Unknown data set {self.dataset!r}; choose one of "
                                 f"{', '.join(sorted(set(DATASETS.values())))}")
        self.train_config()  # validates model and SGD settings (nnmap.saq)
        if isinstance(self.match_refine, bool) or not isinstance(self.match_refine, int) or \
                self.match_refine < 0:
            raise FlatStudyError(f"match_refine must be an integer >= 0, not "
                                 f"{self.match_refine!r}")
        for name in ("epochs", "trials", "batch_size", "eval_batch", "models", "val_size",
                     "finetune_epochs"):
            _positive(name, getattr(self, name))
        for name in ("train_limit", "test_limit", "trial_images"):
            _positive(name, getattr(self, name), optional=True)
        if not self.kinds or not self.rates or not self.units:
            raise FlatStudyError("Give at least one fault kind, fault-rate unit and fault rate")
        for kind in (*self.kinds, *self.control_kinds):
            if kind not in FAULT_KINDS:
                raise SramFaultError(f"Unknown fault kind {kind!r}; choose from "
                                     f"{', '.join(FAULT_KINDS)}")
        if self.controls and not set(self.control_kinds) <= set(self.kinds):
            raise FlatStudyError(f"control_kinds {self.control_kinds!r} must be among the "
                                 f"kinds {self.kinds!r}")
        for unit in self.units:
            check_unit(unit)
        for rate in self.rates:
            check_rate(rate)
        if len(set(self.rates)) != len(self.rates):
            raise FlatStudyError(f"rates must not repeat, not {self.rates!r}")
        # `not a > 0` also refuses NaN, which every comparison answers False.
        if not self.alphas or any(not a > 0 or a == float("inf") for a in self.alphas):
            raise FlatStudyError(f"alphas must be finite numbers > 0, not {self.alphas!r}")
        if not self.rhos or any(not r > 0 or r == float("inf") for r in self.rhos):
            raise FlatStudyError(f"rhos must be finite numbers > 0, not {self.rhos!r}")
        if not 0 <= self.match_tolerance < 1:
            raise FlatStudyError(f"match_tolerance must be in [0, 1), not "
                                 f"{self.match_tolerance!r}")
        if not self.finetune_lr > 0:
            raise FlatStudyError(f"finetune_lr must be > 0, not {self.finetune_lr!r}")
        if self.sram is not None:
            SramGeometry.parse(self.sram)

    @classmethod
    def for_model(cls, model: str, dataset: str, *, quick: bool = False,
                  **changes: Any) -> FlatStudyConfig:
        """The study's settings for ``model`` (ResNets: rates up to 3 %), or a quick run."""
        base: dict[str, Any] = {"model": model, "dataset": dataset, "quick": quick}
        if model != "lenet5":
            base.update(rates=(0.0, 0.0025, 0.005, 0.01, 0.02, 0.03), epochs=20)
        if quick:
            base.update(epochs=2, batch_size=32, models=1, alphas=(0.05, 0.2),
                        rhos=(0.02, 0.05), trials=3, match_refine=0, train_limit=4000,
                        test_limit=1000, val_size=1000, trial_images=None,
                        rates=(0.0, 0.01, 0.05) if model == "lenet5" else (0.0, 0.01, 0.03),
                        landscape=LandscapeConfig(samples=500, points_1d=9, points_2d=5,
                                                  directions=2, fault_samples=1))
        base.update(changes)
        if quick and "val_size" not in changes:
            # A fifth of a small training cut, at most 1000 images.
            base["val_size"] = max(1, min(1000, (base.get("train_limit") or 5000) // 5))
        return cls(**base)

    @property
    def saq_epochs(self) -> int:
        """Epochs of the paper-faithful SAQ models (half the conventional ones: same cost)."""
        return max(1, self.epochs // 2)

    @property
    def max_rate(self) -> float:
        """The highest fault rate."""
        return max(self.rates)

    @property
    def train_seeds(self) -> list[int]:
        """The training seed of every model replicate."""
        return [self.seed + m for m in range(self.models)]

    def train_config(self, *, alpha: float = 0.0, method: str = "conventional",
                     rho: float = 0.0, seed: int | None = None, epochs: int | None = None,
                     lr: float | None = None, init: str | None = None) -> FlatTrainConfig:
        """The :class:`~nnmap.saq.FlatTrainConfig` of one model of the study (defaults: the
        paper-faithful epochs of ``method``, replicate 0)."""
        default_epochs = self.saq_epochs if method == "saq" else self.epochs
        return FlatTrainConfig(
            model=self.model, dataset=DATASETS.get(self.dataset.lower(), self.dataset),
            epochs=default_epochs if epochs is None else epochs,
            batch_size=self.batch_size, lr=self.lr if lr is None else lr,
            momentum=self.momentum, weight_decay=self.weight_decay,
            seed=self.seed if seed is None else seed, method=method,
            rho=rho if method == "saq" else 0.0,
            qat=QATConfig(weight_bits=self.weight_bits, act_bits=self.act_bits),
            sparsity=SparsityConfig(alpha=alpha), init=init)


def load_study_data(config: FlatStudyConfig, data_dir: str | os.PathLike[str] | None = None
                    ) -> DataSplits:
    """The data set, cut to ``train_limit``/``test_limit`` (the fingerprint records the cut)."""
    from torch.utils.data import TensorDataset

    data = load_dataset(config.dataset, data_dir)
    if config.train_limit is None and config.test_limit is None:
        return data
    x, y = data.train.tensors
    xt, yt = data.test.tensors
    n = min(len(x), config.train_limit or len(x))
    m = min(len(xt), config.test_limit or len(xt))
    fp = hashlib.sha256(f"{data.info.fingerprint}:train[:{n}]:test[:{m}]".encode()).hexdigest()
    info = replace(data.info, fingerprint=fp, n_train=n, n_test=m)
    return DataSplits(TensorDataset(x[:n], y[:n]), TensorDataset(xt[:m], yt[:m]), info)


def training_split(config: FlatStudyConfig, data: DataSplits) -> DataSplits:
    """``DataSplits(train=training split, test=validation split)``: what every model trains
    and is chosen on. The validation split is ``val_size`` images of the training set,
    drawn by a permutation seeded with ``split_seed``; the fingerprint names the cut."""
    import torch
    from torch.utils.data import TensorDataset

    x, y = data.train.tensors
    if config.val_size >= len(x):
        raise FlatStudyError(f"val_size {config.val_size} leaves no training images of "
                             f"{len(x)}; give a smaller val_size")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.split_seed))
    val, train = perm[:config.val_size], perm[config.val_size:]
    fp = hashlib.sha256(f"{data.info.fingerprint}:val{config.val_size}:seed"
                        f"{config.split_seed}".encode()).hexdigest()
    info = replace(data.info, fingerprint=fp, n_train=len(train), n_test=len(val))
    return DataSplits(TensorDataset(x[train], y[train]), TensorDataset(x[val], y[val]), info)


def trial_images(config: FlatStudyConfig, data: DataSplits) -> Any:
    """The test images of every fault trial: the first ``trial_images`` (a TensorDataset)."""
    from torch.utils.data import TensorDataset

    x, y = data.test.tensors
    n = len(x) if config.trial_images is None else min(len(x), config.trial_images)
    return TensorDataset(x[:n], y[:n])
