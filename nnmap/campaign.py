"""Monte Carlo campaigns: many seeded trials, results kept as they finish, resumable.

A campaign is a list of *trials* (JSON-able parameter dicts, each with a ``trial`` index
that seeds it) and a function ``fn(params) -> dict`` of numbers. :func:`run_campaign`
runs the trials that have no result yet -- in this process, or on a Dask distributed
cluster -- and appends every result to ``OUT/results.jsonl`` as soon as it is done
(flushed and fsynced, one line per trial, so a killed run loses at most the trial in
flight and a torn last line is ignored on resume). ``OUT/campaign.json`` records the
settings; results of other settings in the folder are an error, never silently mixed.

:func:`summarize` groups the trials by every parameter except ``trial`` and reports the
mean of each metric with a Student-t 95 % confidence interval.

The trial function must be importable (a module-level function) for Dask; results are
keyed by the canonical JSON of the parameters, so trial order and executor do not change
the result.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.atomic import atomic_text

from .errors import NNMapError
from .stats import mean_ci

__all__ = ["CampaignError", "run_campaign", "summarize", "trial_key"]

Params = Mapping[str, Any]
FORMAT = "flipclock-campaign-1"


class CampaignError(NNMapError):
    """A campaign folder cannot be used (the message names the fix)."""


def trial_key(params: Params) -> str:
    """Canonical key of a trial's parameters."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


def _settings_hash(settings: Params) -> str:
    return hashlib.sha256(trial_key(settings).encode()).hexdigest()


def _read_results(path: Path) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill: that trial runs again
            if isinstance(rec, dict) and "params" in rec and "result" in rec:
                done[trial_key(rec["params"])] = rec
    return done


def run_campaign(trials: Sequence[Params], fn: Callable[[Params], Mapping[str, Any]],
                 out: str | os.PathLike[str], *, settings: Params, client: Any = None,
                 progress: bool = True, desc: str = "trials", force: bool = False,
                 ) -> list[dict[str, Any]]:
    """Run every trial without a stored result; return all results (in trial order).

    Parameters
    ----------
    trials:
        Parameter dicts (JSON-able), unique.
    fn:
        ``fn(params) -> {metric: number}``; must be deterministic given ``params``.
    out:
        Campaign folder.
    settings:
        Everything else that shapes the results (model and data hashes, fault model...).
    client:
        Optional ``dask.distributed.Client``.
    force:
        Discard results of other settings found in ``out``.
    """
    from tqdm import tqdm

    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CampaignError(f"Cannot create campaign folder {str(folder)!r} ({exc.strerror}); "
                            "choose a writable --out") from None
    header = folder / "campaign.json"
    digest = _settings_hash(settings)
    results = folder / "results.jsonl"
    if header.is_file():
        try:
            old = json.loads(header.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("settings_hash") != digest:
            if not force:
                was = old.get("settings", {}).get("code_version")
                if was != settings.get("code_version"):
                    raise CampaignError(
                        f"{str(folder)!r} holds trials of other flipclock code (code version "
                        f"{was or 'unrecorded'}, now {settings.get('code_version')}); they "
                        "are not reused: use --force to recompute them, or another --out")
                raise CampaignError(f"{str(folder)!r} holds a campaign with other settings; "
                                    "use another --out folder or --force")
            results.unlink(missing_ok=True)
    atomic_text(header, json.dumps({"format": FORMAT, "settings_hash": digest,
                                    "settings": dict(settings)}, indent=1, sort_keys=True)
                + "\n")
    keys = [trial_key(p) for p in trials]
    if len(set(keys)) != len(keys):
        raise CampaignError("Campaign trials must be unique (give each a different 'trial')")
    done = _read_results(results)
    todo = [p for p, k in zip(trials, keys, strict=True) if k not in done]
    bar = tqdm(total=len(trials), initial=len(trials) - len(todo), desc=desc,
               disable=not progress, unit="trial")
    with open(results, "a") as f:
        def store(params: Params, result: Mapping[str, Any]) -> None:
            rec = {"params": dict(params), "result": dict(result)}
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
            done[trial_key(params)] = rec
            bar.update(1)

        try:
            if client is not None and todo:
                from distributed import as_completed

                futures = {client.submit(fn, dict(p), pure=False): p for p in todo}
                for fut in as_completed(futures):
                    store(futures[fut], fut.result())
            else:
                for p in todo:
                    store(p, fn(dict(p)))
        finally:
            bar.close()
    return [done[k] for k in keys]


def summarize(records: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> Any:
    """Mean and confidence interval of every metric per parameter group (pandas frame).

    Groups by every parameter except ``trial``; for each numeric metric ``m`` the frame has
    ``m_mean``, ``m_low``, ``m_high`` and ``n`` (trials in the group).
    """
    import pandas as pd

    groups: dict[str, tuple[dict[str, Any], list[Mapping[str, Any]]]] = {}
    for rec in records:
        params = {k: v for k, v in rec["params"].items() if k != "trial"}
        key = trial_key(params)
        groups.setdefault(key, (params, []))[1].append(rec["result"])
    rows = []
    for params, results in groups.values():
        row: dict[str, Any] = dict(params)
        row["n"] = len(results)
        metrics = sorted({k for r in results for k, v in r.items()
                          if isinstance(v, int | float) and not isinstance(v, bool)})
        for m in metrics:
            vals = [float(r[m]) for r in results if m in r]
            if len(vals) >= 2:
                ci = mean_ci(vals, confidence)
                row[f"{m}_mean"], row[f"{m}_low"], row[f"{m}_high"] = ci.mean, ci.low, ci.high
            else:
                row[f"{m}_mean"] = row[f"{m}_low"] = row[f"{m}_high"] = vals[0]
        rows.append(row)
    return pd.DataFrame(rows)
