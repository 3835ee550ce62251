"""Operand streams of a quantized network: what the multiplier really sees, layer by layer.

The paper compresses its error table assuming a *uniform* previous operand pair. On a real
accelerator the previous pair is fixed by the dataflow. In a **weight-stationary** array
(the default here) each processing element keeps one weight on the multiplier's weight
port and the activations stream past it:

* a convolution PE holding ``w[o, c, ky, kx]`` sees ``x[c, oy*s + ky, ox*s + kx]`` for the
  output positions ``(oy, ox)`` in raster order, image after image (zero padding
  included: it feeds real zero activations to the multiplier);
* a fully connected PE holding ``w[o, k]`` sees ``x[k]`` of one image after another.

So the weight port holds its value (``prev weight == weight``) and the previous
activation is the stream's previous element. :func:`operand_streams` measures, per MAC
layer, the activation-code histogram of the products (Table III's marginal) and the
transition counts ``[prev code, current code]`` of those streams, on images the caller
chooses (training images, never the test set). From them:

* :meth:`OperandStreams.marginal` -- the previous activation drawn from the layer's
  histogram independently of the current one (``PrevWeights("stationary_a", hist)``);
* :meth:`OperandStreams.conditional` -- ``P(prev | current)``: the first-order Markov model
  of the stream (neighbouring pixels are correlated, zeros follow zeros).

``nnmap`` never imports the timing engine: the command line turns these distributions into
error tables (``flipclock nn timing-study --dataflow ...``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import TensorDataset

from .errors import NNMapError
from .quant import MacLayer, QuantizedNet

__all__ = ["DATAFLOWS", "DataflowError", "OperandStreams", "operand_streams"]

#: Dataflows whose operand streams are modelled.
DATAFLOWS = ("weight-stationary",)
_N = 256


class DataflowError(NNMapError):
    """Unusable stream statistics (the message names the fix)."""


@dataclass
class OperandStreams:
    """Per-layer activation statistics of the multiplier's operand streams.

    Members
    -------
    hist:
        ``layer -> float64 [256]``: products per activation *code* (unsigned view of the
        signed int8 activation), zero padding included.
    transitions:
        ``layer -> float64 [256, 256]``: ``[prev code, current code]`` counts of
        consecutive activations in the PEs' streams.
    weight_port:
        ``layer -> "a" | "b"``: the port that holds the (stationary) weight.
    dataflow:
        The modelled dataflow.
    images:
        Images the statistics were measured on.
    """

    hist: dict[str, npt.NDArray[np.float64]]
    transitions: dict[str, npt.NDArray[np.float64]]
    weight_port: dict[str, str]
    dataflow: str = "weight-stationary"
    images: int = 0
    meta: dict[str, object] = field(default_factory=dict)

    def marginal(self, layer: str) -> npt.NDArray[np.float64]:
        """Normalised activation histogram of ``layer`` (the previous activation's law when
        it is drawn independently of the current one)."""
        h = self._get(self.hist, layer)
        return h / h.sum()

    def conditional(self, layer: str) -> npt.NDArray[np.float64]:
        """``P(prev code | current code)`` as ``float64 [current, prev]``, rows summing to 1.

        Current codes never seen in the stream get the marginal (they are never multiplied,
        so their row only keeps the table well defined).
        """
        t = self._get(self.transitions, layer).T  # [current, prev]
        rows = t.sum(1, keepdims=True)
        marg = self.marginal(layer)
        out = np.where(rows > 0, t / np.maximum(rows, 1e-300), marg[None, :])
        return np.asarray(out, np.float64)

    def digest(self, layer: str) -> str:
        """SHA-256 of the layer's histogram and transition counts (for table caches)."""
        h = hashlib.sha256(np.ascontiguousarray(self._get(self.hist, layer)).tobytes())
        h.update(np.ascontiguousarray(self._get(self.transitions, layer)).tobytes())
        h.update(f"{self.dataflow}:{self.weight_port.get(layer)}".encode())
        return h.hexdigest()

    def summary(self) -> list[dict[str, float | str]]:
        """Per layer: zero fraction, negative fraction, P(prev == current)."""
        rows: list[dict[str, float | str]] = []
        for name in self.hist:
            h = self.marginal(name)
            t = self.transitions[name]
            rows.append({"layer": name, "zero_fraction": float(h[0]),
                         "negative_fraction": float(h[128:].sum()),
                         "repeat_fraction": float(np.trace(t) / max(t.sum(), 1e-300))})
        return rows

    @staticmethod
    def _get(d: dict[str, npt.NDArray[np.float64]], layer: str) -> npt.NDArray[np.float64]:
        if layer not in d:
            raise DataflowError(f"No operand-stream statistics for layer {layer!r}; measure "
                                "them on the same network (operand_streams)")
        return d[layer]


def _codes(x: torch.Tensor) -> npt.NDArray[np.int64]:
    return x.contiguous().numpy().view(np.uint8).astype(np.int64)


def _layer_streams(layer: MacLayer, x: torch.Tensor
                   ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Histogram and transition counts of one call of ``layer`` on int8 input ``x``."""
    hist = np.zeros(_N, np.float64)
    trans = np.zeros(_N * _N, np.float64)
    if layer.kind == "linear":
        seq = _codes(x).T  # [K, N]: feature k's stream runs over the images
        hist += np.bincount(seq.ravel(), minlength=_N) * len(layer.weight)
        if seq.shape[1] > 1:
            trans += np.bincount((seq[:, :-1] * _N + seq[:, 1:]).ravel(), minlength=_N * _N)
        return hist, trans.reshape(_N, _N)
    p, s = layer.padding, layer.stride
    codes = _codes(x)
    if p:
        codes = np.pad(codes, ((0, 0), (0, 0), (p, p), (p, p)))
    kh, kw = layer.weight.shape[2:]
    ho, wo = layer.out_hw
    n_out = len(layer.weight)
    for ky in range(kh):
        for kx in range(kw):
            tap = codes[:, :, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s]
            seq = np.ascontiguousarray(tap.transpose(1, 0, 2, 3)).reshape(tap.shape[1], -1)
            hist += np.bincount(seq.ravel(), minlength=_N) * n_out
            trans += np.bincount((seq[:, :-1] * _N + seq[:, 1:]).ravel(), minlength=_N * _N)
    return hist, trans.reshape(_N, _N)


def operand_streams(qnet: QuantizedNet,
                    data: TensorDataset | Iterable[tuple[torch.Tensor, torch.Tensor]], *,
                    images: int | None = 2000, batch_size: int = 500,
                    dataflow: str = "weight-stationary") -> OperandStreams:
    """Measure every MAC layer's operand streams on the clean INT8 network.

    Parameters
    ----------
    qnet:
        The quantized network.
    data:
        Images to run (use training images: the statistics then shape error tables and
        mitigation without looking at the test set).
    images:
        How many images (all when ``None``).
    batch_size:
        Images per forward pass; a stream's first element in each batch has no previous
        element (a negligible loss of pairs).
    dataflow:
        Only ``"weight-stationary"`` (see the module docstring).
    """
    if dataflow not in DATAFLOWS:
        raise DataflowError(f"Unknown dataflow {dataflow!r}; choose one of "
                            f"{', '.join(DATAFLOWS)}")
    hist: dict[str, npt.NDArray[np.float64]] = {}
    trans: dict[str, npt.NDArray[np.float64]] = {}

    def hook(layer: MacLayer, x: torch.Tensor, acc: torch.Tensor) -> None:
        h, t = _layer_streams(layer, x)
        hist[layer.name] = hist.get(layer.name, 0) + h
        trans[layer.name] = trans.get(layer.name, 0) + t

    seen = 0
    for xb in _image_batches(data, batch_size):
        if images is not None and seen >= images:
            break
        if images is not None:
            xb = xb[:images - seen]
        qnet(xb, hook)
        seen += len(xb)
    if seen == 0:
        raise DataflowError("No images to measure operand streams on; pass a non-empty data set")
    ports = {name: layer.weight_port for name, layer in qnet.layers.items()}
    return OperandStreams(hist, trans, ports, dataflow, seen)


def _image_batches(data: TensorDataset | Iterable[tuple[torch.Tensor, torch.Tensor]],
                   batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(data, TensorDataset):
        x = data.tensors[0]
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size]
    else:
        for xb, _ in data:
            yield xb
