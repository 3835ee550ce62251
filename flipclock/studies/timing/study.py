"""The study runner: prepare a network once, then run error scenarios as resumable trials.

:meth:`TimingStudy.prepare` trains (or loads from the cache) a model, quantizes it to INT8
(Table IV), measures the operand streams of every MAC layer (:mod:`nnmap.dataflow`) and the
weight sensitivities (:mod:`nnmap.sensitivity`, Fig. 3). :meth:`TimingStudy.run` then runs
*scenarios* -- an error table (one for the whole network, or one per layer) at a clock
period -- measuring for every regulation factor, over ``seeds`` seeds,

* ``N_baseline`` -- the INT8 network without errors;
* ``N_TError`` -- with timing errors injected (:class:`nnmap.timing.LayerInjector`);
* ``N_WD+EAQ`` -- after weight distribution on the top ``wd_fraction`` most sensitive
  weights and error-aware quantization of the rest (:mod:`nnmap.mitigation`), with errors;
* ``N_EAQ`` -- after error-aware quantization of every weight, with errors;
* optionally the two mitigations designed with the paper's *uniform* activation marginal
  (variants ``.../uniform-acts``);

plus the clean accuracy of each mitigated network. A scenario may inject under one set of
tables and design the mitigation with another. Each scenario is a resumable campaign
(:func:`flipclock.studies.base.run_trials`) in ``OUT/campaigns/<scenario>/``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nnmap.campaign import summarize
from nnmap.data import DataSplits, load_dataset
from nnmap.dataflow import OperandStreams, operand_streams
from nnmap.mitigation import MitigatedNet, mitigate
from nnmap.quant import QuantizedNet, QuantReport, quant_report, quantize, table_iv
from nnmap.sensitivity import (
    SensitivityConfig,
    plot_sensitivity,
    sensitivity_digest,
    weight_sensitivity,
)
from nnmap.timing import LayerInjector, TableSpec, regulation_factor
from nnmap.train import train
from sim.atomic import atomic_frame, atomic_npz, atomic_text

from ..base import run_trials
from .claims import shape, share_terror
from .config import VARIANTS, StudyError, TimingStudyConfig, variant_config
from .report import write_results
from .tables import spec_digest, spec_meta

__all__ = ["Scenario", "StudyResult", "TimingStudy"]

_CLEAN = "none"  # the regulation of a clean (error-free) trial
_MODEL_NAMES = {"lenet5": "LeNet-5", "resnet20": "ResNet-20", "resnet18": "ResNet-18"}


@dataclass
class Scenario:
    """An error model under which the networks are evaluated.

    Parameters
    ----------
    label:
        Name in the tables (e.g. ``"T32"``, ``"T32 ws-markov"``).
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
        Variants to run (default: all of the config's).
    """

    label: str
    tables: TableSpec
    period: int
    prev: str = "uniform"
    design_tables: TableSpec | None = None
    design_prev: str | None = None
    variants: tuple[str, ...] | None = None

    @property
    def slug(self) -> str:
        """File-system name of the scenario."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.label).strip("_") or "scenario"

    def describe(self) -> dict[str, Any]:
        """The scenario's settings and table hashes, as stored in ``settings.json``."""
        return {"label": self.label, "period": self.period, "prev": self.prev,
                "design_prev": self.design_prev or self.prev,
                "tables": spec_digest(self.tables), "table_meta": spec_meta(self.tables),
                "design_tables": (spec_digest(self.design_tables)
                                  if self.design_tables is not None else None)}


@dataclass
class StudyResult:
    """What :meth:`TimingStudy.run` produced."""

    rows: list[dict[str, Any]]
    mitigation: list[dict[str, Any]]
    out: Path
    files: list[Path] = field(default_factory=list)


def _state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def _qnet_digest(qnet: QuantizedNet) -> str:
    h = hashlib.sha256()
    for name, layer in qnet.layers.items():
        h.update(name.encode())
        for t in (layer.weight, layer.w_scale, layer.bias):
            h.update(t.numpy().tobytes())
    return h.hexdigest()


class TimingStudy:
    """Prepare a network once, then run scenarios into ``out`` (see the module docstring).

    Parameters
    ----------
    config:
        The study settings.
    out:
        Output folder (claimed by the caller, e.g. with :func:`sim.atomic.output_folder`).
    data:
        Pre-loaded data (else ``config.dataset`` is loaded from ``data_dir``).
    data_dir, cache:
        Data folder and checkpoint cache (see :mod:`nnmap.data`, :mod:`nnmap.train`).
    model:
        A trained float model to use instead of training (e.g. from ``--checkpoint``).
    progress:
        Progress bars.
    log:
        Where status lines go.
    """

    def __init__(self, config: TimingStudyConfig, out: Path, *, data: DataSplits | None = None,
                 data_dir: Path | None = None, cache: Path | None = None,
                 model: nn.Module | None = None, progress: bool = True,
                 log: Callable[[str], None] = print):
        self.config = config
        self.out = Path(out)
        self._data = data
        self._data_dir = data_dir
        self._cache = cache
        self._given_model = model
        self.progress = progress
        self.log = log
        self.qnet: QuantizedNet | None = None
        self.streams: OperandStreams | None = None
        self.sensitivity: dict[str, npt.NDArray[np.float64]] | None = None
        self.quant: QuantReport | None = None
        self.test: TensorDataset | None = None
        self.facts: dict[str, Any] = {}

    # --- preparation ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Train/load, quantize (Table IV), operand streams, sensitivities (Fig. 3)."""
        cfg = self.config
        data = self._data or load_dataset(cfg.dataset, self._data_dir)
        t0 = time.perf_counter()
        model, train_facts = self._model(data)
        test = data.test
        if cfg.test_images is not None and cfg.test_images < len(test):
            x, y = test.tensors
            test = TensorDataset(x[:cfg.test_images], y[:cfg.test_images])
        self.test = test
        qnet = self.qnet = quantize(model, cfg.quant_config(), data.train)
        self.quant = quant = quant_report(
            model, qnet, test, model_name=_MODEL_NAMES.get(cfg.model, cfg.model),
            dataset=data.info.name, batch_size=cfg.batch_size)
        self.log(f"Table IV: float {100 * quant.float_accuracy:.2f} %, INT8 "
                 f"{100 * quant.int8_accuracy:.2f} % on {len(test)} test images")
        self.streams = streams = operand_streams(qnet, data.train, images=cfg.stream_images)
        self.sensitivity = self._sensitivities(model, qnet, data)
        plot_sensitivity(self.sensitivity, self.out / "sensitivity.png",
                         fraction=cfg.wd_fraction,
                         title=f"Weight sensitivity, {quant.model} + {data.info.name}")
        self.facts = {
            "dataset": data.info.to_dict(), "train": train_facts,
            "model_digest": _state_digest(model), "qnet_digest": _qnet_digest(qnet),
            "test_images": len(test),
            "test_digest": hashlib.sha256(test.tensors[0].numpy().tobytes()
                                          + test.tensors[1].numpy().tobytes()).hexdigest(),
            "macs": {k: int(v) for k, v in qnet.macs().items()},
            "sensitivity_digest": sensitivity_digest(self.sensitivity),
            "streams": {"dataflow": streams.dataflow, "images": streams.images,
                        "layers": streams.summary()},
            "prepare_seconds": round(time.perf_counter() - t0, 2),
        }
        atomic_text(self.out / "table_iv.md", table_iv([quant]))
        import pandas as pd

        atomic_frame(pd.DataFrame(streams.summary()), self.out / "streams.csv")

    def _model(self, data: DataSplits) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        facts: dict[str, Any]
        if self._given_model is not None:
            model, facts = self._given_model, {"source": "given model"}
        else:
            self.log(f"model: {cfg.model} on {data.info.name}, {cfg.epochs} epoch(s) "
                     "(cached by content hash)")
            res = train(cfg.train_config(), data, cache=self._cache, progress=self.progress)
            model = res.model
            facts = {"source": "trained", "checkpoint": str(res.checkpoint),
                     "from_cache": res.from_cache, "history": res.history}
        model.eval()
        return model, facts

    def _sensitivities(self, model: nn.Module, qnet: QuantizedNet,
                       data: DataSplits) -> dict[str, npt.NDArray[np.float64]]:
        """``|dL/dw|``, cached in ``OUT/sensitivity.npz`` (keyed by model, data, settings)."""
        cfg = SensitivityConfig(images=self.config.sens_images)
        key = hashlib.sha256(f"{_state_digest(model)}|{data.info.fingerprint}|"
                             f"{cfg.to_json()}|{_qnet_digest(qnet)}".encode()).hexdigest()
        path = self.out / "sensitivity.npz"
        if path.is_file():
            try:
                with np.load(path) as z:
                    if str(z["__key__"]) == key:
                        return {k: z[k] for k in z.files if k != "__key__"}
            except (OSError, ValueError, KeyError, EOFError):
                pass  # a damaged cache is recomputed
        self.log("weight sensitivities |dL/dw| over the training set")
        sens = weight_sensitivity(model, qnet, data.train, cfg, progress=self.progress)
        atomic_npz(path, __key__=np.array(key), **sens)
        return sens

    def _ready(self) -> tuple[QuantizedNet, TensorDataset, OperandStreams,
                              dict[str, npt.NDArray[np.float64]], QuantReport]:
        if (self.qnet is None or self.test is None or self.streams is None
                or self.sensitivity is None or self.quant is None):
            raise RuntimeError("Call prepare() before run()")  # a bug in the caller
        return self.qnet, self.test, self.streams, self.sensitivity, self.quant

    # --- scenarios ----------------------------------------------------------------------------
    def mitigated(self, scenario: Scenario, variant: str) -> MitigatedNet:
        """The network of ``variant`` (not ``TError``) designed for ``scenario``."""
        qnet, _, streams, sens, _ = self._ready()
        design = scenario.design_tables if scenario.design_tables is not None else scenario.tables
        return mitigate(qnet, design, variant_config(variant, self.config.wd_fraction),
                        sensitivity=sens, hists=streams.hist)

    def run(self, scenarios: Sequence[Scenario], *, force: bool = False) -> StudyResult:
        """Run every scenario's campaign (resuming stored trials) and write the results."""
        qnet, test, _, _, quant = self._ready()
        if not scenarios:
            raise StudyError("Give at least one error table (scenario) to study")
        labels = [s.label for s in scenarios]
        if len(set(labels)) != len(labels):
            raise StudyError(f"Scenario labels must be unique, got {labels}")
        rows: list[dict[str, Any]] = []
        mitigation_rows: list[dict[str, Any]] = []
        for sc in scenarios:
            variants = sc.variants or self.config.variants()
            unknown = set(variants) - set(VARIANTS)
            if unknown:
                raise StudyError(f"Unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
            nets: dict[str, QuantizedNet | MitigatedNet] = {"TError": qnet}
            for v in variants:
                if v == "TError":
                    continue
                net = nets[v] = self.mitigated(sc, v)
                mitigation_rows += [{"scenario": sc.label, "variant": v,
                                     "design_prev": sc.design_prev or sc.prev, **asdict(r)}
                                    for r in net.layers_report]
            records = self._campaign(sc, variants, nets, test, force)
            rows += self._rows(sc, variants, nets, records, quant.int8_accuracy)
        share_terror(rows)
        settings = {**self.facts, "quant": asdict(quant),
                    "scenarios": [s.describe() for s in scenarios],
                    "seeds": [1000 * self.config.seed + i for i in range(self.config.seeds)],
                    "versions": {"torch": torch.__version__, "numpy": np.__version__}}
        files = write_results(self.out, config=self.config, quant=quant, rows=rows,
                              mitigation=mitigation_rows, settings=settings)
        return StudyResult(rows, mitigation_rows, self.out, files)

    def _campaign(self, sc: Scenario, variants: Sequence[str],
                  nets: Mapping[str, QuantizedNet | MitigatedNet], test: TensorDataset,
                  force: bool) -> list[dict[str, Any]]:
        cfg = self.config
        injectors: dict[str, LayerInjector] = {}

        def trial(params: Mapping[str, Any]) -> dict[str, Any]:
            net = nets[params["variant"]]
            t0 = time.perf_counter()
            reg = params["regulation"]
            if reg == _CLEAN:
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
            {"variant": v, "regulation": _CLEAN, "trial": 0} for v in variants if v != "TError"]
        for reg in cfg.regulations:
            for v in variants:
                trials += [{"variant": v, "regulation": reg, "trial": i}
                           for i in range(cfg.seeds)]
        design = sc.design_tables if sc.design_tables is not None else sc.tables
        settings = {
            "format": "flipclock-timing-study-1", "config": cfg.trial_settings(),
            "scenario": sc.label, "period": sc.period, "prev": sc.prev,
            "design_prev": sc.design_prev or sc.prev, "tables": spec_digest(sc.tables),
            "design_tables": spec_digest(design), "qnet": self.facts.get("qnet_digest"),
            "test": self.facts.get("test_digest"),
            "sensitivity": self.facts.get("sensitivity_digest"),
        }
        self.log(f"scenario {sc.label}: {len(trials)} runs on {len(test)} test images")
        return run_trials(trials, trial, self.out / "campaigns" / sc.slug, settings=settings,
                          progress=self.progress, desc=sc.label, force=force)

    def _rows(self, sc: Scenario, variants: Sequence[str],
              nets: Mapping[str, QuantizedNet | MitigatedNet], records: list[dict[str, Any]],
              baseline: float) -> list[dict[str, Any]]:
        cfg = self.config
        quant = self.quant
        summary = summarize(records)
        macs_base = sum(self.facts.get("macs", {}).values())
        rows = []
        for reg in cfg.regulations:
            row: dict[str, Any] = {
                "model": quant.model if quant else cfg.model,
                "dataset": quant.dataset if quant else cfg.dataset,
                "scenario": sc.label, "period": sc.period, "prev": sc.prev,
                "design_prev": sc.design_prev or sc.prev, "regulation": reg,
                "r": regulation_factor(reg), "N_baseline": baseline, "seeds": cfg.seeds,
                "test_images": self.facts.get("test_images"), "MACs_baseline": macs_base}
            for v in variants:
                row.update(_variant_columns(summary, v, reg, nets.get(v)))
            row.update(shape(row))
            rows.append(row)
        return rows


def _variant_columns(summary: Any, variant: str, reg: str, net: Any) -> dict[str, Any]:
    """One variant's Table V columns at regulation ``reg`` from the campaign summary."""
    row: dict[str, Any] = {}
    sel = summary[(summary["variant"] == variant) & (summary["regulation"] == reg)]
    if len(sel):
        s = sel.iloc[0]
        key = f"N_{variant}"
        for stat in ("mean", "low", "high"):
            row[f"{key}_{stat}"] = float(s[f"accuracy_{stat}"])
        if "substitutions_mean" in s and "products_mean" in s:
            row[f"{key}_wrong_rate"] = (float(s["substitutions_mean"])
                                        / max(float(s["products_mean"]), 1.0))
    clean = summary[(summary["variant"] == variant) & (summary["regulation"] == _CLEAN)]
    if len(clean):
        row[f"clean_{variant}"] = float(clean.iloc[0]["accuracy_mean"])
    if isinstance(net, MitigatedNet):
        row[f"MACs_{variant}"] = sum(net.macs().values())
        row[f"distributed_{variant}"] = net.summary()["distributed"]
        row[f"eaq_changed_{variant}"] = net.summary()["eaq_changed"]
    return row
