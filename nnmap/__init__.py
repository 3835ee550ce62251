"""Neural-network mapping: quantized inference with timing errors and memory faults.

Reads error tables and fault maps as files or objects (``sim.tables`` is the only part of
``sim`` imported); never imports the simulators.

Modules: :mod:`~nnmap.data` (local data sets), :mod:`~nnmap.models` (LeNet-5, ResNet-20,
ResNet-18), :mod:`~nnmap.train` (seeded training, cached checkpoints), :mod:`~nnmap.quant`
(INT8 post-training quantization, integer-exact forward), :mod:`~nnmap.timing`
(per-multiplication product substitution), :mod:`~nnmap.stats` (confidence intervals),
:mod:`~nnmap.synthetic` (synthetic error tables), :mod:`~nnmap.campaign` (resumable Monte
Carlo campaigns), :mod:`~nnmap.bench` (benchmark).
"""

from __future__ import annotations

from .campaign import CampaignError, run_campaign, summarize, trial_key
from .data import DataError, DatasetInfo, DataSplits, RawSplits, load_arrays, load_dataset
from .models import ModelError, build_model
from .quant import (
    MacHook,
    MacLayer,
    QuantConfig,
    QuantError,
    QuantizedNet,
    QuantReport,
    quant_report,
    quantize,
    table_iv,
)
from .stats import MeanCI, binomial_ci, chi2_sf, mean_ci
from .synthetic import synthetic_table
from .timing import (
    REGULATION,
    InjectionError,
    LayerStats,
    SeedSweep,
    TimingInjector,
    regulation_factor,
    seed_sweep,
)
from .train import ConfigError, TrainConfig, TrainResult, evaluate, train

__all__ = [
    "REGULATION",
    "CampaignError",
    "ConfigError",
    "DataError",
    "DataSplits",
    "DatasetInfo",
    "InjectionError",
    "LayerStats",
    "MacHook",
    "MacLayer",
    "MeanCI",
    "ModelError",
    "QuantConfig",
    "QuantError",
    "QuantReport",
    "QuantizedNet",
    "RawSplits",
    "SeedSweep",
    "TimingInjector",
    "TrainConfig",
    "TrainResult",
    "binomial_ci",
    "build_model",
    "chi2_sf",
    "evaluate",
    "load_arrays",
    "load_dataset",
    "mean_ci",
    "quant_report",
    "quantize",
    "regulation_factor",
    "run_campaign",
    "seed_sweep",
    "summarize",
    "synthetic_table",
    "table_iv",
    "train",
    "trial_key",
]
