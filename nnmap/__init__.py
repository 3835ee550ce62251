"""Neural-network mapping: quantized inference with timing errors and memory faults.

Reads error tables and fault maps as files or objects; of ``sim`` it imports only
``sim.tables`` and the atomic file writers of ``sim.atomic``, never the simulators.

Modules: :mod:`~nnmap.data` (local data sets), :mod:`~nnmap.models` (LeNet-5, ResNet-20,
ResNet-18), :mod:`~nnmap.train` (seeded training, cached checkpoints), :mod:`~nnmap.quant`
(INT8 post-training quantization, integer-exact forward), :mod:`~nnmap.timing`
(per-multiplication product substitution), :mod:`~nnmap.stats` (confidence intervals),
:mod:`~nnmap.synthetic` (synthetic error tables), :mod:`~nnmap.campaign` (resumable Monte
Carlo campaigns), :mod:`~nnmap.bench` (benchmark), :mod:`~nnmap.dataflow` (operand streams),
:mod:`~nnmap.sensitivity` (``|dL/dw|``), :mod:`~nnmap.mitigation` (weight distribution and
error-aware quantization), :mod:`~nnmap.bitflip`
(parameter bit flips, float32/INT8), :mod:`~nnmap.vulnerability` (Eq. (1) channel
vulnerability), :mod:`~nnmap.harden` (duplication + EDAC, TMR), :mod:`~nnmap.cost` (size, MACs,
CPU time), :mod:`~nnmap.prune`
(vulnerability/L1 pruning). The studies that compose these methods live in
:mod:`flipclock.studies`.
"""

from __future__ import annotations

from .bitflip import (
    BitFlipConfig,
    FaultError,
    FlipReport,
    Int8Image,
    fault_space,
    flip_qnet,
    inject,
)
from .campaign import CampaignError, run_campaign, summarize, trial_key
from .cost import CostError, ModelCost, model_cost, time_inference
from .data import DataError, DatasetInfo, DataSplits, RawSplits, load_arrays, load_dataset
from .dataflow import DataflowError, OperandStreams, operand_streams
from .harden import (
    EDAC,
    HardenConfig,
    HardenedSite,
    HardenError,
    Voter,
    harden,
    layer_sites,
    profile_intervals,
    state_digest,
)
from .landscape import (
    LandscapeConfig,
    LandscapeError,
    Sharpness,
    correlation,
    fault_direction,
    random_direction,
    sharpness,
    slice_1d,
    slice_2d,
)
from .mitigation import (
    LayerMitigation,
    MitigatedNet,
    MitigationConfig,
    MitigationError,
    best_split,
    eaq_codes,
    layer_weight_error,
    mitigate,
)
from .models import ModelError, build_model
from .prune import (
    FinetuneConfig,
    PruneConfig,
    PruneError,
    PruneResult,
    l1_scores,
    prune_and_finetune,
    prune_model,
    search_ratios,
)
from .qat import QATConfig, QATError, QATNet, build_qat, fake_quant, qat_model
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
from .saq import FlatTrainConfig, FlatTrainResult, SAQError, conventional_step, saq_step, train_flat
from .sensitivity import (
    SensitivityConfig,
    SensitivityError,
    plot_sensitivity,
    top_fraction_mask,
    weight_sensitivity,
)
from .sparsity import (
    SparsityConfig,
    SparsityError,
    SparsityMeter,
    SparsityReport,
    activation_l1,
    measure_sparsity,
)
from .sram_faults import (
    FAULT_KINDS,
    FaultMap,
    SramFaultError,
    SramGeometry,
    SramLayoutError,
    WeightLayout,
    bench_fault_trial,
    fault_seed,
    run_fault_trial,
    sample_faults,
)
from .stats import MeanCI, NestedCI, binomial_ci, chi2_sf, mean_ci, nested_ci, paired_nested_ci
from .synthetic import synthetic_table
from .timing import (
    REGULATION,
    InjectionError,
    LayerInjector,
    LayerStats,
    SeedSweep,
    TimingInjector,
    check_table,
    regulation_factor,
    seed_sweep,
)
from .train import ConfigError, TrainConfig, TrainResult, evaluate, train
from .vulnerability import (
    VulnerabilityConfig,
    VulnerabilityError,
    channel_vulnerability,
    estimate_vulnerability,
    layer_input,
    network_tail,
    spearman,
)

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
    "NestedCI",
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
    "nested_ci",
    "paired_nested_ci",
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
    # timing-error mitigation study (issue 4)
    "DataflowError",
    "LayerInjector",
    "LayerMitigation",
    "MitigatedNet",
    "MitigationConfig",
    "MitigationError",
    "OperandStreams",
    "SensitivityConfig",
    "SensitivityError",
    "best_split",
    "check_table",
    "eaq_codes",
    "layer_weight_error",
    "mitigate",
    "operand_streams",
    "plot_sensitivity",
    "top_fraction_mask",
    "weight_sensitivity",
    # FlatENN methods (issue 5; the study is flipclock.studies.flatenn)
    "FAULT_KINDS",
    "FaultMap",
    "FlatTrainConfig",
    "FlatTrainResult",
    "LandscapeConfig",
    "LandscapeError",
    "QATConfig",
    "QATError",
    "QATNet",
    "SAQError",
    "Sharpness",
    "SparsityConfig",
    "SparsityError",
    "SparsityMeter",
    "SparsityReport",
    "SramFaultError",
    "SramGeometry",
    "SramLayoutError",
    "WeightLayout",
    "activation_l1",
    "bench_fault_trial",
    "build_qat",
    "conventional_step",
    "correlation",
    "fake_quant",
    "fault_direction",
    "fault_seed",
    "measure_sparsity",
    "qat_model",
    "random_direction",
    "run_fault_trial",
    "sample_faults",
    "saq_step",
    "sharpness",
    "slice_1d",
    "slice_2d",
    "train_flat",
    # parameter-vulnerability hardening and pruning (issue 6)
    "BitFlipConfig",
    "CostError",
    "EDAC",
    "FaultError",
    "FinetuneConfig",
    "FlipReport",
    "HardenConfig",
    "HardenError",
    "HardenedSite",
    "Int8Image",
    "ModelCost",
    "PruneConfig",
    "PruneError",
    "PruneResult",
    "Voter",
    "VulnerabilityConfig",
    "VulnerabilityError",
    "channel_vulnerability",
    "estimate_vulnerability",
    "fault_space",
    "flip_qnet",
    "harden",
    "inject",
    "l1_scores",
    "layer_input",
    "layer_sites",
    "model_cost",
    "network_tail",
    "profile_intervals",
    "prune_and_finetune",
    "prune_model",
    "search_ratios",
    "spearman",
    "state_digest",
    "time_inference",
]
