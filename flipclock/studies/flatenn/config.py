"""The FlatENN study's settings (:class:`FlatStudyConfig`) and the data cut they name.

Every setting that shapes a result is a field, so the JSON form (``settings.json``, via
:class:`flipclock.studies.base.StudyConfig`) reproduces a run. Validation happens on
construction and on reading, with one-line messages that name the fix.
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
from nnmap.sram_faults import FAULT_KINDS, SramFaultError, SramGeometry, check_rate

__all__ = ["LABELS", "FlatStudyConfig", "FlatStudyError", "load_study_data"]

LABELS = ("standard", "AS", "standard+SAQ", "AS+SAQ")
"""The four models of the study, in plotting order."""


class FlatStudyError(UserError, ValueError):
    """A study setting is invalid (the message names the fix)."""


def _positive(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        what = "a positive integer or None" if optional else "a positive integer"
        raise FlatStudyError(f"{name} must be {what}, not {value!r}")


@dataclass(frozen=True)
class FlatStudyConfig(StudyConfig):
    """Everything that shapes a study's results.

    Parameters
    ----------
    model, dataset:
        Network (``lenet5``, ``resnet20``, ``resnet18``) and data set (``fashion-mnist``,
        ``cifar10``...; aliases such as ``fmnist`` accepted).
    epochs:
        Conventional training epochs (SAQ models get ``max(1, epochs // 2)``).
    batch_size, lr, momentum, weight_decay, seed:
        SGD settings shared by all models.
    weight_bits, act_bits:
        Bit widths (the paper: 4 and 4).
    alphas:
        Candidate L1 strengths for the AS model (see :mod:`.training`).
    match_tolerance:
        Largest allowed fault-free accuracy gap standard vs AS (fraction).
    match_refine:
        Extra alphas tried by bisecting the edge of the tolerance.
    rho_ablation:
        Also run the highest fault rate on the SAQ models of the other radii (beyond the
        paper: does the accuracy-maximising rho leave fault tolerance on the table?).
    rhos:
        Candidate SAQ radii.
    kinds, rates, trials:
        Fault kinds, fault rates (fractions in [0, 1]) and Monte Carlo trials per point.
    fault_seed:
        Seed of the fault maps.
    sram:
        Weight-buffer geometry ``"WIDTHxDEPTH[xBANKS]"``; ``None`` fits one to the model.
    train_limit, test_limit:
        Use only the first images of each split (``None``: all).
    landscape:
        Landscape settings.
    eval_batch:
        Images per inference batch.
    quick:
        A small run for demos and tests: the report says QUICK and supports no claim.
    """

    FORMAT: ClassVar[str] = "flipclock.study.flatenn"

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    weight_bits: int = 4
    act_bits: int = 4
    alphas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    match_tolerance: float = 0.005
    match_refine: int = 2
    rho_ablation: bool = True
    rhos: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2)
    kinds: tuple[str, ...] = FAULT_KINDS
    rates: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)
    trials: int = 30
    fault_seed: int = 0
    sram: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    landscape: LandscapeConfig = field(default_factory=LandscapeConfig)
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
        for name in ("epochs", "trials", "batch_size", "eval_batch"):
            _positive(name, getattr(self, name))
        for name in ("train_limit", "test_limit"):
            _positive(name, getattr(self, name), optional=True)
        if not self.kinds or not self.rates:
            raise FlatStudyError("Give at least one fault kind and one fault rate")
        for kind in self.kinds:
            if kind not in FAULT_KINDS:
                raise SramFaultError(f"Unknown fault kind {kind!r}; choose from "
                                     f"{', '.join(FAULT_KINDS)}")
        for rate in self.rates:
            check_rate(rate)
        # `not a > 0` also refuses NaN, which every comparison answers False.
        if not self.alphas or any(not a > 0 or a == float("inf") for a in self.alphas):
            raise FlatStudyError(f"alphas must be finite numbers > 0, not {self.alphas!r}")
        if not self.rhos or any(not r >= 0 or r == float("inf") for r in self.rhos):
            raise FlatStudyError(f"rhos must be finite numbers >= 0, not {self.rhos!r}")
        if not 0 <= self.match_tolerance < 1:
            raise FlatStudyError(f"match_tolerance must be in [0, 1), not "
                                 f"{self.match_tolerance!r}")
        if self.sram is not None:
            SramGeometry.parse(self.sram)

    @classmethod
    def for_model(cls, model: str, dataset: str, *, quick: bool = False,
                  **changes: Any) -> FlatStudyConfig:
        """The paper's settings for ``model`` (ResNets: rates up to 3 %), or a quick run."""
        base: dict[str, Any] = {"model": model, "dataset": dataset, "quick": quick}
        if model != "lenet5":
            base.update(rates=(0.0, 0.005, 0.01, 0.02, 0.03), epochs=20)
        if quick:
            base.update(epochs=4, batch_size=32, alphas=(0.05, 0.2), rhos=(0.05, 0.2), trials=5,
                        match_refine=0, train_limit=4000, test_limit=1000,
                        rates=(0.0, 0.02, 0.05) if model == "lenet5" else (0.0, 0.01, 0.03),
                        landscape=LandscapeConfig(samples=500, points_1d=9, points_2d=5,
                                                  directions=2, fault_samples=1))
        base.update(changes)
        return cls(**base)

    @property
    def saq_epochs(self) -> int:
        """Epochs of the SAQ models (half the conventional ones: same cost)."""
        return max(1, self.epochs // 2)

    @property
    def max_rate(self) -> float:
        """The highest fault rate: where the headline comparisons are read."""
        return max(self.rates)

    def train_config(self, *, alpha: float = 0.0, method: str = "conventional",
                     rho: float = 0.0) -> FlatTrainConfig:
        """The :class:`~nnmap.saq.FlatTrainConfig` of one model of the study."""
        return FlatTrainConfig(
            model=self.model, dataset=DATASETS.get(self.dataset.lower(), self.dataset),
            epochs=self.saq_epochs if method == "saq" else self.epochs,
            batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, seed=self.seed, method=method,
            rho=rho if method == "saq" else 0.0,
            qat=QATConfig(weight_bits=self.weight_bits, act_bits=self.act_bits),
            sparsity=SparsityConfig(alpha=alpha))


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
