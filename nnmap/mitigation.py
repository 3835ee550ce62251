"""The paper's mitigation: weight distribution (WD) and error-aware quantization (EAQ).

Wu et al., section III-B/D and Fig. 4, on an INT8 network and a compressed error table.

Table III per layer
    ``p[code]``: probability that a product with weight ``code`` is wrong, from the
    compressed table oriented for the layer's weight port, marginalised over the activation
    codes -- either the layer's measured activation histogram (``act_dist="layer"``, the
    default: it knows that a ReLU layer never multiplies by a negative activation) or
    uniformly over all 256 codes (``act_dist="uniform"``, the paper's "each weight has an
    even chance to be multiplied by each input number").

Error-aware quantization (Fig. 2b)
    A weight's real-valued code ``x = w / s`` lies between two levels ``floor(x)`` and
    ``floor(x) + 1``; round-to-nearest takes the closer one, EAQ takes the one with the lower
    ``p`` (the closer one on a tie). Weights exactly on a level, and the clamp at
    ``+-127``, leave no choice.

Weight distribution (Fig. 1)
    A sensitive weight ``q`` (the top ``wd_fraction`` of ``|dL/dw|`` over the whole network)
    is split into two int8 weights ``q1 + q2 = q`` (both in ``[-127, 127]``, neither 0)
    with the lowest ``p[q1] + p[q2]`` -- ties go to the most balanced pair -- only where
    that sum is *strictly* lower than ``p[q]``. ``q1`` replaces ``q`` in the layer; ``q2``
    becomes an extra MAC fed with a duplicate of the same input. The extra MACs are run as
    small MAC layers of their own: in a convolution, the extra weights that read one input
    tap ``(c, ky, kx)`` form a 1x1 convolution over that tap's duplicated input plane (one
    output per extra weight, added to its output channel); in a fully connected layer, the
    extra weights of one output form a one-output layer over their duplicated inputs. No
    zero weight is added, so every extra product is one real multiplication. Both products
    therefore pass through the multiplier (and any hook, e.g. a
    :class:`~nnmap.timing.TimingInjector`, under the parent layer's name), and the integer
    accumulator is exactly the original one: ``q1 a + q2 a = q a``. Each split adds one MAC
    per output position (``Ho * Wo`` for a convolution, 1 for a fully connected layer).

N_EAQ is ``MitigationConfig(wd_fraction=0)`` (EAQ on every weight); N_WD+EAQ is the
default (WD on the top 1 %, EAQ on the other 99 %; a top weight that WD cannot improve
keeps its nearest level).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from sim.config import Config
from sim.tables import CompressedTable, signed_values

from .errors import NNMapError
from .quant import QMAX, MacHook, MacLayer, QuantizedNet
from .sensitivity import top_fraction_mask

__all__ = [
    "LayerMitigation",
    "MitigatedNet",
    "MitigationConfig",
    "MitigationError",
    "best_split",
    "eaq_codes",
    "layer_weight_error",
    "mitigate",
]

_N = 256
_VALUES = signed_values(8)
TableSpec = CompressedTable | Mapping[str, CompressedTable]


class MitigationError(NNMapError):
    """A mitigation setting or input is invalid (the message names the fix)."""


@dataclass(frozen=True)
class MitigationConfig(Config):
    """Settings of WD + EAQ.

    Parameters
    ----------
    wd_fraction:
        Fraction of the network's weights (most sensitive first) considered for weight
        distribution, in ``[0, 1]``; 0 gives N_EAQ.
    eaq:
        Apply error-aware quantization to the other weights (else they keep their nearest
        level).
    act_dist:
        How Table III marginalises activations: ``"layer"`` (measured histogram of the
        layer's activation codes) or ``"uniform"`` (the paper's assumption).
    """

    FORMAT: ClassVar[str] = "nnmap.mitigation"

    wd_fraction: float = 0.01
    eaq: bool = True
    act_dist: str = "layer"

    def __post_init__(self) -> None:
        if not 0 <= self.wd_fraction <= 1:
            raise MitigationError(f"wd_fraction must be in [0, 1], not {self.wd_fraction!r}")
        if self.act_dist not in ("layer", "uniform"):
            raise MitigationError(f"act_dist must be 'layer' or 'uniform', not "
                                  f"{self.act_dist!r}")

    @property
    def label(self) -> str:
        """``"WD+EAQ"``, ``"EAQ"``, ``"WD"`` or ``"none"``."""
        parts = (["WD"] if self.wd_fraction > 0 else []) + (["EAQ"] if self.eaq else [])
        return "+".join(parts) or "none"


# --- the two per-weight rules ----------------------------------------------------------------
def _by_value(p_code: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``p`` indexed by signed value + 128 (from ``p`` indexed by unsigned code)."""
    p = np.asarray(p_code, np.float64)
    if p.shape != (_N,):
        raise MitigationError(f"Table III must have 256 entries (one per int8 code), not "
                              f"{p.shape}")
    return np.concatenate([p[128:], p[:128]])


def eaq_codes(x: npt.ArrayLike, p_code: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Error-aware quantization of real-valued codes ``x = w / scale`` (Fig. 2b).

    Parameters
    ----------
    x:
        Real-valued codes (any shape).
    p_code:
        Table III: error probability per int8 code (indexed by unsigned code, ``-1`` is 255).

    Returns
    -------
    numpy.ndarray
        ``int8`` codes: of the two levels around ``x`` the one with the lower error
        probability, the nearest on a tie; ``x`` on a level, or beyond ``+-127``, keeps the
        nearest level.
    """
    xv = np.asarray(x, np.float64)
    p = _by_value(p_code)
    near = np.clip(np.round(xv), -QMAX, QMAX)
    lo = np.clip(np.floor(xv), -QMAX, QMAX)
    hi = np.clip(lo + 1, -QMAX, QMAX)
    other = np.where(near == lo, hi, lo)
    better = p[(other + 128).astype(np.int64)] < p[(near + 128).astype(np.int64)]
    # on a level, or outside the code range: nothing to choose
    better &= (xv != np.floor(xv)) & (np.floor(xv) >= -QMAX) & (np.floor(xv) + 1 <= QMAX)
    return np.where(better, other, near).astype(np.int8)


def best_split(p_code: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                                npt.NDArray[np.float64]]:
    """Best weight-distribution pair of every int8 value (Fig. 1).

    Parameters
    ----------
    p_code:
        Table III indexed by unsigned code.

    Returns
    -------
    (w1, w2, cost)
        Arrays indexed by signed value + 128 (``-128 .. 127``): the pair ``w1 + w2 = w``
        (``w1 >= w2``, both non-zero and in ``[-127, 127]``) minimising ``p[w1] + p[w2]``,
        ties to the most balanced pair, and that minimum (``inf`` where no pair exists).
    """
    p = _by_value(p_code)
    vals = np.arange(-128, 128)
    w1 = np.zeros(_N, np.int64)
    w2 = np.zeros(_N, np.int64)
    cost = np.full(_N, np.inf)
    q1 = np.arange(-QMAX, QMAX + 1)
    for i, w in enumerate(vals):
        q2 = w - q1
        ok = (q1 != 0) & (q2 != 0) & (np.abs(q2) <= QMAX) & (q1 >= q2)
        if not ok.any():
            continue
        a, b = q1[ok], q2[ok]
        c = p[a + 128] + p[b + 128]
        order = np.lexsort((np.abs(a - b), c))
        j = order[0]
        w1[i], w2[i], cost[i] = a[j], b[j], c[j]
    return w1, w2, cost


def layer_weight_error(qnet: QuantizedNet, tables: TableSpec,
                       hists: Mapping[str, npt.ArrayLike] | None = None,
                       act_dist: str = "layer") -> dict[str, npt.NDArray[np.float64]]:
    """Table III of every MAC layer: ``layer -> float64 [256]`` indexed by weight code.

    Parameters
    ----------
    qnet:
        The network (weight ports per layer).
    tables:
        One compressed table for every layer, or ``layer -> table``.
    hists:
        ``layer -> activation-code histogram`` (needed for ``act_dist="layer"``).
    act_dist:
        ``"layer"`` or ``"uniform"``.
    """
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name, layer in qnet.layers.items():
        table = _table_for(tables, name)
        if act_dist == "layer":
            if hists is None or name not in hists:
                raise MitigationError(f"act_dist='layer' needs the activation histogram of "
                                      f"{name!r}; measure operand streams first or use "
                                      "act_dist='uniform'")
            out[name] = table.weight_error_probability(layer.weight_port, hists[name])
        elif act_dist == "uniform":
            out[name] = table.weight_error_probability(layer.weight_port)
        else:
            raise MitigationError(f"act_dist must be 'layer' or 'uniform', not {act_dist!r}")
    return out


def _table_for(tables: TableSpec, name: str) -> CompressedTable:
    if isinstance(tables, CompressedTable):
        return tables
    if name not in tables:
        raise MitigationError(f"No error table for layer {name!r}; give one table or one per "
                              "MAC layer")
    return tables[name]


# --- the distributed network ------------------------------------------------------------------
@dataclass
class _Group:
    """Some extra MACs of a layer, as a small MAC layer of their own (named like the parent).

    Convolution: the extra weights on one input tap ``(c, ky, kx)`` -- a 1x1 convolution
    with one output per extra weight over that tap's duplicated input plane. Fully
    connected: the extra weights of one output ``o`` -- a one-output layer over the
    duplicated inputs ``k``. Either way every extra product is exactly one product of the
    small layer, and no zero weight is added.
    """

    layer: MacLayer
    outs: torch.Tensor  # parent output channel of each of the group's outputs
    taps: torch.Tensor  # fully connected: input indices; convolution: (c, ky, kx)

    def input(self, parent: MacLayer, x: torch.Tensor) -> torch.Tensor:
        """The duplicated input of the group (``x`` is already zero padded for convs)."""
        if parent.kind == "linear":
            return x[:, self.taps]
        c, ky, kx = (int(v) for v in self.taps)
        ho, wo = parent.out_hw
        s = parent.stride
        return x[:, c:c + 1, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s].contiguous()

    def accumulate(self, xg: torch.Tensor) -> torch.Tensor:
        """Exact products (``float64`` integers) of the group's layer on its input ``xg``."""
        if self.layer.kind == "linear":
            return self.layer.accumulate(xg)
        # a 1x1 convolution of one input channel is a broadcast product
        return xg.to(torch.float64) * self.layer.weight.to(torch.float64).view(1, -1, 1, 1)


class _DistributedHook:
    """Runs ``inner`` on a layer, then adds that layer's extra MACs (through ``inner`` too)."""

    def __init__(self, groups: Mapping[str, list[_Group]], inner: MacHook | None):
        self.groups, self.inner = groups, inner

    def __call__(self, layer: MacLayer, x: torch.Tensor, acc: torch.Tensor) -> None:
        if self.inner is not None:
            self.inner(layer, x, acc)
        groups = self.groups.get(layer.name)
        if not groups:
            return
        p = layer.padding
        xp = F.pad(x, (p, p, p, p)) if layer.kind == "conv" and p else x
        for g in groups:
            xg = g.input(layer, xp)
            part = g.accumulate(xg)
            if self.inner is not None:
                self.inner(g.layer, xg, part)
            acc.index_add_(1, g.outs, part)


@dataclass
class LayerMitigation:
    """What WD + EAQ did to one layer (one row of ``mitigation.csv``).

    ``expected_wrong_*`` are expected wrong products per image at regulation 1 under the
    layer's Table III (multiply by the regulation factor): ``sum over weights of positions
    * p[code]`` (both halves counted for a distributed weight).
    """

    layer: str
    weights: int
    macs: int
    macs_after: int
    wd_candidates: int
    distributed: int
    eaq_changed: int
    expected_wrong_before: float
    expected_wrong_after: float


class MitigatedNet:
    """An INT8 network after WD and/or EAQ, usable like a :class:`QuantizedNet`.

    Members
    -------
    qnet:
        A copy of the original network with the new codes (``w1`` where a weight was
        distributed); on its own it lacks the extra MACs -- call this object instead.
    config:
        The :class:`MitigationConfig`.
    layers_report:
        One :class:`LayerMitigation` per MAC layer.
    weight_error:
        The Table III used, ``layer -> p[code]``.
    """

    def __init__(self, qnet: QuantizedNet, groups: dict[str, list[_Group]],
                 config: MitigationConfig,
                 report: list[LayerMitigation], weight_error: dict[str, npt.NDArray[np.float64]]):
        self.qnet = qnet
        self._groups = groups
        self.config = config
        self.layers_report = report
        self.weight_error = weight_error

    @property
    def layers(self) -> dict[str, MacLayer]:
        """The MAC layers (new codes)."""
        return self.qnet.layers

    def hook(self, inner: MacHook | None = None) -> MacHook | None:
        """The hook that adds the extra MACs (and passes every product through ``inner``)."""
        if not self._groups:
            return inner
        return _DistributedHook(self._groups, inner)

    def __call__(self, x: torch.Tensor, hook: MacHook | None = None) -> torch.Tensor:
        """``float64`` logits (``hook`` sees every product, extra MACs included)."""
        return self.qnet(x, self.hook(hook))

    forward = __call__

    def accuracy(self, data: TensorDataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
                 hook: MacHook | None = None, *, batch_size: int = 1000,
                 progress: bool = False) -> float:
        """Top-1 accuracy on ``data`` (see :meth:`QuantizedNet.accuracy`)."""
        return self.qnet.accuracy(data, self.hook(hook), batch_size=batch_size,
                                  progress=progress)

    def macs(self) -> dict[str, int]:
        """Multiplications per layer for one input image, extra MACs included."""
        return {r.layer: r.macs_after for r in self.layers_report}

    def distributed(self) -> dict[str, int]:
        """Distributed weights per layer."""
        return {r.layer: r.distributed for r in self.layers_report}

    def summary(self) -> dict[str, Any]:
        """Totals over layers."""
        rep = self.layers_report
        return {"method": self.config.label, "config": json.loads(self.config.to_json()),
                "weights": sum(r.weights for r in rep),
                "macs": sum(r.macs for r in rep), "macs_after": sum(r.macs_after for r in rep),
                "wd_candidates": sum(r.wd_candidates for r in rep),
                "distributed": sum(r.distributed for r in rep),
                "eaq_changed": sum(r.eaq_changed for r in rep),
                "expected_wrong_before": sum(r.expected_wrong_before for r in rep),
                "expected_wrong_after": sum(r.expected_wrong_after for r in rep)}


def _positions(layer: MacLayer) -> int:
    ho, wo = layer.out_hw
    return ho * wo


def _make_groups(layer: MacLayer, flat_idx: npt.NDArray[np.int64],
                 w2: npt.NDArray[np.int64]) -> list[_Group]:
    """The extra MACs of ``layer``: weight ``w2[j]`` beside weight ``flat_idx[j]``."""
    o, rest = np.divmod(flat_idx, layer.fan_in)
    one = torch.ones(1, dtype=torch.float64)
    groups: list[_Group] = []
    if layer.kind == "linear":
        for out in np.unique(o):
            sel = o == out
            extra = MacLayer(
                name=layer.name, kind="linear",
                weight=torch.from_numpy(w2[sel].astype(np.int8)).reshape(1, -1),
                w_scale=one, bias=torch.zeros(1, dtype=torch.float64),
                in_scale=layer.in_scale, in_shape=(int(sel.sum()),),
                weight_port=layer.weight_port)
            groups.append(_Group(extra, torch.tensor([int(out)]), torch.from_numpy(rest[sel])))
        return groups
    ho, wo = layer.out_hw
    for tap in np.unique(rest):
        sel = rest == tap
        k = int(sel.sum())
        kh, kw = layer.weight.shape[2:]
        c, r = divmod(int(tap), kh * kw)
        extra = MacLayer(
            name=layer.name, kind="conv",
            weight=torch.from_numpy(w2[sel].astype(np.int8)).reshape(k, 1, 1, 1),
            w_scale=one.expand(k).clone(), bias=torch.zeros(k, dtype=torch.float64),
            in_scale=layer.in_scale, in_shape=(1, ho, wo), weight_port=layer.weight_port)
        groups.append(_Group(extra, torch.from_numpy(o[sel]), torch.tensor([c, *divmod(r, kw)])))
    return groups


def mitigate(qnet: QuantizedNet, tables: TableSpec, config: MitigationConfig | None = None, *,
             sensitivity: Mapping[str, npt.NDArray[np.float64]] | None = None,
             hists: Mapping[str, npt.ArrayLike] | None = None) -> MitigatedNet:
    """Apply weight distribution and error-aware quantization (Fig. 4).

    Parameters
    ----------
    qnet:
        The freshly quantized network (its codes must be the nearest levels of its float
        weights; the network itself is not changed).
    tables:
        The compressed error table, or one per layer (``layer -> table``).
    config:
        What to apply (defaults: WD on the top 1 %, EAQ on the rest, measured activations).
    sensitivity:
        ``layer -> |dL/dw|`` (:func:`nnmap.sensitivity.weight_sensitivity`); needed when
        ``config.wd_fraction > 0``.
    hists:
        ``layer -> activation-code histogram`` (:class:`nnmap.dataflow.OperandStreams`
        ``.hist``); needed when ``config.act_dist == "layer"``.

    Returns
    -------
    MitigatedNet
    """
    config = config or MitigationConfig()
    p_layers = layer_weight_error(qnet, tables, hists, config.act_dist)
    if config.wd_fraction > 0:
        if sensitivity is None:
            raise MitigationError("Weight distribution needs weight sensitivities; pass "
                                  "sensitivity= or set wd_fraction=0 (N_EAQ)")
        missing = set(qnet.layers) - set(sensitivity)
        if missing:
            raise MitigationError(f"No sensitivities for layer(s) {sorted(missing)}")
        top = top_fraction_mask({k: sensitivity[k] for k in qnet.layers}, config.wd_fraction)
    else:
        top = {k: np.zeros(tuple(v.weight.shape), bool) for k, v in qnet.layers.items()}
    floats = qnet.float_weights()
    new = copy.deepcopy(qnet)
    groups: dict[str, list[_Group]] = {}
    report: list[LayerMitigation] = []
    for name, layer in new.layers.items():
        p = p_layers[name]
        p_val = _by_value(p)
        codes = layer.weight.numpy().astype(np.int64)
        shape = (-1,) + (1,) * (codes.ndim - 1)
        x = (floats[name] / layer.w_scale.view(shape)).numpy()
        if not np.array_equal(np.clip(np.round(x), -QMAX, QMAX), codes):
            raise MitigationError(f"Layer {name!r} holds codes that are not the nearest levels "
                                  "of its float weights (edited?); mitigate the freshly "
                                  "quantized network")
        sensitive = np.asarray(top[name], bool).reshape(codes.shape)
        new_codes = codes.copy()
        if config.eaq:
            eaq = eaq_codes(x, p).astype(np.int64)
            new_codes[~sensitive] = eaq[~sensitive]
        w1_t, w2_t, cost_t = best_split(p)
        cand = np.flatnonzero(sensitive.ravel())
        q = codes.ravel()[cand]
        gain = cost_t[q + 128] < p_val[q + 128]
        dist = cand[gain]
        w1, w2 = w1_t[q[gain] + 128], w2_t[q[gain] + 128]
        flat = new_codes.reshape(-1)
        flat[dist] = w1
        layer.weight = torch.from_numpy(new_codes.astype(np.int8))
        if len(dist):
            groups[name] = _make_groups(layer, dist, w2)
        pos = _positions(layer)
        before = float(p[codes.ravel() & 0xFF].sum()) * pos
        after = float(p[new_codes.ravel() & 0xFF].sum() + p[w2 & 0xFF].sum()) * pos
        report.append(LayerMitigation(
            layer=name, weights=int(codes.size), macs=layer.macs(),
            macs_after=layer.macs() + len(dist) * pos, wd_candidates=int(len(cand)),
            distributed=int(len(dist)),
            eaq_changed=int((new_codes.ravel() != codes.ravel())[~sensitive.ravel()].sum()),
            expected_wrong_before=before, expected_wrong_after=after))
    return MitigatedNet(new, groups, config, report, p_layers)
