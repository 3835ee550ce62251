"""The study's working state for one trained model: the saved variants and the campaigns.

Each trained model (training seed ``s``) has its own work folder ``<out>/work/model-<s>/``
(big, resumable state: ``models/*.pt``, ``campaigns/*/results.jsonl`` and per-model CSVs;
``results/harden/work/`` is left out of git). Every variant is saved atomically to
``models/<name>.pt`` (trials load it by path, also on Dask workers) and identified in
campaign keys by its state digest, so a resumed campaign reuses a stored trial only when the
model it ran on is the same. Trial parameters carry the training seed, so every model gets
its own fault draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flipclock.studies.base import run_trials
from nnmap.harden import state_digest
from sim.atomic import atomic_write

from .config import HardenStudyConfig

__all__ = ["Workspace"]


class Workspace:
    """State shared by the steps of :func:`~flipclock.studies.harden.study.run_study`."""

    def __init__(self, config: HardenStudyConfig, out: Path, *, data_dir: str | None,
                 cache: str | None, client: Any, force: bool, progress: bool,
                 log: Callable[[str], None], train_seed: int | None = None):
        self.config = config
        self.train_seed = config.train_seed if train_seed is None else train_seed
        self.root = out
        self.out = out / "work" / f"model-{self.train_seed}"
        self.out.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.cache = cache
        self.client = client
        self.force = force
        self.progress = progress
        self.log = log
        self.files: dict[str, str] = {}
        self.hashes: dict[str, str] = {}
        self.variants: dict[str, nn.Module] = {}
        self.fingerprint = ""

    def save(self, name: str, model: nn.Module) -> None:
        """Save a variant to ``models/<name>.pt`` and remember it."""
        path = atomic_write(self.out / "models" / f"{name}.pt",
                            lambda tmp: torch.save(model, tmp))
        self.files[name] = str(path.resolve())
        self.hashes[name] = state_digest(model)[:20]
        self.variants[name] = model

    def base_params(self, eval_samples: int) -> dict[str, Any]:
        """The data keys every trial carries."""
        return {"dataset": self.config.dataset, "data_dir": self.data_dir,
                "eval_samples": eval_samples, "seed": self.config.seed,
                "train_seed": self.train_seed}

    def settings(self, kind: str, names: Sequence[str]) -> dict[str, Any]:
        """What, besides the trial parameters, shapes a campaign's results."""
        return {"study": "harden", "campaign": kind, "model": self.config.model,
                "data": self.fingerprint, "seed": self.config.seed,
                "train_seed": self.train_seed,
                "models": {n: self.hashes[n] for n in sorted(names)}}

    def campaign(self, kind: str, trials: list[dict[str, Any]],
                 fn: Callable[[Mapping[str, Any]], Mapping[str, Any]],
                 names: Sequence[str]) -> list[dict[str, Any]]:
        """Run (or resume) campaign ``kind`` into ``campaigns/<kind>/`` (the trials run on
        one thread; the caller's thread count is restored afterwards)."""
        threads = torch.get_num_threads()
        try:
            return run_trials(trials, fn, self.out / "campaigns" / kind,
                              settings=self.settings(kind, names), client=self.client,
                              progress=self.progress, desc=kind, force=self.force)
        finally:
            torch.set_num_threads(threads)

    def ber_trials(self, names: Sequence[str], bers: Sequence[float], reps: int,
                   dtype: str = "float32") -> list[dict[str, Any]]:
        """Every (variant, BER, repetition) trial of a bit-flip campaign."""
        base = self.base_params(self.config.eval_samples)
        return [{**base, "variant": n, "file": self.files[n], "dtype": dtype, "ber": b,
                 "trial": t} for n in names for b in bers for t in range(reps)]
