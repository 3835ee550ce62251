"""Settings of the timing-error study: the typed config, its presets and its variants.

:class:`TimingStudyConfig` is stored with every result (``settings.json``) and, minus the
fields that are trial parameters, in every campaign's key. :data:`QUICK` and :data:`FULL`
are what ``--quick`` and a full run use for the options the user did not give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from flipclock.errors import UserError

from ..base import StudyConfig

__all__ = ["FULL", "HEADLINE_VARIANTS", "PAPER_DROPS", "QUICK", "VARIANTS", "StudyError",
           "TimingStudyConfig", "variant_config"]

#: Accuracy variants of a scenario. ``WD+EAQ`` and ``EAQ`` design Table III the paper's way
#: (every weight multiplied by every activation code equally often: uniform activations);
#: ``.../measured-acts`` design it with the layer's measured activation histogram (an extra).
VARIANTS = ("TError", "WD+EAQ", "EAQ", "WD+EAQ/measured-acts", "EAQ/measured-acts")
#: The paper-faithful variants (the headline).
HEADLINE_VARIANTS = ("TError", "WD+EAQ", "EAQ")

#: The paper's LeNet-5 TError drops (N_baseline - N_TError, accuracy fractions) at 1.5 sigma,
#: Table V: MNIST 98.31 - 94.49 and CIFAR-10 73.16 - 68.02.
PAPER_DROPS = {"LeNet-5 + MNIST": 0.0382, "LeNet-5 + CIFAR-10": 0.0514}

#: What ``--quick`` changes (unless the option is given explicitly).
QUICK: dict[str, Any] = {
    "epochs": 4, "test_images": 500, "seeds": 3, "sens_images": 2000, "stream_images": 500,
    "batch_size": 500, "periods": (32,), "table_samples": 16, "dataflow_sampling": "sample",
    "dataflow_samples": 16, "models": 1}
#: The full study's values of the same options.
FULL: dict[str, Any] = {
    "epochs": 5, "test_images": 2000, "seeds": 3, "sens_images": None, "stream_images": 2000,
    "batch_size": 1000, "dataflow_sampling": "sample", "dataflow_samples": 16, "models": 3}


class StudyError(UserError, ValueError):
    """A study setting, table or input does not fit (the message names the fix)."""


def _positive(name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        what = "a positive integer or None" if optional else "a positive integer"
        raise StudyError(f"{name} must be {what}, not {value!r}")


@dataclass(frozen=True)
class TimingStudyConfig(StudyConfig):
    """Settings of a timing-error study (recorded with every result).

    Parameters
    ----------
    model, dataset, epochs, train_seed:
        What to train (:class:`~nnmap.train.TrainConfig`; the checkpoint is cached). Model and
        data set names come from the ``nnmap`` registries (``MODELS``, ``DATASETS``).
    models:
        Independently trained models (training seeds ``train_seed, train_seed + 1, ...``);
        every scenario runs on each, and every interval spans models x injection seeds.
    regulations:
        Regulation factors: names (``"1.5sigma"``, ``"2sigma"``, ``"3sigma"``) or numbers in
        ``(0, 1]``.
    seeds:
        Error-injection runs per (network, regulation); at least 2 for a CI.
    seed:
        Base seed: run ``i`` uses seed ``1000 * seed + i``.
    test_images:
        First ``n`` test images (all when ``None``).
    batch_size:
        Images per forward pass.
    wd_fraction:
        Fraction of weights considered for weight distribution (paper: 1 %).
    act_dists:
        Table III activation marginals to run mitigation with: ``"uniform"`` (the paper's,
        the headline) and/or ``"layer"`` (measured per layer, an extra at the chosen period).
    target_drop, rule_regulation:
        The pre-registered period rule: the period whose TError drop (N_baseline - N_TError,
        mean over models and seeds) at ``rule_regulation`` is closest to ``target_drop``.
    compare_port:
        Also run the headline variants with the weight on the other multiplier port at the
        chosen period.
    sens_images:
        Training images for the sensitivities (all when ``None``).
    stream_images:
        Training images for the operand-stream statistics.
    weights, weight_port:
        INT8 quantization: ``"per-channel"``/``"per-tensor"`` weights; multiplier port of the
        weight (``"a"`` or ``"b"``).
    quick:
        A ``--quick`` run (small sizes; the report says QUICK). It shapes no trial.
    """

    FORMAT: ClassVar[str] = "flipclock.study.timing"
    VERSION: ClassVar[int] = 2

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 5
    train_seed: int = 0
    models: int = 3
    regulations: tuple[str, ...] = ("1.5sigma", "2sigma")
    seeds: int = 3
    seed: int = 0
    test_images: int | None = None
    batch_size: int = 1000
    wd_fraction: float = 0.01
    act_dists: tuple[str, ...] = ("uniform", "layer")
    target_drop: float = 0.045
    rule_regulation: str = "1.5sigma"
    compare_port: bool = True
    sens_images: int | None = None
    stream_images: int = 2000
    weights: str = "per-channel"
    weight_port: str = "a"
    quick: bool = False

    def __post_init__(self) -> None:
        from nnmap.data import DATASETS
        from nnmap.timing import regulation_factor

        object.__setattr__(self, "regulations", tuple(str(r) for r in self.regulations))
        object.__setattr__(self, "act_dists", tuple(self.act_dists))
        if self.dataset not in DATASETS:
            raise StudyError(f"Unknown data set {self.dataset!r}; choose one of "
                             f"{', '.join(sorted(DATASETS))}")
        if not self.regulations:
            raise StudyError("Give at least one regulation factor (e.g. --regulation 1.5sigma)")
        for r in self.regulations:
            regulation_factor(r)  # an InjectionError (a user error) names the accepted forms
        for name in ("seeds", "epochs", "batch_size", "stream_images", "models"):
            _positive(name, getattr(self, name))
        for name in ("test_images", "sens_images"):
            _positive(name, getattr(self, name), optional=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise StudyError(f"seed must be an integer >= 0, not {self.seed!r}")
        if not 0 <= self.wd_fraction <= 1:  # also refuses NaN
            raise StudyError(f"wd_fraction must be in [0, 1], not {self.wd_fraction!r}")
        bad = [a for a in self.act_dists if a not in ("layer", "uniform")]
        if bad or not self.act_dists or len(set(self.act_dists)) != len(self.act_dists):
            raise StudyError(f"act_dists must be 'uniform' and/or 'layer' (each once), not "
                             f"{list(self.act_dists)!r}")
        if not 0 < self.target_drop < 1:  # also refuses NaN
            raise StudyError(f"target_drop must be in (0, 1), not {self.target_drop!r}")
        if self.rule_regulation not in self.regulations:
            raise StudyError(f"The period rule reads the drop at {self.rule_regulation!r}, "
                             f"which is not among the regulations {list(self.regulations)}; "
                             "add it (--regulation)")
        self.quant_config()  # validates weights / weight_port
        self.train_config()  # validates the model against nnmap's registry

    def quant_config(self) -> Any:
        """The INT8 quantization settings (:class:`nnmap.quant.QuantConfig`)."""
        from nnmap.quant import QuantConfig

        return QuantConfig(weights=self.weights, weight_port=self.weight_port)

    def train_config(self, model: int = 0) -> Any:
        """The training settings of model ``model`` (:class:`nnmap.train.TrainConfig`, the
        checkpoint key): training seed ``train_seed + model``."""
        from nnmap.train import TrainConfig

        return TrainConfig(model=self.model, dataset=self.dataset, epochs=self.epochs,
                           seed=self.train_seed + model)

    @property
    def other_port(self) -> str:
        """The multiplier port the weight is *not* on in the headline."""
        return "b" if self.weight_port == "a" else "a"

    def variants(self, extras: bool = True) -> tuple[str, ...]:
        """The accuracy variants this config runs (see :data:`VARIANTS`): the headline ones
        when ``uniform`` is among :attr:`act_dists`, and with ``extras`` the
        measured-activation ones when ``layer`` is."""
        out = ["TError"]
        if "uniform" in self.act_dists:
            out += ["WD+EAQ", "EAQ"]
        if extras and "layer" in self.act_dists:
            out += ["WD+EAQ/measured-acts", "EAQ/measured-acts"]
        return tuple(out)

    def trial_settings(self) -> dict[str, Any]:
        """The fields that shape a trial's result (seeds, regulations and variants are trial
        parameters; the model count, the period rule and ``quick`` shape no single trial; the
        training seed is stored per model)."""
        skip = ("seeds", "regulations", "act_dists", "quick", "format", "version", "models",
                "target_drop", "rule_regulation", "compare_port", "train_seed")
        return {k: v for k, v in self.to_dict().items() if k not in skip}


def variant_config(variant: str, wd_fraction: float) -> Any:
    """The :class:`nnmap.mitigation.MitigationConfig` of an accuracy variant."""
    from nnmap.mitigation import MitigationConfig

    act = "layer" if variant.endswith("/measured-acts") else "uniform"
    wd = wd_fraction if variant.startswith("WD") else 0.0
    return MitigationConfig(wd_fraction=wd, eaq=True, act_dist=act)
