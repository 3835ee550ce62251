"""From campaign trials to the study's figures of merit: trial rows of every model, their
nested intervals over models x trials, the grid BER rules of Figs. 3 and 4, and the
overheads of every variant.

A variant *tolerates* a swept BER when its mean accuracy drop (mean over models) is below 5
points there and at every lower swept BER (the grid rule that picks Fig. 4's BER; the
per-model tolerance of the claims is bisected, :mod:`.bisection`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from nnmap.cost import model_cost, time_inference
from nnmap.data import DataSplits
from nnmap.stats import NestedCI, nested_ci
from nnmap.train import evaluate
from sim.atomic import atomic_frame

from .config import DROP_LIMIT, variant_name
from .workspace import Workspace

__all__ = ["METRICS", "by_variant", "collapse_ber", "costs", "fmt_ber", "fmt_ci", "nested_frame",
           "row", "single", "tolerated", "trial_rows"]

METRICS = ("accuracy", "clean_accuracy", "drop", "flips")
"""The per-trial metrics of a bit-flip campaign."""


def trial_rows(records: Sequence[Mapping[str, Any]], train_seed: int) -> list[dict[str, Any]]:
    """One row per bit-flip trial: model, variant, BER, trial and its metrics."""
    return [{"train_seed": train_seed, "variant": r["params"]["variant"],
             "ber": float(r["params"]["ber"]), "trial": int(r["params"]["trial"]),
             **{m: float(r["result"][m]) for m in METRICS}} for r in records]


def nested_frame(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Per (variant, BER): every metric's :func:`~nnmap.stats.nested_ci` over models
    (outer) x trials (inner): ``m_mean``, ``m_low``, ``m_high``, ``models``, ``n`` (trials in
    all) and ``drop_model_sd``."""
    groups: dict[tuple[str, float], dict[int, list[Mapping[str, Any]]]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["ber"]), {}).setdefault(r["train_seed"], []).append(r)
    out = []
    for (variant, ber), per_model in groups.items():
        rec: dict[str, Any] = {"variant": variant, "ber": ber}
        for m in METRICS:
            ci = nested_ci([[float(t[m]) for t in ts] for _, ts in sorted(per_model.items())])
            rec[f"{m}_mean"], rec[f"{m}_low"], rec[f"{m}_high"] = ci.mean, ci.low, ci.high
            if m == "drop":
                rec.update(models=ci.models, n=ci.trials, drop_model_sd=ci.model_sd)
        out.append(rec)
    return pd.DataFrame(out).sort_values(["variant", "ber"]).reset_index(drop=True)


def single(values: Sequence[float]) -> NestedCI:
    """:func:`~nnmap.stats.nested_ci` of one value per model (no trials)."""
    return nested_ci([[float(v)] for v in values])


def fmt_ci(ci: Any, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    """``mean [low, high]`` of an interval, scaled."""
    return (f"{scale * ci.mean:.{digits}f}{unit} [{scale * ci.low:.{digits}f}, "
            f"{scale * ci.high:.{digits}f}]")


def fmt_ber(b: float | None) -> str:
    """A BER for a table (``none`` when there is none)."""
    return "none" if b is None else f"{b:.0e}"


def row(frame: Any, name: str, ber: float) -> Any:
    """The summary row of variant ``name`` at ``ber``, or ``None``."""
    sel = frame[(frame["variant"] == name) & (frame["ber"] == ber)]
    return None if sel.empty else sel.iloc[0]


def tolerated(frame: Any, name: str) -> float | None:
    """The highest swept BER that ``name`` tolerates (None: not even the lowest)."""
    best = None
    for r in frame[frame["variant"] == name].sort_values("ber").itertuples():
        if r.drop_mean >= DROP_LIMIT:
            break
        best = float(r.ber)
    return best


def collapse_ber(frame: Any, name: str, chance: float = 0.1) -> float | None:
    """Lowest BER where ``name`` lost half of its accuracy above ``chance``."""
    for r in frame[frame["variant"] == name].sort_values("ber").itertuples():
        if r.accuracy_mean <= chance + 0.5 * (r.clean_accuracy_mean - chance):
            return float(r.ber)
    return None


def _cost_names(ws: Workspace) -> list[str]:
    cfg = ws.config
    names = [*cfg.sweep_variants, "tmr-1", "dup-noint-1" if 1.0 in cfg.fig3_ratios else "",
             *[variant_name("hardened", r) for r in cfg.fig4_ratios],
             *[variant_name(k, r) for k in ("dup-noint", "tmr") for r in cfg.fig3_ratios]]
    return list(dict.fromkeys(n for n in names if n))


def costs(ws: Workspace, data: DataSplits, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Accuracy (whole test set), parameters, stored numbers, memory, MACs and CPU time (one
    thread, ``timing_samples`` test images) of every variant of one model, also relative to
    the baseline (``overheads.csv`` of the model)."""
    x = data.test.tensors[0]
    n = ws.config.timing_samples
    x = x[:n] if n else x
    rows: list[dict[str, Any]] = []
    threads = torch.get_num_threads()
    for name in _cost_names(ws):
        model = ws.variants[name]
        torch.set_num_threads(1)  # one thread: a shared machine's load inflates more
        try:
            seconds = time_inference(model, x, repeats=ws.config.timing_repeats)
        finally:
            torch.set_num_threads(threads)
        rows.append({"train_seed": ws.train_seed, "variant": name,
                     "accuracy": evaluate(model, data.test),
                     **model_cost(model, shape).to_dict(), "seconds": seconds})
    base = rows[0]
    for r in rows:
        for k in ("parameters", "stored", "memory_bytes", "macs", "seconds"):
            r[f"{k}_rel"] = r[k] / base[k] if base[k] else math.nan
    atomic_frame(pd.DataFrame(rows), ws.out / "overheads.csv")
    return rows


def by_variant(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Rows keyed by their ``variant``."""
    return {r["variant"]: r for r in rows}
