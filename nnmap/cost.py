"""What a network variant costs: parameters, stored numbers, memory, MACs, CPU time.

The figures of merit of the hardening study's overheads (Table I, Table II, Fig. 7): a
duplicated channel adds parameters and MACs, an EDAC layer stored bounds, and all of it
time. Stored numbers are the fault space (:func:`nnmap.bitflip.fault_space`), so memory
counts exactly what a fault campaign can flip.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .bitflip import fault_space
from .errors import NNMapError

__all__ = ["CostError", "ModelCost", "model_cost", "time_inference"]


class CostError(NNMapError):
    """A cost measurement setting is invalid (the message names the fix)."""


@dataclass(frozen=True)
class ModelCost:
    """Size and work of a network for one input image.

    Members
    -------
    parameters:
        Trainable parameters (duplicated copies included).
    stored:
        Floating-point numbers stored for inference: parameters, batch-norm statistics and
        detection-interval bounds (the fault space).
    memory_bytes:
        ``stored * 4`` (float32).
    macs:
        Multiply-accumulates of the conv/FC layers for one image.
    """

    parameters: int
    stored: int
    memory_bytes: int
    macs: int

    def to_dict(self) -> dict[str, int]:
        """Plain-JSON form."""
        return asdict(self)


def model_cost(model: nn.Module, input_shape: tuple[int, ...]) -> ModelCost:
    """Parameters, stored numbers, memory and MACs of ``model`` for one ``input_shape`` image."""
    macs = 0

    def hook(m: nn.Module, inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            per_out = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
            macs += int(out[0].numel()) * per_out
        elif isinstance(m, nn.Linear):
            macs += int(out[0].numel()) * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    params = sum(int(p.numel()) for p in model.parameters())
    stored = sum(layer.numel() for layer in fault_space(model))
    return ModelCost(params, stored, stored * 4, macs)


def time_inference(model: nn.Module, x: torch.Tensor, *, batch_size: int = 250,
                   repeats: int = 3) -> float:
    """Execution time of one no-grad pass over ``x``: the best of ``repeats`` passes (after
    a warm-up pass), in CPU seconds of this process.

    CPU time, not wall-clock time: on a shared machine other processes' load inflates
    wall-clock times much more.
    """
    if repeats < 1:
        raise CostError(f"Timing needs at least one repeat, not {repeats!r}")
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
