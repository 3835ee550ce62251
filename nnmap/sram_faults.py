"""Weight-memory faults: quantized weights in the SRAM weight buffer's words, and faults in them.

The weight buffer is the project's ``hw.FaultySRAM`` (``width``-bit words, ``depth`` words per
instance), ``banks`` instances side by side. A read returns ``((stored & ~sa0) | sa1) ^ flip``.

Mapping (:class:`WeightLayout`)
-------------------------------
* A ``b``-bit weight is stored as its ``b``-bit two's-complement code ``u = q mod 2**b``.
* ``k = width // b`` weights share a word; weight slot ``s`` (``0 .. k-1``) holds bits
  ``[s*b, s*b + b)`` of the word, slot 0 in the least significant bits, the code's LSB at the
  slot's lowest bit. Bits above ``k*b`` (when ``b`` does not divide ``width``) hold nothing.
* The MAC layers follow each other in execution order (:attr:`~nnmap.qat.QATNet.mac_names`);
  each starts at a fresh word. Inside a layer the weights are taken in C order of the weight
  tensor (``[out, in, kh, kw]`` or ``[out, in]``): weight ``i`` of the layer sits in word
  ``first_word + i // k``, slot ``i % k``.
* Global word ``g`` is word ``g % depth`` of bank ``g // depth``.
* Biases (int32), weight scales and activation scales are held in registers outside the weight
  buffer and are not faulted (as in the paper, faults hit the stored weights).

Fault model (:func:`sample_faults`)
-----------------------------------
The *stored bits* are the ``b`` bits of every weight (``n_weights * b`` cells; unused slots
and words are not counted). Two definitions of the fault rate ``p`` (``unit``):

* ``"bit"`` (per stored bit): every stored bit is faulty independently with probability
  ``p``: the number of faulty bits is drawn ``Binomial(n_bits, p)``, then that many distinct
  bits uniformly (the same law as a Bernoulli draw per bit, at a cost proportional to the
  number of faults). A weight holds several faulty bits with probability ~``C(b, 2) p**2``.
* ``"weight"`` (per stored weight): every weight is faulty independently with probability
  ``p`` (``Binomial(n_weights, p)`` distinct weights, uniformly), and a faulty weight has
  exactly one faulty bit, drawn uniformly among its ``b`` bits. So ``p`` per weight puts
  ``p * n_weights`` faulty cells in the buffer, as many as ``p / b`` per bit.

Kinds:

* ``"flip"``: the bit reads inverted. In hardware a flip is an upset of a read
  (``FaultySRAM.flip``); here the same flip mask applies to every read of the trial, which is
  what a weight held in the buffer for one inference sees.
* ``"sa0"`` / ``"sa1"``: the cell is stuck at 0 / 1 (``FaultySRAM`` stuck-at masks,
  permanent): a bit that already holds the stuck value is unchanged (the fault is masked).

The fault rate is the fraction of faulty cells; :attr:`FaultMap.changed_bits` counts the bits
whose value actually changed. Seeds: :func:`fault_seed` derives a trial's generator from
``(seed, kind, rate, trial)`` only, so models of the same architecture see the *same* fault
positions in the same trial (paired comparisons).

The same :class:`FaultMap` gives per-word masks (:meth:`FaultMap.word_masks`) for the RTL
simulation and faulty weight codes (:meth:`FaultMap.apply`) for the torch inference; the two
agree bit for bit (``tests/test_sim_sram_nn.py``).

Trials (:func:`run_fault_trial`)
--------------------------------
One Monte Carlo trial samples a fault map, runs the integer inference of a
:class:`~nnmap.qat.QATNet` with the faulty weights and measures accuracy and activation
sparsity; :func:`bench_fault_trial` times it against a clean inference.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import TensorDataset

from .errors import NNMapError
from .qat import QATNet
from .sparsity import measure_sparsity

__all__ = [
    "FAULT_KINDS",
    "FAULT_UNITS",
    "MAX_DEPTH",
    "MAX_WIDTH",
    "SramFaultError",
    "FaultMap",
    "LayerSpan",
    "SramGeometry",
    "SramLayoutError",
    "WeightLayout",
    "bench_fault_trial",
    "check_rate",
    "check_unit",
    "fault_seed",
    "run_fault_trial",
    "sample_faults",
]

FAULT_KINDS = ("flip", "sa0", "sa1")
FAULT_UNITS = ("bit", "weight")
"""The two fault-rate definitions: per stored bit, per stored weight (see the module doc)."""
MAX_DEPTH = 65536  # hw.FaultySRAM limits
MAX_WIDTH = 64


class SramFaultError(NNMapError):
    """A fault setting is invalid (unknown kind, rate outside [0, 1], bad seed)."""


class SramLayoutError(NNMapError):
    """Weights and SRAM geometry do not fit together (the message names the fix)."""


def check_rate(rate: object) -> float:
    """``rate`` as a float in ``[0, 1]``, else a :class:`SramFaultError`."""
    try:
        value = float(rate)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SramFaultError(f"Fault rate must be a number in [0, 1], not {rate!r}") from None
    if not 0.0 <= value <= 1.0:
        raise SramFaultError(f"Fault rate must be in [0, 1] (a fraction: 0.01 = 1 %), not {rate!r}")
    return value


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise SramFaultError(f"Unknown fault kind {kind!r}; choose one of {', '.join(FAULT_KINDS)}")


def check_unit(unit: str) -> None:
    """Refuse a fault-rate definition other than :data:`FAULT_UNITS`."""
    if unit not in FAULT_UNITS:
        raise SramFaultError(f"Unknown fault-rate unit {unit!r}; choose one of "
                             f"{', '.join(FAULT_UNITS)}")


@dataclass(frozen=True)
class SramGeometry:
    """Shape of the weight buffer: ``banks`` ``hw.FaultySRAM`` of ``depth`` x ``width`` bits.

    Parameters
    ----------
    width:
        Bits per word, 1 to 64.
    depth:
        Words per bank, 2 to 65536.
    banks:
        Number of SRAM instances (global word ``g`` is in bank ``g // depth``).
    """

    width: int = 64
    depth: int = 4096
    banks: int = 1

    def __post_init__(self) -> None:
        for name, lo, hi in (("width", 1, MAX_WIDTH), ("depth", 2, MAX_DEPTH),
                             ("banks", 1, 1 << 20)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise SramLayoutError(f"SRAM {name} must be an integer from {lo} to {hi}, "
                                      f"not {value!r}")

    @property
    def words(self) -> int:
        """Total words over all banks."""
        return self.depth * self.banks

    @classmethod
    def parse(cls, text: str) -> SramGeometry:
        """``"WIDTHxDEPTH"`` or ``"WIDTHxDEPTHxBANKS"`` (e.g. ``"64x4096"``)."""
        parts = text.lower().split("x")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) not in (2, 3):
            raise SramLayoutError(f"SRAM geometry must look like WIDTHxDEPTH[xBANKS] "
                                  f"(e.g. 64x4096), not {text!r}")
        return cls(*nums)

    @classmethod
    def fit(cls, shapes: Mapping[str, Sequence[int]], bits: int, width: int = 64
            ) -> SramGeometry:
        """The smallest power-of-two depth (then banks of 65536 words) holding the weights."""
        if bits > width:
            raise SramLayoutError(f"{bits}-bit weights do not fit {width}-bit SRAM words; use "
                                  f"words of at least {bits} bits")
        slots = width // bits
        need = sum(-(-int(np.prod(shape)) // slots) for shape in shapes.values())
        if need <= MAX_DEPTH:
            return cls(width, max(2, 1 << max(1, math.ceil(math.log2(max(need, 2))))), 1)
        return cls(width, MAX_DEPTH, math.ceil(need / MAX_DEPTH))

    def __str__(self) -> str:
        return f"{self.width}x{self.depth}" + (f"x{self.banks}" if self.banks > 1 else "")


@dataclass(frozen=True)
class LayerSpan:
    """Where one layer's weights live: ``count`` weights from global word ``first_word``."""

    name: str
    shape: tuple[int, ...]
    count: int
    first_word: int
    words: int
    first_weight: int


class WeightLayout:
    """The documented mapping of quantized weights into SRAM words (see the module doc).

    Parameters
    ----------
    shapes:
        ``layer name -> weight shape`` in execution order.
    bits:
        Bits per weight.
    geometry:
        The weight buffer.

    Raises
    ------
    SramLayoutError
        If a weight does not fit a word, or the weights do not fit the buffer.
    """

    def __init__(self, shapes: Mapping[str, Sequence[int]], bits: int, geometry: SramGeometry):
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
            raise SramLayoutError(f"Weight bit width must be a positive integer, not {bits!r}")
        if bits > geometry.width:
            raise SramLayoutError(f"{bits}-bit weights do not fit {geometry.width}-bit SRAM "
                                  f"words; use words of at least {bits} bits")
        if not shapes:
            raise SramLayoutError("No weight layers to lay out")
        self.bits, self.geometry = bits, geometry
        self.slots = geometry.width // bits
        spans = []
        word = weight = 0
        for name, shape in shapes.items():
            count = int(np.prod(shape))
            words = -(-count // self.slots)
            spans.append(LayerSpan(name, tuple(int(s) for s in shape), count, word, words,
                                   weight))
            word += words
            weight += count
        self.spans = spans
        self.n_words, self.n_weights = word, weight
        if self.n_words > geometry.words:
            raise SramLayoutError(
                f"The model needs {self.n_words} words of {geometry.width} bits "
                f"({self.n_weights} {bits}-bit weights), but the SRAM {geometry} holds "
                f"{geometry.words}; give more depth or banks (e.g. --sram "
                f"{SramGeometry.fit(shapes, bits, geometry.width)})")
        local = np.concatenate([np.arange(s.count, dtype=np.int64) for s in spans])
        first = np.concatenate([np.full(s.count, s.first_word, dtype=np.int64) for s in spans])
        #: Global word of every weight (in global weight order).
        self.word_of = first + local // self.slots
        #: Slot of every weight inside its word.
        self.slot_of = local % self.slots

    @property
    def n_bits(self) -> int:
        """Stored weight bits (the cells faults are drawn from)."""
        return self.n_weights * self.bits

    @classmethod
    def from_net(cls, net: Any, geometry: SramGeometry | None = None) -> WeightLayout:
        """Layout of a :class:`~nnmap.qat.QATNet`'s weights (``geometry`` fitted if ``None``)."""
        shapes = {n: tuple(c.shape) for n, c in net.weight_codes().items()}
        bits = net.config.weight_bits
        return cls(shapes, bits, geometry or SramGeometry.fit(shapes, bits))

    def address(self, word: int | npt.NDArray[np.int64]) -> tuple[Any, Any]:
        """``(bank, address)`` of global word(s) ``word``."""
        return np.divmod(word, self.geometry.depth)

    # -- codes <-> flat --------------------------------------------------------------------
    def flatten(self, codes: Mapping[str, torch.Tensor | npt.NDArray[Any]]
                ) -> npt.NDArray[np.int8]:
        """Concatenate per-layer codes in layout order (checks names and shapes)."""
        names = [s.name for s in self.spans]
        if list(codes) != names:
            raise SramLayoutError(f"Weight layers {list(codes)} do not match the layout's "
                                  f"{names}; build the layout from this model")
        parts = []
        lo, hi = -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        for span in self.spans:
            value = codes[span.name]
            arr = value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(
                value)
            if tuple(arr.shape) != span.shape:
                raise SramLayoutError(f"Layer {span.name!r} has weights of shape "
                                      f"{tuple(arr.shape)}, the layout {span.shape}")
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise SramLayoutError(f"Layer {span.name!r} has codes outside the "
                                      f"{self.bits}-bit range [{lo}, {hi}]")
            parts.append(arr.reshape(-1).astype(np.int8))
        return np.concatenate(parts)

    def split(self, flat: npt.NDArray[np.int8]) -> dict[str, torch.Tensor]:
        """Inverse of :meth:`flatten`: ``name -> int8 tensor`` of the layer's shape."""
        if flat.shape != (self.n_weights,):
            raise SramLayoutError(f"Expected {self.n_weights} weight codes, got {flat.shape}")
        t = torch.from_numpy(np.ascontiguousarray(flat))
        return {s.name: t[s.first_weight:s.first_weight + s.count].view(s.shape)
                for s in self.spans}

    # -- words ----------------------------------------------------------------------------
    def pack(self, codes: Mapping[str, torch.Tensor | npt.NDArray[Any]]
             ) -> npt.NDArray[np.uint64]:
        """The buffer contents: ``uint64 [banks, depth]`` words (unused words are 0)."""
        return self.pack_flat(self.flatten(codes))

    def pack_flat(self, flat: npt.NDArray[np.int8]) -> npt.NDArray[np.uint64]:
        """:meth:`pack` of codes already flattened in layout order."""
        u = (flat.astype(np.int64) & ((1 << self.bits) - 1)).astype(np.uint64)
        shifted = u << (self.slot_of * self.bits).astype(np.uint64)
        words = np.zeros(self.geometry.words, dtype=np.uint64)
        # Slots of one word are disjoint bit fields: their sum is their OR (no carries).
        np.add.at(words, self.word_of, shifted)
        return words.reshape(self.geometry.banks, self.geometry.depth)

    def unpack(self, words: npt.NDArray[Any]) -> dict[str, torch.Tensor]:
        """Weight codes read back from buffer contents shaped ``[banks, depth]``."""
        return self.split(self.unpack_flat(words))

    def unpack_flat(self, words: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
        """:meth:`unpack`, flat in layout order."""
        g = self.geometry
        arr = np.asarray(words)
        if arr.shape not in ((g.banks, g.depth), (g.words,)):
            raise SramLayoutError(f"Buffer contents of shape {arr.shape} do not match the SRAM "
                                  f"{g} ([{g.banks}, {g.depth}] words)")
        flat_words = arr.reshape(-1).astype(np.uint64)
        u = (flat_words[self.word_of] >> (self.slot_of * self.bits).astype(np.uint64)) & \
            np.uint64((1 << self.bits) - 1)
        return _signed(u.astype(np.int64), self.bits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (geometry, bits, per-layer word ranges)."""
        return {"geometry": asdict(self.geometry), "bits": self.bits,
                "weights_per_word": self.slots, "words_used": self.n_words,
                "weights": self.n_weights, "stored_bits": self.n_bits,
                "layers": [{"name": s.name, "shape": list(s.shape), "weights": s.count,
                            "first_word": s.first_word, "words": s.words} for s in self.spans]}

    def markdown(self) -> str:
        """The mapping as a Markdown table, for reports."""
        g = self.geometry
        lines = [f"Weight buffer: {g.banks} x `hw.FaultySRAM` of {g.depth} words x {g.width} "
                 f"bits; {self.slots} {self.bits}-bit two's-complement weights per word, slot "
                 f"*s* in bits [{self.bits}*s, {self.bits}*s+{self.bits - 1}]; layers start "
                 "at a fresh word; weight *i* of a layer (C order) in word first + i // "
                 f"{self.slots}, slot i % {self.slots}; word *g* = bank g // {g.depth}, "
                 f"address g % {g.depth}.", "",
                 "| layer | shape | weights | first word | words |", "|---|---|---:|---:|---:|"]
        for s in self.spans:
            lines.append(f"| {s.name} | {'x'.join(map(str, s.shape))} | {s.count} | "
                         f"{s.first_word} | {s.words} |")
        lines.append(f"| **total** | | {self.n_weights} | | {self.n_words} |")
        return "\n".join(lines) + "\n"


def _signed(u: npt.NDArray[np.int64], bits: int) -> npt.NDArray[np.int8]:
    return np.where(u >= 1 << (bits - 1), u - (1 << bits), u).astype(np.int8)


# --- fault maps ----------------------------------------------------------------------------
def fault_seed(seed: int, kind: str, rate: float, trial: int, *, unit: str = "bit",
               stream: int = 0) -> np.random.SeedSequence:
    """The generator seed of one trial: depends on ``(seed, kind, rate, trial, unit,
    stream)`` only. ``stream`` separates independent sets of maps (e.g. one per trained model
    replicate); ``unit="bit", stream=0`` gives the seeds of earlier versions."""
    _check_kind(kind)
    check_unit(unit)
    for name, value in (("Trial index", trial), ("Stream", stream)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SramFaultError(f"{name} must be a non-negative integer, not {value!r}")
    key = [int(seed) & 0xFFFFFFFF, FAULT_KINDS.index(kind), int(round(check_rate(rate) * 1e9)),
           trial]
    if unit != "bit" or stream:
        key += [FAULT_UNITS.index(unit), stream]
    return np.random.SeedSequence(key)


@dataclass(frozen=True)
class FaultMap:
    """Faulty stored bits of one trial.

    Members
    -------
    kind:
        ``"flip"``, ``"sa0"`` or ``"sa1"``.
    rate:
        Requested fault rate.
    positions:
        Sorted stored-bit indices ``weight_index * bits + bit`` (global weight order).
    layout:
        The mapping the indices refer to.
    """

    kind: str
    rate: float
    positions: npt.NDArray[np.int64]
    layout: WeightLayout

    @property
    def n_faults(self) -> int:
        """Number of faulty cells."""
        return int(self.positions.size)

    def weight_masks(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``(weights, masks)``: the faulty weights (global index) and their faulty bits."""
        bits = self.layout.bits
        widx, bit = np.divmod(self.positions, bits)
        weights, inv = np.unique(widx, return_inverse=True)
        masks = np.zeros(weights.size, dtype=np.int64)
        np.bitwise_or.at(masks, inv, np.left_shift(1, bit))
        return weights, masks

    def apply(self, flat: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
        """Faulty codes (flat, layout order) as read from the buffer; ``flat`` is not changed."""
        bits = self.layout.bits
        out = flat.copy()
        weights, masks = self.weight_masks()
        u = out[weights].astype(np.int64) & ((1 << bits) - 1)
        if self.kind == "flip":
            u ^= masks
        elif self.kind == "sa0":
            u &= ~masks
        else:
            u |= masks
        out[weights] = _signed(u, bits)
        return out

    def changed_bits(self, flat: npt.NDArray[np.int8]) -> int:
        """Bits whose value the faults change (stuck-at faults on equal bits are masked)."""
        bits = self.layout.bits
        widx, bit = np.divmod(self.positions, bits)
        stored = (flat[widx].astype(np.int64) >> bit) & 1
        if self.kind == "flip":
            return self.n_faults
        return int((stored == (1 if self.kind == "sa0" else 0)).sum())

    def word_masks(self) -> dict[str, npt.NDArray[np.uint64]]:
        """``sa0``, ``sa1``, ``flip`` masks per word, ``uint64 [banks, depth]`` (RTL side)."""
        lay = self.layout
        widx, bit = np.divmod(self.positions, lay.bits)
        word = lay.word_of[widx]
        pos = (lay.slot_of[widx] * lay.bits + bit).astype(np.uint64)
        g = lay.geometry
        masks = {k: np.zeros(g.words, dtype=np.uint64) for k in FAULT_KINDS}
        np.bitwise_or.at(masks[self.kind], word, np.left_shift(np.uint64(1), pos))
        return {k: v.reshape(g.banks, g.depth) for k, v in masks.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (not the positions)."""
        return {"kind": self.kind, "rate": self.rate, "faults": self.n_faults,
                "stored_bits": self.layout.n_bits}


def sample_faults(layout: WeightLayout, kind: str, rate: float,
                  rng: np.random.Generator | np.random.SeedSequence | int, *,
                  unit: str = "bit") -> FaultMap:
    """Draw the faulty stored bits of one trial (see the module docstring).

    Parameters
    ----------
    layout:
        The weight mapping.
    kind:
        ``"flip"``, ``"sa0"`` or ``"sa1"``.
    rate:
        Probability that a stored bit (``unit="bit"``) or a stored weight
        (``unit="weight"``: then one uniform bit of it) is faulty, in ``[0, 1]``.
    rng:
        A generator, or a seed for one (e.g. :func:`fault_seed`).
    unit:
        The fault-rate definition, ``"bit"`` or ``"weight"``.
    """
    _check_kind(kind)
    check_unit(unit)
    p = check_rate(rate)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if unit == "weight":
        nw = layout.n_weights
        k = int(gen.binomial(nw, p)) if 0 < p < 1 else (nw if p == 1 else 0)
        weights = (np.arange(nw, dtype=np.int64) if k == nw
                   else np.sort(gen.choice(nw, size=k, replace=False).astype(np.int64)))
        bit = gen.integers(0, layout.bits, size=weights.size, dtype=np.int64)
        return FaultMap(kind, p, weights * layout.bits + bit, layout)
    n = layout.n_bits
    k = int(gen.binomial(n, p)) if 0 < p < 1 else (n if p == 1 else 0)
    positions = (np.arange(n, dtype=np.int64) if k == n
                 else np.sort(gen.choice(n, size=k, replace=False).astype(np.int64)))
    return FaultMap(kind, p, positions, layout)


def summary_json(layout: WeightLayout) -> str:
    """Canonical JSON of a layout (for settings records)."""
    return json.dumps(layout.to_dict(), sort_keys=True)


# --- trials --------------------------------------------------------------------------------
def run_fault_trial(net: QATNet, layout: WeightLayout, test: TensorDataset, kind: str,
                    rate: float, seed: int, trial: int, batch_size: int = 1000, *,
                    unit: str = "bit", stream: int = 0) -> dict[str, Any]:
    """One Monte Carlo trial: sample a fault map, infer with the faulty weights, measure.

    The fault map depends on ``(seed, kind, rate, trial, unit, stream)`` only
    (:func:`fault_seed`), so networks of one architecture see the same faults.
    ``kind="none"`` (or rate 0) is the fault-free inference. Returns ``accuracy``,
    ``sparsity`` (4-bit zeros, mean over layers, %), ``float_sparsity`` (post-ReLU values
    <= 0 before quantization, same rule), ``faults``, ``changed_bits`` and ``stored_bits``.
    """
    codes = net.weight_codes()
    flat = layout.flatten(codes)
    faults = changed = 0
    if kind != "none" and rate > 0:
        fmap = sample_faults(layout, kind, rate, fault_seed(seed, kind, rate, trial, unit=unit,
                                                            stream=stream), unit=unit)
        faulty = layout.split(fmap.apply(flat))
        faults, changed = fmap.n_faults, fmap.changed_bits(flat)
    else:
        faulty = codes
    with net.override_weights(faulty):
        acc, sp = measure_sparsity(net, test, batch_size=batch_size)
    return {"accuracy": acc, "sparsity": sp.mean, "float_sparsity": sp.float_mean,
            "faults": faults, "changed_bits": changed, "stored_bits": layout.n_bits}


def bench_fault_trial(net: QATNet, layout: WeightLayout, test: TensorDataset, *,
                      kind: str = "flip", rate: float = 0.05, repeats: int = 5,
                      batch_size: int = 1000, verbose: bool = True) -> dict[str, float]:
    """Time a fault trial against one clean inference (target: ratio <= 1.2; never asserted).

    Returns ``clean_s`` (best clean inference), ``trial_s`` (best trial: sampling,
    applying, faulty inference with sparsity counting) and ``ratio``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SramFaultError(f"repeats must be a positive integer, not {repeats!r}")
    x, _ = test.tensors

    def clean() -> None:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                net(x[i:i + batch_size])

    net.eval()
    times: dict[str, list[float]] = {"clean": [], "trial": []}
    for r in range(repeats):
        t0 = time.perf_counter()
        clean()
        times["clean"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_fault_trial(net, layout, test, kind, rate, 12345, r, batch_size)
        times["trial"].append(time.perf_counter() - t0)
    # Best of the repeats, as timeit does: the noise of a shared machine only adds time.
    res = {"clean_s": float(np.min(times["clean"])), "trial_s": float(np.min(times["trial"]))}
    res["ratio"] = res["trial_s"] / res["clean_s"]
    if verbose:
        print(f"fault trial ({kind} {100 * rate:g} %, {len(x)} images): clean inference "
              f"{res['clean_s']:.3f} s, trial {res['trial_s']:.3f} s, ratio {res['ratio']:.2f} "
              "(target <= 1.2)")
    return res
