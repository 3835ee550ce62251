"""From campaign summaries to the study's figures of merit: tolerated BERs, the BER rules of
Figs. 3 and 4, the overheads of every variant, and the paper's claims with their verdicts.

A variant *tolerates* a BER when its mean accuracy drop is below 5 points there and at
every lower swept BER.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from nnmap.cost import model_cost, time_inference
from nnmap.data import DataSplits
from nnmap.train import evaluate
from sim.atomic import atomic_frame

from .config import DROP_LIMIT, variant_name
from .workspace import Workspace

__all__ = ["collapse_ber", "costs", "fmt_ber", "row", "tolerated"]


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
    names = [*cfg.sweep_variants, "dup-noint-1" if 1.0 in cfg.fig3_ratios else "",
             *[variant_name("hardened", r) for r in cfg.fig4_ratios],
             *[variant_name(k, r) for k in ("dup-noint", "tmr") for r in cfg.fig3_ratios]]
    return list(dict.fromkeys(n for n in names if n))


def costs(ws: Workspace, data: DataSplits, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Accuracy, parameters, stored numbers, memory, MACs and CPU time of every variant,
    also relative to the baseline (``overheads.csv``)."""
    x = data.test.tensors[0]
    rows: list[dict[str, Any]] = []
    for name in _cost_names(ws):
        model = ws.variants[name]
        seconds = time_inference(model, x, repeats=ws.config.timing_repeats)
        rows.append({"variant": name, "accuracy": evaluate(model, data.test),
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
