"""The hardening-and-pruning study (Ahmadilivani et al., 2024) end to end, with a report.

``run_study(HardenStudyConfig.for_model("lenet5", "fmnist"), out)``:

1. trains the baseline (:mod:`nnmap.train`, cached) and measures it (Table I);
2. Eq. (1) channel vulnerability (:mod:`nnmap.vulnerability`) on training images, validated
   against per-channel fault injection (Spearman rank correlation per layer; campaign
   ``rank``): Gaussian weight noise (the perturbation Eq. (1) is the first-order bound of)
   and single bit flips in the channel's float32 weights, stratified over the 32 bit
   positions;
3. detection intervals profiled on the training set; the hardened variants
   (:mod:`nnmap.harden`): duplication + EDAC at the hardening ratio (default 15 %), the
   detection-intervals-only and TMR baselines, and the ratio sweeps of Fig. 3 and Fig. 4;
4. vulnerability vs L1 pruning with fine-tuning (Fig. 5), the Table II ratio search, and
   the hardened pruned model (:mod:`nnmap.prune`);
5. parameter bit-flip campaigns (:mod:`nnmap.bitflip`, :func:`nnmap.campaign.run_campaign`:
   resumable, Dask-capable): the BER sweep of every variant in float32 (``sweep``), Fig. 3
   and Fig. 4 at their BERs, and an INT8-storage sweep (``int8``);
6. parameters, MACs, memory and measured execution time of every variant;
7. ``report.md`` with the tables and figures, CSV files, PNG plots and ``settings.json``.

BER choices made before looking at any result (the paper's own rules where it gives one):
Fig. 4 uses the highest swept BER at which the 15 %-hardened model's mean accuracy drop is
below 5 percentage points (the paper: "the highest BERs where the accuracy drop is not yet
significant (lower than 5 %)"); Fig. 3 uses the lowest swept BER at which the unprotected
model has lost at least half of its accuracy above chance ("the high BER" at which the
paper's unprotected channels fail). A variant *tolerates* a BER when its mean drop is below
5 points there and at every lower swept BER.

Accuracy drops are in percentage points of the variant's own fault-free accuracy on the
evaluation subset (hardened models have the baseline's; pruned ones their own), with 95 %
Student-t intervals over the repetitions.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sim.atomic import atomic_frame, atomic_text, save_figure

from .bitflip import Int8Image, check_ber, flip_float32, inject
from .campaign import run_campaign, summarize, trial_key
from .data import DataSplits, load_dataset
from .harden import (
    HardenConfig,
    HardenError,
    ModelCost,
    harden,
    layer_sites,
    model_cost,
    profile_intervals,
)
from .prune import FinetuneConfig, PruneConfig, PruneResult, prune_and_finetune, search_ratios
from .train import TrainConfig, evaluate, train
from .vulnerability import VulnerabilityConfig, estimate_vulnerability, spearman, to_rows
from .errors import NNMapError

__all__ = [
    "HardenStudyConfig",
    "HardenStudyError",
    "HardenStudyResult",
    "ber_trial",
    "channel_trial",
    "run_harden_study",
    "run_study",
    "time_inference",
]

#: Bumped when a change of the study's code changes trial results (guards resumed campaigns).
STUDY_VERSION = 1
PAPER_BERS = (1e-7, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2, 1e-1)
DROP_LIMIT = 0.05  # "accuracy drop not yet significant": 5 percentage points


class HardenStudyError(NNMapError):
    """A study setting is invalid (the message names the fix)."""


def _ratios(values: Sequence[float], what: str) -> tuple[float, ...]:
    out = []
    for v in values:
        try:
            HardenConfig(ratio=float(v))
        except HardenError:
            raise HardenStudyError(f"{what} must be in [0, 1] (0.15 = 15 %), not {v!r}") from None
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class HardenStudyConfig:
    """Everything that shapes the study's results.

    Parameters
    ----------
    model, dataset:
        Network (``lenet5``, ``vgg_small``, ``alexnet``, ``vgg11``, ``vgg16``) and data set.
    epochs, train_seed:
        Baseline training (the other :class:`~nnmap.train.TrainConfig` fields default).
    bers:
        BER sweep, each in ``(0, 1]``.
    repetitions:
        Fault-injection repetitions per float32 point (the paper: 1000).
    int8_repetitions:
        Repetitions per INT8-storage point.
    ratio:
        Hardening ratio of the main hardened model (the paper: 15 %).
    fig3_ratios, fig4_ratios:
        Hardening ratios of the Fig. 3 and Fig. 4 sweeps.
    fig3_ber, fig4_ber:
        Their BERs (``None``: the rules in the module docstring).
    prune_ratios:
        Fig. 5 pruning ratios (applied to conv and FC layers alike).
    prune_grid, prune_tolerance:
        Table II search grid and accuracy tolerance (fraction: 0.01 = 1 point).
    finetune_epochs, finetune_lr:
        Fine-tuning after pruning (SGD).
    vuln_samples:
        Training images Eq. (1) is averaged over.
    eval_samples:
        Test images of every fault trial (a seeded subset; ``0``: all).
    rank_samples, rank_noise_trials, rank_noise, rank_scope:
        Eq. (1) validation: test images per trial, noise draws per channel, noise standard
        deviation relative to the layer's weight standard deviation, and ``"all"`` layers or
        ``"conv"`` only.
    timing_repeats:
        Timed passes over the test set per variant (the best is reported).
    disagree:
        EDAC rule for two different in-interval copies.
    seed:
        Seeds every fault draw and sample choice.
    quick:
        Marks the small demo configuration.
    """

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    epochs: int = 5
    train_seed: int = 0
    bers: tuple[float, ...] = PAPER_BERS
    repetitions: int = 100
    int8_repetitions: int = 30
    ratio: float = 0.15
    fig3_ratios: tuple[float, ...] = (0.0, 0.15, 0.25, 0.5, 0.75, 1.0)
    fig4_ratios: tuple[float, ...] = (0.0, 0.05, 0.10, 0.15, 0.25, 0.5)
    fig3_ber: float | None = None
    fig4_ber: float | None = None
    prune_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    prune_grid: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    prune_tolerance: float = 0.01
    finetune_epochs: int = 10
    finetune_lr: float = 1e-3
    vuln_samples: int = 1000
    eval_samples: int = 1000
    rank_samples: int = 500
    rank_noise_trials: int = 16
    rank_noise: float = 0.5
    rank_scope: str = "all"
    timing_repeats: int = 5
    disagree: str = "min"
    seed: int = 0
    quick: bool = False

    def __post_init__(self) -> None:
        if not self.bers:
            raise HardenStudyError("Give at least one BER")
        for b in self.bers:
            check_ber(b)
        for given in (self.fig3_ber, self.fig4_ber):
            if given is not None:
                check_ber(given)
        _ratios([self.ratio], "Hardening ratio")
        _ratios(self.fig3_ratios, "Fig. 3 hardening ratios")
        _ratios(self.fig4_ratios, "Fig. 4 hardening ratios")
        for r in (*self.prune_ratios, *self.prune_grid):
            if not 0 < r < 1:
                raise HardenStudyError(f"Pruning ratios must be in (0, 1), not {r!r}")
        for name in ("repetitions", "int8_repetitions", "vuln_samples", "rank_samples",
                     "rank_noise_trials", "timing_repeats", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise HardenStudyError(f"{name} must be a positive integer, not {v!r}")
        if not isinstance(self.eval_samples, int) or self.eval_samples < 0:
            raise HardenStudyError(f"eval_samples must be >= 0 (0 = whole test set), not "
                             f"{self.eval_samples!r}")
        if self.rank_scope not in ("all", "conv"):
            raise HardenStudyError(f"rank_scope must be 'all' or 'conv', not {self.rank_scope!r}")
        HardenConfig(disagree=self.disagree)
        FinetuneConfig(epochs=self.finetune_epochs, lr=self.finetune_lr)

    @classmethod
    def for_model(cls, model: str = "lenet5", dataset: str = "fashion-mnist", *,
                  quick: bool = False, **changes: Any) -> HardenStudyConfig:
        """The default (or ``quick`` demo) configuration for a model, with ``changes``."""
        from .data import DATASETS

        canon = DATASETS.get(dataset.lower(), dataset)
        base: dict[str, Any] = {"model": model, "dataset": canon}
        if quick:
            base.update(
                dataset="fashion-mnist-subset" if canon.startswith("fashion") else canon,
                epochs=4, bers=(1e-5, 1e-4, 1e-3), repetitions=3, int8_repetitions=2,
                fig3_ratios=(0.0, 1.0), fig4_ratios=(0.0, 0.15), prune_ratios=(0.5,),
                prune_grid=(0.3, 0.6), finetune_epochs=1, vuln_samples=200, eval_samples=300,
                rank_samples=150, rank_noise_trials=2, rank_scope="conv", timing_repeats=1,
                quick=True)
        base.update({k: v for k, v in changes.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(base) - known
        if unknown:
            raise HardenStudyError(f"Unknown study setting(s) {sorted(unknown)}")
        for key in ("bers", "fig3_ratios", "fig4_ratios", "prune_ratios", "prune_grid"):
            base[key] = tuple(float(v) for v in base[key]) if key in base else \
                getattr(cls, key)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (recorded in ``settings.json``)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HardenStudyConfig:
        """Inverse of :meth:`to_json`; unknown keys are a :class:`HardenStudyError`."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise HardenStudyError(f"Unknown study setting(s) {sorted(set(data) - known)}")
        for key in ("bers", "fig3_ratios", "fig4_ratios", "prune_ratios", "prune_grid"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def train_config(self) -> TrainConfig:
        """The baseline's training config."""
        return TrainConfig(model=self.model, dataset=self.dataset, epochs=self.epochs,
                           seed=self.train_seed)

    def finetune(self) -> FinetuneConfig:
        """Fine-tuning after pruning."""
        return FinetuneConfig(epochs=self.finetune_epochs, lr=self.finetune_lr,
                              seed=self.seed)


@dataclass
class HardenStudyResult:
    """Where the study wrote its files, and the headline numbers.

    Members
    -------
    out:
        The output folder (``report.md`` inside).
    summary:
        Headline numbers and claim verdicts (also in ``summary.json``).
    """

    out: Path
    summary: dict[str, Any] = field(default_factory=dict)

    def headline_lines(self) -> list[str]:
        """A few lines for a terminal or the demo report."""
        s = self.summary
        lines = [f"report: {self.out / 'report.md'}"]
        if "tolerated" in s:
            tol = s["tolerated"]
            lines.append("highest BER with < 5 pt drop: " + ", ".join(
                f"{k} {_fmt_ber(v)}" for k, v in tol.items()))
        for c in s.get("claims", []):
            verdict = {True: "holds", False: "does not hold", None: "n/a"}[c["holds"]]
            lines.append(f"{c['claim']}: {verdict} ({c['evidence']})")
        return lines


# --- small helpers ---------------------------------------------------------------------------
def _fmt_ber(b: float | None) -> str:
    return "none" if b is None else f"{b:.0e}"


def _state_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _seed_of(params: Mapping[str, Any]) -> int:
    """A 63-bit seed from a trial's parameters (file locations excluded)."""
    key = trial_key({k: v for k, v in params.items() if k not in ("file", "data_dir")})
    return int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)


def _vname(kind: str, ratio: float) -> str:
    return f"{kind}-{ratio:g}"


def time_inference(model: nn.Module, x: torch.Tensor, *, batch_size: int = 250,
                   repeats: int = 3) -> float:
    """Execution time of one no-grad pass over ``x``: the best of ``repeats`` passes (after a
    warm-up pass), in CPU seconds of this process -- on a shared machine other processes'
    load inflates wall-clock times, CPU time much less."""
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            t0 = time.process_time()
            for j in range(0, len(x), batch_size):
                model(x[j:j + batch_size])
            if i:
                times.append(time.process_time() - t0)
    return min(times)


# --- trial functions (module level: Dask workers import them) -------------------------------
_CACHE: dict[Any, Any] = {}


def _eval_data(dataset: str, data_dir: str | None, n: int, seed: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    key = ("data", dataset, data_dir, n, seed)
    if key not in _CACHE:
        data = load_dataset(dataset, data_dir)
        x, y = data.test.tensors
        if 0 < n < len(x):
            idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
            idx = idx.sort().values
            x, y = x[idx], y[idx]
        _CACHE[key] = (x, y)
    return _CACHE[key]  # type: ignore[no-any-return]


def _load_variant(file: str, dtype: str) -> tuple[nn.Module, Int8Image | None]:
    # The file's modification time is part of the key: a study re-run in the same process
    # (tests, the demo) may rewrite a variant.
    key = ("model", file, dtype, os.stat(file).st_mtime_ns)
    if key not in _CACHE:
        model = torch.load(file, map_location="cpu", weights_only=False).eval()
        image = Int8Image(model, prepared=True) if dtype == "int8" else None
        _CACHE[key] = (model, image)
    return _CACHE[key]  # type: ignore[no-any-return]


def _predict(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             batch_size: int = 250) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(1)
                          for i in range(0, len(x), batch_size)])


def _clean(file: str, dtype: str, x: torch.Tensor, y: torch.Tensor, dkey: Any
           ) -> tuple[float, torch.Tensor]:
    key = ("clean", file, dtype, dkey, os.stat(file).st_mtime_ns)
    if key not in _CACHE:
        model, _ = _load_variant(file, dtype)
        pred = _predict(model, x)
        _CACHE[key] = (float((pred == y).float().mean()), pred)
    return _CACHE[key]  # type: ignore[no-any-return]


def ber_trial(params: Mapping[str, Any]) -> dict[str, float]:
    """One fault-injection trial: flip parameter bits of a saved variant at ``ber``.

    ``params``: ``variant``, ``file`` (a ``torch.save``-d model), ``dtype``, ``ber``,
    ``trial``, ``seed``, ``dataset``, ``data_dir``, ``eval_samples``. Returns the accuracy,
    the variant's fault-free accuracy, the drop and the number of flipped bits.
    """
    torch.set_num_threads(1)
    x, y = _eval_data(params["dataset"], params.get("data_dir"), params["eval_samples"],
                      params["seed"])
    dkey = (params["dataset"], params["eval_samples"], params["seed"])
    clean, _ = _clean(params["file"], params["dtype"], x, y, dkey)
    model, image = _load_variant(params["file"], params["dtype"])
    gen = torch.Generator().manual_seed(_seed_of(params))
    with inject(model, params["ber"], dtype=params["dtype"], generator=gen,
                int8=image) as report:
        acc = float((_predict(model, x) == y).float().mean())
    return {"accuracy": acc, "clean_accuracy": clean, "drop": clean - acc,
            "flips": report.total}


def _tail(model: nn.Module, layer: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The network from ``layer`` on, as a function of ``layer``'s input (``None`` when later
    operations also read earlier values, as in a residual network)."""
    import torch.fx

    gm = torch.fx.symbolic_trace(model)
    nodes = list(gm.graph.nodes)
    start = next(i for i, n in enumerate(nodes) if n.op == "call_module" and n.target == layer)
    graph = torch.fx.Graph()
    env: dict[Any, Any] = {nodes[start].args[0]: graph.placeholder("x")}
    try:
        for node in nodes[start:]:
            env[node] = graph.node_copy(node, lambda a: env[a])
    except KeyError:
        return None
    return torch.fx.GraphModule(gm, graph)


def _layer_input(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_pre_hook(
        lambda _m, inp: seen.append(inp[0].detach()))
    try:
        _predict(model, x)
    finally:
        handle.remove()
    return torch.cat(seen)


def channel_trial(params: Mapping[str, Any]) -> dict[str, float]:
    """Faults in one output channel's weights; the mean top-1 mismatch with the clean run.

    ``params``: ``file``, ``layer``, ``channel``, ``kind`` (``"noise"``: ``draws`` Gaussian
    perturbations of standard deviation ``sigma``; ``"bitflip"``: one flip per bit position
    0..31, each at a random weight of the channel), ``seed``, data keys as
    :func:`ber_trial`.
    """
    torch.set_num_threads(1)
    x, y = _eval_data(params["dataset"], params.get("data_dir"), params["eval_samples"],
                      params["seed"])
    dkey = (params["dataset"], params["eval_samples"], params["seed"])
    _, clean_pred = _clean(params["file"], "float32", x, y, dkey)
    model, _ = _load_variant(params["file"], "float32")
    # Faults in layer L leave everything before it alone: run only the tail of the network
    # on L's cached fault-free input (the same operations on the same values).
    key = ("tail", params["file"], params["layer"], dkey, os.stat(params["file"]).st_mtime_ns)
    if key not in _CACHE:
        tail = _tail(model, params["layer"])
        _CACHE[key] = (tail, _layer_input(model, params["layer"], x)) if tail else (model, x)
    run, inputs = _CACHE[key]
    weight = getattr(model.get_submodule(params["layer"]), "weight")  # noqa: B009
    assert isinstance(weight, torch.Tensor)
    row = weight.data[params["channel"]]
    original = row.clone()
    gen = torch.Generator().manual_seed(_seed_of(params))
    mismatches = []
    try:
        if params["kind"] == "noise":
            for _ in range(params["draws"]):
                row.copy_(original + params["sigma"] * torch.randn(original.shape,
                                                                   generator=gen))
                mismatches.append(float((_predict(run, inputs) != clean_pred).float().mean()))
                row.copy_(original)
        else:
            flat = row.view(-1)
            for bit in range(32):
                element = int(torch.randint(0, flat.numel(), (1,), generator=gen))
                single = flat[element:element + 1]
                flip_float32(single, torch.tensor([bit]))
                mismatches.append(float((_predict(run, inputs) != clean_pred).float().mean()))
                row.copy_(original)
    finally:
        row.copy_(original)
    return {"mismatch": sum(mismatches) / len(mismatches)}


# --- the study -------------------------------------------------------------------------------
class _Study:
    """State shared by the steps of :func:`run_study`."""

    def __init__(self, config: HardenStudyConfig, out: Path, data_dir: str | None,
                 cache: str | None, client: Any, force: bool, progress: bool,
                 log: Callable[[str], None]):
        self.config = config
        self.out = out
        self.data_dir = data_dir
        self.cache = cache
        self.client = client
        self.force = force
        self.progress = progress
        self.log = log
        self.models_dir = out / "models"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, str] = {}
        self.hashes: dict[str, str] = {}
        self.variants: dict[str, nn.Module] = {}
        self.fingerprint = ""

    # -- bookkeeping
    def save(self, name: str, model: nn.Module) -> None:
        path = self.models_dir / f"{name}.pt"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(model, tmp)
        os.replace(tmp, path)
        self.files[name] = str(path.resolve())
        self.hashes[name] = _state_hash(model)
        self.variants[name] = model

    def base_params(self, eval_samples: int) -> dict[str, Any]:
        return {"dataset": self.config.dataset, "data_dir": self.data_dir,
                "eval_samples": eval_samples, "seed": self.config.seed}

    def settings(self, kind: str, names: Sequence[str]) -> dict[str, Any]:
        return {"study": "harden", "version": STUDY_VERSION, "campaign": kind,
                "model": self.config.model,
                "data": self.fingerprint, "seed": self.config.seed,
                "models": {n: self.hashes[n] for n in sorted(names)}}

    def campaign(self, kind: str, trials: list[dict[str, Any]], fn: Callable[..., Any],
                 names: Sequence[str]) -> list[dict[str, Any]]:
        return run_campaign(trials, fn, self.out / "campaigns" / kind,
                            settings=self.settings(kind, names), client=self.client,
                            progress=self.progress, desc=kind, force=self.force)

    def ber_trials(self, names: Sequence[str], bers: Sequence[float], reps: int,
                   dtype: str = "float32") -> list[dict[str, Any]]:
        base = self.base_params(self.config.eval_samples)
        return [{**base, "variant": n, "file": self.files[n], "dtype": dtype, "ber": b,
                 "trial": t} for n in names for b in bers for t in range(reps)]


def run_study(config: HardenStudyConfig, out: str | os.PathLike[str], *,
              data_dir: str | None = None, cache: str | None = None, client: Any = None,
              force: bool = False, progress: bool = True,
              log: Callable[[str], None] | None = None) -> HardenStudyResult:
    """Run the whole study into folder ``out`` (resumable: run it again after a kill).

    Parameters
    ----------
    config:
        The study settings.
    out:
        Output folder (``report.md``, CSV, PNG, ``settings.json``, ``models/``,
        ``campaigns/``).
    data_dir, cache:
        Data folder and checkpoint cache (see :mod:`nnmap.data`, :mod:`nnmap.train`).
    client:
        Optional ``dask.distributed.Client`` for the fault campaigns.
    force:
        Discard campaign results of other settings found in ``out``.
    progress:
        tqdm progress bars.
    log:
        Called with one line per step (default: print).

    Returns
    -------
    HardenStudyResult
    """
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HardenStudyError(f"Cannot create {str(folder)!r} ({exc.strerror}); choose a writable "
                         "--out") from None
    say = log or (lambda line: print(line, flush=True))
    st = _Study(config, folder, data_dir, cache, client, force, progress, say)
    t_start = time.perf_counter()
    data = load_dataset(config.dataset, data_dir)
    st.fingerprint = data.info.fingerprint
    shape = tuple(data.info.shape)
    _check_model(config.model, shape, len(data.info.classes))
    say(f"[1/7] baseline {config.model} on {data.info.name}")
    trained = train(config.train_config(), data, cache=cache, progress=progress)
    base = trained.model.eval()
    layer_sites(base)  # unsupported layers fail here, before any long step
    st.save("baseline", base)
    base_acc = evaluate(base, data.test)

    say("[2/7] Eq. (1) vulnerability and its fault-injection validation")
    vcfg = VulnerabilityConfig(samples=config.vuln_samples, seed=config.seed)
    vuln = estimate_vulnerability(base, data.train, vcfg, progress=progress)
    rank_rows, rank_summary = _validate_ranking(st, base, vuln)

    say("[3/7] detection intervals and hardened variants")
    intervals = profile_intervals(base, data.train, progress=progress)
    _build_hardened(st, base, data.train, intervals, vuln)

    say("[4/7] vulnerability vs L1 pruning (Fig. 5) and Table II")
    fig5, table2, pruned = _pruning(st, base, data, trained.config, vuln, base_acc)
    p_vuln = estimate_vulnerability(pruned.model, data.train, vcfg, progress=progress)
    p_int = profile_intervals(pruned.model, data.train, progress=progress)
    st.save("pruned", pruned.model)
    st.save("hardened-pruned", harden(pruned.model, p_int, HardenConfig(
        ratio=config.ratio, disagree=config.disagree), p_vuln))

    say("[5/7] parameter bit-flip campaigns")
    main = _vname("hardened", config.ratio)
    sweep_names = ["baseline", "intervals-only", main, "tmr-1", "pruned", "hardened-pruned"]
    sweep = summarize(st.campaign("sweep", st.ber_trials(sweep_names, config.bers,
                                                         config.repetitions),
                                  ber_trial, sweep_names))
    atomic_frame(sweep, folder / "sweep.csv")
    tolerated = {n: _tolerated(sweep, n) for n in sweep_names}
    fig3_ber = config.fig3_ber or _collapse_ber(sweep, "baseline")
    fig4_ber = config.fig4_ber or tolerated[main] or min(config.bers)
    fig3_names = [_vname(k, r) for k in ("dup-noint", "tmr") for r in config.fig3_ratios]
    fig3 = summarize(st.campaign("fig3", st.ber_trials(fig3_names, [fig3_ber],
                                                       config.repetitions),
                                 ber_trial, fig3_names)) if fig3_ber else None
    fig4_names = [_vname("hardened", r) for r in config.fig4_ratios]
    fig4 = summarize(st.campaign("fig4", st.ber_trials(fig4_names, [fig4_ber],
                                                       config.repetitions),
                                 ber_trial, fig4_names))
    int8_names = ["baseline-int8", "hardened-int8"]
    int8 = summarize(st.campaign("int8", st.ber_trials(int8_names, config.bers,
                                                       config.int8_repetitions, "int8"),
                                 ber_trial, int8_names))
    for name, frame in (("fig3", fig3), ("fig4", fig4), ("int8", int8)):
        if frame is not None:
            atomic_frame(frame, folder / f"{name}.csv")

    say("[6/7] overheads: parameters, MACs, memory, execution time")
    costs = _costs(st, data, shape)

    say("[7/7] report")
    summary = _summarize(st, base_acc, tolerated, sweep, fig3, fig3_ber, fig4, fig4_ber,
                         fig5, pruned.config, costs, rank_summary)
    summary["seconds"] = time.perf_counter() - t_start
    _write_settings(st, trained, data, summary)
    _write_report(st, data, trained, base_acc, vuln, rank_rows, rank_summary, sweep, tolerated,
                 fig3, fig3_ber, fig4, fig4_ber, int8, fig5, table2, costs, summary)
    atomic_text(folder / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    return HardenStudyResult(folder, summary)


# --- steps -----------------------------------------------------------------------------------
def _check_model(name: str, shape: tuple[int, ...], classes: int) -> None:
    """Fail before training when the model cannot be hardened or pruned (one-line errors)."""
    from .models import build_model
    from .prune import l1_scores, prune_model

    probe = build_model(name, shape[0], classes, shape[1])
    layer_sites(probe)
    prune_model(probe, l1_scores(probe), conv_ratio=0.5, fc_ratio=0.5)


def _validate_ranking(st: _Study, base: nn.Module, vuln: Mapping[str, torch.Tensor]
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cfg = st.config
    params = st.base_params(cfg.rank_samples)
    trials = []
    for site in layer_sites(base):
        if cfg.rank_scope == "conv" and site.kind != "conv":
            continue
        weight = getattr(base.get_submodule(site.name), "weight").detach()  # noqa: B009
        sigma = cfg.rank_noise * float(weight.std())
        for c in range(site.out_channels):
            for kind in ("noise", "bitflip"):
                trial = {**params, "file": st.files["baseline"], "layer": site.name,
                         "channel": c, "kind": kind, "trial": 0}
                if kind == "noise":
                    trial.update(draws=cfg.rank_noise_trials, sigma=sigma)
                trials.append(trial)
    records = st.campaign("rank", trials, channel_trial, ["baseline"])
    rows = [{"layer": r["params"]["layer"], "channel": r["params"]["channel"],
             "kind": r["params"]["kind"], "mismatch": r["result"]["mismatch"],
             "vulnerability": float(vuln[r["params"]["layer"]][r["params"]["channel"]])}
            for r in records]
    summary = []
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for kind in ("noise", "bitflip"):
        for layer in [*layers, "all"]:
            sel = [r for r in rows if r["kind"] == kind and layer in (r["layer"], "all")]
            if len(sel) < 3:
                continue
            rho = spearman([r["vulnerability"] for r in sel], [r["mismatch"] for r in sel])
            summary.append({"kind": kind, "layer": layer, "channels": len(sel),
                            "spearman": rho})
    import pandas as pd

    atomic_frame(pd.DataFrame(to_rows(vuln)), st.out / "vulnerability.csv")
    atomic_frame(pd.DataFrame(rows), st.out / "rank_validation.csv")
    atomic_frame(pd.DataFrame(summary), st.out / "rank_correlation.csv")
    return rows, summary


def _build_hardened(st: _Study, base: nn.Module, train: Any,
                    intervals: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                    vuln: Mapping[str, torch.Tensor]) -> None:
    cfg = st.config
    d = cfg.disagree
    st.save("intervals-only", harden(base, intervals, replace(HardenConfig.intervals_only(),
                                                              disagree=d)))
    for r in sorted({cfg.ratio, *cfg.fig4_ratios}):
        st.save(_vname("hardened", r), harden(base, intervals,
                                              HardenConfig(ratio=r, disagree=d), vuln))
    for r in sorted({*cfg.fig3_ratios, 1.0}):
        st.save(_vname("tmr", r), harden(base, intervals, HardenConfig.tmr(r), vuln))
    for r in cfg.fig3_ratios:
        st.save(_vname("dup-noint", r), harden(base, intervals, HardenConfig(
            ratio=r, intervals=False, disagree=d), vuln))
    # INT8 storage: fold BN, put every tensor on its int8 grid, then harden that model.
    base8 = Int8Image.prepare(base)
    st.save("baseline-int8", base8)
    h8 = harden(base8, profile_intervals(base8, train), HardenConfig(ratio=cfg.ratio,
                                                                     disagree=d), vuln)
    Int8Image(h8, prepared=True)  # bounds rounded outward onto their int8 grid, in place
    st.save("hardened-int8", h8)


def _pruning(st: _Study, base: nn.Module, data: DataSplits, base_cfg: TrainConfig,
             vuln: Mapping[str, torch.Tensor], base_acc: float
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], PruneResult]:
    import pandas as pd

    cfg = st.config
    ft = cfg.finetune()
    fig5 = []
    for r in cfg.prune_ratios:
        for crit in ("vulnerability", "l1"):
            res = prune_and_finetune(base, data, PruneConfig(crit, r, r, ft), base_cfg,
                                     scores=vuln, cache=st.cache, progress=st.progress)
            fig5.append({"criterion": crit, "ratio": r, "accuracy_pruned": res.accuracy_pruned,
                         "accuracy": res.accuracy, "parameters": sum(
                             int(p.numel()) for p in res.model.parameters()),
                         "cached": res.from_cache})
            st.log(f"  Fig. 5: {crit} {r:.0%}: {res.accuracy_pruned:.4f} -> "
                   f"{res.accuracy:.4f}")
    chosen, points = search_ratios(base, data, base_cfg, vuln, baseline_accuracy=base_acc,
                                   tolerance=cfg.prune_tolerance, grid=cfg.prune_grid,
                                   finetune_config=ft, cache=st.cache, progress=st.progress,
                                   log=st.log)
    atomic_frame(pd.DataFrame(fig5), st.out / "fig5.csv")
    atomic_frame(pd.DataFrame(points), st.out / "table2_search.csv")
    return fig5, points, chosen


def _tolerated(frame: Any, name: str) -> float | None:
    rows = frame[frame["variant"] == name].sort_values("ber")
    best = None
    for r in rows.itertuples():
        if r.drop_mean < DROP_LIMIT:
            best = float(r.ber)
        else:
            break
    return best


def _collapse_ber(frame: Any, name: str) -> float | None:
    """Lowest BER where ``name`` lost half of its accuracy above chance (10 classes: 0.1)."""
    rows = frame[frame["variant"] == name].sort_values("ber")
    for r in rows.itertuples():
        chance = 0.1
        if r.accuracy_mean <= chance + 0.5 * (r.clean_accuracy_mean - chance):
            return float(r.ber)
    return None


def _costs(st: _Study, data: DataSplits, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    cfg = st.config
    x = data.test.tensors[0]
    names = ["baseline", "intervals-only", _vname("hardened", cfg.ratio), "tmr-1",
             "pruned", "hardened-pruned", "dup-noint-1" if 1.0 in cfg.fig3_ratios else None,
             *[_vname("hardened", r) for r in cfg.fig4_ratios],
             *[_vname(k, r) for k in ("dup-noint", "tmr") for r in cfg.fig3_ratios]]
    rows: list[dict[str, Any]] = []
    for name in dict.fromkeys(n for n in names if n):
        model = st.variants[name]
        cost: ModelCost = model_cost(model, shape)
        seconds = time_inference(model, x, repeats=cfg.timing_repeats)
        rows.append({"variant": name, "accuracy": evaluate(model, data.test), **cost.to_dict(),
                     "seconds": seconds})
    base = rows[0]
    for r in rows:
        for k in ("parameters", "stored", "memory_bytes", "macs", "seconds"):
            r[f"{k}_rel"] = r[k] / base[k] if base[k] else math.nan
    import pandas as pd

    atomic_frame(pd.DataFrame(rows), st.out / "overheads.csv")
    return rows


def _row(frame: Any, name: str, ber: float) -> Any:
    sel = frame[(frame["variant"] == name) & (frame["ber"] == ber)]
    return None if sel.empty else sel.iloc[0]


def _summarize(st: _Study, base_acc: float, tolerated: dict[str, float | None], sweep: Any,
               fig3: Any, fig3_ber: float | None, fig4: Any, fig4_ber: float,
               fig5: list[dict[str, Any]], chosen: PruneConfig,
               costs: list[dict[str, Any]], rank_summary: list[dict[str, Any]]
               ) -> dict[str, Any]:
    cfg = st.config
    main = _vname("hardened", cfg.ratio)
    claims = []
    tb, th = tolerated.get("baseline"), tolerated.get(main)
    if tb is None or th is None:
        holds = None if th is None and tb is None else th is not None
        lowest = min(cfg.bers)
        evidence = (f"baseline drops >= 5 pt already at the lowest swept BER {_fmt_ber(lowest)}"
                    f", hardened tolerates {_fmt_ber(th)}" if tb is None else
                    f"baseline tolerates {_fmt_ber(tb)}, hardened none")
        if tb is None and th is not None and th < 10 * lowest * (1 - 1e-9):
            holds = None
    else:
        holds = th >= 10 * tb * (1 - 1e-9)
        evidence = (f"baseline tolerates BER {_fmt_ber(tb)}, {cfg.ratio:.0%}-hardened "
                    f"{_fmt_ber(th)} ({th / tb:.0f}x)")
    claims.append({"claim": "hardened model within 5 points at >= 10x the baseline's BER",
                   "holds": holds, "evidence": evidence})
    by = {(r["criterion"], r["ratio"]): r for r in fig5}
    both = [r for r in cfg.prune_ratios if ("vulnerability", r) in by and ("l1", r) in by]
    wins = [(r, by["vulnerability", r]["accuracy"] - by["l1", r]["accuracy"],
             by["vulnerability", r]["accuracy_pruned"] - by["l1", r]["accuracy_pruned"])
            for r in both]
    claims.append({
        "claim": "vulnerability pruning beats L1 pruning at equal ratio",
        "holds": all(d > 0 for _, d, _ in wins) if wins else None,
        "evidence": "fine-tuned (before fine-tuning): " + ", ".join(
            f"{r:.0%}: {100 * d:+.2f} ({100 * d0:+.2f}) pt" for r, d, d0 in wins)})
    cost = {r["variant"]: r for r in costs}
    hp, hh = cost["hardened-pruned"], cost[main]
    cheaper = {k: hp[k] < hh[k] for k in ("parameters", "macs", "memory_bytes", "seconds")}
    claims.append({
        "claim": "hardened-pruned costs less than hardened",
        "holds": all(cheaper.values()),
        "evidence": ", ".join(f"{k} {hp[k] / hh[k]:.2f}x" for k in cheaper)})
    exact = [r["variant"] for r in costs if r["variant"] not in ("pruned", "hardened-pruned")
             and r["accuracy"] != base_acc]
    hp_exact = cost["hardened-pruned"]["accuracy"] == cost["pruned"]["accuracy"]
    claims.append({
        "claim": "hardened models keep the fault-free accuracy exactly",
        "holds": not exact and hp_exact,
        "evidence": ("all equal" if not exact and hp_exact else
                     "differs: " + ", ".join(exact + ([] if hp_exact else ["hardened-pruned"])))})
    if fig3 is not None and fig3_ber is not None:
        d1, t1 = _row(fig3, "dup-noint-1", fig3_ber), _row(fig3, "tmr-1", fig3_ber)
        if d1 is not None and t1 is not None:
            mem = cost["dup-noint-1"]["memory_bytes"] / cost["baseline"]["memory_bytes"] - 1 \
                if "dup-noint-1" in cost else math.nan
            mem_t = cost["tmr-1"]["memory_bytes"] / cost["baseline"]["memory_bytes"] - 1
            close = abs(d1.drop_mean - t1.drop_mean) <= max(0.01, 2 * max(
                d1.drop_high - d1.drop_mean, t1.drop_high - t1.drop_mean))
            claims.append({
                "claim": "full duplication + EDAC ~ TMR resilience at about half the overhead",
                "holds": bool(close and mem < 0.6 * mem_t),
                "evidence": f"BER {_fmt_ber(fig3_ber)}: drop {100 * d1.drop_mean:.2f} vs "
                            f"{100 * t1.drop_mean:.2f} pt, memory +{100 * mem:.0f} % vs "
                            f"+{100 * mem_t:.0f} %"})
    # Fig. 6: compare where it matters -- the tolerated BER, and the mean drop difference over
    # the BERs where the hardened model is neither intact nor dead (drop 0.5 .. 50 pt).
    diffs, transition = [], []
    for b in cfg.bers:
        a, p = _row(sweep, main, b), _row(sweep, "hardened-pruned", b)
        if a is not None and p is not None:
            diffs.append((b, p.drop_mean - a.drop_mean))
            if 0.005 <= a.drop_mean <= 0.5:
                transition.append(p.drop_mean - a.drop_mean)
    t_hp = tolerated.get("hardened-pruned")
    tol_ok = th is None or (t_hp is not None and t_hp >= th)
    claims.append({
        "claim": "hardened-pruned at least as resilient as hardened (Fig. 6)",
        "holds": (tol_ok and (not transition or statistics.mean(transition) <= 0))
        if diffs else None,
        "evidence": f"tolerated {_fmt_ber(t_hp)} vs {_fmt_ber(th)}; drop difference "
                    + ", ".join(f"{_fmt_ber(b)}: {100 * d:+.2f} pt" for b, d in diffs
                                if abs(d) >= 0.0005)})
    r0, r15 = _row(fig4, "hardened-0", fig4_ber), _row(fig4, main, fig4_ber)
    if r0 is not None and r15 is not None:
        claims.append({
            "claim": f"{cfg.ratio:.0%} duplication improves on 0 % (detection intervals)",
            "holds": bool(r15.drop_mean < r0.drop_mean),
            "evidence": f"BER {_fmt_ber(fig4_ber)}: {100 * r0.drop_mean:.2f} -> "
                        f"{100 * r15.drop_mean:.2f} pt"})
    per_layer = [r for r in rank_summary if r["layer"] != "all"]
    if per_layer:
        for kind in ("noise", "bitflip"):
            rhos = [r["spearman"] for r in per_layer if r["kind"] == kind
                    and not math.isnan(r["spearman"])]
            if rhos:
                claims.append({
                    "claim": f"Eq. (1) ranks channels like {kind} fault injection",
                    "holds": bool(statistics.mean(rhos) > 0.5),
                    "evidence": "Spearman per layer " + ", ".join(
                        f"{r['layer']} {r['spearman']:.2f}" for r in per_layer
                        if r["kind"] == kind)})
    return {"baseline_accuracy": base_acc, "tolerated": tolerated, "fig3_ber": fig3_ber,
            "fig4_ber": fig4_ber, "claims": claims,
            "table2": {"conv_ratio": chosen.conv_ratio, "fc_ratio": chosen.fc_ratio,
                       "accuracy": cost["pruned"]["accuracy"]}}


def _write_settings(st: _Study, trained: Any, data: DataSplits, summary: dict[str, Any]
                    ) -> None:
    settings = {
        "format": "flipclock-harden-study-1",
        "config": st.config.to_dict(),
        "train_config": json.loads(trained.config.to_json()),
        "checkpoint": str(trained.checkpoint) if trained.checkpoint else None,
        "dataset": data.info.to_dict(),
        "models": {n: {"file": st.files[n], "state_sha256_20": st.hashes[n]}
                   for n in st.files},
        "finetune": st.config.finetune().to_dict(),
        "vulnerability": json.loads(VulnerabilityConfig(samples=st.config.vuln_samples,
                                                        seed=st.config.seed).to_json()),
        "fig3_ber": summary.get("fig3_ber"), "fig4_ber": summary.get("fig4_ber"),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    atomic_text(st.out / "settings.json", json.dumps(settings, indent=1, default=str) + "\n")


# --- report ----------------------------------------------------------------------------------
EQ1 = (r"V_{l,c} = \frac{1}{N}\sum_{n=1}^{N} \frac{1}{K}\sum_{i=1}^{K} "
       r"\frac{\sum_{w\in W_{l,c}} \left(\partial\,(y_t - y_i)/\partial w\right)^2}"
       r"{(y_t - y_i)^2}")


def _pt(v: float) -> str:
    return f"{100 * v:.2f}"


def _ci(row: Any, metric: str = "drop") -> str:
    mean, hi = getattr(row, f"{metric}_mean"), getattr(row, f"{metric}_high")
    return f"{_pt(mean)} ± {_pt(hi - mean)}"


def _savefig(fig: Any, path: Path) -> None:
    fig.tight_layout()
    save_figure(fig, path)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_sweep(frame: Any, names: Sequence[str], path: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name in names:
        rows = frame[frame["variant"] == name].sort_values("ber")
        if rows.empty:
            continue
        y = 100 * rows["drop_mean"]
        err = [100 * (rows["drop_mean"] - rows["drop_low"]),
               100 * (rows["drop_high"] - rows["drop_mean"])]
        ax.errorbar(rows["ber"], y, yerr=err, marker="o", capsize=3, label=name)
    ax.axhline(100 * DROP_LIMIT, color="grey", linestyle="--", linewidth=1, label="5 pt")
    ax.set_xscale("log")
    ax.set_xlabel("bit error rate")
    ax.set_ylabel("accuracy drop (percentage points)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _savefig(fig, path)


def _plot_fig3(fig3: Any, costs: Mapping[str, Any], ratios: Sequence[float], ber: float,
               path: Path) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.6, 4.0), dpi=120)
    base_mem = costs["baseline"]["memory_bytes"]
    for kind, label in (("dup-noint", "duplication + EDAC"), ("tmr", "triplication + voter")):
        rows = [_row(fig3, _vname(kind, r), ber) for r in ratios]
        a.errorbar([100 * r for r in ratios], [100 * x.drop_mean for x in rows],
                   yerr=[[100 * (x.drop_mean - x.drop_low) for x in rows],
                         [100 * (x.drop_high - x.drop_mean) for x in rows]],
                   marker="o", capsize=3, label=label)
        b.plot([100 * r for r in ratios],
               [100 * (costs[_vname(kind, r)]["memory_bytes"] / base_mem - 1) for r in ratios],
               marker="o", label=label)
    a.set_title(f"(a) resilience, BER {ber:.0e}")
    a.set_ylabel("accuracy drop (pt)")
    b.set_title("(b) memory overhead")
    b.set_ylabel("memory overhead (%)")
    for ax in (a, b):
        ax.set_xlabel("channel hardening ratio (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _savefig(fig, path)


def _plot_fig4(fig4: Any, costs: Mapping[str, Any], ratios: Sequence[float], ber: float,
               path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    rows = [_row(fig4, _vname("hardened", r), ber) for r in ratios]
    xs = [100 * r for r in ratios]
    ax.errorbar(xs, [100 * x.drop_mean for x in rows],
                yerr=[[100 * (x.drop_mean - x.drop_low) for x in rows],
                      [100 * (x.drop_high - x.drop_mean) for x in rows]],
                marker="o", capsize=3, color="C0", label="accuracy drop")
    ax.set_xlabel("channel hardening ratio (%)")
    ax.set_ylabel("accuracy drop (pt)", color="C0")
    ax2 = ax.twinx()
    ax2.plot(xs, [100 * (costs[_vname("hardened", r)]["seconds_rel"] - 1) for r in ratios],
             marker="s", color="C1", label="execution time overhead")
    ax2.set_ylabel("execution time overhead vs baseline (%)", color="C1")
    ax.set_title(f"duplication + EDAC with detection intervals, BER {ber:.0e}")
    ax.grid(alpha=0.3)
    _savefig(fig, path)


def _plot_fig5(fig5: Sequence[Mapping[str, Any]], base_acc: float, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for crit, label in (("vulnerability", "vulnerability (Eq. 1)"), ("l1", "L1 norm")):
        rows = sorted((r for r in fig5 if r["criterion"] == crit), key=lambda r: r["ratio"])
        ax.plot([100 * r["ratio"] for r in rows], [100 * r["accuracy"] for r in rows],
                marker="o", label=f"{label}, fine-tuned")
        ax.plot([100 * r["ratio"] for r in rows], [100 * r["accuracy_pruned"] for r in rows],
                marker="x", linestyle=":", label=f"{label}, before fine-tuning")
    ax.axhline(100 * base_acc, color="grey", linestyle="--", linewidth=1, label="unpruned")
    ax.set_xlabel("pruning ratio of every conv/FC layer (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _savefig(fig, path)


def _plot_fig7(costs: Sequence[Mapping[str, Any]], names: Sequence[str], path: Path) -> None:
    plt = _plt()
    by = {r["variant"]: r for r in costs}
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    vals = [by[n]["seconds"] for n in names]
    ax.bar(range(len(names)), vals, color=[f"C{i}" for i in range(len(names))])
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylabel("seconds over the test set (1 CPU thread)")
    ax.grid(alpha=0.3, axis="y")
    _savefig(fig, path)


def _plot_rank(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    plt = _plt()
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0), dpi=120)
    for ax, kind in zip(axes, ("noise", "bitflip"), strict=True):
        for i, layer in enumerate(layers):
            sel = [r for r in rows if r["kind"] == kind and r["layer"] == layer]
            ax.scatter([r["vulnerability"] for r in sel], [r["mismatch"] for r in sel],
                       s=10, color=f"C{i}", label=layer)
        ax.set_xscale("log")
        ax.set_xlabel("Eq. (1) vulnerability")
        ax.set_ylabel("top-1 mismatch rate")
        ax.set_title(f"{kind} in one channel's weights")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _savefig(fig, path)


def _write_report(st: _Study, data: DataSplits, trained: Any, base_acc: float,
                  vuln: Mapping[str, torch.Tensor], rank_rows: list[dict[str, Any]],
                  rank_summary: list[dict[str, Any]], sweep: Any,
                  tolerated: Mapping[str, float | None], fig3: Any, fig3_ber: float | None,
                  fig4: Any, fig4_ber: float, int8: Any, fig5: list[dict[str, Any]],
                  table2: list[dict[str, Any]], costs: list[dict[str, Any]],
                  summary: dict[str, Any]) -> None:
    cfg, out = st.config, st.out
    main = _vname("hardened", cfg.ratio)
    cost = {r["variant"]: r for r in costs}
    sweep_names = ["baseline", "intervals-only", main, "tmr-1", "pruned", "hardened-pruned"]
    _plot_sweep(sweep, sweep_names, out / "fig_sweep.png", "float32 parameter bit flips")
    _plot_sweep(sweep, ["baseline", main, "hardened-pruned"], out / "fig6.png",
                "Fig. 6: hardened vs hardened pruned")
    if fig3 is not None and fig3_ber is not None:
        _plot_fig3(fig3, cost, cfg.fig3_ratios, fig3_ber, out / "fig3.png")
    _plot_fig4(fig4, cost, cfg.fig4_ratios, fig4_ber, out / "fig4.png")
    _plot_fig5(fig5, base_acc, out / "fig5.png")
    _plot_fig7(costs, sweep_names, out / "fig7.png")
    _plot_sweep(int8, ["baseline-int8", "hardened-int8"], out / "fig_int8.png",
                "INT8-stored parameter bit flips")
    if rank_rows:
        _plot_rank(rank_rows, out / "rank.png")

    n_eval = cfg.eval_samples or data.info.n_test
    md: list[str] = [
        f"# Vulnerability-based hardening and pruning: {cfg.model} on {data.info.name}", "",
        "Reproduction of Ahmadilivani et al., *Cost-Effective Fault Tolerance for CNNs Using "
        "Parameter Vulnerability Based Hardening and Pruning* (2024) with flipclock's "
        "`nnmap` (`flipclock harden study`)." + (" **Quick demo configuration: tiny data, "
                                                   "few repetitions; numbers are not "
                                                   "meaningful.**" if cfg.quick else ""), "",
        f"Baseline: {cfg.model}, {cfg.epochs} epochs (checkpoint "
        f"`{Path(str(trained.checkpoint)).name if trained.checkpoint else 'not cached'}`), "
        f"data `{data.info.fingerprint[:16]}` ({data.info.n_train} train / "
        f"{data.info.n_test} test images). Fault trials: {cfg.repetitions} repetitions per "
        f"float32 point, {cfg.int8_repetitions} per INT8 point, each on {n_eval} test images "
        f"(seeded subset, seed {cfg.seed}); fault-free accuracies and times on the whole test "
        f"set. Campaign time {summary.get('seconds', 0) / 60:.1f} min. Settings: "
        "`settings.json`.", "",
        "## Table I: baseline", "",
        "| CNN | Dataset | Accuracy | #parameters | #MACs | Execution time over the test set |",
        "|---|---|---:|---:|---:|---:|",
        f"| {cfg.model} | {data.info.name} | {100 * base_acc:.2f} % | "
        f"{cost['baseline']['parameters']:,} | {cost['baseline']['macs']:,} | "
        f"{cost['baseline']['seconds']:.3f} s (CPU time, 1 thread) |", "",
        "## Claims checked", "",
        "| Claim of the paper | Verdict | Numbers |", "|---|---|---|"]
    for c in summary["claims"]:
        verdict = {True: "holds", False: "**does not hold**", None: "n/a"}[c["holds"]]
        md.append(f"| {c['claim']} | {verdict} | {c['evidence']} |")
    md += ["", "## Eq. (1): channel vulnerability", "",
           "Reconstructed (the equation was lost from our copy of the paper) from its text, "
           "from HarDNN's gain heuristic (Mahmoud et al., arXiv 2002.09786, after Sakr et "
           "al.'s mismatch bound) and the authors' published code; `t` is the top class of "
           "input `n`, `W_{l,c}` the weights of output channel `c` of layer `l`:", "",
           f"$$ {EQ1} $$", "",
           f"averaged over N = {cfg.vuln_samples} training images (terms with y_i = y_t, "
           "i != t, use a denominator of 1). See `nnmap/vulnerability.py`.", "",
           "Validation against fault injection into each channel's weights on "
           f"{cfg.rank_samples} test images (`rank_validation.csv`): *noise* = "
           f"{cfg.rank_noise_trials} Gaussian perturbations of standard deviation "
           f"{cfg.rank_noise} x the layer's weight standard deviation (the perturbation Eq. (1) "
           "bounds to first order); *bitflip* = one float32 bit flip per bit position 0..31 at "
           "a random weight of the channel (the paper's fault model, stratified). Metric: "
           "top-1 mismatch rate with the fault-free network. Spearman rank correlation of "
           "Eq. (1) with the measured mismatch:", "",
           "| Layer | channels | Spearman (noise) | Spearman (bit flip) |", "|---|---:|---:|---:|"]
    layers = list(dict.fromkeys(r["layer"] for r in rank_summary))
    for layer in layers:
        got = {r["kind"]: r for r in rank_summary if r["layer"] == layer}
        ch = next(iter(got.values()))["channels"]
        md.append(f"| {layer} | {ch} | " + " | ".join(
            f"{got[k]['spearman']:.3f}" if k in got else "-" for k in ("noise", "bitflip"))
            + " |")
    md += ["", "(`all` pools every validated channel: meaningful for bit flips, which are the "
           "same fault in every layer; the noise level is per layer.)", "",
           "![Eq. (1) vs fault injection](rank.png)", "",
           "## Fault model", "",
           "Every layer that stores numbers (conv, FC, batch norm, and the EDAC layers' "
           "detection-interval bounds) gets BER x (its stored bits) flips at distinct uniform "
           "positions (stochastic rounding of the count, so the expectation is exact); float32 "
           "words or INT8 codes (`nnmap/bitflip.py`).", "",
           "## BER sweep (float32): accuracy drop in percentage points, mean ± 95 % CI", ""]
    md += _sweep_table(sweep, sweep_names, cfg.bers)
    md += ["", "Highest swept BER tolerated (mean drop < 5 pt there and below): " + ", ".join(
        f"{n} {_fmt_ber(tolerated.get(n))}" for n in sweep_names) + ".", "",
           f"Variants: `intervals-only` = EDAC layers, no duplication; `{main}` = "
           f"{cfg.ratio:.0%} duplication + EDAC (all output neurons of the last layer "
           "duplicated); `tmr-1` = every channel triplicated + voter; `pruned` = Table II "
           f"model; `hardened-pruned` = it with {cfg.ratio:.0%} duplication + EDAC.", "",
           "![BER sweep](fig_sweep.png)", "",
           "## Fig. 6: hardened vs hardened pruned", "", "![Fig. 6](fig6.png)", ""]
    if fig3 is not None and fig3_ber is not None:
        md += [f"## Fig. 3: duplication + EDAC vs triplication + voter at BER {fig3_ber:.0e}", "",
               "Detection intervals are not used for non-duplicated channels here "
               f"(the paper's Fig. 3). BER rule: {'given' if cfg.fig3_ber else 'lowest swept BER at which the unprotected model lost half of its accuracy above chance'}.",  # noqa: E501
               "", "| Hardening ratio | dup + EDAC drop (pt) | TMR drop (pt) | dup memory "
               "overhead | TMR memory overhead |", "|---:|---:|---:|---:|---:|"]
        bm = cost["baseline"]["memory_bytes"]
        for r in cfg.fig3_ratios:
            d, t = _row(fig3, _vname("dup-noint", r), fig3_ber), _row(fig3, _vname("tmr", r),
                                                                      fig3_ber)
            md.append(f"| {r:.0%} | {_ci(d)} | {_ci(t)} | "
                      f"+{100 * (cost[_vname('dup-noint', r)]['memory_bytes'] / bm - 1):.1f} % | "
                      f"+{100 * (cost[_vname('tmr', r)]['memory_bytes'] / bm - 1):.1f} % |")
        md += ["", "![Fig. 3](fig3.png)", ""]
    md += [f"## Fig. 4: selective duplication + EDAC at BER {fig4_ber:.0e}", "",
           f"BER rule: {'given' if cfg.fig4_ber else f'highest swept BER at which the {cfg.ratio:.0%}-hardened model drops < 5 pt'}.",  # noqa: E501
           "", "| Hardening ratio | accuracy drop (pt) | parameters | execution time vs "
           "baseline |", "|---:|---:|---:|---:|"]
    for r in cfg.fig4_ratios:
        row = _row(fig4, _vname("hardened", r), fig4_ber)
        c = cost[_vname("hardened", r)]
        md.append(f"| {r:.0%} | {_ci(row)} | {c['parameters']:,} | "
                  f"{100 * (c['seconds_rel'] - 1):+.1f} % |")
    md += ["", "![Fig. 4](fig4.png)", "",
           "## Fig. 5: vulnerability-based vs L1-norm pruning", "",
           f"Every conv and hidden FC layer pruned by the ratio, then fine-tuned "
           f"{cfg.finetune_epochs} epochs (SGD, lr {cfg.finetune_lr:g}, momentum 0.9). "
           f"Unpruned: {100 * base_acc:.2f} %.", "",
           "| Ratio | vulnerability: pruned -> fine-tuned | L1: pruned -> fine-tuned | "
           "difference after fine-tuning |", "|---:|---:|---:|---:|"]
    by = {(r["criterion"], r["ratio"]): r for r in fig5}
    for r in cfg.prune_ratios:
        v, l1 = by.get(("vulnerability", r)), by.get(("l1", r))
        if v and l1:
            md.append(f"| {r:.0%} | {100 * v['accuracy_pruned']:.2f} -> {100 * v['accuracy']:.2f}"
                      f" % | {100 * l1['accuracy_pruned']:.2f} -> {100 * l1['accuracy']:.2f} % "
                      f"| {100 * (v['accuracy'] - l1['accuracy']):+.2f} pt |")
    hp, pr, base_c = cost["hardened-pruned"], cost["pruned"], cost["baseline"]
    t2 = summary["table2"]
    md += ["", "![Fig. 5](fig5.png)", "",
           "## Table II: largest pruning ratios within "
           f"{100 * cfg.prune_tolerance:g} point of the baseline", "",
           "| CNN | CONV ratio | FC ratio | Accuracy | #params pruned / baseline | #MACs "
           "pruned / baseline | Execution time pruned / baseline |",
           "|---|---:|---:|---:|---:|---:|---:|",
           f"| {cfg.model} | {t2['conv_ratio'] or 0:.0%} | {t2['fc_ratio'] or 0:.0%} | "
           f"{100 * pr['accuracy']:.2f} % | {pr['parameters_rel']:.4f} | {pr['macs_rel']:.4f} "
           f"| {pr['seconds_rel']:.3f} |", "",
           "Search (bisection over the grid: FC ratio first with conv 0, then conv ratio):", "",
           "| conv | FC | accuracy | within |", "|---:|---:|---:|---|"]
    for p in table2:
        md.append(f"| {p['conv_ratio']:.0%} | {p['fc_ratio']:.0%} | {100 * p['accuracy']:.2f} % "
                  f"| {'yes' if p['within'] else 'no'} |")
    md += ["", "## Overheads and Fig. 7", "",
           "| Variant | fault-free accuracy | parameters | stored numbers | memory | MACs | "
           "time (s) | time vs baseline |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in costs:
        md.append(f"| {c['variant']} | {100 * c['accuracy']:.2f} % | {c['parameters']:,} | "
                  f"{c['stored']:,} | {c['memory_bytes'] / 1024:.1f} KiB | {c['macs']:,} | "
                  f"{c['seconds']:.3f} | {100 * (c['seconds_rel'] - 1):+.1f} % |")
    md += ["", f"Hardened pruned vs hardened: parameters {hp['parameters'] / cost[main]['parameters']:.3f}x, "  # noqa: E501
           f"MACs {hp['macs'] / cost[main]['macs']:.3f}x, time "
           f"{hp['seconds'] / cost[main]['seconds']:.3f}x; vs the unprotected baseline: memory "
           f"{hp['memory_bytes'] / base_c['memory_bytes']:.3f}x, time "
           f"{hp['seconds'] / base_c['seconds']:.3f}x. Times are the best of "
           f"{cfg.timing_repeats} passes over the test set in CPU seconds on one thread of a "
           "shared machine (not a GPU as in the paper): expect noise of several percent.", "",
           "![Fig. 7](fig7.png)", "",
           "## INT8 storage", "",
           "Batch norm folded, weights int8 per output channel, vectors int8 per tensor, EDAC "
           "bounds rounded outward; flips in the int8 codes. Accuracy drop (pt):", ""]
    clean8 = {n: _row(int8, n, cfg.bers[0]) for n in ("baseline-int8", "hardened-int8")}
    md += [f"Fault-free accuracy on the {n_eval} evaluation images: " + ", ".join(
        f"{n} {100 * r.clean_accuracy_mean:.2f} %" for n, r in clean8.items() if r is not None)
        + f" (float32 baseline: {100 * _row(sweep, 'baseline', cfg.bers[0]).clean_accuracy_mean:.2f} %).",  # noqa: E501
        ""]
    md += _sweep_table(int8, ["baseline-int8", "hardened-int8"], cfg.bers)
    md += ["", "![INT8](fig_int8.png)", "",
           "## Files", "",
           "`sweep.csv`, `fig3.csv`, `fig4.csv`, `int8.csv` (campaign summaries: mean and 95 % "
           "CI per point), `campaigns/*/results.jsonl` (every trial), `fig5.csv`, "
           "`table2_search.csv`, `overheads.csv`, `vulnerability.csv`, `rank_validation.csv`, "
           "`rank_correlation.csv`, `models/*.pt` (every variant, `torch.load`), "
           "`settings.json`, `summary.json`.", ""]
    atomic_text(out / "report.md", "\n".join(md))


def _sweep_table(frame: Any, names: Sequence[str], bers: Sequence[float]) -> list[str]:
    lines = ["| BER | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for b in bers:
        cells = []
        for n in names:
            row = _row(frame, n, b)
            cells.append("-" if row is None else _ci(row))
        lines.append(f"| {b:.0e} | " + " | ".join(cells) + " |")
    return lines


#: The study's entry point under a name unique in :mod:`nnmap`'s namespace.
run_harden_study = run_study
