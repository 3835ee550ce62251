"""The hardening study's settings: one frozen config, stored with every result.

Every value is checked when the config is made (and when it is read back from
``settings.json``), so a bad setting is one line before any training starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from flipclock.errors import UserError
from flipclock.studies.base import StudyConfig

if TYPE_CHECKING:
    from nnmap.prune import FinetuneConfig
    from nnmap.train import TrainConfig
    from nnmap.vulnerability import VulnerabilityConfig

__all__ = ["DROP_LIMIT", "PAPER", "PAPER_BERS", "HardenStudyConfig", "HardenStudyError",
           "variant_name"]

PAPER_BERS = (1e-7, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2, 1e-1)
"""The BER sweep of the paper's Fig. 6."""

DROP_LIMIT = 0.05
"""An accuracy drop "not yet significant" (the paper: lower than 5 %): 5 percentage points."""

PAPER: dict[str, Any] = {
    "repetitions": 1000, "finetune_epochs": 10, "finetune_samples": 0, "eval_samples": 0,
    "prune_ratios": "25 % ... 90 %", "prune_grid": "an extensive exploration",
    "fig3_ratios": (0.0, 0.15, 0.25, 0.5, 0.75, 1.0), "fig4_ratios": (0.0, 0.05, 0.10, 0.15,
                                                                    0.25, 0.5),
    "models": 1, "finetune_seeds": 1}
"""The paper's settings where ours are lighter (the report lists both); ``0`` = all images."""

_QUICK: dict[str, Any] = {
    "epochs": 2, "bers": (1e-5, 1e-4, 1e-3), "repetitions": 3, "int8_repetitions": 2,
    "fig3_ratios": (0.0, 1.0), "fig4_ratios": (0.0, 0.15), "prune_ratios": (0.5,),
    "prune_grid": (0.3, 0.6), "finetune_epochs": 1, "finetune_samples": 0,
    "vuln_samples": 200, "eval_samples": 300, "rank_samples": 150, "rank_noise_trials": 2,
    "rank_scope": "conv", "timing_repeats": 1, "models": 1, "finetune_seeds": 2,
    "bisect_factor": 1.5, "quick": True}
"""The ``--quick`` sizes: a couple of minutes on two cores (one model: no model variance)."""


class HardenStudyError(UserError, ValueError):
    """A study setting is invalid (the message names the fix)."""


def variant_name(kind: str, ratio: float) -> str:
    """The name of a hardened variant, e.g. ``hardened-0.15`` or ``tmr-1``."""
    return f"{kind}-{ratio:g}"


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_ber(value: Any, what: str) -> None:
    if not (_finite(value) and 0 < value <= 1):
        raise HardenStudyError(f"{what} must be in (0, 1] (a fraction of bits, e.g. 1e-5), "
                               f"not {value!r}")


def _check_ratios(values: tuple[float, ...], what: str, *, open_ends: bool) -> None:
    for v in values:
        ok = _finite(v) and (0 < v < 1 if open_ends else 0 <= v <= 1)
        if not ok:
            span = "(0, 1)" if open_ends else "[0, 1] (0.15 = 15 %)"
            raise HardenStudyError(f"{what} must be in {span}, not {v!r}")


@dataclass(frozen=True)
class HardenStudyConfig(StudyConfig):
    """Everything that shapes the study's results.

    Parameters
    ----------
    model, dataset:
        Network (a name of :data:`nnmap.models.MODELS` with a plain chain of layers) and
        data set (:data:`nnmap.data.DATASETS`).
    epochs, train_seed:
        Baseline training (the other :class:`~nnmap.train.TrainConfig` fields default).
    models:
        Independently trained baselines (training seeds ``train_seed, train_seed + 1, ...``);
        every variant, campaign and pruning run is repeated on each, and every interval is
        a :func:`nnmap.stats.nested_ci` over them.
    finetune_seeds:
        Fine-tuning seeds per model and pruning point (``seed, seed + 1, ...``): each picks
        the fine-tuning subset and the batch order, shared by both criteria (paired).
    bers:
        BER sweep, each in ``(0, 1]``.
    repetitions, int8_repetitions:
        Fault-injection repetitions per float32 point (the paper: 1000) and per INT8 point.
    ratio:
        Hardening ratio of the main hardened model (the paper: 15 %).
    fig3_ratios, fig4_ratios:
        Hardening ratios of the Fig. 3 and Fig. 4 sweeps.
    fig3_ber, fig4_ber:
        Their BERs (``None``: the rules in :mod:`.study`).
    prune_ratios:
        Fig. 5 pruning ratios (conv and FC layers alike), each in ``(0, 1)``.
    prune_grid, prune_tolerance:
        Table II search grid and accuracy tolerance (fraction: 0.01 = 1 point).
    finetune_epochs, finetune_lr, finetune_samples:
        Fine-tuning after pruning (SGD) on a seeded subset of ``finetune_samples`` training
        images (``0``: all of them).
    bisect_factor:
        BER tolerance bisection stops when the bracket ``[passing, failing]`` is narrower
        than this factor (``1.1``: the tolerance is known to 10 %).
    vuln_samples:
        Training images Eq. (1) is averaged over.
    eval_samples:
        Test images of every fault trial (a seeded subset; ``0``: all).
    rank_samples, rank_noise_trials, rank_noise, rank_scope:
        Eq. (1) validation: test images per trial, noise draws per channel, noise standard
        deviation relative to the layer's weight standard deviation, and ``"all"`` layers or
        ``"conv"`` only.
    timing_repeats, timing_samples:
        Timed passes per variant (the best is reported, on one thread) over the first
        ``timing_samples`` test images (``0``: all).
    disagree:
        EDAC rule for two different in-interval copies.
    seed:
        Seeds every fault draw and sample choice.
    quick:
        Marks the small demo configuration (its report says QUICK).
    """

    FORMAT: ClassVar[str] = "flipclock.study.harden"

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 3
    train_seed: int = 0
    models: int = 3
    finetune_seeds: int = 2
    bers: tuple[float, ...] = PAPER_BERS
    repetitions: int = 20
    int8_repetitions: int = 5
    ratio: float = 0.15
    fig3_ratios: tuple[float, ...] = (0.0, 0.5, 1.0)
    fig4_ratios: tuple[float, ...] = (0.0, 0.15, 0.5)
    fig3_ber: float | None = None
    fig4_ber: float | None = None
    prune_ratios: tuple[float, ...] = (0.5, 0.75)
    prune_grid: tuple[float, ...] = (0.25, 0.5, 0.75)
    prune_tolerance: float = 0.01
    finetune_epochs: int = 2
    finetune_lr: float = 1e-3
    finetune_samples: int = 10000
    bisect_factor: float = 1.1
    vuln_samples: int = 500
    eval_samples: int = 500
    rank_samples: int = 300
    rank_noise_trials: int = 4
    rank_noise: float = 0.5
    rank_scope: str = "conv"
    timing_repeats: int = 3
    timing_samples: int = 2000
    disagree: str = "min"
    seed: int = 0
    quick: bool = False

    def __post_init__(self) -> None:
        self._check_rates()
        self._check_counts()
        if not (_finite(self.bisect_factor) and 1 < self.bisect_factor <= 10):
            raise HardenStudyError(f"bisect_factor must be in (1, 10] (1.1 = the BER "
                                   f"tolerance to 10 %), not {self.bisect_factor!r}")
        for name in ("prune_tolerance", "finetune_lr", "rank_noise"):
            v = getattr(self, name)
            if not (_finite(v) and v > 0):
                raise HardenStudyError(f"{name} must be a finite number > 0, not {v!r}")
        if self.rank_scope not in ("all", "conv"):
            raise HardenStudyError(f"rank_scope must be 'all' or 'conv', not {self.rank_scope!r}")
        from nnmap.harden import DISAGREE

        if self.disagree not in DISAGREE:
            raise HardenStudyError(f"disagree must be one of {', '.join(DISAGREE)}, not "
                                   f"{self.disagree!r}")

    def _check_rates(self) -> None:
        if not self.bers:
            raise HardenStudyError("Give at least one BER, e.g. --ber 1e-5,1e-4")
        for b in self.bers:
            _check_ber(b, "BER")
        for name in ("fig3_ber", "fig4_ber"):
            if getattr(self, name) is not None:
                _check_ber(getattr(self, name), name)
        _check_ratios((self.ratio,), "Hardening ratio", open_ends=False)
        _check_ratios(self.fig3_ratios, "Fig. 3 hardening ratios", open_ends=False)
        _check_ratios(self.fig4_ratios, "Fig. 4 hardening ratios", open_ends=False)
        _check_ratios(self.prune_ratios, "Pruning ratios", open_ends=True)
        _check_ratios(self.prune_grid, "Pruning grid ratios", open_ends=True)
        for name in ("fig3_ratios", "fig4_ratios", "prune_ratios", "prune_grid"):
            if not getattr(self, name):
                raise HardenStudyError(f"{name} needs at least one ratio")

    def _check_counts(self) -> None:
        for name in ("repetitions", "int8_repetitions", "vuln_samples", "rank_samples",
                     "rank_noise_trials", "timing_repeats", "epochs", "models",
                     "finetune_seeds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HardenStudyError(f"{name} must be a positive integer, not {v!r}")
        for name in ("eval_samples", "finetune_epochs", "finetune_samples", "train_seed",
                     "seed", "timing_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise HardenStudyError(f"{name} must be an integer >= 0, not {v!r}")

    @classmethod
    def for_model(cls, model: str = "lenet5", dataset: str = "fashion-mnist", *,
                  quick: bool = False, **changes: Any) -> HardenStudyConfig:
        """The default (or ``quick`` demo) configuration for a model, with ``changes``
        (``None`` values keep the default). The data set name is made canonical."""
        from nnmap.data import DATASETS

        canon = DATASETS.get(dataset.lower(), dataset)
        base: dict[str, Any] = {"model": model, "dataset": canon}
        if quick:
            base.update(_QUICK)
            if canon.startswith("fashion"):  # the embedded subset: no download, seconds
                base["dataset"] = "fashion-mnist-subset"
        base.update({k: v for k, v in changes.items() if v is not None})
        unknown = set(base) - {f.name for f in fields(cls)}
        if unknown:
            raise HardenStudyError(f"Unknown study setting(s) {sorted(unknown)}")
        for key in ("bers", "fig3_ratios", "fig4_ratios", "prune_ratios", "prune_grid"):
            if key in base:
                base[key] = tuple(base[key])
        return cls(**base)

    @property
    def train_seeds(self) -> list[int]:
        """The training seed of every model: ``train_seed, train_seed + 1, ...``."""
        return [self.train_seed + m for m in range(self.models)]

    @property
    def ft_seeds(self) -> list[int]:
        """The fine-tuning seeds: ``seed, seed + 1, ...``."""
        return [self.seed + k for k in range(self.finetune_seeds)]

    def train_config(self, train_seed: int | None = None) -> TrainConfig:
        """The :class:`~nnmap.train.TrainConfig` of the baseline of ``train_seed`` (default:
        the first)."""
        from nnmap.train import TrainConfig

        return TrainConfig(model=self.model, dataset=self.dataset, epochs=self.epochs,
                           seed=self.train_seed if train_seed is None else train_seed)

    def finetune(self, ft_seed: int | None = None) -> FinetuneConfig:
        """Fine-tuning after pruning (:class:`~nnmap.prune.FinetuneConfig`) with seed
        ``ft_seed`` (default: ``seed``)."""
        from nnmap.prune import FinetuneConfig

        return FinetuneConfig(epochs=self.finetune_epochs, lr=self.finetune_lr,
                              seed=self.seed if ft_seed is None else ft_seed)

    def vulnerability(self) -> VulnerabilityConfig:
        """The Eq. (1) settings (:class:`~nnmap.vulnerability.VulnerabilityConfig`)."""
        from nnmap.vulnerability import VulnerabilityConfig

        return VulnerabilityConfig(samples=self.vuln_samples, seed=self.seed)

    @property
    def main_variant(self) -> str:
        """The name of the main hardened model (``hardened-0.15`` by default)."""
        return variant_name("hardened", self.ratio)

    @property
    def sweep_variants(self) -> list[str]:
        """The variants of the float32 BER sweep and the tolerance bisection (TMR, four
        times the baseline's cost per trial, is measured at Fig. 3's BER only)."""
        return ["baseline", "intervals-only", self.main_variant, "pruned", "hardened-pruned"]
