"""The timing-error study of Wu et al. (section IV, Tables IV-VI) on flipclock's own tables.

One :class:`TimingStudy` trains (or loads from the cache) a model, quantizes it to INT8
(Table IV: float vs INT8 accuracy), measures the operand streams of every MAC layer on
training images (:mod:`nnmap.dataflow`) and the weight sensitivities
(:mod:`nnmap.sensitivity`, Fig. 3), and then runs *scenarios*: an error table (one for the
whole network, or one per layer) at a clock period, under which it measures

* ``N_baseline`` -- the INT8 network without errors;
* ``N_TError`` -- the same network with timing errors injected (:class:`TimingInjector`);
* ``N_WD+EAQ`` -- after weight distribution on the top ``wd_fraction`` most sensitive weights
  and error-aware quantization of the rest (:mod:`nnmap.mitigation`), with errors;
* ``N_EAQ`` -- after error-aware quantization of every weight, with errors;
* optionally the two mitigations designed with the paper's *uniform* activation
  marginal for Table III (variants ``.../uniform-acts``);

for every regulation factor, each over ``seeds`` seeds (mean and Student-t 95 % CI), plus
the clean accuracy of each mitigated network and the MAC counts (Table V's last columns).
A scenario may inject under one set of tables and design the mitigation with another
(e.g. mitigation designed under the paper's uniform previous-input assumption, evaluated
under a weight-stationary dataflow).

Every scenario is a resumable campaign (:func:`nnmap.campaign.run_campaign`) in
``OUT/campaigns/<scenario>/``; a killed study resumes where it stopped. Outputs (written
atomically into ``OUT``): ``table_v.md`` / ``table_v.csv`` (Table V layout),
``table_iv.md``, ``accuracy.png``, ``sensitivity.png`` (Fig. 3), ``mitigation.csv``
(per layer: distributed weights, EAQ changes, MACs, expected wrong products),
``streams.csv``, ``report.md`` and ``settings.json`` (configs, model/data/table hashes,
seeds, sample counts).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sim.atomic import atomic_frame, atomic_text, save_figure
from sim.tables import CompressedTable

from .campaign import run_campaign, summarize
from .data import DataSplits, load_dataset
from .dataflow import OperandStreams, operand_streams
from .mitigation import MitigatedNet, MitigationConfig, mitigate
from .quant import (
    MacLayer,
    QuantConfig,
    QuantizedNet,
    QuantReport,
    quant_report,
    quantize,
    table_iv,
)
from .sensitivity import (
    SensitivityConfig,
    plot_sensitivity,
    sensitivity_digest,
    weight_sensitivity,
)
from .timing import LayerStats, TimingInjector, regulation_factor
from .train import TrainConfig, train
from .errors import NNMapError

__all__ = [
    "VARIANTS",
    "LayerInjector",
    "Scenario",
    "StudyError",
    "StudyResult",
    "TimingStudy",
    "TimingStudyConfig",
    "check_table",
    "chosen_period",
    "dataflow_comparison",
    "plot_accuracy",
    "table_digest",
    "table_v",
]

TableSpec = CompressedTable | Mapping[str, CompressedTable]

#: Accuracy variants of a scenario; ``/uniform-acts`` designs Table III with uniform activations.
VARIANTS = ("TError", "WD+EAQ", "EAQ", "WD+EAQ/uniform-acts", "EAQ/uniform-acts")
_CLEAN = "none"


# a pair that always errs, with several wrong outputs, may sum to 1 plus rounding
_ULP_SLACK = 1e-12


def _within_one(table: CompressedTable) -> CompressedTable:
    """``table`` with ``p_wrong`` clipped at 1 (rounding of summed output probabilities)."""
    if table.p_wrong.max() <= 1:
        return table
    return replace(table, p_wrong=np.minimum(table.p_wrong, 1.0))


class StudyError(NNMapError):
    """A study setting, table or input does not fit (the message names the fix)."""


# --- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimingStudyConfig:
    """Settings of a timing-error study (recorded with every result).

    Parameters
    ----------
    model, dataset, epochs, train_seed:
        What to train (:class:`~nnmap.train.TrainConfig`; the checkpoint is cached).
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
        Table III activation marginals to run mitigation with: ``"layer"`` (measured) and/or
        ``"uniform"`` (the paper's).
    sens_images:
        Training images for the sensitivities (all when ``None``).
    stream_images:
        Training images for the operand-stream statistics.
    weights, weight_port:
        INT8 quantization: ``"per-channel"``/``"per-tensor"`` weights; multiplier port of the
        weight (``"a"`` or ``"b"``).
    """

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 5
    train_seed: int = 0
    regulations: tuple[str, ...] = ("1.5sigma", "2sigma")
    seeds: int = 5
    seed: int = 0
    test_images: int | None = None
    batch_size: int = 1000
    wd_fraction: float = 0.01
    act_dists: tuple[str, ...] = ("layer",)
    sens_images: int | None = None
    stream_images: int = 2000
    weights: str = "per-channel"
    weight_port: str = "a"

    def __post_init__(self) -> None:
        object.__setattr__(self, "regulations", tuple(str(r) for r in self.regulations))
        object.__setattr__(self, "act_dists", tuple(self.act_dists))
        if not self.regulations:
            raise StudyError("Give at least one regulation factor (e.g. --regulation 1.5sigma)")
        for r in self.regulations:
            try:
                regulation_factor(r)
            except ValueError as exc:
                raise StudyError(str(exc)) from None
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise StudyError(f"seeds must be a positive integer, not {self.seeds!r}")
        for name in ("epochs", "batch_size", "stream_images"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise StudyError(f"{name} must be a positive integer, not {value!r}")
        for name in ("test_images", "sens_images"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise StudyError(f"{name} must be a positive integer or None, not {value!r}")
        if not 0 <= self.wd_fraction <= 1:
            raise StudyError(f"wd_fraction must be in [0, 1], not {self.wd_fraction!r}")
        bad = [a for a in self.act_dists if a not in ("layer", "uniform")]
        if bad or not self.act_dists:
            raise StudyError(f"act_dists must be 'layer' and/or 'uniform', not "
                             f"{list(self.act_dists)!r}")
        self.quant_config()  # validates weights / weight_port

    def quant_config(self) -> QuantConfig:
        """The INT8 quantization settings."""
        try:
            return QuantConfig(weights=self.weights, weight_port=self.weight_port)
        except ValueError as exc:
            raise StudyError(str(exc)) from None

    def train_config(self) -> TrainConfig:
        """The training settings (the checkpoint cache key)."""
        try:
            return TrainConfig(model=self.model, dataset=self.dataset, epochs=self.epochs,
                               seed=self.train_seed)
        except ValueError as exc:
            raise StudyError(str(exc)) from None

    def variants(self) -> tuple[str, ...]:
        """The accuracy variants this config runs (see :data:`VARIANTS`)."""
        out = ["TError"]
        for dist in ("layer", "uniform"):
            if dist in self.act_dists:
                suffix = "" if dist == "layer" else "/uniform-acts"
                out += [f"WD+EAQ{suffix}", f"EAQ{suffix}"]
        return tuple(out)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TimingStudyConfig:
        """Inverse of :meth:`to_json`; unknown keys are a :class:`StudyError`."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise StudyError(f"Unknown TimingStudyConfig field(s) {sorted(set(data) - known)}; "
                             f"known: {sorted(known)}")
        for key in ("regulations", "act_dists"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def _variant_config(variant: str, wd_fraction: float) -> MitigationConfig:
    act = "uniform" if variant.endswith("/uniform-acts") else "layer"
    wd = wd_fraction if variant.startswith("WD") else 0.0
    return MitigationConfig(wd_fraction=wd, eaq=True, act_dist=act)


# --- tables -------------------------------------------------------------------------------------
def table_digest(table: CompressedTable) -> str:
    """SHA-256 of a table's probabilities and wrong outputs (what injection depends on)."""
    h = hashlib.sha256(f"{table.width}:{table.period}".encode())
    for arr in (table.p_wrong, table.offsets, table.wrong_output, table.wrong_prob):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _spec_digest(spec: TableSpec) -> str | dict[str, str]:
    if isinstance(spec, CompressedTable):
        return table_digest(spec)
    return {k: table_digest(t) for k, t in sorted(spec.items())}


def check_table(table: CompressedTable, *, regulations: Sequence[str] = (),
                bits: int = 8, source: str = "the error table") -> None:
    """Check that ``table`` fits an INT8 network with signed two's complement products.

    Raises
    ------
    StudyError
        Another operand width, unsigned or otherwise different operand semantics, wrong
        outputs beyond the ``2 * bits``-bit product range, probabilities outside ``[0, 1]``,
        or a table that already includes variation/regulation used with a regulation other
        than 1.
    """
    if table.width != bits:
        raise StudyError(f"{source} is for {table.width}-bit operands but the network is "
                         f"INT{bits}; build a table of an {bits}-bit multiplier "
                         f"(`flipclock errtable rtl/booth{bits} ...`)")
    meta = table.meta or {}
    signed = meta.get("signed", meta.get("operands", "signed"))
    if signed not in (True, "signed", "twos_complement"):
        raise StudyError(f"{source} is for {signed!r} operands; the INT8 network multiplies "
                         "signed two's complement codes: build a table of a signed multiplier")
    lim = 1 << (2 * bits - 1)
    if len(table.wrong_output) and (table.wrong_output.min() < -lim
                                    or table.wrong_output.max() >= lim):
        raise StudyError(f"{source} has outputs outside the signed {2 * bits}-bit product "
                         "range; it is not a table of a signed INT8 multiplier -- rebuild it")
    p = np.asarray(table.p_wrong)
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1 + _ULP_SLACK:
        raise StudyError(f"{source} has probabilities outside [0, 1]; rebuild it with "
                         "`flipclock errtable`")
    already = meta.get("regulation") or ("variation" in meta)
    if already:
        bad = [r for r in regulations if regulation_factor(r) != 1.0]
        if bad:
            what = ("Monte Carlo delay variation" if "variation" in meta
                    else f"regulation {meta.get('regulation')}")
            raise StudyError(f"{source} already includes {what}; use it with --regulation 1, "
                             f"not {bad[0]!r}")


# --- injection with one table per layer -------------------------------------------------------
class LayerInjector:
    """A hook injecting timing errors with one :class:`TimingInjector` per layer.

    Parameters
    ----------
    tables:
        One table for all layers, or ``layer -> table``.
    regulation:
        Regulation factor.
    seed:
        Seed; layer ``i`` (sorted by name) uses ``1009 * seed + i`` when tables are per layer.
    """

    def __init__(self, tables: TableSpec, regulation: float | str, *, seed: int = 0):
        self._single: TimingInjector | None = None
        self._per_layer: dict[str, TimingInjector] = {}
        self._names: list[str] = []
        if isinstance(tables, CompressedTable):
            self._single = TimingInjector(_within_one(tables), regulation, seed=seed)
        else:
            self._names = sorted(tables)
            self._per_layer = {name: TimingInjector(_within_one(tables[name]), regulation,
                                                    layers=[name]) for name in self._names}
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Restart every random stream for ``seed`` and clear the statistics."""
        if self._single is not None:
            self._single.reset(seed)
        for i, name in enumerate(self._names):
            self._per_layer[name].reset(1009 * seed + i)

    def __call__(self, layer: MacLayer, x: torch.Tensor, acc: torch.Tensor) -> None:
        if self._single is not None:
            self._single(layer, x, acc)
            return
        inj = self._per_layer.get(layer.name)
        if inj is None:
            raise StudyError(f"No error table for layer {layer.name!r}; give one table or one "
                             "per MAC layer")
        inj(layer, x, acc)

    @property
    def stats(self) -> dict[str, LayerStats]:
        """``layer -> LayerStats`` since the last reset."""
        if self._single is not None:
            return self._single.stats
        return {k: s for inj in self._per_layer.values() for k, s in inj.stats.items()}


# --- scenarios and results ------------------------------------------------------------------------
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
        h.update(layer.weight.numpy().tobytes())
        h.update(layer.w_scale.numpy().tobytes())
        h.update(layer.bias.numpy().tobytes())
    return h.hexdigest()


class TimingStudy:
    """Prepare a network once, then run scenarios into ``out`` (see the module docstring).

    Parameters
    ----------
    config:
        The study settings.
    out:
        Output folder.
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

    def __init__(self, config: TimingStudyConfig, out: str | os.PathLike[str], *,
                 data: DataSplits | None = None, data_dir: str | os.PathLike[str] | None = None,
                 cache: str | os.PathLike[str] | None = None, model: nn.Module | None = None,
                 progress: bool = True, log: Callable[[str], None] = print):
        self.config = config
        self.out = Path(out)
        self._data = data
        self._data_dir = data_dir
        self._cache = cache
        self._given_model = model
        self.progress = progress
        self.log = log
        self.model: nn.Module | None = None
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
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudyError(f"Cannot create output folder {str(self.out)!r} "
                             f"({exc.strerror}); choose a writable --out") from None
        data = self._data or load_dataset(cfg.dataset, self._data_dir)
        t0 = time.perf_counter()
        if self._given_model is not None:
            model = self._given_model
            train_facts: dict[str, Any] = {"source": "given model"}
        else:
            self.log(f"model: {cfg.model} on {data.info.name}, {cfg.epochs} epoch(s) "
                     "(cached by content hash)")
            res = train(cfg.train_config(), data, cache=self._cache, progress=self.progress)
            model = res.model
            train_facts = {"source": "trained", "checkpoint": str(res.checkpoint),
                           "from_cache": res.from_cache, "history": res.history}
        model.eval()
        self.model = model
        test = data.test
        if cfg.test_images is not None and cfg.test_images < len(test):
            x, y = test.tensors
            test = TensorDataset(x[:cfg.test_images], y[:cfg.test_images])
        self.test = test
        qnet = quantize(model, cfg.quant_config(), data.train)
        self.qnet = qnet
        self.quant = quant_report(model, qnet, test, model_name=_MODEL_NAMES.get(cfg.model,
                                                                                   cfg.model),
                                  dataset=data.info.name, batch_size=cfg.batch_size)
        self.log(f"Table IV: float {100 * self.quant.float_accuracy:.2f} %, INT8 "
                 f"{100 * self.quant.int8_accuracy:.2f} % on {len(test)} test images")
        self.streams = operand_streams(qnet, data.train, images=cfg.stream_images)
        self.sensitivity = self._sensitivities(model, qnet, data)
        plot_sensitivity(self.sensitivity, self.out / "sensitivity.png",
                         fraction=cfg.wd_fraction,
                         title=f"Weight sensitivity, {self.quant.model} + {data.info.name}")
        self.facts = {
            "dataset": data.info.to_dict(), "train": train_facts,
            "model_digest": _state_digest(model), "qnet_digest": _qnet_digest(qnet),
            "test_images": len(test),
            "test_digest": hashlib.sha256(test.tensors[0].numpy().tobytes()
                                          + test.tensors[1].numpy().tobytes()).hexdigest(),
            "macs": qnet.macs(), "sensitivity_digest": sensitivity_digest(self.sensitivity),
            "streams": {"dataflow": self.streams.dataflow, "images": self.streams.images,
                        "layers": self.streams.summary()},
            "prepare_seconds": round(time.perf_counter() - t0, 2),
        }
        atomic_text(self.out / "table_iv.md", table_iv([self.quant]))
        _write_csv(self.out / "streams.csv", self.streams.summary())

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
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache is recomputed
        self.log("weight sensitivities |dL/dw| over the training set")
        sens = weight_sensitivity(model, qnet, data.train, cfg, progress=self.progress)
        tmp = path.with_name(".sensitivity.tmp.npz")
        arrays: dict[str, Any] = {"__key__": np.array(key), **sens}
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return sens

    def _ready(self) -> tuple[QuantizedNet, TensorDataset, OperandStreams,
                              dict[str, npt.NDArray[np.float64]]]:
        if (self.qnet is None or self.test is None or self.streams is None
                or self.sensitivity is None):
            raise StudyError("Call prepare() before run()")
        return self.qnet, self.test, self.streams, self.sensitivity

    # --- scenarios ----------------------------------------------------------------------------
    def mitigated(self, scenario: Scenario, variant: str) -> MitigatedNet:
        """The network of ``variant`` (not ``TError``) designed for ``scenario``."""
        qnet, _, streams, sens = self._ready()
        design = scenario.design_tables if scenario.design_tables is not None else scenario.tables
        return mitigate(qnet, design, _variant_config(variant, self.config.wd_fraction),
                        sensitivity=sens, hists=streams.hist)

    def run(self, scenarios: Sequence[Scenario], *, force: bool = False) -> StudyResult:
        """Run every scenario's campaign (resuming stored trials) and write the report."""
        qnet, test, _, _ = self._ready()
        if not scenarios:
            raise StudyError("Give at least one error table (scenario) to study")
        labels = [s.label for s in scenarios]
        if len(set(labels)) != len(labels):
            raise StudyError(f"Scenario labels must be unique, got {labels}")
        cfg = self.config
        rows: list[dict[str, Any]] = []
        mitigation_rows: list[dict[str, Any]] = []
        assert self.quant is not None
        baseline = self.quant.int8_accuracy
        for sc in scenarios:
            variants = sc.variants or cfg.variants()
            unknown = set(variants) - set(VARIANTS)
            if unknown:
                raise StudyError(f"Unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
            nets: dict[str, QuantizedNet | MitigatedNet] = {"TError": qnet}
            for v in variants:
                if v != "TError":
                    net = self.mitigated(sc, v)
                    nets[v] = net
                    for r in net.layers_report:
                        mitigation_rows.append({"scenario": sc.label, "variant": v,
                                                "design_prev": sc.design_prev or sc.prev,
                                                **asdict(r)})
            records = self._campaign(sc, variants, nets, test, force)
            rows += self._rows(sc, variants, nets, records, baseline)
        _share_terror(rows)
        result = StudyResult(rows, mitigation_rows, self.out)
        result.files = self._write(result, scenarios)
        return result

    def _campaign(self, sc: Scenario, variants: Sequence[str],
                  nets: Mapping[str, QuantizedNet | MitigatedNet], test: TensorDataset,
                  force: bool) -> list[dict[str, Any]]:
        cfg = self.config
        injectors: dict[str, LayerInjector] = {}

        def fn(params: Mapping[str, Any]) -> dict[str, Any]:
            net = nets[params["variant"]]
            t0 = time.perf_counter()
            if params["regulation"] == _CLEAN:
                acc = net.accuracy(test, batch_size=cfg.batch_size)
                return {"accuracy": acc, "seconds": time.perf_counter() - t0}
            reg = params["regulation"]
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
        # what shapes a trial's result (seeds, regulations and variants are trial parameters)
        shaping = {k: v for k, v in json.loads(cfg.to_json()).items()
                   if k not in ("seeds", "regulations", "act_dists")}
        settings = {
            "format": "flipclock-timing-study-1", "config": shaping,
            "scenario": sc.label, "period": sc.period, "prev": sc.prev,
            "design_prev": sc.design_prev or sc.prev, "tables": _spec_digest(sc.tables),
            "design_tables": _spec_digest(sc.design_tables if sc.design_tables is not None
                                          else sc.tables),
            "qnet": self.facts.get("qnet_digest"), "test": self.facts.get("test_digest"),
            "sensitivity": self.facts.get("sensitivity_digest"),
        }
        self.log(f"scenario {sc.label}: {len(trials)} runs on {len(test)} test images")
        return run_campaign(trials, fn, self.out / "campaigns" / sc.slug, settings=settings,
                            progress=self.progress, desc=sc.label, force=force)

    def _rows(self, sc: Scenario, variants: Sequence[str],
              nets: Mapping[str, QuantizedNet | MitigatedNet], records: list[dict[str, Any]],
              baseline: float) -> list[dict[str, Any]]:
        cfg = self.config
        summary = summarize(records)
        macs_base = sum(self.facts.get("macs", {}).values())
        rows = []
        for reg in cfg.regulations:
            row: dict[str, Any] = {
                "model": self.quant.model if self.quant else cfg.model,
                "dataset": self.quant.dataset if self.quant else cfg.dataset,
                "scenario": sc.label, "period": sc.period, "prev": sc.prev,
                "design_prev": sc.design_prev or sc.prev, "regulation": reg,
                "r": regulation_factor(reg), "N_baseline": baseline, "seeds": cfg.seeds,
                "test_images": self.facts.get("test_images"), "MACs_baseline": macs_base}
            for v in variants:
                sel = summary[(summary["variant"] == v) & (summary["regulation"] == reg)]
                if len(sel):
                    s = sel.iloc[0]
                    key = f"N_{v}"
                    row[f"{key}_mean"] = float(s["accuracy_mean"])
                    row[f"{key}_low"] = float(s["accuracy_low"])
                    row[f"{key}_high"] = float(s["accuracy_high"])
                    if "substitutions_mean" in s and "products_mean" in s:
                        row[f"{key}_wrong_rate"] = (float(s["substitutions_mean"])
                                                    / max(float(s["products_mean"]), 1.0))
                clean = summary[(summary["variant"] == v) & (summary["regulation"] == _CLEAN)]
                if len(clean):
                    row[f"clean_{v}"] = float(clean.iloc[0]["accuracy_mean"])
                net = nets.get(v)
                if isinstance(net, MitigatedNet):
                    row[f"MACs_{v}"] = sum(net.macs().values())
                    row[f"distributed_{v}"] = net.summary()["distributed"]
                    row[f"eaq_changed_{v}"] = net.summary()["eaq_changed"]
            row.update(_shape(row))
            rows.append(row)
        return rows

    # --- outputs ------------------------------------------------------------------------------
    def _write(self, result: StudyResult, scenarios: Sequence[Scenario]) -> list[Path]:
        out = self.out
        files = []
        _write_csv(out / "table_v.csv", result.rows)
        files.append(out / "table_v.csv")
        _write_csv(out / "mitigation.csv", result.mitigation)
        files.append(out / "mitigation.csv")
        atomic_text(out / "table_v.md", table_v(result.rows))
        files.append(out / "table_v.md")
        plot_accuracy(result.rows, out / "accuracy.png")
        files.append(out / "accuracy.png")
        settings = {
            "config": json.loads(self.config.to_json()), **self.facts,
            "quant": asdict(self.quant) if self.quant else None,
            "scenarios": [{"label": s.label, "period": s.period, "prev": s.prev,
                           "design_prev": s.design_prev or s.prev,
                           "tables": _spec_digest(s.tables),
                           "table_meta": _spec_meta(s.tables),
                           "design_tables": _spec_digest(s.design_tables)
                           if s.design_tables is not None else None} for s in scenarios],
            "seeds": [1000 * self.config.seed + i for i in range(self.config.seeds)],
            "versions": {"torch": torch.__version__, "numpy": np.__version__},
        }
        atomic_text(out / "settings.json", json.dumps(settings, indent=1, default=str) + "\n")
        files.append(out / "settings.json")
        atomic_text(out / "report.md", self.report(result))
        files.append(out / "report.md")
        return files

    def report(self, result: StudyResult) -> str:
        """The Markdown report: Table IV, Table V, shape checks, dataflow comparison."""
        assert self.quant is not None
        cfg = self.config
        lines = [f"# Timing-error study: {self.quant.model} + {self.quant.dataset}", "",
                 "Wu et al., section IV, on flipclock's error tables. Accuracy is top-1 on "
                 f"{self.facts.get('test_images')} test images; with errors, mean ± half "
                 f"width of the Student-t 95 % CI over {cfg.seeds} seeds.", "",
                 "## Table IV: accuracy before and after INT8 quantization", "",
                 table_iv([self.quant]), "## Table V", "", table_v(result.rows),
                 "![accuracy](accuracy.png)", "", "## Paper's shape", "",
                 "Claim: N_TError < N_EAQ <= N_WD+EAQ <= N_baseline, WD+EAQ recovering most "
                 "of the drop (recovered = (N_WD+EAQ - N_TError) / (N_baseline - N_TError)).",
                 "", "| scenario | regulation | TError clearly below baseline | shape holds "
                 "(means) | recovered |", "|---|---|---|---|---:|"]
        for r in result.rows:
            rec = r.get("recovered")
            lines.append(f"| {r['scenario']} | {r['regulation']} | "
                         f"{_yes(r.get('terror_clearly_below'))} | {_yes(r.get('shape_holds'))}"
                         f"{r.get('shape_detail', '')} | "
                         f"{'' if rec is None else f'{100 * rec:.0f} %'} |")
        lines += ["", chosen_period(result.rows)]
        comp = dataflow_comparison(result.rows)
        if comp:
            lines += ["", "## Previous-input assumption (dataflow)", "",
                      "Accuracy predicted for the same network and period when the compressed "
                      "table assumes uniform previous operands (the paper) or the operand "
                      "streams of a weight-stationary dataflow.", "", comp]
        lines += ["", "## Mitigation", "",
                  "Per layer in `mitigation.csv`; expected wrong products per image at "
                  "regulation 1 (multiply by r).", "", _mitigation_md(result.mitigation),
                  "", "![sensitivity](sensitivity.png)", "",
                  "Settings, hashes and seeds: `settings.json`; every run: "
                  "`campaigns/*/results.jsonl`.", ""]
        return "\n".join(lines)


_MODEL_NAMES = {"lenet5": "LeNet-5", "resnet20": "ResNet-20", "resnet18": "ResNet-18"}


def _share_terror(rows: list[dict[str, Any]]) -> None:
    """Rows without their own N_TError (mitigation designed with other tables) take it from
    the scenario injecting the same tables at the same regulation."""
    own = {(r["period"], r["prev"], r["regulation"]): r for r in rows
           if "N_TError_mean" in r and r["design_prev"] == r["prev"]}
    for r in rows:
        src = own.get((r["period"], r["prev"], r["regulation"]))
        if "N_TError_mean" in r or src is None:
            continue
        for k in ("mean", "low", "high", "wrong_rate"):
            if f"N_TError_{k}" in src:
                r[f"N_TError_{k}"] = src[f"N_TError_{k}"]
        r["N_TError_from"] = src["scenario"]
        r.update(_shape(r))


def _spec_meta(spec: TableSpec) -> Any:
    keep = ("design", "netlist_hash", "delays_hash", "mode", "semantics", "prev", "samples",
            "period", "exact", "critical_path_ticks", "regulation", "source")
    if isinstance(spec, CompressedTable):
        return {k: spec.meta.get(k) for k in keep if k in spec.meta}
    return {name: {k: t.meta.get(k) for k in keep if k in t.meta}
            for name, t in sorted(spec.items())}


def _yes(v: Any) -> str:
    return "" if v is None else ("yes" if v else "**no**")


def _shape(row: Mapping[str, Any]) -> dict[str, Any]:
    """The paper's shape N_TError < N_EAQ <= N_WD+EAQ <= N_baseline on this row's means."""
    need = ("N_TError_mean", "N_EAQ_mean", "N_WD+EAQ_mean")
    if not all(k in row for k in need):
        return {}
    base, te = row["N_baseline"], row["N_TError_mean"]
    eaq, wd = row["N_EAQ_mean"], row["N_WD+EAQ_mean"]
    checks = {"TError<EAQ": te < eaq, "EAQ<=WD+EAQ": eaq <= wd, "WD+EAQ<=baseline": wd <= base}
    drop = base - te
    failed = [k for k, ok in checks.items() if not ok]
    return {"terror_clearly_below": row["N_TError_high"] < base,
            "shape_holds": not failed,
            "shape_detail": "" if not failed else f" (fails: {', '.join(failed)})",
            "recovered": (wd - te) / drop if drop > 0 else None}


def _pct(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.2f}%"


def _ci(row: Mapping[str, Any], key: str) -> str:
    if f"{key}_mean" not in row:
        return ""
    m, lo, hi = row[f"{key}_mean"], row[f"{key}_low"], row[f"{key}_high"]
    return f"{100 * m:.2f} ± {100 * (hi - lo) / 2:.2f}%"


def _macs(n: Any) -> str:
    return "" if n is None else f"{n / 1e6:.2f}M"


def table_v(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table in the layout of the paper's Table V (plus the scenario columns)."""
    extra = any("N_WD+EAQ/uniform-acts_mean" in r for r in rows)
    head = ("| Model | Scenario | Error rate regulation | N_baseline | N_TError | N_WD+EAQ | "
            "N_EAQ |")
    sep = "|---|---|---|---:|---:|---:|---:|"
    if extra:
        head += " N_WD+EAQ (uniform acts) | N_EAQ (uniform acts) |"
        sep += "---:|---:|"
    head += " #MACs N_baseline / N_TError / N_EAQ | #MACs N_WD+EAQ |"
    sep += "---:|---:|"
    lines = [head, sep]
    for r in rows:
        model = f"{r['model']} + {r['dataset']}"
        line = (f"| {model} | {r['scenario']} | {r['regulation']} (r={r['r']:g}) | "
                f"{_pct(r['N_baseline'])} | {_ci(r, 'N_TError')} | {_ci(r, 'N_WD+EAQ')} | "
                f"{_ci(r, 'N_EAQ')} |")
        if extra:
            line += (f" {_ci(r, 'N_WD+EAQ/uniform-acts')} | {_ci(r, 'N_EAQ/uniform-acts')} |")
        wd_macs = r.get("MACs_WD+EAQ")
        line += f" {_macs(r['MACs_baseline'])} | {_macs(wd_macs)} |"
        lines.append(line)
    clean = [r for r in rows if "clean_WD+EAQ" in r or "clean_EAQ" in r]
    seen: set[str] = set()
    notes = []
    for r in clean:
        if r["scenario"] in seen:
            continue
        seen.add(r["scenario"])
        notes.append(f"- {r['scenario']}: without errors N_WD+EAQ = "
                     f"{_pct(r.get('clean_WD+EAQ'))}, N_EAQ = {_pct(r.get('clean_EAQ'))} "
                     f"(baseline {_pct(r['N_baseline'])}); distributed weights "
                     f"{r.get('distributed_WD+EAQ', '')}, EAQ-moved weights "
                     f"{r.get('eaq_changed_EAQ', '')}")
    if notes:
        lines += ["", "Clean accuracy of the mitigated networks (no timing errors):", *notes]
    return "\n".join(lines) + "\n"


def chosen_period(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: the period the shape is judged at, by a rule that ignores the mitigations.

    Rule: among the scenarios with the paper's uniform previous inputs, the *longest* clock
    period at which N_TError is clearly below N_baseline (the upper end of its 95 % CI below
    the baseline) at every regulation -- the mildest shortening that visibly hurts.
    """
    per: dict[int, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["prev"] == "uniform" and r["design_prev"] == "uniform" and "N_TError_high" in r:
            per.setdefault(int(r["period"]), []).append(r)
    ok = [p for p, rs in per.items() if all(x["N_TError_high"] < x["N_baseline"] for x in rs)]
    head = ["## Chosen period", "",
            "Rule (fixed before looking at the mitigations): the longest period whose N_TError "
            "is clearly below N_baseline (upper end of the 95 % CI below it) at every "
            "regulation."]
    if not ok:
        return "\n".join([*head, "", "No studied period qualifies: no clear accuracy drop.", ""])
    best = max(ok)
    verdicts = []
    for r in per[best]:
        rec = r.get("recovered")
        verdicts.append(f"- T{best}, {r['regulation']}: N_TError {_ci(r, 'N_TError')} < "
                        f"N_EAQ {_ci(r, 'N_EAQ')} <= N_WD+EAQ {_ci(r, 'N_WD+EAQ')} <= "
                        f"N_baseline {_pct(r['N_baseline'])}: "
                        f"{'holds' if r.get('shape_holds') else 'does not hold'}"
                        f"{r.get('shape_detail', '')}; WD+EAQ recovers "
                        f"{'' if rec is None else f'{100 * rec:.0f} %'} of the drop.")
    others = sorted(set(per) - {best})
    return "\n".join([*head, "", f"Chosen: **T{best}** (qualifying: "
                      f"{', '.join(f'T{p}' for p in sorted(ok))}; other periods studied: "
                      f"{', '.join(f'T{p}' for p in others) or 'none'}).", "", *verdicts, ""])


def dataflow_comparison(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: per period and regulation, accuracies under each previous-input model."""
    groups: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["period"], r["regulation"]), []).append(r)
    if not any(len({x["prev"] for x in g}) > 1 for g in groups.values()):
        return ""
    lines = ["| period | regulation | errors injected with | mitigation designed with | "
             "wrong-product rate (TError) | N_TError | N_WD+EAQ | N_EAQ |",
             "|---:|---|---|---|---:|---:|---:|---:|"]
    for (period, reg), g in sorted(groups.items()):
        if len({x["prev"] for x in g}) < 2:
            continue
        for r in g:
            rate = r.get("N_TError_wrong_rate")
            lines.append(f"| {period} | {reg} | {r['prev']} | {r['design_prev']} | "
                         f"{'' if rate is None else f'{rate:.2e}'} | {_ci(r, 'N_TError')} | "
                         f"{_ci(r, 'N_WD+EAQ')} | {_ci(r, 'N_EAQ')} |")
    return "\n".join(lines) + "\n"


def _mitigation_md(rows: Sequence[Mapping[str, Any]]) -> str:
    agg: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        a = agg.setdefault((r["scenario"], r["variant"]), {
            "distributed": 0, "eaq_changed": 0, "macs": 0, "macs_after": 0, "before": 0.0,
            "after": 0.0})
        a["distributed"] += r["distributed"]
        a["eaq_changed"] += r["eaq_changed"]
        a["macs"] += r["macs"]
        a["macs_after"] += r["macs_after"]
        a["before"] += r["expected_wrong_before"]
        a["after"] += r["expected_wrong_after"]
    lines = ["| scenario | variant | distributed | EAQ-moved | MACs | MACs after | "
             "expected wrong/image before | after |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (sc, v), a in agg.items():
        lines.append(f"| {sc} | {v} | {a['distributed']:.0f} | {a['eaq_changed']:.0f} | "
                     f"{a['macs']:.0f} | {a['macs_after']:.0f} | {a['before']:.1f} | "
                     f"{a['after']:.1f} |")
    return "\n".join(lines)


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    import pandas as pd

    atomic_frame(pd.DataFrame(list(rows)), path)


def plot_accuracy(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Bars of N_baseline, N_TError, N_WD+EAQ, N_EAQ (95 % CI): one panel per regulation,
    one group of bars per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    keys = [("N_TError", "N_TError"), ("N_WD+EAQ", "N_WD+EAQ"), ("N_EAQ", "N_EAQ"),
            ("N_WD+EAQ/uniform-acts", "N_WD+EAQ (uniform acts)"),
            ("N_EAQ/uniform-acts", "N_EAQ (uniform acts)")]
    keys = [k for k in keys if any(f"{k[0]}_mean" in r for r in rows)]
    regs = list(dict.fromkeys(r["regulation"] for r in rows))
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    fig, axes = plt.subplots(len(regs), 1, squeeze=False, sharex=True, dpi=120,
                             figsize=(max(6.4, 0.8 * len(scenarios) + 2), 2.8 * len(regs) + 1.2))
    width = 0.8 / (len(keys) + 1)
    xs = np.arange(len(scenarios))
    for ax, reg in zip(axes[:, 0], regs, strict=True):
        by = {r["scenario"]: r for r in rows if r["regulation"] == reg}

        def get(k: str, sc: str, by: Mapping[str, Mapping[str, Any]] = by) -> float:
            return 100 * float(by[sc].get(k, np.nan)) if sc in by else np.nan

        ax.bar(xs - 0.4 + width / 2, [get("N_baseline", sc) for sc in scenarios], width,
               label="N_baseline", color="grey")
        low = min([get("N_baseline", sc) for sc in scenarios])
        high = max([get("N_baseline", sc) for sc in scenarios])
        for j, (key, label) in enumerate(keys, start=1):
            m = np.array([get(f"{key}_mean", sc) for sc in scenarios])
            lo = np.array([get(f"{key}_low", sc) for sc in scenarios])
            hi = np.array([get(f"{key}_high", sc) for sc in scenarios])
            ax.bar(xs - 0.4 + width / 2 + j * width, m, width, label=label,
                   yerr=[np.nan_to_num(m - lo), np.nan_to_num(hi - m)], capsize=2)
            if np.isfinite(lo).any():
                low = min(low, float(np.nanmin(lo)))
                high = max(high, float(np.nanmax(hi)))
        ax.set_ylim(max(0.0, low - 5), min(100.0, high + 3))
        ax.set_ylabel(f"accuracy (%)\n{reg}")
        ax.grid(alpha=0.3, axis="y")
    axes[-1, 0].set_xticks(xs)
    axes[-1, 0].set_xticklabels([sc.replace(", designed for ", "\ndesigned for ")
                                 for sc in scenarios], fontsize=7, rotation=30, ha="right")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    top = 1 - 0.75 / fig.get_figheight()  # room for the title and the legend, in inches
    fig.suptitle("Accuracy under timing errors (mean, 95 % CI over seeds)",
                 y=1 - 0.08 / fig.get_figheight(), fontsize="medium", va="top")
    fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), fontsize="small",
               bbox_to_anchor=(0.5, 1 - 0.32 / fig.get_figheight()))
    fig.tight_layout(rect=(0, 0, 1, top))
    save_figure(fig, path)
    return path
