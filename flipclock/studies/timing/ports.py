"""Which multiplier port should hold the weight: what the error table says, per weight code.

At a period, for each port the weight may sit on:

* ``codes_erring`` -- how many of the 255 int8 weight codes (``-127..127``) ever give a
  wrong product with a non-negative activation (codes ``0..127``, what a ReLU network feeds
  its multipliers), read off the table (no network involved);
* ``expected_wrong`` -- expected wrong products per image at regulation 1 of each trained
  network: ``sum over layers and weights of positions * p_layer(code)``, with ``p_layer`` the
  table marginalised over the layer's measured activation histogram (training images);
* ``zero_share`` -- the share of those expected wrong products carried by weights of code 0.

The two per-network figures are :func:`nnmap.stats.nested_ci` over the models (one value
each, so the interval is over models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnmap.stats import nested_ci

__all__ = ["weight_code_findings"]


def _codes_erring(table: Any, port: str) -> int:
    """Weight codes (-127..127) with a wrong product for some activation code 0..127."""
    p = table.p_wrong if port == "a" else table.p_wrong.T  # [weight code, activation code]
    errs = np.asarray((np.asarray(p)[:, :128] > 0).any(axis=1), bool)
    errs[128] = False  # code -128 is never a weight (symmetric quantization to +-127)
    return int(errs.sum())


def weight_code_findings(runs: Sequence[Any], table: Any, ports: Sequence[str]
                         ) -> list[dict[str, Any]]:
    """One dict per port (see the module docstring); ``runs`` are prepared
    :class:`~.study.ModelRun` objects."""
    out = []
    for port in ports:
        totals, zero = [], []
        for run in runs:
            qnet = run.qnet(port)
            hist = run.streams(port).hist
            total = z = 0.0
            for name, layer in qnet.layers.items():
                pw = table.weight_error_probability(port, hist[name])
                codes = layer.weight.numpy().ravel().view(np.uint8)
                ho, wo = layer.out_hw
                contrib = pw[codes] * ho * wo
                total += float(contrib.sum())
                z += float(contrib[codes == 0].sum())
            totals.append(total)
            zero.append(z / total if total > 0 else float("nan"))
        row: dict[str, Any] = {"port": port, "period": table.period,
                               "codes_erring": _codes_erring(table, port)}
        for key, vals in (("expected_wrong", totals), ("zero_share", zero)):
            if all(np.isfinite(vals)):
                ci = nested_ci([[v] for v in vals])
                row.update({f"{key}_mean": ci.mean, f"{key}_low": ci.low,
                            f"{key}_high": ci.high, f"{key}_models": ci.models})
        out.append(row)
    return out
