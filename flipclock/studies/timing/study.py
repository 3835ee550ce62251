"""The study runner: trained models, scenarios run as resumable trials, the two phases.

:class:`ModelRun` prepares one trained model: it trains (or loads from the cache) the
network of training seed ``train_seed + i``, quantizes it to INT8 (Table IV; one network per
weight port), measures the operand streams of every MAC layer (:mod:`nnmap.dataflow`) and
the weight sensitivities (:mod:`nnmap.sensitivity`, Fig. 3). :meth:`ModelRun.campaign` then
runs one *scenario* -- an error table (one for the whole network, or one per layer) at a
clock period, on one weight port -- for every regulation factor over ``seeds`` injection
seeds:

* ``TError`` -- the INT8 network with timing errors injected
  (:class:`nnmap.timing.LayerInjector`);
* ``WD+EAQ`` -- weight distribution on the top ``wd_fraction`` most sensitive weights and
  error-aware quantization of the rest (:mod:`nnmap.mitigation`), Table III designed the
  paper's way (uniform activations);
* ``EAQ`` -- error-aware quantization of every weight (same Table III);
* extras ``.../measured-acts`` -- the same two with Table III from the layer's measured
  activation histogram;

plus the clean accuracy of each mitigated network. Each scenario of each model is a
resumable campaign (:func:`flipclock.studies.base.run_trials`) in
``WORK/model-<seed>/campaigns/<scenario>/``.

:func:`run_study` is the whole study: phase 1 runs the headline variants at every period on
every model; the period rule (:func:`.claims.choose_period`, which reads N_TError only)
picks the operating point; phase 2 runs the extras there (measured-activation Table III,
the weight on the other port, dataflow tables); then :mod:`.report` writes the results.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn
from torch.utils.data import TensorDataset

from nnmap.data import DataSplits
from nnmap.dataflow import OperandStreams, operand_streams
from nnmap.mitigation import MitigatedNet, mitigate
from nnmap.quant import QuantizedNet, QuantReport, quant_report, quantize
from nnmap.sensitivity import (
    SensitivityConfig,
    plot_sensitivity,
    sensitivity_digest,
    weight_sensitivity,
)
from nnmap.timing import LayerInjector, TableSpec, regulation_factor
from nnmap.train import train
from sim.atomic import atomic_npz

from ..base import run_trials
from .config import HEADLINE_VARIANTS, VARIANTS, StudyError, TimingStudyConfig, variant_config
from .tables import spec_digest, spec_meta

__all__ = ["CLEAN", "MODEL_NAMES", "ModelRun", "Scenario", "StudyData", "run_study"]

CLEAN = "none"
"""The regulation of a clean (error-free) trial."""
MODEL_NAMES = {"lenet5": "LeNet-5", "resnet20": "ResNet-20", "resnet18": "ResNet-18"}


@dataclass
class Scenario:
    """An error model under which the networks are evaluated.

    Parameters
    ----------
    label:
        Name in the tables (e.g. ``"T36"``, ``"T36 ws-markov"``).
    tables:
        Tables injected (one, or one per layer).
    period:
        Clock period (ticks) of the tables.
    prev:
        How ``tables`` model the previous operand pair (``"uniform"``, ``"ws-marginal"``...).
    design_tables, design_prev:
        Tables (and their previous-input model) the mitigation is designed with; ``tables``
        when ``None``.
    variants:
        Variants to run (default: the config's headline ones).
    port:
        Multiplier port of the weight (default: the config's).
    """

    label: str
    tables: TableSpec
    period: int
    prev: str = "uniform"
    design_tables: TableSpec | None = None
    design_prev: str | None = None
    variants: tuple[str, ...] | None = None
    port: str | None = None

    @property
    def slug(self) -> str:
        """File-system name of the scenario."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.label).strip("_") or "scenario"

    def describe(self) -> dict[str, Any]:
        """The scenario's settings and table hashes, as stored in ``settings.json``."""
        return {"label": self.label, "period": self.period, "prev": self.prev,
                "design_prev": self.design_prev or self.prev, "port": self.port,
                "variants": list(self.variants or ()),
                "tables": spec_digest(self.tables), "table_meta": spec_meta(self.tables),
                "design_tables": (spec_digest(self.design_tables)
                                  if self.design_tables is not None else None)}


def _state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def _qnet_digest(qnet: QuantizedNet) -> str:
    h = hashlib.sha256()
    for name, layer in qnet.layers.items():
        h.update(f"{name}:{layer.weight_port}".encode())
        for t in (layer.weight, layer.w_scale, layer.bias):
            h.update(t.numpy().tobytes())
    return h.hexdigest()


class ModelRun:
    """One trained model of the study: prepared once, then scenarios as campaigns.

    Parameters
    ----------
    config:
        The study settings.
    index:
        Which model: training seed ``config.train_seed + index``.
    work:
        Folder for this model's campaigns and caches (``WORK/model-<seed>``).
    data:
        The data set.
    cache:
        Checkpoint cache (see :mod:`nnmap.train`).
    model:
        A trained float model to use instead of training (``--checkpoint``; one model only).
    progress, log:
        Progress bars; where status lines go.
    """

    def __init__(self, config: TimingStudyConfig, index: int, work: Path, data: DataSplits, *,
                 cache: Path | None = None, model: nn.Module | None = None,
                 progress: bool = True, log: Callable[[str], None] = print):
        self.config = config
        self.index = index
        self.seed = config.train_seed + index
        self.work = Path(work)
        self.data = data
        self._cache = cache
        self._given_model = model
        self.progress = progress
        self.log = log
        self.model: nn.Module | None = None
        self.test: TensorDataset | None = None
        self.quant: QuantReport | None = None
        self.sensitivity: dict[str, npt.NDArray[np.float64]] | None = None
        self.facts: dict[str, Any] = {}
        self._qnets: dict[str, QuantizedNet] = {}
        self._streams: dict[str, OperandStreams] = {}
        self._baseline: dict[str, float] = {}

    # --- preparation ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Train/load, quantize (Table IV), sensitivities (Fig. 3)."""
        cfg = self.config
        t0 = time.perf_counter()
        self.work.mkdir(parents=True, exist_ok=True)
        model, train_facts = self._train()
        self.model = model
        test = self.data.test
        if cfg.test_images is not None and cfg.test_images < len(test):
            x, y = test.tensors
            test = TensorDataset(x[:cfg.test_images], y[:cfg.test_images])
        self.test = test
        qnet = self.qnet(cfg.weight_port)
        self.quant = quant = quant_report(
            model, qnet, test, model_name=MODEL_NAMES.get(cfg.model, cfg.model),
            dataset=self.data.info.name, batch_size=cfg.batch_size)
        self._baseline[cfg.weight_port] = quant.int8_accuracy
        self.log(f"model {self.index + 1}/{cfg.models} (training seed {self.seed}): Table IV: "
                 f"float {100 * quant.float_accuracy:.2f} %, INT8 "
                 f"{100 * quant.int8_accuracy:.2f} % on {len(test)} test images")
        self.sensitivity = self._sensitivities(model, qnet)
        self.facts = {
            "training_seed": self.seed, "train": train_facts,
            "model_digest": _state_digest(model), "qnet_digest": _qnet_digest(qnet),
            "test_images": len(test),
            "test_digest": hashlib.sha256(test.tensors[0].numpy().tobytes()
                                          + test.tensors[1].numpy().tobytes()).hexdigest(),
            "macs": {k: int(v) for k, v in qnet.macs().items()},
            "sensitivity_digest": sensitivity_digest(self.sensitivity),
            "quant": asdict(quant),
            "prepare_seconds": round(time.perf_counter() - t0, 2),
        }

    def plot_sensitivity(self, path: Path) -> Path:
        """Fig. 3 of this model into ``path``."""
        sens = self._ready()[2]
        quant = self.quant
        return plot_sensitivity(sens, path, fraction=self.config.wd_fraction,
                                title=f"Weight sensitivity, {quant.model if quant else ''} + "
                                f"{self.data.info.name} (training seed {self.seed})")

    def _train(self) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        facts: dict[str, Any]
        if self._given_model is not None:
            model, facts = self._given_model, {"source": "given model"}
        else:
            self.log(f"model: {cfg.model} on {self.data.info.name}, {cfg.epochs} epoch(s), "
                     f"training seed {self.seed} (cached by content hash)")
            res = train(cfg.train_config(self.index), self.data, cache=self._cache,
                        progress=self.progress)
            model = res.model
            facts = {"source": "trained", "checkpoint": str(res.checkpoint),
                     "from_cache": res.from_cache, "history": res.history}
        model.eval()
        return model, facts

    def _sensitivities(self, model: nn.Module,
                       qnet: QuantizedNet) -> dict[str, npt.NDArray[np.float64]]:
        """``|dL/dw|``, cached in ``WORK/.../sensitivity.npz`` (keyed by model, data,
        settings)."""
        cfg = SensitivityConfig(images=self.config.sens_images)
        key = hashlib.sha256(f"{_state_digest(model)}|{self.data.info.fingerprint}|"
                             f"{cfg.to_json()}|{_qnet_digest(qnet)}".encode()).hexdigest()
        path = self.work / "sensitivity.npz"
        if path.is_file():
            try:
                with np.load(path) as z:
                    if str(z["__key__"]) == key:
                        return {k: z[k] for k in z.files if k != "__key__"}
            except (OSError, ValueError, KeyError, EOFError):
                pass  # a damaged cache is recomputed
        self.log("weight sensitivities |dL/dw| over the training set")
        sens = weight_sensitivity(model, qnet, self.data.train, cfg, progress=self.progress)
        atomic_npz(path, __key__=np.array(key), **sens)
        return sens

    def _ready(self) -> tuple[nn.Module, TensorDataset, dict[str, npt.NDArray[np.float64]]]:
        if self.model is None or self.test is None or self.sensitivity is None:
            raise RuntimeError("Call prepare() first")  # a bug in the caller
        return self.model, self.test, self.sensitivity

    def qnet(self, port: str) -> QuantizedNet:
        """The INT8 network with the weight on ``port`` (quantized once per port)."""
        if port not in self._qnets:
            if self.model is None:
                raise RuntimeError("Call prepare() first")
            qc = replace(self.config.quant_config(), weight_port=port)
            self._qnets[port] = quantize(self.model, qc, self.data.train)
        return self._qnets[port]

    def baseline(self, port: str) -> float:
        """Clean INT8 accuracy with the weight on ``port`` (the same codes on either port:
        equal unless the port changes the arithmetic, which a test would catch)."""
        if port not in self._baseline:
            self._baseline[port] = self.qnet(port).accuracy(self._ready()[1],
                                                            batch_size=self.config.batch_size)
        return self._baseline[port]

    def streams(self, port: str) -> OperandStreams:
        """Operand streams of the network with the weight on ``port`` (training images)."""
        if port not in self._streams:
            self._streams[port] = operand_streams(self.qnet(port), self.data.train,
                                                  images=self.config.stream_images)
        return self._streams[port]

    # --- scenarios ----------------------------------------------------------------------------
    def mitigated(self, scenario: Scenario, variant: str) -> MitigatedNet:
        """The network of ``variant`` (not ``TError``) designed for ``scenario``."""
        port = scenario.port or self.config.weight_port
        design = scenario.design_tables if scenario.design_tables is not None else scenario.tables
        mcfg = variant_config(variant, self.config.wd_fraction)
        hists = self.streams(port).hist if mcfg.act_dist == "layer" else None
        return mitigate(self.qnet(port), design, mcfg, sensitivity=self._ready()[2],
                        hists=hists)

    def campaign(self, sc: Scenario, *, force: bool = False
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Run (or resume) one scenario; return its trials and its mitigation rows, flat.

        A trial row: ``model`` (training seed), ``port``, ``scenario``, ``period``, ``prev``,
        ``design_prev``, ``variant``, ``regulation`` (``"none"``: clean), ``trial``,
        ``accuracy`` and, with errors, ``substitutions`` and ``products``.
        """
        cfg = self.config
        _, test, _ = self._ready()
        port = sc.port or cfg.weight_port
        variants = sc.variants or cfg.variants(extras=False)
        unknown = set(variants) - set(VARIANTS)
        if unknown:
            raise StudyError(f"Unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
        qnet = self.qnet(port)
        nets: dict[str, QuantizedNet | MitigatedNet] = {"TError": qnet}
        mitigation_rows: list[dict[str, Any]] = []
        for v in variants:
            if v == "TError":
                continue
            net = nets[v] = self.mitigated(sc, v)
            mitigation_rows += [{"model": self.seed, "port": port, "scenario": sc.label,
                                 "period": sc.period, "variant": v,
                                 "design_prev": sc.design_prev or sc.prev, **asdict(r)}
                                for r in net.layers_report]
        injectors: dict[str, LayerInjector] = {}

        def trial(params: Mapping[str, Any]) -> dict[str, Any]:
            net = nets[params["variant"]]
            t0 = time.perf_counter()
            reg = params["regulation"]
            if reg == CLEAN:
                acc = net.accuracy(test, batch_size=cfg.batch_size)
                return {"accuracy": acc, "seconds": time.perf_counter() - t0}
            if reg not in injectors:
                injectors[reg] = LayerInjector(sc.tables, regulation_factor(reg))
            inj = injectors[reg]
            inj.reset(1000 * cfg.seed + int(params["trial"]))
            acc = net.accuracy(test, inj, batch_size=cfg.batch_size)
            stats = inj.stats.values()
            return {"accuracy": acc, "substitutions": sum(s.substitutions for s in stats),
                    "products": sum(s.products for s in stats),
                    "seconds": time.perf_counter() - t0}

        trials: list[dict[str, Any]] = [
            {"variant": v, "regulation": CLEAN, "trial": 0} for v in variants if v != "TError"]
        for reg in cfg.regulations:
            for v in variants:
                trials += [{"variant": v, "regulation": reg, "trial": i}
                           for i in range(cfg.seeds)]
        design = sc.design_tables if sc.design_tables is not None else sc.tables
        settings = {
            "format": "flipclock-timing-study-2", "config": cfg.trial_settings(),
            "training_seed": self.seed, "port": port,
            "scenario": sc.label, "period": sc.period, "prev": sc.prev,
            "design_prev": sc.design_prev or sc.prev, "tables": spec_digest(sc.tables),
            "design_tables": spec_digest(design), "qnet": _qnet_digest(qnet),
            "test": self.facts.get("test_digest"),
            "sensitivity": self.facts.get("sensitivity_digest"),
        }
        desc = f"model {self.seed} {sc.label}"
        self.log(f"{desc}: {len(trials)} runs on {len(test)} test images")
        records = run_trials(trials, trial, self.work / "campaigns" / sc.slug, settings=settings,
                             progress=self.progress, desc=desc, force=force)
        base = {"model": self.seed, "port": port, "scenario": sc.label, "period": sc.period,
                "prev": sc.prev, "design_prev": sc.design_prev or sc.prev}
        rows = [{**base, **rec["params"], **{k: v for k, v in rec["result"].items()
                                              if k != "seconds"}} for rec in records]
        return rows, mitigation_rows


@dataclass
class StudyData:
    """Everything a finished study hands to the report.

    Members
    -------
    trials:
        Every trial of every model (see :meth:`ModelRun.campaign`).
    baselines:
        ``(training seed, port) -> clean INT8 accuracy``.
    mitigation:
        Per-layer mitigation rows of every model and scenario.
    runs:
        The prepared models.
    scenarios:
        Descriptions of the scenarios (one model's; the tables are shared except dataflow
        tables, which are per model).
    chosen:
        The period the rule picked (None without a headline period).
    """

    trials: list[dict[str, Any]]
    baselines: dict[tuple[int, str], float]
    mitigation: list[dict[str, Any]]
    runs: list[ModelRun]
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    chosen: int | None = None


DataflowBuilder = Callable[[ModelRun, str, Sequence[int]], dict[int, dict[str, Any]]]
"""``(model run, mode, periods) -> period -> {layer -> table}`` (dataflow tables)."""


def run_study(config: TimingStudyConfig, work: Path, data: DataSplits,
              tables: Mapping[int, Any], *, cache: Path | None = None,
              model: nn.Module | None = None, dataflow: Sequence[str] = (),
              dataflow_periods: Sequence[int] | None = None,
              dataflow_builder: DataflowBuilder | None = None, force: bool = False,
              progress: bool = True, log: Callable[[str], None] = print) -> StudyData:
    """Both phases of the study (see the module docstring) on ``config.models`` models.

    Parameters
    ----------
    tables:
        ``period -> CompressedTable``: the uniform-previous-input tables (the headline).
    dataflow, dataflow_periods, dataflow_builder:
        Dataflow modes to add as extras, at these periods (default: the chosen period), with
        tables from ``dataflow_builder``.
    """
    from .claims import choose_period

    if not tables:
        raise StudyError("Give at least one error table (scenario) to study")
    if model is not None and config.models != 1:
        raise StudyError("--checkpoint gives one trained model; use --models 1 with it")
    runs = [ModelRun(config, i, work / f"model-{config.train_seed + i}", data, cache=cache,
                     model=model, progress=progress, log=log) for i in range(config.models)]
    for run in runs:
        run.prepare()
    head = config.weight_port
    baselines = {(r.seed, head): r.baseline(head) for r in runs}
    trials: list[dict[str, Any]] = []
    mitigation: list[dict[str, Any]] = []
    described: list[dict[str, Any]] = []

    def go(run: ModelRun, sc: Scenario) -> None:
        rows, mit = run.campaign(sc, force=force)
        trials.extend(rows)
        mitigation.extend(mit)
        if run is runs[0] or sc.prev != "uniform":
            described.append({**sc.describe(), "model": run.seed})

    # phase 1: the headline variants at every period, on every model
    headline = config.variants(extras=False)
    for run in runs:
        for p, t in sorted(tables.items()):
            go(run, Scenario(f"T{p}", t, p, variants=headline))
    chosen, _ = choose_period(trials, baselines, config)
    if chosen is None:
        return StudyData(trials, baselines, mitigation, runs, described, None)
    log(f"period rule: T{chosen} (the drop at {config.rule_regulation} closest to "
        f"{100 * config.target_drop:g} points)")
    # phase 2: the extras at the chosen period
    extra = tuple(v for v in config.variants() if v not in HEADLINE_VARIANTS)
    other = config.other_port
    for run in runs:
        if extra:
            go(run, Scenario(f"T{chosen} measured-acts", tables[chosen], chosen,
                             variants=extra))
        if config.compare_port:
            baselines[(run.seed, other)] = run.baseline(other)
            go(run, Scenario(f"T{chosen} weight on {other}", tables[chosen], chosen,
                             variants=headline, port=other))
    periods = sorted(set(dataflow_periods or [chosen]))
    missing = [p for p in periods if p not in tables]
    if dataflow and missing:
        raise StudyError(f"--dataflow-period {missing[0]} is not among the studied periods "
                         f"{sorted(tables)}; add --period {missing[0]}")
    for mode in dataflow:
        if dataflow_builder is None:
            raise StudyError("Dataflow tables need a design to build them from (--design)")
        for run in runs:
            built = dataflow_builder(run, mode, periods)
            for p in periods:
                go(run, Scenario(f"T{p} {mode}", built[p], p, prev=mode, variants=headline))
                go(run, Scenario(f"T{p} {mode}, designed for uniform prev", built[p], p,
                                 prev=mode, design_tables=tables[p], design_prev="uniform",
                                 variants=headline[1:]))
    return StudyData(trials, baselines, mitigation, runs, described, chosen)
